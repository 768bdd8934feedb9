"""`tidegate gateway [--host 127.0.0.1 --port 8080]`: serve the HTTP API (token from TIDEGATE_API_TOKEN)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError


def gateway(
    host: Annotated[str | None, typer.Option("--host", help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port (default 8080)")] = None,
    no_token: Annotated[bool, typer.Option("--no-token", help="serve without a token (loopback only)")] = False,
    history_url: Annotated[str | None, typer.Option("--history-url", help="history database URL "
                                                    "(default $TIDEGATE_HISTORY_URL or SQLite in $TIDEGATE_HOME)")] = None,
    follow_audit: Annotated[bool, typer.Option("--follow-audit/--no-follow-audit",
                                               help="store the audit topic in the history (default on)")] = True,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve Keptn's API on Kafka; clients send the token (TIDEGATE_API_TOKEN) as the x-token header."""
    import uvicorn

    from tidegate.bridge import install as bridge
    from tidegate.gateway.kafka import create_kafka_app
    from tidegate.gateway.settings import GatewaySettings
    from tidegate.streams.settings import Settings

    overrides: dict[str, Any] = {"host": host, "port": port, "history_url": history_url}
    if no_token:
        overrides["no_token"] = True
    if not follow_audit:
        overrides["follow_audit"] = False
    try:
        settings = GatewaySettings(**{k: v for k, v in overrides.items() if v is not None})
        streams_settings = Settings()
    except ValidationError as error:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        typer.echo(f"error: {problems}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"tidegate gateway on http://{settings.host}:{settings.port} "
               f"({'token required' if settings.api_token else 'no token: local mode'}), Kafka at "
               f"{streams_settings.kafka_bootstrap}, topics {streams_settings.topic_prefix}*")
    uvicorn.run(create_kafka_app(streams_settings, settings, extensions=(bridge,)), host=settings.host, port=settings.port,
                log_level=log_level)
