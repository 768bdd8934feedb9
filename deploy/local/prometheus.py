"""A real Prometheus on loopback for tests and the demo (Debian package `prometheus`, 2.42).

    python -m deploy.local.prometheus up [--port 19190] [--target JOB=HOST:PORT ...] [--rule-file F ...]
                                         [--alertmanager-url URL]
    python -m deploy.local.prometheus status|down [--port 19190]

Python API: `ensure_prometheus(port, scrape_targets, rule_files=..., alertmanager_url=...) -> base_url`
starts the instance, or rewrites its config and reloads it when it already runs (so `up` is idempotent
and is also how targets change); `reload_prometheus(url)`; `stop_prometheus(port)`.
State (config, TSDB, log, pid) lives in `$TIDEGATE_HOME/prometheus-<port>/`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from deploy.local import _process
from deploy.local._process import DaemonError, Instance

BINARY = "prometheus"
PACKAGE = "prometheus"
DEFAULT_PORT = 19190
# Fast enough that a test or the demo sees new samples within a couple of seconds.
DEFAULT_SCRAPE_INTERVAL = "1s"


@dataclass(frozen=True, slots=True)
class ScrapeJob:
    """One scrape job. Keptn names jobs `<service>-<project>-<stage>[-primary|-canary]`; SLI queries select on it."""

    job_name: str
    targets: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"
    # file_sd target files: Prometheus re-reads them by itself, so replicas can come and go without a reload.
    target_files: Sequence[str] = ()


ScrapeTargets = Mapping[str, Sequence[str]] | Sequence[ScrapeJob]


def scrape_jobs(targets: ScrapeTargets) -> list[ScrapeJob]:
    """Accept either `{job: [host:port, ...]}` or a list of `ScrapeJob`s."""
    if isinstance(targets, Mapping):
        return [ScrapeJob(job, tuple(addresses)) for job, addresses in targets.items()]
    return list(targets)


def prometheus_config(
    jobs: Sequence[ScrapeJob],
    rule_files: Sequence[str | Path] = (),
    alertmanager_url: str | None = None,
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
) -> dict[str, Any]:
    """The prometheus.yml content (pure)."""
    names = [job.job_name for job in jobs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"scrape job names must be unique, but {', '.join(duplicates)} appear more than once")
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(Path(rule).resolve()) for rule in rule_files],
        "scrape_configs": [_scrape_config(job) for job in jobs],
    }
    if alertmanager_url:
        config["alerting"] = {"alertmanagers": [_alertmanager_config(alertmanager_url)]}
    return config


def _scrape_config(job: ScrapeJob) -> dict[str, Any]:
    entry: dict[str, Any] = {"job_name": job.job_name, "metrics_path": job.metrics_path}
    if job.targets:
        static: dict[str, Any] = {"targets": list(job.targets)}
        if job.labels:
            static["labels"] = dict(job.labels)
        entry["static_configs"] = [static]
    if job.target_files:
        entry["file_sd_configs"] = [{"files": list(job.target_files), "refresh_interval": "1s"}]
    return entry


def _alertmanager_config(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"alertmanager URL {url!r} must look like http://127.0.0.1:19195")
    entry: dict[str, Any] = {"scheme": parts.scheme, "static_configs": [{"targets": [parts.netloc]}]}
    if parts.path.strip("/"):
        entry["path_prefix"] = parts.path
    return entry


def _argv(binary: str, instance: Instance) -> list[str]:
    return [
        binary,
        f"--config.file={instance.state_dir / 'prometheus.yml'}",
        f"--storage.tsdb.path={instance.data_dir}",
        f"--web.listen-address={_process.LOOPBACK}:{instance.port}",
        # Lets ensure_prometheus() change targets and rules of a running instance with POST /-/reload.
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=2d",
    ]


def ensure_prometheus(
    port: int = DEFAULT_PORT,
    scrape_targets: ScrapeTargets = (),
    *,
    rule_files: Sequence[str | Path] = (),
    alertmanager_url: str | None = None,
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
    home: Path | None = None,
    timeout: float = 60.0,
) -> str:
    """Make sure a Prometheus with this configuration serves on 127.0.0.1:`port`; return its base URL."""
    binary = _process.ensure_debian_package(BINARY, PACKAGE, packaged_services=("prometheus",))
    instance = Instance.at("prometheus", port, home)
    config = prometheus_config(scrape_jobs(scrape_targets), rule_files, alertmanager_url, scrape_interval)
    instance.state_dir.mkdir(parents=True, exist_ok=True)
    (instance.state_dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return _process.start_or_reload(instance, binary, _argv(binary, instance), timeout)


def reload_prometheus(url: str) -> None:
    """Ask a running Prometheus (or Alertmanager) to re-read its config files."""
    _process.reload_config(url)


def stop_prometheus(port: int = DEFAULT_PORT, home: Path | None = None) -> bool:
    """Stop our instance on `port`; False if none was running."""
    return _process.stop(Instance.at("prometheus", port, home), BINARY)


def prometheus_status(port: int = DEFAULT_PORT, home: Path | None = None) -> str:
    return _process.status_line(Instance.at("prometheus", port, home), BINARY)


def _parse_target(text: str) -> tuple[str, str]:
    job, sep, address = text.partition("=")
    if not sep or not job or not address:
        raise argparse.ArgumentTypeError(f"target {text!r} must look like JOB=HOST:PORT, e.g. carts-sockshop-dev=127.0.0.1:8080")
    return job, address


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.prometheus", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--target", type=_parse_target, action="append", default=[], metavar="JOB=HOST:PORT")
    parser.add_argument("--rule-file", action="append", default=[])
    parser.add_argument("--alertmanager-url")
    parser.add_argument("--scrape-interval", default=DEFAULT_SCRAPE_INTERVAL)
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            targets: dict[str, list[str]] = {}
            for job, address in args.target:
                targets.setdefault(job, []).append(address)
            url = ensure_prometheus(
                args.port,
                targets,
                rule_files=args.rule_file,
                alertmanager_url=args.alertmanager_url,
                scrape_interval=args.scrape_interval,
            )
            print(f"prometheus ready at {url}")
        elif args.action == "down":
            print("prometheus stopped" if stop_prometheus(args.port) else f"prometheus on port {args.port} was not running")
        else:
            print(prometheus_status(args.port))
    except (DaemonError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
