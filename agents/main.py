"""The worker app built from the environment, for `faust -A tidegate.agents.main:app worker`.

`TIDEGATE_AGENTS` (comma-separated) chooses the agents; the default is all of them.
"""

from __future__ import annotations

import os

from tidegate.agents.worker import build_worker
from tidegate.streams.settings import Settings

_chosen = [name.strip() for name in os.environ.get("TIDEGATE_AGENTS", "").split(",") if name.strip()]
app = build_worker(Settings(), _chosen or None)
