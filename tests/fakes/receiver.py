"""A webhook receiver (a stand-in for Slack, Teams or any HTTP endpoint): records every request.

`fail_first=N` answers the first N requests with 503 (to see retries); `status` is the answer after;
`error_body` is the body of answers of 400 and above.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tests.fakes.loopback import LoopbackServer, QuietHandler


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: str


class Receiver(LoopbackServer):
    def __init__(self, fail_first: int = 0, status: int = 200, error_body: bytes = b"unavailable") -> None:
        self.fail_first = fail_first
        self.status = status
        self.error_body = error_body
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with receiver.arrived:
                    receiver.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
                    failing = len(receiver.received) <= receiver.fail_first
                    receiver.arrived.notify_all()
                code = 503 if failing else receiver.status
                reply = b"ok" if code < 400 else receiver.error_body
                self.send_response(code)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        super().__init__(Handler)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} webhook call(s) within {timeout:.0f} s, got {len(self.received)}")
            return list(self.received)
