"""Drive headless Chromium from Python tests: a thin client of `driver.mjs` (Playwright, from npm).

    with Browser.start(node_dir, chromium, profile_dir, log_file) as browser:
        browser.goto("http://127.0.0.1:8080/bridge")
        browser.click("role=button[name='Approve']")
        browser.wait_text("css=.badge", "succeeded")
        browser.screenshot(path)

Every call is bounded: a step that does not complete in time fails with the step and the driver's
error, never hangs the test session. Selectors are Playwright's (css=..., role=..., text=...).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
STEP_TIMEOUT_MS = 15_000


class BrowserError(AssertionError):
    """A browser step failed; the message says which step and why."""


class Browser:
    def __init__(self, process: subprocess.Popen[str], log_file: Path) -> None:
        self.process = process
        self.log_file = log_file
        self._ids = itertools.count(1)
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="browser-driver-reader", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, node_dir: Path, chromium: str, profile_dir: Path, log_file: Path) -> Browser:
        node = shutil.which("node")
        if node is None:
            raise BrowserError("node is not installed; run `bash tests/browser/setup.sh`")
        env = {
            **os.environ,
            "TIDEGATE_NODE_DIR": str(node_dir),
            "TIDEGATE_CHROMIUM": chromium,
            "TIDEGATE_BROWSER_PROFILE": str(profile_dir),
        }
        log = open(log_file, "w")  # noqa: SIM115 - handed to the subprocess, closed when it ends
        process = subprocess.Popen(
            [node, str(HERE / "driver.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        log.close()
        browser = cls(process, log_file)
        browser.call("url", timeout=60)  # answers once Chromium is up
        return browser

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        """Run one driver step; `timeout` (seconds) bounds the wait for its answer."""
        if self.process.poll() is not None:
            raise BrowserError(f"the browser driver exited ({self.process.returncode}): {self.log_tail()}")
        request_id = next(self._ids)
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
        self.process.stdin.flush()
        while True:
            try:
                line = self._answers.get(timeout=timeout)
            except queue.Empty:
                raise BrowserError(f"browser step {op} {args} gave no answer within {timeout:.0f} s") from None
            if line is None:
                raise BrowserError(f"the browser driver exited during {op} {args}: {self.log_tail()}")
            answer = json.loads(line)
            if answer.get("id") != request_id:
                continue  # an answer to an earlier step that timed out
            if not answer.get("ok"):
                raise BrowserError(f"browser step {op} {args} failed: {answer.get('error')}")
            return answer.get("value")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(no driver output)"

    # ------------------------------------------------------------------ steps

    def goto(self, url: str) -> int | None:
        answer = self.call("goto", url=url)
        status: int | None = answer.get("status")
        return status

    def url(self) -> str:
        found: str = self.call("url")
        return found

    def click(self, selector: str, timeout_ms: int = STEP_TIMEOUT_MS) -> str:
        found: str = self.call("click", selector=selector, timeout=timeout_ms)
        return found

    def fill(self, selector: str, value: str, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        self.call("fill", selector=selector, value=value, timeout=timeout_ms)

    def check(self, selector: str, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        self.call("check", selector=selector, timeout=timeout_ms)

    def select(self, selector: str, value: str, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        self.call("select", selector=selector, value=value, timeout=timeout_ms)

    def text(self, selector: str, timeout_ms: int = STEP_TIMEOUT_MS) -> str:
        found: str = self.call("text", selector=selector, timeout=timeout_ms)
        return found

    def texts(self, selector: str) -> list[str]:
        found: list[str] = self.call("texts", selector=selector)
        return found

    def count(self, selector: str) -> int:
        found: int = self.call("count", selector=selector)
        return found

    def attribute(self, selector: str, name: str, timeout_ms: int = STEP_TIMEOUT_MS) -> str | None:
        found: str | None = self.call("attribute", selector=selector, name=name, timeout=timeout_ms)
        return found

    def wait(self, selector: str, state: str = "visible", timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        self.call("wait", timeout=timeout_ms / 1000 + 10, selector=selector, state=state, ms=timeout_ms)

    def wait_text(self, selector: str, text: str, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        """Wait until an element matching `selector` contains `text` (live updates, no reload)."""
        self.call("waitText", timeout=timeout_ms / 1000 + 10, selector=selector, text=text, ms=timeout_ms)

    def wait_url(self, pattern: str, timeout_ms: int = STEP_TIMEOUT_MS) -> str:
        found: str = self.call("waitUrl", timeout=timeout_ms / 1000 + 10, pattern=pattern, ms=timeout_ms)
        return found

    def evaluate(self, expression: str) -> Any:
        return self.call("evaluate", expression=expression)

    def screenshot(self, file: Path, full_page: bool = True) -> Path:
        file.parent.mkdir(parents=True, exist_ok=True)
        self.call("screenshot", file=str(file), fullPage=full_page)
        return file

    def problems(self) -> list[str]:
        """Console errors and uncaught page errors since the last call."""
        found: list[str] = self.call("problems")
        return found

    def dialogs(self) -> list[str]:
        found: list[str] = self.call("dialogs")
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrowserError):  # closing anyway: the process is stopped below
                self.call("close", timeout=20)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
