"""`tidegate add-resource --project P [--stage S | --all-stages] [--service V] --resource FILE [--resourceUri PATH]`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from tidegate.cli.client import Api, CliError, Connection, read_bytes, run
from tidegate.cli.options import EndpointOption, TokenOption


def add_resource(
    project: Annotated[str, typer.Option("--project", help="the project")],
    resource: Annotated[Path, typer.Option("--resource", help="the local file to upload")],
    stage: Annotated[str | None, typer.Option("--stage", help="the stage (omit for a project-level file)")] = None,
    all_stages: Annotated[bool, typer.Option("--all-stages", help="upload to every stage")] = False,
    service: Annotated[str | None, typer.Option("--service", help="the service (needs --stage or --all-stages)")] = None,
    resource_uri: Annotated[
        str | None, typer.Option("--resourceUri", "--resource-uri", help="path in the project (default: the file name)")
    ] = None,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
) -> None:
    """Upload a file (SLO, SLI, remediation, chart, test script, ...); each upload is a new version."""

    def body() -> None:
        if stage and all_stages:
            raise CliError("give either --stage or --all-stages, not both")
        if service and not (stage or all_stages):
            raise CliError("a service file belongs to a stage: add --stage S or --all-stages")
        content = read_bytes(resource, "resource")
        uri = (resource_uri or resource.name).lstrip("/")
        payload = {"resources": [{"resourceURI": uri, "resourceContent": base64.b64encode(content).decode("ascii")}]}
        with Api(Connection.resolve(endpoint, api_token)) as api:
            if all_stages:
                stages = [s["stageName"] for s in api.get(f"/api/controlPlane/v1/project/{project}")["stages"]]
            else:
                stages = [stage] if stage else [""]
            for target in stages:
                path = f"/api/resource-service/v1/project/{project}"
                if target:
                    path += f"/stage/{target}"
                if service:
                    path += f"/service/{service}"
                answer = api.post(path + "/resource", payload)
                where = "/".join(part for part in (project, target, service) if part)
                typer.echo(f"added {uri} to {where} (version {answer.get('commitID', '?')})")

    run(body)
