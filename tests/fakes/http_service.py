"""A tiny HTTP service to test against: every GET answers 200 after `delay` seconds (or `status`)."""

from __future__ import annotations

import time

from tests.fakes.loopback import LoopbackServer, QuietHandler


class SlowService(LoopbackServer):
    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.delay = delay
        self.status = status
        self.hits = 0
        service = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                service.hits += 1
                if service.delay:
                    time.sleep(service.delay)
                self.send_json(service.status, {"ok": True})

        super().__init__(Handler)
