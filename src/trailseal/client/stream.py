"""The live stream's client half, sans-IO: Server-Sent Events parsing and the resume logic
that ``Client.stream_events`` and ``AsyncClient.stream_events`` drive over their own HTTP
connections (``GET /v1/stream/events``, see :mod:`trailseal.server.routes.stream`).

Theory of operation
-------------------
:class:`SseDecoder` turns lines (without their terminators) into events, as the WHATWG
HTML "event stream interpretation" says: ``:`` comments (the heartbeats) are skipped, an
``id`` persists until the next one, a blank line dispatches.

:class:`EventStream` holds what survives a reconnect: the last stream position seen (the
``id`` of the ``ready`` frame, then of each event), how many events are still wanted, and
the count of consecutive failures. The driver asks it for the request to send
(:meth:`~EventStream.request`: the filters, and ``Last-Event-ID`` once a position is
known), feeds it each line, and tells it how a connection ended:

- refused (:meth:`~EventStream.refused`): a 4xx other than 408/429 raises at once (the
  key, the scope or a filter is wrong; asking again will not help); a 408, 429 or 5xx is
  retried after the policy's backoff (honouring ``Retry-After``);
- lost (:meth:`~EventStream.lost`): no answer, a reset, or no byte for ``read_timeout``
  seconds (heartbeats come at least every ``heartbeat`` seconds, so silence means a dead
  connection): retried after the backoff;
- ended (:meth:`~EventStream.ended`): the server closed the stream (a restart, a revoked
  key): reconnect promptly; the next answer says what happened.

Consecutive failures without a ``ready`` frame in between are bounded by the policy's
``max_attempts``; then :class:`~trailseal.client.errors.TransportError` (or the last
:class:`~trailseal.client.errors.ApiError`) is raised. Positions only grow, so an event at
or before the last position seen is a repeat and is dropped: each event is yielded once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from trailseal.client.api import list_params
from trailseal.client.errors import ClientError, TransportError
from trailseal.client.models import StoredEvent
from trailseal.client.protocol import Reply, api_error
from trailseal.client.retry import RetryPolicy, parse_retry_after, retryable

__all__ = ["STREAM_PATH", "EventStream", "SseDecoder", "SseEvent", "stream_filters"]

STREAM_PATH = "/v1/stream/events"
DEFAULT_HEARTBEAT = 15.0  # the server's heartbeat interval when none is asked for
_MAX_POSITION = 2**63 - 1

Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched Server-Sent Event."""

    event: str
    data: str
    id: str | None


class SseDecoder:
    """Lines in, events out (WHATWG HTML §9.2.6). ``last_id`` is the last event ID."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        """One line without its terminator; the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None  # ``retry`` and unknown fields: ignored

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent(event or "message", "\n".join(data), self.last_id)


def stream_filters(filters: Mapping[str, Any]) -> Params:
    """The query string of the stream's filters: those of ``list_events`` except the
    paging ones (``cursor``, ``order``, ``total``; ``limit`` means "stop after")."""
    paging = sorted({"cursor", "order", "total", "limit", "page_size"} & set(filters))
    if paging:
        raise TypeError(f"stream_events() takes no paging argument {paging[0]!r}")
    return list_params(**filters)


def _position(text: str | None, what: str) -> int:
    if text is None or not text.isascii() or not text.isdigit() or int(text) > _MAX_POSITION:
        raise ClientError(f"unexpected stream: {what} has no valid position ({text!r:.40})")
    return int(text)


class EventStream:
    """The resumable state of one ``stream_events`` call (module docstring)."""

    def __init__(
        self,
        filters: Params,
        *,
        after: str | int | None,
        limit: int | None,
        heartbeat: float | None,
        policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        if heartbeat is not None and not 0.1 <= heartbeat <= DEFAULT_HEARTBEAT:
            raise ValueError(f"heartbeat must be between 0.1 and {DEFAULT_HEARTBEAT} seconds")
        self.filters = filters
        self.last: int | None = None if after is None else _position(str(after), "after")
        self.remaining = limit
        self.heartbeat = heartbeat
        self.policy = policy
        self._rng = rng
        self._decoder = SseDecoder()
        self._failures = 0
        self._error: Exception | None = None

    def done(self) -> bool:
        """All ``limit`` events were yielded. (A method: the count changes while the
        driver is suspended at a ``yield``, which attribute narrowing would not see.)"""
        return self.remaining is not None and self.remaining <= 0

    @property
    def read_timeout(self) -> float:
        """Seconds without a byte after which the connection counts as dead."""
        return 2 * (self.heartbeat or DEFAULT_HEARTBEAT) + 5

    def request(self) -> tuple[Params, dict[str, str]]:
        """The query and headers of the next connection."""
        params = self.filters
        if self.remaining is not None:
            params += (("limit", str(self.remaining)),)
        if self.heartbeat is not None:
            params += (("heartbeat", repr(float(self.heartbeat))),)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last is not None:
            headers["Last-Event-ID"] = str(self.last)
        self._decoder = SseDecoder()  # a new connection starts a new event stream
        return params, headers

    def feed(self, line: str) -> StoredEvent | None:
        """One line of the answer; the event to yield, if it completes a new one."""
        sse = self._decoder.feed(line)
        if sse is None:
            return None
        if sse.event == "ready":
            self.last = _position(sse.id, "the ready frame")
            self._failures = 0  # connected and streaming: the backoff starts over
            return None
        if sse.event != "event":
            return None  # a kind added later: not ours to interpret
        position = _position(sse.id, "an event frame")
        if self.last is not None and position <= self.last:
            return None  # a repeat (positions only grow)
        try:
            document = orjson.loads(sse.data)
        except orjson.JSONDecodeError:
            raise ClientError(f"unexpected stream: event {position} is not JSON") from None
        if not isinstance(document, dict):
            raise ClientError(f"unexpected stream: event {position} is not an object")
        event = StoredEvent.from_json(document)
        self.last = position
        if self.remaining is not None:
            self.remaining -= 1
        return event

    def _backoff(self, retry_after: float | None = None) -> float:
        self._failures += 1
        if self._failures >= self.policy.max_attempts:
            error = self._error or TransportError("the stream could not be resumed")
            raise error
        return self.policy.delay(self._failures, retry_after, self._rng.random())

    def refused(self, reply: Reply) -> float:
        """A non-200 answer: raises it unless it is worth retrying; else the wait."""
        error = api_error(reply)
        if not retryable(reply):
            raise error
        self._error = error
        return self._backoff(parse_retry_after(reply.retry_after, reply.received_at or time.time()))

    def lost(self, reason: str) -> float:
        """No answer, or the connection broke or went silent: the wait before resuming."""
        self._error = TransportError(
            f"the stream broke and could not be resumed after {self.policy.max_attempts} "
            f"attempts: {reason}"
        )
        return self._backoff()

    def ended(self) -> float:
        """The server closed the stream: resume after a short pause."""
        self._error = TransportError("the server kept closing the stream")
        return self._backoff()
