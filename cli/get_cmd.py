"""`tidegate get projects|stages|services|sequences|evaluations|approvals|event`: read the control plane."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tidegate.cli.analytics_cmd import get_metrics
from tidegate.cli.approval_cmd import show_approvals
from tidegate.cli.client import Api, Connection, run
from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.cli.output import OutputFormat, OutputOption, show

get_app = typer.Typer(help="Show projects, stages, services, sequences, evaluations, approvals and events.",
                      no_args_is_help=True)

Project = Annotated[str, typer.Option("--project", help="the project")]
OptStage = Annotated[str | None, typer.Option("--stage", help="only this stage")]
OptService = Annotated[str | None, typer.Option("--service", help="only this service")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=500, help="at most this many")]


def _api(endpoint: str | None, token: str | None) -> Api:
    return Api(Connection.resolve(endpoint, token))


@get_app.command("projects")
def projects(endpoint: EndpointOption = None, api_token: TokenOption = None,
             output: OutputOption = OutputFormat.TABLE) -> None:
    """List projects with their stages."""

    def body() -> None:
        with _api(endpoint, api_token) as api:
            answer = api.get("/api/controlPlane/v1/project", pageSize=500)
        rows = [[p["projectName"], ", ".join(s["stageName"] for s in p["stages"]), p["shipyardVersion"]]
                for p in answer["projects"]]
        show(answer["projects"], output, rows, ["project", "stages", "shipyard version"], "no projects yet")

    run(body)


@get_app.command("stages")
def stages(project: Project, endpoint: EndpointOption = None, api_token: TokenOption = None,
           output: OutputOption = OutputFormat.TABLE) -> None:
    """List the stages of a project."""

    def body() -> None:
        with _api(endpoint, api_token) as api:
            answer = api.get(f"/api/controlPlane/v1/project/{project}/stage", pageSize=500)
        rows = [[s["stageName"], ", ".join(s["parentStages"]), ", ".join(v["serviceName"] for v in s["services"])]
                for s in answer["stages"]]
        show(answer["stages"], output, rows, ["stage", "after", "services"])

    run(body)


@get_app.command("services")
def services(project: Project, stage: OptStage = None, endpoint: EndpointOption = None,
             api_token: TokenOption = None, output: OutputOption = OutputFormat.TABLE) -> None:
    """List the services of a project (per stage, with the deployed image)."""

    def body() -> None:
        found: list[dict[str, Any]] = []
        with _api(endpoint, api_token) as api:
            stage_names = [stage] if stage else [
                s["stageName"] for s in api.get(f"/api/controlPlane/v1/project/{project}")["stages"]
            ]
            for name in stage_names:
                answer = api.get(f"/api/controlPlane/v1/project/{project}/stage/{name}/service", pageSize=500)
                found += [{**s, "stage": name} for s in answer["services"]]
        rows = [[s["serviceName"], s["stage"], s.get("deployedImage")] for s in found]
        show(found, output, rows, ["service", "stage", "deployed image"], "no services yet")

    run(body)


def sequence_rows(states: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for state in states:
        stages = " > ".join(f"{s['name']}:{s['state']}" for s in state.get("stages", []))
        rows.append([state["shkeptncontext"], state["name"], state["service"], state["state"], state.get("result"),
                     stages, state["time"]])
    return rows


@get_app.command("sequences")
def sequences(project: Project,
              state: Annotated[str | None, typer.Option("--state", help="e.g. started, paused, finished")] = None,
              name: Annotated[str | None, typer.Option("--name", help="sequence name")] = None,
              keptn_context: Annotated[str | None, typer.Option("--keptn-context")] = None,
              limit: Limit = 20, endpoint: EndpointOption = None, api_token: TokenOption = None,
              output: OutputOption = OutputFormat.TABLE) -> None:
    """List sequence states, newest first."""

    def body() -> None:
        with _api(endpoint, api_token) as api:
            answer = api.get(f"/api/controlPlane/v1/sequence/{project}", state=state, name=name,
                             keptnContext=keptn_context, pageSize=limit)
        show(answer["states"], output, sequence_rows(answer["states"]),
             ["keptn context", "sequence", "service", "state", "result", "stages", "triggered"], "no sequences")

    run(body)


@get_app.command("evaluations")
def evaluations(project: Project, stage: OptStage = None, service: OptService = None, limit: Limit = 20,
                endpoint: EndpointOption = None, api_token: TokenOption = None,
                output: OutputOption = OutputFormat.TABLE) -> None:
    """List evaluation results (score and result), newest first; invalidated ones are left out."""

    def body() -> None:
        parts = [f"data.project:{project}"]
        if stage:
            parts.append(f"data.stage:{stage}")
        if service:
            parts.append(f"data.service:{service}")
        with _api(endpoint, api_token) as api:
            answer = api.get("/api/mongodb-datastore/event/type/sh.keptn.event.evaluation.finished",
                             filter=" AND ".join(parts), excludeInvalidated="true", limit=limit)
        events = answer["events"]
        rows = []
        for event in events:
            data = event.get("data", {})
            evaluation = data.get("evaluation") or {}
            rows.append([event.get("time"), data.get("stage"), data.get("service"), data.get("result"),
                         evaluation.get("score"), event.get("shkeptncontext")])
        show(events, output, rows, ["time", "stage", "service", "result", "score", "keptn context"], "no evaluations")

    run(body)


@get_app.command("approvals")
def approvals(project: Project, stage: OptStage = None, service: OptService = None,
              endpoint: EndpointOption = None, api_token: TokenOption = None,
              output: OutputOption = OutputFormat.TABLE) -> None:
    """List open approvals (approval.triggered without an answer yet)."""
    run(lambda: show_approvals(project, stage, service, endpoint, api_token, output))


@get_app.command("event")
def event(
    event_type: Annotated[str, typer.Argument(help="e.g. evaluation.finished or sh.keptn.event.deployment.finished")],
    project: Annotated[str | None, typer.Option("--project", help="the project")] = None,
    stage: OptStage = None,
    service: OptService = None,
    keptn_context: Annotated[str | None, typer.Option("--keptn-context", help="only this run")] = None,
    limit: Limit = 20,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    output: OutputOption = OutputFormat.JSON,
) -> None:
    """Show events of one type (newest first): by project, or by keptnContext."""

    def body() -> None:
        from tidegate.cli.client import CliError

        full = event_type if event_type.startswith("sh.keptn.") else f"sh.keptn.event.{event_type}"
        if not project and not keptn_context:
            raise CliError("give --project or --keptn-context")
        with _api(endpoint, api_token) as api:
            if full.endswith(".triggered") and project and not keptn_context:
                found = api.get(f"/api/controlPlane/v1/event/triggered/{full}", project=project, stage=stage,
                                service=service)["events"]
            else:
                found = api.get("/api/mongodb-datastore/event", type=full, project=project, stage=stage,
                                service=service, keptnContext=keptn_context, pageSize=limit)["events"]
        rows = [[e.get("time"), e.get("type"), e.get("data", {}).get("stage"), e.get("data", {}).get("service"),
                 e.get("data", {}).get("result"), e.get("id")] for e in found]
        show(found, output, rows, ["time", "type", "stage", "service", "result", "id"], f"no {full} events")

    run(body)


get_app.command("metrics")(get_metrics)  # cli/analytics_cmd.py
