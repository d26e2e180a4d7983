"""Ingest and read events: POST/GET /v1/events, POST /v1/events/batch, GET /v1/receipts.

Sync mode (``?sync=true`` or ``X-Trailseal-Sync: true``) answers 201 once the entries are
covered by a signed checkpoint, with their hashes, inclusion proofs and the checkpoint.
Async mode answers 202 with a receipt once the events are durable (§6).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.core.ids import ID_PATTERN
from trailseal.core.schema import DEFAULT_LIMITS, validate_batch, validate_event
from trailseal.ledger.integrate import AppendResult, IdempotencyConflict
from trailseal.ledger.prepare import PreparedEvent, prepare_incoming
from trailseal.server.auth import Principal, not_found
from trailseal.server.context import (
    AppContext,
    EventsReader,
    EventsWriter,
    ReceiptReader,
    context,
)
from trailseal.server.errors import ApiError
from trailseal.server.openapi import (
    BATCH_EXAMPLE,
    EVENT_EXAMPLE,
    batch_request_schema,
    event_request_schema,
)
from trailseal.server.responses import json_response, read_json_body, truthy
from trailseal.server.views import append_view, entry_view, receipt_view

router = APIRouter(prefix="/v1", tags=["events"])

_SINGLE_LIMIT = 256 * 1024  # a generous bound on one event's JSON before validation
_DEFAULT_ORGANIZATION = "default"


def _organization(principal: Principal, requested: Any) -> str:
    """Where an event goes: a bound key writes only to its organization (another one is
    'not found', §8); an unbound key to the event's organization_id or ``default``."""
    wanted = requested if isinstance(requested, str) and requested else None
    if principal.organization is not None:
        if wanted is not None and wanted != principal.organization:
            raise not_found("organization")
        return principal.organization
    return wanted or _DEFAULT_ORGANIZATION


def _idempotent_id(key: str, index: int) -> str:
    """An event id derived from the Idempotency-Key header, for events sent without one,
    so that a retried request carries the same ids and dedupes."""
    if index == 0 and ID_PATTERN.fullmatch(key):
        return key
    return "idem-" + hashlib.sha256(f"{key}\n{index}".encode()).hexdigest()[:40]


def _prepare(
    ctx: AppContext, raws: Sequence[dict[str, Any]], idempotency_key: str | None
) -> list[PreparedEvent]:
    now = datetime.now(UTC)
    prepared = []
    for index, raw in enumerate(raws):
        if idempotency_key and raw.get("id") is None:
            derived = _idempotent_id(idempotency_key, index)
            prepared.append(
                prepare_incoming(
                    raw, now=now, new_id=itertools.repeat(derived).__next__, validated=True
                )
            )
        else:
            prepared.append(
                prepare_incoming(raw, now=now, new_id=ctx.ledger.new_event_id, validated=True)
            )
    return prepared


def _sync_requested(request: Request) -> bool:
    return truthy(request.query_params.get("sync")) or truthy(
        request.headers.get("x-trailseal-sync")
    )


async def _append_sync(
    ctx: AppContext, principal: Principal, organization: str, events: list[PreparedEvent]
) -> list[dict[str, Any]]:
    # Thread-pool hops cost more CPU than the work when the log and its tiles are cached
    # (the common case at 500 sync requests/s): the store is read only when they are not.
    project = principal.project
    future = ctx.ledger.try_append(project, organization, events)
    if future is None:
        future = await run_in_threadpool(ctx.ledger.append, project, organization, events)
    results: list[AppendResult] = await asyncio.wrap_future(future)
    views = _fresh_views(ctx, project, organization, results, cached_only=True)
    if views is not None:
        return [v for v in views if v is not None]
    return await run_in_threadpool(_with_proofs, ctx, project, organization, results)


def _fresh_views(
    ctx: AppContext,
    project: str,
    organization: str,
    results: list[AppendResult],
    *,
    cached_only: bool = False,
) -> list[dict[str, Any] | None] | None:
    """Views of the entries this request appended (proved at their checkpoint), None for
    retries of stored ones; None in all if ``cached_only`` and a tile is not cached."""
    views: list[dict[str, Any] | None] = [None] * len(results)
    fresh = [(n, r) for n, r in enumerate(results) if r.checkpoint is not None]
    if cached_only and (not fresh or len(fresh) < len(results)):
        return None
    if not fresh:
        return views
    checkpoint = fresh[0][1].checkpoint
    assert checkpoint is not None
    log_id, seqs = fresh[0][1].log_id, [r.seq for _, r in fresh]
    if cached_only:
        proofs = ctx.ledger.cached_inclusion_proofs(project, log_id, seqs, checkpoint.size)
        if proofs is None:
            return None
    else:
        proofs = ctx.ledger.inclusion_proofs(project, log_id, seqs, checkpoint.size)
    for (n, result), proof in zip(fresh, proofs, strict=True):
        views[n] = append_view(result, organization, proof=proof, checkpoint=checkpoint)
    return views


def _with_proofs(
    ctx: AppContext, project: str, organization: str, results: list[AppendResult]
) -> list[dict[str, Any]]:
    views = _fresh_views(ctx, project, organization, results)
    assert views is not None
    for n, result in enumerate(results):
        if views[n] is None:  # a retry of an event stored earlier: prove it at the latest
            latest = ctx.ledger.checkpoint(project, result.log_id)
            stored = ctx.store.get_entry(project, result.log_id, result.seq)
            if latest is None or stored is None:
                views[n] = append_view(result, organization)
                continue
            proof = ctx.ledger.inclusion_proof(project, result.log_id, result.seq, latest.size)
            base = AppendResult(
                result.event_id,
                result.log_id,
                result.seq,
                True,
                stored.leaf_hash,
                None,
                stored.chain_hash,
                latest,
            )
            views[n] = append_view(base, organization, proof=proof, checkpoint=latest)
    return [v for v in views if v is not None]


async def _append_async(
    ctx: AppContext, principal: Principal, organization: str, events: list[PreparedEvent]
) -> dict[str, Any]:
    receipt_id = "rcpt_" + uuid.uuid4().hex
    receipt, future = await run_in_threadpool(
        ctx.ledger.accept, principal.project, organization, events, receipt_id=receipt_id
    )
    if future is not None:
        # Resolved only after the commit that also wrote the receipt as committed.
        await asyncio.wrap_future(future)
        receipt = dataclasses.replace(receipt, state="committed")
    return receipt_view(receipt)


def _check_known_conflicts(ctx: AppContext, project: str, events: list[PreparedEvent]) -> None:
    """Refuse a batch up front if any id is already stored with other content, so a batch
    split across organizations never commits one part and refuses another."""
    known = ctx.store.find_ids(project, [e.event_id for e in events])
    for index, event in enumerate(events):
        record = known.get(event.event_id)
        if record is not None and record.content_hash != event.content_hash:
            raise IdempotencyConflict(event.event_id, index)


@router.post(
    "/events",
    status_code=202,
    summary="Log one event",
    description="Stores one event in its organization's log. Answers 202 with a receipt "
    "once durable, or with `?sync=true` (or `X-Trailseal-Sync: true`) 201 with the "
    "entry's sequence number, hashes, inclusion proof and signed checkpoint.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": event_request_schema(), "example": EVENT_EXAMPLE}
            },
        }
    },
    responses={
        201: {"description": "Committed (sync mode)"},
        409: {"description": "Same id, different content"},
    },
)
async def log_event(request: Request, principal: EventsWriter) -> Response:
    ctx = context(request)
    raw = await read_json_body(request, limit=_SINGLE_LIMIT)
    validate_event(raw, DEFAULT_LIMITS)
    organization = _organization(principal, raw.get("organization_id"))
    events = _prepare(ctx, [raw], request.headers.get("idempotency-key"))
    try:
        if _sync_requested(request):
            views = await _append_sync(ctx, principal, organization, events)
            return json_response(views[0], 201)
        return json_response(await _append_async(ctx, principal, organization, events), 202)
    except IdempotencyConflict as exc:
        raise ApiError(409, "idempotency_conflict", str(exc), field="/id") from None


@router.post(
    "/events/batch",
    status_code=202,
    summary="Log a batch of events (all or nothing)",
    description="Up to 1000 events and 5 MiB. One invalid event rejects the whole batch "
    "with a 422 that lists every bad event's index and field.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": batch_request_schema(), "example": BATCH_EXAMPLE}
            },
        }
    },
)
async def log_batch(request: Request, principal: EventsWriter) -> Response:
    ctx = context(request)
    body = await read_json_body(request, limit=DEFAULT_LIMITS.max_batch_bytes + 64 * 1024)
    raws = body.get("events") if isinstance(body, dict) else body
    # Validation and preparation are CPU work for a whole batch: off the event loop, so
    # sync requests, queries and health checks are not held up behind it.
    problems = await run_in_threadpool(validate_batch, raws, DEFAULT_LIMITS)
    if problems:
        first = problems[0]
        raise ApiError(
            422,
            first.code,
            f"{len(problems)} problem(s) in the batch; nothing was stored. First: {first.message}",
            field="/events" + first.pointer,
            details=[dict(p.to_dict(), pointer="/events" + p.pointer) for p in problems],
        )
    assert isinstance(raws, list)
    if not raws:
        raise ApiError(422, "too_short", "a batch needs at least one event", field="/events")
    groups: dict[str, list[int]] = {}
    for index, raw in enumerate(raws):
        groups.setdefault(_organization(principal, raw.get("organization_id")), []).append(index)
    events = await run_in_threadpool(_prepare, ctx, raws, request.headers.get("idempotency-key"))
    sync = _sync_requested(request)
    try:
        if len(groups) > 1:
            await run_in_threadpool(_check_known_conflicts, ctx, principal.project, events)
        outcomes = await asyncio.gather(
            *[
                (_append_sync if sync else _append_async)(
                    ctx, principal, organization, [events[i] for i in indices]
                )
                for organization, indices in groups.items()
            ]
        )
    except IdempotencyConflict as exc:
        raise ApiError(
            409, "idempotency_conflict", str(exc), field=f"/events/{exc.index}/id"
        ) from None
    if sync:
        ordered: list[dict[str, Any]] = [{}] * len(raws)
        for indices, views in zip(groups.values(), outcomes, strict=True):
            assert isinstance(views, list)
            for index, view in zip(indices, views, strict=True):
                ordered[index] = view
        return json_response({"events": ordered}, 201)
    receipts = list(outcomes)
    if len(receipts) == 1:
        return json_response(receipts[0], 202)
    return json_response({"receipts": receipts}, 202)


@router.get("/events/{event_id}", summary="Get one event")
async def get_event(
    event_id: str,
    request: Request,
    principal: EventsReader,
) -> Response:
    ctx = context(request)
    view = await run_in_threadpool(_event_view, ctx, principal, event_id)
    if view is None:
        raise not_found("event")
    return json_response(view)


def _event_view(ctx: AppContext, principal: Principal, event_id: str) -> dict[str, Any] | None:
    if not ID_PATTERN.fullmatch(event_id):
        return None
    entry = ctx.store.get_entry_by_id(principal.project, event_id)
    if entry is None:
        return None
    log = ctx.store.get_log(principal.project, entry.log_id)
    if log is None or not principal.can_see(log.organization):
        return None
    previous = ctx.store.get_entry(principal.project, entry.log_id, entry.seq - 1)
    prev_hash = previous.chain_hash if previous is not None else bytes(32)
    return entry_view(entry, log.organization, prev_hash)


@router.get(
    "/receipts/{receipt_id}",
    summary="Get an async ingest receipt",
    description="Readable with a write-only key: the writer that got the receipt "
    "may follow it. Committed receipts list each event's sequence number.",
)
async def get_receipt(
    receipt_id: str,
    request: Request,
    principal: ReceiptReader,
) -> Response:
    ctx = context(request)
    view = await run_in_threadpool(_receipt_with_events, ctx, principal, receipt_id)
    if view is None:
        raise not_found("receipt")
    return json_response(view)


def _receipt_with_events(
    ctx: AppContext, principal: Principal, receipt_id: str
) -> dict[str, Any] | None:
    receipt = ctx.store.get_receipt(principal.project, receipt_id)
    if receipt is None or not principal.can_see(receipt.organization):
        return None
    if receipt.state != "committed":
        return receipt_view(receipt)
    found = ctx.store.find_ids(principal.project, receipt.event_ids)
    events = []
    latest = ctx.ledger.checkpoint(principal.project, receipt.log_id) if receipt.log_id else None
    for event_id in receipt.event_ids:
        record = found.get(event_id)
        if record is None:
            continue
        item: dict[str, Any] = {"id": event_id, "log_id": record.log_id, "seq": record.seq}
        if latest is not None and record.log_id == latest.log_id and record.seq < latest.size:
            proof = ctx.ledger.inclusion_proof(
                principal.project, record.log_id, record.seq, latest.size
            )
            item["inclusion_proof"] = {
                "leaf_index": record.seq,
                "tree_size": latest.size,
                "hashes": [h.hex() for h in proof],
            }
        events.append(item)
    view = receipt_view(receipt, events)
    if latest is not None:
        view["checkpoint"] = {
            "tree_size": latest.size,
            "root_hash": latest.root_hash.hex(),
            "checkpoint": latest.note,
        }
    return view
