"""C2SP tlog-checkpoint: the signed tree head of a log (ARCHITECTURE §5).

Theory of operation
-------------------
A checkpoint is a signed note (``trailseal.core.note``) whose text is::

    <origin>\\n<tree size, decimal, no leading zeros>\\n<base64 root hash>\\n[extension lines]

:func:`parse_checkpoint_body` applies the C2SP rules strictly: at least three lines and a
final LF, a non-empty origin, a size that fits uint64, a canonical base64 root of
``hash_size`` bytes (32 for SHA-256; ``None`` checks the structure only) and non-empty
extension lines. It raises :class:`~trailseal.errors.ValidationError` naming the field.

trailseal's own checkpoints (:func:`sign_checkpoint`, :class:`LogKeys`) carry no extension
lines and two lines from the project's one Ed25519 key, both with key name = origin:

1. the log signature, type 0x01 (the log's verifier key ``origin+keyid+base64``);
2. the log's own cosignature, type 0x04, whose timestamp attests the signing time.

:func:`open_checkpoint` opens any checkpoint with Go ``note.Open`` semantics, then parses the
body; every malformed or unverifiable checkpoint raises the one domain error,
:class:`~trailseal.errors.SignatureError`. One key signs every log of a project and a
signature does not commit to its key name, so a verifier MUST pass ``origin`` (the log it
expects) or check ``checkpoint.origin`` itself: otherwise another log's checkpoint, signed
by the same key, would open too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trailseal.core.cosignature import (
    SIG_TYPE_COSIGNATURE_V1,
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_timestamp,
)
from trailseal.core.encoding import b64decode_canonical, b64encode
from trailseal.core.hashing import HASH_SIZE
from trailseal.core.note import (
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    Verifier,
    _seed_key,
    open_note,
    parse_verifier_key,
)
from trailseal.errors import SignatureError, ValidationError

__all__ = [
    "MAX_TREE_SIZE",
    "Checkpoint",
    "LogKeys",
    "SignedCheckpoint",
    "log_verifiers",
    "open_checkpoint",
    "parse_checkpoint_body",
    "parse_uint64",
    "sign_checkpoint",
]

#: Tree sizes are uint64.
MAX_TREE_SIZE: Final = 2**64 - 1
# ASCII digits only: int() alone would take "+5", "1_000", " 7" and non-ASCII digits.
_DECIMAL = re.compile("0|[1-9][0-9]*")
_CONTROL = re.compile("[\x00-\x1f]")


def parse_uint64(text: str, *, field: str) -> int:
    """ASCII decimal with no leading zeros (``0`` itself allowed) that fits uint64, as
    checkpoint sizes and proof indexes are written. Raises ValidationError."""
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise ValidationError(
            "must be decimal without leading zeros, at most 2^64-1", field=field, code="bad_uint"
        )
    return int(text)


def _check_line(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError("must be a non-empty str", field=field, code="empty")
    try:
        value.encode("utf-8")  # a str may hold lone surrogates
    except UnicodeEncodeError:
        bad = True
    else:
        bad = _CONTROL.search(value) is not None
    if bad:
        raise ValidationError(
            "must be one UTF-8 line without control characters", field=field, code="bad_character"
        )
    return value


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint body: origin, tree size, root hash and (parsed, never emitted by
    trailseal) extension lines. Validated on construction."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "/origin")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise ValidationError(
                "tree size must be an int in 0..2^64-1", field="/size", code="bad_size"
            )
        if not isinstance(self.root_hash, bytes) or not self.root_hash:
            raise ValidationError(
                "root hash must be non-empty bytes", field="/root_hash", code="bad_root"
            )
        if not isinstance(self.extensions, tuple):
            raise ValidationError("extensions must be a tuple", field="/extensions")
        for i, line in enumerate(self.extensions):
            _check_line(line, f"/extensions/{i}")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in LF."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_body(text: str, *, hash_size: int | None = HASH_SIZE) -> Checkpoint:
    """Parse a checkpoint note text strictly (module docstring). ``hash_size`` is the exact
    root length required; ``None`` accepts any non-empty root. Raises ValidationError."""
    if not isinstance(text, str):
        raise ValidationError("checkpoint body must be a str", code="bad_type")
    if not text.endswith("\n"):
        raise ValidationError("checkpoint body must end in a newline", code="no_newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValidationError(
            "checkpoint body needs origin, size and root hash lines", code="too_few_lines"
        )
    origin, size_text, root_text, *extensions = lines
    _check_line(origin, "/origin")
    size = parse_uint64(size_text, field="/size")
    root = b64decode_canonical(root_text, field="/root_hash", size=hash_size)
    if not root:
        raise ValidationError("root hash is empty", field="/root_hash", code="bad_root")
    return Checkpoint(origin, size, root, tuple(extensions))


def _check_own_key(name: str, origin: str, what: str) -> None:
    if name != origin:
        raise ValidationError(
            f"the {what} key name must be the origin {origin!r}, got {name!r}",
            field=f"/{what}",
            code="name_mismatch",
        )


def sign_checkpoint(
    checkpoint: Checkpoint,
    signer: NoteSigner,
    cosigner: CosignatureSigner | None,
    timestamp: int,
) -> str:
    """A trailseal signed checkpoint: the log signature line, then (when ``cosigner`` is
    given) the log's own cosignature as of ``timestamp`` (unused without one). Both keys
    must be named after the origin and be one key. Raises ValidationError."""
    if checkpoint.extensions:
        raise ValidationError(
            "trailseal does not sign extension lines (ARCHITECTURE §5)",
            field="/extensions",
            code="extensions",
        )
    _check_own_key(signer.name, checkpoint.origin, "signer")
    body = checkpoint.body()
    signatures = [signer.sign(body)]
    if cosigner is not None:
        _check_own_key(cosigner.name, checkpoint.origin, "cosigner")
        if cosigner.public_key_bytes != signer.public_key_bytes:
            raise ValidationError(
                "the log cosigns with its own signing key",
                field="/cosigner",
                code="key_mismatch",
            )
        signatures.append(cosigner.cosign(body, timestamp))
    return Note(body, tuple(signatures)).format()


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """An opened checkpoint. ``timestamp`` comes from a *verified* cosignature: the earliest
    one by a key named after the origin (the log's own), else the earliest of any trusted
    cosigner; None when no cosignature verified."""

    checkpoint: Checkpoint
    note_text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]
    timestamp: int | None


def open_checkpoint(
    message: str | bytes,
    verifiers: Sequence[Verifier],
    *,
    origin: str | None = None,
) -> SignedCheckpoint:
    """Open a signed checkpoint (signed-note rules, then the strict SHA-256 body rules) and,
    when ``origin`` is given, require it. Raises SignatureError for every malformed,
    unverifiable or unexpected checkpoint."""
    opened = open_note(message, verifiers)
    try:
        checkpoint = parse_checkpoint_body(opened.text)
    except ValidationError as exc:
        raise SignatureError(f"malformed checkpoint: {exc}", item="checkpoint") from exc
    if origin is not None and checkpoint.origin != origin:
        raise SignatureError(
            f"origin is {checkpoint.origin!r}, expected {origin!r}", item="checkpoint"
        )

    # open_note refused ambiguous keys, so (name, key ID) names one verifier.
    types = {(v.name, bytes(v.key_id)): v.sig_type for v in verifiers}
    own: list[int] = []
    other: list[int] = []
    for sig in opened.verified:
        if types.get((sig.name, sig.key_id)) != SIG_TYPE_COSIGNATURE_V1:
            continue
        timestamp = cosignature_timestamp(sig.signature)
        if timestamp is not None:
            (own if sig.name == checkpoint.origin else other).append(timestamp)
    stamps = own or other
    return SignedCheckpoint(
        checkpoint,
        opened.text,
        opened.verified,
        opened.unverified,
        min(stamps) if stamps else None,
    )


def log_verifiers(verifier_key: str) -> tuple[NoteVerifier, CosignatureVerifier]:
    """Both verifiers of a trailseal log from its one published (type 0x01) verifier key:
    the log signature and the log's own cosignature. Raises ValidationError."""
    note_verifier = parse_verifier_key(verifier_key)
    return note_verifier, CosignatureVerifier(note_verifier.name, note_verifier.public_key)


@dataclass(frozen=True, slots=True)
class LogKeys:
    """The keys of one log, derived from the project's Ed25519 key and the log's origin
    (which is the key name, so each log has its own verifier-key string)."""

    origin: str
    signer: NoteSigner
    cosigner: CosignatureSigner

    def __post_init__(self) -> None:
        _check_own_key(self.signer.name, self.origin, "signer")
        _check_own_key(self.cosigner.name, self.origin, "cosigner")
        if self.signer.public_key_bytes != self.cosigner.public_key_bytes:
            raise ValidationError(
                "signer and cosigner must hold one key", field="/cosigner", code="key_mismatch"
            )

    @classmethod
    def from_private_key(cls, origin: str, private_key: Ed25519PrivateKey) -> LogKeys:
        """Raises ValidationError when ``origin`` cannot be a key name (space, ``+``)."""
        return cls(origin, NoteSigner(origin, private_key), CosignatureSigner(origin, private_key))

    @classmethod
    def from_seed(cls, origin: str, seed: bytes) -> LogKeys:
        return cls.from_private_key(origin, _seed_key(seed))

    def verifier_key(self) -> str:
        """The log's published verifier key (type 0x01): ``origin+keyid+base64``."""
        return self.signer.verifier_key()

    def cosignature_verifier_key(self) -> str:
        """The same key as a type-0x04 (cosignature/v1) vkey."""
        return self.cosigner.verifier_key()

    def verifiers(self) -> tuple[NoteVerifier, CosignatureVerifier]:
        return self.signer.verifier(), self.cosigner.verifier()

    def sign(self, checkpoint: Checkpoint, timestamp: int) -> str:
        """Sign one of this log's checkpoints as of ``timestamp`` (POSIX seconds)."""
        return sign_checkpoint(checkpoint, self.signer, self.cosigner, timestamp)

    def open(self, message: str | bytes) -> SignedCheckpoint:
        """Open a checkpoint of this log (origin checked). Raises SignatureError."""
        return open_checkpoint(message, self.verifiers(), origin=self.origin)
