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
from connectors.cli import auth_cmd  # noqa: F401  (tidegate auth --endpoint --api-token)
from connectors.cli import create_cmd  # noqa: F401  (tidegate create project|service)
from connectors.cli import resource_cmd  # noqa: F401  (tidegate add-resource)
from connectors.cli import trigger_cmd  # noqa: F401  (tidegate trigger delivery|evaluation|sequence)
from connectors.cli import send_cmd  # noqa: F401  (tidegate send event --file)
from connectors.cli import approval_cmd  # noqa: F401  (tidegate approve|decline)
from connectors.cli import get_cmd  # noqa: F401  (tidegate get projects|stages|services|sequences|evaluations|approvals|event)
from connectors.cli import control_cmd  # noqa: F401  (tidegate pause|resume|abort sequence)
from connectors.cli import watch_cmd  # noqa: F401  (tidegate watch KEPTNCONTEXT)
from connectors.cli import gateway_cmd  # noqa: F401  (tidegate gateway)
from connectors.cli import history_cmd  # noqa: F401  (tidegate history rebuild|follow)
from connectors.analytics import cli as analytics_cli  # noqa: F401  (tidegate get metrics; evaluate --replay)
