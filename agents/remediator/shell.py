"""The remediator's Faust shell: table `remediations[key]`, agents on `tasks.get-action` and `events`, a ticker.

Everything the remediator decides happens in `agents.remediator.core.decide`; this shell loads
remediation.yaml for the key (service, else stage, else project level, from the resources view), reads
the key's state, calls the core, writes the state back and sends the outputs:
- every event to `events` (task replies, escalations, quota requests and answers, sequence aborts);
- transitions to `audit` as `sh.tidegate.audit.remediator.<kind>`.
The table is keyed like the topics (`project/stage/service`, a project's quota under `project//`),
and every event that changes an entry carries that same key, so changelog entries stay co-partitioned.

The agent on `events` skips everything the remediator does not act on without decoding errors of its
own: records that cannot be decoded or are keyed wrongly are the sequencer's to dead-letter (it reads
every record of `events`), so they are not dead-lettered twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime

from faust.types import EventT

from tidegate.agents.remediator.core import (
    RemediationFileProblem,
    RemediationInput,
    decide,
    is_relevant,
    next_deadline,
)
from tidegate.agents.remediator.events import GET_ACTION
from tidegate.agents.remediator.model import RemediationState
from tidegate.agents.remediator.outputs import AGENT, AuditRecord, Emit, Ignored
from tidegate.agents.remediator.settings import RemediatorSettings
from tidegate.agents.shell import WorkerContext, audit, read_keyed
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.keys import Key
from tidegate.schemas.remediation import Remediation
from tidegate.schemas.tidegate_events import remediation_tick
from tidegate.streams.app import send_event, send_to_dlq
from tidegate.streams.audit import transition_event
from tidegate.streams.codec import DecodeError, decode
from tidegate.streams.dlq import DeadLetterReason
from tidegate.streams.metrics import observe_ignored
from tidegate.streams.resources import REMEDIATION, Resource

log = logging.getLogger(__name__)

TICK_INTERVAL = 1.0  # seconds between scans of the local deadline index
RESCAN_EVERY = 15  # full table scans (after recovery or rebalance) every N ticks


def audit_event(record: AuditRecord) -> KeptnEvent:
    return transition_event(
        agent=AGENT,
        kind=record.kind.value,
        id=record.id,
        time=record.time,
        keptn_context=record.keptn_context,
        data=record.to_json_dict(),
    )


class RemediationFiles:
    """remediation.yaml of a key from the resources view, parsed once per version."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._parsed: dict[tuple[str, str], Remediation | RemediationFileProblem] = {}

    async def for_key(self, key: Key) -> RemediationInput:
        resource = self._resolve(key)
        if resource is None:
            # It may have been written a moment before the problem was reported.
            await self._ctx.sync_resources()
            resource = self._resolve(key)
        if resource is None:
            return None
        cache_key = (resource.key, resource.version)
        if cache_key not in self._parsed:
            self._parsed[cache_key] = _parse(resource)
        return self._parsed[cache_key]

    def _resolve(self, key: Key) -> Resource | None:
        return self._ctx.resources.resolve(key.project, REMEDIATION, key.stage, key.service)


def _parse(resource: Resource) -> Remediation | RemediationFileProblem:
    path = "/".join(part for part in (resource.project, resource.stage, resource.service, resource.path) if part)
    try:
        loaded = load_text(resource.text, path, FileKind.REMEDIATION)
    except FileError as error:
        problems = "; ".join(
            f"{'line ' + str(p.line) + ': ' if p.line is not None else ''}{p.field + ': ' if p.field else ''}{p.message}"
            for p in error.problems
        )
        return RemediationFileProblem(path, problems or str(error))
    except UnicodeDecodeError:
        return RemediationFileProblem(path, "the file is not UTF-8 text")
    if not isinstance(loaded.model, Remediation):
        return RemediationFileProblem(path, f"the file is a {loaded.kind.value} file, not a remediation file")
    return loaded.model


def register(ctx: WorkerContext, settings: RemediatorSettings | None = None) -> None:
    """Add the remediator's table, agents and ticker to the worker's app."""
    app = ctx.app
    config = settings or RemediatorSettings()
    table = app.Table(
        "remediations",
        default=None,
        partitions=app.tidegate_settings.partitions,
        key_type=bytes,
        value_type=bytes,
    )
    files = RemediationFiles(ctx)
    ignored: Counter[str] = Counter()
    deadlines: dict[bytes, datetime] = {}
    sent_ticks: dict[bytes, datetime] = {}
    scans = {"count": 0}
    locks: defaultdict[bytes, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def process(record: EventT[bytes], event: KeptnEvent, key: Key) -> None:
        try:
            await handle(record, event, key)
        except Exception as error:  # a bug must not stop the agent (Faust would drop the input): DLQ it
            log.exception("remediator failed on %s (id %s)", event.type, event.id)
            await send_to_dlq(record, f"the remediator failed on this {event.type}: {error!r}",
                              code=DeadLetterReason.AGENT_ERROR)

    async def handle(record: EventT[bytes], event: KeptnEvent, key: Key) -> None:
        remediation: RemediationInput = None
        parsed = event.parsed_type
        if parsed.is_task and parsed.task == GET_ACTION:
            remediation = await files.for_key(key)
        raw_key = key.encode()
        # The two agents share the table: one key's read-decide-send-write never interleaves with another.
        async with locks[raw_key]:
            stored = table.get(raw_key)
            state = RemediationState.model_validate_json(stored) if stored else None
            decision = decide(state, event, remediation, config, datetime.now(UTC))
            # Outputs are queued before the state is written: after a crash in between, the input is
            # read again and the same outputs (same ids) are sent again, instead of being lost behind
            # a state that already remembers the input.
            for output in decision.outputs:
                if isinstance(output, Emit):
                    await send_event(app, app.topic_registry.events, output.event, key=output.key)
                elif isinstance(output, AuditRecord):
                    await audit(app, audit_event(output), output.key)
                elif isinstance(output, Ignored):
                    ignored[output.reason.value] += 1
                    observe_ignored("remediator", output.reason.value)
                    if output.dead_letter:
                        await send_to_dlq(record, output.detail)
                    else:
                        log.debug("remediator ignored %s: %s", event.type, output.detail)
            if decision.state is not state:
                table[raw_key] = decision.state.model_dump_json().encode() if decision.state is not None else None
        deadline = next_deadline(decision.state)
        if deadline is None:
            deadlines.pop(raw_key, None)
        else:
            deadlines[raw_key] = deadline

    @app.agent(app.channels.task(GET_ACTION), name="remediator")
    async def remediator(stream):  # type: ignore[no-untyped-def]
        await ctx.wait_ready()  # never answer from a half-loaded configuration
        async for record in stream.events():
            keyed = await read_keyed(record)
            if keyed is None:
                continue
            event, key = keyed
            await process(record, event, key)

    @app.agent(app.channels.events, name="remediator-events")
    async def remediator_events(stream):  # type: ignore[no-untyped-def]
        async for record in stream.events():
            message = record.message
            try:
                event = decode(message.value, record.headers)
            except DecodeError:
                continue  # the sequencer dead-letters it
            if not is_relevant(event) or event.parsed_type.is_task:
                continue  # task triggers arrive on tasks.get-action, never here
            key = Key.of_data(event.data)
            if message.key is not None and message.key != key.encode():
                continue  # keyed wrongly: the sequencer dead-letters it
            await process(record, event, key)

    @app.timer(TICK_INTERVAL)  # type: ignore[untyped-decorator]
    async def remediation_ticker() -> None:
        scans["count"] += 1
        if scans["count"] % RESCAN_EVERY == 1:
            # After a restart or a rebalance the index is rebuilt from the recovered table.
            for raw_key, stored in list(table.items()):
                if not stored:
                    continue
                deadline = next_deadline(RemediationState.model_validate_json(stored))
                if deadline is not None:
                    deadlines[raw_key] = deadline
        now = datetime.now(UTC)
        for raw_key, deadline in list(deadlines.items()):
            if deadline > now or sent_ticks.get(raw_key) == deadline:
                continue
            key = Key.parse(raw_key)
            await send_event(app, app.topic_registry.events, remediation_tick(key, deadline, config.source), key=key)
            sent_ticks[raw_key] = deadline

    app.remediator_ignored = ignored  # type: ignore[attr-defined]
    app.remediator_table = table  # type: ignore[attr-defined]
