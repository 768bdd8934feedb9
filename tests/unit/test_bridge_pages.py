"""The Bridge's pages and forms on the gateway app (in-memory sinks, SQLite history): login and
sessions, CSRF and origin checks, local mode, and actions that reach the event sink only when valid."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.bridge import install as install_bridge
from tidegate.bridge.auth import SESSION_COOKIE
from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.readside.history import HistoryStore, SeenEvent
from tidegate.schemas.events import KeptnEvent

REPO = Path(__file__).resolve().parents[2]
SHIPYARD = (REPO / "examples" / "sockshop" / "shipyard.yaml").read_bytes()
SLO = (REPO / "examples" / "sockshop" / "slo.yaml").read_bytes()
TOKEN = "bridge-unit-token"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"


class Env:
    def __init__(self, tmp_path: Path, token: str | None) -> None:
        self.events = MemoryEventSink()
        self.store = VersionedResourceStore()
        self.history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
        self.gateway = Gateway(catalog=Catalog(self.store), events=self.events, resources=MemoryResourceSink(self.store),
                               history=self.history, clock=lambda: NOW)
        self.app = create_app(self.gateway, extensions=(install_bridge,), api_token=token)
        headers = {"x-token": token} if token else {}
        api = TestClient(self.app, base_url=BASE, headers=headers)
        shipyard = base64.b64encode(SHIPYARD).decode()
        assert api.post("/api/controlPlane/v1/project", json={"name": "sockshop", "shipyard": shipyard}).status_code == 201
        assert api.post("/api/controlPlane/v1/project/sockshop/service", json={"serviceName": "carts"}).status_code == 201
        self.browser = TestClient(self.app, base_url=BASE, follow_redirects=False)
        self.clock = NOW

    def ingest(self, type_: str, stage: str, context: str, *, triggeredid: str | None = None, source: str = "x",
               event_id: str | None = None, **data: Any) -> KeptnEvent:
        self.clock += timedelta(seconds=1)
        fields: dict[str, Any] = {"type": f"sh.keptn.event.{type_}", "source": source, "time": self.clock,
                                  "shkeptncontext": context, "triggeredid": triggeredid,
                                  "data": {"project": "sockshop", "stage": stage, "service": "carts", **data}}
        if event_id:
            fields["id"] = event_id
        event = KeptnEvent(**fields)
        self.history.ingest([SeenEvent(event)])
        return event

    def log_in(self) -> None:
        answer = self.browser.post("/bridge/login", data={"token": TOKEN, "next": "/bridge/dashboard"})
        assert answer.status_code == 303, answer.text

    def csrf(self, path: str) -> str:
        page = self.browser.get(path)
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found, "the page has a form with a CSRF token"
        return found.group(1)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path, TOKEN)
    yield made
    made.history.close()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path, None)
    yield made
    made.history.close()


def waiting_for_approval(env: Env) -> KeptnEvent:
    context = str(uuid.uuid4())
    env.ingest("production.delivery.triggered", "production", context,
               configurationChange={"values": {"image": "carts:1"}})
    return env.ingest("approval.triggered", "production", context, result="pass", labels={"buildId": "9"})


# --------------------------------------------------------------------- sessions


def test_pages_ask_for_the_token_and_the_session_is_not_the_token(env: Env) -> None:
    first = env.browser.get("/bridge/project/sockshop/environment")
    assert first.status_code == 303
    assert first.headers["location"] == "/bridge/login?next=%2Fbridge%2Fproject%2Fsockshop%2Fenvironment"
    wrong = env.browser.post("/bridge/login", data={"token": "nope", "next": "/bridge/dashboard"})
    assert wrong.status_code == 401 and "not the API token" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    right = env.browser.post("/bridge/login", data={"token": TOKEN, "next": "/bridge/project/sockshop/environment"})
    assert right.status_code == 303 and right.headers["location"] == "/bridge/project/sockshop/environment"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/bridge" in cookie
    assert TOKEN not in cookie, "the cookie holds a derived session value, never the API token"
    page = env.browser.get("/bridge/project/sockshop/environment")
    assert page.status_code == 200 and "Trigger a sequence" in page.text
    # The session cookie opens the Bridge, not the API.
    session = env.browser.cookies.get(SESSION_COOKIE)
    assert env.browser.get("/api/controlPlane/v1/project", headers={"x-token": session or ""}).status_code == 401


def test_login_redirects_only_inside_the_bridge(env: Env) -> None:
    answer = env.browser.post("/bridge/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert answer.headers["location"] == "/bridge/dashboard"


def test_forms_need_the_csrf_token_and_the_same_origin(env: Env) -> None:
    env.log_in()
    approval = waiting_for_approval(env)
    form = {"triggeredid": approval.id, "decision": "approve"}
    missing = env.browser.post("/bridge/project/sockshop/approval", data=form)
    assert missing.status_code == 403 and "reload the page" in missing.text
    token = env.csrf("/bridge/project/sockshop/environment")
    other_site = env.browser.post("/bridge/project/sockshop/approval", data={**form, "csrf": token},
                                  headers={"origin": "https://evil.example"})
    assert other_site.status_code == 403
    assert env.events.events == [], "nothing was published"
    logged_out = TestClient(env.app, base_url=BASE, follow_redirects=False)
    refused = logged_out.post("/bridge/project/sockshop/approval", data={**form, "csrf": token})
    assert refused.status_code == 401 and env.events.events == []


def test_local_mode_needs_no_login_but_a_loopback_host(local: Env) -> None:
    assert local.browser.get("/bridge/dashboard").status_code == 200
    assert local.browser.get("/bridge/login").status_code == 303
    rebound = TestClient(local.app, base_url="http://attacker.example:8080", follow_redirects=False)
    answer = rebound.get("/bridge/dashboard")
    assert answer.status_code == 403 and "loopback" in answer.text
    assert rebound.get("/bridge/project/sockshop/live").status_code == 403


def test_pages_send_a_strict_content_security_policy(local: Env) -> None:
    page = local.browser.get("/bridge/dashboard")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text, "no inline script: everything comes from /bridge/static"
    assert local.browser.get("/bridge/static/bridge.js").headers["content-type"].startswith("text/javascript")
    assert local.browser.get("/bridge/static/../app.py").status_code == 404
    assert local.browser.get("/bridge/static/nothing.css").status_code == 404


# --------------------------------------------------------------------- actions


def test_approve_publishes_approval_finished_for_the_open_approval(env: Env) -> None:
    env.log_in()
    approval = waiting_for_approval(env)
    page = env.browser.get("/bridge/project/sockshop/environment")
    assert f'id="approval-{approval.id}"' in page.text and "carts:1" in page.text
    token = env.csrf("/bridge/project/sockshop/environment")
    answer = env.browser.post("/bridge/project/sockshop/approval", headers={"origin": BASE}, data={
        "csrf": token, "triggeredid": approval.id, "decision": "approve", "next": "/bridge/project/sockshop/environment"})
    assert answer.status_code == 303 and answer.headers["location"] == "/bridge/project/sockshop/environment"
    [sent] = env.events.events
    assert sent.type == "sh.keptn.event.approval.finished" and sent.triggeredid == approval.id
    assert sent.shkeptncontext == approval.shkeptncontext and sent.source == "tidegate-bridge"
    assert (sent.data["result"], sent.data["status"], sent.data["labels"]) == ("pass", "succeeded", {"buildId": "9"})
    notice = env.browser.get("/bridge/project/sockshop/environment")
    assert "approved: carts in production" in notice.text
    assert "approved: carts in production" not in env.browser.get("/bridge/project/sockshop/environment").text, \
        "the notice shows once"


def test_an_approval_that_is_no_longer_open_is_not_answered(env: Env) -> None:
    env.log_in()
    approval = waiting_for_approval(env)
    env.ingest("approval.finished", "production", approval.shkeptncontext or "", triggeredid=approval.id,
               result="pass", status="succeeded")
    token = env.csrf("/bridge/project/sockshop/environment")
    env.browser.post("/bridge/project/sockshop/approval",
                     data={"csrf": token, "triggeredid": approval.id, "decision": "decline"})
    assert env.events.events == []
    assert "no longer open" in env.browser.get("/bridge/project/sockshop/environment").text


def test_an_invalid_trigger_form_is_shown_again_with_its_problems_and_nothing_is_sent(env: Env) -> None:
    env.log_in()
    token = env.csrf("/bridge/project/sockshop/environment")
    answer = env.browser.post("/bridge/project/sockshop/trigger", data={
        "csrf": token, "kind": "delivery", "stage": "dev", "service": "carts", "image": "", "labels": "oops"})
    assert answer.status_code == 400
    assert "The sequence was not triggered" in answer.text
    assert 'name="labels" rows="2" aria-invalid="true">oops</textarea>' in answer.text, "the input is kept"
    assert env.events.events == []


def test_trigger_delivery_and_evaluation_go_through_the_api_code(env: Env) -> None:
    env.log_in()
    token = env.csrf("/bridge/project/sockshop/environment")
    delivered = env.browser.post("/bridge/project/sockshop/trigger", data={
        "csrf": token, "kind": "delivery", "stage": "dev", "service": "carts", "sequence": "delivery",
        "image": "carts:0.13.1"})
    assert delivered.status_code == 303 and "/bridge/project/sockshop/sequence/" in delivered.headers["location"]
    evaluated = env.browser.post("/bridge/project/sockshop/trigger", data={
        "csrf": token, "kind": "evaluation", "stage": "staging", "service": "carts", "timeframe": "10m"})
    assert evaluated.status_code == 303
    delivery, evaluation = env.events.events
    assert delivery.type == "sh.keptn.event.dev.delivery.triggered"
    assert delivery.data["configurationChange"] == {"values": {"image": "carts:0.13.1"}}
    assert evaluation.type == "sh.keptn.event.staging.evaluation.triggered"
    # A timeframe goes out as start and end (the evaluator refuses end and timeframe together).
    assert evaluation.data["evaluation"] == {"start": "2024-05-01T11:50:00.000Z", "end": "2024-05-01T12:00:00.000Z"}
    assert evaluated.headers["location"].endswith(evaluation.shkeptncontext or "")


def test_abort_sends_a_control_for_every_stage_the_context_touched(env: Env) -> None:
    env.log_in()
    context = str(uuid.uuid4())
    env.ingest("dev.delivery.triggered", "dev", context)
    env.ingest("staging.delivery.triggered", "staging", context)
    page = f"/bridge/project/sockshop/sequence/{context}"
    token = env.csrf(page)
    assert env.browser.post(page + "/control", data={"csrf": token, "state": "abort"}).status_code == 303
    assert sorted((e.type, e.data["stage"], e.data["state"]) for e in env.events.events) == [
        ("sh.tidegate.sequence.control", "dev", "abort"), ("sh.tidegate.sequence.control", "staging", "abort")]
    assert "abort sent" in env.browser.get(page).text
    unknown = f"/bridge/project/sockshop/sequence/{uuid.uuid4()}"
    env.browser.post(unknown + "/control", data={"csrf": token, "state": "pause"})
    assert len(env.events.events) == 2
    assert "no sequence with keptnContext" in env.browser.get(unknown).text


def test_an_evaluation_page_explains_the_verdict_and_invalidation_withdraws_it(env: Env) -> None:
    env.log_in()
    context = str(uuid.uuid4())
    evaluation_data = {
        "result": "fail", "score": 0, "sloFileContent": base64.b64encode(SLO).decode(),
        "indicatorResults": [{
            "value": {"metric": "error_rate", "value": 0.2, "comparedValue": 0.01, "success": True},
            "score": 0, "status": "fail", "keySli": True, "displayName": "Error rate",
            "passTargets": [{"criteria": "<=0.01", "targetValue": 0.01, "violated": True}], "warningTargets": []}],
    }
    finished = env.ingest("evaluation.finished", "staging", context, triggeredid="t-1", source="tidegate-evaluator",
                          result="fail", status="succeeded", evaluation=evaluation_data)
    page = f"/bridge/project/sockshop/evaluation/{finished.id}"
    text = env.browser.get(page).text
    assert "fail: the key SLI Error rate failed" in text and "&lt;=0.01" in text
    heat = env.browser.get("/bridge/project/sockshop/evaluations?stage=staging&service=carts").text
    assert 'class="heat heat-fail"' in heat
    token = env.csrf(page)
    env.browser.post(page + "/invalidate", data={"csrf": token, "reason": ""})
    assert env.events.events == [] and "say why" in env.browser.get(page).text
    env.browser.post(page + "/invalidate", data={"csrf": token, "reason": "broken load test"})
    [sent] = env.events.events
    assert sent.type == "sh.keptn.event.evaluation.invalidated" and sent.triggeredid == "t-1"
    env.history.ingest([SeenEvent(sent)])
    after = env.browser.get(page).text
    assert "This evaluation was invalidated" in after and "broken load test" in after
    assert env.browser.get("/bridge/project/sockshop/evaluation/nope").status_code == 404


def test_every_view_renders_for_an_empty_and_for_a_missing_project(env: Env) -> None:
    env.log_in()
    for view in ("environment", "sequences", "evaluations", "remediations"):
        assert env.browser.get(f"/bridge/project/sockshop/{view}").status_code == 200, view
        missing = env.browser.get(f"/bridge/project/nothing/{view}")
        assert missing.status_code == 404 and "There is no project" in missing.text
    assert env.browser.get("/bridge/dashboard").status_code == 200


class _Page:
    """Stands in for the browser's request: connected for `polls` checks, then gone."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    async def is_disconnected(self) -> bool:
        self.polls -= 1
        return self.polls < 0


async def test_the_live_channel_sends_the_version_then_a_change(env: Env) -> None:
    from tidegate.bridge import routes

    messages = routes._changes(env.gateway, _Page(polls=1), "sockshop", None)  # type: ignore[arg-type]
    first = await anext(messages)
    assert first == {"event": "version", "data": "0:"}
    event = env.ingest("dev.delivery.triggered", "dev", str(uuid.uuid4()))
    changed = await anext(messages)
    assert changed == {"event": "changed", "data": f"1:{event.id}"}
    with pytest.raises(StopAsyncIteration):
        await anext(messages)


def test_the_live_channel_needs_a_session(env: Env) -> None:
    assert env.browser.get("/bridge/project/sockshop/live").status_code == 401
    assert env.browser.get("/bridge/live").status_code == 401
    env.log_in()
    dashboard = env.browser.get("/bridge/dashboard").text
    assert 'data-live-url="/bridge/live" data-live-version="0:"' in dashboard


def test_a_paused_sequence_offers_resume_instead_of_pause(env: Env) -> None:
    from tidegate.readside.history import Transition
    from tidegate.schemas.keys import Key

    env.log_in()
    context = str(uuid.uuid4())
    triggered = env.ingest("dev.delivery.triggered", "dev", context)
    page = f"/bridge/project/sockshop/sequence/{context}"
    running = env.browser.get(page).text
    assert ">Pause</button>" in running and ">Resume</button>" not in running and ">Abort</button>" in running
    env.history.ingest([Transition(id="p1", agent="sequencer", kind="paused", time=env.clock + timedelta(seconds=1),
                                   keptn_context=context, key=Key("sockshop", "dev", "carts"), sequence="delivery",
                                   sequence_triggered_id=triggered.id)])
    paused = env.browser.get(page).text
    assert ">Pause</button>" not in paused and ">Resume</button>" in paused and ">Abort</button>" in paused
