"""Run a program for a task: argument lists only, bounded output, killed on timeout or cancellation.

Never a shell string: event data reaches a program only as separate arguments or environment
values, so nothing in an event can inject a command. The program starts in a new session (its own
process group), so a timeout or a cancelled task kills the program and everything it started.

The child's environment is not the connector's: only a few harmless variables (PATH, HOME, locale,
TMPDIR, TZ) are inherited, plus what the caller passes, so the connector's own secrets (Kafka
credentials, tokens) never leak into programs run for events.

Nor can a program read them from its parent: /proc/<pid>/environ keeps the environment a process
started with, readable by every process of the same user. Before the first program starts, the
process makes itself non-dumpable (`hide_environment`: Linux prctl PR_SET_DUMPABLE=0), which makes its
/proc files (environ, mem) and ptrace closed to other processes of its user; the programs themselves
are dumpable again after exec. A process with CAP_SYS_PTRACE (root) still reads everything: a
connector running as root should start programs as another user (`user=`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import pwd
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout and of stderr kept (head and tail); the middle of longer output is dropped."""
INHERITED_ENV: tuple[str, ...] = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER")
KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when a program must stop."""
MAX_CAPTURED_LINES = 100
MAX_CAPTURED_LINE = 256 * 1024
CHUNK = 64 * 1024
PIPE_GRACE = 2.0
"""Seconds to keep reading output after the program ended (a child it left may hold the pipes)."""


PR_SET_DUMPABLE = 4
"""prctl(2) option; <linux/prctl.h>."""


class ProgramStartError(RuntimeError):  # outside TidegateError: this module is stdlib-only
    """The program could not be started (not installed, not executable, bad working directory)."""


@functools.cache
def hide_environment() -> bool:
    """Make this process non-dumpable (Linux), so programs it starts, and any other process of the same
    user without CAP_SYS_PTRACE, cannot read its /proc/<pid>/environ or memory. True when done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True, slots=True)
class RunAs:
    """The user a program runs as (the connector must be root to switch)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def of(cls, user: str | int) -> RunAs:
        """From a user name or uid; ValueError when the system has no such user."""
        try:
            entry = pwd.getpwuid(user) if isinstance(user, int) or str(user).isdigit() else pwd.getpwnam(str(user))
        except KeyError:
            raise ValueError(f"there is no user {user!r} on this system") from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True, slots=True)
class ProgramResult:
    argv: tuple[str, ...]
    exit_code: int | None
    """None when the program was killed after its timeout."""
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    captured: tuple[str, ...] = field(default=())
    """stdout lines the caller asked to keep whole (see `capture`), whatever the truncation dropped."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, chars: int = 2000) -> str:
        """The last `chars` characters of stderr, else of stdout: what a person reads first."""
        text = (self.stderr.strip() or self.stdout.strip())
        return text if len(text) <= chars else "…" + text[-chars:]


class _BoundedText:
    """Keeps the first and last `limit / 2` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        if len(self.tail) > self.half:
            cut = len(self.tail) - self.half
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> str:
        middle = f"\n…[{self.dropped} bytes of output dropped]…\n".encode() if self.dropped else b""
        return bytes(self.head + middle + self.tail).decode("utf-8", errors="replace")


def child_environment(env: Mapping[str, str] | None, inherit: Sequence[str] = INHERITED_ENV) -> dict[str, str]:
    base = {name: os.environ[name] for name in inherit if name in os.environ}
    return {**base, **(env or {})}


async def _pump(stream: asyncio.StreamReader, sink: _BoundedText, capture: Callable[[str], bool] | None,
                captured: list[str]) -> None:
    pending = b""  # the unfinished last line, for `capture` only
    while True:
        chunk = await stream.read(CHUNK)
        if not chunk:
            break
        sink.add(chunk)
        if capture is None:
            continue
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_CAPTURED_LINE:
            pending = b""  # far too long to be a result line
        for line in lines:
            _capture(line, capture, captured)
    if capture is not None and pending:
        _capture(pending, capture, captured)


def _capture(line: bytes, capture: Callable[[str], bool], captured: list[str]) -> None:
    if len(captured) >= MAX_CAPTURED_LINES or len(line) > MAX_CAPTURED_LINE:
        return
    text = line.decode("utf-8", errors="replace").rstrip("\r")
    if capture(text):
        captured.append(text)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the program's process group, SIGKILL after a grace period."""
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), KILL_GRACE)
    # Children that ignored SIGTERM, or that outlived a program which already exited.
    _signal_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


async def run_program(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    inherit_env: Sequence[str] = INHERITED_ENV,
    capture: Callable[[str], bool] | None = None,
    stdin: bytes | None = None,
    user: RunAs | None = None,
) -> ProgramResult:
    """Run `argv` to its end, its timeout (then `timed_out=True`), or the caller's cancellation
    (then the program is killed and CancelledError propagates). `user`: run as that user, with its
    group and no supplementary groups. Raises ProgramStartError."""
    if not argv or not all(isinstance(part, str) for part in argv):
        raise ProgramStartError(f"a program must be a non-empty list of strings, got {list(argv)!r}")
    hide_environment()
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(cwd) if cwd is not None else None,
            env=child_environment(env, inherit_env),
            start_new_session=True,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
        )
    except FileNotFoundError as error:
        missing = argv[0] if error.filename in (None, argv[0]) else error.filename
        raise ProgramStartError(f"cannot start {argv[0]!r}: {missing!r} was not found (is it installed and on PATH?)") from error
    except PermissionError as error:
        raise ProgramStartError(f"cannot start {argv[0]!r}: permission denied ({error})") from error
    except OSError as error:
        raise ProgramStartError(f"cannot start {argv[0]!r}: {error}") from error

    assert process.stdout is not None and process.stderr is not None
    out, err = _BoundedText(output_limit), _BoundedText(output_limit)
    captured: list[str] = []
    pumps = asyncio.gather(
        _pump(process.stdout, out, capture, captured), _pump(process.stderr, err, None, captured)
    )
    if stdin is not None and process.stdin is not None:
        process.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await process.stdin.drain()
        process.stdin.close()
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), timeout)
    except TimeoutError:
        timed_out = True
        await _stop(process)
    except asyncio.CancelledError:
        await _stop(process)
        pumps.cancel()
        raise
    # A program that exited normally may leave processes running on purpose (a "deploy" that starts
    # a service): they are not killed, but output they keep writing to our pipes is not awaited.
    try:
        await asyncio.wait_for(pumps, PIPE_GRACE)
    except TimeoutError:
        pumps.cancel()
    return ProgramResult(
        argv=tuple(argv),
        exit_code=None if timed_out else process.returncode,
        stdout=out.text(),
        stderr=err.text(),
        duration=time.monotonic() - started,
        timed_out=timed_out,
        captured=tuple(captured),
    )
