"""A key's state has a size limit (TIDEGATE_MAX_STATE_BYTES, issue 16.4): a trigger whose data would push the
state past it ends at once, errored, with a message naming the limit; the key's other sequences go on.

Without it, two ~600 kB triggers queued on one service made the state record larger than the broker
accepts, and the whole sequencer stopped on that one key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.test_sequencer_helpers import (
    config_for,
    events_of_type,
    load_shipyard,
    only_task,
    tasks_of,
    trigger,
)
from tidegate.agents.sequencer.core import decide
from tidegate.agents.sequencer.model import STATE_CODEC
from tidegate.agents.sequencer.outputs import AuditKind
from tidegate.schemas.events import sequence_type
from tidegate.streams.settings import Settings

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: big}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
""")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT = Settings().max_state_bytes


def test_the_default_limit_leaves_room_below_kafkas_one_megabyte() -> None:
    assert 64 * 1024 <= LIMIT <= 600_000


def test_two_large_triggers_on_one_key_the_second_ends_errored_naming_the_limit() -> None:
    config = config_for(SHIPYARD)
    first = trigger("dev", "delivery", context="ctx-1")
    first.data["blob"] = "x" * (LIMIT * 6 // 10)
    started = decide(None, first, config, NOW)
    assert only_task(started).type == "sh.keptn.event.deployment.triggered"

    second = trigger("dev", "delivery", context="ctx-2")
    second.data["blob"] = "y" * (LIMIT * 6 // 10)
    refused = decide(started.state, second, config, NOW)
    [finished] = events_of_type(refused, sequence_type("dev", "delivery", "finished"))
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert f"over the limit of {LIMIT} bytes (TIDEGATE_MAX_STATE_BYTES)" in finished.data["message"]
    assert "blob" not in finished.data  # the answer does not carry the data it refused
    assert not tasks_of(refused)
    assert [a.kind for a in refused.audit] == [AuditKind.FINISHED]
    assert refused.state is not None
    assert [run.keptn_context for run in refused.state.sequences] == ["ctx-1"]  # the first one goes on
    assert STATE_CODEC.size(refused.state) <= LIMIT
    # a redelivery of the refused trigger changes nothing
    assert decide(refused.state, second, config, NOW).state is refused.state


def test_a_smaller_limit_applies_to_a_single_trigger() -> None:
    config = config_for(SHIPYARD, max_state_bytes=20_000)
    big = trigger("dev", "delivery")
    big.data["blob"] = "z" * 25_000
    decision = decide(None, big, config, NOW)
    [finished] = events_of_type(decision, sequence_type("dev", "delivery", "finished"))
    assert "over the limit of 20000 bytes" in finished.data["message"]
    small = trigger("dev", "delivery", context="ctx-3")
    assert only_task(decide(decision.state, small, config, NOW)).type == "sh.keptn.event.deployment.triggered"
