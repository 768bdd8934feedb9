"""The gateway starts its Kafka parts again after a failed start, instead of staying unready for good."""

from __future__ import annotations

import asyncio

from tidegate.gateway.kafka import start_parts


class Part:
    def __init__(self, name: str, failures: int = 0) -> None:
        self.name, self.failures, self.attempts = name, failures, 0

    async def start(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError(f"{self.name}: request timed out")


def test_a_part_that_fails_to_start_is_started_again_and_the_rest_follow_in_order() -> None:
    events, resources = Part("events"), Part("resources", failures=2)
    parts, started, retrying = [events, resources, Part("view")], [], []
    seen_reasons: list[str] = []

    async def run() -> None:
        task = asyncio.create_task(start_parts(parts, started, retrying, pauses=(0.01, 0.02)))
        while not task.done():
            seen_reasons.extend(retrying)
            await asyncio.sleep(0.001)
        await task

    asyncio.run(run())
    assert started == parts
    assert (events.attempts, resources.attempts, parts[2].attempts) == (1, 3, 1)
    assert retrying == []  # ready: no reason left for /readyz
    assert any("Part on Kafka failed (resources: request timed out)" in reason for reason in seen_reasons)


def test_a_cancelled_start_stops_retrying() -> None:
    forever = Part("events", failures=10**6)
    started: list[object] = []

    async def run() -> None:
        task = asyncio.create_task(start_parts([forever], started, [], pauses=(0.01, 0.01)))
        while forever.attempts < 3:
            await asyncio.sleep(0.005)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("start_parts ended on its own")

    asyncio.run(run())
    assert started == []
