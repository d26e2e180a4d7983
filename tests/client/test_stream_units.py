"""The stream's sans-IO half (:mod:`trailseal.client.stream`) without a server: SSE parsing
per the WHATWG rules, and the resume state: Last-Event-ID, repeats dropped, the limit, and
which endings are retried, raised, or given up on."""

from __future__ import annotations

import random

import orjson
import pytest

from trailseal.client.errors import ApiError, ClientError, TransportError
from trailseal.client.protocol import Reply
from trailseal.client.retry import RetryPolicy
from trailseal.client.stream import EventStream, SseDecoder, SseEvent, stream_filters

POLICY = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=1.0)


def _feed(decoder: SseDecoder, text: str) -> list[SseEvent]:
    events = [decoder.feed(line) for line in text.split("\n")]
    return [e for e in events if e is not None]


def test_the_decoder_follows_the_event_stream_rules() -> None:
    decoder = SseDecoder()
    text = (
        ": ping\n\n"  # a comment alone dispatches nothing
        "id: 7\nevent: ready\ndata: {}\n\n"
        "data: first\ndata:second\n\n"  # two data lines; the space after ':' is optional
        "id: 9\n\n"  # an id alone sets the last event id, no event
        "data\n\n"  # a field with no colon: empty data
        "id: 1\x000\ndata: x\nretry: 5\nunknown: y\n\n"  # an id with NUL is ignored
    )
    assert _feed(decoder, text) == [
        SseEvent("ready", "{}", "7"),
        SseEvent("message", "first\nsecond", "7"),
        SseEvent("message", "", "9"),
        SseEvent("message", "x", "9"),
    ]
    assert decoder.last_id == "9"


def _view(seq: int, position: int) -> str:
    return orjson.dumps(
        {
            "id": f"e{seq}",
            "organization_id": "acme",
            "log_id": "l" * 26,
            "seq": seq,
            "leaf_hash": "00" * 32,
            "prev_hash": None,
            "hash": "11" * 32,
            "position": position,
        }
    ).decode()


def _frames(stream: EventStream, *frames: tuple[int, str, str]) -> list[int]:
    """Feed frames (id, event, data); the seqs of the events yielded."""
    seqs = []
    for position, kind, data in frames:
        for line in (f"id: {position}", f"event: {kind}", f"data: {data}", ""):
            event = stream.feed(line)
            if event is not None:
                seqs.append(event.seq)
    return seqs


def test_resume_state_repeats_and_limit() -> None:
    stream = EventStream(
        (("organization_id", "acme"),),
        after=None,
        limit=3,
        heartbeat=0.5,
        policy=POLICY,
        rng=random.Random(1),
    )
    params, headers = stream.request()
    assert params == (("organization_id", "acme"), ("limit", "3"), ("heartbeat", "0.5"))
    assert headers["Accept"] == "text/event-stream" and "Last-Event-ID" not in headers
    assert stream.read_timeout == 6.0
    assert _frames(stream, (40, "ready", '{"after":40}'), (41, "event", _view(0, 41))) == [0]
    # Reconnected: resumes after 41; the server repeating 41 is dropped.
    params, headers = stream.request()
    assert headers["Last-Event-ID"] == "41" and ("limit", "2") in params
    seqs = _frames(
        stream,
        (41, "ready", '{"after":41}'),
        (41, "event", _view(0, 41)),
        (42, "event", _view(1, 42)),
        (45, "later", "{}"),  # a kind this client does not know: ignored
        (47, "event", _view(2, 47)),
    )
    assert seqs == [1, 2] and stream.done()


def test_what_is_retried_and_what_is_raised() -> None:
    stream = EventStream(
        (), after="5", limit=None, heartbeat=None, policy=POLICY, rng=random.Random(2)
    )
    assert stream.request()[1]["Last-Event-ID"] == "5"
    # Worth retrying: a 503 (its Retry-After a floor), a lost connection; then given up.
    assert stream.refused(Reply(503, b"{}", "2", 0.0)) >= 2
    assert stream.lost("ConnectError: refused") <= 0.2
    with pytest.raises(TransportError, match="could not be resumed after 3 attempts"):
        stream.lost("ConnectError: refused")
    # A ready frame means connected: the count starts over.
    _frames(stream, (5, "ready", '{"after":5}'))
    assert stream.ended() <= 0.1 and stream.lost("ReadTimeout") <= 0.2
    # Not worth retrying: the key, the scope, a filter.
    with pytest.raises(ApiError) as refused:
        stream.refused(Reply(403, b'{"error":{"code":"forbidden","message":"no"}}'))
    assert refused.value.status == 403
    with pytest.raises(ClientError, match="no valid position"):
        _frames(stream, (-1, "event", _view(9, 9)))


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="cursor"):
        stream_filters({"cursor": "abc"})
    assert stream_filters({"action": "doc.*", "tags": ["a", "b"]}) == (
        ("action", "doc.*"),
        ("tags", "a"),
        ("tags", "b"),
    )
    with pytest.raises(ValueError, match="limit"):
        EventStream((), after=None, limit=0, heartbeat=None, policy=POLICY, rng=random.Random())
    with pytest.raises(ValueError, match="heartbeat"):
        EventStream((), after=None, limit=None, heartbeat=30, policy=POLICY, rng=random.Random())
    with pytest.raises(ClientError):
        EventStream((), after="x", limit=None, heartbeat=None, policy=POLICY, rng=random.Random())
