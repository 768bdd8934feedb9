"""`tidegate pause|resume|abort sequence --project P --keptn-context C [--stage S]`."""

from __future__ import annotations

from typing import Annotated

import typer

from tidegate.cli.client import Api, Connection, run
from tidegate.cli.options import EndpointOption, TokenOption

Project = Annotated[str, typer.Option("--project", help="the project")]
Context = Annotated[str, typer.Option("--keptn-context", help="the sequence's keptnContext")]
Stage = Annotated[str | None, typer.Option("--stage", help="only in this stage")]


def _control(state: str, project: str, context: str, stage: str | None, endpoint: str | None, token: str | None) -> None:
    body = {"state": state, "stage": stage} if stage else {"state": state}
    with Api(Connection.resolve(endpoint, token)) as api:
        answer = api.post(f"/api/controlPlane/v1/sequence/{project}/{context}/control", body)
    typer.echo(answer.get("message", f"{state} sent"))


def _group(state: str, summary: str) -> typer.Typer:
    group = typer.Typer(help=summary, no_args_is_help=True)

    @group.command("sequence", help=summary)
    def sequence(project: Project, keptn_context: Context, stage: Stage = None,
                 endpoint: EndpointOption = None, api_token: TokenOption = None) -> None:
        run(lambda: _control(state, project, keptn_context, stage, endpoint, api_token))

    return group


pause_app = _group("pause", "Pause a sequence: the running task finishes, the next one waits.")
resume_app = _group("resume", "Resume a paused sequence.")
abort_app = _group("abort", "Abort a sequence: it finishes as aborted, no follow-up sequences start.")
