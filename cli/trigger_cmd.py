"""`tidegate trigger delivery|evaluation|sequence`: start a sequence, as `keptn trigger ...` did."""

from __future__ import annotations

from typing import Annotated

import typer

from tidegate.cli.client import Api, CliError, Connection, KafkaOption, key_values, nested, publish, run
from tidegate.cli.events_build import delivery_trigger, image_reference, sequence_trigger
from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.cli.output import OutputFormat, OutputOption

trigger_app = typer.Typer(help="Trigger sequences: delivery, evaluation, or any sequence of the shipyard.",
                          no_args_is_help=True)

ProjectOption = Annotated[str, typer.Option("--project", help="the project")]
ServiceOption = Annotated[str, typer.Option("--service", help="the service")]
LabelsOption = Annotated[list[str] | None, typer.Option("--labels", "-l", help="labels k=v (repeat or comma-separate)")]
ContextOption = Annotated[str | None, typer.Option("--keptn-context", help="use this keptnContext (text is turned "
                                                                            "into a UUID)")]


def _report(context: str, output: OutputFormat, what: str) -> None:
    if output is OutputFormat.JSON:
        import json

        typer.echo(json.dumps({"keptnContext": context}))
    else:
        typer.echo(f"{what} triggered; keptnContext {context}")
        typer.echo(f"follow it with: tidegate watch {context}")


def _first_stage(project: str, endpoint: str | None, token: str | None, kafka: str | None) -> str:
    if kafka:
        raise CliError("with --kafka the shipyard is not read: give --stage")
    with Api(Connection.resolve(endpoint, token)) as api:
        stages = api.get(f"/api/controlPlane/v1/project/{project}")["stages"]
    if not stages:
        raise CliError(f"project {project!r} has no stages")
    return str(stages[0]["stageName"])


@trigger_app.command("delivery")
def delivery(
    project: ProjectOption,
    service: ServiceOption,
    image: Annotated[str, typer.Option("--image", help="the image, e.g. docker.io/keptnexamples/carts[:tag]")],
    tag: Annotated[str | None, typer.Option("--tag", help="the image tag (if not in --image)")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="the stage (default: the shipyard's first)")] = None,
    sequence: Annotated[str, typer.Option("--sequence", help="the sequence to trigger")] = "delivery",
    labels: LabelsOption = None,
    values: Annotated[list[str] | None, typer.Option("--values", help="more values for configurationChange, "
                                                                       "key.sub=value (repeatable)")] = None,
    keptn_context: ContextOption = None,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    kafka: KafkaOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Deliver a new image of a service (sends <stage>.<sequence>.triggered with configurationChange)."""

    def body() -> None:
        chosen = stage or _first_stage(project, endpoint, api_token, kafka)
        event = delivery_trigger(
            project, chosen, service, image_reference(image, tag), sequence=sequence,
            labels=key_values(labels, "--labels"), values=nested(key_values(values, "--values")),
            keptn_context=keptn_context,
        )
        _report(publish(event, endpoint=endpoint, token=api_token, kafka=kafka), output,
                f"{chosen}.{sequence} of {service}")

    run(body)


@trigger_app.command("evaluation")
def evaluation(
    project: ProjectOption,
    stage: Annotated[str, typer.Option("--stage", help="the stage")],
    service: ServiceOption,
    timeframe: Annotated[str | None, typer.Option("--timeframe", help="e.g. 5m (ends now, or at --start + timeframe)")] = None,
    start: Annotated[str | None, typer.Option("--start", help="e.g. 2024-05-01T12:00:00")] = None,
    end: Annotated[str | None, typer.Option("--end", help="e.g. 2024-05-01T12:10:00")] = None,
    labels: LabelsOption = None,
    git_commit_id: Annotated[str | None, typer.Option("--git-commit-id", help="evaluate with this config version")] = None,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    kafka: KafkaOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Run a quality gate over a time window (default: the last 5 minutes)."""

    def body() -> None:
        label_map = key_values(labels, "--labels")
        if kafka:
            context = _evaluation_to_kafka(project, stage, service, timeframe, start, end, label_map, git_commit_id, kafka)
        else:
            request = {"timeframe": timeframe, "start": start, "end": end, "labels": label_map or None,
                       "gitcommitid": git_commit_id}
            with Api(Connection.resolve(endpoint, api_token)) as api:
                answer = api.post(
                    f"/api/controlPlane/v1/project/{project}/stage/{stage}/service/{service}/evaluation",
                    {k: v for k, v in request.items() if v is not None},
                )
            context = str(answer["keptnContext"])
        _report(context, output, f"evaluation of {service} in {stage}")

    run(body)


def _evaluation_to_kafka(
    project: str, stage: str, service: str, timeframe: str | None, start: str | None, end: str | None,
    labels: dict[str, str], gitcommitid: str | None, kafka: str,
) -> str:
    from datetime import UTC, datetime

    from tidegate.gateway.rules import EvaluationWindow, evaluation_window
    from tidegate.schemas.events import format_time

    window = evaluation_window(start=start, end=end, timeframe=timeframe, now=datetime.now(UTC))
    if not isinstance(window, EvaluationWindow):
        raise CliError("the evaluation window is invalid: " + "; ".join(str(p) for p in window))
    evaluation = {"start": format_time(window.start), "end": format_time(window.end)}
    if timeframe:
        evaluation["timeframe"] = timeframe
    event = sequence_trigger(project, stage, service, "evaluation", labels=labels,
                             data={"evaluation": evaluation}, gitcommitid=gitcommitid)
    return publish(event, endpoint=None, token=None, kafka=kafka)


@trigger_app.command("sequence")
def sequence(
    name: Annotated[str, typer.Argument(help="the sequence name in the shipyard")],
    project: ProjectOption,
    service: ServiceOption,
    stage: Annotated[str, typer.Option("--stage", help="the stage")],
    labels: LabelsOption = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="event data key.sub=value (repeatable)")] = None,
    keptn_context: ContextOption = None,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    kafka: KafkaOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Trigger any sequence of a stage (sends <stage>.<name>.triggered)."""

    def body() -> None:
        event = sequence_trigger(project, stage, service, name, labels=key_values(labels, "--labels"),
                                 data=nested(key_values(data, "--data")), keptn_context=keptn_context)
        _report(publish(event, endpoint=endpoint, token=api_token, kafka=kafka), output, f"{stage}.{name} of {service}")

    run(body)
