"""The `tidegate` commands the story runs, shown as a user would type them and run in this process.

Starting a fresh `tidegate` process per command costs seconds of imports each; the commands run
in-process through Click's runner instead: the same code, arguments and environment as the real
command line, with their output captured for the narration.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from typer.testing import CliRunner


class CommandFailed(RuntimeError):
    """A `tidegate` command the story needs did not succeed; the message holds its output."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    output: str

    @property
    def line(self) -> str:
        return "$ tidegate " + shlex.join(self.argv)


class Tidegate:
    """Runs `tidegate ARGS...` with the demo's environment (gateway endpoint, Kafka, topic prefix)."""

    def __init__(self, env: Mapping[str, str | None]) -> None:
        from tidegate.cli.main import app

        self._app = app
        self._env = dict(env)
        self._runner = CliRunner()

    def run(self, argv: Sequence[str], *, check: bool = True) -> CommandResult:
        outcome = self._runner.invoke(self._app, list(argv), env=self._env, prog_name="tidegate")
        output = outcome.output
        if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
            output += f"\n{type(outcome.exception).__name__}: {outcome.exception}"
        result = CommandResult(tuple(argv), outcome.exit_code, output.strip())
        if check and result.exit_code != 0:
            raise CommandFailed(f"{result.line} failed with exit code {result.exit_code}:\n{result.output}")
        return result
