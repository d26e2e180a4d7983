"""Hash functions of the integrity formats (ARCHITECTURE §5).

- Leaf hash  = SHA-256(0x00 ‖ entry bytes)          RFC 9162 §2.1.1
- Node hash  = SHA-256(0x01 ‖ left ‖ right)         RFC 9162 §2.1.1
- Chain hash = SHA-256(h(n-1) ‖ leaf(n)), h(-1) = 32 zero bytes

The Merkle code takes a :class:`Hasher` so the same tree and proof code serves the
unprefixed tree the Pangea client verifies (compat/pangea.md §11).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "HASH_SIZE",
    "RFC9162_SHA256",
    "UNPREFIXED_SHA256",
    "ZERO_HASH",
    "Hasher",
    "PrefixedSHA256",
    "UnprefixedSHA256",
    "chain_hash",
    "leaf_hash",
    "node_hash",
]

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash of ``data`` (the entry bytes)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash."""
    return _sha256(b"\x01" + left + right).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """Hash chain link: ``SHA-256(previous ‖ leaf)``; the first entry's previous is ZERO_HASH."""
    return _sha256(previous + leaf).digest()


class Hasher(Protocol):
    """What the Merkle code needs of a hash scheme."""

    def empty_root(self) -> bytes: ...

    def hash_leaf(self, data: bytes) -> bytes: ...

    def hash_children(self, left: bytes, right: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class PrefixedSHA256:
    """RFC 9162 §2.1.1 SHA-256 with 0x00/0x01 domain separation (the native tree)."""

    def empty_root(self) -> bytes:
        return _sha256(b"").digest()

    def hash_leaf(self, data: bytes) -> bytes:
        return leaf_hash(data)

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        return node_hash(left, right)


@dataclass(frozen=True, slots=True)
class UnprefixedSHA256:
    """SHA-256 with no domain separation: Pangea's tree shape (compat/pangea.md §11)."""

    def empty_root(self) -> bytes:
        return _sha256(b"").digest()

    def hash_leaf(self, data: bytes) -> bytes:
        return _sha256(data).digest()

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        return _sha256(left + right).digest()


RFC9162_SHA256: Hasher = PrefixedSHA256()
UNPREFIXED_SHA256: Hasher = UnprefixedSHA256()
