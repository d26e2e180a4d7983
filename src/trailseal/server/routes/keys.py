"""API keys: create (the secret is shown once), list, revoke. ``admin`` scope only; a key
bound to an organization manages only keys bound to that organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.apikeys import DEFAULT_SCOPES, new_key, parse_scopes
from trailseal.runtime import now_text
from trailseal.server.auth import not_found
from trailseal.server.context import Admin, context
from trailseal.server.responses import json_response
from trailseal.store.base import ApiKeyRow

router = APIRouter(prefix="/v1", tags=["keys"])


class KeyRequest(BaseModel):
    name: str = Field("", max_length=128, examples=["ci-pipeline"])
    scopes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES), examples=[["events:write"]]
    )
    organization_id: str | None = Field(None, max_length=256, examples=["acme"])
    test: bool = False


def key_view(row: ApiKeyRow) -> dict[str, Any]:
    return {
        "key_id": row.key_id,
        "name": row.name,
        "scopes": list(row.scopes),
        "organization_id": row.organization,
        "test": row.test,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


@router.post("/keys", status_code=201, summary="Create an API key (the secret is shown once)")
async def create_key(body: KeyRequest, request: Request, principal: Admin) -> Response:
    ctx = context(request)
    scopes = parse_scopes(body.scopes)
    organization = body.organization_id
    if principal.organization is not None:
        if organization not in (None, principal.organization):
            raise not_found("organization")  # another organization is not revealed (§8)
        organization = principal.organization
    key = new_key(test=body.test)
    row = ApiKeyRow(
        key.key_id,
        principal.project,
        key.key_hash,
        scopes,
        organization,
        body.name,
        body.test,
        now_text(),
    )
    await run_in_threadpool(ctx.store.create_api_key, row)
    return json_response(dict(key_view(row), key=key.secret), 201)


@router.get("/keys", summary="List API keys (never their secrets)")
async def list_keys(request: Request, principal: Admin) -> Response:
    ctx = context(request)
    rows = await run_in_threadpool(ctx.store.list_api_keys, principal.project)
    return json_response(
        {"keys": [key_view(r) for r in rows if principal.organization in (None, r.organization)]}
    )


@router.delete("/keys/{key_id}", summary="Revoke an API key")
async def revoke_key(key_id: str, request: Request, principal: Admin) -> Response:
    ctx = context(request)

    def revoke() -> bool:
        rows = {r.key_id: r for r in ctx.store.list_api_keys(principal.project)}
        row = rows.get(key_id)
        if row is None or principal.organization not in (None, row.organization):
            return False
        revoked = ctx.store.revoke_api_key(principal.project, key_id, now_text())
        ctx.keys.forget(key_id)  # after the revocation: effective at once in this process
        return revoked

    if not await run_in_threadpool(revoke):
        raise not_found("API key")
    return json_response({"key_id": key_id, "revoked": True})
