"""Unit tests for trailseal.core.merkle: preconditions, error types and messages, and the
store-facing API shapes (state serialization, proof plans, tiny trees)."""

from __future__ import annotations

import pytest

import trailseal.core.merkle as merkle
from trailseal.core.hashing import RFC9162_SHA256, UNPREFIXED_SHA256, leaf_hash
from trailseal.core.merkle import (
    CompactRange,
    ProofPlan,
    consistency_nodes,
    inclusion_nodes,
    inclusion_proof,
    peak_node_ids,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from trailseal.errors import ValidationError, VerificationError

H = [leaf_hash(b"%d" % i) for i in range(8)]


def test_all_is_complete() -> None:
    """Every public function and class defined here is exported (httpx's exported-members test)."""
    defined = {
        name
        for name, value in vars(merkle).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == merkle.__name__
    }
    assert defined <= set(merkle.__all__)
    assert all(hasattr(merkle, name) for name in merkle.__all__)


# --- state ------------------------------------------------------------------------------------


def test_empty_state() -> None:
    state = CompactRange.empty()
    assert (state.size, state.peaks, state.to_bytes()) == (0, (), b"")
    assert state.root() == RFC9162_SHA256.empty_root() == root_from_leaf_hashes([])
    assert state.root(UNPREFIXED_SHA256) == UNPREFIXED_SHA256.empty_root()
    assert state.append([]) == (state, [])


def test_append_reports_nodes_level_by_level() -> None:
    state, completed = CompactRange.empty().append(H[:3])
    assert [(level, index) for level, index, _ in completed] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    state, completed = state.append(H[3:5])
    assert [(level, index) for level, index, _ in completed] == [(0, 3), (0, 4), (1, 1), (2, 0)]
    assert state.size == 5
    assert state.peak_ids() == ((2, 0), (0, 4))


def test_state_round_trips_through_bytes() -> None:
    state, _ = CompactRange.empty().append(H[:7])
    assert len(state.to_bytes()) == 3 * 32
    assert CompactRange.from_bytes(7, state.to_bytes()) == state


@pytest.mark.parametrize(
    ("size", "data"), [(7, b"\0" * 64), (1, b""), (0, b"\0" * 32), (-1, b""), (2, b"\0" * 33)]
)
def test_from_bytes_rejects_wrong_peak_data(size: int, data: bytes) -> None:
    with pytest.raises(ValidationError):
        CompactRange.from_bytes(size, data)


@pytest.mark.parametrize(
    ("size", "peaks"), [(3, (H[0],)), (1, (b"short",)), (True, (H[0],)), (-1, ()), (0, (H[0],))]
)
def test_state_is_validated_on_construction(size: int, peaks: tuple[bytes, ...]) -> None:
    with pytest.raises(ValidationError):
        CompactRange(size, peaks)


def test_append_rejects_a_bad_leaf_hash_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"leaf_hashes\[2\]"):
        CompactRange.empty().append([H[0], H[1], b"x" * 31])
    with pytest.raises(ValidationError):
        root_from_leaf_hashes(["0" * 32])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("size", "ids"),
    [(0, ()), (1, ((0, 0),)), (6, ((2, 0), (1, 2))), (13, ((3, 0), (2, 2), (0, 12)))],
)
def test_peak_node_ids(size: int, ids: tuple[tuple[int, int], ...]) -> None:
    assert peak_node_ids(size) == ids


# --- plans -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 3), (0, -1), (True, 3), (1.0, 3)])
def test_inclusion_plan_preconditions(index: object, size: object) -> None:
    with pytest.raises(ValidationError):
        inclusion_nodes(index, size)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size1", "size2"), [(3, 2), (-1, 2), (1, -1)])
def test_consistency_plan_preconditions(size1: int, size2: int) -> None:
    with pytest.raises(ValidationError):
        consistency_nodes(size1, size2)


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 9), (4, 4)])
def test_trivial_consistency_plans_are_empty(size1: int, size2: int) -> None:
    plan = consistency_nodes(size1, size2)
    assert plan.node_ids == ()
    assert len(plan) == 0
    assert plan.assemble([]) == []


def test_plan_with_an_ephemeral_node() -> None:
    # Leaf 0 of 7: sibling (0,1), then (1,1), then the ephemeral [4, 7) = (1,2) + (0,6).
    plan = inclusion_nodes(0, 7)
    assert plan.node_ids == ((0, 1), (1, 1), (0, 6), (1, 2))
    assert plan.rehash == (2, 4)
    assert len(plan) == 3
    a, b, c, d = (bytes([i]) * 32 for i in range(4))
    assert plan.assemble([a, b, c, d]) == [a, b, RFC9162_SHA256.hash_children(d, c)]


def test_assemble_checks_the_hash_count() -> None:
    with pytest.raises(ValidationError, match="needs 4 hashes, got 3"):
        inclusion_nodes(0, 7).assemble(H[:3])


@pytest.mark.parametrize("rehash", [(0, 1), (2, 1), (0, 9), (-1, 1)])
def test_plan_rejects_a_bad_rehash_range(rehash: tuple[int, int]) -> None:
    with pytest.raises(ValidationError):
        ProofPlan(((0, 1), (0, 2)), rehash)


def test_reader_is_called_once_per_planned_node() -> None:
    _, completed = CompactRange.empty().append(H[:7])
    nodes = {(level, index): value for level, index, value in completed}
    calls: list[tuple[int, int]] = []

    def read(level: int, index: int) -> bytes:
        calls.append((level, index))
        return nodes[level, index]

    proof = inclusion_proof(0, 7, read)
    assert calls == list(inclusion_nodes(0, 7).node_ids)
    verify_inclusion(0, 7, H[0], proof, root_from_leaf_hashes(H[:7]))


# --- verification errors -----------------------------------------------------------------------


def test_inclusion_mismatch_names_expected_and_calculated_roots() -> None:
    root = root_from_leaf_hashes(H[:2])
    with pytest.raises(VerificationError) as caught:
        verify_inclusion(0, 2, H[0], [H[1]], H[7])
    message = str(caught.value)
    assert f"calculated root {root.hex()}" in message
    assert f"expected root {H[7].hex()}" in message


@pytest.mark.parametrize(
    ("index", "size", "leaf", "proof", "match"),
    [
        (2, 2, H[0], [H[1]], "not below tree size"),
        (-1, 2, H[0], [H[1]], "non-negative"),
        ("0", 2, H[0], [H[1]], "non-negative"),
        (0, 2, H[0][:31], [H[1]], "leaf hash must be a 32-byte hash"),
        (0, 2, H[0], [H[1] + b"\0"], r"proof\[0\]"),
        (0, 2, H[0], [], "has 0 hashes, expected 1"),
        (0, 2, H[0], [H[1], H[2]], "has 2 hashes, expected 1"),
    ],
)
def test_malformed_inclusion_inputs_are_verification_errors(
    index: object, size: int, leaf: bytes, proof: list[bytes], match: str
) -> None:
    with pytest.raises(VerificationError, match=match):
        root_from_inclusion_proof(index, size, leaf, proof)  # type: ignore[arg-type]


def test_inclusion_root_must_be_a_hash() -> None:
    with pytest.raises(VerificationError, match="root must be"):
        verify_inclusion(0, 1, H[0], [], H[0][:16])


@pytest.mark.parametrize(
    ("size1", "size2", "proof", "root1", "root2", "match"),
    [
        (0, 0, [], H[0], H[0], "empty tree"),
        (0, 3, [], H[0], H[1], "empty tree"),
        (3, 2, [], H[0], H[1], "above size2"),
        (2, 2, [H[0]], H[0], H[0], "not empty"),
        (2, 2, [], H[0], H[1], "root1 .* != root2"),
        (1, 2, [], H[0], H[1], "empty"),
        (1, 2, [H[1], H[2]], H[0], H[1], "has 2 hashes, expected 1"),
        (1, 2, [H[1]], H[0], H[1][:5], "root2 must be"),
        (1, 2, [b""], H[0], H[1], r"proof\[0\]"),
        (1, 2, [H[1]], H[0], H[1], "calculated root2"),
        (3, 4, [H[2], H[3], H[4]], H[5], H[6], "calculated root1"),
        (1.5, 4, [], H[0], H[1], "non-negative"),
    ],
)
def test_consistency_failures(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes, match: str
) -> None:
    with pytest.raises(VerificationError, match=match):
        verify_consistency(size1, size2, proof, root1, root2)


def test_equal_sizes_do_not_check_root_length() -> None:
    verify_consistency(1, 1, [], b"twelve bytes", b"twelve bytes")


def test_from_bytes_accepts_what_a_database_returns() -> None:
    state, _ = CompactRange.empty().append(H[:3])
    assert CompactRange.from_bytes(3, memoryview(state.to_bytes())) == state
    assert CompactRange.from_bytes(3, bytearray(state.to_bytes())) == state
