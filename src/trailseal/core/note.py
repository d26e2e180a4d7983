"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys (signature type 0x01).

Theory of operation
-------------------
A note is a text ending in LF, an empty line, then one or more signature lines::

    — <key name> base64(key ID (4 bytes, big-endian) || signature)

The key ID is ``SHA-256(name || 0x0A || type || public key)[:4]`` (:func:`key_id`). A verifier
key ("vkey") is ``<name>+<hex key ID>+base64(type || public key)``; Go's signer key ("skey")
form is ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)``.

Opening (:func:`open_note`) follows Go's ``golang.org/x/mod/sumdb/note.Open``:

1. the message is UTF-8 with no ASCII control character but LF, else it is malformed;
2. text and signatures split at the **last** empty line; every line after it must be a
   well-formed signature line, the block must end in LF;
3. a line whose (name, key ID) matches no trusted verifier is kept as *unverified*;
   identical repeated lines are collapsed;
4. a line matching two trusted verifiers is an error ("ambiguous key");
5. a line matching one trusted verifier must verify, or the whole note is rejected;
6. with no verified line, the note is rejected.

Every failure of parsing or opening raises :class:`~trailseal.errors.SignatureError` whose
message says why (``malformed note: ...``, ``ambiguous key ...``, ``invalid signature for
key ...``, ``no verifiable signatures``). Signing inputs that break the rules raise
:class:`~trailseal.errors.ValidationError`: they are the caller's bug, not a forgery.

Where trailseal is stricter than Go, and why:

- Base64 (signatures, keys) must be canonical (ARCHITECTURE §5): one signature, one text.
- Hex key IDs in keys must be lowercase: a key string has one spelling.
- Key names may not hold ASCII control characters either (they could never appear in a
  note, so a key with one could never verify anything).
- Go verifies only the first line of each trusted key and skips later, different lines of
  that key unchecked; here every distinct line of a trusted key must verify (the
  signed-note spec: "If the key name and ID match a known key, verifiers MUST verify the
  signature").

Limit: at most :data:`MAX_SIGNATURES` (100, Go's limit) signature lines. C2SP requires
accepting at least 16 and leaves the bound to the implementation; a bound keeps a hostile
note from costing unbounded verification work.

Signature types other than 0x01 plug in through the :class:`Verifier` protocol;
``trailseal.core.cosignature`` adds the timestamped cosignature type 0x04.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from trailseal.core.encoding import b64decode_canonical, b64encode
from trailseal.errors import SignatureError, ValidationError

__all__ = [
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "KEY_ID_SIZE",
    "MAX_SIGNATURES",
    "SIG_TYPE_ED25519",
    "Ed25519Key",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "Signer",
    "Verifier",
    "VerifierKey",
    "check_note_text",
    "decode_verifier_key",
    "ed25519_verify",
    "encode_verifier_key",
    "is_valid_key_name",
    "key_id",
    "open_note",
    "parse_note",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
]

#: Signature type byte of plain Ed25519 note signatures (C2SP signed-note).
SIG_TYPE_ED25519: Final = 0x01
#: Length of a key ID, in bytes.
KEY_ID_SIZE: Final = 4
ED25519_PUBLIC_KEY_SIZE: Final = 32
ED25519_SIGNATURE_SIZE: Final = 64
#: Most signature lines a note may carry (Go's limit; C2SP asks for at least 16).
MAX_SIGNATURES: Final = 100

_SIG_PREFIX: Final = "— "  # em dash U+2014, space
# Plain Ed25519 and Ed25519 cosignature/v1 (trailseal.core.cosignature): 32-byte keys.
_ED25519_TYPES: Final = frozenset({0x01, 0x04})
_SKEY_PREFIX: Final = "PRIVATE+KEY+"
# Every ASCII control character except LF (signed-note: "MUST NOT contain any ASCII
# control characters (those below U+0020) other than newline").
_FORBIDDEN_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile("[0-9a-f]{8}")
# What a key name must not contain. For str patterns ``\s`` is exactly ``str.isspace``
# (every Unicode space); one regex scan instead of a Python loop per character, since a
# name is checked on every signature made (each checkpoint of every commit).
_NOT_IN_KEY_NAME = re.compile(r"[\s\x00-\x1f+]")


# --- names, texts, key IDs ------------------------------------------------------------------


def _is_utf8(text: str) -> bool:
    # A Python str may hold lone surrogates, which have no UTF-8 encoding.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_valid_key_name(name: object) -> bool:
    """C2SP key-name rule: non-empty, no Unicode space, no ``+``; plus (here) valid UTF-8
    and no control characters."""
    return (
        isinstance(name, str)
        and name != ""
        and _NOT_IN_KEY_NAME.search(name) is None
        and _is_utf8(name)
    )


def _require_name(name: object, field: str) -> str:
    if not is_valid_key_name(name):
        raise ValidationError(
            "key name must be non-empty UTF-8 without spaces, control characters or '+'",
            field=field,
            code="bad_key_name",
        )
    assert isinstance(name, str)
    return name


def check_note_text(text: object, *, field: str = "/text") -> str:
    """Check that ``text`` can be the text of a signed note and return it: a str ending in
    LF, valid UTF-8, no ASCII control character but LF. Raises ValidationError."""
    if not isinstance(text, str):
        raise ValidationError("note text must be a str", field=field, code="bad_type")
    if not text.endswith("\n"):
        raise ValidationError("note text must end in a newline", field=field, code="no_newline")
    if _FORBIDDEN_CONTROL.search(text) or not _is_utf8(text):
        raise ValidationError(
            "note text must be UTF-8 without control characters other than newline",
            field=field,
            code="bad_character",
        )
    return text


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The recommended C2SP key ID: ``SHA-256(name || 0x0A || sig_type || public_key)[:4]``."""
    _require_name(name, "/name")
    if not 0 <= sig_type <= 0xFF:
        raise ValidationError("signature type must be one byte", field="/sig_type")
    data = name.encode("utf-8") + b"\n" + bytes([sig_type]) + bytes(public_key)
    return hashlib.sha256(data).digest()[:KEY_ID_SIZE]


def _key_label(name: str, kid: bytes) -> str:
    return f"{name}+{kid.hex()}"


# --- signature lines and notes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line. ``signature`` is what follows the 4-byte key ID (64 bytes for
    Ed25519, 72 for a cosignature: timestamp then Ed25519 signature)."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _require_name(self.name, "/signatures/name")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != KEY_ID_SIZE:
            raise ValidationError("key ID must be 4 bytes", field="/signatures/key_id")
        # Go's Open needs at least one byte after the key ID.
        if not isinstance(self.signature, bytes) or not self.signature:
            raise ValidationError("signature must be non-empty bytes", field="/signatures/sig")

    @property
    def label(self) -> str:
        """``name+hexkeyid``, how Go and the vectors name a signature's key."""
        return _key_label(self.name, self.key_id)

    def line(self) -> str:
        """The signature line, LF included: ``— name base64(key ID || signature)\\n``."""
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line (with or without its final LF). Raises ValidationError."""
        if line.endswith("\n"):
            line = line[:-1]
        if not line.startswith(_SIG_PREFIX):
            raise ValidationError(
                "signature line must start with an em dash and a space",
                field="/signatures",
                code="bad_signature_line",
            )
        name, sep, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not encoded:
            raise ValidationError(
                "signature line must be '— <name> <base64>'",
                field="/signatures",
                code="bad_signature_line",
            )
        raw = b64decode_canonical(encoded, field="/signatures/base64")
        if len(raw) <= KEY_ID_SIZE:
            raise ValidationError(
                "signature must hold a key ID and at least one byte",
                field="/signatures/base64",
                code="bad_length",
            )
        return cls(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed signed note: its text (final LF included) and signature lines, in order.
    Nothing here is verified: use :func:`open_note`."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        check_note_text(self.text)
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise ValidationError(
                f"a note needs 1 to {MAX_SIGNATURES} signature lines, got {len(self.signatures)}",
                field="/signatures",
                code="bad_signature_count",
            )
        if not all(isinstance(s, NoteSignature) for s in self.signatures):
            raise ValidationError("signatures must be NoteSignature", field="/signatures")

    def format(self) -> str:
        """The note as a message: text, empty line, signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def _parse_note(message: str | bytes) -> Note:
    """parse_note's body: every failure is a ValidationError, converted by the caller."""
    if isinstance(message, bytes | bytearray):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("not valid UTF-8", code="bad_character") from exc
    if not isinstance(message, str):
        raise ValidationError("a note is str or bytes", code="bad_type")
    if _FORBIDDEN_CONTROL.search(message) or not _is_utf8(message):
        raise ValidationError("control character or invalid UTF-8 in note", code="bad_character")
    split = message.rfind("\n\n")
    if split < 0:
        raise ValidationError("no empty line before the signatures", code="no_signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise ValidationError(
            "signature block missing or without final newline", code="no_signatures"
        )
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ValidationError(
            f"more than {MAX_SIGNATURES} signature lines", code="too_many_signatures"
        )
    return Note(text, tuple(NoteSignature.from_line(line) for line in lines))


def parse_note(message: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking the format only.

    Raises SignatureError (``malformed note: ...``) on any format violation."""
    try:
        return _parse_note(message)
    except ValidationError as exc:
        raise SignatureError(f"malformed note: {exc}", item="note") from exc


# --- verifiers ------------------------------------------------------------------------------


class Verifier(Protocol):
    """A trusted key as :func:`open_note` uses it. ``verify`` gets the note text (final LF
    included) and the signature bytes after the key ID; it returns False, never raises, for
    a signature that does not verify."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    @property
    def sig_type(self) -> int: ...

    def verify(self, text: str, signature: bytes) -> bool: ...


class Signer(Protocol):
    """What :func:`sign_note` needs of a key."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: str) -> NoteSignature: ...


def _load_public_key(public_key: bytes, field: str) -> Ed25519PublicKey:
    if not isinstance(public_key, bytes) or len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise ValidationError(
            "Ed25519 public key must be 32 bytes", field=field, code="bad_public_key"
        )
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:  # cryptography rejects some encodings outright
        raise ValidationError(
            "not an Ed25519 public key", field=field, code="bad_public_key"
        ) from exc


def ed25519_verify(key: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification as a bool (wrong-length signatures simply fail)."""
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key (type 0x01). ``key_id`` must be the recommended key ID of
    (name, type, public key): a key whose ID does not match is refused on construction."""

    name: str
    key_id: bytes
    public_key: bytes
    sig_type: int = SIG_TYPE_ED25519
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_name(self.name, "/name")
        if self.sig_type != SIG_TYPE_ED25519:
            raise ValidationError(
                "NoteVerifier implements signature type 0x01 only",
                field="/sig_type",
                code="unsupported_type",
            )
        object.__setattr__(self, "_key", _load_public_key(self.public_key, "/public_key"))
        expected = key_id(self.name, self.sig_type, self.public_key)
        if self.key_id != expected:
            raise ValidationError(
                f"key ID {self.key_id.hex()} does not match the key (expected {expected.hex()})",
                field="/key_id",
                code="key_id_mismatch",
            )

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> NoteVerifier:
        return cls(name, key_id(name, SIG_TYPE_ED25519, public_key), public_key)

    def verify(self, text: str, signature: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``text``."""
        try:
            message = text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return ed25519_verify(self._key, message, signature)

    def verifier_key(self) -> str:
        return encode_verifier_key(self.name, self.public_key, self.sig_type)


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """The fields of a vkey string, structurally checked, any signature type."""

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes


def encode_verifier_key(name: str, public_key: bytes, sig_type: int = SIG_TYPE_ED25519) -> str:
    """``<name>+<hex key ID>+base64(type || public key)``, with the recommended key ID.
    Ed25519 types (0x01, 0x04) need a 32-byte key; other types are encoded as given."""
    _require_name(name, "/name")
    if sig_type in _ED25519_TYPES and len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise ValidationError(
            "Ed25519 public key must be 32 bytes", field="/public_key", code="bad_public_key"
        )
    kid = key_id(name, sig_type, public_key)
    return f"{name}+{kid.hex()}+{b64encode(bytes([sig_type]) + bytes(public_key))}"


def decode_verifier_key(vkey: str) -> VerifierKey:
    """Split and check a vkey of any signature type: a valid name, 8 lowercase hex digits,
    canonical base64 of ``type || key`` and a key ID that matches them. The base64 may hold
    ``+``, so the string is split at its first two ``+`` only. Raises ValidationError."""
    if not isinstance(vkey, str):
        raise ValidationError("verifier key must be a str", field="/vkey", code="bad_type")
    name, sep1, rest = vkey.partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not sep1 or not sep2:
        raise ValidationError(
            "verifier key must be name+keyid+base64", field="/vkey", code="bad_vkey"
        )
    _require_name(name, "/vkey")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise ValidationError(
            "key ID must be 8 lowercase hex digits", field="/vkey", code="bad_key_id"
        )
    material = b64decode_canonical(encoded, field="/vkey")
    if not material:
        raise ValidationError("key material is empty", field="/vkey", code="bad_vkey")
    kid = bytes.fromhex(hex_id)
    sig_type, public_key = material[0], material[1:]
    if kid != key_id(name, sig_type, public_key):
        raise ValidationError(
            "key ID does not match the name and key", field="/vkey", code="key_id_mismatch"
        )
    return VerifierKey(name, kid, sig_type, public_key)


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse an Ed25519 (type 0x01) vkey strictly. Raises ValidationError."""
    fields = decode_verifier_key(vkey)
    if fields.sig_type != SIG_TYPE_ED25519:
        raise ValidationError(
            f"unsupported signature type 0x{fields.sig_type:02x} (want 0x01)",
            field="/vkey",
            code="unsupported_type",
        )
    return NoteVerifier(fields.name, fields.key_id, fields.public_key)


# --- signers --------------------------------------------------------------------------------


def _load_private_key(private_key: object) -> Ed25519PrivateKey:
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValidationError(
            "private key must be an Ed25519PrivateKey", field="/private_key", code="bad_type"
        )
    return private_key


def _seed_key(seed: bytes) -> Ed25519PrivateKey:
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ValidationError("Ed25519 seed must be 32 bytes", field="/seed", code="bad_length")
    return Ed25519PrivateKey.from_private_bytes(seed)


class Ed25519Key:
    """A named Ed25519 private key and its key id for one signature type: what a note
    signer (type 0x01) and a cosigner (type 0x04, :mod:`.cosignature`) share."""

    __slots__ = ("_key_id", "_name", "_private_key", "_public_key")
    sig_type: ClassVar[int]

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = _require_name(name, "/name")
        self._private_key = _load_private_key(private_key)
        self._public_key = private_key.public_key().public_bytes_raw()
        self._key_id = key_id(name, self.sig_type, self._public_key)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Self:
        """The key for a 32-byte Ed25519 seed (RFC 8032 private key)."""
        return cls(name, _seed_key(seed))

    def __repr__(self) -> str:  # never show the private key
        return f"{type(self).__name__}({_key_label(self._name, self._key_id)})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key_bytes(self) -> bytes:
        return self._public_key

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private_key


class NoteSigner(Ed25519Key):
    """An Ed25519 note key (type 0x01) that signs note texts."""

    __slots__ = ()
    sig_type = SIG_TYPE_ED25519

    def sign(self, text: str) -> NoteSignature:
        """Sign a note text (it must end in LF). Ed25519 is deterministic."""
        check_note_text(text)
        signature = self._private_key.sign(text.encode("utf-8"))
        return NoteSignature(self._name, self._key_id, signature)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self._name, self._key_id, self._public_key)

    def verifier_key(self) -> str:
        return encode_verifier_key(self._name, self._public_key)

    def signer_key(self) -> str:
        """Go's ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)``. Secret."""
        seed = self._private_key.private_bytes_raw()
        encoded = b64encode(bytes([SIG_TYPE_ED25519]) + seed)
        return f"{_SKEY_PREFIX}{self._name}+{self._key_id.hex()}+{encoded}"


def parse_signer_key(skey: str) -> NoteSigner:
    """Parse Go's skey form strictly (canonical base64, lowercase hex, type 0x01, a key ID
    that matches the derived public key). Raises ValidationError; the message never
    contains the key."""
    if not isinstance(skey, str):
        raise ValidationError("signer key must be a str", field="/skey", code="bad_type")
    if not skey.startswith(_SKEY_PREFIX):
        raise ValidationError(
            "signer key must start with PRIVATE+KEY+", field="/skey", code="bad_skey"
        )
    name, sep1, rest = skey[len(_SKEY_PREFIX) :].partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not sep1 or not sep2:
        raise ValidationError(
            "signer key must be PRIVATE+KEY+name+keyid+base64", field="/skey", code="bad_skey"
        )
    _require_name(name, "/skey")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise ValidationError(
            "key ID must be 8 lowercase hex digits", field="/skey", code="bad_key_id"
        )
    try:
        material = b64decode_canonical(encoded, field="/skey")
    except ValidationError:  # re-raise without echoing secret material
        raise ValidationError("key material is not canonical base64", field="/skey") from None
    if len(material) != 33 or material[0] != SIG_TYPE_ED25519:
        raise ValidationError(
            "key material must be 0x01 and a 32-byte Ed25519 seed",
            field="/skey",
            code="bad_skey",
        )
    signer = NoteSigner.from_seed(name, material[1:])
    if signer.key_id.hex() != hex_id:
        raise ValidationError(
            "key ID does not match the key", field="/skey", code="key_id_mismatch"
        )
    return signer


# --- signing and opening --------------------------------------------------------------------


def sign_note(
    text: str,
    signers: Sequence[Signer],
    existing: Sequence[NoteSignature] = (),
) -> str:
    """Sign ``text`` (ending in LF) with every signer, as Go's ``note.Sign`` does: the
    ``existing`` lines come first, minus any of a key that signs anew, then the new lines in
    signer order. Raises ValidationError on a bad text or when no line would result."""
    check_note_text(text)
    fresh = [signer.sign(text) for signer in signers]
    replaced = {(s.name, s.key_id) for s in fresh}
    kept = [s for s in existing if (s.name, s.key_id) not in replaced]
    return Note(text, (*kept, *fresh)).format()


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """An opened note: the text (authenticated by ``verified``) and the lines of keys the
    caller does not trust, which were not checked."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def open_note(message: str | bytes, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse ``message`` and verify it against the trusted ``verifiers`` (Go ``note.Open``
    semantics, see the module docstring). Raises SignatureError saying why."""
    note = parse_note(message)
    known: dict[tuple[str, bytes], list[Verifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, bytes(verifier.key_id)), []).append(verifier)

    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen: set[NoteSignature] = set()
    for sig in note.signatures:
        if sig in seen:  # identical repeated lines collapse
            continue
        seen.add(sig)
        matches = known.get((sig.name, sig.key_id))
        if not matches:
            unverified.append(sig)
            continue
        if len(matches) > 1:
            raise SignatureError(f"ambiguous key {sig.label}", item="note")
        if not matches[0].verify(note.text, sig.signature):
            raise SignatureError(f"invalid signature for key {sig.label}", item="note")
        verified.append(sig)
    if not verified:
        raise SignatureError(
            "no verifiable signatures (no line is from a trusted key)", item="note"
        )
    return OpenedNote(note.text, tuple(verified), tuple(unverified))
