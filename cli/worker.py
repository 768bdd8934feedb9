"""`tidegate worker`: run the agents (sequencer, approver, evaluator, remediator) in one Faust worker."""

from __future__ import annotations

import typer


def worker(
    agents: str = typer.Option("", help="Comma-separated agents to run (default: all)."),
    loglevel: str = typer.Option("info", help="Log level."),
) -> None:
    """Run Tidegate's agents on Kafka until stopped (Ctrl-C or SIGTERM)."""
    import os

    from faust import Worker

    from tidegate.agents.worker import HOSTS_ENV, build_worker, hosts_from_env
    from tidegate.streams.settings import Settings

    chosen = [name.strip() for name in agents.split(",") if name.strip()] or None
    faust_app = build_worker(Settings(), chosen, hosts=hosts_from_env(os.environ.get(HOSTS_ENV, "")))
    Worker(faust_app, loglevel=loglevel).execute_from_commandline()
