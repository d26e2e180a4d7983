"""The real server over real HTTP: uvicorn in a thread of the test process, on a real
SQLite file or a real PostgreSQL database (both drivers)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from trailseal.runtime import bootstrap, open_store
from trailseal.server.app import create_app
from trailseal.settings import Settings


@dataclass
class RunningServer:
    url: str
    admin_key: str
    settings: Settings

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def create_key(self, scopes: str, organization: str | None = None) -> str:
        with self.client() as client:
            body: dict[str, object] = {"scopes": scopes.split(","), "name": "test"}
            if organization is not None:
                body["organization_id"] = organization
            answer = client.post("/v1/keys", json=body)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["key"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    store = open_store(settings)
    admin = bootstrap(store)
    store.close()
    assert admin is not None
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        # A test that leaves a live stream open must not hold the server's shutdown.
        timeout_graceful_shutdown=5,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread, admin


@pytest.fixture
def server(
    driver: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    monkeypatch.setenv("TRAILSEAL_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    settings = Settings(
        port=_free_port(),
        data_dir=tmp_path / "data",
        host_name="test.local",
        database_url=database_url if driver == "postgres" else None,
    )
    uv, thread, admin = start_server(settings)
    yield RunningServer(f"http://127.0.0.1:{settings.port}", admin, settings)
    uv.should_exit = True
    thread.join(timeout=15)
