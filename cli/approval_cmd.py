"""`tidegate approve|decline --project P --stage S [--service V] [--id ID | --keptn-context C]`.

Finds the open `approval.triggered` event (one the sequencer still waits for) and answers it with
`approval.finished`, result pass (approve) or fail (decline), as Keptn's `send event approval.finished`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tidegate.cli.client import Api, CliError, Connection, KafkaOption, publish, run
from tidegate.cli.events_build import approval_finished
from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.cli.output import OutputFormat, show

APPROVAL_TRIGGERED = "sh.keptn.event.approval.triggered"


def open_approvals(api: Api, project: str, stage: str | None, service: str | None) -> list[dict[str, Any]]:
    answer = api.get(f"/api/controlPlane/v1/event/triggered/{APPROVAL_TRIGGERED}", project=project, stage=stage,
                     service=service)
    return list(answer.get("events", []))


def _choose(pending: list[dict[str, Any]], event_id: str | None, context: str | None, where: str) -> dict[str, Any]:
    if event_id:
        pending = [e for e in pending if e.get("id") == event_id]
    if context:
        pending = [e for e in pending if e.get("shkeptncontext") == context]
    if not pending:
        raise CliError(f"no open approval {where}; list them with `tidegate get approvals --project ...`")
    if len(pending) > 1:
        ids = ", ".join(f"{e.get('id')} ({e.get('data', {}).get('service')}, {e.get('shkeptncontext')})" for e in pending)
        raise CliError(f"{len(pending)} approvals are open {where}: {ids}; choose one with --id or --keptn-context")
    return pending[0]


def _answer(approve: bool, project: str, stage: str, service: str | None, event_id: str | None,
            context: str | None, message: str | None, endpoint: str | None, token: str | None,
            kafka: str | None) -> None:
    where = f"in {project}/{stage}" + (f"/{service}" if service else "")
    with Api(Connection.resolve(endpoint, token)) as api:
        triggered = _choose(open_approvals(api, project, stage, service), event_id, context, where)
    sent = publish(approval_finished(triggered, approve=approve, message=message), endpoint=endpoint, token=token,
                   kafka=kafka)
    verb = "approved" if approve else "declined"
    typer.echo(f"{verb} {triggered.get('data', {}).get('service')} in {stage} (keptnContext {sent})")


Project = Annotated[str, typer.Option("--project", help="the project")]
Stage = Annotated[str, typer.Option("--stage", help="the stage")]
Service = Annotated[str | None, typer.Option("--service", help="the service")]
EventId = Annotated[str | None, typer.Option("--id", help="the approval.triggered event id")]
Context = Annotated[str | None, typer.Option("--keptn-context", help="the sequence's keptnContext")]
Note = Annotated[str | None, typer.Option("--message", help="a note kept with the decision")]


def approve(project: Project, stage: Stage, service: Service = None, event_id: EventId = None,
            keptn_context: Context = None, message: Note = None, endpoint: EndpointOption = None,
            api_token: TokenOption = None, kafka: KafkaOption = None) -> None:
    """Approve an open approval (approval.finished with result pass)."""
    run(lambda: _answer(True, project, stage, service, event_id, keptn_context, message, endpoint, api_token, kafka))


def decline(project: Project, stage: Stage, service: Service = None, event_id: EventId = None,
            keptn_context: Context = None, message: Note = None, endpoint: EndpointOption = None,
            api_token: TokenOption = None, kafka: KafkaOption = None) -> None:
    """Decline an open approval (approval.finished with result fail: the sequence stops)."""
    run(lambda: _answer(False, project, stage, service, event_id, keptn_context, message, endpoint, api_token, kafka))


def show_approvals(project: str, stage: str | None, service: str | None, endpoint: str | None, token: str | None,
                   output: OutputFormat) -> None:
    with Api(Connection.resolve(endpoint, token)) as api:
        pending = open_approvals(api, project, stage, service)
    rows = [
        [e.get("id"), e.get("data", {}).get("stage"), e.get("data", {}).get("service"), e.get("shkeptncontext"),
         e.get("data", {}).get("result"), e.get("time")]
        for e in pending
    ]
    show(pending, output, rows, ["id", "stage", "service", "keptn context", "result", "time"], "no open approvals")

