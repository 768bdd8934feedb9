"""The evaluator agent's pure core: Keptn's lighthouse flow around the quality-gate engine (§4.1).

    decide(state, event, config, now) -> Decision(state, outputs)   (agents.kernel: Emit outputs only)

One key (project/stage/service) at a time, like every agent:
- `evaluation.triggered` (from `tasks.evaluation`): `evaluation.started`; the evaluation window
  (start/end, timeframe, or the test's start/end); the SLO snapshot; then either an immediate
  `evaluation.finished` (no SLI provider, no SLO file, bad input) or `get-sli.triggered`;
- `get-sli.finished` (from `events`) answering a pending request: score it against the key's recent
  results and emit `evaluation.finished` with every indicator's targets and, in
  `evaluation.explanation`, why the gate passed, warned or failed (the `tidegate evaluate` report);
- `evaluation.invalidated`: that result no longer counts as a baseline.

The recent results live in the state (newest first, bounded), so scoring needs no datastore query.
Output ids derive from the input id, and the inputs a key applied are remembered as every agent
remembers them (`agents.dedupe`: the offset applied per input partition, digests of the last 64 ids),
so a redelivery or a replay changes nothing.
Time: a window given as a timeframe ends at the trigger's own time, so a replay computes the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

from pydantic import BaseModel, Field

from tidegate.agents.dedupe import Remembered
from tidegate.agents.kernel import Decision, Emit, Position
from tidegate.qualitygate.baseline import select_previous
from tidegate.qualitygate.engine import QualityGate
from tidegate.qualitygate.explanation import explain
from tidegate.qualitygate.inputs import (
    InputError,
    PreviousEvaluation,
    previous_from_json,
    sli_values_from_json,
)
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import SchemaError, TidegateError
from tidegate.schemas.events import EventType, KeptnEvent, Result, Status, format_time, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.slo import SLO

SOURCE = "tidegate-evaluator"
DEFAULT_TIMEFRAME = timedelta(minutes=5)
MINIMUM_WINDOW = timedelta(minutes=1)
# Parsed SLO files kept (`EvaluatorConfig.gate`): the revisions in use, with room for pending snapshots.
MAX_GATES = 64
# SLI requests still waiting for an answer; beyond this the oldest is given up (a provider that never
# answers must not grow the key's state without bound; the sequencer's task timeout reports it).
MAX_PENDING = 100
# go-utils timeutils texts (GetStartEndTime), kept so users find them in Keptn's docs and issues.
END_AND_TIMEFRAME = "'end' and 'timeframe' are mutually exclusive"
WINDOW_TOO_SHORT = "end date must be at least 1 minute after start date"
NO_TIMEFRAME = "evaluation.triggered event does not contain evaluation timeframe"


class PendingEvaluation(BaseModel):
    triggered_id: str
    keptn_context: str | None
    get_sli_id: str
    start: str
    end: str
    gitcommitid: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict)
    slo_content: str


class StoredEvaluation(BaseModel):
    """A finished evaluation, as later evaluations compare with it.

    The flow never changes a stored result in place (it replaces it), so what every decision would
    otherwise compute again from it is kept beside it, built on first use: `compared` (the engine's
    input) and `as_json` (its part of the state record). Neither is a field: not stored, not compared.
    """

    id: str  # the evaluation.finished event id (listed in comparedEvents)
    triggered_id: str
    time: str
    result: str
    score: float
    indicators: list[dict[str, Any]]  # [{value: {metric, value, success}}]
    invalidated: bool = False

    def as_previous(self) -> dict[str, Any]:
        """As an earlier evaluation.finished's data (the engine's JSON input)."""
        return {
            "id": self.id,
            "result": self.result,
            "invalidated": self.invalidated,
            "evaluation": {"indicatorResults": self.indicators},
        }

    @cached_property
    def compared(self) -> PreviousEvaluation:
        """The engine's input for this result: `previous_from_json([self.as_previous()])[0]`."""
        return previous_from_json([self.as_previous()], "a stored evaluation")[0]

    @cached_property
    def as_json(self) -> str:
        """This result's JSON, as in the state record: `self.model_dump_json()`."""
        return self.model_dump_json()

    def invalidated_copy(self) -> StoredEvaluation:
        """This result, invalidated: no longer a baseline (a new object, with nothing kept from this one)."""
        copy = self.model_copy(update={"invalidated": True})
        for kept in ("compared", "as_json"):  # a model copy copies the kept values, built with the old flag
            copy.__dict__.pop(kept, None)
        return copy


class EvaluatorState(Remembered):
    pending: list[PendingEvaluation] = Field(default_factory=list)
    history: list[StoredEvaluation] = Field(default_factory=list)

    def with_own_lists(self) -> EvaluatorState:
        """A copy whose lists can change without touching this state. The entries are shared: the
        flow never changes one in place, it replaces it (a deep copy of the history cost more than
        the whole decision); `applied` and `recent` are replaced when the input is remembered."""
        return self.model_copy(update={"pending": list(self.pending), "history": list(self.history)})


class StateCodec:
    """An evaluator state's record: `EvaluatorState.model_dump_json()`, byte for byte, put together from
    each stored result's kept `as_json` (the history, up to 50 results, was most of the encoding time
    of every decision). Read back with `model_validate_json`."""

    def encode(self, state: EvaluatorState) -> bytes:
        head = state.model_dump_json(exclude={"history"})  # `history` is the last field
        history = ",".join(stored.as_json for stored in state.history)
        return f'{head[:-1]},"history":[{history}]}}'.encode()

    def decode(self, value: bytes) -> EvaluatorState:
        return EvaluatorState.model_validate_json(value)


@dataclass(frozen=True, slots=True)
class SLOFile:
    content: str
    version: str
    name: str = "slo.yaml"  # where the file lives, for error messages (e.g. sockshop/dev/carts/slo.yaml)


@dataclass(frozen=True)
class EvaluatorConfig:
    """Lookups the shell resolves from the resources view."""

    slo_for: Callable[[Key], SLOFile | None]
    sli_provider_for: Callable[[Key], str | None]
    history_size: int = 50
    source: str = SOURCE
    _gates: dict[str, QualityGate] = field(default_factory=dict, compare=False)

    def gate(self, content: str, name: str = "slo.yaml") -> QualityGate:
        """The SLO's scoring plan, parsed once per revision (its content; the last MAX_GATES kept).
        Raises FileError naming `name` for a broken file."""
        gate = self._gates.get(content)
        if gate is None:
            from tidegate.schemas.files import FileKind, load_text

            loaded = load_text(content, name, FileKind.SLO)
            if not isinstance(loaded.model, SLO):
                raise TypeError("slo.yaml did not load as an SLO")
            gate = QualityGate(loaded.model)
            while len(self._gates) >= MAX_GATES:
                del self._gates[next(iter(self._gates))]
            self._gates[content] = gate
        return gate


Send = tuple[KeptnEvent, str]  # an event and its destination (`events` or `tasks.<task>`), before the key is added


class WindowError(TidegateError, ValueError):
    pass


def parse_time(text: str) -> datetime:
    """Keptn's accepted timestamps: `2006-01-02T15:04:05.000Z`, RFC 3339, `2006-01-02T15:04:05` (UTC)."""
    from datetime import UTC

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"'{text}' is not a timestamp like 2006-01-02T15:04:05.000Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(text: str) -> timedelta:
    """`parse_duration`, once per short text (a deployment uses a few timeframes, and the exact parser
    is not quick); the cache holds at most 256 texts of up to 32 characters."""
    return _short_duration(text) if len(text) <= 32 else parse_duration(text)


@lru_cache(maxsize=256)
def _short_duration(text: str) -> timedelta:
    return parse_duration(text)


def evaluation_window(data: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """Start and end of the evaluation, as lighthouse's getEvaluationTimestamps (§4.1 step 2)."""
    evaluation = data.get("evaluation") if isinstance(data.get("evaluation"), dict) else {}
    assert isinstance(evaluation, dict)
    start, end, timeframe = evaluation.get("start"), evaluation.get("end"), evaluation.get("timeframe")
    if (start and end) or timeframe:
        try:
            span = _duration(str(timeframe)) if timeframe else DEFAULT_TIMEFRAME
        except (ValueError, SchemaError) as error:
            raise WindowError(
                f"could not parse provided timeframe: evaluation.timeframe '{timeframe}' is not a duration like 5m "
                f"({error})"
            ) from None
        if end and timeframe and not (start and parse_time(str(end)) - parse_time(str(start)) == span):
            # Tidegate's gateway and CLI send the window they computed together with the timeframe
            # it came from (start, end = start + timeframe); only that agreeing triple is accepted.
            raise WindowError(
                f"{END_AND_TIMEFRAME}: the event gives evaluation.end ({end}) and evaluation.timeframe ({timeframe}); "
                "give start and end, or a timeframe with an optional start"
            )
        if start and end:
            begin, finish = parse_time(str(start)), parse_time(str(end))
        elif start:
            begin = parse_time(str(start))
            finish = begin + span
        else:
            finish = now
            begin = finish - span
        if finish - begin < MINIMUM_WINDOW:
            raise WindowError(
                f"{WINDOW_TOO_SHORT}: the evaluation window runs from {format_time(begin)} to {format_time(finish)}; "
                "make it at least one minute long"
            )
        return begin, finish
    test = data.get("test") if isinstance(data.get("test"), dict) else {}
    assert isinstance(test, dict)
    if test.get("start") and test.get("end"):
        return parse_time(str(test["start"])), parse_time(str(test["end"]))
    raise WindowError(NO_TIMEFRAME)


def decide(
    state: EvaluatorState | None, event: KeptnEvent, config: EvaluatorConfig, now: datetime,
    position: Position | None = None,
) -> Decision[EvaluatorState]:
    """`position`: where the host read the event (None: no offsets; the id window alone recognises a
    redelivery)."""
    parsed = EventType.parse(event.type)
    if not parsed.is_task:
        return Decision(state, ())
    if state is not None and state.handled_before(event.id, position) is not None:
        return Decision(state, ())
    work = state.with_own_lists() if state is not None else EvaluatorState()
    sends: list[Send] | None
    if parsed.task == "evaluation" and parsed.kind == "triggered":
        sends = _on_triggered(work, event, config)
    elif parsed.task == "get-sli" and parsed.kind == "finished":
        sends = _on_sli(work, event, config)
        if sends is None:
            return Decision(state, ())
    elif parsed.task == "evaluation" and parsed.kind == "invalidated":
        if not _invalidate(work, event.triggeredid):
            return Decision(state, ())
        sends = []
    else:
        return Decision(state, ())
    work.remember(event.id, position)
    key = Key.of_data(event.data)
    return Decision(work, tuple(Emit(sent, key, destination) for sent, destination in sends))


def _common(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("project", "stage", "service", "labels") if data.get(k) is not None}


@dataclass(frozen=True, slots=True)
class _Answering:
    """The evaluation.triggered that replies answer."""

    triggered_id: str
    context: str | None
    gitcommitid: str | None


def _reply(
    source: KeptnEvent, kind: str, purpose: str, config: EvaluatorConfig, data: dict[str, Any], to: _Answering
) -> KeptnEvent:
    return KeptnEvent(
        id=derived_id(source.id, purpose),
        type=task_type("evaluation", kind),
        source=config.source,
        time=source.time,
        shkeptncontext=to.context,
        triggeredid=to.triggered_id,
        gitcommitid=to.gitcommitid,
        data=data,
    )


def _finished(
    source: KeptnEvent, config: EvaluatorConfig, common: dict[str, Any], result: str, status: str, message: str,
    to: _Answering,
) -> KeptnEvent:
    data = {**common, "result": result, "status": status, "message": message}
    return _reply(source, "finished", "evaluation.finished", config, data, to)


def _on_triggered(state: EvaluatorState, event: KeptnEvent, config: EvaluatorConfig) -> list[Send]:
    key = Key.of_data(event.data)
    common = _common(event.data)
    ids = _Answering(event.id, event.shkeptncontext, event.gitcommitid)
    started = _reply(event, "started", "evaluation.started", config, {**common, "status": Status.SUCCEEDED.value}, ids)
    sends = [(started, "events")]

    def finish(result: Result, status: Status, message: str) -> list[Send]:
        return [*sends, (_finished(event, config, common, result.value, status.value, message, ids), "events")]

    try:
        begin, end = evaluation_window(event.data, event.time)
    except WindowError as error:
        return finish(Result.FAIL, Status.ERRORED, str(error))
    # Lighthouse's order: a broken SLO file fails the evaluation even where no SLI provider is configured.
    slo = config.slo_for(key)
    gate: QualityGate | None = None
    if slo is not None:
        try:
            gate = config.gate(slo.content, slo.name)
        except SchemaError as error:
            return finish(
                Result.FAIL, Status.ERRORED,
                f"the SLO file cannot be used: {error}. Fix {slo.name} and trigger the evaluation again",
            )
    provider = config.sli_provider_for(key)
    if not provider:
        return finish(
            Result.PASS, Status.SUCCEEDED,
            f"no evaluation performed by lighthouse because no SLI-provider configured for project {key.project}",
        )
    if slo is None or gate is None:
        # Lighthouse asked the provider anyway and said this on its answer; the verdict is the same.
        return finish(
            Result.PASS, Status.SUCCEEDED,
            f"no evaluation performed by lighthouse because no SLO file configured for project {key.project}",
        )
    start_text, end_text = format_time(begin), format_time(end)
    deployment = event.data.get("deployment")
    names = deployment.get("deploymentNames") if isinstance(deployment, dict) else None
    filters = gate.slo.filter or {}
    request = KeptnEvent(
        id=derived_id(event.id, "get-sli.triggered"),
        type=task_type("get-sli", "triggered"),
        source=config.source,
        time=event.time,
        shkeptncontext=event.shkeptncontext,
        gitcommitid=event.gitcommitid,
        data={
            **common,
            "get-sli": {
                "sliProvider": provider,
                "start": start_text,
                "end": end_text,
                "indicators": list(gate.slo.indicators),
                "customFilters": [{"key": k, "value": str(v)} for k, v in filters.items()],
            },
            "deployment": names[0] if isinstance(names, list) and names else "",
        },
    )
    state.pending.append(
        PendingEvaluation(
            triggered_id=event.id,
            keptn_context=event.shkeptncontext,
            get_sli_id=request.id,
            start=start_text,
            end=end_text,
            gitcommitid=event.gitcommitid,
            labels=event.data.get("labels") or {},
            slo_content=slo.content,
        )
    )
    del state.pending[: max(0, len(state.pending) - MAX_PENDING)]
    return [*sends, (request, "tasks.get-sli")]


def _on_sli(state: EvaluatorState, event: KeptnEvent, config: EvaluatorConfig) -> list[Send] | None:
    pending = next((p for p in state.pending if p.get_sli_id == event.triggeredid), None)
    if pending is None:
        return None  # not an SLI request of this evaluator (or already answered)
    state.pending.remove(pending)
    common = _common(event.data)
    ids = _Answering(pending.triggered_id, pending.keptn_context, pending.gitcommitid)
    status = event.data.get("status")
    message = str(event.data.get("message") or "")
    if status in (Status.ERRORED.value, Status.ABORTED.value):
        text = f"evaluation performed by lighthouse received an unexpected error: {message}"
        return [(_finished(event, config, common, Result.FAIL.value, Status.ERRORED.value, text, ids), "events")]
    block = event.data.get("get-sli") if isinstance(event.data.get("get-sli"), dict) else {}
    assert isinstance(block, dict)
    gate = config.gate(pending.slo_content)
    try:
        values = sli_values_from_json(block.get("indicatorValues") or [], "get-sli.finished indicatorValues")
        previous = _compared(gate, state.history)
    except InputError as error:
        text = f"the SLI values in get-sli.finished cannot be used: {error}"
        return [(_finished(event, config, common, Result.FAIL.value, Status.ERRORED.value, text, ids), "events")]
    sli_failure = message if event.data.get("result") == Result.FAIL.value else None
    verdict = gate.evaluate(values, previous, sli_failure=sli_failure)
    body = verdict.to_event_data(
        time_start=pending.start, time_end=pending.end, slo_file_content=pending.slo_content.encode()
    )
    # Why it passed or failed, in sentences (Keptn's message names only the score); Keptn's
    # clients ignore the extra field.
    body["evaluation"]["explanation"] = explain(verdict)
    finished = _reply(
        event, "finished", "evaluation.finished", config, {**common, "labels": pending.labels or common.get("labels"), **body},
        ids,
    )
    if not finished.data.get("labels"):
        finished.data.pop("labels", None)
    evaluation = body["evaluation"]
    state.history.insert(
        0,
        StoredEvaluation(
            id=finished.id,
            triggered_id=pending.triggered_id,
            time=format_time(event.time),
            result=body["result"],
            score=float(evaluation.get("score") or 0.0),
            indicators=[{"value": {k: r["value"].get(k) for k in ("metric", "value", "success")}}
                        for r in evaluation.get("indicatorResults", []) if isinstance(r.get("value"), dict)],
        ),
    )
    del state.history[config.history_size :]
    return [(finished, "events")]


def _compared(gate: QualityGate, history: list[StoredEvaluation]) -> list[PreviousEvaluation]:
    """The stored results the gate compares with, as engine input: the gate selects among the stored
    results themselves (id, result, invalidated), and only those it selects are read in full, each once
    (the history holds up to `history_size` results, a comparison a few)."""
    return [stored.compared for stored in select_previous(history, gate.include_results, gate.limit)]


def _invalidate(state: EvaluatorState, triggered_id: str | None) -> bool:
    for index, stored in enumerate(state.history):
        if triggered_id and stored.triggered_id == triggered_id and not stored.invalidated:
            state.history[index] = stored.invalidated_copy()
            return True
    return False
