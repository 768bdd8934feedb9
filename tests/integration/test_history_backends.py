"""The history store fed from the real audit topic, on SQLite and on a real PostgreSQL, and rebuilt
from audit: the follower stores each entry once (replays and duplicates are harmless), skips records
that are not audit entries, and a rebuild yields the same state."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidegate.agents.sequencer.outputs import AuditKind, AuditRecord
from tidegate.readside.history import EventFilter, HistoryStore
from tidegate.readside.history.consumer import AuditFollower, rebuild
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.kafka import EventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

WAIT = 60.0
T0 = datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------- a private PostgreSQL cluster


def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=False, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL tests need Debian's `postgresql` package (apt-get install postgresql)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL cluster of its own on a free loopback port (run as `postgres` when we are root)."""
    bindir = _pg_bindir()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="tidegate-pg-"))
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    log = data / "server.log"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "tidegate",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    started = subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", str(log), "-w", "-t", "60",
         "-o", f"-p {port} -k {data} -h 127.0.0.1 -F", "start"],
        capture_output=True, text=True,
    )
    if started.returncode != 0:
        text = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{text[-2000:]}")
    try:
        yield f"postgresql+psycopg://tidegate@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def _fresh_database(server_url: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"h_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return _fresh_database(request.getfixturevalue("postgres_url"))


# --------------------------------------------------------------------- audit records as the sequencer writes them


def _run(context: str) -> list[tuple[Key, KeptnEvent]]:
    """A dev delivery that passes and a staging delivery that fails, as audit events (key, event)."""
    dev, staging = Key("sockshop", "dev", "carts"), Key("sockshop", "staging", "carts")

    def event(key: Key, type_: str, seconds: int, **fields: object) -> tuple[Key, KeptnEvent]:
        data = {"project": key.project, "stage": key.stage, "service": key.service, **fields.pop("data", {})}  # type: ignore[dict-item]
        return key, KeptnEvent.model_validate({"type": type_, "time": T0 + timedelta(seconds=seconds),
                                               "shkeptncontext": context, "data": data, **fields})

    def transition(key: Key, kind: AuditKind, seconds: int, triggered: str, **fields: str) -> tuple[Key, KeptnEvent]:
        record = AuditRecord(id=str(uuid.uuid4()), kind=kind, time=T0 + timedelta(seconds=seconds),
                             keptn_context=context, key=key, sequence="delivery", sequence_triggered_id=triggered,
                             **fields)  # type: ignore[arg-type]
        return key, record.to_event()

    dev_id, staging_id = str(uuid.uuid4()), str(uuid.uuid4())
    return [
        event(dev, "sh.keptn.event.dev.delivery.triggered", 0, id=dev_id,
              data={"configurationChange": {"values": {"image": "carts:2"}}}),
        transition(dev, AuditKind.QUEUED, 1, dev_id),
        transition(dev, AuditKind.STARTED, 1, dev_id),
        event(dev, "sh.keptn.event.evaluation.finished", 3, triggeredid=str(uuid.uuid4()),
              data={"result": "pass", "status": "succeeded", "evaluation": {"score": 95.0, "result": "pass"}}),
        event(dev, "sh.keptn.event.dev.delivery.finished", 4, triggeredid=dev_id,
              data={"result": "pass", "status": "succeeded"}),
        transition(dev, AuditKind.FINISHED, 4, dev_id, result="pass", status="succeeded"),
        event(staging, "sh.keptn.event.staging.delivery.triggered", 5, id=staging_id),
        transition(staging, AuditKind.STARTED, 5, staging_id),
        event(staging, "sh.keptn.event.staging.delivery.finished", 9, triggeredid=staging_id,
              data={"result": "fail", "status": "succeeded"}),
        transition(staging, AuditKind.FINISHED, 9, staging_id, result="fail", status="succeeded"),
    ]


def _publish(settings: Settings, records: list[tuple[Key, KeptnEvent]], *, garbage: bool = False) -> None:
    topic = TopicRegistry.from_settings(settings).audit
    with EventPublisher(settings) as publisher:
        for key, event in records:
            publisher.publish(topic, event, key=key)
        if garbage:
            publisher.publish_record(topic, KafkaRecord(key=b"sockshop/dev/carts", value=b"\x00not json"),
                                     what="garbage")


async def _follow_until_caught_up(settings: Settings, store: HistoryStore) -> AuditFollower:
    follower = AuditFollower(settings, store, group=f"{settings.topic_prefix}history-test-{uuid.uuid4().hex[:6]}")
    await follower.start()
    try:
        await asyncio.wait_for(follower.caught_up.wait(), WAIT)
    except TimeoutError:
        raise AssertionError(f"the follower did not reach the end of audit within {WAIT:.0f} s "
                             f"(stored {follower.stored}, error {follower.error})") from None
    finally:
        await follower.stop()
    return follower


def _summary(store: HistoryStore, context: str) -> tuple[object, ...]:
    view = store.sequence(context)
    assert view is not None
    events = store.events(EventFilter(keptn_context=context), page_size=100)
    evaluations = store.evaluations("sockshop")
    return (view.state, view.result, tuple((s.name, s.state, s.result, s.image) for s in view.stages),
            events.total_count, tuple(e["id"] for e in events.items), len(store.timeline(context)),
            tuple(e["id"] for e in evaluations.items))


async def test_follower_stores_audit_once_and_rebuild_matches(tidegate_settings: Settings, store_url: str) -> None:
    context = str(uuid.uuid4())
    run = _run(context)
    _publish(tidegate_settings, run, garbage=True)
    _publish(tidegate_settings, run[:4])  # redelivered records: must not be stored twice

    store = HistoryStore(store_url)
    try:
        follower = await _follow_until_caught_up(tidegate_settings, store)
        assert follower.error is None
        assert follower.stored == len(run)
        state, result, stages, event_count, *_ = summary = _summary(store, context)
        assert (state, result) == ("finished", "fail")
        assert stages == (("dev", "succeeded", "pass", "carts:2"), ("staging", "succeeded", "fail", None))
        assert event_count == sum(1 for _, e in run if not e.type.startswith("sh.tidegate.audit."))

        rebuilt = HistoryStore(store_url)  # the same database, dropped and replayed
        try:
            stored = await rebuild(tidegate_settings, rebuilt)
            assert stored == len(run)
            assert _summary(rebuilt, context) == summary
        finally:
            rebuilt.close()
    finally:
        store.close()
