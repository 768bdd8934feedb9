"""A small in-memory Kubernetes API server over HTTP, speaking the real API's shapes.

It answers what `helm upgrade --install/rollback/get/uninstall` and the `kubernetes` Python client's
Deployment scale calls need: the version and discovery documents (legacy, non-aggregated), and
get/list (with `labelSelector`)/create/update/patch/delete for core v1 (namespaces, services, secrets,
configmaps, serviceaccounts, pods) and apps/v1 (deployments with the `scale` subresource, statefulsets).

What it cannot prove: no controllers run (a Deployment never gets pods or a ready status; `status`
mirrors `spec.replicas` so nothing waits forever), no admission, no RBAC, no OpenAPI schema
validation, no watches, and strategic-merge patches are applied as JSON merge patches with the
`$`-directives dropped (lists are replaced whole). So it shows that Tidegate sends the right requests
and reads the answers right; not that a real cluster would run the workload.

    with FakeKubernetes() as api:
        api.kubeconfig(path)          # a kubeconfig pointing at it (token auth)
        api.objects("apps/v1", "deployments", "ns")   # what was stored
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from tests.fakes.loopback import LoopbackServer, QuietHandler

TOKEN = "fake-kubernetes-token"


@dataclass(frozen=True)
class Kind:
    group_version: str
    resource: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()


KINDS = [
    Kind("v1", "namespaces", "Namespace", namespaced=False),
    Kind("v1", "services", "Service"),
    Kind("v1", "secrets", "Secret"),
    Kind("v1", "configmaps", "ConfigMap"),
    Kind("v1", "serviceaccounts", "ServiceAccount"),
    Kind("v1", "pods", "Pod"),
    Kind("apps/v1", "deployments", "Deployment", subresources=("scale",)),
    Kind("apps/v1", "statefulsets", "StatefulSet", subresources=("scale",)),
]
_BY_PATH = {(k.group_version, k.resource): k for k in KINDS}
_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; `$`-keys (strategic-merge directives) are dropped."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKubernetes(LoopbackServer):
    def __init__(self) -> None:
        self.store: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._version = 1
        handler = self._handler()
        super().__init__(handler)

    # --- for tests ---
    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        path.chmod(0o600)
        return path

    def objects(self, group_version: str, resource: str, namespace: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(obj) for (gv, res, ns, _), obj in sorted(self.store.items())
                    if gv == group_version and res == resource and ns == namespace]

    def get(self, group_version: str, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.store.get((group_version, resource, namespace, name))
            return copy.deepcopy(found) if found else None

    def put(self, obj: dict[str, Any]) -> None:
        """Store an object as if it had been created by someone else (e.g. a Deployment not from Helm)."""
        kind = next(k for k in KINDS if k.kind == obj["kind"] and k.group_version == obj["apiVersion"])
        with self.lock:
            self._stamp(obj, kind, obj["metadata"].get("namespace", ""))
            self.store[(kind.group_version, kind.resource, obj["metadata"].get("namespace", ""),
                        obj["metadata"]["name"])] = obj

    # --- the server ---
    def _stamp(self, obj: dict[str, Any], kind: Kind, namespace: str) -> None:
        self._version += 1
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["resourceVersion"] = str(self._version)
        meta["generation"] = int(meta.get("generation", 0)) + 1
        if kind.namespaced:
            meta["namespace"] = namespace
        obj["apiVersion"], obj["kind"] = kind.group_version, kind.kind
        if kind.resource in ("deployments", "statefulsets"):
            replicas = obj.get("spec", {}).get("replicas", 1)
            obj["status"] = {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
                             "availableReplicas": replicas, "observedGeneration": meta["generation"]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def _status(self, code: int, reason: str, message: str) -> None:
                self.send_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": reason, "code": code})

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                fake.requests.append((method, url.path))
                # client-go sends no bearer token over plain HTTP; a wrong one is still refused.
                if self.headers.get("Authorization") not in (None, f"Bearer {TOKEN}"):
                    self._status(401, "Unauthorized", "Unauthorized")
                    return
                if method == "GET" and self._discovery(url.path):
                    return
                match = _PATH.match(url.path)
                if not match:
                    self._status(404, "NotFound", f"the server could not find the requested resource ({url.path})")
                    return
                gv = match["core"] or f"{match['group']}/{match['version']}"
                kind = _BY_PATH.get((gv, match["resource"]))
                if kind is None:
                    self._status(404, "NotFound", f"the server could not find the requested resource ({url.path})")
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with fake.lock:
                    self._resource(method, kind, match["ns"] or "", match["name"], match["sub"], query)

            def _discovery(self, path: str) -> bool:
                if path == "/version":
                    self.send_json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake", "platform": "linux/amd64"})
                elif path == "/api":
                    self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
                elif path == "/apis":
                    groups = sorted({k.group_version for k in KINDS if "/" in k.group_version})
                    self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                        {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                         "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}} for gv in groups]})
                elif path in ("/api/v1", *(f"/apis/{k.group_version}" for k in KINDS)):
                    gv = path.removeprefix("/api/").removeprefix("/apis/")
                    resources = []
                    for k in KINDS:
                        if k.group_version != gv:
                            continue
                        resources.append({"name": k.resource, "singularName": k.kind.lower(), "namespaced": k.namespaced,
                                          "kind": k.kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
                        for sub in k.subresources:
                            resources.append({"name": f"{k.resource}/{sub}", "singularName": "", "namespaced": True,
                                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                                              "verbs": ["get", "patch", "update"]})
                    self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                     "resources": resources})
                else:
                    return False
                return True

            def _resource(self, method: str, kind: Kind, ns: str, name: str | None, sub: str | None,
                          query: dict[str, str]) -> None:
                key = (kind.group_version, kind.resource, ns, name or "")
                existing = fake.store.get(key)
                if sub == "scale":
                    self._scale(method, kind, key, existing)
                    return
                if method == "GET" and name is None:
                    items = [copy.deepcopy(o) for (gv, res, n, _), o in sorted(fake.store.items())
                             if gv == kind.group_version and res == kind.resource and (not kind.namespaced or n == ns)
                             and _matches(o["metadata"].get("labels") or {}, query.get("labelSelector", ""))]
                    self.send_json(200, {"kind": f"{kind.kind}List", "apiVersion": kind.group_version,
                                     "metadata": {"resourceVersion": str(fake._version)}, "items": items})
                elif method == "GET":
                    if existing is None:
                        self._status(404, "NotFound", f'{kind.resource} "{name}" not found')
                    else:
                        self.send_json(200, existing)
                elif method == "POST":
                    obj = self._body()
                    name = obj["metadata"].get("name") or (obj["metadata"].get("generateName", "x-") + uuid.uuid4().hex[:5])
                    obj["metadata"]["name"] = name
                    key = (kind.group_version, kind.resource, ns, name)
                    if key in fake.store:
                        self._status(409, "AlreadyExists", f'{kind.resource} "{name}" already exists')
                        return
                    if kind.namespaced and ("v1", "namespaces", "", ns) not in fake.store and ns != "default":
                        self._status(404, "NotFound", f'namespaces "{ns}" not found')
                        return
                    fake._stamp(obj, kind, ns)
                    fake.store[key] = obj
                    self.send_json(201, obj)
                elif method in ("PUT", "PATCH"):
                    if existing is None:
                        self._status(404, "NotFound", f'{kind.resource} "{name}" not found')
                        return
                    body = self._body()
                    obj = body if method == "PUT" else merge_patch(existing, body)
                    obj.setdefault("metadata", {})["uid"] = existing["metadata"]["uid"]
                    obj["metadata"]["generation"] = existing["metadata"].get("generation", 1)
                    fake._stamp(obj, kind, ns)
                    fake.store[key] = obj
                    self.send_json(200, obj)
                elif method == "DELETE":
                    if existing is None:
                        self._status(404, "NotFound", f'{kind.resource} "{name}" not found')
                        return
                    del fake.store[key]
                    self.send_json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})

            def _scale(self, method: str, kind: Kind, key: tuple[str, str, str, str], obj: dict[str, Any] | None) -> None:
                if obj is None:
                    self._status(404, "NotFound", f'{kind.resource}.apps "{key[3]}" not found')
                    return
                if method in ("PUT", "PATCH"):
                    body = self._body() or {}
                    replicas = (body.get("spec") or {}).get("replicas")
                    if not isinstance(replicas, int) or replicas < 0:
                        self._status(422, "Invalid", "spec.replicas: must be a non-negative integer")
                        return
                    obj.setdefault("spec", {})["replicas"] = replicas
                    fake._stamp(obj, kind, key[2])
                elif method != "GET":
                    self._status(405, "MethodNotAllowed", f"{method} is not allowed on scale")
                    return
                labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                self.send_json(200, {
                    "kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {"name": key[3], "namespace": key[2], "uid": obj["metadata"]["uid"],
                                 "resourceVersion": obj["metadata"]["resourceVersion"]},
                    "spec": {"replicas": obj["spec"].get("replicas", 1)},
                    "status": {"replicas": obj["spec"].get("replicas", 1),
                               "selector": ",".join(f"{k}={v}" for k, v in labels.items())},
                })

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler


def requests_matching(api: FakeKubernetes, method: str, pattern: str) -> Iterator[str]:
    return (path for m, path in api.requests if m == method and re.search(pattern, path))
