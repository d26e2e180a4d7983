"""The sync SDK against the real server (both drivers): queued logging, sync mode with
proofs, batches, reads, listings with cursors and the query language, receipts, and what
happens to events the server refuses."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.client.conftest import QUICK_RETRY
from tests.server.conftest import RunningServer
from trailseal.client import (
    ApiError,
    Client,
    Committed,
    DeliveryError,
    Receipt,
    ValidationError,
)
from trailseal.core.checkpoint import log_verifiers, open_checkpoint
from trailseal.core.merkle import verify_inclusion


@pytest.fixture
def server(shared_server: RunningServer) -> RunningServer:
    """These tests keep to their own organizations: one server per driver serves them."""
    return shared_server


def _org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"


def test_log_queues_and_flush_delivers_each_event_once(client: Client) -> None:
    org = _org()
    ids = [
        client.log(action="invoice.paid", actor={"id": f"u{n}"}, organization_id=org)
        for n in range(120)
    ]
    assert len(set(ids)) == 120 and ids == sorted(ids)  # time-ordered UUIDv7
    assert client.flush(timeout=20)
    stats = client.stats()
    assert stats.delivered == 120 and stats.queued == 0 and stats.dead_lettered == 0
    assert client.get_log(org).tree_size == 120
    stored = client.get_event(ids[7])
    assert stored.event is not None
    assert stored.event["actor"] == {"id": "u7", "type": "user"}  # a read default
    assert stored.event["occurred_at"].endswith("Z")  # filled in at log() time


def test_log_snapshots_the_event(client: Client) -> None:
    metadata = {"amount": 1}
    event_id = client.log(action="a.b", actor={"id": "x"}, metadata=metadata)
    metadata["amount"] = 2  # the caller keeps using its objects
    client.flush(timeout=20)
    stored = client.get_event(event_id).event
    assert stored is not None and stored["metadata"] == {"amount": 1}


def test_log_sync_returns_a_proof_that_verifies(client: Client) -> None:
    org = _org()
    client.log_sync(action="user.login", actor={"id": "a"}, organization_id=org)
    committed = client.log_sync(action="user.login", actor={"id": "b"}, organization_id=org)
    assert isinstance(committed, Committed) and committed.seq == 1
    assert committed.inclusion_proof is not None and committed.checkpoint is not None
    log = client.get_log(org)
    opened = open_checkpoint(committed.checkpoint.note, log_verifiers(log.verifier_key))
    assert committed.leaf_hash is not None
    verify_inclusion(
        1, 2, committed.leaf_hash, committed.inclusion_proof.hashes, opened.checkpoint.root_hash
    )
    again = client.log_sync(
        id=committed.id,
        action="user.login",
        actor={"id": "b"},
        organization_id=org,
        occurred_at=client.get_event(committed.id).event["occurred_at"],  # type: ignore[index]
    )
    assert again.duplicate and again.seq == 1


def test_log_batch_receipts_and_sync(client: Client) -> None:
    org = _org()
    events = [{"action": "doc.read", "actor": {"id": "a"}, "organization_id": org}] * 3
    receipts = client.log_batch(events)
    assert len(receipts) == 1 and isinstance(receipts[0], Receipt)
    assert receipts[0].status == "committed" and len(receipts[0].event_ids) == 3
    followed = client.get_receipt(receipts[0].receipt_id)
    assert followed.status == "committed" and [e["seq"] for e in followed.events] == [0, 1, 2]
    committed = client.log_batch(events, sync=True)
    assert [c.seq for c in committed] == [3, 4, 5]  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as bad:
        client.log_batch([*events, {"action": "doc.read", "actor": {}}])
    assert bad.value.field == "/3/actor/id"


def test_reads_list_iterate_and_query(client: Client) -> None:
    org = _org()
    for n in range(7):
        client.log(
            action="invoice.paid" if n % 2 else "invoice.failed",
            actor={"id": "alice" if n < 4 else "bob"},
            outcome="failure" if n == 3 else "success",
            organization_id=org,
            message=f"payment number {n}",
            tags=["billing"],
        )
    client.flush(timeout=20)
    page = client.list_events(organization_id=org, limit=3, order="asc")
    assert len(page.events) == 3 and page.next_cursor is not None
    assert [e.seq for e in page.events] == [0, 1, 2]
    following = client.list_events(
        organization_id=org, limit=3, order="asc", cursor=page.next_cursor
    )
    assert [e.seq for e in following.events] == [3, 4, 5]
    everything = list(client.iter_events(organization_id=org, page_size=2))
    assert len(everything) == 7 and len({e.id for e in everything}) == 7
    alice = list(client.iter_events(organization_id=org, actor_id="alice", action="invoice.*"))
    assert len(alice) == 4
    found = client.list_events(organization_id=org, q='actor:alice outcome:failure "number 3"')
    assert [e.seq for e in found.events] == [3]
    tagged = client.list_events(organization_id=org, tags=["billing"], total=True)
    assert tagged.total == 7


def test_caller_thread_errors_name_the_field(client: Client) -> None:
    with pytest.raises(ValidationError) as missing:
        client.log(action="invoice.paid", actor={"name": "no id"})
    assert missing.value.field == "/actor/id"
    with pytest.raises(ValidationError) as typed:
        client.log(action="invoice.paid", actor={"id": "a"}, tags="not-a-list")
    assert typed.value.field == "/tags"
    with pytest.raises(ValidationError) as unknown:
        client.log(action="invoice.paid", actor={"id": "a"}, colour="red")
    assert unknown.value.field == "/colour"
    with pytest.raises(ValidationError) as large:
        client.log(action="a.b", actor={"id": "a"}, metadata={"blob": "x" * 70_000})
    assert large.value.code == "too_large"
    assert client.stats().logged == 0


def test_worker_side_failures_go_to_the_dead_letter_alone(
    client: Client, tmp_path: Path, server: RunningServer
) -> None:
    """An event that passes the quick check but not the full schema, and one whose id the
    server holds with other content (409), are set aside; their batch-mates arrive."""
    org = _org()
    taken = client.log_sync(action="a.b", actor={"id": "a"}, organization_id=org).id
    good = [client.log(action="doc.read", actor={"id": "a"}, organization_id=org) for _ in range(3)]
    bad_outcome = client.log(
        action="doc.read", actor={"id": "a"}, outcome="maybe", organization_id=org
    )
    conflict = client.log(id=taken, action="other.thing", actor={"id": "a"}, organization_id=org)
    good.append(client.log(action="doc.read", actor={"id": "a"}, organization_id=org))
    assert client.flush(timeout=20)
    for event_id in good:
        assert client.get_event(event_id).id == event_id
    assert client.get_log(org).tree_size == 1 + len(good)
    assert client.dead_letter is not None
    lines = client.dead_letter.read()
    assert sorted(e.id for line in lines for e in line.events or ()) == sorted(
        [bad_outcome, conflict]
    )
    text = client.dead_letter.path.read_text()
    assert '"field":"/outcome"' in text and '"code":"idempotency_conflict"' in text
    assert client.stats().dead_lettered == 2
    # Still refused on replay, so both stay in the file.
    result = client.replay_dead_letter()
    assert result.delivered == 0 and result.remaining == 2


def test_raise_on_error_raises_from_flush(server: RunningServer, api_key: str) -> None:
    with Client(
        server.url, api_key, raise_on_error=True, flush_interval=0.01, retry=QUICK_RETRY
    ) as c:
        event_id = c.log(action="doc.read", actor={"id": "a"}, outcome="maybe")
        with pytest.raises(DeliveryError) as raised:
            c.flush(timeout=20)
        assert raised.value.event_ids == [event_id]
        assert "/outcome" in raised.value.errors[0]
        assert c.flush(timeout=5)  # raised once


def test_api_errors_carry_status_code_and_field(client: Client, server: RunningServer) -> None:
    with pytest.raises(ApiError) as missing:
        client.get_event("no-such-event")
    assert missing.value.status == 404
    with Client(server.url, "tsk_live_" + "x" * 40, retry=QUICK_RETRY) as stranger:
        with pytest.raises(ApiError) as unauthorized:
            stranger.get_log("default")
        assert unauthorized.value.status == 401
        assert "tsk_live_" not in repr(stranger) and "tsk_live_" not in str(unauthorized.value)
