"""Builds the tests connector for `tidegate connector tests`."""

from __future__ import annotations

from connectors.runtime.catalog import BuildRequest
from connectors.tests.connector import TestsConnector


def build(request: BuildRequest) -> TestsConnector:
    return TestsConnector()
