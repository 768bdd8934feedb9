"""The local Kubernetes launcher's pure parts: its kubeconfig, its ports, and the reason it gives without binaries."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from deploy.local import kubernetes


def test_kubeconfig_names_one_loopback_cluster_and_its_ca() -> None:
    rendered = yaml.safe_load(kubernetes.render_kubeconfig("https://127.0.0.1:16443", b"CA", {"token": "t"}))
    [cluster] = rendered["clusters"]
    assert cluster["cluster"]["server"] == "https://127.0.0.1:16443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == b"CA"
    assert rendered["users"][0]["user"] == {"token": "t"}
    assert rendered["current-context"] == rendered["contexts"][0]["name"]


def test_every_component_listens_on_loopback_only_on_its_own_port(tmp_path: Path) -> None:
    layout = kubernetes.KubeLayout(tmp_path, 16443)
    commands = kubernetes._commands(layout)
    ports = [layout.port, layout.etcd_port, *layout.ports.values()]
    assert len(set(ports)) == len(ports) and max(ports) < 32768
    for component, argv in commands.items():
        joined = " ".join(argv)
        assert "0.0.0.0" not in joined, component
        for flag in ("--bind-address", "--advertise-address", "--node-ip"):
            if flag in argv:
                assert argv[argv.index(flag) + 1] == "127.0.0.1", (component, flag)
    assert kubernetes.SERVICE_CIDR.startswith("127.") and kubernetes.POD_CIDR.startswith("127.")


def test_without_the_prebuilt_archives_the_reason_says_where_they_were_looked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_KUBERNETES_TOOLS", str(tmp_path / "nowhere"))
    reason = kubernetes.binaries_available(kubernetes.KubeLayout(tmp_path, 16443))
    assert reason is not None and str(tmp_path / "nowhere") in reason and "Go module proxy" in reason
    with pytest.raises(kubernetes.MissingBinaries):
        kubernetes.install_binaries(kubernetes.KubeLayout(tmp_path, 16443))
