"""C2SP tlog-cosignature (cosignature/v1): every vector in vectors/cosignature/ and the
signer/verifier properties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import load_vector_json
from tests.core.test_note import key_names, noncanonical_variants, seeds
from trailseal.core.checkpoint import Checkpoint, open_checkpoint
from trailseal.core.cosignature import (
    MAX_TIMESTAMP,
    SIG_TYPE_COSIGNATURE_V1,
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_message,
    cosignature_timestamp,
    parse_verifier,
)
from trailseal.core.encoding import b64decode_canonical, b64encode
from trailseal.core.note import (
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    encode_verifier_key,
    key_id,
    open_note,
    parse_note,
)
from trailseal.errors import SignatureError, ValidationError

COSIG = load_vector_json("cosignature/cosignatures.json")
PROPS = settings(max_examples=100, deadline=None)


def labels(signatures: tuple[NoteSignature, ...]) -> list[str]:
    return [s.label for s in signatures]


def line_of(message: str, name: str) -> NoteSignature:
    (sig,) = [s for s in parse_note(message).signatures if s.name == name]
    return sig


@pytest.mark.parametrize("vector", COSIG["vectors"], ids=lambda v: v["name"])
def test_open_vector(vector: dict[str, Any]) -> None:
    verifiers = [parse_verifier(k) for k in vector["verifier_keys"]]
    expected = vector["expected"]
    if expected["ok"]:
        opened = open_note(vector["signed_note"], verifiers)
        assert labels(opened.verified) == expected["verified"]
        assert labels(opened.unverified) == expected["unverified"]
        # The same through open_checkpoint, which also reports the attested time: here only
        # witnesses cosign, so it is the earliest witness timestamp.
        signed = open_checkpoint(vector["signed_note"], verifiers)
        assert signed.timestamp == min(c["timestamp"] for c in vector["cosignatures"])
    else:
        with pytest.raises(SignatureError) as info:
            open_note(vector["signed_note"], verifiers)
        assert expected["error_contains"] in str(info.value)
        with pytest.raises(SignatureError):
            open_checkpoint(vector["signed_note"], verifiers)


COSIGNATURES = [
    (vector, cosig) for vector in COSIG["vectors"] for cosig in vector.get("cosignatures", [])
]


@pytest.mark.parametrize(
    ("vector", "cosig"),
    COSIGNATURES,
    ids=[f"{v['name']}/{c['cosigner_name']}" for v, c in COSIGNATURES],
)
def test_cosignature_details(vector: dict[str, Any], cosig: dict[str, Any]) -> None:
    from_type01 = CosignatureVerifier.from_vkey(cosig["vkey_type01_as_published"])
    from_type04 = CosignatureVerifier.from_vkey(cosig["vkey_type04"])
    assert from_type01 == from_type04
    assert from_type04.name == cosig["cosigner_name"]
    assert from_type04.key_id.hex() == cosig["key_id_hex"]
    assert from_type04.public_key.hex() == cosig["public_key_hex"]
    assert from_type04.verifier_key() == cosig["vkey_type04"]
    assert from_type04.sig_type == SIG_TYPE_COSIGNATURE_V1
    # The published type-0x01 vkey parses as a plain note key with another key ID.
    plain = parse_verifier(cosig["vkey_type01_as_published"])
    assert isinstance(plain, NoteVerifier)
    assert plain.key_id != from_type04.key_id

    text = parse_note(vector["signed_note"]).text
    sig = line_of(vector["signed_note"], cosig["cosigner_name"])
    assert sig.key_id.hex() == cosig["key_id_hex"]
    assert cosignature_timestamp(sig.signature) == cosig["timestamp"]
    assert sig.signature[8:].hex() == cosig["ed25519_signature_hex"]
    assert cosignature_message(text, cosig["timestamp"]) == cosig["signed_message"].encode()
    stamp = datetime.fromtimestamp(cosig["timestamp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stamp == cosig["timestamp_utc"]
    if vector["expected"]["ok"]:
        assert from_type04.verify_timestamp(text, sig.signature) == cosig["timestamp"]
        assert from_type04.verify(text, sig.signature)
    # Any other time, or another text, fails.
    other_time = (cosig["timestamp"] + 1).to_bytes(8, "big") + sig.signature[8:]
    assert from_type04.verify_timestamp(text, other_time) is None
    assert not from_type04.verify(text.replace("\n", "\n\n", 1), sig.signature)


def test_spec_example_parses() -> None:
    (vector,) = [v for v in COSIG["vectors"] if "parsed" in v]
    parsed = vector["parsed"]
    note = parse_note(vector["signed_note"])
    sig = line_of(vector["signed_note"], parsed["cosigner_name"])
    assert sig.key_id.hex() == parsed["key_id_hex"]
    assert len(sig.key_id + sig.signature) == parsed["signature_blob_len"]
    assert cosignature_timestamp(sig.signature) == parsed["timestamp"]
    assert cosignature_message(note.text, parsed["timestamp"]) == parsed["signed_message"].encode()


@pytest.mark.parametrize("case", COSIG["timestamp_parse"], ids=lambda c: c["comment"][:40])
def test_timestamp_parse_vector(case: dict[str, Any]) -> None:
    try:
        blob = b64decode_canonical(case["signature_base64"])
    except ValidationError:
        assert case["blob_len"] is None
        assert case["expected_timestamp"] is None
        return
    assert len(blob) == case["blob_len"]
    assert cosignature_timestamp(blob[4:]) == case["expected_timestamp"]


@pytest.mark.parametrize("key", COSIG["cosigner_keys"], ids=lambda k: k["key_name"])
def test_cosigner_key_vector(key: dict[str, Any]) -> None:
    verifier = CosignatureVerifier.from_vkey(key["vkey"])
    assert verifier.name == key["key_name"]
    assert verifier.public_key.hex() == key["public_key_hex"]
    assert verifier.key_id.hex() == key["cosignature_v1_key_id_hex"]
    assert verifier.verifier_key() == key["cosignature_v1_vkey"]
    assert CosignatureVerifier.from_vkey(key["cosignature_v1_vkey"]) == verifier
    parsed = parse_verifier(key["vkey"])
    assert parsed.sig_type == key["signature_type"]
    assert parsed.key_id.hex() == key["key_id_hex"]
    assert isinstance(parsed, CosignatureVerifier if key["signature_type"] == 4 else NoteVerifier)


# --- signer, verifier and edge cases --------------------------------------------------------

BODY = Checkpoint("example.com/log", 7, bytes(range(32))).body()
ZERO_KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))


def test_cosign_verify_and_key_ids() -> None:
    cosigner = CosignatureSigner.from_seed("witness.example/w1", bytes(32))
    signer = NoteSigner.from_seed("witness.example/w1", bytes(32))
    assert cosigner.public_key_bytes == signer.public_key_bytes
    assert cosigner.key_id != signer.key_id  # same key, types 0x04 and 0x01
    sig = cosigner.cosign(BODY, 1_700_000_000)
    assert len(sig.signature) == 72
    verifier = CosignatureVerifier.from_vkey(cosigner.verifier_key())
    assert verifier == cosigner.verifier()
    assert CosignatureVerifier.from_vkey(signer.verifier_key()) == verifier
    assert verifier.verify_timestamp(BODY, sig.signature) == 1_700_000_000
    opened = open_note(Note(BODY, (sig,)).format(), [verifier])
    assert opened.verified == (sig,)
    # A plain note verifier of the same key does not know the 0x04 line.
    with pytest.raises(SignatureError, match="no verifiable"):
        open_note(Note(BODY, (sig,)).format(), [signer.verifier()])
    assert "PRIVATE" not in repr(cosigner)


@pytest.mark.parametrize("timestamp", [-1, MAX_TIMESTAMP + 1, True, 1.5])
def test_cosign_refuses_bad_timestamps(timestamp: Any) -> None:
    cosigner = CosignatureSigner.from_seed("w", bytes(32))
    with pytest.raises(ValidationError, match="timestamp"):
        cosigner.cosign(BODY, timestamp)


def test_timestamp_bounds() -> None:
    cosigner = CosignatureSigner.from_seed("w", bytes(32))
    for timestamp in (0, MAX_TIMESTAMP):
        sig = cosigner.cosign(BODY, timestamp)
        assert cosigner.verifier().verify_timestamp(BODY, sig.signature) == timestamp
    assert cosignature_timestamp(b"\x80" + bytes(71)) is None  # above 2^63 - 1
    assert cosignature_timestamp(bytes(71)) is None
    assert cosignature_timestamp(bytes(73)) is None
    # A signature over a timestamp above the spec's bound never verifies.
    verifier = cosigner.verifier()
    message = cosignature_message(BODY, 2**63)
    forged = (2**63).to_bytes(8, "big") + ZERO_KEY.sign(message)
    assert verifier.verify_timestamp(BODY, forged) is None


@pytest.mark.parametrize(
    "text", ["origin\n5\n", "\n5\nroot\n", "no newline", "a\tb\n1\nroot\n", "a\n1\nr"]
)
def test_only_checkpoint_shaped_texts_are_cosigned(text: str) -> None:
    cosigner = CosignatureSigner.from_seed("w", bytes(32))
    with pytest.raises(ValidationError):
        cosigner.cosign(text, 1)
    message = cosignature_message(text, 1)
    forged = (1).to_bytes(8, "big") + ZERO_KEY.sign(message)
    assert not cosigner.verifier().verify(text, forged)


def test_vkeys_of_other_types_are_not_cosigner_keys() -> None:
    public_key = bytes(range(32))
    for sig_type in (0x02, 0x05, 0x06, 0xFF):
        vkey = encode_verifier_key("w", public_key, sig_type)
        with pytest.raises(ValidationError, match="unsupported"):
            CosignatureVerifier.from_vkey(vkey)
    for material in (public_key[:31], public_key + b"\0"):
        with pytest.raises(ValidationError, match="32 bytes"):
            encode_verifier_key("w", material, 0x04)
        # The same key, encoded by hand with a matching key ID.
        kid = key_id("w", 0x04, material).hex()
        vkey = f"w+{kid}+" + b64encode(bytes([0x04]) + material)
        with pytest.raises(ValidationError, match="32 bytes"):
            CosignatureVerifier.from_vkey(vkey)
        with pytest.raises(ValidationError, match="32 bytes"):
            parse_verifier(vkey)
    with pytest.raises(ValidationError):
        CosignatureVerifier("bad name", public_key)
    with pytest.raises(ValidationError):
        CosignatureSigner("a+b", ZERO_KEY)


@PROPS
@given(name=key_names, seed=seeds, timestamp=st.integers(0, MAX_TIMESTAMP))
def test_cosign_round_trip(name: str, seed: bytes, timestamp: int) -> None:
    cosigner = CosignatureSigner.from_seed(name, seed)
    sig = cosigner.cosign(BODY, timestamp)
    assert cosignature_timestamp(sig.signature) == timestamp
    verifier = parse_verifier(cosigner.verifier_key())
    assert isinstance(verifier, CosignatureVerifier)
    assert verifier.verify_timestamp(BODY, sig.signature) == timestamp
    opened = open_note(Note(BODY, (sig,)).format(), [verifier])
    assert opened.text == BODY


@PROPS
@given(seed=seeds, timestamp=st.integers(0, MAX_TIMESTAMP), bit=st.integers(0, 76 * 8 - 1))
def test_every_bit_flip_of_a_cosignature_fails(seed: bytes, timestamp: int, bit: int) -> None:
    cosigner = CosignatureSigner.from_seed("w", seed)
    sig = cosigner.cosign(BODY, timestamp)
    raw = bytearray(sig.key_id + sig.signature)
    raw[bit // 8] ^= 1 << (bit % 8)
    flipped = NoteSignature(sig.name, bytes(raw[:4]), bytes(raw[4:]))
    with pytest.raises(SignatureError):
        open_note(Note(BODY, (flipped,)).format(), [cosigner.verifier()])


@PROPS
@given(seed=seeds, data=st.data())
def test_noncanonical_base64_is_rejected_in_cosigner_vkeys(
    seed: bytes, data: st.DataObject
) -> None:
    vkey = CosignatureSigner.from_seed("w", seed).verifier_key()
    name, hex_id, encoded = vkey.split("+", 2)
    variant = data.draw(st.sampled_from(list(noncanonical_variants(encoded))))
    with pytest.raises(ValidationError):
        CosignatureVerifier.from_vkey(f"{name}+{hex_id}+{variant}")
    with pytest.raises(ValidationError):
        parse_verifier(f"{name}+{hex_id}+{variant}")


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=100))
def test_cosignature_timestamp_never_raises(blob: bytes) -> None:
    timestamp = cosignature_timestamp(blob)
    if len(blob) == 72 and blob[0] < 0x80:
        assert timestamp == int.from_bytes(blob[:8], "big")
    else:
        assert timestamp is None
    assert not CosignatureSigner.from_seed("w", bytes(32)).verifier().verify(BODY, blob)
