"""`tidegate configure monitoring prometheus` (alert rules from SLOs) and `tidegate alertmanager-bridge`.

    tidegate configure monitoring prometheus --project sockshop --from examples/sockshop \\
        --stage production --service carts --for 1m --out rules.yml \\
        --alertmanager-config alertmanager.yml --bridge-url http://127.0.0.1:19180/api/alertmanager \\
        --reload http://127.0.0.1:19190
    tidegate alertmanager-bridge --port 19180

Files come from a local project folder (`--from DIR`) or from the resources topic (`--kafka`). A local
folder holds project-level files at its top (`shipyard.yaml`, `slo.yaml`, `remediation.yaml`,
`prometheus/sli.yaml`), stage-level ones in `<stage>/` and service-level ones in `<stage>/<service>/`;
the most specific SLO and remediation file win, SLI files are merged project -> stage -> service.
As in Keptn, a stage gets alert rules only if it has both an SLO and a remediation file for the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

# The planning and reloading are shared with the Prometheus connector's `monitoring.configure`
# handler (Keptn's `keptn configure monitoring prometheus`).
from tidegate.connectors.prometheus.monitoring import MonitoringError, plan_rules, reload_config

configure_app = typer.Typer(help="Configure integrations for a project.", no_args_is_help=True)
monitoring_app = typer.Typer(help="Configure monitoring: alert rules from SLOs, routed to Tidegate.",
                             no_args_is_help=True)
configure_app.add_typer(monitoring_app, name="monitoring")

SLO_FILE = "slo.yaml"
REMEDIATION_FILE = "remediation.yaml"
SLI_FILE = "prometheus/sli.yaml"
SHIPYARD_FILE = "shipyard.yaml"
_FILES = (SLO_FILE, REMEDIATION_FILE, SLI_FILE)


# -- where the files come from ------------------------------------------------------------------------


def load_project_folder(root: Path, project: str) -> Any:
    """A ResourceStore with the project's files from a local folder (layout in the module docstring)."""
    from tidegate.streams.resources import Resource, ResourceStore

    if not root.is_dir():
        raise MonitoringError(f"{root} is not a folder; --from takes the project folder (with shipyard.yaml)")
    store = ResourceStore()

    def add(path: Path, name: str, stage: str = "", service: str = "") -> None:
        if path.is_file():
            store.put(Resource.new(project, name, path.read_bytes(), stage=stage, service=service))

    for name in (SHIPYARD_FILE, *_FILES):
        add(root / name, name)
    for stage_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("prometheus",)):
        for name in _FILES:
            add(stage_dir / name, name, stage=stage_dir.name)
        for service_dir in sorted(p for p in stage_dir.iterdir() if p.is_dir() and p.name != "prometheus"):
            for name in _FILES:
                add(service_dir / name, name, stage=stage_dir.name, service=service_dir.name)
    return store


async def _read_resources_topic(timeout: float) -> Any:
    from tidegate.streams.resources import ResourceView
    from tidegate.streams.settings import Settings
    from tidegate.streams.topics import TopicRegistry

    settings = Settings()
    view = ResourceView(settings, TopicRegistry.from_settings(settings).resources)
    await view.start()
    try:
        await view.wait_ready(timeout)
    except TimeoutError:
        raise MonitoringError(
            f"the resources topic on {settings.kafka_bootstrap} could not be read within {timeout:.0f} s; "
            "is Kafka up and TIDEGATE_KAFKA_BOOTSTRAP right?"
        ) from None
    finally:
        await view.stop()
    return view.store


# -- writing and reloading ----------------------------------------------------------------------------------


def _write_yaml(path: Path, content: dict[str, Any], *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(content, sort_keys=False, allow_unicode=True)
    if private:
        # The Alertmanager config may hold the bridge's credentials: only the owner may read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
    else:
        path.write_text(text)


def _bridge_auth(credentials_file: Path | None) -> Any:
    from tidegate.connectors.prometheus.alerting import BridgeAuth
    from tidegate.gateway.alertmanager.settings import BridgeSettings

    settings = BridgeSettings()
    if credentials_file is not None:
        if settings.token or not settings.user:
            return BridgeAuth("bearer", token_file=str(credentials_file.resolve()))
        return BridgeAuth("basic", username=settings.user, password_file=str(credentials_file.resolve()))
    if settings.token:
        return BridgeAuth("bearer", token=settings.token.get_secret_value())
    if settings.user and settings.password:
        return BridgeAuth("basic", username=settings.user, password=settings.password.get_secret_value())
    raise MonitoringError(
        "the bridge only takes authenticated calls: set TIDEGATE_ALERTMANAGER_TOKEN (or _USER and _PASSWORD) "
        "as for the bridge, or give --credentials-file with the token, so Alertmanager can send it"
    )


# -- commands -----------------------------------------------------------------------------------------------


@monitoring_app.command("prometheus")
def configure_prometheus(
    project: Annotated[str, typer.Option(help="The project whose SLOs become alert rules.")],
    service: Annotated[list[str] | None, typer.Option(help="Service (repeatable); default: every service with files.")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="Stage (repeatable); default: every stage of the shipyard.")] = None,
    for_: Annotated[str, typer.Option("--for", help="How long a criterion must fail before the alert fires.")] = "1m",
    out: Annotated[Path, typer.Option(help="Prometheus rule file to write (other groups in it are kept).")] = Path("rules.yml"),
    alertmanager_config: Annotated[Path | None, typer.Option(help="Also write this alertmanager.yml routing alerts to the bridge.")] = None,
    bridge_url: Annotated[str, typer.Option(help="The bridge's webhook URL, for --alertmanager-config.")] = "http://127.0.0.1:19180/api/alertmanager",
    credentials_file: Annotated[Path | None, typer.Option(help="File holding the bridge token (or password): referenced instead of written into alertmanager.yml.")] = None,
    reload: Annotated[str | None, typer.Option(help="Prometheus base URL to reload (needs --web.enable-lifecycle).")] = None,
    reload_alertmanager: Annotated[str | None, typer.Option(help="Alertmanager base URL to reload.")] = None,
    from_: Annotated[Path | None, typer.Option("--from", help="Local project folder with shipyard, SLO, SLI and remediation files.")] = None,
    kafka: Annotated[bool, typer.Option(help="Read the files from the resources topic instead.")] = False,
    window: Annotated[str, typer.Option(help="$DURATION_SECONDS of the alert queries (Go duration).")] = "3m",
    deployment: Annotated[str, typer.Option(help="$DEPLOYMENT of the alert queries and the deployment label.")] = "primary",
    severity: Annotated[str, typer.Option(help="severity label; Alertmanager routes this one to the bridge.")] = "webhook",
) -> None:
    """Write Prometheus alert rules from the SLOs' absolute pass criteria, and Alertmanager's route to Tidegate."""
    from tidegate.connectors.prometheus import alerting
    from tidegate.connectors.prometheus.alerting import (
        AlertingError,
        AlertmanagerRouting,
        check_prometheus_duration,
    )
    from tidegate.schemas.durations import parse_duration
    from tidegate.schemas.errors import SchemaError

    try:
        check_prometheus_duration(for_)
        window_seconds = parse_duration(window).total_seconds()
        if (from_ is None) == (not kafka):
            raise MonitoringError("say where the files are: --from DIR (a local project folder) or --kafka")
        store = load_project_folder(from_, project) if from_ is not None else asyncio.run(_read_resources_topic(30.0))
        plan = plan_rules(store, project, stage, service, for_, window_seconds, deployment, severity)
        for note in plan.notes:
            typer.echo(f"note: {note}", err=True)
        if not plan.rule_sets:
            raise MonitoringError(f"no alert rules for project '{project}': see the notes above")
        existing = yaml.safe_load(out.read_text()) if out.is_file() else None
        if existing is not None and not isinstance(existing, dict):
            raise MonitoringError(f"{out} exists but is not a Prometheus rule file; choose another --out")
        _write_yaml(out, alerting.merge_rule_files(existing, *plan.rule_sets))
        for rules in plan.rule_sets:
            typer.echo(f"{out}: group '{rules.group}': {len(rules.rules)} rule(s) "
                       f"({', '.join(r['alert'] for r in rules.rules) or 'none'})")
        if alertmanager_config is not None:
            routing = AlertmanagerRouting(bridge_url, _bridge_auth(credentials_file), severity=severity)
            _write_yaml(alertmanager_config, alerting.alertmanager_config(routing), private=True)
            typer.echo(f"{alertmanager_config}: alerts with severity={severity} go to {bridge_url}")
        if reload:
            typer.echo(reload_config(reload, "Prometheus"))
        if reload_alertmanager:
            typer.echo(reload_config(reload_alertmanager, "Alertmanager"))
    except (MonitoringError, AlertingError, SchemaError, OSError, yaml.YAMLError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


def alertmanager_bridge(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1 for Alertmanager's webhook.")] = 19180,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Serve Alertmanager's webhook on 127.0.0.1: firing alerts start remediations, resolved ones close them."""
    import uvicorn

    from tidegate.gateway.alertmanager import (
        AlertmanagerBridge,
        AuthConfigError,
        BridgeSettings,
        KafkaSink,
        create_bridge_app,
    )
    from tidegate.streams.settings import Settings
    from tidegate.streams.topics import TopicRegistry

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    bridge_settings = BridgeSettings()
    try:
        bridge = AlertmanagerBridge(
            bridge_settings,
            KafkaSink(settings, bridge_settings.publish_timeout),
            TopicRegistry.from_settings(settings),
        )
    except AuthConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"Alertmanager bridge on http://127.0.0.1:{port}/api/alertmanager -> {settings.kafka_bootstrap}")
    uvicorn.run(create_bridge_app(bridge), host="127.0.0.1", port=port, log_level=log_level.lower())
