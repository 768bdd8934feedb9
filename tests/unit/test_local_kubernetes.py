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


KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgithub.com/spf13/cobra v1.9.1
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""


def test_the_wrapper_module_replaces_each_staging_module_by_its_published_version() -> None:
    wrapper = kubernetes.wrapper_go_mod(KUBERNETES_GO_MOD, "v1.37.2")
    assert "go 1.25.0" in wrapper and "godebug default=go1.25" in wrapper
    assert "require k8s.io/kubernetes v1.37.2" in wrapper
    assert "\tk8s.io/api => k8s.io/api v0.37.2" in wrapper and "\tk8s.io/client-go => k8s.io/client-go v0.37.2" in wrapper
    assert "\tk8s.io/kubernetes/cmd/kube-apiserver" in wrapper and "\tgo.etcd.io/etcd/server/v3" in wrapper
    assert "cobra" not in wrapper


def test_version_stamps_name_the_release_and_its_commit() -> None:
    flags = kubernetes._version_flags("v1.37.2", "a" * 40)
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=37" in flags and f"gitCommit={'a' * 40}" in flags
