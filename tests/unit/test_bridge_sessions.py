"""Bridge login (issue 16): wrong tokens are throttled per address, sessions expire, logout revokes the
session on the server, and every session can be revoked through the API. Time is a fake clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.test_bridge_pages import BASE, TOKEN, Env
from tidegate.bridge.auth import (
    BACKOFF_CAP,
    FREE_FAILURES,
    SESSION_COOKIE,
    SESSION_TTL_VARIABLE,
    LoginThrottle,
    Sessions,
)

TTL = 600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def env(tmp_path: Path, clock: Clock) -> Iterator[Env]:
    made = Env(tmp_path, TOKEN)
    made.app.state.bridge_sessions = Sessions(TTL, timer=clock)
    made.app.state.bridge_throttle = LoginThrottle(timer=clock)
    yield made
    made.history.close()


def browser(env: Env, address: str = "203.0.113.7") -> TestClient:
    return TestClient(env.app, base_url=BASE, follow_redirects=False, client=(address, 50000))


def log_in(client: TestClient, token: str = TOKEN) -> int:
    return client.post("/bridge/login", data={"token": token, "next": "/bridge/dashboard"}).status_code


def test_wrong_tokens_are_throttled_per_address_with_growing_waits(env: Env, clock: Clock) -> None:
    attacker, other = browser(env), browser(env, "198.51.100.9")
    assert [log_in(attacker, f"guess-{n}") for n in range(FREE_FAILURES)] == [401] * FREE_FAILURES
    refused = attacker.post("/bridge/login", data={"token": TOKEN, "next": "/bridge/dashboard"})
    assert refused.status_code == 429, "while waiting, even the right token is not checked"
    assert refused.headers["Retry-After"] == "1"
    assert SESSION_COOKIE not in refused.cookies
    assert log_in(other) == 303, "another address is not affected"

    clock.now += 1
    assert log_in(attacker, "guess-6") == 401
    assert attacker.post("/bridge/login", data={"token": "x"}).headers["Retry-After"] == "2"
    for _ in range(30):  # keep guessing whenever allowed: the wait doubles up to its cap
        clock.now += BACKOFF_CAP
        log_in(attacker, "guess")
    assert attacker.post("/bridge/login", data={"token": "x"}).headers["Retry-After"] == str(int(BACKOFF_CAP))

    clock.now += BACKOFF_CAP
    assert log_in(attacker) == 303, "the right token after the wait logs in"
    assert log_in(attacker, "one-typo") == 401 and log_in(attacker) == 303, "a login clears the address's record"


def test_a_session_ends_at_its_time_to_live(env: Env, clock: Clock) -> None:
    client = browser(env)
    assert log_in(client) == 303
    assert client.get("/bridge/dashboard").status_code == 200
    clock.now += TTL - 1
    assert client.get("/bridge/dashboard").status_code == 200
    clock.now += 2
    expired = client.get("/bridge/dashboard")
    assert expired.status_code == 303 and expired.headers["location"].startswith("/bridge/login")
    assert client.get("/bridge/project/sockshop/live").status_code == 401


def test_logout_revokes_the_session_on_the_server(env: Env) -> None:
    client = browser(env)
    assert log_in(client) == 303
    stolen = client.cookies.get(SESSION_COOKIE)
    assert stolen and TOKEN not in stolen
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/bridge/dashboard").text)
    assert found, "the page has the logout form"
    csrf = found.group(1)
    assert client.post("/bridge/logout", data={"csrf": csrf}).status_code == 303
    replay = browser(env, "192.0.2.1")
    replay.cookies.set(SESSION_COOKIE, stolen or "", path="/bridge")
    answer = replay.get("/bridge/dashboard")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/bridge/login")


def test_every_session_can_be_revoked_through_the_api(env: Env) -> None:
    first, second = browser(env), browser(env, "192.0.2.2")
    assert log_in(first) == 303 and log_in(second) == 303
    api = TestClient(env.app, base_url=BASE)
    assert api.delete("/api/bridge/v1/sessions").status_code == 401, "the API token is needed"
    revoked = api.delete("/api/bridge/v1/sessions", headers={"x-token": TOKEN})
    assert revoked.status_code == 200 and revoked.json()["message"].startswith("2 Bridge session(s) revoked")
    assert first.get("/bridge/dashboard").status_code == 303
    assert second.get("/bridge/dashboard").status_code == 303
    assert log_in(first) == 303 and first.get("/bridge/dashboard").status_code == 200


def test_the_time_to_live_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SESSION_TTL_VARIABLE, "30m")
    assert Sessions.from_environment().ttl == 1800
    monkeypatch.setenv(SESSION_TTL_VARIABLE, "soon")
    with pytest.raises(ValueError, match=SESSION_TTL_VARIABLE):
        Sessions.from_environment()
    monkeypatch.delenv(SESSION_TTL_VARIABLE)
    assert Sessions.from_environment().ttl == 12 * 3600
