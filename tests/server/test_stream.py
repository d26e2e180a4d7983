"""``GET /v1/stream/events`` over real HTTP (both drivers): the SSE wire format and headers,
a ready frame carrying the start position, events flushed as they commit, heartbeats,
resuming with ``Last-Event-ID`` / ``after``, the catch-up a plain client gets, the list
filters, key scopes and bindings, and a revoked key ending its stream."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.client.conftest import shared_server  # noqa: F401 (fixture)
from tests.server.conftest import RunningServer
from trailseal.server.routes import stream as stream_route

LIVE = {"Accept": "text/event-stream"}


@pytest.fixture
def server(shared_server: RunningServer) -> RunningServer:  # noqa: F811
    return shared_server


def _org() -> str:
    return f"live-{uuid.uuid4().hex[:10]}"


def _log(server: RunningServer, org: str, action: str = "doc.read", **extra: Any) -> int:
    """Log one event (sync); its stream position, read back from the listing."""
    with server.client() as http:
        answer = http.post(
            "/v1/events?sync=true",
            json={"action": action, "actor": {"id": "a"}, "organization_id": org, **extra},
        )
        assert answer.status_code == 201, answer.text
        event_id = answer.json()["id"]
        listed = http.get("/v1/events", params={"organization_id": org, "limit": 200}).json()
    return int(next(e["position"] for e in listed["events"] if e["id"] == event_id))


class Frames:
    """Reads an SSE response on a thread: frames as (id, event, data), comments, and when
    each line came."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.frames: list[tuple[str | None, str, Any]] = []
        self.comments: list[float] = []
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.comments.append(time.monotonic())
                elif line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                elif fields:
                    data = orjson.loads(fields["data"])
                    self.frames.append((fields.get("id"), fields.get("event", ""), data))
                    fields = {}
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[str | None, str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.frames) >= count, f"only {self.frames}"
        return self.frames


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_headers_ready_frame_live_events_and_heartbeats(
    server: RunningServer, http: httpx.Client
) -> None:
    org = _org()
    before = _log(server, org)
    params = {"organization_id": org, "heartbeat": "0.2"}
    with http.stream("GET", "/v1/stream/events", params=params, headers=LIVE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        frames = Frames(response)
        ready_id, kind, data = frames.wait_for(1)[0]
        assert kind == "ready" and int(ready_id or -1) == data["after"] >= before
        time.sleep(0.5)
        assert len(frames.frames) == 1, "an event committed before the stream started came"
        position = _log(server, org, "doc.write")
        event_id, kind, view = frames.wait_for(2)[1]  # flushed at once, the stream still open
        assert kind == "event" and int(event_id or -1) == view["position"] == position
        assert view["organization_id"] == org and view["event"]["action"] == "doc.write"
        assert view["seq"] == 1
        time.sleep(0.5)
    gaps = [b - a for a, b in itertools.pairwise(frames.comments)]
    assert len(frames.comments) >= 3 and max(gaps) < 0.5, frames.comments


def test_resume_after_a_position(server: RunningServer, http: httpx.Client) -> None:
    org = _org()
    positions = [_log(server, org, message=f"m{n}") for n in range(5)]
    params: dict[str, Any] = {"organization_id": org, "limit": "2"}
    # Last-Event-ID resumes strictly after it, and wins over ?after=.
    answer = http.get(
        "/v1/stream/events",
        params={**params, "after": "0"},
        headers={**LIVE, "Last-Event-ID": str(positions[1])},
    )
    ids = [line[4:] for line in answer.text.splitlines() if line.startswith("id: ")]
    assert ids == [str(positions[1]), str(positions[2]), str(positions[3])]  # ready, 2 events
    answer = http.get("/v1/stream/events", params={**params, "after": str(positions[3])})
    assert f"id: {positions[4]}\n" in answer.text and f"id: {positions[3]}\nevent: event" not in (
        answer.text
    )
    for bad in ("abc", "-1", "1" * 25, str(2**63)):
        refused = http.get("/v1/stream/events", headers={"Last-Event-ID": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["field"] == "/last-event-id"


def test_a_plain_client_gets_the_catch_up_and_the_answer_ends(
    server: RunningServer, http: httpx.Client
) -> None:
    org = _org()
    for action in ("doc.read", "user.login", "doc.write", "doc.read"):
        _log(server, org, action, tags=["x"] if action == "doc.write" else [])
    answer = http.get(
        "/v1/stream/events", params={"organization_id": org, "action": "doc.*", "after": 0}
    )
    assert answer.status_code == 200
    datas = [orjson.loads(line[6:]) for line in answer.text.splitlines() if line[:6] == "data: "]
    assert datas[0] == {"after": 0}
    assert [d["seq"] for d in datas[1:]] == [0, 2, 3]
    answer = http.get(
        "/v1/stream/events", params={"q": f"org:{org} action:doc.write", "after": 0, "tags": "x"}
    )
    assert answer.text.count("event: event") == 1


def test_keys_scopes_and_bindings(server: RunningServer, http: httpx.Client) -> None:
    mine, other = _org(), _org()
    _log(server, mine)
    _log(server, other)
    bound = server.create_key("events:read", organization=mine)
    with server.client(bound) as client:
        answer = client.get("/v1/stream/events", params={"after": 0})
        organizations = {
            orjson.loads(line[6:]).get("organization_id")
            for line in answer.text.splitlines()
            if line.startswith('data: {"id"')
        }
        assert organizations == {mine}
        assert client.get("/v1/stream/events", params={"organization_id": other}).status_code == (
            404
        )
    with server.client(server.create_key("events:write")) as client:
        assert client.get("/v1/stream/events").status_code == 403
    assert httpx.get(f"{server.url}/v1/stream/events").status_code == 401


def test_a_revoked_key_stops_its_stream(
    server: RunningServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_route, "RECHECK_SECONDS", 0.0)  # the server runs in-process
    org = _org()
    created = http.post("/v1/keys", json={"scopes": ["events:read"], "name": "t"}).json()
    with (
        server.client(created["key"]) as client,
        client.stream(
            "GET", "/v1/stream/events", params={"organization_id": org}, headers=LIVE
        ) as response,
    ):
        frames = Frames(response)
        frames.wait_for(1)
        assert http.delete(f"/v1/keys/{created['key_id']}").status_code == 200
        _log(server, org)  # wakes the stream, which then finds its key revoked
        assert frames.ended.wait(10), "the stream outlived its key"
