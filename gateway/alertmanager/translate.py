"""Alertmanager's webhook payload (version 4) -> Keptn events, one per alert (pure: no I/O).

- A firing alert becomes `sh.keptn.event.<stage>.remediation.triggered` (Keptn used only alerts[0];
  Tidegate uses them all), with project/stage/service (and deployment) from the alert's labels and
  the problem block prometheus-service sent (reference §5.4): `problemTitle` from the summary
  annotation (else the alert name), `rootCause` from the root_cause annotation (else the alert name),
  `ProblemID` = the alert's fingerprint, `ProblemURL` = generatorURL, `ImpactedEntity`, the alert's
  labels, `State: OPEN`.
- A resolved alert becomes `sh.keptn.events.problem` with `State: CLOSED` for the same service and
  run: the remediator stops the run and answers no further action.
- The keptnContext is a UUID derived from SHA-256 of fingerprint + startsAt, as prometheus-service
  derived it, and the event ids derive from the context: Alertmanager repeats a firing alert every
  `repeat_interval`, and every repeat is the same event with the same id, so the sequencer (which drops
  ids it handled) never starts a second remediation for it. A new firing after a resolve has a new
  startsAt, so it is a new run.
- An alert without the labels that name the service is rejected on its own, with reasons; the other
  alerts of the batch go through.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tidegate.gateway.alertmanager.settings import BridgeSettings
from tidegate.gateway.context import record_size
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import PROBLEM_TYPE, KeptnEvent, sequence_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key

SUPPORTED_VERSION = "4"
REMEDIATION = "remediation"
# Names end up in event types and topic keys: dots split types, slashes split keys.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # fullmatch: `$` would let a final newline in


class PayloadError(TidegateError, ValueError):
    """The request body is not an Alertmanager webhook payload; `reasons` say what is wrong."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class Envelope(BaseModel):
    """The batch around the alerts (alerts are validated one by one, so one bad alert costs only itself)."""

    model_config = ConfigDict(extra="allow")

    version: str
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Any]

    @field_validator("version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value != SUPPORTED_VERSION:
            raise ValueError(
                f"webhook payload version {value!r} is not supported; the bridge reads version "
                f"{SUPPORTED_VERSION} (Alertmanager 0.16 and later)"
            )
        return value


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = Field(min_length=1)
    endsAt: str | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1)

    @field_validator("startsAt")
    @classmethod
    def _a_time(cls, value: str) -> str:
        _parse_time(value, "startsAt")
        return value

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def starts_at(self) -> datetime:
        return _parse_time(self.startsAt, "startsAt")

    @property
    def ends_at(self) -> datetime | None:
        if not self.endsAt or self.endsAt.startswith("0001-"):
            return None  # Alertmanager's zero time while an alert fires
        return _parse_time(self.endsAt, "endsAt")


def _parse_time(text: str, what: str) -> datetime:
    raw = text.strip()
    # Go writes nanoseconds; Python's fromisoformat takes at most microseconds.
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", raw)
    if match:
        fraction = (match.group(2) or "")[:7]
        raw = f"{match.group(1)}{fraction}{match.group(3)}"
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what} {text!r} has no time zone")
    return moment


@dataclass(frozen=True, slots=True)
class Accepted:
    """An alert turned into an event to publish."""

    index: int
    alert: Alert
    event: KeptnEvent
    key: Key

    def report(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "alertname": self.alert.name,
            "fingerprint": self.alert.fingerprint,
            "status": self.alert.status,
            "event": self.event.type,
            "id": self.event.id,
            "shkeptncontext": self.event.shkeptncontext,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    """An alert that cannot become an event, with every reason."""

    index: int
    raw: Any
    reasons: tuple[str, ...]

    @property
    def fingerprint(self) -> str | None:
        value = self.raw.get("fingerprint") if isinstance(self.raw, Mapping) else None
        return value if isinstance(value, str) else None

    @property
    def alertname(self) -> str | None:
        labels = self.raw.get("labels") if isinstance(self.raw, Mapping) else None
        value = labels.get("alertname") if isinstance(labels, Mapping) else None
        return value if isinstance(value, str) else None

    def report(self) -> dict[str, Any]:
        return {"index": self.index, "alertname": self.alertname, "fingerprint": self.fingerprint,
                "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Batch:
    """One webhook call: the envelope and, per alert, what became of it."""

    envelope: Envelope
    accepted: tuple[Accepted, ...]
    rejected: tuple[Rejected, ...]


def parse_body(body: bytes) -> Envelope:
    """The envelope of a webhook call; PayloadError with the reasons when it is not one."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError([f"the body is not JSON ({error}); Alertmanager sends its webhook payload as JSON"]) from None
    if not isinstance(raw, dict):
        raise PayloadError([f"the body is a JSON {type(raw).__name__}, not the webhook payload object"])
    try:
        return Envelope.model_validate(raw)
    except ValidationError as error:
        raise PayloadError(_reasons(error)) from None


def translate(body: bytes, settings: BridgeSettings) -> Batch:
    """Parse a webhook call and turn each alert into its event or its rejection."""
    envelope = parse_body(body)
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(envelope.alerts):
        outcome = translate_alert(index, raw, settings)
        (accepted if isinstance(outcome, Accepted) else rejected).append(outcome)  # type: ignore[arg-type]
    return Batch(envelope, tuple(accepted), tuple(rejected))


def translate_alert(index: int, raw: Any, settings: BridgeSettings) -> Accepted | Rejected:
    try:
        alert = Alert.model_validate(raw)
    except ValidationError as error:
        return Rejected(index, raw, tuple(_reasons(error)))
    names: dict[str, str] = {}
    reasons: list[str] = []
    for what, label in (("project", settings.project_label), ("stage", settings.stage_label),
                        ("service", settings.service_label)):
        value = alert.labels.get(label, "")
        if not value:
            reasons.append(
                f"the alert has no '{label}' label, which names the {what}: add project, stage and service labels "
                "to the alert rule (`tidegate configure monitoring prometheus` writes them), or set "
                f"TIDEGATE_ALERTMANAGER_{what.upper()}_LABEL to the label that holds the {what}"
            )
        elif not _NAME.fullmatch(value):
            reasons.append(f"the {what} label '{label}' is {value!r}, which is not a valid {what} name "
                           "(letters, digits, '-' and '_' only)")
        names[what] = value
    if reasons:
        return Rejected(index, raw, tuple(reasons))
    key = Key(names["project"], names["stage"], names["service"])
    event = firing_event(alert, key, settings) if alert.status == "firing" else resolved_event(alert, key, settings)
    size = record_size(event)
    if size > settings.max_event:
        return Rejected(index, raw, (f"its problem event would be {size} bytes as a Kafka record, over the limit of "
                                     f"{settings.max_event} (TIDEGATE_ALERTMANAGER_MAX_EVENT); shorten the alert's "
                                     "annotations and labels",))
    return Accepted(index, alert, event, key)


def alert_context(fingerprint: str, starts_at: str) -> str:
    """The keptnContext of one firing of one alert: a UUID made of SHA-256(fingerprint + startsAt)."""
    digest = hashlib.sha256(f"{fingerprint}{starts_at}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def problem_title(alert: Alert, settings: BridgeSettings) -> str:
    return alert.annotations.get(settings.title_annotation) or alert.name or "alert"


def root_cause(alert: Alert, settings: BridgeSettings) -> str:
    return alert.annotations.get(settings.root_cause_annotation) or alert.name


def impacted_entity(alert: Alert, key: Key, settings: BridgeSettings) -> str:
    for label in settings.entity_labels:
        if alert.labels.get(label):
            return alert.labels[label]
    return key.service


def _event_labels(alert: Alert) -> dict[str, str]:
    labels = {"alertname": alert.name} if alert.name else {}
    if alert.generatorURL:
        labels["Problem URL"] = alert.generatorURL  # what Keptn's Bridge showed as a link
    return labels


def _details(alert: Alert) -> dict[str, Any]:
    return {
        "problemDetails": alert.annotations.get("descriptions") or alert.annotations.get("description", ""),
        "annotations": dict(alert.annotations),
        "startsAt": alert.startsAt,
        "fingerprint": alert.fingerprint,
    }


def firing_event(alert: Alert, key: Key, settings: BridgeSettings) -> KeptnEvent:
    context = alert_context(alert.fingerprint, alert.startsAt)
    data: dict[str, Any] = {
        "project": key.project,
        "stage": key.stage,
        "service": key.service,
        "labels": _event_labels(alert),
        "problem": {
            "State": "OPEN",
            "ProblemID": alert.fingerprint,
            "problemTitle": problem_title(alert, settings),
            "rootCause": root_cause(alert, settings),
            "ProblemDetails": _details(alert),
            "PID": "",
            "ProblemURL": alert.generatorURL,
            "ImpactedEntity": impacted_entity(alert, key, settings),
            "labels": dict(alert.labels),
        },
    }
    deployment = alert.labels.get(settings.deployment_label)
    if deployment:
        data["deployment"] = {"deploymentNames": [deployment]}
    return KeptnEvent(
        id=derived_id(context, "remediation.triggered"),
        source=settings.source,
        type=sequence_type(key.stage, REMEDIATION, "triggered"),
        # The alert's own start: every repeat of the alert is the same event, byte for byte.
        time=alert.starts_at,
        shkeptncontext=context,
        data=data,
    )


def resolved_event(alert: Alert, key: Key, settings: BridgeSettings) -> KeptnEvent:
    context = alert_context(alert.fingerprint, alert.startsAt)
    return KeptnEvent(
        id=derived_id(context, "problem.closed"),
        source=settings.source,
        type=PROBLEM_TYPE,
        time=alert.ends_at or alert.starts_at,
        shkeptncontext=context,
        data={
            "project": key.project,
            "stage": key.stage,
            "service": key.service,
            "labels": _event_labels(alert),
            "State": "CLOSED",
            "ProblemID": alert.fingerprint,
            "ProblemTitle": problem_title(alert, settings),
            "ProblemURL": alert.generatorURL,
            "ImpactedEntity": impacted_entity(alert, key, settings),
        },
    )


def _reasons(error: ValidationError) -> list[str]:
    reasons = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail.get("loc", ())) or "body"
        message = str(detail.get("msg", "invalid")).removeprefix("Value error, ")
        reasons.append(f"{where}: {message}")
    return reasons
