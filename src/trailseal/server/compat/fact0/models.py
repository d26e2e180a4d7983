"""Fact0 ↔ native translation: the façade's backend (the ``models`` half of a moto-style
split; the wire is :mod:`.responses`). No storage or crypto of its own: every event is an
ordinary entry of its organization's log, appended by the ledger, read through the store,
verified with the native core.

Theory of operation
-------------------
The Fact0 client (``fact0-sdk==1.0.6``, contract in shared/compat/fact0.md) sees one
"tenant": one native log, the key's bound organization, else ``default``.

=======================  ==================================================================
Fact0                    native
=======================  ==================================================================
API key (Bearer)         a trailseal key; ingest ``events:write``, reads ``events:read``,
                         receipts either of those, verify ``verify``, exports ``export``
tenant_id                ``<project>/<organization>``
id                       ``id`` verbatim (must match the native id pattern, which is also
                         a safe URL path segment); absent: a server-minted UUIDv7
timestamp                ``occurred_at`` (any offset, normalized to UTC, µs kept)
actor {id,type,email}    ``actor``; type ``human``↔``user``, ``agent``↔``agent``,
                         ``system``↔``system`` (``service``/``api_key`` read as ``system``)
action                   ``action`` when dot notation, else the same text with every other
                         character made ``_``, the original kept in the entry's
                         ``ext``: ``{"fact0": {"action": "<as sent>"}}``
resource {id,type,name}  ``resource``
outcome                  ``outcome`` (required here)
metadata                 ``metadata`` (``{}`` when none)
sequence_number          the entry's ``seq``
prev_hash / hash         the native chain (``prev_hash`` of entry 0: 32 zero bytes)
created_at               the entry's ``received_at``
receipt_id / status      the native async receipt (``queued``→``committed``/``failed``)
=======================  ==================================================================

Listings are offset pages over ``Store.query_entries`` in commit order, newest first (one
log: commit order is sequence order), with ``total`` from ``Store.count_entries``.
``actor_type=system`` matches three native types, so it runs three filters and merges them.
"""

from __future__ import annotations

import asyncio
import heapq
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from starlette.concurrency import run_in_threadpool

from trailseal.core.hashing import chain_hash, leaf_hash
from trailseal.core.ids import ID_PATTERN
from trailseal.core.merkle import verify_inclusion
from trailseal.core.schema import (
    ACTION_PATTERN,
    DEFAULT_LIMITS,
    format_timestamp,
    validate_batch,
)
from trailseal.errors import ValidationError, VerificationError
from trailseal.ledger.audit import RangeReport, verify_range
from trailseal.ledger.integrate import AppendResult, IdempotencyConflict
from trailseal.ledger.prepare import PreparedEvent, prepare_incoming
from trailseal.query import EventFilter
from trailseal.server.auth import Principal
from trailseal.server.context import AppContext
from trailseal.server.errors import ApiError
from trailseal.store.base import LogHead, ReceiptRow, StoredEntry

__all__ = [
    "DEFAULT_ORGANIZATION",
    "DEFAULT_PAGE_SIZE",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "VENDOR",
    "Backend",
    "Window",
    "parse_instant",
    "to_native",
    "vendor_event",
    "window",
]

VENDOR: Final = "fact0"
DEFAULT_ORGANIZATION: Final = "default"
MAX_BATCH: Final = 1000
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
#: A sync batch parked in the durable intake (sequencer behind) is awaited this long.
SYNC_WAIT_SECONDS: Final = 25.0

_EVENT_FIELDS: Final = ("actor", "action", "resource", "outcome", "metadata", "id", "timestamp")
_ACTOR_FIELDS: Final = ("id", "type", "email")
_RESOURCE_FIELDS: Final = ("id", "type", "name")
_OUTCOMES: Final = ("success", "failure", "error")
#: Fact0 actor type → native, and back (service and api_key keys read as system).
_TO_NATIVE_TYPE: Final = {"human": "user", "agent": "agent", "system": "system"}
_FROM_NATIVE_TYPE: Final = {
    "user": "human",
    "agent": "agent",
    "system": "system",
    "service": "system",
    "api_key": "system",
}
_NATIVE_TYPES_OF: Final = {
    "human": ("user",),
    "agent": ("agent",),
    "system": ("system", "service", "api_key"),
}
_ACTION_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)


def _bad(
    message: str, field: str, index: int | None = None, code: str = "validation_error"
) -> ApiError:
    where = field if index is None else f"events[{index}].{field}" if field else f"events[{index}]"
    details = {"index": index} if index is not None else None
    return ApiError(400, code, f"{where}: {message}", field=field or None, details=details)


# ---------------------------------------------------------------------------------------
# Vocabulary.
# ---------------------------------------------------------------------------------------


def _native_action(action: str) -> str:
    """Itself when dot notation; else each character outside ``[A-Za-z0-9_.-]`` and each
    dot not between two words becomes ``_`` (one for one)."""
    if ACTION_PATTERN.fullmatch(action):
        return action
    chars = ["_" if _ACTION_CHAR.match(c) else c for c in action]
    last = len(action) - 1
    for i, c in enumerate(chars):
        if c == "." and (i in (0, last) or action[i - 1] == "." or action[i + 1] == "."):
            chars[i] = "_"
    return "".join(chars)


def parse_instant(value: object, field: str, index: int | None = None) -> str:
    """An RFC 3339 date-time (offset optional: none means UTC; fraction truncated to µs),
    or epoch seconds, as the stored UTC form. Raises :class:`ApiError` (400)."""
    if isinstance(value, bool):
        raise _bad("expected an RFC 3339 timestamp, got a boolean", field, index)
    try:
        if isinstance(value, int | float):
            return format_timestamp(datetime.fromtimestamp(value, UTC))
        if not isinstance(value, str):
            kind = "null" if value is None else type(value).__name__
            raise _bad(f"expected an RFC 3339 timestamp, got {kind}", field, index)
        text = value.strip()
        if _INSTANT.fullmatch(text) is None:
            raise _bad(
                f"{text[:64]!r} is not an RFC 3339 timestamp (e.g. 2026-01-01T12:00:00Z)",
                field,
                index,
            )
        head, dot, rest = text.partition(".")
        if dot:  # Python parses at most 6 fractional digits
            digits = re.match(r"[0-9]+", rest)
            assert digits is not None
            text = f"{head}.{digits.group()[:6]}{rest[digits.end() :]}"
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return format_timestamp(parsed)
    except (ValueError, OverflowError, OSError) as exc:
        raise _bad(f"{str(value)[:64]!r} is not a real instant ({exc})", field, index) from None


def _member(
    event: Mapping[str, Any], name: str, fields: Sequence[str], required: Sequence[str], index: int
) -> dict[str, Any]:
    value = event.get(name)
    if value is None:
        raise _bad("is required", name, index)
    if not isinstance(value, dict):
        raise _bad(f"expected an object, got {type(value).__name__}", name, index)
    for key in value:
        if key not in fields:
            raise _bad(f"unknown field (expected {', '.join(fields)})", f"{name}.{key}", index)
    for key in required:
        item = value.get(key)
        if not isinstance(item, str) or not item:
            raise _bad("is required (a non-empty string)", f"{name}.{key}", index)
    for key in fields:
        if key in value and value[key] is not None and not isinstance(value[key], str):
            raise _bad(
                f"expected a string, got {type(value[key]).__name__}", f"{name}.{key}", index
            )
    return {k: v for k, v in value.items() if v is not None}


def to_native(wire: object, index: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A Fact0 wire event (§3.1) as a native event (not yet validated by the native rules)
    and the entry's ``ext`` member (``None`` unless the action had to be mapped)."""
    if not isinstance(wire, dict):
        raise _bad(f"expected an event object, got {type(wire).__name__}", "", index)
    for key in wire:
        if key not in _EVENT_FIELDS:
            raise _bad(f"unknown field (expected {', '.join(_EVENT_FIELDS)})", str(key), index)
    actor = _member(wire, "actor", _ACTOR_FIELDS, ("id", "type"), index)
    if actor["type"] not in _TO_NATIVE_TYPE:
        raise _bad("expected one of human, agent, system", "actor.type", index)
    actor["type"] = _TO_NATIVE_TYPE[actor["type"]]
    resource = _member(wire, "resource", _RESOURCE_FIELDS, ("id", "type"), index)
    action = wire.get("action")
    if not isinstance(action, str) or not action:
        raise _bad("is required (a non-empty string)", "action", index)
    if len(action) > DEFAULT_LIMITS.max_action_length:
        raise _bad(f"longer than {DEFAULT_LIMITS.max_action_length} characters", "action", index)
    outcome = wire.get("outcome")
    if outcome not in _OUTCOMES:
        raise _bad("is required: one of success, failure, error", "outcome", index)
    metadata = wire.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _bad(f"expected an object, got {type(metadata).__name__}", "metadata", index)
    event: dict[str, Any] = {
        "actor": actor,
        "action": _native_action(action),
        "resource": resource,
        "outcome": outcome,
        "metadata": metadata,
    }
    event_id = wire.get("id")
    if event_id is not None:
        if not isinstance(event_id, str) or ID_PATTERN.fullmatch(event_id) is None:
            raise _bad("must match [A-Za-z0-9._:-]{1,128} (one URL path segment)", "id", index)
        event["id"] = event_id
    timestamp = wire.get("timestamp")
    if timestamp is not None:
        event["occurred_at"] = parse_instant(timestamp, "timestamp", index)
    ext = None if event["action"] == action else {VENDOR: {"action": action}}
    return event, ext


def _vendor_field(pointer: str) -> str:
    """``/actor/id`` → ``actor.id``; ``/occurred_at`` → ``timestamp``."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if parts and parts[0] == "occurred_at":
        parts[0] = "timestamp"
    return ".".join(parts)


# ---------------------------------------------------------------------------------------
# Events out.
# ---------------------------------------------------------------------------------------


def vendor_event(entry: StoredEntry, tenant_id: str, prev_hash: bytes) -> dict[str, Any]:
    """An entry in Fact0's event shape (§4); entries from other doors get the defaults."""
    view: dict[str, Any] = {"id": entry.event_id, "tenant_id": tenant_id}
    if entry.entry is None:  # erased (ARCHITECTURE §5): only the hashes are left
        view.update(
            timestamp=None,
            actor={"id": None, "type": "human"},
            action=None,
            resource={"id": None, "type": None},
            outcome="success",
            metadata={},
            created_at=None,
            redacted=True,
        )
    else:
        document = orjson.loads(entry.entry)
        event = document["event"]
        ext = (document.get("ext") or {}).get(VENDOR) or {}
        actor_in = event.get("actor") or {}
        actor: dict[str, Any] = {
            "id": actor_in.get("id"),
            "type": _FROM_NATIVE_TYPE.get(actor_in.get("type") or "user", "human"),
        }
        if actor_in.get("email") is not None:
            actor["email"] = actor_in["email"]
        resource_in = event.get("resource") or {}
        resource: dict[str, Any] = {"id": resource_in.get("id"), "type": resource_in.get("type")}
        if resource_in.get("name") is not None:
            resource["name"] = resource_in["name"]
        metadata = event.get("metadata")
        view.update(
            timestamp=event.get("occurred_at"),
            actor=actor,
            action=ext.get("action", event.get("action")),
            resource=resource,
            outcome=event.get("outcome") or "success",
            metadata=metadata if isinstance(metadata, dict) else {},
            created_at=document.get("received_at"),
        )
    view["sequence_number"] = entry.seq
    view["prev_hash"] = prev_hash.hex()
    view["hash"] = entry.chain_hash.hex()
    return view


def receipt_answer(
    receipt: ReceiptRow, *, duplicates: int | None = None, status: str | None = None
) -> dict[str, Any]:
    """A native receipt in Fact0's receipt / BatchResult shape (§3.2, §3.3)."""
    state = status or receipt.state
    body: dict[str, Any] = {
        "receipt_id": receipt.receipt_id,
        "status": state,
        "accepted": len(receipt.event_ids),
        "rejected": 0,
        "ids": list(receipt.event_ids),
        "errors": [],
        "error_message": receipt.error,
        "created_at": receipt.created_at,
        "committed_at": receipt.updated_at if state == "committed" else None,
    }
    if duplicates is not None:
        body["duplicates"] = duplicates
    return body


# ---------------------------------------------------------------------------------------
# Query windows and filters.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A ``from``/``to`` window on ``timestamp`` (stored form; None: open)."""

    since: str | None
    until: str | None


def window(params: Mapping[str, str]) -> Window:
    """``from`` (alias ``from_``) and ``to``; empty values are no bound. 400 if unparseable."""
    start = params.get("from") or params.get("from_") or None
    end = params.get("to") or None
    since = parse_instant(start, "from") if start else None
    until = parse_instant(end, "to") if end else None
    return Window(since, until)


def _filters(params: Mapping[str, str]) -> list[EventFilter] | None:
    """The native filters whose union the Fact0 filters select (None: provably nothing)."""
    span = window(params)
    if span.since is not None and span.until is not None and span.since > span.until:
        return None
    fields: dict[str, Any] = {"since": span.since, "until": span.until}
    for name in ("actor_id", "resource_id", "outcome"):
        value = params.get(name)
        if value:
            fields[name] = value
    action = params.get("action")
    if action:
        if action.endswith("*"):
            prefix = action[:-1]
            if prefix:
                fields["action_prefix"] = _ACTION_CHAR.sub("_", prefix)
        else:
            fields["action"] = _native_action(action)
    actor_type = params.get("actor_type")
    types: tuple[str | None, ...] = (None,)
    if actor_type:
        if actor_type not in _NATIVE_TYPES_OF:
            raise _bad("expected one of human, agent, system", "actor_type")
        types = _NATIVE_TYPES_OF[actor_type]
    try:
        return [EventFilter(actor_type=t, **fields) for t in types]
    except ValidationError as exc:
        name = exc.field.lstrip("/").split("/")[0]
        name = {"since": "from", "until": "to", "action_prefix": "action"}.get(name, name)
        raise _bad(exc.message, name) from None


# ---------------------------------------------------------------------------------------
# The backend: one caller's view of the native service.
# ---------------------------------------------------------------------------------------


class Backend:
    """The native service as one Fact0 caller sees it: ``principal``'s project and its one
    log (the bound organization, else ``default``). Blocking methods run in a worker."""

    def __init__(self, ctx: AppContext, principal: Principal) -> None:
        self.ctx = ctx
        self.principal = principal
        self.project = principal.project
        self.organization = principal.organization or DEFAULT_ORGANIZATION
        self.tenant_id = f"{self.project}/{self.organization}"

    def log(self) -> LogHead | None:
        return self.ctx.store.find_log(self.project, self.organization)

    # -- ingest ------------------------------------------------------------------------
    def prepare(self, body: object) -> list[PreparedEvent]:
        """Translate and validate a whole batch (any bad event refuses it all, naming its
        index and field), then prepare it for the ledger."""
        raws = body.get("events") if isinstance(body, dict) else None
        if not isinstance(raws, list):
            raise _bad('expected {"events": [...]}', "events")
        if not raws:
            raise _bad("a batch needs at least one event", "events")
        if len(raws) > MAX_BATCH:
            raise _bad(f"{len(raws)} events; at most {MAX_BATCH} per batch", "events")
        translated = [to_native(raw, n) for n, raw in enumerate(raws)]
        problems = validate_batch([event for event, _ in translated], DEFAULT_LIMITS)
        if problems:
            first = problems[0]
            field = _vendor_field(first.field) or "events"
            status = 413 if first.code == "too_large" and first.index is None else 400
            error = _bad(first.message, field, first.index, code=first.code)
            error.status = status
            raise error
        now = datetime.now(UTC)
        return [
            prepare_incoming(
                event, now=now, new_id=self.ctx.ledger.new_event_id, ext=ext, validated=True
            )
            for event, ext in translated
        ]

    def check_conflicts(self, events: Sequence[PreparedEvent]) -> None:
        """409 up front for an id stored with other content, so an accepted batch never
        fails later in the intake (a failed receipt is invisible to this client)."""
        known = self.ctx.store.find_ids(self.project, [e.event_id for e in events])
        for index, event in enumerate(events):
            record = known.get(event.event_id)
            if record is not None and record.content_hash != event.content_hash:
                raise _conflict(event.event_id, index)

    async def ingest(self, events: list[PreparedEvent], *, sync: bool) -> dict[str, Any]:
        """Accept a batch durably (the native async path); in sync mode also wait for its
        commit. Returns the Fact0 answer body."""
        await run_in_threadpool(self.check_conflicts, events)
        receipt_id = "rcpt_" + uuid.uuid4().hex
        receipt, future = await run_in_threadpool(
            self.ctx.ledger.accept, self.project, self.organization, events, receipt_id=receipt_id
        )
        duplicates: int | None = None
        if future is not None:
            try:
                results: list[AppendResult] = await asyncio.wrap_future(future)
            except IdempotencyConflict as exc:
                raise _conflict(exc.event_id, exc.index) from None
            seen: set[str] = set()
            duplicates = 0
            for result in results:  # stored before, or earlier in this batch
                duplicates += result.duplicate or result.event_id in seen
                seen.add(result.event_id)
        elif sync:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SYNC_WAIT_SECONDS
            while receipt.state == "queued" and loop.time() < deadline:
                await asyncio.sleep(0.05)
                stored = await run_in_threadpool(
                    self.ctx.store.get_receipt, self.project, receipt_id
                )
                receipt = stored or receipt
            if receipt.state != "committed":
                raise ApiError(
                    503,
                    "overloaded",
                    f"the batch is durable but not yet committed; receipt {receipt_id}",
                    headers={"Retry-After": "1"},
                )
        stored = await run_in_threadpool(self.ctx.store.get_receipt, self.project, receipt_id)
        receipt = stored or receipt
        if sync:
            return receipt_answer(receipt, duplicates=duplicates or 0, status="committed")
        return receipt_answer(receipt, duplicates=duplicates)

    def receipt(self, receipt_id: str) -> dict[str, Any] | None:
        receipt = self.ctx.store.get_receipt(self.project, receipt_id)
        if receipt is None or receipt.organization != self.organization:
            return None
        body = receipt_answer(receipt)
        log = self.log()
        if receipt.state == "committed" and log is not None:
            latest = self.ctx.ledger.checkpoint(self.project, log.log_id)
            if latest is not None:
                body["checkpoint"] = {
                    "tree_size": latest.size,
                    "root_hash": latest.root_hash.hex(),
                    "checkpoint": latest.note,
                }
        return body

    # -- reads -------------------------------------------------------------------------
    def _prev_hashes(self, entries: Sequence[StoredEntry]) -> dict[int, bytes]:
        chain = {e.seq: e.chain_hash for e in entries}
        out: dict[int, bytes] = {}
        for e in entries:
            prev = chain.get(e.seq - 1)
            if prev is None:
                if e.seq == 0:
                    prev = bytes(32)
                else:
                    before = self.ctx.store.get_entry(self.project, e.log_id, e.seq - 1)
                    prev = before.chain_hash if before is not None else bytes(32)
            out[e.seq] = prev
        return out

    def views(self, entries: Sequence[StoredEntry]) -> list[dict[str, Any]]:
        prevs = self._prev_hashes(entries)
        return [vendor_event(e, self.tenant_id, prevs[e.seq]) for e in entries]

    def _entry(self, event_id: str) -> StoredEntry | None:
        if not ID_PATTERN.fullmatch(event_id):
            return None
        entry = self.ctx.store.get_entry_by_id(self.project, event_id)
        log = self.log()
        if entry is None or log is None or entry.log_id != log.log_id:
            return None
        return entry

    def get(self, event_id: str) -> dict[str, Any] | None:
        entry = self._entry(event_id)
        return None if entry is None else self.views([entry])[0]

    def list(self, params: Mapping[str, str], *, page: int, page_size: int) -> dict[str, Any]:
        """One page, newest first by sequence number, with the total of all matches."""
        flts = _filters(params)
        log = self.log()
        answer: dict[str, Any] = {"events": [], "total": 0, "page": page, "page_size": page_size}
        if flts is None or log is None:
            return answer
        store, log_ids = self.ctx.store, [log.log_id]
        answer["total"] = sum(store.count_entries(self.project, f, log_ids=log_ids) for f in flts)
        offset = (page - 1) * page_size
        if offset >= answer["total"]:
            return answer
        if len(flts) == 1:
            rows = store.query_entries(
                self.project,
                flts[0],
                log_ids=log_ids,
                after=None,
                limit=page_size,
                descending=True,
                offset=offset,
            )
        else:  # a union of disjoint filters: merge each one's first offset + page_size
            parts = [
                store.query_entries(
                    self.project,
                    f,
                    log_ids=log_ids,
                    after=None,
                    limit=offset + page_size,
                    descending=True,
                )
                for f in flts
            ]
            merged = heapq.merge(*parts, key=lambda row: -row[0])
            rows = list(merged)[offset : offset + page_size]
        answer["events"] = self.views([entry for _, entry in rows])
        return answer

    # -- verify ------------------------------------------------------------------------
    def _span(self, log: LogHead, span: Window, size: int) -> tuple[int, int, int] | None:
        """The seq range ``[first, last + 1)`` holding every entry in the window, and how
        many entries the window holds (None: none)."""
        flt = EventFilter(since=span.since, until=span.until)
        store, log_ids = self.ctx.store, [log.log_id]
        first = store.query_entries(
            self.project, flt, log_ids=log_ids, after=None, limit=1, descending=False
        )
        last = store.query_entries(
            self.project, flt, log_ids=log_ids, after=None, limit=1, descending=True
        )
        if not first or not last:
            return None
        count = store.count_entries(self.project, flt, log_ids=log_ids)
        return first[0][1].seq, min(last[0][1].seq + 1, size), count

    def verify(self, span: Window) -> dict[str, Any]:
        """Verify the log's entries in the window with the native range verifier (bytes,
        leaf hashes, chain linked to the preceding entry, signed checkpoint)."""
        answer: dict[str, Any] = {
            "valid": True,
            "tenant_id": self.tenant_id,
            "events_checked": 0,
            "root_hash": None,
            "from": span.since,
            "to": span.until,
            "first_broken_event_id": None,
            "reason": None,
            "broken_count": 0,
            "all_broken_events": [],
        }
        log = self.log()
        latest = self.ctx.ledger.checkpoint(self.project, log.log_id) if log else None
        if log is None or latest is None or latest.size == 0:
            return answer
        if span.since is None and span.until is None:
            start, end, count = 0, latest.size, latest.size
        else:
            found = self._span(log, span, latest.size)
            if found is None or found[0] >= found[1]:
                return answer
            start, end, count = found
        report: RangeReport = verify_range(self.ctx.ledger, self.project, log, start, end)
        last = self.ctx.store.get_entry(self.project, log.log_id, end - 1)
        answer["events_checked"] = count
        answer["root_hash"] = last.chain_hash.hex() if last is not None else None
        answer["checkpoint"] = {
            "tree_size": latest.size,
            "root_hash": latest.root_hash.hex(),
            "checkpoint": latest.note,
        }
        if not report.ok:
            broken = self._broken(log, report)
            answer.update(
                valid=False,
                first_broken_event_id=broken["event_id"],
                reason=broken["reason"],
                broken_count=1,
                all_broken_events=[broken],
                message=report.message,
            )
        return answer

    def _broken(self, log: LogHead, report: RangeReport) -> dict[str, Any]:
        item = report.failed_item or ""
        reason = "prev_hash mismatch" if "chain" in (report.message or "") else "hash mismatch"
        broken: dict[str, Any] = {
            "event_id": None,
            "sequence_number": None,
            "timestamp": None,
            "action": None,
            "actor_id": None,
            "reason": reason,
        }
        if item.startswith("entry ") and item[6:].isdigit():
            entry = self.ctx.store.get_entry(self.project, log.log_id, int(item[6:]))
            if entry is not None:
                view = self.views([entry])[0]
                broken.update(
                    event_id=entry.event_id,
                    sequence_number=entry.seq,
                    timestamp=view["timestamp"],
                    action=view["action"],
                    actor_id=view["actor"]["id"],
                )
        return broken

    def verify_event(self, event_id: str) -> dict[str, Any] | None:
        """One entry: its bytes against its leaf hash, its chain hash recomputed from the
        preceding entry, and its inclusion in the latest signed checkpoint."""
        entry = self._entry(event_id)
        log = self.log()
        if entry is None or log is None:
            return None
        prev = self._prev_hashes([entry])[entry.seq]
        leaf = leaf_hash(entry.entry) if entry.entry is not None else entry.leaf_hash
        computed = chain_hash(prev, leaf)
        valid = leaf == entry.leaf_hash and computed == entry.chain_hash
        reason = None if valid else "hash mismatch"
        answer: dict[str, Any] = {
            "valid": valid,
            "event_id": event_id,
            "tenant_id": self.tenant_id,
            "sequence_number": entry.seq,
            "stored_hash": entry.chain_hash.hex(),
            "computed_hash": computed.hex(),
            "prev_hash": prev.hex(),
            "events_checked": 1,
            "root_hash": entry.chain_hash.hex(),
            "first_broken_event_id": None if valid else event_id,
            "reason": reason,
        }
        latest = self.ctx.ledger.checkpoint(self.project, log.log_id)
        if latest is not None and entry.seq < latest.size:
            proof = self.ctx.ledger.inclusion_proof(
                self.project, log.log_id, entry.seq, latest.size
            )
            try:
                verify_inclusion(entry.seq, latest.size, leaf, proof, latest.root_hash)
            except VerificationError as exc:
                answer.update(valid=False, first_broken_event_id=event_id, reason=str(exc))
            answer["inclusion_proof"] = {
                "leaf_index": entry.seq,
                "tree_size": latest.size,
                "hashes": [h.hex() for h in proof],
            }
            answer["checkpoint"] = {
                "tree_size": latest.size,
                "root_hash": latest.root_hash.hex(),
                "checkpoint": latest.note,
            }
        return answer


def _conflict(event_id: str, index: int) -> ApiError:
    return ApiError(
        409,
        "idempotency_conflict",
        f"events[{index}].id: {event_id!r} is already stored with different content",
        field="id",
        details={"index": index},
    )
