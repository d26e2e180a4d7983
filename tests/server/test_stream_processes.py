"""The live stream across server processes (ARCHITECTURE §7): commits made by any process
reach every stream within a second, on SQLite (polling the log heads) and on PostgreSQL
(LISTEN/NOTIFY). Process A is ``trailseal serve --workers 2``; process B a second server
on the same database. Streams are opened on A (several connections, so both workers serve
some); events are committed through A and through B. Every stream must see every event,
in commit order, within a second of the commit's answer. Then A is stopped with SIGTERM
while its streams are open, and must exit promptly.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve import KEY_LINE, _free_port, _start, _stop, _wait_healthy
from tests.dbfixtures import new_pg_database

pytestmark = pytest.mark.slow

STREAMS = 4
EVENTS = 8
BUDGET = 1.0  # seconds from a commit's answer to its arrival on every stream


class Reader:
    """One live stream on a thread: when each event id arrived, and whether it is ready."""

    def __init__(self, url: str, key: str, org: str) -> None:
        self.arrived: dict[str, float] = {}
        self.order: list[int] = []
        self.ready = threading.Event()
        self.ended = threading.Event()
        self._response: httpx.Response | None = None
        self._client = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
            timeout=httpx.Timeout(30, read=60),
        )
        threading.Thread(target=self._read, args=(org,), daemon=True).start()

    def _read(self, org: str) -> None:
        import orjson

        try:
            params = {"organization_id": org, "heartbeat": "1"}
            with self._client.stream("GET", "/v1/stream/events", params=params) as response:
                self._response = response
                for line in response.iter_lines():
                    if line.startswith("event: ready"):
                        self.ready.set()
                    elif line.startswith('data: {"id"'):
                        view = orjson.loads(line[6:])
                        self.arrived[view["id"]] = time.monotonic()
                        self.order.append(view["position"])
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def close(self) -> None:
        self._client.close()


def _env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    env["TRAILSEAL_DATA_DIR"] = str(tmp_path / "data")
    if database_url:
        env["TRAILSEAL_DATABASE_URL"] = database_url
        env["TRAILSEAL_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    return env


@pytest.mark.parametrize("driver", ["sqlite", "postgres"])
def test_commits_in_any_process_reach_every_stream_within_a_second(
    driver: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        new_pg_database(request.getfixturevalue("pg_server")) if driver == "postgres" else None
    )
    env = _env(tmp_path, database_url)
    trailseal = str(Path(sys.executable).parent / "trailseal")
    ports = [_free_port(), _free_port()]
    a, lines = _start([trailseal, "serve", "--port", str(ports[0]), "--workers", "2"], env)
    processes = [a]
    readers: list[Reader] = []
    try:
        key = next(m.group(1) for line in lines if (m := KEY_LINE.match(line)))
        b, _ = _start([trailseal, "serve", "--port", str(ports[1])], env)
        processes.append(b)
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            _wait_healthy(url)
        org = f"org-{uuid.uuid4().hex[:8]}"
        readers = [Reader(urls[0], key, org) for _ in range(STREAMS)]
        for reader in readers:
            assert reader.ready.wait(10), "a stream never sent its ready frame"
        committed: dict[str, float] = {}
        for n in range(EVENTS):
            url = urls[n % 2]  # through A (either worker) and through B
            answer = httpx.post(  # a new connection each time: any worker may take it
                f"{url}/v1/events?sync=true",
                headers={"Authorization": f"Bearer {key}"},
                json={"action": "doc.read", "actor": {"id": str(n)}, "organization_id": org},
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            committed[answer.json()["id"]] = time.monotonic()
            time.sleep(0.05)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(len(r.arrived) < EVENTS for r in readers):
            time.sleep(0.02)
        latencies = [
            reader.arrived[event_id] - at
            for reader in readers
            for event_id, at in committed.items()
            if event_id in reader.arrived
        ]
        assert len(latencies) == STREAMS * EVENTS, "an event never reached a stream"
        assert max(latencies) < BUDGET, f"slowest arrival {max(latencies):.3f} s"
        for reader in readers:
            assert reader.order == sorted(reader.order)
        # SIGTERM with the streams still open: the server ends them and exits promptly.
        started = time.monotonic()
        _stop(a)
        processes.remove(a)
        assert time.monotonic() - started < 10, "the server did not exit promptly"
        for reader in readers:
            assert reader.ended.wait(5), "a stream outlived its server"
    finally:
        for reader in readers:
            reader.close()
        for process in processes:
            _stop(process)
