"""`tidegate send event --file event.json`: send any event Keptn's API accepts (validated first)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tidegate.cli.client import CliError, KafkaOption, load_json_file, publish, run
from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.cli.output import OutputFormat, OutputOption

send_app = typer.Typer(help="Send events.", no_args_is_help=True)


@send_app.command("event")
def send_event(
    file: Annotated[Path, typer.Option("--file", "-f", help="a JSON file with one event (type, source, data, ...)")],
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    kafka: KafkaOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Send the event in FILE; prints its keptnContext. Approvals: see `tidegate approve|decline`."""

    def body() -> None:
        event = load_json_file(file, "event")
        if not isinstance(event, dict):
            raise CliError(f"event file {str(file)!r} must hold one JSON object (an event), not {type(event).__name__}")
        context = publish(event, endpoint=endpoint, token=api_token, kafka=kafka)
        if output is OutputFormat.JSON:
            import json

            typer.echo(json.dumps({"keptnContext": context}))
        else:
            typer.echo(f"sent {event.get('type')}; keptnContext {context}")

    run(body)
