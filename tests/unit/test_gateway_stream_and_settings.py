"""The event stream's messages (replay, resume after Last-Event-ID, state) and the gateway's settings rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tidegate.gateway import (
    Catalog,
    Gateway,
    GatewaySettings,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
)
from tidegate.gateway.routes.stream import _messages, parse_cursor
from tidegate.readside.history import HistoryStore, SeenEvent
from tidegate.schemas.events import KeptnEvent

CONTEXT = "2d6c5b5e-1f7a-4a43-b0a4-8b2f6f0c9a11"
DATA = {"project": "sockshop", "stage": "dev", "service": "carts"}


class OneRound:
    """A request whose client leaves after the first round of messages."""

    async def is_disconnected(self) -> bool:
        return True


async def _collect(gateway: Gateway, after: str | None) -> list[dict[str, str]]:
    cursor = parse_cursor(after)
    return [message async for message in _messages(gateway, OneRound(), CONTEXT, cursor)]  # type: ignore[arg-type]


async def test_stream_replays_then_resumes_after_the_last_id(tmp_path: Path) -> None:
    store = VersionedResourceStore()
    history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    gateway = Gateway(catalog=Catalog(store), events=MemoryEventSink(), resources=MemoryResourceSink(store),
                      history=history)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    history.ingest([
        SeenEvent(KeptnEvent(id="t", type="sh.keptn.event.dev.delivery.triggered", time=t0, shkeptncontext=CONTEXT,
                             data=DATA)),
        SeenEvent(KeptnEvent(id="d", type="sh.keptn.event.deployment.triggered", time=t0.replace(second=1),
                             shkeptncontext=CONTEXT, data=DATA)),
    ])
    first = await _collect(gateway, after=None)
    # Only the batch's last message moves the resume point (a client cut off mid-batch gets it all again).
    assert [(m["event"], m["id"]) for m in first] == [("event", "0-0"), ("event", "2-0"), ("state", "2-0")]
    assert json.loads(first[0]["data"])["id"] == "t"
    assert json.loads(first[2]["data"])["state"] == "triggered"

    resumed = await _collect(gateway, after="2-0")
    assert [m["event"] for m in resumed] == ["state"]  # nothing new, only where the run stands

    # An entry stored late with an earlier time than what the client saw is still delivered.
    history.ingest([
        SeenEvent(KeptnEvent(id="late", type="sh.keptn.event.deployment.started", time=t0.replace(microsecond=500),
                             shkeptncontext=CONTEXT, triggeredid="d", data=DATA)),
    ])
    late = await _collect(gateway, after="2-0")
    assert [json.loads(m["data"])["id"] for m in late if m["event"] == "event"] == ["late"]
    assert late[0]["id"] == "3-0"
    history.close()


def test_a_token_or_loopback_local_mode_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TIDEGATE_API_TOKEN", "TIDEGATE_GATEWAY_NO_TOKEN", "TIDEGATE_GATEWAY_HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="TIDEGATE_API_TOKEN"):
        GatewaySettings()
    with pytest.raises(ValidationError, match="loopback"):
        GatewaySettings(no_token=True, host="0.0.0.0")
    assert GatewaySettings(no_token=True).api_token is None
    secured = GatewaySettings(api_token="hunter2-secret-long-enough", host="0.0.0.0")
    assert "hunter2" not in repr(secured)
