"""Entry point of the `tidegate` command: each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tidegate",
    help="Tidegate: a Kafka-native control plane for continuous delivery and automated operations.",
    no_args_is_help=True,
    add_completion=False,
)


def _register() -> None:
    # Each module adds its commands to `app`; importing it is enough.
    from tidegate.cli import commands  # noqa: F401


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
