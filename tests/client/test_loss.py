"""The loss test (both drivers, both clients): with the server down, then flaky (a real TCP
proxy that drops requests, drops responses after the server committed, or answers 503),
then back, every logged event is stored exactly once after the client flushed and the
dead-letter file was replayed: counted exactly, none lost, none duplicated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.client.conftest import QUICK_RETRY
from tests.client.proxy import FlakyProxy
from tests.server.conftest import RunningServer
from trailseal.client import AsyncClient, Client, ClientStats, DeadLetterFile, RetryPolicy

PHASES = (("down", 100), ("flaky", 300), ("pass", 100))
TOTAL = sum(count for _, count in PHASES)
# Three quick attempts: under "flaky" (60% of requests fail) about one batch in five
# exhausts them and goes to the dead letter; the rest get through on a retry.
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.005, max_backoff=0.02)
OPTIONS = {
    "batch_size": 20,
    "flush_interval": 60.0,  # batches are cut by size and by flush(): the same every run
    "retry": RETRY,
    "timeout": 5.0,
    "seed": 5,
}


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[FlakyProxy]:
    made = FlakyProxy(urlsplit(server.url).port or 80, seed=20261123)
    yield made
    made.close()


def _event(phase: str, n: int) -> dict[str, object]:
    return {
        "action": "doc.read",
        "actor": {"id": f"user-{n % 7}"},
        "organization_id": "loss",
        "message": f"{phase} {n}",
    }


def _run_sync(proxy: FlakyProxy, key: str, dead: Path) -> tuple[list[str], ClientStats]:
    logged: list[str] = []
    client = Client(proxy.url, key, dead_letter_path=dead, **OPTIONS)  # type: ignore[arg-type]
    try:
        for phase, count in PHASES:
            proxy.set_mode(phase)
            logged += [client.log(**_event(phase, n)) for n in range(count)]
            assert client.flush(timeout=60)
            if phase == "down":
                assert client.stats().delivered == 0
                assert client.stats().dead_lettered == count
    finally:
        client.close()
    return logged, client.stats()


def _run_async(proxy: FlakyProxy, key: str, dead: Path) -> tuple[list[str], ClientStats]:
    async def main() -> tuple[list[str], ClientStats]:
        logged: list[str] = []
        async with AsyncClient(proxy.url, key, dead_letter_path=dead, **OPTIONS) as client:  # type: ignore[arg-type]
            for phase, count in PHASES:
                proxy.set_mode(phase)
                logged += [await client.log(**_event(phase, n)) for n in range(count)]
                assert await client.flush(timeout=60)
                if phase == "down":
                    assert client.stats().delivered == 0
                    assert client.stats().dead_lettered == count
        return logged, client.stats()

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_event_is_stored_exactly_once(
    kind: str, server: RunningServer, api_key: str, proxy: FlakyProxy, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    run = _run_sync if kind == "sync" else _run_async
    logged, stats = run(proxy, api_key, dead)

    assert len(logged) == len(set(logged)) == TOTAL
    assert stats.logged == TOTAL and stats.dropped == 0 and stats.failed == 0
    assert stats.delivered + stats.dead_lettered == TOTAL
    # Every kind of trouble happened, including answers lost after the server committed.
    assert all(proxy.counts[mode] > 0 for mode in ("drop_request", "drop_response", "fail"))
    in_file = DeadLetterFile(dead).count()
    assert in_file == stats.dead_lettered > PHASES[0][1]  # the down phase, and some flaky

    with Client(server.url, api_key, retry=QUICK_RETRY) as direct:
        before = direct.get_log("loss").tree_size
        # Some dead-lettered batches were committed already (their answers were dropped):
        # replaying them must not store them twice.
        assert stats.delivered < before < TOTAL

        replayed = direct.replay_dead_letter(dead)
        assert replayed.delivered == in_file
        assert replayed.remaining == 0 and replayed.lines_remaining == 0
        assert DeadLetterFile(dead).read() == []
        assert direct.replay_dead_letter(dead).delivered == 0  # nothing left to send

        # Exactly once: the log holds TOTAL entries, and they are the logged events.
        assert direct.get_log("loss").tree_size == TOTAL
        stored = list(direct.iter_events(organization_id="loss", order="asc"))
        assert [e.seq for e in stored] == list(range(TOTAL))
        assert sorted(e.id for e in stored) == sorted(logged)
        messages = sorted(str(e.event["message"]) for e in stored if e.event is not None)
        assert messages == sorted(f"{phase} {n}" for phase, count in PHASES for n in range(count))
