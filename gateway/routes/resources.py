"""Keptn's resource-service under `/api/resource-service/v1`: files at project, stage and service level.

Bodies carry base64 contents (`{"resources": [{"resourceURI", "resourceContent"}]}`); every write is a
new version on the resources topic, answered with `commitID` = that version; `?gitCommitID=` reads a
kept earlier version. Files of a kind Tidegate knows (shipyard, SLO, SLI, remediation, test and job
configurations, webhooks) are validated before they are stored: a broken one is refused with the
file, line and field of each problem. Writes into a stage or service that does not exist are 404s.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from tidegate.schemas.errors import FileError
from tidegate.schemas.files import FileKind, LoadedFile
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.resources import SHIPYARD, Resource

from ..auth import require_token
from ..catalog import INTERNAL_PREFIX
from ..context import Gateway, gateway
from ..errors import invalid, not_found
from ..files import check_file
from ..models import CommitOut, ResourceContentIn, ResourceMetadata, ResourceOut, Resources, ResourcesIn
from ..rules import Problem
from .control_plane import page_key_offset, require_service, require_shipyard, require_stage

router = APIRouter(prefix="/api/resource-service/v1", tags=["resource-service"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]
CommitQuery = Annotated[str | None, Query(alias="gitCommitID", description="read this version instead of the latest")]
PageSize = Annotated[int | None, Query(alias="pageSize", ge=1, le=500)]
NextPageKey = Annotated[str | None, Query(alias="nextPageKey")]

# Files validated on upload, by name (the last path part) or by full path.
_KINDS_BY_NAME = {
    "shipyard.yaml": FileKind.SHIPYARD,
    "slo.yaml": FileKind.SLO,
    "sli.yaml": FileKind.SLI,
    "remediation.yaml": FileKind.REMEDIATION,
    "jmeter.conf.yaml": FileKind.JMETER,
    "locust.conf.yaml": FileKind.LOCUST,
    "webhook.yaml": FileKind.WEBHOOK,
}
_KINDS_BY_PATH = {"job/config.yaml": FileKind.JOB_EXECUTOR, "command/config.yaml": FileKind.COMMAND}


def kind_of(path: str) -> FileKind | None:
    return _KINDS_BY_PATH.get(path) or _KINDS_BY_NAME.get(posixpath.basename(path))


def clean_uri(field: str, uri: str) -> str:
    path = uri.strip().lstrip("/")
    normal = posixpath.normpath(path) if path else ""
    if not path or normal in (".", "") or normal.startswith("..") or "\x00" in path:
        raise invalid([Problem(field, f"{uri!r} is not a file path; give a relative path such as slo.yaml or helm/carts.tgz")])
    if normal.startswith(INTERNAL_PREFIX) or normal == INTERNAL_PREFIX.rstrip("/"):
        raise invalid([Problem(field, f"{uri!r} is under {INTERNAL_PREFIX}, which Tidegate keeps for itself")])
    return normal


def _content(field: str, encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise invalid([Problem(field, "is not valid base64; encode the file's bytes with base64")]) from None


async def _validate(field: str, path: str, content: bytes, *, project_level: bool) -> LoadedFile | None:
    """The checked file when it is of a kind Tidegate knows (None: stored as it is), or a 400."""
    kind = kind_of(path)
    if kind is None:
        return None
    if kind is FileKind.SHIPYARD and not project_level:
        raise invalid([Problem(field, "shipyard.yaml belongs at project level (POST /project/{project}/resource)")])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid([Problem(field, f"{path} is not UTF-8 text; save it as UTF-8")]) from None
    try:
        return await check_file(text, path, kind)
    except FileError as error:
        raise invalid([Problem(field, str(problem)) for problem in error.problems], f"the file {path}") from None


def _metadata(resource: Resource) -> ResourceMetadata:
    return ResourceMetadata(branch=resource.stage or "main", version=resource.version)


async def _write(
    gw: Gateway, project: str, stage: str, service: str, items: Sequence[tuple[str, str, str]]
) -> CommitOut:
    """items: (field name for errors, uri, base64 content). All are checked before any is written."""
    resources = []
    warnings: list[str] = []
    for field, uri, encoded in items:
        path = clean_uri(f"{field}.resourceURI", uri)
        content = _content(f"{field}.resourceContent", encoded)
        loaded = await _validate(field, path, content, project_level=not stage and not service)
        if loaded is not None and isinstance(loaded.model, Shipyard):
            warnings += await gw.provision_tasks(loaded.model)  # before the shipyard is stored
        resources.append(Resource.new(project, path, content, stage=stage, service=service))
    await gw.resources.write(resources)
    last = resources[-1]
    return CommitOut(commitID=last.version, metadata=_metadata(last), warnings=warnings or None)


def _read(gw: Gateway, project: str, stage: str, service: str, uri: str, version: str | None) -> ResourceOut:
    path = clean_uri("path:resourceURI", uri)
    resource = gw.catalog.file(project, path, stage, service, version)
    if resource is None:
        where = "/".join(part for part in (project, stage, service) if part)
        if version:
            raise not_found("resource", path, f"version {version} of it is not kept at {where} (only recent versions are)")
        raise not_found("resource", path, f"there is no such file at {where}")
    return ResourceOut(
        resourceURI=resource.path,
        resourceContent=base64.b64encode(resource.content).decode("ascii"),
        metadata=_metadata(resource),
    )


def _list(gw: Gateway, project: str, stage: str, service: str, size: int | None, key: str | None) -> Resources:
    files = gw.catalog.files(project, stage, service)
    page = size or 20
    start = page_key_offset(key)
    chunk = files[start : start + page]
    following = start + len(chunk)
    return Resources(
        resources=[ResourceOut(resourceURI=r.path, metadata=_metadata(r)) for r in chunk],
        nextPageKey=str(following) if following < len(files) else None,
        totalCount=len(files),
        pageSize=page,
    )


async def _delete(gw: Gateway, project: str, stage: str, service: str, uri: str) -> CommitOut:
    path = clean_uri("path:resourceURI", uri)
    resource = gw.catalog.file(project, path, stage, service)
    if resource is None:
        raise not_found("resource", path)
    if path == SHIPYARD and not stage:
        raise invalid([Problem("path:resourceURI", "the shipyard cannot be deleted alone; delete the project instead")])
    await gw.resources.delete([resource.key])
    return CommitOut(commitID=resource.version, metadata=_metadata(resource))


def _many(body: ResourcesIn) -> list[tuple[str, str, str]]:
    return [(f"body:resources[{i}]", r.resourceURI, r.resourceContent) for i, r in enumerate(body.resources)]


# --------------------------------------------------------------------- project level

P = "/project/{project}/resource"


@router.get(P, response_model=Resources, summary="Files at project level")
async def project_list(project: str, gw: Gw, page_size: PageSize = None, next_page_key: NextPageKey = None) -> Resources:
    require_shipyard(gw, project)
    return _list(gw, project, "", "", page_size, next_page_key)


@router.post(P, response_model=CommitOut, status_code=status.HTTP_201_CREATED, summary="Add files at project level")
async def project_create(project: str, body: ResourcesIn, gw: Gw) -> CommitOut:
    require_shipyard(gw, project)
    return await _write(gw, project, "", "", _many(body))


@router.put(P, response_model=CommitOut, summary="Add or replace files at project level")
async def project_update(project: str, body: ResourcesIn, gw: Gw) -> CommitOut:
    require_shipyard(gw, project)
    return await _write(gw, project, "", "", _many(body))


@router.get(P + "/{resourceURI:path}", response_model=ResourceOut, summary="One project-level file")
async def project_get(project: str, resourceURI: str, gw: Gw, commit: CommitQuery = None) -> ResourceOut:
    require_shipyard(gw, project)
    return _read(gw, project, "", "", resourceURI, commit)


@router.put(P + "/{resourceURI:path}", response_model=CommitOut, summary="Replace one project-level file")
async def project_put(project: str, resourceURI: str, body: ResourceContentIn, gw: Gw) -> CommitOut:
    require_shipyard(gw, project)
    return await _write(gw, project, "", "", [("body", resourceURI, body.resourceContent)])


@router.delete(P + "/{resourceURI:path}", response_model=CommitOut, summary="Delete one project-level file")
async def project_delete(project: str, resourceURI: str, gw: Gw) -> CommitOut:
    require_shipyard(gw, project)
    return await _delete(gw, project, "", "", resourceURI)


# --------------------------------------------------------------------- stage level

S = "/project/{project}/stage/{stage}/resource"


@router.get(S, response_model=Resources, summary="Files at stage level")
async def stage_list(
    project: str, stage: str, gw: Gw, page_size: PageSize = None, next_page_key: NextPageKey = None
) -> Resources:
    require_stage(gw, project, stage)
    return _list(gw, project, stage, "", page_size, next_page_key)


@router.post(S, response_model=CommitOut, status_code=status.HTTP_201_CREATED, summary="Add files at stage level")
async def stage_create(project: str, stage: str, body: ResourcesIn, gw: Gw) -> CommitOut:
    require_stage(gw, project, stage)
    return await _write(gw, project, stage, "", _many(body))


@router.put(S, response_model=CommitOut, summary="Add or replace files at stage level")
async def stage_update(project: str, stage: str, body: ResourcesIn, gw: Gw) -> CommitOut:
    require_stage(gw, project, stage)
    return await _write(gw, project, stage, "", _many(body))


@router.get(S + "/{resourceURI:path}", response_model=ResourceOut, summary="One stage-level file")
async def stage_get(project: str, stage: str, resourceURI: str, gw: Gw, commit: CommitQuery = None) -> ResourceOut:
    require_stage(gw, project, stage)
    return _read(gw, project, stage, "", resourceURI, commit)


@router.put(S + "/{resourceURI:path}", response_model=CommitOut, summary="Replace one stage-level file")
async def stage_put(project: str, stage: str, resourceURI: str, body: ResourceContentIn, gw: Gw) -> CommitOut:
    require_stage(gw, project, stage)
    return await _write(gw, project, stage, "", [("body", resourceURI, body.resourceContent)])


@router.delete(S + "/{resourceURI:path}", response_model=CommitOut, summary="Delete one stage-level file")
async def stage_delete(project: str, stage: str, resourceURI: str, gw: Gw) -> CommitOut:
    require_stage(gw, project, stage)
    return await _delete(gw, project, stage, "", resourceURI)


# --------------------------------------------------------------------- service level

V = "/project/{project}/stage/{stage}/service/{service}/resource"


@router.get(V, response_model=Resources, summary="Files of a service in a stage")
async def service_list(
    project: str, stage: str, service: str, gw: Gw, page_size: PageSize = None, next_page_key: NextPageKey = None
) -> Resources:
    require_service(gw, project, stage, service)
    return _list(gw, project, stage, service, page_size, next_page_key)


@router.post(V, response_model=CommitOut, status_code=status.HTTP_201_CREATED, summary="Add files to a service")
async def service_create(project: str, stage: str, service: str, body: ResourcesIn, gw: Gw) -> CommitOut:
    require_service(gw, project, stage, service)
    return await _write(gw, project, stage, service, _many(body))


@router.put(V, response_model=CommitOut, summary="Add or replace files of a service")
async def service_update(project: str, stage: str, service: str, body: ResourcesIn, gw: Gw) -> CommitOut:
    require_service(gw, project, stage, service)
    return await _write(gw, project, stage, service, _many(body))


@router.get(V + "/{resourceURI:path}", response_model=ResourceOut, summary="One file of a service")
async def service_get(
    project: str, stage: str, service: str, resourceURI: str, gw: Gw, commit: CommitQuery = None
) -> ResourceOut:
    require_service(gw, project, stage, service)
    return _read(gw, project, stage, service, resourceURI, commit)


@router.put(V + "/{resourceURI:path}", response_model=CommitOut, summary="Replace one file of a service")
async def service_put(
    project: str, stage: str, service: str, resourceURI: str, body: ResourceContentIn, gw: Gw
) -> CommitOut:
    require_service(gw, project, stage, service)
    return await _write(gw, project, stage, service, [("body", resourceURI, body.resourceContent)])


@router.delete(V + "/{resourceURI:path}", response_model=CommitOut, summary="Delete one file of a service")
async def service_delete(project: str, stage: str, service: str, resourceURI: str, gw: Gw) -> CommitOut:
    require_service(gw, project, stage, service)
    return await _delete(gw, project, stage, service, resourceURI)
