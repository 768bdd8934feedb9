"""The codec's binary-mode fast paths against the library-based codec they replaced.

`reference_encode` and `reference_decode` below are copies of streams/codec.py as it was before the fast
paths (every binary record went through the `cloudevents` library). The new codec must give the same
records, byte for byte and header for header, the same events (down to the tzinfo of their time and the
order of their extensions), and the same exceptions with the same messages.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil import tz as dateutil_tz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tidegate.schemas.events import KeptnEvent, format_time
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.streams import codec
from tidegate.streams.codec import DecodeError, KafkaRecord, decode, encode, event_key

# --- the reference: streams/codec.py before the fast paths ---------------------------------------------

CE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
SPEC_VERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
_JSON_FORMAT = JSONFormat()


def _extension_text(value: Any) -> Any:
    if isinstance(value, str | datetime):
        return value
    return json.dumps(value)


def reference_encode(event: KeptnEvent, key: Key | None = None) -> KafkaRecord:
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
    headers[f"{CE_PREFIX}time"] = format_time(event.time).encode("utf-8")
    return KafkaRecord(key=record_key, value=message.value, headers=tuple(headers.items()))


HeadersLike = Mapping[str, bytes | str | None] | Iterable[tuple[str, bytes | str | None]] | None


def _normalised(headers: HeadersLike) -> dict[str, bytes]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, bytes] = {}
    for name, value in items:
        if value is None:
            continue
        out[name.lower()] = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return out


def reference_decode(
    value: bytes | None, headers: HeadersLike = None, *, timestamp: datetime | None = None
) -> KeptnEvent:
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
        cloud_event = ce_kafka.from_binary(
            ce_kafka.KafkaMessage(headers=headers, key=None, value=value), _JSON_FORMAT
        )
    except UnicodeDecodeError as error:
        raise DecodeError(f"{where} has a header that is not UTF-8 text: {error}") from error
    except BaseCloudEventException as error:
        raise DecodeError(f"{where} is not a valid CloudEvent: {error}") from error
    except ValueError as error:
        raise DecodeError(f"{where} has an unreadable ce_time: {error}") from error
    data = cloud_event.get_data()
    if isinstance(data, str | bytes):
        raise DecodeError(f"{where}: the value is not a JSON object ({_json_problem(value)})")
    return _validated(where, {**cloud_event.get_attributes(), "data": data})


def _decode_json_event(value: bytes, where: str, *, strict: bool, timestamp: datetime | None) -> KeptnEvent:
    try:
        body = json.loads(value.decode("utf-8"))
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
            raise DecodeError(
                f"{where} lacks the attribute(s) {', '.join(missing)}; every CloudEvent needs them"
            )
        if body["specversion"] != SPEC_VERSION:
            raise DecodeError(
                f"{where} has specversion {body['specversion']!r}; Tidegate reads CloudEvents 1.0"
            )
    elif not body.get("type"):
        raise DecodeError(
            f"{where} has no `type`; a Keptn event needs e.g. sh.keptn.event.dev.delivery.triggered"
        )
    if "data_base64" in body:
        raise DecodeError(f"{where} carries data_base64; Keptn event data must be a JSON object in `data`")
    if not strict:
        body.setdefault("id", derived_id(hashlib.sha256(value).hexdigest(), "plain-event-id"))
        if timestamp is not None:
            body.setdefault("time", timestamp)
    return _validated(where, body)


def _validated(where: str, fields: dict[str, Any]) -> KeptnEvent:
    if fields.get("data") is not None and not isinstance(fields["data"], dict):
        raise DecodeError(
            f"{where}: `data` is JSON {type(fields['data']).__name__}; Keptn event data is an object"
        )
    try:
        return KeptnEvent.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'event'}: {item['msg']}"
            for item in error.errors()
        )
        raise DecodeError(f"{where} is not a valid Keptn event: {problems}") from error


def _json_problem(value: bytes) -> str:
    try:
        json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"invalid JSON: {error}"
    return "JSON, but not an object"


# --- comparing outcomes --------------------------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call gave: ("ok", a comparable form of the result) or ("error", its type and message)."""
    try:
        result = call()
    except Exception as error:
        reason = error.reason if isinstance(error, DecodeError) else str(error)
        return "error", (type(error).__name__, reason)
    if isinstance(result, KeptnEvent):
        return "ok", event_form(result)
    return "ok", result


def event_form(event: KeptnEvent, *, with_time: bool = True) -> tuple[Any, ...]:
    """Everything about a decoded event: fields, extension order, and the time with its tzinfo."""
    fields = {name: value for name, value in event.__dict__.items() if name != "time"}
    time = event.time
    timing: tuple[Any, ...] = (repr(time),) if with_time else (type(time.tzinfo), time.utcoffset())
    return (
        fields,
        list((event.model_extra or {}).items()),
        sorted(event.model_fields_set),
        timing,
    )


def assert_same_encode(event: KeptnEvent, key: Key | None = None) -> None:
    new = outcome(lambda: encode(event, key))
    old = outcome(lambda: reference_encode(event, key))
    assert new == old
    if new[0] == "ok":  # KafkaRecord equality already covers key, value and the ordered headers
        assert [name for name, _ in new[1].headers] == [name for name, _ in old[1].headers]


def assert_same_decode(value: bytes | None, headers: HeadersLike) -> None:
    new = outcome(lambda: decode(value, headers))
    old = outcome(lambda: reference_decode(value, headers))
    normalised = _normalised(headers)
    if new[0] == old[0] == "ok" and not normalised.get("ce_time"):
        # No ce_time: both stamp the time they read the record, so only its kind can be compared.
        new_event = decode(value, headers)
        old_event = reference_decode(value, headers)
        assert event_form(new_event, with_time=False) == event_form(old_event, with_time=False)
        assert abs(new_event.time - old_event.time) < timedelta(seconds=5)
        return
    assert new == old


# --- generated events ----------------------------------------------------------------------------------

WEIRD_TEXT = ["", "\u00e9t\u00e9", "\u65e5\u672c", "emoji \U0001f680", "tab\there", "quote\"'", "\ud800lone"]
texts = st.one_of(st.text(max_size=20), st.sampled_from(WEIRD_TEXT), st.uuids().map(str))
non_empty = st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(WEIRD_TEXT[1:]))

zones = st.sampled_from(
    [
        None,
        UTC,
        dateutil_tz.UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-5, minutes=-30)),
        timezone(timedelta(seconds=1, microseconds=500)),
        dateutil_tz.tzoffset(None, 3600),
        dateutil_tz.gettz("Europe/Vienna"),
    ]
)


@st.composite
def times(draw: st.DrawFn) -> datetime:
    moment = draw(
        st.one_of(
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
            st.datetimes(),  # years 1..9999: strftime's unpadded years, astimezone overflows
        )
    )
    zone = draw(zones)
    return moment if zone is None else moment.replace(tzinfo=zone)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)),
    max_leaves=12,
)
data_values = st.one_of(json_values, times(), st.just({1, 2}))  # a datetime, or not JSON at all

good_extension_names = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)
odd_extension_names = st.sampled_from(
    ["my_ext", "Upper", "with-dash", "subject", "dataschema", "partitionkey", "x\n", "caf\u00e9"]
)
extension_values = st.one_of(
    st.none(),
    texts,
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(good_extension_names, st.integers(), max_size=2),
    times(),
)


plain_extension_values = st.one_of(texts, st.booleans(), st.integers(), st.floats())


@st.composite
def keptn_events(draw: st.DrawFn) -> KeptnEvent:
    """Half of them plain (what the fast path takes), half with anything the model lets through."""
    if draw(st.booleans()):
        return draw(plain_keptn_events())
    project = draw(st.one_of(st.none(), st.just(""), non_empty))
    data: dict[str, Any] = {}
    if project is not None:
        data["project"] = project
    if draw(st.booleans()):
        data["stage"] = draw(non_empty)
    if draw(st.booleans()):
        data["service"] = draw(st.one_of(non_empty, st.integers()))
    data.update(draw(st.dictionaries(texts, data_values, max_size=4)))
    fields: dict[str, Any] = {
        "id": draw(st.one_of(st.uuids().map(str), texts)),
        "source": draw(st.one_of(st.just("shipyard-controller"), texts)),
        "type": draw(st.one_of(st.just("sh.keptn.event.deployment.triggered"), non_empty)),
        "time": draw(times()),
        "data": data,
    }
    optional: dict[str, Any] = {
        "specversion": st.sampled_from(["1.0", "1.0", "1.0", "0.3"]),
        "datacontenttype": st.sampled_from(
            [
                "application/json",
                "application/cloudevents+json",
                "text/json; charset=utf-8",
                "text/plain",
                "",
                None,
            ]
        ),
        "shkeptncontext": st.one_of(st.none(), st.uuids().map(str), texts),
        "triggeredid": st.one_of(st.none(), st.uuids().map(str), texts),
        "gitcommitid": st.one_of(st.none(), texts),
        "shkeptnspecversion": st.one_of(st.just("0.2.4"), texts),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    extensions = draw(
        st.dictionaries(st.one_of(good_extension_names, odd_extension_names), extension_values, max_size=3)
    )
    for name, value in extensions.items():
        if name not in KeptnEvent.model_fields:
            fields[name] = value
    content_type = fields.pop("datacontenttype", "application/json")
    event = KeptnEvent(**fields)
    event.datacontenttype = content_type  # None only by assignment: the model does not validate that
    return event


@st.composite
def plain_keptn_events(draw: st.DrawFn) -> KeptnEvent:
    data = draw(st.dictionaries(texts, json_values, max_size=5))
    data.update(
        draw(st.fixed_dictionaries({}, optional={"project": non_empty, "stage": texts, "service": texts}))
    )
    names = st.one_of(good_extension_names, good_extension_names, odd_extension_names)
    extensions = draw(st.dictionaries(names, plain_extension_values, max_size=3))
    return KeptnEvent(
        **{name: value for name, value in extensions.items() if name not in KeptnEvent.model_fields},
        id=draw(st.one_of(st.uuids().map(str), non_empty)),
        source=draw(non_empty),
        type=draw(non_empty),
        time=draw(times()),
        datacontenttype=draw(
            st.sampled_from(["application/json", "text/json; charset=utf-8", "text/plain", "application/xml"])
        ),
        shkeptncontext=draw(st.one_of(st.none(), st.uuids().map(str), texts)),
        triggeredid=draw(st.one_of(st.none(), st.uuids().map(str))),
        gitcommitid=draw(st.one_of(st.none(), texts)),
        shkeptnspecversion=draw(st.one_of(st.just("0.2.4"), texts)),
        data=data,
    )


CASES = settings(
    max_examples=400,
    deadline=None,
    database=None,  # no .hypothesis directory in the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@CASES
@given(keptn_events(), st.one_of(st.none(), st.builds(Key, non_empty, texts, texts)))
def test_encode_is_byte_identical_to_the_library_path(event: KeptnEvent, key: Key | None) -> None:
    assert_same_encode(event, key)


@CASES
@given(keptn_events())
def test_decode_of_encoded_events_matches_the_library_path(event: KeptnEvent) -> None:
    try:
        record = reference_encode(event)
    except Exception:
        return  # not writable in binary mode at all; encode's errors are compared above
    assert_same_decode(record.value, record.headers)


# --- malformed and unusual binary records --------------------------------------------------------------

TIME_TEXTS = [
    "2024-05-17T09:30:12.345Z",
    "2024-05-17T09:30:12Z",
    "2024-05-17T09:30:12.5Z",
    "2024-05-17T09:30:12.123456Z",
    "2024-05-17T09:30:12.1234567Z",
    "2024-05-17T09:30:12,345Z",
    "2024-05-17T09:30:12.345+00:00",
    "2024-05-17T09:30:12.345-00:00",
    "2024-05-17T09:30:12.345+05:30",
    "2024-05-17T09:30:12.345-11:45",
    "2024-05-17T09:30:12+0530",
    "2024-05-17T09:30:12+05",
    "2024-05-17T09:30:12+24:00",
    "2024-05-17T09:30:12+23:60",
    "2024-05-17T09:30:12+00:60",
    "2024-05-17T09:30:12+00:00:00",
    "2024-05-17t09:30:12z",
    "2024-05-17 09:30:12Z",
    "2024-05-17T24:00:00Z",
    "2024-05-17T24:00:01Z",
    "2024-05-17T23:59:60Z",
    "2024-02-30T09:30:12Z",
    "0000-01-01T00:00:00Z",
    "0999-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "2024-05-17T09:30:12",
    "2024-05-17",
    "20240517T093012Z",
    "2024-W20-5T09:30:12Z",
    "\u0662\u0660\u0662\u0664-05-17T09:30:12Z",
    "2024-05-17T09:30:12.345Z\n",
    "yesterday",
    "",
]

BASE = encode(
    KeptnEvent(
        id="6de83495-4f83-481c-8dbe-fcceb2e0243b",
        source="shipyard-controller",
        type="sh.keptn.event.deployment.triggered",
        time=datetime(2024, 5, 17, 9, 30, 12, 345000, tzinfo=UTC),
        shkeptncontext="08735340-6f9e-4b32-97ff-3b6c292bc509",
        triggeredid="f2b878d3-03c0-4e8f-bc3f-454bc1b3d79d",
        data={"project": "sockshop", "stage": "dev", "service": "carts", "note": "\u00e9t\u00e9"},
    )
)
assert BASE.value is not None
BASE_VALUE: bytes = BASE.value

VALUES = [
    BASE_VALUE,
    b"",
    b"{}",
    b"null",
    b"[1, 2]",
    b'"text"',
    b"42",
    b"{not json",
    b"\xff\xfe{}",
    '{"note": "\u00e9t\u00e9"}'.encode(),
    '{"note": "\u00e9t\u00e9"}'.encode("utf-16"),
    b'{"project": "sockshop", "nested": {"a": [1, 2.5, null, true]}}',
    b' {"padded": true} ',
    b'{"newline": true}\n',
    b'{"a": 1} trailing',
    b'{"a": 1}{"b": 2}',
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b'{"n": NaN, "i": -Infinity, "e": 1e400}',
    b'{"huge": ' + b"9" * 5000 + b"}",  # beyond Python's int digit limit
    b'{"a": 1, "a": 2}',
]

EXTRA_HEADERS: list[tuple[str, bytes | str | None]] = [
    ("traceparent", b"00-abc-def-01"),
    ("traceparent", b"\xff\xfe"),
    ("ce_myextension", b"blue"),
    ("ce_my-ext", b"x"),
    ("ce_my_ext", b"x"),
    ("ce_", b"x"),
    ("ce_data", b"x"),
    ("ce_subject", b""),
    ("ce_subject", b"s"),
    ("ce_dataschema", b""),
    ("ce_datacontenttype", b"application/json"),
    ("ce_datacontenttype", b"text/plain"),
    ("ce_partitionkey", b"p"),
    ("ce_shkeptncontext", b"\xc3\x28"),
    ("ce_shkeptncontext", b""),
    ("ce_source", b"\xff"),
    ("CE_Type", b"sh.keptn.event.other.triggered"),
    ("ce_id", None),
    ("ce_empty", b""),
    ("content-type", b"application/json; charset=utf-8"),
    ("content-type", b"application/cloudevents+json"),
    ("content-type", b"text/plain"),
    ("content-type", b"application/xml"),
    ("content-type", b""),
    ("Content-Type", "application/json"),
    ("ce_gitcommitid", "8fe4a1b \u00e9"),
]


@st.composite
def binary_headers(draw: st.DrawFn) -> list[tuple[str, bytes | str | None]]:
    headers: list[tuple[str, bytes | str | None]] = list(BASE.headers)
    if draw(st.booleans()):
        headers = draw(st.permutations(headers))
    for _ in range(draw(st.integers(0, 2))):
        if headers:
            del headers[draw(st.integers(0, len(headers) - 1))]
    if draw(st.booleans()):
        headers = [(name, value) for name, value in headers if name != "ce_time"]
        headers.append(("ce_time", draw(st.sampled_from(TIME_TEXTS))))
    if draw(st.booleans()):
        headers = [(name, value) for name, value in headers if name != "ce_specversion"]
        headers.append(("ce_specversion", draw(st.sampled_from([b"1.0", b"0.3", b"", b"1.0 "]))))
    headers.extend(draw(st.lists(st.sampled_from(EXTRA_HEADERS), max_size=3)))
    return headers


@CASES
@given(binary_headers(), st.sampled_from(VALUES))
def test_decode_of_malformed_binary_records_matches_the_library_path(
    headers: list[tuple[str, bytes | str | None]], value: bytes
) -> None:
    assert_same_decode(value, headers)


@pytest.mark.parametrize("time_text", TIME_TEXTS)
def test_every_time_form_decodes_as_before(time_text: str) -> None:
    headers = [*(item for item in BASE.headers if item[0] != "ce_time"), ("ce_time", time_text.encode())]
    assert_same_decode(BASE_VALUE, headers)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("extra", [None, *EXTRA_HEADERS])
def test_every_value_with_every_odd_header_decodes_as_before(
    value: bytes, extra: tuple[str, bytes | str | None] | None
) -> None:
    headers: list[tuple[str, bytes | str | None]] = list(BASE.headers)
    if extra is not None:
        headers.append(extra)
    assert_same_decode(value, headers)
    assert_same_decode(value, dict(headers))


def test_other_modes_and_tombstones_decode_as_before() -> None:
    body = json.dumps(KeptnEvent(type="sh.keptn.event.dev.delivery.triggered", data={"a": 1}).to_json_dict())
    for value, headers in [
        (body.encode(), {"content-type": b"application/cloudevents+json"}),
        (body.encode(), None),
        (b'{"type": "sh.keptn.event.test.triggered"}', [("traceparent", b"x")]),
        (b"{not json", None),
        (None, list(BASE.headers)),
    ]:
        assert_same_decode(value, headers)


# --- a few properties worth naming ---------------------------------------------------------------------


def test_decoded_times_keep_the_tzinfo_isoparse_gave() -> None:
    headers = dict(BASE.headers)
    assert decode(BASE_VALUE, headers).time.tzinfo is dateutil_tz.UTC
    headers["ce_time"] = b"2024-05-17T09:30:12.345+05:30"
    moment = decode(BASE_VALUE, headers).time
    assert isinstance(moment.tzinfo, dateutil_tz.tzoffset)
    assert moment.utcoffset() == timedelta(hours=5, minutes=30)


def test_encode_of_a_decoded_event_gives_back_the_same_record() -> None:
    assert encode(decode(BASE_VALUE, BASE.headers)) == BASE


@pytest.mark.parametrize(
    "moment",
    [
        datetime(999, 1, 2, 3, 4, 5, 6789),
        datetime(2024, 5, 17, 9, 30, 12, 999999, tzinfo=timezone(timedelta(microseconds=1))),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_edge_times_encode_as_before(moment: datetime) -> None:
    assert_same_encode(KeptnEvent(type="sh.keptn.event.x.triggered", time=moment))


def test_data_with_nan_datetime_and_non_ascii_encodes_as_before() -> None:
    data = {"project": "p\u00e9", "nan": math.nan, "when": datetime(2024, 1, 1, tzinfo=UTC), "n": [1, None]}
    assert_same_encode(KeptnEvent(type="sh.keptn.event.x.triggered", data=data))


def test_circular_data_and_other_spec_versions_encode_as_before() -> None:
    circular: dict[str, Any] = {"project": "p"}
    circular["self"] = circular
    assert_same_encode(KeptnEvent(type="sh.keptn.event.x.triggered", data=circular))
    assert_same_encode(KeptnEvent(type="sh.keptn.event.x.triggered", specversion="0.3"))


# --- encode_fields: the record of an event that is never built -----------------------------------------


class Text(str):
    """A str subclass: pydantic may convert it, so encode_fields must leave it to the model."""


odd_attribute_values = st.one_of(
    st.none(),
    st.integers(),
    st.just(Text("sub")),
    st.just(b"bytes"),
    st.just("2024-05-17T09:30:12Z"),
    st.just(""),
)
NULLABLE = ("shkeptncontext", "triggeredid", "gitcommitid")
DEFAULTED = ("specversion", "source", "datacontenttype", *NULLABLE, "shkeptnspecversion")


@st.composite
def event_fields(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    """KeptnEvent(**attributes, data=data) arguments: plain ones (what encode_fields writes itself), half of
    them with one thing the model refuses, converts or keeps as an extension (what it must leave to the
    model).
    `id` and `time` are always given: their defaults are random."""
    attributes: dict[str, Any] = {
        "id": draw(st.one_of(st.uuids().map(str), non_empty)),
        "type": draw(non_empty),
        "time": draw(times()),
    }
    for name in DEFAULTED:
        if draw(st.booleans()):
            plain = st.just("1.0") if name == "specversion" else texts
            attributes[name] = draw(st.one_of(st.none(), plain) if name in NULLABLE else plain)
    data: Any = draw(st.dictionaries(texts, data_values, max_size=5))
    oddities = ["none"] * 6 + ["attribute", "missing type", "extension", "specversion", "data"]
    oddity = draw(st.sampled_from(oddities))
    if oddity == "attribute":
        attributes[draw(st.sampled_from(["id", "type", "time", *DEFAULTED]))] = draw(odd_attribute_values)
    elif oddity == "missing type":
        del attributes["type"]
    elif oddity == "extension":
        attributes[draw(st.one_of(good_extension_names, odd_extension_names))] = draw(extension_values)
    elif oddity == "specversion":
        attributes["specversion"] = "0.3"
    elif oddity == "data":
        odd_keys = st.one_of(st.integers(), st.just(Text("project")), st.none())
        data = draw(
            st.one_of(
                st.dictionaries(odd_keys, json_values, min_size=1, max_size=2).map(
                    lambda odd: {**data, **odd}
                ),
                st.none(),
                st.lists(st.integers(), max_size=2),
            )
        )
    return attributes, data


@CASES
@given(event_fields(), st.builds(Key, texts, texts, texts))
def test_encode_fields_is_encode_of_the_event(fields: tuple[dict[str, Any], Any], key: Key) -> None:
    attributes, data = fields
    new = outcome(lambda: codec.encode_fields(dict(attributes), data, key))
    old = outcome(lambda: encode(KeptnEvent(**attributes, data=data), key))
    assert new == old
    if new[0] == "ok":
        assert [name for name, _ in new[1].headers] == [name for name, _ in old[1].headers]


def test_encode_fields_builds_no_event_for_plain_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    attributes = {"id": "e1", "type": "sh.keptn.event.x.triggered", "time": datetime(2024, 5, 17, tzinfo=UTC)}
    data = {"project": "p", "nested": {"when": datetime(2024, 1, 1), "n": [1.5, None]}}
    expected = encode(KeptnEvent(**attributes, data=data), Key("p", "s", "v"))

    def no_event(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("encode_fields built the event")

    monkeypatch.setattr(codec, "KeptnEvent", no_event)
    assert codec.encode_fields(attributes, data, Key("p", "s", "v")) == expected


def test_encode_fields_without_an_id_gets_the_models_random_one() -> None:
    attributes = {"type": "sh.keptn.event.x.triggered", "time": datetime(2024, 5, 17, tzinfo=UTC)}
    first = codec.encode_fields(attributes, {}, Key("p"))
    second = codec.encode_fields(attributes, {}, Key("p"))
    assert first.header("ce_id") != second.header("ce_id")
    assert [name for name, _ in first.headers] == [name for name, _ in second.headers]


def test_a_time_header_is_not_reused_for_another_time() -> None:
    moment = datetime(2024, 5, 17, 1, 2, 3, 4000, tzinfo=UTC)
    event = KeptnEvent(type="sh.keptn.event.x.triggered", time=moment)
    assert encode(event).header("ce_time") == b"2024-05-17T01:02:03.004Z"
    assert encode(event).header("ce_time") == b"2024-05-17T01:02:03.004Z"  # the same time: the cached text
    later = event.model_copy(update={"time": datetime(2024, 5, 17, 1, 2, 3, 5000)})
    assert encode(later).header("ce_time") == b"2024-05-17T01:02:03.005Z"
    vienna = dateutil_tz.gettz("Europe/Vienna")
    in_vienna = event.model_copy(update={"time": later.time.replace(hour=3, tzinfo=vienna)})
    assert encode(in_vienna).header("ce_time") == b"2024-05-17T01:02:03.005Z"
    # The same instant as a cached time, in a zone whose sub-second offset moves the milliseconds.
    instant = event.model_copy(update={"time": datetime(2024, 5, 17, 1, 2, 3, 999999, tzinfo=UTC)})
    assert_same_encode(instant)
    odd_zone = timezone(timedelta(microseconds=1))
    assert_same_encode(instant.model_copy(update={"time": instant.time.astimezone(odd_zone)}))


PLAIN_FIELDS = {
    "id": "e1",
    "type": "sh.keptn.event.x.triggered",
    "time": datetime(2024, 5, 17, 1, 2, 3, tzinfo=UTC),
}


@pytest.mark.parametrize("name", ["id", "type", "time", *DEFAULTED, "partitionkey", "Odd_Name"])
@pytest.mark.parametrize("value", [None, "", 7, Text("sub"), b"bytes", "2024-05-17T09:30:12Z", "\ud800"])
def test_encode_fields_with_each_odd_attribute_is_encode_of_the_event(name: str, value: Any) -> None:
    attributes = {**PLAIN_FIELDS, name: value}
    new = outcome(lambda: codec.encode_fields(attributes, {"project": "p"}, Key("p")))
    assert new == outcome(lambda: encode(KeptnEvent(**attributes, data={"project": "p"}), Key("p")))


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {1: "one"},
        {"a": 1, None: 2},
        {Text("project"): "p"},
        {"nan": math.nan, "x": {1: {2, 3}}},
        {"\ud800": 1},
    ],
)
def test_encode_fields_with_odd_data_is_encode_of_the_event(data: Any) -> None:
    new = outcome(lambda: codec.encode_fields(dict(PLAIN_FIELDS), data, Key("p")))
    assert new == outcome(lambda: encode(KeptnEvent(**PLAIN_FIELDS, data=data), Key("p")))
