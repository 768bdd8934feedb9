"""Keptn's shipyard-controller API under `/api/controlPlane/v1`: projects, stages, services, the
evaluation trigger, open `.triggered` events, sequence states and sequence controls."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from tidegate.readside.history.store import QueryError, SequenceFilter, page_offset
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import sequence_type
from tidegate.schemas.files import FileKind
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard
from tidegate.schemas.tidegate_events import ControlState, control_event
from tidegate.streams.resources import SHIPYARD, Resource

from ..auth import require_token
from ..catalog import PROJECT_MARKER, creation_date, project_record, service_record
from ..context import Gateway, gateway
from ..errors import ApiError, conflict, invalid, not_found
from ..files import check_file
from ..ingest import accept_event
from ..models import (
    CreateProject,
    CreateService,
    EvaluationRequest,
    EventIn,
    EventList,
    ExpandedProject,
    ExpandedService,
    ExpandedStage,
    KeptnContextOut,
    Message,
    Projects,
    SequenceControl,
    SequenceStates,
    Services,
    Stages,
    UpdateProject,
)
from ..rules import (
    PROJECT_NAME_MAX,
    SERVICE_NAME_MAX,
    EvaluationWindow,
    Problem,
    check_name,
    evaluation_window,
    keptn_context_for,
    parse_time,
)

router = APIRouter(prefix="/api/controlPlane/v1", tags=["controlPlane"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]


# --------------------------------------------------------------------- helpers


def decode_base64(field: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid([Problem(field, "is not valid base64; encode the file's bytes with base64")]) from None


async def validated_shipyard(content: bytes, field: str = "shipyard") -> Shipyard:
    """The shipyard in `content`, or a 400 naming each problem's line and field."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid([Problem(field, "is not UTF-8 text; save the shipyard as UTF-8")]) from None
    try:
        return (await check_file(text, SHIPYARD, FileKind.SHIPYARD)).expect(Shipyard)
    except FileError as error:
        raise invalid([Problem(field, str(problem)) for problem in error.problems], "the shipyard") from None


def page_key_offset(next_page_key: str | None) -> int:
    """The offset of a nextPageKey, or a 400 in Keptn's error format."""
    try:
        return page_offset(next_page_key)
    except QueryError as error:
        raise invalid([Problem("query:nextPageKey", str(error))]) from None


def require_shipyard(gw: Gateway, project: str) -> Shipyard:
    shipyard = gw.catalog.shipyard(project)
    if shipyard is None:
        raise not_found("project", project, "list the projects with GET /api/controlPlane/v1/project")
    return shipyard


def require_stage(gw: Gateway, project: str, stage: str) -> Shipyard:
    shipyard = require_shipyard(gw, project)
    if shipyard.stage(stage) is None:
        raise not_found("stage", stage, f"project {project!r} has the stages {', '.join(shipyard.stage_names)}")
    return shipyard


def require_service(gw: Gateway, project: str, stage: str, service: str) -> None:
    require_stage(gw, project, stage)
    if not gw.catalog.service_exists(project, service, stage):
        raise not_found("service", service, f"create it in project {project!r} first (POST .../project/{project}/service)")


def _parents(shipyard: Shipyard, stage_name: str) -> list[str]:
    stage = shipyard.stage(stage_name)
    if stage is None:
        return []
    parents = [t.stage for s in stage.sequences for t in s.triggeredOn if t.stage != stage_name]
    return list(dict.fromkeys(parents))


def _expanded_services(gw: Gateway, project: str, stage: str) -> list[ExpandedService]:
    out = []
    for name in gw.catalog.services(project, stage):
        marker = gw.catalog.store.get(project, ".tidegate/service.json", stage, name)
        out.append(
            ExpandedService(
                serviceName=name,
                deployedImage=gw.history.deployed_image(project, stage, name),
                creationDate=creation_date(marker),
            )
        )
    return out


def _expanded_stage(gw: Gateway, project: str, shipyard: Shipyard, stage: str) -> ExpandedStage:
    return ExpandedStage(
        stageName=stage, parentStages=_parents(shipyard, stage), services=_expanded_services(gw, project, stage)
    )


def _expanded_project(gw: Gateway, project: str) -> ExpandedProject:
    shipyard = require_shipyard(gw, project)
    resource = gw.catalog.shipyard_file(project)
    assert resource is not None
    return ExpandedProject(
        projectName=project,
        shipyard=resource.text,
        shipyardVersion=shipyard.apiVersion,
        creationDate=creation_date(gw.catalog.store.get(project, PROJECT_MARKER) or resource),
        stages=[_expanded_stage(gw, project, shipyard, s) for s in shipyard.stage_names],
    )


def _time_param(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise invalid([Problem(f"query:{name}", str(error))]) from None


PageSize = Annotated[int | None, Query(alias="pageSize", ge=1, le=500)]
NextPageKey = Annotated[str | None, Query(alias="nextPageKey")]


def _page(items: list[Any], page_size: int | None, next_page_key: str | None) -> tuple[list[Any], str | None, int]:
    size = page_size or 20
    start = page_key_offset(next_page_key)
    chunk = items[start : start + size]
    following = start + len(chunk)
    return chunk, (str(following) if following < len(items) else None), size


# --------------------------------------------------------------------- projects


@router.post("/project", status_code=status.HTTP_201_CREATED, response_model=Message, summary="Create a project")
async def create_project(body: CreateProject, gw: Gw) -> Message:
    problem = check_name("project", body.name, max_length=PROJECT_NAME_MAX)
    if problem is not None:
        raise invalid([problem])
    content = decode_base64("shipyard", body.shipyard)
    shipyard = await validated_shipyard(content)
    if gw.catalog.shipyard(body.name) is not None:
        raise conflict(f"project {body.name!r} already exists; update its shipyard with PUT /api/controlPlane/v1/project")
    warnings = await gw.provision_tasks(shipyard)  # before the shipyard exists, so no task waits for its topic
    await gw.resources.write([project_record(body.name, gw.clock()), Resource.new(body.name, SHIPYARD, content)])
    return Message(message=f"project {body.name} created", warnings=warnings or None)


@router.put("/project", response_model=Message, summary="Update a project's shipyard")
async def update_project(body: UpdateProject, gw: Gw) -> Message:
    require_shipyard(gw, body.name)
    if body.shipyard is None:
        return Message(message=f"project {body.name} unchanged (no shipyard given)")
    content = decode_base64("shipyard", body.shipyard)
    warnings = await gw.provision_tasks(await validated_shipyard(content))
    await gw.resources.write([Resource.new(body.name, SHIPYARD, content)])
    return Message(message=f"project {body.name} updated", warnings=warnings or None)


@router.get("/project", response_model=Projects, summary="List projects")
async def list_projects(gw: Gw, page_size: PageSize = None, next_page_key: NextPageKey = None) -> Projects:
    names = gw.catalog.projects()
    chunk, following, size = _page(names, page_size, next_page_key)
    projects = [_expanded_project(gw, name) for name in chunk if gw.catalog.shipyard(name) is not None]
    return Projects(projects=projects, nextPageKey=following, totalCount=len(names), pageSize=size)


@router.get("/project/{project}", response_model=ExpandedProject, summary="A project with its stages and services")
async def get_project(project: str, gw: Gw) -> ExpandedProject:
    return _expanded_project(gw, project)


@router.delete("/project/{project}", response_model=Message, summary="Delete a project and all its files")
async def delete_project(project: str, gw: Gw) -> Message:
    if gw.catalog.shipyard_file(project) is None:
        raise not_found("project", project)
    await gw.resources.delete(gw.catalog.all_keys(project))
    return Message(message=f"project {project} deleted")


# --------------------------------------------------------------------- stages


@router.get("/project/{project}/stage", response_model=Stages, summary="The stages of a project")
async def list_stages(project: str, gw: Gw, page_size: PageSize = None, next_page_key: NextPageKey = None) -> Stages:
    shipyard = require_shipyard(gw, project)
    chunk, following, size = _page(shipyard.stage_names, page_size, next_page_key)
    return Stages(
        stages=[_expanded_stage(gw, project, shipyard, s) for s in chunk],
        nextPageKey=following,
        totalCount=len(shipyard.stage_names),
        pageSize=size,
    )


@router.get("/project/{project}/stage/{stage}", response_model=ExpandedStage, summary="One stage")
async def get_stage(project: str, stage: str, gw: Gw) -> ExpandedStage:
    shipyard = require_stage(gw, project, stage)
    return _expanded_stage(gw, project, shipyard, stage)


# --------------------------------------------------------------------- services


@router.post("/project/{project}/service", status_code=status.HTTP_201_CREATED, response_model=Message,
             summary="Create a service in every stage")
async def create_service(project: str, body: CreateService, gw: Gw) -> Message:
    shipyard = require_shipyard(gw, project)
    problem = check_name("service", body.serviceName, max_length=SERVICE_NAME_MAX)
    if problem is not None:
        raise invalid([problem])
    if gw.catalog.service_exists(project, body.serviceName):
        raise conflict(f"service {body.serviceName!r} already exists in project {project!r}")
    now = gw.clock()
    await gw.resources.write([service_record(project, stage, body.serviceName, now) for stage in shipyard.stage_names])
    return Message(message=f"service {body.serviceName} created in {', '.join(shipyard.stage_names)}")


@router.delete("/project/{project}/service/{service}", response_model=Message,
               summary="Delete a service and its files in every stage")
async def delete_service(project: str, service: str, gw: Gw) -> Message:
    require_shipyard(gw, project)
    if not gw.catalog.service_exists(project, service):
        raise not_found("service", service, f"project {project!r} has no such service")
    await gw.resources.delete(gw.catalog.all_keys(project, service=service))
    return Message(message=f"service {service} deleted")


@router.get("/project/{project}/stage/{stage}/service", response_model=Services, summary="Services of a stage")
async def list_services(
    project: str, stage: str, gw: Gw, page_size: PageSize = None, next_page_key: NextPageKey = None
) -> Services:
    require_stage(gw, project, stage)
    services = _expanded_services(gw, project, stage)
    chunk, following, size = _page(services, page_size, next_page_key)
    return Services(services=chunk, nextPageKey=following, totalCount=len(services), pageSize=size)


@router.get("/project/{project}/stage/{stage}/service/{service}", response_model=ExpandedService,
            summary="One service in a stage")
async def get_service(project: str, stage: str, service: str, gw: Gw) -> ExpandedService:
    require_service(gw, project, stage, service)
    return next(s for s in _expanded_services(gw, project, stage) if s.serviceName == service)


# --------------------------------------------------------------------- evaluation trigger


@router.post(
    "/project/{project}/stage/{stage}/service/{service}/evaluation",
    response_model=KeptnContextOut,
    summary="Trigger an evaluation (quality gate) of a service in a stage",
)
async def trigger_evaluation(project: str, stage: str, service: str, body: EvaluationRequest, gw: Gw) -> KeptnContextOut:
    require_service(gw, project, stage, service)
    window = evaluation_window(start=body.start, end=body.end, timeframe=body.timeframe, now=gw.clock())
    if not isinstance(window, EvaluationWindow):
        raise invalid(window, "the evaluation request")
    data: dict[str, Any] = {
        "project": project,
        "stage": stage,
        "service": service,
        "evaluation": {"start": _iso(window.start), "end": _iso(window.end)},
    }
    if body.timeframe:
        data["evaluation"]["timeframe"] = body.timeframe
    if body.labels:
        data["labels"] = body.labels
    event: dict[str, Any] = {"type": sequence_type(stage, "evaluation", "triggered"), "source": "tidegate-gateway",
                             "data": data}
    if body.gitcommitid:
        event["gitcommitid"] = body.gitcommitid
    return KeptnContextOut(keptnContext=await accept_event(gw, event))


def _iso(moment: datetime) -> str:
    from tidegate.schemas.events import format_time

    return format_time(moment)


# --------------------------------------------------------------------- events


@router.post("/event", response_model=KeptnContextOut, summary="Send an event (same as /api/v1/event)")
async def post_event(body: EventIn, gw: Gw) -> KeptnContextOut:
    return KeptnContextOut(keptnContext=await accept_event(gw, body.model_dump(exclude_none=True)))


@router.get("/event/triggered/{eventType}", response_model=EventList,
            summary="Open .triggered events (no .finished yet), e.g. pending approvals")
async def open_triggered(
    eventType: str,
    gw: Gw,
    project: str | None = None,
    stage: str | None = None,
    service: str | None = None,
    eventID: str | None = None,
) -> EventList:
    if not eventType.endswith(".triggered"):
        raise invalid([Problem("path:eventType", f"{eventType!r} is not a .triggered event type, e.g. "
                                                 "sh.keptn.event.approval.triggered")])
    if project:
        require_shipyard(gw, project)
    events = gw.history.open_triggered(eventType, project=project, stage=stage, service=service, event_id=eventID)
    return EventList(events=events, totalCount=len(events), pageSize=len(events))


# --------------------------------------------------------------------- sequences


@router.get("/sequence/{project}", response_model=SequenceStates, summary="Sequence states of a project")
async def sequence_states(
    project: str,
    gw: Gw,
    name: str | None = None,
    state: str | None = None,
    fromTime: str | None = None,
    beforeTime: str | None = None,
    keptnContext: str | None = None,
    page_size: PageSize = None,
    next_page_key: NextPageKey = None,
) -> SequenceStates:
    require_shipyard(gw, project)
    where = SequenceFilter(
        name=name,
        state=state,
        keptn_context=keptnContext,
        from_time=_time_param("fromTime", fromTime),
        before_time=_time_param("beforeTime", beforeTime),
    )
    try:
        page = gw.history.sequences(project, where, page_size=page_size, next_page_key=next_page_key)
    except QueryError as error:
        raise invalid([Problem("query:nextPageKey", str(error))]) from None
    return SequenceStates(
        states=[view.to_json_dict() for view in page.items],
        nextPageKey=page.next_page_key,
        totalCount=page.total_count,
        pageSize=page.page_size,
    )


@router.post("/sequence/{project}/{keptnContext}/control", response_model=Message,
             summary="Pause, resume or abort a sequence (optionally in one stage)")
async def control_sequence(project: str, keptnContext: str, body: SequenceControl, gw: Gw) -> Message:
    shipyard = require_shipyard(gw, project)
    if body.stage and shipyard.stage(body.stage) is None:
        raise not_found("stage", body.stage, f"project {project!r} has the stages {', '.join(shipyard.stage_names)}")
    context = keptn_context_for(keptnContext)
    keys: list[Key] = [
        key for key in gw.history.context_keys(project, context) if not body.stage or key.stage == body.stage
    ]
    if not keys:
        where = f" in stage {body.stage!r}" if body.stage else ""
        raise ApiError(404, f"no sequence with keptnContext {keptnContext!r}{where} is known in project {project!r}; "
                            "list them with GET /api/controlPlane/v1/sequence/" + project)
    state = ControlState(body.state)
    for key in keys:
        await gw.publish(control_event(key, context, state, time=gw.clock()))
    stages = ", ".join(sorted({k.stage for k in keys}))
    return Message(message=f"{state.value} sent for keptnContext {context} in {stages}")
