"""The SDK's pure parts without a server: retry timing and Retry-After, batching bounds,
splitting a refused batch, the full-queue policies, the dead-letter file, the trust store,
configuration, and keeping the API key out of sight."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from trailseal.client import (
    Client,
    ClientClosedError,
    ClientError,
    DeadLetterFile,
    QueueFullError,
    RetryPolicy,
    TrustStore,
)
from trailseal.client.batching import Batcher, Failure, Prepared, deliver
from trailseal.client.protocol import Call, Op, Reply, Sleep
from trailseal.client.retry import attempt, parse_retry_after, retryable

KEY = "tsk_test_" + "k" * 40


def drive(op: Op[Any], replies: list[Reply]) -> tuple[Any, list[Call], list[float]]:
    """Run an operation against scripted replies; return its result, calls and sleeps."""
    calls: list[Call] = []
    sleeps: list[float] = []
    try:
        step = next(op)
        while True:
            if isinstance(step, Sleep):
                sleeps.append(step.seconds)
                step = op.send(None)
            else:
                calls.append(step)
                step = op.send(replies.pop(0))
    except StopIteration as stop:
        return stop.value, calls, sleeps


# -- retries -------------------------------------------------------------------------------


def test_what_is_retried() -> None:
    assert all(retryable(Reply(s)) for s in (0, 408, 429, 500, 502, 503, 504))
    assert not any(retryable(Reply(s)) for s in (200, 201, 202, 400, 401, 403, 404, 409, 413, 422))


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, multiplier=2, max_backoff=3)
    assert [policy.delay(n, None, 0.999999) for n in (1, 2, 3, 4, 5)] == pytest.approx(
        [0.5, 1, 2, 3, 3], rel=1e-5
    )
    assert policy.delay(3, None, 0.0) == 0.0
    draws = {round(policy.delay(2, None, random.Random(n).random()), 6) for n in range(50)}
    assert len(draws) > 40 and all(0 <= d <= 1 for d in draws)


def test_retry_after_sets_a_floor_seconds_or_http_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("7", now) == 7
    when = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(when, now) == pytest.approx(30)
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
    policy = RetryPolicy(initial_backoff=0.1, max_retry_after=60)
    assert 7 <= policy.delay(1, 7.0, 0.5) <= 7.1
    assert policy.delay(1, 3600.0, 0.0) == 60  # capped


def test_attempts_follow_the_policy_and_retry_after() -> None:
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01)
    replies = [
        Reply(0, error="ConnectError"),
        Reply(503, retry_after="2", received_at=100.0),
        Reply(429),
        Reply(202, b"{}"),
    ]
    (reply, count), calls, sleeps = drive(
        attempt(Call("POST", "/v1/events/batch", body=b"{}"), policy, random.Random(1)),
        replies,
    )
    assert reply.status == 202 and count == 4 and len(calls) == 4
    assert len(sleeps) == 3 and 2 <= sleeps[1] <= 2.02
    # A 422 is final at once; running out of attempts returns the last answer.
    (reply, count), _, sleeps = drive(
        attempt(Call("GET", "/"), policy, random.Random(1)), [Reply(422)]
    )
    assert (reply.status, count, sleeps) == (422, 1, [])
    (reply, count), _, _ = drive(
        attempt(Call("GET", "/"), RetryPolicy(max_attempts=2, initial_backoff=0), random.Random()),
        [Reply(500), Reply(500)],
    )
    assert (reply.status, count) == (500, 2)


# -- batching ------------------------------------------------------------------------------


def test_batches_are_due_by_size_bytes_age_or_force() -> None:
    batcher = Batcher(max_items=100, max_events=3, max_bytes=2048, max_age=1.0)
    assert batcher.due_in(0) is None
    assert batcher.add((b"x" * 10, 1_000_000_000)) is True  # the first wakes the worker
    assert batcher.due_in(1_500_000_000) == pytest.approx(0.5)
    assert batcher.due_in(1_500_000_000, force=True) == 0
    assert batcher.due_in(2_000_000_000) == 0
    assert batcher.due_in(-(10**12)) == pytest.approx(1.0)  # a clock stepping back: capped
    assert batcher.add((b"y", 0)) is False
    assert batcher.add((b"z", 0)) is True  # full batch
    batcher.add((b"w", 0))
    assert [p for p, _ in batcher.take()] == [b"x" * 10, b"y", b"z"]
    assert len(batcher) == 1
    big = Batcher(max_items=100, max_events=1000, max_bytes=2048, max_age=1.0)
    for _ in range(5):
        big.add((b"e" * 600, 0))
    assert big.due_in(0) == 0  # bytes reached
    assert [len(big.take()) for _ in range(3)] == [3, 2, 0]
    with pytest.raises(ValueError, match="batch size"):
        Batcher(max_items=1, max_events=1001, max_bytes=2048, max_age=1)


def _prepared(n: int) -> list[Prepared]:
    return [Prepared(f"id-{i}", orjson.dumps({"id": f"id-{i}"})) for i in range(n)]


def test_a_refused_batch_is_split_and_the_rest_resent() -> None:
    problems = {
        "error": {
            "code": "enum",
            "message": "2 problem(s)",
            "field": "/events/1/outcome",
            "details": [
                {
                    "index": 1,
                    "field": "/outcome",
                    "pointer": "/events/1/outcome",
                    "code": "enum",
                    "message": "bad outcome",
                },
                {
                    "index": 3,
                    "field": "/actor/id",
                    "pointer": "/events/3/actor/id",
                    "code": "required",
                    "message": "no id",
                },
            ],
        }
    }
    conflict = {
        "error": {
            "code": "idempotency_conflict",
            "message": "other content",
            "field": "/events/0/id",
        }
    }
    replies = [
        Reply(422, orjson.dumps(problems)),
        Reply(409, orjson.dumps(conflict)),
        Reply(202, b"{}"),
    ]
    outcome, calls, _ = drive(deliver(_prepared(5), RetryPolicy(), random.Random()), replies)
    assert outcome.delivered == ["id-2", "id-4"]
    assert [(f.events[0].id, f.status, f.code, f.field) for f in outcome.failures] == [
        ("id-1", 422, "enum", "/outcome"),
        ("id-3", 422, "required", "/actor/id"),
        ("id-0", 409, "idempotency_conflict", "/id"),
    ]
    assert [len(orjson.loads(c.body or b"")["events"]) for c in calls] == [5, 3, 2]


def test_a_batch_refused_as_a_whole_fails_whole() -> None:
    body = orjson.dumps({"error": {"code": "too_large", "message": "too big", "field": "/events"}})
    outcome, _, _ = drive(deliver(_prepared(3), RetryPolicy(), random.Random()), [Reply(422, body)])
    assert outcome.delivered == [] and len(outcome.failures) == 1
    assert len(outcome.failures[0].events) == 3 and outcome.failures[0].code == "too_large"
    exhausted, _, _ = drive(
        deliver(_prepared(2), RetryPolicy(max_attempts=2, initial_backoff=0), random.Random()),
        [Reply(0, error="ConnectError: refused"), Reply(503)],
    )
    assert exhausted.failures[0].status == 503 and exhausted.failures[0].attempts == 2


# -- the queue -----------------------------------------------------------------------------


class Gate(httpx.BaseTransport):
    """Answers 202 to everything once opened; until then every request waits."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.seen = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.open.wait(30)
        self.seen += len(orjson.loads(request.read())["events"])
        return httpx.Response(202, json={})


def _queued_client(on_full: str, gate: Gate, **extra: Any) -> Client:
    return Client(
        "http://sdk.test",
        KEY,
        batch_size=1,
        queue_size=2,
        flush_interval=0,
        on_full=on_full,  # type: ignore[arg-type]
        transport=gate,
        **extra,
    )


def _fill(client: Client) -> None:
    client.log(action="a.b", actor={"id": "a"})  # taken by the worker, which then waits
    deadline = time.monotonic() + 10
    while client.stats().queued and time.monotonic() < deadline:
        time.sleep(0.001)
    client.log(action="a.b", actor={"id": "a"})
    client.log(action="a.b", actor={"id": "a"})  # the queue (2) is full now


def test_full_queue_drop_counts() -> None:
    gate = Gate()
    client = _queued_client("drop", gate)
    _fill(client)
    client.log(action="a.b", actor={"id": "dropped"})
    assert client.stats().dropped == 1 and client.stats().queued == 2
    gate.open.set()
    assert client.flush(timeout=10)
    client.close()
    assert gate.seen == 3 and client.stats().delivered == 3


def test_full_queue_raise() -> None:
    gate = Gate()
    client = _queued_client("raise", gate)
    _fill(client)
    with pytest.raises(QueueFullError):
        client.log(action="a.b", actor={"id": "a"})
    gate.open.set()
    client.close()
    assert gate.seen == 3


def test_full_queue_blocks_until_room_or_timeout() -> None:
    gate = Gate()
    client = _queued_client("block", gate, block_timeout=0.2)
    _fill(client)
    started = time.monotonic()
    with pytest.raises(QueueFullError, match="no room"):
        client.log(action="a.b", actor={"id": "a"})
    assert time.monotonic() - started >= 0.2
    threading.Timer(0.2, gate.open.set).start()
    client.block_timeout = None
    client.log(action="a.b", actor={"id": "waited"})  # returns once the worker made room
    client.close()
    assert gate.seen == 4
    with pytest.raises(ClientClosedError):
        client.log(action="a.b", actor={"id": "a"})


def test_log_never_touches_the_network() -> None:
    class Refuse(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused")

    client = Client(
        "http://sdk.test",
        KEY,
        transport=Refuse(),
        retry=RetryPolicy(max_attempts=1),
        flush_interval=0,
        dead_letter_path=False,
    )
    started = time.perf_counter()
    for _ in range(100):
        client.log(action="a.b", actor={"id": "a"})
    assert time.perf_counter() - started < 0.5
    client.close(timeout=5)
    assert client.stats().failed == 100  # dead letter turned off: counted as lost, and logged


def test_close_dead_letters_what_it_could_not_send(tmp_path: Path) -> None:
    gate = Gate()  # never opened: the batch in flight is stuck until close gives up
    client = Client(
        "http://sdk.test",
        KEY,
        transport=gate,
        batch_size=2,
        flush_interval=0,
        dead_letter_path=tmp_path / "dead.jsonl",
    )
    for _ in range(5):
        client.log(action="a.b", actor={"id": "a"})
    client.close(timeout=0.2)
    # The worker is stuck in a request: the batch it holds and the queued ones are kept.
    assert client.stats().dead_lettered == 5
    assert DeadLetterFile(tmp_path / "dead.jsonl").count() == 5
    gate.open.set()  # if the stuck batch arrives after all, replaying it is harmless


# -- the dead-letter file ------------------------------------------------------------------


def test_dead_letter_lines_and_atomic_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "dl" / "dead.jsonl"
    dead = DeadLetterFile(path)
    assert dead.read() == [] and dead.count() == 0
    first = Failure(_prepared(2), 503, "overloaded", "busy", None, 3)
    second = Failure(_prepared(1), 422, "enum", "bad", "/outcome", 1)
    assert dead.append([first, second]) == 3
    lines = dead.read()
    assert [len(line.events or ()) for line in lines] == [2, 1]
    document = orjson.loads(lines[0].raw)
    assert document["error"] == {
        "status": 503,
        "code": "overloaded",
        "message": "busy",
        "field": None,
    }
    assert document["events"] == [{"id": "id-0"}, {"id": "id-1"}] and document["attempts"] == 3
    assert path.stat().st_mode & 0o777 == 0o600
    # A line appended after the replay read the file survives the rewrite.
    dead.append([Failure(_prepared(1), 0, "network", "refused")])
    kept = dead.rewrite([(lines[0].raw, []), (lines[1].raw, [second])])
    assert len(kept) == 2 and dead.count() == 2
    path.write_bytes(path.read_bytes() + b"not json\n")
    assert dead.read()[-1].events is None  # kept, reported, never sent


# -- the trust store -----------------------------------------------------------------------


def test_trust_store_compare_and_set(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust.json")
    assert store.get("o") is None
    assert store.compare_and_set("o", None, "note-1")
    assert not store.compare_and_set("o", None, "note-2")  # someone else was first
    assert store.compare_and_set("o", "note-1", "note-2")
    assert TrustStore(tmp_path / "trust.json").get("o") == "note-2"
    memory = TrustStore(None)
    assert memory.compare_and_set("o", None, "n") and memory.get("o") == "n"
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ClientError, match="not JSON"):
        TrustStore(tmp_path / "bad.json").get("o")


# -- configuration -------------------------------------------------------------------------


def test_configuration_from_arguments_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAILSEAL_API_KEY", raising=False)
    monkeypatch.delenv("TRAILSEAL_URL", raising=False)
    with pytest.raises(ClientError, match="TRAILSEAL_API_KEY"):
        Client()
    monkeypatch.setenv("TRAILSEAL_API_KEY", KEY)
    monkeypatch.setenv("TRAILSEAL_URL", "http://audit.internal:9000/")
    client = Client()
    assert client.url == "http://audit.internal:9000"
    assert KEY not in repr(client) and KEY not in str(vars(client).get("url"))
    assert Client("http://other:1", KEY).url == "http://other:1"
    with pytest.raises(ValueError, match="on_full"):
        Client(api_key=KEY, on_full="explode")  # type: ignore[arg-type]


def test_the_public_names_are_exported() -> None:
    import trailseal.client as package

    exported = set(package.__all__)
    assert all(hasattr(package, name) for name in exported)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("trailseal.")
    }
    assert public <= exported, public - exported


def test_the_sdk_needs_only_the_base_install() -> None:
    """``pip install trailseal`` (httpx, cryptography, orjson, click, rich) is enough: the
    SDK loads nothing from the server extra, nor the server, ledger or store packages."""
    import subprocess
    import sys

    code = (
        "import sys, trailseal.client\n"
        "extra = {'fastapi', 'pydantic', 'psycopg', 'psycopg_pool', 'uvicorn', 'starlette'}\n"
        "inner = ('trailseal.server', 'trailseal.ledger', 'trailseal.store')\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in extra or m.startswith(inner))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_undeliverable_events_go_to_the_default_dead_letter_file(tmp_path: Path) -> None:
    class Refuse(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused")

    default = tmp_path / "state" / "trailseal" / "dead-letter.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TRAILSEAL_DEAD_LETTER", raising=False)
        patch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        client = Client(
            "http://sdk.test",
            KEY,
            transport=Refuse(),
            retry=RetryPolicy(max_attempts=1),
            flush_interval=0,
        )
        ids = [client.log(action="a.b", actor={"id": "a"}) for _ in range(5)]
        client.close(timeout=5)
    assert client.stats().failed == 0
    kept = default.read_text()
    assert all(event_id in kept for event_id in ids)
