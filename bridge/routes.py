"""The Bridge's pages and form endpoints under `/bridge` (server-rendered; the pages work without
JavaScript, and `static/bridge.js` adds live updates and small conveniences).

    GET  /bridge/dashboard                                   projects and recent sequences
    GET  /bridge/project/{p}/environment                     stage columns, approvals, trigger form
    GET  /bridge/project/{p}/sequences?service=&stage=&name=&state=
    GET  /bridge/project/{p}/sequence/{keptnContext}         the timeline, pause/resume/abort
    GET  /bridge/project/{p}/evaluations?stage=&service=     heatmap and score over time
    GET  /bridge/project/{p}/evaluation/{eventId}            one evaluation's breakdown, invalidate
    GET  /bridge/project/{p}/remediations                    problems, actions, re-evaluations
    GET  /bridge/project/{p}/live?context=                   server-sent "changed" notices (/bridge/live: all)
    POST /bridge/project/{p}/approval | trigger | sequence/{ctx}/control | evaluation/{id}/invalidate
    GET|POST /bridge/login, POST /bridge/logout, GET /bridge/static/{file}
    DELETE /api/bridge/v1/sessions (x-token)                 revokes every Bridge session

Each POST answers with a redirect to the page it came from (post/redirect/get) and a one-time notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData

from tidegate.gateway.auth import require_token
from tidegate.gateway.context import Gateway, gateway
from tidegate.gateway.models import Message

from . import actions
from .auth import (
    SESSION_COOKIE,
    Access,
    LoginThrottle,
    Sessions,
    host_allowed,
    safe_next,
    same_origin,
)
from .data import BridgeData
from .evaluations import heatmap, score_chart
from .forms import (
    FormProblem,
    parse_approval,
    parse_control,
    parse_reason,
    parse_trigger,
)
from .overview import (
    ProjectInfo,
    ProjectTile,
    SequenceQuery,
    SequenceRow,
    environment,
    filter_options,
    filter_sequences,
    pending_approvals,
    project_tile,
    sequence_row,
)
from .render import STATIC_DIR, STATIC_FILES, render
from .states import SEQUENCE_STATES
from .timeline import build_timeline, failed_tasks

router = APIRouter(prefix="/bridge", include_in_schema=False)
api_router = APIRouter(prefix="/api/bridge/v1", tags=["bridge"], dependencies=[Depends(require_token)])


def install(app: FastAPI) -> None:
    """Serve the Bridge from the gateway's app (a gateway `Extension`), with its sessions and login
    throttle (auth.py; TIDEGATE_BRIDGE_SESSION_TTL sets how long a session lasts)."""
    app.state.bridge_sessions = Sessions.from_environment()
    app.state.bridge_throttle = LoginThrottle()
    app.include_router(router)
    app.include_router(api_router)

FLASH_COOKIE = "tidegate_bridge_notice"
LIVE_HEADER = "x-bridge-live"
LIVE_POLL_SECONDS = 1.0
RECENT_SEQUENCES = 25
LIST_LIMIT = 100

Gw = Annotated[Gateway, Depends(gateway)]


# --------------------------------------------------------------------- plumbing


def _access(request: Request) -> Access:
    token: str | None = request.app.state.api_token
    return Access(token, request.app.state.bridge_sessions)


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


def _page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    access = _access(request)
    # A live refresh (the page fetching itself) must not take the one-time notice meant for a navigation.
    notice = None if request.headers.get(LIVE_HEADER) else _read_notice(request)
    for name in ("project", "nav", "live"):
        context.setdefault(name, None)
    html = render(
        template,
        request_path=request.url.path,
        request_url=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        local_mode=access.local,
        csrf=access.csrf_token(),
        notice=notice,
        now=_now(),
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=_security_headers())
    if notice is not None:
        response.delete_cookie(FLASH_COOKIE, path="/bridge")
    return response


def _security_headers() -> dict[str, str]:
    # Everything the pages load comes from /bridge/static; nothing runs inline.
    return {
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                   "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _read_notice(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        notice = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(notice, dict) or not isinstance(notice.get("text"), str):
        return None
    return {"ok": bool(notice.get("ok")), "text": notice["text"][:600]}


def _redirect(location: str, *, ok: bool | None = None, text: str = "") -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    if ok is not None:
        response.set_cookie(FLASH_COOKIE, json.dumps({"ok": ok, "text": text}), max_age=60, path="/bridge",
                            httponly=True, samesite="strict")
    return response


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """Where a page hears about changes, and the fingerprint of what it shows now."""

    url: str
    version: str


async def _live(gw: Gateway, project: str, context: str | None = None) -> LiveChannel:
    """Taken before the page reads its data: a change stored while the page is built then shows up as
    a newer version on the live channel, and the page refreshes (taken after, it would be missed)."""
    url = f"/bridge/project/{quote(project, safe='')}/live" + (f"?{urlencode({'context': context})}" if context else "")
    return LiveChannel(url, await asyncio.to_thread(BridgeData(gw).version, project, context))


def _problems_text(problems: list[FormProblem]) -> str:
    return "; ".join(f"{p.field}: {p.message}" for p in problems)


async def _guarded(request: Request) -> None:
    """Host check (local mode) and login (token mode) for every page and form."""
    access = _access(request)
    if not host_allowed(access, request.headers.get("host")):
        raise _Forbidden("the Bridge runs in local mode (no API token) and answers only on a loopback address "
                         "such as 127.0.0.1 or localhost; open it there, or give the gateway a token")
    if not access.session_ok(request.cookies.get(SESSION_COOKIE)):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method == "GET" and not request.url.path.endswith("/live"):
            raise _LoginNeeded("/bridge/login?" + urlencode({"next": target}))
        raise _Forbidden("log in to the Bridge first (your session ended or the gateway's token changed)", 401)


class _LoginNeeded(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class _Forbidden(Exception):
    def __init__(self, message: str, status: int = 403) -> None:
        self.message = message
        self.status = status


async def _form(request: Request) -> FormData:
    """The form of a POST, after the origin and CSRF checks."""
    access = _access(request)
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise _Forbidden("this form was sent from another site; use the Bridge's own pages")
    form = await request.form()
    csrf = form.get("csrf")
    if not access.csrf_ok(csrf if isinstance(csrf, str) else None):
        raise _Forbidden("this form is out of date (its security token does not match); reload the page and send it "
                         "again")
    return form


def _fields(form: FormData) -> dict[str, str]:
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return _page(request, "error.html", status=status, title=title, message=message, project=None, nav=None)


async def _project(gw: Gateway, name: str) -> ProjectInfo | None:
    return await asyncio.to_thread(BridgeData(gw).project, name)


def _missing_project(request: Request, name: str) -> HTMLResponse:
    return _error_page(request, 404, "Project not found",
                       f"There is no project {name!r}. Choose one on the dashboard or create it with "
                       "`tidegate create project`.")


async def _run_guarded(request: Request, handler: Any) -> Response:
    try:
        await _guarded(request)
        result: Response = await handler()
        return result
    except _LoginNeeded as needed:
        return RedirectResponse(needed.location, status_code=303)
    except _Forbidden as refused:
        return _error_page(request, refused.status, "Not allowed", refused.message)


# --------------------------------------------------------------------- static files and login


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response("no such file", status_code=404, media_type="text/plain")
    content = await asyncio.to_thread((STATIC_DIR / name).read_bytes)
    return Response(content, media_type=media_type,
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/bridge/dashboard", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    access = _access(request)
    if not host_allowed(access, request.headers.get("host")):
        return _error_page(request, 403, "Not allowed", "open the Bridge on 127.0.0.1 or localhost")
    target = safe_next(next, "/bridge/dashboard")
    if access.local:
        return RedirectResponse(target, status_code=303)
    return _page(request, "login.html", next=target, error=None, project=None, nav=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    access = _access(request)
    if access.local:
        return RedirectResponse("/bridge/dashboard", status_code=303)
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        return _error_page(request, 403, "Not allowed", "this login was sent from another site")
    form = _fields(await request.form())
    target = safe_next(form.get("next"), "/bridge/dashboard")
    throttle: LoginThrottle = request.app.state.bridge_throttle
    address = _client_address(request)
    wait = throttle.retry_after(address)
    if wait:
        response = _page(request, "login.html", status=429, next=target, project=None, nav=None,
                         error=f"Too many wrong tokens from your address; try again in {wait} s.")
        response.headers["Retry-After"] = str(wait)
        return response
    if not access.token_ok(form.get("token", "")):
        throttle.failed(address)
        return _page(request, "login.html", status=401, next=target, project=None, nav=None,
                     error="That is not the API token of this gateway. Use the value of TIDEGATE_API_TOKEN "
                           "(the CLI keeps it after `tidegate auth`).")
    throttle.succeeded(address)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, access.sessions.open(), max_age=int(access.sessions.ttl), path="/bridge",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    async def handler() -> Response:
        await _form(request)
        _access(request).sessions.close(request.cookies.get(SESSION_COOKIE))  # revoked here, not only forgotten
        response = RedirectResponse("/bridge/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/bridge")
        return response

    return await _run_guarded(request, handler)


# --------------------------------------------------------------------- dashboard


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, gw: Gw) -> Response:
    async def handler() -> Response:
        data = BridgeData(gw)

        def load() -> tuple[list[Any], list[Any]]:
            tiles: list[ProjectTile] = []
            recent: list[SequenceRow] = []
            for project in data.projects():
                views = data.sequences(project.name)
                tiles.append(project_tile(project, views))
                stage_order = [s.name for s in project.stages]
                recent.extend(sequence_row(v, stage_order) for v in views[:RECENT_SEQUENCES])
            recent.sort(key=lambda row: row.updated, reverse=True)
            return tiles, recent[:RECENT_SEQUENCES]

        version = await asyncio.to_thread(data.version, None)  # before the data: see _live
        tiles, recent = await asyncio.to_thread(load)
        return _page(request, "dashboard.html", tiles=tiles, recent=recent, nav="dashboard",
                     live=LiveChannel("/bridge/live", version))

    return await _run_guarded(request, handler)


@router.get("/project/{project}", response_class=HTMLResponse)
async def project_home(project: str) -> Response:
    return RedirectResponse(f"/bridge/project/{quote(project, safe='')}/environment", status_code=303)


# --------------------------------------------------------------------- environment


async def _environment_page(request: Request, gw: Gateway, info: ProjectInfo, status: int = 200,
                            form_values: dict[str, str] | None = None,
                            form_problems: list[FormProblem] | None = None) -> Response:
    data = BridgeData(gw)

    def load() -> tuple[Any, ...]:
        views = data.sequences(info.name)
        by_context = {view.keptn_context: view for view in views}
        approvals = pending_approvals(data.open_approvals(info.name), by_context)
        evaluations = data.evaluations(info.name)
        return environment(info, views, approvals, evaluations), approvals

    live = await _live(gw, info.name)
    columns, approvals = await asyncio.to_thread(load)
    return _page(request, "environment.html", status=status, project=info, nav="environment", columns=columns,
                 approvals=approvals, form=form_values or {}, problems=form_problems or [],
                 live=live)


@router.get("/project/{project}/environment", response_class=HTMLResponse)
async def environment_page(request: Request, project: str, gw: Gw) -> Response:
    async def handler() -> Response:
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        return await _environment_page(request, gw, info)

    return await _run_guarded(request, handler)


@router.post("/project/{project}/approval")
async def approval(request: Request, project: str, gw: Gw) -> Response:
    async def handler() -> Response:
        form = _fields(await _form(request))
        back = safe_next(form.get("next"), f"/bridge/project/{quote(project, safe='')}/environment")
        answer = parse_approval(form)
        if isinstance(answer, list):
            return _redirect(back, ok=False, text=_problems_text(answer))
        outcome = await actions.answer_approval(gw, project, answer)
        return _redirect(back, ok=outcome.ok, text=outcome.message)

    return await _run_guarded(request, handler)


@router.post("/project/{project}/trigger")
async def trigger(request: Request, project: str, gw: Gw) -> Response:
    async def handler() -> Response:
        form = _fields(await _form(request))
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        parsed = parse_trigger(form, info)
        if isinstance(parsed, list):
            return await _environment_page(request, gw, info, status=400, form_values=form, form_problems=parsed)
        outcome = await actions.trigger(gw, project, parsed)
        if not outcome.ok or outcome.keptn_context is None:
            return await _environment_page(request, gw, info, status=400, form_values=form,
                                           form_problems=[FormProblem("request", outcome.message)])
        target = f"/bridge/project/{quote(project, safe='')}/sequence/{quote(outcome.keptn_context, safe='')}"
        return _redirect(target, ok=True, text=outcome.message)

    return await _run_guarded(request, handler)


# --------------------------------------------------------------------- sequences


@router.get("/project/{project}/sequences", response_class=HTMLResponse)
async def sequences_page(request: Request, project: str, gw: Gw, service: str = "", stage: str = "", name: str = "",
                         state: str = "") -> Response:
    async def handler() -> Response:
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        query = SequenceQuery(service=service, stage=stage, name=name, state=state)
        data = BridgeData(gw)

        def load() -> tuple[Any, ...]:
            views = data.sequences(info.name)
            chosen = filter_sequences(views, query)
            order = [s.name for s in info.stages]
            return ([sequence_row(v, order) for v in chosen[:LIST_LIMIT]], len(chosen), len(views),
                    filter_options(info, views, SEQUENCE_STATES))

        live = await _live(gw, info.name)
        rows, matching, total, options = await asyncio.to_thread(load)
        return _page(request, "sequences.html", project=info, nav="sequences", rows=rows, matching=matching,
                     total=total, query=query, options=options, limit=LIST_LIMIT,
                     live=live)

    return await _run_guarded(request, handler)


@router.get("/project/{project}/sequence/{keptn_context}", response_class=HTMLResponse)
async def sequence_page(request: Request, project: str, keptn_context: str, gw: Gw) -> Response:
    async def handler() -> Response:
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        data = BridgeData(gw)

        def load() -> tuple[Any, ...]:
            return data.sequence(keptn_context), data.timeline(keptn_context)

        live = await _live(gw, info.name, keptn_context)
        view, items = await asyncio.to_thread(load)
        if view is not None and view.project != project:
            view = None
        timeline = build_timeline(keptn_context, items, view=view, stage_order=[s.name for s in info.stages],
                                  now=_now())
        row = sequence_row(view, [s.name for s in info.stages]) if view is not None else None
        # An unknown context answers 200 with "nothing known yet": right after a trigger the history
        # has not stored its first event, and the page fills in live.
        return _page(request, "sequence.html", project=info, nav="sequences", sequence=row, timeline=timeline,
                     failures=failed_tasks(timeline), keptn_context=keptn_context,
                     live=live)

    return await _run_guarded(request, handler)


@router.post("/project/{project}/sequence/{keptn_context}/control")
async def sequence_control(request: Request, project: str, keptn_context: str, gw: Gw) -> Response:
    async def handler() -> Response:
        form = _fields(await _form(request))
        back = f"/bridge/project/{quote(project, safe='')}/sequence/{quote(keptn_context, safe='')}"
        parsed = parse_control(form)
        if isinstance(parsed, list):
            return _redirect(back, ok=False, text=_problems_text(parsed))
        outcome = await actions.control(gw, project, keptn_context, parsed)
        return _redirect(back, ok=outcome.ok, text=outcome.message)

    return await _run_guarded(request, handler)


# --------------------------------------------------------------------- evaluations


@router.get("/project/{project}/evaluations", response_class=HTMLResponse)
async def evaluations_page(request: Request, project: str, gw: Gw, stage: str = "", service: str = "") -> Response:
    async def handler() -> Response:
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        data = BridgeData(gw)
        chosen_stage = stage or next((s.name for s in info.stages
                                      if info.services.get(s.name)), "")
        chosen_service = service or next(iter(info.services.get(chosen_stage, [])), "")

        def load() -> list[Any]:
            if not chosen_stage or not chosen_service:
                return []
            return data.evaluations(info.name, stage=chosen_stage, service=chosen_service, limit=30)

        live = await _live(gw, info.name)
        evaluations = await asyncio.to_thread(load)
        return _page(request, "evaluations.html", project=info, nav="evaluations", stage=chosen_stage,
                     service=chosen_service, evaluations=evaluations, heatmap=heatmap(evaluations),
                     chart=score_chart(evaluations), live=live)

    return await _run_guarded(request, handler)


@router.get("/project/{project}/evaluation/{event_id}", response_class=HTMLResponse)
async def evaluation_page(request: Request, project: str, event_id: str, gw: Gw) -> Response:
    async def handler() -> Response:
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        data = BridgeData(gw)

        def load() -> tuple[Any, ...]:
            found = data.evaluation(info.name, event_id)
            reason = data.invalidation_reason(found) if found is not None and found.invalidated else None
            return found, reason

        live = await _live(gw, info.name)
        evaluation, reason = await asyncio.to_thread(load)
        if evaluation is None:
            return _error_page(request, 404, "Evaluation not found",
                               f"Project {project!r} has no evaluation with the id {event_id!r}; pick one on the "
                               "Evaluations page.")
        return _page(request, "evaluation.html", project=info, nav="evaluations", evaluation=evaluation,
                     invalidation_reason=reason, live=live)

    return await _run_guarded(request, handler)


@router.post("/project/{project}/evaluation/{event_id}/invalidate")
async def invalidate(request: Request, project: str, event_id: str, gw: Gw) -> Response:
    async def handler() -> Response:
        form = _fields(await _form(request))
        back = f"/bridge/project/{quote(project, safe='')}/evaluation/{quote(event_id, safe='')}"
        reason = parse_reason(form)
        if isinstance(reason, list):
            return _redirect(back, ok=False, text=_problems_text(reason))
        outcome = await actions.invalidate(gw, project, event_id, reason)
        return _redirect(back, ok=outcome.ok, text=outcome.message)

    return await _run_guarded(request, handler)


# --------------------------------------------------------------------- remediations


@router.get("/project/{project}/remediations", response_class=HTMLResponse)
async def remediations_page(request: Request, project: str, gw: Gw) -> Response:
    async def handler() -> Response:
        info = await _project(gw, project)
        if info is None:
            return _missing_project(request, project)
        live = await _live(gw, info.name)
        runs = await asyncio.to_thread(BridgeData(gw).remediations, info.name)
        return _page(request, "remediations.html", project=info, nav="remediations", runs=runs,
                     live=live)

    return await _run_guarded(request, handler)


# --------------------------------------------------------------------- live updates


@router.get("/live")
async def live_everywhere(request: Request, gw: Gw) -> Response:
    """`changed` whenever any project changes (the dashboard's channel)."""
    return await live(request, "", gw)


@router.get("/project/{project}/live")
async def live(request: Request, project: str, gw: Gw, context: str = "") -> Response:
    """`changed` whenever what the project's pages show changes (the page then fetches itself again).

    The first message, `version`, carries the current fingerprint: a page rendered before it compares
    it with its own and refreshes at once if something changed in between."""
    access = _access(request)
    if not host_allowed(access, request.headers.get("host")) or not access.session_ok(
        request.cookies.get(SESSION_COOKIE)
    ):
        return Response("log in to the Bridge first", status_code=401, media_type="text/plain")
    return EventSourceResponse(_changes(gw, request, project or None, context or None), ping=15)


async def _changes(gw: Gateway, request: Request, project: str | None,
                   context: str | None) -> AsyncIterator[dict[str, str]]:
    data = BridgeData(gw)
    with contextlib.ExitStack() as stack:
        notices = stack.enter_context(gw.notices.watch(context)) if context else None
        version = await asyncio.to_thread(data.version, project, context)
        yield {"event": "version", "data": version}
        while not await request.is_disconnected():
            if notices is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notices.get(), timeout=LIVE_POLL_SECONDS)
            else:
                await asyncio.sleep(LIVE_POLL_SECONDS)
            current = await asyncio.to_thread(data.version, project, context)
            if current != version:
                version = current
                yield {"event": "changed", "data": version}


# --------------------------------------------------------------------- sessions (API)


@api_router.delete("/sessions", response_model=Message, summary="Revoke every Bridge session (everyone logs in again)")
async def revoke_sessions(request: Request) -> Message:
    count = _access(request).sessions.close_all()
    return Message(message=f"{count} Bridge session(s) revoked; everyone logs in again")
