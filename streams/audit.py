"""The audit topic's contents: every event an agent consumed or emitted, plus state transitions.

Everything on `audit` is a CloudEvent in the same binary mode as `events`, so one codec reads it all:
- consumed and emitted events appear unchanged (same id, type and data);
- a state transition (a sequence queued, a task timed out, a remediation step, ...) is an event of
  type `sh.tidegate.audit.<agent>.<kind>` (e.g. `sh.tidegate.audit.sequencer.finished`) whose id is
  the transition's deterministic id, with the keptnContext and the transition's fields as data.
Consumers (history store, analytics, notifications) drop ids they have already seen, so replays
and redeliveries are harmless. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import KafkaRecord, encode_fields

TRANSITION_PREFIX = "sh.tidegate.audit."


def transition_type(agent: str, kind: str) -> str:
    return f"{TRANSITION_PREFIX}{agent}.{kind}"


def transition_fields(
    fields: dict[str, Any], optional: dict[str, Any | None], detail: dict[str, Any]
) -> dict[str, Any]:
    """A transition's fields as a JSON dict: all of `fields`, those of `optional` that are set, and
    `detail` when it is not empty (records carry no nulls, so readers treat absent and empty alike)."""
    out = dict(fields)
    out.update({name: value for name, value in optional.items() if value is not None})
    if detail:
        out["detail"] = detail
    return out


def transition_event(
    *, agent: str, kind: str, id: str, time: datetime, keptn_context: str | None, data: dict[str, Any]
) -> KeptnEvent:
    """A state transition as an audit CloudEvent."""
    return KeptnEvent(**_envelope(agent, kind, id, time, keptn_context), data=data)


def transition_record(
    *,
    agent: str,
    kind: str,
    id: str,
    time: datetime,
    keptn_context: str | None,
    data: dict[str, Any],
    key: Key,
) -> KafkaRecord:
    """The audit record of a state transition: `encode(transition_event(...), key)`, byte for byte, without
    building the event (agents write one or two per input, so the model was a large part of their cost)."""
    return encode_fields(_envelope(agent, kind, id, time, keptn_context), data, key)


def _envelope(agent: str, kind: str, id: str, time: datetime, keptn_context: str | None) -> dict[str, Any]:
    # The one definition of a transition's CloudEvent attributes, for both of its forms above.
    return {
        "id": id,
        "type": transition_type(agent, kind),
        "source": f"tidegate/{agent}",
        "time": time,
        "shkeptncontext": keptn_context,
    }


@dataclass(frozen=True, slots=True)
class Transition:
    agent: str
    kind: str
    event: KeptnEvent


def as_transition(event: KeptnEvent) -> Transition | None:
    """The transition an audit event records, or None for a consumed/emitted Keptn event."""
    if not event.type.startswith(TRANSITION_PREFIX):
        return None
    agent, _, kind = event.type[len(TRANSITION_PREFIX) :].partition(".")
    return Transition(agent=agent, kind=kind, event=event) if agent and kind else None
