"""C2SP tlog-proof framing: every vector in vectors/tlog-proof/ and properties."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load_vector_json
from tests.core.test_note import noncanonical_variants
from trailseal.core.checkpoint import MAX_TREE_SIZE, Checkpoint, LogKeys
from trailseal.core.proofbundle import (
    MAX_PROOF_HASHES,
    PROOF_HEADER,
    ProofBundle,
    parse_proof_bundle,
)
from trailseal.errors import SignatureError, ValidationError

PROOFS = load_vector_json("tlog-proof/proofs.json")
PROPS = settings(max_examples=150, deadline=None)
HASH = bytes(range(32))
CHECKPOINT_TEXT = "example.com/log\n1\n" + base64.b64encode(HASH).decode() + "\n\n— k AAAAAAAA\n"


@pytest.mark.parametrize("vector", PROOFS["vectors"], ids=lambda v: v["name"])
def test_proof_vector(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    if not expected["ok"]:
        with pytest.raises(ValidationError):
            parse_proof_bundle(vector["proof"])
        return
    bundle = parse_proof_bundle(vector["proof"])
    assert bundle.index == expected["index"]
    assert [h.hex() for h in bundle.hashes] == expected["hashes"]
    assert bundle.checkpoint == expected["checkpoint"]
    if "extra_hex" in expected:
        assert bundle.extra is not None
        assert bundle.extra.hex() == expected["extra_hex"]
    else:
        assert expected["extra"] is None
        assert bundle.extra is None
    assert bundle.format() == vector["proof"]
    assert parse_proof_bundle(vector["proof"].encode()) == bundle


def test_bundle_carries_a_real_checkpoint_that_opens() -> None:
    keys = LogKeys.from_seed("trailseal.local/log/x", bytes(32))
    signed = keys.sign(Checkpoint(keys.origin, 3, HASH), 1_700_000_000)
    bundle = ProofBundle(2, (HASH, HASH), signed)
    parsed = parse_proof_bundle(bundle.format())
    assert parsed == bundle
    opened = parsed.open_checkpoint(keys.verifiers(), origin=keys.origin)
    assert opened.checkpoint.size == 3
    assert opened.timestamp == 1_700_000_000
    with pytest.raises(SignatureError):
        ProofBundle(0, (), CHECKPOINT_TEXT).open_checkpoint(keys.verifiers())


@pytest.mark.parametrize(
    "text",
    [
        "",
        PROOF_HEADER,
        PROOF_HEADER + "\n",
        PROOF_HEADER + "\nindex 1\n",  # no empty line
        PROOF_HEADER + "\nindex 1\n\n",  # no checkpoint
        PROOF_HEADER + "\nindex 1\n\ncheckpoint without newline",
        PROOF_HEADER + " \nindex 1\n\ncp\n",
        PROOF_HEADER + "\r\nindex 1\n\ncp\n",
        "c2sp.org/tlog-proof@v2\nindex 1\n\ncp\n",
        PROOF_HEADER + "\nindex 01\n\ncp\n",
        PROOF_HEADER + "\nindex +1\n\ncp\n",
        PROOF_HEADER + "\nindex  1\n\ncp\n",
        PROOF_HEADER + "\nindex 18446744073709551616\n\ncp\n",
        PROOF_HEADER + "\nindex\n\ncp\n",
        PROOF_HEADER + "\nextra\nindex 1\n\ncp\n",
        PROOF_HEADER + "\nextra AAA\nindex 1\n\ncp\n",
        PROOF_HEADER + "\nextra AB==\nindex 1\n\ncp\n",  # trailing bits
        PROOF_HEADER + "\nextra AA==\nextra AA==\nindex 1\n\ncp\n",
        PROOF_HEADER + "\nindex 1\nextra AA==\n\ncp\n",
        PROOF_HEADER + "\nindex 1\n" + "A" * 42 + "==\n\ncp\n",  # 31 bytes
        PROOF_HEADER + "\nindex 1\n" + (base64.b64encode(HASH).decode() + "\n") * 65 + "\ncp\n",
    ],
)
def test_malformed_proofs(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_proof_bundle(text)


def test_limits_and_edges() -> None:
    encoded = base64.b64encode(HASH).decode()
    text = PROOF_HEADER + f"\nindex {MAX_TREE_SIZE}\n" + (encoded + "\n") * 64 + "\ncp\n"
    bundle = parse_proof_bundle(text)
    assert (bundle.index, len(bundle.hashes)) == (MAX_TREE_SIZE, MAX_PROOF_HASHES)
    empty_extra = parse_proof_bundle(PROOF_HEADER + "\nextra \nindex 0\n\ncp\n")
    assert empty_extra.extra == b""
    assert empty_extra.format() == PROOF_HEADER + "\nextra \nindex 0\n\ncp\n"
    # The checkpoint is verbatim: even empty lines inside it stay.
    assert parse_proof_bundle(PROOF_HEADER + "\nindex 0\n\n\na\n\nb\n").checkpoint == "\na\n\nb\n"
    with pytest.raises(ValidationError):
        parse_proof_bundle(b"\xff" + PROOF_HEADER.encode())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"index": -1}, "/index"),
        ({"index": MAX_TREE_SIZE + 1}, "/index"),
        ({"index": True}, "/index"),
        ({"hashes": [HASH]}, "/hashes"),
        ({"hashes": (HASH,) * (MAX_PROOF_HASHES + 1)}, "/hashes"),
        ({"hashes": (HASH, HASH[:31])}, "/hashes/1"),
        ({"checkpoint": ""}, "/checkpoint"),
        ({"checkpoint": "no newline"}, "/checkpoint"),
        ({"checkpoint": "\ud800\n"}, "/checkpoint"),
        ({"extra": "text"}, "/extra"),
    ],
)
def test_bundle_validates_on_construction(kwargs: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"index": 0, "hashes": (), "checkpoint": "cp\n", **kwargs}
    with pytest.raises(ValidationError) as info:
        ProofBundle(**values)
    assert info.value.field == field


# --- properties -----------------------------------------------------------------------------

checkpoint_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=60
).map(lambda text: text + "\n")


@PROPS
@given(
    index=st.integers(0, MAX_TREE_SIZE),
    hashes=st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PROOF_HASHES).map(tuple),
    checkpoint=checkpoint_texts,
    extra=st.none() | st.binary(max_size=40),
)
def test_format_parse_round_trip(
    index: int, hashes: tuple[bytes, ...], checkpoint: str, extra: bytes | None
) -> None:
    bundle = ProofBundle(index, hashes, checkpoint, extra)
    text = bundle.format()
    assert parse_proof_bundle(text) == bundle
    assert parse_proof_bundle(text.encode()) == bundle


@PROPS
@given(digest=st.binary(min_size=32, max_size=32), extra=st.binary(max_size=10), data=st.data())
def test_noncanonical_base64_is_rejected_in_hashes_and_extra(
    digest: bytes, extra: bytes, data: st.DataObject
) -> None:
    text = ProofBundle(1, (digest,), "cp\n", extra).format()
    encoded = base64.b64encode(digest).decode()
    # A line feed changes the framing, not the base64 (the hash would become checkpoint
    # text), so only variants within the line are tried here.
    variants = [v for v in noncanonical_variants(encoded) if "\n" not in v]
    variant = data.draw(st.sampled_from(variants))
    with pytest.raises(ValidationError):
        parse_proof_bundle(text.replace("\n" + encoded + "\n", "\n" + variant + "\n", 1))
    extra_encoded = base64.b64encode(extra).decode()
    extra_variant = data.draw(st.sampled_from(list(noncanonical_variants(extra_encoded))))
    with pytest.raises(ValidationError):
        parse_proof_bundle(
            text.replace("extra " + extra_encoded + "\n", "extra " + extra_variant + "\n", 1)
        )


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.binary()))
def test_arbitrary_input_parses_or_raises_our_error(text: str | bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_proof_bundle(text)


_proof_alphabet = st.sampled_from(
    [PROOF_HEADER, "\n", "index ", "extra ", "0", "1", "AAAA", base64.b64encode(HASH).decode(), " "]
)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_proof_alphabet, max_size=20))
def test_proof_shaped_input_parses_or_raises_our_error(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        bundle = parse_proof_bundle(text)
    except ValidationError:
        return
    assert bundle.format() == text
