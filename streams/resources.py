"""The resources view: configuration files as versioned records on the compacted `resources` topic.

Record key: `project/stage/service/path` (empty stage/service for project-level files, e.g.
`sockshop///shipyard.yaml`). Record value: JSON `{project, stage, service, path, content (base64),
version, updated}`; a tombstone (null value) deletes the file. `version` is a content hash, so
writing the same file twice keeps its version, and every decision can name the exact file it used.

`ResourceStore` is the pure in-memory index (resolution service -> stage -> project, as Keptn's
resource service did); `ResourceView` keeps one up to date from Kafka in the background.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tidegate.streams.settings import Settings

if TYPE_CHECKING:
    from tidegate.streams.kafka import Consumed

log = logging.getLogger(__name__)

SHIPYARD = "shipyard.yaml"
SLO = "slo.yaml"
SLI_PROMETHEUS = "prometheus/sli.yaml"
REMEDIATION = "remediation.yaml"


def content_version(content: bytes) -> str:
    """The version of a file's content: a short SHA-256, stable for identical content."""
    return hashlib.sha256(content).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Resource:
    project: str
    stage: str
    service: str
    path: str
    content: bytes
    version: str
    updated: str

    @property
    def key(self) -> str:
        return resource_key(self.project, self.stage, self.service, self.path)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    @classmethod
    def new(cls, project: str, path: str, content: bytes, stage: str = "", service: str = "") -> Resource:
        return cls(
            project=project,
            stage=stage,
            service=service,
            path=path.lstrip("/"),
            content=content,
            version=content_version(content),
            updated=datetime.now(UTC).isoformat(),
        )

    def to_record(self) -> tuple[bytes, bytes]:
        value = {
            "project": self.project,
            "stage": self.stage,
            "service": self.service,
            "path": self.path,
            "content": base64.b64encode(self.content).decode("ascii"),
            "version": self.version,
            "updated": self.updated,
        }
        return self.key.encode("utf-8"), json.dumps(value).encode("utf-8")

    @classmethod
    def from_record(cls, value: bytes) -> Resource:
        raw: dict[str, Any] = json.loads(value)
        return cls(
            project=raw["project"],
            stage=raw.get("stage") or "",
            service=raw.get("service") or "",
            path=raw["path"],
            content=base64.b64decode(raw["content"]),
            version=raw["version"],
            updated=raw.get("updated", ""),
        )


def resource_key(project: str, stage: str, service: str, path: str) -> str:
    return f"{project}/{stage}/{service}/{path.lstrip('/')}"


class ResourceStore:
    """The latest version of every file, by key. Pure: fed records, answers lookups."""

    def __init__(self) -> None:
        self._files: dict[str, Resource] = {}

    def apply(self, key: bytes | str, value: bytes | None) -> None:
        text_key = key.decode("utf-8") if isinstance(key, bytes) else key
        if value is None:
            self._files.pop(text_key, None)
            return
        try:
            resource = Resource.from_record(value)
        except (ValueError, KeyError) as exc:
            log.warning("ignoring unreadable resource record %s: %s", text_key, exc)
            return
        self._files[text_key] = resource

    def put(self, resource: Resource) -> None:
        self._files[resource.key] = resource

    def get(self, project: str, path: str, stage: str = "", service: str = "") -> Resource | None:
        return self._files.get(resource_key(project, stage, service, path))

    def resolve(self, project: str, path: str, stage: str = "", service: str = "") -> Resource | None:
        """The most specific file: service in stage, then stage, then project."""
        candidates = []
        if stage and service:
            candidates.append((stage, service))
        if stage:
            candidates.append((stage, ""))
        candidates.append(("", ""))
        for cand_stage, cand_service in candidates:
            found = self.get(project, path, cand_stage, cand_service)
            if found is not None:
                return found
        return None

    def layers(self, project: str, path: str, stage: str = "", service: str = "") -> list[Resource]:
        """Every level that has the file, project first (for files merged across levels, like SLIs)."""
        levels = [("", "")]
        if stage:
            levels.append((stage, ""))
            if service:
                levels.append((stage, service))
        found = [self.get(project, path, s, v) for s, v in levels]
        return [r for r in found if r is not None]

    def projects(self) -> list[str]:
        return sorted({r.project for r in self._files.values()})

    def files(self, project: str | None = None) -> list[Resource]:
        return sorted(
            (r for r in self._files.values() if project is None or r.project == project), key=lambda r: r.key
        )


class ResourceView:
    """Follows the `resources` topic from the beginning into a ResourceStore, in the background.

    Every worker reads all partitions (no consumer group): configuration is small and every agent
    may need any project's files. `ready` is set once the view has caught up with the end offsets
    it saw at start, so an agent never decides on a half-loaded configuration. It connects with the
    `Settings`' security (SASL, TLS) through the Kafka layer's `CompactedReader`.
    """

    def __init__(self, settings: Settings, topic: str, store: ResourceStore | None = None) -> None:
        from tidegate.streams.kafka import CompactedReader

        self.topic = topic
        self.store = store or ResourceStore()
        self.reader = CompactedReader(settings, topic, self._apply)
        self.ready = self.reader.ready

    def _apply(self, consumed: Consumed) -> None:
        if consumed.record.key is not None:
            self.store.apply(consumed.record.key, consumed.record.value)

    async def start(self) -> None:
        """Follow the topic in a background task (stop with `stop()`)."""
        await self.reader.start()

    async def run(self) -> None:
        """Follow the topic in the calling task until cancelled (for hosts that own their tasks, like Faust)."""
        await self.reader.run()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        await self.reader.wait_ready(timeout)

    async def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything written to the topic before this call has been read (read-your-writes).

        Agents call this when a file they need is missing, in case it was written a moment ago.
        Returns False when the view could not catch up within `timeout`.
        """
        return await self.reader.sync(timeout)

    async def stop(self) -> None:
        await self.reader.stop()
