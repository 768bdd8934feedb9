"""`tidegate connector NAME [NAME ...]`: run one or several task connectors in this process.

    tidegate connector helm
    tidegate connector helm tests command --bootstrap kafka:9092 --concurrency 2 --timeout 15m
    tidegate connector command --task deployment --task test

Each connector consumes its task topics in its own consumer group (`<prefix>connector-<name>`) and
keeps its memory in `<prefix>connector-<name>.state`, so it can run anywhere Kafka is reachable.
Connector-specific settings come from environment variables (see each connector's module); one
connector's time limit and concurrency can differ from the others' with TIDEGATE_CONNECTOR_<NAME>_TIMEOUT
and TIDEGATE_CONNECTOR_<NAME>_CONCURRENCY.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError
from tidegate.streams.logging import configure as configure_logging


def _seconds(text: str) -> float:
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text).total_seconds()
    except DurationError as error:
        raise typer.BadParameter(f"{text!r} is not a duration: {error}") from error


def connector(
    names: Annotated[list[str], typer.Argument(help="Connectors to run: command, helm, tests, webhook, unleash, kubernetes.")],
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers (default TIDEGATE_KAFKA_BOOTSTRAP).")] = None,
    prefix: Annotated[str | None, typer.Option(help="Topic prefix (default TIDEGATE_TOPIC_PREFIX or 'tidegate.').")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Task topics for command/webhook (repeatable).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks run at once per connector.")] = 4,
    timeout: Annotated[str, typer.Option(help="Default time limit per task (Go duration or seconds); a task's own `timeout` property wins.")] = "10m",
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run task connectors until interrupted (SIGINT/SIGTERM stop them cleanly)."""
    from tidegate.connectors.runtime.catalog import BuildRequest, UnknownConnectorError, build, options_for
    from tidegate.connectors.runtime.connector import ConnectorOptions
    from tidegate.connectors.runtime.runner import ConnectorHost
    from tidegate.streams.resources import ResourceStore
    from tidegate.streams.settings import Settings

    configure_logging(log_level)  # JSON lines with the keptnContext when TIDEGATE_LOG_FORMAT=json
    overrides: dict[str, object] = {}
    if bootstrap:
        overrides["kafka_bootstrap"] = bootstrap
    if prefix is not None:
        overrides["topic_prefix"] = prefix
    settings = Settings(**overrides)  # type: ignore[arg-type]
    options = ConnectorOptions(concurrency=concurrency, timeout=_seconds(timeout),
                               max_waiting=max(64, concurrency))
    resources = ResourceStore()
    request = BuildRequest(resources=resources, settings=settings, tasks=tuple(task or ()))
    try:
        connectors = [build(name, request) for name in dict.fromkeys(names)]
        per_connector = {c.name: options_for(c.name, options, os.environ) for c in connectors}
    except (UnknownConnectorError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    host = ConnectorHost(connectors, settings, per_connector, resources=resources)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, host.stop)
        await host.run()

    asyncio.run(main())
