"""The tile reader: levels of growing (partial) tiles are extended, never stale."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.ledger.helpers import PROJECT, event, make_ledger, prepared
from trailseal.core.merkle import verify_consistency, verify_inclusion
from trailseal.ledger.proofs import _levels
from trailseal.ledger.service import Ledger
from trailseal.store.base import Store


def _hashes(count: int) -> bytes:
    return b"".join(hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(count))


@given(st.integers(1, 256), st.data())
def test_extended_levels_equal_levels_hashed_from_scratch(width: int, data: st.DataObject) -> None:
    prefix = data.draw(st.integers(1, width))
    tile = _hashes(width)
    known = _levels(tile[: prefix * 32])
    assert _levels(tile, known) == _levels(tile)
    assert _levels(tile[: prefix * 32]) == known, "extending must not change the cached lists"


@pytest.fixture
def ledger(store: Store) -> Iterator[Ledger]:
    ledger = make_ledger(store)
    yield ledger
    ledger.close()


def test_proofs_of_a_growing_log_verify_at_every_size(ledger: Ledger) -> None:
    """Small appends re-read the right-edge tiles at a new width each time (the sync path);
    proofs at each new size and at older sizes must verify against their checkpoints."""
    rng = random.Random(7)
    leaves: list[bytes] = []
    checkpoints = []
    for size in [1, 3, 120, 1, 140, 2, 255, 1, 300]:  # crosses 256 and 512
        results = ledger.append(PROJECT, "acme", [prepared(event()) for _ in range(size)]).result()
        leaves += [r.leaf_hash for r in results if r.leaf_hash is not None]
        checkpoint = results[-1].checkpoint
        assert checkpoint is not None and checkpoint.size == len(leaves)
        checkpoints.append(checkpoint)
        log_id = results[-1].log_id
        for cp in (checkpoint, rng.choice(checkpoints)):
            seqs = sorted({cp.size - 1, rng.randrange(cp.size), 0})
            proofs = ledger.inclusion_proofs(PROJECT, log_id, seqs, cp.size)
            for seq, proof in zip(seqs, proofs, strict=True):
                verify_inclusion(seq, cp.size, leaves[seq], proof, cp.root_hash)
            cached = ledger.cached_inclusion_proofs(PROJECT, log_id, seqs, cp.size)
            assert cached == proofs, "tiles just read are cached at their current width"
        first = rng.choice(checkpoints)
        proof = ledger.consistency_proof(PROJECT, log_id, first.size, checkpoint.size)
        verify_consistency(
            first.size, checkpoint.size, proof, first.root_hash, checkpoint.root_hash
        )


def test_cached_proofs_are_none_until_the_tiles_were_read(ledger: Ledger) -> None:
    results = ledger.append(PROJECT, "acme", [prepared(event()) for _ in range(5)]).result()
    checkpoint = results[-1].checkpoint
    assert checkpoint is not None
    log_id = results[0].log_id
    assert ledger.cached_inclusion_proofs(PROJECT, log_id, [2], checkpoint.size) is None
    assert ledger.cached_inclusion_proofs(PROJECT, log_id, [9], checkpoint.size) is None
    stored = ledger.inclusion_proofs(PROJECT, log_id, [2], checkpoint.size)
    assert ledger.cached_inclusion_proofs(PROJECT, log_id, [2], checkpoint.size) == stored
    more = ledger.append(PROJECT, "acme", [prepared(event())]).result()
    grown = more[0].checkpoint
    assert grown is not None
    # The tile grew: its cached levels are too narrow for the new size.
    assert ledger.cached_inclusion_proofs(PROJECT, log_id, [2], grown.size) is None
