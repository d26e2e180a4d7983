"""C2SP tlog-proof: the offline, per-event proof format (ARCHITECTURE §5).

Theory of operation
-------------------
A proof is text, lines separated by LF::

    c2sp.org/tlog-proof@v1
    extra <base64>              optional, opaque, NOT authenticated
    index <decimal>             no leading zeros, fits uint64
    <base64 SHA-256 hash>       zero or more: the inclusion proof, leaf's sibling first
                                (empty line)
    <checkpoint>                the signed checkpoint, verbatim, cosignatures included

:func:`parse_proof_bundle` checks the framing only, strictly (canonical base64, 32-byte
hashes, at most 64 of them: the height of a 2^64-leaf tree) and raises
:class:`~trailseal.errors.ValidationError` on any violation. The checkpoint is kept verbatim
and is not opened here: :meth:`ProofBundle.open_checkpoint` does that, and the Merkle code
checks the inclusion proof against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from trailseal.core.checkpoint import (
    MAX_TREE_SIZE,
    SignedCheckpoint,
    open_checkpoint,
    parse_uint64,
)
from trailseal.core.encoding import b64decode_canonical, b64encode
from trailseal.core.hashing import HASH_SIZE
from trailseal.core.note import Verifier
from trailseal.errors import ValidationError

__all__ = ["MAX_PROOF_HASHES", "PROOF_HEADER", "ProofBundle", "parse_proof_bundle"]

PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"
#: An inclusion proof in a tree of at most 2^64 leaves has at most 64 hashes.
MAX_PROOF_HASHES: Final = 64
_EXTRA: Final = "extra "
_INDEX: Final = "index "


@dataclass(frozen=True, slots=True)
class ProofBundle:
    """One tlog-proof: leaf ``index``, inclusion ``hashes`` (leaf's sibling first), the
    signed ``checkpoint`` text verbatim (ending in LF) and optional unauthenticated
    ``extra`` bytes. Validated on construction."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.index, int)
            or isinstance(self.index, bool)
            or not 0 <= self.index <= MAX_TREE_SIZE
        ):
            raise ValidationError("index must be an int in 0..2^64-1", field="/index")
        if not isinstance(self.hashes, tuple) or len(self.hashes) > MAX_PROOF_HASHES:
            raise ValidationError(
                f"hashes must be a tuple of at most {MAX_PROOF_HASHES}",
                field="/hashes",
                code="too_many_hashes",
            )
        for i, digest in enumerate(self.hashes):
            if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
                raise ValidationError(
                    f"must be {HASH_SIZE} bytes", field=f"/hashes/{i}", code="bad_length"
                )
        if not isinstance(self.checkpoint, str) or not self.checkpoint.endswith("\n"):
            raise ValidationError(
                "checkpoint must be a signed note text ending in a newline",
                field="/checkpoint",
                code="bad_checkpoint",
            )
        try:
            self.checkpoint.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(
                "checkpoint is not valid UTF-8", field="/checkpoint", code="bad_checkpoint"
            ) from exc
        if self.extra is not None and not isinstance(self.extra, bytes):
            raise ValidationError("extra must be bytes or None", field="/extra")

    def format(self) -> str:
        """The tlog-proof text."""
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(_EXTRA + b64encode(self.extra))
        lines.append(f"{_INDEX}{self.index}")
        lines.extend(b64encode(digest) for digest in self.hashes)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint

    def open_checkpoint(
        self, verifiers: Sequence[Verifier], *, origin: str | None = None
    ) -> SignedCheckpoint:
        """Open the embedded checkpoint (see :func:`trailseal.core.checkpoint.open_checkpoint`).
        Raises SignatureError."""
        return open_checkpoint(self.checkpoint, verifiers, origin=origin)


def parse_proof_bundle(text: str | bytes) -> ProofBundle:
    """Parse a tlog-proof strictly (module docstring). Raises ValidationError."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("proof is not valid UTF-8", code="bad_character") from exc
    if not isinstance(text, str):
        raise ValidationError("a proof is str or bytes", code="bad_type")

    pos = 0

    def next_line(what: str) -> str:
        nonlocal pos
        end = text.find("\n", pos)
        if end < 0:
            raise ValidationError(f"proof ends before its {what}", code="truncated")
        line, pos = text[pos:end], end + 1
        return line

    if next_line("header") != PROOF_HEADER:
        raise ValidationError(f"first line must be {PROOF_HEADER}", code="bad_header")
    line = next_line("index line")
    extra = None
    if line.startswith(_EXTRA):
        extra = b64decode_canonical(line[len(_EXTRA) :], field="/extra")
        line = next_line("index line")
    if not line.startswith(_INDEX):
        raise ValidationError("expected 'index <decimal>'", field="/index", code="no_index")
    index = parse_uint64(line[len(_INDEX) :], field="/index")
    hashes: list[bytes] = []
    while line := next_line("empty line before the checkpoint"):
        if len(hashes) == MAX_PROOF_HASHES:
            raise ValidationError(
                f"more than {MAX_PROOF_HASHES} proof hashes", field="/hashes", code="too_many"
            )
        hashes.append(b64decode_canonical(line, field=f"/hashes/{len(hashes)}", size=HASH_SIZE))
    return ProofBundle(index, tuple(hashes), text[pos:], extra)
