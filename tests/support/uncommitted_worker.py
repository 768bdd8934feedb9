"""The worker app of `tidegate.agents.main` that never commits an input offset on its own, for crash tests.

A worker killed -9 "before its first commit" needs a worker that has not committed yet while it already
answered: the loop host commits every `COMMIT_INTERVAL` (1 s) and Faust every `BROKER_COMMIT_INTERVAL`
(2.8 s), too soon to kill in between reliably. Here both wait an hour: run it as
`faust -A tests.support.uncommitted_worker:app worker` with `BROKER_COMMIT_INTERVAL=3600` in the environment.
"""

from __future__ import annotations

from tidegate.agents.main import app
from tidegate.streams.kafka import loop

loop.COMMIT_INTERVAL = 3600.0  # read by each loop when it schedules a commit (the loops start with the worker)

__all__ = ["app"]
