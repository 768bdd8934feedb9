"""`tidegate simulate` end to end, with the three-stage fixture shipyard in tests/fixtures/simulate/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tidegate.cli.main import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "simulate"
SHIPYARD = FIXTURES / "shipyard.yaml"
TRIGGERS = FIXTURES / "triggers.jsonl"
EVENT_FIELDS = ["id", "type", "time", "shkeptncontext", "triggeredid", "key", "data"]


def simulate(*args: str | Path) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], str]:
    """Run the command; returns exit code, event lines, summary list and stderr."""
    result = CliRunner().invoke(app, ["simulate", *map(str, args)])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    events = [line for line in lines if "summary" not in line]
    summaries = [line["summary"] for line in lines if "summary" in line]
    assert len(summaries) <= 1
    return result.exit_code, events, summaries[0] if summaries else [], result.stderr


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def by_sequence(summary: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["key"].split("/")[1], s["sequence"]): s for s in summary}


def test_the_happy_path_reaches_production() -> None:
    code, events, summary, _ = simulate("--shipyard", SHIPYARD, TRIGGERS)
    assert code == 0
    for event in events:
        assert list(event)[: len(EVENT_FIELDS)] == EVENT_FIELDS
    sequence_events = [t for t in types(events) if t.count(".") == 5]
    assert sequence_events == [
        "sh.keptn.event.dev.delivery.triggered", "sh.keptn.event.dev.delivery.finished",
        "sh.keptn.event.staging.delivery.triggered", "sh.keptn.event.staging.delivery.finished",
        "sh.keptn.event.production.delivery.triggered", "sh.keptn.event.production.delivery.finished",
    ]
    runs = by_sequence(summary)
    assert [(stage, seq, s["state"], s["result"]) for (stage, seq), s in runs.items()] == [
        ("dev", "delivery", "finished", "pass"),
        ("staging", "delivery", "finished", "pass"),
        ("production", "delivery", "finished", "pass"),
    ]
    assert [t["name"] for t in runs[("staging", "delivery")]["tasks"]] == [
        "deployment", "test", "evaluation", "approval", "release"]
    # The whole run keeps the trigger's keptnContext, and staging's evaluation waits its 5 minutes.
    assert {e["shkeptncontext"] for e in events} == {"run-1"}
    staging_evaluation = next(e for e in events if e["type"] == "sh.keptn.event.evaluation.triggered"
                              and e["key"] == "sockshop/staging/carts")
    assert staging_evaluation["time"] == "2025-03-01T10:05:00.000Z"
    # Payloads carry the image from the trigger and the task's properties under its name.
    deployment = next(e for e in events if e["type"] == "sh.keptn.event.deployment.triggered"
                      and e["key"] == "sockshop/production/carts")
    assert deployment["data"]["configurationChange"] == {"values": {"image": "docker.io/keptnexamples/carts:0.13.1"}}
    assert deployment["data"]["deployment"]["timeout"] == "30m"
    assert deployment["topic"] == "tasks.deployment"


def test_a_failed_staging_evaluation_rolls_back_and_never_reaches_production() -> None:
    code, events, summary, _ = simulate("--shipyard", SHIPYARD, "--respond", "evaluation=fail@staging", TRIGGERS)
    assert code == 0
    runs = by_sequence(summary)
    assert runs[("dev", "delivery")]["result"] == "pass"  # the stage-specific rule left dev alone
    staging = runs[("staging", "delivery")]
    assert (staging["state"], staging["result"]) == ("finished", "fail")
    assert [t["name"] for t in staging["tasks"]] == ["deployment", "test", "evaluation"]
    assert (runs[("staging", "rollback")]["state"], runs[("staging", "rollback")]["result"]) == ("finished", "pass")
    assert not any(e["key"].startswith("sockshop/production/") for e in events)
    assert ("production", "delivery") not in runs
    # The rollback carries the failed sequence's context.
    rollback = next(e for e in events if e["type"] == "sh.keptn.event.staging.rollback.triggered")
    assert rollback["shkeptncontext"] == "run-1"


def test_a_silent_rollback_times_out_after_ten_virtual_minutes() -> None:
    code, events, summary, _ = simulate(
        "--shipyard", SHIPYARD, "--respond", "evaluation=fail@staging", "--respond", "rollback=silent", TRIGGERS)
    assert code == 0
    rollback = by_sequence(summary)[("staging", "rollback")]
    assert (rollback["state"], rollback["status"], rollback["result"]) == ("timedOut", "errored", "fail")
    assert "sh.keptn.event.rollback.triggered" in rollback["message"]
    finished = next(e for e in events if e["type"] == "sh.keptn.event.staging.rollback.finished")
    assert finished["time"] == "2025-03-01T10:15:00.000Z"  # triggered at 10:05, plus 10 minutes
    cancelled = next(e for e in events if e["type"] == "sh.tidegate.task.cancelled")
    assert cancelled["topic"] == "tasks.rollback"


def test_a_hanging_production_deployment_hits_its_task_timeout() -> None:
    code, events, summary, _ = simulate("--shipyard", SHIPYARD, "--respond", "deployment=hang@production", TRIGGERS)
    assert code == 0
    production = by_sequence(summary)[("production", "delivery")]
    assert (production["state"], production["status"]) == ("timedOut", "errored")
    assert "within its timeout of 30m" in production["message"]
    finished = next(e for e in events if e["type"] == "sh.keptn.event.production.delivery.finished")
    assert finished["time"] == "2025-03-01T10:35:00.000Z"  # deployed at 10:05, plus 30 minutes


def test_a_held_manual_approval_shows_as_waiting() -> None:
    code, _, summary, _ = simulate(
        "--shipyard", SHIPYARD, "--respond", "evaluation=warning@staging", "--approve", "hold", TRIGGERS)
    assert code == 0
    staging = by_sequence(summary)[("staging", "delivery")]
    assert staging["state"] == "waitingForApproval"
    assert staging["tasks"][-1] == {"name": "approval", "state": "started"}


def test_the_same_input_gives_the_same_output(tmp_path: Path) -> None:
    triggers = tmp_path / "triggers.jsonl"
    triggers.write_text(json.dumps({"type": "sh.keptn.event.dev.delivery.triggered",
                                    "data": {"project": "sockshop", "stage": "dev", "service": "carts"}}) + "\n")
    first = CliRunner().invoke(app, ["simulate", "--shipyard", str(SHIPYARD), str(triggers)])
    second = CliRunner().invoke(app, ["simulate", "--shipyard", str(SHIPYARD), str(triggers)])
    assert first.exit_code == 0
    assert first.stdout == second.stdout
    trigger_line = json.loads(first.stdout.splitlines()[0])
    assert trigger_line["id"] and trigger_line["shkeptncontext"]  # filled in
    assert trigger_line["time"] == "2025-01-01T00:00:00.000Z"


def test_control_lines_pause_and_abort_at_their_time(tmp_path: Path) -> None:
    data = {"project": "sockshop", "stage": "dev", "service": "carts"}
    lines = [
        {"type": "sh.keptn.event.dev.delivery.triggered", "shkeptncontext": "run-2",
         "time": "2025-03-01T10:00:00Z", "data": data},
        {"type": "sh.tidegate.sequence.control", "shkeptncontext": "run-2", "time": "2025-03-01T10:03:00Z",
         "data": {**data, "state": "abort"}},
    ]
    triggers = tmp_path / "triggers.jsonl"
    triggers.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code, events, summary, _ = simulate("--shipyard", SHIPYARD, "--respond", "deployment=hang", triggers)
    assert code == 0
    dev = by_sequence(summary)[("dev", "delivery")]
    assert (dev["state"], dev["status"], dev["result"]) == ("aborted", "aborted", "pass")
    assert not any(e["key"].startswith("sockshop/staging/") for e in events)


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        ("{not json\n", [], "triggers.jsonl:1: not JSON"),
        ('{"type": "sh.keptn.event.dev.delivery.triggered"}\n[1]\n', [], "triggers.jsonl:2: expected a JSON object"),
        ('{"data": {}}\n', [], "has no type"),
        ('{"type": "sh.keptn.event.dev.delivery.triggered", "time": "yesterday"}\n', [], "triggers.jsonl:1: not a usable"),
        ("", [], "has no events"),
        ('{"type": "sh.keptn.event.dev.delivery.triggered"}\n', ["--respond", "test=maybe"], "not one of"),
        ('{"type": "sh.keptn.event.dev.delivery.triggered"}\n', ["--started-timeout", "ten"], "not a duration"),
    ],
)
def test_unusable_input_exits_2_with_a_message(tmp_path: Path, content: str, args: list[str], words: str) -> None:
    triggers = tmp_path / "triggers.jsonl"
    triggers.write_text(content)
    code, events, _, stderr = simulate("--shipyard", SHIPYARD, *args, triggers)
    assert code == 2
    assert events == []
    assert words in stderr


def test_an_invalid_shipyard_exits_2_naming_the_problem(tmp_path: Path) -> None:
    shipyard = tmp_path / "shipyard.yaml"
    shipyard.write_text("apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nspec:\n  stages:\n    - name: Dev.Stage\n")
    code, _, _, stderr = simulate("--shipyard", shipyard, TRIGGERS)
    assert code == 2
    assert "shipyard.yaml" in stderr and "Dev.Stage" in stderr


def test_an_event_without_a_service_is_reported_as_a_dead_letter(tmp_path: Path) -> None:
    triggers = tmp_path / "triggers.jsonl"
    triggers.write_text(json.dumps({"type": "sh.keptn.event.dev.delivery.triggered",
                                    "data": {"project": "sockshop", "stage": "dev"}}) + "\n")
    code, events, summary, stderr = simulate("--shipyard", SHIPYARD, triggers)
    assert code == 0
    assert types(events) == ["sh.keptn.event.dev.delivery.triggered"]
    assert summary == []
    assert "would go to the DLQ" in stderr and "service" in stderr
