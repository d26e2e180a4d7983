"""SQLite driver: the embedded default. One file in the data directory, WAL with
``synchronous=FULL`` so a committed transaction survives power loss, and ``BEGIN
IMMEDIATE`` for appends, which takes the database's write lock: that is what serializes
appends across processes (ARCHITECTURE §6).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Literal

import orjson

from trailseal.query import EventFilter
from trailseal.store.base import (
    ApiKeyRow,
    CheckpointRow,
    IdRecord,
    IntakeRow,
    LogHead,
    NewEntries,
    NewEntry,
    ProjectRow,
    ReceiptRow,
    SigningKeyRow,
    StoredEntry,
    TileKey,
)
from trailseal.store.columns import search_text_of_entry
from trailseal.store.errors import DuplicateIdError, SchemaError
from trailseal.store.migrations import load_migrations
from trailseal.store.rows import (
    api_key_from_row,
    api_key_params,
    checkpoint_from_row,
    checkpoint_params,
    log_head_from_row,
    receipt_from_row,
    stored_entry_from_row,
)

__all__ = ["SQLiteStore"]

_LOG_COLUMNS = "project, log_id, organization, origin, size, chain_head, peaks, created_at"
_ENTRY_COLUMNS = "project, log_id, seq, event_id, entry, leaf_hash, chain_hash, content_hash"
_API_KEY_COLUMNS = (
    "key_id, project, key_hash, scopes, organization, name, test, created_at, revoked_at"
)
_RECEIPT_COLUMNS = (
    "project, receipt_id, state, organization, event_ids, created_at, updated_at, log_id, error"
)
# SQLite caps bound parameters per statement (32766 since 3.32); stay well below.
_IN_CHUNK = 900


# Rows per multi-row INSERT on the append path (full-text rows, tiles, receipts), at most.
# ``executemany`` releases the GIL around every row's step, and under load each release
# costs up to the interpreter's switch interval before this thread runs again (a 1000-row
# executemany next to one busy Python thread took 5 s against 14 ms alone); a multi-row
# statement releases it once. 1024 rows of these tables (at most 9 columns) stay far below
# SQLite's 32766 bound parameters.
_MAX_ROWS_PER_INSERT = 1024


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@lru_cache(maxsize=64)
def _marks(width: int, rows: int) -> str:
    """``(?, …), (?, …)``: ``rows`` tuples of ``width`` parameters."""
    one = "(" + ", ".join("?" * width) + ")"
    return ", ".join([one] * rows)


def _values(width: int, rows: int) -> str:
    return " VALUES " + _marks(width, rows)


def _insert_rows(
    conn: sqlite3.Connection, insert: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """``insert`` (``INSERT INTO t (…)``) of ``rows`` as multi-row statements, each
    followed by ``tail`` (an ON CONFLICT clause)."""
    width = len(rows[0]) if rows else 0
    start = 0
    while start < len(rows):
        # Power-of-two chunks (2700 rows: 1024, 1024, 512, 128, 8, 4): few statements, and
        # few distinct ones, so each is compiled once and then found in the cache.
        size = min(_MAX_ROWS_PER_INSERT, 1 << ((len(rows) - start).bit_length() - 1))
        chunk = rows[start : start + size]
        conn.execute(insert + _values(width, size) + tail, list(chain.from_iterable(chunk)))
        start += size


class SQLiteStore:
    """The Store protocol on one SQLite file."""

    kind = "sqlite"

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 60_000, shared_writers: bool = False
    ) -> None:
        """``shared_writers``: several server processes write this file, so their writers
        queue on a lock file (:meth:`_writer_turn`); one process needs no such turn, and
        its two system calls would be two more GIL hand-offs per commit."""
        self.path = str(path)
        self._shared_writers = shared_writers
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock_fds: list[int] = []
        self._all_lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=60,
                cached_statements=256,  # room for the append path's chunk sizes
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -65536")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._writer_turn():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Writers of this file (threads and server processes) queue on a lock file before
        BEGIN IMMEDIATE. SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between
        tries, so with two server processes the write lock sat idle for milliseconds
        after every commit; this wait polls every 0.1-1 ms. Same deadline as SQLite's."""
        fd = self._lock_fd()
        if fd is None:
            yield
            return
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int | None:
        """This thread's descriptor of ``<database>-writer`` (flock locks belong to an
        open file, so threads need their own to exclude each other); None in memory."""
        if not self._shared_writers or self.path == ":memory:" or self.path.startswith("file:"):
            return None
        fd: int | None = getattr(self._local, "lock_fd", None)
        if fd is None:
            fd = os.open(self.path + "-writer", os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_fd = fd
            with self._all_lock:
                self._lock_fds.append(fd)
        return fd

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            for fd in self._lock_fds:
                os.close(fd)
            self._lock_fds.clear()
        self._local = threading.local()

    def migrate(self) -> None:
        migrations = load_migrations("sqlite")
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            )
            current = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
            current = current or 0
            newest = migrations[-1][0] if migrations else 0
            if current > newest:
                raise SchemaError(
                    f"database schema v{current} is newer than this trailseal (v{newest})"
                )
            for version, sql in migrations:
                if version > current:
                    for statement in _split_sql(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations VALUES (?)", (version,))

    # -- projects and keys -----------------------------------------------------------------
    def create_project(self, row: ProjectRow) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO projects VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (row.project, row.created_at, row.retention_days, row.monthly_event_limit),
            )
            return cur.rowcount == 1

    def get_project(self, project: str) -> ProjectRow | None:
        found = (
            self._conn()
            .execute(
                "SELECT project, created_at, retention_days, monthly_event_limit FROM projects"
                " WHERE project = ?",
                (project,),
            )
            .fetchone()
        )
        return ProjectRow(*found) if found else None

    def list_projects(self) -> list[ProjectRow]:
        rows = self._conn().execute(
            "SELECT project, created_at, retention_days, monthly_event_limit FROM projects"
            " ORDER BY project"
        )
        return [ProjectRow(*row) for row in rows]

    def add_signing_key(self, row: SigningKeyRow) -> SigningKeyRow:
        with self._write() as conn:
            existing = conn.execute(
                "SELECT project, key_id, public_key, private_sealed, created_at"
                " FROM signing_keys WHERE project = ? ORDER BY created_at, key_id LIMIT 1",
                (row.project,),
            ).fetchone()
            if existing:
                return SigningKeyRow(*existing)
            conn.execute(
                "INSERT INTO signing_keys VALUES (?, ?, ?, ?, ?)",
                (row.project, row.key_id, row.public_key, row.private_sealed, row.created_at),
            )
            return row

    def signing_keys(self, project: str) -> list[SigningKeyRow]:
        rows = self._conn().execute(
            "SELECT project, key_id, public_key, private_sealed, created_at FROM signing_keys"
            " WHERE project = ? ORDER BY created_at, key_id",
            (project,),
        )
        return [SigningKeyRow(*row) for row in rows]

    def create_api_key(self, row: ApiKeyRow) -> None:
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO api_keys ({_API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                api_key_params(row),
            )

    def create_first_api_key(self, row: ApiKeyRow) -> bool:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone():
                return False
            conn.execute(
                f"INSERT INTO api_keys ({_API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                api_key_params(row),
            )
            return True

    def find_api_key(self, key_hash: bytes) -> ApiKeyRow | None:
        row = (
            self._conn()
            .execute(f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
            .fetchone()
        )
        return api_key_from_row(row) if row else None

    def list_api_keys(self, project: str) -> list[ApiKeyRow]:
        rows = self._conn().execute(
            f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE project = ? ORDER BY created_at",
            (project,),
        )
        return [api_key_from_row(row) for row in rows]

    def revoke_api_key(self, project: str, key_id: str, when: str) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE project = ? AND key_id = ?"
                " AND revoked_at IS NULL",
                (when, project, key_id),
            )
            return cur.rowcount == 1

    def count_api_keys(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM api_keys").fetchone()[0])

    # -- logs ------------------------------------------------------------------------------
    def get_or_create_log(
        self, project: str, organization: str, *, log_id: str, origin: str, now: str
    ) -> LogHead:
        found = self.find_log(project, organization)
        if found:
            return found
        with self._write() as conn:
            conn.execute(
                "INSERT INTO logs (project, log_id, organization, origin, size, chain_head,"
                " peaks, created_at) VALUES (?, ?, ?, ?, 0, ?, x'', ?) ON CONFLICT DO NOTHING",
                (project, log_id, organization, origin, bytes(32), now),
            )
            row = conn.execute(
                f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = ? AND organization = ?"
                " AND deleted_at IS NULL",
                (project, organization),
            ).fetchone()
        return log_head_from_row(row)

    def find_log(self, project: str, organization: str) -> LogHead | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = ? AND organization = ?"
                " AND deleted_at IS NULL",
                (project, organization),
            )
            .fetchone()
        )
        return log_head_from_row(row) if row else None

    def get_log(self, project: str, log_id: str) -> LogHead | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = ? AND log_id = ?",
                (project, log_id),
            )
            .fetchone()
        )
        return log_head_from_row(row) if row else None

    def list_logs(self, project: str) -> list[LogHead]:
        rows = self._conn().execute(
            f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = ? AND deleted_at IS NULL"
            " ORDER BY organization",
            (project,),
        )
        return [log_head_from_row(row) for row in rows]

    def delete_log(self, project: str, organization: str, when: str) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE logs SET deleted_at = ? WHERE project = ? AND organization = ?"
                " AND deleted_at IS NULL",
                (when, project, organization),
            )
            return cur.rowcount == 1

    # -- appends ---------------------------------------------------------------------------
    @contextmanager
    def append(self, project: str, log_id: str) -> Iterator[_SQLiteAppend]:
        with self.append_logs() as logs:
            yield logs.append(project, log_id)

    @contextmanager
    def append_logs(self) -> Iterator[_SQLiteLogAppends]:
        with self._write() as conn:  # the database's write lock covers every log
            yield _SQLiteLogAppends(conn)

    # -- reads -----------------------------------------------------------------------------
    def get_entry(self, project: str, log_id: str, seq: int) -> StoredEntry | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries"
                " WHERE project = ? AND log_id = ? AND seq = ?",
                (project, log_id, seq),
            )
            .fetchone()
        )
        return stored_entry_from_row(row) if row else None

    def get_entry_by_id(self, project: str, event_id: str) -> StoredEntry | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE project = ? AND event_id = ?",
                (project, event_id),
            )
            .fetchone()
        )
        return stored_entry_from_row(row) if row else None

    def find_ids(self, project: str, event_ids: Sequence[str]) -> dict[str, IdRecord]:
        return _find_ids(self._conn(), project, event_ids)

    def iter_entries(
        self, project: str, log_id: str, start: int, end: int, *, page: int = 5000
    ) -> Iterator[StoredEntry]:
        conn = self._conn()
        position = start
        while position < end:
            rows = conn.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE project = ? AND log_id = ?"
                " AND seq >= ? AND seq < ? ORDER BY seq",
                (project, log_id, position, min(end, position + page)),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield stored_entry_from_row(row)
            position = rows[-1][2] + 1

    def read_tiles(
        self, project: str, log_id: str, keys: Sequence[TileKey]
    ) -> dict[TileKey, bytes]:
        return _read_tiles(self._conn(), project, log_id, keys)

    def get_checkpoint(self, project: str, log_id: str, size: int) -> CheckpointRow | None:
        row = (
            self._conn()
            .execute(
                "SELECT log_id, size, root_hash, note, created_at FROM checkpoints"
                " WHERE project = ? AND log_id = ? AND size = ?",
                (project, log_id, size),
            )
            .fetchone()
        )
        return checkpoint_from_row(row) if row else None

    def latest_checkpoint(self, project: str, log_id: str) -> CheckpointRow | None:
        row = (
            self._conn()
            .execute(
                "SELECT log_id, size, root_hash, note, created_at FROM checkpoints"
                " WHERE project = ? AND log_id = ? ORDER BY size DESC LIMIT 1",
                (project, log_id),
            )
            .fetchone()
        )
        return checkpoint_from_row(row) if row else None

    def list_checkpoints(self, project: str, log_id: str) -> list[CheckpointRow]:
        rows = self._conn().execute(
            "SELECT log_id, size, root_hash, note, created_at FROM checkpoints"
            " WHERE project = ? AND log_id = ? ORDER BY size",
            (project, log_id),
        )
        return [checkpoint_from_row(row) for row in rows]

    def redact_entry(self, project: str, log_id: str, seq: int) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "SELECT rowid, entry FROM entries WHERE project = ? AND log_id = ? AND seq = ?",
                (project, log_id, seq),
            ).fetchone()
            if row is None or row[1] is None:
                return False
            rowid, entry = row
            # Contentless FTS5 deletes by value: give it back the text it indexed.
            conn.execute(
                "INSERT INTO entries_fts (entries_fts, rowid, body) VALUES ('delete', ?, ?)",
                (rowid, search_text_of_entry(entry)),
            )
            conn.execute(
                "UPDATE entries SET entry = NULL, actor_name = NULL, target_ids = NULL,"
                " tags = NULL WHERE rowid = ?",
                (rowid,),
            )
            return True

    def usage(self, project: str, month: str) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT events FROM usage_counters WHERE project = ? AND month = ?",
                (project, month),
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    # -- receipts and intake ---------------------------------------------------------------
    def put_intake(self, receipt: ReceiptRow, events: bytes) -> IntakeRow:
        with self._write() as conn:
            _put_receipts(conn, [receipt])
            cur = conn.execute(
                "INSERT INTO intake (project, organization, receipt_id, received_at, events)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    receipt.project,
                    receipt.organization,
                    receipt.receipt_id,
                    receipt.created_at,
                    events,
                ),
            )
            intake_id = cur.lastrowid
        assert intake_id is not None
        return IntakeRow(
            intake_id,
            receipt.project,
            receipt.organization,
            receipt.receipt_id,
            receipt.created_at,
            events,
        )

    def pending_intake(self, limit: int) -> list[IntakeRow]:
        rows = self._conn().execute(
            "SELECT intake_id, project, organization, receipt_id, received_at, events"
            " FROM intake ORDER BY intake_id LIMIT ?",
            (limit,),
        )
        return [IntakeRow(*row) for row in rows]

    def get_receipt(self, project: str, receipt_id: str) -> ReceiptRow | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE project = ? AND receipt_id = ?",
                (project, receipt_id),
            )
            .fetchone()
        )
        return receipt_from_row(row) if row else None

    def put_receipt(self, receipt: ReceiptRow) -> None:
        with self._write() as conn:
            _put_receipts(conn, [receipt])

    def fail_receipt(self, project: str, receipt_id: str, error: str, when: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE receipts SET state = 'failed', error = ?, updated_at = ?"
                " WHERE project = ? AND receipt_id = ?",
                (error, when, project, receipt_id),
            )
            conn.execute(
                "DELETE FROM intake WHERE project = ? AND receipt_id = ?", (project, receipt_id)
            )

    # -- filtered queries (ARCHITECTURE §7) ------------------------------------------------
    def query_entries(
        self,
        project: str,
        flt: EventFilter,
        *,
        log_ids: Sequence[str] | None,
        after: int | None,
        limit: int,
        descending: bool = True,
        offset: int = 0,
        sort: Literal["commit", "occurred"] = "commit",
    ) -> list[tuple[int, StoredEntry]]:
        if sort == "occurred" and after is not None:
            raise ValueError("positions do not follow occurred_at order; page by offset")
        if log_ids is not None and not log_ids:
            return []
        conn = self._query_conn()
        plan = _sqlite_plan(project, flt, log_ids, after, descending)
        direction = "DESC" if descending else "ASC"
        order = f"{plan.order} {direction}"
        if sort == "occurred":
            order = f"e.occurred_at {direction}, {plan.position} {direction}"
        rows = conn.execute(
            f"SELECT {plan.position}, e.project, e.log_id, e.seq, e.event_id, e.entry,"
            f" e.leaf_hash, e.chain_hash, e.content_hash FROM {plan.source}"
            f" WHERE {plan.where} ORDER BY {order} LIMIT ? OFFSET ?",
            (*plan.params, max(0, limit), max(0, offset)),
        ).fetchall()
        return [(int(row[0]), stored_entry_from_row(row[1:])) for row in rows]

    def _query_conn(self) -> sqlite3.Connection:
        conn = self._conn()
        # Once per connection (it lives in the same thread-local): redefining a function
        # fails while one of the connection's statements is active.
        if not getattr(self._local, "query_functions", False):
            conn.create_function("trailseal_lower", 1, _fold, deterministic=True)
            self._local.query_functions = True
        return conn

    def count_entries(
        self, project: str, flt: EventFilter, *, log_ids: Sequence[str] | None
    ) -> int:
        if log_ids is not None and not log_ids:
            return 0
        conn = self._query_conn()
        plan = _sqlite_plan(project, flt, log_ids, None, True)
        row = conn.execute(
            f"SELECT count(*) FROM {plan.source} WHERE {plan.where}", plan.params
        ).fetchone()
        return int(row[0])


class _SQLiteLogAppends:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def append(self, project: str, log_id: str) -> _SQLiteAppend:
        # The last rowid rides along: each statement is a GIL hand-off, which under load
        # costs far more than the statement.
        row = self._conn.execute(
            f"SELECT {_LOG_COLUMNS}, (SELECT coalesce(max(rowid), 0) FROM entries)"
            " FROM logs WHERE project = ? AND log_id = ?",
            (project, log_id),
        ).fetchone()
        if row is None:
            raise KeyError(f"no log {log_id!r} in project {project!r}")
        return _SQLiteAppend(self._conn, log_head_from_row(row[:-1]), row[-1] + 1)


class _SQLiteAppend:
    """The AppendTransaction of SQLiteStore; lives inside ``BEGIN IMMEDIATE``."""

    def __init__(self, conn: sqlite3.Connection, head: LogHead, next_rowid: int) -> None:
        self._conn = conn
        self._head = head
        self._next_rowid = next_rowid  # the write lock is held: nobody else inserts

    @property
    def head(self) -> LogHead:
        return self._head

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, IdRecord]:
        return _find_ids(self._conn, self._head.project, event_ids)

    def insert_entries(self, entries: Sequence[NewEntry] | NewEntries) -> None:
        batch = NewEntries.of(entries)
        count = len(batch)
        if not count:
            return
        project, log_id = self._head.project, self._head.log_id
        conn = self._conn
        rowids = range(self._next_rowid, self._next_rowid + count)
        # Rows zipped from the columns in C: no Python code runs per row.
        rows = zip(
            rowids,
            repeat(project, count),
            repeat(log_id, count),
            batch.seqs,
            batch.event_ids,
            batch.entries,
            batch.leaf_hashes,
            batch.chain_hashes,
            batch.content_hashes,
            batch.received_at,
            batch.occurred_at,
            *zip(*batch.index_columns, strict=True),
            strict=True,
        )
        try:
            # executemany, not _insert_rows: for this 20-column table multi-row statements
            # cost ~3.5 us/event more in a quiet process (bench_append's ratio fell from
            # 0.84-0.89 to 0.76-0.80), and bench_http showed no gain under load.
            conn.executemany(
                "INSERT INTO entries (rowid, project, log_id, seq, event_id, entry, leaf_hash,"
                " chain_hash, content_hash, received_at, occurred_at, action, actor_id,"
                " actor_type, actor_name, resource_type, resource_id, target_ids, outcome, tags)"
                + _values(20, 1),
                rows,
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateIdError(str(exc)) from exc
        _insert_rows(
            conn,
            "INSERT INTO entries_fts (rowid, body)",
            list(zip(rowids, batch.search_texts, strict=True)),
        )
        self._next_rowid += count

    def read_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
        return _read_tiles(self._conn, self._head.project, self._head.log_id, keys)

    def put_tiles(self, tiles: dict[TileKey, bytes]) -> None:
        project, log_id = self._head.project, self._head.log_id
        _insert_rows(
            self._conn,
            "INSERT INTO tiles",
            [(project, log_id, level, index, data) for (level, index), data in tiles.items()],
            " ON CONFLICT (project, log_id, level, idx) DO UPDATE SET hashes = excluded.hashes",
        )

    def put_checkpoint(self, checkpoint: CheckpointRow) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
            checkpoint_params(self._head.project, checkpoint),
        )

    def set_head(self, *, size: int, chain_head: bytes, peaks: bytes) -> None:
        self._conn.execute(
            "UPDATE logs SET size = ?, chain_head = ?, peaks = ? WHERE project = ? AND log_id = ?",
            (size, chain_head, peaks, self._head.project, self._head.log_id),
        )

    def read_state(self, facade: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT state FROM log_state WHERE project = ? AND log_id = ? AND facade = ?",
            (self._head.project, self._head.log_id, facade),
        ).fetchone()
        return bytes(row[0]) if row else None

    def write_state(self, facade: str, state: bytes) -> None:
        self._conn.execute(
            "INSERT INTO log_state VALUES (?, ?, ?, ?) ON CONFLICT (project, log_id, facade)"
            " DO UPDATE SET state = excluded.state",
            (self._head.project, self._head.log_id, facade, state),
        )

    def add_usage(self, month: str, events: int) -> None:
        self._conn.execute(
            "INSERT INTO usage_counters VALUES (?, ?, ?) ON CONFLICT (project, month)"
            " DO UPDATE SET events = events + excluded.events",
            (self._head.project, month, events),
        )

    def put_receipts(self, receipts: Sequence[ReceiptRow]) -> None:
        _put_receipts(self._conn, receipts)

    def delete_intake(self, intake_ids: Sequence[int]) -> None:
        for chunk in _chunks(list(intake_ids)):
            marks = ",".join("?" * len(chunk))
            self._conn.execute(f"DELETE FROM intake WHERE intake_id IN ({marks})", chunk)


def _find_ids(
    conn: sqlite3.Connection, project: str, event_ids: Sequence[str]
) -> dict[str, IdRecord]:
    found: dict[str, IdRecord] = {}
    for chunk in _chunks(list(event_ids)):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT event_id, log_id, seq, content_hash FROM entries"
            f" WHERE project = ? AND event_id IN ({marks})",
            (project, *chunk),
        )
        for event_id, log_id, seq, content_hash in rows:
            found[event_id] = IdRecord(log_id, seq, bytes(content_hash))
    return found


def _read_tiles(
    conn: sqlite3.Connection, project: str, log_id: str, keys: Sequence[TileKey]
) -> dict[TileKey, bytes]:
    found: dict[TileKey, bytes] = {}
    for chunk in _chunks(list(keys), _IN_CHUNK // 2):  # one statement: one GIL hand-off
        rows = conn.execute(
            "SELECT level, idx, hashes FROM tiles WHERE project = ? AND log_id = ?"
            f" AND (level, idx) IN ({_marks(2, len(chunk))})",
            (project, log_id, *chain.from_iterable(chunk)),
        )
        for level, index, hashes in rows:
            found[(level, index)] = bytes(hashes)
    return found


def _put_receipts(conn: sqlite3.Connection, receipts: Sequence[ReceiptRow]) -> None:
    _insert_rows(
        conn,
        f"INSERT INTO receipts ({_RECEIPT_COLUMNS})",
        [
            (
                r.project,
                r.receipt_id,
                r.state,
                r.organization,
                orjson.dumps(list(r.event_ids)),
                r.created_at,
                r.updated_at,
                r.log_id,
                r.error,
            )
            for r in receipts
        ],
        " ON CONFLICT (project, receipt_id) DO UPDATE SET state = excluded.state,"
        " log_id = excluded.log_id, error = excluded.error, updated_at = excluded.updated_at",
    )


def _split_sql(script: str) -> list[str]:
    """Statements of a migration file (no semicolons inside literals in our migrations)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


# -- filtered queries ---------------------------------------------------------------------
# Positions are entries.rowid: the database-wide commit order (one writer), so keyset
# pagination on it never skips or repeats an entry that commits while a client pages.


@dataclass(frozen=True, slots=True)
class _QueryPlan:
    source: str  # FROM clause; ``e`` is entries
    where: str
    params: tuple[Any, ...]
    position: str  # the commit position column
    order: str  # what to ORDER BY (the position, or seq when that orders the same)


def _fold(value: str | None) -> str | None:
    # SQLite's lower() folds ASCII only; names are Unicode.
    return value.lower() if isinstance(value, str) else None


def _fts_match(terms: Sequence[str]) -> str:
    """An FTS5 query that ANDs the terms, each an FTS5 string (a phrase of its words):
    quoting every term, with ``"`` doubled, means no user text is read as FTS5 syntax."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _sqlite_plan(
    project: str,
    flt: EventFilter,
    log_ids: Sequence[str] | None,
    after: int | None,
    descending: bool,
) -> _QueryPlan:
    """The access path is chosen here, not left to SQLite's planner: without statistics it
    would take any (project, …) index for ``project = ?`` and then sort every row of the
    project by rowid. A unary ``+`` keeps a term from selecting an index.

    - full text: the FTS table drives, yielding matching rowids in rowid order;
    - one log: ``entries_log_seq`` in seq order, which is commit order within a log;
    - an actor: ``entries_actor_commit``, in rowid order, with occurred_at and action in
      the index so a time range or action filter is checked before the row is read;
    - otherwise: the table itself, newest rowid first, stopping after ``limit`` matches.
    """
    single_log = log_ids is not None and len(log_ids) == 1
    params: list[Any] = []
    if flt.text:
        source = "entries_fts f JOIN entries e ON e.rowid = f.rowid"
        position = order = "f.rowid"
        where = ["entries_fts MATCH ?", "+e.project = ?"]
        params += [_fts_match(flt.text), project]
    elif single_log or flt.actor_id is not None or log_ids is not None:
        source, position = "entries e", "e.rowid"
        order = "e.seq" if single_log else position
        where = ["e.project = ?"]
        params.append(project)
    else:
        source, position, order = "entries e", "e.rowid", "e.rowid"
        where = ["+e.project = ?"]
        params.append(project)
    if single_log:
        where.append("e.log_id = ?")
        params.append(log_ids[0] if log_ids else "")
    elif log_ids is not None:
        where.append(f"e.log_id IN ({','.join('?' * len(log_ids))})")
        params.extend(log_ids)
    if after is not None:
        where.append(f"{position} {'<' if descending else '>'} ?")
        params.append(after)
        if order == "e.seq":
            # Within one log seq follows commit order; bounding seq too lets the
            # (project, log_id, seq) index start at the cursor instead of skipping to it.
            where.append(
                f"e.seq {'<' if descending else '>'} coalesce((SELECT c.seq FROM entries c"
                " WHERE c.rowid = ? AND c.project = ? AND c.log_id = ?), ?)"
            )
            params.extend(
                [after, project, log_ids[0] if log_ids else "", 2**63 - 1 if descending else -1]
            )
    _common_conditions(flt, where, params)
    return _QueryPlan(source, " AND ".join(where), tuple(params), position, order)


def _common_conditions(flt: EventFilter, where: list[str], params: list[Any]) -> None:
    def add(sql: str, *values: Any) -> None:
        where.append(sql)
        params.extend(values)

    if flt.actor_id is not None:
        add("e.actor_id = ?", flt.actor_id)
    if flt.actor_type is not None:
        add("coalesce(e.actor_type, 'user') = ?", flt.actor_type)  # read default
    if flt.actor_name is not None:
        add("instr(trailseal_lower(e.actor_name), ?) > 0", flt.actor_name.lower())
    if flt.action is not None:
        add("e.action = ?", flt.action)
    if flt.action_prefix is not None:
        # A range (not LIKE, which folds ASCII case here) keeps the prefix exact; the
        # prefix is ASCII, so bumping its last character bounds it.
        prefix = flt.action_prefix
        add("e.action >= ? AND e.action < ?", prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
    if flt.action_contains is not None:
        add("instr(lower(e.action), ?) > 0", flt.action_contains.lower())
    if flt.resource_type is not None:
        add("e.resource_type = ?", flt.resource_type)
    if flt.resource_id is not None:
        add("e.resource_id = ?", flt.resource_id)
    if flt.target_id is not None:
        add("instr(' ' || e.target_ids || ' ', ?) > 0", f" {flt.target_id} ")
    if flt.outcome is not None:
        add("coalesce(e.outcome, 'success') = ?", flt.outcome)  # read default
    if flt.since is not None:
        add("e.occurred_at >= ?", flt.since)
    if flt.until is not None:
        add("e.occurred_at <= ?", flt.until)
    for tag in flt.tags:
        add("instr(' ' || e.tags || ' ', ?) > 0", f" {tag} ")
