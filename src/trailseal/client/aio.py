"""The asyncio client: the same operations as :class:`~trailseal.client.Client`, awaited,
and a worker that is an asyncio task instead of a thread.

The batching, retry, dead-letter and verification logic is the sans-IO code both clients
share (:mod:`trailseal.client.batching`, :mod:`~trailseal.client.retry`,
:mod:`~trailseal.client.deadletter`, :mod:`~trailseal.client.verify`); this module only
drives it with ``httpx.AsyncClient`` and ``asyncio``. Dead-letter writes (an ``fsync``) run
in a thread so they never stall the event loop.

An ``AsyncClient`` belongs to one event loop and is not thread-safe: use it from tasks of
the loop it first ran on. ``await client.log(...)`` does not suspend unless the queue is
full and ``on_full="block"``. Close it with ``await client.close()`` (or ``async with``):
at interpreter exit no loop is left to send with, so whatever is still queued then is
written to the dead-letter file (or counted as lost, with an error logged).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
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

__all__ = ["AsyncClient", "run_async"]

T = TypeVar("T")

_JSON = {"Content-Type": "application/json"}
_PREPARE_SLICE = 32  # events prepared between two chances for other tasks to run


class _Abandoned(Exception):
    """Raised out of a retry's wait when the client is closing."""


async def perform_async(http: httpx.AsyncClient, call: Call) -> Reply:
    """One HTTP exchange; a failure to get any answer becomes ``Reply(status=0)``."""
    try:
        response = await http.request(
            call.method,
            call.path,
            params=call.params or None,
            content=call.body,
            headers=_JSON if call.body is not None else None,
        )
    except httpx.RequestError as exc:
        return Reply(0, received_at=time.time(), error=f"{type(exc).__name__}: {exc}")
    return Reply(
        response.status_code, response.content, response.headers.get("retry-after"), time.time()
    )


async def run_async(
    op: Op[T],
    http: httpx.AsyncClient,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Drive a sans-IO operation to its result (:mod:`trailseal.client.protocol`)."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Sleep):
                await sleep(step.seconds)
                step = op.send(None)
            else:
                step = op.send(await perform_async(http, step))
    except StopIteration as stop:
        result: T = stop.value
        return result


_live: weakref.WeakSet[AsyncClient] = weakref.WeakSet()


def _keep_queued_at_exit() -> None:
    for client in list(_live):
        try:
            client._keep_queued()
        except Exception:
            log.exception("saving %r's queued events at exit failed", client)


def _after_fork_in_child() -> None:
    for client in list(_live):
        client._after_fork()


atexit.register(_keep_queued_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class AsyncClient(ClientBase):
    """A trailseal client for asyncio. Arguments as for :class:`~trailseal.client.Client`
    (``transport`` is an ``httpx.AsyncBaseTransport``)."""

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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._wake = asyncio.Event()  # worker: a batch may be due
        self._space = asyncio.Event()  # blocked log(): room in the queue
        self._progress = asyncio.Event()  # flush(): a batch was settled
        self._abandon = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: list[Item] | None = None
        self._http_client: httpx.AsyncClient | None = None
        self._closing = False
        self._flushing = 0
        self._accepted = 0
        self._settled = 0
        self._logged = 0
        self._dropped = 0
        self._delivered = 0

    def _after_fork(self) -> None:
        self._batcher.clear()  # the parent's events: the parent sends them
        self._init_runtime()
        self._ids.after_fork()
        self._sink.after_fork()

    def _keep_queued(
        self,
        code: str = "not_sent",
        message: str = "the process exited before the AsyncClient was closed",
    ) -> None:
        """What the worker holds and what is queued go to the dead letter (at exit, with no
        loop to send with; or when close() gave up on a stuck worker). A batch that was in
        flight may have arrived; replaying it is harmless (its ids dedupe)."""
        in_flight, self._in_flight = self._in_flight, None
        items = (in_flight or []) + self._batcher.clear()
        if items:
            self._sink.handle(unsent(items, self.limits, code, message))
            self._settled += len(items)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _http(self) -> httpx.AsyncClient:
        if self._http_client is None:
            self._http_client = httpx.AsyncClient(
                base_url=self.url,
                headers=self._headers,
                timeout=self.timeout,
                transport=self._transport,
            )
        return self._http_client

    async def _run(self, op: Op[T]) -> T:
        return await run_async(op, self._http())

    # -- queued logging ----------------------------------------------------------------------

    async def log(self, **event: Any) -> str:
        """Queue one event and return its id (see ``Client.log``); suspends only to wait
        for room with ``on_full="block"``."""
        event_id, item = self._snapshot(event)
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self._batcher.full() and not await self._wait_for_room():
            return event_id
        wake = self._batcher.add(item)
        self._accepted += 1
        self._logged += 1
        self._ensure_worker()
        if wake:
            self._wake.set()
        return event_id

    def _ensure_worker(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._work(), name="trailseal-worker"
            )

    async def _wait_for_room(self) -> bool:
        if self.on_full == "drop":
            self._dropped += 1
            if self._dropped & (self._dropped - 1) == 0:
                log.warning("trailseal queue full: %d event(s) dropped so far", self._dropped)
            return False
        if self.on_full == "raise":
            raise QueueFullError(f"the queue holds {len(self._batcher)} events (queue_size)")
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        while self._batcher.full():
            if self._closed:
                raise ClientClosedError("the client closed while log() waited for room")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueFullError(
                    f"no room in the queue after {self.block_timeout} s (queue_size "
                    f"{self._batcher.max_items})"
                )
            self._space.clear()
            self._ensure_worker()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._space.wait(), remaining)
        return True

    async def _work(self) -> None:
        while True:
            due = self._batcher.due_in(time.time_ns(), force=self._flushing > 0 or self._closing)
            if due is None and self._closing:
                return
            if due != 0.0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), due)
                continue
            items = self._batcher.take()
            self._in_flight = items
            self._space.set()
            failures = await self._attempt(items)
            if self._in_flight is not items:
                continue  # close() gave up on this batch and took it
            self._in_flight = None
            if failures:
                try:
                    await asyncio.to_thread(self._sink.handle, failures)
                except Exception:  # the sink logs its own IO errors; this is a bug
                    log.exception("trailseal worker: could not hand over failed events")
            self._settled += len(items)
            self._progress.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._abandon.wait(), seconds)
        except TimeoutError:
            return
        raise _Abandoned

    async def _prepare(self, items: list[Item]) -> tuple[list[Prepared], list[Failure]]:
        """Validate and canonicalize in slices, yielding to the loop between them: a batch
        is milliseconds of CPU, which other tasks should not wait for."""
        ready: list[Prepared] = []
        failures: list[Failure] = []
        for start in range(0, len(items), _PREPARE_SLICE):
            if start:
                await asyncio.sleep(0)
            more_ready, more_failures = prepare_all(
                items[start : start + _PREPARE_SLICE], self.limits
            )
            ready += more_ready
            failures += more_failures
        return ready, failures

    async def _attempt(self, items: list[Item]) -> list[Failure]:
        """Send one batch; the failures, for the sink. Never raises but CancelledError."""
        try:
            ready, failures = await self._prepare(items)
            if ready and self._abandon.is_set():
                failures.append(
                    Failure(ready, 0, "not_sent", "the client closed before the batch was sent")
                )
            elif ready:
                op = deliver_op(ready, self.retry, self._rng)
                try:
                    delivery = await run_async(op, self._http(), self._sleep)
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
                    self._delivered += len(delivery.delivered)
                    failures.extend(delivery.failures)
            return failures
        except Exception as exc:
            log.exception("trailseal worker: unexpected error")
            return unsent(items, self.limits, "internal", f"unexpected error: {exc!r}")

    # -- flush and close ---------------------------------------------------------------------

    async def _wait_settled(self, timeout: float | None) -> bool:
        target = self._accepted
        if self._settled >= target:
            return True
        self._flushing += 1
        self._ensure_worker()
        self._wake.set()

        async def settled() -> None:
            while self._settled < target:
                self._progress.clear()
                await self._progress.wait()

        try:
            await asyncio.wait_for(settled(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._flushing -= 1

    async def flush(self, timeout: float | None = None) -> bool:
        """As ``Client.flush``: True when everything logged so far was settled in time."""
        done = await self._wait_settled(timeout)
        self._raise_kept()
        return done

    def _raise_kept(self) -> None:
        error = self._sink.take_error()
        if error is not None:
            raise error

    async def close(self, timeout: float | None = None) -> None:
        """As ``Client.close``: flush, then dead-letter what is left, and stop."""
        if self._closed:
            return
        self._closed = True
        self._space.set()
        limit = self.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        await self._wait_settled(limit)
        self._abandon.set()
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                task.cancel()
                log.error("trailseal worker did not stop in time; its events go to the dead letter")
        self._keep_queued(
            "not_confirmed",
            "the client closed before the server confirmed these events (some may have "
            "arrived; replaying them is harmless)",
        )
        if self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None
        _live.discard(self)
        self._raise_kept()

    def stats(self) -> ClientStats:
        return ClientStats(
            logged=self._logged,
            queued=len(self._batcher),
            delivered=self._delivered,
            dropped=self._dropped,
            dead_lettered=self._sink.dead_lettered,
            failed=self._sink.failed,
        )

    # -- direct ingest, reads, verification ----------------------------------------------------

    async def log_sync(self, **event: Any) -> Committed:
        return await self._run(api.send_sync(self._prepare_direct(event), self.retry, self._rng))

    async def log_batch(
        self, events: Iterable[Mapping[str, Any]], *, sync: bool = False
    ) -> list[Receipt] | list[Committed]:
        prepared = [self._prepare_direct(e, position=n) for n, e in enumerate(events)]
        if sync:
            return await self._run(api.send_batch_sync(prepared, self.retry, self._rng))
        return await self._run(api.send_batch(prepared, self.retry, self._rng))

    async def get_event(self, event_id: str) -> StoredEvent:
        return await self._run(api.get_event(event_id, self.retry, self._rng))

    async def get_receipt(self, receipt_id: str) -> Receipt:
        return await self._run(api.get_receipt(receipt_id, self.retry, self._rng))

    async def get_log(self, organization_id: str) -> LogInfo:
        return await self._run(api.get_log(organization_id, self.retry, self._rng))

    async def list_logs(self) -> list[LogInfo]:
        return await self._run(api.list_logs(self.retry, self._rng))

    async def get_checkpoint(
        self, organization_id: str, tree_size: int | None = None
    ) -> CheckpointInfo:
        return await self._run(
            api.get_checkpoint(organization_id, tree_size, self.retry, self._rng)
        )

    async def get_proof(
        self, event_id: str, tree_size: int | None = None
    ) -> tuple[InclusionProof, CheckpointInfo]:
        return await self._run(api.get_proof(event_id, tree_size, self.retry, self._rng))

    async def list_events(
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
        return await self._run(api.list_events(params, cursor, self.retry, self._rng))

    async def iter_events(
        self, *, page_size: int = 200, **filters: Any
    ) -> AsyncIterator[StoredEvent]:
        cursor: str | None = None
        while True:
            page = await self.list_events(cursor=cursor, limit=page_size, **filters)
            for event in page.events:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def stream_events(
        self,
        *,
        after: str | int | None = None,
        limit: int | None = None,
        heartbeat: float | None = None,
        retry: RetryPolicy | None = None,
        **filters: Any,
    ) -> AsyncIterator[StoredEvent]:
        """Follow new events live; see ``Client.stream_events``."""
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
                async with self._http().stream(
                    "GET", STREAM_PATH, params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code != 200:
                        reply = Reply(
                            response.status_code,
                            await response.aread(),
                            response.headers.get("retry-after"),
                            time.time(),
                        )
                        delay = stream.refused(reply)
                    else:
                        async for line in response.aiter_lines():
                            event = stream.feed(line)
                            if event is not None:
                                yield event
                                if stream.done():
                                    return
                        delay = stream.ended()
            except httpx.RequestError as exc:  # refused, reset, timed out (silent)
                delay = stream.lost(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(delay)

    async def verify_event(
        self,
        event_id: str,
        *,
        verifier_key: KeySource | None = None,
        tree_size: int | None = None,
        expected: Mapping[str, Any] | None = None,
    ) -> VerifiedEvent:
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
        return await self._run(op)

    async def replay_dead_letter(self, path: str | os.PathLike[str] | None = None) -> ReplayResult:
        return await self._run(replay(self._dead_letter(path), self.retry, self._rng))
