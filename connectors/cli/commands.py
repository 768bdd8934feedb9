"""Imports every command module so that each registers itself on the app (one line each)."""

from __future__ import annotations

from connectors.cli import topics  # noqa: F401  (tidegate topics create|list)
from connectors.cli import evaluate  # noqa: F401  (tidegate evaluate --slo --sli [--previous] [--output])
from connectors.cli import simulate  # noqa: F401  (tidegate simulate --shipyard [--respond] [--approve] TRIGGERS.jsonl)
from connectors.cli import lint  # noqa: F401  (tidegate lint PATH... [--kind] [--output text|json])
from connectors.cli import schemas  # noqa: F401  (tidegate schemas export [DIR])
from connectors.cli import monitoring  # noqa: F401  (tidegate configure monitoring prometheus; tidegate alertmanager-bridge)
