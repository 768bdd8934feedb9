"""The one Kafka layer (tidegate.streams.kafka): no Kafka client is built outside it (Faust builds its
own inside a Faust app), every client carries the Settings' security, and a part waits for a broker
instead of failing at start."""

from __future__ import annotations

import ast
import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from hypothesis import given
from hypothesis import strategies as st

from tidegate.streams.kafka import (
    CompactedReader,
    KafkaWait,
    _records,
    aiokafka_config,
    confluent_config,
    faust_credentials,
    wait_for_kafka,
)
from tidegate.streams.resources import ResourceView
from tidegate.streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
HOMES = ("schemas", "streams", "agents", "qualitygate", "connectors", "gateway", "bridge", "cli", "readside")
CLIENTS = frozenset({
    "Producer", "Consumer", "AdminClient", "SerializingProducer", "DeserializingConsumer",
    "AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient",
})
ALLOWED: set[str] = set()  # the consume-decide-produce loop lives in streams/kafka/loop.py

SASL = Settings(
    kafka_bootstrap="broker.example:9093",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="tidegate",
    kafka_sasl_password="hunter2-of-the-unit-test",
)


def _constructions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in CLIENTS:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}(...)")
    return found


def test_no_kafka_client_is_built_outside_the_kafka_layer() -> None:
    layer = REPO / "streams" / "kafka"
    outside = [
        hit
        for home in HOMES
        for path in sorted((REPO / home).rglob("*.py"))
        if layer not in path.parents
        for hit in _constructions(path)
    ]
    assert outside == [], "build Kafka clients through tidegate.streams.kafka:\n" + "\n".join(outside)


def test_the_guard_sees_a_construction() -> None:
    # The test above would pass vacuously if the walk found nothing: the layer itself builds clients.
    assert any(_constructions(path) for path in (REPO / "streams" / "kafka").glob("*.py"))


async def test_the_resources_view_connects_with_the_settings_credentials() -> None:
    # The defect: ResourceView was given only a bootstrap string, so on a SASL/TLS cluster it
    # connected without credentials.
    view = ResourceView(SASL, "tidegate.resources")
    config = view.reader.client_config
    assert config["bootstrap_servers"] == "broker.example:9093"
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "tidegate"
    assert config["sasl_plain_password"] == "hunter2-of-the-unit-test"
    assert config["ssl_context"] is not None
    assert config["group_id"] is None
    AIOKafkaConsumer("tidegate.resources", **config)  # aiokafka accepts it (it refuses SASL_SSL without TLS)


def test_every_library_gets_the_same_connection() -> None:
    confluent = confluent_config(SASL, **{"group.id": "g"})
    assert confluent["security.protocol"] == "SASL_SSL"
    assert (confluent["sasl.mechanism"], confluent["sasl.username"]) == ("SCRAM-SHA-512", "tidegate")
    assert confluent["sasl.password"] == "hunter2-of-the-unit-test"
    assert confluent["group.id"] == "g"
    aio = aiokafka_config(SASL, client_id="x")
    assert (aio["sasl_mechanism"], aio["sasl_plain_username"], aio["client_id"]) == ("SCRAM-SHA-512", "tidegate", "x")
    credentials = faust_credentials(SASL)
    assert credentials is not None
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert "hunter2" not in repr(SASL)


def test_plaintext_needs_no_tls_and_a_ca_file_reaches_both_libraries(tmp_path: Path) -> None:
    plain = Settings(kafka_bootstrap="127.0.0.1:1")
    assert "ssl_context" not in aiokafka_config(plain)
    assert faust_credentials(plain) is None
    ca = tmp_path / "ca.pem"
    tls = Settings(kafka_bootstrap="127.0.0.1:1", kafka_security_protocol="SSL", kafka_ssl_cafile=ca)
    assert confluent_config(tls)["ssl.ca.location"] == str(ca)
    with pytest.raises(FileNotFoundError):  # the asyncio clients' context loads it
        aiokafka_config(tls)


def test_a_compacted_reader_of_numbered_partitions_is_not_ready_before_it_ran() -> None:
    reader = CompactedReader(SASL, "t", lambda consumed: None, partitions=3)
    assert not reader.ready.is_set()
    assert reader.client_config["auto_offset_reset"] == "earliest"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_waiting_for_a_broker_that_does_not_answer_retries_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{_closed_port()}")
    state = KafkaWait(settings.kafka_bootstrap)
    caplog.set_level(logging.WARNING, logger="tidegate.kafka")
    waiting = asyncio.create_task(wait_for_kafka(settings, state=state, what="unit", first_backoff=0.05))
    try:
        while state.attempts < 2:
            assert not waiting.done(), "wait_for_kafka returned without a broker"
            await asyncio.sleep(0.05)
    finally:
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    reason = state.reason()
    assert reason is not None and reason.startswith(f"waiting for Kafka at {settings.kafka_bootstrap}")
    lines = [r.getMessage() for r in caplog.records if r.name == "tidegate.kafka"]
    assert len(lines) >= 2 and all("does not answer" in line for line in lines)


header_values = st.one_of(st.binary(max_size=8), st.text(max_size=8), st.none(), st.binary(max_size=8).map(bytearray))


@given(st.lists(st.tuples(st.text(max_size=8), header_values).map(lambda pair: pair if pair[0] else list(pair)),
                max_size=6))
def test_consumed_headers_are_the_conversions_whatever_the_client_gives(pairs: list[Any]) -> None:
    # The usual (name, bytes) tuples are kept as they come; anything else is converted: the same headers.
    assert _records._headers(pairs) == _records._converted(pairs)
    assert _records._headers(dict(pairs).items()) == _records._converted(dict(pairs).items())
    assert all(type(pair) is tuple for pair in _records._headers(pairs))
