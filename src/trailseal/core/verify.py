"""Offline verification of trailseal logs, proofs and checkpoint updates (ARCHITECTURE §5, §7).

Pure: bytes and checkpoints in, a :class:`VerifiedRun` / :class:`VerifiedEntry` or a
:class:`~trailseal.errors.VerificationError` out. No IO, no clock, no threads or processes;
the pieces a caller needs to spread the work over several cores are public (see *Pieces*).

What each entry point proves
----------------------------
:func:`open_log_checkpoint`
    The note is a checkpoint of the log named by the pinned verifier key (key name = origin),
    carrying a valid log signature (type 0x01) **and** the log's own timestamped cosignature
    (type 0x04), both by that one key. Raises :class:`~trailseal.errors.SignatureError`.

:func:`verify_log_run`
    Entries ``start .. start+len-1`` are exactly the last leaves of the tree the checkpoint
    signs, with ``start + len(entries) == checkpoint.size``: their leaf hashes, appended to
    ``tree`` (the tree state at ``start``; the empty tree when ``start`` is 0), give the
    checkpoint's root. With ``start == 0`` this is the whole log. Each entry's bytes end in
    the checkpoint's ``origin`` and its own ``seq`` (``strict=True``: fully parsed with
    :func:`~trailseal.core.entry.parse_entry`). Chain hashes are recomputed from
    ``prev_hash``; when ``expected_chain_heads`` (the stored ``hash`` of each entry) are
    given they must match. The chain is *not* covered by the checkpoint: it proves only that
    the stored chain is the one these entries make.

:func:`verify_log_range`
    Entries ``start .. start+len-1`` are leaves at those positions in the tree the checkpoint
    signs, for any range (not only a suffix), given the inclusion proofs of the first and the
    last entry. Why that is enough: the left siblings on a leaf's inclusion path are exactly
    the peaks of the tree of the leaves before it. The first proof (verified against the root)
    gives the peaks at ``start``; appending the run's leaves but the last must give the peaks
    the last proof (also verified) shows at ``start+len-1``, and the last leaf is bound by its
    own proof. So every entry of the range is bound to the signed root. Entry checks and the
    chain are as for :func:`verify_log_run`; ``prev_hash`` (the chain hash before ``start``,
    e.g. the first entry's stored ``prev_hash``) is taken on trust.

:func:`verify_proof_bundle`
    One entry (or its redacted leaf hash) is leaf ``index`` of the tree of a checkpoint that
    :func:`open_log_checkpoint` accepts; the entry's origin is the checkpoint's and its seq
    is the index. A redacted leaf proves inclusion only: its origin and seq cannot be read.

:func:`check_checkpoint_update`
    Trust on first use: the first checkpoint is accepted once it opens; every later one must
    open, name the same log, not shrink the tree, have the same root at equal size, and come
    with a consistency proof from the trusted size. Anything else raises
    :class:`~trailseal.errors.ConsistencyError` saying which (wrong log, bad signature,
    rollback, fork).

Failures name the first bad item: ``entry 17`` (bytes, seq, origin, chain hash),
``checkpoint`` (origin, size, root), ``entries 5-9`` (a range that does not fit its proofs).
A changed byte inside an event is not visible until the root is compared, so without the
stored chain hashes it is reported as a root mismatch on ``checkpoint``: the root alone
cannot say which leaf differs.

Redacted entries (§5) are passed as :class:`RedactedLeaf`: their leaf hash stands in for the
bytes, enters the chain and the tree, and is counted in ``redacted``.

Speed (§11: whole-log verification ≥ 0.5 x one SHA-256 call per entry)
----------------------------------------------------------------------
Per entry the work is a leaf hash, a chain hash, about one node hash and a check of seq and
origin, against the baseline's one hash. Everything but the chain runs as ``map`` chains
over built-in functions, so the per-entry loop runs in C; hashes with a prefix copy a primed
hash state instead of concatenating; entries go in chunks of :data:`CHUNK` (cache-sized;
aligned chunks are perfect subtrees, see :func:`merge_trees`). Single-threaded this reaches
about 0.35-0.55 x the baseline (benchmarks/bench_core.py): each extra SHA-256 call costs
about half a baseline call in fixed overhead, so two more calls per entry cannot fit in
0.5 on one core. Two cores can: see *Pieces*.

The seq/origin check reads no JSON. Entry bytes are RFC 8785 canonical, so they end in::

    ,"origin":"<origin>","received_at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","seq":<n>,"v":1}

(members sorted: ``event`` < ``ext`` < ``origin`` < ``received_at`` < ``seq`` < ``v``). A
chunk's tails are sliced out and joined into one buffer; one ``translate`` maps digits to
``0`` and the result must equal the template exactly (every non-digit byte, the timestamp's
shape, the seq's digit count); then strided slices compare the digits that must be exact
(the origin's, the seq's, ``v``'s) column by column. Why this is exact: the timestamp then
holds no quote or backslash, so every quote in the tail is a string delimiter and, counting
from the final ``}``, the tail tokenizes one way only; ``origin`` and ``seq`` are members of
the top-level object (the last of any duplicates, which is what orjson and json read). So
no JSON text passes with another origin or seq, and canonical
entries (what :func:`parse_entry` accepts) pass exactly when theirs are the expected ones
(a failure is then explained by a full parse). What it does not check (``strict=True``
does): that the rest is canonical JSON, the event an object, the timestamp a real date.
Origins whose JSON form needs an escape (``"`` or ``\\``) fall back to strict parsing.

Pieces (for a caller that parallelizes, e.g. the CLI across processes)
----------------------------------------------------------------------
:func:`check_entries` (seq/origin), :func:`leaf_hashes_of`, :func:`chain_head` /
:func:`chain_heads` / :func:`verify_chain`, :func:`extend_tree` and :func:`merge_trees`.
Two ways to use two cores:

- Pipeline (measured best): the process holding the entries runs :func:`check_entries` and
  :func:`leaf_hashes_of` chunk by chunk and streams the leaf hashes (32 bytes per entry)
  to a helper that runs :func:`chain_head` and :func:`extend_tree`; compare the root and
  size. The two halves cost about the same, and the helper never touches the entries.
- Chunks: workers that read the entries themselves (e.g. from a file) check and hash
  aligned chunks and return their leaves and :class:`~trailseal.core.merkle.CompactRange`;
  the parent chains the leaves in order and joins the ranges with :func:`merge_trees`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from operator import getitem
from typing import Final, cast

from trailseal.core.canonical import canonicalize
from trailseal.core.checkpoint import Checkpoint, SignedCheckpoint, log_verifiers, open_checkpoint
from trailseal.core.entry import Entry, parse_entry
from trailseal.core.hashing import HASH_SIZE, ZERO_HASH, leaf_hash, node_hash
from trailseal.core.merkle import CompactRange, verify_consistency, verify_inclusion
from trailseal.core.proofbundle import ProofBundle, parse_proof_bundle
from trailseal.errors import ConsistencyError, SignatureError, ValidationError, VerificationError

__all__ = [
    "CHUNK",
    "RedactedLeaf",
    "VerifiedEntry",
    "VerifiedRun",
    "chain_head",
    "chain_heads",
    "check_checkpoint_update",
    "check_entries",
    "extend_tree",
    "leaf_hashes_of",
    "make_proof_bundle",
    "merge_trees",
    "open_log_checkpoint",
    "verify_chain",
    "verify_log_range",
    "verify_log_run",
    "verify_proof_bundle",
]

#: Entries per pass. A power of two, so chunks that start at a multiple of it are perfect
#: subtrees; small enough that a chunk's bytes stay in cache between checking and hashing.
CHUNK: Final = 1 << 12

_sha256 = hashlib.sha256
# Unbound methods of the hash type, so map(_digest, states) and friends loop in C.
_copy = type(hashlib.sha256()).copy
_update = type(hashlib.sha256()).update
_digest = type(hashlib.sha256()).digest
_LEAF_PREFIX: Final = b"\x00"
_LEAF_STATE: Final = hashlib.sha256(_LEAF_PREFIX)  # never updated: only copied
_NODE_STATE: Final = hashlib.sha256(b"\x01")
_slice_bytes = cast("Callable[[bytes, slice], bytes]", getitem)

# The tail of canonical entry bytes (module docstring).
_STAMP_TEMPLATE: Final = b"0000-00-00T00:00:00.000000Z"  # received_at, digits masked
_SEQ_KEY: Final = b'","seq":'  # closes received_at, opens seq
_END: Final = b',"v":1}'
_DIGITS: Final = b"0123456789"
_MASK: Final = bytes.maketrans(_DIGITS, b"0" * 10)
_MAX_SEQ_DIGITS: Final = 16  # seq <= 2**53 - 1


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactedLeaf:
    """An erased entry (§5): its leaf hash stands in for its bytes. Validated on construction."""

    leaf_hash: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.leaf_hash, bytes) or len(self.leaf_hash) != HASH_SIZE:
            raise ValidationError(
                f"a redacted leaf is a {HASH_SIZE}-byte leaf hash",
                field="/leaf_hash",
                code="bad_hash_length",
            )


@dataclass(frozen=True, slots=True)
class VerifiedRun:
    """What :func:`verify_log_run` / :func:`verify_log_range` proved: entries
    ``start .. start+count-1`` of log ``origin`` are in the tree of ``size`` leaves with head
    ``root``; ``chain_head`` is the chain hash after the last of them (``prev_hash`` when
    ``count`` is 0); ``redacted`` of them were leaf hashes only. ``tree`` is the tree state
    after the run (size ``start + count``), to continue verifying from later."""

    origin: str
    start: int
    count: int
    size: int
    root: bytes
    chain_head: bytes
    redacted: int
    tree: CompactRange


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    """What :func:`verify_proof_bundle` proved: leaf ``index`` (the entry's seq) with
    ``leaf_hash`` is in the tree of ``size`` leaves with head ``root`` of log ``origin``,
    signed by the pinned key at ``timestamp`` (the log's own cosignature, POSIX seconds).
    ``entry`` is the parsed entry, None when ``redacted``."""

    origin: str
    index: int
    leaf_hash: bytes
    size: int
    root: bytes
    timestamp: int | None
    redacted: bool
    entry: Entry | None
    checkpoint: SignedCheckpoint


# --- argument checks -----------------------------------------------------------------------


def _require_index(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _require_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValidationError(f"{name} must be {HASH_SIZE} bytes", code="bad_hash_length")
    return value


def _require_hashes(name: str, values: Sequence[bytes]) -> None:
    # At C speed for the common case; the loop only names the culprit.
    if not values or (set(map(type, values)) == {bytes} and set(map(len, values)) == {HASH_SIZE}):
        return
    for position, value in enumerate(values):
        _require_hash(f"{name}[{position}]", value)


def _checkpoint_body(checkpoint: SignedCheckpoint | Checkpoint) -> Checkpoint:
    if isinstance(checkpoint, SignedCheckpoint):
        return checkpoint.checkpoint
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    raise ValidationError(
        f"expected a SignedCheckpoint or Checkpoint, got {type(checkpoint).__name__}"
    )


def _check_origin(checkpoint: Checkpoint, origin: str | None) -> None:
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint is of log {checkpoint.origin!r}, expected {origin!r}", item="checkpoint"
        )


# --- hashing pieces ------------------------------------------------------------------------


def leaf_hashes_of(entries: Sequence[bytes | RedactedLeaf]) -> list[bytes]:
    """The leaf hash of each entry (a :class:`RedactedLeaf` gives its own). No checks of the
    entries' content; raises ValidationError for an item that is neither."""
    return _leaf_hashes(entries, _all_bytes(entries))


def _all_bytes(entries: Sequence[object]) -> bool:
    """Are all items exactly ``bytes``? (The fast paths' precondition, checked in C.)"""
    return set(map(type, entries)) <= {bytes}


def _leaf_hashes(entries: Sequence[bytes | RedactedLeaf], plain: bool) -> list[bytes]:
    if plain:
        return _prefixed_hashes(_LEAF_STATE, cast("Sequence[bytes]", entries))
    out: list[bytes] = []
    for position, item in enumerate(entries):
        if isinstance(item, RedactedLeaf):
            out.append(item.leaf_hash)
        elif isinstance(item, bytes):
            out.append(_sha256(_LEAF_PREFIX + item).digest())
        else:
            raise ValidationError(
                f"entries[{position}] must be bytes or a RedactedLeaf, got {type(item).__name__}"
            )
    return out


def chain_head(leaf_hashes: Sequence[bytes], prev_hash: bytes = ZERO_HASH) -> bytes:
    """The chain hash after the last of ``leaf_hashes``, starting from ``prev_hash`` (the
    chain hash before the first; ZERO_HASH before entry 0)."""
    _require_hash("prev_hash", prev_hash)
    sha256 = _sha256
    head = prev_hash
    for leaf in leaf_hashes:  # sequential by nature: each link needs the one before
        head = sha256(head + leaf).digest()
    return head


def chain_heads(leaf_hashes: Sequence[bytes], prev_hash: bytes = ZERO_HASH) -> list[bytes]:
    """The chain hash of each leaf in turn (what each entry stores as ``hash``)."""
    _require_hash("prev_hash", prev_hash)
    sha256 = _sha256
    head = prev_hash
    heads: list[bytes] = []
    append = heads.append
    for leaf in leaf_hashes:
        head = sha256(head + leaf).digest()
        append(head)
    return heads


def _first_difference(calculated: Sequence[bytes], expected: Sequence[bytes]) -> int | None:
    if list(calculated) == list(expected):
        return None
    for position, (mine, theirs) in enumerate(zip(calculated, expected, strict=True)):
        if mine != theirs:
            return position
    return None  # pragma: no cover - unequal lists of equal length differ somewhere


def _chain_mismatch(item: str, calculated: bytes, expected: object) -> VerificationError:
    shown = expected.hex() if isinstance(expected, bytes) else repr(expected)
    return VerificationError(
        f"chain hash is {calculated.hex()} (calculated), the stored one is {shown}", item=item
    )


def verify_chain(
    leaf_hashes: Sequence[bytes],
    prev_hash: bytes,
    expected_heads: Sequence[bytes],
    *,
    start: int = 0,
) -> bytes:
    """Recompute the chain over ``leaf_hashes`` (entries ``start``, ``start + 1``, ...) and
    compare each link with ``expected_heads``. Returns the last chain hash. Raises
    VerificationError naming the first entry whose chain hash differs."""
    if len(expected_heads) != len(leaf_hashes):
        raise ValidationError(
            f"{len(expected_heads)} chain hashes for {len(leaf_hashes)} entries",
            field="/expected_chain_heads",
        )
    heads = chain_heads(leaf_hashes, prev_hash)
    bad = _first_difference(heads, expected_heads)
    if bad is not None:
        raise _chain_mismatch(f"entry {start + bad}", heads[bad], expected_heads[bad])
    return heads[-1] if heads else prev_hash


def _prefixed_hashes(
    state: hashlib._Hash, first: Sequence[bytes], second: Sequence[bytes] = ()
) -> list[bytes]:
    """SHA-256(prefix ‖ first[i] ‖ second[i]) for each i, where ``state`` has hashed the
    prefix. Copying a primed state beats concatenating the prefix (a copy of the input) and
    a fresh hash object (OpenSSL context set-up); each pass is a C-level map."""
    states = list(map(_copy, repeat(state, len(first))))
    deque(map(_update, states, first), maxlen=0)
    if second:
        deque(map(_update, states, second), maxlen=0)
    return list(map(_digest, states))


def _node_row(row: list[bytes]) -> list[bytes]:
    """The parents of ``row`` (even length), pairwise: SHA-256(0x01 ‖ left ‖ right), in C."""
    return _prefixed_hashes(_NODE_STATE, row[0::2], row[1::2])


def _integrate(size: int, peaks: list[bytes], row: list[bytes]) -> list[bytes]:
    """:func:`trailseal.core.merkle._integrate` for the native hasher, without reporting
    completed nodes: the new peaks after adding the leaf hashes ``row`` to a tree of ``size``
    leaves with ``peaks`` (consumed). One level at a time, each level one C-level map."""
    new_peaks: list[bytes] = []  # smallest first
    start = size
    while row:
        if start & 1:
            row.insert(0, peaks.pop())  # the old peak of this level is the left sibling
        if len(row) & 1:
            new_peaks.append(row.pop())
        row = _node_row(row)
        start >>= 1
    new_peaks.reverse()
    return peaks + new_peaks


def extend_tree(tree: CompactRange, leaf_hashes: Sequence[bytes]) -> CompactRange:
    """``tree.append(leaf_hashes)`` without the list of completed nodes, and faster (the
    native hasher only). Raises ValidationError for a hash that is not 32 bytes."""
    _require_hashes("leaf_hashes", leaf_hashes)
    if not leaf_hashes:
        return tree
    peaks = _integrate(tree.size, list(tree.peaks), list(leaf_hashes))
    return CompactRange(tree.size + len(leaf_hashes), tuple(peaks))


def _peak_levels(size: int) -> Iterator[int]:
    """The level of each peak of a tree of ``size`` leaves, largest first."""
    return (level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1)


def merge_trees(left: CompactRange, right: CompactRange) -> CompactRange:
    """The tree state of ``left``'s leaves followed by ``right``'s, where ``right`` was built
    on its own (from index 0). Precondition: ``left.size`` is a multiple of the largest power
    of two not above ``right.size`` (so ``right``'s peaks are nodes of the joined tree), e.g.
    chunks of :data:`CHUNK` leaves at multiples of :data:`CHUNK`. Raises ValidationError."""
    if right.size == 0:
        return left
    top = 1 << (right.size.bit_length() - 1)
    if left.size % top:
        raise ValidationError(
            f"a tree of {right.size} leaves cannot follow {left.size} leaves: "
            f"the left size must be a multiple of {top}",
            code="unaligned",
        )
    size = left.size
    peaks = list(left.peaks)
    for level, node in zip(_peak_levels(right.size), right.peaks, strict=True):
        # size is a multiple of 2**level: carry like a binary counter.
        carry = level
        while size >> carry & 1:
            node = node_hash(peaks.pop(), node)
            carry += 1
        peaks.append(node)
        size += 1 << level
    return CompactRange(size, tuple(peaks))


# --- the seq / origin check ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tail:
    """The expected tail of the entry bytes of one log, for seqs of ``digits`` digits."""

    head: bytes  # ',"origin":"<origin>","received_at":"'
    length: int  # bytes from ',"origin"' to the final '}'
    masked: bytes  # the tail with every digit replaced by '0'
    exact: tuple[tuple[int, bytes], ...]  # (offset, digit) of the digits that must be exact
    seq_offset: int  # where the seq's digits start
    cut: slice  # the tail of an entry: data[cut]


@lru_cache(maxsize=64)
def _tails(origin: str) -> tuple[_Tail, ...] | None:
    """One :class:`_Tail` per seq digit count (index = digits), or None when the origin's
    JSON form has an escape (then the fast check's tokenization argument does not apply)."""
    encoded = canonicalize(origin)
    if b"\\" in encoded:
        return None
    head = b',"origin":' + encoded + b',"received_at":"'
    stamp_end = len(head) + len(_STAMP_TEMPLATE)
    seq_offset = stamp_end + len(_SEQ_KEY)
    tails: list[_Tail] = []
    for digits in range(_MAX_SEQ_DIGITS + 1):
        template = head + _STAMP_TEMPLATE + _SEQ_KEY + b"1" * digits + _END
        exact = tuple(
            (offset, template[offset : offset + 1])
            for offset, byte in enumerate(template)
            if byte in _DIGITS
            and not len(head) <= offset < stamp_end  # the timestamp: shape only
            and not seq_offset <= offset < seq_offset + digits  # the seq: per entry
        )
        length = len(template)
        tails.append(
            _Tail(head, length, template.translate(_MASK), exact, seq_offset, slice(-length, None))
        )
    return tuple(tails)


def _digit_groups(first: int, count: int) -> list[tuple[int, int, int]]:
    """``(first seq, count, digits)`` for the seqs ``first .. first+count-1``, split where
    the number of digits changes."""
    groups: list[tuple[int, int, int]] = []
    seq, end = first, first + count
    while seq < end:
        digits = len(str(seq))
        stop = min(end, 10**digits)
        groups.append((seq, stop - seq, digits))
        seq = stop
    return groups


def _digit_column(first: int, count: int, place: int) -> bytes:
    """The ASCII digit at ``place`` (1, 10, 100, ...) of each of ``first .. first+count-1``:
    what a strided slice through the tails' seq digits must equal."""
    if count // place < 64:  # few runs of one digit: emit them
        runs: list[bytes] = []
        seq, end = first, first + count
        while seq < end:
            stop = min(end, (seq // place + 1) * place)
            digit = seq // place % 10
            runs.append(_DIGITS[digit : digit + 1] * (stop - seq))
            seq = stop
        return b"".join(runs)
    # Many runs: the column is periodic with period 10 * place (<= count / 6 bytes).
    period = b"".join(_DIGITS[digit : digit + 1] * place for digit in range(10))
    offset = first % len(period)
    return (period * ((offset + count) // len(period) + 1))[offset : offset + count]


def _tails_match(tails: tuple[_Tail, ...], entries: Sequence[bytes], first: int) -> bool:
    """Do all ``entries`` (bytes only), seqs ``first ..``, end in the expected tail? Exactly
    :func:`_tail_matches` for each, in a handful of C-level passes (module docstring)."""
    if first + len(entries) > 10**_MAX_SEQ_DIGITS:
        return False  # beyond any valid seq; the per-entry path says which
    groups = _digit_groups(first, len(entries))
    cuts = chain.from_iterable(repeat(tails[digits].cut, count) for _, count, digits in groups)
    joined = b"".join(map(_slice_bytes, entries, cuts))
    # A short entry yields a short slice, so the total length catches it.
    if len(joined) != sum(tails[digits].length * count for _, count, digits in groups):
        return False
    masked = b"".join(tails[digits].masked * count for _, count, digits in groups)
    if joined.translate(_MASK) != masked:
        return False
    offset = 0
    for seq, count, digits in groups:
        tail = tails[digits]
        end = offset + tail.length * count
        for position, digit in tail.exact:
            if joined[offset + position : end : tail.length] != digit * count:
                return False
        for k in range(digits):
            column = joined[offset + tail.seq_offset + k : end : tail.length]
            if column != _digit_column(seq, count, 10 ** (digits - 1 - k)):
                return False
        offset = end
    return True


def _tail_matches(tails: tuple[_Tail, ...], data: bytes, seq: int) -> bool:
    """The per-entry form of :func:`_tails_match` (the slow path that names the culprit)."""
    if seq >= 10**_MAX_SEQ_DIGITS:
        return False
    tail = tails[len(str(seq))]
    if len(data) < tail.length:
        return False
    got = data[tail.cut]
    stamp_end = len(tail.head) + len(_STAMP_TEMPLATE)
    return (
        got[: len(tail.head)] == tail.head
        and got[len(tail.head) : stamp_end].translate(_MASK) == _STAMP_TEMPLATE
        and got[stamp_end:] == b'","seq":%d,"v":1}' % seq
    )


def _describe(data: bytes, seq: int, origin: str) -> str:
    """Why entry ``seq`` is not right, from a full parse (the slow path only)."""
    try:
        entry = parse_entry(data)
    except ValidationError as exc:
        return f"not valid entry bytes: {exc}"
    if entry.origin != origin:
        return f"origin is {entry.origin!r}, expected {origin!r} (the checkpoint's)"
    if entry.seq != seq:
        return f"seq is {entry.seq}, expected {seq}"
    return "entry bytes do not end in the canonical origin, received_at, seq and v members"


def _strict_problem(data: bytes, seq: int, origin: str) -> str | None:
    try:
        entry = parse_entry(data)
    except ValidationError:
        return _describe(data, seq, origin)
    if entry.origin != origin or entry.seq != seq:
        return _describe(data, seq, origin)
    return None


def _bytes_runs(entries: Sequence[bytes | RedactedLeaf]) -> Iterator[tuple[int, list[bytes]]]:
    """``(offset, run)`` for each maximal run of bytes items; raises ValidationError for an
    item that is neither bytes nor a RedactedLeaf."""
    run: list[bytes] = []
    offset = 0
    for position, item in enumerate(entries):
        if isinstance(item, bytes):
            if not run:
                offset = position
            run.append(item)
            continue
        if not isinstance(item, RedactedLeaf):
            raise ValidationError(
                f"entries[{position}] must be bytes or a RedactedLeaf, got {type(item).__name__}"
            )
        if run:
            yield offset, run
            run = []
    if run:
        yield offset, run


def _first_bad_entry(
    entries: Sequence[bytes | RedactedLeaf],
    first: int,
    origin: str,
    tails: tuple[_Tail, ...] | None,
    plain: bool,
) -> tuple[int, str] | None:
    """``(position, why)`` of the first entry whose bytes do not carry ``origin`` and seq
    ``first + position`` (redacted leaves are skipped: nothing to read); None if all do.
    ``plain``: all entries are bytes."""
    runs: Iterable[tuple[int, Sequence[bytes]]] = (
        [(0, cast("Sequence[bytes]", entries))] if plain else _bytes_runs(entries)
    )
    for offset, run in runs:
        seq0 = first + offset
        if tails is None:
            for position, data in enumerate(run):
                problem = _strict_problem(data, seq0 + position, origin)
                if problem is not None:
                    return offset + position, problem
        elif not _tails_match(tails, run, seq0):
            for position, data in enumerate(run):
                if not _tail_matches(tails, data, seq0 + position):
                    return offset + position, _describe(data, seq0 + position, origin)
            raise AssertionError("batch and per-entry tail checks disagree")  # pragma: no cover
    return None


def check_entries(
    entries: Sequence[bytes | RedactedLeaf], *, start: int, origin: str, strict: bool = False
) -> None:
    """Check that each entry's bytes carry log ``origin`` and seq ``start + i`` (module
    docstring: exact, without parsing JSON; ``strict=True`` parses each entry fully).
    Redacted leaves are skipped. Raises VerificationError naming the first bad entry."""
    _require_index("start", start)
    tails = None if strict else _tails(origin)
    bad = _first_bad_entry(entries, start, origin, tails, _all_bytes(entries))
    if bad is not None:
        raise VerificationError(bad[1], item=f"entry {start + bad[0]}")


# --- whole runs ----------------------------------------------------------------------------


def _hash_run(
    entries: Sequence[bytes | RedactedLeaf],
    *,
    start: int,
    origin: str,
    prev_hash: bytes,
    expected_chain_heads: Sequence[bytes] | None,
    tree: CompactRange,
    strict: bool,
) -> tuple[bytes, CompactRange, int]:
    """Check, hash and chain ``entries`` chunk by chunk onto ``tree``. Returns the last chain
    hash, the new tree state and how many were redacted; raises VerificationError naming the
    first entry that is bad (its bytes or its chain hash)."""
    if expected_chain_heads is not None and len(expected_chain_heads) != len(entries):
        raise ValidationError(
            f"{len(expected_chain_heads)} chain hashes for {len(entries)} entries",
            field="/expected_chain_heads",
        )
    tails = None if strict else _tails(origin)
    head = prev_hash
    redacted = 0
    for offset in range(0, len(entries), CHUNK):
        part = entries[offset : offset + CHUNK]
        first = start + offset
        plain = _all_bytes(part)
        bad = _first_bad_entry(part, first, origin, tails, plain)
        leaves = _leaf_hashes(part, plain)
        if not plain:
            redacted += sum(isinstance(item, RedactedLeaf) for item in part)
        if expected_chain_heads is None:
            if bad is not None:
                raise VerificationError(bad[1], item=f"entry {first + bad[0]}")
            head = chain_head(leaves, head)
        else:
            heads = chain_heads(leaves, head)
            expected = expected_chain_heads[offset : offset + CHUNK]
            wrong = _first_difference(heads, expected)
            # Report whichever is first; at the same entry its bytes say more than its hash.
            if bad is not None and (wrong is None or bad[0] <= wrong):
                raise VerificationError(bad[1], item=f"entry {first + bad[0]}")
            if wrong is not None:
                raise _chain_mismatch(f"entry {first + wrong}", heads[wrong], expected[wrong])
            head = heads[-1] if heads else head
        if leaves:  # our own 32-byte hashes: skip extend_tree's argument checks
            size = tree.size + len(leaves)
            tree = CompactRange(size, tuple(_integrate(tree.size, list(tree.peaks), leaves)))
    return head, tree, redacted


def verify_log_run(
    entries: Sequence[bytes | RedactedLeaf],
    checkpoint: SignedCheckpoint | Checkpoint,
    *,
    start: int = 0,
    prev_hash: bytes = ZERO_HASH,
    expected_chain_heads: Sequence[bytes] | None = None,
    origin: str | None = None,
    tree: CompactRange | None = None,
    strict: bool = False,
) -> VerifiedRun:
    """Verify the entries ``start ..`` up to the checkpoint's size (module docstring).

    Preconditions, checked first (ValidationError): ``start == 0`` unless ``tree`` is the
    tree state at ``start`` (``VerifiedRun.tree`` of an earlier run: its root was checked
    then); ``prev_hash`` is the chain hash before ``start``; ``expected_chain_heads``, if
    given, has one hash per entry. ``checkpoint`` must already be opened with the pinned key
    (:func:`open_log_checkpoint`); ``origin``, if given, must be its origin.

    Raises VerificationError naming the first bad entry, or ``checkpoint`` when the run does
    not end at the checkpoint's size or its root differs (expected vs calculated).
    """
    body = _checkpoint_body(checkpoint)
    _check_origin(body, origin)
    _require_index("start", start)
    _require_hash("prev_hash", prev_hash)
    if tree is None:
        if start != 0:
            raise ValidationError(
                "verifying from start > 0 needs the tree state at start (tree=, e.g. "
                "VerifiedRun.tree of the run before); or use verify_log_range",
                field="/tree",
            )
        tree = CompactRange.empty()
    elif not isinstance(tree, CompactRange) or tree.size != start:
        raise ValidationError(f"tree must be the tree state at {start}", field="/tree")
    head, tree, redacted = _hash_run(
        entries,
        start=start,
        origin=body.origin,
        prev_hash=prev_hash,
        expected_chain_heads=expected_chain_heads,
        tree=tree,
        strict=strict,
    )
    if tree.size != body.size:
        raise VerificationError(
            f"the checkpoint covers {body.size} entries, the run ends at {tree.size}",
            item="checkpoint",
        )
    root = tree.root()
    if root != body.root_hash:
        raise VerificationError(
            f"root of the {body.size} entries is {root.hex()} (calculated), the checkpoint "
            f"says {body.root_hash.hex()}",
            item="checkpoint",
        )
    return VerifiedRun(body.origin, start, len(entries), body.size, root, head, redacted, tree)


def _left_peaks(index: int, size: int, proof: Sequence[bytes], item: str) -> tuple[bytes, ...]:
    """The left siblings on the inclusion path of leaf ``index``, largest first: the peaks
    of the tree of the ``index`` leaves before it. Walks the path as RFC 9162 §2.1.3.2 does
    (the elements hashed on the left are the left siblings). Raises VerificationError when
    the proof cannot be an inclusion proof for ``index``/``size``."""
    if not index < size:
        raise VerificationError(f"leaf {index} is not below tree size {size}", item=item)
    lefts: list[bytes] = []
    fn, sn = index, size - 1
    for position, element in enumerate(proof):
        if not isinstance(element, bytes) or len(element) != HASH_SIZE:
            raise VerificationError(f"proof[{position}] is not a {HASH_SIZE}-byte hash", item=item)
        if sn == 0:
            raise VerificationError("inclusion proof is too long", item=item)
        if fn & 1 or fn == sn:
            lefts.append(element)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short", item=item)
    lefts.reverse()
    return tuple(lefts)


def _verify_inclusion(
    index: int, body: Checkpoint, leaf: bytes, proof: Sequence[bytes], item: str
) -> None:
    try:
        verify_inclusion(index, body.size, leaf, proof, body.root_hash)
    except VerificationError as exc:
        raise VerificationError(f"inclusion proof: {exc.message}", item=item) from exc


def verify_log_range(
    entries: Sequence[bytes | RedactedLeaf],
    checkpoint: SignedCheckpoint | Checkpoint,
    *,
    start: int,
    first_proof: Sequence[bytes],
    last_proof: Sequence[bytes],
    prev_hash: bytes | None = None,
    expected_chain_heads: Sequence[bytes] | None = None,
    origin: str | None = None,
    strict: bool = False,
) -> VerifiedRun:
    """Verify the non-empty range of entries ``start ..`` against ``checkpoint`` with the
    inclusion proofs of its first and last entry (module docstring says what it proves).

    Preconditions (ValidationError): ``entries`` is not empty; ``prev_hash`` is the chain
    hash before ``start`` and required unless ``start`` is 0. The checkpoint must already be
    opened with the pinned key. Raises VerificationError naming the first bad entry, the
    entry whose proof fails, ``entries a-b`` when the range does not fit between its proofs,
    or ``checkpoint``.
    """
    body = _checkpoint_body(checkpoint)
    _check_origin(body, origin)
    _require_index("start", start)
    if not entries:
        raise ValidationError("a range needs at least one entry", field="/entries")
    if prev_hash is None:
        if start != 0:
            raise ValidationError(
                "prev_hash (the chain hash before start) is required when start > 0",
                field="/prev_hash",
            )
        prev_hash = ZERO_HASH
    _require_hash("prev_hash", prev_hash)
    last = start + len(entries) - 1
    if last >= body.size:
        raise VerificationError(
            f"entries {start}-{last} run past the checkpoint's {body.size} entries",
            item="checkpoint",
        )
    first_item, last_item = f"entry {start}", f"entry {last}"
    tree = CompactRange(start, _left_peaks(start, body.size, first_proof, first_item))
    head, tree, redacted = _hash_run(
        entries,
        start=start,
        origin=body.origin,
        prev_hash=prev_hash,
        expected_chain_heads=expected_chain_heads,
        tree=tree,
        strict=strict,
    )
    first_leaf, last_leaf = leaf_hashes_of([entries[0], entries[-1]])
    _verify_inclusion(start, body, first_leaf, first_proof, first_item)
    _verify_inclusion(last, body, last_leaf, last_proof, last_item)
    shown = CompactRange(last, _left_peaks(last, body.size, last_proof, last_item))
    if extend_tree(shown, [last_leaf]) != tree:
        raise VerificationError(
            "the entries do not hash to the tree their first and last inclusion proofs show",
            item=f"entries {start}-{last}",
        )
    return VerifiedRun(
        body.origin, start, len(entries), body.size, body.root_hash, head, redacted, tree
    )


# --- checkpoints and proof bundles ---------------------------------------------------------


def _open_signed(note: str | bytes, verifier_key: str) -> tuple[SignedCheckpoint, str]:
    """Open ``note`` with the log's two verifiers and require both lines; the origin is
    left to the caller. Returns the checkpoint and the key's name (the log's origin)."""
    note_verifier, cosignature_verifier = log_verifiers(verifier_key)
    signed = open_checkpoint(note, (note_verifier, cosignature_verifier))
    present = {(sig.name, sig.key_id) for sig in signed.verified}
    if (note_verifier.name, bytes(note_verifier.key_id)) not in present:
        raise SignatureError("the log's signature (type 0x01) is missing", item="checkpoint")
    if (cosignature_verifier.name, bytes(cosignature_verifier.key_id)) not in present:
        raise SignatureError(
            "the log's own cosignature (type 0x04, its signing time) is missing",
            item="checkpoint",
        )
    return signed, note_verifier.name


def open_log_checkpoint(
    note: str | bytes, verifier_key: str, *, origin: str | None = None
) -> SignedCheckpoint:
    """Open a checkpoint with only the log's pinned verifier key (``origin+keyid+base64``,
    key name = origin): the log signature and the log's own cosignature must both be there
    and verify, and the checkpoint's origin must be the key's name (and ``origin``, if
    given). Raises SignatureError; ValidationError for a malformed ``verifier_key``."""
    signed, key_origin = _open_signed(note, verifier_key)
    # A signature does not commit to its key name, so another log's checkpoint signed by the
    # same project key would verify too: the origin is what tells them apart.
    found = signed.checkpoint.origin
    if found != key_origin:
        raise SignatureError(
            f"checkpoint is of log {found!r}, the key is of log {key_origin!r}", item="checkpoint"
        )
    if origin is not None and found != origin:
        raise SignatureError(
            f"checkpoint is of log {found!r}, expected {origin!r}", item="checkpoint"
        )
    return signed


def make_proof_bundle(index: int, proof_hashes: Sequence[bytes], signed_checkpoint: str) -> str:
    """The C2SP tlog-proof text for leaf ``index`` (inclusion hashes, leaf's sibling first,
    and the signed checkpoint verbatim). Raises ValidationError."""
    return ProofBundle(index, tuple(proof_hashes), signed_checkpoint).format()


def verify_proof_bundle(
    bundle: str | bytes | ProofBundle, entry: bytes | RedactedLeaf, verifier_key: str
) -> VerifiedEntry:
    """Verify one entry against a tlog-proof bundle with only the pinned ``verifier_key``
    (module docstring). Raises VerificationError (SignatureError for the checkpoint);
    ValidationError for a malformed ``verifier_key``."""
    if not isinstance(bundle, ProofBundle):
        try:
            bundle = parse_proof_bundle(bundle)
        except ValidationError as exc:
            raise VerificationError(f"malformed proof bundle: {exc}", item="proof bundle") from exc
    signed = open_log_checkpoint(bundle.checkpoint, verifier_key)
    body = signed.checkpoint
    item = f"entry {bundle.index}"
    parsed: Entry | None = None
    if isinstance(entry, RedactedLeaf):
        leaf = entry.leaf_hash
    elif isinstance(entry, bytes):
        try:
            parsed = parse_entry(entry)
        except ValidationError as exc:
            raise VerificationError(f"not valid entry bytes: {exc}", item=item) from exc
        if parsed.origin != body.origin:
            raise VerificationError(
                f"entry is of log {parsed.origin!r}, the checkpoint of {body.origin!r}",
                item=item,
            )
        if parsed.seq != bundle.index:
            raise VerificationError(
                f"entry has seq {parsed.seq}, the proof is for index {bundle.index}", item=item
            )
        leaf = leaf_hash(entry)
    else:
        raise ValidationError(f"entry must be bytes or a RedactedLeaf, got {type(entry).__name__}")
    _verify_inclusion(bundle.index, body, leaf, bundle.hashes, item)
    return VerifiedEntry(
        origin=body.origin,
        index=bundle.index,
        leaf_hash=leaf,
        size=body.size,
        root=body.root_hash,
        timestamp=signed.timestamp,
        redacted=parsed is None,
        entry=parsed,
        checkpoint=signed,
    )


def check_checkpoint_update(
    trusted: SignedCheckpoint | None,
    new_note: str | bytes,
    consistency_proof: Sequence[bytes],
    verifier_key: str,
) -> SignedCheckpoint:
    """Trust on first use (§7): with no ``trusted`` checkpoint, open ``new_note`` with the
    pinned key and accept it. Otherwise the new checkpoint must open, be of the same log,
    be at least as large, equal in root at equal size, and ``consistency_proof`` (RFC 9162,
    trusted size -> new size; empty at equal size or from the empty tree) must show that it
    extends the trusted one. Returns the new checkpoint, to remember in place of the old.
    Raises ConsistencyError saying why (bad signature, wrong log, rollback, fork)."""
    try:
        signed, key_origin = _open_signed(new_note, verifier_key)
    except SignatureError as exc:
        raise ConsistencyError(f"bad signature: {exc.message}", item="checkpoint") from exc
    found = signed.checkpoint.origin
    if found != key_origin:
        raise ConsistencyError(
            f"wrong log: the checkpoint is of {found!r}, the pinned key of {key_origin!r}",
            item="checkpoint",
        )
    if trusted is None:
        return signed
    old, new = trusted.checkpoint, signed.checkpoint
    if new.origin != old.origin:
        raise ConsistencyError(
            f"wrong log: the checkpoint is of {new.origin!r}, the trusted one of {old.origin!r}",
            item="checkpoint",
        )
    if new.size < old.size:
        raise ConsistencyError(
            f"rollback: the new checkpoint has {new.size} entries, the trusted one already "
            f"{old.size}",
            item="checkpoint",
        )
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            raise ConsistencyError(
                f"fork (split view): two roots for size {new.size}, trusted "
                f"{old.root_hash.hex()}, new {new.root_hash.hex()}",
                item="checkpoint",
            )
        if consistency_proof:
            raise ConsistencyError(
                "a consistency proof between equal sizes must be empty", item="checkpoint"
            )
        return signed
    if old.size == 0:
        # Every tree extends the empty one; RFC 9162 has no proof for it (and needs none).
        if consistency_proof:
            raise ConsistencyError(
                "a consistency proof from the empty tree must be empty", item="checkpoint"
            )
        return signed
    try:
        verify_consistency(old.size, new.size, consistency_proof, old.root_hash, new.root_hash)
    except VerificationError as exc:
        raise ConsistencyError(
            f"fork: the new checkpoint ({new.size} entries) does not extend the trusted one "
            f"({old.size}): {exc.message}",
            item="checkpoint",
        ) from exc
    return signed
