"""`tidegate create project P --shipyard FILE` and `tidegate create service S --project P`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from tidegate.cli.client import Api, Connection, read_bytes, run
from tidegate.cli.options import EndpointOption, TokenOption

create_app = typer.Typer(help="Create projects and services.", no_args_is_help=True)


@create_app.command("project")
def create_project(
    name: Annotated[str, typer.Argument(help="project name")],
    shipyard: Annotated[Path, typer.Option("--shipyard", help="the shipyard file")],
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
) -> None:
    """Create a project from a shipyard (validated by the gateway: problems name line and field)."""

    def body() -> None:
        content = read_bytes(shipyard, "shipyard")
        with Api(Connection.resolve(endpoint, api_token)) as api:
            api.post("/api/controlPlane/v1/project",
                     {"name": name, "shipyard": base64.b64encode(content).decode("ascii")})
            stages = [s["stageName"] for s in api.get(f"/api/controlPlane/v1/project/{name}")["stages"]]
        typer.echo(f"project {name} created with stages {', '.join(stages)}")

    run(body)


@create_app.command("service")
def create_service(
    name: Annotated[str, typer.Argument(help="service name")],
    project: Annotated[str, typer.Option("--project", help="the project")],
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
) -> None:
    """Create a service in every stage of a project."""

    def body() -> None:
        with Api(Connection.resolve(endpoint, api_token)) as api:
            answer = api.post(f"/api/controlPlane/v1/project/{project}/service", {"serviceName": name})
        typer.echo(answer.get("message", f"service {name} created"))

    run(body)
