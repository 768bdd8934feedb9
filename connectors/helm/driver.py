"""The helm CLI behind one small interface, so tests can swap it (like an httpx transport).

`HelmDriver` is what the connector needs; `HelmCli` runs the real `helm` with argument lists through
the runtime's cancellation-aware `run_program`, with KUBECONFIG from the settings. A failed command
raises `HelmError` whose message is Helm's own stderr (what a person needs to fix it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tidegate.connectors.runtime.program import ProgramResult
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.yamlreader import MAX_FILE_BYTES

ProgramRunner = Callable[..., Awaitable[ProgramResult]]


class HelmError(TidegateError, RuntimeError):
    """A helm command failed; the message is what helm said."""


class HelmDriver(Protocol):
    async def template(self, release: str, chart: Path, namespace: str, values: Sequence[Path]) -> str: ...

    async def upgrade(self, release: str, chart: Path, namespace: str, values: Sequence[Path] = (), *,
                      set_values: Mapping[str, str] | None = None, reuse_values: bool = False) -> None: ...

    async def get_values(self, release: str, namespace: str) -> dict[str, Any]: ...

    async def rollback(self, release: str, namespace: str) -> None: ...


class HelmCli:
    def __init__(self, run: ProgramRunner, binary: str | Path, *, kubeconfig: str | None = None, wait: bool = True,
                 create_namespace: bool = True, openapi_validation: bool = True, helm_timeout: str = "5m") -> None:
        self._run = run
        self.binary = str(binary)
        self.kubeconfig = kubeconfig
        self.wait = wait
        self.create_namespace = create_namespace
        self.openapi_validation = openapi_validation
        self.helm_timeout = helm_timeout

    async def _helm(self, *args: str, output_limit: int | None = None) -> str:
        env = {"KUBECONFIG": self.kubeconfig} if self.kubeconfig else {}
        limits = {"output_limit": output_limit} if output_limit is not None else {}
        result = await self._run([self.binary, *args], env=env, **limits)
        if result.timed_out:
            raise HelmError(f"helm {args[0]} did not finish in time and was stopped")
        if result.exit_code != 0:
            said = "\n".join(line for line in result.stderr.strip().splitlines() if not line.startswith("WARNING:"))
            raise HelmError(f"helm {' '.join(args[:2])} failed: {said or result.stdout.strip()[-1500:]}")
        return result.stdout

    async def template(self, release: str, chart: Path, namespace: str, values: Sequence[Path]) -> str:
        args = ["template", release, str(chart), "--namespace", namespace]
        for path in values:
            args += ["--values", str(path)]
        # The manifest is data: kept whole up to twice what the YAML reader takes, so a larger one is
        # refused by the reader ("larger than ... bytes") instead of read with its middle cut out.
        return await self._helm(*args, output_limit=2 * (MAX_FILE_BYTES + 1))

    async def upgrade(self, release: str, chart: Path, namespace: str, values: Sequence[Path] = (), *,
                      set_values: Mapping[str, str] | None = None, reuse_values: bool = False) -> None:
        args = ["upgrade", release, str(chart), "--install", "--namespace", namespace, "--timeout", self.helm_timeout]
        if self.create_namespace:
            args.append("--create-namespace")
        if self.wait:
            args.append("--wait")
        if not self.openapi_validation:
            args.append("--disable-openapi-validation")
        if reuse_values:
            args.append("--reuse-values")
        for path in values:
            args += ["--values", str(path)]
        for key, value in (set_values or {}).items():
            args += ["--set-string" if not value.lstrip("-").isdigit() else "--set", f"{key}={value}"]
        await self._helm(*args)

    async def get_values(self, release: str, namespace: str) -> dict[str, Any]:
        out = await self._helm("get", "values", release, "--namespace", namespace, "--all", "--output", "json")
        parsed = json.loads(out or "{}")
        return parsed if isinstance(parsed, dict) else {}

    async def rollback(self, release: str, namespace: str) -> None:
        args = ["rollback", release, "--namespace", namespace, "--timeout", self.helm_timeout]
        if self.wait:
            args.append("--wait")
        await self._helm(*args)
