"""What the remediator calls its sequence and task; Tidegate's own remediation events are in
`tidegate.schemas.tidegate_events`.
"""

from __future__ import annotations

from tidegate.schemas.tidegate_events import (
    QUOTA_DENIED_TYPE,
    QUOTA_GRANTED_TYPE,
    QUOTA_REQUESTED_TYPE,
    REMEDIATION_TICK_TYPE,
)

REMEDIATION_SEQUENCE = "remediation"
GET_ACTION = "get-action"

#: Every event type the remediator consumes from `events` (besides problems and remediation.finished).
OWN_TYPES = frozenset({QUOTA_REQUESTED_TYPE, QUOTA_GRANTED_TYPE, QUOTA_DENIED_TYPE, REMEDIATION_TICK_TYPE})
