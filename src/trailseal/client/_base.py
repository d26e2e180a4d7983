"""What :class:`~trailseal.client.Client` and :class:`~trailseal.client.AsyncClient`
share besides the operations: configuration (arguments, then ``TRAILSEAL_URL`` /
``TRAILSEAL_API_KEY``), the caller's-thread half of ``log()``, event ids, statistics, and
where failed events go."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from trailseal import __version__
from trailseal.client.batching import Batcher, Failure, Item, Prepared
from trailseal.client.deadletter import DeadLetterFile
from trailseal.client.errors import ClientError, DeliveryError
from trailseal.client.retry import RetryPolicy
from trailseal.client.trust import (
    TrustStore,
    default_dead_letter_path,
    default_trust_store_path,
)
from trailseal.client.verify import KeySource
from trailseal.core.canonical import canonicalize
from trailseal.core.ids import IdGenerator
from trailseal.core.schema import (
    DEFAULT_LIMITS,
    Limits,
    format_timestamp,
    quick_check,
    validate_event,
)
from trailseal.errors import ValidationError

__all__ = ["DEFAULT_URL", "ClientBase", "ClientStats", "OnFull"]

log = logging.getLogger("trailseal.client")

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "TRAILSEAL_URL"
API_KEY_ENV = "TRAILSEAL_API_KEY"

#: What ``log()`` does when the queue is full: wait for room (up to ``block_timeout``,
#: then QueueFullError), drop the event and count it, or raise QueueFullError at once.
OnFull = Literal["block", "drop", "raise"]
_ON_FULL = ("block", "drop", "raise")

_dumps = orjson.dumps
# The same options quick_check measured with, so a snapshot cannot fail where it passed.
_SNAPSHOT_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_time_ns = time.time_ns


def _clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters since the client was made (or, in a forked child, since the fork).

    ``logged``: accepted by ``log()``; ``queued``: waiting now; ``delivered``: acknowledged
    by the server (durable); ``dropped``: refused by a full queue (``on_full="drop"``);
    ``dead_lettered``: written to the dead-letter file; ``failed``: not delivered and not in
    the dead letter (raised with ``raise_on_error``, or lost for want of a dead-letter path).
    """

    logged: int
    queued: int
    delivered: int
    dropped: int
    dead_lettered: int
    failed: int


class Ids:
    """Time-ordered event ids (UUIDv7) from one generator, serialized by a lock."""

    def __init__(self) -> None:
        self._generator = IdGenerator(_clock_ms, os.urandom)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return self._generator.next()

    def after_fork(self) -> None:
        # A new lock (the parent's may have been held at the fork) and a fresh seed, or
        # parent and child would continue one counter and make the same ids.
        self._lock = threading.Lock()
        self._generator.reset()


class FailureSink:
    """Where events that could not be delivered go: the dead-letter file; or, with
    ``raise_on_error``, kept for the next ``flush()``/``close()`` to raise; else logged
    and counted as lost. Thread-safe."""

    def __init__(self, dead_letter: DeadLetterFile | None, raise_on_error: bool) -> None:
        self.dead_letter = dead_letter
        self.raise_on_error = raise_on_error
        self.dead_lettered = 0
        self.failed = 0
        self._kept: list[Failure] = []
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._kept = []  # the parent's to raise, not the child's
        self.dead_lettered = self.failed = 0

    def handle(self, failures: list[Failure]) -> None:
        if not failures:
            return
        count = sum(len(f.events) for f in failures)
        if self.raise_on_error:
            with self._lock:
                self._kept.extend(failures)
                self.failed += count
            return
        if self.dead_letter is not None:
            try:
                self.dead_letter.append(failures)
            except OSError as exc:
                log.error("could not write the dead-letter file %s: %s", self.dead_letter.path, exc)
            else:
                with self._lock:
                    self.dead_lettered += count
                log.warning(
                    "%d event(s) not delivered, kept in the dead-letter file %s: %s",
                    count,
                    self.dead_letter.path,
                    failures[0].describe(),
                )
                return
        with self._lock:
            self.failed += count
        log.error(
            "%d event(s) could not be delivered and are lost (dead_letter_path=False "
            "turned the dead-letter file off): %s",
            count,
            failures[0].describe(),
        )

    def take_error(self) -> DeliveryError | None:
        with self._lock:
            kept, self._kept = self._kept, []
        if not kept:
            return None
        events: list[dict[str, Any]] = []
        errors: list[str] = []
        for failure in kept:
            for event in failure.events:
                events.append(orjson.loads(event.data))
                errors.append(failure.describe())
        return DeliveryError(
            f"{len(events)} event(s) could not be delivered; first: {errors[0]}",
            events=events,
            errors=errors,
        )


def _resolve(value: str | None, env: str, default: str | None) -> str | None:
    if value is not None:
        return value
    return os.environ.get(env) or default


class ClientBase:
    """Configuration and the caller's-thread half of ``log()``; see ``Client`` for the
    meaning of each argument."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        batch_size: int = 500,
        max_batch_bytes: int = 4 * 1024 * 1024,
        flush_interval: float = 0.5,
        queue_size: int = 10_000,
        on_full: OnFull = "block",
        block_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        dead_letter_path: str | os.PathLike[str] | Literal[False] | None = None,
        raise_on_error: bool = False,
        verifier_key: KeySource | None = None,
        trust_store: str | os.PathLike[str] | TrustStore | None = None,
        shutdown_timeout: float = 10.0,
        limits: Limits = DEFAULT_LIMITS,
        seed: int | None = None,
    ) -> None:
        base = _resolve(url, URL_ENV, DEFAULT_URL)
        key = _resolve(api_key, API_KEY_ENV, None)
        assert base is not None
        if not key or not key.strip():
            raise ClientError(f"no API key: pass api_key= or set {API_KEY_ENV}")
        if on_full not in _ON_FULL:
            raise ValueError(f"on_full must be one of {_ON_FULL}, got {on_full!r}")
        self.url = base.rstrip("/")
        self._api_key = key.strip()
        self.timeout = timeout
        self._batcher = Batcher(
            max_items=queue_size,
            max_events=batch_size,
            max_bytes=max_batch_bytes,
            max_age=flush_interval,
        )
        self.on_full: OnFull = on_full
        self.block_timeout = block_timeout
        self.retry = retry or RetryPolicy()
        # None: the default file (nothing undeliverable is lost); False: no file at all.
        if dead_letter_path is None:
            dead_letter_path = default_dead_letter_path()
        self.dead_letter = DeadLetterFile(dead_letter_path) if dead_letter_path else None
        self.raise_on_error = raise_on_error
        self.verifier_key = verifier_key
        self._trust_store = trust_store
        self.shutdown_timeout = shutdown_timeout
        self.limits = limits
        self._rng = random.Random(seed)
        self._ids = Ids()
        self._sink = FailureSink(self.dead_letter, raise_on_error)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(url={self.url!r})"

    @property
    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key}",
            "User-Agent": f"trailseal-python/{__version__}",
            "Accept": "application/json",
        }

    def trust_store(self) -> TrustStore:
        """The trust-on-first-use store ``verify_event`` uses (made on first use)."""
        store = self._trust_store
        if not isinstance(store, TrustStore):
            store = TrustStore(store if store is not None else default_trust_store_path())
            self._trust_store = store
        return store

    def _snapshot(self, event: dict[str, Any]) -> tuple[str, Item]:
        """The caller's-thread half of ``log()``: cheap checks (required fields, types,
        size), the id, and a JSON snapshot. Owns ``event`` (a fresh ``**kwargs`` dict)."""
        occurred = event.get("occurred_at")
        if isinstance(occurred, datetime):
            event["occurred_at"] = format_timestamp(
                occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
            )
        quick_check(event, self.limits)
        event_id = event.get("id")
        if event_id is None:
            event_id = event["id"] = self._ids.next()
        try:
            payload = _dumps(event, option=_SNAPSHOT_OPTIONS)
        except TypeError as exc:  # changed by another thread since the check
            raise ValidationError(f"not representable as JSON: {exc}", code="type") from None
        return event_id, (payload, _time_ns())

    def _prepare_direct(self, event: Mapping[str, Any], *, position: int | None = None) -> Prepared:
        """Full validation for an event sent right away (``log_sync``, ``log_batch``): the
        caller waits anyway, so it gets every problem at once, named by pointer."""
        document = dict(event)
        occurred = document.get("occurred_at")
        if isinstance(occurred, datetime):
            document["occurred_at"] = format_timestamp(
                occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
            )
        elif occurred is None:
            document["occurred_at"] = format_timestamp(datetime.now(UTC))
        if document.get("id") is None:
            document["id"] = self._ids.next()
        try:
            validate_event(document, self.limits)
        except ValidationError as exc:
            if position is None:
                raise
            raise ValidationError(
                exc.message, field=f"/{position}{exc.field}", code=exc.code
            ) from None
        return Prepared(document["id"], canonicalize(document))

    def _dead_letter(self, path: str | os.PathLike[str] | None) -> DeadLetterFile:
        if path is not None:
            return DeadLetterFile(Path(path))
        if self.dead_letter is None:
            raise ClientError("no dead-letter file: pass a path or set dead_letter_path=")
        return self.dead_letter
