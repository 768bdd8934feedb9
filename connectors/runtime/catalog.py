"""The connectors `tidegate connector NAME` can start, by name (imported only when chosen)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connectors.runtime.connector import Connector
from streams.resources import ResourceStore
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What a connector factory may use: the shared resources store, settings, and `--task` choices."""

    resources: ResourceStore
    settings: Settings
    tasks: Sequence[str] = ()


Factory = Callable[[BuildRequest], Connector]

# name -> "module:function"; each function takes a BuildRequest and returns a Connector.
CATALOG: dict[str, str] = {
    "command": "connectors.command.factory:build",
    "helm": "connectors.helm.factory:build",
    "tests": "connectors.tests.factory:build",
    "webhook": "connectors.webhook.factory:build",
    "unleash": "connectors.unleash.factory:build",
    "kubernetes": "connectors.kubernetes.factory:build",
    "prometheus": "connectors.prometheus.connector:build",
}


class UnknownConnectorError(ValueError):
    pass


def build(name: str, request: BuildRequest) -> Connector:
    target = CATALOG.get(name)
    if target is None:
        raise UnknownConnectorError(f"there is no connector named {name!r}; choose from {', '.join(sorted(CATALOG))}")
    module_name, function = target.split(":")
    factory: Factory = getattr(importlib.import_module(module_name), function)
    return factory(request)
