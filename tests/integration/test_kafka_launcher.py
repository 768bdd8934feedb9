"""deploy/local/kafka.py against a real JVM: start, idempotent `up`, stale pid files, stop, sessions.

Runs a second broker on a free port of its own, so the session's broker is never disturbed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from deploy.local import _process
from deploy.local import kafka as launcher
from deploy.local.kafka import BrokerState


def _free_port_pair() -> int:
    """A port p such that p and p + 1 (the controller) are free on 127.0.0.1, below the ephemeral range."""
    return _process.free_port_block(2)


def _answers(bootstrap: str) -> bool:
    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=10)
    return len(metadata.brokers) == 1


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A free port, and a TIDEGATE_HOME of its own that shares the cached broker jars."""
    home = tmp_path_factory.mktemp("tidegate-home")
    libs = launcher.fetch_libs(launcher.layout_for())  # the shared cache: fetched once per machine
    (home / "kafka" / launcher.kafka_version()).mkdir(parents=True)
    (home / "kafka" / launcher.kafka_version() / "libs").symlink_to(libs, target_is_directory=True)
    port = _free_port_pair()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIDEGATE_HOME", str(home))
        try:
            yield port
        finally:
            launcher.stop_kafka(port)  # whatever a failing test left behind


@pytest.mark.integration
def test_up_is_idempotent_down_stops_and_stale_pid_files_are_cleaned(port: int) -> None:
    bootstrap = launcher.ensure_kafka(port)
    assert bootstrap == f"127.0.0.1:{port}"
    assert _answers(bootstrap)
    first = launcher.kafka_status(port)
    assert first.state is BrokerState.RUNNING
    assert first.log_file.exists()

    assert launcher.ensure_kafka(port) == bootstrap
    assert launcher.kafka_status(port).pid == first.pid  # found running, not started again

    assert launcher.stop_kafka(port) is True
    assert launcher.kafka_status(port).state is BrokerState.STOPPED
    assert not launcher._port_open(port)
    assert launcher.stop_kafka(port) is False

    # A pid file naming a live process that is not the broker (a pid reused after a crash).
    launcher.layout_for(port).pid_file.write_text(f"{os.getpid()}\n")
    assert launcher.kafka_status(port).state is BrokerState.STALE
    launcher.ensure_kafka(port)
    again = launcher.kafka_status(port)
    assert again.state is BrokerState.RUNNING
    assert again.pid not in (os.getpid(), first.pid)
    assert launcher.stop_kafka(port) is True


@pytest.mark.integration
def test_sessions_stop_only_a_broker_a_session_started_and_no_session_still_uses(port: int) -> None:
    layout = launcher.layout_for(port)
    with launcher.kafka_session(port) as bootstrap:
        assert _answers(bootstrap)
        # Another test session (here: pid 1, always alive) joins while the broker runs.
        (layout.leases_dir / "1").write_text("1\n")
    assert launcher.kafka_status(port).state is BrokerState.RUNNING

    (layout.leases_dir / "1").unlink()
    with launcher.kafka_session(port):
        pass  # the last session out stops the broker a session started
    assert launcher.kafka_status(port).state is BrokerState.STOPPED

    launcher.ensure_kafka(port)  # like `make kafka-up` before the tests
    with launcher.kafka_session(port):
        pass
    assert launcher.kafka_status(port).state is BrokerState.RUNNING
    assert launcher.stop_kafka(port) is True


@pytest.mark.integration
def test_a_taken_controller_port_is_reported(port: int) -> None:
    # Something else holds the controller port: the launcher says so instead of starting.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port + 1))
        squatter.listen()
        with pytest.raises(launcher.KafkaLaunchError, match="controller port"):
            launcher.ensure_kafka(port)


@pytest.mark.integration
def test_up_brokers_3_starts_a_cluster_that_status_and_down_find_from_its_first_port(port: int) -> None:
    # `port` for its TIDEGATE_HOME of its own; the cluster takes six ports of its own.
    first = _process.free_port_block(6)
    try:
        assert launcher.main(["up", "--port", str(first), "--brokers", "3"]) == 0
        bootstrap = ",".join(f"127.0.0.1:{first + 2 * n}" for n in range(3))
        metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=15)
        assert sorted(metadata.brokers) == [1, 2, 3]
        assert launcher.main(["status", "--port", str(first)]) == 0  # every member runs
        assert [s.state for s in launcher.cluster_status(first)] == [BrokerState.RUNNING] * 3
        with pytest.raises(launcher.KafkaLaunchError, match="3-broker setup"):
            launcher.ensure_kafka(first, brokers=1)
    finally:
        assert launcher.main(["down", "--port", str(first)]) == 0
    assert [s.state for s in launcher.cluster_status(first)] == [BrokerState.STOPPED] * 3
    assert launcher.main(["status", "--port", str(first)]) == 3


# --- the pure parts (no JVM) ---


def test_properties_bind_loopback_on_the_port_and_the_controller_port() -> None:
    layout = launcher.KafkaLayout(home=launcher.REPO_ROOT / ".cache", version="3.9.2", port=40000)
    properties = dict(
        line.split("=", 1) for line in launcher.render_properties(layout).splitlines() if line and not line.startswith("#")
    )
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:40000,CONTROLLER://127.0.0.1:40001"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:40000"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:40001"
    assert properties["log.dirs"] == str(layout.data_dir)
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {launcher.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22  # 16 bytes, base64 without padding
        assert not cluster_id.startswith("-")
        assert set(cluster_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_version_is_pinned_in_the_pom() -> None:
    assert launcher.kafka_version().startswith("3.9.")


def test_a_cluster_member_lists_every_voter_and_replicates_by_three() -> None:
    home = launcher.REPO_ROOT / ".cache"
    members = [launcher.KafkaLayout(home, "3.9.2", port, node_id=node, cluster=(20000, 20002, 20004))
               for node, port in enumerate((20000, 20002, 20004), start=1)]
    second = dict(
        line.split("=", 1) for line in launcher.render_properties(members[1]).splitlines() if line and not line.startswith("#")
    )
    assert second["node.id"] == "2"
    assert second["listeners"] == "PLAINTEXT://127.0.0.1:20002,CONTROLLER://127.0.0.1:20003"
    assert second["controller.quorum.voters"] == "1@127.0.0.1:20001,2@127.0.0.1:20003,3@127.0.0.1:20005"
    assert second["default.replication.factor"] == second["offsets.topic.replication.factor"] == "3"
    assert second["min.insync.replicas"] == second["transaction.state.log.min.isr"] == "2"
    assert second["unclean.leader.election.enable"] == "false"
    assert len({layout.data_dir for layout in members}) == len({layout.run_dir for layout in members}) == 3


def test_the_default_port_and_test_ports_lie_below_the_ephemeral_range() -> None:
    assert launcher.DEFAULT_PORT + 1 < 32768
    first = _process.free_port_block(6)
    assert first > 1024 and first + 6 <= 32768


# --- waiting for a start, with a stand-in broker (a Python process writing a log) ---

def _stand_in(tmp_path: Path, script: str) -> tuple[launcher.KafkaLayout, int]:
    layout = launcher.KafkaLayout(tmp_path, "3.9.2", _process.free_port_block(2))
    layout.run_dir.mkdir(parents=True)
    with open(layout.log_file, "ab") as log:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT)
    return layout, child.pid


def test_a_start_fails_at_once_when_the_broker_exits(tmp_path: Path) -> None:
    layout, pid = _stand_in(tmp_path, "print('recovering', flush=True); raise SystemExit(1)")
    with pytest.raises(launcher.KafkaLaunchError, match="exited while starting"):
        launcher._wait_ready({layout: pid}, timeout=600)


def test_a_start_waits_while_the_log_grows_and_gives_up_when_it_stalls(tmp_path: Path) -> None:
    # Writes for a while (a broker recovering its logs), then goes silent (a hung broker).
    script = "import sys, time\nfor i in range(30):\n    print('recovering segment', i, flush=True); time.sleep(0.1)\ntime.sleep(600)"
    layout, pid = _stand_in(tmp_path, script)
    try:
        while not layout.log_file.read_text():  # the interpreter has started
            assert _process.is_alive(pid)
            time.sleep(0.05)
        with pytest.raises(launcher.KafkaLaunchError, match="wrote nothing to its log for 2 s"):
            launcher._wait_ready({layout: pid}, timeout=2.0)
        assert "recovering segment 29" in layout.log_file.read_text(), "it gave up while the log still grew"
        assert not _process.is_alive(pid), "a broker that never became ready is stopped"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
