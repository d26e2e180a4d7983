"""Database fixtures shared by the store, ledger and server tests.

``store_factory`` is parametrized over both drivers: a real SQLite file in a temporary
directory and a real PostgreSQL database on the throwaway server this test session starts
(``tests/pgserver.py``). A PostgreSQL server that cannot start fails the tests; it never
skips them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.pgserver import PostgresServer, start_postgres
from trailseal.store.base import Store
from trailseal.store.postgres import PostgresStore
from trailseal.store.sqlite import SQLiteStore

DRIVERS = ["sqlite", "postgres"]
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer | str]:
    """The session's PostgreSQL server, or the DSN in ``TRAILSEAL_TEST_DSN``."""
    configured = os.environ.get("TRAILSEAL_TEST_DSN")
    if configured:
        yield configured
        return
    server = start_postgres()
    yield server
    server.stop()


def new_pg_database(server: PostgresServer | str) -> str:
    """A fresh, empty database's DSN."""
    name = f"t{os.getpid()}_{next(_database_numbers)}"
    if isinstance(server, str):
        import psycopg

        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return server.rsplit("/", 1)[0] + "/" + name
    return server.create_database(name)


StoreFactory = Callable[[], Store]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(driver: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where a test's data lives: a SQLite file path or a PostgreSQL DSN."""
    if driver == "sqlite":
        return str(tmp_path / "trailseal.db")
    return new_pg_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def store_factory(driver: str, database_url: str) -> Iterator[StoreFactory]:
    """Opens stores on one migrated database (several may be open at once)."""
    opened: list[Store] = []

    def open_store() -> Store:
        store: Store = (
            SQLiteStore(database_url)
            if driver == "sqlite"
            else PostgresStore(database_url, max_size=8)
        )
        opened.append(store)
        return store

    open_store().migrate()
    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()
