"""The one error hierarchy of trailseal.

    TrailsealError                  base of everything trailseal raises on purpose
    ├── ValidationError (ValueError)    bad input: names the field as a JSON pointer
    │   └── CanonicalizationError           a value RFC 8785 cannot encode (NaN, 2**60, ...)
    ├── VerificationError               a proof, signature, chain or checkpoint did not verify
    │   ├── SignatureError                  a signed note or cosignature failed
    │   └── ConsistencyError                two views of a log disagree (split view, rollback)
    └── (storage and service errors are added by their packages, under this base)

Each error carries ``diagnostics()``: a one-paragraph, human-readable explanation of what
failed and, where it helps, what was expected and what was calculated.

This module imports nothing, so every layer (core included) can use it.
"""

from __future__ import annotations

__all__ = [
    "CanonicalizationError",
    "ConsistencyError",
    "SignatureError",
    "TrailsealError",
    "ValidationError",
    "VerificationError",
]


class TrailsealError(Exception):
    """Base of every error trailseal raises on purpose."""

    def diagnostics(self) -> str:
        return str(self)


class ValidationError(TrailsealError, ValueError):
    """Input that breaks a rule. ``field`` is a JSON pointer (``/actor/id``), ``""`` for the
    whole value; ``code`` is a short machine-readable reason."""

    def __init__(self, message: str, *, field: str = "", code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def diagnostics(self) -> str:
        where = self.field or "(the whole value)"
        return f"{where} is invalid ({self.code}): {self.message}"


class CanonicalizationError(ValidationError):
    """A value that RFC 8785 canonical JSON cannot represent."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, field=field, code="not_canonicalizable")


class VerificationError(TrailsealError):
    """Something did not verify. ``item`` names what (``entry 17``, ``checkpoint``, ...)."""

    def __init__(self, message: str, *, item: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.item = item

    def __str__(self) -> str:
        return f"{self.item}: {self.message}" if self.item else self.message


class SignatureError(VerificationError):
    """A signed note, checkpoint signature or cosignature failed to verify or parse."""


class ConsistencyError(VerificationError):
    """Two checkpoints of one log are not consistent (a rewrite, rollback or split view)."""
