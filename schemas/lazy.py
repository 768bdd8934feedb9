"""A package surface imported on first use (PEP 562), for packages whose `__init__` would otherwise
import every module up front (`tidegate.schemas`, `tidegate.qualitygate`).

    _PUBLIC = {"SLO": "slo", "RemediationAction": "remediation:Action", ...}
    if not TYPE_CHECKING:
        __getattr__, __dir__ = lazy_surface(__name__, _PUBLIC)

Each public name maps to the module it lives in (relative to the package), with `:attribute` when
the public name differs. The package keeps `__all__` and, for type checkers, the same imports under
`if TYPE_CHECKING:`; a test per package holds the three to one another (test_schemas_surface).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_surface(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package` for the public names in `table`."""

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(f"{package}.{module}"), attribute or name)
        setattr(sys.modules[package], name, value)  # found once; later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__
