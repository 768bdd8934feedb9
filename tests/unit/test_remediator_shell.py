"""How the remediator finds remediation.yaml: a file written a moment before the problem is read.

A problem can follow its remediation.yaml closely (a project set up, then an alert at once): the
resources view may not have read the file yet when the get-action arrives. The remediator then says
its input is stale (`Hosted.stale`), so either host catches the view up (`sync_resources`) before the
core answers "no remediation.yaml", as for the sequencer's and evaluator's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tidegate.agents.kernel import Hosted, Read, Runner
from tidegate.agents.remediator.shell import RemediationFiles, hosted
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.schemas.keys import Key
from tidegate.schemas.remediation import Remediation
from tidegate.streams.resources import REMEDIATION, Resource, ResourceStore
from tidegate.streams.topics import TopicRegistry

REMEDIATION_YAML = b"""
apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
metadata: {name: remediation}
spec:
  remediations:
    - problemType: response_time_p95
      actionsOnOpen:
        - {name: Scale up, action: scaling, value: "1"}
"""
KEY = Key("sockshop", "production", "carts")


@dataclass
class LaggingContext(WorkerContext):
    """A worker context whose view has not yet read `written`; a sync reads it."""

    written: list[Resource] = field(default_factory=list)
    syncs: int = 0

    async def sync_resources(self) -> None:
        self.syncs += 1
        for resource in self.written:
            self.resources.put(resource)


def context(written: list[Resource]) -> LaggingContext:
    app: Any = None  # RemediationFiles never touches the app
    return LaggingContext(app=app, resources=ResourceStore(), written=written)


def get_action() -> Read:
    event = KeptnEvent(type=task_type("get-action", "triggered"), source="test", shkeptncontext="ctx",
                       data={"project": KEY.project, "stage": KEY.stage, "service": KEY.service,
                             "problem": {"problemTitle": "response_time_p95", "state": "OPEN"}})
    return Read(event, KEY, KEY.encode(), False)


async def found_by_host(bound: Hosted, ctx: LaggingContext) -> object:  # type: ignore[type-arg]
    """What a host does before deciding: catch the view up when the input is stale, then look the file up."""
    runner = Runner(bound, TopicRegistry())
    if runner.stale(get_action()):
        await ctx.sync_resources()
    return bound.config.remediation_for(KEY)


async def test_a_file_the_view_has_not_read_yet_is_found_after_a_sync() -> None:
    ctx = context([Resource.new(KEY.project, REMEDIATION, REMEDIATION_YAML, KEY.stage, KEY.service)])
    found = await found_by_host(hosted(ctx), ctx)
    assert isinstance(found, Remediation), found
    assert [a.name for a in found.actions_for("response_time_p95", "")] == ["Scale up"]
    assert ctx.syncs == 1


async def test_a_file_the_view_has_is_used_without_waiting() -> None:
    ctx = context([])
    ctx.resources.put(Resource.new(KEY.project, REMEDIATION, REMEDIATION_YAML, KEY.stage))  # stage level
    assert isinstance(await found_by_host(hosted(ctx), ctx), Remediation)
    assert ctx.syncs == 0


async def test_no_file_even_after_a_sync_is_none() -> None:
    ctx = context([])
    assert await found_by_host(hosted(ctx), ctx) is None
    assert ctx.syncs == 1
    assert RemediationFiles(ctx).lookup(KEY) is None
