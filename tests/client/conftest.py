"""Fixtures for the SDK tests: the real server (both drivers, from tests/server) and
clients aimed at it with quick retries, a dead-letter file and a trust store in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import RunningServer, server  # noqa: F401 (the fixture)
from trailseal.client import Client, RetryPolicy

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
