"""Small helpers shared by the routes: orjson responses and request body parsing."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from trailseal.server.errors import ApiError

__all__ = ["json_response", "read_json_body", "truthy"]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers
    )


async def read_json_body(request: Request, *, limit: int) -> Any:
    """The request body as JSON, refusing bodies over ``limit`` bytes before reading them
    whole when the client announces the length."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise ApiError(413, "too_large", f"request body is over {limit} bytes", field="")
    body = await request.body()
    if len(body) > limit:
        raise ApiError(413, "too_large", f"request body is over {limit} bytes", field="")
    if not body:
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON document", field="")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400, "invalid_json", f"request body is not valid JSON: {exc}", field=""
        ) from None


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")
