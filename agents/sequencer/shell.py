"""The sequencer's Faust shell: table `sequences[key]`, the agent on `events`, and the timer ticker.

Everything the sequencer decides happens in `agents.sequencer.core.decide`; this shell only reads the
key's state from the table, calls the core, writes the state back and sends the outputs. Timers are
durable because deadlines live in the state: a periodic task on each worker sends a tick event for
every due key it owns into `events`, so the decision itself still happens in order, in the stream.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from agents.sequencer.core import decide, next_deadline
from agents.sequencer.events import TICK_TYPE, tick_event
from agents.sequencer.model import KeyState, SequencerConfig
from agents.sequencer.outputs import AuditRecord, Emit, Ignored
from agents.shell import WorkerContext, audit, emit, read_keyed
from schemas.durations import parse_duration
from schemas.errors import DurationError
from schemas.shipyard import Shipyard
from streams.app import send_event, send_to_dlq
from streams.keys import Key
from streams.metrics import set_sequence_load

log = logging.getLogger(__name__)

TICK_INTERVAL = 1.0  # seconds between scans of the local deadline index
RESCAN_EVERY = 15  # full table scans (after recovery or rebalance) every N ticks
STARTED_WAIT_ENV = "TIDEGATE_TASK_STARTED_WAIT_DURATION"
REMEDIATION_WAIT_ENV = "TIDEGATE_REMEDIATION_WAIT"  # wait before the built-in remediation re-evaluates


def started_timeout_from_env(environ: Mapping[str, str]) -> timedelta | None:
    """`TIDEGATE_TASK_STARTED_WAIT_DURATION` (a Go duration, like Keptn's TASK_STARTED_WAIT_DURATION), or None."""
    text = environ.get(STARTED_WAIT_ENV, "").strip()
    if not text:
        return None
    try:
        length = parse_duration(text)
    except DurationError as error:
        raise ValueError(f"{STARTED_WAIT_ENV}={text!r} is not a duration: {error}") from None
    if length <= timedelta(0):
        raise ValueError(f"{STARTED_WAIT_ENV}={text!r}: the wait for a task's .started must be longer than zero, e.g. 10m")
    return length


def register(ctx: WorkerContext, *, started_timeout_seconds: float | None = None) -> None:
    """Add the sequencer to the worker. The started timeout (how long a triggered task may go without
    `.started`/`.finished`) is `started_timeout_seconds`, else `TIDEGATE_TASK_STARTED_WAIT_DURATION`,
    else the core's default (10 minutes, as Keptn)."""
    app = ctx.app
    settings = app.tidegate_settings
    table = app.Table(
        "sequences",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
    )
    ignored: Counter[str] = Counter()
    deadlines: dict[bytes, datetime] = {}
    sent_ticks: dict[bytes, datetime] = {}
    scans = {"count": 0}

    def shipyard_for(project: str) -> Shipyard | None:
        return ctx.shipyard(project)[0]

    started_timeout = (
        timedelta(seconds=started_timeout_seconds)
        if started_timeout_seconds is not None
        else started_timeout_from_env(os.environ)
    )
    config = (
        SequencerConfig(shipyard_for=shipyard_for, started_timeout=started_timeout)
        if started_timeout is not None
        else SequencerConfig(shipyard_for=shipyard_for)
    )
    remediation_wait = os.environ.get(REMEDIATION_WAIT_ENV, "").strip()
    if remediation_wait:
        parse_duration(remediation_wait)  # refuse a bad setting at start, not at the first problem
        config = dataclasses.replace(config, remediation_wait=remediation_wait)

    @app.agent(app.channels.events, name="sequencer")
    async def sequencer(stream):  # type: ignore[no-untyped-def]
        await ctx.wait_ready()
        async for record in stream.events():
            keyed = await read_keyed(record)
            if keyed is None:
                continue
            event, key = keyed
            raw_key = key.encode()
            if event.type != TICK_TYPE:
                await audit(app, event, key)
            parsed = event.parsed_type
            if parsed.is_sequence and parsed.kind == "triggered" and key.project and ctx.shipyard(key.project)[0] is None:
                await ctx.sync_resources()
            if parsed.is_sequence and parsed.kind == "triggered" and not event.gitcommitid and key.project:
                # Keptn fills a missing gitcommitid with the latest configuration version: the decision
                # can then always be explained from exactly the files it used.
                event = event.model_copy(update={"gitcommitid": ctx.shipyard(key.project)[1]})
            stored = table.get(raw_key)
            state = KeyState.model_validate_json(stored) if stored else None
            try:
                decision = decide(state, event, config, datetime.now(UTC))
            except Exception as error:  # a bug must cost one event (kept in the DLQ), not the partition
                log.exception("sequencer failed on %s %s", event.type, event.id)
                await send_to_dlq(record, f"sequencer error: {type(error).__name__}: {error}")
                continue
            for output in decision.outputs:
                if isinstance(output, Emit):
                    await emit(app, output.destination, output.event, output.key)
                elif isinstance(output, AuditRecord):
                    await audit(app, output.to_event(), output.key)
                elif isinstance(output, Ignored):
                    ignored[output.reason.value] += 1
                    if output.dead_letter:
                        await send_to_dlq(record, output.detail)
            # The state is written after the outputs are queued: the new state remembers this input as
            # handled, so if its changelog record reached Kafka and the outputs did not (a crash in
            # between), the replayed input would be skipped and its outputs lost for good. Queued in
            # this order, the changelog record leaves after the outputs (aiokafka sends one request per
            # broker at a time, in append order); the reverse loss only re-emits the same ids.
            if decision.state is not state:
                table[raw_key] = decision.state.model_dump_json().encode() if decision.state else None
            deadline = next_deadline(decision.state)
            if deadline is None:
                deadlines.pop(raw_key, None)
                sent_ticks.pop(raw_key, None)
            else:
                deadlines[raw_key] = deadline

    def rescan() -> None:
        states: list[KeyState] = []
        for raw_key, stored in list(table.items()):
            if not stored:
                continue
            states.append(KeyState.model_validate_json(stored))
            deadline = next_deadline(states[-1])
            if deadline is not None:
                deadlines[raw_key] = deadline
        set_sequence_load(states)  # tidegate_open_sequences / tidegate_queued_sequences

    @table.on_recover
    async def rebuild_deadlines() -> None:
        # After a restart or a rebalance the table is recovered from its changelog before any event is
        # processed: index its timers at once, so a delay that fell due while the worker was down fires
        # on the next tick rather than at the next periodic scan.
        rescan()

    @app.timer(TICK_INTERVAL)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        scans["count"] += 1
        if scans["count"] % RESCAN_EVERY == 1:
            rescan()  # a safety net: the index is also rebuilt when the table is recovered
        now = datetime.now(UTC)
        for raw_key, deadline in list(deadlines.items()):
            if deadline > now or sent_ticks.get(raw_key) == deadline:
                continue
            key = Key.parse(raw_key)
            await send_event(app, app.topic_registry.events, tick_event(key, deadline), key=key)
            sent_ticks[raw_key] = deadline

    app.sequencer_ignored = ignored  # type: ignore[attr-defined]
    app.sequencer_table = table  # type: ignore[attr-defined]
    app.sequencer_agent = sequencer  # type: ignore[attr-defined]
