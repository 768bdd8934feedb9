"""Projects, stages, services and files, as the resources topic holds them. No I/O.

- A project exists when its `shipyard.yaml` (project level) exists; its stages are the shipyard's.
- A project's creation time is in its record `.tidegate/project.json` (written with its first shipyard;
  projects created before it existed show their shipyard's last write instead).
- A service exists in a stage when its registry record `.tidegate/service.json` exists at service level
  in that stage (written for every stage when the service is created, as Keptn created services in
  all stages).
- Files are read at exactly the level asked (project, stage, or service in a stage), as Keptn's
  resource service did; agents resolve service -> stage -> project themselves.
- Each write is a new version (a content hash); earlier versions seen since the gateway started stay
  readable by `gitCommitID` (the resources topic is compacted, so the broker keeps only the latest).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from tidegate.schemas.errors import FileError
from tidegate.schemas.files import load_text
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.resources import SHIPYARD, Resource, ResourceStore, resource_key

SERVICE_MARKER = ".tidegate/service.json"
PROJECT_MARKER = ".tidegate/project.json"
INTERNAL_PREFIX = ".tidegate/"
KEPT_VERSIONS = 20


class VersionedResourceStore(ResourceStore):
    """A ResourceStore that also remembers the last versions of each file it saw."""

    def __init__(self, kept: int = KEPT_VERSIONS) -> None:
        super().__init__()
        self._kept = kept
        self._versions: dict[str, OrderedDict[str, Resource]] = {}

    def apply(self, key: bytes | str, value: bytes | None) -> None:
        super().apply(key, value)
        text_key = key.decode("utf-8") if isinstance(key, bytes) else key
        current = self._files.get(text_key)
        if current is not None:
            self._remember(current)

    def put(self, resource: Resource) -> None:
        super().put(resource)
        self._remember(resource)

    def _remember(self, resource: Resource) -> None:
        versions = self._versions.setdefault(resource.key, OrderedDict())
        versions.pop(resource.version, None)
        versions[resource.version] = resource
        while len(versions) > self._kept:
            versions.popitem(last=False)

    def version(self, project: str, path: str, version: str, stage: str = "", service: str = "") -> Resource | None:
        versions = self._versions.get(resource_key(project, stage, service, path))
        return versions.get(version) if versions is not None else None


@dataclass(frozen=True, slots=True)
class ShipyardProblem:
    """The stored shipyard of a project cannot be read (should not happen: it is validated on write)."""

    project: str
    message: str


class Catalog:
    """Read access to the configuration, with the shipyard parsed once per version."""

    def __init__(self, store: VersionedResourceStore) -> None:
        self.store = store
        self._parsed: dict[tuple[str, str], Shipyard | ShipyardProblem] = {}

    # --- projects and stages
    def projects(self) -> list[str]:
        return sorted(p for p in self.store.projects() if self.store.get(p, SHIPYARD) is not None)

    def shipyard_file(self, project: str) -> Resource | None:
        return self.store.get(project, SHIPYARD)

    def shipyard(self, project: str) -> Shipyard | None:
        """The project's shipyard, or None if the project does not exist."""
        resource = self.shipyard_file(project)
        if resource is None:
            return None
        cache_key = (project, resource.version)
        if cache_key not in self._parsed:
            try:
                self._parsed[cache_key] = load_text(resource.text, SHIPYARD, kind="shipyard").expect(Shipyard)
            except (FileError, UnicodeDecodeError, TypeError) as error:
                self._parsed[cache_key] = ShipyardProblem(project, str(error))
        parsed = self._parsed[cache_key]
        return parsed if isinstance(parsed, Shipyard) else None

    def stages(self, project: str) -> list[str]:
        shipyard = self.shipyard(project)
        return shipyard.stage_names if shipyard is not None else []

    # --- services
    def services(self, project: str, stage: str) -> list[str]:
        return sorted(
            r.service
            for r in self.store.files(project)
            if r.stage == stage and r.service and r.path == SERVICE_MARKER
        )

    def service_stages(self, project: str, service: str) -> list[str]:
        return [stage for stage in self.stages(project) if self.store.get(project, SERVICE_MARKER, stage, service)]

    def service_exists(self, project: str, service: str, stage: str | None = None) -> bool:
        if stage:
            return self.store.get(project, SERVICE_MARKER, stage, service) is not None
        return bool(self.service_stages(project, service))

    # --- files
    def files(self, project: str, stage: str = "", service: str = "") -> list[Resource]:
        """The files at exactly this level, without Tidegate's own records."""
        return [
            r
            for r in self.store.files(project)
            if r.stage == stage and r.service == service and not r.path.startswith(INTERNAL_PREFIX)
        ]

    def all_keys(self, project: str, *, stage: str | None = None, service: str | None = None) -> list[str]:
        """Keys of every record of a project (or of one service, optionally in one stage)."""
        return [
            r.key
            for r in self.store.files(project)
            if (service is None or r.service == service) and (stage is None or r.stage == stage)
        ]

    def file(self, project: str, path: str, stage: str = "", service: str = "", version: str | None = None) -> Resource | None:
        if version:
            current = self.store.get(project, path, stage, service)
            if current is not None and current.version == version:
                return current
            return self.store.version(project, path, version, stage, service)
        return self.store.get(project, path, stage, service)


def project_record(project: str, now: datetime | None = None) -> Resource:
    """The record of when `project` was created."""
    moment = (now or datetime.now(UTC)).isoformat()
    content = json.dumps({"projectName": project, "created": moment}).encode("utf-8")
    return Resource.new(project, PROJECT_MARKER, content)


def creation_date(record: Resource | None) -> str | None:
    """A record's creation time as Keptn answered it: Unix nanoseconds, as a decimal string (its CLI
    parses exactly that). The record's `created`, else the time it was written."""
    if record is None:
        return None
    try:
        created = json.loads(record.content).get("created")
    except (ValueError, AttributeError):
        created = None
    for text in (created, record.updated):
        if isinstance(text, str) and text:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                continue
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            seconds = int(moment.timestamp())
            return str(seconds * 1_000_000_000 + moment.microsecond * 1000)
    return None


def service_record(project: str, stage: str, service: str, now: datetime | None = None) -> Resource:
    """The registry record that makes `service` exist in `stage`."""
    moment = (now or datetime.now(UTC)).isoformat()
    content = json.dumps({"serviceName": service, "created": moment}).encode("utf-8")
    return Resource.new(project, SERVICE_MARKER, content, stage=stage, service=service)
