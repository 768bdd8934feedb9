"""Entry point of the `tidegate` command: one table names every command and where it is implemented.

`COMMANDS` below is the whole command line at a glance: each top-level command, the
`module:attribute` that implements it (a typer-decorated function, or a `typer.Typer` for a command
group such as `get` or `topics`), and the one-line help `tidegate --help` lists. A command's module
is imported only when that command is used, so `tidegate lint` never pays for FastAPI, SQLAlchemy or
the Kafka clients, and `tidegate --help` imports none of the command modules at all.

The mechanism is Click's documented extension point for lazily loaded subcommands: a group class
(`typer.Typer(cls=...)`) whose `list_commands` answers from the table and whose `get_command` imports
the module and builds the Click command with `typer.main.get_command`. Adding a command is one line
in `COMMANDS`; `tests/unit/test_cli_registry.py` checks that each line resolves and that its help
matches the command's own.

Only typer is imported here, not `click`: typer (0.2x) runs on its own copy of Click, so the `click`
package would be a second, unused copy to load, and its classes (`click.UsageError`, `click.Command`)
are not the ones typer's contexts raise and expect.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup


class Entry(NamedTuple):
    """Where a top-level command lives: `module:attribute`, and the summary `tidegate --help` shows.
    (A NamedTuple: immutable like a frozen dataclass, and created without compiling generated
    methods, which a frozen dataclass costs at every start on Python 3.11.)"""

    target: str
    help: str


# In the order `tidegate --help` lists them (single commands first, then groups, as typer orders them).
COMMANDS: dict[str, Entry] = {
    "approve": Entry("tidegate.cli.approval_cmd:approve",
                     "Approve an open approval (approval.finished with result pass)."),
    "decline": Entry("tidegate.cli.approval_cmd:decline",
                     "Decline an open approval (approval.finished with result fail: the sequence stops)."),
    "auth": Entry("tidegate.cli.auth_cmd:auth",
                  "Check the token against the gateway, then store endpoint and token in "
                  "~/.config/tidegate/config.yaml."),
    "connector": Entry("tidegate.cli.connector:connector",
                       "Run task connectors until interrupted (SIGINT/SIGTERM stop them cleanly)."),
    "evaluate": Entry("tidegate.cli.evaluate:evaluate_command",
                      "Score SLI values against an SLO as Keptn's lighthouse did; exit 0 pass/warning, 1 fail, "
                      "2 unusable input."),
    "gateway": Entry("tidegate.cli.gateway_cmd:gateway",
                     "Serve Keptn's API on Kafka; clients send the token (TIDEGATE_API_TOKEN) as the x-token header."),
    "lint": Entry("tidegate.cli.lint:lint_command",
                  "Check shipyard, SLO, SLI, remediation, load-test, job and webhook files; exit 1 if any is "
                  "unusable."),
    "alertmanager-bridge": Entry("tidegate.cli.monitoring:alertmanager_bridge",
                                 "Serve Alertmanager's webhook on 127.0.0.1: firing alerts start remediations, "
                                 "resolved ones close them."),
    "add-resource": Entry("tidegate.cli.resource_cmd:add_resource",
                          "Upload a file (SLO, SLI, remediation, chart, test script, ...); each upload is a new "
                          "version."),
    "simulate": Entry("tidegate.cli.simulate:simulate_command",
                      "Run a shipyard's sequences in memory with played connectors and virtual time; print every "
                      "event."),
    "watch": Entry("tidegate.cli.watch_cmd:watch",
                   "Follow a sequence live until it is done; exit 0 passed, 1 failed, 2 still running at --timeout."),
    "worker": Entry("tidegate.cli.worker:worker",
                    "Run Tidegate's agents on Kafka until stopped (Ctrl-C or SIGTERM)."),
    "get": Entry("tidegate.cli.get_cmd:get_app",
                 "Show projects, stages, services, sequences, evaluations, approvals and events."),
    "pause": Entry("tidegate.cli.control_cmd:pause_app",
                   "Pause a sequence: the running task finishes, the next one waits."),
    "resume": Entry("tidegate.cli.control_cmd:resume_app", "Resume a paused sequence."),
    "abort": Entry("tidegate.cli.control_cmd:abort_app",
                   "Abort a sequence: it finishes as aborted, no follow-up sequences start."),
    "create": Entry("tidegate.cli.create_cmd:create_app", "Create projects and services."),
    "history": Entry("tidegate.cli.history_cmd:history_app",
                     "The history store (read side): rebuild it from audit, or follow audit."),
    "configure": Entry("tidegate.cli.monitoring:configure_app", "Configure integrations for a project."),
    "schemas": Entry("tidegate.cli.schemas:schemas_app",
                     "JSON Schemas of shipyard, SLO, SLI, remediation and the other Keptn files."),
    "send": Entry("tidegate.cli.send_cmd:send_app", "Send events."),
    "topics": Entry("tidegate.cli.topics:topics_app", "Create and list Tidegate's Kafka topics."),
    "trigger": Entry("tidegate.cli.trigger_cmd:trigger_app",
                     "Trigger sequences: delivery, evaluation, or any sequence of the shipyard."),
}


def load_command(name: str, entry: Entry) -> TyperCommand | TyperGroup:
    """Import the module of one table entry and build its Click command (a group for a `typer.Typer`)."""
    module_name, _, attribute = entry.target.partition(":")
    implementation = getattr(importlib.import_module(module_name), attribute)
    # A one-off app holding just this command, built the way typer builds any app (typer.main.get_command).
    holder = typer.Typer()
    if isinstance(implementation, typer.Typer):
        holder.add_typer(implementation, name=name)
        built = typer.main.get_command(holder)
        assert isinstance(built, TyperGroup)
        command = built.commands[name]
    else:
        holder.command(name)(implementation)
        command = typer.main.get_command(holder)  # one command: typer returns the command itself
    assert isinstance(command, TyperCommand | TyperGroup)
    return command


class LazyGroup(TyperGroup):
    """The top-level group: commands are named by `COMMANDS` and imported on first use.

    `get_command` keeps Click's contract (it returns the real command, importing its module). Only
    while the group writes its own help does it answer with a summary from the table for a command
    not loaded yet, so that `tidegate --help` lists every command without importing any.
    """

    table: dict[str, Entry] = COMMANDS

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.table)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        loaded = self.commands.get(cmd_name)
        if loaded is not None or cmd_name not in self.table:
            return loaded  # type: ignore[return-value]  # only load_command fills `commands`
        entry = self.table[cmd_name]
        if self._listing:
            return TyperCommand(cmd_name, help=entry.help)
        command = self.commands[cmd_name] = load_command(cmd_name, entry)
        return command

    def resolve_command(
        self, ctx: typer.Context, args: list[str]
    ) -> tuple[str | None, TyperCommand | TyperGroup | None, list[str]]:
        # typer suggests close names from the loaded commands only; suggest from the whole table. The
        # error is raised through the context (`ctx.fail`), so it is the UsageError of the Click that
        # context belongs to, worded as typer words it.
        typo = args[0] if args else ""
        if self.suggest_commands and typo[:1].isalnum() and not ctx.resilient_parsing and not self._known(ctx, typo):
            matches = typer_close_matches(typo, list(self.table))
            if matches:
                ctx.fail(f"No such command {typo!r}. Did you mean {matches}?")
        return super().resolve_command(ctx, args)  # type: ignore[return-value]

    def _known(self, ctx: typer.Context, name: str) -> bool:
        names = {name, ctx.token_normalize_func(name) if ctx.token_normalize_func else name}
        return any(candidate in self.table or candidate in self.commands for candidate in names)

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # typer's copy of click.HelpFormatter
        with self._summaries():
            super().format_help(ctx, formatter)

    @contextmanager
    def _summaries(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False


def typer_close_matches(typo: str, names: list[str]) -> str:
    """Close command names, quoted and comma-separated, as typer words its suggestions."""
    from difflib import get_close_matches

    return ", ".join(f"{match!r}" for match in get_close_matches(typo, names))


app = typer.Typer(
    name="tidegate",
    help="Tidegate: a Kafka-native control plane for continuous delivery and automated operations.",
    no_args_is_help=True,
    add_completion=False,
    cls=LazyGroup,
)


@app.callback()
def _root() -> None:
    # The commands come from COMMANDS through LazyGroup; an app with no registered command needs a
    # callback for typer to build it as a group.
    pass


def main() -> None:
    try:
        app()
    finally:
        # The command is done (typer ends it with SystemExit). At exit the interpreter would walk every
        # object the imports made (modules, classes, functions, pydantic schemas) in a last cyclic
        # collection and free them one by one: ~50M of the ~920M instructions of `tidegate lint`, and
        # more of its CPU time (freeing touches the whole heap). Frozen, they are left to the
        # operating system. The command itself runs with the collector as usual; atexit handlers,
        # logging's shutdown and the flush of stdout/stderr still run at exit (test_cli_registry);
        # what no longer runs is finalizers of objects in reference cycles still alive at exit, which
        # Python never promised.
        gc.freeze()


if __name__ == "__main__":
    main()
