"""What the demo's deployment program knows about a stage: its port, what serves it, what to go back to.

One stage of one service has one port (`Environment.ports`). Every replica of the release that
serves the stage listens on that port (SO_REUSEPORT), and has a metrics port of its own that
Prometheus scrapes. Blue/green is played on that one port: the new version (the canary) starts
beside the running one and then replaces it, so tests hit only the canary, as Keptn sends 100 % of
the traffic to the canary during tests; the version it replaced is remembered (`previous`) so a
rollback can bring it back.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """Keptn's deployment names: what the running release is to the stage."""

    DIRECT = "direct"
    CANARY = "canary"
    PRIMARY = "primary"


class Replica(BaseModel):
    """One running demo-service process."""

    model_config = ConfigDict(frozen=True)

    pid: int
    version: str
    metrics_port: int


class ReleaseSpec(BaseModel):
    """A release as it should run: a version, its role and how many replicas."""

    model_config = ConfigDict(frozen=True)

    version: str
    role: Role
    replicas: int = Field(ge=1)


class StageState(BaseModel):
    """The demo deployment of one service in one stage (the deployment program's own file)."""

    project: str
    stage: str
    service: str
    port: int
    live: ReleaseSpec | None = None
    """What should serve the stage's port now; None before the first deployment or after a failed first one."""
    previous: ReleaseSpec | None = None
    """What `live` replaced in the last deployment: a rollback restores it."""
    running: list[Replica] = Field(default_factory=list)
    """The processes last started for this stage (some may have died since)."""


class Environment(BaseModel):
    """The demo's settings for the deployment program, written by the demo driver (`environment.json`)."""

    ports: dict[str, int]
    """Service port per stage."""
    order_ms: float = 50.0
    """Time one `/orders` request takes to serve (see examples.sockshop.service.behaviour)."""
    order_workers: int = 2
    """Concurrent `/orders` one replica serves; the rest queue, so latency rises with load."""
