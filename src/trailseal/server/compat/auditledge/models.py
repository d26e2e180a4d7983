"""Auditledge ↔ native translation: the façade's backend (the ``models`` half of a moto-style
split; the wire is :mod:`.responses`). No storage or crypto of its own: every event is an
ordinary entry of its organization's log, appended by the ledger, read through the store.

Theory of operation
-------------------
The Auditledge client (``auditledge==0.1.1``, contract in shared/compat/auditledge.md) speaks
in one flat vocabulary; each piece maps onto the native model (ARCHITECTURE §4) as follows.

======================  ====================================================================
Auditledge              native
======================  ====================================================================
API key (Bearer)        a trailseal API key (``tsk_…``), same scopes: ``log`` needs
                        ``events:write``, ``query``/``get`` ``events:read``, ``export``
                        ``export``, ``usage`` any key
organization_id         the organization (its own log); absent: the key's bound organization,
                        else ``default``. A bound key naming another one: 403
actor {id,name,email}   ``actor`` as sent (no ``type``: it reads as ``user``)
action                  ``action`` when it is dot notation (``ACTION_PATTERN``); otherwise
                        the same text with every other character made ``_`` (and a dot that
                        does not separate two words too), the original kept verbatim in the
                        entry's ``ext``: ``{"auditledge": {"action": "<as sent>"}}``
resource {type,id,name} ``resource`` as sent (both ``type`` and ``id`` required)
metadata                ``metadata`` (an object)
timestamp               ``occurred_at``: ISO 8601, any offset, none meaning UTC, a bare date
                        meaning its midnight UTC; stored as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
created_at              the entry's ``received_at``
id                      the native event id (UUIDv7, assigned by the server: URL-safe, never
                        ``export``)
sequence/hash/prev_hash the entry's ``seq`` and chain hashes (lowercase hex)
======================  ====================================================================

Filters become one :class:`~trailseal.query.EventFilter` (so they mean exactly what the
native listing means): ``organization_id`` selects the organization's log, ``actor_id`` and
``resource_type`` are exact (``actor_id``, ``resource_type``), ``actor_name`` is
``actor_name`` (substring, case-insensitive), ``action`` is ``action_contains`` (substring,
case-insensitive; a value with characters no dot-notation action holds is matched in the
mapped form above), ``search`` is one full-text term (``text``: its words, in order, in the
action, names, resource type, ids or metadata), ``start_date``/``end_date`` are
``since``/``until`` (inclusive; a bare end date covers its whole day). A start after the
end matches nothing. Listings are newest first by ``timestamp`` (``occurred_at``), ties in
commit order, paged by offset; exports are every match in commit order, oldest first, read
a page at a time by commit position.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import orjson
from starlette.concurrency import run_in_threadpool

from trailseal.core.ids import ID_PATTERN
from trailseal.core.schema import (
    ACTION_PATTERN,
    DEFAULT_LIMITS,
    MAX_SAFE_INTEGER,
    format_timestamp,
    validate_event,
)
from trailseal.errors import ValidationError
from trailseal.ledger.integrate import AppendResult
from trailseal.ledger.prepare import prepare_incoming
from trailseal.query import EventFilter
from trailseal.server.auth import Principal
from trailseal.server.context import AppContext
from trailseal.server.errors import ApiError
from trailseal.store.base import LogHead, StoredEntry

__all__ = [
    "DEFAULT_ORGANIZATION",
    "EVENT_FIELDS",
    "FILTERS",
    "UNLIMITED_EVENTS",
    "UNLIMITED_RETENTION_DAYS",
    "VENDOR",
    "Backend",
    "Selection",
    "native_action",
    "parse_instant",
    "select",
    "to_native",
    "vendor_field",
]

VENDOR: Final = "auditledge"
DEFAULT_ORGANIZATION: Final = "default"
#: Top-level members of an Auditledge event; anything else is refused, naming the key.
EVENT_FIELDS: Final = ("actor", "action", "resource", "organization_id", "metadata", "timestamp")
_ACTOR_FIELDS: Final = ("id", "name", "email")
_RESOURCE_FIELDS: Final = ("type", "id", "name")
#: The filters of ``query`` and ``export`` (besides ``limit``/``offset`` and ``format``).
FILTERS: Final = (
    "organization_id",
    "actor_id",
    "actor_name",
    "action",
    "resource_type",
    "search",
    "start_date",
    "end_date",
)
#: ``usage`` when the project has no quota / retention configured: no limit.
UNLIMITED_EVENTS: Final = MAX_SAFE_INTEGER
UNLIMITED_RETENTION_DAYS: Final = 36_500

_ACTION_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_ACTION_FRAGMENT = re.compile(r"[A-Za-z0-9_.-]+")
_WORD_CHAR = re.compile(r"[^\W_]")
_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_INSTANT_EXAMPLES = "e.g. 2026-01-31T10:00:00Z, 2026-01-31T12:00:00.5+02:00 or 2026-01-31"
# Entries whose payload was erased cannot say when they were received; past this many in a
# row the month count takes them as received this month.
_REDACTED_PROBES: Final = 32


def _bad(message: str, field: str, code: str = "invalid", status: int = 400) -> ApiError:
    return ApiError(status, code, f"{field}: {message}" if field else message, field=field)


# ---------------------------------------------------------------------------------------
# Vocabulary.
# ---------------------------------------------------------------------------------------


def vendor_field(pointer: str) -> str:
    """The Auditledge name of a native JSON pointer: ``/actor/id`` → ``actor.id``,
    ``/occurred_at`` → ``timestamp``, ``""`` → ``event``."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        return "event"
    if parts[0] == "occurred_at":
        parts[0] = "timestamp"
    return ".".join(parts)


def native_action(action: str) -> str:
    """The native action for an Auditledge action: itself when it is dot notation, else
    the same text with each character outside ``[A-Za-z0-9_.-]`` (and each dot that does
    not separate two words) replaced by ``_``. One character for one, so a fragment of
    the original maps into a fragment of the result."""
    if ACTION_PATTERN.fullmatch(action):
        return action
    chars = ["_" if _ACTION_CHAR.match(c) else c for c in action]
    last = len(action) - 1
    for i, c in enumerate(chars):
        if c == "." and (i in (0, last) or action[i - 1] == "." or action[i + 1] == "."):
            chars[i] = "_"
    return "".join(chars)


def parse_instant(text: object, field: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime. Accepts ``T``, ``t`` or a
    space between date and time, optional seconds and fraction (truncated to µs), ``Z`` or
    a ``±HH[:MM]`` offset; no offset means UTC. A bare date is its first microsecond, or
    its last with ``end_of_day``. Raises :class:`ApiError` (400) naming ``field``."""
    if not isinstance(text, str):
        kind = "null" if text is None else type(text).__name__
        raise _bad(f"expected an ISO 8601 string, got {kind}", field, "type")
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise _bad(f"{text[:64]!r} is not an ISO 8601 timestamp ({_INSTANT_EXAMPLES})", field)
    year, month, day = (int(g) for g in match.group(1, 2, 3))
    hour, minute, second, fraction, zone = match.group(4, 5, 6, 7, 8)
    tz: timezone = UTC
    if zone and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            raise _bad(f"{text!r} has an impossible UTC offset", field)
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if zone[0] == "-" else delta)
    try:
        if hour is None:
            value = datetime(year, month, day, tzinfo=UTC)
            if end_of_day:
                value += timedelta(days=1, microseconds=-1)
        else:
            micro = int((fraction or "").ljust(6, "0")[:6])
            value = datetime(
                year, month, day, int(hour), int(minute), int(second or 0), micro, tzinfo=tz
            )
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _bad(f"{text!r} is not a real date and time ({exc})", field) from None


# ---------------------------------------------------------------------------------------
# Events in.
# ---------------------------------------------------------------------------------------


def _member(body: Mapping[str, Any], name: str, fields: Sequence[str]) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        raise _bad("is required", name, "required")
    if not isinstance(value, dict):
        raise _bad(f"expected an object, got {type(value).__name__}", name, "type")
    for key in value:
        if key not in fields:
            raise _bad(
                f"unknown field {key!r} (expected {', '.join(fields)})",
                f"{name}.{key}",
                "unknown_field",
            )
    for key in ("type", "id") if name == "resource" else ("id",):
        if value.get(key) in (None, ""):
            raise _bad("is required", f"{name}.{key}", "required")
    return dict(value)


def to_native(body: object) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An Auditledge event as a native event (not yet validated by the native rules) and
    the entry's ``ext`` member (``None`` unless the action had to be mapped). Raises
    :class:`ApiError` (400) for what the native rules would not name in Auditledge's terms."""
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, not {type(body).__name__}", "")
    for key in body:
        if key not in EVENT_FIELDS:
            raise _bad(
                f"unknown field (expected {', '.join(EVENT_FIELDS)})", str(key), "unknown_field"
            )
    action = body.get("action")
    if action is None:
        raise _bad("is required", "action", "required")
    if not isinstance(action, str):
        raise _bad(f"expected a string, got {type(action).__name__}", "action", "type")
    if not action.strip():
        raise _bad("must not be empty", "action", "too_short")
    if len(action) > DEFAULT_LIMITS.max_action_length:
        raise _bad(
            f"longer than {DEFAULT_LIMITS.max_action_length} characters", "action", "too_long"
        )
    event: dict[str, Any] = {
        "action": native_action(action),
        "actor": _member(body, "actor", _ACTOR_FIELDS),
        "resource": _member(body, "resource", _RESOURCE_FIELDS),
    }
    organization = body.get("organization_id")
    if organization is not None:
        event["organization_id"] = organization
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad(f"expected a JSON object, got {type(metadata).__name__}", "metadata", "type")
        event["metadata"] = metadata
    timestamp = body.get("timestamp")
    if timestamp is not None:
        event["occurred_at"] = format_timestamp(parse_instant(timestamp, "timestamp"))
    ext = None if event["action"] == action else {VENDOR: {"action": action}}
    return event, ext


# ---------------------------------------------------------------------------------------
# Events out.
# ---------------------------------------------------------------------------------------


def vendor_event(entry: StoredEntry, organization: str, prev_hash: bytes | None) -> dict[str, Any]:
    """An entry as Auditledge's event object (§4.3): names and emails ``null`` when not
    sent, metadata ``{}`` when none, the original action when it was mapped."""
    view: dict[str, Any] = {"id": entry.event_id, "organization_id": organization}
    if entry.entry is None:  # erased (§5): only the hashes are left
        view.update(
            actor={"id": None, "name": None, "email": None},
            action=None,
            resource={"type": None, "id": None, "name": None},
            metadata={},
            timestamp=None,
            created_at=None,
            redacted=True,
        )
    else:
        document = orjson.loads(entry.entry)
        event = document["event"]
        ext = (document.get("ext") or {}).get(VENDOR) or {}
        actor = event.get("actor") or {}
        resource = event.get("resource") or {}
        metadata = event.get("metadata")
        view.update(
            actor={f: actor.get(f) for f in _ACTOR_FIELDS},
            action=ext.get("action", event.get("action")),
            resource={f: resource.get(f) for f in _RESOURCE_FIELDS},
            metadata=metadata if isinstance(metadata, dict) else {},
            timestamp=event.get("occurred_at"),
            created_at=document.get("received_at"),
        )
    view["sequence"] = entry.seq
    view["hash"] = entry.chain_hash.hex()
    view["prev_hash"] = prev_hash.hex() if prev_hash is not None else None
    return view


# ---------------------------------------------------------------------------------------
# Filters.
# ---------------------------------------------------------------------------------------

_NATIVE_NAMES: Final = {
    "/organization": "organization_id",
    "/actor_id": "actor_id",
    "/actor_name": "actor_name",
    "/action_contains": "action",
    "/resource_type": "resource_type",
    "/text": "search",
    "/since": "start_date",
    "/until": "end_date",
}


@dataclass(frozen=True, slots=True)
class Selection:
    """What a ``query`` or ``export`` selects: the organization (None: every one the key
    sees) and the filter, or ``None`` when the filters provably match nothing."""

    organization: str | None
    filter: EventFilter | None


def select(values: Mapping[str, str]) -> Selection:
    """The selection the Auditledge filters in ``values`` describe (names in
    :data:`FILTERS`; other keys are the caller's business). Empty values are no filter.
    Raises :class:`ApiError` (400) naming the parameter."""
    given = {k: v for k, v in values.items() if k in FILTERS and v.strip() != ""}
    fields: dict[str, Any] = {}
    for name in ("actor_id", "actor_name", "resource_type"):
        if name in given:
            fields[name] = given[name]
    action = given.get("action")
    if action is not None:
        fragment = action if _ACTION_FRAGMENT.fullmatch(action) else _ACTION_CHAR.sub("_", action)
        fields["action_contains"] = fragment
    search = given.get("search")
    if search is not None:
        if _WORD_CHAR.search(search) is None:
            raise _bad(f"{search[:64]!r} has no letters or digits to search for", "search")
        fields["text"] = (search.strip(),)
    since = until = None
    if "start_date" in given:
        since = format_timestamp(parse_instant(given["start_date"], "start_date"))
    if "end_date" in given:
        until = format_timestamp(parse_instant(given["end_date"], "end_date", end_of_day=True))
    organization = given.get("organization_id")
    if since is not None and until is not None and since > until:
        return Selection(organization, None)
    try:
        flt = EventFilter(since=since, until=until, **fields)
    except ValidationError as exc:
        root = "/" + exc.field.split("/")[1] if exc.field else ""
        name = _NATIVE_NAMES.get(root) or vendor_field(exc.field)
        raise _bad(exc.message, name, exc.code) from None
    return Selection(organization, flt)


# ---------------------------------------------------------------------------------------
# The backend: one caller's view of the native service.
# ---------------------------------------------------------------------------------------


class Backend:
    """The native service as one Auditledge caller sees it: ``principal``'s project, its
    organization binding, and the ledger and store behind ``ctx``. Methods other than
    :meth:`log` do IO and run in a worker thread."""

    def __init__(self, ctx: AppContext, principal: Principal) -> None:
        self.ctx = ctx
        self.principal = principal
        self.project = principal.project

    # -- organizations ---------------------------------------------------------------
    def _forbidden(self, organization: str) -> ApiError:
        return ApiError(
            403,
            "forbidden",
            f"organization_id: this API key is bound to another organization than {organization!r}",
            field="organization_id",
        )

    def organization_for_write(self, requested: object) -> str:
        wanted = requested if isinstance(requested, str) and requested else None
        bound = self.principal.organization
        if bound is not None:
            if wanted is not None and wanted != bound:
                raise self._forbidden(wanted)
            return bound
        return wanted or DEFAULT_ORGANIZATION

    def logs_for_read(self, organization: str | None) -> list[str] | None:
        """The logs a listing reads: the organization's (empty when it has none yet), or
        None for every log of the project. A bound key reads only its organization's."""
        bound = self.principal.organization
        if bound is not None:
            if organization is not None and organization != bound:
                raise self._forbidden(organization)
            organization = bound
        if organization is None:
            return None
        log = self.ctx.store.find_log(self.project, organization)
        return [log.log_id] if log is not None else []

    # -- log -------------------------------------------------------------------------
    async def log(self, body: object) -> dict[str, Any]:
        """Validate, append synchronously (answers once committed, §6) and read back."""
        event, ext = to_native(body)
        validate_event(event, DEFAULT_LIMITS)
        organization = self.organization_for_write(event.get("organization_id"))
        prepared = prepare_incoming(
            event,
            now=datetime.now(UTC),
            new_id=self.ctx.ledger.new_event_id,
            ext=ext,
            validated=True,
        )
        future = await run_in_threadpool(
            self.ctx.ledger.append, self.project, organization, [prepared]
        )
        results: list[AppendResult] = await asyncio.wrap_future(future)
        return await run_in_threadpool(self._appended, results[0], organization)

    def _appended(self, result: AppendResult, organization: str) -> dict[str, Any]:
        stored = self.ctx.store.get_entry(self.project, result.log_id, result.seq)
        if stored is None:  # pragma: no cover - committed entries are readable
            raise ApiError(500, "internal", "the stored event could not be read back")
        prev = result.prev_hash
        if prev is None:
            prev = self._prev_hashes([stored]).get((stored.log_id, stored.seq))
        return vendor_event(stored, organization, prev)

    # -- reads -----------------------------------------------------------------------
    def _organizations(self, entries: Sequence[StoredEntry]) -> dict[str, str]:
        found: dict[str, str] = {}
        for log_id in {e.log_id for e in entries}:
            log = self.ctx.store.get_log(self.project, log_id)
            found[log_id] = log.organization if log is not None else ""
        return found

    def _prev_hashes(self, entries: Sequence[StoredEntry]) -> dict[tuple[str, int], bytes]:
        """Each entry's ``prev_hash``: from the same page when its predecessor is there,
        else one read."""
        chain = {(e.log_id, e.seq): e.chain_hash for e in entries}
        out: dict[tuple[str, int], bytes] = {}
        for e in entries:
            prev = chain.get((e.log_id, e.seq - 1))
            if prev is None:
                if e.seq == 0:
                    prev = bytes(32)
                else:
                    before = self.ctx.store.get_entry(self.project, e.log_id, e.seq - 1)
                    prev = before.chain_hash if before is not None else None
            if prev is not None:
                out[(e.log_id, e.seq)] = prev
        return out

    def _views(self, entries: Sequence[StoredEntry]) -> list[dict[str, Any]]:
        organizations = self._organizations(entries)
        prevs = self._prev_hashes(entries)
        return [
            vendor_event(e, organizations[e.log_id], prevs.get((e.log_id, e.seq))) for e in entries
        ]

    def query(self, selection: Selection, *, limit: int, offset: int) -> dict[str, Any]:
        """One page, newest ``timestamp`` first, and the total ignoring limit and offset."""
        log_ids = self.logs_for_read(selection.organization)
        flt = selection.filter
        rows: list[tuple[int, StoredEntry]] = []
        total = 0
        if flt is not None and log_ids != []:
            store = self.ctx.store
            total = store.count_entries(self.project, flt, log_ids=log_ids)
            if offset < total:
                rows = store.query_entries(
                    self.project,
                    flt,
                    log_ids=log_ids,
                    after=None,
                    limit=limit,
                    descending=True,
                    offset=offset,
                    sort="occurred",
                )
        events = self._views([entry for _, entry in rows])
        return {"events": events, "total": total, "limit": limit, "offset": offset}

    def get(self, event_id: str) -> dict[str, Any] | None:
        if not ID_PATTERN.fullmatch(event_id):
            return None
        entry = self.ctx.store.get_entry_by_id(self.project, event_id)
        if entry is None:
            return None
        log = self.ctx.store.get_log(self.project, entry.log_id)
        if log is None or not self.principal.can_see(log.organization):
            return None
        return vendor_event(
            entry, log.organization, self._prev_hashes([entry]).get((entry.log_id, entry.seq))
        )

    def check_export(self, selection: Selection) -> list[str] | None:
        """The logs an export reads (raises before any byte is sent)."""
        return self.logs_for_read(selection.organization)

    def export_pages(
        self, selection: Selection, log_ids: list[str] | None, *, page: int = 500
    ) -> Iterator[list[dict[str, Any]]]:
        """Every match, oldest commit first, ``page`` at a time: constant memory, and a
        commit-position cursor never skips or repeats an entry (§7)."""
        flt = selection.filter
        if flt is None or log_ids == []:
            return
        after: int | None = None
        while True:
            rows = self.ctx.store.query_entries(
                self.project, flt, log_ids=log_ids, after=after, limit=page, descending=False
            )
            if rows:
                yield self._views([entry for _, entry in rows])
                after = rows[-1][0]
            if len(rows) < page:
                return

    # -- usage -----------------------------------------------------------------------
    def usage(self, plan: str) -> dict[str, Any]:
        """Events appended this UTC month (by ingest time) for the key's scope: the
        project, or a bound key's organization."""
        month = self.ctx.ledger.now_text()[:7]
        if self.principal.organization is None:
            used = self.ctx.store.usage(self.project, month)
        else:
            log = self.ctx.store.find_log(self.project, self.principal.organization)
            used = 0 if log is None else log.size - self._received_before(log, month)
        project = self.ctx.store.get_project(self.project)
        limit = project.monthly_event_limit if project is not None else None
        retention = project.retention_days if project is not None else None
        return {
            "plan": plan,
            "events_this_month": used,
            "events_limit": limit if limit is not None else UNLIMITED_EVENTS,
            "retention_days": retention if retention is not None else UNLIMITED_RETENTION_DAYS,
        }

    def _received_at(self, log: LogHead, seq: int) -> str | None:
        entry = self.ctx.store.get_entry(self.project, log.log_id, seq)
        if entry is None or entry.entry is None:
            return None
        stamp = orjson.loads(entry.entry).get("received_at")
        return stamp if isinstance(stamp, str) else None

    def _received_before(self, log: LogHead, month: str) -> int:
        """How many of the log's entries were received before ``month`` began: a binary
        search on ``received_at``, which a log's sequencer assigns in seq order."""
        low, high = 0, log.size
        while low < high:
            mid = (low + high) // 2
            probe, stamp = mid, None
            while probe < high and probe - mid < _REDACTED_PROBES:
                stamp = self._received_at(log, probe)
                if stamp is not None:
                    break
                probe += 1
            if stamp is None or stamp[:7] >= month:
                high = mid
            else:
                low = probe + 1
        return low
