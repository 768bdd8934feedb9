"""The one topic provisioner: create Tidegate's topics with the right partition counts and cleanup
policies, idempotently (the CLI's `tidegate topics create`, the test fixtures and the connector
runtime's state topics all go through it).

`plan_topics` (pure) compares the wanted specs with what the broker has; `provision_topics` runs
the plan through confluent-kafka's AdminClient; `topic_partitions` says how many partitions topics have. Existing topics are never changed: a topic with the
wrong partition count cannot be fixed in place without moving keys to other partitions (which breaks
per-key order and table ownership), so it is reported with what to do instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException

# The documented import path; the module re-exports these without declaring them, hence the ignore.
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, TopicMetadata  # type: ignore[attr-defined]

from tidegate.schemas.errors import TidegateError
from tidegate.streams.kafka._config import confluent_config
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicSpec

ADMIN_TIMEOUT = 30.0


class ProvisionError(TidegateError, RuntimeError):
    """The broker refused or could not be reached; the message says which topic and why."""


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic as the broker has it."""

    name: str
    partitions: int
    cleanup_policy: str = "delete"


@dataclass(frozen=True, slots=True)
class TopicPlan:
    to_create: list[TopicSpec] = field(default_factory=list)
    in_place: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def plan_topics(wanted: Iterable[TopicSpec], actual: Mapping[str, TopicState]) -> TopicPlan:
    """What to create and what is wrong with existing topics. Pure."""
    plan = TopicPlan()
    for spec in wanted:
        state = actual.get(spec.name)
        if state is None:
            plan.to_create.append(spec)
            continue
        plan.in_place.append(spec.name)
        if state.partitions != spec.partitions:
            plan.problems.append(
                f"topic {spec.name} has {state.partitions} partitions but Tidegate needs {spec.partitions}: "
                "co-partitioned topics must match, and changing the count moves keys. Recreate it "
                "(delete it when nothing needs its data) or choose the partition count it has (--partitions)."
            )
        if spec.compacted and "compact" not in state.cleanup_policy:
            plan.problems.append(
                f"topic {spec.name} has cleanup.policy={state.cleanup_policy} but must be compacted: "
                f"run `kafka-configs --alter --entity-type topics --entity-name {spec.name} "
                "--add-config cleanup.policy=compact` or recreate it"
            )
    return plan


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(confluent_config(settings))


def topic_partitions(settings: Settings, names: Iterable[str], *, timeout: float = ADMIN_TIMEOUT) -> dict[str, int]:
    """How many partitions each of `names` has on the broker; topics that do not exist (yet) are left out."""
    try:
        topics = _admin(settings).list_topics(timeout=timeout).topics
    except KafkaException as error:
        raise ProvisionError(f"could not list topics: {error}; is Kafka reachable?") from error
    return {
        name: len(topics[name].partitions)
        for name in names
        if name in topics and topics[name].error is None and topics[name].partitions
    }


def describe_topics(
    settings: Settings, *, names: Iterable[str] | None = None, prefix: str = ""
) -> dict[str, TopicState]:
    """Partition counts and cleanup policies of existing topics: those in `names` (all if None) that
    start with `prefix`. Kafka's internal `__` topics are left out."""
    return _describe(_admin(settings), names, prefix)


def _describe(admin: AdminClient, names: Iterable[str] | None, prefix: str) -> dict[str, TopicState]:
    try:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT)
    except KafkaException as error:
        raise ProvisionError(f"could not list topics: {error}; is Kafka reachable?") from error
    present = set(metadata.topics) if names is None else set(names) & set(metadata.topics)
    wanted = sorted(name for name in present if name.startswith(prefix) and not name.startswith("__"))
    if not wanted:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in wanted]
    states: dict[str, TopicState] = {}
    for resource, future in admin.describe_configs(resources, request_timeout=ADMIN_TIMEOUT).items():
        try:
            configs = future.result()
        except KafkaException as error:
            if _code(error) == KafkaError.UNKNOWN_TOPIC_OR_PART:
                # Just created by someone else and not yet known to the broker that answered: left out,
                # so the caller creates it and learns that it exists (TOPIC_ALREADY_EXISTS).
                continue
            raise ProvisionError(f"could not read the configuration of topic {resource.name}: {error}") from error
        policy = configs["cleanup.policy"].value if "cleanup.policy" in configs else "delete"
        states[resource.name] = TopicState(
            resource.name, len(metadata.topics[resource.name].partitions), policy or "delete"
        )
    return states


def provision_topics(settings: Settings, specs: Iterable[TopicSpec]) -> ProvisionReport:
    """Create the missing topics of `specs`; report existing ones that do not match."""
    specs = list(specs)
    admin = _admin(settings)
    plan = plan_topics(specs, _describe(admin, [spec.name for spec in specs], ""))
    report = ProvisionReport(existing=list(plan.in_place), problems=list(plan.problems))
    if not plan.to_create:
        return report
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=settings.replication_factor,
            config=dict(spec.config),
        )
        for spec in plan.to_create
    ]
    for name, future in admin.create_topics(new_topics, request_timeout=ADMIN_TIMEOUT).items():
        try:
            future.result()
            report.created.append(name)
        except KafkaException as error:
            if _code(error) == KafkaError.TOPIC_ALREADY_EXISTS:
                report.existing.append(name)  # created meanwhile by someone else: fine
                continue
            raise ProvisionError(f"could not create topic {name}: {error}") from error
    _wait_visible(admin, {spec.name: spec.partitions for spec in plan.to_create if spec.name in report.created})
    return report


def _code(error: KafkaException) -> int | None:
    kafka_error = error.args[0] if error.args else None
    return kafka_error.code() if isinstance(kafka_error, KafkaError) else None


def _wait_visible(admin: AdminClient, partitions: Mapping[str, int]) -> None:
    """Wait until the broker's metadata shows the new topics with all their partitions led: creation
    is acknowledged by the controller a moment before the brokers learn it (on a cluster, each broker
    on its own), and a client started in between would see no such topic, or a topic without
    partitions or leaders."""
    deadline = time.monotonic() + ADMIN_TIMEOUT
    pending = sorted(partitions)
    while pending and time.monotonic() < deadline:
        topics = admin.list_topics(timeout=ADMIN_TIMEOUT).topics
        pending = [name for name in sorted(partitions) if not _ready(topics.get(name), partitions[name])]
        if pending:
            time.sleep(0.05)
    if pending:
        raise ProvisionError(f"topics {', '.join(pending)} were created but did not appear within {ADMIN_TIMEOUT:.0f} s")


def _ready(topic: TopicMetadata | None, partitions: int) -> bool:
    """A topic's metadata lists every partition, each with a leader and no error."""
    if topic is None or topic.error is not None:
        return False
    found = topic.partitions
    return len(found) == partitions and all(p.leader >= 0 and p.error is None for p in found.values())


def delete_topics(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (tests clean up their own prefix)."""
    if not prefix:
        raise ValueError("refusing to delete topics with an empty prefix: that would be all of them")
    admin = _admin(settings)
    names = sorted(name for name in admin.list_topics(timeout=ADMIN_TIMEOUT).topics if name.startswith(prefix))
    if not names:
        return []
    for name, future in admin.delete_topics(names, request_timeout=ADMIN_TIMEOUT).items():
        try:
            future.result()
        except KafkaException as error:
            raise ProvisionError(f"could not delete topic {name}: {error}") from error
    return names
