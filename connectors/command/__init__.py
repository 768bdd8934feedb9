"""The command connector: run any program for any task (Keptn's job executor, without Kubernetes).

    CommandConnector(resources, tasks=[...])      the connector (command/config.yaml, job/config.yaml)
    CommandSettings                               the operator's limits: TIDEGATE_COMMAND_ALLOW, _USER
    CommandConfig, from_job_config                the configuration model and the job-executor reader
"""

from tidegate.connectors.command.config import CONFIG_PATH, JOB_EXECUTOR_PATH, CommandConfig, from_job_config
from tidegate.connectors.command.connector import (
    CommandConnector,
    CommandSettings,
    ConfigProblem,
    parse_config,
)
from tidegate.connectors.command.plan import (
    ALLOW_VARIABLE,
    PlanError,
    PlannedTask,
    matching_actions,
    plan_task,
    program_allowed,
    result_data,
)

__all__ = [
    "ALLOW_VARIABLE",
    "CONFIG_PATH",
    "JOB_EXECUTOR_PATH",
    "CommandConfig",
    "CommandConnector",
    "CommandSettings",
    "ConfigProblem",
    "PlanError",
    "PlannedTask",
    "from_job_config",
    "matching_actions",
    "parse_config",
    "plan_task",
    "program_allowed",
    "result_data",
]
