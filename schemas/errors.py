"""Tidegate's errors: one tree, rooted at `TidegateError`, and the problems a user's file can have.

Every error Tidegate raises on purpose derives from `TidegateError`, so `except TidegateError` tells
"Tidegate refused or could not do this, and says why" apart from a bug. Each error keeps the built-in
base it always had (`ValueError`, `RuntimeError`), so existing `except` clauses still catch it. The
configuration-file errors are defined here; the others live beside the code that raises them (their
home in brackets) and derive from the root:

    TidegateError                          root: an error Tidegate raises on purpose, with a message for people
     ├── SchemaError                       a file or value from a user cannot be used [schemas.errors]
     │    ├── DurationError (ValueError)   a Go duration such as "1h30m" could not be read
     │    └── FileError                    a configuration file cannot be used; `.problems` says where and why
     │         ├── FileReadError           the file could not be read (missing, a directory, not UTF-8 text)
     │         ├── YamlSyntaxError         the text is not valid YAML
     │         ├── YamlLimitError          the text is larger, nests deeper or expands (aliases) further than allowed
     │         ├── UnknownKindError        what kind of file it is could not be told from its content or name
     │         └── FileValidationError     valid YAML, but the content breaks the rules of its kind
     ├── EventTypeError (ValueError)       not a Keptn event type [schemas.events]
     ├── DecodeError (ValueError)          a Kafka record is not a readable CloudEvent [streams.codec]
     ├── ProvisionError (RuntimeError)     topics could not be created or checked [streams.kafka]
     ├── PublishError (RuntimeError)       Kafka did not take a record [streams.kafka]
     ├── SecretError                       a secret cannot be stored or read [streams.secrets]
     │    ├── SecretInvalid / SecretNotFound / SecretExists
     ├── CriteriaError (ValueError)        an SLO criterion outside the lighthouse grammar [qualitygate.criteria]
     ├── InputError (ValueError)           SLI values or previous evaluations that cannot be used [qualitygate.inputs]
     ├── WindowError (ValueError)          an evaluation window that cannot be read [agents.evaluator.flow]
     ├── RuleError (ValueError)            a simulation rule that cannot be used [agents.sequencer.driver]
     ├── SimulationLimitError (RuntimeError)  a simulation ran past its bounds [agents.sequencer.driver]
     ├── connectors: ConfigProblem (ValueError) [command.connector, prometheus.connector], PlanError (ValueError)
     │    [command.plan], ChartError (ValueError), HelmError, HelmInstallError (RuntimeError) [helm],
     │    ScaleError (RuntimeError) [kubernetes.api], UnleashError (RuntimeError) [unleash.api],
     │    ResultFileError (ValueError) [tests.verdicts], UnknownConnectorError (ValueError) [runtime.catalog],
     │    WebhookProblem (ValueError) [webhook.calls], UnsafePlaceholder (ValueError) [prometheus.sli],
     │    TemplateProblem (ValueError) [webhook.templates], WebhookCallError (RuntimeError) and
     │    RetryableResponse [webhook.sender], AlertingError (ValueError) [prometheus.alerting],
     │    MonitoringError [prometheus.monitoring]
     │    ├── PrometheusError [prometheus.errors]: PrometheusUnavailable, PrometheusRefused
     │    └── SliError [prometheus.errors]: UnknownIndicator, InvalidTimeframe, QueryNotAnswered, QueryRejected,
     │         EmptyResult, SeveralSeries, NotANumber, UnsafeValue, UnexpectedAnswer
     ├── readside: AuditFormatError (ValueError) [history.audit], QueryError (ValueError) [history.store],
     │    AnalyticsInputError (ValueError) [analytics.service], WindowError (ValueError) [analytics.window]
     ├── gateway: ApiError [errors] (an HTTP answer in Keptn's format), PublishFailed (RuntimeError) [ports],
     │    SinkUnavailable (RuntimeError) [alertmanager.app], AuthConfigError (ValueError) [alertmanager.auth],
     │    PayloadError (ValueError) [alertmanager.translate]
     └── cli: CliError [client], TriggerFileError (ValueError) [simulate]

Private exceptions that only carry control flow inside one module (`_LimitPassed`, `_TooLarge`, ...)
stay outside the tree, and so does `ProgramStartError (RuntimeError)` [connectors.runtime.program]: that
module imports only the standard library (it is loaded into bare interpreters). `tests/unit/test_error_tree.py` checks that every public exception class of the
product derives from `TidegateError` and is named here.

A `FileProblem` is one finding in one file, with a place (line, column, field) and a severity. Errors
make a file unusable and are raised inside a `FileError`; warnings are returned with a file that loaded
(`LoadedFile.warnings`) and are printed by `tidegate lint` without failing it.

Models report findings that are not tied to a file yet as `FieldWarning` (a location inside the
document plus a message); the loader turns the location into a line. `invalid_fields()` builds a
pydantic `ValidationError` for problems a model finds across several fields (duplicate names, ...), so
that each one still points at its own field and line instead of at the parent list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Location = tuple[str | int, ...]
"""A path into a document: mapping keys and list indices, e.g. ("spec", "stages", 1, "name")."""

CUSTOM_ERROR_TYPE = "tidegate"
"""The pydantic error type of problems built by `invalid_fields`; its message is already user-facing."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One finding in one file: `shipyard.yaml:12: spec.stages[1].name: dots are not allowed ...`."""

    path: str
    line: int | None
    column: int | None
    field: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        """`path:line: field: message` (severity not included: callers say "warning" where they print)."""
        place = f"{self.path}:{self.line}" if self.line is not None else self.path
        return ": ".join(part for part in (place, self.field, self.message) if part)


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """A finding about a field of a valid document, before it is tied to a file and a line."""

    loc: Location
    message: str


class TidegateError(Exception):
    """Root of every error Tidegate raises on purpose (the tree is in this module's docstring)."""


class SchemaError(TidegateError):
    """Base of every error raised for a user's file or value."""


class DurationError(SchemaError, ValueError):
    """A duration is not written the way Go's time.ParseDuration reads it (Keptn's `triggeredAfter`)."""


class FileError(SchemaError):
    """A configuration file cannot be used. `problems` lists every error found, each with its place."""

    def __init__(self, path: str, problems: Sequence[FileProblem], kind: str | None = None) -> None:
        self.path = path
        self.problems: list[FileProblem] = list(problems)
        self.kind = kind
        """The file kind when it was known before the problems were found (a `schemas.files.FileKind` value)."""
        super().__init__("\n".join(str(p) for p in self.problems) or f"{path}: the file cannot be used")


class FileReadError(FileError):
    """The file could not be read at all."""


class YamlSyntaxError(FileError):
    """The text is not valid YAML; the problem names the line and column where parsing stopped."""


class YamlLimitError(FileError):
    """The text passes a limit of the YAML reader (size, nesting, alias expansion): refused unread."""


class UnknownKindError(FileError):
    """Neither the content nor the file name says which kind of Keptn file this is."""


class FileValidationError(FileError):
    """The YAML is valid but breaks the rules of its kind (missing fields, bad names, wrong types)."""


def invalid_fields(title: str, problems: Iterable[tuple[Location, str]]) -> ValidationError:
    """A ValidationError with one error per (location, message), for a validator to raise.

    pydantic prefixes the locations with the validator's own position in the document, so a check on
    a whole list can still point at the one item that is wrong.
    """
    details = [
        InitErrorDetails(
            type=PydanticCustomError(CUSTOM_ERROR_TYPE, "{message}", {"message": message}),
            loc=loc,
            input=None,
        )
        for loc, message in problems
    ]
    return ValidationError.from_exception_data(title, details)
