"""Follow one keptnContext through the gateway: its events and its sequence state, as they are stored.

Each `poll()` asks the datastore API for the context's events and the control plane for its
sequence state, and returns what is new: events not seen before (in time order) and the state when
it changed. Polling by event id, rather than following the server-sent event stream's positions,
never misses an event that is stored after a later one (replies carry their own times).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidegate.cli.client import Api, CliError, Connection

PAGE_SIZE = 500


def _moment(event: dict[str, Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class FeedError(RuntimeError):
    """The gateway could not be asked; the message says what it answered."""


@dataclass(frozen=True, slots=True)
class Message:
    kind: str  # event | state
    data: dict[str, Any]


class Feed:
    def __init__(self, gateway_url: str, project: str, context: str) -> None:
        self.project = project
        self.context = context
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] | None = None
        self._seen: set[str] = set()
        self._api = Api(Connection(gateway_url, None))

    def close(self) -> None:
        self._api.close()

    def poll(self) -> list[Message]:
        try:
            stored = self._api.get("/api/mongodb-datastore/event", keptnContext=self.context, pageSize=PAGE_SIZE)
            states = self._api.get(f"/api/controlPlane/v1/sequence/{self.project}", keptnContext=self.context)
        except CliError as error:
            raise FeedError(f"cannot follow {self.context}: {error.message}") from None
        new = [event for event in stored.get("events", []) if str(event.get("id")) not in self._seen]
        # The datastore answers newest first; equal times keep the order in which they were stored.
        new.reverse()
        new.sort(key=_moment)
        found = []
        for event in new:
            self._seen.add(str(event.get("id")))
            self.events.append(event)
            found.append(Message("event", event))
        current = (states.get("states") or [None])[0]
        if isinstance(current, dict) and current != self.state:
            self.state = current
            found.append(Message("state", current))
        return found
