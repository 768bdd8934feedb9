"""The worker app built from the environment, for `faust -A tidegate.agents.main:app worker`.

`TIDEGATE_AGENTS` (comma-separated) chooses the agents; the default is all of them.
`TIDEGATE_AGENT_HOSTS` (`agent=host,...`) runs an agent on another host than `agents.worker.HOSTS`.
"""

from __future__ import annotations

import os

from tidegate.agents.worker import HOSTS_ENV, build_worker, hosts_from_env
from tidegate.streams.settings import Settings

_chosen = [name.strip() for name in os.environ.get("TIDEGATE_AGENTS", "").split(",") if name.strip()]
app = build_worker(Settings(), _chosen or None, hosts=hosts_from_env(os.environ.get(HOSTS_ENV, "")))
