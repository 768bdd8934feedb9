"""Remediation files: the 0.1.4 form, its `version:` spelling, the pre-0.7 list, and action lookup."""

from __future__ import annotations

from textwrap import dedent

import pytest

from tidegate.schemas.errors import FileValidationError
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.remediation import Remediation, convert_legacy_remediation

REMEDIATION = dedent("""\
    apiVersion: spec.keptn.sh/0.1.4
    kind: Remediation
    metadata:
      name: carts-remediation
    spec:
      remediations:
        - problemType: Response time degradation
          actionsOnOpen:
            - name: scaling
              action: scaling
              description: Scale up
              value: "1"
            - name: Toggle feature flag
              action: toggle-feature
              value:
                EnablePromotion: "off"
        - problemType: out_of_memory
          actionsOnOpen:
            - action: restart
        - problemType: default
          actionsOnOpen:
            - name: Escalate
              action: escalate
              value: {}
    """)


def remediation(text: str = REMEDIATION) -> Remediation:
    return load_text(text, "remediation.yaml").expect(Remediation)


def errors_of(text: str) -> list[str]:
    with pytest.raises(FileValidationError) as caught:
        load_text(text, "remediation.yaml")
    return [str(p) for p in caught.value.problems]


def test_actions_are_looked_up_by_root_cause_then_problem_title_then_default() -> None:
    model = remediation()
    by_title = model.actions_for(root_cause=None, problem_title="Response time degradation")
    assert [a.action for a in by_title] == ["scaling", "toggle-feature"]
    assert by_title[1].value == {"EnablePromotion": "off"}
    # The root cause wins over the title.
    by_cause = model.actions_for(root_cause="out_of_memory", problem_title="Response time degradation")
    assert [a.action for a in by_cause] == ["restart"]
    # Unknown root cause: the title is tried next.
    assert [a.action for a in model.actions_for("disk full", "Response time degradation")] == [
        "scaling", "toggle-feature"]
    assert [a.action for a in model.actions_for("", "Something else")] == ["escalate"]


def test_without_a_default_entry_an_unknown_problem_has_no_actions() -> None:
    text = REMEDIATION[: REMEDIATION.index("    - problemType: default")]
    assert remediation(text).actions_for("x", "y") == []


def test_missing_action_fields_default_like_keptn() -> None:
    restart = remediation().actions_for("out_of_memory", None)[0]
    assert (restart.name, restart.description, restart.value) == ("", "", None)


@pytest.mark.parametrize("version", ["spec.keptn.sh/0.1.3", "spec.keptn.sh/0.2.0", "v1"])
def test_any_other_api_version_is_rejected_as_remediation_service_did(version: str) -> None:
    assert errors_of(REMEDIATION.replace("spec.keptn.sh/0.1.4", version)) == [
        f"remediation.yaml:1: apiVersion: apiVersion '{version}' is not supported: remediation files must use "
        "spec.keptn.sh/0.1.4 (Keptn's remediation-service rejected every other version too)"
    ]


def test_a_file_without_any_version_is_rejected() -> None:
    assert errors_of(REMEDIATION.replace("apiVersion: spec.keptn.sh/0.1.4\n", "")) == [
        "remediation.yaml:1: apiVersion: missing required field"
    ]


@pytest.mark.parametrize("version", ["0.2.0", "spec.keptn.sh/0.1.4"])
def test_the_version_key_is_read_as_the_api_version_with_a_warning(version: str) -> None:
    text = REMEDIATION.replace("apiVersion: spec.keptn.sh/0.1.4", f"version: {version}")
    loaded = load_text(text, "remediation.yaml")
    model = loaded.expect(Remediation)
    assert model.apiVersion == "spec.keptn.sh/0.1.4"
    assert [str(w) for w in loaded.warnings] == [
        f"remediation.yaml:1: version: `version: {version}` is an old spelling; this file is read as "
        "`apiVersion: spec.keptn.sh/0.1.4`, write that instead"
    ]
    assert "version" not in model.model_dump()


def test_an_unknown_version_key_is_an_error_at_that_key() -> None:
    assert errors_of(REMEDIATION.replace("apiVersion: spec.keptn.sh/0.1.4", "version: 0.3.0")) == [
        "remediation.yaml:1: version: '0.3.0' is not a remediation version; write `apiVersion: spec.keptn.sh/0.1.4`"
    ]


def test_an_action_without_its_action_name_points_at_the_entry() -> None:
    text = REMEDIATION.replace("        - action: restart\n", "        - name: restart\n")
    assert errors_of(text) == [
        "remediation.yaml:19: spec.remediations[1].actionsOnOpen[0].action: missing required field"
    ]


def test_unquoted_yaml11_booleans_stay_the_words_the_toggle_provider_expects() -> None:
    text = REMEDIATION.replace('EnablePromotion: "off"', "EnablePromotion: off")
    loaded = load_text(text, "remediation.yaml")
    action = loaded.expect(Remediation).actions_for(None, "Response time degradation")[1]
    assert action.value == {"EnablePromotion": "off"}
    assert [str(w) for w in loaded.warnings] == [
        "remediation.yaml:16: spec.remediations[0].actionsOnOpen[1].value.EnablePromotion: unquoted off is read "
        "as the text 'off'; YAML 1.1 tools (and Keptn) read it as a boolean. Quote it ('off') so every tool agrees"
    ]


def test_numbers_where_text_is_expected_are_read_as_their_text() -> None:
    model = remediation(REMEDIATION.replace("problemType: out_of_memory", "problemType: 503"))
    assert [entry.problemType for entry in model.spec.remediations][1] == "503"


# -- before 0.7 -----------------------------------------------------------------------------------

LEGACY = dedent("""\
    remediations:
    - name: cpu_usage
      actions:
      - action: scaling
        value: +1
    - name: "Failure rate increase"
      actions:
        - action: featuretoggle
          value: EnablePromotion:off
    """)


def test_the_pre_07_list_is_converted_to_0_1_4() -> None:
    loaded = load_text(LEGACY, "remediation.yaml")
    assert loaded.kind is FileKind.REMEDIATION
    assert loaded.converted_from == "pre-0.7 remediation list"
    model = loaded.expect(Remediation)
    assert model.apiVersion == "spec.keptn.sh/0.1.4"
    scaling = model.actions_for("cpu_usage", None)
    # `+1` is the number 1 in YAML; helm's scaling action adds the value to the replicas either way.
    assert [(a.name, a.action, a.value) for a in scaling] == [("scaling", "scaling", "1")]
    toggle = model.actions_for(None, "Failure rate increase")
    assert [(a.action, a.value) for a in toggle] == [("toggle-feature", {"EnablePromotion": "off"})]


def test_convert_legacy_remediation_works_on_parsed_yaml() -> None:
    model = convert_legacy_remediation({"remediations": [{"name": "x", "actions": [{"action": "restart"}]}]})
    assert [(a.action, a.value) for a in model.actions_for("x", None)] == [("restart", "")]


def test_legacy_problems_point_at_the_legacy_file() -> None:
    assert errors_of(LEGACY.replace("  - action: scaling\n", "  - actoin: scaling\n")) == [
        "remediation.yaml:4: remediations[0].actions[0].action: missing required field"
    ]
