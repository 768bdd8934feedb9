"""The evaluator's fast paths, each against the plain path it replaces.

- The results it compares with. Plain: outline every stored result, let the gate select, then read the
  selected ones from their JSON form (`StoredEvaluation.as_previous` -> `previous_from_json`). Fast
  (`flow._compared`): the gate selects among the stored results themselves, and each selected one is
  read once (`StoredEvaluation.compared`, kept with the result, which is never changed in place; an
  invalidated copy builds its own).
- The state record. Plain: `EvaluatorState.model_dump_json()`. Fast (`flow.StateCodec`): the same
  bytes, put together from each stored result's kept JSON (`StoredEvaluation.as_json`).
"""

from __future__ import annotations

import random

import pytest

from tests.unit.test_evaluator_flow import Lighthouse, invalidated, only, sli_finished, triggered
from tidegate.agents.evaluator.flow import (
    EvaluatorConfig,
    EvaluatorState,
    StateCodec,
    StoredEvaluation,
    _compared,
)
from tidegate.agents.kernel import ModelCodec
from tidegate.qualitygate.baseline import select_previous
from tidegate.qualitygate.engine import QualityGate
from tidegate.qualitygate.inputs import PreviousEvaluation, previous_from_json

METRICS = ("response_time_p95", "error_rate", "throughput")


def plain(gate: QualityGate, history: list[StoredEvaluation]) -> list[PreviousEvaluation]:
    outline = [PreviousEvaluation(h.id, h.result, (), h.invalidated) for h in history]
    chosen = {e.id for e in select_previous(outline, gate.include_results, gate.limit)}
    return previous_from_json([h.as_previous() for h in history if h.id in chosen])


def gate_for(compare_with: str, count: int, include: str) -> QualityGate:
    slo = (f"comparison: {{compare_with: {compare_with}, number_of_comparison_results: {count}, "
           f"include_result_with_score: {include}}}\n"
           "objectives:\n  - {sli: response_time_p95, pass: [{criteria: ['<=+10%']}]}\n"
           "total_score: {pass: '90%', warning: '75%'}\n")
    return EvaluatorConfig(slo_for=lambda key: None, sli_provider_for=lambda key: None).gate(slo)


def history_of(rng: random.Random, size: int) -> list[StoredEvaluation]:
    return [
        StoredEvaluation(
            id=f"finished-{n}", triggered_id=f"trigger-{n}", time="2026-12-06T07:00:00.000Z",
            result=rng.choice(("pass", "warning", "fail")), score=rng.choice((0.0, 50.0, 100.0)),
            indicators=[{"value": {"metric": metric, "value": rng.uniform(0, 1000), "success": rng.random() > 0.2}}
                        for metric in rng.sample(METRICS, rng.randint(0, len(METRICS)))],
            invalidated=rng.random() < 0.2,
        )
        for n in range(size)
    ]


@pytest.mark.parametrize("seed", range(12))
def test_the_fast_path_compares_with_exactly_what_the_plain_path_reads(seed: int) -> None:
    rng = random.Random(seed)
    history = history_of(rng, rng.randint(0, 50))
    for compare_with, count, include in (("single_result", 1, "all"), ("several_results", 3, "pass"),
                                         ("several_results", 5, "pass_or_warn"), ("several_results", 50, "all")):
        gate = gate_for(compare_with, count, include)
        assert _compared(gate, history) == plain(gate, history)
        assert _compared(gate, history) == plain(gate, history)  # again, from what was kept


def test_an_invalidated_copy_is_compared_as_invalidated_and_the_original_is_unchanged() -> None:
    (stored,) = history_of(random.Random(1), 1)
    kept = stored.compared
    copy = stored.invalidated_copy()
    assert copy.invalidated and copy.compared.invalidated and not stored.compared.invalidated
    assert stored.compared is kept and copy == stored.model_copy(update={"invalidated": True})
    assert "compared" not in copy.model_dump()  # kept beside the result, never stored


def test_the_state_record_is_the_models_json_byte_for_byte() -> None:
    assert list(EvaluatorState.model_fields)[-1] == "history"  # the codec appends it last
    plain, fast = ModelCodec(EvaluatorState), StateCodec()
    lighthouse = Lighthouse(history_size=5)
    assert fast.encode(EvaluatorState()) == plain.encode(EvaluatorState())
    triggers = []
    for number in range(8):
        trigger = triggered(evaluation={"timeframe": "5m"}, labels={"n": str(number), "quote": 'a "b" \\ ü'})
        triggers.append(trigger)
        request = only(lighthouse.handle(trigger), "tasks.get-sli")
        assert lighthouse.state is not None
        assert fast.encode(lighthouse.state) == plain.encode(lighthouse.state)  # a request pending
        lighthouse.handle(sli_finished(request, {"response_time_p95": 500 + number, "throughput": 9}))
        assert fast.encode(lighthouse.state) == plain.encode(lighthouse.state)
    lighthouse.handle(invalidated(triggers[-2].id))  # a stored result replaced by its invalidated copy
    state = lighthouse.state
    assert state is not None and any(stored.invalidated for stored in state.history)
    record = fast.encode(state)
    assert record == plain.encode(state)
    assert fast.decode(record) == state and fast.encode(fast.decode(record)) == record
