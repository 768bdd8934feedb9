"""The topic registry: every topic's name, partition count and configuration, from one prefix.

| topic | partitions | config |
|---|---|---|
| `<prefix>events` | N | |
| `<prefix>tasks.<task>` | N | |
| `<prefix>audit` | N | |
| `<prefix>resources` | resources_partitions (1 by default) | compacted |
| `<prefix>dlq` | dlq_partitions (few) | |
| `<app id>-<table>-changelog` (agents' state: Faust tables, and the loop host's state topics) | N | compacted |

`events`, the task topics, `audit` and the agents' changelogs share the partition count N: Faust gives
partition n of every same-sized topic to the same worker, and a table's changelog entry goes to the
partition of the event being processed (the loop host, tidegate.streams.kafka.loop, writes its state
records to that partition number too), so a different count would put state on the wrong worker.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tidegate.streams.settings import Settings

# Keptn's standard tasks, provisioned by default; a shipyard may name others (`--task` in the CLI).
STANDARD_TASKS: tuple[str, ...] = (
    "deployment",
    "test",
    "evaluation",
    "release",
    "rollback",
    "approval",
    "get-sli",
    "get-action",
    "action",
)
# The sequencer's (app, table): its state topic is `changelog(*SEQUENCER_STATE)`, compacted.
SEQUENCER_STATE: tuple[str, str] = ("sequencer", "sequences")

COMPACTED: Mapping[str, str] = {"cleanup.policy": "compact"}
_NAME_PART = re.compile(r"[A-Za-z0-9_-]+")  # fullmatch: `$` would let a final newline in
TASKS_INFIX = "tasks."


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as it must exist on the broker."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def compacted(self) -> bool:
        return "compact" in self.config.get("cleanup.policy", "")


def _checked_part(what: str, value: str) -> str:
    # Dots separate the parts of a topic name; a dot inside a task name would make `tasks.a.b` ambiguous.
    if not _NAME_PART.fullmatch(value):
        raise ValueError(f"{what} {value!r} may contain only letters, digits, '_' and '-'")
    return value


@dataclass(frozen=True, slots=True)
class TopicRegistry:
    """Names and specs of Tidegate's topics under one prefix."""

    prefix: str = "tidegate."
    partitions: int = 12
    dlq_partitions: int = 3
    resources_partitions: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicRegistry:
        return cls(
            prefix=settings.topic_prefix,
            partitions=settings.partitions,
            dlq_partitions=settings.dlq_partitions,
            resources_partitions=settings.resources_partitions,
        )

    # --- names ---
    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    @property
    def resources(self) -> str:
        return f"{self.prefix}resources"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}dlq"

    def task(self, task: str) -> str:
        """`<prefix>tasks.<task>`: where `<task>.triggered` events for connectors go."""
        return f"{self.prefix}{TASKS_INFIX}{_checked_part('task name', task)}"

    def destination(self, logical: str) -> str:
        """The topic of an agent's logical destination: `events` or `tasks.<task>`."""
        if logical == "events":
            return self.events
        return self.task(logical.removeprefix(TASKS_INFIX))

    def task_of(self, topic: str) -> str | None:
        """The task a task topic carries, or None if `topic` is not one of this prefix's task topics."""
        head = f"{self.prefix}{TASKS_INFIX}"
        if topic.startswith(head) and _NAME_PART.fullmatch(topic[len(head) :]):
            return topic[len(head) :]
        return None

    def app_id(self, name: str) -> str:
        """The Faust app id (and consumer group) of an agent: prefixed, so deployments never share groups."""
        return f"{self.prefix}{_checked_part('app name', name)}"

    def changelog(self, app_name: str, table: str) -> str:
        """The changelog topic of `table` of the app `app_name`, in Faust's own naming (the loop host
        names an agent's state topic the same way, e.g. `changelog(*SEQUENCER_STATE)`)."""
        return f"{self.app_id(app_name)}-{table}-changelog"

    # --- specs ---
    def spec(self, name: str) -> TopicSpec:
        """The spec of any topic of this registry, by name."""
        if name == self.resources:
            return TopicSpec(name, self.resources_partitions, COMPACTED)
        if name == self.dlq:
            return TopicSpec(name, self.dlq_partitions)
        if name.endswith("-changelog") and name.startswith(self.prefix):
            return TopicSpec(name, self.partitions, COMPACTED)
        if name in (self.events, self.audit) or self.task_of(name) is not None:
            return TopicSpec(name, self.partitions)
        raise ValueError(f"topic {name!r} is not one of Tidegate's topics under the prefix {self.prefix!r}")

    def co_partitioned(
        self, tasks: Iterable[str] = STANDARD_TASKS, tables: Iterable[tuple[str, str]] = ()
    ) -> list[str]:
        """The topics that must share the partition count N."""
        names = [self.events, *(self.task(t) for t in tasks), self.audit]
        names += [self.changelog(app, table) for app, table in tables]
        return names

    def specs(self, tasks: Iterable[str] = STANDARD_TASKS, tables: Iterable[tuple[str, str]] = ()) -> list[TopicSpec]:
        """Every topic to provision: the co-partitioned ones plus `resources` and `dlq`."""
        names = [*self.co_partitioned(tasks, tables), self.resources, self.dlq]
        return [self.spec(name) for name in dict.fromkeys(names)]
