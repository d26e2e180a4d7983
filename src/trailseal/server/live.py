"""Wake-ups for live streams: "a commit may have landed in project P" (ARCHITECTURE §7).

Commits made by any server process must reach every live stream within a second. Streams
do not poll the database themselves: each server process keeps one :class:`CommitWatch`
(per event loop), and every stream subscribes to it for its project. The watch sets the
streams' :class:`asyncio.Event` when the project may have new entries; the stream then
reads what is new with its own filters (one indexed query) and waits again.

Theory of operation
-------------------
- **PostgreSQL**: one ``LISTEN trailseal_commits`` connection per process. Every append
  transaction that inserts entries also runs ``pg_notify('trailseal_commits', <project>)``
  (:mod:`trailseal.store.postgres`); PostgreSQL delivers it at commit, to every listening
  process. On (re)connecting, every subscriber is woken: what committed while nobody
  listened is then read like anything else.
- **SQLite**: one poll of each watched project's newest commit position every
  ``POLL_SECONDS`` (a single indexed read, whatever the number of streams); a change wakes
  that project's streams. Another process's commits show up the same way, since they share
  the database file.
- Correctness does not rest on the wake-ups being exact: a stream clears its event *before*
  it reads, so a wake-up that arrives while it reads makes it read again; a spurious one
  costs one empty read. As a safety net a stream also reads every ``SAFETY_SECONDS``.
- The watch runs (an asyncio task) only while some stream subscribes; the last one leaving
  stops it and closes the LISTEN connection, so an idle server holds nothing open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from trailseal.query import EventFilter
from trailseal.server.context import AppContext

__all__ = ["CHANNEL", "POLL_SECONDS", "SAFETY_SECONDS", "CommitWatch", "commit_watch"]

log = logging.getLogger(__name__)

CHANNEL = "trailseal_commits"  # the NOTIFY channel the PostgreSQL driver signals
POLL_SECONDS = 0.2  # SQLite: how often the newest positions are read
SAFETY_SECONDS = 10.0  # a stream reads at least this often, wake-up or not
_LISTEN_SLICE = 0.5  # PostgreSQL: how often the listener checks it is still wanted
_RETRY_SECONDS = 1.0  # after a failed LISTEN connection or poll

_watch_lock = threading.Lock()


class CommitWatch:
    """Wakes the subscribers of a project when it may have new commits (module
    docstring). Belongs to one event loop; not thread-safe (it is used from that loop)."""

    def __init__(self, ctx: AppContext, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self.loop = loop
        self._subscribers: dict[str, set[asyncio.Event]] = {}
        self._running = False
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def subscribe(self, project: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``project`` may have new commits (clear it, then read)."""
        event = asyncio.Event()
        self._subscribers.setdefault(project, set()).add(event)
        if not self._running:
            self._running = True
            self._task = self.loop.create_task(self._run(), name="trailseal-commit-watch")
        try:
            yield event
        finally:
            waiting = self._subscribers.get(project)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._subscribers[project]

    def _wanted(self) -> bool:
        """Whether to keep watching; decided and recorded in one step (no await), so a
        subscriber arriving later always finds either a running watch or none."""
        if not self._subscribers:
            self._running = False
        return self._running

    def _wake(self, project: str | None = None) -> None:
        targets = (
            [e for events in self._subscribers.values() for e in events]
            if project is None
            else list(self._subscribers.get(project, ()))
        )
        for event in targets:
            event.set()

    async def _run(self) -> None:
        try:
            if self._ctx.settings.uses_postgres:
                await self._listen()
            else:
                await self._poll()
        except asyncio.CancelledError:
            self._running = False
            raise
        except Exception:  # never leave subscribers waiting on a dead watch
            log.exception("the commit watch failed; streams fall back to their safety reads")
            self._running = False
            self._wake()

    # -- SQLite ------------------------------------------------------------------------------

    def _heads(self, projects: list[str]) -> dict[str, int]:
        newest: dict[str, int] = {}
        for project in projects:
            rows = self._ctx.store.query_entries(
                project, EventFilter(), log_ids=None, after=None, limit=1, descending=True
            )
            newest[project] = rows[0][0] if rows else 0
        return newest

    async def _poll(self) -> None:
        seen: dict[str, int] = {}
        while self._wanted():
            try:
                heads = await run_in_threadpool(self._heads, list(self._subscribers))
            except Exception:
                log.exception("polling the log heads failed; retrying")
                self._wake()
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            for project, head in heads.items():
                if seen.get(project) != head:  # a project seen first wakes too: harmless
                    seen[project] = head
                    self._wake(project)
            await asyncio.sleep(POLL_SECONDS)

    # -- PostgreSQL --------------------------------------------------------------------------

    async def _listen(self) -> None:
        import psycopg

        url = self._ctx.settings.database_url
        assert url is not None
        while self._wanted():
            connection: Any = None
            try:
                connection = await psycopg.AsyncConnection.connect(url, autocommit=True)
                await connection.execute(f"LISTEN {CHANNEL}")
                self._wake()  # whatever committed before LISTEN took effect
                while self._wanted():
                    async for note in connection.notifies(timeout=_LISTEN_SLICE):
                        self._wake(note.payload or None)
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN %s failed (%s); reconnecting", CHANNEL, exc)
                self._wake()
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()


def commit_watch(app_state: Any, ctx: AppContext) -> CommitWatch:
    """The process's watch for the running loop (made on first use, kept on the app)."""
    loop = asyncio.get_running_loop()
    with _watch_lock:
        watch: CommitWatch | None = getattr(app_state, "commit_watch", None)
        if watch is None or watch.loop is not loop:
            watch = CommitWatch(ctx, loop)
            app_state.commit_watch = watch
        return watch
