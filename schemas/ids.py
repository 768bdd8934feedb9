"""Deterministic output ids: an event emitted while processing input X has id uuid5(NAMESPACE, X.id:purpose).

Reprocessing an input after a crash re-emits the same ids, and consumers drop ids they already
handled; that is how Tidegate gets effectively-once behaviour on at-least-once delivery. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from hashlib import sha1

NAMESPACE = uuid.UUID("7d3f6a52-1c1e-5b8e-9d6f-2a4c8e0b7f11")
# Every id hashes the namespace first: hashing it once and copying the hash state is cheaper.
_NAMESPACE_HASH = sha1(NAMESPACE.bytes)
# The RFC 4122 variant keeps the two low bits of hex digit 16 and sets the top ones to 10.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}


def derived_id(input_id: str, purpose: str) -> str:
    """The id of the output that processing `input_id` emits for `purpose` (stable across replays).

    Exactly `str(uuid.uuid5(NAMESPACE, f"{input_id}:{purpose}"))`, computed on the hex digest (the
    sequencer derives several ids per event; building a `uuid.UUID` cost more than the hash)."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(f"{input_id}:{purpose}".encode())
    text = digest.hexdigest()
    # Hex digit 12 is the version (5); digit 16 carries the variant.
    return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT_DIGIT[text[16]]}{text[17:20]}-{text[20:32]}"


def context_from_text(text: str) -> str:
    """A keptnContext for a non-UUID string, derived deterministically (as Keptn's API does)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, f"context:{text}"))
