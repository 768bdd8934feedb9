"""Command line of the demo's deployment program (see the package docstring).

`run` prints what it did, then one `{"tidegate": {...}}` line that the command connector merges
into the task's `.finished` data (deployment URIs, the scaling done). Exit 0: done; 1: the task
cannot be done as asked (the message says why); 2: the processes could not be started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from examples.sockshop.deploy.plan import RequestError, request_from_event
from examples.sockshop.deploy.processes import DeployError, DeployHome, apply, down, is_alive

EVENT_FILE_ENV = "TIDEGATE_EVENT_FILE"


def _run(home: DeployHome, event_file: str | None) -> int:
    if not event_file:
        print(f"error: no event: the command connector sets {EVENT_FILE_ENV}; give --event FILE to run by hand",
              file=sys.stderr)
        return 1
    try:
        event = json.loads(Path(event_file).read_text())
        outcome = apply(home, request_from_event(event))
    except (OSError, ValueError) as error:
        # RequestError is a ValueError; so is a file that is not JSON.
        prefix = "" if isinstance(error, RequestError) else f"cannot read the event {event_file}: "
        print(f"error: {prefix}{error}", file=sys.stderr)
        return 1
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(outcome.message)
    if outcome.data:
        print(json.dumps({"tidegate": outcome.data}))
    return 0 if outcome.passed else 1


def _status(home: DeployHome) -> int:
    states = home.states() if (home.path / "stages").is_dir() else []
    if not states:
        print(f"nothing deployed under {home.path}")
    for state in states:
        alive = sum(1 for replica in state.running if is_alive(replica))
        live = f"{state.live.version} ({state.live.role.value}, {state.live.replicas} wanted)" if state.live else "nothing"
        print(f"{state.project}/{state.stage}/{state.service} on port {state.port}: {live}, {alive} running")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.sockshop.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="folder with environment.json and the stage files")
    parser.add_argument("command", choices=("run", "status", "down"))
    parser.add_argument("--event", help=f"the triggered event as JSON (default ${EVENT_FILE_ENV})")
    args = parser.parse_args(argv)
    home = DeployHome(args.home.resolve())
    if args.command == "run":
        return _run(home, args.event or os.environ.get(EVENT_FILE_ENV))
    if args.command == "status":
        return _status(home)
    for line in down(home):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
