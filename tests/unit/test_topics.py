"""The topic registry, the provisioning plan, the settings they are built from, and the Faust app's topics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from tidegate.streams.app import TidegateApp, create_app, worker_command
from tidegate.streams.kafka import TopicState, confluent_config, plan_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import STANDARD_TASKS, TopicRegistry, TopicSpec


class TestRegistry:
    registry = TopicRegistry(prefix="acme.", partitions=6, dlq_partitions=2, resources_partitions=1)

    def test_names_come_from_the_prefix(self) -> None:
        assert self.registry.events == "acme.events"
        assert self.registry.audit == "acme.audit"
        assert self.registry.resources == "acme.resources"
        assert self.registry.dlq == "acme.dlq"
        assert self.registry.task("get-sli") == "acme.tasks.get-sli"
        assert self.registry.app_id("sequencer") == "acme.sequencer"

    def test_changelog_name_is_fausts(self) -> None:
        # Faust names a table's changelog `<app id>-<table>-changelog` (faust/tables/base.py).
        assert self.registry.changelog("sequencer", "sequences") == "acme.sequencer-sequences-changelog"

    def test_an_agents_logical_destination_names_its_topic(self) -> None:
        assert self.registry.destination("events") == "acme.events"
        assert self.registry.destination("tasks.deployment") == "acme.tasks.deployment"
        with pytest.raises(ValueError):
            self.registry.destination("tasks.bad name")

    def test_task_of_reverses_task(self) -> None:
        assert self.registry.task_of("acme.tasks.deployment") == "deployment"
        assert self.registry.task_of("acme.events") is None
        assert self.registry.task_of("other.tasks.deployment") is None

    @pytest.mark.parametrize("bad", ["", "a.b", "with space", "ü"])
    def test_task_names_that_would_break_topic_names(self, bad: str) -> None:
        with pytest.raises(ValueError, match="task name"):
            self.registry.task(bad)

    def test_co_partitioned_topics_share_the_partition_count(self) -> None:
        tables = [("sequencer", "sequences"), ("evaluator", "evaluations")]
        names = self.registry.co_partitioned(STANDARD_TASKS, tables)
        assert "acme.events" in names
        assert "acme.audit" in names
        assert "acme.tasks.evaluation" in names
        assert "acme.evaluator-evaluations-changelog" in names
        assert {self.registry.spec(name).partitions for name in names} == {6}

    def test_specs(self) -> None:
        specs = {spec.name: spec for spec in self.registry.specs(["deployment"], [("sequencer", "sequences")])}
        assert set(specs) == {
            "acme.events",
            "acme.tasks.deployment",
            "acme.audit",
            "acme.sequencer-sequences-changelog",
            "acme.resources",
            "acme.dlq",
        }
        assert specs["acme.resources"].compacted
        assert specs["acme.resources"].partitions == 1
        assert specs["acme.sequencer-sequences-changelog"].compacted
        assert specs["acme.dlq"].partitions == 2
        assert not specs["acme.events"].compacted

    def test_standard_tasks_are_provisioned_by_default(self) -> None:
        names = {spec.name for spec in self.registry.specs()}
        assert {self.registry.task(task) for task in STANDARD_TASKS} <= names

    def test_spec_of_a_foreign_topic(self) -> None:
        with pytest.raises(ValueError, match="not one of Tidegate's topics"):
            self.registry.spec("other.events")


class TestPlan:
    wanted = [
        TopicSpec("acme.events", 6),
        TopicSpec("acme.resources", 1, {"cleanup.policy": "compact"}),
    ]

    def test_missing_topics_are_created(self) -> None:
        plan = plan_topics(self.wanted, {})
        assert plan.to_create == self.wanted
        assert plan.problems == []

    def test_matching_topics_are_left_alone(self) -> None:
        actual = {
            "acme.events": TopicState("acme.events", 6, "delete"),
            "acme.resources": TopicState("acme.resources", 1, "compact"),
        }
        plan = plan_topics(self.wanted, actual)
        assert plan.to_create == []
        assert plan.in_place == ["acme.events", "acme.resources"]
        assert plan.problems == []

    def test_mismatches_are_reported_with_what_to_do(self) -> None:
        actual = {
            "acme.events": TopicState("acme.events", 3, "delete"),
            "acme.resources": TopicState("acme.resources", 1, "delete"),
        }
        plan = plan_topics(self.wanted, actual)
        assert plan.to_create == []
        assert len(plan.problems) == 2
        partitions, policy = plan.problems
        assert "acme.events" in partitions and "3" in partitions and "6" in partitions
        assert "--partitions" in partitions
        assert "acme.resources" in policy and "compact" in policy

    def test_compact_delete_counts_as_compacted(self) -> None:
        actual = {"acme.resources": TopicState("acme.resources", 1, "compact,delete")}
        assert plan_topics(self.wanted[1:], actual).problems == []


class TestSettings:
    def test_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TIDEGATE_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
        monkeypatch.setenv("TIDEGATE_TOPIC_PREFIX", "staging.")
        monkeypatch.setenv("TIDEGATE_PARTITIONS", "24")
        monkeypatch.setenv("TIDEGATE_STORE", "memory://")
        settings = Settings()
        assert settings.kafka_bootstrap == "k1:9092,k2:9092"
        assert settings.faust_broker == "kafka://k1:9092;kafka://k2:9092"
        assert TopicRegistry.from_settings(settings).events == "staging.events"
        assert settings.partitions == 24
        assert settings.store == "memory://"

    def test_a_rocksdb_store_is_refused_with_what_to_use_instead(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The RocksDB store was removed (docs/ARCHITECTURE.md, "Tables and recovery"): a configured one
        # must not start a worker on another store silently.
        monkeypatch.setenv("TIDEGATE_STORE", "rocksdb://")
        with pytest.raises(ValidationError, match=r"RocksDB store was removed.*TIDEGATE_STORE=memory://"):
            Settings()

    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("TIDEGATE_KAFKA_BOOTSTRAP", "TIDEGATE_KAFKA_PORT", "TIDEGATE_TOPIC_PREFIX", "TIDEGATE_PARTITIONS"):
            monkeypatch.delenv(name, raising=False)
        settings = Settings()
        assert settings.kafka_bootstrap == "127.0.0.1:19092"
        assert settings.topic_prefix == "tidegate."
        assert settings.partitions == 12
        assert settings.store == "memory://"
        assert settings.web_bind == "127.0.0.1"

    def test_secret_never_in_repr_or_str(self) -> None:
        settings = Settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="tidegate",
            kafka_sasl_password="hunter2-secret",
        )
        assert "hunter2-secret" not in repr(settings)
        assert "hunter2-secret" not in str(settings)
        assert confluent_config(settings)["sasl.password"] == "hunter2-secret"

    def test_sasl_needs_credentials(self) -> None:
        with pytest.raises(ValidationError, match="TIDEGATE_KAFKA_SASL_PASSWORD"):
            Settings(kafka_security_protocol="SASL_PLAINTEXT")

    def test_bad_prefix_is_explained(self) -> None:
        with pytest.raises(ValidationError, match="letters, digits"):
            Settings(topic_prefix="my prefix/")

    def test_as_env_reproduces_the_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = Settings(kafka_bootstrap="k:1", topic_prefix="t1.", partitions=4, web_enabled=True)
        for name, value in settings.as_env().items():
            monkeypatch.setenv(name, value)
        assert Settings() == settings


class TestFaustApp:
    """The app factory's guarantees, checked on the app object (no broker needed)."""

    @pytest.fixture
    def app(self, tmp_path: Path) -> TidegateApp:
        settings = Settings(topic_prefix="acme.", partitions=6, store="memory://", data_dir=tmp_path, web_port=6070)
        return create_app(settings, "sequencer")

    def test_configuration(self, app: TidegateApp) -> None:
        conf = app.conf
        assert conf.id == "acme.sequencer"
        assert conf.topic_partitions == 6
        assert conf.consumer_auto_offset_reset == "earliest"
        assert conf.processing_guarantee.value == "at_least_once"
        assert isinstance(conf.producer_partitioner, DefaultPartitioner)  # murmur2
        assert conf.web_enabled is False
        assert conf.web_bind == "127.0.0.1"

    def test_channels_carry_raw_bytes_with_registry_partitions(self, app: TidegateApp) -> None:
        events = app.channels.events
        assert events.get_topic_name() == "acme.events"
        assert events.partitions == 6
        assert events.key_serializer == "raw"
        assert events.value_serializer == "raw"
        assert app.channels.resources.config == {"cleanup.policy": "compact"}
        assert app.channels.task("get-sli").get_topic_name() == "acme.tasks.get-sli"
        assert app.channels.task("get-sli") is app.channels.task("get-sli")

    def test_agents_must_run_at_concurrency_one(self, app: TidegateApp) -> None:
        with pytest.raises(ValueError, match="concurrency"):
            app.agent(app.channels.events, concurrency=4)

    def test_worker_command_carries_the_web_choice(self, tmp_path: Path) -> None:
        off = worker_command("tidegate.agents.main:app", Settings(data_dir=tmp_path))
        assert off[-1] == "--without-web"
        on = worker_command("tidegate.agents.main:app", Settings(data_dir=tmp_path, web_enabled=True, web_port=6071))
        assert on[on.index("--web-bind") + 1] == "127.0.0.1"
        assert on[on.index("--web-port") + 1] == "6071"

    def test_faust_creates_no_topics(self, app: TidegateApp) -> None:
        # Faust's own topic creation could end a worker when the broker restarted (NodeNotReadyError from
        # `_really_create_topic`): the app creates its tables' changelogs itself, and has no leader topic.
        assert app.conf.topic_allow_declare is False
        assert app.conf.topic_disable_leader is True

    def test_an_app_without_agents_or_tables_starts_no_faust_consumer(self, app: TidegateApp) -> None:
        # Its conductor would subscribe to nothing and crash (a worker whose agents all run on the loop host).
        services = list(app.on_init_dependencies())
        assert app.consumer not in services and app.topics not in services
        assert app.producer in services

    def test_an_app_with_an_agent_starts_faust_consumer(self, app: TidegateApp) -> None:
        @app.agent(app.channels.events, name="listener")
        async def listener(stream: object) -> None:
            async for _ in stream:  # type: ignore[attr-defined]
                pass

        services = list(app.on_init_dependencies())
        assert app.consumer in services and app.topics in services

    async def test_tasks_from_start_run_when_the_app_starts(self, app: TidegateApp) -> None:
        started = asyncio.Event()

        @app.task_from_start
        async def early() -> None:
            started.set()

        await app.on_start()  # not after table recovery, which is where `app.task`s start
        try:
            await asyncio.wait_for(started.wait(), 10)
        finally:
            await app.stop()

    def test_options_cannot_change_the_guarantees(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="processing_guarantee"):
            create_app(Settings(data_dir=tmp_path), "x", processing_guarantee="exactly_once")
