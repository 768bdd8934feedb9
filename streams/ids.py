"""Deterministic output ids: an event emitted while processing input X has id uuid5(NAMESPACE, X.id:purpose).

Reprocessing an input after a crash re-emits the same ids, and consumers drop ids they already
handled; that is how Tidegate gets effectively-once behaviour on at-least-once delivery. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from hashlib import sha1

NAMESPACE = uuid.UUID("7d3f6a52-1c1e-5b8e-9d6f-2a4c8e0b7f11")
_NAMESPACE_BYTES = NAMESPACE.bytes


def derived_id(input_id: str, purpose: str) -> str:
    """The id of the output that processing `input_id` emits for `purpose` (stable across replays).

    Exactly `str(uuid.uuid5(NAMESPACE, f"{input_id}:{purpose}"))`, computed on the bytes: building a
    `uuid.UUID` cost more than the hash (the sequencer derives several ids per event)."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + f"{input_id}:{purpose}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def context_from_text(text: str) -> str:
    """A keptnContext for a non-UUID string, derived deterministically (as Keptn's API does)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, f"context:{text}"))
