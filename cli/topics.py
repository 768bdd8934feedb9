"""`tidegate topics create|list`: provision Tidegate's topics and show what the broker has."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError

from tidegate.streams.kafka import ProvisionError, describe_topics, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import SEQUENCER_STATE, STANDARD_TASKS, TopicRegistry

topics_app = typer.Typer(help="Create and list Tidegate's Kafka topics.", no_args_is_help=True)

BootstrapOption = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers (default $TIDEGATE_KAFKA_BOOTSTRAP)")
]
PrefixOption = Annotated[str | None, typer.Option("--prefix", help="topic prefix (default $TIDEGATE_TOPIC_PREFIX)")]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        typer.echo(f"error: invalid settings: {problems}", err=True)
        raise typer.Exit(2) from error


@topics_app.command("create")
def create(
    bootstrap: BootstrapOption = None,
    prefix: PrefixOption = None,
    partitions: Annotated[
        int | None, typer.Option("--partitions", min=1, help="partitions of events, task topics and audit")
    ] = None,
    replication_factor: Annotated[int | None, typer.Option("--replication-factor", min=1)] = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", help="an extra task topic to create (repeatable); Keptn's standard tasks always are"),
    ] = None,
) -> None:
    """Create the missing topics (idempotent); existing topics that do not match are reported."""
    settings = _settings(
        kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions, replication_factor=replication_factor
    )
    registry = TopicRegistry.from_settings(settings)
    tasks = list(dict.fromkeys([*STANDARD_TASKS, *(task or [])]))
    try:
        # The sequencer's state topic too (the worker creates it when missing, given the rights).
        report = provision_topics(settings, registry.specs(tasks, [SEQUENCER_STATE]))
    except (ProvisionError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    for name in report.created:
        typer.echo(f"created  {name}")
    for name in report.existing:
        typer.echo(f"exists   {name}")
    for problem in report.problems:
        typer.echo(f"problem: {problem}", err=True)
    if not report.ok:
        raise typer.Exit(1)


@topics_app.command("list")
def list_topics(bootstrap: BootstrapOption = None, prefix: PrefixOption = None) -> None:
    """List the topics under the prefix with their partition counts and cleanup policies."""
    settings = _settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    try:
        states = describe_topics(settings, prefix=settings.topic_prefix)
    except ProvisionError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    if not states:
        typer.echo(f"no topics start with {settings.topic_prefix!r}; run `tidegate topics create`")
        return
    width = max(len(name) for name in states)
    for name in sorted(states):
        state = states[name]
        typer.echo(f"{name:<{width}}  partitions={state.partitions:<3} cleanup.policy={state.cleanup_policy}")

