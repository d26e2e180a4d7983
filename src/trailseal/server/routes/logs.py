"""Logs, checkpoints and proofs: what a verifier needs, and the C2SP tlog-tiles read
paths so a standard tlog mirror can follow a log (``/v1/tlog/{log_id}/…``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.core.ids import ID_PATTERN
from trailseal.core.tiles import (
    encode_entry_bundle,
    parse_entry_bundle_path,
    parse_tile_path,
    tile_width,
)
from trailseal.server.auth import Principal, not_found
from trailseal.server.context import AppContext, ProofReader, context
from trailseal.server.errors import ApiError
from trailseal.server.responses import json_response
from trailseal.server.views import checkpoint_view, log_view
from trailseal.store.base import LogHead

router = APIRouter(prefix="/v1", tags=["proofs"])
MAX_SIZE = 2**63 - 1  # tree sizes are 64-bit in both databases


def _log(ctx: AppContext, principal: Principal, organization: str) -> LogHead:
    log = ctx.store.find_log(principal.project, organization)
    if log is None or not principal.can_see(organization):
        raise not_found("organization log")
    return log


def _log_by_id(ctx: AppContext, principal: Principal, log_id: str) -> LogHead:
    log = ctx.store.get_log(principal.project, log_id)
    if log is None or not principal.can_see(log.organization):
        raise not_found("log")
    return log


@router.get("/logs", summary="List the project's organization logs")
async def list_logs(request: Request, principal: ProofReader) -> Response:
    ctx = context(request)

    def build() -> list[dict[str, Any]]:
        logs = ctx.store.list_logs(principal.project)
        return [
            log_view(log, ctx.ledger.verifier_key(principal.project, log))
            for log in logs
            if principal.can_see(log.organization)
        ]

    return json_response({"logs": await run_in_threadpool(build)})


@router.get("/logs/{organization_id}", summary="One organization's log and its verifier key")
async def get_log(organization_id: str, request: Request, principal: ProofReader) -> Response:
    ctx = context(request)
    log = await run_in_threadpool(_log, ctx, principal, organization_id)
    return json_response(log_view(log, ctx.ledger.verifier_key(principal.project, log)))


@router.get(
    "/logs/{organization_id}/checkpoint",
    summary="The latest signed checkpoint, or the one of a given tree size",
)
async def get_checkpoint(
    organization_id: str,
    request: Request,
    principal: ProofReader,
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_SIZE, description="A size the log had")
    ] = None,
) -> Response:
    ctx = context(request)

    def build() -> dict[str, Any]:
        log = _log(ctx, principal, organization_id)
        row = ctx.ledger.checkpoint(principal.project, log.log_id, tree_size)
        if row is None:
            raise not_found("checkpoint")
        view = checkpoint_view(row, log.origin)
        view["verifier_key"] = ctx.ledger.verifier_key(principal.project, log)
        return view

    return json_response(await run_in_threadpool(build))


@router.get(
    "/logs/{organization_id}/consistency",
    summary="Consistency proof between two tree sizes (RFC 9162 §2.1.4)",
)
async def get_consistency(
    organization_id: str,
    request: Request,
    principal: ProofReader,
    first: Annotated[int, Query(ge=1, le=MAX_SIZE)],
    second: Annotated[int, Query(ge=1, le=MAX_SIZE)],
) -> Response:
    ctx = context(request)

    def build() -> dict[str, Any]:
        log = _log(ctx, principal, organization_id)
        if not first <= second <= log.size:
            raise ApiError(
                422,
                "out_of_range",
                f"need first <= second <= tree size {log.size}",
                field="/second",
            )
        proof = ctx.ledger.consistency_proof(principal.project, log.log_id, first, second)
        return {
            "log_id": log.log_id,
            "first": first,
            "second": second,
            "hashes": [h.hex() for h in proof],
        }

    return json_response(await run_in_threadpool(build))


@router.get(
    "/events/{event_id}/proof",
    summary="Inclusion proof of one event, with the signed checkpoint it is against",
)
async def get_inclusion(
    event_id: str,
    request: Request,
    principal: ProofReader,
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_SIZE, description="Default: the latest checkpoint")
    ] = None,
) -> Response:
    ctx = context(request)

    def build() -> dict[str, Any]:
        if not ID_PATTERN.fullmatch(event_id):
            raise not_found("event")
        entry = ctx.store.get_entry_by_id(principal.project, event_id)
        if entry is None:
            raise not_found("event")
        log = ctx.store.get_log(principal.project, entry.log_id)
        if log is None or not principal.can_see(log.organization):
            raise not_found("event")  # the same answer as for an id that does not exist
        row = ctx.ledger.checkpoint(principal.project, log.log_id, tree_size)
        if row is None:
            raise not_found("checkpoint")
        if entry.seq >= row.size:
            raise ApiError(
                422,
                "out_of_range",
                f"event {event_id} (seq {entry.seq}) is not in tree size {row.size}",
                field="/tree_size",
            )
        proof = ctx.ledger.inclusion_proof(principal.project, log.log_id, entry.seq, row.size)
        return {
            "id": event_id,
            "organization_id": log.organization,
            "log_id": log.log_id,
            "seq": entry.seq,
            "leaf_hash": entry.leaf_hash.hex(),
            "inclusion_proof": {
                "leaf_index": entry.seq,
                "tree_size": row.size,
                "hashes": [h.hex() for h in proof],
            },
            "checkpoint": checkpoint_view(row, log.origin),
            "verifier_key": ctx.ledger.verifier_key(principal.project, log),
        }

    return json_response(await run_in_threadpool(build))


# -- C2SP tlog-tiles read paths ------------------------------------------------------------


@router.get(
    "/tlog/{log_id}/checkpoint",
    tags=["tlog-tiles"],
    summary="The latest signed checkpoint (text/plain, C2SP tlog-checkpoint)",
)
async def tlog_checkpoint(log_id: str, request: Request, principal: ProofReader) -> Response:
    ctx = context(request)

    def build() -> str:
        log = _log_by_id(ctx, principal, log_id)
        row = ctx.ledger.checkpoint(principal.project, log.log_id)
        if row is None:
            raise not_found("checkpoint")
        return row.note

    note = await run_in_threadpool(build)
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/tlog/{log_id}/tile/{path:path}",
    tags=["tlog-tiles"],
    summary="A Merkle tile or an entry bundle (C2SP tlog-tiles)",
)
async def tlog_tile(log_id: str, path: str, request: Request, principal: ProofReader) -> Response:
    ctx = context(request)
    full_path = "tile/" + path

    def build() -> tuple[bytes, bool]:
        log = _log_by_id(ctx, principal, log_id)
        if path.startswith("entries/"):
            bundle = parse_entry_bundle_path(full_path)
            width = tile_width(0, bundle.index, log.size)
            if width < bundle.width:
                raise not_found("entry bundle")
            start = bundle.index * 256
            entries = ctx.store.iter_entries(
                principal.project, log.log_id, start, start + bundle.width
            )
            # An erased entry has no bytes left; its slot is empty (documented price, §5).
            return encode_entry_bundle([e.entry or b"" for e in entries]), bundle.is_full
        tile = parse_tile_path(full_path)
        if tile_width(tile.level, tile.index, log.size) < tile.width:
            raise not_found("tile")
        data = ctx.store.read_tiles(principal.project, log.log_id, [(tile.level, tile.index)])
        stored = data.get((tile.level, tile.index))
        if stored is None or len(stored) < tile.width * 32:
            raise not_found("tile")
        return stored[: tile.width * 32], tile.is_full

    body, immutable = await run_in_threadpool(build)
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": cache})
