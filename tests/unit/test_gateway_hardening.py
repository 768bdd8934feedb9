"""The gateway under attack (issue 16): each test performs the attack and asserts it fails, and that
ordinary use keeps working."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import tidegate.gateway.files as gateway_files
from tests.unit.test_files_limits import alias_bomb
from tests.unit.test_gateway_api import Env, b64
from tidegate.schemas.files import MAX_NODES

RESOURCES = "/api/resource-service/v1/project/sockshop/resource"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path)
    made.create_project()
    yield made
    made.history.close()


# --------------------------------------------------------------------- YAML alias bomb


def test_an_uploaded_alias_bomb_is_refused_with_its_line_and_the_limit(env: Env) -> None:
    for uri in ("slo.yaml", "shipyard.yaml"):
        answer = env.client.post(RESOURCES, json={"resources": [{"resourceURI": uri, "resourceContent": b64(alias_bomb())}]})
        assert answer.status_code == 400, answer.text
        assert f"{uri}:6: the document has more than {MAX_NODES} values" in answer.json()["message"]
    created = env.client.post("/api/controlPlane/v1/project", json={"name": "bombed", "shipyard": b64(alias_bomb())})
    assert created.status_code == 400 and f"more than {MAX_NODES} values" in created.json()["message"]
    assert env.client.get("/healthz").status_code == 200


def test_files_are_checked_off_the_event_loop(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check waits until /healthz has answered: were it on the event loop, /healthz could not."""
    healthz_answered = threading.Event()
    real_load_text = gateway_files.load_text

    def slow_load_text(*args: Any) -> Any:
        if not healthz_answered.wait(timeout=60):  # a guard against a hang, not a measurement
            raise AssertionError("/healthz did not answer while the file was being checked")
        return real_load_text(*args)

    monkeypatch.setattr(gateway_files, "load_text", slow_load_text)
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(env.client.post, RESOURCES,
                             json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64(alias_bomb())}]})
        assert env.client.get("/healthz").status_code == 200
        healthz_answered.set()
        answer = upload.result()
    assert answer.status_code == 400 and f"more than {MAX_NODES} values" in answer.json()["message"]


def test_a_check_that_takes_too_long_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stuck_load_text(*args: Any) -> Any:
        release.wait(timeout=120)
        raise AssertionError("not reached in time")

    monkeypatch.setattr(gateway_files, "load_text", stuck_load_text)
    monkeypatch.setattr(gateway_files, "CHECK_SECONDS", 0.2)
    try:
        answer = env.client.post(RESOURCES, json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64("x: 1\n")}]})
    finally:
        release.set()
    assert answer.status_code == 400
    assert "slo.yaml: checking the file took longer than 0.2 s" in answer.json()["message"]
