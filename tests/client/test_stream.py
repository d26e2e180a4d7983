"""``stream_events`` against the real server (both drivers): events arrive in commit order
with the list filters applied; a stream whose connections are cut again and again (a real
TCP proxy in between) resumes with ``Last-Event-ID`` and yields every event exactly once,
in order (seqs and positions checked); refusals raise at once."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import QUICK_RETRY
from tests.client.cutting_proxy import CuttingProxy
from tests.server.conftest import RunningServer
from trailseal.client import ApiError, AsyncClient, Client, RetryPolicy, StoredEvent
from trailseal.client.errors import TransportError

# Reconnecting quickly after a cut, and patient enough for the cuts a test makes.
RESUME = RetryPolicy(max_attempts=20, initial_backoff=0.02, max_backoff=0.2)


@pytest.fixture
def server(shared_server: RunningServer) -> RunningServer:
    """These tests keep to their own organizations: one server per driver serves them."""
    return shared_server


@pytest.fixture
def key(server: RunningServer) -> str:
    return server.create_key("events:write,events:read")


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[CuttingProxy]:
    made = CuttingProxy(int(server.url.rsplit(":", 1)[1]))
    yield made
    made.close()


def _client(url: str, key: str, tmp_path: Path) -> Client:
    return Client(url, key, retry=QUICK_RETRY, dead_letter_path=False, seed=3)


class Collector:
    """Runs a stream in a thread and keeps what it yields."""

    def __init__(self, stream: Iterator[StoredEvent]) -> None:
        self.events: list[StoredEvent] = []
        self.error: BaseException | None = None
        self._stream = stream
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream did not end; got {len(self.events)}"
        if self.error is not None:
            raise self.error


def _org() -> str:
    return f"stream-{uuid.uuid4().hex[:10]}"


def test_events_arrive_in_commit_order_with_the_filters(
    server: RunningServer, key: str, tmp_path: Path
) -> None:
    org = _org()
    with _client(server.url, key, tmp_path) as client:
        for action in ("doc.read", "user.login", "doc.read"):  # before the stream starts
            client.log_sync(action=action, actor={"id": "a"}, organization_id=org)
        stream = client.stream_events(
            organization_id=org, action="doc.*", after=0, limit=5, heartbeat=0.5
        )
        collector = Collector(stream)
        time.sleep(0.3)
        for action in ("doc.write", "user.login", "doc.write", "doc.delete"):  # while it runs
            client.log_sync(action=action, actor={"id": "b"}, organization_id=org)
        client.log_sync(action="doc.read", actor={"id": "c"}, organization_id=_org())
        collector.join(20)
    events = collector.events
    assert [e.event["action"] for e in events if e.event] == [
        "doc.read",
        "doc.read",
        "doc.write",
        "doc.write",
        "doc.delete",
    ]
    assert {e.organization_id for e in events} == {org}
    assert [e.seq for e in events] == [0, 2, 3, 5, 6]
    positions = [e.raw["position"] for e in events]
    assert positions == sorted(set(positions))


def _check_once_and_in_order(events: list[StoredEvent], count: int) -> None:
    assert [e.seq for e in events] == list(range(count)), "a gap or a duplicate"
    assert len({e.id for e in events}) == count
    positions = [e.raw["position"] for e in events]
    assert all(a < b for a, b in itertools.pairwise(positions))


def test_a_cut_stream_resumes_without_gaps_or_duplicates(
    server: RunningServer, key: str, proxy: CuttingProxy, tmp_path: Path
) -> None:
    org, total = _org(), 60
    with (
        _client(server.url, key, tmp_path) as writer,
        _client(proxy.url, key, tmp_path) as reader,
    ):
        stream = reader.stream_events(
            organization_id=org, after=0, limit=total, heartbeat=0.5, retry=RESUME
        )
        collector = Collector(stream)
        cuts = 0
        for batch in range(12):
            events = [
                {"action": "doc.read", "actor": {"id": "a"}, "organization_id": org}
                for _ in range(5)
            ]
            writer.log_batch(events, sync=True)
            if batch % 2:  # mid-stream, while events are in flight
                cuts += proxy.cut()
                time.sleep(0.05)
        collector.join(30)
    assert cuts >= 4
    _check_once_and_in_order(collector.events, total)
    # Every reconnect asked to resume after the last position the reader had.
    resumed = [int(v) for v in proxy.header_values("last-event-id") if v is not None]
    assert len(resumed) >= 4 and resumed == sorted(resumed)


def test_the_async_stream_resumes_too(
    server: RunningServer, key: str, proxy: CuttingProxy, tmp_path: Path
) -> None:
    org, total = _org(), 20

    async def scenario() -> list[StoredEvent]:
        got: list[StoredEvent] = []
        async with AsyncClient(proxy.url, key, retry=QUICK_RETRY, dead_letter_path=False) as aio:

            async def consume() -> None:
                async for event in aio.stream_events(
                    organization_id=org, after=0, limit=total, heartbeat=0.5, retry=RESUME
                ):
                    got.append(event)

            task = asyncio.create_task(consume())
            with _client(server.url, key, tmp_path) as writer:
                for n in range(total):
                    await asyncio.to_thread(
                        writer.log_sync, action="doc.read", actor={"id": "a"}, organization_id=org
                    )
                    if n % 6 == 5:
                        proxy.cut()
            await asyncio.wait_for(task, 30)
        return got

    events = asyncio.run(scenario())
    _check_once_and_in_order(events, total)
    assert any(v is not None for v in proxy.header_values("last-event-id"))


def test_refusals_raise_at_once(server: RunningServer, tmp_path: Path) -> None:
    writer = server.create_key("events:write")
    with _client(server.url, writer, tmp_path) as client, pytest.raises(ApiError) as refused:
        next(client.stream_events())
    assert refused.value.status == 403
    bound = server.create_key("events:read", organization="acme")
    with _client(server.url, bound, tmp_path) as client, pytest.raises(ApiError) as hidden:
        next(client.stream_events(organization_id="globex"))
    assert hidden.value.status == 404
    with _client(server.url, bound, tmp_path) as client, pytest.raises(TypeError):
        next(client.stream_events(cursor="x"))


def test_an_unreachable_server_raises_after_the_retries(tmp_path: Path) -> None:
    from tests.server.conftest import _free_port

    url = f"http://127.0.0.1:{_free_port()}"
    with _client(url, "tsk_live_" + "A" * 40, tmp_path) as client:
        started = time.monotonic()
        with pytest.raises(TransportError, match="could not be resumed"):
            next(client.stream_events(retry=QUICK_RETRY))
    assert time.monotonic() - started < 5
