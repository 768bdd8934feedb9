"""A real Alertmanager on loopback for tests and the demo (Debian package `prometheus-alertmanager`, 0.25).

    python -m deploy.local.alertmanager up [--port 19195] [--webhook-url URL]
    python -m deploy.local.alertmanager status|down [--port 19195]

Python API: `ensure_alertmanager(port, config) -> url` (starts it, or rewrites the config and reloads a
running one), `webhook_config(url)` (Keptn's routing: alerts with `severity=webhook` go to one webhook),
`stop_alertmanager(port)`. State lives in `$TIDEGATE_HOME/alertmanager-<port>/`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from deploy.local import _process
from deploy.local._process import DaemonError, Instance

BINARY = "prometheus-alertmanager"
PACKAGE = "prometheus-alertmanager"
DEFAULT_PORT = 19195

# Alerts go nowhere unless a webhook is configured: enough for tests that read alerts back over the API.
SILENT_CONFIG: dict[str, Any] = {
    "route": {"receiver": "nowhere", "group_by": ["alertname"]},
    "receivers": [{"name": "nowhere"}],
}


def webhook_config(
    url: str, group_wait: str = "10s", group_interval: str = "10s", repeat_interval: str = "1m"
) -> dict[str, Any]:
    """Keptn's prometheus-service routing: `severity=webhook` alerts go to `url` (the Alertmanager bridge)."""
    return {
        "route": {
            "receiver": "nowhere",
            "group_by": ["alertname"],
            "routes": [
                {
                    "receiver": "tidegate",
                    "matchers": ['severity="webhook"'],
                    "group_wait": group_wait,
                    "group_interval": group_interval,
                    "repeat_interval": repeat_interval,
                }
            ],
        },
        "receivers": [
            {"name": "nowhere"},
            {"name": "tidegate", "webhook_configs": [{"url": url, "send_resolved": True}]},
        ],
    }


def _argv(binary: str, instance: Instance) -> list[str]:
    return [
        binary,
        f"--config.file={instance.state_dir / 'alertmanager.yml'}",
        f"--storage.path={instance.data_dir}",
        f"--web.listen-address={_process.LOOPBACK}:{instance.port}",
        # Empty: no gossip cluster, so it does not bind 0.0.0.0:9094.
        "--cluster.listen-address=",
    ]


def ensure_alertmanager(
    port: int = DEFAULT_PORT,
    config: Mapping[str, Any] | None = None,
    *,
    home: Path | None = None,
    timeout: float = 60.0,
) -> str:
    """Make sure an Alertmanager with `config` (default: silent) serves on 127.0.0.1:`port`; return its URL."""
    binary = _process.ensure_debian_package(BINARY, PACKAGE, packaged_services=("prometheus-alertmanager",))
    instance = Instance.at("alertmanager", port, home)
    instance.state_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(config if config is not None else SILENT_CONFIG), sort_keys=False)
    (instance.state_dir / "alertmanager.yml").write_text(text)
    return _process.start_or_reload(instance, binary, _argv(binary, instance), timeout)


def stop_alertmanager(port: int = DEFAULT_PORT, home: Path | None = None) -> bool:
    return _process.stop(Instance.at("alertmanager", port, home), BINARY)


def alertmanager_status(port: int = DEFAULT_PORT, home: Path | None = None) -> str:
    return _process.status_line(Instance.at("alertmanager", port, home), BINARY)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.alertmanager", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--webhook-url", help="send severity=webhook alerts here (the Tidegate Alertmanager bridge)")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            config = webhook_config(args.webhook_url) if args.webhook_url else None
            print(f"alertmanager ready at {ensure_alertmanager(args.port, config)}")
        elif args.action == "down":
            stopped = stop_alertmanager(args.port)
            print("alertmanager stopped" if stopped else f"alertmanager on port {args.port} was not running")
        else:
            print(alertmanager_status(args.port))
    except DaemonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
