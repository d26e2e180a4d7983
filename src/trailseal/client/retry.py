"""Retries: which answers are worth another try, and how long to wait (pure).

Retried: no answer at all (refused, reset, timed out), 408, 429 and every 5xx. Never
retried: the other 4xx (a 422 or 409 will not change by asking again). Retrying is safe
because every event carries its id before the first attempt: the server answers a repeat
with the original (``duplicate: true``), so a retry never stores an event twice.

The wait before attempt ``n + 1`` is "full jitter" exponential backoff: a uniform draw in
``[0, min(max_backoff, initial_backoff * multiplier**(n-1))]``, so clients that failed
together do not come back together. A ``Retry-After`` header (seconds or an HTTP date)
sets a floor, capped at ``max_retry_after``; a little jitter is added on top of it too.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from trailseal.client.protocol import Call, Reply, Sleep, Step, perform

__all__ = ["RetryPolicy", "attempt", "parse_retry_after", "request", "retryable"]

_RETRY_STATUSES = frozenset({408, 429})


def retryable(reply: Reply) -> bool:
    """Whether asking again may give another answer."""
    return reply.status == 0 or reply.status in _RETRY_STATUSES or reply.status >= 500


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (RFC 9110 §10.2.3): delay-seconds or
    an HTTP date relative to ``now`` (POSIX seconds). None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``max_attempts`` counts the first attempt (1 = never retry)."""

    max_attempts: int = 8
    initial_backoff: float = 0.25
    max_backoff: float = 30.0
    multiplier: float = 2.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy backoffs must be >= 0 and the multiplier >= 1")

    def delay(self, attempt: int, retry_after: float | None, draw: float) -> float:
        """The wait after failed attempt ``attempt`` (1-based); ``draw`` is uniform in
        [0, 1), the jitter."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        wait = draw * ceiling
        if retry_after is not None:
            # Honour the server's floor; the jitter on top keeps a crowd from returning at once.
            wait = min(retry_after, self.max_retry_after) + draw * min(ceiling, 1.0)
        return wait


def attempt(
    call: Call, policy: RetryPolicy, rng: random.Random
) -> Generator[Step, Reply | None, tuple[Reply, int]]:
    """Perform ``call`` until it gets an answer that is not worth retrying, or the attempts
    run out; return the last reply (the caller decides what a non-2xx means) and the number
    of attempts made."""
    attempts = 0
    while True:
        reply = yield from perform(call)
        attempts += 1
        if not retryable(reply) or attempts >= policy.max_attempts:
            return reply, attempts
        retry_after = parse_retry_after(reply.retry_after, reply.received_at)
        yield Sleep(policy.delay(attempts, retry_after, rng.random()))


def request(
    call: Call, policy: RetryPolicy, rng: random.Random
) -> Generator[Step, Reply | None, Reply]:
    """:func:`attempt`, returning only the last reply."""
    reply, _ = yield from attempt(call, policy, rng)
    return reply
