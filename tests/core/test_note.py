"""C2SP signed notes: every vector in vectors/note/, Go's key-mangling rule, and properties
(mutations fail, non-canonical base64 is refused, round trips, arbitrary input)."""

from __future__ import annotations

import base64
import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load_vector_json
from trailseal.core.cosignature import CosignatureVerifier, parse_verifier
from trailseal.core.note import (
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    check_note_text,
    decode_verifier_key,
    encode_verifier_key,
    is_valid_key_name,
    key_id,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)
from trailseal.errors import SignatureError, TrailsealError, ValidationError

NOTES = load_vector_json("note/signed-notes.json")
KEYS = load_vector_json("note/keys.json")
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def labels(signatures: tuple[NoteSignature, ...]) -> list[str]:
    return [s.label for s in signatures]


def message_of(vector: dict[str, Any]) -> str | bytes:
    return bytes.fromhex(vector["note_hex"]) if "note_hex" in vector else vector["note"]


# --- shared strategies (also imported by the checkpoint, cosignature and proof tests) -------

seeds = st.binary(min_size=32, max_size=32)
#: Key names: C2SP's rule (non-empty, no space, no '+'), no control characters.
key_names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]),
    min_size=1,
    max_size=20,
).filter(is_valid_key_name)
#: Note texts: UTF-8 without control characters but LF, ending in LF.
note_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(
        lambda ch: ch == "\n" or ch >= " "
    ),
    max_size=80,
).map(lambda text: text + "\n")


def noncanonical_variants(encoded: str) -> Iterator[str]:
    """Texts that decode (leniently) to the bytes of canonical ``encoded`` or are near
    misses of it, none of them canonical base64."""
    body = encoded.rstrip("=")
    padding = len(encoded) - len(body)
    if padding:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(body[-1])
        # Unused low bits of the last character set: decodes to the same bytes leniently.
        yield body[:-1] + alphabet[last | 1] + "=" * padding
        yield body  # missing padding
        yield body + "=" * (padding - 1) if padding == 2 else body + "=="  # wrong padding
    yield encoded + "="
    for ws in (" ", "\t", "\r", "\n", "\u00a0"):
        yield ws + encoded
        yield encoded + ws
        yield encoded[: len(encoded) // 2] + ws + encoded[len(encoded) // 2 :]
    if "+" in encoded or "/" in encoded:
        yield encoded.replace("+", "-").replace("/", "_")  # URL alphabet


def test_noncanonical_variants_really_are_noncanonical() -> None:
    for data in (b"", b"a", b"ab", b"abc", bytes(range(68))):
        encoded = base64.b64encode(data).decode()
        for variant in noncanonical_variants(encoded):
            assert variant != encoded
            try:
                decoded = base64.b64decode(variant, validate=True)
            except ValueError:
                continue
            assert base64.b64encode(decoded).decode() != variant


# --- vectors: signed-notes.json -------------------------------------------------------------


@pytest.mark.parametrize("vector", NOTES["vectors"], ids=lambda v: v["name"])
def test_open_vector(vector: dict[str, Any]) -> None:
    verifiers = [parse_verifier_key(k) for k in vector["verifier_keys"]]
    expected = vector["expected"]
    message = message_of(vector)
    if expected["ok"]:
        opened = open_note(message, verifiers)
        if "text" in expected:
            assert opened.text == expected["text"]
        assert labels(opened.verified) == expected["verified"]
        if "unverified" in expected:
            assert labels(opened.unverified) == expected["unverified"]
    else:
        with pytest.raises(SignatureError) as info:
            open_note(message, verifiers)
        assert expected["error_contains"] in str(info.value)
    if "parsed" in vector:
        note = parse_note(message)
        assert note.text == vector["parsed"]["text"]
        got = [(s.name, s.key_id.hex(), len(s.signature)) for s in note.signatures]
        want = [
            (s["key_name"], s["key_id_hex"], s["signature_len"])
            for s in vector["parsed"]["signatures"]
        ]
        assert got == want


def test_every_note_vector_is_well_formed_or_reported_malformed() -> None:
    # parse_note agrees with the "malformed" outcome of every vector.
    for vector in NOTES["vectors"]:
        malformed = vector["expected"].get("error_contains") == "malformed"
        if malformed:
            with pytest.raises(SignatureError, match="malformed"):
                parse_note(message_of(vector))
        else:
            parse_note(message_of(vector))


@pytest.mark.parametrize("vector", NOTES["sign_vectors"], ids=lambda v: v["name"])
def test_sign_vector(vector: dict[str, Any]) -> None:
    signer = parse_signer_key(vector["skey"])
    existing = [NoteSignature.from_line(line) for line in vector["existing_signatures"]]
    assert sign_note(vector["text"], [signer], existing) == vector["expected_note"]


def test_signing_again_replaces_a_keys_own_line() -> None:
    vector = NOTES["sign_vectors"][1]
    signer = parse_signer_key(vector["skey"])
    note = parse_note(vector["expected_note"])
    # Go's note.Sign drops existing lines of a key that signs anew, then appends.
    assert sign_note(note.text, [signer], note.signatures) == vector["expected_note"]


# --- vectors: keys.json ---------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS["keys"], ids=lambda k: k["name"])
def test_key_vector(key: dict[str, Any]) -> None:
    verifier = parse_verifier_key(key["vkey"])
    assert verifier.name == key["key_name"]
    assert verifier.key_id.hex() == key["key_id_hex"]
    assert verifier.sig_type == key["signature_type"]
    assert verifier.public_key.hex() == key["public_key_hex"]
    assert verifier.verifier_key() == key["vkey"]
    public_key = bytes.fromhex(key["public_key_hex"])
    assert key_id(key["key_name"], key["signature_type"], public_key).hex() == key["key_id_hex"]
    assert encode_verifier_key(key["key_name"], public_key) == key["vkey"]
    assert NoteVerifier.from_public_key(key["key_name"], public_key) == verifier
    assert parse_verifier(key["vkey"]) == verifier
    if "skey" in key:
        signer = parse_signer_key(key["skey"])
        assert signer.public_key_bytes.hex() == key["public_key_hex"]
        assert signer.key_id.hex() == key["key_id_hex"]
        assert signer.signer_key() == key["skey"]
        assert signer.verifier_key() == key["vkey"]
        assert signer.verifier() == verifier
        from_seed = NoteSigner.from_seed(key["key_name"], bytes.fromhex(key["ed25519_seed_hex"]))
        assert from_seed.signer_key() == key["skey"]
        assert key["skey"] not in repr(signer)


@pytest.mark.parametrize("bad", KEYS["invalid_vkeys"], ids=lambda k: k["reason"])
def test_invalid_vkey_vector(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_verifier_key(bad["vkey"])
    with pytest.raises(ValidationError):
        parse_verifier(bad["vkey"])
    with pytest.raises(ValidationError):
        CosignatureVerifier.from_vkey(bad["vkey"])


def manglings(key: str) -> set[str]:
    """Go's TestNewVerifier/TestNewSigner rule: every proper substring, and every copy with
    one byte incremented."""
    raw = key.encode()
    out = {raw[i:j] for i in range(len(raw) + 1) for j in range(i, len(raw) + 1)}
    out.discard(raw)
    out |= {raw[:i] + bytes([(raw[i] + 1) % 256]) + raw[i + 1 :] for i in range(len(raw))}
    return {m.decode("latin-1") for m in out}


def test_mangled_vkeys_are_all_rejected() -> None:
    vkey = KEYS["mangling_rule"]["vkey"]
    parse_verifier_key(vkey)
    variants = manglings(vkey)
    assert len(variants) > 2000
    for variant in variants:
        with pytest.raises(ValidationError):
            parse_verifier_key(variant)
        with pytest.raises(ValidationError):
            parse_verifier(variant)


def test_mangled_skeys_are_all_rejected() -> None:
    skey = KEYS["mangling_rule"]["skey"]
    parse_signer_key(skey)
    variants = manglings(skey)
    assert len(variants) > 2500
    for variant in variants:
        with pytest.raises(ValidationError):
            parse_signer_key(variant)


def test_strictness_beyond_go() -> None:
    vkey = KEYS["mangling_rule"]["vkey"]
    name, hex_id, encoded = vkey.split("+", 2)
    with pytest.raises(ValidationError, match="lowercase"):
        parse_verifier_key(f"{name}+{hex_id.upper()}+{encoded}")
    skey = KEYS["mangling_rule"]["skey"]
    with pytest.raises(ValidationError, match="lowercase"):
        parse_signer_key(skey.replace("c74f20a3", "C74F20A3"))
    # A 0x04 key is a cosigner key, not a note key.
    cosigner_vkey = encode_verifier_key(name, bytes.fromhex(KEYS["keys"][1]["public_key_hex"]), 4)
    with pytest.raises(ValidationError, match="type 0x04"):
        parse_verifier_key(cosigner_vkey)


# --- limits and open semantics --------------------------------------------------------------

PETER = parse_signer_key(KEYS["mangling_rule"]["skey"])
TEXT = NOTES["sign_vectors"][0]["text"]


def test_signature_count_limit_is_100() -> None:
    # C2SP: accept at least 16; Go (and trailseal) reject more than 100.
    line = PETER.sign(TEXT).line()
    for count in (16, MAX_SIGNATURES):
        opened = open_note(TEXT + "\n" + line * count, [PETER.verifier()])
        assert labels(opened.verified) == [PETER.verifier().name + "+c74f20a3"]
    with pytest.raises(SignatureError, match="malformed"):
        open_note(TEXT + "\n" + line * (MAX_SIGNATURES + 1), [PETER.verifier()])
    other = [NoteSigner.from_seed(f"k{i}", bytes([i]) * 32) for i in range(MAX_SIGNATURES + 1)]
    sign_note(TEXT, other[:MAX_SIGNATURES])
    with pytest.raises(ValidationError):
        sign_note(TEXT, other)


def test_every_distinct_line_of_a_trusted_key_is_verified() -> None:
    # Go would skip the second, different Peter line; the spec says verify it.
    good = PETER.sign(TEXT)
    forged = NoteSignature(good.name, good.key_id, bytes(64))
    message = Note(TEXT, (good, forged)).format()
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(message, [PETER.verifier()])


def test_same_name_other_key_id_is_unknown() -> None:
    other = NoteSigner.from_seed(PETER.name, bytes(32))
    message = sign_note(TEXT, [PETER, other])
    opened = open_note(message, [PETER.verifier()])
    assert labels(opened.unverified) == [other.verifier().name + "+" + other.key_id.hex()]


def test_wrong_length_signature_from_known_key_is_invalid() -> None:
    short = NoteSignature(PETER.name, PETER.key_id, b"\x01")
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(Note(TEXT, (short,)).format(), [PETER.verifier()])


def test_parse_note_accepts_bytes_and_str_alike() -> None:
    message = sign_note(TEXT, [PETER])
    assert parse_note(message) == parse_note(message.encode())


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("a\n\n— k AAAAAA==\n", "at least one byte"),  # 4 bytes: key ID only
        ("a\n\n— k\n", "name"),
        ("a\n\n— k \n", "name"),
        ("a\n\n- k AAAAAAAA\n", "em dash"),
        ("a\n\n—k AAAAAAAA\n", "em dash"),
        ("a\n\n— k+1 AAAAAAAA\n", "key name"),
        ("a\n\n— k AAAAAAAA \n", "base64"),
        ("a\n\n— k AAAAAAB=\n", "base64"),  # trailing bits
        ("a\n\n— k AAAAAAA\n", "base64"),  # missing padding
        ("a\x7f\x00\n\n— k AAAAAAAA\n", "control"),
        ("a\ud800\n\n— k AAAAAAAA\n", "UTF-8"),
        ("a\r\n\r\n— k AAAAAAAA\r\n", "control"),
    ],
)
def test_malformed_notes(message: str, why: str) -> None:
    with pytest.raises(SignatureError, match="malformed note") as info:
        parse_note(message)
    assert why in str(info.value)


def test_value_objects_validate_on_construction() -> None:
    with pytest.raises(ValidationError):
        NoteSignature("bad name", b"1234", b"x")
    with pytest.raises(ValidationError):
        NoteSignature("k", b"123", b"x")
    with pytest.raises(ValidationError):
        NoteSignature("k", b"1234", b"")
    with pytest.raises(ValidationError):
        Note("no newline", (PETER.sign(TEXT),))
    with pytest.raises(ValidationError):
        Note(TEXT, ())
    verifier = PETER.verifier()
    with pytest.raises(ValidationError, match="does not match"):
        NoteVerifier(verifier.name, b"\0\0\0\0", verifier.public_key)
    with pytest.raises(ValidationError):
        NoteVerifier(verifier.name, verifier.key_id, verifier.public_key[:31])
    with pytest.raises(ValidationError):
        NoteVerifier(verifier.name, verifier.key_id, verifier.public_key, sig_type=4)
    with pytest.raises(ValidationError):
        NoteSigner("a b", PETER.private_key)
    with pytest.raises(ValidationError):
        NoteSigner.from_seed("k", bytes(31))
    with pytest.raises(ValidationError):
        PETER.sign("no final newline")
    with pytest.raises(ValidationError):
        check_note_text("tab\there\n")
    with pytest.raises(ValidationError):
        key_id("k", 256, b"")
    with pytest.raises(ValidationError):
        key_id("a b", 1, b"")
    for name in ("", "a b", "a+b", "a\u00a0b", "a\u2028b", "a\x1fb", "a\ud800"):
        assert not is_valid_key_name(name)
        with pytest.raises(ValidationError):
            encode_verifier_key(name, verifier.public_key)


def test_decode_verifier_key_keeps_unknown_types() -> None:
    vkey = encode_verifier_key("k", b"\x01\x02", 0x7F)
    fields = decode_verifier_key(vkey)
    assert (fields.name, fields.sig_type, fields.public_key) == ("k", 0x7F, b"\x01\x02")
    with pytest.raises(ValidationError, match="unsupported"):
        parse_verifier_key(vkey)
    with pytest.raises(ValidationError, match="unsupported"):
        parse_verifier(vkey)


# --- properties -----------------------------------------------------------------------------


@PROPS
@given(
    text=note_texts,
    keys=st.lists(st.tuples(key_names, seeds), min_size=1, max_size=3, unique_by=lambda k: k[0]),
)
def test_sign_open_round_trip(text: str, keys: list[tuple[str, bytes]]) -> None:
    signers = [NoteSigner.from_seed(name, seed) for name, seed in keys]
    message = sign_note(text, signers)
    opened = open_note(message, [s.verifier() for s in signers])
    assert opened.text == text
    assert opened.unverified == ()
    assert {s.label for s in opened.verified} == {
        s.verifier().name + "+" + s.key_id.hex() for s in signers
    }
    assert parse_note(message).format() == message
    # And through the vkey strings, as a client would configure them.
    assert open_note(message, [parse_verifier_key(s.verifier_key()) for s in signers]) == opened


@PROPS
@given(
    text=note_texts,
    seed=seeds,
    name=key_names,
    data=st.data(),
)
def test_every_single_character_mutation_of_a_note_fails(
    text: str, seed: bytes, name: str, data: st.DataObject
) -> None:
    signer = NoteSigner.from_seed(name, seed)
    message = sign_note(text, [signer])
    position = data.draw(st.integers(0, len(message) - 1), label="position")
    op = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="op")
    char = data.draw(st.characters(codec="utf-8"), label="char")
    if op == "replace":
        if char == message[position]:
            return
        mutated = message[:position] + char + message[position + 1 :]
    elif op == "insert":
        mutated = message[:position] + char + message[position:]
    else:
        mutated = message[:position] + message[position + 1 :]
    with pytest.raises(SignatureError):
        open_note(mutated, [signer.verifier()])


@PROPS
@given(text=note_texts, seed=seeds, bit=st.integers(0, (4 + 64) * 8 - 1))
def test_every_bit_flip_of_signature_bytes_fails(text: str, seed: bytes, bit: int) -> None:
    signer = NoteSigner.from_seed("example.com/log", seed)
    sig = signer.sign(text)
    raw = bytearray(sig.key_id + sig.signature)
    raw[bit // 8] ^= 1 << (bit % 8)
    flipped = NoteSignature(sig.name, bytes(raw[:4]), bytes(raw[4:]))
    with pytest.raises(SignatureError):
        open_note(Note(text, (flipped,)).format(), [signer.verifier()])


@PROPS
@given(seed=seeds, name=key_names, data=st.data())
def test_noncanonical_base64_is_rejected_in_vkeys_and_signatures(
    seed: bytes, name: str, data: st.DataObject
) -> None:
    signer = NoteSigner.from_seed(name, seed)
    vkey_name, hex_id, encoded = signer.verifier_key().split("+", 2)
    variant = data.draw(st.sampled_from(list(noncanonical_variants(encoded))))
    with pytest.raises(ValidationError):
        parse_verifier_key(f"{vkey_name}+{hex_id}+{variant}")
    skey = signer.signer_key()
    skey_encoded = skey.split("+", 4)[4]
    skey_variant = data.draw(st.sampled_from(list(noncanonical_variants(skey_encoded))))
    with pytest.raises(ValidationError):
        parse_signer_key(skey[: len(skey) - len(skey_encoded)] + skey_variant)
    line = signer.sign(TEXT).line()[:-1]
    sig_encoded = line.rsplit(" ", 1)[1]
    sig_variant = data.draw(st.sampled_from(list(noncanonical_variants(sig_encoded))))
    message = TEXT + "\n" + line[: len(line) - len(sig_encoded)] + sig_variant + "\n"
    with pytest.raises(SignatureError, match="malformed"):
        open_note(message, [signer.verifier()])


@settings(max_examples=300, deadline=None)
@given(message=st.one_of(st.text(), st.binary()))
def test_arbitrary_input_parses_or_raises_our_error(message: str | bytes) -> None:
    for call in (
        lambda: parse_note(message),
        lambda: open_note(message, [PETER.verifier()]),
    ):
        with contextlib.suppress(TrailsealError):
            call()
    if isinstance(message, str):
        for parse in (
            parse_verifier_key,
            parse_signer_key,
            parse_verifier,
            CosignatureVerifier.from_vkey,
            NoteSignature.from_line,
        ):
            with contextlib.suppress(ValidationError):
                parse(message)


_note_alphabet = st.sampled_from([*"— +/=\nAk01é\x00\r\t", "PeterNeumann", "x08go"])


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_note_alphabet, max_size=40))
def test_note_shaped_input_parses_or_raises_our_error(pieces: list[str]) -> None:
    message = "".join(pieces)
    with contextlib.suppress(SignatureError):
        open_note(message, [PETER.verifier()])


@pytest.mark.parametrize("module_name", ["note", "cosignature", "checkpoint", "proofbundle"])
def test_all_lists_every_public_name(module_name: str) -> None:
    module = importlib.import_module(f"trailseal.core.{module_name}")
    defined = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    }
    assert defined <= set(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)


def _key_name_by_definition(name: str) -> bool:
    """The C2SP rule spelled out character by character (the reference)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return name != "" and all(not ch.isspace() and ch >= " " and ch != "+" for ch in name)


@given(
    st.text(
        alphabet=st.one_of(
            st.characters(), st.sampled_from(["\ud800", "\u2028", "\x85", "\u3000", "+", " "])
        ),
        max_size=12,
    )
)
def test_key_name_check_matches_the_definition(name: str) -> None:
    assert is_valid_key_name(name) == _key_name_by_definition(name)
