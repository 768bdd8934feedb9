"""`tidegate connector`: building connectors by name, per-connector options, and usage errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tidegate.connectors.runtime import Connector, ConnectorOptions
from tidegate.connectors.runtime.catalog import (
    CATALOG,
    BuildRequest,
    UnknownConnectorError,
    build,
    options_for,
)
from tidegate.streams.resources import ResourceStore
from tidegate.streams.settings import Settings


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_catalogued_connector_builds_and_keeps_the_contract(name: str) -> None:
    connector = build(name, BuildRequest(ResourceStore(), Settings(), tasks=("deployment",)))
    assert isinstance(connector, Connector)
    assert connector.name == name
    assert all(isinstance(task, str) for task in connector.tasks)


def test_an_unknown_connector_lists_the_known_ones() -> None:
    with pytest.raises(UnknownConnectorError, match="choose from") as raised:
        build("jenkins", BuildRequest(ResourceStore(), Settings()))
    assert all(name in str(raised.value) for name in CATALOG)


def test_options_can_differ_per_connector() -> None:
    defaults = ConnectorOptions(concurrency=4, timeout=600)
    env = {"TIDEGATE_CONNECTOR_HELM_TIMEOUT": "15m", "TIDEGATE_CONNECTOR_TESTS_CONCURRENCY": "1"}
    assert options_for("helm", defaults, env) == ConnectorOptions(concurrency=4, timeout=900)
    assert options_for("tests", defaults, env).concurrency == 1
    assert options_for("command", defaults, env) == defaults
    with pytest.raises(ValueError, match="TIDEGATE_CONNECTOR_HELM_TIMEOUT='soon' is not a duration"):
        options_for("helm", defaults, {"TIDEGATE_CONNECTOR_HELM_TIMEOUT": "soon"})


def test_the_command_refuses_an_unknown_connector_with_exit_code_2() -> None:
    from tidegate.cli.main import app

    result = CliRunner().invoke(app, ["connector", "jenkins"])
    assert result.exit_code == 2
    assert "there is no connector named 'jenkins'" in result.output
