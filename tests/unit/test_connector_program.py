"""run_program: argument lists, exit codes, bounded output, timeouts, cancellation, a clean environment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tidegate.connectors.runtime import ProgramStartError, run_program
from tidegate.connectors.runtime import program as program_module

PY = sys.executable


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan may wait to be reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def gone(pid: int) -> bool:
    for _ in range(100):  # bounded: 5 s
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_exit_code_and_output_are_reported() -> None:
    result = await run_program([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert result.exit_code == 3 and not result.ok
    assert result.stdout.strip() == "out"
    assert result.stderr.strip() == "err"
    assert result.tail() == "err"


async def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    hostile = "; touch pwned; $(touch pwned2)"
    result = await run_program([PY, "-c", "import sys; print(sys.argv[1])", hostile], cwd=tmp_path)
    assert result.stdout.strip() == hostile
    assert list(tmp_path.iterdir()) == []


async def test_long_output_keeps_head_and_tail() -> None:
    result = await run_program(
        [PY, "-c", "print('FIRST'); print('x' * 100000); print('LAST')"], output_limit=1000
    )
    assert result.stdout.startswith("FIRST")
    assert result.stdout.rstrip().endswith("LAST")
    assert "bytes of output dropped" in result.stdout
    assert len(result.stdout) < 1200


async def test_a_timeout_kills_the_program_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    script = (
        "import subprocess, sys, time;"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    result = await run_program([PY, "-c", script], timeout=1.0)
    assert result.timed_out and result.exit_code is None
    assert await gone(int(pid_file.read_text())), "the program's child survived the timeout"


async def test_cancelling_the_caller_kills_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = asyncio.create_task(run_program(
        [PY, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"]
    ))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(int(pid_file.read_text())), "the program survived the cancellation"


async def test_a_missing_program_raises_a_start_error_that_says_so() -> None:
    with pytest.raises(ProgramStartError, match="was not found"):
        await run_program(["no-such-program-tidegate"])
    with pytest.raises(ProgramStartError, match="non-empty list"):
        await run_program([])


async def test_the_connectors_own_secrets_do_not_reach_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_KAFKA_SASL_PASSWORD", "hunter2")
    result = await run_program([PY, "-c", "import os; print(sorted(os.environ))"], env={"MINE": "1"})
    assert "TIDEGATE_KAFKA_SASL_PASSWORD" not in result.stdout
    assert "'MINE'" in result.stdout


async def test_captured_lines_survive_truncation() -> None:
    result = await run_program(
        [PY, "-c", "print('{\"tidegate\": {\"a\": 1}}'); print('y' * 50000)"],
        output_limit=200, capture=lambda line: line.startswith('{"tidegate"'),
    )
    assert result.captured == ('{"tidegate": {"a": 1}}',)


# --- a program cannot read its parent's environment through /proc (issue 16) -------------------------

PEEK = """
import asyncio, importlib.util, json, os, subprocess, sys
spec = importlib.util.spec_from_file_location("program", sys.argv[1])
program = importlib.util.module_from_spec(spec)
sys.modules["program"] = program
spec.loader.exec_module(program)
peek = ["cat", f"/proc/{os.getpid()}/environ"]
before = subprocess.run(peek, capture_output=True, text=True).stdout
result = asyncio.run(program.run_program(peek, timeout=30))
print(json.dumps({"before": before, "stdout": result.stdout, "stderr": result.stderr, "exit": result.exit_code}))
"""


def interpreter_for(user: int | None) -> str | None:
    """A Python that `user` may run (the venv's may live where only root can read)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run([candidate, "-c", "pass"], user=user, capture_output=True, cwd="/", check=False)
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate
    return None


def test_a_program_cannot_read_the_environment_of_the_process_that_started_it() -> None:
    """The attack: a program cats /proc/<parent>/environ, where the parent's secrets are. As a user without
    CAP_SYS_PTRACE (root has it: then the connector runs programs as another user, see the command tests)."""
    user = 65534 if os.geteuid() == 0 else None
    python = interpreter_for(user)
    if python is None:
        pytest.skip("no Python the unprivileged user may run")
    secret = f"s3cret-{uuid.uuid4().hex}"
    source = Path(program_module.__file__).resolve()
    answer = subprocess.run(
        [python, "-c", PEEK, str(source)], user=user, cwd="/", capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "TIDEGATE_SECRET_PROBE": secret}, check=True,
    )
    seen = json.loads(answer.stdout)
    assert secret in seen["before"], "the attack should work against a process that did not protect itself"
    assert secret not in seen["stdout"] + seen["stderr"]
    assert seen["exit"] != 0 and "Permission denied" in seen["stderr"]
