"""Errors the SDK raises, under the one hierarchy of :mod:`trailseal.errors`.

    TrailsealError
    ├── ValidationError             an event broke a rule (``log()`` on the caller's thread)
    ├── VerificationError           ``verify_event`` found something that does not verify
    │   └── ConsistencyError            a checkpoint inconsistent with the remembered one
    └── ClientError                 base of what the SDK itself adds
        ├── ApiError                    the server answered with an error (status, code, field)
        ├── TransportError              no answer: connection refused, reset, timed out
        ├── DeliveryError               queued events the worker could not deliver
        ├── QueueFullError              ``log()`` with ``on_full="raise"`` and a full queue
        └── ClientClosedError           ``log()`` after ``close()``

None of these ever carries the API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trailseal.errors import TrailsealError

__all__ = [
    "ApiError",
    "ClientClosedError",
    "ClientError",
    "DeliveryError",
    "QueueFullError",
    "TransportError",
]


class ClientError(TrailsealError):
    """Base of the errors the SDK adds."""


class ApiError(ClientError):
    """The server answered ``status`` with its error body ``{"error": {code, message,
    field}}``; ``details`` holds the per-item problems of a batch (422)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = list(details) if details is not None else []

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field else ""
        return f"HTTP {self.status} {self.code}{where}: {self.message}"


class TransportError(ClientError):
    """The server could not be reached or did not answer (after the retries)."""


class DeliveryError(ClientError):
    """Queued events that could not be delivered (``raise_on_error=True``). ``events`` are
    the events exactly as they were sent (ids included: sending them again is idempotent);
    ``errors[i]`` says why ``events[i]`` failed."""

    def __init__(self, message: str, *, events: list[dict[str, Any]], errors: list[str]) -> None:
        super().__init__(message)
        self.events = events
        self.errors = errors

    @property
    def event_ids(self) -> list[str]:
        return [str(event.get("id")) for event in self.events]


class QueueFullError(ClientError):
    """The bounded queue is full and ``on_full`` is ``"raise"`` (or a ``"block"`` wait timed
    out)."""


class ClientClosedError(ClientError):
    """The client was closed; it accepts no more events."""
