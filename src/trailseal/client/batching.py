"""Batching and delivery, shared by :class:`~trailseal.client.Client` and
:class:`~trailseal.client.AsyncClient` (pure: the drivers bring the threads, locks and IO).

Theory of operation
-------------------
1. ``log()`` (caller's thread) checks the event cheaply, gives it its id, snapshots it as
   JSON bytes and hands ``(bytes, time_ns)`` to :meth:`Batcher.add` under the driver's lock.
   The snapshot means an event cannot change after ``log()`` returned, whatever the caller
   does with the objects it passed.
2. The worker waits until :meth:`Batcher.due_in` says a batch is due: ``max_events``
   queued, ``max_bytes`` queued, the oldest event ``max_age`` old, or a flush or close asked
   for it. :meth:`Batcher.take` cuts one batch within both bounds (the server takes at most
   1000 events and 5 MiB).
3. :func:`prepare_all` (worker) fills ``occurred_at`` with the time ``log()`` ran, runs the
   full :func:`~trailseal.core.schema.validate_event` and canonicalizes (RFC 8785). An
   event that fails here is set aside as a :class:`Failure` on its own, so it cannot sink
   the all-or-nothing batch it would have joined.
4. :func:`deliver` posts the batch with retries (:mod:`trailseal.client.retry`). A 422 or
   409 that names the offending events (``/events/3/...``) splits them off as failures and
   resends the rest at once; any other final error fails the whole remainder.
5. Failures go to the dead-letter file (:mod:`trailseal.client.deadletter`), or are kept for
   ``raise_on_error``, or are logged and counted.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from trailseal.client.errors import ApiError, TransportError
from trailseal.client.protocol import Call, Op, api_error
from trailseal.client.retry import RetryPolicy, attempt
from trailseal.core.canonical import canonicalize
from trailseal.core.schema import Limits, format_timestamp, validate_event
from trailseal.errors import ValidationError

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "Batcher",
    "Delivery",
    "Failure",
    "Item",
    "Prepared",
    "deliver",
    "encode_batch",
    "prepare_all",
    "unsent",
]

#: The server's bounds for one batch (ARCHITECTURE §4).
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 5 * 1024 * 1024
# Per event on top of its snapshot: occurred_at when filled in, a comma, and slack for a
# canonical form that escapes more than orjson does.
_EVENT_OVERHEAD = 64

#: What ``log()`` queues: the event's JSON snapshot and ``time.time_ns()`` at the call.
Item = tuple[bytes, int]


class Batcher:
    """The bounded queue of snapshots and the rule for when a batch is due. Not
    thread-safe: the driver holds its lock around every call."""

    __slots__ = ("bytes", "items", "max_age_ns", "max_bytes", "max_events", "max_items")

    def __init__(self, *, max_items: int, max_events: int, max_bytes: int, max_age: float):
        if not 1 <= max_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch size must be in 1..{MAX_BATCH_EVENTS}, got {max_events}")
        if not 1024 <= max_bytes <= MAX_BATCH_BYTES - 64 * 1024:
            raise ValueError(
                f"max batch bytes must be in 1024..{MAX_BATCH_BYTES - 64 * 1024}, got {max_bytes}"
            )
        if max_items < 1:
            raise ValueError(f"queue size must be at least 1, got {max_items}")
        if max_age < 0:
            raise ValueError("the batch age must be >= 0 seconds")
        self.items: deque[Item] = deque()
        self.bytes = 0
        self.max_items = max_items
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_age_ns = int(max_age * 1e9)

    def __len__(self) -> int:
        return len(self.items)

    def full(self) -> bool:
        return len(self.items) >= self.max_items

    def add(self, item: Item) -> bool:
        """Queue ``item`` (the caller checked :meth:`full`). True when the worker should be
        woken: the first item starts the age clock, a full batch is due at once."""
        self.items.append(item)
        self.bytes += len(item[0]) + _EVENT_OVERHEAD
        count = len(self.items)
        return count == 1 or count == self.max_events or self.bytes >= self.max_bytes

    def due_in(self, now_ns: int, *, force: bool = False) -> float | None:
        """Seconds until a batch is due (0: now); None when nothing is queued."""
        if not self.items:
            return None
        if force or len(self.items) >= self.max_events or self.bytes >= self.max_bytes:
            return 0.0
        # Clamped, so a wall clock stepping back cannot park the worker beyond max_age.
        wait = min(self.items[0][1] + self.max_age_ns - now_ns, self.max_age_ns)
        return max(0.0, wait / 1e9)

    def take(self) -> list[Item]:
        """Cut the next batch: at most ``max_events`` events and ``max_bytes`` (at least
        one event, which the schema's size limit keeps far below the bound)."""
        batch: list[Item] = []
        size = 0
        items = self.items
        while items and len(batch) < self.max_events:
            cost = len(items[0][0]) + _EVENT_OVERHEAD
            if batch and size + cost > self.max_bytes:
                break
            batch.append(items.popleft())
            size += cost
        self.bytes = max(0, self.bytes - size)
        return batch

    def clear(self) -> list[Item]:
        """Everything queued (close and fork use it)."""
        taken = list(self.items)
        self.items.clear()
        self.bytes = 0
        return taken


@dataclass(frozen=True, slots=True)
class Prepared:
    """One event ready to send: ``data`` is its canonical JSON, ids and occurred_at
    included, exactly as it goes on the wire and into the dead letter."""

    id: str
    data: bytes


@dataclass(slots=True)
class Failure:
    """Events that could not be delivered, and why. ``status`` is the HTTP status of the
    last answer (0: none, or refused before sending); ``code`` the server's error code,
    ``network``, or the local validation code."""

    events: list[Prepared]
    status: int
    code: str
    message: str
    field: str | None = None
    attempts: int = 0

    def describe(self) -> str:
        where = f" at {self.field}" if self.field else ""
        status = f"HTTP {self.status} " if self.status else ""
        return f"{status}{self.code}{where}: {self.message}"

    def error_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }


@dataclass(slots=True)
class Delivery:
    """What became of one batch: ids the server acknowledged (2xx: durable), failures."""

    delivered: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    attempts: int = 0


def _stamp(t_ns: int) -> str:
    seconds, micros = divmod(t_ns // 1000, 1_000_000)
    return format_timestamp(datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros))


def prepare(item: Item, limits: Limits) -> Prepared | Failure:
    """Full validation and canonicalization of one snapshot (worker side)."""
    payload, t_ns = item
    event = orjson.loads(payload)
    if event.get("occurred_at") is None:
        event["occurred_at"] = _stamp(t_ns)
    try:
        validate_event(event, limits)
        return Prepared(str(event["id"]), canonicalize(event))
    except ValidationError as exc:
        sent = Prepared(str(event.get("id")), orjson.dumps(event))
        return Failure([sent], 0, exc.code, exc.message, exc.field or None)


def prepare_all(items: Iterable[Item], limits: Limits) -> tuple[list[Prepared], list[Failure]]:
    ready: list[Prepared] = []
    failures: list[Failure] = []
    for item in items:
        result = prepare(item, limits)
        if isinstance(result, Prepared):
            ready.append(result)
        else:
            failures.append(result)
    return ready, failures


def unsent(items: Iterable[Item], limits: Limits, code: str, message: str) -> list[Failure]:
    """Failures for events that will not be sent (the client is closing, or a bug): in the
    form the dead letter keeps, so that they can be replayed."""
    ready, failures = prepare_all(items, limits)
    if ready:
        failures.append(Failure(ready, 0, code, message))
    return failures


def encode_batch(events: Iterable[Prepared]) -> bytes:
    """The request body of ``POST /v1/events/batch``, spliced from the canonical events."""
    return b'{"events":[' + b",".join(e.data for e in events) + b"]}"


_EVENT_POINTER = re.compile(r"/events/(0|[1-9][0-9]*)(?:/|$)")


def _named_events(error: ApiError, count: int) -> dict[int, tuple[str, str, str | None]]:
    """The events a 422/409 names, by index: ``(code, message, pointer)``. Empty when the
    answer does not say which events are at fault."""
    named: dict[int, tuple[str, str, str | None]] = {}
    problems = [p for p in error.details if isinstance(p, dict)] or [
        {"pointer": error.field, "code": error.code, "message": error.message}
    ]
    for problem in problems:
        found = problem.get("pointer") or problem.get("field")
        pointer = found if isinstance(found, str) else ""
        match = _EVENT_POINTER.match(pointer)
        if match is None:
            return {}  # a problem with the batch as a whole: no event to blame
        index = int(match.group(1))
        if index >= count:
            return {}
        if index not in named:  # the first problem of each event is reported
            inner = pointer[len(f"/events/{index}") :]  # the pointer inside the event
            named[index] = (
                str(problem.get("code") or error.code),
                str(problem.get("message") or error.message),
                inner or None,
            )
    return named


def deliver(events: list[Prepared], policy: RetryPolicy, rng: random.Random) -> Op[Delivery]:
    """Post ``events`` as batches until each is acknowledged or has failed for good."""
    outcome = Delivery()
    pending = events
    while pending:
        call = Call("POST", "/v1/events/batch", body=encode_batch(pending))
        reply, attempts = yield from attempt(call, policy, rng)
        outcome.attempts += attempts
        if reply.ok:
            outcome.delivered.extend(e.id for e in pending)
            break
        error = api_error(reply)
        if isinstance(error, ApiError) and reply.status in (409, 422):
            named = _named_events(error, len(pending))
            if named and len(named) < len(pending):
                for index, (code, message, pointer) in sorted(named.items()):
                    outcome.failures.append(
                        Failure([pending[index]], reply.status, code, message, pointer, attempts)
                    )
                pending = [e for n, e in enumerate(pending) if n not in named]
                continue  # the rest is fine: send it again right away
        if isinstance(error, ApiError):
            failure = Failure(
                pending, reply.status, error.code, error.message, error.field, attempts
            )
        else:
            assert isinstance(error, TransportError)
            failure = Failure(pending, 0, "network", str(error), None, attempts)
        outcome.failures.append(failure)
        break
    return outcome
