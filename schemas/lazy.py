"""A package surface imported on first use (PEP 562): the one helper for every package whose
`__init__` would otherwise import modules it does not need yet.

    _PUBLIC = {"SLO": "slo", "RemediationAction": "remediation:Action", ...}
    if not TYPE_CHECKING:
        __getattr__, __dir__ = lazy_surface(__name__, _PUBLIC)

Each name maps to the module it lives in (relative to the package, `kafka._admin` for a subpackage's
module), with `:attribute` when the public name differs; the first lookup binds the name on the
package. The package keeps `__all__` and, for type checkers, the same imports under
`if TYPE_CHECKING:`; a test holds the three to one another.

- `tidegate.schemas`, `tidegate.qualitygate`: the whole surface (`_PUBLIC`), so that importing one
  model does not build every other (test_schemas_surface).
- `tidegate.streams`, `tidegate.streams.kafka`, `tidegate.connectors.runtime`: the pure parts are
  imported at once; only the parts that load Faust or a Kafka client are in `_LAZY`
  (test_lazy_packages).
- A module whose rarely used names moved to a sibling module keeps them importable from where they
  were: `lazy_surface(__name__, {"LegacyShipyard": "shipyard_legacy"}, base="tidegate.schemas")`
  (`tidegate.schemas.shipyard`, `.remediation`: the Keptn 0.7 / pre-0.7 models, test_legacy_split).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_surface(
    package: str, table: Mapping[str, str], *, base: str | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package` for the public names in `table`, whose
    modules are named relative to `base` (the package itself unless given)."""
    where = package if base is None else base

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(f"{where}.{module}"), attribute or name)
        setattr(sys.modules[package], name, value)  # found once; later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__
