"""The ledger on both drivers: appends, proofs from tiles, idempotency, redaction, hooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

import pytest

from tests.ledger.helpers import PROJECT, event, make_ledger, prepared, verify_whole_log
from trailseal.core.merkle import verify_consistency, verify_inclusion
from trailseal.ledger.integrate import AppendResult, CommittedEntry, IdempotencyConflict
from trailseal.ledger.service import Ledger
from trailseal.store.base import AppendTransaction, LogHead, Store


@pytest.fixture
def ledger(store: Store) -> Iterator[Ledger]:
    ledger = make_ledger(store)
    yield ledger
    ledger.close()


def test_appends_build_a_verifiable_log(ledger: Ledger) -> None:
    sizes = [1, 2, 5, 250, 7, 300]  # crosses tile boundaries (256) at level 0
    for size in sizes:
        results = ledger.append(PROJECT, "acme", [prepared(event()) for _ in range(size)]).result()
        assert len(results) == size and not any(r.duplicate for r in results)
    log = ledger.log_for(PROJECT, "acme")
    assert verify_whole_log(ledger, PROJECT, log.log_id) == sum(sizes)


def test_sync_result_carries_a_verifiable_proof(ledger: Ledger) -> None:
    ledger.append(PROJECT, "acme", [prepared(event()) for _ in range(10)]).result()
    [result] = ledger.append(PROJECT, "acme", [prepared(event())]).result()
    assert result.checkpoint is not None and result.leaf_hash is not None
    assert result.seq == 10 and result.checkpoint.size == 11
    proof = ledger.inclusion_proof(PROJECT, result.log_id, result.seq, result.checkpoint.size)
    verify_inclusion(result.seq, 11, result.leaf_hash, proof, result.checkpoint.root_hash)


def test_organizations_get_separate_logs(ledger: Ledger) -> None:
    a = ledger.append(PROJECT, "acme", [prepared(event())]).result()[0]
    b = ledger.append(PROJECT, "globex", [prepared(event())]).result()[0]
    c = ledger.append(PROJECT, None, [prepared(event())]).result()[0]
    assert len({a.log_id, b.log_id, c.log_id}) == 3
    assert a.seq == b.seq == c.seq == 0
    assert ledger.log_for(PROJECT, None).organization == "default"


def test_concurrent_duplicates_append_exactly_once(ledger: Ledger) -> None:
    raw = event()
    results: list[object] = []
    barrier = threading.Barrier(16)

    def submit() -> None:
        barrier.wait()
        results.append(ledger.append(PROJECT, "acme", [prepared(raw)]).result()[0])

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 16
    assert len({(r.log_id, r.seq) for r in results}) == 1  # type: ignore[attr-defined]
    log = ledger.log_for(PROJECT, "acme")
    assert len(list(ledger.store.iter_entries(PROJECT, log.log_id, 0, 100))) == 1


def test_same_id_other_content_is_a_conflict_and_stores_nothing(ledger: Ledger) -> None:
    original = event()
    ledger.append(PROJECT, "acme", [prepared(original)]).result()
    changed = dict(original, action="invoice.deleted")
    fresh = event()
    with pytest.raises(IdempotencyConflict) as caught:
        ledger.append(PROJECT, "acme", [prepared(fresh), prepared(changed)]).result()
    assert caught.value.event_id == original["id"] and caught.value.index == 1
    assert ledger.entry(PROJECT, fresh["id"]) is None  # the whole batch was rejected
    retry = ledger.append(PROJECT, "acme", [prepared(original)]).result()
    assert retry[0].duplicate and retry[0].seq == 0


def test_a_retry_without_occurred_at_still_matches(ledger: Ledger) -> None:
    raw = {"id": "no-time-1", "action": "a.b", "actor": {"id": "x"}}
    first = ledger.append(PROJECT, "acme", [prepared(raw)]).result()[0]
    again = ledger.append(PROJECT, "acme", [prepared(raw)]).result()[0]
    assert again.duplicate and again.seq == first.seq


def test_redaction_keeps_every_proof_valid(ledger: Ledger) -> None:
    raws = [event(message="secret") for _ in range(20)]
    ledger.append(PROJECT, "acme", [prepared(r) for r in raws]).result()
    log = ledger.log_for(PROJECT, "acme")
    before = ledger.checkpoint(PROJECT, log.log_id)
    assert ledger.redact(PROJECT, raws[5]["id"]) is True
    redacted = ledger.entry(PROJECT, raws[5]["id"])
    assert redacted is not None and redacted.redacted
    ledger.append(PROJECT, "acme", [prepared(event()) for _ in range(5)]).result()
    after = ledger.checkpoint(PROJECT, log.log_id)
    assert before is not None and after is not None
    proof = ledger.inclusion_proof(PROJECT, log.log_id, 5, after.size)
    verify_inclusion(5, after.size, redacted.leaf_hash, proof, after.root_hash)
    consistency = ledger.consistency_proof(PROJECT, log.log_id, before.size, after.size)
    verify_consistency(before.size, after.size, consistency, before.root_hash, after.root_hash)
    assert verify_whole_log(ledger, PROJECT, log.log_id) == 25


class _CountingHook:
    """A façade hook: keeps a per-log count of appended entries and checks it sees ext."""

    name = "counter"

    def __init__(self) -> None:
        self.seen_ext: list[bytes | None] = []

    def on_append(
        self, txn: AppendTransaction, head: LogHead, entries: Sequence[CommittedEntry]
    ) -> None:
        before = int(txn.read_state(self.name) or b"0")
        assert before == head.size  # the state moves in step with the log
        self.seen_ext.extend(e.event.ext for e in entries)
        txn.write_state(self.name, str(before + len(entries)).encode())


def test_facade_hook_state_and_ext(store: Store) -> None:
    hook = _CountingHook()
    ledger = make_ledger(store)
    ledger.close()
    from tests.ledger.helpers import MASTER
    from trailseal.ledger.service import Ledger as LedgerClass
    from trailseal.ledger.service import LedgerConfig

    ledger = LedgerClass(
        store, MASTER, LedgerConfig(host_name="test.local"), hooks_for=lambda project: [hook]
    )
    try:
        from datetime import UTC, datetime

        from trailseal.ledger.prepare import prepare_incoming

        with_ext = prepare_incoming(
            event(),
            now=datetime.now(UTC),
            new_id=lambda: "x",
            ext={"pangea": {"envelope": {"message": "hi"}}},
        )
        ledger.append(PROJECT, "acme", [with_ext, prepared(event())]).result()
        ledger.append(PROJECT, "acme", [prepared(event())]).result()
        log = ledger.log_for(PROJECT, "acme")
        with store.append(PROJECT, log.log_id) as txn:
            assert txn.read_state("counter") == b"3"
        first = store.get_entry(PROJECT, log.log_id, 0)
        assert first is not None and first.entry is not None
        assert b'"ext":{"pangea":{"envelope":{"message":"hi"}}}' in first.entry
        assert hook.seen_ext[0] is not None and hook.seen_ext[1] is None
        verify_whole_log(ledger, PROJECT, log.log_id)
    finally:
        ledger.close()


def test_async_accept_through_intake_commits_later(store: Store) -> None:
    ledger = make_ledger(store, intake_threshold=0)  # force the durable-intake path
    try:
        raws = [event() for _ in range(3)]
        receipt, future = ledger.accept(
            PROJECT, "acme", [prepared(r) for r in raws], receipt_id="rcpt-1"
        )
        assert future is None and receipt.state == "queued"
        stored = store.get_receipt(PROJECT, "rcpt-1")
        assert stored is not None and stored.state == "queued"
        assert ledger.entry(PROJECT, raws[0]["id"]) is None
        assert ledger.drain_intake() == 1
        done = store.get_receipt(PROJECT, "rcpt-1")
        assert done is not None and done.state == "committed"
        assert all(ledger.entry(PROJECT, r["id"]) is not None for r in raws)
        assert store.pending_intake(10) == []
    finally:
        ledger.close()


def test_async_accept_normal_path_commits_receipt(ledger: Ledger) -> None:
    _, future = ledger.accept(PROJECT, "acme", [prepared(event())], receipt_id="r-2")
    assert future is not None
    future.result()
    stored = ledger.store.get_receipt(PROJECT, "r-2")
    assert stored is not None and stored.state == "committed"


def test_content_hash_shortcut_equals_the_definition() -> None:
    """An event sent in stored form takes the one-canonicalization path; its content hash
    must be exactly the one the general path computes."""
    from datetime import UTC, datetime

    from trailseal.ledger.prepare import content_hash, prepare_incoming

    stored_form = {
        "id": "x-1",
        "action": "a.b",
        "actor": {"id": "é"},
        "occurred_at": "2026-11-23T10:00:00.000000Z",
        "metadata": {"n": 1.5},
    }
    for ext in (None, {"pangea": {"k": [1, "two"]}}):
        fast = prepare_incoming(
            stored_form, now=datetime.now(UTC), new_id=lambda: "unused", ext=ext
        )
        assert fast.content_hash == content_hash(stored_form, ext)
    loose = dict(stored_form, occurred_at="2026-11-23T11:00:00+01:00")
    slow = prepare_incoming(loose, now=datetime.now(UTC), new_id=lambda: "unused")
    assert slow.content_hash == content_hash(loose)
    assert slow.content_hash != content_hash(stored_form)


def test_a_lingering_batch_stops_waiting_when_another_log_is_ready(store: Store) -> None:
    """One worker serves every log: a batch lingering for company must not keep another
    log's ready work waiting. With a 60 s linger, the first log's commit comes as soon as
    a second log has work (on SQLite in the same transaction); close() ends a linger."""
    ledger = make_ledger(store, max_wait=60.0, workers=1)
    try:
        first = ledger.append(PROJECT, "org-a", [prepared(event())])
        with pytest.raises(TimeoutError):
            first.result(timeout=0.3)  # lingering: nothing else to do
        second = ledger.append(PROJECT, "org-b", [prepared(event())])
        assert first.result(timeout=10)[0].seq == 0
    finally:
        ledger.close()
    assert second.result(timeout=0)[0].seq == 0


def test_a_lingering_batch_commits_once_it_is_full(store: Store) -> None:
    ledger = make_ledger(store, max_wait=60.0, max_batch=3, workers=1)
    try:
        futures = [ledger.append(PROJECT, "org-a", [prepared(event())]) for _ in range(3)]
        assert [f.result(timeout=10)[0].seq for f in futures] == [0, 1, 2]
    finally:
        ledger.close()


def test_logs_committed_together_each_verify(store: Store) -> None:
    """One worker commits every ready log in one transaction: under concurrent load on six
    organizations, each log still gets gapless sequence numbers and verifies whole."""
    ledger = make_ledger(store, workers=1)
    organizations = [f"org-{n}" for n in range(6)]
    futures: list[Future[list[AppendResult]]] = []
    guard = threading.Lock()

    def send(n: int) -> None:
        for k in range(30):
            organization = organizations[(n + k) % len(organizations)]
            future = ledger.append(PROJECT, organization, [prepared(event()) for _ in range(3)])
            with guard:
                futures.append(future)

    try:
        threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = [a for future in futures for a in future.result(timeout=30)]
    finally:
        ledger.close()
    assert len(results) == 6 * 30 * 3 and not any(a.duplicate for a in results)
    for organization in organizations:
        log_id = ledger.log_for(PROJECT, organization).log_id
        size = verify_whole_log(ledger, PROJECT, log_id)
        assert sorted(a.seq for a in results if a.log_id == log_id) == list(range(size))


def test_a_stored_id_in_a_group_falls_back_to_each_log_alone(store: Store) -> None:
    """A retry in one log of a shared transaction rolls all of it back; each log is then
    committed alone: the retry gets its original entry, the others commit normally."""
    # Only a request of one event (under max_batch) lingers, for up to a minute.
    ledger = make_ledger(store, max_wait=60.0, max_batch=2, workers=1)
    try:
        stored = event()
        original = ledger.append(PROJECT, "org-b", [prepared(stored), prepared(event())])
        assert original.result(timeout=10)[0].seq == 0
        first = ledger.append(PROJECT, "org-a", [prepared(event())])  # lingers
        retry = ledger.append(PROJECT, "org-b", [prepared(stored), prepared(event())])
        other = ledger.append(PROJECT, "org-c", [prepared(event()), prepared(event())])
        assert first.result(timeout=10)[0].seq == 0
        again, fresh = retry.result(timeout=10)
        assert (again.duplicate, again.seq) == (True, 0)
        assert (fresh.duplicate, fresh.seq) == (False, 2)
        assert [a.seq for a in other.result(timeout=10)] == [0, 1]
    finally:
        ledger.close()
    sizes = [
        verify_whole_log(ledger, PROJECT, ledger.log_for(PROJECT, organization).log_id)
        for organization in ("org-a", "org-b", "org-c")
    ]
    assert sizes == [1, 3, 2]


def test_close_stops_every_worker_that_groups_logs(store: Store) -> None:
    """Workers that take several ready logs at once each take exactly one stop sign: with
    three workers and queued work on many logs, close() finishes the work and every
    worker thread ends."""
    before = set(threading.enumerate())
    ledger = make_ledger(store, workers=3)  # on SQLite, workers commit logs together
    futures = [ledger.append(PROJECT, f"org-{n % 8}", [prepared(event())]) for n in range(40)]
    ledger.close()
    assert all(f.result(timeout=0)[0].log_id for f in futures)
    left = [t.name for t in set(threading.enumerate()) - before]
    assert not [name for name in left if name.startswith("trailseal-sequencer")]
