"""Merges repeated slashes in request paths, as Keptn's nginx gateway did (`merge_slashes on`).

Keptn's CLI posts project-level files to `.../project/P//resource` (an empty stage segment); nginx
turned that into `.../project/P/resource` before the resource-service saw it. Only the path is
changed; the query string is left as sent.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_REPEATED = re.compile(r"/{2,}")


def merge_slashes(path: str) -> str:
    return _REPEATED.sub("/", path)


class MergeSlashes:
    """ASGI middleware: `//` (or more) in the path becomes `/`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope.get("path", ""):
            path = merge_slashes(scope["path"])
            scope = {**scope, "path": path, "raw_path": path.encode("utf-8")}
        await self.app(scope, receive, send)
