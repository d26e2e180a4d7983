"""RFC 9162 §2.1 Merkle tree: incremental state, proof planning and proof verification.

Theory of operation
-------------------
A log of ``size`` leaves is a sequence of leaf hashes. The only nodes that ever get stored are
roots of *perfect* subtrees, named by :data:`NodeId` ``(level, index)``: the subtree over
leaves ``[index << level, (index + 1) << level)``. Such a node never changes once its last
leaf exists, so a store can keep them forever (or in tiles, see :mod:`trailseal.core.tiles`).

- **State.** :class:`CompactRange` holds ``size`` and the *peaks*: the perfect subtrees of
  the binary decomposition of ``size``, largest (leftmost) first. The root is the peaks folded
  right to left, which equals RFC 9162's MTH. Appending a batch hashes level by level, so a
  batch costs O(batch + log size) node hashes, and it reports every node it completed so the
  caller can persist them.
- **Proving** is split in two so a store needs one query: :func:`inclusion_nodes` and
  :func:`consistency_nodes` return a :class:`ProofPlan` naming the perfect-subtree nodes to
  read, and :meth:`ProofPlan.assemble` folds the hashes read into the RFC 9162 proof path. A
  proof may need the hash of an *ephemeral* node (a subtree that is not perfect at this tree
  size); the plan reads its perfect parts and rehashes them. This is the approach of
  transparency-dev/merkle ``proof/proof.go``.
- **Verifying** follows the algorithms of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
  (consistency) step by step, with the conventions of transparency-dev/merkle: consistency from
  size 0 is rejected, equal sizes need an empty proof and equal roots, and inclusion inputs must
  be 32-byte hashes.

Errors: bad arguments to planning and state code raise :class:`~trailseal.errors.ValidationError`
(a ``ValueError``); every reason a proof does not verify, malformed inputs included, raises
:class:`~trailseal.errors.VerificationError`, so a verifier catches one type.

Every function takes the :class:`~trailseal.core.hashing.Hasher` as a parameter (default: the
RFC 9162 SHA-256 one) so the same code serves the unprefixed tree of the Pangea façade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256 as _sha256
from itertools import repeat

from trailseal.core.hashing import HASH_SIZE, RFC9162_SHA256, Hasher, PrefixedSHA256
from trailseal.errors import ValidationError, VerificationError

__all__ = [
    "CompactRange",
    "CompletedNode",
    "NodeId",
    "NodeReader",
    "ProofPlan",
    "consistency_nodes",
    "consistency_proof",
    "inclusion_nodes",
    "inclusion_proof",
    "peak_node_ids",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

NodeId = tuple[int, int]
"""``(level, index)``: the root of the perfect subtree over leaves
``[index << level, (index + 1) << level)``. Level 0 is the leaf hashes."""

NodeReader = Callable[[int, int], bytes]
"""Returns the stored hash of node ``(level, index)``; the caller does the IO."""

CompletedNode = tuple[int, int, bytes]
"""``(level, index, hash)`` of a node that became complete during an append."""


# --- argument checks ---------------------------------------------------------------------


def _require_count(name: str, value: object) -> int:
    """A non-negative int (bool excluded: ``True`` is not a tree size)."""
    if type(value) is not int or value < 0:
        raise ValidationError(
            f"{name} must be a non-negative integer, got {value!r}", code=f"bad_{name}"
        )
    return value


def _require_hashes(name: str, hashes: Sequence[bytes]) -> None:
    # Checked at C speed (map/set) since it runs over every leaf; the loop only names the culprit.
    if not hashes or (set(map(type, hashes)) == {bytes} and set(map(len, hashes)) == {HASH_SIZE}):
        return
    for position, value in enumerate(hashes):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ValidationError(
                f"{name}[{position}] must be {HASH_SIZE} bytes", code="bad_hash_length"
            )


# --- building ---------------------------------------------------------------------------


def _parents(row: list[bytes], hasher: Hasher) -> list[bytes]:
    """The parents of ``row``, pairwise (an odd last node has none)."""
    if type(hasher) is PrefixedSHA256:
        # node_hash inlined: a comprehension beats a Python call per node.
        sha256 = _sha256
        pairs = iter(row)  # zipped with itself: (row[0], row[1]), (row[2], row[3]), …
        return [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)  # an odd last node: unpaired
        ]
    return list(map(hasher.hash_children, row[0::2], row[1::2]))


def _integrate(
    size: int,
    peaks: list[bytes],
    row: list[bytes],
    hasher: Hasher,
    rows: list[tuple[int, int, list[bytes]]] | None,
) -> list[bytes]:
    """Add the leaf hashes ``row`` to a tree of ``size`` leaves whose peaks are ``peaks``
    (consumed). Returns the new peaks, largest first; appends one ``(level, first index,
    hashes)`` per level to ``rows`` (see :meth:`CompactRange.append_rows`).

    Works one level at a time: ``row`` holds the nodes of ``level`` that this batch completed,
    which are exactly the indices ``[size >> level, (size + len(batch)) >> level)``. If the
    first of them is a right child, its left sibling is the old peak of that level. Pairing
    the row up gives the next level's row; an odd node left over is the new peak of this
    level. The list-at-a-time loop keeps per-node Python work to a minimum, and a level is
    reported as one row rather than a tuple per node.
    """
    new_peaks: list[bytes] = []  # collected smallest first
    level = 0
    start = size
    while row:
        if rows is not None:
            rows.append((level, start, row))
        # ``row`` is reported as is, so it is not modified from here on.
        paired = [peaks.pop(), *row] if start & 1 else row  # old peak: the left sibling
        if len(paired) & 1:
            new_peaks.append(paired[-1])
        row = _parents(paired, hasher)
        level += 1
        start >>= 1
    new_peaks.reverse()
    return peaks + new_peaks


def _fold_peaks(peaks: Sequence[bytes], hasher: Hasher) -> bytes:
    """The root of a tree from its peaks: hash them together from the right (RFC 9162 MTH)."""
    if not peaks:
        return hasher.empty_root()
    hash_children = hasher.hash_children
    root = peaks[-1]
    for peak in reversed(peaks[:-1]):
        root = hash_children(peak, root)
    return root


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes], hasher: Hasher = RFC9162_SHA256) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1, given the leaf hashes; the empty tree's root when empty."""
    _require_hashes("leaf_hashes", leaf_hashes)
    return _fold_peaks(_integrate(0, [], list(leaf_hashes), hasher, None), hasher)


def peak_node_ids(size: int) -> tuple[NodeId, ...]:
    """The perfect subtrees whose roots are the peaks of a tree of ``size`` leaves, largest
    first: one per set bit of ``size``. Lets a store rebuild a :class:`CompactRange`."""
    _require_count("size", size)
    ids: list[NodeId] = []
    offset = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ids.append((level, offset >> level))
            offset += 1 << level
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The append state of a tree (a.k.a. tree state): its size and its peaks, the roots of
    the perfect subtrees of the binary decomposition of ``size``, largest first. Immutable:
    :meth:`append` returns a new value. Validated on construction."""

    size: int
    peaks: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _require_count("size", self.size)
        expected = self.size.bit_count()
        if len(self.peaks) != expected:
            raise ValidationError(
                f"a tree of size {self.size} has {expected} peaks, got {len(self.peaks)}",
                code="bad_peaks",
            )
        _require_hashes("peaks", self.peaks)

    @classmethod
    def empty(cls) -> CompactRange:
        return cls(0, ())

    def append(
        self, leaf_hashes: Sequence[bytes], hasher: Hasher = RFC9162_SHA256
    ) -> tuple[CompactRange, list[CompletedNode]]:
        """Append a batch of leaf hashes. Returns the new state and every node that became
        complete, as ``(level, index, hash)``, leaves included; all nodes of one level come
        (in index order) before those of the next, so children precede parents. Costs
        O(len(leaf_hashes) + log size) node hashes."""
        tree, rows = self.append_rows(leaf_hashes, hasher)
        completed: list[CompletedNode] = []
        for level, start, row in rows:
            completed.extend(zip(repeat(level), range(start, start + len(row)), row))
        return tree, completed

    def append_rows(
        self, leaf_hashes: Sequence[bytes], hasher: Hasher = RFC9162_SHA256
    ) -> tuple[CompactRange, list[tuple[int, int, list[bytes]]]]:
        """:meth:`append`, reporting the completed nodes as one ``(level, first index,
        hashes)`` per level, lowest first, the hashes at consecutive indices: what a tile
        writer needs, without a tuple per node."""
        _require_hashes("leaf_hashes", leaf_hashes)
        rows: list[tuple[int, int, list[bytes]]] = []
        peaks = _integrate(self.size, list(self.peaks), list(leaf_hashes), hasher, rows)
        return CompactRange(self.size + len(leaf_hashes), tuple(peaks)), rows

    def root(self, hasher: Hasher = RFC9162_SHA256) -> bytes:
        """The tree head: MTH of the ``size`` leaves."""
        return _fold_peaks(self.peaks, hasher)

    def peak_ids(self) -> tuple[NodeId, ...]:
        """The :data:`NodeId` of each peak, in the order of :attr:`peaks`."""
        return peak_node_ids(self.size)

    def to_bytes(self) -> bytes:
        """The peaks concatenated (the size is stored beside them)."""
        return b"".join(self.peaks)

    @classmethod
    def from_bytes(cls, size: int, data: bytes | bytearray | memoryview) -> CompactRange:
        """Inverse of :meth:`to_bytes`: ``data`` must hold exactly popcount(size) hashes.
        Accepts any bytes-like value (a database driver may hand back a memoryview)."""
        _require_count("size", size)
        data = bytes(data)
        expected = size.bit_count() * HASH_SIZE
        if len(data) != expected:
            raise ValidationError(
                f"a tree of size {size} needs {expected} bytes of peaks, got {len(data)}",
                code="bad_peaks",
            )
        peaks = tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE))
        return cls(size, peaks)


# --- proof planning ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The nodes to read for one proof, and how to turn their hashes into the proof path.

    ``node_ids`` are perfect subtrees that exist at the tree size the plan was made for.
    The hashes of ``node_ids[rehash[0]:rehash[1]]`` (lowest level first) fold into one proof
    element, the hash of an ephemeral node; every other node is a proof element as is.
    """

    node_ids: tuple[NodeId, ...]
    rehash: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        begin, end = self.rehash
        if not (0 <= begin <= end <= len(self.node_ids)) or end - begin == 1:
            raise ValidationError(f"bad rehash range {self.rehash}", code="bad_plan")

    def __len__(self) -> int:
        """The length of the proof this plan assembles."""
        begin, end = self.rehash
        return len(self.node_ids) - max(0, end - begin - 1)

    def assemble(self, hashes: Sequence[bytes], hasher: Hasher = RFC9162_SHA256) -> list[bytes]:
        """The RFC 9162 proof path, from the hashes of :attr:`node_ids` in the same order."""
        if len(hashes) != len(self.node_ids):
            raise ValidationError(
                f"plan needs {len(self.node_ids)} hashes, got {len(hashes)}", code="bad_plan"
            )
        _require_hashes("hashes", hashes)
        begin, end = self.rehash
        if begin == end:
            return list(hashes)
        # The parts of the ephemeral node, lowest level first: each next part is a left sibling.
        ephemeral = hashes[begin]
        for part in hashes[begin + 1 : end]:
            ephemeral = hasher.hash_children(part, ephemeral)
        return [*hashes[:begin], ephemeral, *hashes[end:]]

    def without_first(self) -> ProofPlan:
        """The same plan minus its first node (the seed the verifier already holds)."""
        begin, end = self.rehash
        if begin < end:
            begin, end = begin - 1, end - 1
        return ProofPlan(self.node_ids[1:], (begin, end))


def _decompose(begin: int, count: int) -> list[NodeId]:
    """The perfect subtrees covering leaves ``[begin, begin + count)``, left to right.
    Requires ``begin`` to be a multiple of the largest power of two in ``count``, which holds
    for both ranges a proof needs (``[0, x)`` and the ephemeral node's range)."""
    ids: list[NodeId] = []
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            ids.append((level, begin >> level))
            begin += 1 << level
    return ids


def _plan(level: int, index: int, size: int) -> ProofPlan:
    """Nodes proving node ``(level, index)`` in a tree of ``size`` leaves, the node first.

    The *fork* is the ancestor where the paths to the node and to leaf ``size`` part. Below
    it the proof is plain siblings; the fork's right sibling is ephemeral (not perfect at
    this size) and is rebuilt from the perfect subtrees covering ``[end, size)``; above the
    fork all siblings lie to the left and are the perfect subtrees covering ``[0, begin)``.
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    begin = (index >> inner) << fork_level
    end = begin + (1 << fork_level)

    ids: list[NodeId] = [(level, index)]
    ids.extend((lvl, (index >> (lvl - level)) ^ 1) for lvl in range(level, fork_level))
    first = len(ids)
    ids.extend(reversed(_decompose(end, size - end)))  # lowest first, the order of rehashing
    last = len(ids)
    ids.extend(reversed(_decompose(0, begin)))  # the proof goes up the tree
    rehash = (first, last) if last - first > 1 else (0, 0)
    return ProofPlan(tuple(ids), rehash)


def inclusion_nodes(index: int, size: int) -> ProofPlan:
    """Plan the inclusion proof of leaf ``index`` in a tree of ``size`` leaves
    (RFC 9162 §2.1.3.1). Requires ``0 <= index < size``."""
    _require_count("index", index)
    _require_count("size", size)
    if index >= size:
        raise ValidationError(
            f"leaf index {index} is not below tree size {size}", code="index_out_of_range"
        )
    return _plan(0, index, size).without_first()


def consistency_nodes(size1: int, size2: int) -> ProofPlan:
    """Plan the consistency proof between tree sizes ``size1 <= size2`` (RFC 9162 §2.1.4.1).
    When ``size1`` is 0 or equal to ``size2`` the proof is empty (note that
    :func:`verify_consistency` still rejects ``size1 == 0``)."""
    _require_count("size1", size1)
    _require_count("size2", size2)
    if size1 > size2:
        raise ValidationError(f"size1 {size1} is above size2 {size2}", code="size_order")
    if size1 in (0, size2):
        return ProofPlan(())
    # Start from the largest perfect subtree that ends at size1: the old tree's last peak.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    plan = _plan(level, index, size2)
    # When size1 is a power of two that node is the old root itself, which the verifier has.
    return plan.without_first() if index == 0 else plan


def _read_all(plan: ProofPlan, read_node: NodeReader) -> list[bytes]:
    return [read_node(level, index) for level, index in plan.node_ids]


def inclusion_proof(
    index: int, size: int, read_node: NodeReader, hasher: Hasher = RFC9162_SHA256
) -> list[bytes]:
    """The RFC 9162 inclusion path of leaf ``index`` in a tree of ``size`` leaves."""
    plan = inclusion_nodes(index, size)
    return plan.assemble(_read_all(plan, read_node), hasher)


def consistency_proof(
    size1: int, size2: int, read_node: NodeReader, hasher: Hasher = RFC9162_SHA256
) -> list[bytes]:
    """The RFC 9162 consistency path from tree size ``size1`` to ``size2``."""
    plan = consistency_nodes(size1, size2)
    return plan.assemble(_read_all(plan, read_node), hasher)


# --- verification -----------------------------------------------------------------------


def _fail(message: str) -> VerificationError:
    return VerificationError(message, item="merkle proof")


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise _fail(f"{name} must be a {HASH_SIZE}-byte hash, got {size}")


def _check_int(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise _fail(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _inclusion_length(index: int, size: int) -> int:
    """Hashes in the inclusion path: siblings below the fork, plus one per left peak above."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _check_length(proof: Sequence[bytes], expected: int, what: str) -> None:
    if len(proof) != expected:
        raise _fail(f"{what} has {len(proof)} hashes, expected {expected}")


def root_from_inclusion_proof(
    index: int,
    size: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    hasher: Hasher = RFC9162_SHA256,
) -> bytes:
    """The root that ``proof`` binds leaf ``index`` of a tree of ``size`` leaves to, computed
    as RFC 9162 §2.1.3.2 steps 1-4. Raises :class:`VerificationError` if the proof is
    malformed for these parameters (wrong length, hashes not 32 bytes, index >= size)."""
    index = _check_int("leaf index", index)
    size = _check_int("tree size", size)
    if index >= size:
        raise _fail(f"leaf index {index} is not below tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    for position, element in enumerate(proof):
        _check_hash(f"proof[{position}]", element)
    _check_length(proof, _inclusion_length(index, size), f"inclusion proof for {index}/{size}")

    hash_children = hasher.hash_children
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise _fail("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            # The rest of this right edge has no siblings: climb to where one exists.
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _fail("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int,
    size: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    root: bytes,
    hasher: Hasher = RFC9162_SHA256,
) -> None:
    """Check that ``proof`` shows leaf ``index`` with ``leaf_hash`` in the tree of ``size``
    leaves with head ``root`` (RFC 9162 §2.1.3.2). Raises :class:`VerificationError`."""
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof, hasher)
    _check_hash("root", root)
    if calculated != root:
        raise _fail(f"calculated root {calculated.hex()} does not match expected root {root.hex()}")


def verify_consistency(
    size1: int,
    size2: int,
    proof: Sequence[bytes],
    root1: bytes,
    root2: bytes,
    hasher: Hasher = RFC9162_SHA256,
) -> None:
    """Check that the tree of ``size1`` leaves with head ``root1`` is a prefix of the tree of
    ``size2`` leaves with head ``root2`` (RFC 9162 §2.1.4.2). Raises :class:`VerificationError`.

    Beyond the RFC (which defines ``0 < size1 < size2``): ``size1 == 0`` is rejected (it
    proves nothing), and ``size1 == size2`` needs an empty proof and byte-equal roots.
    """
    size1 = _check_int("size1", size1)
    size2 = _check_int("size2", size2)
    if size1 == 0:
        raise _fail("a consistency proof from the empty tree proves nothing")
    if size1 > size2:
        raise _fail(f"size1 {size1} is above size2 {size2}")
    if size1 == size2:
        if proof:
            raise _fail(f"sizes are equal ({size1}) but the proof is not empty")
        if root1 != root2:
            raise _fail(f"sizes are equal ({size1}) but root1 {root1.hex()} != root2 {root2.hex()}")
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for position, element in enumerate(proof):
        _check_hash(f"proof[{position}]", element)
    if not proof:  # RFC 9162 §2.1.4.2 step 1
        raise _fail("consistency proof is empty")
    _check_length(proof, len(consistency_nodes(size1, size2)), f"proof {size1}->{size2}")
    first_root, second_root = _consistency_roots(size1, size2, proof, root1, hasher)
    if first_root != root1:
        raise _fail(f"calculated root1 {first_root.hex()} does not match expected {root1.hex()}")
    if second_root != root2:
        raise _fail(f"calculated root2 {second_root.hex()} does not match expected {root2.hex()}")


def _consistency_roots(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, hasher: Hasher
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-6: the two roots ``proof`` commits to."""
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: a power of two is its own subtree; seed with root1
        path.insert(0, root1)
    hash_children = hasher.hash_children
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _fail("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _fail("consistency proof is too short")
    return fr, sr
