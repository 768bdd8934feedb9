"""Dead letters: input an agent cannot decode or validate goes to `<prefix>dlq`, never silently away.

The DLQ record keeps the original key, value and headers byte for byte (so it can be inspected and
replayed as it was) and adds why and where from as headers:

    tidegate-dlq-reason            what is wrong, in words the sender can act on
    tidegate-dlq-source-topic      the topic, partition and offset the record was read at
    tidegate-dlq-source-partition
    tidegate-dlq-source-offset
    tidegate-dlq-agent             the agent that rejected it

A record rejected again after a replay carries only the newest set of these headers.
`DeadLetterCounter` counts the letters per agent and source topic. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tidegate.streams.codec import KafkaRecord

DLQ_HEADER_PREFIX = "tidegate-dlq-"
REASON_HEADER = f"{DLQ_HEADER_PREFIX}reason"
SOURCE_TOPIC_HEADER = f"{DLQ_HEADER_PREFIX}source-topic"
SOURCE_PARTITION_HEADER = f"{DLQ_HEADER_PREFIX}source-partition"
SOURCE_OFFSET_HEADER = f"{DLQ_HEADER_PREFIX}source-offset"
AGENT_HEADER = f"{DLQ_HEADER_PREFIX}agent"
MAX_REASON_CHARS = 2000  # a reason quoting a huge body must not make the DLQ record itself too large


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why and where from a record was rejected."""

    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    agent: str


def dead_letter_record(original: KafkaRecord, letter: DeadLetter) -> KafkaRecord:
    """The DLQ record for `original`: same key, value and headers, plus the dead-letter headers."""
    kept = tuple((name, value) for name, value in original.headers if not name.startswith(DLQ_HEADER_PREFIX))
    added = (
        (REASON_HEADER, letter.reason[:MAX_REASON_CHARS].encode("utf-8")),
        (SOURCE_TOPIC_HEADER, letter.source_topic.encode("utf-8")),
        (SOURCE_PARTITION_HEADER, str(letter.source_partition).encode("ascii")),
        (SOURCE_OFFSET_HEADER, str(letter.source_offset).encode("ascii")),
        (AGENT_HEADER, letter.agent.encode("utf-8")),
    )
    return KafkaRecord(key=original.key, value=original.value, headers=kept + added)


def read_dead_letter(record: KafkaRecord) -> DeadLetter | None:
    """The dead-letter headers of a DLQ record, or None if it has none (for tools and tests)."""
    reason = record.header(REASON_HEADER)
    if reason is None:
        return None

    def text(name: str) -> str:
        value = record.header(name)
        return value.decode("utf-8", errors="replace") if value is not None else ""

    def number(name: str) -> int:
        raw = text(name)
        return int(raw) if raw.lstrip("-").isdigit() else -1

    return DeadLetter(
        reason=reason.decode("utf-8", errors="replace"),
        source_topic=text(SOURCE_TOPIC_HEADER),
        source_partition=number(SOURCE_PARTITION_HEADER),
        source_offset=number(SOURCE_OFFSET_HEADER),
        agent=text(AGENT_HEADER),
    )


class DeadLetterCounter:
    """How many records went to the DLQ, per (agent, source topic)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, letter: DeadLetter) -> int:
        """Count one letter; returns the new count for its agent and source topic."""
        key = (letter.agent, letter.source_topic)
        self._counts[key] += 1
        return self._counts[key]

    def total(self, *, agent: str | None = None, source_topic: str | None = None) -> int:
        return sum(
            count
            for (each_agent, each_topic), count in self._counts.items()
            if agent in (None, each_agent) and source_topic in (None, each_topic)
        )

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self._counts)
