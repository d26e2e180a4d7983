"""API keys (ARCHITECTURE §8): ``tsk_live_…`` / ``tsk_test_…`` secrets, shown once, stored as
SHA-256 hashes, with scopes and an optional organization binding.

Keys are 40 random base62 characters after the prefix (≈238 bits), so a plain SHA-256 is
the right hash: a password KDF defends low-entropy secrets and would only slow every
request. Each key also gets a short public id (``key_…``) for listing and revoking.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from trailseal.errors import ValidationError

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_SCOPES",
    "NewKey",
    "has_scope",
    "hash_secret",
    "looks_like_key",
    "new_key",
    "parse_scopes",
    "same_hash",
]

ALL_SCOPES: Final = ("events:write", "events:read", "verify", "export", "admin")
DEFAULT_SCOPES: Final = ("events:write", "events:read")
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KEY_PATTERN: Final = re.compile(r"tsk_(live|test)_[A-Za-z0-9]{32,128}")
_SECRET_LENGTH: Final = 40


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str  # shown once, never stored
    key_id: str
    key_hash: bytes


def new_key(*, test: bool = False) -> NewKey:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    secret = f"tsk_{'test' if test else 'live'}_{body}"
    key_id = "key_" + "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return NewKey(secret, key_id, hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def looks_like_key(text: str) -> bool:
    return _KEY_PATTERN.fullmatch(text) is not None


def same_hash(a: bytes, b: bytes) -> bool:
    """Constant-time comparison, for the final check after the indexed lookup."""
    return hmac.compare_digest(a, b)


def parse_scopes(
    text: str | list[str] | tuple[str, ...], *, field: str = "/scopes"
) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown or not scopes:
        raise ValidationError(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(ALL_SCOPES)}"
            if unknown
            else f"at least one scope is needed; choose from {', '.join(ALL_SCOPES)}",
            field=field,
            code="invalid_scope",
        )
    return scopes


def has_scope(granted: tuple[str, ...], needed: str) -> bool:
    """``admin`` implies every other scope."""
    return needed in granted or "admin" in granted
