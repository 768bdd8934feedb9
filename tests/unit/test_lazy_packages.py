"""`tidegate.streams`, `tidegate.streams.kafka` and `tidegate.connectors.runtime` load their Kafka and
Faust parts on first use through the one lazy-surface helper (`schemas/lazy.py`, PEP 562), as
`tidegate.schemas` does (test_schemas_surface).

Each package keeps its public names in `__all__`, the lazy ones in `_LAZY` (name -> module relative
to the package) and, for type checkers, under `if TYPE_CHECKING:`. These tests hold the three to one
another, and check in a fresh interpreter what the laziness is for: importing a package does not load
Faust or a Kafka client library, and the first use of a lazy name does."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "tidegate.streams": REPO / "streams",
    "tidegate.streams.kafka": REPO / "streams" / "kafka",
    "tidegate.connectors.runtime": REPO / "connectors" / "runtime",
}
KAFKA_AND_FAUST = ("faust", "mode", "aiokafka", "confluent_kafka")


def type_checking_imports(package: str) -> dict[str, str]:
    """Public name -> module (relative to the package) as the `if TYPE_CHECKING:` block imports it."""
    tree = ast.parse((PACKAGES[package] / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    found: dict[str, str] = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom) and statement.module
        for alias in statement.names:
            assert alias.asname is None
            found[alias.name] = statement.module.removeprefix(f"{package}.")
    return found


def load(package: str) -> ModuleType:
    return importlib.import_module(package)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_the_lazy_table_and_the_type_checking_imports_agree(package: str) -> None:
    module = load(package)
    assert len(module.__all__) == len(set(module.__all__))
    assert set(module._LAZY) <= set(module.__all__)
    assert type_checking_imports(package) == module._LAZY


@pytest.mark.parametrize(("package", "name"), [(package, name) for package in PACKAGES
                                               for name in sorted(load(package)._LAZY)])
def test_every_lazy_name_is_the_object_of_its_module(package: str, name: str) -> None:
    module = load(package)
    home = importlib.import_module(f"{package}.{module._LAZY[name]}")
    assert getattr(module, name) is getattr(home, name)
    assert name in dir(module)


@pytest.mark.parametrize("package", PACKAGES)
def test_star_import_and_unknown_names(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(load(package).__all__)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'Nope'"):
        load(package).Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec(f"from {package} import Nope", {})


def modules_after(statement: str) -> set[str]:
    """The Tidegate, Faust and Kafka-client modules a fresh interpreter has loaded after `statement`."""
    watched = ("tidegate", *KAFKA_AND_FAUST)
    code = (f"import json, sys\n{statement}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {watched!r})))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                               check=True)
    return set(json.loads(completed.stdout))


def outside_libraries(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules if name.split(".")[0] in KAFKA_AND_FAUST}


@pytest.mark.parametrize(("package", "lazy_modules", "first_use", "loads"), [
    ("tidegate.streams", {"app", "kafka._admin", "kafka._publish"}, "create_app", {"faust", "aiokafka"}),
    ("tidegate.streams.kafka", {"_admin", "_publish", "_read", "_records", "_wait"}, "EventPublisher",
     {"confluent_kafka"}),
    ("tidegate.connectors.runtime", {"runner"}, "ConnectorHost", {"aiokafka", "confluent_kafka"}),
], ids=["streams", "streams.kafka", "connectors.runtime"])
def test_importing_the_package_loads_no_kafka_client_until_first_use(
    package: str, lazy_modules: set[str], first_use: str, loads: set[str]
) -> None:
    imported = modules_after(f"import {package}")
    assert package in imported
    assert not outside_libraries(imported)
    assert not {f"{package}.{module}" for module in lazy_modules} & imported
    # The control: the first use of a lazy name loads its module and the library behind it.
    used = modules_after(f"import {package}; {package}.{first_use}")
    assert f"{package}.{load(package)._LAZY[first_use]}" in used
    assert loads <= outside_libraries(used)
