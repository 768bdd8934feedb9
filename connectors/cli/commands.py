"""Imports every command module so that each registers itself on the app (one line each)."""

from __future__ import annotations

from connectors.cli import (
    connector,  # noqa: F401  (tidegate connector NAME [NAME ...])
    evaluate,  # noqa: F401  (tidegate evaluate --slo --sli [--previous] [--output])
    lint,  # noqa: F401  (tidegate lint PATH... [--kind] [--output text|json])
    monitoring,  # noqa: F401  (tidegate configure monitoring prometheus; tidegate alertmanager-bridge)
    schemas,  # noqa: F401  (tidegate schemas export [DIR])
    simulate,  # noqa: F401  (tidegate simulate --shipyard [--respond] [--approve] TRIGGERS.jsonl)
    topics,  # noqa: F401  (tidegate topics create|list)
    worker,  # noqa: F401
)
