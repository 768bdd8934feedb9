"""`tidegate auth --endpoint URL --api-token TOKEN`: check the token and remember both for later commands."""

from __future__ import annotations

from typing import Annotated

import typer

from tidegate.cli.client import Api, CliError, Connection, run, write_config
from tidegate.cli.options import EndpointOption, TokenOption


def auth(
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    check_only: Annotated[bool, typer.Option("--check", help="only check; do not write the config file")] = False,
) -> None:
    """Check the token against the gateway, then store endpoint and token in ~/.config/tidegate/config.yaml."""

    def body() -> None:
        connection = Connection.resolve(endpoint, api_token)
        with Api(connection) as api:
            api.post("/api/v1/auth", {})
        typer.echo(f"authenticated at {connection.endpoint}")
        if not check_only:
            if not connection.endpoint:
                raise CliError("no endpoint to store; give --endpoint")
            path = write_config(connection.endpoint, connection.token)
            typer.echo(f"stored in {path}")

    run(body)
