"""Which image a service runs in a stage, from the events that changed it. Pure: no I/O.

Keptn's rule: the image of the last successful `deployment.finished` (the image its
`deployment.triggered` asked for, `configurationChange.values.image`). A delivery stopped before
its deployment (a declined approval) changes nothing, even when a rollback runs after it; one
stopped after it (a failed quality gate) is undone by the successful `rollback.finished` of the
same keptnContext, which returns the stage to the image deployed before. The latest sequence's
image is not the deployed image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

DEPLOYMENT_FINISHED = "sh.keptn.event.deployment.finished"
ROLLBACK_FINISHED = "sh.keptn.event.rollback.finished"
CHANGES = (DEPLOYMENT_FINISHED, ROLLBACK_FINISHED)


def image_of(data: dict[str, Any]) -> str | None:
    change = data.get("configurationChange")
    values = change.get("values") if isinstance(change, dict) else None
    image = values.get("image") if isinstance(values, dict) else None
    return image if isinstance(image, str) and image else None


def succeeded(data: dict[str, Any]) -> bool:
    return data.get("result") in ("pass", "warning") and data.get("status", "succeeded") == "succeeded"


def deployed_image(
    changes: Iterable[dict[str, Any]], triggered_data: Callable[[str], dict[str, Any] | None]
) -> str | None:
    """`changes`: the stage's `deployment.finished` and `rollback.finished` events, oldest first;
    `triggered_data(id)`: the data of the `.triggered` event with that id (None if unknown)."""
    deployed: list[tuple[str, str]] = []  # (keptnContext, image), oldest first
    for event in changes:
        data = event.get("data") or {}
        if not isinstance(data, dict) or not succeeded(data):
            continue
        context = str(event.get("shkeptncontext") or "")
        if event.get("type") == ROLLBACK_FINISHED:
            # A rollback undoes what its own delivery deployed here, and nothing else.
            deployed = [entry for entry in deployed if entry[0] != context]
            continue
        triggered = triggered_data(str(event.get("triggeredid") or "")) or {}
        image = image_of(triggered) or image_of(data)
        if image:
            deployed.append((context, image))
    return deployed[-1][1] if deployed else None
