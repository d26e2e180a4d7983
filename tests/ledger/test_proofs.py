"""The tile reader: levels of growing (partial) tiles are extended, never stale."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.ledger.helpers import PROJECT, event, make_ledger, prepared
from trailseal.core.merkle import inclusion_nodes, verify_consistency, verify_inclusion
from trailseal.ledger.proofs import TileReader, _levels
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


def test_proofs_of_fresh_entries_need_no_store_read(ledger: Ledger) -> None:
    """The sequencer hands the tiles it wrote to the proof cache before it answers, so a
    sync append proves its entries from memory, also across tile boundaries."""
    leaves: list[bytes] = []
    for size in [5, 1, 250, 3, 300]:
        results = ledger.append(PROJECT, "acme", [prepared(event()) for _ in range(size)]).result()
        leaves += [r.leaf_hash for r in results if r.leaf_hash is not None]
        checkpoint = results[-1].checkpoint
        assert checkpoint is not None
        seqs = [r.seq for r in results]
        cached = ledger.cached_inclusion_proofs(PROJECT, results[0].log_id, seqs, checkpoint.size)
        assert cached is not None, f"a proof after appending {size} read the store"
        for seq, proof in zip(seqs, cached, strict=True):
            verify_inclusion(seq, checkpoint.size, leaves[seq], proof, checkpoint.root_hash)


def test_a_cold_reader_reads_tiles_once_then_serves_them_from_memory(store: Store) -> None:
    writer = make_ledger(store)
    try:
        results = writer.append(PROJECT, "acme", [prepared(event()) for _ in range(600)]).result()
    finally:
        writer.close()
    checkpoint = results[-1].checkpoint
    assert checkpoint is not None
    reader = TileReader(store)  # another process's view: nothing cached
    plans = [inclusion_nodes(seq, checkpoint.size) for seq in (0, 255, 256, 599)]
    log_id = results[0].log_id
    assert reader.assemble_cached(PROJECT, log_id, plans, checkpoint.size) is None
    proofs = reader.assemble(PROJECT, log_id, plans, checkpoint.size)
    assert reader.assemble_cached(PROJECT, log_id, plans, checkpoint.size) == proofs
    for seq, proof in zip((0, 255, 256, 599), proofs, strict=True):
        verify_inclusion(
            seq, checkpoint.size, results[seq].leaf_hash or b"", proof, checkpoint.root_hash
        )


def test_remembered_tiles_extend_and_never_shrink() -> None:
    class NoStore:
        def read_tiles(self, *args: object) -> dict[tuple[int, int], bytes]:
            raise AssertionError("no store read expected")

    reader = TileReader(NoStore())  # type: ignore[arg-type]
    tile = _hashes(256)
    reader.remember("p", "l", {(0, 0): tile[: 10 * 32]})
    narrow = reader.cached_nodes("p", "l", [(0, 3), (1, 2)], 10)
    reader.remember("p", "l", {(0, 0): tile[: 200 * 32]})
    reader.remember("p", "l", {(0, 0): tile[: 100 * 32]})  # older, narrower: ignored
    wide = reader.cached_nodes("p", "l", [(0, 3), (1, 2), (7, 0)], 200)
    assert wide is not None and narrow is not None
    assert wide[(0, 3)] == narrow[(0, 3)] and wide[(1, 2)] == narrow[(1, 2)]
    assert wide[(7, 0)] == _levels(tile)[7][0]
    assert reader.cached_nodes("p", "l", [(0, 250)], 251) is None
