"""The evaluator's Faust shell: table `evaluations[key]`, one agent on `tasks.evaluation` + `events`.

The SLI provider of a key: the file `.tidegate/sli-provider` (service, stage or project level;
written by `tidegate configure monitoring`), else `prometheus` when a `prometheus/sli.yaml` exists
for the key, else `TIDEGATE_DEFAULT_SLI_PROVIDER`; none means Keptn's "no evaluation performed".
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from datetime import UTC, datetime

from faust.types import EventT

from tidegate.agents.evaluator.flow import EvaluatorConfig, EvaluatorState, SLOFile, decide
from tidegate.agents.shell import WorkerContext, emit, read_keyed
from tidegate.schemas.keys import Key
from tidegate.streams.app import send_to_dlq
from tidegate.streams.dlq import DeadLetterReason
from tidegate.streams.resources import SLI_PROMETHEUS, SLO, Resource

log = logging.getLogger(__name__)

SLI_PROVIDER_FILE = ".tidegate/sli-provider"


def _file_name(resource: Resource) -> str:
    """`sockshop/dev/carts/slo.yaml`, `sockshop/dev/slo.yaml` or `sockshop/slo.yaml`: the level that has the file."""
    return "/".join(part for part in (resource.project, resource.stage, resource.service, resource.path) if part)


def register(ctx: WorkerContext) -> None:
    app = ctx.app
    table = app.Table(
        "evaluations", default=None, partitions=app.tidegate_settings.partitions, key_type=bytes, value_type=bytes
    )
    locks: defaultdict[bytes, asyncio.Lock] = defaultdict(asyncio.Lock)

    def slo_for(key: Key) -> SLOFile | None:
        found = ctx.resources.resolve(key.project, SLO, key.stage, key.service)
        return SLOFile(found.text, found.version, _file_name(found)) if found is not None else None

    def sli_provider_for(key: Key) -> str | None:
        configured = ctx.resources.resolve(key.project, SLI_PROVIDER_FILE, key.stage, key.service)
        if configured is not None and configured.text.strip():
            return configured.text.strip()
        if ctx.resources.layers(key.project, SLI_PROMETHEUS, key.stage, key.service):
            return "prometheus"
        return os.environ.get("TIDEGATE_DEFAULT_SLI_PROVIDER") or None

    config = EvaluatorConfig(slo_for=slo_for, sli_provider_for=sli_provider_for)

    async def handle(record: EventT[bytes]) -> None:
        keyed = await read_keyed(record)
        if keyed is None:
            return
        event, key = keyed
        parsed = event.parsed_type
        if not (parsed.is_task and parsed.task in ("evaluation", "get-sli")):
            return
        if parsed.kind == "triggered" and slo_for(key) is None:
            await ctx.sync_resources()
        raw_key = key.encode()
        # Two agents share the table: one key's read-decide-send-write never interleaves with another.
        async with locks[raw_key]:
            stored = table.get(raw_key)
            state = EvaluatorState.model_validate_json(stored) if stored else None
            try:
                decision = decide(state, event, config, datetime.now(UTC))
            except Exception as error:  # one bad event must not stop the partition
                log.exception("evaluator failed on %s %s", event.type, event.id)
                await send_to_dlq(record, f"evaluator error: {type(error).__name__}: {error}",
                                  code=DeadLetterReason.AGENT_ERROR)
                return
            # Outputs first, then the state: after a crash in between, the input is read again and
            # the same outputs (same ids) go out again instead of being lost behind a state that
            # already remembers the input.
            for send in decision.sends:
                await emit(app, send.destination, send.event, key)
            if decision.state is not state and decision.state is not None:
                table[raw_key] = decision.state.model_dump_json().encode()

    # One agent per input topic (a single channel over both topics left messages unacknowledged).
    @app.agent(app.channels.task("evaluation"), name="evaluator")
    async def evaluator(stream):  # type: ignore[no-untyped-def]
        await ctx.wait_ready()
        async for record in stream.events():
            await handle(record)

    @app.agent(app.channels.events, name="evaluator-events")
    async def evaluator_events(stream):  # type: ignore[no-untyped-def]
        await ctx.wait_ready()
        async for record in stream.events():
            await handle(record)
