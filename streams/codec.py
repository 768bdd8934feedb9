"""KeptnEvent <-> Kafka record, the CloudEvents Kafka protocol binding. Pure: no I/O.

Output is always binary content mode: every attribute as a `ce_<name>` header (Keptn's extensions
`shkeptncontext`, `triggeredid`, `gitcommitid`, `shkeptnspecversion` and any unknown extension
included), `content-type: application/json`, the JSON `data` object as the value, and the key
`project/stage/service` (schemas.keys).

Input is accepted in three forms, told apart by the headers:
- binary mode: any `ce_` header; the CloudEvents required attributes id, source, type and
  specversion (1.0) must all be there;
- structured mode: `content-type: application/cloudevents+json`, the whole event as a JSON object;
- a plain JSON event without headers (what a naive producer sends, like the body of Keptn's
  `POST /v1/event`): only `type` is required; a missing `id` is derived from the body's hash so
  that reading the same record twice yields the same id, and a missing `time` is the record's
  timestamp.

Binary mode is on every agent's hot path, so it is written and read here directly: headers and the
JSON value are built by hand and `ce_time` is parsed with `datetime.fromisoformat`; `encode_fields` writes
the record of an event that is never built (audit transitions, plain by construction). Whatever the fast
paths are not sure of (an attribute the CloudEvents library would refuse, a header that is not UTF-8,
a time that is not plain RFC 3339, a non-JSON content type, ...) goes through the `cloudevents`
library (2.x, `cloudevents.core.bindings.kafka`) as before, so output bytes, accepted inputs and error
reasons are exactly the library's. Structured and plain JSON are read here directly: Keptn's data is
always a JSON object, so the library's base64/non-JSON paths do not apply, and its reader would fill a
missing id with a random UUID, which would defeat the replay-stable ids every consumer relies on.

Every decoding failure raises `DecodeError`, whose `reason` says what is wrong in words a person
who sent the record can act on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil import tz as dateutil_tz
from pydantic import ValidationError

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent, format_time
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key

CE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
SPEC_VERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")

_JSON_FORMAT = JSONFormat()

HeadersLike = Mapping[str, bytes | str | None] | Iterable[tuple[str, bytes | str | None]] | None
"""Headers as Kafka clients give them: Faust (dict), aiokafka (tuples), confluent-kafka (list or None)."""


class DecodeError(TidegateError, ValueError):
    """A record that is not a readable Keptn CloudEvent; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A Kafka record as any client sends it: key, value, ordered headers."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        """The last value of header `name` (case-insensitive), or None."""
        found = None
        for header_name, value in self.headers:
            if header_name.lower() == name.lower():
                found = value
        return found


def event_key(event: KeptnEvent) -> Key:
    """The record key of an event: `project/stage/service` from its data block."""
    return Key.of_data(event.data)


# --- encode --------------------------------------------------------------------------------------------

# What the CloudEvents library (v1 CloudEvent, JSONFormat) checks and matches, mirrored for the fast paths.
_OPTIONAL_ATTRIBUTES = frozenset({"datacontenttype", "dataschema", "subject", "time"})
_SPEC_ATTRIBUTES = frozenset(REQUIRED_ATTRIBUTES) | _OPTIONAL_ATTRIBUTES
_EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")  # re.match, as the library does (so "$" allows a final newline)
_JSON_CONTENT_TYPE = re.compile(r"^(application|text)/([a-zA-Z0-9\-\.]+\+)?json(;.*)?$")
_NOT_EMPTY_ATTRIBUTES = ("datacontenttype", "dataschema", "subject")
_NOT_EMPTY_FIELDS = frozenset(REQUIRED_ATTRIBUTES) | {"datacontenttype"}
_REQUIRED_HEADERS = tuple(f"{CE_PREFIX}{name}" for name in REQUIRED_ATTRIBUTES)
# Attribute names the library accepts, known up front so that only other extensions meet the regex.
_KNOWN_ATTRIBUTES = _SPEC_ATTRIBUTES | {name for name in KeptnEvent.model_fields if name != "data"}
_PARSED_UTC = dateutil_tz.UTC  # the tzinfo of times read from ce_time (dateutil's tzutc)

# KeptnEvent's attributes in model_dump order, each with its header; `data` is the value.
_FIELD_HEADERS = tuple(
    (name, CONTENT_TYPE_HEADER if name == "datacontenttype" else f"{CE_PREFIX}{name}")
    for name in KeptnEvent.model_fields
    if name != "data"
)


# For encode_fields: KeptnEvent's attributes, the value each gets when not given (those without a factory),
# the ones that must be given (their factories are random), and those that may not be None.
_ATTRIBUTE_NAMES = frozenset(name for name, _header in _FIELD_HEADERS)
_ATTRIBUTE_DEFAULTS = {
    name: field.default
    for name, field in KeptnEvent.model_fields.items()
    if name in _ATTRIBUTE_NAMES and not field.is_required() and field.default_factory is None
}
_GIVEN_ATTRIBUTES = _ATTRIBUTE_NAMES - _ATTRIBUTE_DEFAULTS.keys()
_NOT_NULL_ATTRIBUTES = frozenset(
    name for name in _ATTRIBUTE_NAMES if type(None) not in get_args(KeptnEvent.model_fields[name].annotation)
)


def _json_default(value: Any) -> Any:
    # The library's JSON encoder: datetimes in data as isoformat, UTC as `Z`.
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_DATA_ENCODER = json.JSONEncoder(default=_json_default)
# The last `ce_time` written for a naive or UTC time (formatting those is pure), by identity: the outputs of
# one input share its time, so most of them find it here.
_last_time: tuple[datetime, bytes] = (datetime.min, format_time(datetime.min).encode("utf-8"))


def _time_header(moment: datetime) -> bytes:
    global _last_time
    last_moment, text = _last_time
    if moment is last_moment:
        return text
    text = format_time(moment).encode("utf-8")
    if moment.tzinfo is None or moment.tzinfo is UTC:
        _last_time = (moment, text)
    return text


def _is_json_content_type(content_type: str) -> bool:
    return content_type == JSON_CONTENT_TYPE or _JSON_CONTENT_TYPE.match(content_type) is not None


def _valid_extension_name(name: str) -> bool:
    return name != "data" and _EXTENSION_NAME.match(name) is not None


def _extension_text(value: Any) -> Any:
    # Header values are strings; CloudEvents writes booleans as true/false and numbers as JSON does.
    if isinstance(value, str | datetime):
        return value
    return json.dumps(value)


def encode(event: KeptnEvent, key: Key | None = None) -> KafkaRecord:
    """The binary-mode record of `event`, keyed by its project/stage/service unless `key` is given."""
    record = _encode_fast(event, key)
    return record if record is not None else _encode_with_library(event, key)


def _encode_fast(event: KeptnEvent, key: Key | None) -> KafkaRecord | None:
    """The record `_encode_with_library` writes, for the events the library is sure to accept; else None.

    Only plain values (str attributes, str/bool/int/float extensions, a dict of data) are handled here;
    anything else, or any error, is left to the library path, so that output and exceptions stay exactly
    the library's. (For any content type the library writes a dict of data as JSON; only when that fails
    does the content type matter, and then the library path decides.)
    """
    if type(event) is not KeptnEvent:
        return None
    values = event.__dict__
    data = values.get("data")
    if type(data) is not dict:
        return None
    return _plain_record(key, values, event.__pydantic_extra__, data, frozenset())


def _plain_record(
    key: Key | None,
    values: Mapping[str, Any],
    extensions: Mapping[str, Any] | None,
    data: dict[str, Any],
    not_null: frozenset[str],
) -> KafkaRecord | None:
    """The binary-mode record of an event with the attributes `values` (every KeptnEvent field; data aside),
    the extensions `extensions` and the data `data`, keyed `key` or by the data; None unless all are plain
    (or an attribute in `not_null` is None)."""
    headers: list[tuple[str, bytes]] = []
    try:
        for name, header in _FIELD_HEADERS:
            value = values[name]
            if value is None:
                if name in not_null:
                    return None
                continue
            if name == "time":
                if type(value) is not datetime:
                    return None
                headers.append((header, _time_header(value)))
                continue
            if type(value) is not str or (not value and name in _NOT_EMPTY_FIELDS):
                return None  # the library refuses these empty
            headers.append((header, value.encode("utf-8")))
        if values["specversion"] != SPEC_VERSION:
            return None
        for name, value in (extensions or {}).items():
            if value is None:
                continue
            if not _valid_extension_name(name) or name in _SPEC_ATTRIBUTES:
                return None
            kind = type(value)
            if kind is str:
                text = value
            elif kind is bool or kind is int or kind is float:
                text = json.dumps(value)
            else:
                return None  # model_dump would convert it first: leave it to the library path
            headers.append((f"{CE_PREFIX}{name}", text.encode("utf-8")))
        record_key = (key or Key.of_data(data)).encode()  # event_key, for the event's data
        body = _DATA_ENCODER.encode(data).encode("utf-8")
    except Exception:  # any failure: the library path raises it as it always did
        return None
    return KafkaRecord(key=record_key, value=body, headers=tuple(headers))


def encode_fields(attributes: dict[str, Any], data: dict[str, Any], key: Key) -> KafkaRecord:
    """`encode(KeptnEvent(**attributes, data=data), key)`, without building the event when that is sure
    to give the same record: for writers on a hot path whose events are plain by construction (audit
    transitions).

    Sure means: `id`, `type` and `time` given (their defaults are random), only KeptnEvent's own attributes,
    each a str (`time` a datetime; None only where the model allows it), and `data` a dict with str keys:
    the model would hold these very values (pydantic passes str and datetime through, and copies such a dict
    item for item), so `_plain_record` writes what `_encode_fast` would. Anything else builds the event.
    """
    if (
        type(data) is dict
        and _GIVEN_ATTRIBUTES <= attributes.keys() <= _ATTRIBUTE_NAMES
        and all(type(name) is str for name in data)
    ):
        record = _plain_record(key, {**_ATTRIBUTE_DEFAULTS, **attributes}, None, data, _NOT_NULL_ATTRIBUTES)
        if record is not None:
            return record
    return encode(KeptnEvent(**attributes, data=data), key)


def _encode_with_library(event: KeptnEvent, key: Key | None) -> KafkaRecord:
    """Binary mode through the CloudEvents library: the reference for `_encode_fast` and its fallback."""
    attributes = event.model_dump(mode="python", exclude_none=True, exclude={"data"})
    attributes = {name: _extension_text(value) for name, value in attributes.items()}
    attributes["time"] = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
    record_key = (key or event_key(event)).encode()
    try:
        message = ce_kafka.to_binary(
            CloudEvent(attributes, event.data), _JSON_FORMAT, key_mapper=lambda _event: record_key
        )
    except BaseCloudEventException as error:
        raise ValueError(f"event {event.id} cannot be written as a CloudEvent: {error}") from error
    headers = dict(message.headers)
    # The library writes Python's isoformat (microseconds); Keptn writes milliseconds and `Z`.
    headers[f"{CE_PREFIX}time"] = format_time(event.time).encode("utf-8")
    return KafkaRecord(key=record_key, value=message.value, headers=tuple(headers.items()))


def encode_structured(event: KeptnEvent, key: Key | None = None) -> KafkaRecord:
    """The structured-mode record of `event` (for producers and tests that need that mode)."""
    return KafkaRecord(
        key=(key or event_key(event)).encode(),
        value=json.dumps(event.to_json_dict()).encode("utf-8"),
        headers=((CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE.encode("ascii")),),
    )


# --- decode --------------------------------------------------------------------------------------------


def _normalised(headers: HeadersLike) -> dict[str, bytes]:
    """Lower-cased header names to their last non-null value."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, bytes] = {}
    for name, value in items:
        if type(value) is bytes:  # the usual case, first
            out[name.lower()] = value
        elif value is not None:
            out[name.lower()] = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return out


def decode_record(record: KafkaRecord, *, timestamp: datetime | None = None) -> KeptnEvent:
    return decode(record.value, record.headers, timestamp=timestamp)


def decode(value: bytes | None, headers: HeadersLike = None, *, timestamp: datetime | None = None) -> KeptnEvent:
    """The KeptnEvent in a record's value and headers, in any of the three accepted forms.

    `timestamp` (the record's) stands in for a missing `time` in a plain JSON event.
    Raises DecodeError with a reason.
    """
    if value is None:
        raise DecodeError("the record has no value (a tombstone?); an event needs a JSON body")
    normalised = _normalised(headers)
    for name in normalised:  # any(...) over a generator, without setting one up for every record
        if name.startswith(CE_PREFIX):
            return _decode_binary(value, normalised)
    content_type = normalised.get(CONTENT_TYPE_HEADER, b"").decode("latin-1").strip().lower()
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return _decode_json_event(value, "structured-mode CloudEvent", strict=True, timestamp=None)
    return _decode_json_event(value, "plain JSON event", strict=False, timestamp=timestamp)


def _decode_binary(value: bytes, headers: dict[str, bytes]) -> KeptnEvent:
    where = "binary-mode CloudEvent"
    if not all(map(headers.get, _REQUIRED_HEADERS)):  # which ones, only when some are missing
        missing = [header for header in _REQUIRED_HEADERS if not headers.get(header)]
        raise DecodeError(f"{where} lacks the header(s) {', '.join(missing)}; every CloudEvent needs them")
    if headers[f"{CE_PREFIX}specversion"] != SPEC_VERSION.encode():
        raise DecodeError(
            f"{where} has ce_specversion {headers[f'{CE_PREFIX}specversion']!r}; Tidegate reads CloudEvents 1.0"
        )
    fields = _binary_fields_fast(value, headers)
    if fields is None:
        fields = _binary_fields_with_library(where, value, headers)
    return _validated(where, fields)


# An RFC 3339 time that datetime.fromisoformat and dateutil's isoparse read alike (ASCII digits only,
# at most microseconds, an offset within a day); anything else is left to isoparse.
_RFC3339_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_ZERO = timedelta(0)
# isoparse gives dateutil's tzutc for `Z` and any zero offset and a tzoffset otherwise; the events read here
# carry the same tzinfo objects as they did, so nothing downstream sees a difference.
_parsed_offsets: dict[timedelta, Any] = {}


def _parse_time(text: str) -> datetime | None:
    """`isoparse(text)` for a plain RFC 3339 time, or None when that is not sure."""
    if _RFC3339_TIME.fullmatch(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None  # e.g. hour 24 or a leap second: isoparse decides
    if text[-1] == "Z":  # the usual form: no offset to look at
        return datetime.combine(moment, moment.time(), _PARSED_UTC)
    offset = moment.utcoffset()
    if offset is None:
        return None
    if offset == _ZERO:
        zone = _PARSED_UTC
    else:
        zone = _parsed_offsets.get(offset)
        if zone is None:
            zone = _parsed_offsets.setdefault(offset, dateutil_tz.tzoffset(None, int(offset.total_seconds())))
    return datetime.combine(moment, moment.time(), zone)  # what replace(tzinfo=zone) does, faster


# The headers of the attributes the library accepts as they are (all but ce_time), to the attribute's name.
_ATTRIBUTE_HEADERS = {f"{CE_PREFIX}{name}": name for name in _KNOWN_ATTRIBUTES if name != "time"}
_ATTRIBUTE_HEADERS[CONTENT_TYPE_HEADER] = "datacontenttype"
_TIME_HEADER = f"{CE_PREFIX}time"


def _binary_fields_fast(value: bytes, headers: dict[str, bytes]) -> dict[str, Any] | None:
    """The fields `_binary_fields_with_library` gives, for records it is sure to accept; else None.

    Mirrors `ce_kafka.from_binary` and the v1 CloudEvent's checks; any doubt (a header that is not UTF-8,
    a time that is not plain RFC 3339, an attribute the library would refuse, a body that is not a JSON
    object or null) is left to the library path, which then accepts or rejects with its own reason.
    """
    if type(value) is not bytes:
        return None
    attributes: dict[str, Any] = {}
    for name, raw in headers.items():
        try:
            text = raw.decode("utf-8")  # the library decodes every header, ce_ or not
        except UnicodeDecodeError:
            return None
        attribute = _ATTRIBUTE_HEADERS.get(name)
        if attribute is not None:
            attributes[attribute] = text
        elif name == _TIME_HEADER:
            moment = _parse_time(text)
            if moment is None:
                return None
            attributes["time"] = moment
        elif name.startswith(CE_PREFIX):
            attribute = name[3:]
            if not _valid_extension_name(attribute):
                return None
            attributes[attribute] = text
    for name in _NOT_EMPTY_ATTRIBUTES:
        if attributes.get(name) == "":
            return None
    data: Any = None
    if value:
        if not _is_json_content_type(attributes.get("datacontenttype") or JSON_CONTENT_TYPE):
            return None
        try:
            data = json.loads(value.decode("utf-8"))
        except ValueError:  # also UnicodeDecodeError
            return None
        if isinstance(data, str):
            return None  # the library's data would be the text itself: an error, with its reason
    if "time" not in attributes:
        attributes["time"] = datetime.now(UTC)  # as the library's CloudEvent does
    attributes["data"] = data
    return attributes


def _binary_fields_with_library(where: str, value: bytes, headers: dict[str, bytes]) -> dict[str, Any]:
    """The event fields of a binary-mode record, read by the CloudEvents library; DecodeError if it is not one."""
    try:
        cloud_event = ce_kafka.from_binary(ce_kafka.KafkaMessage(headers=headers, key=None, value=value), _JSON_FORMAT)
    except UnicodeDecodeError as error:
        raise DecodeError(f"{where} has a header that is not UTF-8 text: {error}") from error
    except BaseCloudEventException as error:
        raise DecodeError(f"{where} is not a valid CloudEvent: {error}") from error
    except ValueError as error:  # a ce_time that is not RFC 3339
        raise DecodeError(f"{where} has an unreadable ce_time: {error}") from error
    data = cloud_event.get_data()
    if isinstance(data, str | bytes):
        raise DecodeError(f"{where}: the value is not a JSON object ({_json_problem(value)})")
    return {**cloud_event.get_attributes(), "data": data}


def _decode_json_event(value: bytes, where: str, *, strict: bool, timestamp: datetime | None) -> KeptnEvent:
    try:
        body = json.loads(value.decode("utf-8"))  # JSON on Kafka is UTF-8; json.loads would guess UTF-16/32
    except UnicodeDecodeError as error:
        raise DecodeError(f"{where}: the value is not UTF-8 text ({error})") from error
    except json.JSONDecodeError as error:
        hint = "" if strict else "; send JSON, or CloudEvents binary mode with ce_* headers"
        raise DecodeError(f"{where}: the value is not valid JSON ({error}){hint}") from error
    if not isinstance(body, dict):
        raise DecodeError(f"{where}: the value is JSON {type(body).__name__}, not an object with a `type`")
    if strict:
        missing = [name for name in REQUIRED_ATTRIBUTES if not body.get(name)]
        if missing:
            raise DecodeError(f"{where} lacks the attribute(s) {', '.join(missing)}; every CloudEvent needs them")
        if body["specversion"] != SPEC_VERSION:
            raise DecodeError(f"{where} has specversion {body['specversion']!r}; Tidegate reads CloudEvents 1.0")
    elif not body.get("type"):
        raise DecodeError(f"{where} has no `type`; a Keptn event needs e.g. sh.keptn.event.dev.delivery.triggered")
    if "data_base64" in body:
        raise DecodeError(f"{where} carries data_base64; Keptn event data must be a JSON object in `data`")
    if not strict:
        body.setdefault("id", derived_id(hashlib.sha256(value).hexdigest(), "plain-event-id"))
        if timestamp is not None:
            body.setdefault("time", timestamp)
    return _validated(where, body)


def _validated(where: str, fields: dict[str, Any]) -> KeptnEvent:
    if fields.get("data") is not None and not isinstance(fields["data"], dict):
        raise DecodeError(f"{where}: `data` is JSON {type(fields['data']).__name__}; Keptn event data is an object")
    try:
        return KeptnEvent.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'event'}: {item['msg']}" for item in error.errors()
        )
        raise DecodeError(f"{where} is not a valid Keptn event: {problems}") from error


def _json_problem(value: bytes) -> str:
    try:
        json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"invalid JSON: {error}"
    return "JSON, but not an object"
