"""Builds the command connector for `tidegate connector command [--task T ...]`."""

from __future__ import annotations

from tidegate.connectors.command.connector import CommandConnector
from tidegate.connectors.runtime.catalog import BuildRequest
from tidegate.streams.topics import STANDARD_TASKS


def build(request: BuildRequest) -> CommandConnector:
    return CommandConnector(request.resources, tasks=list(request.tasks) or list(STANDARD_TASKS))
