"""The connector runtime: one base every task connector runs on.

    class MyConnector:                       # implements Connector
        name = "mine"; tasks = ["deployment"]
        def wants(self, event) -> bool: ...
        async def run(self, ctx: TaskContext) -> TaskOutcome: ...

    await ConnectorHost([MyConnector()], Settings()).run()

Public names:
    Connector, ConnectorOptions          the contract and how the runtime runs a connector
    TaskContext, TaskOutcome             what `run` gets and returns
    run_program, ProgramResult, ProgramStartError   programs as argument lists, killed on cancel/timeout
    RunAs, hide_environment              another user for programs; the parent's environ closed to them
    started_event, finished_event        the replies every connector sends
    ConnectorHost, ConnectorRunner       the Kafka shell (loaded on first use)
    TaskMemory, TaskRecord, Verdict      the memory of handled tasks (state topic)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidegate.connectors.runtime.connector import Connector, ConnectorOptions
from tidegate.connectors.runtime.context import TaskContext
from tidegate.connectors.runtime.outcome import TaskOutcome
from tidegate.connectors.runtime.policy import TimeLimit, task_time_limit
from tidegate.connectors.runtime.program import (
    ProgramResult,
    ProgramStartError,
    RunAs,
    hide_environment,
    run_program,
)
from tidegate.connectors.runtime.replies import finished_event, started_event
from tidegate.connectors.runtime.state import (
    TaskMemory,
    TaskPhase,
    TaskRecord,
    Verdict,
    consumer_group,
    state_topic,
)
from tidegate.schemas.lazy import lazy_surface

if TYPE_CHECKING:
    from tidegate.connectors.runtime.runner import ConnectorHost, ConnectorRunner

# The Kafka shell loads on first use (schemas/lazy.py): public name -> its module in this package.
_LAZY = dict.fromkeys(("ConnectorHost", "ConnectorRunner"), "runner")
if not TYPE_CHECKING:  # type checkers read the import above
    __getattr__, __dir__ = lazy_surface(__name__, _LAZY)

__all__ = [
    "Connector",
    "ConnectorHost",
    "ConnectorOptions",
    "ConnectorRunner",
    "ProgramResult",
    "ProgramStartError",
    "RunAs",
    "TaskContext",
    "TaskMemory",
    "TaskOutcome",
    "TaskPhase",
    "TaskRecord",
    "TimeLimit",
    "Verdict",
    "consumer_group",
    "finished_event",
    "hide_environment",
    "run_program",
    "started_event",
    "state_topic",
    "task_time_limit",
]
