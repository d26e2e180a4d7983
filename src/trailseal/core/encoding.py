"""Strict text encodings shared by the formats: canonical base64 and lowercase hex.

Base64 is parsed canonically (ARCHITECTURE §5): the text must be exactly what encoding the
decoded bytes gives back, so no two texts carry one signature or hash.
"""

from __future__ import annotations

import base64
import binascii

from trailseal.errors import ValidationError

__all__ = ["b64decode_canonical", "b64encode", "hex_to_bytes"]


def b64encode(data: bytes) -> str:
    """Standard, padded base64 (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode_canonical(text: str, *, field: str = "", size: int | None = None) -> bytes:
    """Decode standard padded base64, rejecting any text that is not the canonical encoding
    of its bytes (stray whitespace, missing padding, non-zero trailing bits, URL alphabet).
    ``size``, when given, is the exact decoded length required."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValidationError(f"not valid base64: {exc}", field=field, code="bad_base64") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise ValidationError("base64 is not canonical", field=field, code="bad_base64")
    if size is not None and len(data) != size:
        raise ValidationError(
            f"expected {size} bytes, got {len(data)}", field=field, code="bad_length"
        )
    return data


def hex_to_bytes(text: str, *, field: str = "", size: int | None = None) -> bytes:
    """Decode lowercase hex (the JSON API's form of hashes); uppercase is rejected so one
    hash has one spelling."""
    if text != text.lower():
        raise ValidationError("hex must be lowercase", field=field, code="bad_hex")
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise ValidationError("not valid hex", field=field, code="bad_hex") from exc
    if len(text) != 2 * len(data):
        raise ValidationError("not valid hex", field=field, code="bad_hex")
    if size is not None and len(data) != size:
        raise ValidationError(
            f"expected {size} bytes, got {len(data)}", field=field, code="bad_length"
        )
    return data
