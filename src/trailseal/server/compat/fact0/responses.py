"""Fact0's wire layer, mounted at ``/compat/fact0`` (the ``responses`` half of a moto-style
split; the translation is :mod:`.models`).

Routes (contract: shared/compat/fact0.md; the client appends ``/v1/…`` to its base URL):

================================  ======================  =====================================
route                             scope                   answer
================================  ======================  =====================================
``POST /v1/events/batch``         ``events:write``        202 receipt (``X-Fact0-Sync: true``
                                                          or ``?sync=true``: 200 BatchResult)
``POST /v1/events``               ``events:write``        202 receipt (sync: 201 the event)
``GET /v1/receipts/{id}``         write or read           200 receipt
``GET /v1/events``                ``events:read``         200 ``{events,total,page,page_size}``
``GET /v1/events/stream``         ``events:read``         SSE live tail (§8)
``GET /v1/events/{id}``           ``events:read``         200 the event
``GET /v1/events/{id}/verify``    ``verify``              200 ``{valid,event_id,…}``
``GET /v1/verify``                ``verify``              200 ``{valid,events_checked,…}``
``GET /v1/export/pdf``            ``export``              200 ``application/pdf``
``GET /v1/export/evidence-pack``  ``export``              200 ``application/zip`` (native pack)
================================  ======================  =====================================

The façade is its own small ASGI application (not in the native OpenAPI document), so that
everything under the mount answers in Fact0's shape,
``{"error": {"code", "message", "field", "index"}}``, short and never echoing keys or
payloads: unknown paths, wrong methods, failed authentication (401), server faults, and
overload (503 with ``Retry-After: 1``). It never redirects. Booleans are read
case-insensitively; ``from_`` is an alias of ``from`` everywhere.

The stream (``GET /v1/events/stream``) is a live tail of the tenant's log built on the
native live-stream machinery (:func:`trailseal.server.live.commit_watch` wake-ups, reads by
commit position through ``Store.query_entries``), in Fact0's framing: a hello
``event: open`` / ``data: {}`` at once, one ``event: event`` frame per entry with
``id: <sequence_number>`` and the event on one line with non-ASCII escaped, and a
``: ping`` comment every ``heartbeat`` seconds (default 15). ``Last-Event-ID`` (a sequence
number) resumes after that entry.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import orjson
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from trailseal.errors import ValidationError
from trailseal.exports.selection import Selection
from trailseal.ledger.sequencer import OverloadedError
from trailseal.query import EventFilter
from trailseal.runtime import now_text
from trailseal.server.auth import Principal, authenticate_request, require_any_scope
from trailseal.server.compat import FacadeMount
from trailseal.server.compat.fact0.models import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Backend,
    Window,
    window,
)
from trailseal.server.context import AppContext
from trailseal.server.errors import ApiError
from trailseal.server.live import SAFETY_SECONDS, commit_watch
from trailseal.server.responses import read_json_body, truthy

__all__ = ["DEFAULT_HEARTBEAT", "PREFIX", "create_facade", "mount"]

PREFIX: Final = "/compat/fact0"
DEFAULT_HEARTBEAT: Final = 15.0
_STREAM_PAGE: Final = 500
_BATCH_BYTES: Final = 5 * 1024 * 1024 + 64 * 1024
_SINGLE_BYTES: Final = 256 * 1024


# ---------------------------------------------------------------------------------------
# Errors in Fact0's shape.
# ---------------------------------------------------------------------------------------


def _error(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    index: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message[:500]}
    if field:
        error["field"] = field
    if index is not None:
        error["index"] = index
    return Response(
        orjson.dumps({"error": error}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 401:
        return _error(401, "unauthorized", "missing or unknown API key", headers=exc.headers)
    index = exc.details.get("index") if isinstance(exc.details, dict) else None
    headers = exc.headers
    if exc.status in (429, 503) and not (headers and "Retry-After" in headers):
        headers = {**(headers or {}), "Retry-After": "1"}
    return _error(exc.status, exc.code, exc.message, field=exc.field, index=index, headers=headers)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    field = exc.field.lstrip("/").replace("/", ".") or None
    return _error(400, "validation_error", f"{field or 'request'}: {exc.message}", field=field)


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(404, "not_found", "not found")
    if exc.status_code == 405:
        return _error(405, "method_not_allowed", "method not allowed")
    return _error(exc.status_code, "http_error", str(exc.detail))


async def _overloaded(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OverloadedError)
    retry = str(max(1, min(5, int(exc.retry_after))))
    return _error(503, "overloaded", "server busy; retry", headers={"Retry-After": retry})


async def _unexpected(_: Request, exc: Exception) -> Response:
    return _error(500, "internal", "internal server error")


# ---------------------------------------------------------------------------------------
# Request pieces.
# ---------------------------------------------------------------------------------------


def _params(request: Request) -> dict[str, str]:
    """Query parameters, the first value of each (unknown ones are the caller's business,
    as with the vendor)."""
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        found.setdefault(key, value)
    return found


def _integer(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise ApiError(400, "validation_error", f"{name}: expected an integer >= 1", field=name)
    return int(text)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _ascii_json(data: Any) -> str:
    """One line of JSON with non-ASCII escaped (a proxy dropping the charset is harmless)."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"))


# ---------------------------------------------------------------------------------------
# The application.
# ---------------------------------------------------------------------------------------


def create_facade(parent: FastAPI) -> Starlette:
    """The façade as an ASGI application on ``parent``'s app context (store and ledger)."""

    async def backend(request: Request, *scopes: str) -> Backend:
        ctx: AppContext = parent.state.ctx
        principal: Principal = await authenticate_request(request, ctx.store, ctx.keys)
        require_any_scope(principal, scopes)
        return Backend(ctx, principal)

    def sync_requested(request: Request) -> bool:
        return truthy(request.query_params.get("sync")) or truthy(
            request.headers.get("x-fact0-sync")
        )

    async def log_batch(request: Request) -> Response:
        facade = await backend(request, "events:write")
        body = await read_json_body(request, limit=_BATCH_BYTES)
        events = await run_in_threadpool(facade.prepare, body)
        sync = sync_requested(request)
        answer = await facade.ingest(events, sync=sync)
        return _json(answer, 200 if sync else 202)

    async def log_one(request: Request) -> Response:
        facade = await backend(request, "events:write")
        body = await read_json_body(request, limit=_SINGLE_BYTES)
        events = await run_in_threadpool(facade.prepare, {"events": [body]})
        if sync_requested(request):
            await facade.ingest(events, sync=True)
            event = await run_in_threadpool(facade.get, events[0].event_id)
            return _json(event, 201)
        return _json(await facade.ingest(events, sync=False), 202)

    async def get_receipt(request: Request) -> Response:
        facade = await backend(request, "events:write", "events:read")
        found = await run_in_threadpool(facade.receipt, request.path_params["receipt_id"])
        if found is None:
            raise ApiError(404, "not_found", "receipt not found")
        return _json(found)

    async def list_events(request: Request) -> Response:
        facade = await backend(request, "events:read")
        params = _params(request)
        page = _integer(params, "page", 1)
        page_size = min(_integer(params, "page_size", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        return _json(await run_in_threadpool(facade.list, params, page=page, page_size=page_size))

    async def get_event(request: Request) -> Response:
        facade = await backend(request, "events:read")
        found = await run_in_threadpool(facade.get, request.path_params["event_id"])
        if found is None:
            raise ApiError(404, "not_found", "event not found")
        return _json(found)

    async def verify_event(request: Request) -> Response:
        facade = await backend(request, "verify")
        found = await run_in_threadpool(facade.verify_event, request.path_params["event_id"])
        if found is None:
            raise ApiError(404, "not_found", "event not found")
        return _json(found)

    async def verify(request: Request) -> Response:
        facade = await backend(request, "verify")
        span = window(_params(request))
        return _json(await run_in_threadpool(facade.verify, span))

    async def export(request: Request, kind: str) -> Response:
        facade = await backend(request, "export")
        span = window(_params(request))
        folder = Path(tempfile.mkdtemp(prefix="fact0-export-"))
        try:
            path = await run_in_threadpool(_build_export, facade, span, folder, kind)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        media = "application/pdf" if kind == "pdf" else "application/zip"
        return FileResponse(
            path,
            media_type=media,
            filename=path.name,
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    async def export_pdf(request: Request) -> Response:
        return await export(request, "pdf")

    async def export_pack(request: Request) -> Response:
        return await export(request, "evidence")

    async def stream(request: Request) -> Response:
        facade = await backend(request, "events:read")
        params = _params(request)
        try:
            heartbeat = float(params.get("heartbeat") or DEFAULT_HEARTBEAT)
        except ValueError:
            heartbeat = DEFAULT_HEARTBEAT
        heartbeat = min(max(heartbeat, 0.1), DEFAULT_HEARTBEAT)
        resume = request.headers.get("last-event-id", "").strip()
        start = await run_in_threadpool(_stream_start, facade, resume)
        return StreamingResponse(
            _stream_frames(parent, facade, start, heartbeat),
            media_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    app = Starlette(
        routes=[
            Route("/v1/events/batch", log_batch, methods=["POST"]),
            Route("/v1/events", log_one, methods=["POST"]),
            Route("/v1/events", list_events, methods=["GET"]),
            Route("/v1/events/stream", stream, methods=["GET"]),
            Route("/v1/events/{event_id}", get_event, methods=["GET"]),
            Route("/v1/events/{event_id}/verify", verify_event, methods=["GET"]),
            Route("/v1/receipts/{receipt_id}", get_receipt, methods=["GET"]),
            Route("/v1/verify", verify, methods=["GET"]),
            Route("/v1/export/pdf", export_pdf, methods=["GET"]),
            Route("/v1/export/evidence-pack", export_pack, methods=["GET"]),
        ],
        exception_handlers={
            ApiError: _api_error,
            ValidationError: _validation,
            HTTPException: _http,
            OverloadedError: _overloaded,
            Exception: _unexpected,
        },
    )
    app.router.redirect_slashes = False
    return app


# ---------------------------------------------------------------------------------------
# Exports: the native builders, on the tenant's log, restricted to the window.
# ---------------------------------------------------------------------------------------


def _build_export(facade: Backend, span: Window, folder: Path, kind: str) -> Path:
    log = facade.log()
    flt = EventFilter(since=span.since, until=span.until)
    described: dict[str, Any] = {"organization_id": facade.organization}
    if span.since is not None:
        described["since"] = span.since
    if span.until is not None:
        described["until"] = span.until
    selection = Selection(facade.project, flt, (log.log_id,) if log is not None else (), described)
    created_at = now_text()
    stamp = created_at[:19].replace(":", "").replace("-", "")
    if kind == "pdf":
        from trailseal.exports.report import build_pdf_report

        path = folder / f"fact0-report-{stamp}.pdf"
        build_pdf_report(facade.ctx.ledger, selection, path, created_at=created_at)
        return path
    from trailseal.exports.evidence import build_evidence_pack

    path = folder / f"fact0-evidence-{stamp}.zip"
    build_evidence_pack(facade.ctx.ledger, selection, path, created_at=created_at)
    return path


# ---------------------------------------------------------------------------------------
# The live stream.
# ---------------------------------------------------------------------------------------


def _stream_start(facade: Backend, resume: str) -> int | None:
    """The commit position the stream starts after: the entry ``Last-Event-ID`` names (a
    sequence number of the tenant's log), else the newest commit now. None: the tenant's
    log does not exist yet (the stream starts from its beginning once it does)."""
    log = facade.log()
    if log is None:
        return None
    store = facade.ctx.store
    if resume.isascii() and resume.isdigit() and int(resume) < 2**62:
        seq = int(resume)
        entry = store.get_entry(facade.project, log.log_id, seq)
        if entry is not None:
            rows = store.query_entries(
                facade.project,
                EventFilter(),
                log_ids=[log.log_id],
                after=None,
                limit=1,
                descending=False,
                offset=seq,
            )
            if rows and rows[0][1].seq == seq:
                return rows[0][0]
    rows = store.query_entries(
        facade.project, EventFilter(), log_ids=[log.log_id], after=None, limit=1
    )
    return rows[0][0] if rows else 0


def _stream_read(facade: Backend, after: int | None) -> tuple[int | None, list[str]]:
    log = facade.log()
    if log is None:
        return after, []
    rows = facade.ctx.store.query_entries(
        facade.project,
        EventFilter(),
        log_ids=[log.log_id],
        after=after,
        limit=_STREAM_PAGE,
        descending=False,
    )
    if not rows:
        return after, []
    frames = [
        f"event: event\nid: {view['sequence_number']}\ndata: {_ascii_json(view)}\n\n"
        for view in facade.views([entry for _, entry in rows])
    ]
    return rows[-1][0], frames


async def _stream_frames(
    parent: FastAPI, facade: Backend, start: int | None, heartbeat: float
) -> AsyncIterator[str]:
    yield "event: open\ndata: {}\n\n"
    watch = commit_watch(parent.state, facade.ctx)
    last = start
    loop = asyncio.get_running_loop()
    pinged = loop.time()
    with watch.subscribe(facade.project) as wake:
        while True:
            wake.clear()  # before reading: a commit during the read wakes us again
            last, frames = await run_in_threadpool(_stream_read, facade, last)
            for frame in frames:
                yield frame
            if len(frames) == _STREAM_PAGE:
                continue
            while True:
                left = heartbeat - (loop.time() - pinged)
                if left <= 0:
                    yield ": ping\n\n"
                    pinged = loop.time()
                    left = heartbeat
                try:
                    await asyncio.wait_for(wake.wait(), min(left, SAFETY_SECONDS))
                    break
                except TimeoutError:
                    if loop.time() - pinged < heartbeat:
                        break  # the safety read


# ---------------------------------------------------------------------------------------
# Mounting.
# ---------------------------------------------------------------------------------------


def mount(app: FastAPI) -> None:
    """Serve the façade under :data:`PREFIX` of ``app`` (outside its OpenAPI document)."""
    app.router.routes.append(FacadeMount(PREFIX, app=create_facade(app)))
