"""The Faust app factory, Tidegate's topics as Faust channels, and the agent-side receive/send helpers.

The worker's Faust host (agents.hosts.faust; by default the approver and remediator) is built on it;
the sequencer and evaluator are not Faust agents but run on the confluent-kafka loop in threads of the
worker (agents.hosts.loop, tidegate.streams.kafka.loop; agents.worker.HOSTS). A Faust agent reads like
this (the codec, not Faust, decodes: topics carry raw bytes):

    app = create_app(Settings(), "worker")

    @app.agent(app.channels.task("approval"), name="approver")
    async def approver(stream):
        async for record in stream.events():
            event = await decode_or_dlq(record)
            if event is None:
                continue  # it is in the DLQ with its reason; the agent goes on
            ...
            await send_event(app, app.topic_registry.events, reply)

Settings the runtime notes ask for, fixed here so no agent can forget them: web bound to 127.0.0.1
or disabled, auto offset reset `earliest` (a new group starts at the beginning, nothing is skipped),
the murmur2 partitioner (aiokafka's, as every Tidegate producer uses), at-least-once processing
(exactly-once has open duplicate bugs; deterministic ids make repeats harmless) and agents at
concurrency 1 (higher concurrency can commit past an in-flight message, faust-streaming #606).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.agents import current_agent
from faust.app import BootStrategy
from faust.types import ChannelT, EventT, TopicT
from mode import ServiceT

from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import DecodeError, KafkaRecord, decode, encode
from tidegate.streams.dlq import DeadLetter, DeadLetterCounter, DeadLetterReason, dead_letter_record
from tidegate.streams.kafka import faust_credentials
from tidegate.streams.logging import bind_event, faust_logging_options, unbind
from tidegate.streams.metrics import observe_consumed, observe_dead_letter, observe_produced
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger(__name__)

RAW = "raw"


class TopicChannels:
    """Faust topic objects for the registry's topics, all with raw bytes keys and values."""

    def __init__(self, app: faust.App, registry: TopicRegistry) -> None:
        self._app = app
        self._registry = registry
        self._by_name: dict[str, TopicT] = {}
        self.events = self.topic(registry.events)
        self.audit = self.topic(registry.audit)
        self.resources = self.topic(registry.resources)
        self.dlq = self.topic(registry.dlq)

    def task(self, task: str) -> TopicT:
        """The channel of `<prefix>tasks.<task>`."""
        return self.topic(self._registry.task(task))

    def topic(self, name: str) -> TopicT:
        """The channel of any registry topic, by full name (created on first use)."""
        if name not in self._by_name:
            spec = self._registry.spec(name)
            self._by_name[name] = self._app.topic(
                name,
                key_type=bytes,
                value_type=bytes,
                key_serializer=RAW,
                value_serializer=RAW,
                partitions=spec.partitions,
                config=dict(spec.config) or None,
            )
        return self._by_name[name]


class TidegateApp(faust.App):
    """A Faust app that carries Tidegate's settings, topic registry, channels and DLQ counter."""

    tidegate_settings: Settings
    topic_registry: TopicRegistry
    channels: TopicChannels
    dead_letters: DeadLetterCounter

    def __init__(self, id: str, **options: Any) -> None:
        super().__init__(id, **options)
        self._tasks_from_start: list[Callable[[], Awaitable[None]]] = []

    def agent(
        self, channel: str | ChannelT[Any] | None = None, *, concurrency: int = 1, **kwargs: Any
    ) -> Callable[[Any], Any]:
        if concurrency != 1:
            raise ValueError(
                f"agent concurrency {concurrency} is not allowed: Faust can then commit past an in-flight "
                "message and lose it on a crash; keep concurrency=1 and move long work off the stream loop"
            )
        return super().agent(channel, concurrency=1, **kwargs)

    def task_from_start(self, fun: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Like `app.task`, but started with the app instead of after Faust's table recovery (which
        `app.task` waits for): for work that reads no Faust table, such as the loop host's agents and
        the resources view, so a restarted worker's loop agents do not wait for Faust's restore."""
        self._tasks_from_start.append(fun)
        return fun

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        """Faust's services to start with the app; without Faust's Kafka consumer (and its conductor) when
        the app has no agent and no table (a worker whose agents all run on the loop host): it would have
        no topic to subscribe to, and the conductor crashes on an empty subscription."""
        if not self.agents and not self.tables:
            self.boot_strategy = BootStrategy(self, enable_kafka_consumer=False)
        return super().on_init_dependencies()

    async def on_first_start(self) -> None:
        """Wait for Kafka before Faust builds its clients: a worker started while the broker is down
        retries with a log line each time (`wait_for_kafka`) instead of exiting with a traceback. Then
        create the app's table changelogs that are missing, here rather than by Faust (`create_app`
        turns Faust's topic creation off: it could end the worker when the broker restarted)."""
        from tidegate.streams.kafka import wait_for_kafka

        what = f"worker {self.conf.id}"
        await wait_for_kafka(self.tidegate_settings, what=what)
        await self._provision_changelogs(what)
        await super().on_first_start()

    async def on_start(self) -> None:
        await super().on_start()
        for fun in self._tasks_from_start:
            self.add_future(fun())  # cancelled when the app stops, as `app.task`'s are

    async def _provision_changelogs(self, what: str) -> None:
        from confluent_kafka import KafkaException

        from tidegate.streams.kafka import ProvisionError, provision_topics, wait_for_kafka

        specs = [self.topic_registry.spec(table.changelog_topic.get_topic_name()) for table in self.tables.values()]
        while specs:
            try:
                report = await asyncio.to_thread(provision_topics, self.tidegate_settings, specs)
            except (KafkaException, ProvisionError) as error:
                log.warning("%s: could not create the table changelogs (%s); retrying", what, error)
                await asyncio.sleep(1.0)
                await wait_for_kafka(self.tidegate_settings, what=what)
                continue
            for problem in report.problems:
                log.error("%s: a table changelog does not fit: %s", what, problem)
            return


def create_app(settings: Settings, name: str, **options: Any) -> TidegateApp:
    """A Faust app for one agent (or a test), with its id and consumer group prefixed like its topics.

    `options` are passed to Faust (e.g. `table_cleanup_interval`); they cannot change the guarantees
    in the module docstring.
    """
    registry = TopicRegistry.from_settings(settings)
    app_id = registry.app_id(name)
    # Faust creates its data dir without parents; one dir per app keeps their files apart.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    guarantees: dict[str, Any] = {
        "consumer_auto_offset_reset": "earliest",
        "producer_partitioner": DefaultPartitioner(),
        "processing_guarantee": "at_least_once",
        "key_serializer": RAW,
        "value_serializer": RAW,
    }
    overridden = sorted(set(options) & set(guarantees))
    if overridden:
        raise ValueError(f"create_app does not let {', '.join(overridden)} change: Tidegate relies on them")
    config: dict[str, Any] = {
        "broker": settings.faust_broker,
        "broker_credentials": faust_credentials(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir / app_id),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "producer_acks": -1,
        # A member that died keeps its partitions until its group session expires, unless the same static
        # member comes back (the worker passes `consumer_group_instance_id`, agents.worker): a worker that
        # is not restarted, or stopped for good (static members do not leave), is replaced after 10 s, as
        # the loop's own group, instead of Faust's 60 s. BROKER_SESSION_TIMEOUT / _HEARTBEAT_INTERVAL still
        # override.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 2.0,
        "web_enabled": settings.web_enabled,
        "web_bind": settings.web_bind,
        "web_host": settings.web_bind,
        "web_port": settings.web_port,
        "autodiscover": False,
        # Faust would create its tables' changelogs itself, and could end the worker with NodeNotReadyError
        # when the broker restarted while it did (from `_really_create_topic`, seen by test_faults.py): the
        # app creates them through `provision_topics` instead (`TidegateApp.on_first_start`), and there is
        # no leader-election topic (no agent runs `on_leader`).
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        **faust_logging_options(),  # JSON lines when TIDEGATE_LOG_FORMAT=json
        **options,
        **guarantees,
    }
    app = TidegateApp(app_id, **config)
    app.tidegate_settings = settings
    app.topic_registry = registry
    app.channels = TopicChannels(app, registry)
    app.dead_letters = DeadLetterCounter()
    return app


def worker_command(app_spec: str, settings: Settings, *, log_level: str = "info") -> list[str]:
    """The `faust worker` command line for `app_spec` (`module:attribute`).

    The worker CLI turns the web server on unless told otherwise (it overrides `web_enabled`), so
    the flags here carry the settings' choice; the port and bind always come from the settings.
    """
    command = [sys.executable, "-m", "faust", "-A", app_spec, "worker", "-l", log_level]
    if settings.web_enabled:
        command += ["--with-web", "--web-bind", settings.web_bind, "--web-port", str(settings.web_port)]
    else:
        command.append("--without-web")
    return command


# --- receive -------------------------------------------------------------------------------------------


def record_of(event: EventT[bytes]) -> KafkaRecord:
    """The Kafka record of a Faust stream event (the one adapter from Faust to `KafkaRecord`)."""
    message = event.message
    headers = event.headers.items() if event.headers else ()
    return KafkaRecord(
        key=message.key,
        value=message.value,
        headers=tuple(
            (name, value if isinstance(value, bytes) else str(value).encode("utf-8"))
            for name, value in headers
            if value is not None
        ),
    )


def _tidegate_app(event: EventT[bytes]) -> TidegateApp:
    app = event.app
    if not isinstance(app, TidegateApp):
        raise TypeError("decode_or_dlq needs an app made by streams.app.create_app")
    return app


def _agent_name() -> str:
    agent = current_agent()
    # Faust names agents `<module>.<function>`; the function is the name people know.
    return agent.name.rsplit(".", 1)[-1] if agent is not None else "unknown"


async def send_to_dlq(
    record: EventT[bytes], reason: str, *, code: DeadLetterReason = DeadLetterReason.REJECTED
) -> DeadLetter:
    """Put `record` on the DLQ with `reason` in words and `code` as the kind of fault (the metric label)."""
    app = _tidegate_app(record)
    message = record.message
    letter = DeadLetter(
        reason=reason,
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        agent=_agent_name(),
        code=code,
    )
    dead = dead_letter_record(record_of(record), letter)
    # Awaited (queued before the next record): Faust flushes the producer before it commits the
    # offset, so the letter is on the DLQ before the input counts as processed.
    await app.channels.dlq.send(key=dead.key, value=dead.value, headers=list(dead.headers))
    note_dead_letter(app.dead_letters, letter)
    return letter


def note_dead_letter(counter: DeadLetterCounter, letter: DeadLetter) -> None:
    """Count a letter just sent to the DLQ (counter and metric) and log it, for every agent alike."""
    count = counter.add(letter)
    observe_dead_letter(letter)
    log.warning(
        "sent %s[%s]@%s to the DLQ (%s from %s so far): %s",
        letter.source_topic,
        letter.source_partition,
        letter.source_offset,
        count,
        letter.agent,
        letter.reason,
    )


async def decode_or_dlq(record: EventT[bytes]) -> KeptnEvent | None:
    """The KeptnEvent in a Faust stream event, or None after putting the record on the DLQ."""
    message = record.message
    try:
        event = decode(
            message.value,
            record.headers,
            timestamp=datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None,
        )
    except DecodeError as error:
        unbind()
        await send_to_dlq(record, error.reason, code=DeadLetterReason.UNDECODABLE)
        return None
    bind_event(event)  # the agent's log lines for this event carry its keptnContext (streams.logging)
    observe_consumed(message.topic, event, _agent_name())
    return event


# --- send ----------------------------------------------------------------------------------------------


async def send_event(
    app_or_channels: faust.App | TopicChannels, topic_name: str, event: KeptnEvent, *, key: Key | None = None
) -> Any:
    """Send `event` in binary content mode to the registry topic `topic_name` (full name).

    Keyed by the event's project/stage/service unless `key` is given. Returns Faust's send future;
    awaiting it waits for the broker's acknowledgement (agents need not: Faust flushes before commit).
    """
    channels = app_or_channels.channels if isinstance(app_or_channels, TidegateApp) else app_or_channels
    if not isinstance(channels, TopicChannels):
        raise TypeError("send_event needs an app made by streams.app.create_app or its TopicChannels")
    record = encode(event, key)
    observe_produced(topic_name, event)
    return await channels.topic(topic_name).send(key=record.key, value=record.value, headers=list(record.headers))
