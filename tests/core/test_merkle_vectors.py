"""Published Merkle vectors (``vectors/merkle/``, see its README): the 8-leaf reference tree,
all 196 transparency-dev/merkle probes, and the Merkle parts of ``vectors/checkpoint/
checkpoints.json`` (consistency proofs between signed checkpoints, and the tessera test log's
roots). Every probe file is collected; a new or missing file fails the suite."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_vector_json, vectors_dir
from trailseal.core.encoding import b64decode_canonical, hex_to_bytes
from trailseal.core.hashing import RFC9162_SHA256, leaf_hash, node_hash
from trailseal.core.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from trailseal.errors import VerificationError

REFERENCE: dict[str, Any] = load_vector_json("merkle/reference-tree.json")
PROBES_DIR = vectors_dir() / "merkle" / "probes"
PROBE_FILES = sorted(PROBES_DIR.rglob("*.json"))
CHECKPOINTS: dict[str, Any] = load_vector_json("checkpoint/checkpoints.json")


def hexes(values: list[str]) -> list[bytes]:
    return [hex_to_bytes(value) for value in values]


def b64(text: str) -> bytes:
    return b64decode_canonical(text)


def build(leaf_hashes: list[bytes]) -> tuple[CompactRange, dict[tuple[int, int], bytes]]:
    """Append one leaf at a time and keep every completed node (what a store would do)."""
    state = CompactRange.empty()
    nodes: dict[tuple[int, int], bytes] = {}
    for leaf in leaf_hashes:
        state, completed = state.append([leaf])
        nodes.update(((level, index), value) for level, index, value in completed)
    return state, nodes


# --- reference-tree.json ----------------------------------------------------------------


REF_LEAVES = hexes(REFERENCE["leaf_hashes"])
_, REF_NODES = build(REF_LEAVES)
REF_ROOTS = {int(size): hex_to_bytes(root) for size, root in REFERENCE["roots_by_size"].items()}


def read_ref(level: int, index: int) -> bytes:
    return REF_NODES[level, index]


def test_reference_leaf_hashes() -> None:
    inputs = hexes(REFERENCE["leaf_inputs_hex"])
    assert [leaf_hash(data) for data in inputs] == REF_LEAVES


@pytest.mark.parametrize("vector", REFERENCE["hasher_vectors"], ids=lambda v: v["desc"])
def test_reference_hasher_vectors(vector: dict[str, Any]) -> None:
    op = vector["op"]
    if op == "empty_root":
        got = RFC9162_SHA256.empty_root()
    elif op == "leaf_hash":
        got = RFC9162_SHA256.hash_leaf(hex_to_bytes(vector["input_hex"]))
    else:
        assert op == "node_hash"
        got = node_hash(hex_to_bytes(vector["left_hex"]), hex_to_bytes(vector["right_hex"]))
    assert got.hex() == vector["expected"]


def test_reference_node_hashes_are_the_completed_nodes() -> None:
    expected = {
        (level, index): hex_to_bytes(value)
        for level, row in enumerate(REFERENCE["node_hashes_by_level"])
        for index, value in enumerate(row)
    }
    assert expected == REF_NODES


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    expected = hex_to_bytes(REFERENCE["roots_by_size"][str(size)])
    assert root_from_leaf_hashes(REF_LEAVES[:size]) == expected
    state, _ = CompactRange.empty().append(REF_LEAVES[:size])
    assert state.root() == expected
    assert CompactRange.from_bytes(size, state.to_bytes()).root() == expected


@pytest.mark.parametrize(
    "vector",
    REFERENCE["inclusion_proofs"],
    ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}",
)
def test_reference_inclusion_proofs(vector: dict[str, Any]) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    leaf, root, path = (
        hex_to_bytes(vector["leaf_hash"]),
        hex_to_bytes(vector["root"]),
        vector["path"],
    )
    assert inclusion_proof(index, size, read_ref) == hexes(path)
    assert root_from_inclusion_proof(index, size, leaf, hexes(path)) == root
    verify_inclusion(index, size, leaf, hexes(path), root)


@pytest.mark.parametrize(
    "vector",
    REFERENCE["consistency_proofs"],
    ids=lambda v: f"{v['size1']}-to-{v['size2']}",
)
def test_reference_consistency_proofs(vector: dict[str, Any]) -> None:
    size1, size2 = vector["size1"], vector["size2"]
    root1, root2 = hex_to_bytes(vector["root1"]), hex_to_bytes(vector["root2"])
    assert consistency_proof(size1, size2, read_ref) == hexes(vector["path"])
    verify_consistency(size1, size2, hexes(vector["path"]), root1, root2)


# --- probes/ --------------------------------------------------------------------------------


def test_all_196_probes_are_collected() -> None:
    inclusion = [p for p in PROBE_FILES if "inclusion" in p.relative_to(PROBES_DIR).parts[:1]]
    consistency = [p for p in PROBE_FILES if "consistency" in p.relative_to(PROBES_DIR).parts[:1]]
    assert (len(inclusion), len(consistency), len(PROBE_FILES)) == (98, 98, 196)


def probe_id(path: Path) -> str:
    return str(path.relative_to(PROBES_DIR))


def proof_list(raw: list[str] | None) -> list[bytes]:
    return [b64(item) for item in raw or []]


@pytest.mark.parametrize("probe_file", PROBE_FILES, ids=probe_id)
def test_probe(probe_file: Path) -> None:
    probe = load_vector_json(str(probe_file.relative_to(vectors_dir())))
    if probe_file.relative_to(PROBES_DIR).parts[0] == "inclusion":
        check = _inclusion_probe
    else:
        check = _consistency_probe
    if probe["wantErr"]:
        with pytest.raises(VerificationError):
            check(probe)
    else:
        check(probe)


def _inclusion_probe(probe: dict[str, Any]) -> None:
    index, size, proof = probe["leafIdx"], probe["treeSize"], proof_list(probe["proof"])
    leaf, root = b64(probe["leafHash"]), b64(probe["root"])
    verify_inclusion(index, size, leaf, proof, root)
    # A valid probe over the reference tree must also be what our prover produces.
    if size <= len(REF_LEAVES) and leaf == REF_LEAVES[index]:
        assert inclusion_proof(index, size, read_ref) == proof


def _consistency_probe(probe: dict[str, Any]) -> None:
    size1, size2, proof = probe["size1"], probe["size2"], proof_list(probe["proof"])
    root1, root2 = b64(probe["root1"]), b64(probe["root2"])
    verify_consistency(size1, size2, proof, root1, root2)
    if size2 <= len(REF_LEAVES) and root2 == REF_ROOTS.get(size2):
        assert consistency_proof(size1, size2, read_ref) == proof


# --- checkpoint/checkpoints.json --------------------------------------------------------------


@pytest.mark.parametrize(
    "vector", CHECKPOINTS["consistency_between_checkpoints"], ids=lambda v: v["name"]
)
def test_consistency_between_checkpoints(vector: dict[str, Any]) -> None:
    args = (
        vector["size1"],
        vector["size2"],
        hexes(vector["path"]),
        hex_to_bytes(vector["root1_hex"]),
        hex_to_bytes(vector["root2_hex"]),
    )
    if vector["expected_valid"]:
        verify_consistency(*args)
    else:
        with pytest.raises(VerificationError):
            verify_consistency(*args)


def test_consistency_between_checkpoints_roots_match_their_checkpoints() -> None:
    """The proofs name real checkpoints; their roots are the ones those checkpoints carry."""
    by_name = {c["name"]: c for c in CHECKPOINTS["checkpoints"]}
    for vector in CHECKPOINTS["consistency_between_checkpoints"]:
        for side in ("from_checkpoint", "to_checkpoint"):
            if side in vector:
                expected = by_name[vector[side]]["expected"]
                key = "root1_hex" if side == "from_checkpoint" else "root2_hex"
                assert expected["root_hash_hex"] == vector[key]


TESSERA: dict[str, Any] = CHECKPOINTS["tessera_testdata_log"]
TESSERA_LEAVES = [leaf_hash(entry.encode()) for entry in TESSERA["entries_utf8"]]
TESSERA_ROOTS = {c["tree_size"]: hex_to_bytes(c["root_hash_hex"]) for c in TESSERA["checkpoints"]}


def test_tessera_log_roots_for_every_size() -> None:
    assert sorted(TESSERA_ROOTS) == list(range(16))
    state = CompactRange.empty()
    assert state.root() == TESSERA_ROOTS[0]
    for size, leaf in enumerate(TESSERA_LEAVES, start=1):
        state, _ = state.append([leaf])
        assert state.root() == TESSERA_ROOTS[size] == root_from_leaf_hashes(TESSERA_LEAVES[:size])
        # The root inside the signed note text is the same value (signatures are not ours).
        note = TESSERA["checkpoints"][size]["signed_note"]
        assert b64(note.split("\n")[2]) == TESSERA_ROOTS[size]


def test_tessera_log_proofs_between_all_checkpoints() -> None:
    _, nodes = build(TESSERA_LEAVES)
    read = nodes.__getitem__
    for size2 in range(1, 16):
        for index in range(size2):
            proof = inclusion_proof(index, size2, lambda lv, ix: read((lv, ix)))
            verify_inclusion(index, size2, TESSERA_LEAVES[index], proof, TESSERA_ROOTS[size2])
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2, lambda lv, ix: read((lv, ix)))
            verify_consistency(size1, size2, proof, TESSERA_ROOTS[size1], TESSERA_ROOTS[size2])
    for (size1, root1), (size2, root2) in pairwise(sorted(TESSERA_ROOTS.items())[1:]):
        with pytest.raises(VerificationError):
            verify_consistency(size1, size2, [], root1, root2)
