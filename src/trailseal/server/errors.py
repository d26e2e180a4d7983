"""One JSON error shape for every 4xx/5xx: ``{"error": {"code", "message", "field"}}``.

Domain errors are mapped here and nowhere else: routes raise, this module answers.
User input never reaches the 500 handler on purpose; if it does, the body says nothing
about internals and the traceback goes to the log (without request bodies or keys).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from trailseal.errors import ValidationError, VerificationError
from trailseal.ledger.integrate import IdempotencyConflict
from trailseal.ledger.sequencer import OverloadedError

__all__ = ["ApiError", "error_body", "install_error_handlers"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with its HTTP status, raised by routes and dependencies."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
        self.details = details


def error_body(code: str, message: str, field: str | None = None, details: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"error": error})


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json(exc.status, error_body(exc.code, exc.message, exc.field, exc.details), exc.headers)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return _json(422, error_body(exc.code, exc.message, exc.field or None))


async def _request_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    details = [
        {"field": _pointer(tuple(p.get("loc", ()))), "message": p.get("msg", "")} for p in problems
    ]
    return _json(
        422,
        error_body(
            "invalid", str(first.get("msg")), _pointer(tuple(first.get("loc", ()))), details
        ),
    )


async def _conflict(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotencyConflict)
    field = f"/events/{exc.index}/id" if exc.batch else "/id"
    return _json(409, error_body("idempotency_conflict", str(exc), field))


async def _overloaded(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OverloadedError)
    return _json(503, error_body("overloaded", str(exc)), {"Retry-After": str(exc.retry_after)})


async def _verification(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, VerificationError)
    return _json(422, error_body("verification_failed", str(exc), exc.item or None))


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _json(
        exc.status_code,
        error_body(code, str(exc.detail)),
        dict(exc.headers) if exc.headers else None,
    )


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up (timed out) mid-request: nobody reads the answer, and a traceback
    # per abandoned request would turn an overload into a logging storm.
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return _json(400, error_body("client_disconnected", "the client closed the connection"))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, error_body("internal", "internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ValidationError, _validation)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(IdempotencyConflict, _conflict)
    app.add_exception_handler(OverloadedError, _overloaded)
    app.add_exception_handler(VerificationError, _verification)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
