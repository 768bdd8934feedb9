"""Deterministic output ids: an event emitted while processing input X has id uuid5(NAMESPACE, X.id:purpose).

Reprocessing an input after a crash re-emits the same ids, and consumers drop ids they already
handled; that is how Tidegate gets effectively-once behaviour on at-least-once delivery. Pure: no I/O.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("7d3f6a52-1c1e-5b8e-9d6f-2a4c8e0b7f11")


def derived_id(input_id: str, purpose: str) -> str:
    """The id of the output that processing `input_id` emits for `purpose` (stable across replays)."""
    return str(uuid.uuid5(NAMESPACE, f"{input_id}:{purpose}"))


def context_from_text(text: str) -> str:
    """A keptnContext for a non-UUID string, derived deterministically (as Keptn's API does)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, f"context:{text}"))
