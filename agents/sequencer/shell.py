"""The sequencer in the worker: its configuration, and the processor thread started and stopped with Faust.

Everything the sequencer decides happens in `agents.sequencer.core.decide`; the consume-decide-produce
loop, its state and its timers are `agents.sequencer.processor` (why not a Faust agent: see there).
This shell reads the settings, gives the processor the worker's view of the configuration files and
ties its thread to the worker's life.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from datetime import timedelta

from tidegate.agents.sequencer.model import SequencerConfig
from tidegate.agents.sequencer.processor import SequencerProcessor, run_in_thread
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.metrics import add_lag_source

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 30.0  # seconds a trigger may wait for the resources view to catch up
STOP_TIMEOUT = 40.0  # seconds the worker waits for the processor's last commit on shutdown
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
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def prepare(event: KeptnEvent, key: Key) -> KeptnEvent:
        # Runs in the processor's thread; the resources view lives on the worker's event loop.
        parsed = event.parsed_type
        if not (parsed.is_sequence and parsed.kind == "triggered" and key.project):
            return event
        if ctx.shipyard(key.project)[0] is None and "loop" in holder:
            # A trigger can follow its shipyard closely: catch up with files written a moment ago.
            asyncio.run_coroutine_threadsafe(ctx.sync_resources(), holder["loop"]).result(SYNC_TIMEOUT)
        if not event.gitcommitid:
            # Keptn fills a missing gitcommitid with the latest configuration version: the decision
            # can then always be explained from exactly the files it used.
            event = event.model_copy(update={"gitcommitid": ctx.shipyard(key.project)[1]})
        return event

    view = ctx.view
    processor = SequencerProcessor(
        settings,
        config,
        prepare=prepare,
        ready=(lambda: view.ready.is_set()) if view is not None else (lambda: True),
        dead_letters=app.dead_letters,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def sequencer() -> None:
        # Faust runs this once the worker starts and cancels it on shutdown; the processor's thread
        # then commits what it handled and leaves the group.
        holder["loop"] = asyncio.get_running_loop()
        thread = run_in_thread(processor)
        try:
            while thread.is_alive():
                await asyncio.sleep(0.5)
        finally:
            processor.stop()
            await asyncio.to_thread(thread.join, STOP_TIMEOUT)

    add_lag_source(processor.lags)  # tidegate_consumer_lag{group="<prefix>sequencer"}
    app.sequencer_ignored = processor.ignored  # type: ignore[attr-defined]
    app.sequencer_processor = processor  # type: ignore[attr-defined]
