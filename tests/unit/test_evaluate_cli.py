"""`tidegate evaluate` end to end: files in, verdict out, exit code for CI (0 pass/warning, 1 fail, 2 unusable)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tidegate.cli.evaluate import evaluate_command
from tidegate.cli.main import COMMANDS, app
from tidegate.schemas.yamlreader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "evaluate"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli() -> typer.Typer:
    # The command alone, so these tests do not depend on the other command modules.
    single = typer.Typer()
    single.command("evaluate")(evaluate_command)
    return single


def _args(
    slo: str, sli: str, previous: str | None = "previous_500.json", output: str | None = None
) -> list[str]:
    args = ["--slo", str(FIXTURES / slo), "--sli", str(FIXTURES / sli)]
    if previous is not None:
        args += ["--previous", str(FIXTURES / previous)]
    if output is not None:
        args += ["--output", output]
    return args


def test_the_command_is_registered_on_the_tidegate_app() -> None:
    assert COMMANDS["evaluate"].target == "tidegate.cli.evaluate:evaluate_command"
    result = CliRunner().invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0 and "--slo" in result.output


def test_pass_exits_0(runner: CliRunner, cli: typer.Typer) -> None:
    result = runner.invoke(cli, _args("slo_response_time.yaml", "values_540.json"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Quality gate: PASS")


def test_fail_exits_1_and_text_names_the_violated_target(runner: CliRunner, cli: typer.Typer) -> None:
    result = runner.invoke(cli, _args("slo_response_time.yaml", "values_580.json"))
    assert result.exit_code == 1, result.output
    assert "Quality gate: FAIL" in result.stdout
    violated = [line for line in result.stdout.splitlines() if "VIOLATED" in line]
    assert len(violated) == 1
    assert "<=+10%" in violated[0] and "550" in violated[0] and "580" in violated[0]
    assert "Why: the score 50 " in result.stdout


def test_warning_exits_0(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    slo = (FIXTURES / "slo_response_time.yaml").read_text().replace('warning: "75%"', 'warning: "50%"')
    (tmp_path / "slo.yaml").write_text(slo)
    shutil.copy(FIXTURES / "values_580.json", tmp_path / "values.json")
    result = runner.invoke(cli, ["--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Quality gate: PASS")  # no history: the relative criterion holds
    shutil.copy(FIXTURES / "previous_500.json", tmp_path / "previous.json")
    args = [
        "--slo",
        str(tmp_path / "slo.yaml"),
        "--sli",
        str(tmp_path / "values.json"),
        "--previous",
        str(tmp_path / "previous.json"),
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Quality gate: WARNING")


def test_json_output_is_the_evaluation_finished_data(runner: CliRunner, cli: typer.Typer) -> None:
    result = runner.invoke(cli, _args("slo_response_time.yaml", "values_580.json", output="json"))
    assert result.exit_code == 1, result.output
    expected = json.loads((FIXTURES / "expected_580_finished_data.json").read_text())
    assert json.loads(result.stdout) == expected


def test_without_previous_results_relative_targets_hold(runner: CliRunner, cli: typer.Typer) -> None:
    result = runner.invoke(
        cli, _args("slo_response_time.yaml", "values_580.json", previous=None, output="json")
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["evaluation"]["comparedEvents"] == []
    assert data["evaluation"]["indicatorResults"][0]["passTargets"][0] == {
        "criteria": "<=+10%",
        "targetValue": 0,
        "violated": False,
    }


def test_invalid_criterion_exits_2_and_still_prints_keptns_verdict(
    runner: CliRunner, cli: typer.Typer
) -> None:
    result = runner.invoke(cli, _args("slo_invalid_criteria.yaml", "values_540.json", output="json"))
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["result"] == "fail"
    assert data["message"] == "error with response_time_p95: could not parse criteria target value"


@pytest.mark.parametrize(
    ("files", "complaint"),
    [
        ({"slo.yaml": "objectives: [", "values.json": "[]"}, "is not valid YAML at line"),
        ({"slo.yaml": "objectives: [{weight: 2}]", "values.json": "[]"}, "objectives[0].sli"),
        ({"slo.yaml": "objectives: []", "values.json": "{not json"}, "is not valid JSON at line 1"),
        ({"slo.yaml": "objectives: []", "values.json": '{"metric": "rt"}'}, "expected a JSON list"),
        ({"slo.yaml": "objectives: []", "values.json": '[{"value": 1}]'}, "entry 0: `metric` is required"),
        (
            {"slo.yaml": "objectives: []", "values.json": '[{"metric": "rt", "value": "fast"}]'},
            "entry 0 (rt): `value` must be a number, got a JSON string",
        ),
        (
            {"slo.yaml": "objectives: []", "values.json": "[]", "previous.json": '[{"evaluation": {}}]'},
            "entry 0 has no `result`",
        ),
        ({"values.json": "[]"}, "does not exist"),
    ],
)
def test_unusable_input_exits_2_with_a_clear_message(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path, files: dict[str, str], complaint: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = ["--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json")]
    if "previous.json" in files:
        args += ["--previous", str(tmp_path / "previous.json")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert complaint in result.stderr


def test_missing_total_score_exits_2(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text("objectives: [{sli: rt, pass: [{criteria: ['<1']}]}]")
    (tmp_path / "values.json").write_text('[{"metric": "rt", "value": 0, "success": true}]')
    result = runner.invoke(cli, ["--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json")])
    assert result.exit_code == 2
    assert "errored: no target score defined" in result.stdout


def test_slo_without_objectives_exits_2(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text("spec_version: '1.0'\nobjectives:\n")
    (tmp_path / "values.json").write_text("[]")
    result = runner.invoke(
        cli, ["--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json"), "--output", "json"]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout)["message"] == "lighthouse failed because no SLO objective was provided"


def _alias_bomb() -> str:
    """~450 bytes that stand for 8**10 values (a billion laughs), before a valid SLO's objectives."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\nobjectives: [{sli: rt, pass: [{criteria: ['<1']}]}]\n"


def test_an_alias_bomb_slo_is_refused_with_the_limit(tmp_path: Path) -> None:
    # As a user runs it, in its own interpreter. yaml.safe_load took this file (the aliases share one
    # list) and handed on data that stands for 8**10 values to whatever walks it next; the YAML
    # reader counts the expanded values before building anything and refuses it at the fifth line.
    (tmp_path / "slo.yaml").write_text(_alias_bomb())
    (tmp_path / "values.json").write_text('[{"metric": "rt", "value": 0.5}]')
    completed = subprocess.run(
        [sys.executable, "-c", "import sys; from tidegate.cli.main import main; sys.exit(main())",
         "evaluate", "--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert f"SLO file {str(tmp_path / 'slo.yaml')!r} is refused at line 5" in completed.stderr
    assert f"more than {MAX_NODES} values once its aliases" in completed.stderr


def test_deep_nesting_and_an_oversized_slo_are_refused(runner: CliRunner, cli: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "values.json").write_text("[]")
    args = ["--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json")]
    (tmp_path / "slo.yaml").write_text("objectives: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert f"is refused at line 1, column {MAX_DEPTH + 12}: the document nests deeper than {MAX_DEPTH}" in result.output
    (tmp_path / "slo.yaml").write_text("objectives: []\n" + "#" * MAX_FILE_BYTES + "\n")
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert f"is larger than {MAX_FILE_BYTES} bytes" in result.output


def test_the_slo_is_read_with_yaml_1_2_scalars_as_lint_reads_it(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path
) -> None:
    # YAML 1.1 (yaml.safe_load) read the unquoted indicator name `on` as the boolean true, which is
    # not an SLI name; YAML 1.2 reads the text, as `tidegate lint` and the evaluator agent do.
    (tmp_path / "slo.yaml").write_text(
        "objectives:\n  - sli: on\n    pass: [{criteria: ['<1']}]\ntotal_score: {pass: '90%', warning: '75%'}\n"
    )
    (tmp_path / "values.json").write_text('[{"metric": "on", "value": 0.5, "success": true}]')
    result = runner.invoke(
        cli, ["--slo", str(tmp_path / "slo.yaml"), "--sli", str(tmp_path / "values.json"), "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["evaluation"]["result"] == "pass"
    assert [item["value"]["metric"] for item in data["evaluation"]["indicatorResults"]] == ["on"]


@pytest.mark.parametrize("option", ["--sli", "--previous"])
def test_oversized_and_endless_json_inputs_are_refused_naming_the_file(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path, option: str
) -> None:
    # json.loads read any size; /dev/zero (or a FIFO) was read until memory ran out. Now at most
    # MAX_FILE_BYTES are read, then the file is refused with its name.
    (tmp_path / "values.json").write_text("[]")
    big = tmp_path / "big.json"
    big.write_text("[" + " " * MAX_FILE_BYTES + "]")
    args = ["--slo", str(FIXTURES / "slo_response_time.yaml"), "--sli", str(tmp_path / "values.json")]
    for source in (big, Path("/dev/zero")):
        result = runner.invoke(cli, [*args, option, str(source)])
        assert result.exit_code == 2, result.output
        assert f"file {str(source)!r} is larger than {MAX_FILE_BYTES} bytes" in result.stderr


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 100_000])
def test_deeply_nested_json_is_refused_naming_the_file(
    runner: CliRunner, cli: typer.Typer, tmp_path: Path, levels: int
) -> None:
    # 100,000 levels made json.loads raise RecursionError (a traceback); MAX_DEPTH + 1 passed unnoticed.
    nested = tmp_path / "nested.json"
    nested.write_text("[" * levels + "]" * levels)
    result = runner.invoke(cli, ["--slo", str(FIXTURES / "slo_response_time.yaml"), "--sli", str(nested)])
    assert result.exit_code == 2, result.output
    assert f"SLI values file {str(nested)!r} is refused: it nests deeper than {MAX_DEPTH} levels" in result.stderr
    (tmp_path / "values.json").write_text('[{"metric": "response_time_p95", "value": 500, "success": true}]')
    result = runner.invoke(cli, ["--slo", str(FIXTURES / "slo_response_time.yaml"), "--sli",
                                 str(tmp_path / "values.json"), "--previous", str(nested)])
    assert result.exit_code == 2 and "previous evaluations file" in result.stderr and "nests deeper" in result.stderr
