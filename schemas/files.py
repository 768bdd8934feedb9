"""Loading Keptn configuration files: YAML with positions, kind detection, validation, precise problems.

    loaded = load_file("shipyard.yaml")            # kind detected from the content (or the file name)
    loaded.kind, loaded.model, loaded.raw, loaded.warnings
    load_text(text, "remediation.yaml", kind="remediation")

Every problem names the file, the line and column, the field (`spec.stages[1].name`) and what is
wrong in words; errors are raised together in one `FileError`, warnings come back with the file.

How YAML is read (`schemas.yamlreader`, the one YAML reader, shared with files of no Keptn kind)
- The node tree is composed first, so every mapping key and list item keeps its line; a pydantic
  error location is walked down that tree to find the line of the field it names.
- Scalars are resolved as YAML 1.2 does: only true/false are booleans, and no dates or base-60 or
  octal numbers (a number with a leading zero, like 0755, stays text: YAML 1.1 and 1.2 disagree on
  it). Keptn (Go, YAML 1.1) read an unquoted `off` as false, which made
  `value: {EnablePromotion: off}` a boolean where every consumer wanted the text "off". Tidegate reads
  the text, so fields that want text get "off", while yes/no settings (`sendFinished: yes`) still get
  their boolean through pydantic's own conversion. Each such unquoted word is reported as a warning
  where the result is text, since other YAML 1.1 tools read it differently.
- Numbers where text is wanted (`value: 1`, `spec_version: 1.0`) are read as their text.
- Only the first document of a file is used, as Keptn did; a leading `---`, an indented document and
  empty (null) sections are fine.
- Every file is read in bounded time and memory: at most `MAX_FILE_BYTES`, nested at most
  `MAX_DEPTH` levels, and at most `MAX_NODES` values once aliases are expanded; over a limit is a
  `YamlLimitError` naming the line (how the limits are counted: `schemas.yamlreader`).

Start-up: a kind's models are imported the first time a file of that kind is read (`KINDS` names
them as `module:Model`), and, declared with `defer_build=True`, build their validators when first
used: `tidegate lint shipyard.yaml` imports and builds the shipyard models only. The model modules do
without `from __future__ import annotations` (pydantic would compile each text annotation as it creates
the class); `tests/unit/test_file_models_build.py` holds these declarations.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tidegate.schemas.errors import (
    CUSTOM_ERROR_TYPE,
    FieldWarning,
    FileProblem,
    FileReadError,
    FileValidationError,
    Location,
    Severity,
    UnknownKindError,
)
from tidegate.schemas.yamlreader import MAX_DEPTH as MAX_DEPTH  # `as`: re-exported (defined here before)
from tidegate.schemas.yamlreader import MAX_FILE_BYTES, Document, format_field_path, read_document, too_large
from tidegate.schemas.yamlreader import MAX_NODES as MAX_NODES
from tidegate.schemas.yamlreader import load_yaml as load_yaml

M = TypeVar("M", bound=BaseModel)


class FileKind(StrEnum):
    SHIPYARD = "shipyard"
    SLO = "slo"
    SLI = "sli"
    REMEDIATION = "remediation"
    LOCUST = "locust"
    JMETER = "jmeter"
    JOB_EXECUTOR = "job-executor"
    WEBHOOK = "webhook"
    COMMAND = "command"


@dataclass(frozen=True)
class LoadedFile:
    """A configuration file that can be used: its kind, the validated model and the parsed YAML."""

    path: str
    kind: FileKind
    model: BaseModel
    raw: dict[str, Any]
    warnings: tuple[FileProblem, ...] = ()
    converted_from: str | None = None
    """Set when an older form was converted, e.g. "Keptn 0.7 shipyard"."""
    document: Document | None = field(default=None, repr=False, compare=False)

    def problem_at(self, loc: Location, message: str, severity: Severity = Severity.ERROR) -> FileProblem:
        """A problem at a location of the parsed YAML (`raw`), e.g. for checks the models do not make."""
        if self.document is None:
            return FileProblem(self.path, None, None, format_field_path(list(loc)), message, severity)
        field_path, line, column = self.document.locate(loc)
        return FileProblem(self.path, line, column, field_path, message, severity)

    def expect(self, model_type: type[M]) -> M:
        """The model as the type the caller needs; TypeError when the file is of another kind."""
        if not isinstance(self.model, model_type):
            raise TypeError(f"{self.path} is a {self.kind} file, not a {model_type.__name__}")
        return self.model


# -- reading YAML (schemas.yamlreader) -------------------------------------------------------------


def _parse_yaml(text: str, path: str) -> Document:
    document = read_document(text, path)
    if document is None:
        raise FileValidationError(path, [FileProblem(path, None, None, "", "the file is empty")])
    return document



# -- kinds ----------------------------------------------------------------------------------------


class _Checked(NamedTuple):
    """A validated document: the model to use, the model that mirrors the YAML (for unknown-field and
    position lookups; differs after a conversion), the model's own warnings, and the converted form.
    (A NamedTuple, as KindInfo: immutable like a frozen dataclass, and created without compiling
    generated methods, which a frozen dataclass costs at every start on Python 3.11.)"""

    model: BaseModel
    mirror: BaseModel
    warnings: list[FieldWarning]
    converted_from: str | None = None


def _model(target: str) -> type[BaseModel]:
    """The model named `module:Model` (a module of tidegate.schemas), imported on first use."""
    module, _, name = target.partition(":")
    model: type[BaseModel] = getattr(importlib.import_module(f"tidegate.schemas.{module}"), name)
    return model


def _plain(target: str) -> Callable[[dict[str, Any]], _Checked]:
    def check(raw: dict[str, Any]) -> _Checked:
        model = _model(target).model_validate(raw)
        # The model's own `warnings()` method, if its class has one: on the instance, an unknown key
        # `warnings:` of the file (kept as an extra) would answer instead.
        own = getattr(type(model), "warnings", None)
        found: list[FieldWarning] = own(model) if callable(own) else []
        return _Checked(model, model, found)

    return check


def _check_shipyard(raw: dict[str, Any]) -> _Checked:
    from tidegate.schemas.shipyard import Shipyard, is_legacy_shipyard

    if is_legacy_shipyard(raw):
        from tidegate.schemas.shipyard_legacy import LegacyShipyard  # only for a Keptn 0.7 file

        legacy = LegacyShipyard.model_validate(raw)
        return _Checked(legacy.to_shipyard(), legacy, legacy.warnings(), "Keptn 0.7 shipyard")
    shipyard = Shipyard.model_validate(raw)
    found = shipyard.warnings()
    for s, stage in enumerate(_list(raw.get("spec", {}), "stages")):
        for q, sequence in enumerate(_list(stage, "sequences")):
            if isinstance(sequence, Mapping) and "triggers" in sequence:
                found.append(FieldWarning(
                    ("spec", "stages", s, "sequences", q, "triggers"),
                    "`triggers:` is the 0.2.0-alpha form, read as triggeredOn; write "
                    "`triggeredOn: [{event: <stage>.<sequence>.finished}]` instead",
                ))
    return _Checked(shipyard, shipyard, found)


def _check_remediation(raw: dict[str, Any]) -> _Checked:
    from tidegate.schemas.remediation import is_legacy_remediation

    if is_legacy_remediation(raw):
        from tidegate.schemas.remediation_legacy import LegacyRemediation  # only for a pre-0.7 file

        legacy = LegacyRemediation.model_validate(raw)
        return _Checked(legacy.to_remediation(), legacy, [], "pre-0.7 remediation list")
    return _plain("remediation:Remediation")(raw)


def _shipyard_required_keys(raw: dict[str, Any]) -> tuple[str, ...]:
    from tidegate.schemas.shipyard import is_legacy_shipyard

    return () if is_legacy_shipyard(raw) else ("apiVersion",)


def _list(container: Any, key: str) -> list[Any]:
    value = container.get(key) if isinstance(container, Mapping) else None
    return value if isinstance(value, list) else []


class KindInfo(NamedTuple):
    """How a kind of file is read (immutable, like a frozen dataclass; see _Checked)."""

    kind: FileKind
    target: str
    """`module:Model` in tidegate.schemas: the model a file of this kind is read into."""
    description: str
    check: Callable[[dict[str, Any]], _Checked]
    required_keys: Callable[[dict[str, Any]], tuple[str, ...]] | None = None
    """Top-level keys a file must have although the model has a default (Keptn required them)."""

    @property
    def model(self) -> type[BaseModel]:
        return _model(self.target)


KINDS: dict[FileKind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(FileKind.SHIPYARD, "shipyard:Shipyard", "shipyard.yaml: stages, sequences and tasks",
                 _check_shipyard, _shipyard_required_keys),
        KindInfo(FileKind.SLO, "slo:SLO", "slo.yaml: objectives and scores of a quality gate", _plain("slo:SLO")),
        KindInfo(FileKind.SLI, "sli:SLI", "sli.yaml: the query of each indicator", _plain("sli:SLI")),
        KindInfo(FileKind.REMEDIATION, "remediation:Remediation", "remediation.yaml: actions per problem",
                 _check_remediation),
        KindInfo(FileKind.LOCUST, "testconfigs:LocustConfig", "locust/locust.conf.yaml: Locust workloads",
                 _plain("testconfigs:LocustConfig")),
        KindInfo(FileKind.JMETER, "jmeter:JMeterConfig", "jmeter/jmeter.conf.yaml: JMeter workloads",
                 _plain("jmeter:JMeterConfig")),
        KindInfo(FileKind.JOB_EXECUTOR, "jobconfig:JobConfig", "job/config.yaml: job-executor actions",
                 _plain("jobconfig:JobConfig")),
        KindInfo(FileKind.WEBHOOK, "webhook:WebhookConfig", "webhook.yaml: webhook requests",
                 _plain("webhook:WebhookConfig")),
        KindInfo(FileKind.COMMAND, "commandconfig:CommandConfig", "command/config.yaml: the command connector's programs",
                 _plain("commandconfig:CommandConfig")),
    )
}

_KIND_VALUES = {"Shipyard": FileKind.SHIPYARD, "Remediation": FileKind.REMEDIATION, "WebhookConfig": FileKind.WEBHOOK}
_TOP_LEVEL_KEYS = (
    ("stages", FileKind.SHIPYARD),
    ("objectives", FileKind.SLO),
    ("indicators", FileKind.SLI),
    ("remediations", FileKind.REMEDIATION),
    ("actions", FileKind.JOB_EXECUTOR),
)
_NAME_WORDS = {
    "shipyard": FileKind.SHIPYARD, "slo": FileKind.SLO, "sli": FileKind.SLI,
    "remediation": FileKind.REMEDIATION, "locust": FileKind.LOCUST, "jmeter": FileKind.JMETER,
    "webhook": FileKind.WEBHOOK,
}
_HOW_TO_SAY = "say which with --kind (" + ", ".join(k.value for k in FileKind) + ")"


def detect_kind(raw: Mapping[str, Any], path: str | Path = "") -> FileKind:
    """The kind of a parsed file, from its content, else from words in its name; UnknownKindError if neither."""
    where = str(path)
    if "kind" in raw:
        declared = raw["kind"]
        if declared in _KIND_VALUES:
            return _KIND_VALUES[declared]
        raise UnknownKindError(where, [FileProblem(
            where, None, None, "kind",
            f"kind '{declared}' is not a file Tidegate reads (it knows {', '.join(_KIND_VALUES)})",
        )])
    for key, kind in _TOP_LEVEL_KEYS:
        if key in raw:
            return kind
    if "workloads" in raw:
        return _test_tool(raw, where)
    words = set(re.split(r"[^a-z]+", Path(where).name.lower()))
    named = [kind for word, kind in _NAME_WORDS.items() if word in words]
    if len(named) == 1:
        return named[0]
    raise UnknownKindError(where, [FileProblem(
        where, None, None, "",
        "cannot tell which kind of Keptn file this is: it has no `kind:` and none of the top-level keys "
        f"stages, objectives, indicators, remediations, workloads or actions; {_HOW_TO_SAY}",
    )])


def _test_tool(raw: Mapping[str, Any], path: str) -> FileKind:
    name = Path(path).name.lower()
    if "locust" in name:
        return FileKind.LOCUST
    if "jmeter" in name:
        return FileKind.JMETER
    workloads = [w for w in raw.get("workloads") or [] if isinstance(w, Mapping)]
    jmeter_keys = {"vuser", "loopcount", "thinktime", "acceptederrorrate", "avgrtvalidation"}
    scripts = [str(w.get("script", "")) for w in workloads]
    if any(jmeter_keys & w.keys() for w in workloads) or any(s.endswith(".jmx") for s in scripts):
        return FileKind.JMETER
    if any("conf" in w for w in workloads) or any(s.endswith(".py") for s in scripts):
        return FileKind.LOCUST
    raise UnknownKindError(path, [FileProblem(
        path, None, None, "workloads",
        f"the workloads could be for JMeter or for Locust; name the file jmeter.conf.yaml or "
        f"locust.conf.yaml, or {_HOW_TO_SAY}",
    )])


# -- loading --------------------------------------------------------------------------------------


def load_file(path: str | Path, kind: FileKind | str | None = None) -> LoadedFile:
    """Read, parse and validate a file; raises a FileError subclass listing every problem."""
    where = str(path)
    try:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise too_large(where)
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileReadError(where, [FileProblem(where, None, None, "", "no such file")]) from None
    except IsADirectoryError:
        raise FileReadError(where, [FileProblem(where, None, None, "", "this is a directory, not a file")]) from None
    except UnicodeDecodeError as error:
        raise FileReadError(where, [FileProblem(
            where, None, None, "", f"not UTF-8 text (byte {error.start}); save the file as UTF-8",
        )]) from None
    except OSError as error:
        raise FileReadError(where, [FileProblem(where, None, None, "", f"cannot read the file: {error.strerror}")]) from None
    return load_text(text, path, kind)


def load_text(text: str, path: str | Path = "<text>", kind: FileKind | str | None = None) -> LoadedFile:
    """Parse and validate YAML text; `path` is only used to name the file in problems (and to tell
    jmeter from locust files). `kind` overrides detection."""
    where = str(path)
    document = _parse_yaml(text, where)
    raw = document.data
    if raw is None:
        raise FileValidationError(where, [FileProblem(where, None, None, "", "the file is empty")])
    if not isinstance(raw, dict):
        line = document.root.start_mark.line + 1
        raise FileValidationError(where, [FileProblem(
            where, line, 1, "", f"expected a mapping of keys at the top of the file, found {_describe(raw)}",
        )])
    chosen = _chosen_kind(kind, where) or detect_kind(raw, where)
    info = KINDS[chosen]
    errors = [
        FileProblem(where, *document.locate((key,), missing=True)[1:], key, "missing required field")
        for key in (info.required_keys(raw) if info.required_keys else ()) if key not in raw
    ]
    try:
        checked = info.check(raw)
    except ValidationError as error:
        errors.extend(_problems(error, document, where))
        checked = None
    if errors or checked is None:
        raise FileValidationError(where, _sorted(errors), chosen.value)
    warnings = [
        *document.notes,
        *(_warning(document, w.loc, w.message, where) for w in checked.warnings),
        *(_warning(document, loc, f"unknown field '{loc[-1]}' is ignored", where)
          for loc in _unknown_fields(checked.mirror, ())),
        *_yaml11_warnings(document, checked.mirror, where),
    ]
    return LoadedFile(where, chosen, checked.model, raw, tuple(_sorted(warnings)), checked.converted_from, document)


def _chosen_kind(kind: FileKind | str | None, path: str) -> FileKind | None:
    if kind is None or isinstance(kind, FileKind):
        return kind
    try:
        return FileKind(kind)
    except ValueError:
        raise UnknownKindError(path, [FileProblem(
            path, None, None, "", f"'{kind}' is not a file kind; use one of " + ", ".join(k.value for k in FileKind),
        )]) from None


def _sorted(problems: list[FileProblem]) -> list[FileProblem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _warning(document: Document, loc: Location, message: str, path: str) -> FileProblem:
    field_path, line, column = document.locate(loc)
    return FileProblem(path, line, column, field_path, message, Severity.WARNING)


# -- pydantic errors in users' words ----------------------------------------------------------------


def _problems(error: ValidationError, document: Document, path: str) -> list[FileProblem]:
    located = [
        (detail, document.locate(detail["loc"], missing=detail["type"] == "missing"))
        for detail in error.errors(include_url=False)
    ]
    # A union reports one error per member. A type mismatch on one member is noise when another
    # member got further into the value (its errors sit deeper under the same field); type
    # mismatches of all members at one field become one "expected A or B" message.
    paths = [place[0] for _, place in located]
    expected: dict[str, list[str]] = {}
    for detail, (field_path, _, _) in located:
        if detail["type"] in _EXPECTED:
            expected.setdefault(field_path, []).append(_EXPECTED[detail["type"]])
    problems: list[FileProblem] = []
    seen: set[tuple[str, str]] = set()
    for detail, (field_path, line, column) in located:
        if detail["type"] in _EXPECTED:
            if any(_is_under(other, field_path) for other in paths):
                continue
            wanted = " or ".join(dict.fromkeys(expected[field_path]))
            message = f"expected {wanted}, got {_describe(detail.get('input'))}"
            if "text" in wanted and isinstance(detail.get("input"), list | dict):
                message += " (an unquoted value that starts with [ or { is YAML for a list or mapping; quote it)"
        else:
            message = _message(detail)
        if (field_path, message) in seen:
            continue
        seen.add((field_path, message))
        problems.append(FileProblem(path, line, column, field_path, message))
    return problems


def _is_under(path: str, parent: str) -> bool:
    return path.startswith(parent + ".") or path.startswith(parent + "[") or (not parent and bool(path))


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}


def _message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx", {})
    got = _describe(detail.get("input"))
    if kind == CUSTOM_ERROR_TYPE:
        return str(ctx.get("message", detail["msg"]))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", detail["msg"])).removeprefix("Value error, ")
    if kind == "missing":
        return "missing required field"
    if kind == "literal_error":
        return f"{got} is not allowed here; use one of {ctx.get('expected', '')}"
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"needs at least {minimum} entries"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}, got {got}"
    return str(detail["msg"])


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (the value is empty)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# -- warnings found on the validated model ----------------------------------------------------------


def _unknown_fields(model: BaseModel, loc: Location) -> Iterator[Location]:
    """Locations of keys the models do not know (kept as extras, ignored by Tidegate like Keptn did)."""
    for key in model.model_extra or {}:
        yield (*loc, key)
    for name, info in type(model).model_fields.items():
        yield from _unknown_in(getattr(model, name), (*loc, info.alias or name))


def _unknown_in(value: Any, loc: Location) -> Iterator[Location]:
    if isinstance(value, BaseModel):
        yield from _unknown_fields(value, loc)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unknown_in(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel):
                yield from _unknown_fields(item, (*loc, key))


def _yaml11_warnings(document: Document, mirror: BaseModel, path: str) -> Iterator[FileProblem]:
    for loc, word in document.yaml11_words:
        if isinstance(_value_at(mirror, loc), bool):
            continue  # a yes/no setting: pydantic read the word as YAML 1.1 would
        yield _warning(
            document, loc,
            f"unquoted {word} is read as the text '{word}'; YAML 1.1 tools (and Keptn) read it as a boolean. "
            f"Quote it ('{word}') so every tool agrees",
            path,
        )


_ABSENT = object()


def _value_at(value: Any, loc: Location) -> Any:
    for part in loc:
        if isinstance(value, BaseModel):
            value = _field_value(value, part)
        elif isinstance(value, dict):
            value = value.get(part, _ABSENT)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return _ABSENT
        if value is _ABSENT:
            return _ABSENT
    return value


def _field_value(model: BaseModel, key: str | int) -> Any:
    for name, info in type(model).model_fields.items():
        if key in (name, info.alias):
            return getattr(model, name)
    return (model.model_extra or {}).get(str(key), _ABSENT)

