"""Prometheus alert rules from SLOs, and the Alertmanager routing to Tidegate's bridge (pure: no I/O).

What keptn-contrib/prometheus-service did on `configure monitoring` (reference §5.4), with its fixed
`for: 10m` made configurable:

- one rule per SLI that has an absolute pass criterion (`<600`, `<=0.5`, `>=10`); relative criteria
  (`<=+10%`, `>=-5`, `<=10%`) need a baseline Prometheus does not have and are skipped, as are `=`
  criteria and text that is not a criterion at all;
- when an SLI has several absolute criteria, the last one wins (Keptn overwrote the rule each time);
- the rule fires when the criterion fails: its operator is negated, `expr: (<query>) > 600` for
  `<=600`. Keptn removed the `=` and flipped the sign, so `<600` became `>600` and a value of exactly
  600 failed the gate without ever alerting; Tidegate writes the exact negation (`>=600`). The query is
  put in parentheses so that `a or vector(0)` compares as a whole;
- the query is the SLI's, with placeholders filled in for the stage's `primary` deployment and a
  `$DURATION_SECONDS` window (Keptn used 180 s), through the SLI provider's own substitution
  (`connectors.prometheus.sli.build_query`, built-in indicators included);
- labels `severity` (`webhook`, the route to the bridge), `project`, `stage`, `service`, `deployment`,
  `pod_name` (`<service>-<deployment>`, as Keptn set it); annotations `summary` (the SLI name: it
  becomes the problem title, which remediation.yaml's `problemType` matches), `descriptions` (Keptn's
  spelling), `description` and `criterion`.

    rules = alert_rules(slo, indicators, "sockshop", "production", "carts", "1m")
    yaml.safe_dump(rules)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tidegate.connectors.prometheus.errors import SliError
from tidegate.connectors.prometheus.sli import DEFAULT_DEPLOYMENT, QueryContext, build_query
from tidegate.qualitygate.criteria import CriteriaError, Criterion, parse_criteria
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.slo import SLO

DEFAULT_SEVERITY = "webhook"
DEFAULT_FOR = "1m"
# prometheus-service asked for the SLI query over the last 180 s when it built alert expressions.
DEFAULT_WINDOW = timedelta(seconds=180)
RECEIVER = "tidegate"
_NEGATION = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
# Prometheus durations: one or more <number><unit> pairs, largest unit first (`1h30m`, `90s`, `0s`).
_PROMETHEUS_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AlertingError(TidegateError, ValueError):
    """Rules cannot be generated as asked; the message says which input is wrong and how to fix it."""


def check_prometheus_duration(text: str, what: str = "the `for` duration") -> str:
    """`text` if Prometheus reads it as a duration (`30s`, `1m`, `1h30m`), else AlertingError."""
    if not text or not _PROMETHEUS_DURATION.match(text):
        raise AlertingError(
            f"{what} {text!r} is not a Prometheus duration: write it like 30s, 1m or 1h30m "
            "(units y, w, d, h, m, s, ms; largest first)"
        )
    return text


@dataclass(frozen=True, slots=True)
class SkippedObjective:
    """An objective that got no rule, and why (shown by the CLI)."""

    sli: str
    reason: str


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The rule group of one service in one stage, plus what was left out."""

    group: str
    rules: tuple[dict[str, Any], ...]
    skipped: tuple[SkippedObjective, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A Prometheus rule file with this one group."""
        return {"groups": [{"name": self.group, "rules": [dict(rule) for rule in self.rules]}]}


def group_name(project: str, stage: str, service: str) -> str:
    """Keptn's group name, so files it wrote are updated in place: `carts sockshop-production alerts`."""
    return f"{service} {project}-{stage} alerts"


def alerting_criterion(criteria: Sequence[str]) -> tuple[Criterion | None, list[str]]:
    """The criterion a rule is built from (the last absolute `<`, `<=`, `>`, `>=` one) and why others were skipped."""
    chosen: Criterion | None = None
    notes: list[str] = []
    for text in criteria:
        try:
            criterion = parse_criteria(text)
        except CriteriaError as error:
            notes.append(f"{text!r} is not a valid criterion ({error.reason})")
            continue
        if criterion.is_relative:
            notes.append(f"{text!r} compares with previous results, which an alert rule cannot do")
            continue
        if criterion.operator not in _NEGATION:
            notes.append(f"{text!r} asks for equality, which makes no alert")
            continue
        chosen = criterion
    return chosen, notes


def failing_condition(criterion: Criterion) -> str:
    """The PromQL comparison that holds while `criterion` fails: `<=600` -> `> 600`."""
    return f"{_NEGATION[criterion.operator]} {_number(criterion.value)}"


def _number(value: float) -> str:
    # 600.0 -> "600", 0.05 -> "0.05", 1e-07 -> "1e-07": exact, and all valid PromQL numbers.
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def alert_rules(
    slo: SLO,
    sli_queries: Mapping[str, str],
    project: str,
    stage: str,
    service: str,
    for_: str = DEFAULT_FOR,
    *,
    deployment: str = DEFAULT_DEPLOYMENT,
    window: timedelta = DEFAULT_WINDOW,
    severity: str = DEFAULT_SEVERITY,
) -> dict[str, Any]:
    """The Prometheus rule file (as a dict) alerting on the SLO's absolute pass criteria."""
    return build_alert_rules(
        slo, sli_queries, project, stage, service, for_, deployment=deployment, window=window, severity=severity
    ).as_dict()


def build_alert_rules(
    slo: SLO,
    sli_queries: Mapping[str, str],
    project: str,
    stage: str,
    service: str,
    for_: str = DEFAULT_FOR,
    *,
    deployment: str = DEFAULT_DEPLOYMENT,
    window: timedelta = DEFAULT_WINDOW,
    severity: str = DEFAULT_SEVERITY,
) -> AlertRules:
    """Like `alert_rules`, keeping the objectives that got no rule and why."""
    check_prometheus_duration(for_)
    if window <= timedelta(0):
        raise AlertingError(f"the query window must be positive, got {window}")
    context = QueryContext(
        project=project,
        stage=stage,
        service=service,
        start=_EPOCH,
        end=_EPOCH + window,
        deployment=deployment,
        custom_filters=tuple(slo.filter.items()),
    )
    by_sli: dict[str, dict[str, Any]] = {}
    skipped: dict[str, SkippedObjective] = {}
    for objective in slo.objectives:
        criteria = [text for criteria_set in objective.pass_ for text in criteria_set.criteria]
        criterion, notes = alerting_criterion(criteria)
        if criterion is None:
            if objective.sli not in by_sli:
                reason = "; ".join(notes) if notes else "it has no pass criteria"
                skipped[objective.sli] = SkippedObjective(objective.sli, f"no absolute pass criterion: {reason}")
            continue
        try:
            query = build_query(objective.sli, sli_queries, context)
        except SliError as error:
            skipped[objective.sli] = SkippedObjective(objective.sli, f"{error.reason}: {error.hint}")
            continue
        skipped.pop(objective.sli, None)
        # A later objective on the same SLI replaces the rule: the last criterion wins, as in Keptn.
        by_sli[objective.sli] = _rule(
            objective.sli, objective.name, query, criterion, for_, project, stage, service, deployment, severity
        )
    return AlertRules(group_name(project, stage, service), tuple(by_sli.values()), tuple(skipped.values()))


def _rule(
    sli: str,
    display: str,
    query: str,
    criterion: Criterion,
    for_: str,
    project: str,
    stage: str,
    service: str,
    deployment: str,
    severity: str,
) -> dict[str, Any]:
    return {
        "alert": sli,
        "expr": f"({query}) {failing_condition(criterion)}",
        "for": for_,
        "labels": {
            "severity": severity,
            "pod_name": f"{service}-{deployment}",
            "service": service,
            "project": project,
            "stage": stage,
            "deployment": deployment,
        },
        "annotations": {
            "summary": sli,
            "descriptions": "Pod name {{ $labels.pod_name }}",
            "description": (
                f"{display} of {service} in {project}/{stage} fails its pass criterion {criterion.text.strip()} "
                "(value: {{ $value }})"
            ),
            "criterion": criterion.text.strip(),
        },
    }


def merge_rule_files(existing: Mapping[str, Any] | None, *updates: AlertRules) -> dict[str, Any]:
    """`existing` with each update's group replaced (or added), other groups untouched, in their order."""
    groups: list[dict[str, Any]] = []
    if existing:
        found = existing.get("groups") or []
        if not isinstance(found, list):
            raise AlertingError("the existing rule file has `groups:` that is not a list; fix or remove the file")
        groups = [dict(group) for group in found if isinstance(group, Mapping)]
    for update in updates:
        new_group = update.as_dict()["groups"][0]
        index = next((i for i, group in enumerate(groups) if group.get("name") == update.group), None)
        if index is None:
            groups.append(new_group)
        else:
            groups[index] = new_group
    return {**(dict(existing) if existing else {}), "groups": groups}


# -- Alertmanager ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BridgeAuth:
    """How Alertmanager authenticates to the bridge: a bearer token or basic auth, inline or from a file."""

    kind: Literal["bearer", "basic"]
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    password_file: str | None = None

    def http_config(self) -> dict[str, Any]:
        if self.kind == "bearer":
            if self.token_file:
                return {"authorization": {"type": "Bearer", "credentials_file": self.token_file}}
            if self.token:
                return {"authorization": {"type": "Bearer", "credentials": self.token}}
            raise AlertingError("bearer auth needs a token or a token file")
        if not self.username:
            raise AlertingError("basic auth needs a user name")
        if self.password_file:
            return {"basic_auth": {"username": self.username, "password_file": self.password_file}}
        if self.password:
            return {"basic_auth": {"username": self.username, "password": self.password}}
        raise AlertingError("basic auth needs a password or a password file")


@dataclass(frozen=True, slots=True)
class AlertmanagerRouting:
    """Keptn's routing (`severity=webhook` alerts to the webhook), with Alertmanager's timings."""

    bridge_url: str
    auth: BridgeAuth | None = None
    severity: str = DEFAULT_SEVERITY
    group_wait: str = "10s"
    group_interval: str = "10s"
    repeat_interval: str = "1m"
    group_by: tuple[str, ...] = ("alertname", "project", "stage", "service")
    extra: Mapping[str, Any] = field(default_factory=dict)


def alertmanager_config(routing: AlertmanagerRouting) -> dict[str, Any]:
    """An alertmanager.yml: alerts of `routing.severity` go to the bridge (resolved ones too), others nowhere."""
    if not routing.bridge_url.startswith(("http://", "https://")):
        raise AlertingError(
            f"the bridge URL {routing.bridge_url!r} must start with http:// or https://, "
            "e.g. http://127.0.0.1:19180/api/alertmanager"
        )
    for what, value in (
        ("group_wait", routing.group_wait),
        ("group_interval", routing.group_interval),
        ("repeat_interval", routing.repeat_interval),
    ):
        check_prometheus_duration(value, what)
    webhook: dict[str, Any] = {"url": routing.bridge_url, "send_resolved": True, "max_alerts": 0}
    if routing.auth is not None:
        webhook["http_config"] = routing.auth.http_config()
    return {
        **dict(routing.extra),
        "route": {
            "receiver": "nowhere",
            "group_by": list(routing.group_by),
            "routes": [
                {
                    "receiver": RECEIVER,
                    "matchers": [f'severity="{routing.severity}"'],
                    "group_by": list(routing.group_by),
                    "group_wait": routing.group_wait,
                    "group_interval": routing.group_interval,
                    "repeat_interval": routing.repeat_interval,
                }
            ],
        },
        "receivers": [{"name": "nowhere"}, {"name": RECEIVER, "webhook_configs": [webhook]}],
    }
