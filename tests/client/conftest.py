"""Fixtures for the SDK tests: the real server (both drivers, from tests/server) and
clients aimed at it with quick retries, a dead-letter file and a trust store in tmp_path."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbfixtures import DRIVERS, new_pg_database
from tests.server.conftest import RunningServer, server, start_server  # noqa: F401 (fixture)
from tests.server.conftest import _free_port as free_port
from trailseal.client import Client, RetryPolicy
from trailseal.settings import Settings

#: Retries that give up in well under a second, so failure paths stay fast.
QUICK_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def api_key(server: RunningServer) -> str:  # noqa: F811
    """A real scoped key, not the admin key."""
    return server.create_key("events:write,events:read")


@pytest.fixture
def client(server: RunningServer, api_key: str, tmp_path: Path) -> Iterator[Client]:  # noqa: F811
    with Client(
        server.url,
        api_key,
        flush_interval=0.02,
        retry=QUICK_RETRY,
        dead_letter_path=tmp_path / "dead.jsonl",
        trust_store=tmp_path / "trust.json",
        seed=1,
    ) as made:
        yield made


@pytest.fixture(scope="module", params=DRIVERS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One real server per module and driver, for tests that keep to their own
    organizations (starting a server per test is most of the suite's time)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAILSEAL_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
        database_url = None
        if request.param == "postgres":
            database_url = new_pg_database(request.getfixturevalue("pg_server"))
        settings = Settings(
            port=free_port(),
            data_dir=tmp_path_factory.mktemp("server") / "data",
            host_name="test.local",
            database_url=database_url,
        )
        uv, thread, admin = start_server(settings)
        yield RunningServer(f"http://127.0.0.1:{settings.port}", admin, settings)
        uv.should_exit = True
        thread.join(timeout=15)
