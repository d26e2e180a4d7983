"""Offline verification (trailseal.core.verify): real logs built with the core, then every
kind of tampering must fail and name the first bad item; the byte-level seq/origin check is
cross-checked against a full parse and against its own per-entry form."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.core import merkle_reference as ref
from trailseal.core import verify as v
from trailseal.core.checkpoint import Checkpoint, LogKeys, SignedCheckpoint, sign_checkpoint
from trailseal.core.entry import entry_bytes, parse_entry
from trailseal.core.hashing import RFC9162_SHA256, ZERO_HASH, chain_hash, leaf_hash
from trailseal.core.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    root_from_leaf_hashes,
)
from trailseal.core.proofbundle import ProofBundle, parse_proof_bundle
from trailseal.errors import ConsistencyError, SignatureError, ValidationError, VerificationError

ORIGIN = "trailseal.local/log/abcdefghijklmnopqrstuvwxy4"
OTHER_ORIGIN = "trailseal.local/log/z234567abcdefghijklmnopqra"
SEED = bytes(range(32))
KEYS = LogKeys.from_seed(ORIGIN, SEED)
OTHER_KEYS = LogKeys.from_seed(ORIGIN, bytes(32))  # same log name, another key
SIGNED_AT = 1_700_000_000

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def event(seq: int, variant: int = 0) -> dict[str, object]:
    """A realistic event with nested members and non-ASCII text, fixed by (seq, variant)."""
    rnd = random.Random(seq * 7919 + variant)
    return {
        "action": rnd.choice(["invoice.deleted", "user.login", "doc.shared"]),
        "actor": {"id": f"user_{rnd.randrange(10**6)}", "name": "Zoë Ångström", "type": "user"},
        "id": f"ev_{variant}_{seq}",
        "metadata": {"n": rnd.randrange(1000), "note": "é" * rnd.randrange(5), "seq": seq},
        "occurred_at": "2024-05-01T11:59:59.000000Z",
    }


def stamp(seq: int) -> str:
    """A fixed received_at per seq (varied, so the timestamp check sees many digits)."""
    return f"2024-05-{1 + seq % 28:02d}T{seq % 24:02d}:{seq % 60:02d}:07.{seq % 10**6:06d}Z"


def make_entry(seq: int, origin: str = ORIGIN, variant: int = 0) -> bytes:
    ext = {"pangea": {"v": variant}} if seq % 5 == 3 else None
    return entry_bytes(
        origin=origin, seq=seq, received_at=stamp(seq), event=event(seq, variant), ext=ext
    )


@dataclass
class Log:
    """A log built with the core: entries, leaf and chain hashes, tree nodes, checkpoints."""

    entries: list[bytes]
    origin: str = ORIGIN
    keys: LogKeys = KEYS
    leaves: list[bytes] = field(init=False)
    heads: list[bytes] = field(init=False)
    nodes: dict[tuple[int, int], bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.leaves = [leaf_hash(e) for e in self.entries]
        self.heads = []
        head = ZERO_HASH
        for leaf in self.leaves:
            head = chain_hash(head, leaf)
            self.heads.append(head)
        _, completed = CompactRange.empty().append(self.leaves)
        self.nodes = {(level, index): h for level, index, h in completed}

    @property
    def size(self) -> int:
        return len(self.entries)

    def root(self, size: int | None = None) -> bytes:
        return root_from_leaf_hashes(self.leaves[: self.size if size is None else size])

    def note(self, size: int | None = None, keys: LogKeys | None = None) -> str:
        size = self.size if size is None else size
        return (keys or self.keys).sign(Checkpoint(self.origin, size, self.root(size)), SIGNED_AT)

    def checkpoint(self, size: int | None = None) -> SignedCheckpoint:
        return v.open_log_checkpoint(self.note(size), self.keys.verifier_key())

    def read(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.read)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(size1, size2, self.read)

    def bundle(self, index: int) -> str:
        return v.make_proof_bundle(index, self.inclusion(index), self.note())


@cache
def log_of(size: int, origin: str = ORIGIN, variant: int = 0) -> Log:
    keys = KEYS if origin == ORIGIN else LogKeys.from_seed(origin, SEED)
    return Log([make_entry(i, origin, variant) for i in range(size)], origin, keys)


@cache
def big_log() -> Log:
    """Crosses two CHUNK boundaries and the 4 -> 5 digit seq boundary."""
    return log_of(2 * v.CHUNK + 1810)


def flip(data: bytes, position: int, bit: int = 0) -> bytes:
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]


class _Failure:
    """What :func:`fails` caught, for further asserts on the message."""

    value: VerificationError


@contextmanager
def fails(
    item: str | set[str], *, error: type[VerificationError] = VerificationError
) -> Iterator[_Failure]:
    """Expect a VerificationError naming ``item`` (or one of a set)."""
    caught = _Failure()
    with pytest.raises(error) as info:
        yield caught
    caught.value = info.value
    items = {item} if isinstance(item, str) else item
    assert info.value.item in items, str(info.value)


sizes = st.integers(min_value=1, max_value=200)


# --- whole runs: the good case -------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 64, 200])
def test_untouched_log_verifies(size: int) -> None:
    log = log_of(size)
    run = v.verify_log_run(log.entries, log.checkpoint())
    assert (run.origin, run.start, run.count, run.size) == (ORIGIN, 0, size, size)
    assert run.root == ref.mth(log.entries, RFC9162_SHA256)
    assert run.chain_head == log.heads[-1]
    assert run.redacted == 0
    assert run.tree.size == size and run.tree.root() == run.root
    assert v.verify_log_run(log.entries, log.checkpoint(), strict=True) == run
    assert v.verify_log_run(log.entries, log.checkpoint(), expected_chain_heads=log.heads) == run


def test_empty_log_verifies() -> None:
    log = log_of(0)
    run = v.verify_log_run([], log.checkpoint())
    assert run.size == 0 and run.chain_head == ZERO_HASH
    assert run.root == RFC9162_SHA256.empty_root()


def test_big_log_verifies_across_chunks_and_digit_boundaries() -> None:
    log = big_log()
    assert log.size > 10_000 > 2 * v.CHUNK
    run = v.verify_log_run(log.entries, log.checkpoint(), expected_chain_heads=log.heads)
    assert run.chain_head == log.heads[-1]
    assert run.root == log.root()
    assert v.verify_log_run(tuple(log.entries), log.checkpoint(), strict=True).root == run.root


def test_plain_checkpoint_body_and_origin_argument() -> None:
    log = log_of(10)
    body = Checkpoint(ORIGIN, 10, log.root())
    assert v.verify_log_run(log.entries, body, origin=ORIGIN).root == log.root()
    with fails("checkpoint"):
        v.verify_log_run(log.entries, body, origin=OTHER_ORIGIN)


def test_run_in_two_parts_with_the_tree_state() -> None:
    log = big_log()
    for split in (1, 77, v.CHUNK, 9_999, log.size - 1):
        first = v.verify_log_run(log.entries[:split], log.checkpoint(split))
        second = v.verify_log_run(
            log.entries[split:],
            log.checkpoint(),
            start=split,
            prev_hash=first.chain_head,
            tree=first.tree,
            expected_chain_heads=log.heads[split:],
        )
        assert second.root == log.root() and second.chain_head == log.heads[-1]
        assert (second.start, second.count) == (split, log.size - split)


def test_run_from_start_needs_the_tree() -> None:
    log = log_of(10)
    with pytest.raises(ValidationError, match="tree"):
        v.verify_log_run(log.entries[3:], log.checkpoint(), start=3)
    with pytest.raises(ValidationError, match="tree"):
        v.verify_log_run(log.entries[3:], log.checkpoint(), start=3, tree=CompactRange.empty())
    with pytest.raises(ValidationError):
        v.verify_log_run(log.entries, log.checkpoint(), expected_chain_heads=log.heads[1:])
    with pytest.raises(ValidationError):
        v.verify_log_run(log.entries, log.checkpoint(), prev_hash=b"short")
    with pytest.raises(ValidationError):
        v.verify_log_run([*log.entries[:9], "text"], log.checkpoint())  # type: ignore[list-item]


# --- whole runs: tampering ------------------------------------------------------------------


@SETTINGS
@given(size=sizes, data=st.data())
def test_flipping_any_bit_of_any_entry_names_it(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1), label="index")
    position = data.draw(st.integers(0, len(log.entries[index]) - 1), label="position")
    bit = data.draw(st.integers(0, 7), label="bit")
    entries = list(log.entries)
    entries[index] = flip(entries[index], position, bit)
    cp = log.checkpoint()
    # With the stored chain hashes the culprit is always named ...
    with fails(f"entry {index}"):
        v.verify_log_run(entries, cp, expected_chain_heads=log.heads)
    with fails(f"entry {index}"):
        v.verify_log_run(entries, cp, expected_chain_heads=log.heads, strict=True)
    # ... without them a change inside the event shows only as a different root.
    with fails({f"entry {index}", "checkpoint"}):
        v.verify_log_run(entries, cp)
    # A flip in the envelope's tail (origin, seq, v) is caught by the byte-level check.
    tail_start = entries[index].rfind(b',"origin":')
    if position > len(log.entries[index]) - 12 or tail_start < position < tail_start + 60:
        with fails(f"entry {index}"):
            v.verify_log_run(entries, cp)


@SETTINGS
@given(size=st.integers(2, 200), data=st.data())
def test_dropping_an_entry_names_it(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    entries = log.entries[:index] + log.entries[index + 1 :]
    expected = f"entry {index}" if index < size - 1 else "checkpoint"
    with fails(expected) as check:
        v.verify_log_run(entries, log.checkpoint())
    if index < size - 1:
        assert f"seq is {index + 1}, expected {index}" in str(check.value)


@SETTINGS
@given(size=st.integers(2, 200), data=st.data())
def test_reordering_names_the_first_moved_entry(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    i = data.draw(st.integers(0, size - 2))
    j = data.draw(st.integers(i + 1, size - 1))
    entries = list(log.entries)
    entries[i], entries[j] = entries[j], entries[i]
    with fails(f"entry {i}"):
        v.verify_log_run(entries, log.checkpoint())
    with fails(f"entry {i}"):
        v.verify_log_run(entries, log.checkpoint(), expected_chain_heads=log.heads)


@SETTINGS
@given(size=sizes, data=st.data())
def test_duplicating_an_entry_names_the_copy(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    entries = [*log.entries[: index + 1], log.entries[index], *log.entries[index + 1 :]]
    with fails(f"entry {index + 1}"):
        v.verify_log_run(entries, log.checkpoint())


@SETTINGS
@given(size=sizes, data=st.data(), strict=st.booleans())
def test_an_entry_of_another_log_names_it(size: int, data: st.DataObject, strict: bool) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    entries = list(log.entries)
    entries[index] = log_of(size, OTHER_ORIGIN).entries[index]
    with fails(f"entry {index}") as check:
        v.verify_log_run(entries, log.checkpoint(), strict=strict)
    assert "origin" in str(check.value)


@SETTINGS
@given(size=sizes, data=st.data(), strict=st.booleans())
def test_a_wrong_seq_names_the_entry(size: int, data: st.DataObject, strict: bool) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    wrong = data.draw(st.integers(0, 2**53 - 1).filter(lambda s: s != index))
    entries = list(log.entries)
    entries[index] = make_entry(wrong)
    with fails(f"entry {index}") as check:
        v.verify_log_run(entries, log.checkpoint(), strict=strict)
    assert f"seq is {wrong}, expected {index}" in str(check.value)


def test_the_whole_log_of_another_origin_fails_at_entry_0() -> None:
    other = log_of(20, OTHER_ORIGIN)
    body = Checkpoint(ORIGIN, 20, other.root())
    with fails("entry 0"):
        v.verify_log_run(other.entries, body)


def test_first_bad_entry_wins_between_bytes_and_chain() -> None:
    log = log_of(50)
    heads = list(log.heads)
    heads[10] = bytes(32)
    entries = list(log.entries)
    entries[20] = make_entry(21)
    with fails("entry 10"):
        v.verify_log_run(entries, log.checkpoint(), expected_chain_heads=heads)
    heads = list(log.heads)
    heads[30] = bytes(32)
    with fails("entry 20"):
        v.verify_log_run(entries, log.checkpoint(), expected_chain_heads=heads)


def test_errors_in_a_later_chunk_name_the_absolute_index() -> None:
    log = big_log()
    for index in (v.CHUNK - 1, v.CHUNK, 2 * v.CHUNK + 3, 9_999, 10_000, log.size - 1):
        entries = list(log.entries)
        entries[index] = make_entry(index + 1)
        with fails(f"entry {index}"):
            v.verify_log_run(entries, log.checkpoint())
        entries[index] = flip(log.entries[index], 30)
        with fails(f"entry {index}"):
            v.verify_log_run(entries, log.checkpoint(), expected_chain_heads=log.heads)


def test_a_wrong_size_or_root_is_named_checkpoint() -> None:
    log = log_of(30)
    with fails("checkpoint") as check:
        v.verify_log_run(log.entries, Checkpoint(ORIGIN, 30, bytes(32)))
    assert log.root().hex() in str(check.value)
    with fails("checkpoint"):
        v.verify_log_run(log.entries, Checkpoint(ORIGIN, 31, log.root()))
    with fails("checkpoint"):
        v.verify_log_run(log.entries[:29], log.checkpoint())


# --- redaction ------------------------------------------------------------------------------


@SETTINGS
@given(size=sizes, data=st.data())
def test_redacted_entries_verify(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    erased = data.draw(st.sets(st.integers(0, size - 1)))
    entries: list[bytes | v.RedactedLeaf] = [
        v.RedactedLeaf(log.leaves[i]) if i in erased else e for i, e in enumerate(log.entries)
    ]
    for strict in (False, True):
        run = v.verify_log_run(entries, log.checkpoint(), strict=strict)
        assert run.redacted == len(erased) and run.root == log.root()
    # A bad entry after redacted ones is still named by its absolute index.
    good = [i for i in range(size) if i not in erased]
    assume(good)
    index = data.draw(st.sampled_from(good))
    entries[index] = make_entry(index + 1)
    with fails(f"entry {index}"):
        v.verify_log_run(entries, log.checkpoint())


@SETTINGS
@given(size=sizes, data=st.data())
def test_a_redacted_leaf_with_the_wrong_hash_fails(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    wrong = data.draw(st.binary(min_size=32, max_size=32).filter(lambda h: h != log.leaves[index]))
    entries: list[bytes | v.RedactedLeaf] = list(log.entries)
    entries[index] = v.RedactedLeaf(wrong)
    with fails(f"entry {index}"):
        v.verify_log_run(entries, log.checkpoint(), expected_chain_heads=log.heads)
    with fails("checkpoint"):
        v.verify_log_run(entries, log.checkpoint())


def test_redaction_across_chunks() -> None:
    log = big_log()
    erased = {0, 5, v.CHUNK - 1, v.CHUNK, 9_999, 10_000, log.size - 1}
    entries = [
        v.RedactedLeaf(log.leaves[i]) if i in erased else e for i, e in enumerate(log.entries)
    ]
    run = v.verify_log_run(entries, log.checkpoint(), expected_chain_heads=log.heads)
    assert run.redacted == len(erased)


def test_redacted_leaf_is_validated() -> None:
    with pytest.raises(ValidationError):
        v.RedactedLeaf(b"x" * 31)


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    log = log_of(10)
    with pytest.raises(SignatureError):
        v.open_log_checkpoint(log.note(keys=OTHER_KEYS), KEYS.verifier_key())


@SETTINGS
@given(data=st.data())
def test_a_changed_checkpoint_body_is_refused(data: st.DataObject) -> None:
    note = log_of(10).note()
    body_end = note.index("\n\n")
    position = data.draw(st.integers(0, body_end))
    changed = flip(note.encode(), position, data.draw(st.integers(0, 6))).decode("latin-1")
    with pytest.raises(SignatureError):
        v.open_log_checkpoint(changed, KEYS.verifier_key())


def test_both_log_signatures_are_required() -> None:
    log = log_of(5)
    body = Checkpoint(ORIGIN, 5, log.root())
    without_cosignature = sign_checkpoint(body, KEYS.signer, None, 0)
    with pytest.raises(SignatureError, match="cosignature"):
        v.open_log_checkpoint(without_cosignature, KEYS.verifier_key())
    only_cosignature = KEYS.sign(body, SIGNED_AT).replace(
        KEYS.sign(body, SIGNED_AT).splitlines()[-2] + "\n", ""
    )
    with pytest.raises(SignatureError, match=r"signature \(type 0x01\)"):
        v.open_log_checkpoint(only_cosignature, KEYS.verifier_key())
    opened = v.open_log_checkpoint(log.note(), KEYS.verifier_key(), origin=ORIGIN)
    assert opened.timestamp == SIGNED_AT
    with pytest.raises(SignatureError):
        v.open_log_checkpoint(log.note(), KEYS.verifier_key(), origin=OTHER_ORIGIN)


def test_another_logs_checkpoint_does_not_open() -> None:
    other = log_of(5, OTHER_ORIGIN)
    with pytest.raises(SignatureError):
        v.open_log_checkpoint(other.note(), KEYS.verifier_key())
    # Same project key, key name relabelled to this log: the origin gives it away.
    relabelled = other.note().replace(f"— {OTHER_ORIGIN} ", f"— {ORIGIN} ")
    with pytest.raises(SignatureError):
        v.open_log_checkpoint(relabelled, KEYS.verifier_key())


# --- ranges ---------------------------------------------------------------------------------


def _range(log: Log, a: int, b: int, **kwargs: object) -> v.VerifiedRun:
    return v.verify_log_range(
        log.entries[a : b + 1],
        log.checkpoint(),
        start=a,
        first_proof=log.inclusion(a),
        last_proof=log.inclusion(b),
        prev_hash=log.heads[a - 1] if a else None,
        **kwargs,  # type: ignore[arg-type]
    )


@SETTINGS
@given(size=sizes, data=st.data())
def test_ranges_verify(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    a = data.draw(st.integers(0, size - 1))
    b = data.draw(st.integers(a, size - 1))
    run = _range(log, a, b, expected_chain_heads=log.heads[a : b + 1])
    assert (run.start, run.count, run.size, run.root) == (a, b - a + 1, size, log.root())
    assert run.chain_head == log.heads[b]
    assert run.tree.size == b + 1 and run.tree.root() == log.root(b + 1)


@SETTINGS
@given(size=st.integers(3, 200), data=st.data())
def test_a_changed_entry_in_a_range_fails(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    a = data.draw(st.integers(0, size - 3))
    b = data.draw(st.integers(a + 2, size - 1))
    index = data.draw(st.integers(a, b))
    entries = list(log.entries)
    entries[index] = flip(entries[index], 20)  # inside the event
    expected = {a: f"entry {a}", b: f"entry {b}"}.get(index, f"entries {a}-{b}")
    with fails(expected):
        v.verify_log_range(
            entries[a : b + 1],
            log.checkpoint(),
            start=a,
            first_proof=log.inclusion(a),
            last_proof=log.inclusion(b),
            prev_hash=log.heads[a - 1] if a else None,
        )
    with fails(f"entry {index}"):
        v.verify_log_range(
            entries[a : b + 1],
            log.checkpoint(),
            start=a,
            first_proof=log.inclusion(a),
            last_proof=log.inclusion(b),
            prev_hash=log.heads[a - 1] if a else None,
            expected_chain_heads=log.heads[a : b + 1],
        )


def test_ranges_with_redacted_entries_and_strict_parsing() -> None:
    log = log_of(60)
    entries: list[bytes | v.RedactedLeaf] = list(log.entries[10:41])
    entries[0] = v.RedactedLeaf(log.leaves[10])
    entries[7] = v.RedactedLeaf(log.leaves[17])
    run = v.verify_log_range(
        entries,
        log.checkpoint(),
        start=10,
        first_proof=log.inclusion(10),
        last_proof=log.inclusion(40),
        prev_hash=log.heads[9],
        expected_chain_heads=log.heads[10:41],
        strict=True,
    )
    assert run.redacted == 2 and run.chain_head == log.heads[40]
    entries[7] = v.RedactedLeaf(log.leaves[18])
    with fails("entries 10-40"):
        v.verify_log_range(
            entries,
            log.checkpoint(),
            start=10,
            first_proof=log.inclusion(10),
            last_proof=log.inclusion(40),
            prev_hash=log.heads[9],
        )


def test_range_misuse_and_bad_proofs() -> None:
    log = log_of(40)
    with fails("entry 10"):  # the proof of another leaf
        v.verify_log_range(
            log.entries[10:20],
            log.checkpoint(),
            start=10,
            first_proof=log.inclusion(11),
            last_proof=log.inclusion(19),
            prev_hash=log.heads[9],
        )
    with fails("entry 10"):  # a proof that is too short
        v.verify_log_range(
            log.entries[10:20],
            log.checkpoint(),
            start=10,
            first_proof=log.inclusion(10)[:-1],
            last_proof=log.inclusion(19),
            prev_hash=log.heads[9],
        )
    with fails("entry 11"):  # entries shifted against their start
        v.verify_log_range(
            log.entries[10:20],
            log.checkpoint(),
            start=11,
            first_proof=log.inclusion(11),
            last_proof=log.inclusion(20),
            prev_hash=log.heads[10],
        )
    with fails("checkpoint"):
        v.verify_log_range(
            log.entries[30:40],
            log.checkpoint(30),
            start=30,
            first_proof=[],
            last_proof=[],
            prev_hash=log.heads[29],
        )
    with pytest.raises(ValidationError):
        v.verify_log_range([], log.checkpoint(), start=0, first_proof=[], last_proof=[])
    with pytest.raises(ValidationError):
        v.verify_log_range(
            log.entries[5:6],
            log.checkpoint(),
            start=5,
            first_proof=log.inclusion(5),
            last_proof=log.inclusion(5),
        )


# --- proof bundles --------------------------------------------------------------------------


@SETTINGS
@given(size=sizes, data=st.data())
def test_proof_bundles_verify(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    bundle = log.bundle(index)
    verified = v.verify_proof_bundle(bundle, log.entries[index], KEYS.verifier_key())
    assert (verified.index, verified.size, verified.root) == (index, size, log.root())
    assert verified.origin == ORIGIN and verified.timestamp == SIGNED_AT
    assert verified.entry == parse_entry(log.entries[index]) and not verified.redacted
    redacted = v.verify_proof_bundle(
        parse_proof_bundle(bundle), v.RedactedLeaf(log.leaves[index]), KEYS.verifier_key()
    )
    assert redacted.redacted and redacted.entry is None and redacted.leaf_hash == log.leaves[index]


@settings(max_examples=300, deadline=None)
@given(size=sizes, data=st.data())
def test_flipping_any_bit_of_a_bundle_fails(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    text = log.bundle(index).encode()
    position = data.draw(st.integers(0, len(text) - 1))
    mutated = flip(text, position, data.draw(st.integers(0, 7)))
    with pytest.raises(VerificationError):
        v.verify_proof_bundle(mutated, log.entries[index], KEYS.verifier_key())


@SETTINGS
@given(size=st.integers(2, 200), data=st.data())
def test_every_structured_bundle_mutation_fails(size: int, data: st.DataObject) -> None:
    log = log_of(size)
    index = data.draw(st.integers(0, size - 1))
    good = parse_proof_bundle(log.bundle(index))
    vkey = KEYS.verifier_key()
    mutations: list[ProofBundle] = []
    if good.hashes:
        k = data.draw(st.integers(0, len(good.hashes) - 1))
        bit = data.draw(st.integers(0, 255))
        hashes = list(good.hashes)
        hashes[k] = flip(hashes[k], bit // 8, bit % 8)
        mutations += [
            ProofBundle(index, tuple(hashes), good.checkpoint),
            ProofBundle(index, good.hashes[:-1], good.checkpoint),
            ProofBundle(index, good.hashes[::-1], good.checkpoint)
            if len(set(good.hashes)) > 1
            else ProofBundle(index, (*good.hashes, bytes(32)), good.checkpoint),
        ]
    other = data.draw(st.integers(0, 2**64 - 1).filter(lambda i: i != index))
    mutations += [
        ProofBundle(other, good.hashes, good.checkpoint),
        ProofBundle(index, good.hashes, log.note(size - 1) if size > 1 else log.note(0)),
        ProofBundle(index, good.hashes, log.note(keys=OTHER_KEYS)),
    ]
    for bundle in mutations:
        with pytest.raises(VerificationError):
            v.verify_proof_bundle(bundle, log.entries[index], vkey)
    # The right bundle for the wrong entry, or a wrong leaf hash.
    wrong = (index + 1) % size
    with fails(f"entry {index}"):
        v.verify_proof_bundle(good, log.entries[wrong], vkey)
    with fails(f"entry {index}"):
        v.verify_proof_bundle(good, v.RedactedLeaf(log.leaves[wrong]), vkey)
    with fails(f"entry {index}"):
        v.verify_proof_bundle(good, log_of(size, OTHER_ORIGIN).entries[index], vkey)
    with pytest.raises(SignatureError):
        v.verify_proof_bundle(good, log.entries[index], OTHER_KEYS.verifier_key())


def test_malformed_bundle_is_a_verification_error() -> None:
    with fails("proof bundle"):
        v.verify_proof_bundle("not a proof\n", make_entry(0), KEYS.verifier_key())


# --- trust on first use ---------------------------------------------------------------------


def test_first_use_accepts_and_consistent_updates_are_accepted() -> None:
    log = log_of(200)
    trusted = v.check_checkpoint_update(None, log.note(1), [], KEYS.verifier_key())
    for size in (1, 2, 3, 8, 13, 64, 100, 199, 200, 200):
        trusted = v.check_checkpoint_update(
            trusted,
            log.note(size),
            log.consistency(trusted.checkpoint.size, size),
            KEYS.verifier_key(),
        )
        assert trusted.checkpoint.size == size
    empty = v.check_checkpoint_update(None, log.note(0), [], KEYS.verifier_key())
    grown = v.check_checkpoint_update(empty, log.note(5), [], KEYS.verifier_key())
    assert grown.checkpoint.size == 5


@SETTINGS
@given(m=sizes, n=sizes)
def test_updates_between_any_sizes(m: int, n: int) -> None:
    log = log_of(200)
    trusted = log.checkpoint(m)
    if n < m:
        with pytest.raises(ConsistencyError, match="rollback"):
            v.check_checkpoint_update(trusted, log.note(n), [], KEYS.verifier_key())
        return
    proof = log.consistency(m, n)
    assert v.check_checkpoint_update(trusted, log.note(n), proof, KEYS.verifier_key())
    # A different history (another log's entries under this log's name), same key.
    fork = Log([make_entry(i, variant=1) for i in range(n)])
    with pytest.raises(ConsistencyError, match="fork"):
        v.check_checkpoint_update(trusted, fork.note(), fork.consistency(m, n), KEYS.verifier_key())
    if proof:
        with pytest.raises(ConsistencyError, match="fork"):
            v.check_checkpoint_update(trusted, log.note(n), proof[:-1], KEYS.verifier_key())


def test_refusals_say_why() -> None:
    log = log_of(20)
    trusted = log.checkpoint(10)
    vkey = KEYS.verifier_key()
    with pytest.raises(ConsistencyError, match="bad signature"):
        v.check_checkpoint_update(
            trusted, log.note(12, keys=OTHER_KEYS), log.consistency(10, 12), vkey
        )
    with pytest.raises(ConsistencyError, match="bad signature"):
        v.check_checkpoint_update(None, log.note(12, keys=OTHER_KEYS), [], vkey)
    other = log_of(12, OTHER_ORIGIN)
    with pytest.raises(ConsistencyError, match="wrong log"):
        v.check_checkpoint_update(
            trusted, other.note(), other.consistency(10, 12), other.keys.verifier_key()
        )
    with pytest.raises(ConsistencyError, match="fork"):
        v.check_checkpoint_update(
            trusted, Log([make_entry(i, variant=2) for i in range(10)]).note(), [], vkey
        )
    with pytest.raises(ConsistencyError, match="rollback"):
        v.check_checkpoint_update(trusted, log.note(9), [], vkey)
    with pytest.raises(ConsistencyError):
        v.check_checkpoint_update(trusted, log.note(10), [bytes(32)], vkey)


# --- the pieces and the fast seq/origin check -----------------------------------------------


@SETTINGS
@given(leaves=st.lists(st.binary(min_size=32, max_size=32), max_size=70), data=st.data())
def test_extend_and_merge_trees_match_the_reference(
    leaves: list[bytes], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(leaves)))
    left = v.extend_tree(CompactRange.empty(), leaves[:split])
    whole = v.extend_tree(left, leaves[split:])
    assert whole == CompactRange.empty().append(leaves)[0]
    assert whole.root() == root_from_leaf_hashes(leaves)
    chunk = data.draw(st.sampled_from([1, 2, 4, 8, 16]))
    merged = CompactRange.empty()
    for at in range(0, len(leaves), chunk):
        merged = v.merge_trees(merged, v.extend_tree(CompactRange.empty(), leaves[at : at + chunk]))
    assert merged == whole
    with pytest.raises(ValidationError):
        v.extend_tree(CompactRange.empty(), [b"short"])


def test_merge_trees_needs_alignment() -> None:
    leaves = [bytes([i]) * 32 for i in range(8)]
    three = v.extend_tree(CompactRange.empty(), leaves[:3])
    four = v.extend_tree(CompactRange.empty(), leaves[3:7])
    with pytest.raises(ValidationError, match="multiple"):
        v.merge_trees(three, four)
    assert v.merge_trees(three, CompactRange.empty()) == three


def test_chain_pieces() -> None:
    log = log_of(30)
    assert v.chain_heads(log.leaves) == log.heads
    assert v.chain_head(log.leaves) == log.heads[-1]
    assert v.verify_chain(log.leaves[5:], log.heads[4], log.heads[5:], start=5) == log.heads[-1]
    heads = list(log.heads)
    heads[12] = bytes(32)
    with fails("entry 12"):
        v.verify_chain(log.leaves[5:], log.heads[4], heads[5:], start=5)
    assert v.leaf_hashes_of([*log.entries[:2], v.RedactedLeaf(log.leaves[2])]) == log.leaves[:3]


@pytest.mark.parametrize(
    "start",
    [0, 5, 8, 95, 990, 9_990, 99_999 - 30, 10**6 - 17, 10**15 - 40, 2**53 - 60],
)
def test_check_entries_across_digit_boundaries(start: int) -> None:
    entries = [make_entry(start + i) for i in range(60)]
    v.check_entries(entries, start=start, origin=ORIGIN)
    for i in (0, 29, 59):
        bad = list(entries)
        bad[i] = make_entry(start + i + 1 if start + i + 1 < 2**53 else start)
        with fails(f"entry {start + i}"):
            v.check_entries(bad, start=start, origin=ORIGIN)
    with fails(f"entry {start + 1}"):
        v.check_entries(entries, start=start + 1, origin=ORIGIN)


@pytest.mark.parametrize("first", [0, 3, 9, 10, 95, 999, 12_345, 10**6 - 5000])
@pytest.mark.parametrize("count", [1, 7, 64, 5000])
def test_digit_columns(first: int, count: int) -> None:
    for place in (1, 10, 100, 1000, 10**4, 10**6):
        expected = bytes(48 + s // place % 10 for s in range(first, first + count))
        assert v._digit_column(first, count, place) == expected


tail_bytes = st.sampled_from(list(b'0123456789",:\\{}abcdefgorsvqtZT-.'))


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**53 - 1), data=st.data())
def test_fast_check_agrees_with_its_per_entry_form_and_a_full_parse(
    seed: int, data: st.DataObject
) -> None:
    count = data.draw(st.integers(1, 12))
    start = data.draw(st.sampled_from([0, 7, 95, 9_998, seed % (2**53 - 20)]))
    entries = [make_entry(start + i) for i in range(count)]
    # Mutate a few entries near the tail: splice, delete or insert bytes.
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, count - 1))
        e = entries[i]
        position = data.draw(st.integers(max(0, len(e) - 110), len(e)))
        cut = data.draw(st.integers(0, 3))
        insert = bytes(data.draw(st.lists(tail_bytes, max_size=3)))
        entries[i] = e[:position] + insert + e[position + cut :]
    tails = v._tails(ORIGIN)
    assert tails is not None
    each = [v._tail_matches(tails, e, start + i) for i, e in enumerate(entries)]
    assert v._tails_match(tails, entries, start) == all(each)
    for i, e in enumerate(entries):
        try:
            entry = parse_entry(e)
        except ValidationError:
            continue  # not an entry at all: the fast check may say either
        assert each[i] == (entry.origin == ORIGIN and entry.seq == start + i)


def test_origins_that_need_escapes_fall_back_to_parsing() -> None:
    origin = 'host/log/a"b\\c'
    assert v._tails(origin) is None
    entries = [make_entry(i, origin) for i in range(12)]
    body = Checkpoint(origin, 12, root_from_leaf_hashes([leaf_hash(e) for e in entries]))
    assert v.verify_log_run(entries, body).size == 12
    entries[4] = make_entry(5, origin)
    with fails("entry 4"):
        v.verify_log_run(entries, body)


def test_non_ascii_origin_uses_the_fast_check() -> None:
    origin = "journal.exämple/log/abcdefghijklmnopqrstuvwxy4"
    assert v._tails(origin) is not None
    entries = [make_entry(i, origin) for i in range(12)]
    v.check_entries(entries, start=0, origin=origin)
    with fails("entry 0"):
        v.check_entries(entries, start=0, origin=ORIGIN)


def test_exports_are_complete() -> None:
    public = {name for name in vars(v) if not name.startswith("_")}
    defined = {
        name for name in public if getattr(getattr(v, name), "__module__", None) == v.__name__
    }
    assert defined <= set(v.__all__)
    assert all(hasattr(v, name) for name in v.__all__)
