"""CLI start-up: `tidegate --help`, `tidegate lint` and `tidegate evaluate` next to a bare import.

    python -m benchmarks.bench_cli [--rounds 7]

The baseline is `python -c "import typer, pydantic, yaml"`: the libraries every command needs anyway.
Each round runs the baseline and the three commands once, in turn (interleaved, so a busy machine
slows all of them alike); the medians over the rounds and each command's ratio to the baseline are
printed, for the wall-clock time and for the CPU time (user + system) of the process: on a busy
machine the wall clock also counts waiting for a core, the CPU time only the work the start-up does.
The goal is a ratio of at most 2 for each command. `lint` checks `examples/sockshop`;
`evaluate` scores that project's SLO against fixed values written to a temporary file.

The row `typer floor` (no target) is a one-function typer program taking a list of paths, as `lint`
does: typer (0.2x) parses every parameter through a pydantic TypeAdapter, so any command with a
parameter loads pydantic's model machinery, which the bare `import pydantic` (a lazy facade) does not.
The distance from that row to a command's is what Tidegate itself adds.

Byte-code: an installed Tidegate starts from compiled byte-code, as typer, pydantic and yaml do from
their wheels. With PYTHONDONTWRITEBYTECODE set (as in some shells), an editable install would
compile every Tidegate module from source on each run (about 0.25x of the bare import for lint), so
the runs here get a byte-code cache of their own (PYTHONPYCACHEPREFIX in the temporary directory,
written by the untimed first run). `--no-bytecode-cache` measures with the caller's settings instead.

`--instructions` also runs each command once under valgrind (`--tool=cachegrind --cache-sim=no`) and
prints the instructions each executes and their ratio: a count that repeats to about 0.1% whatever
else the machine does, where times vary with the load. It does not count the kernel's work (reading
files, mapping memory), which the CPU time does, so the two ratios differ a little.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sockshop"
TARGET_RATIO = 2.0

SLI_VALUES = [
    {"metric": "response_time_p95", "value": 0.31, "success": True},
    {"metric": "error_rate", "value": 0.002, "success": True},
    {"metric": "throughput", "value": 212.0, "success": True},
    {"metric": "response_time_p50", "value": 0.12, "success": True},
]


def tidegate_command() -> list[str]:
    """The installed `tidegate` entry point beside this interpreter (what a user runs)."""
    script = Path(sys.executable).parent / "tidegate"
    if script.exists():
        return [str(script)]
    found = shutil.which("tidegate")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from tidegate.cli.main import main; sys.exit(main())"]


# A typer command with one list-of-paths argument that does nothing: what typer alone costs a command.
TYPER_FLOOR = """
from pathlib import Path
import typer, yaml
def floor(paths: list[Path]) -> None:
    pass
typer.run(floor)
"""


def commands(workdir: Path) -> dict[str, list[str]]:
    sli = workdir / "values.json"
    sli.write_text(json.dumps(SLI_VALUES))
    tidegate = tidegate_command()
    return {
        "bare import": [sys.executable, "-c", "import typer, pydantic, yaml"],
        "typer floor": [sys.executable, "-c", TYPER_FLOOR, str(EXAMPLE)],
        "tidegate --help": [*tidegate, "--help"],
        "tidegate lint": [*tidegate, "lint", str(EXAMPLE)],
        "tidegate evaluate": [*tidegate, "evaluate", "--slo", str(EXAMPLE / "slo.yaml"), "--sli", str(sli)],
    }


def run_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one run of `argv` (the only child running)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
                               env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 1):  # evaluate exits 1 for a failed gate: still a full run
        raise SystemExit(f"{' '.join(argv)} exited {completed.returncode}: {completed.stderr.strip()}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def instructions(argv: list[str], env: dict[str, str] | None) -> int:
    """Instructions one run of `argv` executes, counted by valgrind's cachegrind (user space only)."""
    completed = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *argv],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False, env=env,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", completed.stderr)
    if found is None:
        raise SystemExit(f"valgrind did not report a count for {' '.join(argv)}: {completed.stderr.strip()[-400:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="runs of each command, interleaved")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the caller's byte-code settings (PYTHONDONTWRITEBYTECODE compiles every run)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's instructions once under valgrind (cachegrind)")
    options = parser.parse_args()
    if options.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on PATH (e.g. apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        argvs = commands(Path(tmp))
        env = None
        if not options.no_bytecode_cache:
            env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        for argv in argvs.values():  # warm the file cache and byte-code once, untimed
            run_once(argv, env)
        wall: dict[str, list[float]] = {name: [] for name in argvs}
        cpu: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(options.rounds):
            for name, argv in argvs.items():
                elapsed, used = run_once(argv, env)
                wall[name].append(elapsed)
                cpu[name].append(used)
        counted = {name: instructions(argv, env) for name, argv in argvs.items()} if options.instructions else {}
    cache = "the caller's byte-code settings" if options.no_bytecode_cache else "a byte-code cache (as installed)"
    print(f"rounds: {options.rounds}; {cache}; target: each command within {TARGET_RATIO:g}x the bare import")
    print(f"{'command':<20} {'wall ms':>8} {'ratio':>6} {'cpu ms':>8} {'ratio':>6}")
    base_wall, base_cpu = statistics.median(wall["bare import"]), statistics.median(cpu["bare import"])
    for name in argvs:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        over = name.startswith("tidegate") and min(w / base_wall, c / base_cpu) > TARGET_RATIO
        print(f"{name:<20} {w * 1000:>8.0f} {w / base_wall:>6.2f} {c * 1000:>8.0f} {c / base_cpu:>6.2f}"
              + ("  over target" if over else ""))
    if counted:
        print(f"\n{'command':<20} {'instructions':>14} {'ratio':>6}   (valgrind cachegrind, one run each)")
        for name, count in counted.items():
            print(f"{name:<20} {count:>14,} {count / counted['bare import']:>6.3f}")


if __name__ == "__main__":
    main()
