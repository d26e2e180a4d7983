"""Two server processes on one PostgreSQL ingest into the same log at once; exactly one of
them prints the admin key; the log verifies afterwards."""

from __future__ import annotations

import base64
import os
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve import KEY_LINE, _free_port, _start, _stop, _wait_healthy
from tests.dbfixtures import new_pg_database
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.slow


def test_two_servers_one_log(pg_server: PostgresServer | str, tmp_path: Path) -> None:
    dsn = new_pg_database(pg_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    env.update(
        TRAILSEAL_DATABASE_URL=dsn,
        TRAILSEAL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
        TRAILSEAL_DATA_DIR=str(tmp_path),
    )
    trailseal = str(Path(sys.executable).parent / "trailseal")
    ports = [_free_port(), _free_port()]
    started = [_start([trailseal, "serve", "--port", str(p)], env) for p in ports]
    try:
        keys = [m.group(1) for _, lines in started for line in lines if (m := KEY_LINE.match(line))]
        assert len(keys) == 1, "exactly one server prints the admin key"
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            _wait_healthy(url)
        headers = {"Authorization": f"Bearer {keys[0]}"}
        errors: list[str] = []

        def ingest(url: str) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                for _ in range(15):
                    events = [
                        {
                            "id": uuid.uuid4().hex,
                            "action": "a.b",
                            "actor": {"id": "x"},
                            "organization_id": "acme",
                        }
                        for _ in range(40)
                    ]
                    answer = client.post("/v1/events/batch", json={"events": events})
                    if answer.status_code != 202:
                        errors.append(answer.text)

        threads = [threading.Thread(target=ingest, args=(url,)) for url in urls * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with httpx.Client(base_url=urls[0], headers=headers, timeout=120) as client:
            report = client.post("/v1/verify", json={"organization_id": "acme"}).json()
            log = client.get("/v1/logs/acme").json()
        assert report["ok"] is True, report
        assert report["checked"] == log["tree_size"] == 4 * 15 * 40
    finally:
        for process, _ in started:
            _stop(process)
