"""The CloudEvent envelope, Keptn's type grammar and the task data blocks."""

from datetime import UTC, datetime

import pytest

from tidegate.schemas.events import EventType, KeptnEvent, format_time, sequence_type, task_type
from tidegate.schemas.payloads import GetSLITriggered, Problem, ProblemEvent


@pytest.mark.parametrize(
    ("raw", "category", "fields"),
    [
        ("sh.keptn.event.deployment.triggered", "task", {"task": "deployment", "kind": "triggered"}),
        ("sh.keptn.event.get-sli.finished", "task", {"task": "get-sli", "kind": "finished"}),
        ("sh.keptn.event.evaluation.invalidated", "task", {"task": "evaluation", "kind": "invalidated"}),
        ("sh.keptn.event.test.status.changed", "task", {"task": "test", "kind": "status.changed"}),
        ("sh.keptn.event.dev.delivery.triggered", "sequence", {"stage": "dev", "sequence": "delivery", "kind": "triggered"}),
        ("sh.keptn.event.prod.remediation.finished", "sequence", {"stage": "prod", "sequence": "remediation", "kind": "finished"}),
        ("sh.keptn.events.problem", "problem", {}),
        ("sh.keptn.log.error", "other", {}),
        # A sequence kind that Keptn's grammar does not know is not a sequence event.
        ("sh.keptn.event.dev.delivery.started", "other", {}),
        ("sh.keptn.event.a.b.c.d.triggered", "other", {}),
        ("com.example.thing", "other", {}),
    ],
)
def test_type_grammar(raw: str, category: str, fields: dict[str, str]) -> None:
    parsed = EventType.parse(raw)
    assert parsed.category == category
    for name, value in fields.items():
        assert getattr(parsed, name) == value
    assert EventType.parse(raw) == parsed  # the second parse (remembered) says the same


def test_remembered_types_are_bounded() -> None:
    from tidegate.schemas import events

    for number in range(events._PARSED_TYPES_MAX + 100):
        assert EventType.parse(f"sh.keptn.event.t{number}.started").task == f"t{number}"
    assert len(events._parsed_types) <= events._PARSED_TYPES_MAX


def test_type_builders_round_trip() -> None:
    assert EventType.parse(task_type("approval", "started")).task == "approval"
    seq = EventType.parse(sequence_type("staging", "rollback", "finished"))
    assert (seq.stage, seq.sequence, seq.kind) == ("staging", "rollback", "finished")
    with pytest.raises(ValueError):
        task_type("deployment", "exploded")


def test_envelope_keeps_unknown_extensions_and_formats_time() -> None:
    event = KeptnEvent.model_validate(
        {
            "type": "sh.keptn.event.dev.delivery.triggered",
            "source": "ci",
            "time": "2021-05-10T09:51:00.123Z",
            "shkeptncontext": "ctx",
            "myextension": "kept",
            "data": {"project": "sockshop", "stage": "dev", "service": "carts"},
        }
    )
    assert (event.project, event.stage, event.service) == ("sockshop", "dev", "carts")
    dumped = event.to_json_dict()
    assert dumped["myextension"] == "kept"
    assert dumped["time"] == "2021-05-10T09:51:00.123Z"
    assert "triggeredid" not in dumped
    assert format_time(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000Z"


def test_null_data_becomes_empty_object() -> None:
    assert KeptnEvent(type="sh.keptn.log.error", data=None).data == {}  # type: ignore[arg-type]


def test_problem_keys_are_case_insensitive() -> None:
    # prometheus-service sends ProblemTitle; remediation reads problemTitle (Go decodes case-insensitively).
    problem = Problem.model_validate({"ProblemTitle": "Response time degradation", "RootCause": "cpu", "State": "OPEN"})
    assert problem.problemTitle == "Response time degradation"
    assert problem.rootCause == "cpu"
    flat = ProblemEvent.model_validate({"state": "CLOSED", "problemtitle": "x", "project": "p"})
    assert (flat.State, flat.ProblemTitle, flat.project) == ("CLOSED", "x", "p")


def test_get_sli_deployment_is_a_string() -> None:
    data = GetSLITriggered.model_validate(
        {"get-sli": {"sliProvider": "prometheus", "indicators": ["p95"]}, "deployment": {"deploymentNames": ["canary"]}}
    )
    assert data.deployment == "canary"
    assert data.get_sli.indicators == ["p95"]
