"""Append-path benchmark: tamper-evidence overhead, inclusion proofs, log creation.

Run ``.venv/bin/python benchmarks/bench_append.py [--quick] [--json] [--driver D]`` with D
one of ``sqlite``, ``postgres``, ``both`` (default); ``--parts 1,2,3`` picks parts and
``--profile`` adds a profile (below). Everything is seeded (``--seed``); the full run takes
about 8-12 minutes on the 2-core machine (parts 2 and 3 dominate), ``--quick`` under one.
The table goes to stdout; with ``--json`` stdout carries one JSON document instead (the
table then goes to stderr). Progress lines always go to stderr. PostgreSQL is a throwaway
PostgreSQL 15 cluster started with ``tests/pgserver.py`` in durable mode (fsync and
synchronous_commit on); SQLite is a file in a temporary directory, opened by the store
(WAL, synchronous=FULL).

What is measured, per driver (ARCHITECTURE §11 budgets):

1. **Tamper-evidence overhead** (budget: ledger ≥ 0.8 × plain INSERT). Realistic audit
   events (300-600 bytes canonical, time-ordered UUIDv7 ids from ``IdGenerator``, as the
   SDK sends them) are generated and *prepared* (validated, normalized, canonicalized,
   index columns and search text derived, ``prepare_incoming``) **outside** the timed
   sections, in batches of 1000. Then, side by side in the same process, the same
   database and the same ``entries`` table (another project, so ids do not collide):

   - *ledger*: ``ledger.append(project, org, batch).result()`` — timed from the call
     until the future resolves: log lookup, hand-off to the sequencer thread, id lookup,
     entry bytes, leaf and chain hashes, entries (and SQLite's ``entries_fts``) insert,
     Merkle tree and tiles, signed checkpoint with cosignature, head update, durable
     COMMIT.
   - *plain INSERT*: the very rows the ledger writes (same columns, entry bytes, hashes,
     index columns and search text, precomputed untimed) inserted with one
     ``executemany`` per batch in one durable transaction: on SQLite into ``entries`` and
     ``entries_fts``; on PostgreSQL into ``entries`` with the tsvector computed by the
     server (``to_tsvector('simple', …)``) as the driver does, ``commit_seq``
     precomputed. This is the budget's baseline. On PostgreSQL a second, informative
     baseline runs the driver's own statement shape (one ``INSERT … SELECT FROM
     unnest(arrays)`` per batch) on the same rows.

   Batches alternate A/B, B/A so table growth, WAL checkpoints and noise fall on both
   sides alike; rates are events over the summed time of each side's batches, and the
   per-event overhead is the difference of the two costs. One untimed warm-up batch per
   side precedes the timed rounds. The run stops early (time bound) after at least 10
   rounds if it overruns.

2. **Inclusion proofs** (budget: ≤ 2 ms) at 1k, 100k, 1M and 10M entries on SQLite (1k,
   100k and 1M on PostgreSQL): ``Ledger.inclusion_proof`` reads only tiles, so these
   logs are *synthetic*: leaf hashes ``SHA-256(seed ‖ index)`` are folded with
   ``CompactRange.append`` and the tiles of ``tile_updates`` are written through the
   store's own append transaction (``put_tiles``, ``set_head``); no entries exist. Random
   indices at the full size; p50/p99 of the call's wall time. *Warm*: one ledger and
   store throughout (its tile cache holds full tiles it has read). *Cold-ish*: each
   sample on a fresh store and ledger (new connection, empty tile cache), connected
   before the clock starts; the database's own caches and the OS page cache stay warm.
   *CPU*: the warm proofs' CPU time in the calling thread (``time.thread_time``), which
   waiting for a core on a loaded machine does not inflate (on PostgreSQL it leaves out
   the server's share). Sampled proofs are verified against the root. Also measured: the
   real log of part 1, and as a reference a raw single-tile SELECT on a plain connection,
   interleaved with the warm proofs, whose p99 shows how much of a proof's p99 is this
   machine's scheduling noise. The verdict judges the warm wall-clock p99.

3. **Creating organization logs**: ``ledger.log_for(project, org)`` for 100,000 new
   organizations (the server's path for an organization's first event: lookup, durable
   insert of the log row, derivation of the log's signing keys) from 4 threads, as
   concurrent first events would, on a fresh database, in a child process so its RSS
   growth is its own: seconds, logs/s, database growth (MB, bytes per log) and RSS
   growth. Time-bounded: if the bound is hit, the time for all logs is extrapolated and
   the table says so.

``--profile`` adds a cProfile run of the append loop. The sequencer commits in a worker
thread, which cProfile does not follow, so the profile runs the sequencer's commit path
in the main thread instead: ``Store.append`` plus ``integrate`` with the log's signer.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import hashlib
import io
import itertools
import json
import math
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.pgserver: the throwaway PostgreSQL server

import psycopg  # noqa: E402
from tests.pgserver import PostgresServer, start_postgres  # noqa: E402

from trailseal.core.entry import entry_bytes_from_canonical  # noqa: E402
from trailseal.core.hashing import ZERO_HASH, chain_hash, leaf_hash  # noqa: E402
from trailseal.core.ids import IdGenerator, new_log_id, origin_for  # noqa: E402
from trailseal.core.merkle import CompactRange, verify_inclusion  # noqa: E402
from trailseal.core.schema import format_timestamp  # noqa: E402
from trailseal.core.tiles import tile_updates  # noqa: E402
from trailseal.ledger.integrate import integrate  # noqa: E402
from trailseal.ledger.prepare import PreparedEvent, prepare_incoming  # noqa: E402
from trailseal.ledger.service import Ledger, LedgerConfig  # noqa: E402
from trailseal.store.base import LogHead, ProjectRow, Store  # noqa: E402
from trailseal.store.postgres import PostgresStore  # noqa: E402
from trailseal.store.sqlite import SQLiteStore  # noqa: E402

MASTER_KEY = bytes(range(32))
HOST_NAME = "bench.local"
PROJECT = "bench"
BASELINE_PROJECT = "baseline"
ORGANIZATION = "org_acme"
BATCH = 1000
RATIO_BUDGET = 0.8
PROOF_BUDGET_MS = 2.0
CREATED_AT = "2026-11-23T00:00:00.000000Z"
_EPOCH_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


# --- output ----------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[bench_append {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)

    def fmt(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [
                str(first).ljust(widths[0]),
                *(str(c).rjust(w) for c, w in zip(rest, widths[1:], strict=True)),
            ]
        )

    return "\n".join([title, fmt(header), line, *(fmt(r) for r in rows)])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(q / 100 * len(sorted_values)))) - 1
    return sorted_values[rank]


# --- events ----------------------------------------------------------------------------

_ACTIONS = (
    "invoice.created",
    "invoice.paid",
    "invoice.voided",
    "user.login",
    "user.logout",
    "user.invited",
    "user.password_changed",
    "document.viewed",
    "document.shared",
    "document.deleted",
    "role.granted",
    "api_key.created",
    "settings.updated",
    "export.requested",
)
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus", "Margaret")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman")
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Mozilla/5.0 (Macintosh) Safari/605.1.15",
    "acme-cli/2.4.1 httpx/0.27",
)


class EventSource:
    """Seeded, realistic audit events as an SDK sends them: time-ordered UUIDv7 ids
    (``IdGenerator`` on a simulated clock), ``occurred_at`` from the same clock."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._ms = _EPOCH_MS
        self._ids = IdGenerator(lambda: self._ms, self._rng.randbytes)

    def batch(self, count: int) -> list[dict[str, Any]]:
        return [self._event() for _ in range(count)]

    def _event(self) -> dict[str, Any]:
        rng = self._rng
        self._ms += rng.randrange(3)
        action = rng.choice(_ACTIONS)
        kind = action.split(".", 1)[0]
        user = rng.randrange(20_000)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        event: dict[str, Any] = {
            "id": self._ids.next(),
            "action": action,
            "occurred_at": format_timestamp(datetime.fromtimestamp(self._ms / 1000, UTC)),
            "organization_id": ORGANIZATION,
            "actor": {
                "id": f"user_{user:05d}",
                "type": "user",
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}{user}@acme.example",
            },
            "resource": {"type": kind, "id": f"{kind}_{rng.randrange(16**10):010x}"},
            "context": {
                "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                "user_agent": rng.choice(_AGENTS),
                "request_id": f"req_{rng.randrange(16**12):012x}",
            },
        }
        if rng.random() < 0.6:
            event["metadata"] = {
                "plan": rng.choice(("free", "team", "enterprise")),
                "amount": rng.randrange(100_000),
                "currency": "EUR",
            }
        if rng.random() < 0.4:
            event["message"] = f"{action.replace('.', ' ')} by {first} {last}"
        if rng.random() < 0.25:
            event["targets"] = [{"type": "user", "id": f"user_{rng.randrange(20_000):05d}"}]
        if rng.random() < 0.25:
            event["tags"] = rng.sample(("billing", "security", "web", "api", "admin"), 2)
        if rng.random() < 0.05:
            event["outcome"] = "failure"
        return event


def prepare_batch(raws: Sequence[dict[str, Any]], now: datetime) -> list[PreparedEvent]:
    def no_id() -> str:
        raise AssertionError("every benchmark event carries its id")

    return [prepare_incoming(raw, now=now, new_id=no_id) for raw in raws]


# --- the plain-INSERT baselines --------------------------------------------------------

_ENTRY_COLUMNS = (
    "project, log_id, seq, event_id, entry, leaf_hash, chain_hash, content_hash, received_at,"
    " occurred_at, action, actor_id, actor_type, actor_name, resource_type, resource_id,"
    " target_ids, outcome, tags"
)
_SQLITE_INSERT = f"INSERT INTO entries (rowid, {_ENTRY_COLUMNS}) VALUES ({', '.join(['?'] * 20)})"
_SQLITE_FTS_INSERT = "INSERT INTO entries_fts (rowid, body) VALUES (?, ?)"
_PG_INSERT = (
    f"INSERT INTO entries ({_ENTRY_COLUMNS}, search, commit_seq)"
    f" VALUES ({', '.join(['%s'] * 19)}, to_tsvector('simple', %s), %s)"
)
_PG_UNNEST_INSERT = f"""
INSERT INTO entries ({_ENTRY_COLUMNS}, search, commit_seq)
SELECT %(project)s, %(log_id)s, u.seq, u.event_id, u.entry, u.leaf_hash, u.chain_hash,
    u.content_hash, u.received_at, u.occurred_at, u.action, u.actor_id, u.actor_type,
    u.actor_name, u.resource_type, u.resource_id, u.target_ids, u.outcome, u.tags,
    to_tsvector('simple', u.body), u.commit_seq
FROM unnest(%(seq)s::bigint[], %(event_id)s::text[], %(entry)s::bytea[], %(leaf)s::bytea[],
    %(chain)s::bytea[], %(content)s::bytea[], %(received_at)s::text[],
    %(occurred_at)s::text[], %(action)s::text[], %(actor_id)s::text[], %(actor_type)s::text[],
    %(actor_name)s::text[], %(resource_type)s::text[], %(resource_id)s::text[],
    %(target_ids)s::text[], %(outcome)s::text[], %(tags)s::text[], %(body)s::text[],
    %(commit_seq)s::bigint[])
    AS u(seq, event_id, entry, leaf_hash, chain_hash, content_hash, received_at, occurred_at,
         action, actor_id, actor_type, actor_name, resource_type, resource_id, target_ids,
         outcome, tags, body, commit_seq)
"""
_UNNEST_KEYS = (
    "seq",
    "event_id",
    "entry",
    "leaf",
    "chain",
    "content",
    "received_at",
    "occurred_at",
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


class ShadowLog:
    """Builds, untimed, the exact rows the ledger writes for a batch (entry bytes, leaf
    and chain hashes, index columns, search text) for a log of its own."""

    def __init__(self, project: str, log_id: str) -> None:
        self.project = project
        self.log_id = log_id
        self.origin = origin_for(HOST_NAME, log_id)
        self.size = 0
        self.chain = ZERO_HASH

    def rows(self, events: Sequence[PreparedEvent], received_at: str) -> list[tuple[Any, ...]]:
        """``(project, log_id, seq, event_id, entry, leaf, chain, content_hash, received_at,
        occurred_at, *index columns, search_text)`` per event."""
        out = []
        for event in events:
            data = entry_bytes_from_canonical(
                origin=self.origin,
                seq=self.size,
                received_at=received_at,
                event=event.canonical,
                ext=event.ext,
            )
            leaf = leaf_hash(data)
            self.chain = chain_hash(self.chain, leaf)
            out.append(
                (
                    self.project,
                    self.log_id,
                    self.size,
                    event.event_id,
                    data,
                    leaf,
                    self.chain,
                    event.content_hash,
                    received_at,
                    event.occurred_at,
                    *event.columns,
                    event.search_text,
                )
            )
            self.size += 1
        return out


class Baseline:
    """One plain-INSERT variant: ``params`` shapes precomputed rows (untimed), ``insert``
    writes them in one durable transaction (timed)."""

    name: str

    def params(self, rows: list[tuple[Any, ...]]) -> Any:
        raise NotImplementedError

    def insert(self, params: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SQLiteExecutemany(Baseline):
    """``executemany`` into ``entries`` and ``entries_fts`` (SQLite's full-text index is a
    separate table the ledger fills in the same transaction), on a connection with the
    store's own settings (WAL, synchronous=FULL, 64 MiB cache)."""

    name = "plain INSERT (executemany)"

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "busy_timeout = 60000",
            "journal_mode = WAL",
            "synchronous = FULL",
            "foreign_keys = ON",
            "cache_size = -65536",
        ):
            self._conn.execute(f"PRAGMA {pragma}")

    def params(self, rows: list[tuple[Any, ...]]) -> Any:
        return rows

    def insert(self, params: Any) -> None:
        rows: list[tuple[Any, ...]] = params
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            first = conn.execute("SELECT coalesce(max(rowid), 0) FROM entries").fetchone()[0] + 1
            conn.executemany(_SQLITE_INSERT, [(first + n, *row[:-1]) for n, row in enumerate(rows)])
            conn.executemany(
                _SQLITE_FTS_INSERT, [(first + n, row[-1]) for n, row in enumerate(rows)]
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class PostgresExecutemany(Baseline):
    """``executemany`` (psycopg 3 pipelines it) of one INSERT per row, the tsvector
    computed by the server as in the driver; ``commit_seq`` precomputed."""

    name = "plain INSERT (executemany)"

    def __init__(self, dsn: str, first_commit: int) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._commit = first_commit

    def params(self, rows: list[tuple[Any, ...]]) -> Any:
        out = [(*row, self._commit + n) for n, row in enumerate(rows)]
        self._commit += len(rows)
        return out

    def insert(self, params: Any) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(_PG_INSERT, params)

    def close(self) -> None:
        self._conn.close()


class PostgresUnnest(Baseline):
    """The driver's statement shape: one ``INSERT … SELECT FROM unnest(arrays)``."""

    name = "plain INSERT (unnest, 1 stmt)"

    def __init__(self, dsn: str, first_commit: int) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._commit = first_commit

    def params(self, rows: list[tuple[Any, ...]]) -> Any:
        columns = list(zip(*rows, strict=True))
        params: dict[str, Any] = {"project": rows[0][0], "log_id": rows[0][1]}
        params.update((key, list(columns[n + 2])) for n, key in enumerate(_UNNEST_KEYS))
        params["body"] = list(columns[-1])
        params["commit_seq"] = list(range(self._commit, self._commit + len(rows)))
        self._commit += len(rows)
        return params

    def insert(self, params: Any) -> None:
        with self._conn.transaction():
            self._conn.execute(_PG_UNNEST_INSERT, params)

    def close(self) -> None:
        self._conn.close()


# --- drivers ----------------------------------------------------------------------------


class Driver:
    """A database server (or directory) to benchmark on; ``label`` names one database."""

    name: str

    def open_store(self, label: str) -> Store:
        raise NotImplementedError

    def new_store(self, label: str) -> Store:
        """The store of database ``label``, created and migrated if new."""
        store = self.open_store(label)
        store.migrate()
        return store

    def baselines(self, label: str) -> list[Baseline]:
        raise NotImplementedError

    def size_bytes(self, label: str) -> int:
        raise NotImplementedError

    def raw_query(
        self, label: str
    ) -> tuple[Callable[[str, tuple[Any, ...]], Any], Callable[[], None]]:
        """A one-row query function on a new plain connection (``?`` placeholders), and
        its closer: the reference a store read is compared with."""
        raise NotImplementedError

    def target(self, label: str) -> str:
        """What a store for ``label`` is opened with: a path or a DSN."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the driver's resources (the temporary directory, the server)."""


class SQLiteDriver(Driver):
    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def path(self, label: str) -> str:
        return str(self._dir / f"{label}.db")

    def target(self, label: str) -> str:
        return self.path(label)

    def open_store(self, label: str) -> Store:
        return SQLiteStore(self.path(label))

    def baselines(self, label: str) -> list[Baseline]:
        return [SQLiteExecutemany(self.path(label))]

    def size_bytes(self, label: str) -> int:
        """Main file plus WAL after a full checkpoint (what the data occupies)."""
        path = self.path(label)
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))

    def raw_query(
        self, label: str
    ) -> tuple[Callable[[str, tuple[Any, ...]], Any], Callable[[], None]]:
        conn = sqlite3.connect(self.path(label), isolation_level=None, check_same_thread=False)

        def query(sql: str, params: tuple[Any, ...]) -> Any:
            return conn.execute(sql, params).fetchone()

        return query, conn.close

    def describe(self) -> dict[str, Any]:
        return {
            "sqlite_version": sqlite3.sqlite_version,
            "settings": "SQLiteStore: WAL, synchronous=FULL, cache_size=64MiB",
            "directory": str(self._dir),
        }

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class PostgresDriver(Driver):
    name = "postgres"

    def __init__(self) -> None:
        self._server: PostgresServer = start_postgres(durable=True)
        self._dsns: dict[str, str] = {}

    def dsn(self, label: str) -> str:
        if label not in self._dsns:
            self._dsns[label] = self._server.create_database(label)
        return self._dsns[label]

    def target(self, label: str) -> str:
        return self.dsn(label)

    def open_store(self, label: str) -> Store:
        return PostgresStore(self.dsn(label))

    def baselines(self, label: str) -> list[Baseline]:
        dsn = self.dsn(label)
        return [PostgresExecutemany(dsn, 0), PostgresUnnest(dsn, 0)]

    def size_bytes(self, label: str) -> int:
        with psycopg.connect(self.dsn(label), autocommit=True) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])

    def raw_query(
        self, label: str
    ) -> tuple[Callable[[str, tuple[Any, ...]], Any], Callable[[], None]]:
        conn = psycopg.connect(self.dsn(label), autocommit=True)

        def query(sql: str, params: tuple[Any, ...]) -> Any:
            return conn.execute(sql.replace("?", "%s"), params).fetchone()

        return query, conn.close

    def describe(self) -> dict[str, Any]:
        names = ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        settings = {}
        with psycopg.connect(self._server.admin_dsn, autocommit=True) as conn:
            for name in names:
                row = conn.execute(f"SHOW {name}").fetchone()
                settings[name] = row[0] if row else None
        return {"settings": settings}

    def close(self) -> None:
        self._server.stop()


def new_ledger(store: Store, seed: int) -> Ledger:
    return Ledger(
        store,
        MASTER_KEY,
        LedgerConfig(host_name=HOST_NAME),
        random=random.Random(seed).randbytes,
    )


# --- 1. tamper-evidence overhead --------------------------------------------------------


@dataclass
class SideTimes:
    name: str
    batches: list[float] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.batches) * BATCH

    @property
    def rate(self) -> float:
        return self.events / sum(self.batches) if self.batches else 0.0


def bench_overhead(driver: Driver, *, events: int, seed: int, deadline_s: float) -> dict[str, Any]:
    label = "append"
    store = driver.new_store(label)
    store.create_project(ProjectRow(PROJECT, CREATED_AT))
    ledger = new_ledger(store, seed)
    baselines = driver.baselines(label)
    try:
        head = ledger.log_for(PROJECT, ORGANIZATION)
        shadow_rng = random.Random(seed + 7)
        shadows = []
        for number in range(len(baselines)):  # a project each: the same ids go in again
            project = f"{BASELINE_PROJECT}_{number}"
            store.create_project(ProjectRow(project, CREATED_AT))
            shadows.append(ShadowLog(project, new_log_id(shadow_rng.randbytes(16))))
        source = EventSource(seed)
        ledger_side = SideTimes("ledger.append")
        sides = [SideTimes(b.name) for b in baselines]
        prepare_s = 0.0
        sizes: list[int] = []
        rounds = events // BATCH
        started = time.perf_counter()
        done = 0
        for number in range(rounds + 1):  # round 0 warms up, untimed
            raws = source.batch(BATCH)
            t0 = time.perf_counter()
            prepared = prepare_batch(raws, datetime.now(UTC))
            prepare_s += time.perf_counter() - t0
            sizes.extend(len(p.canonical) for p in prepared)
            received_at = ledger.now_text()
            params = [
                b.params(s.rows(prepared, received_at))
                for b, s in zip(baselines, shadows, strict=True)
            ]

            def run_ledger(batch: list[PreparedEvent] = prepared) -> None:
                results = ledger.append(PROJECT, ORGANIZATION, batch).result()
                assert len(results) == BATCH and not any(r.duplicate for r in results)

            jobs: list[tuple[SideTimes, Callable[[], None]]] = [(ledger_side, run_ledger)]
            for baseline, side, param in zip(baselines, sides, params, strict=True):
                jobs.append((side, functools.partial(baseline.insert, param)))
            if number % 2:
                jobs.reverse()
            for side, job in jobs:
                t0 = time.perf_counter()
                job()
                elapsed = time.perf_counter() - t0
                if number:
                    side.batches.append(elapsed)
            if number:
                done += 1
                if number % 20 == 0:
                    progress(
                        f"{driver.name}: {done * BATCH:,} events per side,"
                        f" ledger {ledger_side.rate:,.0f}/s, baseline {sides[0].rate:,.0f}/s"
                    )
                if time.perf_counter() - started > deadline_s and done >= 10:
                    progress(f"{driver.name}: time bound reached after {done} rounds")
                    break
        final = store.get_log(PROJECT, head.log_id)
        assert final is not None and final.size == (done + 1) * BATCH, "ledger lost events"
    finally:
        for baseline in baselines:
            baseline.close()
        ledger.close()
    size_db = driver.size_bytes(label)
    store.close()
    sizes.sort()
    result: dict[str, Any] = {
        "batch": BATCH,
        "events_per_side": ledger_side.events,
        "event_bytes": {
            "min": sizes[0],
            "p50": percentile(sizes, 50),
            "mean": round(statistics.fmean(sizes)),
            "max": sizes[-1],
        },
        "prepare_us_per_event": prepare_s / len(sizes) * 1e6,
        "ledger": _side_json(ledger_side),
        "baselines": [],
        "database_mb": size_db / 1e6,
        "log_size": final.size,
        "log_id": head.log_id,
    }
    for side in sides:
        entry = _side_json(side)
        ratios = [b / a for a, b in zip(ledger_side.batches, side.batches, strict=True)]
        entry["ratio"] = ledger_side.rate / side.rate
        entry["ratio_median_of_rounds"] = statistics.median(ratios)
        entry["overhead_us_per_event"] = (1 / ledger_side.rate - 1 / side.rate) * 1e6
        result["baselines"].append(entry)
    return result


def _side_json(side: SideTimes) -> dict[str, Any]:
    ordered = sorted(side.batches)
    return {
        "name": side.name,
        "events": side.events,
        "events_per_s": side.rate,
        "batch_ms_p50": percentile(ordered, 50) * 1e3,
        "batch_ms_p99": percentile(ordered, 99) * 1e3,
    }


def profile_append(driver: Driver, *, events: int, seed: int, top: int) -> str:
    """cProfile of the sequencer's commit path (store.append + integrate), run in the main
    thread over prepared batches; returns the printed statistics."""
    label = "profile"
    store = driver.new_store(label)
    store.create_project(ProjectRow(PROJECT, CREATED_AT))
    ledger = new_ledger(store, seed)
    try:
        head = ledger.log_for(PROJECT, ORGANIZATION)
        signer = ledger.log_keys(PROJECT, head.origin)
        source = EventSource(seed)
        batches = [
            prepare_batch(source.batch(BATCH), datetime.now(UTC)) for _ in range(events // BATCH)
        ]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        for batch in batches:
            profiler.enable()
            with store.append(PROJECT, head.log_id) as txn:
                integrate(
                    txn,
                    [batch],
                    received_at=ledger.now_text(),
                    timestamp=int(time.time()),
                    signer=signer,
                )
            profiler.disable()
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()
        store.close()
    out = io.StringIO()
    out.write(
        f"cProfile, {driver.name}: {len(batches)} batches of {BATCH} through store.append +"
        f" integrate in the main thread, {len(batches) * BATCH / elapsed:,.0f} events/s"
        " under the profiler\n"
    )
    stats = pstats.Stats(profiler, stream=out)
    out.write("\nBy own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("By cumulative time, trailseal's own functions:\n")
    stats.sort_stats("cumulative").print_stats(r"trailseal", top)
    return out.getvalue()


# --- 2. inclusion proofs ----------------------------------------------------------------


def synthetic_leaf(seed: int, index: int) -> bytes:
    return hashlib.sha256(seed.to_bytes(8, "big") + index.to_bytes(8, "big")).digest()


def build_synthetic_log(
    store: Store, ledger: Ledger, organization: str, size: int, seed: int
) -> tuple[LogHead, bytes]:
    """A log whose tiles and head describe ``size`` synthetic leaves; returns the head
    and the root. Level-0 tiles are written per chunk (each chunk starts on a tile
    boundary, so its level-0 tiles are new); higher tiles are kept in memory and written
    with the head at the end."""
    head = ledger.log_for(PROJECT, organization)
    tree = CompactRange.empty()
    upper: dict[tuple[int, int], bytearray] = {}
    chunk = 1 << 16
    for start in range(0, size, chunk):
        leaves = [synthetic_leaf(seed, i) for i in range(start, min(size, start + chunk))]
        tree, completed = tree.append(leaves)
        level0: dict[tuple[int, int], bytes] = {}
        for key, added in tile_updates(completed).items():
            data = b"".join(digest for _, digest in added)
            if key[0] == 0:
                assert added[0][0] == 0, "chunks start on tile boundaries"
                level0[key] = data
            else:
                upper.setdefault(key, bytearray()).extend(data)
        with store.append(PROJECT, head.log_id) as txn:
            txn.put_tiles(level0)
    with store.append(PROJECT, head.log_id) as txn:
        txn.put_tiles({key: bytes(data) for key, data in upper.items()})
        txn.set_head(size=tree.size, chain_head=ZERO_HASH, peaks=tree.to_bytes())
    final = store.get_log(PROJECT, head.log_id)
    assert final is not None and final.size == size
    return final, tree.root()


@dataclass
class ProofFigures:
    size: int
    kind: str  # "synthetic" | "real (part 1)"
    warm_ms: list[float]
    cold_ms: list[float]
    raw_ms: list[float]
    cpu_ms: list[float]
    build_s: float

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "log": self.kind, "build_s": self.build_s}
        for name, values in (
            ("warm", self.warm_ms),
            ("cold", self.cold_ms),
            ("raw", self.raw_ms),
            ("cpu", self.cpu_ms),
        ):
            ordered = sorted(values)
            out[f"{name}_samples"] = len(ordered)
            if ordered:
                out[f"{name}_p50_ms"] = percentile(ordered, 50)
                out[f"{name}_p90_ms"] = percentile(ordered, 90)
                out[f"{name}_p99_ms"] = percentile(ordered, 99)
        return out


_RAW_TILE = "SELECT hashes FROM tiles WHERE project = ? AND log_id = ? AND level = 0 AND idx = ?"


def measure_proofs(
    driver: Driver,
    label: str,
    ledger: Ledger,
    head: LogHead,
    *,
    samples: int,
    cold_samples: int,
    seed: int,
    leaf: Callable[[int], bytes],
    root: bytes,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Four lists of milliseconds. *Warm*: ``samples`` random proofs on ``ledger``
    after 50 untimed ones, all verified against ``root``; *CPU*: the same proofs' CPU time
    in this thread (``time.thread_time``: blind to waiting for a core, and to a database
    server's own work). *Raw*: interleaved with the warm proofs, one plain single-tile
    SELECT of the same tile on a plain connection (the database's floor; a proof reads
    1-3 tiles in one store call), so both see the same noise. *Cold-ish*:
    ``cold_samples`` proofs, each on a fresh store and ledger (new connection, empty tile
    cache) connected before the clock starts."""
    rng = random.Random(seed)
    size = head.size
    indices = [rng.randrange(size) for _ in range(samples)]
    for index in indices[:50]:
        proof = ledger.inclusion_proof(PROJECT, head.log_id, index, size)
        verify_inclusion(index, size, leaf(index), proof, root)
    query, close = driver.raw_query(label)
    warm, raw, cpu = [], [], []
    try:
        for index in indices:
            c0 = time.thread_time()
            t0 = time.perf_counter()
            ledger.inclusion_proof(PROJECT, head.log_id, index, size)
            t1 = time.perf_counter()
            c1 = time.thread_time()
            row = query(_RAW_TILE, (PROJECT, head.log_id, index >> 8))
            t2 = time.perf_counter()
            assert row is not None
            warm.append((t1 - t0) * 1e3)
            cpu.append((c1 - c0) * 1e3)
            raw.append((t2 - t1) * 1e3)
    finally:
        close()
    cold = []
    for index in indices[:cold_samples]:
        store = driver.open_store(label)
        cold_ledger = new_ledger(store, seed)
        try:
            store.get_log(PROJECT, head.log_id)  # connects; reads only the `logs` row
            t0 = time.perf_counter()
            proof = cold_ledger.inclusion_proof(PROJECT, head.log_id, index, size)
            cold.append((time.perf_counter() - t0) * 1e3)
        finally:
            cold_ledger.close()
            store.close()
        verify_inclusion(index, size, leaf(index), proof, root)
    return warm, cold, raw, cpu


def bench_proofs(
    driver: Driver,
    *,
    sizes: Sequence[int],
    samples: int,
    cold_samples: int,
    seed: int,
    real_log: tuple[str, int] | None,
) -> list[dict[str, Any]]:
    figures: list[ProofFigures] = []
    label = "proofs"
    store = driver.new_store(label)
    store.create_project(ProjectRow(PROJECT, CREATED_AT))
    ledger = new_ledger(store, seed)
    try:
        for size in sizes:
            t0 = time.perf_counter()
            head, root = build_synthetic_log(store, ledger, f"synthetic_{size}", size, seed)
            build_s = time.perf_counter() - t0
            progress(f"{driver.name}: synthetic log of {size:,} leaves built in {build_s:.1f} s")
            warm, cold, raw, cpu = measure_proofs(
                driver,
                label,
                ledger,
                head,
                samples=samples,
                cold_samples=cold_samples,
                seed=seed + size,
                leaf=lambda i: synthetic_leaf(seed, i),
                root=root,
            )
            figures.append(ProofFigures(size, "synthetic", warm, cold, raw, cpu, build_s))
    finally:
        ledger.close()
        store.close()
    if real_log is not None:
        log_id, size = real_log
        store = driver.open_store("append")
        ledger = new_ledger(store, seed)
        try:
            real_head = store.get_log(PROJECT, log_id)
            checkpoint = ledger.checkpoint(PROJECT, log_id, size)
            assert real_head is not None and checkpoint is not None

            def leaf(index: int) -> bytes:
                entry = store.get_entry(PROJECT, log_id, index)
                assert entry is not None
                return entry.leaf_hash

            warm, cold, raw, cpu = measure_proofs(
                driver,
                "append",
                ledger,
                real_head,
                samples=samples,
                cold_samples=cold_samples,
                seed=seed,
                leaf=leaf,
                root=checkpoint.root_hash,
            )
        finally:
            ledger.close()
            store.close()
        figures.append(ProofFigures(size, "real (part 1)", warm, cold, raw, cpu, 0.0))
    return [f.as_json() for f in figures]


# --- 3. organization logs ---------------------------------------------------------------


def bench_logs(
    driver: Driver,
    *,
    count: int,
    seed: int,
    threads: int,
    deadline_s: float,
    label: str = "orgs",
) -> dict[str, Any]:
    """Log creation in a fresh database ``label``, run in a child process (see
    :func:`create_logs`) so its RSS growth is not blurred by this process's history."""
    store = driver.new_store(label)
    store.create_project(ProjectRow(PROJECT, CREATED_AT))
    store.close()
    before_db = driver.size_bytes(label)
    job = {
        "kind": driver.name,
        "target": driver.target(label),
        "count": count,
        "seed": seed,
        "threads": threads,
        "deadline_s": deadline_s,
    }
    child = subprocess.run(
        [sys.executable, __file__, "--create-logs", json.dumps(job)],
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(child.stdout)
    after_db = driver.size_bytes(label)
    created = result["logs"]
    growth = after_db - before_db
    result.update(
        logs_wanted=count,
        complete=created == count,
        logs_per_s=created / result["seconds"],
        seconds_for_wanted=result["seconds"] * count / created,
        database_growth_mb=growth / 1e6,
        database_bytes_per_log=growth / created,
        database_total_mb=after_db / 1e6,
        rss_bytes_per_log=result["rss_growth_mb"] * 1e6 / created,
    )
    return result


def create_logs(job: dict[str, Any]) -> dict[str, Any]:
    """The child of :func:`bench_logs`: ``ledger.log_for`` on ``count`` new organizations
    from ``threads`` threads (as concurrent first events would), stopping early at
    ``deadline_s``. Reports the count, the time and the growth of this process's RSS."""
    opener: type[SQLiteStore] | type[PostgresStore]
    opener = SQLiteStore if job["kind"] == "sqlite" else PostgresStore
    store: Store = opener(job["target"])
    ledger = new_ledger(store, job["seed"])
    count: int = job["count"]
    numbers = itertools.count()
    failures: list[BaseException] = []

    def work(stop_at: float) -> None:
        try:
            for number in numbers:  # next() on a shared count is atomic under the GIL
                if number >= count or time.perf_counter() > stop_at:
                    return
                ledger.log_for(PROJECT, f"org_{number:07d}")
        except BaseException as exc:
            failures.append(exc)

    try:
        ledger.log_for(PROJECT, "warm_up")  # loads the project key, opens connections
        before_rss = rss_mb()
        t0 = time.perf_counter()
        workers = [
            threading.Thread(target=work, args=(t0 + job["deadline_s"],), daemon=True)
            for _ in range(job["threads"])
        ]
        for worker in workers:
            worker.start()
        next_report = t0 + 30
        while any(w.is_alive() for w in workers):
            for worker in workers:
                worker.join(0.5)
            if time.perf_counter() > next_report:
                next_report += 30
                progress(f"{job['kind']}: {time.perf_counter() - t0:.0f} s of log creation")
        elapsed = time.perf_counter() - t0
        if failures:
            raise failures[0]
        rss_growth = rss_mb() - before_rss
        created = len(store.list_logs(PROJECT)) - 1
    finally:
        ledger.close()
        store.close()
    return {
        "logs": created,
        "threads": job["threads"],
        "seconds": elapsed,
        "rss_growth_mb": rss_growth,
    }


# --- the run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    events: int
    deadline_s: float
    sqlite_proof_sizes: tuple[int, ...]
    postgres_proof_sizes: tuple[int, ...]
    proof_samples: int
    cold_samples: int
    logs: int
    logs_deadline_s: float
    log_threads: int


FULL = Plan(
    events=100_000,
    deadline_s=240.0,
    sqlite_proof_sizes=(1_000, 100_000, 1_000_000, 10_000_000),
    postgres_proof_sizes=(1_000, 100_000, 1_000_000),
    proof_samples=1000,
    cold_samples=200,
    logs=100_000,
    logs_deadline_s=270.0,
    log_threads=4,
)
QUICK = Plan(
    events=10_000,
    deadline_s=15.0,
    sqlite_proof_sizes=(1_000, 100_000),
    postgres_proof_sizes=(1_000, 100_000),
    proof_samples=200,
    cold_samples=20,
    logs=1_000,
    logs_deadline_s=8.0,
    log_threads=4,
)


@contextmanager
def open_driver(name: str) -> Iterator[Driver]:
    driver: Driver
    if name == "sqlite":
        driver = SQLiteDriver(Path(tempfile.mkdtemp(prefix="trailseal-bench-")))
    else:
        progress("starting a throwaway PostgreSQL 15 (durable)")
        driver = PostgresDriver()
    try:
        yield driver
    finally:
        driver.close()


def run_driver(
    name: str, plan: Plan, seed: int, parts: frozenset[int], profile: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open_driver(name) as driver:
        out["database"] = driver.describe()
        real_log = None
        if 1 in parts:
            progress(f"{name}: 1. tamper-evidence overhead, {plan.events:,} events per side")
            out["append"] = append = bench_overhead(
                driver, events=plan.events, seed=seed, deadline_s=plan.deadline_s
            )
            real_log = (append["log_id"], append["log_size"])
        if 2 in parts:
            sizes = plan.sqlite_proof_sizes if name == "sqlite" else plan.postgres_proof_sizes
            progress(f"{name}: 2. inclusion proofs at {', '.join(f'{s:,}' for s in sizes)}")
            out["proofs"] = bench_proofs(
                driver,
                sizes=sizes,
                samples=plan.proof_samples,
                cold_samples=plan.cold_samples,
                seed=seed,
                real_log=real_log,
            )
        if 3 in parts:
            progress(f"{name}: 3. creating {plan.logs:,} organization logs")
            out["logs"] = bench_logs(
                driver,
                count=plan.logs,
                seed=seed,
                threads=plan.log_threads,
                deadline_s=plan.logs_deadline_s,
            )
        if profile:
            progress(f"{name}: profiling the append path")
            out["profile"] = profile_append(
                driver, events=min(plan.events, 20_000), seed=seed, top=30
            )
    return out


def render(report: dict[str, Any]) -> str:
    parts = [
        f"trailseal bench_append — {report['mode']} run, seed {report['seed']},"
        f" {report['machine']['cpus']} CPUs, Python {report['machine']['python']},"
        f" git {report['machine']['git']}; load average {_load(report, 'start')} at start,"
        f" {_load(report, 'end')} at end (other work on this machine skews absolute figures;"
        " the side-by-side ratios are interleaved to cancel it)",
        "Prepared events (validate + normalize + canonicalize + columns) are built OUTSIDE the"
        " timed sections for every side.",
    ]
    for name, figures in report["drivers"].items():
        parts.append("")
        parts.append(f"=== {name}  {json.dumps(figures['database'], sort_keys=True)}")
        if "append" in figures:
            parts += ["", render_append(figures["append"])]
        if "proofs" in figures:
            parts += ["", render_proofs(figures["proofs"])]
        if "logs" in figures:
            parts += ["", render_logs(figures["logs"])]
        if "profile" in figures:
            parts += ["", figures["profile"]]
    parts.append("")
    parts.append(f"total wall time {report['wall_s']:.0f} s")
    return "\n".join(parts)


def render_append(append: dict[str, Any]) -> str:
    ledger = append["ledger"]
    rows = [
        [
            ledger["name"],
            f"{ledger['events']:,}",
            f"{ledger['events_per_s']:,.0f}",
            f"{ledger['batch_ms_p50']:.1f}",
            f"{ledger['batch_ms_p99']:.1f}",
            "",
            "",
            "",
        ]
    ]
    for number, baseline in enumerate(append["baselines"]):
        budget = f"{verdict(baseline['ratio'] >= RATIO_BUDGET)} (>= {RATIO_BUDGET})"
        rows.append(
            [
                baseline["name"],
                f"{baseline['events']:,}",
                f"{baseline['events_per_s']:,.0f}",
                f"{baseline['batch_ms_p50']:.1f}",
                f"{baseline['batch_ms_p99']:.1f}",
                f"{baseline['ratio']:.2f} (median {baseline['ratio_median_of_rounds']:.2f})",
                f"{baseline['overhead_us_per_event']:+.1f}",
                budget if number == 0 else "(informative)",
            ]
        )
    sizes = append["event_bytes"]
    return table(
        f"1. Tamper-evidence overhead: batches of {append['batch']}, durable commits, events"
        f" {sizes['min']}-{sizes['max']} B canonical (median {sizes['p50']}), same database and"
        f" table; prepare = {append['prepare_us_per_event']:.0f} µs/event, untimed on all sides",
        [
            "side",
            "events",
            "events/s",
            "batch p50 ms",
            "p99 ms",
            "ledger ratio",
            "ledger µs/event extra",
            "budget",
        ],
        rows,
    )


def render_proofs(proofs: list[dict[str, Any]]) -> str:
    def pair(proof: dict[str, Any], name: str) -> str:
        if f"{name}_p50_ms" not in proof:
            return "-"
        return f"{proof[f'{name}_p50_ms']:.3f} / {proof[f'{name}_p99_ms']:.3f}"

    rows = [
        [
            f"{proof['size']:,}",
            proof["log"],
            f"{proof['warm_samples']}/{proof['cold_samples']}",
            f"{proof['warm_p50_ms']:.3f} / {proof['warm_p90_ms']:.3f} / {proof['warm_p99_ms']:.3f}",
            pair(proof, "cpu"),
            pair(proof, "cold"),
            pair(proof, "raw"),
            verdict(proof["warm_p99_ms"] <= PROOF_BUDGET_MS),
        ]
        for proof in proofs
    ]
    return table(
        "2. Inclusion proof: Ledger.inclusion_proof at random indices of the full size;"
        " synthetic = tiles built from synthetic leaf hashes (no entries); cold-ish = fresh"
        " store+ledger per sample; CPU = this thread's CPU time for the warm proofs (blind to"
        " waiting for a core and to a database server's work); raw = one plain single-tile"
        " SELECT interleaved with the warm proofs (the database floor and this machine's noise)",
        [
            "entries",
            "log",
            "samples warm/cold",
            "warm p50/p90/p99 ms",
            "warm CPU p50/p99 ms",
            "cold-ish p50/p99 ms",
            "raw SELECT p50/p99 ms",
            f"warm p99 <= {PROOF_BUDGET_MS:g} ms",
        ],
        rows,
    )


def render_logs(logs: dict[str, Any]) -> str:
    partial = "" if logs["complete"] else " (time bound hit: extrapolated)"
    return table(
        "3. Creating organization logs: ledger.log_for on new organizations (lookup, durable"
        " insert, log keys), fresh database",
        [
            "logs",
            "threads",
            "seconds",
            "logs/s",
            f"s for {logs['logs_wanted']:,}",
            "db growth MB",
            "db B/log",
            "RSS growth MB",
            "RSS B/log",
        ],
        [
            [
                f"{logs['logs']:,}",
                str(logs["threads"]),
                f"{logs['seconds']:.1f}",
                f"{logs['logs_per_s']:,.0f}",
                f"{logs['seconds_for_wanted']:.0f}{partial}",
                f"{logs['database_growth_mb']:.1f}",
                f"{logs['database_bytes_per_log']:.0f}",
                f"{logs['rss_growth_mb']:.1f}",
                f"{logs['rss_bytes_per_log']:.0f}",
            ]
        ],
    )


def _load(report: dict[str, Any], when: str) -> str:
    return "/".join(f"{v:.1f}" for v in report["machine"][f"load_average_at_{when}"])


def git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+dirty src' if dirty else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, table on stderr")
    parser.add_argument("--driver", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--events", type=int, help="events per side in part 1")
    parser.add_argument("--logs", type=int, help="organization logs to create in part 3")
    parser.add_argument("--log-threads", type=int, help="threads creating logs in part 3")
    parser.add_argument(
        "--parts", default="1,2,3", help="which parts to run, e.g. 1,3 (default: all)"
    )
    parser.add_argument("--profile", action="store_true", help="add a cProfile of the append path")
    parser.add_argument("--create-logs", metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.create_logs:  # the child process of part 3
        print(json.dumps(create_logs(json.loads(args.create_logs))))
        return 0
    plan = QUICK if args.quick else FULL
    if args.events:
        plan = dataclasses.replace(plan, events=max(args.events, 10 * BATCH))
    if args.logs:
        plan = dataclasses.replace(plan, logs=args.logs)
    if args.log_threads:
        plan = dataclasses.replace(plan, log_threads=args.log_threads)
    parts = frozenset(int(part) for part in args.parts.split(","))
    drivers = ("sqlite", "postgres") if args.driver == "both" else (args.driver,)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "bench_append",
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "git": git_describe(),
            "load_average_at_start": os.getloadavg(),
        },
        "plan": dataclasses.asdict(plan),
        "budgets": {"ledger_vs_plain_insert": RATIO_BUDGET, "inclusion_proof_ms": PROOF_BUDGET_MS},
        "drivers": {},
    }
    for name in drivers:
        report["drivers"][name] = run_driver(name, plan, args.seed, parts, args.profile)
    report["wall_s"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    text = render(report)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(report, indent=2, default=str))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
