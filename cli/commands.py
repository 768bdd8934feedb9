"""Imports every command module so that each registers itself on the app (one line each)."""

from __future__ import annotations

from tidegate.cli import (
    analytics_cmd,  # noqa: F401  (tidegate get metrics; evaluate --replay)
    approval_cmd,  # noqa: F401  (tidegate approve|decline)
    auth_cmd,  # noqa: F401  (tidegate auth --endpoint --api-token)
    connector,  # noqa: F401  (tidegate connector NAME [NAME ...])
    control_cmd,  # noqa: F401  (tidegate pause|resume|abort sequence)
    create_cmd,  # noqa: F401  (tidegate create project|service)
    evaluate,  # noqa: F401  (tidegate evaluate --slo --sli [--previous] [--output])
    gateway_cmd,  # noqa: F401  (tidegate gateway)
    get_cmd,  # noqa: F401  (tidegate get projects|stages|services|sequences|evaluations|approvals|event)
    history_cmd,  # noqa: F401  (tidegate history rebuild|follow)
    lint,  # noqa: F401  (tidegate lint PATH... [--kind] [--output text|json])
    monitoring,  # noqa: F401  (tidegate configure monitoring prometheus; tidegate alertmanager-bridge)
    resource_cmd,  # noqa: F401  (tidegate add-resource)
    schemas,  # noqa: F401  (tidegate schemas export [DIR])
    send_cmd,  # noqa: F401  (tidegate send event --file)
    simulate,  # noqa: F401  (tidegate simulate --shipyard [--respond] [--approve] TRIGGERS.jsonl)
    topics,  # noqa: F401  (tidegate topics create|list)
    trigger_cmd,  # noqa: F401  (tidegate trigger delivery|evaluation|sequence)
    watch_cmd,  # noqa: F401  (tidegate watch KEPTNCONTEXT)
    worker,  # noqa: F401
)
