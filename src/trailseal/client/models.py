"""What the SDK returns: small frozen value objects read from the server's JSON answers.

Hashes are ``bytes`` here (the API sends lowercase hex). Every object keeps the answer it was
read from in ``raw``, so members added to the API later are reachable before the SDK names
them. A malformed answer raises :class:`~trailseal.client.errors.ClientError` naming the
member.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trailseal.client.errors import ClientError

__all__ = [
    "CheckpointInfo",
    "Committed",
    "EventPage",
    "InclusionProof",
    "LogInfo",
    "Receipt",
    "ReplayResult",
    "StoredEvent",
    "VerifiedEvent",
]


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ClientError(f"unexpected answer: {what} has no valid {key!r} ({value!r:.60})")
    return value


def _opt(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    return None if doc.get(key) is None else _get(doc, key, kind, what)


def _hex(doc: Mapping[str, Any], key: str, what: str) -> bytes:
    text = _get(doc, key, str, what)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ClientError(f"unexpected answer: {what}.{key} is not hex") from None


def _opt_hex(doc: Mapping[str, Any], key: str, what: str) -> bytes | None:
    return None if doc.get(key) is None else _hex(doc, key, what)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 inclusion proof of leaf ``leaf_index`` in the tree of ``tree_size``."""

    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], what: str = "inclusion_proof") -> InclusionProof:
        hashes = _get(doc, "hashes", list, what)
        try:
            decoded = tuple(bytes.fromhex(h) for h in hashes)
        except (TypeError, ValueError):
            raise ClientError(f"unexpected answer: {what}.hashes are not hex") from None
        return cls(_get(doc, "leaf_index", int, what), _get(doc, "tree_size", int, what), decoded)


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """A signed checkpoint as the server describes it. ``note`` is the signed note text:
    only :func:`trailseal.core.verify.open_log_checkpoint` with a pinned key makes it
    trustworthy; the other members are the server's word."""

    tree_size: int
    root_hash: bytes
    note: str
    log_id: str | None = None
    origin: str | None = None
    created_at: str | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], what: str = "checkpoint") -> CheckpointInfo:
        return cls(
            tree_size=_get(doc, "tree_size", int, what),
            root_hash=_hex(doc, "root_hash", what),
            note=_get(doc, "checkpoint", str, what),
            log_id=_opt(doc, "log_id", str, what),
            origin=_opt(doc, "origin", str, what),
            created_at=_opt(doc, "created_at", str, what),
        )


@dataclass(frozen=True, slots=True)
class Committed:
    """A sync-mode answer: the event is sequenced and covered by a signed checkpoint."""

    id: str
    organization_id: str
    log_id: str
    seq: int
    duplicate: bool
    leaf_hash: bytes | None
    prev_hash: bytes | None
    hash: bytes | None
    inclusion_proof: InclusionProof | None
    checkpoint: CheckpointInfo | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Committed:
        what = "committed event"
        proof = doc.get("inclusion_proof")
        checkpoint = doc.get("checkpoint")
        return cls(
            id=_get(doc, "id", str, what),
            organization_id=_get(doc, "organization_id", str, what),
            log_id=_get(doc, "log_id", str, what),
            seq=_get(doc, "seq", int, what),
            duplicate=bool(doc.get("duplicate", False)),
            leaf_hash=_opt_hex(doc, "leaf_hash", what),
            prev_hash=_opt_hex(doc, "prev_hash", what),
            hash=_opt_hex(doc, "hash", what),
            inclusion_proof=InclusionProof.from_json(proof) if isinstance(proof, dict) else None,
            checkpoint=CheckpointInfo.from_json(checkpoint)
            if isinstance(checkpoint, dict)
            else None,
            raw=doc,
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    """An async ingest receipt: ``queued`` → ``committed`` | ``failed``. Committed receipts
    read back with ``get_receipt`` list each event's ``seq`` (in ``events``)."""

    receipt_id: str
    status: str
    organization_id: str | None
    log_id: str | None
    event_ids: tuple[str, ...]
    error: str | None
    events: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Receipt:
        what = "receipt"
        events = doc.get("events")
        error = doc.get("error")
        return cls(
            receipt_id=_get(doc, "receipt_id", str, what),
            status=_get(doc, "status", str, what),
            organization_id=_opt(doc, "organization_id", str, what),
            log_id=_opt(doc, "log_id", str, what),
            event_ids=tuple(str(i) for i in _get(doc, "event_ids", list, what)),
            error=str(error) if error is not None else None,
            events=tuple(e for e in events if isinstance(e, dict))
            if isinstance(events, list)
            else (),
            raw=doc,
        )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back: the event (with read defaults applied), its place in its
    organization's log and its chain hashes. Redacted events have ``event is None``."""

    id: str
    organization_id: str
    log_id: str
    seq: int
    leaf_hash: bytes
    prev_hash: bytes | None
    hash: bytes
    redacted: bool
    received_at: str | None
    event: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StoredEvent:
        what = "event"
        event = doc.get("event")
        return cls(
            id=_get(doc, "id", str, what),
            organization_id=_get(doc, "organization_id", str, what),
            log_id=_get(doc, "log_id", str, what),
            seq=_get(doc, "seq", int, what),
            leaf_hash=_hex(doc, "leaf_hash", what),
            prev_hash=_opt_hex(doc, "prev_hash", what),
            hash=_hex(doc, "hash", what),
            redacted=bool(doc.get("redacted", False)),
            received_at=_opt(doc, "received_at", str, what),
            event=event if isinstance(event, dict) else None,
            raw=doc,
        )


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` (None: the end)."""

    events: tuple[StoredEvent, ...]
    next_cursor: str | None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class LogInfo:
    """An organization's log as the server describes it. Pin ``verifier_key`` out of band
    (e.g. once, from a trusted deployment), not from every answer."""

    organization_id: str
    log_id: str
    origin: str
    tree_size: int
    verifier_key: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LogInfo:
        what = "log"
        return cls(
            organization_id=_get(doc, "organization_id", str, what),
            log_id=_get(doc, "log_id", str, what),
            origin=_get(doc, "origin", str, what),
            tree_size=_get(doc, "tree_size", int, what),
            verifier_key=_get(doc, "verifier_key", str, what),
            raw=doc,
        )


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """What :meth:`Client.verify_event` established with the pinned key alone: entry
    ``seq`` of log ``origin`` (these exact bytes, hashed here) is in the tree of
    ``tree_size`` whose root the log signed at ``signed_at`` (its own cosignature), that
    checkpoint is consistent with every one this trust store saw before (``trust`` says
    ``"first-use"``, ``"same"`` or ``"extended"``), and the server's copy of the event is the
    entry's. ``event`` is the entry's event as stored (None when redacted: then only the
    leaf's inclusion is proven)."""

    id: str
    organization_id: str
    log_id: str
    origin: str
    seq: int
    tree_size: int
    root_hash: bytes
    leaf_hash: bytes
    signed_at: int | None
    redacted: bool
    trust: str
    event: Mapping[str, Any] | None
    entry: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What :meth:`Client.replay_dead_letter` did: events acknowledged by the server (and
    removed from the file), events still in the file, and the lines left."""

    delivered: int
    remaining: int
    lines_remaining: int
    errors: tuple[str, ...] = ()
