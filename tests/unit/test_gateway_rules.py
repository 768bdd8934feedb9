"""The gateway's pure rules: Keptn's event validation, the keptnContext rule, the evaluation window,
times and the datastore filter syntax."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tidegate.gateway.rules import (
    EvaluationWindow,
    Problem,
    check_event,
    check_name,
    evaluation_window,
    keptn_context_for,
    parse_filter,
    parse_time,
)
from tidegate.schemas.ids import context_from_text

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SCOPE = {"project": "sockshop", "stage": "dev", "service": "carts"}


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "sh.keptn.event.dev.delivery.triggered", "data": SCOPE},
        {"type": "sh.keptn.event.deployment.started", "triggeredid": "t", "data": SCOPE},
        {"type": "sh.keptn.event.deployment.finished", "triggeredid": "t",
         "data": {**SCOPE, "result": "warning", "status": "succeeded"}},
        {"type": "sh.keptn.event.evaluation.invalidated", "triggeredid": "t", "data": SCOPE},
        {"type": "sh.keptn.event.monitoring.configure", "data": {"project": "sockshop", "type": "prometheus"}},
        {"type": "sh.keptn.events.problem", "data": {"ProblemTitle": "cpu"}},
        {"type": "sh.keptn.log.error", "data": {}},
    ],
)
def test_events_keptn_accepts(body: dict[str, object]) -> None:
    assert check_event(body) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"data": SCOPE}, ["type"]),
        ({"type": "sh.keptn.event.dev.delivery.triggered"}, ["data"]),
        ({"type": "sh.keptn.event.dev.delivery.triggered", "data": "x"}, ["data"]),
        ({"type": "sh.keptn.event.dev.delivery.triggered", "data": {"project": "p"}}, ["data.stage", "data.service"]),
        ({"type": "sh.keptn.event.dev.delivery.triggered", "data": {**SCOPE, "stage": "prod"}}, ["data.stage"]),
        ({"type": "sh.keptn.event.dev.delivery.finished", "data": SCOPE}, ["type"]),
        ({"type": "sh.keptn.event.deployment.triggered", "data": SCOPE}, ["type"]),
        ({"type": "sh.keptn.event.deployment.status.changed", "data": SCOPE}, ["type"]),
        ({"type": "sh.keptn.event.deployment.started", "data": SCOPE}, ["triggeredid"]),
        ({"type": "sh.keptn.event.deployment.finished", "triggeredid": "t", "data": SCOPE},
         ["data.result", "data.status"]),
        ({"type": "sh.keptn.event.deployment.finished", "triggeredid": "t",
          "data": {**SCOPE, "result": "failed", "status": "ok"}}, ["data.result", "data.status"]),
        ({"type": "sh.keptn.event.monitoring.configure", "data": {"project": "sockshop"}}, ["data.type"]),
        ({"type": "sh.keptn.event.dev.delivery.triggered", "data": {**SCOPE, "project": 3}}, ["data.project"]),
        ({"type": "some.other.type", "data": {}}, ["type"]),
    ],
)
def test_events_keptn_refuses_name_the_field(body: dict[str, object], expected: list[str]) -> None:
    problems = check_event(body)
    assert fields(problems) == expected
    assert all(p.message for p in problems)


def test_keptn_context_rule() -> None:
    given = str(uuid.uuid4())
    assert keptn_context_for(given) == given
    assert keptn_context_for("build-17") == context_from_text("build-17") == keptn_context_for("build-17")
    made = keptn_context_for(None)
    assert str(uuid.UUID(made)) == made and made != keptn_context_for(None)


@pytest.mark.parametrize(
    ("what", "value", "limit", "ok"),
    [("project", "sockshop", 200, True), ("project", "sock-shop-2", 200, True), ("project", "Sock", 200, False),
     ("project", "sock-", 200, False), ("project", "2sock", 200, False), ("service", "a" * 43, 43, True),
     ("service", "a" * 44, 43, False), ("service", "", 43, False)],
)
def test_names(what: str, value: str, limit: int, ok: bool) -> None:
    assert (check_name(what, value, max_length=limit) is None) is ok


@pytest.mark.parametrize(
    ("kwargs", "start", "end"),
    [
        ({}, "2024-05-01T11:55:00+00:00", "2024-05-01T12:00:00+00:00"),
        ({"timeframe": "1h30m"}, "2024-05-01T10:30:00+00:00", "2024-05-01T12:00:00+00:00"),
        ({"start": "2024-05-01T08:00:00", "timeframe": "10m"}, "2024-05-01T08:00:00+00:00", "2024-05-01T08:10:00+00:00"),
        ({"start": "2024-05-01T08:00:00.000Z", "end": "2024-05-01T09:00:00+01:00"},
         "2024-05-01T08:00:00+00:00", "2024-05-01T08:00:00+00:00"),
        ({"start": "2024-05-01T08:00:00Z", "end": "2024-05-01T08:02:00Z"},
         "2024-05-01T08:00:00+00:00", "2024-05-01T08:02:00+00:00"),
    ],
)
def test_evaluation_window(kwargs: dict[str, str], start: str, end: str) -> None:
    arguments = {"start": None, "end": None, "timeframe": None, **kwargs}
    window = evaluation_window(**arguments, now=NOW)
    if start == end:  # same instant: refused as shorter than a minute
        assert not isinstance(window, EvaluationWindow)
        return
    assert isinstance(window, EvaluationWindow)
    assert (window.start.isoformat(), window.end.isoformat()) == (start, end)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"end": "2024-05-01T08:00:00Z", "timeframe": "5m"}, "timeframe"),
     ({"end": "2024-05-01T08:00:00Z"}, "start"),
     ({"timeframe": "5 minutes"}, "timeframe"),
     ({"timeframe": "-5m"}, "timeframe"),
     ({"start": "yesterday", "timeframe": "5m"}, "start"),
     ({"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T08:00:00Z"}, "end")],
)
def test_evaluation_window_problems(kwargs: dict[str, str], field: str) -> None:
    arguments = {"start": None, "end": None, "timeframe": None, **kwargs}
    window = evaluation_window(**arguments, now=NOW)
    assert isinstance(window, list)
    assert field in fields(window)


def test_parse_time_forms() -> None:
    expected = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    assert parse_time("2024-05-01T12:00:05.000Z") == expected
    assert parse_time("2024-05-01T14:00:05+02:00") == expected
    assert parse_time("2024-05-01T12:00:05") == expected
    with pytest.raises(ValueError, match="not a time"):
        parse_time("May 1st")


def test_datastore_filter_syntax() -> None:
    assert parse_filter("data.project:sockshop AND data.stage:dev,staging") == {
        "data.project": ["sockshop"], "data.stage": ["dev", "staging"]}
    assert parse_filter("shkeptncontext:abc") == {"shkeptncontext": ["abc"]}
    for bad, words in (("data.stage:dev", "data.project"), ("data.project", "key:value"), ("", "empty")):
        problem = parse_filter(bad)
        assert isinstance(problem, Problem) and words in problem.message
