"""The Store contract, run against both drivers (a real SQLite file, a real PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading

import orjson
import pytest

from tests.dbfixtures import StoreFactory
from trailseal.store.base import (
    ApiKeyRow,
    CheckpointRow,
    NewEntry,
    ProjectRow,
    ReceiptRow,
    SigningKeyRow,
    Store,
)
from trailseal.store.columns import index_columns, search_text
from trailseal.store.errors import DuplicateIdError

NOW = "2026-11-23T10:00:00.000000Z"


def _entry(seq: int, event_id: str, *, actor: str = "alice", message: str = "hello") -> NewEntry:
    event = {
        "id": event_id,
        "action": "invoice.paid",
        "actor": {"id": actor, "name": "Alice"},
        "message": message,
        "occurred_at": NOW,
        "tags": ["a", "b"],
    }
    data = orjson.dumps({"event": event, "seq": seq})
    return NewEntry(
        seq,
        event_id,
        data,
        hashlib.sha256(data).digest(),
        bytes(32),
        hashlib.sha256(event_id.encode()).digest(),
        NOW,
        NOW,
        *index_columns(event),
        search_text(event),
    )


def _log(store: Store, organization: str = "acme", log_id: str = "l" * 26):
    store.create_project(ProjectRow("p1", NOW))
    return store.get_or_create_log(
        "p1", organization, log_id=log_id, origin=f"example.test/log/{log_id}", now=NOW
    )


def test_migrate_is_idempotent(store: Store) -> None:
    store.migrate()
    store.migrate()
    assert store.create_project(ProjectRow("p1", NOW)) is True
    assert store.create_project(ProjectRow("p1", NOW)) is False
    assert [p.project for p in store.list_projects()] == ["p1"]


def test_signing_key_first_writer_wins(store: Store) -> None:
    store.create_project(ProjectRow("p1", NOW))
    first = store.add_signing_key(SigningKeyRow("p1", "k1", b"pub1", b"sealed1", NOW))
    second = store.add_signing_key(SigningKeyRow("p1", "k2", b"pub2", b"sealed2", NOW))
    assert first.key_id == second.key_id == "k1"
    assert [k.key_id for k in store.signing_keys("p1")] == ["k1"]


def test_api_keys_round_trip_and_revoke(store: Store) -> None:
    store.create_project(ProjectRow("p1", NOW))
    row = ApiKeyRow(
        "kid1", "p1", b"h" * 32, ("events:read", "events:write"), "acme", "ci", False, NOW
    )
    store.create_api_key(row)
    assert store.find_api_key(b"h" * 32) == row
    assert store.find_api_key(b"x" * 32) is None
    assert store.list_api_keys("p1") == [row]
    assert store.revoke_api_key("p1", "kid1", NOW) is True
    assert store.revoke_api_key("p1", "kid1", NOW) is False
    assert store.revoke_api_key("other", "kid1", NOW) is False
    found = store.find_api_key(b"h" * 32)
    assert found is not None and found.revoked_at == NOW
    assert store.count_api_keys() == 1


def test_log_created_once_under_a_race(store_factory: StoreFactory) -> None:
    stores = [store_factory() for _ in range(4)]
    stores[0].create_project(ProjectRow("p1", NOW))
    heads = []

    def create(n: int) -> None:
        heads.append(
            stores[n].get_or_create_log(
                "p1", "acme", log_id=f"{n:026d}", origin=f"example.test/log/{n:026d}", now=NOW
            )
        )

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({h.log_id for h in heads}) == 1
    assert len(stores[0].list_logs("p1")) == 1


def test_deleted_organization_gets_a_new_log(store: Store) -> None:
    first = _log(store)
    assert store.delete_log("p1", "acme", NOW) is True
    assert store.find_log("p1", "acme") is None
    second = _log(store, log_id="m" * 26)
    assert second.log_id != first.log_id and second.origin != first.origin
    assert store.get_log("p1", first.log_id) is not None  # the old log is kept


def test_append_commits_entries_tiles_checkpoint_and_head(store: Store) -> None:
    head = _log(store)
    with store.append("p1", head.log_id) as txn:
        assert txn.head.size == 0
        txn.insert_entries([_entry(0, "e0"), _entry(1, "e1")])
        txn.put_tiles({(0, 0): b"a" * 64})
        txn.put_checkpoint(CheckpointRow(head.log_id, 2, b"r" * 32, "note\n", NOW))
        txn.set_head(size=2, chain_head=b"c" * 32, peaks=b"p" * 32)
    after = store.get_log("p1", head.log_id)
    assert after is not None and (after.size, after.chain_head, after.peaks) == (
        2,
        b"c" * 32,
        b"p" * 32,
    )
    assert [e.event_id for e in store.iter_entries("p1", head.log_id, 0, 10)] == ["e0", "e1"]
    assert store.read_tiles("p1", head.log_id, [(0, 0), (1, 0)]) == {(0, 0): b"a" * 64}
    latest = store.latest_checkpoint("p1", head.log_id)
    assert latest is not None and latest.size == 2 and latest.note == "note\n"
    assert store.get_checkpoint("p1", head.log_id, 2) == latest
    assert store.get_checkpoint("p1", head.log_id, 1) is None
    entry = store.get_entry_by_id("p1", "e1")
    assert entry is not None and entry.seq == 1 and entry.entry is not None
    assert store.get_entry("p1", head.log_id, 0) is not None
    assert set(store.find_ids("p1", ["e0", "e1", "zz"])) == {"e0", "e1"}


def test_failed_append_writes_nothing(store: Store) -> None:
    head = _log(store)

    def failing_append() -> None:
        with store.append("p1", head.log_id) as txn:
            txn.insert_entries([_entry(0, "e0")])
            txn.set_head(size=1, chain_head=b"c" * 32, peaks=b"p" * 32)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_append()
    assert store.get_entry_by_id("p1", "e0") is None
    after = store.get_log("p1", head.log_id)
    assert after is not None and after.size == 0


def test_duplicate_id_raises_and_rolls_back(store: Store) -> None:
    head = _log(store)
    other = _log(store, organization="globex", log_id="g" * 26)
    with store.append("p1", head.log_id) as txn:
        txn.insert_entries([_entry(0, "same")])
    with pytest.raises(DuplicateIdError), store.append("p1", other.log_id) as txn:
        txn.insert_entries([_entry(0, "fresh"), _entry(1, "same")])
    assert store.get_entry_by_id("p1", "fresh") is None  # ids are unique project-wide


def test_tiles_grow_in_place(store: Store) -> None:
    head = _log(store)
    with store.append("p1", head.log_id) as txn:
        txn.put_tiles({(0, 0): b"a" * 32})
    with store.append("p1", head.log_id) as txn:
        assert txn.read_tiles([(0, 0)]) == {(0, 0): b"a" * 32}
        txn.put_tiles({(0, 0): b"a" * 32 + b"b" * 32})
    assert store.read_tiles("p1", head.log_id, [(0, 0)]) == {(0, 0): b"a" * 32 + b"b" * 32}


def test_facade_state_lives_in_the_transaction(store: Store) -> None:
    head = _log(store)
    with store.append("p1", head.log_id) as txn:
        assert txn.read_state("pangea") is None
        txn.write_state("pangea", b"state-1")
    with store.append("p1", head.log_id) as txn:
        assert txn.read_state("pangea") == b"state-1"
        txn.write_state("pangea", b"state-2")

    def failing_append() -> None:
        with store.append("p1", head.log_id) as txn:
            txn.write_state("pangea", b"lost")
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        failing_append()
    with store.append("p1", head.log_id) as txn:
        assert txn.read_state("pangea") == b"state-2"


def test_redaction_keeps_hashes(store: Store) -> None:
    head = _log(store)
    with store.append("p1", head.log_id) as txn:
        txn.insert_entries([_entry(0, "e0", message="secret words")])
    before = store.get_entry_by_id("p1", "e0")
    assert before is not None and not before.redacted
    assert store.redact_entry("p1", head.log_id, 0) is True
    assert store.redact_entry("p1", head.log_id, 0) is False
    after = store.get_entry_by_id("p1", "e0")
    assert after is not None and after.redacted and after.entry is None
    assert (after.leaf_hash, after.chain_hash) == (before.leaf_hash, before.chain_hash)


def test_intake_and_receipts(store: Store) -> None:
    head = _log(store)
    receipt = ReceiptRow("p1", "r1", "queued", "acme", ("e0",), NOW, NOW, head.log_id)
    parked = store.put_intake(receipt, b'[{"x":1}]')
    assert store.get_receipt("p1", "r1") == receipt
    assert [row.intake_id for row in store.pending_intake(10)] == [parked.intake_id]
    with store.append("p1", head.log_id) as txn:
        txn.put_receipts(
            [ReceiptRow("p1", "r1", "committed", "acme", ("e0",), NOW, NOW, head.log_id)]
        )
        txn.delete_intake([parked.intake_id])
    assert store.pending_intake(10) == []
    done = store.get_receipt("p1", "r1")
    assert done is not None and done.state == "committed"
    assert store.get_receipt("p2", "r1") is None
    store.put_intake(ReceiptRow("p1", "r2", "queued", "acme", ("e9",), NOW, NOW), b"[]")
    store.fail_receipt("p1", "r2", "conflict", NOW)
    failed = store.get_receipt("p1", "r2")
    assert failed is not None and failed.state == "failed" and failed.error == "conflict"
    assert store.pending_intake(10) == []


def test_first_api_key_is_created_once(store_factory: StoreFactory) -> None:
    stores = [store_factory() for _ in range(4)]
    stores[0].create_project(ProjectRow("p1", NOW))
    created: list[bool] = []

    def create(n: int) -> None:
        row = ApiKeyRow(f"k{n}", "p1", bytes([n]) * 32, ("admin",), None, "admin", False, NOW)
        created.append(stores[n].create_first_api_key(row))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False, False, False, True]
    assert stores[0].count_api_keys() == 1


def test_large_writes_span_several_statements(store: Store) -> None:
    """Appends write rows in multi-row statements of bounded sizes; 1500 entries and
    receipts and intake rows, and 300 tiles, take several, and each row lands once."""
    head = _log(store)
    count = 1500
    parked = [
        store.put_intake(ReceiptRow("p1", f"r{n}", "queued", "acme", (f"e{n}",), NOW, NOW), b"[]")
        for n in range(count)
    ]
    tiles = {(n % 3, n): bytes([n % 256]) * 32 for n in range(300)}
    with store.append("p1", head.log_id) as txn:
        txn.insert_entries([_entry(n, f"e{n}", actor=f"actor{n}") for n in range(count)])
        txn.put_tiles(tiles)
        assert txn.read_tiles(list(tiles)) == tiles
        txn.put_receipts(
            [
                ReceiptRow("p1", f"r{n}", "committed", "acme", (f"e{n}",), NOW, NOW, head.log_id)
                for n in range(count)
            ]
        )
        txn.delete_intake([row.intake_id for row in parked])
    stored = list(store.iter_entries("p1", head.log_id, 0, count + 10))
    assert [(e.seq, e.event_id) for e in stored] == [(n, f"e{n}") for n in range(count)]
    assert stored[-1].entry == _entry(count - 1, f"e{count - 1}", actor=f"actor{count - 1}").entry
    assert store.read_tiles("p1", head.log_id, list(tiles)) == tiles
    assert store.pending_intake(count) == []
    for n in (0, 1023, 1024, 1499):
        receipt = store.get_receipt("p1", f"r{n}")
        assert receipt is not None and receipt.state == "committed"
        assert (receipt.event_ids, receipt.log_id) == ((f"e{n}",), head.log_id)
