"""``GET /v1/events``: filters, full-text search, the query language, keyset cursors in
commit order (never skipping a late commit), and offsets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.query import Cursor, EventFilter, parse_query
from trailseal.server.auth import Principal, not_found
from trailseal.server.context import AppContext, EventsReader, context
from trailseal.server.responses import json_response
from trailseal.server.views import entry_view

router = APIRouter(prefix="/v1", tags=["events"])

MAX_LIMIT = 200
MAX_OFFSET = 100_000


def build_filter(params: dict[str, Any], q: str | None) -> EventFilter:
    action = params.pop("action", None)
    if isinstance(action, str) and action.endswith("*"):
        params["action_prefix"] = params.get("action_prefix") or action[:-1]
    elif action is not None:
        params["action"] = action
    flt = EventFilter(**{k: v for k, v in params.items() if v not in (None, [], ())})
    return flt.merge(parse_query(q)) if q else flt


def resolve_logs(
    ctx: AppContext, principal: Principal, organization: str | None
) -> list[str] | None:
    """The logs a listing may read: one organization's, or the whole project's (None);
    a bound key is confined to its organization, another one is 'not found' (§8)."""
    if principal.organization is not None:
        if organization not in (None, principal.organization):
            raise not_found("organization")
        organization = principal.organization
    if organization is None:
        return None
    log = ctx.store.find_log(principal.project, organization)
    return [log.log_id] if log is not None else []


@router.get(
    "/events",
    summary="List and search events",
    description="Filters combine with AND. `action=invoice.*` is a prefix match; `q` is the "
    'query language (`actor:alice action:invoice.* outcome:failure "free text"`). Pages '
    "follow commit order (newest first by default); pass `next_cursor` back as `cursor`.",
)
async def list_events(
    request: Request,
    principal: EventsReader,
    organization_id: Annotated[str | None, Query(max_length=256)] = None,
    actor_id: Annotated[str | None, Query(max_length=256)] = None,
    actor_type: Annotated[str | None, Query(max_length=32)] = None,
    actor_name: Annotated[str | None, Query(max_length=256)] = None,
    action: Annotated[str | None, Query(max_length=256, examples=["invoice.*"])] = None,
    action_prefix: Annotated[str | None, Query(max_length=256)] = None,
    action_contains: Annotated[str | None, Query(max_length=256)] = None,
    resource_type: Annotated[str | None, Query(max_length=256)] = None,
    resource_id: Annotated[str | None, Query(max_length=256)] = None,
    target_id: Annotated[str | None, Query(max_length=256)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(max_length=64, examples=["2026-11-01"])] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    tags: Annotated[list[str] | None, Query()] = None,
    text: Annotated[str | None, Query(max_length=512, description="full-text terms")] = None,
    q: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    order: Literal["desc", "asc"] = "desc",
    total: bool = False,
) -> Response:
    ctx = context(request)
    params: dict[str, Any] = {
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
        "since": since,
        "until": until,
        "tags": tuple(tags or ()),
        "text": (text,) if text else (),
    }
    flt = build_filter(params, q)
    descending = order == "desc"
    after = Cursor.decode(cursor).resume(flt, descending=descending) if cursor else None
    organization = organization_id or flt.organization

    def run() -> dict[str, Any]:
        log_ids = resolve_logs(ctx, principal, organization)
        if log_ids == []:
            rows: list[Any] = []
        else:
            rows = ctx.store.query_entries(
                principal.project,
                flt,
                log_ids=log_ids,
                after=after,
                limit=limit + 1,
                descending=descending,
                offset=offset,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        organizations: dict[str, str] = {}
        for log_id in {entry.log_id for _, entry in rows}:
            log = ctx.store.get_log(principal.project, log_id)
            organizations[log_id] = log.organization if log is not None else ""
        body: dict[str, Any] = {
            "events": [
                entry_view(entry, organizations[entry.log_id], None, position=position)
                for position, entry in rows
            ],
            "next_cursor": Cursor.after(rows[-1][0], flt, descending=descending).encode()
            if more
            else None,
        }
        if total:
            body["total"] = (
                0
                if log_ids == []
                else ctx.store.count_entries(principal.project, flt, log_ids=log_ids)
            )
        return body

    return json_response(await run_in_threadpool(run))
