"""The native API's operations as sans-IO generators (:mod:`trailseal.client.protocol`),
run by both clients: direct ingest (sync mode with proofs, batches), reads, receipts,
logs, checkpoints and proofs. Request and answer shapes are those of
``trailseal.server.routes`` (README, "The native API")."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from trailseal.client.batching import Prepared, encode_batch
from trailseal.client.errors import ClientError
from trailseal.client.models import (
    CheckpointInfo,
    Committed,
    EventPage,
    InclusionProof,
    LogInfo,
    Receipt,
    StoredEvent,
)
from trailseal.client.protocol import Call, Op, expect_json
from trailseal.client.retry import RetryPolicy, request
from trailseal.core.schema import format_timestamp

__all__ = [
    "get_checkpoint",
    "get_event",
    "get_log",
    "get_proof",
    "get_receipt",
    "list_events",
    "list_logs",
    "list_params",
    "send_batch",
    "send_batch_sync",
    "send_sync",
]

Params = tuple[tuple[str, str], ...]


def _segment(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r:.60}")
    return quote(value, safe="")


def _fetch(call: Call, policy: RetryPolicy, rng: random.Random, *statuses: int) -> Op[Any]:
    reply = yield from request(call, policy, rng)
    return expect_json(reply, *statuses)


def send_sync(event: Prepared, policy: RetryPolicy, rng: random.Random) -> Op[Committed]:
    """``POST /v1/events?sync=true``: the committed entry with its proof and checkpoint."""
    call = Call("POST", "/v1/events", (("sync", "true"),), event.data)
    return Committed.from_json((yield from _fetch(call, policy, rng)))


def send_batch_sync(
    events: Sequence[Prepared], policy: RetryPolicy, rng: random.Random
) -> Op[list[Committed]]:
    """``POST /v1/events/batch?sync=true`` (all or nothing): one answer per event, in order."""
    call = Call("POST", "/v1/events/batch", (("sync", "true"),), encode_batch(events))
    answer = yield from _fetch(call, policy, rng)
    views = answer.get("events") if isinstance(answer, dict) else None
    if not isinstance(views, list):
        raise ClientError("unexpected answer: a sync batch answer has no 'events' list")
    return [Committed.from_json(view) for view in views]


def send_batch(
    events: Sequence[Prepared], policy: RetryPolicy, rng: random.Random
) -> Op[list[Receipt]]:
    """``POST /v1/events/batch`` (all or nothing): the receipts (one per organization)."""
    call = Call("POST", "/v1/events/batch", (), encode_batch(events))
    answer = yield from _fetch(call, policy, rng)
    if isinstance(answer, dict) and isinstance(answer.get("receipts"), list):
        return [Receipt.from_json(r) for r in answer["receipts"]]
    return [Receipt.from_json(answer)]


def get_event(event_id: str, policy: RetryPolicy, rng: random.Random) -> Op[StoredEvent]:
    call = Call("GET", "/v1/events/" + _segment(event_id))
    return StoredEvent.from_json((yield from _fetch(call, policy, rng)))


def get_receipt(receipt_id: str, policy: RetryPolicy, rng: random.Random) -> Op[Receipt]:
    call = Call("GET", "/v1/receipts/" + _segment(receipt_id))
    return Receipt.from_json((yield from _fetch(call, policy, rng)))


def get_log(organization_id: str, policy: RetryPolicy, rng: random.Random) -> Op[LogInfo]:
    call = Call("GET", "/v1/logs/" + _segment(organization_id))
    return LogInfo.from_json((yield from _fetch(call, policy, rng)))


def list_logs(policy: RetryPolicy, rng: random.Random) -> Op[list[LogInfo]]:
    answer = yield from _fetch(Call("GET", "/v1/logs"), policy, rng)
    logs = answer.get("logs") if isinstance(answer, dict) else None
    if not isinstance(logs, list):
        raise ClientError("unexpected answer: no 'logs' list")
    return [LogInfo.from_json(log) for log in logs]


def get_checkpoint(
    organization_id: str, tree_size: int | None, policy: RetryPolicy, rng: random.Random
) -> Op[CheckpointInfo]:
    """The server's description of a checkpoint (to verify, open ``.note`` with a pinned
    key, or use ``verify_event``)."""
    params: Params = (("tree_size", str(tree_size)),) if tree_size is not None else ()
    call = Call("GET", "/v1/logs/" + _segment(organization_id) + "/checkpoint", params)
    return CheckpointInfo.from_json((yield from _fetch(call, policy, rng)))


def get_proof(
    event_id: str, tree_size: int | None, policy: RetryPolicy, rng: random.Random
) -> Op[tuple[InclusionProof, CheckpointInfo]]:
    """The inclusion proof of one event and the checkpoint it is against, unverified."""
    params: Params = (("tree_size", str(tree_size)),) if tree_size is not None else ()
    call = Call("GET", "/v1/events/" + _segment(event_id) + "/proof", params)
    answer = yield from _fetch(call, policy, rng)
    if not isinstance(answer, dict):
        raise ClientError("unexpected answer: a proof is an object")
    return (
        InclusionProof.from_json(answer.get("inclusion_proof") or {}),
        CheckpointInfo.from_json(answer.get("checkpoint") or {}),
    )


def _text(value: str | datetime) -> str:
    return format_timestamp(value) if isinstance(value, datetime) else value


def list_params(
    *,
    organization_id: str | None = None,
    actor_id: str | None = None,
    actor_type: str | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    action_prefix: str | None = None,
    action_contains: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    target_id: str | None = None,
    outcome: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    tags: Iterable[str] = (),
    text: str | None = None,
    q: str | None = None,
    limit: int | None = None,
    order: str | None = None,
    total: bool = False,
) -> Params:
    """The query string of ``GET /v1/events`` (None and empty values are left out)."""
    given: Mapping[str, Any] = {
        "organization_id": organization_id,
        "actor_id": actor_id,
        "actor_type": actor_type,
        "actor_name": actor_name,
        "action": action,
        "action_prefix": action_prefix,
        "action_contains": action_contains,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "target_id": target_id,
        "outcome": outcome,
        "since": _text(since) if since is not None else None,
        "until": _text(until) if until is not None else None,
        "text": text,
        "q": q,
        "limit": str(limit) if limit is not None else None,
        "order": order,
        "total": "true" if total else None,
    }
    params = [(k, str(v)) for k, v in given.items() if v not in (None, "")]
    if isinstance(tags, str):
        tags = (tags,)
    params.extend(("tags", tag) for tag in tags)
    return tuple(params)


def list_events(
    params: Params, cursor: str | None, policy: RetryPolicy, rng: random.Random
) -> Op[EventPage]:
    """One page of ``GET /v1/events``."""
    full = params + ((("cursor", cursor),) if cursor else ())
    answer = yield from _fetch(Call("GET", "/v1/events", full), policy, rng)
    events = answer.get("events") if isinstance(answer, dict) else None
    if not isinstance(events, list):
        raise ClientError("unexpected answer: a listing has no 'events' list")
    next_cursor = answer.get("next_cursor")
    total = answer.get("total")
    return EventPage(
        tuple(StoredEvent.from_json(e) for e in events),
        next_cursor if isinstance(next_cursor, str) and next_cursor else None,
        total if isinstance(total, int) else None,
    )
