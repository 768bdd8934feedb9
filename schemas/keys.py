"""The key scheme: `project/stage/service`, the unit of order and of ownership.

All events of one service in one stage share a key, so they land on one partition, in order, and are
handled by the one worker that owns it. Events without a stage or service keep an empty segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEPARATOR = "/"


@dataclass(frozen=True, slots=True)
class Key:
    project: str
    stage: str = ""
    service: str = ""

    def __str__(self) -> str:
        return SEPARATOR.join((self.project, self.stage, self.service))

    def encode(self) -> bytes:
        return str(self).encode("utf-8")

    @classmethod
    def parse(cls, raw: str | bytes) -> Key:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        parts = text.split(SEPARATOR)
        if len(parts) != 3:
            raise ValueError(f"key {text!r} is not of the form project/stage/service")
        return cls(*parts)

    @classmethod
    def of_data(cls, data: dict[str, Any]) -> Key:
        """The key of an event from its data block (`project`, `stage`, `service`)."""
        return cls(
            project=str(data.get("project") or ""),
            stage=str(data.get("stage") or ""),
            service=str(data.get("service") or ""),
        )


def key_mismatch(raw_key: bytes | str | None, data: dict[str, Any]) -> str | None:
    """Why a record's Kafka key is not the project/stage/service of the event `data`, or None when it is (or absent).

    A mismatching key would put the event on a partition whose owner does not hold that service's
    state (co-partitioning), so such input goes to the DLQ instead of being half-handled.
    """
    expected = Key.of_data(data).encode()
    if isinstance(raw_key, str):
        raw_key = raw_key.encode("utf-8")
    if raw_key is None or raw_key == expected:
        return None
    shown = raw_key.decode("utf-8", "replace")
    return (
        f"record key {shown!r} is not the event's project/stage/service {expected.decode()!r}: "
        "producers must key Tidegate events by project/stage/service"
    )
