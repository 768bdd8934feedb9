"""`keptn configure monitoring prometheus`: the `sh.keptn.event.monitoring.configure` handler, and the
alert-rule planning it shares with `tidegate configure monitoring prometheus`.

Keptn's prometheus-service answered `monitoring.configure` events whose `data.type` is `prometheus`
(reference §5.4); Tidegate's Prometheus connector does the same on the `events` topic
(`PrometheusSLIConnector.follow`):

1. `sh.keptn.event.configure-monitoring.started` (same keptnContext, triggeredid = the event's id);
2. Prometheus becomes the project's SLI provider: `.tidegate/sli-provider` at project level, which
   the evaluator reads (Keptn kept it in the `lighthouse-config-<project>` ConfigMap);
3. when a rules target is configured (`TIDEGATE_PROMETHEUS_RULES_FILE`), the alert rules of the
   project's SLOs (every stage with an SLO and a remediation file for the service, as Keptn) are
   merged into that file (other groups kept), and Prometheus is asked to reload when
   `TIDEGATE_PROMETHEUS_RELOAD_URL` is set (its base URL; needs --web.enable-lifecycle);
   `TIDEGATE_PROMETHEUS_ALERT_FOR` is the rules' `for` (default 10m, Keptn's);
4. `sh.keptn.event.configure-monitoring.finished` with status, result and a message Keptn's CLI prints.

Keptn also wrote scrape jobs into Prometheus' configuration; Tidegate leaves scraping to whoever
runs Prometheus. Replies have ids derived from the configure event's id, so handling it twice (a
restart) yields the same events, which the history keeps once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from tidegate.connectors.prometheus.alerting import (
    AlertingError,
    AlertRules,
    build_alert_rules,
    merge_rule_files,
)
from tidegate.connectors.prometheus.errors import SliError
from tidegate.connectors.prometheus.sli import merge_indicators
from tidegate.schemas.errors import SchemaError, TidegateError
from tidegate.schemas.events import MONITORING_CONFIGURE_TYPE, KeptnEvent
from tidegate.schemas.files import load_text
from tidegate.schemas.ids import derived_id
from tidegate.streams.codec import DecodeError, KafkaRecord, decode
from tidegate.streams.resources import (
    REMEDIATION,
    SHIPYARD,
    SLI_PROMETHEUS,
    SLO,
    Resource,
    ResourceStore,
    ResourceView,
)
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger(__name__)

PROVIDER = "prometheus"
TASK = "configure-monitoring"
SOURCE = "tidegate-connector-prometheus"
#: The evaluator reads a key's SLI provider from this file (agents/evaluator/shell.py).
SLI_PROVIDER_FILE = ".tidegate/sli-provider"
RULES_FILE_ENV = "TIDEGATE_PROMETHEUS_RULES_FILE"
RELOAD_ENV = "TIDEGATE_PROMETHEUS_RELOAD_URL"
ALERT_FOR_ENV = "TIDEGATE_PROMETHEUS_ALERT_FOR"
KEPTN_ALERT_FOR = "10m"


class MonitoringError(TidegateError):
    """Monitoring cannot be configured as asked; the message says what to change."""


# --- planning alert rules (pure given the store) ----------------------------------------------------


@dataclass
class Plan:
    rule_sets: list[AlertRules] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _load(resource: Resource, kind: str) -> Any:
    path = "/".join(p for p in (resource.project, resource.stage, resource.service, resource.path) if p)
    return load_text(resource.text, path, kind).model


def shipyard_stages(store: ResourceStore, project: str) -> list[str]:
    resource = store.get(project, SHIPYARD)
    if resource is None:
        raise MonitoringError(f"project '{project}' has no {SHIPYARD} to take the stages from; "
                              "give --stage (repeatable) or add the shipyard")
    return list(_load(resource, "shipyard").stage_names)


def plan_rules(
    store: ResourceStore,
    project: str,
    stages: list[str] | None,
    services: list[str] | None,
    for_: str,
    window_seconds: float,
    deployment: str,
    severity: str,
) -> Plan:
    """The rule groups for every stage and service asked for. As in Keptn, a stage gets rules only
    if it has both an SLO and a remediation file for the service."""
    plan = Plan()
    chosen_stages = stages or shipyard_stages(store, project)
    known_services = sorted({r.service for r in store.files(project) if r.service})
    chosen_services = services or known_services
    if not chosen_services:
        raise MonitoringError(
            f"no service named: the files of project '{project}' are all project- or stage-level, so give "
            "--service (e.g. --service carts)"
        )
    for stage in chosen_stages:
        for service in chosen_services:
            slo_file = store.resolve(project, SLO, stage, service)
            remediation_file = store.resolve(project, REMEDIATION, stage, service)
            if slo_file is None:
                plan.notes.append(f"{stage}/{service}: no {SLO}, so no alert rules")
                continue
            if remediation_file is None:
                plan.notes.append(f"{stage}/{service}: no {REMEDIATION}, so no alert rules (an alert could "
                                  "only be escalated; Keptn skipped such stages too)")
                continue
            _load(remediation_file, "remediation")  # a broken remediation file is reported now, not at the alert
            slo = _load(slo_file, "slo")
            indicators = merge_indicators(*(
                _load(layer, "sli").indicators for layer in store.layers(project, SLI_PROMETHEUS, stage, service)
            ))
            rules = build_alert_rules(
                slo, indicators, project, stage, service, for_,
                deployment=deployment, window=timedelta(seconds=window_seconds), severity=severity,
            )
            plan.rule_sets.append(rules)
            for skipped in rules.skipped:
                plan.notes.append(f"{stage}/{service}: no rule for {skipped.sli}: {skipped.reason}")
    return plan


def write_rule_file(path: Path, plan: Plan) -> None:
    """Merge the plan's groups into the Prometheus rule file at `path` (other groups kept), atomically."""
    existing = yaml.safe_load(path.read_text()) if path.is_file() else None
    if existing is not None and not isinstance(existing, dict):
        raise MonitoringError(f"{path} exists but is not a Prometheus rule file; choose another rules file")
    text = yaml.safe_dump(merge_rule_files(existing, *plan.rule_sets), sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)  # Prometheus may run as another user; rules hold no secrets
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the monitoring.configure handler ----------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringSettings:
    rules_file: Path | None = None
    reload_url: str | None = None
    alert_for: str = KEPTN_ALERT_FOR

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitoringSettings:
        rules = environ.get(RULES_FILE_ENV)
        return cls(
            rules_file=Path(rules).expanduser() if rules else None,
            reload_url=environ.get(RELOAD_ENV) or None,
            alert_for=environ.get(ALERT_FOR_ENV) or KEPTN_ALERT_FOR,
        )


def wants(event: KeptnEvent) -> bool:
    """A `monitoring.configure` for Prometheus (another provider's is someone else's)."""
    kind = event.data.get("type")
    return event.type == MONITORING_CONFIGURE_TYPE and isinstance(kind, str) and kind.strip().lower() == PROVIDER


def reply(configure: KeptnEvent, kind: str, **data: Any) -> KeptnEvent:
    """`configure-monitoring.<kind>` for `configure`, with a derived id (stable across replays)."""
    base = {name: configure.data[name] for name in ("project", "service") if isinstance(configure.data.get(name), str)}
    return KeptnEvent(
        id=derived_id(configure.id, f"{TASK}.{kind}"),
        type=f"sh.keptn.event.{TASK}.{kind}",
        source=SOURCE,
        shkeptncontext=configure.shkeptncontext,
        triggeredid=configure.id,
        data={**base, **data},
    )


@dataclass
class Configured:
    """What handling one event decided: the resources to write, the rules plan, the answer."""

    status: str
    result: str
    message: str
    resources: list[Resource] = field(default_factory=list)
    plan: Plan | None = None


def configure(event: KeptnEvent, store: ResourceStore, settings: MonitoringSettings) -> Configured:
    """Decide what `event` asks for (pure given the store; the caller writes and replies)."""
    project = event.data.get("project")
    service = event.data.get("service")
    if not isinstance(project, str) or not project:
        return Configured("errored", "fail", "the monitoring.configure event names no project (data.project)")
    if store.get(project, SHIPYARD) is None:
        return Configured("errored", "fail", f"project '{project}' does not exist; create it first")
    provider = Resource.new(project, SLI_PROVIDER_FILE, PROVIDER.encode())
    message = f"Prometheus is now the SLI provider of project {project}"
    if settings.rules_file is None:
        return Configured("succeeded", "pass", f"{message}; no alert rules written (no rules file: set {RULES_FILE_ENV} "
                                               "for the Prometheus connector to write them)", [provider])
    services = [service] if isinstance(service, str) and service else None
    try:
        plan = plan_rules(store, project, None, services, settings.alert_for, 180.0, "primary", "webhook")
    except (MonitoringError, AlertingError, SchemaError, SliError) as error:
        return Configured("errored", "fail", f"{message}, but no alert rules: {error}", [provider])
    groups = ", ".join(f"'{rules.group}' ({len(rules.rules)} rule(s))" for rules in plan.rule_sets) or "none"
    notes = "; ".join(plan.notes)
    text = f"{message}; alert rule groups in {settings.rules_file}: {groups}" + (f" ({notes})" if notes else "")
    return Configured("succeeded", "pass", text, [provider], plan)


def reload_config(url: str, what: str) -> str:
    """POST <url>/-/reload; a message for the user (raises MonitoringError when the reload failed)."""
    target = f"{url.rstrip('/')}/-/reload"
    try:
        answer = httpx.post(target, timeout=30.0)
    except httpx.HTTPError as error:
        raise MonitoringError(f"could not reach {what} at {url} to reload it: {error}") from error
    if answer.status_code == 200:
        return f"{what} at {url} reloaded its configuration"
    if answer.status_code == 403 or "lifecycle" in answer.text.lower():
        return (f"{what} at {url} does not allow reloads over HTTP (start it with --web.enable-lifecycle); "
                "send it SIGHUP or restart it to load the new files")
    raise MonitoringError(
        f"{what} at {url} refused the new configuration (HTTP {answer.status_code}): {answer.text.strip()[:300]}; "
        "it keeps running with the previous one; fix the file and reload again"
    )


# --- the shell: the events topic in, replies and the SLI provider file out ----------------------------

_TYPE_BYTES = MONITORING_CONFIGURE_TYPE.encode()


def _may_be_configure(record: Any) -> bool:
    """Cheap pre-check before decoding: the type appears in a header or in the value."""
    return any(value == _TYPE_BYTES for _name, value in (record.headers or ())) or _TYPE_BYTES in (record.value or b"")


async def handle_configure(
    event: KeptnEvent, view: ResourceView, publisher: Any, topics: TopicRegistry, config: MonitoringSettings
) -> Configured:
    """Answer one `monitoring.configure`: started, the SLI provider file, the rules, finished."""
    await publisher.publish(topics.events, reply(event, "started", status="succeeded"))
    await view.sync()  # files written just before the event are seen
    outcome = configure(event, view.store, config)
    for resource in outcome.resources:
        key, value = resource.to_record()
        await publisher.publish_record(topics.resources, KafkaRecord(key, value), what=f"resource {resource.key}")
        view.store.put(resource)
    if outcome.plan is not None and outcome.plan.rule_sets and config.rules_file is not None:
        try:
            await asyncio.to_thread(write_rule_file, config.rules_file, outcome.plan)
            if config.reload_url:
                outcome.message += "; " + await asyncio.to_thread(reload_config, config.reload_url, "Prometheus")
        except (OSError, MonitoringError, yaml.YAMLError) as error:
            outcome.status, outcome.result = "errored", "fail"
            outcome.message += f"; but the rules could not be written: {error}"
    await publisher.publish(topics.events, reply(event, "finished", status=outcome.status, result=outcome.result,
                                                 message=outcome.message))
    log.info("configure-monitoring for %s (%s): %s", event.data.get("project"), event.shkeptncontext, outcome.status)
    return outcome


async def follow_configure_events(
    settings: Settings, stop: asyncio.Event, config: MonitoringSettings, ready: asyncio.Event | None = None
) -> None:
    """Answer Prometheus' `monitoring.configure` events on the `events` topic until `stop` is set.

    Its own consumer group reads from the oldest event the first time, then from its committed
    offset: an event posted while the connector was down is answered when it comes back."""
    from tidegate.streams.kafka import AsyncEventPublisher, async_consumer

    topics = TopicRegistry.from_settings(settings)
    view = ResourceView(settings, topics.resources)
    publisher = AsyncEventPublisher(settings)
    consumer = async_consumer(settings, topics.events, group_id=f"{settings.topic_prefix}connector-prometheus-monitoring",
                              enable_auto_commit=False, auto_offset_reset="earliest")
    await view.start()
    try:
        await view.wait_ready(settings.started_timeout)
        await publisher.start()
        await consumer.start()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300, max_records=200)
            if ready is not None and not ready.is_set() and consumer.assignment():
                ready.set()
            for records in batch.values():
                for record in records:
                    if not _may_be_configure(record):
                        continue
                    try:
                        event = decode(record.value, record.headers)
                    except DecodeError:
                        continue  # the agents send unreadable records to the DLQ
                    if wants(event):
                        await handle_configure(event, view, publisher, topics, config)
            if batch:
                await consumer.commit()
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await publisher.stop()
        await view.stop()
