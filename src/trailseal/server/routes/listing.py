"""``GET /v1/events``: filters, full-text search, the query language, keyset cursors in
commit order (never skipping a late commit), and offsets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
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


class EventFilters(BaseModel):
    """The filters of ``GET /v1/events``, shared by the listing, the live stream and the
    exports (so all three select exactly the same events); ``q`` is the query language."""

    model_config = ConfigDict(extra="forbid")

    organization_id: str | None = Field(None, max_length=256)
    actor_id: str | None = Field(None, max_length=256)
    actor_type: str | None = Field(None, max_length=32)
    actor_name: str | None = Field(None, max_length=256)
    action: str | None = Field(None, max_length=256, examples=["invoice.*"])
    action_prefix: str | None = Field(None, max_length=256)
    action_contains: str | None = Field(None, max_length=256)
    resource_type: str | None = Field(None, max_length=256)
    resource_id: str | None = Field(None, max_length=256)
    target_id: str | None = Field(None, max_length=256)
    outcome: str | None = Field(None, max_length=16)
    since: str | None = Field(None, max_length=64, examples=["2026-11-01"])
    until: str | None = Field(None, max_length=64)
    tags: list[str] | None = None
    text: str | None = Field(None, max_length=512, description="full-text terms")
    q: str | None = Field(None, max_length=2048)

    def to_filter(self) -> tuple[EventFilter, str | None]:
        """The filter, and the organization asked for (parameter or ``q``'s ``org:``)."""
        params: dict[str, Any] = {
            name: getattr(self, name) for name in _SCALAR_FILTERS if getattr(self, name)
        }
        params["tags"] = tuple(self.tags or ())
        params["text"] = (self.text,) if self.text else ()
        flt = build_filter(params, self.q)
        return flt, self.organization_id or flt.organization

    def described(self) -> dict[str, Any]:
        """The filters as given, for reports."""
        return {
            name: value
            for name in EventFilters.model_fields
            if (value := getattr(self, name)) not in (None, [], "")
        }


_SCALAR_FILTERS = (
    "actor_id",
    "actor_type",
    "actor_name",
    "action",
    "action_prefix",
    "action_contains",
    "resource_type",
    "resource_id",
    "target_id",
    "outcome",
    "since",
    "until",
)


def event_filter_params(
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
) -> EventFilters:
    """The filters as query parameters (a FastAPI dependency)."""
    given = {k: v for k, v in locals().items() if v is not None}
    return EventFilters.model_validate(given)


FilterQuery = Annotated[EventFilters, Depends(event_filter_params)]


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
    filters: FilterQuery,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    order: Literal["desc", "asc"] = "desc",
    total: bool = False,
) -> Response:
    ctx = context(request)
    flt, organization = filters.to_filter()
    descending = order == "desc"
    after = Cursor.decode(cursor).resume(flt, descending=descending) if cursor else None

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
