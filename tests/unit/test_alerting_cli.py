"""`tidegate configure monitoring prometheus` on local project folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tidegate.cli.main import app
from tidegate.cli.monitoring import load_project_folder

REPO = Path(__file__).resolve().parents[2]
SOCKSHOP = REPO / "examples" / "sockshop"

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: shop}
spec:
  stages:
    - name: dev
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
    - name: prod
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
"""
REMEDIATION = """apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
spec:
  remediations:
    - problemType: default
      actionsOnOpen: [{action: escalate}]
"""


def slo(criterion: str) -> str:
    return f"objectives:\n  - sli: latency\n    pass:\n      - criteria: ['{criterion}']\n"


@pytest.fixture(autouse=True)
def no_alertmanager_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOKEN", "USER", "PASSWORD"):
        monkeypatch.delenv(f"TIDEGATE_ALERTMANAGER_{name}", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "prometheus").mkdir(parents=True)
    (root / "shipyard.yaml").write_text(SHIPYARD)
    (root / "slo.yaml").write_text(slo("<500"))
    (root / "prometheus" / "sli.yaml").write_text("indicators:\n  latency: lat{job='$SERVICE-$STAGE'}\n")
    # prod/cart: its own SLO and remediation; dev has no remediation file.
    (root / "prod" / "cart").mkdir(parents=True)
    (root / "prod" / "cart" / "slo.yaml").write_text(slo("<=200"))
    (root / "prod" / "remediation.yaml").write_text(REMEDIATION)
    (root / "prod" / "cart" / "prometheus").mkdir()
    (root / "prod" / "cart" / "prometheus" / "sli.yaml").write_text("indicators:\n  latency: cart_lat{s='$STAGE'}\n")
    return root


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["configure", "monitoring", "prometheus", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_folder_layout_maps_to_project_stage_and_service_levels(project: Path) -> None:
    store = load_project_folder(project, "shop")
    assert {(r.stage, r.service, r.path) for r in store.files("shop")} == {
        ("", "", "shipyard.yaml"), ("", "", "slo.yaml"), ("", "", "prometheus/sli.yaml"),
        ("prod", "", "remediation.yaml"), ("prod", "cart", "slo.yaml"), ("prod", "cart", "prometheus/sli.yaml"),
    }


def test_rules_use_the_most_specific_files_and_skip_stages_without_remediation(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    code, stdout, stderr = invoke("--project", "shop", "--from", str(project), "--for", "20s", "--out", str(out))
    assert code == 0, stderr
    groups = yaml.safe_load(out.read_text())["groups"]
    assert [g["name"] for g in groups] == ["cart shop-prod alerts"]
    [rule] = groups[0]["rules"]
    # Service-level SLO (<=200) and SLI (cart_lat) win over the project's.
    assert rule["expr"] == "(cart_lat{s='prod'}) > 200"
    assert rule["for"] == "20s"
    assert "dev/cart: no remediation.yaml" in stderr
    assert "1 rule(s) (latency)" in stdout


def test_the_sockshop_example_gives_rules_and_explains_the_skipped_objectives(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    code, _, stderr = invoke("--project", "sockshop", "--from", str(SOCKSHOP), "--service", "carts",
                             "--stage", "dev", "--stage", "production", "--out", str(out))
    assert code == 0, stderr
    dev, production = yaml.safe_load(out.read_text())["groups"]
    # dev uses the project's SLO; production has its own SLO, SLI and remediation files.
    assert dev["name"] == "carts sockshop-dev alerts"
    assert [r["alert"] for r in dev["rules"]] == ["response_time_p95", "error_rate"]
    assert [r["alert"] for r in production["rules"]] == ["orders_response_time_p95"]
    assert 'handler="/orders"' in production["rules"][0]["expr"]
    assert "dev/carts: no rule for throughput" in stderr and "compares with previous results" in stderr


def test_existing_groups_in_the_rule_file_are_kept(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    out.write_text(yaml.safe_dump({"groups": [{"name": "node", "rules": [{"alert": "Down", "expr": "up == 0"}]}]}))
    code, _, stderr = invoke("--project", "shop", "--from", str(project), "--out", str(out))
    assert code == 0, stderr
    assert [g["name"] for g in yaml.safe_load(out.read_text())["groups"]] == ["node", "cart shop-prod alerts"]


def test_the_alertmanager_config_carries_the_bridge_auth_and_is_private(project: Path, tmp_path: Path) -> None:
    am = tmp_path / "alertmanager.yml"
    code, _, stderr = invoke(
        "--project", "shop", "--from", str(project), "--out", str(tmp_path / "r.yml"),
        "--alertmanager-config", str(am), "--bridge-url", "http://127.0.0.1:19180/api/alertmanager",
        env={"TIDEGATE_ALERTMANAGER_TOKEN": "s3cret"},
    )
    assert code == 0, stderr
    config = yaml.safe_load(am.read_text())
    webhook = config["receivers"][1]["webhook_configs"][0]
    assert webhook["http_config"]["authorization"] == {"type": "Bearer", "credentials": "s3cret"}
    assert stat.S_IMODE(am.stat().st_mode) == 0o600


def test_a_credentials_file_is_referenced_not_copied(project: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret")
    am = tmp_path / "alertmanager.yml"
    code, _, stderr = invoke("--project", "shop", "--from", str(project), "--out", str(tmp_path / "r.yml"),
                             "--alertmanager-config", str(am), "--credentials-file", str(token_file))
    assert code == 0, stderr
    assert "s3cret" not in am.read_text()
    assert str(token_file) in am.read_text()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--project", "shop"], "--from DIR"),
        (["--project", "shop", "--from", "FOLDER", "--for", "10"], "not a Prometheus duration"),
        (["--project", "shop", "--from", "FOLDER", "--stage", "dev"], "no alert rules for project 'shop'"),
        (["--project", "shop", "--from", "FOLDER", "--alertmanager-config", "am.yml"], "TIDEGATE_ALERTMANAGER_TOKEN"),
        (["--project", "shop", "--from", "EMPTY"], "no shipyard.yaml"),
        (["--project", "shop", "--from", "MISSING"], "is not a folder"),
    ],
)
def test_errors_say_what_to_do(project: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "empty").mkdir()
    folders = {"FOLDER": str(project), "EMPTY": str(tmp_path / "empty"), "MISSING": str(tmp_path / "missing")}
    args = [folders.get(a, a) for a in args]
    code, _, stderr = invoke(*args, "--out", str(tmp_path / "r.yml"))
    assert code == 2
    assert needle in stderr
