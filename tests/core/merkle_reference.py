"""A slow, obviously correct Merkle tree written straight from RFC 9162 §2.1 (and RFC 6962 §2.1,
whose PATH/PROOF/SUBPROOF definitions it restates), to cross-check the fast code in
trailseal.core.merkle. Recursion mirrors the RFC text line by line; nothing is cached or
incremental. ``D`` is a list of leaf *inputs*; hashes come from the given hasher.

Also holds a second, independently structured verifier (the decomposition used by
transparency-dev/merkle ``proof/verify.go``) so mutation tests have an oracle for the cases
where a changed tree size legitimately yields the same computation.
"""

from __future__ import annotations

from collections.abc import Sequence

from trailseal.core.hashing import Hasher


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 9162 §2.1.1's k."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes], hasher: Hasher) -> bytes:
    """MTH(D[n]), RFC 9162 §2.1.1."""
    n = len(d)
    if n == 0:
        return hasher.empty_root()
    if n == 1:
        return hasher.hash_leaf(d[0])
    k = _split(n)
    return hasher.hash_children(mth(d[:k], hasher), mth(d[k:], hasher))


def path(m: int, d: Sequence[bytes], hasher: Hasher) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1: the inclusion path of leaf m, leaf sibling first."""
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*path(m, d[:k], hasher), mth(d[k:], hasher)]
    return [*path(m - k, d[k:], hasher), mth(d[:k], hasher)]


def path_sides(m: int, n: int) -> list[str]:
    """Which side each element of PATH(m, D[n]) sits on, from the same recursion: the
    shape an inclusion verifier folds over, independent of any hash."""
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*path_sides(m, k), "right"]
    return [*path_sides(m - k, n - k), "left"]


def proof(m: int, d: Sequence[bytes], hasher: Hasher) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 9162 §2.1.4.1."""
    return subproof(m, d, True, hasher)


def subproof(m: int, d: Sequence[bytes], b: bool, hasher: Hasher) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d, hasher)]
    k = _split(n)
    if m <= k:
        return [*subproof(m, d[:k], b, hasher), mth(d[k:], hasher)]
    return [*subproof(m - k, d[k:], False, hasher), mth(d[:k], hasher)]


def node(level: int, index: int, d: Sequence[bytes], hasher: Hasher) -> bytes:
    """The perfect subtree over leaves [index * 2^level, (index + 1) * 2^level)."""
    return mth(d[index << level : (index + 1) << level], hasher)


def completed_nodes(size1: int, size2: int) -> set[tuple[int, int]]:
    """Every perfect subtree whose last leaf is in [size1, size2): those that become complete
    when the tree grows from size1 to size2 leaves."""
    found = set()
    level = 0
    while (1 << level) <= size2:
        for index in range(size2 >> level):
            if (index + 1) << level > size1:
                found.add((level, index))
        level += 1
    return found


# --- an independent verifier (transparency-dev/merkle decomposition) ---------------------


def _decomp(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    return inner, bin(index >> inner).count("1")


def _chain_inner(hasher: Hasher, seed: bytes, hashes: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(hashes):
        seed = (
            hasher.hash_children(seed, h)
            if (index >> i) & 1 == 0
            else hasher.hash_children(h, seed)
        )
    return seed


def _chain_inner_right(hasher: Hasher, seed: bytes, hashes: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(hashes):
        if (index >> i) & 1:
            seed = hasher.hash_children(h, seed)
    return seed


def _chain_border_right(hasher: Hasher, seed: bytes, hashes: Sequence[bytes]) -> bytes:
    for h in hashes:
        seed = hasher.hash_children(h, seed)
    return seed


def alt_inclusion_ok(
    index: int, size: int, leaf: bytes, proof_: Sequence[bytes], root: bytes, hasher: Hasher
) -> bool:
    if index >= size or len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof_):
        return False
    inner, border = _decomp(index, size)
    if len(proof_) != inner + border:
        return False
    r = _chain_inner(hasher, leaf, proof_[:inner], index)
    return _chain_border_right(hasher, r, proof_[inner:]) == root


def alt_consistency_ok(
    size1: int,
    size2: int,
    proof_: Sequence[bytes],
    root1: bytes,
    root2: bytes,
    hasher: Hasher,
) -> bool:
    if size1 == 0 or size2 < size1:
        return False
    if size1 == size2:
        return not proof_ and root1 == root2
    if not proof_ or any(len(p) != 32 for p in proof_):
        return False
    inner, border = _decomp(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    seed, start = proof_[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof_) != start + inner + border:
        return False
    rest = proof_[start:]
    mask = (size1 - 1) >> shift
    h1 = _chain_border_right(
        hasher, _chain_inner_right(hasher, seed, rest[:inner], mask), rest[inner:]
    )
    if h1 != root1:
        return False
    h2 = _chain_border_right(hasher, _chain_inner(hasher, seed, rest[:inner], mask), rest[inner:])
    return h2 == root2
