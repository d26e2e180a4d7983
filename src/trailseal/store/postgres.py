"""PostgreSQL driver (psycopg 3 + psycopg-pool). Appends lock the log head row with
``SELECT … FOR UPDATE``, which serializes appends to one log across every server process
while appends to other logs run in parallel (ARCHITECTURE §6, §10). Entries go in with one
``INSERT … SELECT FROM unnest(…)`` per batch: one round trip, one plan, and the tsvector
computed by the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

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

__all__ = ["PostgresStore"]

_LOG_COLUMNS = "project, log_id, organization, origin, size, chain_head, peaks, created_at"
_ENTRY_COLUMNS = "project, log_id, seq, event_id, entry, leaf_hash, chain_hash, content_hash"
_API_KEY_COLUMNS = (
    "key_id, project, key_hash, scopes, organization, name, test, created_at, revoked_at"
)
_RECEIPT_COLUMNS = (
    "project, receipt_id, state, organization, event_ids, created_at, updated_at, log_id, error"
)
_MIGRATION_LOCK = 7_311_002  # pg_advisory_xact_lock key: one migrator at a time

# The project's commit counter row is taken here (and held to COMMIT): it orders commit_seq
# by commit time across the project's logs. The pg_notify wakes the live streams of every
# server process; PostgreSQL delivers it at COMMIT (never for a rollback). One statement:
# each round trip of an append is time the log's row lock is held.
_INSERT_ENTRIES = """
WITH counter AS (
    UPDATE projects SET next_commit = next_commit + %(count)s WHERE project = %(project)s
    RETURNING next_commit - %(count)s AS first, pg_notify('trailseal_commits', project)
)
INSERT INTO entries (project, log_id, seq, event_id, entry, leaf_hash, chain_hash, content_hash,
    received_at, occurred_at, action, actor_id, actor_type, actor_name, resource_type,
    resource_id, target_ids, outcome, tags, search, commit_seq)
SELECT %(project)s, %(log_id)s, u.seq, u.event_id, u.entry, u.leaf_hash, u.chain_hash,
    u.content_hash, u.received_at, u.occurred_at, u.action, u.actor_id, u.actor_type,
    u.actor_name, u.resource_type, u.resource_id, u.target_ids, u.outcome, u.tags,
    to_tsvector('simple', u.body), counter.first + u.ord
FROM counter, unnest(%(seq)b::bigint[], %(event_id)b::text[], %(entry)b::bytea[],
    %(leaf_hash)b::bytea[], %(chain_hash)b::bytea[], %(content_hash)b::bytea[],
    %(received_at)b::text[], %(occurred_at)b::text[], %(action)b::text[], %(actor_id)b::text[],
    %(actor_type)b::text[], %(actor_name)b::text[], %(resource_type)b::text[],
    %(resource_id)b::text[], %(target_ids)b::text[], %(outcome)b::text[], %(tags)b::text[],
    %(body)b::text[])
    WITH ORDINALITY
    AS u(seq, event_id, entry, leaf_hash, chain_hash, content_hash, received_at, occurred_at,
         action, actor_id, actor_type, actor_name, resource_type, resource_id, target_ids,
         outcome, tags, body, ord)
"""

# The names of IndexColumns' members in _INSERT_ENTRIES, in order.
_INDEX_KEYS = (
    "action",
    "actor_id",
    "actor_type",
    "actor_name",
    "resource_type",
    "resource_id",
    "target_ids",
    "outcome",
    "tags",
)


class PostgresStore:
    """The Store protocol on a PostgreSQL database (``TRAILSEAL_DATABASE_URL``)."""

    kind = "postgresql"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 16) -> None:
        self.dsn = dsn
        self._pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=True,
            # Single-statement reads run in autocommit (one round trip, not BEGIN/COMMIT
            # around it); every write goes through _tx, an explicit transaction.
            kwargs={"autocommit": True},
            name="trailseal",
        )

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self._pool.close()

    def migrate(self) -> None:
        migrations = load_migrations("postgres")
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)"
            )
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            current = (row[0] if row else None) or 0
            newest = migrations[-1][0] if migrations else 0
            if current > newest:
                raise SchemaError(
                    f"database schema v{current} is newer than this trailseal (v{newest})"
                )
            for version, sql in migrations:
                if version > current:
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))

    # -- projects and keys -----------------------------------------------------------------
    def create_project(self, row: ProjectRow) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO projects VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (row.project, row.created_at, row.retention_days, row.monthly_event_limit),
            )
            return cur.rowcount == 1

    def get_project(self, project: str) -> ProjectRow | None:
        row = self._one(
            "SELECT project, created_at, retention_days, monthly_event_limit FROM projects"
            " WHERE project = %s",
            (project,),
        )
        return ProjectRow(*row) if row else None

    def list_projects(self) -> list[ProjectRow]:
        rows = self._all(
            "SELECT project, created_at, retention_days, monthly_event_limit FROM projects"
            " ORDER BY project"
        )
        return [ProjectRow(*row) for row in rows]

    def add_signing_key(self, row: SigningKeyRow) -> SigningKeyRow:
        with self._tx() as conn:
            # Lock the project row so two starting servers cannot both add a first key.
            conn.execute("SELECT 1 FROM projects WHERE project = %s FOR UPDATE", (row.project,))
            existing = conn.execute(
                "SELECT project, key_id, public_key, private_sealed, created_at"
                " FROM signing_keys WHERE project = %s ORDER BY created_at, key_id LIMIT 1",
                (row.project,),
            ).fetchone()
            if existing:
                project, key_id, public, sealed, created = existing
                return SigningKeyRow(project, key_id, bytes(public), bytes(sealed), created)
            conn.execute(
                "INSERT INTO signing_keys VALUES (%s, %s, %s, %s, %s)",
                (row.project, row.key_id, row.public_key, row.private_sealed, row.created_at),
            )
            return row

    def signing_keys(self, project: str) -> list[SigningKeyRow]:
        rows = self._all(
            "SELECT project, key_id, public_key, private_sealed, created_at FROM signing_keys"
            " WHERE project = %s ORDER BY created_at, key_id",
            (project,),
        )
        return [SigningKeyRow(p, k, bytes(pub), bytes(sealed), c) for p, k, pub, sealed, c in rows]

    def create_api_key(self, row: ApiKeyRow) -> None:
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO api_keys ({_API_KEY_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                api_key_params(row),
            )

    def create_first_api_key(self, row: ApiKeyRow) -> bool:
        with self._tx() as conn:
            conn.execute("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
            if conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone():
                return False
            conn.execute(
                f"INSERT INTO api_keys ({_API_KEY_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                api_key_params(row),
            )
            return True

    def find_api_key(self, key_hash: bytes) -> ApiKeyRow | None:
        row = self._one(f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE key_hash = %s", (key_hash,))
        return api_key_from_row(row) if row else None

    def list_api_keys(self, project: str) -> list[ApiKeyRow]:
        rows = self._all(
            f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE project = %s ORDER BY created_at",
            (project,),
        )
        return [api_key_from_row(row) for row in rows]

    def revoke_api_key(self, project: str, key_id: str, when: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE project = %s AND key_id = %s"
                " AND revoked_at IS NULL",
                (when, project, key_id),
            )
            return cur.rowcount == 1

    def count_api_keys(self) -> int:
        return int(self._one("SELECT count(*) FROM api_keys")[0])

    # -- logs ------------------------------------------------------------------------------
    def get_or_create_log(
        self, project: str, organization: str, *, log_id: str, origin: str, now: str
    ) -> LogHead:
        found = self.find_log(project, organization)
        if found:
            return found
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO logs (project, log_id, organization, origin, size, chain_head,"
                " peaks, created_at) VALUES (%s, %s, %s, %s, 0, %s, '\\x', %s)"
                " ON CONFLICT DO NOTHING",
                (project, log_id, organization, origin, bytes(32), now),
            )
        found = self.find_log(project, organization)
        assert found is not None
        return found

    def find_log(self, project: str, organization: str) -> LogHead | None:
        row = self._one(
            f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = %s AND organization = %s"
            " AND deleted_at IS NULL",
            (project, organization),
        )
        return log_head_from_row(row) if row else None

    def get_log(self, project: str, log_id: str) -> LogHead | None:
        row = self._one(
            f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = %s AND log_id = %s",
            (project, log_id),
        )
        return log_head_from_row(row) if row else None

    def list_logs(self, project: str) -> list[LogHead]:
        rows = self._all(
            f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = %s AND deleted_at IS NULL"
            " ORDER BY organization",
            (project,),
        )
        return [log_head_from_row(row) for row in rows]

    def delete_log(self, project: str, organization: str, when: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE logs SET deleted_at = %s WHERE project = %s AND organization = %s"
                " AND deleted_at IS NULL",
                (when, project, organization),
            )
            return cur.rowcount == 1

    # -- appends ---------------------------------------------------------------------------
    @contextmanager
    def append(self, project: str, log_id: str) -> Iterator[_PostgresAppend]:
        with self.append_logs() as logs:
            yield logs.append(project, log_id)

    @contextmanager
    def append_logs(self) -> Iterator[_PostgresLogAppends]:
        with self._tx() as conn:
            logs = _PostgresLogAppends(conn)
            yield logs
            logs.flush()

    # -- reads -----------------------------------------------------------------------------
    def get_entry(self, project: str, log_id: str, seq: int) -> StoredEntry | None:
        row = self._one(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE project = %s AND log_id = %s AND seq = %s",
            (project, log_id, seq),
        )
        return stored_entry_from_row(row) if row else None

    def get_entry_by_id(self, project: str, event_id: str) -> StoredEntry | None:
        row = self._one(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE project = %s AND event_id = %s",
            (project, event_id),
        )
        return stored_entry_from_row(row) if row else None

    def find_ids(self, project: str, event_ids: Sequence[str]) -> dict[str, IdRecord]:
        with self._tx() as conn:
            return _find_ids(conn, project, event_ids)

    def iter_entries(
        self, project: str, log_id: str, start: int, end: int, *, page: int = 5000
    ) -> Iterator[StoredEntry]:
        position = start
        while position < end:
            rows = self._all(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE project = %s AND log_id = %s"
                " AND seq >= %s AND seq < %s ORDER BY seq",
                (project, log_id, position, min(end, position + page)),
            )
            if not rows:
                return
            for row in rows:
                yield stored_entry_from_row(row)
            position = int(rows[-1][2]) + 1

    def read_tiles(
        self, project: str, log_id: str, keys: Sequence[TileKey]
    ) -> dict[TileKey, bytes]:
        with self._tx() as conn:
            return _read_tiles(conn, project, log_id, keys)

    def get_checkpoint(self, project: str, log_id: str, size: int) -> CheckpointRow | None:
        row = self._one(
            "SELECT log_id, size, root_hash, note, created_at FROM checkpoints"
            " WHERE project = %s AND log_id = %s AND size = %s",
            (project, log_id, size),
        )
        return checkpoint_from_row(row) if row else None

    def latest_checkpoint(self, project: str, log_id: str) -> CheckpointRow | None:
        row = self._one(
            "SELECT log_id, size, root_hash, note, created_at FROM checkpoints"
            " WHERE project = %s AND log_id = %s ORDER BY size DESC LIMIT 1",
            (project, log_id),
        )
        return checkpoint_from_row(row) if row else None

    def list_checkpoints(self, project: str, log_id: str) -> list[CheckpointRow]:
        rows = self._all(
            "SELECT log_id, size, root_hash, note, created_at FROM checkpoints"
            " WHERE project = %s AND log_id = %s ORDER BY size",
            (project, log_id),
        )
        return [checkpoint_from_row(row) for row in rows]

    def redact_entry(self, project: str, log_id: str, seq: int) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE entries SET entry = NULL, search = NULL, actor_name = NULL,"
                " target_ids = NULL, tags = NULL"
                " WHERE project = %s AND log_id = %s AND seq = %s AND entry IS NOT NULL",
                (project, log_id, seq),
            )
            return cur.rowcount == 1

    def usage(self, project: str, month: str) -> int:
        row = self._one(
            "SELECT events FROM usage_counters WHERE project = %s AND month = %s",
            (project, month),
        )
        return int(row[0]) if row else 0

    # -- receipts and intake ---------------------------------------------------------------
    def put_intake(self, receipt: ReceiptRow, events: bytes) -> IntakeRow:
        with self._tx() as conn:
            _put_receipts(conn, [receipt])
            row = conn.execute(
                "INSERT INTO intake (project, organization, receipt_id, received_at, events)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING intake_id",
                (
                    receipt.project,
                    receipt.organization,
                    receipt.receipt_id,
                    receipt.created_at,
                    events,
                ),
            ).fetchone()
        assert row is not None
        return IntakeRow(
            int(row[0]),
            receipt.project,
            receipt.organization,
            receipt.receipt_id,
            receipt.created_at,
            events,
        )

    def pending_intake(self, limit: int) -> list[IntakeRow]:
        rows = self._all(
            "SELECT intake_id, project, organization, receipt_id, received_at, events"
            " FROM intake ORDER BY intake_id LIMIT %s",
            (limit,),
        )
        return [IntakeRow(int(i), p, o, r, t, bytes(e)) for i, p, o, r, t, e in rows]

    def get_receipt(self, project: str, receipt_id: str) -> ReceiptRow | None:
        row = self._one(
            f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE project = %s AND receipt_id = %s",
            (project, receipt_id),
        )
        return receipt_from_row(row) if row else None

    def put_receipt(self, receipt: ReceiptRow) -> None:
        with self._tx() as conn:
            _put_receipts(conn, [receipt])

    def fail_receipt(self, project: str, receipt_id: str, error: str, when: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE receipts SET state = 'failed', error = %s, updated_at = %s"
                " WHERE project = %s AND receipt_id = %s",
                (error, when, project, receipt_id),
            )
            conn.execute(
                "DELETE FROM intake WHERE project = %s AND receipt_id = %s",
                (project, receipt_id),
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
        where, params, order = _pg_plan(project, flt, log_ids, after, descending)
        direction = "DESC" if descending else "ASC"
        inner, outer = f"{order} {direction}", f"e.commit_seq {direction}"
        if sort == "occurred":
            # Stored timestamps are fixed-width ASCII: "C" byte order is time order.
            inner, outer = (
                f'{t}.occurred_at COLLATE "C" {direction}, {t}.commit_seq {direction}'
                for t in ("k", "e")
            )
        # Two levels: the inner query finds one page of positions, which an index can
        # often do alone (entries_actor_commit covers actor + time range + action, the
        # budgeted shape); the outer one reads just those rows through entries_commit.
        sql = (
            "SELECT e.commit_seq, e.project, e.log_id, e.seq, e.event_id, e.entry,"
            " e.leaf_hash, e.chain_hash, e.content_hash FROM entries e"
            " WHERE e.project = %s AND e.commit_seq IN (SELECT k.commit_seq FROM entries k"
            f" WHERE {where} ORDER BY {inner} LIMIT %s OFFSET %s)"
            f" ORDER BY {outer}"
        )
        with self._tx() as conn:
            # Unprepared: a cached generic plan would ignore which actor, term or range
            # this is, and the right plan depends on exactly that.
            rows = conn.execute(
                sql, (project, *params, max(0, limit), max(0, offset)), prepare=False
            ).fetchall()
        return [(int(row[0]), stored_entry_from_row(row[1:])) for row in rows]

    def count_entries(
        self, project: str, flt: EventFilter, *, log_ids: Sequence[str] | None
    ) -> int:
        if log_ids is not None and not log_ids:
            return 0
        where, params, _ = _pg_plan(project, flt, log_ids, None, True)
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT count(*) FROM entries k WHERE {where}", params, prepare=False
            ).fetchone()
        return int(row[0]) if row else 0


class _PostgresLogAppends:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._current: _PostgresAppend | None = None

    def append(self, project: str, log_id: str) -> _PostgresAppend:
        self.flush()  # the previous log's deferred writes go first, in order
        row = self._conn.execute(
            f"SELECT {_LOG_COLUMNS} FROM logs WHERE project = %s AND log_id = %s FOR UPDATE",
            (project, log_id),
        ).fetchone()
        if row is None:
            raise KeyError(f"no log {log_id!r} in project {project!r}")
        self._current = _PostgresAppend(self._conn, log_head_from_row(row))
        return self._current

    def flush(self) -> None:
        if self._current is not None:
            self._current._flush()


class _PostgresAppend:
    """The AppendTransaction of PostgresStore; holds the log head row lock."""

    def __init__(self, conn: psycopg.Connection[Any], head: LogHead) -> None:
        self._conn = conn
        self._head = head
        self._pending: list[tuple[str, Sequence[Any]]] = []

    @property
    def head(self) -> LogHead:
        return self._head

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, IdRecord]:
        self._flush()
        return _find_ids(self._conn, self._head.project, event_ids)

    def insert_entries(self, entries: Sequence[NewEntry] | NewEntries) -> None:
        batch = NewEntries.of(entries)
        count = len(batch)
        # The index columns transposed: one list per column (nine empty ones for none).
        index = [list(column) for column in zip(*batch.index_columns, strict=True)]
        index = index or [[] for _ in _INDEX_KEYS]
        params: dict[str, Any] = {
            "count": count,
            "project": self._head.project,
            "log_id": self._head.log_id,
            "seq": list(batch.seqs),
            "event_id": list(batch.event_ids),
            "entry": list(batch.entries),
            "leaf_hash": list(batch.leaf_hashes),
            "chain_hash": list(batch.chain_hashes),
            "content_hash": list(batch.content_hashes),
            "received_at": list(batch.received_at),
            "occurred_at": list(batch.occurred_at),
            **dict(zip(_INDEX_KEYS, index, strict=True)),
            "body": list(batch.search_texts),
        }
        self._flush()
        conn = self._conn
        try:
            # A savepoint, so a duplicate writes nothing and leaves the lock held; in one
            # round trip with the statement (pipeline mode).
            with conn.pipeline(), conn.transaction():
                cursor = conn.execute(_INSERT_ENTRIES, params)
        except pg_errors.UniqueViolation as exc:
            raise DuplicateIdError(str(exc)) from exc
        if cursor.rowcount != count:
            raise KeyError(f"no project {self._head.project!r}")

    def read_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, bytes]:
        self._flush()
        return _read_tiles(self._conn, self._head.project, self._head.log_id, keys)

    # The writes below return nothing and nothing in the transaction reads them back
    # before the end, so they are sent together in one round trip (:meth:`_flush`).
    def put_tiles(self, tiles: dict[TileKey, bytes]) -> None:
        if not tiles:
            return
        keys = list(tiles)
        self._pending.append(
            (
                "INSERT INTO tiles SELECT %s, %s, t.level, t.idx, t.hashes"
                " FROM unnest(%s::integer[], %s::bigint[], %s::bytea[]) AS t(level, idx, hashes)"
                " ON CONFLICT (project, log_id, level, idx) DO UPDATE SET hashes = excluded.hashes",
                (
                    self._head.project,
                    self._head.log_id,
                    [level for level, _ in keys],
                    [index for _, index in keys],
                    [tiles[key] for key in keys],
                ),
            )
        )

    def put_checkpoint(self, checkpoint: CheckpointRow) -> None:
        self._pending.append(
            (
                "INSERT INTO checkpoints VALUES (%s, %s, %s, %s, %s, %s)",
                checkpoint_params(self._head.project, checkpoint),
            )
        )

    def set_head(self, *, size: int, chain_head: bytes, peaks: bytes) -> None:
        self._pending.append(
            (
                "UPDATE logs SET size = %s, chain_head = %s, peaks = %s"
                " WHERE project = %s AND log_id = %s",
                (size, chain_head, peaks, self._head.project, self._head.log_id),
            )
        )

    def add_usage(self, month: str, events: int) -> None:
        self._pending.append(
            (
                "INSERT INTO usage_counters VALUES (%s, %s, %s) ON CONFLICT (project, month)"
                " DO UPDATE SET events = usage_counters.events + excluded.events",
                (self._head.project, month, events),
            )
        )

    def _flush(self) -> None:
        """Send the deferred writes, in order, in one round trip."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self._conn.pipeline():
            for sql, params in pending:
                self._conn.execute(sql, params)

    def read_state(self, facade: str) -> bytes | None:
        self._flush()
        row = self._conn.execute(
            "SELECT state FROM log_state WHERE project = %s AND log_id = %s AND facade = %s",
            (self._head.project, self._head.log_id, facade),
        ).fetchone()
        return bytes(row[0]) if row else None

    def write_state(self, facade: str, state: bytes) -> None:
        self._flush()
        self._conn.execute(
            "INSERT INTO log_state VALUES (%s, %s, %s, %s) ON CONFLICT (project, log_id, facade)"
            " DO UPDATE SET state = excluded.state",
            (self._head.project, self._head.log_id, facade, state),
        )

    def put_receipts(self, receipts: Sequence[ReceiptRow]) -> None:
        self._flush()
        _put_receipts(self._conn, receipts)

    def delete_intake(self, intake_ids: Sequence[int]) -> None:
        self._flush()
        if intake_ids:
            self._conn.execute("DELETE FROM intake WHERE intake_id = ANY(%s)", (list(intake_ids),))


def _find_ids(
    conn: psycopg.Connection[Any], project: str, event_ids: Sequence[str]
) -> dict[str, IdRecord]:
    if not event_ids:
        return {}
    rows = conn.execute(
        "SELECT event_id, log_id, seq, content_hash FROM entries"
        " WHERE project = %s AND event_id = ANY(%s)",
        (project, list(event_ids)),
    ).fetchall()
    return {eid: IdRecord(log_id, int(seq), bytes(content)) for eid, log_id, seq, content in rows}


def _read_tiles(
    conn: psycopg.Connection[Any], project: str, log_id: str, keys: Sequence[TileKey]
) -> dict[TileKey, bytes]:
    if not keys:
        return {}
    # One index probe per key: a plain join lets the planner scan the whole log's tiles
    # when statistics are stale; LIMIT 1 keeps the lateral subquery from being flattened.
    rows = conn.execute(
        "SELECT k.level, k.idx, t.hashes"
        " FROM unnest(%s::integer[], %s::bigint[]) AS k(level, idx)"
        " CROSS JOIN LATERAL (SELECT hashes FROM tiles WHERE project = %s AND log_id = %s"
        " AND level = k.level AND idx = k.idx LIMIT 1) AS t",
        ([k[0] for k in keys], [k[1] for k in keys], project, log_id),
    ).fetchall()
    return {(int(level), int(idx)): bytes(data) for level, idx, data in rows}


def _put_receipts(conn: psycopg.Connection[Any], receipts: Sequence[ReceiptRow]) -> None:
    if not receipts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO receipts ({_RECEIPT_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (project, receipt_id) DO UPDATE SET state = excluded.state,"
            " log_id = excluded.log_id, error = excluded.error, updated_at = excluded.updated_at",
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
        )


# -- filtered queries ---------------------------------------------------------------------
# Positions are entries.commit_seq: the project-wide commit order (assigned under the
# project's counter row lock), so keyset pagination never skips or repeats an entry that
# commits while a client pages, whichever log it lands in.

_WORDS = re.compile(r"[^\W_]+")


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for "starts with ``prefix``": ``\\``, ``%`` and ``_`` in user input
    are escaped, so they match themselves (``_`` is common in actions)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _pg_plan(
    project: str,
    flt: EventFilter,
    log_ids: Sequence[str] | None,
    after: int | None,
    descending: bool,
) -> tuple[str, tuple[Any, ...], str]:
    """WHERE clause over ``entries k``, its parameters, and the ORDER BY column."""
    where = ["k.project = %s"]
    params: list[Any] = [project]

    def add(sql: str, *values: Any) -> None:
        where.append(sql)
        params.extend(values)

    single_log = log_ids is not None and len(log_ids) == 1
    # Within one log seq follows commit order, and the primary key is in seq order.
    order = "k.seq" if single_log else "k.commit_seq"
    if single_log:
        add("k.log_id = %s", log_ids[0] if log_ids else "")  # '= ANY' would not keep order
    elif log_ids is not None:
        add("k.log_id = ANY(%s)", list(log_ids))
    if after is not None:
        op = "<" if descending else ">"
        add(f"k.commit_seq {op} %s", after)
        if single_log:
            # Bounding seq too lets the primary key start at the cursor instead of
            # skipping to it.
            add(
                f"k.seq {op} coalesce((SELECT c.seq FROM entries c WHERE c.project = %s"
                " AND c.commit_seq = %s AND c.log_id = %s), %s)",
                project,
                after,
                log_ids[0] if log_ids else "",
                2**63 - 1 if descending else -1,
            )
    if flt.actor_id is not None:
        add("k.actor_id = %s", flt.actor_id)
    if flt.actor_type is not None:
        add("coalesce(k.actor_type, 'user') = %s", flt.actor_type)  # read default
    if flt.actor_name is not None:
        add("strpos(lower(k.actor_name), lower(%s)) > 0", flt.actor_name)
    if flt.action is not None:
        add("k.action = %s", flt.action)
    if flt.action_prefix is not None:
        add("k.action LIKE %s", _like_prefix(flt.action_prefix))
    if flt.action_contains is not None:
        add("strpos(lower(k.action), lower(%s)) > 0", flt.action_contains)
    if flt.resource_type is not None:
        add("k.resource_type = %s", flt.resource_type)
    if flt.resource_id is not None:
        add("k.resource_id = %s", flt.resource_id)
    if flt.target_id is not None:
        add("strpos(' ' || k.target_ids || ' ', %s) > 0", f" {flt.target_id} ")
    if flt.outcome is not None:
        add("coalesce(k.outcome, 'success') = %s", flt.outcome)  # read default
    # Stored timestamps are fixed-width ASCII: byte order is time order, and the "C"
    # collation compares bytes (cheaper than a locale's rules, same answer).
    if flt.since is not None:
        add('k.occurred_at >= %s COLLATE "C"', flt.since)
    if flt.until is not None:
        add('k.occurred_at <= %s COLLATE "C"', flt.until)
    for tag in flt.tags:
        add("strpos(' ' || k.tags || ' ', %s) > 0", f" {tag} ")
    for term in flt.text:
        # The same rule as SQLite's FTS5 string: the term's words, adjacent and in order.
        # 'simple' keeps some compounds whole (hosts, emails, versions: 'invoice.paid'), so
        # a term with punctuation is also tried as typed. Neither function reads operators.
        words = " ".join(_WORDS.findall(term))
        if words == " ".join(term.split()):
            add("k.search @@ phraseto_tsquery('simple', %s)", words)
        else:
            add(
                "k.search @@ (phraseto_tsquery('simple', %s) || phraseto_tsquery('simple', %s))",
                words,
                term,
            )
    return " AND ".join(where), tuple(params), order
