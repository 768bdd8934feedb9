"""Shipyard files: Keptn's validation rules, the older forms, and problems that point at the right line."""

from __future__ import annotations

from datetime import timedelta
from textwrap import dedent

import pytest
from pydantic import ValidationError

from tidegate.schemas.errors import FileValidationError, Severity
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.shipyard import (
    BUILTIN_EVALUATION,
    LegacyShipyard,
    Shipyard,
    convert_legacy_shipyard,
)

VALID = dedent("""\
    apiVersion: spec.keptn.sh/0.2.2
    kind: Shipyard
    metadata:
      name: sockshop
    spec:
      stages:
        - name: dev
          sequences:
            - name: delivery
              tasks:
                - name: deployment
                  properties:
                    deploymentstrategy: direct
                - name: evaluation
                  triggeredAfter: "1h30m"
        - name: prod
          sequences:
            - name: delivery
              triggeredOn:
                - event: dev.delivery.finished
                  selector:
                    match:
                      result: pass
              tasks:
                - name: release
    """)


def errors_of(text: str, path: str = "shipyard.yaml") -> list[str]:
    with pytest.raises(FileValidationError) as caught:
        load_text(text, path)
    assert all(p.severity is Severity.ERROR for p in caught.value.problems)
    return [str(p) for p in caught.value.problems]


def warnings_of(text: str, path: str = "shipyard.yaml") -> list[str]:
    return [str(w) for w in load_text(text, path).warnings]


def test_a_valid_shipyard_loads_with_its_stages_sequences_and_tasks() -> None:
    loaded = load_text(VALID, "shipyard.yaml")
    assert loaded.kind is FileKind.SHIPYARD
    assert loaded.warnings == ()
    shipyard = loaded.expect(Shipyard)
    assert shipyard.stage_names == ["dev", "prod"]
    prod = shipyard.stage("prod")
    assert prod is not None
    delivery = prod.sequence("delivery")
    assert delivery is not None
    trigger = delivery.triggeredOn[0]
    assert (trigger.stage, trigger.sequence) == ("dev", "delivery")
    assert trigger.selector is not None and trigger.selector.match == {"result": "pass"}
    dev = shipyard.stage("dev")
    assert dev is not None
    dev_delivery = dev.sequence("delivery")
    assert dev_delivery is not None
    assert dev_delivery.tasks[1].delay == timedelta(hours=1, minutes=30)
    assert dev_delivery.tasks[0].delay is None


def test_a_stage_without_an_evaluation_sequence_falls_back_to_the_builtin_one() -> None:
    shipyard = load_text(VALID, "shipyard.yaml").expect(Shipyard)
    dev = shipyard.stage("dev")
    assert dev is not None
    assert dev.sequence("evaluation") is BUILTIN_EVALUATION
    assert [t.name for t in BUILTIN_EVALUATION.tasks] == ["evaluation"]
    assert dev.sequence("rollback") is None
    assert shipyard.stage("qa") is None


def test_a_dot_in_a_stage_name_is_reported_with_file_line_field_and_reason() -> None:
    text = VALID.replace("- name: prod", "- name: prod.eu")
    assert errors_of(text) == [
        "shipyard.yaml:16: spec.stages[1].name: stage 'prod.eu': dots are not allowed in stage names"
    ]


def test_stage_names_must_follow_keptns_entity_name_rule() -> None:
    text = VALID.replace("- name: dev", "- name: Dev_1")
    assert errors_of(text) == [
        "shipyard.yaml:7: spec.stages[0].name: stage 'Dev_1': names must start with a lower-case letter and "
        "contain only lower-case letters, digits and dashes"
    ]


def test_dots_in_sequence_and_task_names_are_rejected() -> None:
    text = VALID.replace("        - name: delivery\n          tasks:\n            - name: deployment",
                         "        - name: deliver.y\n          tasks:\n            - name: deploy.ment")
    assert errors_of(text) == [
        "shipyard.yaml:9: spec.stages[0].sequences[0].name: sequence 'deliver.y': dots are not allowed in "
        "sequence names",
        "shipyard.yaml:11: spec.stages[0].sequences[0].tasks[0].name: task 'deploy.ment': dots are not allowed "
        "in task names",
    ]


@pytest.mark.parametrize(("version", "accepted"), [
    ("spec.keptn.sh/0.2.0", True),
    ("spec.keptn.sh/0.2.4", True),
    ("spec.keptn.sh/0.2", True),
    ("spec.keptn.sh/1.0.0", True),
    ("spec.keptn.sh/0.1.7", False),
    ("keptn.sh/0.2.0", False),
    ("spec.keptn.sh/latest", False),
])
def test_api_version_must_be_spec_keptn_sh_at_least_0_2(version: str, accepted: bool) -> None:
    text = VALID.replace("spec.keptn.sh/0.2.2", version)
    if accepted:
        assert load_text(text, "shipyard.yaml").expect(Shipyard).apiVersion == version
    else:
        [problem] = errors_of(text)
        assert problem.startswith(f"shipyard.yaml:1: apiVersion: apiVersion '{version}'")


def test_a_file_without_api_version_is_rejected_like_keptn_did() -> None:
    text = VALID.replace("apiVersion: spec.keptn.sh/0.2.2\n", "")
    assert errors_of(text) == ["shipyard.yaml:1: apiVersion: missing required field"]


def test_a_shipyard_needs_at_least_one_stage() -> None:
    text = "apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nspec:\n  stages: []\n"
    assert errors_of(text) == ["shipyard.yaml:4: spec.stages: a shipyard needs at least one stage"]


def test_duplicate_stage_and_sequence_names_point_at_the_second_definition() -> None:
    text = dedent("""\
        apiVersion: spec.keptn.sh/0.2.2
        kind: Shipyard
        spec:
          stages:
            - name: dev
              sequences:
                - name: delivery
                  tasks: [{name: deployment}]
                - name: delivery
                  tasks: [{name: release}]
            - name: dev
        """)
    assert errors_of(text) == [
        "shipyard.yaml:9: spec.stages[0].sequences[1].name: sequence 'delivery' is already defined in stage 'dev'",
    ]
    text = text.replace("        - name: delivery\n          tasks: [{name: release}]",
                        "        - name: rollback\n          tasks: [{name: rollback}]")
    assert errors_of(text) == ["shipyard.yaml:11: spec.stages[1].name: stage 'dev' is already defined"]


@pytest.mark.parametrize("after", ["10", "ten minutes", "1d", "-5m"])
def test_triggered_after_must_be_a_forward_go_duration(after: str) -> None:
    text = VALID.replace('"1h30m"', f'"{after}"')
    [problem] = errors_of(text)
    assert problem.startswith("shipyard.yaml:15: spec.stages[0].sequences[0].tasks[1].triggeredAfter: ")
    assert after in problem


@pytest.mark.parametrize("event", ["dev.delivery", "dev.delivery.triggered", "delivery.finished", "a.b.c.finished"])
def test_a_trigger_event_must_name_stage_sequence_and_finished(event: str) -> None:
    text = VALID.replace("event: dev.delivery.finished", f"event: {event}")
    assert errors_of(text) == [
        f"shipyard.yaml:20: spec.stages[1].sequences[0].triggeredOn[0].event: trigger event '{event}' must look "
        "like <stage>.<sequence>.finished, e.g. dev.delivery.finished"
    ]


def test_triggers_on_undefined_stages_or_sequences_are_warnings_not_errors() -> None:
    text = VALID.replace("event: dev.delivery.finished", "event: qa.delivery.finished").replace(
        "triggeredOn:\n", "triggeredOn:\n            - event: dev.hotfix.finished\n            - event: dev.evaluation.finished\n"
    )
    loaded = load_text(text, "shipyard.yaml")
    assert [str(w) for w in loaded.warnings] == [
        "shipyard.yaml:20: spec.stages[1].sequences[0].triggeredOn[0].event: trigger 'dev.hotfix.finished' waits "
        "for sequence 'hotfix', which stage 'dev' does not define, so it never fires",
        "shipyard.yaml:22: spec.stages[1].sequences[0].triggeredOn[2].event: trigger 'qa.delivery.finished' waits "
        "for stage 'qa', which this shipyard does not define, so it never fires",
    ]
    assert all(w.severity is Severity.WARNING for w in loaded.warnings)


def test_a_sequence_without_tasks_is_a_warning() -> None:
    text = VALID.replace("          tasks:\n            - name: release\n", "          tasks:\n")
    assert warnings_of(text) == [
        "shipyard.yaml:18: spec.stages[1].sequences[0].name: sequence 'delivery' has no tasks; Keptn refuses to "
        "trigger a sequence without tasks"
    ]


def test_empty_sections_read_as_empty() -> None:
    text = dedent("""\
        apiVersion: spec.keptn.sh/0.2.0
        kind: Shipyard
        metadata:
        spec:
          stages:
            - name: hardening
              sequences:
                - name: evaluation
                  triggeredOn:
                  tasks:
                    - name: evaluation
                      properties:
            - name: production
              sequences:
        """)
    shipyard = load_text(text, "shipyard.yaml").expect(Shipyard)
    hardening = shipyard.stage("hardening")
    assert hardening is not None and hardening.sequences[0].triggeredOn == []
    assert hardening.sequences[0].tasks[0].properties is None
    production = shipyard.stage("production")
    assert production is not None and production.sequences == []
    assert shipyard.metadata.name is None


def test_the_alpha_triggers_list_becomes_triggered_on_with_a_warning() -> None:
    text = VALID.replace(
        "triggeredOn:\n            - event: dev.delivery.finished\n              selector:\n"
        "                match:\n                  result: pass\n",
        'triggers:\n            - "dev.delivery.finished"\n',
    )
    loaded = load_text(text, "shipyard.yaml")
    prod = loaded.expect(Shipyard).stage("prod")
    assert prod is not None
    delivery = prod.sequence("delivery")
    assert delivery is not None
    assert [t.event for t in delivery.triggeredOn] == ["dev.delivery.finished"]
    assert delivery.triggeredOn[0].selector is None
    assert [str(w) for w in loaded.warnings] == [
        "shipyard.yaml:19: spec.stages[1].sequences[0].triggers: `triggers:` is the 0.2.0-alpha form, read as "
        "triggeredOn; write `triggeredOn: [{event: <stage>.<sequence>.finished}]` instead"
    ]


def test_a_bad_alpha_trigger_points_at_its_list_item() -> None:
    text = VALID.replace(
        "triggeredOn:\n            - event: dev.delivery.finished\n              selector:\n"
        "                match:\n                  result: pass\n",
        "triggers:\n            - dev.delivery.finished\n            - dev-delivery-finished\n",
    )
    assert errors_of(text) == [
        "shipyard.yaml:21: spec.stages[1].sequences[0].triggers[1]: trigger event 'dev-delivery-finished' must "
        "look like <stage>.<sequence>.finished, e.g. dev.delivery.finished"
    ]


def test_unknown_fields_are_kept_and_reported_as_warnings() -> None:
    text = VALID.replace("          triggeredOn:", "          triggeredon: []\n          triggeredOn:")
    loaded = load_text(text, "shipyard.yaml")
    assert [str(w) for w in loaded.warnings] == [
        "shipyard.yaml:19: spec.stages[1].sequences[0].triggeredon: unknown field 'triggeredon' is ignored"
    ]
    prod = loaded.expect(Shipyard).stage("prod")
    assert prod is not None and prod.sequences[0].model_extra == {"triggeredon": []}


def test_the_model_validates_on_its_own_too() -> None:
    with pytest.raises(ValidationError):
        Shipyard.model_validate({"apiVersion": "spec.keptn.sh/0.2.2", "spec": {"stages": [{"name": "a.b"}]}})
    shipyard = Shipyard.model_validate({"spec": {"stages": [{"name": "dev"}]}})
    assert shipyard.apiVersion == "spec.keptn.sh/0.2.2"
    assert shipyard.kind == "Shipyard"


# -- Keptn 0.7 --------------------------------------------------------------------------------------

LEGACY = dedent("""\
    registry: sockshop
    stages:
      - name: "dev"
        deployment_strategy: "direct"
        test_strategy: "functional"
      - name: "staging"
        approval_strategy:
          pass: "automatic"
          warning: "Manual"
        deployment_strategy: "blue_green_service"
        test_strategy: "performance"
      - name: "production"
        approval_strategy:
          pass: "manual"
        deployment_strategy: "blue_green_service"
        remediation_strategy: "automated"
    """)


def _sequence_summary(shipyard: Shipyard) -> list[tuple[str, str, list[str], list[str]]]:
    return [
        (stage.name, seq.name, [t.event for t in seq.triggeredOn], [task.name for task in seq.tasks])
        for stage in shipyard.spec.stages
        for seq in stage.sequences
    ]


def test_a_keptn_07_shipyard_is_converted_as_keptns_upgrade_command_did() -> None:
    loaded = load_text(LEGACY, "shipyard.yaml")
    assert loaded.kind is FileKind.SHIPYARD
    assert loaded.converted_from == "Keptn 0.7 shipyard"
    shipyard = loaded.expect(Shipyard)
    assert shipyard.apiVersion == "spec.keptn.sh/0.2.0"
    delivery_tasks = ["deployment", "test", "evaluation", "approval", "release"]
    assert _sequence_summary(shipyard) == [
        ("dev", "delivery", [], delivery_tasks),
        ("dev", "delivery-direct", [], delivery_tasks),
        ("staging", "delivery", ["dev.delivery.finished"], delivery_tasks),
        ("staging", "rollback", ["staging.delivery.finished"], ["rollback"]),
        ("staging", "delivery-direct", ["dev.delivery-direct.finished"], delivery_tasks),
        ("production", "delivery", ["staging.delivery.finished"], delivery_tasks),
        ("production", "rollback", ["production.delivery.finished"], ["rollback"]),
        ("production", "delivery-direct", ["staging.delivery-direct.finished"], delivery_tasks),
    ]


def test_legacy_strategies_become_task_properties() -> None:
    shipyard = convert_legacy_shipyard(load_text(LEGACY, "shipyard.yaml").raw)
    staging = shipyard.stage("staging")
    production = shipyard.stage("production")
    dev = shipyard.stage("dev")
    assert staging is not None and production is not None and dev is not None
    by_name = {t.name: t.properties for t in staging.sequences[0].tasks}
    assert by_name["deployment"] == {"deploymentstrategy": "blue_green_service"}
    assert by_name["test"] == {"teststrategy": "performance"}
    assert by_name["approval"] == {"pass": "automatic", "warning": "manual"}
    direct = staging.sequence("delivery-direct")
    assert direct is not None and direct.tasks[0].properties == {"deploymentstrategy": "direct"}
    # An omitted approval strategy (or half of one) is automatic.
    assert dev.sequences[0].tasks[3].properties == {"pass": "automatic", "warning": "automatic"}
    assert production.sequences[0].tasks[3].properties == {"pass": "manual", "warning": "automatic"}
    rollback = production.sequence("rollback")
    assert rollback is not None and rollback.triggeredOn[0].selector is not None
    assert rollback.triggeredOn[0].selector.match == {"result": "fail"}
    # A direct stage has nothing to roll back to.
    assert dev.sequence("rollback") is None


def test_legacy_warnings_name_what_the_conversion_leaves_out() -> None:
    assert warnings_of(LEGACY) == [
        "shipyard.yaml:1: registry: unknown field 'registry' is ignored",
        "shipyard.yaml:16: stages[2].remediation_strategy: remediation_strategy 'automated' is not converted "
        "(Keptn's upgrade did not either): add a `remediation` sequence with get-action, action and evaluation "
        "tasks to run remediations",
    ]


def test_legacy_problems_point_at_the_legacy_file() -> None:
    text = LEGACY.replace('- name: "staging"', '- name: "stag.ing"').replace('pass: "manual"', 'pass: "sometimes"')
    assert errors_of(text) == [
        "shipyard.yaml:6: stages[1].name: stage 'stag.ing': dots are not allowed in stage names",
        "shipyard.yaml:14: stages[2].approval_strategy.pass: 'sometimes' is not allowed here; use one of "
        "'automatic' or 'manual'",
    ]


def test_a_legacy_stage_list_with_only_names_converts() -> None:
    shipyard = convert_legacy_shipyard({"stages": [{"name": "qualitystage"}]})
    assert _sequence_summary(shipyard) == [
        ("qualitystage", "delivery", [], ["deployment", "test", "evaluation", "approval", "release"]),
        ("qualitystage", "delivery-direct", [], ["deployment", "test", "evaluation", "approval", "release"]),
    ]
    # Keptn passed the empty strategy on as it was.
    assert shipyard.spec.stages[0].sequences[0].tasks[0].properties == {"deploymentstrategy": ""}


def test_legacy_model_rejects_an_empty_stage_list() -> None:
    with pytest.raises(ValidationError, match="at least one stage"):
        LegacyShipyard.model_validate({"stages": []})
