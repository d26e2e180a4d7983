"""The synchronous client: ``log()`` queues and returns at once; one daemon worker thread
batches, sends, retries and dead-letters (the shape of sentry-python's ``worker.py``:
bounded queue, non-blocking submit, ``flush(timeout)``, a fresh worker after ``fork()``).

Theory of operation
-------------------
One lock guards the queue (a :class:`~trailseal.client.batching.Batcher`) and the counters.
``log()`` takes it once, briefly; it wakes the worker only when the first event of a batch
arrives (starting the age clock) or a batch is full, so a steady stream of events does not
bounce the GIL between threads. The worker waits on a condition of that lock until a batch
is due, cuts it, and sends it *outside* the lock, through the sans-IO operations of
:mod:`trailseal.client.batching` run by :func:`run_sync` over one ``httpx.Client``.

``flush(timeout)`` notes how many events had been accepted, makes the worker send
regardless of age, and waits until that many are settled (delivered, dead-lettered or
failed). ``close()`` flushes, then stops retrying: the batch being retried and whatever is
still queued go straight to the dead-letter file, so a shutdown loses nothing that has
somewhere to go. Every live client is closed at interpreter exit (``atexit``), with its
``shutdown_timeout``.

After ``os.fork()`` the child gets new locks, an empty queue (the events queued before the
fork are the parent's, which sends them), a new HTTP connection pool, a freshly seeded id
generator and, on its first ``log()``, its own worker thread.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from trailseal.client import api
from trailseal.client._base import ClientBase, ClientStats, OnFull, log
from trailseal.client.batching import Failure, Item, Prepared, prepare_all, unsent
from trailseal.client.batching import deliver as deliver_op
from trailseal.client.deadletter import replay
from trailseal.client.errors import ClientClosedError, QueueFullError
from trailseal.client.models import (
    CheckpointInfo,
    Committed,
    EventPage,
    InclusionProof,
    LogInfo,
    Receipt,
    ReplayResult,
    StoredEvent,
    VerifiedEvent,
)
from trailseal.client.protocol import Call, Op, Reply, Sleep
from trailseal.client.retry import RetryPolicy
from trailseal.client.stream import STREAM_PATH, EventStream, stream_filters
from trailseal.client.trust import TrustStore
from trailseal.client.verify import KeySource
from trailseal.client.verify import verify_event as verify_op
from trailseal.core.schema import DEFAULT_LIMITS, Limits

__all__ = ["Client", "run_sync"]

T = TypeVar("T")

_JSON = {"Content-Type": "application/json"}
_PREPARE_SLICE = 32  # events prepared between two chances for other threads to run


class _Abandoned(Exception):
    """Raised out of a retry's wait when the client is closing."""


def perform_sync(http: httpx.Client, call: Call) -> Reply:
    """One HTTP exchange; a failure to get any answer becomes ``Reply(status=0)``."""
    try:
        response = http.request(
            call.method,
            call.path,
            params=call.params or None,
            content=call.body,
            headers=_JSON if call.body is not None else None,
        )
    except httpx.RequestError as exc:  # refused, reset, timed out, protocol error
        return Reply(0, received_at=time.time(), error=f"{type(exc).__name__}: {exc}")
    return Reply(
        response.status_code, response.content, response.headers.get("retry-after"), time.time()
    )


def run_sync(op: Op[T], http: httpx.Client, sleep: Callable[[float], None] = time.sleep) -> T:
    """Drive a sans-IO operation to its result (:mod:`trailseal.client.protocol`)."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Sleep):
                sleep(step.seconds)
                step = op.send(None)
            else:
                step = op.send(perform_sync(http, step))
    except StopIteration as stop:
        result: T = stop.value
        return result


_live: weakref.WeakSet[Client] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for client in list(_live):
        try:
            client.close()
        except Exception:  # an exit handler must not stop the others
            log.exception("closing %r at exit failed", client)


def _after_fork_in_child() -> None:
    for client in list(_live):
        client._after_fork()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Client(ClientBase):
    """A trailseal client for threads (one worker thread of its own).

    ``url`` and ``api_key`` default to ``TRAILSEAL_URL`` (else ``http://127.0.0.1:8080``)
    and ``TRAILSEAL_API_KEY``. Queueing: ``batch_size`` events (≤ 1000) or
    ``max_batch_bytes`` or ``flush_interval`` seconds of age make a batch due;
    ``queue_size`` bounds the queue, and ``on_full`` says what ``log()`` does when it is
    full: ``"block"`` (the default: wait for room, at most ``block_timeout`` seconds, then
    QueueFullError; nothing is lost silently), ``"drop"`` (discard the event, count it in
    ``stats().dropped``, log a warning), or ``"raise"`` (QueueFullError at once).

    Delivery: ``retry`` (a RetryPolicy) covers network errors, 408, 429 and 5xx, honouring
    Retry-After. Events that still fail go to ``dead_letter_path`` (JSONL; default
    ``~/.local/state/trailseal/dead-letter.jsonl`` or ``$TRAILSEAL_DEAD_LETTER``; ``False``
    turns it off; see
    ``replay_dead_letter``), or, with ``raise_on_error=True``, are raised as a
    DeliveryError by the next ``flush()`` or ``close()``. ``transport`` replaces httpx's
    (tests, proxies); after ``fork()`` a default transport is replaced, a custom one is
    shared with the parent. ``verifier_key`` (one pinned key, or keys by organization id,
    log id or origin) and ``trust_store`` (a path, default
    ``~/.local/state/trailseal/checkpoints.json``) serve ``verify_event``. ``seed`` makes
    the retry jitter reproducible. The API key never appears in reprs, logs or errors.
    """

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            api_key,
            timeout=timeout,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            flush_interval=flush_interval,
            queue_size=queue_size,
            on_full=on_full,
            block_timeout=block_timeout,
            retry=retry,
            dead_letter_path=dead_letter_path,
            raise_on_error=raise_on_error,
            verifier_key=verifier_key,
            trust_store=trust_store,
            shutdown_timeout=shutdown_timeout,
            limits=limits,
            seed=seed,
        )
        self._transport = transport
        self._closed = False
        self._init_runtime()
        _live.add(self)

    def _init_runtime(self) -> None:
        """Locks, worker and connection state (made anew in a forked child)."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # worker: a batch may be due
        self._space = threading.Condition(self._lock)  # blocked log(): room in the queue
        self._settled_cv = threading.Condition(self._lock)  # flush(): progress
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_flight: list[Item] | None = None
        self._http_client: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._closing = False
        self._flushing = 0
        self._accepted = 0  # events ever queued
        self._settled = 0  # of those, delivered, dead-lettered or failed
        self._logged = 0
        self._dropped = 0
        self._delivered = 0

    def _after_fork(self) -> None:
        self._batcher.clear()  # the parent's events: the parent sends them
        self._init_runtime()  # the old connections are shared with the parent: never used
        self._ids.after_fork()
        self._sink.after_fork()

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- HTTP --------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        client = self._http_client
        if client is None:
            with self._http_lock:
                client = self._http_client
                if client is None:
                    client = self._http_client = httpx.Client(
                        base_url=self.url,
                        headers=self._headers,
                        timeout=self.timeout,
                        transport=self._transport,
                    )
        return client

    def _run(self, op: Op[T]) -> T:
        return run_sync(op, self._http())

    # -- queued logging ----------------------------------------------------------------------

    def log(self, **event: Any) -> str:
        """Queue one event and return its id at once, never touching the network.

        Checks the required fields (``action``, ``actor.id``), the members' types and the
        size here (ValidationError naming the field); the full schema check and
        canonicalization run on the worker. The id is the event's ``id`` or a new
        time-ordered one (UUIDv7); ``occurred_at`` defaults to now. What happens when the
        queue is full depends on ``on_full``.
        """
        event_id, item = self._snapshot(event)
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if self._batcher.full() and not self._wait_for_room():
                return event_id
            wake = self._batcher.add(item)
            self._accepted += 1
            self._logged += 1
            if self._thread is None:
                self._start_worker()
            if wake:
                self._wake.notify()
        return event_id

    def _wait_for_room(self) -> bool:
        """With the lock held and the queue full: False to drop the event, True when
        there is room; raises for "raise" and for a "block" that timed out."""
        if self.on_full == "drop":
            self._dropped += 1
            if self._dropped & (self._dropped - 1) == 0:  # 1, 2, 4, 8, ...: not a flood
                log.warning("trailseal queue full: %d event(s) dropped so far", self._dropped)
            return False
        if self.on_full == "raise":
            raise QueueFullError(f"the queue holds {len(self._batcher)} events (queue_size)")
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        while self._batcher.full():
            if self._closed:
                raise ClientClosedError("the client closed while log() waited for room")
            if threading.current_thread() is self._thread:
                raise QueueFullError("log() from the worker thread with a full queue")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueFullError(
                    f"no room in the queue after {self.block_timeout} s (queue_size "
                    f"{self._batcher.max_items})"
                )
            self._wake.notify()
            self._space.wait(remaining)
        return True

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name="trailseal-worker", daemon=True)
        self._thread = thread
        thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while True:
                    force = self._flushing > 0 or self._closing
                    due = self._batcher.due_in(time.time_ns(), force=force)
                    if due == 0.0:
                        break
                    if due is None and self._closing:
                        return
                    self._wake.wait(due)
                items = self._batcher.take()
                self._in_flight = items
                self._space.notify_all()
            failures = self._attempt(items)
            with self._lock:
                mine = self._in_flight is items  # else close() gave up on us and took them
                self._in_flight = None
            if mine:
                try:
                    self._sink.handle(failures)
                except Exception:  # the sink logs its own IO errors; this is a bug
                    log.exception("trailseal worker: could not hand over failed events")
                with self._lock:
                    self._settled += len(items)
                    self._settled_cv.notify_all()

    def _sleep(self, seconds: float) -> None:
        if self._abandon.wait(seconds):
            raise _Abandoned

    def _prepare(self, items: list[Item]) -> tuple[list[Prepared], list[Failure]]:
        """Validate and canonicalize in slices, letting go of the GIL between them: a batch
        is milliseconds of CPU, and a thread calling log() should not wait that long."""
        ready: list[Prepared] = []
        failures: list[Failure] = []
        for start in range(0, len(items), _PREPARE_SLICE):
            if start:
                time.sleep(0)
            more_ready, more_failures = prepare_all(
                items[start : start + _PREPARE_SLICE], self.limits
            )
            ready += more_ready
            failures += more_failures
        return ready, failures

    def _attempt(self, items: list[Item]) -> list[Failure]:
        """Send one batch; the failures, for the sink. Never raises: the worker must not
        die with events unaccounted for."""
        try:
            ready, failures = self._prepare(items)
            if ready and self._abandon.is_set():
                failures.append(
                    Failure(ready, 0, "not_sent", "the client closed before the batch was sent")
                )
            elif ready:
                op = deliver_op(ready, self.retry, self._rng)
                try:
                    delivery = run_sync(op, self._http(), self._sleep)
                except _Abandoned:
                    failures.append(
                        Failure(
                            ready,
                            0,
                            "abandoned",
                            "the client closed while the batch was being retried",
                        )
                    )
                else:
                    with self._lock:
                        self._delivered += len(delivery.delivered)
                    failures.extend(delivery.failures)
            return failures
        except Exception as exc:
            log.exception("trailseal worker: unexpected error")
            return unsent(items, self.limits, "internal", f"unexpected error: {exc!r}")

    # -- flush and close ---------------------------------------------------------------------

    def _wait_settled(self, timeout: float | None) -> bool:
        with self._lock:
            target = self._accepted
            if self._settled >= target:
                return True
            self._flushing += 1
            self._wake.notify()
            try:
                return self._settled_cv.wait_for(lambda: self._settled >= target, timeout)
            finally:
                self._flushing -= 1

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything logged so far, regardless of batch age, and wait until each
        event is delivered or dead-lettered (``timeout`` seconds at most; None: no limit).
        True when all were settled in time. With ``raise_on_error``, raises DeliveryError
        for events that could not be delivered."""
        done = self._wait_settled(timeout)
        self._raise_kept()
        return done

    def _raise_kept(self) -> None:
        error = self._sink.take_error()
        if error is not None:
            raise error

    def close(self, timeout: float | None = None) -> None:
        """Flush (at most ``timeout``, default ``shutdown_timeout`` seconds), then stop: a
        batch still being retried and anything still queued go to the dead-letter file.
        Idempotent. With ``raise_on_error``, raises DeliveryError for what was not
        delivered."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._space.notify_all()
        limit = self.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        self._wait_settled(limit)
        self._abandon.set()
        with self._lock:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(1.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._strand()
        with self._http_lock:
            if self._http_client is not None:
                self._http_client.close()
                self._http_client = None
        _live.discard(self)
        self._raise_kept()

    def _strand(self) -> None:
        """The worker is stuck (a request that does not end): what it holds and what is
        queued go to the dead letter now. The batch in flight may still arrive; replaying
        it then is harmless (its ids dedupe)."""
        with self._lock:
            in_flight, self._in_flight = self._in_flight, None
            stranded = (in_flight or []) + self._batcher.clear()
        log.error(
            "trailseal worker did not stop in time; %d event(s) handed to the dead letter",
            len(stranded),
        )
        self._sink.handle(
            unsent(
                stranded,
                self.limits,
                "not_confirmed",
                "the client closed before the server confirmed these events (some may have "
                "arrived; replaying them is harmless)",
            )
        )
        with self._lock:
            self._settled += len(stranded)
            self._settled_cv.notify_all()

    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                logged=self._logged,
                queued=len(self._batcher),
                delivered=self._delivered,
                dropped=self._dropped,
                dead_lettered=self._sink.dead_lettered,
                failed=self._sink.failed,
            )

    # -- direct ingest -----------------------------------------------------------------------

    def log_sync(self, **event: Any) -> Committed:
        """Send one event now and wait until it is covered by a signed checkpoint: its seq,
        hashes, inclusion proof and checkpoint (``duplicate`` when the id was stored
        before). Fully validated here; retried like queued events; errors raise."""
        return self._run(api.send_sync(self._prepare_direct(event), self.retry, self._rng))

    def log_batch(
        self, events: Iterable[Mapping[str, Any]], *, sync: bool = False
    ) -> list[Receipt] | list[Committed]:
        """Send up to 1000 events now, all or nothing. Returns the receipts (one per
        organization; durable on return), or with ``sync=True`` each event's committed
        entry and proof. Every event is validated first (ValidationError ``/3/actor/id``)."""
        prepared = [self._prepare_direct(e, position=n) for n, e in enumerate(events)]
        if sync:
            return self._run(api.send_batch_sync(prepared, self.retry, self._rng))
        return self._run(api.send_batch(prepared, self.retry, self._rng))

    # -- reads -------------------------------------------------------------------------------

    def get_event(self, event_id: str) -> StoredEvent:
        return self._run(api.get_event(event_id, self.retry, self._rng))

    def get_receipt(self, receipt_id: str) -> Receipt:
        return self._run(api.get_receipt(receipt_id, self.retry, self._rng))

    def get_log(self, organization_id: str) -> LogInfo:
        return self._run(api.get_log(organization_id, self.retry, self._rng))

    def list_logs(self) -> list[LogInfo]:
        return self._run(api.list_logs(self.retry, self._rng))

    def get_checkpoint(self, organization_id: str, tree_size: int | None = None) -> CheckpointInfo:
        return self._run(api.get_checkpoint(organization_id, tree_size, self.retry, self._rng))

    def get_proof(
        self, event_id: str, tree_size: int | None = None
    ) -> tuple[InclusionProof, CheckpointInfo]:
        return self._run(api.get_proof(event_id, tree_size, self.retry, self._rng))

    def list_events(
        self,
        *,
        cursor: str | None = None,
        organization_id: str | None = None,
        actor_id: str | None = None,
        actor_type: str | None = None,
        actor_name: str | None = None,
        action: str | None = None,
        action_prefix: str | None = None,
        action_contains: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        target_id: str | None = None,
        outcome: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        tags: Sequence[str] = (),
        text: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        total: bool = False,
    ) -> EventPage:
        """One page of events matching every given filter (``action="invoice.*"`` is a
        prefix; ``q`` the query language, e.g. ``'actor:alice action:invoice.* "text"'``).
        Pass ``page.next_cursor`` back as ``cursor`` for the next page."""
        params = api.list_params(
            organization_id=organization_id,
            actor_id=actor_id,
            actor_type=actor_type,
            actor_name=actor_name,
            action=action,
            action_prefix=action_prefix,
            action_contains=action_contains,
            resource_type=resource_type,
            resource_id=resource_id,
            target_id=target_id,
            outcome=outcome,
            since=since,
            until=until,
            tags=tags,
            text=text,
            q=q,
            limit=limit,
            order=order,
            total=total,
        )
        return self._run(api.list_events(params, cursor, self.retry, self._rng))

    def iter_events(self, *, page_size: int = 200, **filters: Any) -> Iterator[StoredEvent]:
        """Every event matching ``filters`` (those of ``list_events``), page after page."""
        cursor: str | None = None
        while True:
            page = self.list_events(cursor=cursor, limit=page_size, **filters)
            yield from page.events
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def stream_events(
        self,
        *,
        after: str | int | None = None,
        limit: int | None = None,
        heartbeat: float | None = None,
        retry: RetryPolicy | None = None,
        **filters: Any,
    ) -> Iterator[StoredEvent]:
        """Follow new events matching ``filters`` (those of ``list_events``) live, over
        Server-Sent Events (``GET /v1/stream/events``), in commit order, until the caller
        stops iterating (or ``limit`` events came).

        Starts at the newest commit, or after stream position ``after`` (an event's
        ``raw["position"]``; ``0`` replays everything first). A broken or silent
        connection is resumed with ``Last-Event-ID`` after the backoff of ``retry``
        (default: the client's policy), so no event is skipped or yielded twice; consecutive
        failures beyond its ``max_attempts`` raise TransportError, a refusal (401, 403,
        404, 422) raises ApiError at once. ``heartbeat`` asks the server for heartbeats
        that often (seconds, ≤ 15); silence for twice that plus 5 s counts as a dead
        connection. See :mod:`trailseal.client.stream`."""
        stream = EventStream(
            stream_filters(filters),
            after=after,
            limit=limit,
            heartbeat=heartbeat,
            policy=retry or self.retry,
            rng=self._rng,
        )
        timeout = httpx.Timeout(self.timeout, read=stream.read_timeout)
        while not stream.done():
            params, headers = stream.request()
            try:
                with self._http().stream(
                    "GET", STREAM_PATH, params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code != 200:
                        reply = Reply(
                            response.status_code,
                            response.read(),
                            response.headers.get("retry-after"),
                            time.time(),
                        )
                        delay = stream.refused(reply)
                    else:
                        for line in response.iter_lines():
                            event = stream.feed(line)
                            if event is not None:
                                yield event
                                if stream.done():
                                    return
                        delay = stream.ended()
            except httpx.RequestError as exc:  # refused, reset, timed out (silent)
                delay = stream.lost(f"{type(exc).__name__}: {exc}")
            time.sleep(delay)

    # -- verification and the dead letter ----------------------------------------------------

    def verify_event(
        self,
        event_id: str,
        *,
        verifier_key: KeySource | None = None,
        tree_size: int | None = None,
        expected: Mapping[str, Any] | None = None,
    ) -> VerifiedEvent:
        """Check one event offline against the pinned key (``verifier_key`` here or on the
        client) and the trust-on-first-use store; see :mod:`trailseal.client.verify`.
        Raises VerificationError naming what did not verify, ConsistencyError for a
        checkpoint inconsistent with the remembered one."""
        keys = verifier_key if verifier_key is not None else self.verifier_key
        op = verify_op(
            event_id,
            keys,
            self.trust_store(),
            self.retry,
            self._rng,
            tree_size=tree_size,
            expected=expected,
        )
        return self._run(op)

    def replay_dead_letter(self, path: str | os.PathLike[str] | None = None) -> ReplayResult:
        """Send the dead-letter file's events again (``path``, default
        ``dead_letter_path``) and remove those the server acknowledged; the file is
        rewritten atomically. Safe to repeat, and to run beside a live client."""
        return self._run(replay(self._dead_letter(path), self.retry, self._rng))
