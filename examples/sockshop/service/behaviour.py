"""How the demo carts service behaves, by version: the facts a demo or a test relies on (pure).

- `/carts` answers in about 10 ms in version 0.11.1 and about 600 ms in 0.11.2 (the "bad release"
  a quality gate must stop), with ±10 % jitter so percentiles look like real traffic.
- `/orders` has a fixed number of workers per process; requests beyond them wait in a queue, so its
  latency rises with concurrent load on one process and falls when more processes (replicas) share it.
- Any version can be made to fail a share of `/carts` requests with HTTP 500 (error-rate SLIs, remediation).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAST_SECONDS = 0.010
SLOW_SECONDS = 0.600
# Releases with the built-in slowdown; every other version is fast.
SLOW_VERSIONS = frozenset({"0.11.2"})
JITTER = 0.10


@dataclass(frozen=True, slots=True)
class Behaviour:
    service: str = "carts"
    version: str = "0.11.1"
    carts_seconds: float = FAST_SECONDS
    failure_rate: float = 0.0
    order_workers: int = 2
    order_seconds: float = 0.050

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure rate {self.failure_rate} must be between 0 and 1")
        if self.order_workers < 1:
            raise ValueError(f"order workers {self.order_workers} must be at least 1")
        if self.carts_seconds < 0 or self.order_seconds < 0:
            raise ValueError("latencies must not be negative")

    def carts_delay(self, rng: random.Random) -> float:
        """How long one `/carts` request takes to compute."""
        return self.carts_seconds * rng.uniform(1.0 - JITTER, 1.0 + JITTER)

    def carts_fails(self, rng: random.Random) -> bool:
        return rng.random() < self.failure_rate


def behaviour_for(
    version: str,
    *,
    service: str = "carts",
    latency_ms: float | None = None,
    failure_rate: float = 0.0,
    order_workers: int = 2,
    order_ms: float = 50.0,
) -> Behaviour:
    """The behaviour of `version`, with an explicit `latency_ms` overriding the version's own."""
    if latency_ms is None:
        carts_seconds = SLOW_SECONDS if version in SLOW_VERSIONS else FAST_SECONDS
    else:
        carts_seconds = latency_ms / 1000.0
    return Behaviour(
        service=service,
        version=version,
        carts_seconds=carts_seconds,
        failure_rate=failure_rate,
        order_workers=order_workers,
        order_seconds=order_ms / 1000.0,
    )
