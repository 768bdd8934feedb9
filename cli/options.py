"""Options shared by the commands that talk to the gateway (`--endpoint`, `--api-token`).

Kept apart from cli/client.py so that a command can declare them without importing the HTTP client
and the gateway's event rules (`tidegate evaluate` takes them only for `--replay`).
"""

from __future__ import annotations

from typing import Annotated

import typer

EndpointOption = Annotated[
    str | None, typer.Option("--endpoint", help="gateway URL (default $TIDEGATE_ENDPOINT or the `tidegate auth` config)")
]
TokenOption = Annotated[
    str | None,
    typer.Option("--api-token", help="API token (default $TIDEGATE_API_TOKEN or the `tidegate auth` config)",
                 show_default=False),
]
