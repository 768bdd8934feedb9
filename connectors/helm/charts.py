"""Charts and manifests, as Keptn's helm-service handled them. Pure: bytes and YAML in, bytes and YAML out.

- `merge_values`: `configurationChange.values` deep-merged into the chart's values.yaml (a new chart).
- `service_uris`: the URIs Keptn reported: local `http://<svc>.<project>-<stage>:<lowest TCP port>`,
  public from the hostname template.
- `generated_chart`: blue/green without Istio. Keptn generated `<svc>-generated` with Istio
  VirtualServices and DestinationRules to move traffic. Tidegate needs no mesh: the generated chart
  holds a copy of the user's Deployments renamed `<name>-primary` (selector and pod label values
  suffixed `-primary`, so the user's Service never selects them) and two Services, `<svc>-primary`
  (the stable version) and `<svc>-canary` (the user's chart, the new version). Tests address the
  canary Service; clients address the primary. Promotion regenerates the primary from the new
  manifest and scales the canary to 0, as Keptn did.
- `scale_manifest`: add to `spec.replicas` of every Deployment (Keptn's scaling action).
The generated chart's templates read the manifest with `.Files.Get`, so nothing in it is rendered twice.

values.yaml and manifests are read with the one bounded YAML reader (schemas.yamlreader: 1 MiB, 64
levels, alias expansion counted) with YAML 1.1 scalars, as Helm reads them, so an alias bomb in a
chart's values is refused with the limit and rewriting values.yaml changes nothing Helm sees.

Archives are read with Helm's own bounds (a chart is written by a resource author): at most
MAX_CHART_BYTES unpacked, MAX_FILE_BYTES per file and MAX_FILES files, counted while the archive is
unpacked (tar headers included), so a small gzip bomb is refused with the limit instead of filling memory.
"""

from __future__ import annotations

import copy
import gzip
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from string import Template
from typing import Any

import yaml

from tidegate.schemas.errors import FileError, TidegateError
from tidegate.schemas.yamlreader import load_yaml, load_yaml_all

PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"
MANIFEST_FILE = "manifest.yaml"
MAX_CHART_BYTES = 100 * 1024 * 1024
"""Unpacked bytes of one chart archive (Helm's MaxDecompressedChartSize)."""
MAX_FILE_BYTES = 5 * 1024 * 1024
"""Bytes of one file in a chart (Helm's MaxDecompressedFileSize)."""
MAX_FILES = 10_000


class ChartError(TidegateError, ValueError):
    """A chart archive or manifest that cannot be used; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Chart:
    """An unpacked chart archive: file paths (with the top directory) to bytes."""

    files: dict[str, bytes]

    @property
    def root(self) -> str:
        tops = {path.split("/", 1)[0] for path in self.files}
        if len(tops) != 1:
            raise ChartError(f"a chart archive must hold one top directory, found {sorted(tops)}")
        return tops.pop()

    def file(self, name: str) -> bytes | None:
        return self.files.get(f"{self.root}/{name}")


class _Bounded(io.RawIOBase):
    """A readable stream that refuses to give more than `limit` bytes in total (a chart's, plus its tar headers)."""

    def __init__(self, stream: io.BufferedIOBase, limit: int, where: str) -> None:
        self._stream, self._limit, self._where, self.total = stream, limit, where, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._stream.readinto(buffer)
        self.total += count
        if self.total > self._limit:
            raise ChartError(f"{self._where} unpacks to more than {MAX_CHART_BYTES // 2**20} MiB, the limit of a chart "
                             "(Helm's as well); make the chart smaller")
        return count


def read_chart(archive: bytes, where: str = "chart") -> Chart:
    """Unpack a chart archive within MAX_CHART_BYTES, MAX_FILE_BYTES and MAX_FILES; ChartError otherwise."""
    # Stream mode: the archive is read once, front to back, through the bound (tar headers included).
    unpacked = _Bounded(gzip.GzipFile(fileobj=io.BytesIO(archive)), MAX_CHART_BYTES + 1024 * 1024, where)
    try:
        with tarfile.open(fileobj=unpacked, mode="r|") as tar:
            files: dict[str, bytes] = {}
            for member in tar:
                if not member.isfile():
                    continue
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise ChartError(f"{where}: unsafe path {member.name!r} in the archive")
                if member.size > MAX_FILE_BYTES:
                    raise ChartError(f"{where}: {member.name} has {member.size} bytes, over the limit of "
                                     f"{MAX_FILE_BYTES // 2**20} MiB for one file of a chart")
                if len(files) >= MAX_FILES:
                    raise ChartError(f"{where} holds more than {MAX_FILES} files, the limit of a chart")
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[member.name.removeprefix("./")] = extracted.read(MAX_FILE_BYTES + 1)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ChartError(f"{where} is not a gzipped tar archive of a Helm chart: {error}") from error
    chart = Chart(files)
    if chart.file("Chart.yaml") is None:
        raise ChartError(f"{where} has no Chart.yaml under its top directory")
    return chart


def write_chart(chart: Chart) -> bytes:
    buffer = io.BytesIO()
    # A fixed mtime keeps the archive (and so the resource version) the same for the same content.
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(chart.files):
            info = tarfile.TarInfo(path)
            info.size = len(chart.files[path])
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(chart.files[path]))
    return buffer.getvalue()


def deep_merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(extra)


def merge_values(archive: bytes, values: dict[str, Any], where: str = "chart") -> bytes:
    """The chart with `values` deep-merged into its values.yaml."""
    chart = read_chart(archive, where)
    raw = chart.file("values.yaml")
    try:
        current = load_yaml(_text(raw, f"{where}: values.yaml"), f"{where}: values.yaml", yaml11=True) if raw else {}
    except FileError as error:
        raise ChartError(f"the chart's values cannot be used: {error}") from None
    merged = deep_merge(current or {}, values)
    files = dict(chart.files)
    files[f"{chart.root}/values.yaml"] = yaml.safe_dump(merged, sort_keys=False).encode()
    return write_chart(Chart(files))


def parse_manifest(text: str, where: str = "the rendered manifest") -> list[dict[str, Any]]:
    """The objects of a manifest (documents with a `kind`), read as Helm reads them (YAML 1.1) within
    the YAML reader's limits; ChartError otherwise."""
    try:
        documents = load_yaml_all(text, where, yaml11=True)
    except FileError as error:
        raise ChartError(f"{where} cannot be used: {error}") from None
    return [doc for doc in documents if isinstance(doc, dict) and doc.get("kind")]


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ChartError(f"{where} is not UTF-8 text: {error}") from None


def _service(docs: Iterable[dict[str, Any]], name: str) -> dict[str, Any] | None:
    services = [d for d in docs if d.get("kind") == "Service"]
    for service in services:
        if (service.get("metadata") or {}).get("name") == name:
            return service
    return services[0] if services else None


def lowest_tcp_port(service: dict[str, Any]) -> int | None:
    ports = [p.get("port") for p in (service.get("spec") or {}).get("ports") or []
             if (p.get("protocol") or "TCP") == "TCP" and isinstance(p.get("port"), int)]
    return min(ports) if ports else None


@dataclass(frozen=True, slots=True)
class PublicHost:
    protocol: str = "http"
    suffix: str = "svc.cluster.local"
    port: str = "80"
    template: str = "${INGRESS_PROTOCOL}://${SERVICE}.${PROJECT}-${STAGE}.${INGRESS_HOSTNAME_SUFFIX}:${INGRESS_PORT}"


def service_uris(manifest: list[dict[str, Any]], service: str, project: str, stage: str,
                 public: PublicHost, service_name: str | None = None) -> tuple[list[str], list[str]]:
    """(deploymentURIsLocal, deploymentURIsPublic) for the Service `service_name` (default `service`)."""
    name = service_name or service
    found = _service(manifest, name)
    port = lowest_tcp_port(found) if found else None
    namespace = f"{project}-{stage}"
    local = [f"http://{name}.{namespace}:{port}" if port else f"http://{name}.{namespace}"]
    public_uri = Template(public.template).safe_substitute(
        INGRESS_PROTOCOL=public.protocol, SERVICE=name, PROJECT=project, STAGE=stage,
        INGRESS_HOSTNAME_SUFFIX=public.suffix, INGRESS_PORT=public.port,
    )
    return local, [public_uri]


def _suffixed_labels(labels: dict[str, Any] | None) -> dict[str, Any]:
    return {key: f"{value}{PRIMARY_SUFFIX}" for key, value in (labels or {}).items()}


def primary_objects(manifest: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """Deployments renamed `-primary` with disjoint labels, plus the primary and canary Services."""
    out: list[dict[str, Any]] = []
    for doc in manifest:
        if doc.get("kind") != "Deployment":
            continue
        primary = copy.deepcopy(doc)
        meta = primary.setdefault("metadata", {})
        meta["name"] = f"{meta.get('name', service)}{PRIMARY_SUFFIX}"
        meta["labels"] = _suffixed_labels(meta.get("labels"))
        spec = primary.setdefault("spec", {})
        selector = spec.setdefault("selector", {})
        selector["matchLabels"] = _suffixed_labels(selector.get("matchLabels"))
        template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), **selector["matchLabels"]}
        out.append(primary)
    original = _service(manifest, service)
    if original is None:
        raise ChartError(f"the chart renders no Service for {service}; blue/green needs one to split primary and canary")
    for suffix, selector in ((PRIMARY_SUFFIX, _suffixed_labels((original.get("spec") or {}).get("selector"))),
                             (CANARY_SUFFIX, (original.get("spec") or {}).get("selector") or {})):
        copied = copy.deepcopy(original)
        copied["metadata"] = {"name": f"{service}{suffix}", "labels": {"app.kubernetes.io/managed-by": "tidegate"}}
        copied["spec"] = {key: value for key, value in (copied.get("spec") or {}).items()
                          if key not in ("clusterIP", "clusterIPs")}
        copied["spec"]["selector"] = selector
        out.append(copied)
    return out


def generated_chart(objects: list[dict[str, Any]], service: str) -> bytes:
    """The `<svc>-generated` chart holding `objects` verbatim."""
    name = f"{service}-generated"
    chart_yaml = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": "0.1.0",
                                 "description": f"Primary and canary of {service}, generated by Tidegate"})
    return write_chart(Chart({
        f"{name}/Chart.yaml": chart_yaml.encode(),
        f"{name}/values.yaml": b"{}\n",
        f"{name}/{MANIFEST_FILE}": yaml.safe_dump_all(objects, sort_keys=False).encode(),
        f"{name}/templates/manifest.yaml": b'{{ .Files.Get "manifest.yaml" }}\n',
    }))


def generated_objects(archive: bytes, where: str) -> list[dict[str, Any]]:
    chart = read_chart(archive, where)
    raw = chart.file(MANIFEST_FILE)
    if raw is None:
        raise ChartError(f"{where} has no {MANIFEST_FILE}; it was not generated by Tidegate")
    return parse_manifest(_text(raw, f"{where}: {MANIFEST_FILE}"), f"{where}: {MANIFEST_FILE}")


def scale_manifest(objects: list[dict[str, Any]], delta: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Add `delta` to spec.replicas (default 1, never below 0) of every Deployment; the new counts."""
    scaled = copy.deepcopy(objects)
    counts = []
    for doc in scaled:
        if doc.get("kind") == "Deployment":
            spec = doc.setdefault("spec", {})
            spec["replicas"] = max(0, int(spec.get("replicas", 1)) + delta)
            counts.append(spec["replicas"])
    return scaled, counts
