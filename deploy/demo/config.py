"""The demo's settings: where its state lives, its ports, its topic prefix, the story's parameters (pure).

`make demo` uses the defaults: state in `$TIDEGATE_HOME/demo` (`.cache/demo`), the gateway and Bridge
on 127.0.0.1:8080 (the CLI's default endpoint, so `tidegate get ...` works afterwards without
flags), everything else on ports of its own, topics under `tidegate-demo.`. A test gives its own home,
prefix and free ports so it never meets a running demo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from deploy.local._process import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "sockshop"
STAGES = ("dev", "staging", "production")


@dataclass(frozen=True, slots=True)
class Ports:
    # Fixed ports sit below Linux's ephemeral range (32768-60999), like the launchers' defaults: no
    # client's own source port can take one while its server restarts.
    gateway: int = 8080
    prometheus: int = 19290
    alertmanager: int = 19295
    kafka: int = 19092
    """The local broker's port, when the demo starts it (no --kafka)."""
    stages: dict[str, int] = field(default_factory=lambda: {"dev": 19381, "staging": 19382, "production": 19383})

    @classmethod
    def free(cls) -> Ports:
        """Ports nobody uses right now (for tests; the Kafka port is not used with an external broker)."""
        return cls(free_port(), free_port(), free_port(), 0, {stage: free_port() for stage in STAGES})


@dataclass(frozen=True, slots=True)
class DemoConfig:
    home: Path
    prefix: str = "tidegate-demo."
    kafka: str | None = None
    """Bootstrap servers of a broker to use; None: start (or reuse) the local broker on `ports.kafka`."""
    ports: Ports = field(default_factory=Ports)
    interactive: bool = True
    keep_running: bool = False
    """Non-interactive only: leave everything running at the end (interactive runs always do)."""
    partitions: int = 4
    project: str = "sockshop"
    service: str = "carts"
    image: str = "docker.io/keptnexamples/carts"
    good_version: str = "0.11.1"
    slow_version: str = "0.11.2"
    shoppers: int = 12
    """Concurrent users ordering in production: more than one replica serves quickly."""
    alert_for: str = "30s"
    remediation_cooldown: str = "30s"
    step_timeout: float = 240.0
    """Seconds any one step of the story may take before the demo gives up and says where it stuck."""
    summary_json: Path | None = None

    @classmethod
    def default(cls, **overrides: object) -> DemoConfig:
        home = Path(os.environ.get("TIDEGATE_HOME") or REPO_ROOT / ".cache") / "demo"
        return replace(cls(home=home.resolve()), **overrides)  # type: ignore[arg-type]

    # -- where things are -----------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self.kafka or f"127.0.0.1:{self.ports.kafka}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def bridge_ui_url(self) -> str:
        return f"{self.gateway_url}/bridge"

    @property
    def alert_webhook_url(self) -> str:
        return f"{self.gateway_url}/api/alertmanager"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    def stage_url(self, stage: str) -> str:
        return f"http://127.0.0.1:{self.ports.stages[stage]}"

    @property
    def deployments_home(self) -> Path:
        """The deployment program's folder (examples.sockshop.deploy)."""
        return self.home / "deployments"

    @property
    def pids(self) -> Path:
        return self.home / "pids"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def bin(self) -> Path:
        """Put first on the command connector's PATH: holds the `sockshop-deploy` launcher."""
        return self.home / "bin"

    @property
    def rules_file(self) -> Path:
        return self.home / "prometheus-rules.yml"

    @property
    def bridge_token_file(self) -> Path:
        return self.home / "alertmanager-bridge.token"

    @property
    def kafka_marker(self) -> Path:
        """Present when this demo started the local broker, so `down` stops it again."""
        return self.home / "kafka-started-by-demo"
