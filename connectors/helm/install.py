"""Find the `helm` binary, or install Helm 3 from its Go module when it is missing.

    ensure_helm() -> Path     $TIDEGATE_HELM_BINARY, else `helm` on PATH, else $TIDEGATE_HOME/bin/helm,
                              else `go install helm.sh/helm/v3/cmd/helm@<HELM_VERSION>` into $TIDEGATE_HOME/bin

Installing needs Go and the Go module proxy (a few minutes and ~100 MB on first run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tidegate.schemas.errors import TidegateError

HELM_VERSION = "v3.16.4"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"


class HelmInstallError(TidegateError, RuntimeError):
    pass


def tidegate_bin() -> Path:
    return Path(os.environ.get("TIDEGATE_HOME") or ".cache").resolve() / "bin"


def find_helm() -> Path | None:
    configured = os.environ.get("TIDEGATE_HELM_BINARY")
    if configured:
        return Path(configured)
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    local = tidegate_bin() / "helm"
    return local if local.exists() else None


def ensure_helm(version: str = HELM_VERSION, timeout: float = 1200.0) -> Path:
    """The helm binary to use, installing it with `go install` when none is found."""
    found = find_helm()
    if found is not None:
        return found
    go = shutil.which("go")
    if go is None:
        raise HelmInstallError(
            "helm is not installed and Go is not available to build it; install Helm 3 "
            f"(or Go, then run `go install {HELM_MODULE}@{version}`), or set TIDEGATE_HELM_BINARY"
        )
    target = tidegate_bin()
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [go, "install", f"{HELM_MODULE}@{version}"],
        env={**os.environ, "GOBIN": str(target)}, capture_output=True, text=True, timeout=timeout, check=False,
    )
    helm = target / "helm"
    if result.returncode != 0 or not helm.exists():
        raise HelmInstallError(f"`go install {HELM_MODULE}@{version}` failed: {result.stderr.strip()[-2000:]}")
    return helm
