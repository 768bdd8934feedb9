"""Builds the tests connector for `tidegate connector tests`."""

from __future__ import annotations

from tidegate.connectors.runtime.catalog import BuildRequest
from tidegate.connectors.tests.connector import TestsConnector


def build(request: BuildRequest) -> TestsConnector:
    return TestsConnector()
