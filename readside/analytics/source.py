"""Reading analytics' input from the history store (the shell around the pure fold).

The history store is the audit topic made queryable: every Keptn event on `audit`, stored once
by id. Feeding analytics from it means a replay of `audit` (`tidegate history rebuild`) gives the
same store and so the same figures. Reads are plain SELECTs on the store's event table, in
storage order, streamed in batches; nothing here writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from tidegate.readside.analytics.core import Analytics
from tidegate.readside.history.models import EventRow
from tidegate.readside.history.store import HistoryStore
from tidegate.schemas.events import KeptnEvent

log = logging.getLogger(__name__)

BATCH = 1000


def stored_events(
    store: HistoryStore,
    project: str,
    *,
    types: Sequence[str] = (),
    stage: str | None = None,
    service: str | None = None,
    before: datetime | None = None,
) -> Iterator[KeptnEvent]:
    """The stored events of `project` (optionally only these types, this stage/service), oldest first."""
    query = select(EventRow.body).where(EventRow.project == project)
    if types:
        query = query.where(EventRow.type.in_(list(types)))
    if stage is not None:
        query = query.where(EventRow.stage == stage)
    if service is not None:
        query = query.where(EventRow.service == service)
    if before is not None:
        query = query.where(EventRow.time <= before)
    query = query.order_by(EventRow.time, EventRow.seq).execution_options(yield_per=BATCH)
    with store.engine.connect() as connection:
        for (body,) in connection.execute(query):
            event = _event(body)
            if event is not None:
                yield event


def _event(body: Any) -> KeptnEvent | None:
    try:
        return KeptnEvent.model_validate(body)
    except ValidationError as error:
        # The store only holds events that decoded once; one that no longer validates is skipped
        # (and said so) rather than failing every report.
        log.warning("analytics skips a stored event that no longer reads as a Keptn event: %s", error)
        return None


def analytics_from_store(store: HistoryStore, project: str) -> Analytics:
    """A fresh fold over every stored event of `project`."""
    analytics = Analytics()
    analytics.apply_all(stored_events(store, project))
    return analytics
