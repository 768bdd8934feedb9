"""Every real Keptn file of the corpus loads with the right kind; the five broken ones are rejected.

The corpus (`tests/fixtures/keptn-examples/`, 161 files from public Keptn repositories, see its
README.md) holds what Keptn users and maintainers actually wrote: old formats, odd YAML styles and
small mistakes that Keptn tolerated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tidegate.schemas.errors import FileError, Severity
from tidegate.schemas.files import FileKind, load_file
from tidegate.schemas.remediation import Remediation
from tidegate.schemas.shipyard import Shipyard

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "keptn-examples"
INDEX: list[dict[str, Any]] = json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))

# The corpus distinguishes the old forms; Tidegate converts them into the current kind.
KIND_OF_INDEX_KIND = {
    "shipyard": FileKind.SHIPYARD,
    "shipyard-legacy": FileKind.SHIPYARD,
    "slo": FileKind.SLO,
    "sli": FileKind.SLI,
    "remediation": FileKind.REMEDIATION,
    "remediation-legacy": FileKind.REMEDIATION,
    "locust": FileKind.LOCUST,
    "jmeter": FileKind.JMETER,
    "job-executor": FileKind.JOB_EXECUTOR,
    "webhook": FileKind.WEBHOOK,
}
VALID = [entry for entry in INDEX if not entry.get("expect_invalid")]
INVALID = [entry for entry in INDEX if entry.get("expect_invalid")]


def test_the_corpus_is_complete() -> None:
    assert len(INDEX) == 161
    assert len(INVALID) == 5
    assert all((CORPUS / entry["path"]).is_file() for entry in INDEX)


@pytest.mark.parametrize("entry", VALID, ids=[entry["path"] for entry in VALID])
def test_a_file_keptn_used_loads_as_its_kind(entry: dict[str, Any]) -> None:
    loaded = load_file(CORPUS / entry["path"])
    assert loaded.kind is KIND_OF_INDEX_KIND[entry["kind"]]
    assert all(w.severity is Severity.WARNING for w in loaded.warnings)
    if entry["kind"] == "shipyard-legacy":
        assert loaded.converted_from == "Keptn 0.7 shipyard"
        assert isinstance(loaded.model, Shipyard) and loaded.model.apiVersion == "spec.keptn.sh/0.2.0"
    if entry["kind"] == "remediation-legacy":
        assert loaded.converted_from == "pre-0.7 remediation list"
        assert isinstance(loaded.model, Remediation)


@pytest.mark.parametrize("entry", INVALID, ids=[entry["path"] for entry in INVALID])
def test_a_broken_file_is_rejected_with_a_problem_naming_it(entry: dict[str, Any]) -> None:
    path = CORPUS / entry["path"]
    with pytest.raises(FileError) as caught:
        load_file(path)
    assert caught.value.problems
    assert all(problem.path == str(path) for problem in caught.value.problems)
    assert all(str(problem).startswith(f"{path}:") for problem in caught.value.problems)


def test_the_broken_files_fail_for_the_reason_the_corpus_gives() -> None:
    def problems(relative: str) -> list[str]:
        with pytest.raises(FileError) as caught:
            load_file(CORPUS / relative)
        return [f"{p.line}: {p.field}: {p.message}" for p in caught.value.problems]

    slis = "keptn-contrib__dynatrace-service/internal/keptn/testdata/config_client/get_slis/"
    assert problems(slis + "sli.invalid_yaml")[0].startswith("2: : invalid YAML: mapping values are not allowed here")
    assert problems(slis + "sli_no_indicators.yaml") == ["1: indicators: missing required field"]
    assert problems("keptn-contrib__job-executor-service/test/data/e2e/empty.config.yaml") == [
        "2: actions: expected a list, got a mapping"
    ]
    webhook = problems("keptn__keptn/api/test/data/import/sample-package/resources/webhook.yaml")
    assert [p.split(": ")[:2] for p in webhook] == [["7", "spec.webhooks[0].type"], ["10", "spec.webhooks[0].subscriptionID"]]


def test_quirks_are_read_the_way_keptn_meant_them() -> None:
    toggle = load_file(CORPUS / "keptn__examples/_history/1b249b3b685f/onboarding-carts/remediation_feature_toggle.yaml")
    actions = toggle.expect(Remediation).actions_for(None, "Failure rate increase")
    assert actions[0].value == {"EnablePromotion": "off"}
    versioned = load_file(CORPUS / "keptn__keptn/_history/e23ad7fe8e0e/test/assets/self_healing_remediation.yaml")
    assert versioned.expect(Remediation).apiVersion == "spec.keptn.sh/0.1.4"
    alpha = load_file(CORPUS / "keptn__examples/_history/fb8ffb6cd54c/onboarding-carts/shipyard.yaml")
    production = alpha.expect(Shipyard).stage("production")
    assert production is not None
    assert [t.event for t in production.sequences[0].triggeredOn] == ["staging.artifact-delivery.finished"]
