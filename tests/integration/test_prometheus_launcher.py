"""The local Prometheus launcher: idempotent up, reload with new targets, stale pid files, clean down."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest
import yaml

from deploy.local._process import DaemonError, Instance, free_port, port_is_free
from deploy.local.prometheus import ensure_prometheus, prometheus_status, stop_prometheus

pytestmark = pytest.mark.integration


def configured_jobs(url: str) -> set[str]:
    config = yaml.safe_load(httpx.get(f"{url}/api/v1/status/config", timeout=10).json()["data"]["yaml"])
    return {job["job_name"] for job in config.get("scrape_configs") or []}


def test_up_is_idempotent_reloads_targets_survives_a_stale_pid_and_goes_down(tmp_path: Path) -> None:
    port = free_port()
    instance = Instance.at("prometheus", port, tmp_path)
    try:
        url = ensure_prometheus(port, {"first": ["127.0.0.1:1"]}, home=tmp_path)
        pid = int(instance.pid_file.read_text())
        assert configured_jobs(url) == {"first"}

        # Up again with other targets: same process, new config.
        assert ensure_prometheus(port, {"second": ["127.0.0.1:2"]}, home=tmp_path) == url
        assert int(instance.pid_file.read_text()) == pid
        assert configured_jobs(url) == {"second"}
        assert f"pid {pid}" in prometheus_status(port, tmp_path)

        # The process dies without cleaning up: the next up notices the stale pid and starts anew.
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert "not running" in prometheus_status(port, tmp_path)
        assert ensure_prometheus(port, {"third": ["127.0.0.1:3"]}, home=tmp_path) == url
        assert int(instance.pid_file.read_text()) != pid
        assert configured_jobs(url) == {"third"}
    finally:
        assert stop_prometheus(port, tmp_path)
    assert not instance.pid_file.exists()
    assert port_is_free(port)
    assert not stop_prometheus(port, tmp_path)


def test_a_port_taken_by_another_program_is_refused_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(DaemonError, match="already in use"):
            ensure_prometheus(port, {}, home=tmp_path)


def test_a_broken_config_fails_with_the_log(tmp_path: Path) -> None:
    port = free_port()
    bad_rules = tmp_path / "rules.yml"
    bad_rules.write_text("groups: [{name: x, rules: [{alert: a, expr: 'sum('}]}]\n")
    with pytest.raises(DaemonError, match="exited while starting") as raised:
        ensure_prometheus(port, {}, rule_files=[bad_rules], home=tmp_path)
    assert str(Instance.at("prometheus", port, tmp_path).log_file) in str(raised.value)
