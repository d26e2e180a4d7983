"""The SDK's sans-IO layer: every API operation is a generator that yields what it needs
done and receives the result, so the sync and the async client share one implementation of
requests, retries, batching, dead-lettering and verification.

Theory of operation
-------------------
An operation (``Op[T]``) yields two kinds of step:

- :class:`Call`: an HTTP request. The driver performs it and sends back a :class:`Reply`:
  the status, body and ``Retry-After`` header, and the wall-clock time the answer came
  (``status == 0`` means no answer: refused, reset, timed out; ``error`` says which).
- :class:`Sleep`: wait so many seconds (a retry's backoff). The driver sends back ``None``.

The operation returns its value through ``StopIteration``. Drivers: ``run_sync`` in
:mod:`trailseal.client.client` (``httpx.Client``, ``time.sleep`` or an interruptible wait)
and ``run_async`` in :mod:`trailseal.client.aio` (``httpx.AsyncClient``, ``asyncio.sleep``).
The generators read no clock and draw no randomness of their own: time comes in the replies
and random numbers from a ``random.Random`` the caller passes (seeded in tests).

Small local files (the dead letter, the trust store) are read and written directly: they
are not the network, and both drivers may block on them briefly.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from trailseal.client.errors import ApiError, ClientError, TransportError

__all__ = [
    "Call",
    "Op",
    "Reply",
    "Sleep",
    "Step",
    "api_error",
    "expect_json",
    "perform",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request, relative to the client's base URL. ``body`` is JSON bytes."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back for a :class:`Call`. ``status`` 0: no answer (``error`` says why)."""

    status: int
    body: bytes = b""
    retry_after: str | None = None
    received_at: float = 0.0  # POSIX seconds, for an HTTP-date Retry-After
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next step."""

    seconds: float


Step = Call | Sleep
Op = Generator[Step, Reply | None, T]


def perform(call: Call) -> Generator[Step, Reply | None, Reply]:
    """Yield one call and return its reply (``reply = yield from perform(call)``)."""
    reply = yield call
    if not isinstance(reply, Reply):  # a driver bug, not a server problem
        raise TypeError(f"the driver answered a Call with {type(reply).__name__}")
    return reply


def _error_body(reply: Reply) -> Mapping[str, Any]:
    try:
        document = orjson.loads(reply.body) if reply.body else None
    except orjson.JSONDecodeError:
        return {}
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def api_error(reply: Reply) -> ClientError:
    """The error a failed reply stands for: :class:`TransportError` for no answer, else an
    :class:`ApiError` built from the ``{"error": {...}}`` body (or the bare status)."""
    if reply.status == 0:
        return TransportError(reply.error or "no answer from the server")
    error = _error_body(reply)
    details = error.get("details")
    field = error.get("field")
    return ApiError(
        reply.status,
        str(error.get("code") or f"http_{reply.status}"),
        str(error.get("message") or _short(reply.body) or "no error message"),
        field=field if isinstance(field, str) else None,
        details=details if isinstance(details, Sequence) and not isinstance(details, str) else None,
    )


def _short(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").strip()


def expect_json(reply: Reply, *statuses: int) -> Any:
    """The reply's JSON document, when its status is one of ``statuses`` (any 2xx when none
    are given); raises the reply's error otherwise, or ClientError for a body that is not
    JSON."""
    wanted = reply.status in statuses if statuses else reply.ok
    if not wanted:
        raise api_error(reply)
    try:
        return orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        raise ClientError(
            f"the server answered {reply.status} with a body that is not JSON: "
            f"{_short(reply.body)!r}"
        ) from None
