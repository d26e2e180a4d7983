"""Property tests: the fast Merkle code against the RFC-text reference (merkle_reference.py),
for both hashers, over arbitrary tree sizes, indices and batch splits; and every mutation of a
good proof must fail (or, where only a tree size changed, fail exactly when an independently
written verifier fails, since a size is bound by the signed checkpoint, not the proof)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core import merkle_reference as ref
from trailseal.core.hashing import RFC9162_SHA256, UNPREFIXED_SHA256, Hasher
from trailseal.core.merkle import (
    CompactRange,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    peak_node_ids,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from trailseal.errors import VerificationError

HASHERS = pytest.mark.parametrize(
    "hasher", [RFC9162_SHA256, UNPREFIXED_SHA256], ids=["rfc9162", "unprefixed"]
)
MAX_SIZE = 300
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def leaves(size: int) -> list[bytes]:
    """Distinct leaf inputs, so no two leaf hashes collide by construction."""
    return [b"entry-%d" % i for i in range(size)]


def built(d: list[bytes], hasher: Hasher) -> Callable[[int, int], bytes]:
    """A node reader over the nodes CompactRange reports while appending ``d``."""
    _state, completed = CompactRange.empty().append([hasher.hash_leaf(x) for x in d], hasher)
    nodes = {(level, index): value for level, index, value in completed}
    return lambda level, index: nodes[level, index]


def flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


def fails(check: Callable[[], None]) -> bool:
    try:
        check()
    except VerificationError:
        return True
    return False


# --- building -----------------------------------------------------------------------------


@st.composite
def size_and_splits(draw: st.DrawFn) -> tuple[int, list[int]]:
    size = draw(st.integers(0, MAX_SIZE))
    cuts = draw(st.lists(st.integers(0, size), max_size=8))
    return size, sorted({0, size, *cuts})


@HASHERS
@SETTINGS
@given(plan=size_and_splits())
def test_append_in_batches_matches_reference(hasher: Hasher, plan: tuple[int, list[int]]) -> None:
    size, bounds = plan
    d = leaves(size)
    hashes = [hasher.hash_leaf(x) for x in d]
    state = CompactRange.empty()
    seen: set[tuple[int, int]] = set()
    for start, end in itertools.pairwise(bounds):
        state, completed = state.append(hashes[start:end], hasher)
        ids = [(level, index) for level, index, _ in completed]
        assert set(ids) == ref.completed_nodes(start, end)
        assert len(ids) == len(set(ids))
        for level, index, value in completed:
            assert value == ref.node(level, index, d, hasher)
            if level:  # children precede parents (earlier batch or earlier in this one)
                assert {(level - 1, 2 * index), (level - 1, 2 * index + 1)} <= seen
            seen.add((level, index))
        assert state.size == end
        assert state.root(hasher) == ref.mth(d[:end], hasher)
        assert state.peaks == tuple(ref.node(lv, ix, d, hasher) for lv, ix in state.peak_ids())
        assert CompactRange.from_bytes(end, state.to_bytes()) == state
    assert root_from_leaf_hashes(hashes, hasher) == ref.mth(d, hasher)
    assert peak_node_ids(size) == state.peak_ids()


# --- inclusion ----------------------------------------------------------------------------


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return size, draw(st.integers(0, size - 1))


@HASHERS
@SETTINGS
@given(case=size_and_index(), bits=st.lists(st.integers(0, 255), min_size=40, max_size=40))
def test_inclusion_proof_matches_reference_and_resists_mutation(
    hasher: Hasher, case: tuple[int, int], bits: list[int]
) -> None:
    size, index = case
    d = leaves(size)
    leaf, root = hasher.hash_leaf(d[index]), ref.mth(d, hasher)
    plan = inclusion_nodes(index, size)
    assert all((i + 1) << lv <= size for lv, i in plan.node_ids)  # all readable at this size
    proof = inclusion_proof(index, size, built(d, hasher), hasher)
    assert proof == ref.path(index, d, hasher)
    assert len(plan) == len(proof)
    assert root_from_inclusion_proof(index, size, leaf, proof, hasher) == root
    verify_inclusion(index, size, leaf, proof, root, hasher)

    def rejects(i: int, n: int, lf: bytes, pr: list[bytes], rt: bytes) -> bool:
        return fails(lambda: verify_inclusion(i, n, lf, pr, rt, hasher))

    for position, element in enumerate(proof):  # flip a bit of every element
        assert rejects(
            index,
            size,
            leaf,
            [*proof[:position], flip(element, bits[position]), *proof[position + 1 :]],
            root,
        )
    for position in range(len(proof)):  # drop any element
        assert rejects(index, size, leaf, proof[:position] + proof[position + 1 :], root)
    for position in range(len(proof) + 1):  # add one
        assert rejects(index, size, leaf, [*proof[:position], leaf, *proof[position:]], root)
    assert rejects(index, size, flip(leaf, bits[0]), proof, root)
    assert rejects(index, size, leaf, proof, flip(root, bits[1]))
    assert rejects(index, size, root, proof, leaf) or size == 1  # swapped leaf and root
    for other in range(size + 2):  # every other index of this tree
        if other != index:
            assert rejects(other, size, leaf, proof, root)
    # A different size keeps the proof valid exactly when the RFC's PATH has the same shape.
    sides = ref.path_sides(index, size)
    for other in range(index + 1, 2 * size + 3):
        same_shape = ref.path_sides(index, other) == sides
        assert rejects(index, other, leaf, proof, root) is not same_shape
        assert ref.alt_inclusion_ok(index, other, leaf, proof, root, hasher) is same_shape


# --- consistency --------------------------------------------------------------------------


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, size2)), size2


@HASHERS
@SETTINGS
@given(case=two_sizes(), bits=st.lists(st.integers(0, 255), min_size=40, max_size=40))
def test_consistency_proof_matches_reference_and_resists_mutation(
    hasher: Hasher, case: tuple[int, int], bits: list[int]
) -> None:
    size1, size2 = case
    d = leaves(size2)
    root1, root2 = ref.mth(d[:size1], hasher), ref.mth(d, hasher)
    plan = consistency_nodes(size1, size2)
    assert all((i + 1) << lv <= size2 for lv, i in plan.node_ids)
    proof = consistency_proof(size1, size2, built(d, hasher), hasher)
    assert proof == ref.proof(size1, d, hasher)
    assert len(plan) == len(proof)
    verify_consistency(size1, size2, proof, root1, root2, hasher)

    def rejects(m: int, n: int, pr: list[bytes], r1: bytes, r2: bytes) -> bool:
        return fails(lambda: verify_consistency(m, n, pr, r1, r2, hasher))

    for position, element in enumerate(proof):
        assert rejects(
            size1,
            size2,
            [*proof[:position], flip(element, bits[position]), *proof[position + 1 :]],
            root1,
            root2,
        )
    for position in range(len(proof)):
        assert rejects(size1, size2, proof[:position] + proof[position + 1 :], root1, root2)
    for position in range(len(proof) + 1):
        assert rejects(size1, size2, [*proof[:position], root1, *proof[position:]], root1, root2)
    assert rejects(size1, size2, proof, flip(root1, bits[0]), root2)
    assert rejects(size1, size2, proof, root1, flip(root2, bits[1]))
    if size1 != size2:
        assert rejects(size1, size2, proof, root2, root1)  # swapped roots
    assert rejects(0, size2, proof, root1, root2)
    # Changed sizes: agree with the independent verifier; a proof of another length must fail.
    others = [(m, size2) for m in range(size2 + 2)] + [(size1, n) for n in range(2 * size2 + 3)]
    for m, n in others:
        verdict = not rejects(m, n, proof, root1, root2)
        assert verdict is ref.alt_consistency_ok(m, n, proof, root1, root2, hasher)
        if 0 < m <= n and len(consistency_nodes(m, n)) != len(proof):
            assert not verdict
