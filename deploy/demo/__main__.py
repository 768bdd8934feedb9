"""Command line of the demo (see the package docstring).

Interactive (the default): pauses between acts when the terminal is interactive, and leaves
everything running at the end for exploring the Bridge; `python -m deploy.demo down` (`make
demo-down`) stops it. `--non-interactive` plays straight through and stops everything at the end
unless `--keep-running`. Exit code 0 when the story went as told, 1 when it did not (the message says
where, and the logs are kept in the demo's folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.demo.cli import CommandFailed
from deploy.demo.config import REPO_ROOT, DemoConfig, Ports
from deploy.demo.facts import summary_lines
from deploy.demo.feed import FeedError
from deploy.demo.narrate import Line, Narrator
from deploy.demo.stack import Stack, StackError
from deploy.demo.story import Demo, StoryError
from deploy.demo.supervisor import ProcessFailed
from examples.sockshop.deploy import DeployError


def _config(args: argparse.Namespace) -> DemoConfig:
    overrides: dict[str, object] = {"interactive": not args.non_interactive, "keep_running": args.keep_running}
    if args.home:
        overrides["home"] = args.home.resolve()
    if args.kafka:
        overrides["kafka"] = args.kafka
    if args.prefix:
        overrides["prefix"] = args.prefix
    if args.free_ports:
        overrides["ports"] = Ports.free()
    if args.summary_json:
        overrides["summary_json"] = args.summary_json.resolve()
    if args.step_timeout:
        overrides["step_timeout"] = args.step_timeout
    return DemoConfig.default(**overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.demo", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("play", "down"), default="play")
    parser.add_argument("--non-interactive", action="store_true", help="no pauses; stop everything at the end")
    parser.add_argument("--keep-running", action="store_true", help="with --non-interactive: leave it all running")
    parser.add_argument("--home", type=Path, help="the demo's folder (default $TIDEGATE_HOME/demo)")
    parser.add_argument("--kafka", help="use this Kafka (bootstrap servers) instead of the local broker")
    parser.add_argument("--prefix", help="topic prefix (default tidegate-demo.)")
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of the fixed ones")
    parser.add_argument("--summary-json", type=Path, help="also write the story's outcome to this JSON file")
    parser.add_argument("--step-timeout", type=float, help="seconds one step may take (default 240)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The story names the example's files relative to the repository, as a user in it would.
    os.chdir(REPO_ROOT)
    config = _config(args)
    stack = Stack(config)
    narrator = Narrator()
    if args.command == "down":
        for line in stack.down() or ["nothing of the demo was running"]:
            print(line)
        return 0
    try:
        narrator.act("Setting up", "Everything runs on this machine, on 127.0.0.1, started by this demo.")
        stack.up(lambda text: narrator.say(Line(f"  {text}", "dim")))
        story = Demo(config, narrator, stack).play()
    except (StackError, StoryError, FeedError, ProcessFailed, CommandFailed, DeployError) as error:
        narrator.say(Line(f"error: {error}", "bad"))
        _finish(stack, narrator, keep=config.keep_running)
        return 1
    except KeyboardInterrupt:
        narrator.say(Line("interrupted", "warn"))
        _finish(stack, narrator, keep=config.keep_running)
        return 130
    narrator.act("Summary")
    narrator.say(summary_lines(story))
    if config.summary_json is not None:
        config.summary_json.write_text(json.dumps(story.to_json(), indent=2))
    if config.interactive or config.keep_running:
        narrator.say("")
        narrator.say(Line(f"Explore in the Bridge: {config.bridge_ui_url}", "head"))
        narrator.say(Line(f"or with the CLI: TIDEGATE_ENDPOINT={config.gateway_url} tidegate get sequences "
                          f"--project {config.project}", "dim"))
        narrator.say(Line("Stop everything with `make demo-down` (python -m deploy.demo down).", "dim"))
        return 0
    _finish(stack, narrator, keep=False)
    return 0


def _finish(stack: Stack, narrator: Narrator, *, keep: bool) -> None:
    if keep:
        narrator.say(Line(f"left running; logs in {stack.config.logs}; stop with python -m deploy.demo down", "dim"))
        return
    for line in stack.down():
        narrator.say(Line(f"  {line}", "dim"))
    narrator.say(Line(f"logs are kept in {stack.config.logs}", "dim"))


if __name__ == "__main__":
    sys.exit(main())
