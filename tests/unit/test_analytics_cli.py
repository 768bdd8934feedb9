"""`tidegate get metrics` and `tidegate evaluate --replay`, computing locally from a history store (--store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.test_analytics import PROJECT, recorded_stream
from tests.unit.test_whatif import ERROR_RATE_KEY_SLI
from tests.unit.test_whatif import history as evaluation_history
from tidegate.cli.main import app
from tidegate.readside.history import HistoryStore, entry_of_event

runner = CliRunner()
WINDOW = ["--since", "10d", "--until", "2026-01-11T00:00:00Z"]


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    store = HistoryStore(url)
    store.ingest(entry_of_event(e) for e in [*recorded_stream(), *evaluation_history()])
    store.close()
    yield url


def test_get_metrics_as_json_is_the_reports_json(store_url: str) -> None:
    result = runner.invoke(app, ["get", "metrics", "--project", PROJECT, *WINDOW, "--store", store_url, "-o", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dora"]["deployments"] == 4 and report["dora"]["changeFailureRate"] == 0.4


def test_get_metrics_as_text_summarises_dora_and_tabulates_stages(store_url: str) -> None:
    result = runner.invoke(app, ["get", "metrics", "--project", PROJECT, *WINDOW, "--store", store_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Project shop: 2026-01-01 to 2026-01-11 (10 days)"
    assert "  deployment frequency  4 successful deliveries, 0.4 per day" in lines
    assert "  lead time for changes median 3h 0m, p90 5h 57m (4 changes)" in lines  # 10800 s, 21420 s
    assert any(line.startswith("  change failure rate   40% (2 of 5 changes; rollback 1") for line in lines)
    assert "  time to restore       median 30m 0s (1 restored, 1 unresolved)" in lines
    header = next(line for line in lines if line.startswith("STAGE"))
    assert header.split() == ["STAGE", "SERVICE", "DEPLOYS", "LEAD", "TIME", "CFR", "RESTORE", "EVALS", "PASS",
                              "ACTIONS", "ESCALATED"]
    production_carts = next(line for line in lines if line.startswith("production") and " carts " in line)
    assert production_carts.split()[:3] == ["production", "carts", "3"]


def test_get_metrics_refuses_a_bad_window(store_url: str) -> None:
    result = runner.invoke(app, ["get", "metrics", "--project", PROJECT, "--since", "soon", "--store", store_url])
    assert result.exit_code == 2
    assert "error: --since 'soon' is not a duration; write it like 30d" in result.output


def test_evaluate_replay_prints_the_verdicts_that_would_change(store_url: str, tmp_path: Path) -> None:
    slo = tmp_path / "new-slo.yaml"
    slo.write_text(ERROR_RATE_KEY_SLI)
    args = ["evaluate", "--replay", "--project", "shop", "--stage", "staging", "--service", "carts",
            "--slo", str(slo), *WINDOW, "--store", store_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The recorded stream adds staging/carts evaluations of its own (A's pass and X's invalidated fail).
    assert lines[0].startswith("shop/staging/carts: ")
    assert "2026-01-04 12:02 ctx-e4: was pass (100), would be fail (50)" in lines
    assert "  error_rate = 0.02: not scored -> fail, misses <0.01" in lines
    as_json = json.loads(runner.invoke(app, [*args, "--output", "json"]).output)
    assert {c["id"] for c in as_json["changed"]} >= {"e1", "e2", "e4"}


def test_evaluate_replay_needs_the_service_and_a_usable_slo(store_url: str, tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives: []")
    missing = runner.invoke(app, ["evaluate", "--replay", "--project", "shop", "--slo", str(slo)])
    assert missing.exit_code == 2 and "--replay needs --stage, --service" in missing.output
    empty = runner.invoke(app, ["evaluate", "--replay", "--project", "shop", "--stage", "staging",
                                "--service", "carts", "--slo", str(slo), "--store", store_url])
    assert empty.exit_code == 2 and "has no objectives" in empty.output


def test_evaluate_without_replay_still_needs_sli(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives: [{sli: rt, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90%'}")
    result = runner.invoke(app, ["evaluate", "--slo", str(slo)])
    assert result.exit_code == 2 and "--sli is required" in result.output
