"""The sequencer in the worker: its agent bundle (`AGENT`) and its configuration (`hosted(ctx)`).

Everything the sequencer decides happens in `agents.sequencer.core.decide`; a host runs it (the loop
host by default, see `agents.worker.HOSTS`: the sequencer is the one agent every event passes through).
This module reads the settings and gives the core the worker's view of the configuration files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta

from tidegate.agents.kernel import Agent, Hosted
from tidegate.agents.sequencer.core import decide, next_deadline
from tidegate.agents.sequencer.model import STATE_CODEC, KeyState, SequencerConfig
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard
from tidegate.schemas.tidegate_events import TICK_TYPE, tick_event
from tidegate.streams.metrics import set_sequence_load
from tidegate.streams.topics import SEQUENCER_STATE

log = logging.getLogger(__name__)

STARTED_WAIT_ENV = "TIDEGATE_TASK_STARTED_WAIT_DURATION"
REMEDIATION_WAIT_ENV = "TIDEGATE_REMEDIATION_WAIT"  # wait before the built-in remediation re-evaluates


def _tick(key: Key, deadline: datetime, _config: SequencerConfig) -> KeptnEvent:
    return tick_event(key, deadline)


AGENT: Agent[KeyState, SequencerConfig] = Agent(
    name="sequencer",
    inputs=("events",),
    decide=decide,
    state=STATE_CODEC,  # compact JSON; reads the earlier pydantic records too
    state_topic=SEQUENCER_STATE,  # <prefix>sequencer-sequences-changelog
    next_deadline=next_deadline,
    tick=_tick,
    audits_inputs=True,  # it reads every record of `events`, so it audits them all
    unaudited=frozenset({TICK_TYPE}),
    scanned=set_sequence_load,  # tidegate_open_sequences / tidegate_queued_sequences
)


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


def hosted(ctx: WorkerContext, *, started_timeout_seconds: float | None = None) -> Hosted[KeyState, SequencerConfig]:
    """The sequencer bound to the worker. The started timeout (how long a triggered task may go without
    `.started`/`.finished`) is `started_timeout_seconds`, else `TIDEGATE_TASK_STARTED_WAIT_DURATION`,
    else the core's default (10 minutes, as Keptn); the state cap is `TIDEGATE_MAX_STATE_BYTES`."""
    settings = ctx.app.tidegate_settings

    def shipyard_for(project: str) -> Shipyard | None:
        return ctx.shipyard(project)[0]

    started_timeout = (
        timedelta(seconds=started_timeout_seconds)
        if started_timeout_seconds is not None
        else started_timeout_from_env(os.environ)
    )
    config = SequencerConfig(shipyard_for=shipyard_for, max_state_bytes=settings.max_state_bytes)
    if started_timeout is not None:
        config = dataclasses.replace(config, started_timeout=started_timeout)
    remediation_wait = os.environ.get(REMEDIATION_WAIT_ENV, "").strip()
    if remediation_wait:
        parse_duration(remediation_wait)  # refuse a bad setting at start, not at the first problem
        config = dataclasses.replace(config, remediation_wait=remediation_wait)

    def stale(event: KeptnEvent, key: Key) -> bool:
        # A trigger can follow its shipyard closely: catch up with files written a moment ago.
        parsed = event.parsed_type
        return parsed.is_sequence and parsed.kind == "triggered" and bool(key.project) and (
            ctx.shipyard(key.project)[0] is None)

    def prepare(event: KeptnEvent, key: Key) -> KeptnEvent:
        parsed = event.parsed_type
        if not (parsed.is_sequence and parsed.kind == "triggered" and key.project) or event.gitcommitid:
            return event
        # Keptn fills a missing gitcommitid with the latest configuration version: the decision can then
        # always be explained from exactly the files it used.
        return event.model_copy(update={"gitcommitid": ctx.shipyard(key.project)[1]})

    return Hosted(AGENT, config, stale=stale, prepare=prepare)
