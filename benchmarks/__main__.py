"""Run every benchmark in turn: `python -m benchmarks [NAME ...]`.

Each `benchmarks/bench_<name>.py` module exposes `main()`, which parses its own command line; here each
runs with its defaults (`python -m benchmarks.bench_<name> --help` shows its options). Naming some
benchmarks (`python -m benchmarks sequencer`) runs only those. A benchmark that fails is reported and
the others still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

PREFIX = "bench_"


def discover() -> list[str]:
    """The benchmark names, in alphabetical order (`bench_engine.py` -> `engine`)."""
    here = str(Path(__file__).resolve().parent)
    return sorted(info.name.removeprefix(PREFIX) for info in pkgutil.iter_modules([here])
                  if info.name.startswith(PREFIX))


def run(name: str) -> bool:
    module = importlib.import_module(f"{__package__ or 'benchmarks'}.{PREFIX}{name}")
    print(f"== {name} " + "=" * max(0, 70 - len(name)), flush=True)
    started = time.monotonic()
    saved = sys.argv
    sys.argv = [f"benchmarks.{PREFIX}{name}"]  # each main() parses argv: give it its defaults
    try:
        module.main()
    except (Exception, SystemExit) as error:
        if isinstance(error, SystemExit) and error.code in (None, 0):
            return True
        if isinstance(error, SystemExit):
            print(error.code, file=sys.stderr)
        else:
            traceback.print_exc()
        print(f"!! benchmark {name} failed", file=sys.stderr)
        return False
    finally:
        sys.argv = saved
        print(f"({name}: {time.monotonic() - started:.0f} s)\n", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    known = discover()
    chosen = list(argv if argv is not None else sys.argv[1:]) or known
    unknown = [name for name in chosen if name not in known]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    results = {name: run(name) for name in chosen}
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
