"""Shared helpers for ledger tests: a ledger on a store, and events to feed it."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from typing import Any

from trailseal.core.checkpoint import log_verifiers, open_checkpoint
from trailseal.core.hashing import ZERO_HASH, chain_hash, leaf_hash
from trailseal.core.merkle import verify_consistency, verify_inclusion
from trailseal.ledger.prepare import PreparedEvent, prepare_incoming
from trailseal.ledger.service import Ledger, LedgerConfig
from trailseal.store.base import ProjectRow, Store

MASTER = bytes(range(32))
PROJECT = "p1"
_ids = itertools.count()


def make_ledger(store: Store, **config: Any) -> Ledger:
    store.create_project(ProjectRow(PROJECT, "2026-11-23T00:00:00.000000Z"))
    return Ledger(store, MASTER, LedgerConfig(host_name="test.local", **config))


def event(n: int | None = None, **extra: Any) -> dict[str, Any]:
    number = next(_ids) if n is None else n
    body: dict[str, Any] = {
        "id": f"evt-{os.getpid()}-{number}",
        "action": "invoice.paid",
        "actor": {"id": f"user-{number % 7}"},
        "metadata": {"n": number},
    }
    body.update(extra)
    return body


def prepared(raw: dict[str, Any]) -> PreparedEvent:
    return prepare_incoming(raw, now=datetime.now(UTC), new_id=lambda: "unused")


def verify_whole_log(ledger: Ledger, project: str, log_id: str) -> int:
    """Chain, every checkpoint's signature and root, every inclusion proof at the latest
    size, and consistency between consecutive checkpoints. Returns the log size."""
    store = ledger.store
    head = store.get_log(project, log_id)
    assert head is not None
    verifiers = log_verifiers(ledger.verifier_key(project, head))
    entries = list(store.iter_entries(project, log_id, 0, head.size))
    assert [e.seq for e in entries] == list(range(head.size)), "sequence numbers have gaps"
    previous = ZERO_HASH
    for e in entries:
        if e.entry is not None:
            assert leaf_hash(e.entry) == e.leaf_hash
        assert chain_hash(previous, e.leaf_hash) == e.chain_hash
        previous = e.chain_hash
    assert previous == head.chain_head
    checkpoints = store.list_checkpoints(project, log_id)
    assert checkpoints and checkpoints[-1].size == head.size
    for row in checkpoints:
        opened = open_checkpoint(row.note, verifiers, origin=head.origin)
        assert opened.checkpoint.size == row.size
        assert opened.checkpoint.root_hash == row.root_hash
        assert opened.timestamp is not None
    latest = checkpoints[-1]
    for e in entries:
        proof = ledger.inclusion_proof(project, log_id, e.seq, latest.size)
        verify_inclusion(e.seq, latest.size, e.leaf_hash, proof, latest.root_hash)
    for older, newer in itertools.pairwise(checkpoints):
        proof = ledger.consistency_proof(project, log_id, older.size, newer.size)
        verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
    return head.size
