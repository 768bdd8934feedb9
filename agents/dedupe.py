"""Bounded deduplication of an agent's inputs, per key: the one mechanism the sequencer, the evaluator
and the remediator share.

A key remembers the inputs it applied in two small, bounded forms:
- `applied`: "<topic>:<partition>" -> the offset of the last input applied from there. A host that
  reads Kafka gives each input's `Position`, and offsets only grow within a partition, so an input at
  or below it was applied before: a replay after a crash or a rebalance. At most
  `REMEMBERED_PARTITIONS` entries (more only after repartitioning; the oldest is forgotten).
- `recent`: 8-byte digests of the last N applied input ids, oldest first (`REMEMBERED_INPUTS` by
  default): the same event sent again under a new offset (a producer's retry, the CLI resending),
  or any input when the host has no offsets (`tidegate simulate`, a test).

Only inputs that changed the key's state are remembered; an input that changed nothing changes
nothing again. Records written before this carried `seen` (up to 500 full ids, ~19 KB per key);
`migrate_seen` turns its last ids into the digest window when such a record is read (a replay after
the upgrade then reaches back as far as the window).

    Remembered          the two fields and the migration, for an agent's pydantic state model
    handled_before(applied, recent, event_id, position) -> why it is a redelivery, or None
    remember(applied, recent, event_id, position, limit) -> the new (applied, recent)
"""

from __future__ import annotations

import base64
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from pydantic import Base64UrlBytes, BaseModel, Field, model_validator

if TYPE_CHECKING:
    from tidegate.agents.kernel import Position

DIGEST_SIZE = 8  # bytes of an input id's digest in `recent`
REMEMBERED_INPUTS = 64  # input ids a key remembers by default
REMEMBERED_PARTITIONS = 8  # input partitions a key remembers an offset for (more only after repartitioning)


def input_digest(event_id: str) -> bytes:
    """The digest `recent` remembers an input id by (64 bits: no collision within a window)."""
    return blake2b(event_id.encode(), digest_size=DIGEST_SIZE).digest()


def remembers(window: bytes, digest: bytes) -> bool:
    """Whether `window` (digests laid end to end) holds `digest` at a digest boundary."""
    at = window.find(digest)
    while at >= 0:
        if at % DIGEST_SIZE == 0:
            return True
        at = window.find(digest, at + 1)
    return False


def partition_of(position: Position) -> str:
    """The key of `applied` for the input partition of `position`."""
    return f"{position.topic}:{position.partition}"


def handled_before(applied: dict[str, int], recent: bytes, event_id: str, position: Position | None) -> str | None:
    """Why the input `event_id` read at `position` was applied before (a sentence), or None if it was not."""
    if position is not None:
        last = applied.get(partition_of(position))
        if last is not None and position.offset <= last:
            return (f"event {event_id} at offset {position.offset} of {position.topic} partition "
                    f"{position.partition} was handled before (this key applied offset {last})")
    if recent and remembers(recent, input_digest(event_id)):
        return f"event {event_id} was handled before"
    return None


def remember(applied: dict[str, int], recent: bytes, event_id: str, position: Position | None,
             limit: int = REMEMBERED_INPUTS) -> tuple[dict[str, int], bytes]:
    """`applied` and `recent` once the input `event_id` read at `position` is applied (new objects; the
    arguments are not changed). `limit`: the input ids the window keeps."""
    window = recent + input_digest(event_id)
    size = DIGEST_SIZE * limit
    if len(window) > size:
        window = window[-size:]
    if position is None:
        return applied, window
    offsets = dict(applied)
    offsets[partition_of(position)] = position.offset
    while len(offsets) > REMEMBERED_PARTITIONS:  # only after repartitioning: forget the oldest
        del offsets[next(iter(offsets))]
    return offsets, window


def migrate_seen(data: Any, limit: int = REMEMBERED_INPUTS) -> Any:
    """A state record as read (a dict) with `seen` (the earlier form): its last `limit` ids become
    `recent` (base64url, as `Remembered` stores it) unless the record has `recent` already."""
    if isinstance(data, dict) and "seen" in data:
        data = dict(data)
        seen = data.pop("seen") or []
        if "recent" not in data and isinstance(seen, list):
            digests = b"".join(input_digest(str(i)) for i in seen[-limit:])
            data["recent"] = base64.urlsafe_b64encode(digests).decode()
    return data


class Remembered(BaseModel):
    """The inputs a key applied (see the module): a base of an agent's pydantic state model."""

    # "<topic>:<partition>" -> offset of the last input applied from there (bounded: REMEMBERED_PARTITIONS)
    applied: dict[str, int] = Field(default_factory=dict)
    recent: Base64UrlBytes = b""  # digests of the last applied input ids, oldest first (bounded)

    @model_validator(mode="before")
    @classmethod
    def _migrate_seen(cls, data: Any) -> Any:
        return migrate_seen(data)

    def handled_before(self, event_id: str, position: Position | None) -> str | None:
        """Why this input was applied before (a sentence), or None if it was not."""
        return handled_before(self.applied, self.recent, event_id, position)

    def remember(self, event_id: str, position: Position | None, limit: int = REMEMBERED_INPUTS) -> None:
        """Record the input as applied (this state must be the decision's own copy: it is changed)."""
        self.applied, self.recent = remember(self.applied, self.recent, event_id, position, limit)
