"""The Sock Shop demo's deployment program (demo code, not product): deployments as local processes.

The command connector runs it for the `deployment`, `release`, `rollback` and `action` (scaling)
tasks (see `examples/sockshop/command/config.yaml`):

    python -m examples.sockshop.deploy --home DIR run      # the task in $TIDEGATE_EVENT_FILE
    python -m examples.sockshop.deploy --home DIR status
    python -m examples.sockshop.deploy --home DIR down     # stop every replica started under DIR

Each stage has one port; replicas of the release that serves it share the port (SO_REUSEPORT), so
scaling out is starting more processes, and each replica's metrics port is listed in a Prometheus
file_sd target file. `plan` decides (pure), `processes` starts and stops.
"""

from examples.sockshop.deploy.model import Environment, ReleaseSpec, Replica, Role, StageState
from examples.sockshop.deploy.plan import (
    Decision,
    Outcome,
    Request,
    RequestError,
    decide,
    reconcile,
    request_from_event,
)
from examples.sockshop.deploy.processes import DeployError, DeployHome, apply, down, job_name

__all__ = [
    "Decision",
    "DeployError",
    "DeployHome",
    "Environment",
    "Outcome",
    "ReleaseSpec",
    "Replica",
    "Request",
    "RequestError",
    "Role",
    "StageState",
    "apply",
    "decide",
    "down",
    "job_name",
    "reconcile",
    "request_from_event",
]
