"""The approver's Faust shell: answers `approval.triggered` on `tasks.approval` (stateless)."""

from __future__ import annotations

from tidegate.agents.approver.core import decide_approval
from tidegate.agents.shell import WorkerContext, read_keyed
from tidegate.streams.app import send_event


def register(ctx: WorkerContext) -> None:
    app = ctx.app

    @app.agent(app.channels.task("approval"), name="approver")
    async def approver(stream):  # type: ignore[no-untyped-def]
        async for record in stream.events():
            keyed = await read_keyed(record)
            if keyed is None:
                continue
            event, key = keyed
            for reply in decide_approval(event):
                await send_event(app, app.topic_registry.events, reply, key=key)
