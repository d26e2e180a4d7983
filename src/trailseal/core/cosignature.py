"""C2SP tlog-cosignature, Ed25519 ``cosignature/v1`` (signature type 0x04).

Theory of operation
-------------------
A cosignature is a signed-note line on a checkpoint whose signature bytes are a
``timestamped_signature``::

    key ID (4) || timestamp (8, big-endian uint64, POSIX seconds) || Ed25519 signature (64)

and whose signed message is ``"cosignature/v1\\n" + "time <decimal>\\n" + checkpoint text``
(the text with its final LF, without the signature lines). The key ID is computed with type
byte 0x04, so one Ed25519 key has two key IDs: 0x01 for plain note signatures, 0x04 for
cosignatures. trailseal uses both on every checkpoint (ARCHITECTURE §5): the log's plain
signature, and the log's own cosignature that attests its signing time.

Verifier keys come as type-0x04 vkeys, or as type-0x01 vkeys that operators publish; like
transparency-dev/formats (``NewVerifierForCosignatureV1``) the latter are accepted by
recomputing the key ID with 0x04 (after checking the 0x01 key ID, which formats skips).

Timestamps are parameters (the core reads no clock). The spec caps them at 2^63 - 1; a
larger one is refused when signing and fails verification.

:func:`parse_verifier` is the vkey parser for opening checkpoints: type 0x01 gives a
:class:`~trailseal.core.note.NoteVerifier`, type 0x04 a :class:`CosignatureVerifier`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PublicKey,
)

from trailseal.core.note import (
    ED25519_PUBLIC_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    SIG_TYPE_ED25519,
    Ed25519Key,
    NoteSignature,
    NoteVerifier,
    _load_public_key,
    _require_name,
    check_note_text,
    decode_verifier_key,
    ed25519_verify,
    encode_verifier_key,
    key_id,
    parse_verifier_key,
)
from trailseal.errors import ValidationError

__all__ = [
    "COSIGNATURE_SIZE",
    "MAX_TIMESTAMP",
    "SIG_TYPE_COSIGNATURE_V1",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosignature_message",
    "cosignature_timestamp",
    "parse_verifier",
]

#: Signature type byte of Ed25519 cosignature/v1 (C2SP signed-note, tlog-cosignature).
SIG_TYPE_COSIGNATURE_V1: Final = 0x04
_TIMESTAMP_SIZE: Final = 8
#: Signature bytes after the key ID: timestamp then Ed25519 signature.
COSIGNATURE_SIZE: Final = _TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE
#: "It MUST NOT exceed 2^63 - 1" (tlog-cosignature).
MAX_TIMESTAMP: Final = 2**63 - 1


def _is_cosignable(text: str) -> bool:
    # A cosignature covers a checkpoint: at least three lines (origin, size, root), the
    # first non-empty. The full checkpoint rules live in trailseal.core.checkpoint, which
    # builds on this module.
    try:
        check_note_text(text)
    except ValidationError:
        return False
    return text.count("\n") >= 3 and not text.startswith("\n")


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The exact bytes an Ed25519 cosignature/v1 signs for checkpoint ``text``."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosignature_timestamp(signature: bytes) -> int | None:
    """The timestamp inside cosignature/v1 signature bytes (those after the 4-byte key ID,
    i.e. :attr:`NoteSignature.signature`), or None when they cannot be one: wrong length or
    a timestamp above 2^63 - 1. This does **not** verify anything."""
    if not isinstance(signature, bytes) or len(signature) != COSIGNATURE_SIZE:
        return None
    timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
    return timestamp if timestamp <= MAX_TIMESTAMP else None


def _check_timestamp(timestamp: object) -> int:
    if (
        not isinstance(timestamp, int)
        or isinstance(timestamp, bool)
        or not 0 <= timestamp <= MAX_TIMESTAMP
    ):
        raise ValidationError(
            "timestamp must be an int in 0..2^63-1 (POSIX seconds)",
            field="/timestamp",
            code="bad_timestamp",
        )
    return timestamp


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A trusted cosigner key (Ed25519, cosignature/v1). ``key_id`` is derived with type
    0x04; it plugs into :func:`~trailseal.core.note.open_note` like any verifier."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    sig_type: int = field(init=False, default=SIG_TYPE_COSIGNATURE_V1)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_name(self.name, "/name")
        object.__setattr__(self, "_key", _load_public_key(self.public_key, "/public_key"))
        object.__setattr__(
            self, "key_id", key_id(self.name, SIG_TYPE_COSIGNATURE_V1, self.public_key)
        )

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """From a type-0x04 vkey, or from a type-0x01 vkey of the same Ed25519 key (its
        0x01 key ID is checked, then the 0x04 one is recomputed). Raises ValidationError."""
        fields = decode_verifier_key(vkey)
        if fields.sig_type not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
            raise ValidationError(
                f"unsupported signature type 0x{fields.sig_type:02x} for a cosigner",
                field="/vkey",
                code="unsupported_type",
            )
        if len(fields.public_key) != ED25519_PUBLIC_KEY_SIZE:
            raise ValidationError(
                "Ed25519 public key must be 32 bytes", field="/vkey", code="bad_public_key"
            )
        return cls(fields.name, fields.public_key)

    def verify_timestamp(self, text: str, signature: bytes) -> int | None:
        """The timestamp when ``signature`` is this cosigner's cosignature/v1 of checkpoint
        ``text``; None when it does not verify."""
        timestamp = cosignature_timestamp(signature)
        if timestamp is None or not _is_cosignable(text):
            return None
        message = cosignature_message(text, timestamp)
        if not ed25519_verify(self._key, message, signature[_TIMESTAMP_SIZE:]):
            return None
        return timestamp

    def verify(self, text: str, signature: bytes) -> bool:
        """The :class:`~trailseal.core.note.Verifier` protocol: does it verify?"""
        return self.verify_timestamp(text, signature) is not None

    def verifier_key(self) -> str:
        """The type-0x04 vkey."""
        return encode_verifier_key(self.name, self.public_key, SIG_TYPE_COSIGNATURE_V1)


class CosignatureSigner(Ed25519Key):
    """An Ed25519 cosigner (cosignature/v1). The time of signing is a parameter."""

    __slots__ = ()
    sig_type = SIG_TYPE_COSIGNATURE_V1

    def cosign(self, checkpoint_text: str, timestamp: int) -> NoteSignature:
        """Cosign a checkpoint text (final LF included) as of ``timestamp`` (POSIX seconds).
        Raises ValidationError on a text that is not a checkpoint or a bad timestamp."""
        _check_timestamp(timestamp)
        check_note_text(checkpoint_text, field="/checkpoint")
        if not _is_cosignable(checkpoint_text):
            raise ValidationError(
                "a cosigned text must be a checkpoint (origin, size, root hash lines)",
                field="/checkpoint",
                code="not_a_checkpoint",
            )
        message = cosignature_message(checkpoint_text, timestamp)
        signature = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + self._private_key.sign(message)
        return NoteSignature(self._name, self._key_id, signature)

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._name, self._public_key)

    def verifier_key(self) -> str:
        """The type-0x04 vkey."""
        return encode_verifier_key(self._name, self._public_key, SIG_TYPE_COSIGNATURE_V1)


def parse_verifier(vkey: str) -> NoteVerifier | CosignatureVerifier:
    """Parse a vkey of either type trailseal verifies: 0x01 (plain Ed25519 note signatures)
    or 0x04 (Ed25519 cosignature/v1). Raises ValidationError for anything else."""
    fields = decode_verifier_key(vkey)
    if fields.sig_type == SIG_TYPE_COSIGNATURE_V1:
        return CosignatureVerifier.from_vkey(vkey)
    return parse_verifier_key(vkey)
