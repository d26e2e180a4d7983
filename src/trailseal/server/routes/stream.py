"""``GET /v1/stream/events``: the live tail, as Server-Sent Events (ARCHITECTURE §7).

Why this path and not ``/v1/events/stream``: ``stream`` is a valid client-chosen event id
(``[A-Za-z0-9._:-]{1,128}``), so that path would shadow ``GET /v1/events/{event_id}`` for
an event named ``stream``.

The wire format (one frame per event, flushed as it is produced)::

    id: 41                      <- the stream position the stream starts after
    event: ready
    data: {"after":41}

    id: 42                      <- the entry's commit position
    event: event
    data: {"id":"…","organization_id":"acme","seq":7,…,"position":42}

    : ping                      <- a heartbeat comment, at least every 15 s

Positions are the project-wide commit positions of ``GET /v1/events`` (SQLite's rowid,
PostgreSQL's commit_seq): every entry gets a larger one than all entries committed before
it, across all of the project's logs, so "everything after position N, ascending" is a
feed that never skips an entry committing late and never repeats one. A client resumes
with ``Last-Event-ID: N`` (what every EventSource sends on reconnecting) or ``?after=N``;
the header wins when both are given. Without either the stream starts at the newest commit
now; the ``ready`` frame carries that position as its id, so a client that reconnects
before any event arrived still resumes without a gap.

A client that sends ``Accept: text/event-stream`` (every EventSource does; ``curl -N -H
'Accept: text/event-stream'``) gets the live stream, which ends only when it disconnects,
the server shuts down, ``limit`` events were sent, or its API key was revoked (checked
every ``RECHECK_SECONDS``). Any other client gets the catch-up alone: the same frames for
what is committed now, then the response ends; a poll for scripts, and it keeps plain HTTP
clients (and API fuzzers) from holding a request open forever.

Filters and access are those of ``GET /v1/events`` (:func:`build_filter`,
:func:`resolve_logs`): scope ``events:read``; a key bound to an organization streams only
that organization, and asking for another one is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.query import EventFilter
from trailseal.server.auth import Principal, authenticate
from trailseal.server.context import AppContext, EventsReader, context
from trailseal.server.errors import ApiError
from trailseal.server.live import SAFETY_SECONDS, CommitWatch, commit_watch
from trailseal.server.routes.listing import FilterQuery, resolve_logs
from trailseal.server.views import entry_view
from trailseal.store.base import StoredEntry

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["events"])

PAGE = 500  # entries read per query
MAX_POSITION = 2**63 - 1
RECHECK_SECONDS = 30.0  # how often a live stream checks that its key still works
DEFAULT_HEARTBEAT = 15.0
_SEP = "\n"

_DESCRIPTION = (
    "Server-Sent Events of the events matching the filters of `GET /v1/events`, in commit "
    "order. Each event frame has `id:` its commit position, `event: event` and `data:` the "
    "event view `GET /v1/events` lists. The first frame, `event: ready`, has as id the "
    "position the stream starts after. Resume with `Last-Event-ID` (or `after`): nothing is "
    "skipped or repeated. Heartbeat comments (`: ping`) at least every `heartbeat` seconds. "
    "Send `Accept: text/event-stream` to follow new commits; without it the answer is the "
    "catch-up only (what is committed now) and ends."
)


def _frame_schema(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "id", "data"],
        "properties": {
            "event": {"const": kind},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


# One SSE event (what schemathesis and OpenAPI 3.2's itemSchema describe): a ready frame or
# an event frame whose data is the event view of GET /v1/events.
_EVENT_SCHEMA = {
    "oneOf": [
        _frame_schema(
            "ready",
            {
                "type": "object",
                "required": ["after"],
                "properties": {"after": {"type": "integer", "minimum": 0}},
            },
        ),
        _frame_schema(
            "event",
            {
                "type": "object",
                "required": ["id", "organization_id", "log_id", "seq", "position"],
                "properties": {
                    "id": {"type": "string"},
                    "organization_id": {"type": "string"},
                    "log_id": {"type": "string"},
                    "seq": {"type": "integer", "minimum": 0},
                    "position": {"type": "integer", "minimum": 0},
                },
            },
        ),
    ]
}


def _frame(position: int, kind: str, data: Any) -> bytes:
    return (
        f"id: {position}{_SEP}event: {kind}{_SEP}data: ".encode()
        + orjson.dumps(data)
        + (_SEP + _SEP).encode()
    )


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_POSITION:
        raise ApiError(
            422,
            "invalid",
            "Last-Event-ID must be a stream position (a non-negative 64-bit integer)",
            field="/last-event-id",
        )
    return int(text)


def _wants_live(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/event-stream" in accept.lower()


class _Reader:
    """Reads what is new for one stream, in a worker thread: the logs are resolved on every
    read (an organization's log may be created, or deleted and made anew, while the stream
    runs) and organization names are looked up once per log."""

    def __init__(
        self,
        ctx: AppContext,
        principal: Principal,
        flt: EventFilter,
        organization: str | None,
    ) -> None:
        self.ctx = ctx
        self.principal = principal
        self.flt = flt
        self.organization = organization
        self._names: dict[str, str] = {}

    def head(self) -> int:
        rows = self.ctx.store.query_entries(
            self.principal.project, EventFilter(), log_ids=None, after=None, limit=1
        )
        return rows[0][0] if rows else 0

    def read(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        log_ids = resolve_logs(self.ctx, self.principal, self.organization)
        if log_ids == []:
            return []
        rows = self.ctx.store.query_entries(
            self.principal.project,
            self.flt,
            log_ids=log_ids,
            after=after,
            limit=limit,
            descending=False,
        )
        return [(position, self._event_frame(position, entry)) for position, entry in rows]

    def _event_frame(self, position: int, entry: StoredEntry) -> bytes:
        name = self._names.get(entry.log_id)
        if name is None:
            log = self.ctx.store.get_log(self.principal.project, entry.log_id)
            name = self._names[entry.log_id] = log.organization if log is not None else ""
        return _frame(position, "event", entry_view(entry, name, None, position=position))


async def _frames(
    request: Request,
    reader: _Reader,
    start: int,
    *,
    live: bool,
    limit: int | None,
    watch: CommitWatch | None,
) -> AsyncIterator[bytes]:
    yield _frame(start, "ready", {"after": start})
    last, sent = start, 0
    subscription = (
        watch.subscribe(reader.principal.project) if watch is not None else contextlib.nullcontext()
    )
    checked = time.monotonic()
    with subscription as wake:
        while True:
            if wake is not None:
                wake.clear()  # before reading: a commit during the read wakes us again
            want = PAGE if limit is None else min(PAGE, limit - sent)
            frames = await run_in_threadpool(reader.read, last, want)
            for position, frame in frames:
                yield frame
                last = position
            sent += len(frames)
            if limit is not None and sent >= limit:
                return
            if len(frames) == want:
                continue
            if wake is None:  # the catch-up is done
                return
            if time.monotonic() - checked > RECHECK_SECONDS:
                # A revoked key stops streaming; the reconnect then answers 401.
                try:
                    await run_in_threadpool(authenticate, request, reader.ctx.store)
                except ApiError:
                    return
                checked = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), SAFETY_SECONDS)


@router.get(
    "/stream/events",
    summary="Live stream of new events (Server-Sent Events)",
    description=_DESCRIPTION,
    response_class=Response,
    responses={
        200: {
            "description": "A text/event-stream of `ready` and `event` frames.",
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
        }
    },
)
async def stream_events(
    request: Request,
    principal: EventsReader,
    filters: FilterQuery,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_POSITION, description="Start after this position (a frame's id)."),
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="End after this many events.")
    ] = None,
    heartbeat: Annotated[
        float,
        Query(ge=0.1, le=DEFAULT_HEARTBEAT, allow_inf_nan=False, description="Seconds."),
    ] = DEFAULT_HEARTBEAT,
    last_event_id: Annotated[
        str | None, Header(max_length=32, description="Resume after this position.")
    ] = None,
) -> Response:
    ctx = context(request)
    flt, organization = filters.to_filter()
    resume = _resume_point(last_event_id, after)
    reader = _Reader(ctx, principal, flt, organization)

    def prepare() -> int:
        resolve_logs(ctx, principal, reader.organization)  # a bound key's 404, up front
        return reader.head() if resume is None else resume

    start = await run_in_threadpool(prepare)
    live = _wants_live(request)
    watch = commit_watch(request.app.state, ctx) if live else None
    return EventSourceResponse(
        _frames(request, reader, start, live=live, limit=limit, watch=watch),
        headers={"Cache-Control": "no-cache"},
        ping=heartbeat if live else 0,
        sep=_SEP,
        ping_message_factory=lambda: ServerSentEvent(comment="ping", sep=_SEP),
    )
