"""KeptnEvent <-> Kafka record, the CloudEvents Kafka protocol binding. Pure: no I/O.

Output is always binary content mode: every attribute as a `ce_<name>` header (Keptn's extensions
`shkeptncontext`, `triggeredid`, `gitcommitid`, `shkeptnspecversion` and any unknown extension
included), `content-type: application/json`, the JSON `data` object as the value, and the key
`project/stage/service` (streams.keys).

Input is accepted in three forms, told apart by the headers:
- binary mode: any `ce_` header; the CloudEvents required attributes id, source, type and
  specversion (1.0) must all be there;
- structured mode: `content-type: application/cloudevents+json`, the whole event as a JSON object;
- a plain JSON event without headers (what a naive producer sends, like the body of Keptn's
  `POST /v1/event`): only `type` is required; a missing `id` is derived from the body's hash so
  that reading the same record twice yields the same id, and a missing `time` is the record's
  timestamp.

The `cloudevents` library (2.x, `cloudevents.core.bindings.kafka`) maps attributes to and from
binary-mode headers. Structured and plain JSON are read here directly: Keptn's data is always a JSON
object, so the library's base64/non-JSON paths do not apply, and its reader would fill a missing id
with a random UUID, which would defeat the replay-stable ids every consumer relies on.

Every decoding failure raises `DecodeError`, whose `reason` says what is wrong in words a person
who sent the record can act on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from schemas.events import KeptnEvent, format_time
from streams.ids import derived_id
from streams.keys import Key

CE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
SPEC_VERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")

_JSON_FORMAT = JSONFormat()

HeadersLike = Mapping[str, bytes | str | None] | Iterable[tuple[str, bytes | str | None]] | None
"""Headers as Kafka clients give them: Faust (dict), aiokafka (tuples), confluent-kafka (list or None)."""


class DecodeError(ValueError):
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


def _extension_text(value: Any) -> Any:
    # Header values are strings; CloudEvents writes booleans as true/false and numbers as JSON does.
    if isinstance(value, str | datetime):
        return value
    return json.dumps(value)


def encode(event: KeptnEvent, key: Key | None = None) -> KafkaRecord:
    """The binary-mode record of `event`, keyed by its project/stage/service unless `key` is given."""
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
        if value is None:
            continue
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
    if any(name.startswith(CE_PREFIX) for name in normalised):
        return _decode_binary(value, normalised)
    content_type = normalised.get(CONTENT_TYPE_HEADER, b"").decode("latin-1").strip().lower()
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return _decode_json_event(value, "structured-mode CloudEvent", strict=True, timestamp=None)
    return _decode_json_event(value, "plain JSON event", strict=False, timestamp=timestamp)


def _decode_binary(value: bytes, headers: dict[str, bytes]) -> KeptnEvent:
    where = "binary-mode CloudEvent"
    missing = [f"{CE_PREFIX}{name}" for name in REQUIRED_ATTRIBUTES if not headers.get(f"{CE_PREFIX}{name}")]
    if missing:
        raise DecodeError(f"{where} lacks the header(s) {', '.join(missing)}; every CloudEvent needs them")
    if headers[f"{CE_PREFIX}specversion"] != SPEC_VERSION.encode():
        raise DecodeError(
            f"{where} has ce_specversion {headers[f'{CE_PREFIX}specversion']!r}; Tidegate reads CloudEvents 1.0"
        )
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
    return _validated(where, {**cloud_event.get_attributes(), "data": data})


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
