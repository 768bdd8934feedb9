"""Topic provisioning and `tidegate topics` against the real broker, checked with Kafka's own admin API."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from typer.testing import CliRunner

from tidegate.cli import topics as topics_command
from tidegate.cli.main import app
from tidegate.streams.kafka import provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import STANDARD_TASKS, TopicRegistry


def broker_view(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    """(partition count, cleanup.policy) per topic, straight from the broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=15)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names if name in metadata.topics]
    policies = {
        resource.name: future.result()["cleanup.policy"].value
        for resource, future in admin.describe_configs(resources).items()
    }
    return {name: (len(metadata.topics[name].partitions), policies[name]) for name in policies}


@pytest.mark.integration
def test_provisioning_creates_the_right_partitions_and_compaction_once(tidegate_settings: Settings) -> None:
    # A prefix of its own (under the test's, so the fixture still cleans it up), partitions unlike the default.
    settings = tidegate_settings.model_copy(update={"topic_prefix": f"{tidegate_settings.topic_prefix}p.", "partitions": 6})
    registry = TopicRegistry.from_settings(settings)
    specs = registry.specs(["deployment", "custom-task"], [("sequencer", "sequences")])

    report = provision_topics(settings, specs)
    assert report.ok
    assert sorted(report.created) == sorted(spec.name for spec in specs)

    view = broker_view(settings.kafka_bootstrap, [spec.name for spec in specs])
    assert view[registry.events] == (6, "delete")
    assert view[registry.task("custom-task")] == (6, "delete")
    assert view[registry.audit] == (6, "delete")
    assert view[registry.changelog("sequencer", "sequences")] == (6, "compact")
    assert view[registry.resources] == (settings.resources_partitions, "compact")
    assert view[registry.dlq] == (settings.dlq_partitions, "delete")

    again = provision_topics(settings, specs)
    assert again.created == []
    assert sorted(again.existing) == sorted(spec.name for spec in specs)
    assert again.ok

    # The same topics wanted with another partition count: reported, not changed.
    other = settings.model_copy(update={"partitions": 8})
    mismatch = provision_topics(other, TopicRegistry.from_settings(other).specs(["deployment"]))
    assert not mismatch.ok
    assert any(registry.events in problem and "6" in problem for problem in mismatch.problems)
    assert broker_view(settings.kafka_bootstrap, [registry.events])[registry.events] == (6, "delete")


@pytest.mark.integration
def test_cli_topics_create_and_list(tidegate_settings: Settings) -> None:
    assert topics_command.topics_app  # importing the module registers `tidegate topics` on the app
    runner = CliRunner()
    prefix = f"{tidegate_settings.topic_prefix}cli."
    common = ["--bootstrap", tidegate_settings.kafka_bootstrap, "--prefix", prefix]

    created = runner.invoke(app, ["topics", "create", *common, "--partitions", "3", "--task", "smoke"])
    assert created.exit_code == 0, created.output
    registry = TopicRegistry(prefix=prefix, partitions=3)
    expected = [registry.events, registry.audit, registry.task("smoke"), *(registry.task(t) for t in STANDARD_TASKS)]
    view = broker_view(tidegate_settings.kafka_bootstrap, expected)
    assert {name: partitions for name, (partitions, _) in view.items()} == dict.fromkeys(expected, 3)
    state = registry.changelog("sequencer", "sequences")
    assert broker_view(tidegate_settings.kafka_bootstrap, [state]) == {state: (3, "compact")}

    listed = runner.invoke(app, ["topics", "list", *common])
    assert listed.exit_code == 0, listed.output
    assert f"{registry.resources}" in listed.output
    assert "cleanup.policy=compact" in listed.output

    wrong = runner.invoke(app, ["topics", "create", *common, "--partitions", "5"])
    assert wrong.exit_code == 1
    assert "has 3 partitions but Tidegate needs 5" in wrong.output
