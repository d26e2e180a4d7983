"""Auditledge's wire layer, mounted at ``/compat/auditledge/v1`` (the ``responses`` half of a
moto-style split; the translation is :mod:`.models`).

Routes (contract: shared/compat/auditledge.md):

=========================  ===================  ===========================================
route                      scope                answer
=========================  ===================  ===========================================
``POST /events``           ``events:write``     201 ``{"success": true, "event": {…}}``
``GET /events``            ``events:read``      200 ``{"events", "total", "limit", "offset"}``
``GET /events/export``     ``export``           200 JSON array or ``text/csv``, streamed
``GET /events/{id}``       ``events:read``      200 the bare event
``GET /usage``             any key              200 ``{"plan", "events_this_month", …}``
=========================  ===================  ===========================================

The façade is its own small ASGI application, so that everything under the mount answers in
Auditledge's shape, ``{"error": "<message naming the field>"}`` (the client raises
``AuditLedgeError`` with that string), including unknown paths, wrong methods, failed
authentication and server faults. It never redirects: repeated slashes after the mount
point and a trailing slash are normalized in place (the client builds ``…/v1//events``
from a base URL ending in ``/``), and ``/events/export`` is routed ahead of
``/events/{id}``. Every non-CSV answer, errors included, is a JSON body.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from typing import Any, Final

import orjson
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from trailseal.errors import ValidationError
from trailseal.ledger.sequencer import OverloadedError
from trailseal.server.auth import Principal, authenticate, require_any_scope
from trailseal.server.compat import FacadeMount
from trailseal.server.compat.auditledge.models import FILTERS, Backend, select, vendor_field
from trailseal.server.context import AppContext
from trailseal.server.errors import ApiError
from trailseal.server.responses import read_json_body

__all__ = ["CSV_COLUMNS", "DEFAULT_LIMIT", "MAX_LIMIT", "PREFIX", "create_facade", "mount"]

PREFIX: Final = "/compat/auditledge/v1"
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 1000
#: The documented columns first (§4.4), then the chain values.
CSV_COLUMNS: Final = (
    "id",
    "timestamp",
    "organization_id",
    "actor_id",
    "actor_name",
    "actor_email",
    "action",
    "resource_type",
    "resource_id",
    "resource_name",
    "metadata",
    "created_at",
    "sequence",
    "hash",
    "prev_hash",
)
#: ``usage``'s plan label: ``TRAILSEAL_AUDITLEDGE_PLAN``, else this.
DEFAULT_PLAN: Final = "growth"
_EVENT_BODY_LIMIT: Final = 256 * 1024
_QUERY_PARAMS: Final = (*FILTERS, "limit", "offset")
_EXPORT_PARAMS: Final = ("format", *FILTERS)
_DIGITS = re.compile(r"[0-9]{1,18}")


# ---------------------------------------------------------------------------------------
# Errors in Auditledge's shape.
# ---------------------------------------------------------------------------------------


def _error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    if field:
        body["field"] = field
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 401:
        return _error(401, "invalid API key", code=exc.code, headers=exc.headers)
    return _error(exc.status, exc.message, code=exc.code, field=exc.field, headers=exc.headers)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    field = vendor_field(exc.field)
    status = 413 if exc.code == "too_large" else 400
    return _error(status, f"{field}: {exc.message}", code=exc.code, field=field)


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(
            404,
            "not found: this API serves /events, /events/export, /events/{id} and /usage",
            code="not_found",
        )
    if exc.status_code == 405:
        return _error(405, "method not allowed", code="method_not_allowed")
    return _error(exc.status_code, str(exc.detail), code="http_error")


async def _overloaded(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OverloadedError)
    return _error(503, str(exc), code="overloaded", headers={"Retry-After": str(exc.retry_after)})


async def _unexpected(_: Request, exc: Exception) -> Response:
    return _error(500, "internal server error", code="internal")


# ---------------------------------------------------------------------------------------
# Request pieces.
# ---------------------------------------------------------------------------------------


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """Query parameters (form-decoded: ``+`` is a space), each at most once, none unknown:
    a filter the façade silently ignored would widen an audit query."""
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise ApiError(
                400,
                "unknown_parameter",
                f"{key}: unknown query parameter (expected {', '.join(allowed)})",
                field=key,
            )
        if key in found:
            raise ApiError(400, "repeated_parameter", f"{key}: given more than once", field=key)
        found[key] = value
    return found


def _integer(params: dict[str, str], name: str, default: int, minimum: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    if _DIGITS.fullmatch(text) is None or int(text) < minimum:
        raise ApiError(
            400,
            "invalid",
            f"{name}: expected an integer ≥ {minimum}, got {text[:32]!r}",
            field=name,
        )
    return int(text)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


# ---------------------------------------------------------------------------------------
# The application.
# ---------------------------------------------------------------------------------------


def create_facade(parent: FastAPI) -> Starlette:
    """The façade as an ASGI application; it uses ``parent``'s app context (store and
    ledger), which ``parent``'s lifespan sets up."""
    plan = os.environ.get("TRAILSEAL_AUDITLEDGE_PLAN", "").strip() or DEFAULT_PLAN

    async def backend(request: Request, *scopes: str) -> Backend:
        ctx: AppContext = parent.state.ctx
        principal: Principal = await run_in_threadpool(authenticate, request, ctx.store)
        if scopes:
            require_any_scope(principal, scopes)
        return Backend(ctx, principal)

    async def log_event(request: Request) -> Response:
        facade = await backend(request, "events:write")
        body = await read_json_body(request, limit=_EVENT_BODY_LIMIT)
        event = await facade.log(body)
        return _json({"success": True, "event": event}, 201)

    async def query_events(request: Request) -> Response:
        facade = await backend(request, "events:read")
        params = _params(request, _QUERY_PARAMS)
        limit = min(_integer(params, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
        offset = _integer(params, "offset", 0, 0)
        selection = select(params)
        page = await run_in_threadpool(facade.query, selection, limit=limit, offset=offset)
        return _json(page)

    async def export_events(request: Request) -> Response:
        facade = await backend(request, "export")
        params = _params(request, _EXPORT_PARAMS)
        kind = params.get("format", "").strip().lower() or "json"
        if kind not in ("json", "csv"):
            raise ApiError(
                400,
                "invalid",
                f"format: expected 'json' or 'csv', got {kind[:32]!r}",
                field="format",
            )
        selection = select(params)
        log_ids = await run_in_threadpool(facade.check_export, selection)
        pages = facade.export_pages(selection, log_ids)
        if kind == "csv":
            return StreamingResponse(
                _csv(pages),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="auditledge-export.csv"'},
            )
        return StreamingResponse(_json_array(pages), media_type="application/json")

    async def get_event(request: Request) -> Response:
        facade = await backend(request, "events:read")
        event_id = request.path_params["event_id"]
        event = await run_in_threadpool(facade.get, event_id)
        if event is None:
            raise ApiError(404, "not_found", "event not found", field="event_id")
        return _json(event)

    async def usage(request: Request) -> Response:
        facade = await backend(request)
        return _json(await run_in_threadpool(facade.usage, plan))

    app = Starlette(
        routes=[
            Route("/events", log_event, methods=["POST"]),
            Route("/events", query_events, methods=["GET"]),
            Route("/events/export", export_events, methods=["GET"]),
            Route("/events/{event_id}", get_event, methods=["GET"]),
            Route("/usage", usage, methods=["GET"]),
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


def _json_array(pages: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    yield b"["
    first = True
    for page in pages:
        for event in page:
            yield (b"" if first else b",") + orjson.dumps(event)
            first = False
    yield b"]"


def _csv_cell(value: Any) -> str:
    return "" if value is None else str(value)


def _csv(pages: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    """RFC 4180 (CRLF, minimal quoting), UTF-8 without a BOM, the header row always.
    Values are written as logged: no spreadsheet-formula guard (an audit export must not
    alter what it exports)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    for page in pages:
        buffer.seek(0)
        buffer.truncate()
        for e in page:
            actor, resource = e["actor"], e["resource"]
            writer.writerow(
                [
                    e["id"],
                    _csv_cell(e["timestamp"]),
                    e["organization_id"],
                    _csv_cell(actor["id"]),
                    _csv_cell(actor["name"]),
                    _csv_cell(actor["email"]),
                    _csv_cell(e["action"]),
                    _csv_cell(resource["type"]),
                    _csv_cell(resource["id"]),
                    _csv_cell(resource["name"]),
                    orjson.dumps(e["metadata"]).decode(),
                    _csv_cell(e["created_at"]),
                    e["sequence"],
                    e["hash"],
                    _csv_cell(e["prev_hash"]),
                ]
            )
        yield buffer.getvalue().encode()


# ---------------------------------------------------------------------------------------
# Mounting.
# ---------------------------------------------------------------------------------------


class _Normalize:
    """Collapse repeated slashes after the mount point and drop a trailing one, in place
    (never a redirect: ``urllib`` would replay a redirected POST as a bodiless GET)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path: str = scope["path"]
            rest = path[len(root) :] if path.startswith(root) else path
            clean = "/" + "/".join(part for part in rest.split("/") if part)
            if clean != rest:
                scope = {**scope, "path": root + clean}
        await self.app(scope, receive, send)


class _FacadeMount(FacadeMount):
    """A mount that also takes its own path without a trailing slash (a plain ``Mount``
    would leave that to the parent router, which redirects)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path: str = scope["path"]
            if path[len(root) :] == self.path:
                return Match.FULL, {
                    "path_params": dict(scope.get("path_params", {})),
                    "app_root_path": scope.get("app_root_path", root),
                    "root_path": root + self.path,
                    "endpoint": self.app,
                }
        return super().matches(scope)


def mount(app: FastAPI) -> None:
    """Serve the façade under :data:`PREFIX` of ``app``."""
    app.router.routes.append(_FacadeMount(PREFIX, app=_Normalize(create_facade(app))))
