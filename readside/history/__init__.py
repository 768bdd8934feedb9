"""The history store (read side): audit entries kept queryable for the gateway, the CLI and the Bridge.

    HistoryStore(url)                         SQLite (default, $TIDEGATE_HOME/history.db) or PostgreSQL
      .ingest(entries) -> fresh entries       idempotent on id
      .events / .events_matching / .open_triggered / .context_keys / .timeline
      .sequences / .sequence / .evaluations / .deployed_image
    AuditFollower(settings, store)            consumes <prefix>audit in group <prefix>history
    rebuild(settings, store)                  drop and replay audit from the beginning
    ChangeNotices                             which keptnContexts changed (feeds the event stream)
    SeenEvent, Transition, entry_of_record    the audit record shapes (only audit.py knows them)
    SequenceView, StageState, apply           the sequence-state projection (pure)
"""

from tidegate.readside.history.audit import (
    AuditEntry,
    AuditFormatError,
    SeenEvent,
    Transition,
    entry_of_event,
    entry_of_record,
)
from tidegate.readside.history.sequences import FINAL_OVERALL, SequenceView, StageState, apply
from tidegate.readside.history.store import (
    EventFilter,
    HistoryStore,
    Page,
    QueryError,
    SequenceFilter,
    default_url,
)

__all__ = [
    "FINAL_OVERALL",
    "AuditEntry",
    "AuditFormatError",
    "EventFilter",
    "HistoryStore",
    "Page",
    "QueryError",
    "SeenEvent",
    "SequenceFilter",
    "SequenceView",
    "StageState",
    "Transition",
    "apply",
    "default_url",
    "entry_of_event",
    "entry_of_record",
]
