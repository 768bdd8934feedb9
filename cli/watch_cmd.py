"""`tidegate watch KEPTNCONTEXT`: follow a sequence live until it is done; exit 0 if it passed.

Reads the gateway's event stream (server-sent events) and prints each event and state change as it
happens. "Done" means the sequence state is final (finished, aborted or timedOut) and nothing new
arrived for `--settle` seconds (a stage that finished may still trigger the next one). Exit codes:
0 passed (pass or warning), 1 failed (fail, errored, aborted or timed out), 2 not done within --timeout.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer

from tidegate.cli.client import CliError, Connection, run
from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.cli.output import OutputFormat, OutputOption

FINAL = frozenset({"finished", "aborted", "timedOut"})
EXIT_PASSED, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2
RECONNECTS = 5


@dataclass(frozen=True, slots=True)
class Message:
    kind: str  # event | transition | state | error
    data: Any
    id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, str, str | None]]:
    """Server-sent event messages from text lines (`event:`, `data:`, `id:`, blank line ends one)."""
    kind: str = "message"
    data: list[str] = []
    ident: str | None = None
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield kind, "\n".join(data), ident
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            ident = value


def _reader(connection: Connection, context: str, inbox: queue.Queue[Message], stop: threading.Event) -> None:
    last_id: str | None = None
    failures = 0
    url = f"{connection.endpoint}/api/v1/stream/{context}"
    while not stop.is_set():
        headers = {**connection.headers(), "accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10.0, read=60.0)) as response:
                if response.status_code >= 400:
                    response.read()
                    detail = response.json().get("message") if response.headers.get("content-type", "").startswith(
                        "application/json") else response.text
                    inbox.put(Message("error", f"{response.status_code}: {detail}", None))
                    return
                failures = 0
                for kind, data, ident in parse_sse(response.iter_lines()):
                    if stop.is_set():
                        return
                    last_id = ident or last_id
                    inbox.put(Message(kind, json.loads(data), ident))
        except (httpx.HTTPError, ValueError) as error:
            failures += 1
            if failures > RECONNECTS:
                inbox.put(Message("error", f"lost the stream from {connection.endpoint}: {error}"))
                return
            time.sleep(min(2.0 * failures, 10.0))


def _line(message: Message) -> str | None:
    data = message.data
    if message.kind == "event":
        body = data.get("data", {})
        outcome = "/".join(v for v in (body.get("result"), body.get("status")) if v)
        short = str(data.get("type", "")).removeprefix("sh.keptn.event.")
        stamp = str(data.get("time", ""))[11:19]
        return f"{stamp}  {body.get('stage', '-'):<12} {short:<40} {outcome}".rstrip()
    if message.kind == "state":
        stages = ", ".join(f"{s['name']} {s['state']}" for s in data.get("stages", []))
        return f"          state: {data.get('state')}  ({stages})"
    return None


def follow(connection: Connection, context: str, *, timeout: float, settle: float,
           output: OutputFormat) -> tuple[int, dict[str, Any] | None]:
    inbox: queue.Queue[Message] = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(connection, context, inbox, stop), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    state: dict[str, Any] | None = None
    quiet_since: float | None = None
    shown: set[str] = set()  # after a reconnect the stream may repeat entries: show each once
    try:
        while True:
            now = time.monotonic()
            if state is not None and state.get("state") in FINAL and quiet_since is not None \
                    and now - quiet_since >= settle:
                return _verdict(state), state
            if now >= deadline:
                return EXIT_TIMEOUT, state
            try:
                message = inbox.get(timeout=min(0.5, max(0.05, deadline - now)))
            except queue.Empty:
                continue
            if message.kind == "error":
                raise CliError(str(message.data))
            quiet_since = time.monotonic()
            entry_id = message.data.get("id") if message.kind in ("event", "transition") else None
            if isinstance(entry_id, str):
                if entry_id in shown:
                    continue
                shown.add(entry_id)
            if message.kind == "state":
                state = message.data
            if output is OutputFormat.TABLE:
                line = _line(message)
                if line:
                    typer.echo(line)
    finally:
        stop.set()


def _verdict(state: dict[str, Any]) -> int:
    if state.get("state") == "finished" and state.get("result") in (None, "pass", "warning"):
        return EXIT_PASSED
    return EXIT_FAILED


def watch(
    keptn_context: Annotated[str, typer.Argument(help="the keptnContext a trigger printed")],
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="give up after this many seconds (exit 2)")] = 1800,
    settle: Annotated[float, typer.Option("--settle", min=0, help="seconds of quiet after a final state before "
                                                                  "the sequence counts as done")] = 3.0,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Follow a sequence live until it is done; exit 0 passed, 1 failed, 2 still running at --timeout."""

    def body() -> None:
        from tidegate.gateway.rules import keptn_context_for

        context = keptn_context_for(keptn_context)
        code, state = follow(Connection.resolve(endpoint, api_token), context, timeout=timeout, settle=settle,
                             output=output)
        if output is OutputFormat.JSON:
            typer.echo(json.dumps(state or {}, indent=2))
        elif code == EXIT_TIMEOUT:
            typer.echo(f"still {state.get('state') if state else 'unknown'} after {timeout:.0f} s", err=True)
        else:
            verdict = "passed" if code == EXIT_PASSED else "failed"
            typer.echo(f"{verdict}: {state.get('name') if state else ''} {state.get('state') if state else ''} "
                       f"result {state.get('result') if state else '-'}")
        raise typer.Exit(code)

    run(body)
