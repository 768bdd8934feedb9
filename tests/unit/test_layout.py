"""The architecture as the folders show it: one import name, homes that depend one way only."""

from __future__ import annotations

import ast
import importlib.metadata
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.layout import REPO_ROOT, installed_homes

# Which home may import which: each may use the homes listed, and nothing else of Tidegate's.
# Read it bottom-up: contracts, plumbing, pure engines, decisions, side effects, the read side,
# the HTTP API, the UI over it, and the CLI that composes everything.
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "streams": {"schemas"},
    "qualitygate": {"schemas"},
    "agents": {"schemas", "streams", "qualitygate"},
    "connectors": {"schemas", "streams", "qualitygate"},
    "readside": {"schemas", "streams", "qualitygate"},
    "gateway": {"schemas", "streams", "readside"},
    "bridge": {"schemas", "streams", "readside", "gateway"},
    "cli": {"schemas", "streams", "qualitygate", "agents", "connectors", "readside", "gateway", "bridge"},
}
OLD_NAMES = {"schemas", "streams", "agents", "connectors", "qualitygate", "gateway", "bridge", "cli", "readside"}


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((REPO_ROOT / folder).rglob("*.py"))]


def test_every_home_is_declared_and_the_allowed_graph_names_them_all() -> None:
    assert set(installed_homes()) == set(ALLOWED)
    for home in installed_homes():
        assert (REPO_ROOT / home / "__init__.py").is_file(), home


def test_installing_adds_one_top_level_package() -> None:
    top_level = importlib.metadata.distribution("tidegate").read_text("top_level.txt") or ""
    assert top_level.split() == ["tidegate"]


@pytest.mark.parametrize("folder", [*sorted(ALLOWED), "tests", "deploy", "benchmarks", "examples"])
def test_code_imports_tidegate_by_its_one_name(folder: str) -> None:
    wrong = [f"{path.relative_to(REPO_ROOT)}:{line}: import {module}"
             for path in _python_files(folder) for line, module in _imports(path)
             if module.split(".")[0] in OLD_NAMES]
    assert wrong == []


def test_homes_import_only_the_homes_below_them() -> None:
    """No cycles: every edge between homes follows ALLOWED, which is itself acyclic."""
    edges: dict[str, set[str]] = defaultdict(set)
    wrong: list[str] = []
    for home in ALLOWED:
        for path in _python_files(home):
            for line, module in _imports(path):
                parts = module.split(".")
                if parts[0] != "tidegate" or len(parts) < 2 or parts[1] == home:
                    continue
                edges[home].add(parts[1])
                if parts[1] not in ALLOWED[home]:
                    wrong.append(f"{path.relative_to(REPO_ROOT)}:{line}: {home} imports {module}")
    assert wrong == []
    # ALLOWED is a DAG: a topological order exists.
    remaining = {home: set(deps) for home, deps in ALLOWED.items()}
    while remaining:
        free = [home for home, deps in remaining.items() if not deps & remaining.keys()]
        assert free, f"ALLOWED has a cycle among {sorted(remaining)}"
        for home in free:
            del remaining[home]
