"""The worker's Faust app: its consumer when an agent runs on the Faust host, none when none does.

faust-streaming 0.15.3 can drop what it fetched while it seeks to the committed offsets, and its seek leaves
a never-committed partition where it is; the Faust host's `SeekingConsumer` seeks such partitions to their
start (agents.hosts.faust). The real fault, a worker killed before its first commit and restarted, is
tests/integration/test_worker_crash.py; here: the host installs the consumer through Faust's public surface,
which partitions it seeks, and a worker without a Faust agent starts no Faust consumer at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from tidegate.agents.hosts.faust import SeekingConsumer
from tidegate.agents.worker import build_worker
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Nothing connects: the worker is only built, never started.
    return Settings(kafka_bootstrap="127.0.0.1:9", topic_prefix="tunit.", store="memory://",
                    data_dir=tmp_path / "faust", web_enabled=False)


def test_a_worker_with_an_agent_on_the_faust_host_consumes_through_the_seeking_consumer(settings: Settings) -> None:
    app = build_worker(settings, ["approver", "sequencer"], hosts={"approver": "faust", "sequencer": "loop"},
                       consumer_group_instance_id=None)
    assert isinstance(app.consumer, SeekingConsumer)
    assert app.consumer in list(app.on_init_dependencies())  # the services Faust starts with the app


def test_a_worker_without_faust_agents_starts_no_faust_consumer(settings: Settings) -> None:
    # Faust's conductor would crash with no topic to subscribe to; the loop host's agents read on their own.
    app = build_worker(settings, ["sequencer", "approver"], hosts={"sequencer": "loop", "approver": "loop"},
                       consumer_group_instance_id=None)
    assert app.consumer not in list(app.on_init_dependencies())  # (streams.app.TidegateApp decides)
    assert type(app.consumer) is faust_aiokafka.Consumer


async def test_the_seek_to_committed_offsets_also_seeks_never_committed_input_partitions_to_their_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build_worker(settings, ["approver", "remediator"], hosts={"approver": "faust", "remediator": "faust"},
                       consumer_group_instance_id=None)
    consumer = app.consumer
    registry = TopicRegistry.from_settings(settings)
    (changelog,) = app.tables.changelog_topics
    approval, events = registry.task("approval"), registry.events
    committed: dict[TP, int | None] = {
        TP(approval, 0): 7,  # committed: Faust's own seek takes it there
        TP(approval, 1): None,  # never committed
        TP(events, 0): 0,  # committed at 0, which aiokafka does not seek either
        TP(changelog, 0): None,  # table recovery's, not the stream's
    }

    async def faust_seek_to_committed(_self: Any) -> dict[TP, int | None]:
        return committed

    sought: list[dict[TP, int]] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.append(dict(partitions))

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", faust_seek_to_committed)
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    assert await consumer.seek_to_committed() == committed
    assert sought == [{TP(approval, 1): 0, TP(events, 0): 0}]
