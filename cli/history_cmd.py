"""`tidegate history rebuild|follow`: rebuild the history store from audit, or keep it fed without a gateway."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from tidegate.readside.history.store import HistoryStore

history_app = typer.Typer(help="The history store (read side): rebuild it from audit, or follow audit.",
                          no_args_is_help=True)

UrlOption = Annotated[str | None, typer.Option("--url", help="database URL (default $TIDEGATE_HISTORY_URL or "
                                                             "SQLite in $TIDEGATE_HOME)")]


def _store(url: str | None) -> HistoryStore:
    return HistoryStore(url or os.environ.get("TIDEGATE_HISTORY_URL") or None)


@history_app.command("rebuild")
def rebuild(url: UrlOption = None,
            timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for the audit topic")] = 60) -> None:
    """Drop the history's tables and replay the audit topic from its beginning (safe at any time)."""
    from tidegate.readside.history.consumer import rebuild as replay
    from tidegate.streams.settings import Settings

    store = _store(url)
    try:
        stored = asyncio.run(replay(Settings(), store, timeout=timeout))
    except LookupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(f"history rebuilt from audit: {stored} entries")


@history_app.command("follow")
def follow(url: UrlOption = None) -> None:
    """Consume the audit topic into the history store until interrupted (when no gateway does it)."""
    from tidegate.readside.history.consumer import AuditFollower
    from tidegate.streams.settings import Settings

    store = _store(url)

    async def main() -> None:
        follower = AuditFollower(Settings(), store)
        await follower.start()
        try:
            while follower.running:
                await asyncio.sleep(1)
            if follower.error is not None:
                raise follower.error
        finally:
            await follower.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
