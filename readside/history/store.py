"""The history store: audit entries in, paged queries out, behind SQLAlchemy 2 (SQLite or PostgreSQL).

    store = HistoryStore("sqlite:///.cache/history.db")   # or postgresql+psycopg://user@host/db
    store.ingest(entries)             # idempotent on event/transition id: replays are harmless
    store.events(EventFilter(project="sockshop"), page_size=20)
    store.sequences("sockshop", SequenceFilter(state="started"))

Writes happen in one transaction per batch. Several processes may ingest into one PostgreSQL
database: a batch that collides with another writer's insert is retried, and the duplicate ids are
then skipped. Reads never block ingestion on PostgreSQL; on SQLite the file runs in WAL mode.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, Select, and_, create_engine, event, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.schemas.tidegate_events import TASK_CANCELLED_TYPE

from . import deployments
from .audit import AuditEntry, SeenEvent, Transition
from .models import Base, EvaluationRow, EventRow, SequenceRow, TransitionRow
from .sequences import SequenceView, apply, stages_from_json, stages_to_json

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500


TimelineCursor = tuple[int, int]


class QueryError(TidegateError, ValueError):
    """A query the store cannot answer as asked (a bad page key, ...); the message says what to change."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_key: str | None
    total_count: int
    page_size: int


@dataclass(frozen=True, slots=True)
class EventFilter:
    project: str | None = None
    stage: str | None = None
    service: str | None = None
    keptn_context: str | None = None
    type: str | None = None
    event_id: str | None = None
    triggered_id: str | None = None
    source: str | None = None
    root: bool = False
    from_time: datetime | None = None
    before_time: datetime | None = None
    exclude_invalidated: bool = False


@dataclass(frozen=True, slots=True)
class SequenceFilter:
    name: str | None = None
    state: str | None = None
    keptn_context: str | None = None
    from_time: datetime | None = None
    before_time: datetime | None = None


def default_url(home: Path | None = None) -> str:
    """SQLite in `$TIDEGATE_HOME/history.db` (nothing to install)."""
    import os

    base = home or Path(os.environ.get("TIDEGATE_HOME") or ".cache")
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(base / 'history.db').resolve()}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ASCII digits only (str.isdigit also takes "²", which int() refuses) and at most 18 of them, so that
# the offset fits a database's 64-bit integer.
_PAGE_KEY = re.compile(r"[0-9]{1,18}")


def page_offset(next_page_key: str | None) -> int:
    """The offset a `nextPageKey` stands for (None or empty: 0); a QueryError for anything else than
    the keys this server gives out."""
    if not next_page_key:
        return 0
    if not _PAGE_KEY.fullmatch(next_page_key):
        shown = next_page_key if len(next_page_key) <= 40 else next_page_key[:40] + "..."
        raise QueryError(f"nextPageKey {shown!r} is not a page key this server gave out; omit it to start over")
    return int(next_page_key)


def _page_size(page_size: int | None) -> int:
    if page_size is None or page_size <= 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


def _page(items: list[T], offset: int, size: int, total: int) -> Page[T]:
    following = offset + len(items)
    return Page(items, str(following) if following < total else None, total, size)


class HistoryStore:
    """Audit entries, stored and queryable. Thread-safe: each call opens its own session."""

    def __init__(self, url: str | None = None, *, echo: bool = False) -> None:
        self.url = url or default_url()
        self.engine: Engine = _engine(self.url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def reset(self) -> None:
        """Drop and recreate every table (before a rebuild from audit)."""
        Base.metadata.drop_all(self.engine)
        Base.metadata.create_all(self.engine)

    # ------------------------------------------------------------------ writing

    def ingest(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        """Store the entries not stored before; return those (in order). Idempotent."""
        batch = list(entries)
        for attempt in range(3):
            try:
                with self._sessions.begin() as session:
                    return _Ingest(session).run(batch)
            except IntegrityError:
                # Another writer stored some of these ids between our check and our insert: retry,
                # and the second check skips them.
                if attempt == 2:
                    raise
                log.info("history: a concurrent writer stored part of a batch; retrying it")
        return []

    # ------------------------------------------------------------------ events

    def events(self, where: EventFilter, *, page_size: int | None = None, next_page_key: str | None = None) -> Page[dict[str, Any]]:
        """Events, newest first (Keptn's datastore `GET /event`)."""
        size, offset = _page_size(page_size), page_offset(next_page_key)
        query = _event_query(where)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(EventRow.time.desc(), EventRow.seq.desc()).offset(offset).limit(size)
            ).all()
        return _page([row.body for row in rows], offset, size, total)

    def events_matching(
        self,
        where: EventFilter,
        data_filters: dict[str, list[str]],
        *,
        limit: int | None = None,
    ) -> Page[dict[str, Any]]:
        """Events of `where` whose data fields (dotted paths below `data`) have one of the given values."""
        size = _page_size(limit)
        query = _event_query(where).order_by(EventRow.time.desc(), EventRow.seq.desc())
        found: list[dict[str, Any]] = []
        with self._sessions() as session:
            # Filters on data fields are applied here, not in SQL (JSON paths differ between
            # SQLite and PostgreSQL); the scan is bounded by the SQL filters the query must have.
            for row in session.scalars(query.execution_options(yield_per=200)):
                if all(_data_value(row.body, path) in values for path, values in data_filters.items()):
                    found.append(row.body)
                    if len(found) >= size:
                        break
        return Page(found, None, len(found), size)

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self._sessions() as session:
            row = session.scalar(select(EventRow).where(EventRow.id == event_id))
            return row.body if row is not None else None

    def open_triggered(
        self,
        event_type: str,
        *,
        project: str | None = None,
        stage: str | None = None,
        service: str | None = None,
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """`.triggered` events of `event_type` that no `.finished` (or cancellation) has answered yet."""
        reply = aliased(EventRow)
        answered = exists().where(
            reply.triggered_id == EventRow.id,
            or_(reply.type.like("%.finished"), reply.type == TASK_CANCELLED_TYPE),
        )
        query = _event_query(
            EventFilter(project=project, stage=stage, service=service, type=event_type, event_id=event_id)
        ).where(~answered)
        with self._sessions() as session:
            rows = session.scalars(query.order_by(EventRow.time.asc(), EventRow.seq.asc())).all()
        return [row.body for row in rows]

    def context_keys(self, project: str, keptn_context: str) -> list[Key]:
        """Every project/stage/service a keptnContext touched (for pause/resume/abort)."""
        pairs: list[tuple[str | None, str | None]] = []
        with self._sessions() as session:
            for stage, service in session.execute(
                select(EventRow.stage, EventRow.service)
                .where(EventRow.project == project, EventRow.keptn_context == keptn_context)
                .distinct()
            ):
                pairs.append((stage, service))
            for t_stage, t_service in session.execute(
                select(TransitionRow.stage, TransitionRow.service)
                .where(TransitionRow.project == project, TransitionRow.keptn_context == keptn_context)
                .distinct()
            ):
                pairs.append((t_stage, t_service))
        keys = {Key(project, stage, service) for stage, service in pairs if stage and service}
        return sorted(keys, key=str)

    def timeline(self, keptn_context: str, *, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Events and transitions of a context in the order they were stored: (position, item).

        Items are `{"kind": "event", "event": {...}}` or `{"kind": "transition", "transition": {...}}`;
        `after` skips positions already seen (the stream resumes from there).
        """
        with self._sessions() as session:
            events = session.execute(
                select(EventRow.time, EventRow.seq, EventRow.body).where(EventRow.keptn_context == keptn_context)
            ).all()
            transitions = session.execute(
                select(TransitionRow.time, TransitionRow.seq, TransitionRow.body).where(
                    TransitionRow.keptn_context == keptn_context
                )
            ).all()
        items = [(_utc(t), seq, 0, {"kind": "event", "event": body}) for t, seq, body in events]
        items += [(_utc(t), seq, 1, {"kind": "transition", "transition": body}) for t, seq, body in transitions]
        items.sort(key=lambda item: (item[0], item[2], item[1]))
        numbered = [(position, item[3]) for position, item in enumerate(items, start=1)]
        return [(position, item) for position, item in numbered if position > after]

    def timeline_since(
        self, keptn_context: str, cursor: TimelineCursor = (0, 0)
    ) -> tuple[list[dict[str, Any]], TimelineCursor]:
        """Entries of a context stored after `cursor`, in time order, and the cursor that follows them.

        The cursor is (last event row, last transition row) in storage order, not a position in the
        time-sorted timeline: an entry stored late with an early time (a late or replayed audit record)
        would otherwise take a position a client has already passed, and a live stream would skip it.
        """
        last_event, last_transition = cursor
        with self._sessions() as session:
            events = session.execute(
                select(EventRow.time, EventRow.seq, EventRow.body).where(
                    EventRow.keptn_context == keptn_context, EventRow.seq > last_event
                )
            ).all()
            transitions = session.execute(
                select(TransitionRow.time, TransitionRow.seq, TransitionRow.body).where(
                    TransitionRow.keptn_context == keptn_context, TransitionRow.seq > last_transition
                )
            ).all()
        items = [(_utc(t), 0, seq, {"kind": "event", "event": body}) for t, seq, body in events]
        items += [(_utc(t), 1, seq, {"kind": "transition", "transition": body}) for t, seq, body in transitions]
        items.sort(key=lambda item: (item[0], item[1], item[2]))
        following = (
            max([last_event, *(seq for _, seq, _ in events)]),
            max([last_transition, *(seq for _, seq, _ in transitions)]),
        )
        return [item[3] for item in items], following

    # ------------------------------------------------------------------ sequences

    def sequences(
        self,
        project: str,
        where: SequenceFilter | None = None,
        *,
        page_size: int | None = None,
        next_page_key: str | None = None,
    ) -> Page[SequenceView]:
        """Sequence states of a project, newest first (Keptn's `GET /sequence/{project}`)."""
        where = where or SequenceFilter()
        size, offset = _page_size(page_size), page_offset(next_page_key)
        query = select(SequenceRow).where(SequenceRow.project == project)
        if where.name:
            query = query.where(SequenceRow.name == where.name)
        if where.state:
            query = query.where(SequenceRow.state == where.state)
        if where.keptn_context:
            query = query.where(SequenceRow.keptn_context == where.keptn_context)
        if where.from_time:
            query = query.where(SequenceRow.time >= where.from_time)
        if where.before_time:
            query = query.where(SequenceRow.time < where.before_time)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(SequenceRow.time.desc(), SequenceRow.keptn_context).offset(offset).limit(size)
            ).all()
        return _page([_view_of(row) for row in rows], offset, size, total)

    def sequence(self, keptn_context: str) -> SequenceView | None:
        with self._sessions() as session:
            row = session.get(SequenceRow, keptn_context)
            return _view_of(row) if row is not None else None

    # ------------------------------------------------------------------ evaluations

    def evaluations(
        self,
        project: str,
        *,
        stage: str | None = None,
        service: str | None = None,
        keptn_context: str | None = None,
        include_invalidated: bool = False,
        page_size: int | None = None,
        next_page_key: str | None = None,
    ) -> Page[dict[str, Any]]:
        """`evaluation.finished` events of a project (newest first), as stored."""
        size, offset = _page_size(page_size), page_offset(next_page_key)
        query = select(EvaluationRow).where(EvaluationRow.project == project)
        if stage:
            query = query.where(EvaluationRow.stage == stage)
        if service:
            query = query.where(EvaluationRow.service == service)
        if keptn_context:
            query = query.where(EvaluationRow.keptn_context == keptn_context)
        if not include_invalidated:
            query = query.where(EvaluationRow.invalidated.is_(False))
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(EvaluationRow.time.desc(), EvaluationRow.id).offset(offset).limit(size)
            ).all()
        return _page([row.body for row in rows], offset, size, total)

    def deployed_image(self, project: str, stage: str, service: str, *, limit: int = 200) -> str | None:
        """The image the service runs in the stage: Keptn's rule over the stage's last `limit`
        deployment and rollback results (deployments.py)."""
        with self._sessions() as session:
            rows = session.scalars(
                select(EventRow.body)
                .where(EventRow.project == project, EventRow.stage == stage, EventRow.service == service,
                       EventRow.type.in_(deployments.CHANGES))
                .order_by(EventRow.time.desc(), EventRow.seq.desc())
                .limit(limit)
            ).all()
            wanted = [str(body.get("triggeredid")) for body in rows if body.get("triggeredid")]
            triggered = {
                body.get("id"): body.get("data") or {}
                for body in session.scalars(select(EventRow.body).where(EventRow.id.in_(wanted))).all()
            } if wanted else {}
        return deployments.deployed_image(reversed(rows), triggered.get)


# --------------------------------------------------------------------- internals


def _engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _event_query(where: EventFilter) -> Select[tuple[EventRow]]:
    query = select(EventRow)
    conditions = []
    for column, value in (
        (EventRow.project, where.project),
        (EventRow.stage, where.stage),
        (EventRow.service, where.service),
        (EventRow.keptn_context, where.keptn_context),
        (EventRow.type, where.type),
        (EventRow.id, where.event_id),
        (EventRow.triggered_id, where.triggered_id),
        (EventRow.source, where.source),
    ):
        if value:
            conditions.append(column == value)
    if where.root:
        conditions.append(EventRow.is_root.is_(True))
    if where.from_time:
        conditions.append(EventRow.time > where.from_time)  # exclusive, as Keptn's datastore ($gt)
    if where.before_time:
        conditions.append(EventRow.time < where.before_time)
    if where.exclude_invalidated:
        invalidation = aliased(EventRow)
        conditions.append(
            ~exists().where(
                invalidation.type == "sh.keptn.event.evaluation.invalidated",
                invalidation.triggered_id == EventRow.triggered_id,
                EventRow.triggered_id.is_not(None),
            )
        )
    return query.where(and_(*conditions)) if conditions else query


def _data_value(body: dict[str, Any], path: str) -> str | None:
    """The value at a dotted path of an event's JSON (`data.result`, `shkeptncontext`), as text."""
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if node is None or isinstance(node, dict | list):
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _view_of(row: SequenceRow) -> SequenceView:
    return SequenceView(
        keptn_context=row.keptn_context,
        project=row.project,
        service=row.service,
        name=row.name,
        time=_utc(row.time),
        updated=_utc(row.updated),
        stages=stages_from_json(row.stages),
        failed=row.failed,
        last_result=row.last_result,
        problem_title=row.problem_title,
        changes=row.changes,
    )


def _write_view(session: Session, view: SequenceView) -> None:
    row = session.get(SequenceRow, view.keptn_context)
    if row is None:
        row = SequenceRow(keptn_context=view.keptn_context)
        session.add(row)
    row.project = view.project
    row.service = view.service
    row.name = view.name
    row.state = view.state
    row.time = view.time
    row.updated = view.updated
    row.failed = view.failed
    row.last_result = view.last_result
    row.problem_title = view.problem_title
    row.changes = view.changes
    row.stages = stages_to_json(view)


class _Ingest:
    """One batch of entries written in one transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.views: dict[str, SequenceView | None] = {}
        self.touched: set[str] = set()

    def run(self, batch: Sequence[AuditEntry]) -> list[AuditEntry]:
        event_ids = [e.id for e in batch if isinstance(e, SeenEvent)]
        transition_ids = [e.id for e in batch if isinstance(e, Transition)]
        known = set(self.session.scalars(select(EventRow.id).where(EventRow.id.in_(event_ids)))) if event_ids else set()
        if transition_ids:
            known |= set(self.session.scalars(select(TransitionRow.id).where(TransitionRow.id.in_(transition_ids))))
        fresh: list[AuditEntry] = []
        for entry in batch:
            if entry.id in known:
                continue
            known.add(entry.id)
            fresh.append(entry)
            if isinstance(entry, SeenEvent):
                self._event(entry)
            else:
                self._transition(entry)
        for context in self.touched:
            view = self.views.get(context)
            if view is not None:
                _write_view(self.session, view)
        return fresh

    def _view(self, context: str) -> SequenceView | None:
        if context not in self.views:
            row = self.session.get(SequenceRow, context)
            self.views[context] = _view_of(row) if row is not None else None
        return self.views[context]

    def _fold(self, context: str | None, entry: AuditEntry) -> tuple[SequenceView | None, SequenceView | None]:
        if not context:
            return None, None
        before = self._view(context)
        after = apply(before, entry)
        if after is not before:
            self.views[context] = after
            self.touched.add(context)
        return before, after

    def _event(self, entry: SeenEvent) -> None:
        event = entry.event
        before, after = self._fold(event.shkeptncontext, entry)
        parsed = event.parsed_type
        is_root = before is None and after is not None and parsed.is_sequence and parsed.kind == "triggered"
        self.session.add(
            EventRow(
                id=event.id,
                type=event.type,
                source=event.source,
                time=_utc(event.time),
                keptn_context=event.shkeptncontext,
                triggered_id=event.triggeredid,
                project=event.project,
                stage=event.stage,
                service=event.service,
                gitcommitid=event.gitcommitid,
                is_root=is_root,
                body=event.to_json_dict(),
            )
        )
        if parsed.is_task and parsed.task == "evaluation":
            self._evaluation(event, parsed.kind)

    def _evaluation(self, event: KeptnEvent, kind: str | None) -> None:
        if kind == "finished" and event.project:
            evaluation = event.data.get("evaluation")
            score = evaluation.get("score") if isinstance(evaluation, dict) else None
            self.session.add(
                EvaluationRow(
                    id=event.id,
                    keptn_context=event.shkeptncontext,
                    triggered_id=event.triggeredid,
                    project=event.project,
                    stage=event.stage or "",
                    service=event.service or "",
                    time=_utc(event.time),
                    result=_text(event.data.get("result")),
                    score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
                    body=event.to_json_dict(),
                )
            )
        elif kind == "invalidated" and event.triggeredid:
            self.session.flush()
            self.session.execute(
                update(EvaluationRow)
                .where(EvaluationRow.triggered_id == event.triggeredid)
                .values(invalidated=True)
            )

    def _transition(self, entry: Transition) -> None:
        self._fold(entry.keptn_context, entry)
        self.session.add(
            TransitionRow(
                id=entry.id,
                agent=entry.agent,
                kind=entry.kind,
                time=_utc(entry.time),
                keptn_context=entry.keptn_context,
                project=entry.key.project,
                stage=entry.key.stage,
                service=entry.key.service,
                body=entry.to_json_dict(),
            )
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

