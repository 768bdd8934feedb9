"""The analytics commands of the `tidegate` CLI.

    tidegate get metrics --project P [--since 30d] [--until ISO] [--production-stage S]
                         [--failure-window 24h] [--output table|json] [--store URL]
    tidegate evaluate --replay --project P --stage S --service V --slo NEW_SLO.yaml [--since 30d]
                      [--output text|json] [--store URL]

Both ask the gateway (`--endpoint`/`--api-token`, or the `tidegate auth` configuration) unless
`--store` names a history store (e.g. `sqlite:///.cache/history.db`, which `tidegate history
follow` keeps current), in which case they compute locally from it: the same code, the same
figures. `evaluate --replay` is wired into `tidegate evaluate` (cli/evaluate.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tidegate.cli.analytics_text import render_metrics, render_whatif
from tidegate.cli.client import Api, CliError, Connection, run
from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.cli.output import OutputFormat, OutputOption
from tidegate.readside.analytics.service import (
    AnalyticsInputError,
    MetricsRequest,
    WhatIfRequest,
    metrics_report,
    parse_slo,
    whatif_report,
)
from tidegate.readside.analytics.window import DEFAULT_SINCE

EXIT_DONE = 0
EXIT_UNUSABLE_INPUT = 2

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="compute from this history store (e.g. sqlite:///.cache/history.db) instead of the gateway"),
]
SinceOption = Annotated[str, typer.Option("--since", help="how far back: 30d, 2w, 12h, 90m")]
UntilOption = Annotated[str | None, typer.Option("--until", help="end of the window, ISO 8601 (default: now)")]


def _local(store_url: str, compute: Callable[[Any], Any]) -> Any:
    from tidegate.readside.history.store import HistoryStore

    store = HistoryStore(store_url)
    try:
        return compute(store)
    except AnalyticsInputError as error:
        raise CliError(error.message, EXIT_UNUSABLE_INPUT) from None
    finally:
        store.close()


def get_metrics(
    project: Annotated[str, typer.Option("--project", help="the project")],
    since: SinceOption = DEFAULT_SINCE,
    until: UntilOption = None,
    production_stage: Annotated[
        str | None, typer.Option("--production-stage", help="the production stage (default: the shipyard's last stage)")
    ] = None,
    failure_window: Annotated[
        str | None,
        typer.Option("--failure-window", help="how long after a change a rollback/failed evaluation/problem fails it (24h)"),
    ] = None,
    store: StoreOption = None,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """DORA measures, quality-gate trends and remediation outcomes of a project, per stage and service."""

    def body() -> None:
        if store:
            request = MetricsRequest(since=since, until=until, production_stage=production_stage,
                                     failure_window=failure_window)
            report = _local(store, lambda s: metrics_report(s, project, request, datetime.now(UTC))).to_json_dict()
        else:
            with Api(Connection.resolve(endpoint, api_token)) as api:
                report = api.get("/api/analytics/v1/metrics", project=project, since=since, until=until,
                                 productionStage=production_stage, failureWindow=failure_window)
        typer.echo(json.dumps(report, indent=2) if output is OutputFormat.JSON else "\n".join(render_metrics(report)))

    run(body)


def replay_evaluations(
    *,
    project: str | None,
    stage: str | None,
    service: str | None,
    slo: Path,
    since: str,
    until: str | None,
    json_output: bool,
    store: str | None,
    endpoint: str | None,
    api_token: str | None,
) -> int:
    """`tidegate evaluate --replay`: print which stored verdicts `slo` would change; the exit code."""
    missing = [flag for flag, value in (("--project", project), ("--stage", stage), ("--service", service)) if not value]
    if missing:
        typer.echo(f"error: --replay needs {', '.join(missing)}: the service whose stored evaluations to re-score",
                   err=True)
        return EXIT_UNUSABLE_INPUT
    assert project and stage and service
    try:
        text = slo.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        typer.echo(f"error: cannot read SLO file {str(slo)!r}: {error}", err=True)
        return EXIT_UNUSABLE_INPUT
    request = WhatIfRequest(project=project, stage=stage, service=service, slo=text, since=since, until=until,
                            slo_name=f"SLO file {str(slo)!r}")
    try:
        parse_slo(text, request.slo_name)  # checked here too, so an unusable SLO exits 2 with either source
    except AnalyticsInputError as error:
        typer.echo(f"error: {error.message}", err=True)
        return EXIT_UNUSABLE_INPUT

    def body() -> None:
        if store:
            report = _local(store, lambda s: whatif_report(s, request, datetime.now(UTC))).to_json_dict()
        else:
            with Api(Connection.resolve(endpoint, api_token)) as api:
                report = api.post("/api/analytics/v1/evaluations/replay", {
                    "project": project, "stage": stage, "service": service, "slo": text, "since": since,
                    "until": until,
                })
        typer.echo(json.dumps(report, indent=2) if json_output else "\n".join(render_whatif(report)))

    try:
        run(body)
    except typer.Exit as stopped:
        return int(stopped.exit_code)
    return EXIT_DONE
