"""How the remediator's shell finds remediation.yaml: a file written a moment before the problem is read.

A problem can follow its remediation.yaml closely (a project set up, then an alert at once): the
resources view may not have read the file yet when the get-action arrives. The shell must then catch
the view up (`sync_resources`) before it answers "no remediation.yaml", as the sequencer and evaluator
do for their files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tidegate.agents.remediator.shell import RemediationFiles
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.keys import Key
from tidegate.schemas.remediation import Remediation
from tidegate.streams.resources import REMEDIATION, Resource, ResourceStore

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


async def test_a_file_the_view_has_not_read_yet_is_found_after_a_sync() -> None:
    ctx = context([Resource.new(KEY.project, REMEDIATION, REMEDIATION_YAML, KEY.stage, KEY.service)])
    found = await RemediationFiles(ctx).for_key(KEY)
    assert isinstance(found, Remediation), found
    assert [a.name for a in found.actions_for("response_time_p95", "")] == ["Scale up"]
    assert ctx.syncs == 1


async def test_a_file_the_view_has_is_used_without_waiting() -> None:
    ctx = context([])
    ctx.resources.put(Resource.new(KEY.project, REMEDIATION, REMEDIATION_YAML, KEY.stage))  # stage level
    assert isinstance(await RemediationFiles(ctx).for_key(KEY), Remediation)
    assert ctx.syncs == 0


async def test_no_file_even_after_a_sync_is_none() -> None:
    ctx = context([])
    assert await RemediationFiles(ctx).for_key(KEY) is None
    assert ctx.syncs == 1
