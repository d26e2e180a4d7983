"""SQLite writers queue on a lock file: several processes' writers take turns quickly, and
a writer that cannot get its turn fails with SQLite's own error after the busy timeout."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from trailseal.store.base import ProjectRow
from trailseal.store.sqlite import SQLiteStore


def _store(path: Path, **options: int) -> SQLiteStore:
    store = SQLiteStore(path, shared_writers=True, **options)
    store.migrate()
    return store


def test_two_stores_on_one_file_take_turns(tmp_path: Path) -> None:
    """Two stores stand for two server processes (a lock file's locks belong to its open
    file, so they exclude each other within one process too)."""
    path = tmp_path / "trailseal.db"
    stores = [_store(path), _store(path)]
    errors: list[BaseException] = []

    def write(store: SQLiteStore, prefix: str) -> None:
        try:
            for n in range(100):
                store.create_project(ProjectRow(f"{prefix}{n}", "2026-11-23T00:00:00.000000Z"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(store, prefix))
        for store, prefix in [(stores[0], "a"), (stores[1], "b"), (stores[1], "c")]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM projects").fetchone() == (300,)
    conn.close()
    for store in stores:
        store.close()
    assert (tmp_path / "trailseal.db-writer").exists()


def test_a_writer_that_cannot_get_its_turn_times_out(tmp_path: Path) -> None:
    path = tmp_path / "trailseal.db"
    store = _store(path, busy_timeout_ms=200)
    holder = os.open(str(path) + "-writer", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            store.create_project(ProjectRow("p", "2026-11-23T00:00:00.000000Z"))
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert store.create_project(ProjectRow("p", "2026-11-23T00:00:00.000000Z"))
    store.close()


def test_one_process_takes_no_turn(tmp_path: Path) -> None:
    path = tmp_path / "trailseal.db"
    store = SQLiteStore(path)
    store.migrate()
    assert store.create_project(ProjectRow("p", "2026-11-23T00:00:00.000000Z"))
    store.close()
    assert not (tmp_path / "trailseal.db-writer").exists()
