"""Tidegate's contracts: Keptn's events and the configuration files users already have.

Configuration files (read with `load_file` / `load_text`, which detect the kind, validate, and report
every problem with file, line and field):

    shipyard.yaml       Shipyard (+ Keptn 0.7 LegacyShipyard, convert_legacy_shipyard)
    slo.yaml            SLO
    sli.yaml            SLI
    remediation.yaml    Remediation (+ pre-0.7 convert_legacy_remediation)
    locust.conf.yaml    LocustConfig          jmeter.conf.yaml   JMeterConfig
    job/config.yaml     JobConfig             webhook.yaml       WebhookConfig

YAML of no Keptn kind is read with `load_yaml` (`schemas.yamlreader`: the same reader, YAML 1.2
scalars and size, nesting and alias limits, without importing the file models).

Errors raised for users' files are in `schemas.errors` (one tree, documented there). Events: the
envelope and type grammar are in `schemas.events`, the task data blocks in `schemas.payloads`.

The names below are imported from their modules on first use (`schemas.lazy`, PEP 562), so
`import tidegate.schemas.slo` or `from tidegate.schemas.errors import ...` does not build every file
model: `tidegate evaluate` needs the SLO model only. `_PUBLIC` says where each name lives; the
`TYPE_CHECKING` imports say the same for type checkers, and `tests/unit/test_schemas_surface.py`
checks that the two agree with `__all__` and that every name resolves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidegate.schemas.lazy import lazy_surface

if TYPE_CHECKING:
    from tidegate.schemas.durations import parse_duration
    from tidegate.schemas.errors import (
        DurationError,
        FieldWarning,
        FileError,
        FileProblem,
        FileReadError,
        FileValidationError,
        SchemaError,
        Severity,
        TidegateError,
        UnknownKindError,
        YamlLimitError,
        YamlSyntaxError,
    )
    from tidegate.schemas.events import (
        EventType,
        KeptnEvent,
        format_time,
        sequence_type,
        task_type,
    )
    from tidegate.schemas.files import (
        KINDS,
        FileKind,
        LoadedFile,
        detect_kind,
        load_file,
        load_text,
    )
    from tidegate.schemas.jmeter import JMeterConfig, JMeterWorkload
    from tidegate.schemas.jobconfig import JobConfig
    from tidegate.schemas.outcomes import Result, Status
    from tidegate.schemas.remediation import Action as RemediationAction
    from tidegate.schemas.remediation import Remediation
    from tidegate.schemas.remediation_legacy import convert_legacy_remediation
    from tidegate.schemas.shipyard import (
        BUILTIN_EVALUATION,
        Selector,
        Sequence,
        Shipyard,
        Stage,
        Task,
        Trigger,
    )
    from tidegate.schemas.shipyard_legacy import LegacyShipyard, convert_legacy_shipyard
    from tidegate.schemas.sli import SLI
    from tidegate.schemas.slo import SLO
    from tidegate.schemas.testconfigs import LocustConfig, LocustWorkload
    from tidegate.schemas.webhook import WebhookConfig
    from tidegate.schemas.yamlreader import load_yaml

# Public name -> "module:attribute" it is imported from (the attribute is the name unless given).
_PUBLIC: dict[str, str] = {
    "parse_duration": "durations",
    **dict.fromkeys((
        "DurationError", "FieldWarning", "FileError", "FileProblem", "FileReadError", "FileValidationError",
        "SchemaError", "Severity", "TidegateError", "UnknownKindError", "YamlLimitError", "YamlSyntaxError",
    ), "errors"),
    **dict.fromkeys(("EventType", "KeptnEvent", "format_time", "sequence_type", "task_type"), "events"),
    **dict.fromkeys(("KINDS", "FileKind", "LoadedFile", "detect_kind", "load_file", "load_text"), "files"),
    "JobConfig": "jobconfig",
    **dict.fromkeys(("Result", "Status"), "outcomes"),
    "RemediationAction": "remediation:Action",
    "Remediation": "remediation",
    "convert_legacy_remediation": "remediation_legacy",
    **dict.fromkeys(("BUILTIN_EVALUATION", "Selector", "Sequence", "Shipyard", "Stage", "Task", "Trigger"), "shipyard"),
    **dict.fromkeys(("LegacyShipyard", "convert_legacy_shipyard"), "shipyard_legacy"),
    "SLI": "sli",
    "SLO": "slo",
    **dict.fromkeys(("JMeterConfig", "JMeterWorkload"), "jmeter"),
    **dict.fromkeys(("LocustConfig", "LocustWorkload"), "testconfigs"),
    "WebhookConfig": "webhook",
    "load_yaml": "yamlreader",
}

__all__ = [
    "BUILTIN_EVALUATION",
    "KINDS",
    "SLI",
    "SLO",
    "DurationError",
    "EventType",
    "FieldWarning",
    "FileError",
    "FileKind",
    "FileProblem",
    "FileReadError",
    "FileValidationError",
    "JMeterConfig",
    "JMeterWorkload",
    "JobConfig",
    "KeptnEvent",
    "LegacyShipyard",
    "LoadedFile",
    "LocustConfig",
    "LocustWorkload",
    "Remediation",
    "RemediationAction",
    "Result",
    "SchemaError",
    "Selector",
    "Sequence",
    "Severity",
    "Shipyard",
    "Stage",
    "Status",
    "Task",
    "TidegateError",
    "Trigger",
    "UnknownKindError",
    "WebhookConfig",
    "YamlLimitError",
    "YamlSyntaxError",
    "convert_legacy_remediation",
    "convert_legacy_shipyard",
    "detect_kind",
    "format_time",
    "load_file",
    "load_text",
    "load_yaml",
    "parse_duration",
    "sequence_type",
    "task_type",
]


if not TYPE_CHECKING:  # type checkers read the imports above, and still report a name that is not there
    __getattr__, __dir__ = lazy_surface(__name__, _PUBLIC)
