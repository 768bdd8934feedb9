"""Dead letters: input an agent cannot decode or validate goes to `<prefix>dlq`, never silently away.

The DLQ record keeps the original key, value and headers byte for byte (so it can be inspected and
replayed as it was) and adds why and where from as headers:

    tidegate-dlq-reason            what is wrong, in words the sender can act on
    tidegate-dlq-reason-code       the kind of fault, one `DeadLetterReason` value (e.g. `wrong_key`)
    tidegate-dlq-source-topic      the topic, partition and offset the record was read at
    tidegate-dlq-source-partition
    tidegate-dlq-source-offset
    tidegate-dlq-agent             the agent that rejected it

A record rejected again after a replay carries only the newest set of these headers.
`DeadLetterCounter` counts the letters per agent and source topic. Pure: no I/O.

The kind of fault is a `DeadLetterReason` named by the sender, never read back out of the words: it is
the `reason` label of `tidegate_dlq_total` (streams.metrics) and the `reason-code` header. It lives
here, beside the headers it is written to, because the dead-letter queue is streams' contract (every
home that dead-letters imports `streams.dlq` already). Records written before the code header existed
read back as `rejected`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from tidegate.streams.codec import KafkaRecord

DLQ_HEADER_PREFIX = "tidegate-dlq-"
REASON_HEADER = f"{DLQ_HEADER_PREFIX}reason"
REASON_CODE_HEADER = f"{DLQ_HEADER_PREFIX}reason-code"
SOURCE_TOPIC_HEADER = f"{DLQ_HEADER_PREFIX}source-topic"
SOURCE_PARTITION_HEADER = f"{DLQ_HEADER_PREFIX}source-partition"
SOURCE_OFFSET_HEADER = f"{DLQ_HEADER_PREFIX}source-offset"
AGENT_HEADER = f"{DLQ_HEADER_PREFIX}agent"
MAX_REASON_CHARS = 2000  # a reason quoting a huge body must not make the DLQ record itself too large


class DeadLetterReason(StrEnum):
    """The kind of fault that sent a record to the DLQ (the metric label; the words are in `reason`)."""

    UNDECODABLE = "undecodable"  # not a readable CloudEvent (the codec refused it)
    WRONG_KEY = "wrong_key"  # the Kafka key is not the event's project/stage/service
    AGENT_ERROR = "agent_error"  # the agent failed on it (a bug; the record is kept for a replay)
    REJECTED = "rejected"  # readable, but the agent cannot process it as sent


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why (`code`, and `reason` in words) and where from a record was rejected."""

    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    agent: str
    code: DeadLetterReason = DeadLetterReason.REJECTED


def dead_letter_record(original: KafkaRecord, letter: DeadLetter) -> KafkaRecord:
    """The DLQ record for `original`: same key, value and headers, plus the dead-letter headers."""
    kept = tuple((name, value) for name, value in original.headers if not name.startswith(DLQ_HEADER_PREFIX))
    added = (
        (REASON_HEADER, letter.reason[:MAX_REASON_CHARS].encode("utf-8")),
        (REASON_CODE_HEADER, letter.code.value.encode("ascii")),
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
        code=_code(text(REASON_CODE_HEADER)),
    )


def _code(raw: str) -> DeadLetterReason:
    try:
        return DeadLetterReason(raw)
    except ValueError:  # written before the code header, or by a newer writer with a kind we do not know
        return DeadLetterReason.REJECTED


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
