"""The `tidegate.schemas` package surface is loaded on first use (PEP 562), and says the same as before.

`schemas/__init__.py` keeps three listings of its public names: `__all__`, the `TYPE_CHECKING`
imports (for type checkers) and `_PUBLIC` (where `__getattr__` finds each name). These tests hold
them to one another and to the modules, and check what the laziness is for: a command that needs
the SLO model does not import every file model."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tidegate.schemas as schemas

REPO = Path(__file__).resolve().parents[2]


def type_checking_imports() -> dict[str, str]:
    """Public name -> "module:attribute" as the `if TYPE_CHECKING:` block of schemas/__init__.py imports it."""
    tree = ast.parse((REPO / "schemas" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    found: dict[str, str] = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom) and statement.module
        module = statement.module.removeprefix("tidegate.schemas.")
        for alias in statement.names:
            found[alias.asname or alias.name] = f"{module}:{alias.name}"
    return found


def public_table() -> dict[str, str]:
    return {name: target if ":" in target else f"{target}:{name}" for name, target in schemas._PUBLIC.items()}


def test_all_the_lazy_table_and_the_type_checking_imports_name_the_same_things() -> None:
    assert len(schemas.__all__) == len(set(schemas.__all__))
    assert set(schemas.__all__) == set(schemas._PUBLIC)
    assert type_checking_imports() == public_table()


@pytest.mark.parametrize("name", sorted(schemas._PUBLIC))
def test_every_public_name_is_the_object_of_its_home_module(name: str) -> None:
    module, _, attribute = public_table()[name].partition(":")
    assert getattr(schemas, name) is getattr(importlib.import_module(f"tidegate.schemas.{module}"), attribute)
    assert name in dir(schemas)


def test_star_import_and_unknown_names() -> None:
    namespace: dict[str, object] = {}
    exec("from tidegate.schemas import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(schemas.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        schemas.Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from tidegate.schemas import Nope", {})


def modules_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('tidegate.'))))"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                               check=True)
    found: list[str] = json.loads(completed.stdout)
    return found


def test_importing_the_package_or_one_module_loads_only_what_it_needs() -> None:
    assert modules_after("import tidegate.schemas") == ["tidegate.schemas"]
    slo = modules_after("from tidegate.schemas.slo import SLO")
    assert "tidegate.schemas.slo" in slo
    assert not {"tidegate.schemas.files", "tidegate.schemas.shipyard", "tidegate.schemas.webhook"} & set(slo)
    # The control: the package names still reach every module on first use.
    assert "tidegate.schemas.files" in modules_after("import tidegate.schemas; tidegate.schemas.load_file")
