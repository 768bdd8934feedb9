"""The connectors `tidegate connector NAME` can start, by name (imported only when chosen)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from tidegate.connectors.runtime.connector import Connector, ConnectorOptions
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError, TidegateError
from tidegate.streams.resources import ResourceStore
from tidegate.streams.settings import Settings


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What a connector factory may use: the shared resources store, settings, and `--task` choices."""

    resources: ResourceStore
    settings: Settings
    tasks: Sequence[str] = ()


Factory = Callable[[BuildRequest], Connector]

# name -> "module:function"; each function takes a BuildRequest and returns a Connector.
CATALOG: dict[str, str] = {
    "command": "tidegate.connectors.command.factory:build",
    "helm": "tidegate.connectors.helm.factory:build",
    "tests": "tidegate.connectors.tests.factory:build",
    "webhook": "tidegate.connectors.webhook.factory:build",
    "unleash": "tidegate.connectors.unleash.factory:build",
    "kubernetes": "tidegate.connectors.kubernetes.factory:build",
    "prometheus": "tidegate.connectors.prometheus.connector:build",
}


class UnknownConnectorError(TidegateError, ValueError):
    pass


def build(name: str, request: BuildRequest) -> Connector:
    target = CATALOG.get(name)
    if target is None:
        raise UnknownConnectorError(f"there is no connector named {name!r}; choose from {', '.join(sorted(CATALOG))}")
    module_name, function = target.split(":")
    factory: Factory = getattr(importlib.import_module(module_name), function)
    return factory(request)


def options_for(name: str, defaults: ConnectorOptions, environ: Mapping[str, str]) -> ConnectorOptions:
    """`defaults` with this connector's own overrides: TIDEGATE_CONNECTOR_<NAME>_TIMEOUT (Go duration or
    seconds) and TIDEGATE_CONNECTOR_<NAME>_CONCURRENCY, so one process can give each connector its own."""
    prefix = "TIDEGATE_CONNECTOR_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_"
    options = defaults
    timeout = environ.get(prefix + "TIMEOUT")
    if timeout:
        try:
            seconds = float(timeout) if re.fullmatch(r"\d+(\.\d+)?", timeout) else parse_duration(timeout).total_seconds()
        except DurationError as error:
            raise ValueError(f"{prefix}TIMEOUT={timeout!r} is not a duration: {error}") from error
        options = replace(options, timeout=seconds)
    concurrency = environ.get(prefix + "CONCURRENCY")
    if concurrency:
        if not concurrency.isdigit() or int(concurrency) < 1:
            raise ValueError(f"{prefix}CONCURRENCY={concurrency!r} must be a whole number of at least 1")
        options = replace(options, concurrency=int(concurrency), max_waiting=max(options.max_waiting, int(concurrency)))
    return options
