"""How the file models are declared and loaded so that a command starts quickly: a kind's models are
imported when a file of that kind is first read (`schemas.files.KINDS` names them), each is built when
first used (`defer_build`), none has a builtin (`list`, `dict`) as default factory, whose signature
pydantic would read through `tokenize` (see `schemas/nulls.py`), and their modules do without
`from __future__ import annotations`, whose text annotations pydantic would compile one by one when it
creates each class. The behaviour is the models' own; the loader and JSON Schema tests hold it, these
hold the declarations."""

from __future__ import annotations

import builtins
import inspect
import json
import subprocess
import sys
from types import ModuleType

import pytest
from pydantic import BaseModel

import tidegate.schemas.commandconfig
import tidegate.schemas.jmeter
import tidegate.schemas.jobconfig
import tidegate.schemas.jobevents
import tidegate.schemas.remediation
import tidegate.schemas.remediation_legacy
import tidegate.schemas.shipyard
import tidegate.schemas.shipyard_legacy
import tidegate.schemas.sli
import tidegate.schemas.slo
import tidegate.schemas.testconfigs
import tidegate.schemas.webhook
from tidegate.schemas.files import KINDS, load_text

MODULES: list[ModuleType] = [
    tidegate.schemas.commandconfig, tidegate.schemas.jmeter, tidegate.schemas.jobconfig, tidegate.schemas.jobevents,
    tidegate.schemas.remediation, tidegate.schemas.remediation_legacy, tidegate.schemas.shipyard,
    tidegate.schemas.shipyard_legacy, tidegate.schemas.sli, tidegate.schemas.slo, tidegate.schemas.testconfigs,
    tidegate.schemas.webhook,
]
BUILTIN_TYPES = {value for value in vars(builtins).values() if isinstance(value, type)}


def file_models() -> list[type[BaseModel]]:
    return [value for module in MODULES for value in vars(module).values()
            if inspect.isclass(value) and issubclass(value, BaseModel) and value.__module__ == module.__name__]


SHIPYARD = "apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nspec:\n  stages:\n    - name: dev\n"

# In a fresh interpreter: read one shipyard, then list the model modules imported.
PROBE = """
import json, sys
from tidegate.schemas.files import load_text
load_text(sys.argv[1], "shipyard.yaml")
print(json.dumps(sorted(name for name in sys.modules if name.startswith("tidegate.schemas."))))
"""


def test_reading_a_shipyard_imports_the_shipyard_models_only() -> None:
    completed = subprocess.run([sys.executable, "-c", PROBE, SHIPYARD], capture_output=True, text=True,
                               timeout=120, check=True)
    modules = set(json.loads(completed.stdout))
    assert "tidegate.schemas.shipyard" in modules
    other_kinds = {module.__name__ for module in MODULES} - {"tidegate.schemas.shipyard"}
    assert not modules & other_kinds


def test_every_kind_is_in_the_modules_checked_here() -> None:
    assert {info.model for info in KINDS.values()} <= set(file_models())


@pytest.mark.parametrize("model", file_models(), ids=lambda model: f"{model.__module__}.{model.__name__}")
def test_a_file_model_is_built_when_first_used(model: type[BaseModel]) -> None:
    assert model.model_config.get("defer_build") is True


@pytest.mark.parametrize("model", file_models(), ids=lambda model: f"{model.__module__}.{model.__name__}")
def test_no_default_factory_is_a_builtin(model: type[BaseModel]) -> None:
    builtin = {name: info.default_factory for name, info in model.model_fields.items()
               if info.default_factory in BUILTIN_TYPES}
    assert not builtin, f"use schemas.nulls.empty_list / empty_mapping instead of {builtin}"


@pytest.mark.parametrize("model", file_models(), ids=lambda model: f"{model.__module__}.{model.__name__}")
def test_no_field_annotation_is_text(model: type[BaseModel]) -> None:
    # pydantic compiles a text annotation (`from __future__ import annotations`, or a quoted name) when
    # it creates the class: about 5M of the instructions of `tidegate lint examples/sockshop`.
    text = {name: hint for name, hint in vars(model).get("__annotations__", {}).items() if isinstance(hint, str)}
    assert not text, f"write these annotations unquoted, without `from __future__ import annotations`: {text}"


def test_a_default_is_a_new_empty_value_each_time() -> None:
    # empty_list / empty_mapping as factories: two files never share one list or mapping.
    first = load_text(SHIPYARD, "shipyard.yaml").model
    second = load_text(SHIPYARD, "shipyard.yaml").model
    assert isinstance(first, tidegate.schemas.shipyard.Shipyard)
    assert isinstance(second, tidegate.schemas.shipyard.Shipyard)
    assert first.spec.stages[0].sequences == second.spec.stages[0].sequences == []
    first.spec.stages[0].sequences.append(tidegate.schemas.shipyard.BUILTIN_EVALUATION)
    assert second.spec.stages[0].sequences == []


# The Keptn 0.7 / pre-0.7 models and the job-executor models sit in modules of their own, imported when
# a file needs them; their names stay importable from the modules that defined them before.
REMEDIATION = "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\nspec:\n  remediations: []\n"
COMMAND = "actions:\n  - name: a\n    events: [{name: sh.keptn.event.test.triggered}]\n    tasks: [{name: t, cmd: [x]}]\n"
LOCUST = "workloads:\n  - {teststrategy: functional, script: locust/basic.py}\n"
LEGACY_SHIPYARD = "stages:\n  - name: dev\n"
LEGACY_REMEDIATION = "remediations:\n  - name: slow\n    actions: [{action: scaling, value: 1}]\n"

SPLIT_PROBE = """
import json, sys
from tidegate.schemas.files import load_text
for text, name, kind in json.loads(sys.argv[1]):
    load_text(text, name, kind)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("tidegate.schemas."))))
"""


def _modules_after_reading(*files: tuple[str, str, str | None]) -> set[str]:
    completed = subprocess.run([sys.executable, "-c", SPLIT_PROBE, json.dumps(files)], capture_output=True,
                               text=True, timeout=120, check=True)
    return set(json.loads(completed.stdout))


def test_current_files_do_not_import_the_legacy_or_job_executor_models() -> None:
    modules = _modules_after_reading((SHIPYARD, "shipyard.yaml", None), (REMEDIATION, "remediation.yaml", None),
                                     (COMMAND, "command/config.yaml", "command"),
                                     (LOCUST, "locust/locust.conf.yaml", None))
    assert {"tidegate.schemas.shipyard", "tidegate.schemas.remediation", "tidegate.schemas.commandconfig",
            "tidegate.schemas.jobevents", "tidegate.schemas.testconfigs"} <= modules
    assert not {"tidegate.schemas.shipyard_legacy", "tidegate.schemas.remediation_legacy",
                "tidegate.schemas.jobconfig", "tidegate.schemas.jmeter"} & modules


def test_legacy_files_import_their_models_when_met() -> None:
    modules = _modules_after_reading((LEGACY_SHIPYARD, "shipyard.yaml", None),
                                     (LEGACY_REMEDIATION, "remediation.yaml", None))
    assert {"tidegate.schemas.shipyard_legacy", "tidegate.schemas.remediation_legacy"} <= modules


@pytest.mark.parametrize(("old", "new", "names"), [
    (tidegate.schemas.shipyard, tidegate.schemas.shipyard_legacy,
     ["ApprovalMode", "LegacyApprovalStrategy", "LegacyStage", "LegacyShipyard", "convert_legacy_shipyard"]),
    (tidegate.schemas.remediation, tidegate.schemas.remediation_legacy,
     ["LegacyAction", "LegacyProblemRemediation", "LegacyRemediation", "convert_legacy_remediation"]),
    (tidegate.schemas.jobconfig, tidegate.schemas.jobevents, ["JobEvent", "JsonPathMatch"]),
    (tidegate.schemas.testconfigs, tidegate.schemas.jmeter,
     ["DEFAULT_JMETER_WORKLOADS", "JMeterConfig", "JMeterWorkload"]),
], ids=["shipyard", "remediation", "jobconfig", "testconfigs"])
def test_moved_names_stay_importable_from_their_old_module(old: ModuleType, new: ModuleType,
                                                           names: list[str]) -> None:
    for name in names:
        assert getattr(old, name) is getattr(new, name)
        assert name in dir(old)
    with pytest.raises(AttributeError):
        _ = old.NoSuchName


def test_the_legacy_forms_still_convert() -> None:
    shipyard = load_text(LEGACY_SHIPYARD, "shipyard.yaml")
    assert shipyard.converted_from == "Keptn 0.7 shipyard"
    assert isinstance(shipyard.model, tidegate.schemas.shipyard.Shipyard)
    remediation = load_text(LEGACY_REMEDIATION, "remediation.yaml")
    assert remediation.converted_from == "pre-0.7 remediation list"
    assert isinstance(remediation.model, tidegate.schemas.remediation.Remediation)
    assert remediation.model.actions_for(None, "slow")[0].value == "1"
