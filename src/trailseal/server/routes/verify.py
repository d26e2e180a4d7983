"""Server-side verification of a log range: ``POST /v1/verify`` (scope ``verify``).

A failed verification is not a client error: the answer is 200 with ``ok: false`` and the
first bad item named. Offline verification (SDK, CLI, evidence packs) needs no server.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.ledger.audit import RangeReport, verify_range
from trailseal.server.auth import not_found
from trailseal.server.context import Verifier, context
from trailseal.server.responses import json_response

router = APIRouter(prefix="/v1", tags=["verify"])


class VerifyRequest(BaseModel):
    organization_id: str = Field("default", max_length=256, examples=["acme"])
    from_: int = Field(0, alias="from", ge=0, description="First seq (default 0)")
    to: int | None = Field(
        None, ge=1, description="One past the last seq (default: the latest checkpoint's size)"
    )


@router.post(
    "/verify",
    summary="Verify a range of a log on the server",
    description="Re-reads the stored entries and checks bytes, leaf hashes, the "
    "chain and the signed root; names the first bad entry.",
)
async def verify(body: VerifyRequest, request: Request, principal: Verifier) -> Response:
    ctx = context(request)

    def run() -> RangeReport:
        log = ctx.store.find_log(principal.project, body.organization_id)
        if log is None or not principal.can_see(log.organization):
            raise not_found("organization log")
        return verify_range(ctx.ledger, principal.project, log, body.from_, body.to)

    report = await run_in_threadpool(run)
    return json_response(
        {
            "ok": report.ok,
            "organization_id": body.organization_id,
            "from": report.start,
            "to": report.end,
            "tree_size": report.tree_size,
            "root_hash": report.root_hash.hex(),
            "checked": report.checked,
            "redacted": report.redacted,
            "first_bad": report.failed_item,
            "message": report.message,
        }
    )
