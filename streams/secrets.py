"""Secrets: named sets of key/value pairs (Keptn's secret-service), never on a topic.

    store = secret_store()                     # chosen from the environment (below)
    store.create("slack", "keptn-default", {"token": "..."})
    reader = SecretReader(task_scopes("sockshop", "keptn-webhook-service"), os.environ, store)
    reader.value("slack", "token")             # what a connector's `secretRef: {name, key}` resolves to
    reader.data("locust-secret")               # a whole secret (the job executor's `valueFrom: secret`)

Values are write-only for the API: a store answers names, scopes and keys (`SecretInfo`), and only
`data` (used by connectors through a `SecretReader`) returns values, and only for the scopes it is
given. Nothing here logs a value, and no error message holds one.

Scopes (Keptn's `--scope`, default `keptn-default`) say which tasks may read a secret. A task of
project P reads the scopes `task_scopes(P, ...)` gives: `keptn-default` (shared by every project, as
in Keptn), the connector's own Keptn scope if it has one (`keptn-webhook-service` for webhooks), and
the scope named like the project, P. A secret for one project only is created with `--scope=P`; no
other project's task can read it. Secret names are unique across scopes (Kubernetes Secrets in one
namespace), so a project cannot shadow another's secret either.

Where secrets live (`TIDEGATE_SECRETS_BACKEND`):
    kubernetes   Secrets in the namespace Tidegate runs in (labels `app.kubernetes.io/managed-by:
                 tidegate`, `app.kubernetes.io/scope: <scope>`), as Keptn's secret-service kept them;
                 the default when running in a cluster (KUBERNETES_SERVICE_HOST is set and a
                 service-account token is mounted; the account needs get, list, create, update
                 and delete on secrets in that namespace, connectors get).
    file         `$TIDEGATE_SECRETS_FILE`, default `$TIDEGATE_HOME/secrets.json`: a JSON file readable
                 and writable only by Tidegate's user (0600, in a 0700 folder it creates); the default
                 elsewhere. Gateway and connectors on one machine share it.

A connector resolves `secretRef: {name, key}` with `SecretReader.value`: the secret store first
(scoped as above), else the operator's environment variable `TIDEGATE_SECRET_<NAME>_<KEY>` (upper
case, other characters as `_`; set for the connector, so readable by every project it serves).
`lookup_secret(name, key)` does the same for one value (scope `keptn-default` unless told).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.secrets import secret_variable

DEFAULT_SCOPE = "keptn-default"
MANAGED_BY = "tidegate"
#: Kubernetes' limit for one Secret; the file store keeps the same, so a secret fits both.
MAX_SECRET_BYTES = 1024 * 1024
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_NAME_MAX = 253
_SCOPE_MAX = 63


class SecretError(TidegateError):
    """A secret operation that cannot be done; the message names the secret and what to do."""


class SecretInvalid(SecretError):
    pass


class SecretNotFound(SecretError):
    pass


class SecretExists(SecretError):
    pass


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: never its values."""

    name: str
    scope: str
    keys: tuple[str, ...]


class SecretStore(Protocol):
    def create(self, name: str, scope: str, data: Mapping[str, str]) -> None: ...

    def update(self, name: str, scope: str, data: Mapping[str, str]) -> None: ...

    def delete(self, name: str, scope: str) -> None: ...

    def list(self, name: str | None = None, scope: str | None = None) -> list[SecretInfo]: ...

    def data(self, name: str, scopes: Collection[str]) -> dict[str, str] | None:
        """The secret's keys and values if it exists in one of `scopes`, else None (whether it does not
        exist or is in another scope); SecretError when the store cannot be read."""
        ...


def check_secret(name: str, scope: str, data: Mapping[str, str] | None) -> None:
    """Raises SecretInvalid naming what is wrong (names as Kubernetes allows them, at most 1 MiB)."""
    if not name or len(name) > _NAME_MAX or not _NAME.match(name):
        raise SecretInvalid(f"secret name {name[:80]!r} is not valid: use lower-case letters, digits and dashes "
                            f"(at most {_NAME_MAX} characters), e.g. slack-webhook")
    if not scope or len(scope) > _SCOPE_MAX or not _NAME.match(scope):
        raise SecretInvalid(f"scope {scope[:80]!r} is not valid: use lower-case letters, digits and dashes "
                            f"(at most {_SCOPE_MAX}), e.g. {DEFAULT_SCOPE}")
    if data is None:
        return
    if not data:
        raise SecretInvalid(f"secret {name!r} has no data: give at least one key, e.g. --from-literal=token=...")
    size = 0
    for key, value in data.items():
        if not isinstance(key, str) or not _KEY.match(key) or len(key) > _NAME_MAX:
            raise SecretInvalid(f"secret {name!r}: key {str(key)[:80]!r} is not valid: use letters, digits, "
                                "'-', '_' and '.'")
        if not isinstance(value, str):
            raise SecretInvalid(f"secret {name!r}: the value of key {key!r} must be a string")
        size += len(key) + len(value.encode("utf-8"))
    if size > MAX_SECRET_BYTES:
        raise SecretInvalid(f"secret {name!r} is larger than {MAX_SECRET_BYTES} bytes; split it into several secrets")


# --------------------------------------------------------------------- file store


class FileSecretStore:
    """A JSON file only Tidegate's user can read (0600 in a 0700 folder); writes replace it atomically
    under an exclusive lock, so a gateway and connectors on the same machine can share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")

    def _prepare(self) -> None:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._prepare()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise SecretError(f"the secret store {self.path} cannot be read ({type(error).__name__}); "
                              "restore it from a backup or remove it and create the secrets again") from None
        secrets = loaded.get("secrets") if isinstance(loaded, dict) else None
        return secrets if isinstance(secrets, dict) else {}

    def _write(self, secrets: dict[str, dict[str, Any]]) -> None:
        fd, temporary = tempfile.mkstemp(prefix=".secrets-", dir=self.path.parent)  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"secrets": secrets}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def create(self, name: str, scope: str, data: Mapping[str, str]) -> None:
        check_secret(name, scope, data)
        with self._locked():
            secrets = self._read()
            if name in secrets:
                raise SecretExists(f"secret {name!r} already exists; change it with update, or delete it first")
            secrets[name] = {"scope": scope, "data": dict(data)}
            self._write(secrets)

    def update(self, name: str, scope: str, data: Mapping[str, str]) -> None:
        check_secret(name, scope, data)
        with self._locked():
            secrets = self._read()
            if secrets.get(name, {}).get("scope") != scope:
                raise SecretNotFound(f"secret {name!r} does not exist in scope {scope!r}; create it first")
            secrets[name] = {"scope": scope, "data": dict(data)}
            self._write(secrets)

    def delete(self, name: str, scope: str) -> None:
        with self._locked():
            secrets = self._read()
            if secrets.get(name, {}).get("scope") != scope:
                raise SecretNotFound(f"secret {name!r} does not exist in scope {scope!r}")
            del secrets[name]
            self._write(secrets)

    def list(self, name: str | None = None, scope: str | None = None) -> list[SecretInfo]:
        return [
            SecretInfo(found, str(entry.get("scope", "")), tuple(sorted(entry.get("data") or {})))
            for found, entry in sorted(self._read().items())
            if (not name or found == name) and (not scope or entry.get("scope") == scope)
        ]

    def data(self, name: str, scopes: Collection[str]) -> dict[str, str] | None:
        entry = self._read().get(name)
        if not isinstance(entry, dict) or entry.get("scope") not in scopes:
            return None
        found = entry.get("data")
        return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else None


# --------------------------------------------------------------------- Kubernetes store

_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class KubernetesSecretStore:
    """Kubernetes Secrets in one namespace, through the official client (in-cluster config, or a
    kubeconfig file). `core` may be given (a CoreV1Api or a test double with the same methods)."""

    def __init__(self, namespace: str, *, kubeconfig: str | None = None, core: Any = None) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self._core = core

    def _api(self) -> Any:
        if self._core is None:
            from kubernetes import client

            from tidegate.streams.kubeclient import api_client

            try:
                core = client.CoreV1Api(api_client(self.kubeconfig))
            except Exception as error:
                raise SecretError(f"cannot reach Kubernetes for the secrets ({type(error).__name__}); run in a "
                                  "cluster, set TIDEGATE_KUBERNETES_KUBECONFIG, or TIDEGATE_SECRETS_BACKEND=file") from None
            self._core = core
        return self._core

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception as error:
            status = getattr(error, "status", None)
            if status == 404:
                raise SecretNotFound(f"{what}: no such secret in namespace {self.namespace!r}") from None
            if status == 409:
                raise SecretExists(f"{what}: the secret already exists; change it with update, or delete it first") from None
            # The client's message may quote the request body (the values): give only the status.
            raise SecretError(f"{what}: Kubernetes answered {status or type(error).__name__}") from None

    def _body(self, name: str, scope: str, data: Mapping[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY,
                                                  "app.kubernetes.io/scope": scope}},
            "data": {key: base64.b64encode(value.encode("utf-8")).decode("ascii") for key, value in data.items()},
        }

    def _managed(self, name: str, scope: str | None) -> Any:
        found = self._call(f"reading secret {name!r}", self._api().read_namespaced_secret, name, self.namespace)
        labels = dict(found.metadata.labels or {})
        if labels.get("app.kubernetes.io/managed-by") != MANAGED_BY or (scope and labels.get("app.kubernetes.io/scope") != scope):
            raise SecretNotFound(f"secret {name!r} does not exist in scope {scope!r}")
        return found

    def create(self, name: str, scope: str, data: Mapping[str, str]) -> None:
        check_secret(name, scope, data)
        self._call(f"creating secret {name!r}", self._api().create_namespaced_secret, self.namespace,
                   self._body(name, scope, data))

    def update(self, name: str, scope: str, data: Mapping[str, str]) -> None:
        check_secret(name, scope, data)
        self._managed(name, scope)
        self._call(f"updating secret {name!r}", self._api().replace_namespaced_secret, name, self.namespace,
                   self._body(name, scope, data))

    def delete(self, name: str, scope: str) -> None:
        self._managed(name, scope)
        self._call(f"deleting secret {name!r}", self._api().delete_namespaced_secret, name, self.namespace)

    def list(self, name: str | None = None, scope: str | None = None) -> list[SecretInfo]:
        selector = f"app.kubernetes.io/managed-by={MANAGED_BY}" + (f",app.kubernetes.io/scope={scope}" if scope else "")
        found = self._call("listing secrets", self._api().list_namespaced_secret, self.namespace, label_selector=selector)
        return sorted(
            (SecretInfo(item.metadata.name, (item.metadata.labels or {}).get("app.kubernetes.io/scope", ""),
                        tuple(sorted(item.data or {})))
             for item in found.items if not name or item.metadata.name == name),
            key=lambda info: info.name,
        )

    def data(self, name: str, scopes: Collection[str]) -> dict[str, str] | None:
        try:
            found = self._managed(name, None)
        except SecretNotFound:
            return None
        if (found.metadata.labels or {}).get("app.kubernetes.io/scope") not in scopes:
            return None
        try:
            return {key: base64.b64decode(encoded).decode("utf-8")
                    for key, encoded in (found.data or {}).items() if isinstance(encoded, str)}
        except (ValueError, UnicodeDecodeError):
            raise SecretError(f"secret {name!r} holds a value that is not UTF-8 text; replace it with update") from None


# --------------------------------------------------------------------- choosing and looking up


def secret_store(environ: Mapping[str, str] | None = None) -> SecretStore:
    """The store the environment asks for (module docstring); nothing is read or created yet."""
    env = os.environ if environ is None else environ
    backend = (env.get("TIDEGATE_SECRETS_BACKEND") or "").strip().lower()
    # In a cluster with a service account to act as (a pod without a mounted token cannot reach the API).
    in_cluster = bool(env.get("KUBERNETES_SERVICE_HOST")) and _TOKEN_FILE.is_file()
    if backend not in ("", "file", "kubernetes"):
        raise SecretError(f"TIDEGATE_SECRETS_BACKEND={backend!r} is not known; use file or kubernetes")
    if backend == "kubernetes" or (not backend and in_cluster):
        namespace = env.get("TIDEGATE_SECRETS_NAMESPACE") or (
            _NAMESPACE_FILE.read_text().strip() if _NAMESPACE_FILE.is_file() else "default")
        return KubernetesSecretStore(namespace, kubeconfig=env.get("TIDEGATE_KUBERNETES_KUBECONFIG") or None)
    path = env.get("TIDEGATE_SECRETS_FILE") or str(Path(env.get("TIDEGATE_HOME") or ".cache") / "secrets.json")
    return FileSecretStore(Path(path).expanduser().resolve())


def task_scopes(project: str, *shared: str) -> tuple[str, ...]:
    """The scopes a task of `project` may read: `keptn-default`, the connector's `shared` ones, and the
    project's own (a scope named like the project; none for a name that cannot be a scope)."""
    own = (project,) if project and len(project) <= _SCOPE_MAX and _NAME.match(project) else ()
    return tuple(dict.fromkeys((DEFAULT_SCOPE, *shared, *own)))


@dataclass(frozen=True, slots=True)
class SecretReader:
    """The secrets one task may read: the store's secrets in `scopes` first, then the operator's
    `TIDEGATE_SECRET_<NAME>_<KEY>` variables in `environ`. Errors name the secret, the key, the scopes
    and the variable, never a value."""

    scopes: tuple[str, ...] = (DEFAULT_SCOPE,)
    environ: Mapping[str, str] = field(default_factory=dict)
    store: SecretStore | None = None
    """None: the environment only."""

    def _stored(self, name: str) -> tuple[dict[str, str] | None, SecretError | None]:
        if self.store is None:
            return None, None
        try:
            return self.store.data(name, self.scopes), None
        except SecretError as error:
            return None, error

    def _scopes_text(self) -> str:
        return ", ".join(self.scopes)

    def value(self, name: str, key: str) -> str:
        """`secretRef: {name, key}`: from the store, else the environment; SecretError if neither has it."""
        stored, failed = self._stored(name)
        if stored is not None and key in stored:
            return stored[key]
        variable = secret_variable(name, key)
        from_env = self.environ.get(variable)
        if from_env is not None:
            return from_env
        if failed is not None:
            raise SecretError(f"the secret {name!r} (key {key!r}) cannot be read: {failed}; the environment "
                              f"variable {variable} is not set either") from None
        where = f"in the secret store (scopes {self._scopes_text()}) nor " if self.store is not None else ""
        raise SecretNotFound(
            f"the secret {name!r} with key {key!r} is neither {where}in the connector's environment variable "
            f"{variable}; create it with `keptn create secret {name} --from-literal={key}=... "
            f"--scope={self.scopes[-1]}` (or the operator sets {variable})")

    def data(self, name: str) -> dict[str, str]:
        """A whole secret (every key), from the store only: the environment cannot list a secret's keys."""
        stored, failed = self._stored(name)
        if failed is not None:
            raise SecretError(f"the secret {name!r} cannot be read: {failed}") from None
        if stored is None:
            raise SecretNotFound(
                f"the secret {name!r} is not in the secret store (scopes {self._scopes_text()}); a whole secret is "
                f"read from the store only: create it with `keptn create secret {name} --from-literal=KEY=... "
                f"--scope={self.scopes[-1]}`")
        return stored


def lookup_secret(
    name: str, key: str, environ: Mapping[str, str] | None = None, store: SecretStore | None = None,
    *, scopes: Collection[str] = (DEFAULT_SCOPE,),
) -> str | None:
    """One `secretRef: {name, key}` as a SecretReader resolves it (the store's secrets in `scopes`, the
    one `environ` chooses unless `store` is given, then `TIDEGATE_SECRET_<NAME>_<KEY>` of `environ`);
    None if neither has it. A store that cannot be read raises SecretError."""
    env = os.environ if environ is None else environ
    try:
        return SecretReader(tuple(scopes), env, store or secret_store(env)).value(name, key)
    except SecretNotFound:
        return None
