"""A real Kubernetes control plane on 127.0.0.1, without Docker or a container runtime.

    python -m deploy.local.kubernetes up|down|status [--port N]

etcd -> kube-apiserver -> kube-controller-manager + kube-scheduler -> kwok (fake nodes and kubelets:
the pods of a Deployment become Running and Ready, nothing runs inside them). Kubernetes v1.37.2,
etcd v3.7.0, kwok v0.8.0.

Binaries: unpacked once from `../shared/tools/kubernetes/*.tar.xz` (checked against its SHA256SUMS)
into `$TIDEGATE_HOME/kubernetes/<version>/bin`; `TIDEGATE_KUBERNETES_TOOLS` names another folder
holding the same archives. Without them, `up` builds the same versions once from the Go module proxy
(Go 1.26+; 25-35 minutes on 2 cores, at nice 19, progress every 30 s, log in
`$TIDEGATE_HOME/kubernetes/src/build.log`): a wrapper module that requires k8s.io/kubernetes and
replaces each staging module by its published v0.x version, version-stamped with -ldflags, plus etcd
and kwok. Tests never build (they skip, saying how to): run `up` once first.

State of one control plane lives in `$TIDEGATE_HOME/kubernetes/run-<port>/`: certificates (a CA,
the API server's, an admin client's of group system:masters, the service-account key pair, all made
once with `openssl`), etcd's data, one log and pid file per component, and `kubeconfig` (admin).
Every component binds 127.0.0.1 only; the Service and pod ranges are inside 127.0.0.0/8, so nothing
addressed to a ClusterIP or a pod ever leaves loopback.

Ports (all below Linux's ephemeral range): the API server on `--port`/`TIDEGATE_KUBERNETES_PORT`
(default 16443), etcd on port + 1 (peer + 2), controller-manager + 3, scheduler + 4, kwok + 5.

Python API: `ensure_kubernetes(port) -> kubeconfig`, `stop_kubernetes(port)`,
`kubernetes_status(port)`, `kubectl(...)`, and `kubernetes_session(port)`, a context manager for
test sessions: it starts the control plane if needed and stops it afterwards only if it started it
and no other live session holds a lease on it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx

from deploy.local import _process

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
VERSION = "v1.37.2"
ARCHIVES = (f"k8s-local-{VERSION}-linux-amd64.tar.xz", f"kubectl-{VERSION}-linux-amd64.tar.xz")
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl")
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
DEFAULT_PORT = 16443
SERVICE_CIDR = "127.96.0.0/16"
KUBERNETES_SERVICE_IP = "127.96.0.1"
POD_CIDR = "127.244.0.0/16"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 10.0
_POLL = 0.3

log = logging.getLogger("tidegate.kubernetes")


class KubernetesLaunchError(RuntimeError):
    """The local control plane could not be installed, started or stopped; the message says what to do."""


class MissingBinaries(KubernetesLaunchError):
    """The prebuilt binaries are not there (no ../shared/tools/kubernetes) and building them is not done here."""


class PlaneState(StrEnum):
    RUNNING = "running"
    PARTIAL = "partial"  # some components alive, some not
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class KubeLayout:
    home: Path
    port: int

    @property
    def root(self) -> Path:
        return self.home / "kubernetes"

    @property
    def bin_dir(self) -> Path:
        return self.root / VERSION / "bin"

    @property
    def run_dir(self) -> Path:
        return self.root / f"run-{self.port}"

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "lock"

    @property
    def leases_dir(self) -> Path:
        return self.run_dir / "leases"

    @property
    def session_owned_marker(self) -> Path:
        return self.run_dir / "started-by-session"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.log"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    @property
    def etcd_port(self) -> int:
        return self.port + 1

    @property
    def ports(self) -> dict[str, int]:
        return {"etcd-peer": self.port + 2, "kube-controller-manager": self.port + 3,
                "kube-scheduler": self.port + 4, "kwok": self.port + 5}


@dataclass(frozen=True, slots=True)
class KubeStatus:
    state: PlaneState
    server: str
    pids: dict[str, int]
    kubeconfig: Path

    def describe(self) -> str:
        match self.state:
            case PlaneState.RUNNING:
                return f"Kubernetes {VERSION} is running on {self.server} (KUBECONFIG={self.kubeconfig})"
            case PlaneState.PARTIAL:
                return (f"Kubernetes is partly running on {self.server} ({', '.join(self.pids)} alive); "
                        "`down` then `up` restarts it")
            case _:
                return f"Kubernetes is not running on {self.server}"


# --- configuration -----------------------------------------------------------------------------------


def default_port() -> int:
    raw = os.environ.get("TIDEGATE_KUBERNETES_PORT", str(DEFAULT_PORT))
    try:
        return int(raw)
    except ValueError:
        raise KubernetesLaunchError(f"TIDEGATE_KUBERNETES_PORT={raw!r} is not a port number") from None


def layout_for(port: int | None = None) -> KubeLayout:
    return KubeLayout(home=_process.tidegate_home().resolve(), port=port or default_port())


def tools_dir() -> Path:
    """Where the prebuilt archives are looked for: $TIDEGATE_KUBERNETES_TOOLS, else ../shared/tools/kubernetes."""
    configured = os.environ.get("TIDEGATE_KUBERNETES_TOOLS")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "tools" / "kubernetes"


# --- binaries ----------------------------------------------------------------------------------------


def _expected_sums(tools: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for candidate in (tools / "SHA256SUMS", tools.parent / "SHA256SUMS"):
        with contextlib.suppress(OSError):
            for line in candidate.read_text().splitlines():
                digest, _, name = line.strip().partition("  ")
                if digest and name:
                    sums[Path(name).name] = digest
    return sums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def binaries_available(layout: KubeLayout | None = None) -> str | None:
    """None if the binaries are installed or can be unpacked; else the reason they cannot (quickly)."""
    layout = layout or layout_for()
    if (layout.bin_dir / ".complete").exists():
        return None
    tools = tools_dir()
    missing = [name for name in ARCHIVES if not (tools / name).exists()]
    if missing:
        return (f"the prebuilt Kubernetes {VERSION} binaries are not in {tools} ({', '.join(missing)} missing) nor "
                f"built in {layout.bin_dir}; run `python -m deploy.local.kubernetes up` once to build them from the "
                "Go module proxy (25-35 minutes), or set TIDEGATE_KUBERNETES_TOOLS to a folder with those archives")
    return None


def install_binaries(layout: KubeLayout, *, build: bool = False) -> Path:
    """Unpack the prebuilt archives into `bin_dir` once (checksums verified), or else build them from
    the Go module proxy when `build`; later calls return at once."""
    done = layout.bin_dir / ".complete"
    if done.exists():
        return layout.bin_dir
    reason = binaries_available(layout)
    if reason:
        if not build:
            raise MissingBinaries(reason)
        return build_binaries(layout)
    tools = tools_dir()
    sums = _expected_sums(tools)
    staging = layout.bin_dir.with_name(f"bin.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log.info("unpacking Kubernetes %s from %s into %s", VERSION, tools, layout.bin_dir)
    for name in ARCHIVES:
        archive = tools / name
        if name in sums and _sha256(archive) != sums[name]:
            shutil.rmtree(staging, ignore_errors=True)
            raise KubernetesLaunchError(f"{archive} does not match its SHA256SUMS entry; it is damaged")
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(staging, filter="data")
    absent = [name for name in BINARIES if not (staging / name).exists()]
    if absent:
        shutil.rmtree(staging, ignore_errors=True)
        raise KubernetesLaunchError(f"the archives in {tools} lack {', '.join(absent)}")
    for name in BINARIES:
        (staging / name).chmod(0o755)
    (staging / ".complete").write_text(VERSION)
    shutil.rmtree(layout.bin_dir, ignore_errors=True)
    staging.rename(layout.bin_dir)
    return layout.bin_dir


KWOK_VERSION = "v0.8.0"
# kwok's own "fast" stages (what kwokctl would write): node init + lease heartbeat, pod ready/complete/delete.
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
               "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
BUILD_PROGRESS_EVERY = 30.0


def wrapper_go_mod(kubernetes_go_mod: str, version: str = VERSION) -> str:
    """The wrapper module that builds k8s.io/kubernetes `version` (pure): its go and godebug lines, the
    commands as tools, and each staging module (`k8s.io/x => ./staging/...`) replaced by its published
    v0.<minor>.<patch> (`go install` cannot build k8s.io/kubernetes directly because of those replaces)."""
    staging = "v0." + version.removeprefix("v1.")
    lines = kubernetes_go_mod.splitlines()
    go_line = next((line.strip() for line in lines if line.startswith("go ")), "go 1.26")
    godebug = [line.strip() for line in lines if line.startswith("godebug ")]
    replaced = [line.split()[0] for line in lines
                if "=> ./staging/" in line and line.strip().startswith("k8s.io/")]
    tools = [f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS] + ["go.etcd.io/etcd/server/v3"]
    return "\n".join([
        "module tidegate.local/kubernetes", "", go_line, *godebug, "", f"require k8s.io/kubernetes {version}", "",
        "tool (", *(f"\t{tool}" for tool in tools), ")", "",
        "replace (", *(f"\t{module} => {module} {staging}" for module in replaced), ")", "",
    ])


def _version_flags(version: str, commit: str) -> str:
    minor = version.removeprefix("v1.").split(".")[0]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor=1", f"-X {package}.gitMinor={minor}",
                  f"-X {package}.gitCommit={commit}", f"-X {package}.gitTreeState=clean",
                  f"-X {package}.buildDate=1970-01-01T00:00:00Z"]
    return " ".join(flags)


def _go(step: str, argv: list[str], cwd: Path, env: dict[str, str], log_file: Path, began: float) -> str:
    """Run one go command at nice 19, its output appended to the build log; a progress line every 30 s."""
    log.info("building Kubernetes %s: %s", VERSION, step)
    with log_file.open("a") as sink:
        sink.write(f"\n$ {' '.join(argv)}\n")
        sink.flush()
        out = log_file.with_suffix(".out")
        with out.open("w") as stdout:
            process = subprocess.Popen(["nice", "-n", "19", *argv], cwd=cwd, env=env, stdout=stdout, stderr=sink)
            while True:
                try:
                    code = process.wait(timeout=BUILD_PROGRESS_EVERY)
                    break
                except subprocess.TimeoutExpired:
                    log.info("  still %s (%.0f min so far; log %s)", step, (time.monotonic() - began) / 60, log_file)
                except BaseException:
                    process.kill()
                    process.wait()
                    raise
    if code != 0:
        raise KubernetesLaunchError(f"building Kubernetes failed at {step} (exit {code}); see {log_file}:\n"
                                    f"{_process.log_tail(log_file)}")
    return out.read_text()


def build_binaries(layout: KubeLayout) -> Path:
    """Build etcd, the control plane, kubectl and kwok from the Go module proxy into `bin_dir` (once)."""
    go = shutil.which("go")
    if go is None:
        raise MissingBinaries(f"neither the prebuilt Kubernetes binaries ({tools_dir()}) nor Go (1.26+, to build them "
                              "from the Go module proxy) are available")
    src = layout.root / "src" / f"k8s-{VERSION}"
    src.mkdir(parents=True, exist_ok=True)
    log_file = layout.root / "src" / "build.log"
    env = {**os.environ, "GOFLAGS": "-mod=mod -buildvcs=false", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    began = time.monotonic()
    log.info("no prebuilt binaries in %s: building Kubernetes %s from the Go module proxy (25-35 minutes on "
             "2 cores)", tools_dir(), VERSION)
    info = json.loads(_go("downloading k8s.io/kubernetes", [go, "mod", "download", "-json", f"k8s.io/kubernetes@{VERSION}"],
                          src, env, log_file, began))
    (src / "go.mod").write_text(wrapper_go_mod(Path(info["GoMod"]).read_text(), VERSION))
    _go("resolving the module graph (go mod tidy)", [go, "mod", "tidy"], src, env, log_file, began)
    commit = str((info.get("Origin") or {}).get("Hash") or "0" * 40)
    staging = layout.bin_dir.with_name(f"bin.build-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _go("compiling kube-apiserver, kube-controller-manager, kube-scheduler, kubectl",
        [go, "build", "-trimpath", "-ldflags", _version_flags(VERSION, commit), "-o", f"{staging}/",
         *(f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS)], src, env, log_file, began)
    _go("compiling etcd", [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(staging / "etcd"),
                           "go.etcd.io/etcd/server/v3"], src, env, log_file, began)
    _go(f"compiling kwok {KWOK_VERSION}",
        [go, "install", "-trimpath", "-ldflags", f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}",
         f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"], src, {**env, "GOBIN": str(staging)}, log_file, began)
    kwok = json.loads(_go("reading kwok's stages", [go, "mod", "download", "-json", f"sigs.k8s.io/kwok@{KWOK_VERSION}"],
                          src, env, log_file, began))
    stages = Path(kwok["Dir"]) / "kustomize" / "stage"
    (staging / "kwok-stages.yaml").write_text("".join(f"---\n{(stages / name).read_text()}" for name in KWOK_STAGES))
    absent = [name for name in BINARIES if not (staging / name).exists()]
    if absent:
        raise KubernetesLaunchError(f"the build did not produce {', '.join(absent)}; see {log_file}")
    (staging / ".complete").write_text(f"{VERSION} built from the Go module proxy\n")
    shutil.rmtree(layout.bin_dir, ignore_errors=True)
    staging.rename(layout.bin_dir)
    log.info("built Kubernetes %s in %.0f min", VERSION, (time.monotonic() - began) / 60)
    return layout.bin_dir


# --- certificates and kubeconfig ------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise KubernetesLaunchError("`openssl` is needed for the control plane's certificates (apt-get install openssl)")
    done = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KubernetesLaunchError(f"openssl {args[0]} failed: {done.stderr.strip()[-1000:]}")


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_certificates(layout: KubeLayout) -> None:
    """A CA, the API server's certificate, the admin client's (system:masters) and the service-account
    keys, made once per run directory."""
    pki = layout.pki
    if (pki / "admin.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    sans = ("IP:127.0.0.1,IP:" + KUBERNETES_SERVICE_IP + ",DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")
    (pki / "server.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                                    f"extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={sans}\n")
    (pki / "client.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                                    "extendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-x509", "-new", *_EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=tidegate-local-ca", cwd=pki)
    for name, subject, ext in (("apiserver", "/CN=kube-apiserver", "server.ext"),
                               ("admin", "/O=system:masters/CN=tidegate-admin", "client.ext")):
        _openssl("req", "-new", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "3650", "-extfile", ext, cwd=pki)
        (pki / f"{name}.csr").unlink()
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def render_kubeconfig(server: str, ca: bytes, user: dict[str, str], context: str = "tidegate-local",
                      namespace: str = "default") -> str:
    """A kubeconfig for one cluster and one user (pure)."""
    import yaml

    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server,
                                                   "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "user", "namespace": namespace}}],
        "current-context": context,
    }, sort_keys=False)


def write_kubeconfig(layout: KubeLayout) -> Path:
    pki = layout.pki
    user = {"client-certificate-data": base64.b64encode((pki / "admin.crt").read_bytes()).decode(),
            "client-key-data": base64.b64encode((pki / "admin.key").read_bytes()).decode()}
    layout.kubeconfig.write_text(render_kubeconfig(layout.server, (pki / "ca.crt").read_bytes(), user))
    layout.kubeconfig.chmod(0o600)
    return layout.kubeconfig


# --- processes ---------------------------------------------------------------------------------------


def _commands(layout: KubeLayout) -> dict[str, list[str]]:
    b, pki, run, kc = layout.binary, layout.pki, layout.run_dir, str(layout.kubeconfig)
    p = layout.ports
    etcd_url = f"http://127.0.0.1:{layout.etcd_port}"
    peer_url = f"http://127.0.0.1:{p['etcd-peer']}"
    auth = ["--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
            "--bind-address", "127.0.0.1", "--leader-elect=false", "--kube-api-qps", "500", "--kube-api-burst", "1000",
            "--profiling=false", "--v=0"]
    return {
        "etcd": [str(b("etcd")), "--name", "tidegate-local", "--data-dir", str(run / "etcd"),
                 "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"tidegate-local={peer_url}", "--unsafe-no-fsync",
                 "--quota-backend-bytes=2147483648", "--log-level=warn"],
        "kube-apiserver": [
            str(b("kube-apiserver")), "--etcd-servers", etcd_url, "--etcd-prefix", "/registry",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(layout.port),
            "--endpoint-reconciler-type", "none",
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--service-account-key-file", str(pki / "sa.pub"), "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range", SERVICE_CIDR, "--authorization-mode", "Node,RBAC",
            "--allow-privileged=true", "--cert-dir", str(run / "apiserver-certs"), "--profiling=false", "--v=0"],
        "kube-controller-manager": [
            str(b("kube-controller-manager")), *auth, "--secure-port", str(p["kube-controller-manager"]),
            "--cert-dir", str(run / "kcm-certs"), "--controllers", "*",
            "--service-account-private-key-file", str(pki / "sa.key"), "--root-ca-file", str(pki / "ca.crt"),
            "--service-cluster-ip-range", SERVICE_CIDR, "--cluster-cidr", POD_CIDR, "--allocate-node-cidrs=false"],
        "kube-scheduler": [
            str(b("kube-scheduler")), *auth, "--secure-port", str(p["kube-scheduler"]),
            "--cert-dir", str(run / "sched-certs")],
        "kwok": [
            str(b("kwok")), "--kubeconfig", kc, "--config", str(b("kwok-stages.yaml")),
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
            "--cidr", POD_CIDR, "--node-ip", "127.0.0.1", "--node-name", "kwok-controller",
            "--node-lease-duration-seconds", "40",
            "--server-address", f"127.0.0.1:{p['kwok']}", "--node-port", str(p["kwok"]),
            "--tls-cert-file", str(pki / "admin.crt"), "--tls-private-key-file", str(pki / "admin.key")],
    }


NODE_MANIFEST = """apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
"""


def _read_pid(layout: KubeLayout, component: str) -> int | None:
    try:
        pid = int(layout.pid_file(component).read_text().strip())
    except (OSError, ValueError):
        return None
    _process.reap(pid)
    if not _process.is_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Ours: the binary from our bin folder (a reused pid belongs to some other program).
    return pid if str(layout.binary(component)).encode() in cmdline else None


def _spawn(layout: KubeLayout, component: str, command: list[str]) -> int:
    log_fd = os.open(layout.log_file(component), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawn(command[0], command, dict(os.environ), file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ], setsid=True)
    finally:
        os.close(log_fd)
    layout.pid_file(component).write_text(f"{pid}\n")
    return pid



def kubectl(layout: KubeLayout, *args: str, input: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the bundled kubectl against this control plane as admin."""
    return subprocess.run([str(layout.binary("kubectl")), "--kubeconfig", str(layout.kubeconfig), *args],
                          input=input, capture_output=True, text=True, timeout=timeout, check=False)


def _client(layout: KubeLayout) -> httpx.Client:
    pki = layout.pki
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return httpx.Client(verify=context, timeout=3.0)


def _ok(call: object) -> bool:
    try:
        return bool(call() if callable(call) else call)
    except (httpx.HTTPError, OSError, subprocess.TimeoutExpired):
        return False


def _wait(layout: KubeLayout, started: Sequence[str], what: str, check: object, deadline: float) -> None:
    while not _ok(check):
        for component in started:
            if _read_pid(layout, component) is None:
                raise KubernetesLaunchError(f"{component} exited while starting; its log "
                                            f"{layout.log_file(component)}:\n{_process.log_tail(layout.log_file(component))}")
        if time.monotonic() > deadline:
            raise KubernetesLaunchError(f"timed out waiting for {what}; logs in {layout.run_dir}")
        time.sleep(_POLL)
    log.info("%s ready", what)


def _healthy(layout: KubeLayout) -> bool:
    if any(_read_pid(layout, c) is None for c in COMPONENTS):
        return False
    with _client(layout) as client:
        return _ok(lambda: client.get(f"{layout.server}/readyz").status_code == 200)


def _start_locked(layout: KubeLayout, timeout: float, *, build: bool = False) -> tuple[str, bool]:
    """Start the control plane unless it runs; (kubeconfig, started_now). Caller holds the lock.
    `build`: build the binaries from the Go module proxy when there are no prebuilt ones."""
    if _healthy(layout):
        return str(layout.kubeconfig), False
    _stop_locked(layout)  # anything half-started
    for port in (layout.port, layout.etcd_port, *layout.ports.values()):
        if _process.port_open(port):
            raise KubernetesLaunchError(f"port {port} on 127.0.0.1 is taken by something not started from "
                                        f"{layout.run_dir}; free it or choose another --port/TIDEGATE_KUBERNETES_PORT")
    install_binaries(layout, build=build)
    # etcd's data is thrown away: a test cluster starts empty (certificates are kept).
    shutil.rmtree(layout.run_dir / "etcd", ignore_errors=True)
    make_certificates(layout)
    write_kubeconfig(layout)
    began = time.monotonic()
    deadline = began + timeout
    commands = _commands(layout)
    started: list[str] = []
    try:
        started.append("etcd")
        _spawn(layout, "etcd", commands["etcd"])
        _wait(layout, started, "etcd", lambda: httpx.get(f"http://127.0.0.1:{layout.etcd_port}/health",
                                                         timeout=2).json().get("health") == "true", deadline)
        started.append("kube-apiserver")
        _spawn(layout, "kube-apiserver", commands["kube-apiserver"])
        with _client(layout) as client:
            _wait(layout, started, "kube-apiserver",
                  lambda: client.get(f"{layout.server}/readyz").status_code == 200, deadline)
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            started.append(component)
            _spawn(layout, component, commands[component])
        with httpx.Client(verify=False, timeout=2) as plain:  # their own self-signed serving certs, on loopback
            for component in ("kube-controller-manager", "kube-scheduler"):
                port = layout.ports[component]
                _wait(layout, started, component,
                      lambda port=port: plain.get(f"https://127.0.0.1:{port}/healthz").status_code == 200, deadline)
        applied = kubectl(layout, "apply", "-f", "-", input=NODE_MANIFEST)
        if applied.returncode != 0:
            raise KubernetesLaunchError(f"could not create the fake node: {applied.stderr.strip()}")
        _wait(layout, started, "the kwok node",
              lambda: kubectl(layout, "wait", "--for=condition=Ready", "node/kwok-node-0", "--timeout=2s").returncode == 0,
              deadline)
        # Pods are admitted only once the service-account controller made the namespace's default account.
        _wait(layout, started, "the default ServiceAccount",
              lambda: kubectl(layout, "get", "serviceaccount", "default", "-n", "default").returncode == 0, deadline)
    except BaseException:
        _stop_locked(layout)
        raise
    log.info("Kubernetes %s up on %s in %.1f s", VERSION, layout.server, time.monotonic() - began)
    return str(layout.kubeconfig), True


def _stop_locked(layout: KubeLayout, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop every component (newest first: kwok ... etcd), each by its process group; True if any ran."""
    stopped = False
    for component in reversed(COMPONENTS):
        pid = _read_pid(layout, component)
        layout.pid_file(component).unlink(missing_ok=True)
        if pid is None:
            continue
        stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _process.reap(pid)
            if not _process.is_alive(pid):
                break
            time.sleep(0.1)
        else:
            log.warning("%s (pid %s) did not stop within %.0f s; killing it", component, pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _process.reap(pid)
    return stopped


def _locked(layout: KubeLayout) -> contextlib.AbstractContextManager[None]:
    return _process.file_lock(layout.lock_file)


# --- public API ------------------------------------------------------------------------------------------


def kubernetes_status(port: int | None = None) -> KubeStatus:
    layout = layout_for(port)
    pids = {c: pid for c in COMPONENTS if (pid := _read_pid(layout, c)) is not None}
    if len(pids) == len(COMPONENTS) and _healthy(layout):
        state = PlaneState.RUNNING
    elif pids:
        state = PlaneState.PARTIAL
    else:
        state = PlaneState.STOPPED
    return KubeStatus(state, layout.server, pids, layout.kubeconfig)


def ensure_kubernetes(port: int | None = None, *, timeout: float = START_TIMEOUT, build: bool = True) -> str:
    """Start the control plane unless it runs (building the binaries first if there are none and `build`);
    the admin kubeconfig's path. It keeps running until `down`."""
    layout = layout_for(port)
    with _locked(layout):
        kubeconfig, _ = _start_locked(layout, timeout, build=build)
        layout.session_owned_marker.unlink(missing_ok=True)
    return kubeconfig


def stop_kubernetes(port: int | None = None) -> bool:
    layout = layout_for(port)
    with _locked(layout):
        layout.session_owned_marker.unlink(missing_ok=True)
        return _stop_locked(layout)


@contextlib.contextmanager
def kubernetes_session(port: int | None = None, *, timeout: float = START_TIMEOUT) -> Iterator[str]:
    """The control plane for one test session (yields the admin kubeconfig path): started if needed,
    stopped at the end only if a session started it and no other live session holds a lease."""
    layout = layout_for(port)
    with _process.session_lease(
        layout.lock_file, layout.leases_dir, layout.session_owned_marker,
        lambda: _start_locked(layout, timeout), lambda: _stop_locked(layout),
    ) as kubeconfig:
        yield kubeconfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.kubernetes", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=None,
                        help=f"the API server's port (default $TIDEGATE_KUBERNETES_PORT or {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.action == "up":
            began = time.monotonic()
            kubeconfig = ensure_kubernetes(args.port)
            print(f"Kubernetes {VERSION} is ready in {time.monotonic() - began:.1f} s; "
                  f"export KUBECONFIG={kubeconfig}")
        elif args.action == "down":
            print("Kubernetes stopped" if stop_kubernetes(args.port) else "Kubernetes was not running")
        else:
            status = kubernetes_status(args.port)
            print(status.describe())
            return 0 if status.state is PlaneState.RUNNING else 3
    except KubernetesLaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
