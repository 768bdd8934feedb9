"""The worker's static group membership id (`agents.worker.claim_instance_id`): stable across a crash of the
same worker, never shared by two live ones."""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from tidegate.agents.worker import claim_instance_id

CHILD_WAIT = 60.0  # seconds a child may take to report its id


def _claim_and_hold(data_dir: Path, report: Connection) -> None:
    report.send(claim_instance_id(data_dir))
    signal.pause()  # holds the claim until killed


def _claim_and_exit(data_dir: Path, report: Connection) -> None:
    report.send(claim_instance_id(data_dir))


def _in_child(target: object, data_dir: Path) -> tuple[multiprocessing.process.BaseProcess, str]:
    context = multiprocessing.get_context("fork")  # the child has this module already: no second import
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=target, args=(data_dir, send), daemon=True)
    child.start()
    if not receive.poll(CHILD_WAIT):
        child.kill()
        raise AssertionError(f"the child claimed no id within {CHILD_WAIT:.0f} s")
    return child, receive.recv()


def test_two_claims_in_one_directory_differ_and_name_the_host(tmp_path: Path) -> None:
    first, second = claim_instance_id(tmp_path), claim_instance_id(tmp_path)
    assert first != second
    assert first.rsplit("-", 1)[1] == "0" and second.rsplit("-", 1)[1] == "1"
    assert first.rsplit("-", 1)[0] == second.rsplit("-", 1)[0]  # same host, same directory
    assert claim_instance_id(tmp_path / "other").rsplit("-", 1)[0] != first.rsplit("-", 1)[0]


def test_a_worker_killed_9_leaves_its_id_to_the_next_and_a_live_one_keeps_it(tmp_path: Path) -> None:
    holder, held = _in_child(_claim_and_hold, tmp_path)
    try:
        beside, other = _in_child(_claim_and_exit, tmp_path)  # while the holder lives: another id
        beside.join(CHILD_WAIT)
        assert other != held
        os.kill(holder.pid or 0, signal.SIGKILL)
        holder.join(CHILD_WAIT)
        assert holder.exitcode == -signal.SIGKILL
        successor, taken_over = _in_child(_claim_and_exit, tmp_path)
        successor.join(CHILD_WAIT)
        assert taken_over == held  # the restarted worker is the same static member
    finally:
        if holder.is_alive():
            holder.kill()
            holder.join(CHILD_WAIT)


@pytest.mark.parametrize("hostname", ["pod/with:odd chars", ""])
def test_the_id_is_a_legal_group_instance_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostname: str) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: hostname)
    claimed = claim_instance_id(tmp_path)
    assert claimed and all(c.isalnum() or c in "._-" for c in claimed)
