"""The package surfaces of `tidegate.schemas` and `tidegate.qualitygate` are loaded on first use
(`schemas/lazy.py`, PEP 562), and say the same as before.

Each `__init__.py` keeps three listings of its public names: `__all__`, the `TYPE_CHECKING` imports
(for type checkers) and `_PUBLIC` (where `__getattr__` finds each name). These tests hold them to
one another and to the modules, and check what the laziness is for: a command that needs the SLO
model does not import every file model, and `tidegate lint` does not load the scoring engine."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import tidegate.qualitygate as qualitygate
import tidegate.schemas as schemas

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"schemas": schemas, "qualitygate": qualitygate}


def type_checking_imports(home: str) -> dict[str, str]:
    """Public name -> "module:attribute" as the `if TYPE_CHECKING:` block of <home>/__init__.py imports it."""
    tree = ast.parse((REPO / home / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    found: dict[str, str] = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom) and statement.module
        module = statement.module.removeprefix(f"tidegate.{home}.")
        for alias in statement.names:
            found[alias.asname or alias.name] = f"{module}:{alias.name}"
    return found


def public_table(package: ModuleType) -> dict[str, str]:
    table: dict[str, str] = package._PUBLIC
    return {name: target if ":" in target else f"{target}:{name}" for name, target in table.items()}


@pytest.mark.parametrize("home", PACKAGES)
def test_all_the_lazy_table_and_the_type_checking_imports_name_the_same_things(home: str) -> None:
    package = PACKAGES[home]
    assert len(package.__all__) == len(set(package.__all__))
    assert set(package.__all__) == set(package._PUBLIC)
    assert type_checking_imports(home) == public_table(package)


@pytest.mark.parametrize("home", PACKAGES)
def test_no_public_name_is_also_a_module_of_the_package(home: str) -> None:
    # Importing tidegate.<home>.<name> binds the module to the package attribute <name>, which would then
    # hide the public name of that spelling (qualitygate's explain() lives in explanation.py for this).
    modules = {path.stem for path in (REPO / home).glob("*.py")} | {path.parent.name for path in (REPO / home).glob("*/__init__.py")}
    assert not set(PACKAGES[home].__all__) & modules


@pytest.mark.parametrize(("home", "name"), [(home, name) for home, package in PACKAGES.items()
                                            for name in sorted(package._PUBLIC)])
def test_every_public_name_is_the_object_of_its_home_module(home: str, name: str) -> None:
    package = PACKAGES[home]
    module, _, attribute = public_table(package)[name].partition(":")
    assert getattr(package, name) is getattr(importlib.import_module(f"tidegate.{home}.{module}"), attribute)
    assert name in dir(package)


@pytest.mark.parametrize("home", PACKAGES)
def test_star_import_and_unknown_names(home: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from tidegate.{home} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PACKAGES[home].__all__)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        PACKAGES[home].Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec(f"from tidegate.{home} import Nope", {})


def modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('tidegate.'))))"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                               check=True)
    return set(json.loads(completed.stdout))


def test_importing_a_package_or_one_module_loads_only_what_it_needs() -> None:
    assert modules_after("import tidegate.schemas, tidegate.qualitygate") == {
        "tidegate.schemas", "tidegate.schemas.lazy", "tidegate.qualitygate"}
    slo = modules_after("from tidegate.schemas.slo import SLO")
    assert "tidegate.schemas.slo" in slo
    assert not {"tidegate.schemas.files", "tidegate.schemas.shipyard", "tidegate.schemas.webhook"} & slo
    reader = modules_after("import tidegate.schemas; tidegate.schemas.load_yaml")
    assert reader == {"tidegate.schemas", "tidegate.schemas.lazy", "tidegate.schemas.yamlreader", "tidegate.schemas.errors"}
    criteria = modules_after("from tidegate.qualitygate import parse_criteria")
    assert "tidegate.qualitygate.criteria" in criteria and "tidegate.qualitygate.engine" not in criteria
    # The control: the package names still reach every module on first use.
    assert "tidegate.schemas.files" in modules_after("import tidegate.schemas; tidegate.schemas.load_file")
    assert "tidegate.qualitygate.engine" in modules_after("import tidegate.qualitygate; tidegate.qualitygate.QualityGate")
