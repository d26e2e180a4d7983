"""Everything about an event that can be computed before the log lock is taken.

Canonicalization, hashing of the content and derivation of index columns run on the
caller's side of the sequencer so the locked part of an append does only what needs the
sequence number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trailseal.core.canonical import canonicalize
from trailseal.core.schema import DEFAULT_LIMITS, Limits, normalize_event, validate_event
from trailseal.store.columns import IndexColumns, index_columns, search_text

__all__ = ["PreparedEvent", "content_hash", "prepare_event", "prepare_incoming"]


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    event_id: str
    event: Mapping[str, Any]  # the stored form (§4 "What is stored")
    canonical: bytes  # JCS of ``event``
    ext: bytes | None  # JCS of the entry's ``ext`` member, if a façade attached one
    content_hash: bytes  # tells a retry (same content) from a conflict (other content)
    occurred_at: str
    columns: IndexColumns
    search_text: str


def content_hash(sent: Mapping[str, Any], ext: Mapping[str, Any] | None = None) -> bytes:
    """SHA-256 over the event *as sent* (before defaults are filled in), so a retry that
    again omits ``occurred_at`` still matches the original."""
    body: dict[str, Any] = {"event": sent}
    if ext is not None:
        body["ext"] = ext
    return hashlib.sha256(canonicalize(body)).digest()


def prepare_event(
    stored: Mapping[str, Any],
    *,
    sent_hash: bytes | None,
    ext: Mapping[str, Any] | None = None,
) -> PreparedEvent:
    """``stored`` is the normalized event (id and occurred_at filled in). ``sent_hash``
    None means the event was sent in stored form already (what the SDK sends), so its
    content hash comes from the canonical bytes computed here anyway: JCS of
    ``{"event": e, "ext": x}`` is ``{"event":`` JCS(e) ``,"ext":`` JCS(x) ``}``."""
    canonical = canonicalize(stored)
    ext_bytes = canonicalize(ext) if ext is not None else None
    if sent_hash is None:
        body = b'{"event":' + canonical
        if ext_bytes is not None:
            body += b',"ext":' + ext_bytes
        sent_hash = hashlib.sha256(body + b"}").digest()
    return PreparedEvent(
        event_id=stored["id"],
        event=stored,
        canonical=canonical,
        ext=ext_bytes,
        content_hash=sent_hash,
        occurred_at=stored["occurred_at"],
        columns=index_columns(stored),
        search_text=search_text(stored),
    )


def prepare_incoming(
    raw: Mapping[str, Any],
    *,
    now: datetime,
    new_id: Callable[[], str],
    ext: Mapping[str, Any] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    validated: bool = False,
) -> PreparedEvent:
    """Validate (unless the caller already did, e.g. batch validation that reports every
    problem), normalize and prepare one event as a client sent it."""
    if not validated:
        validate_event(raw, limits)
    stored = normalize_event(raw, now=now, new_id=new_id)
    # Sent in stored form (id and normalized occurred_at present): one canonicalization.
    sent_hash = None if stored == raw else content_hash(raw, ext)
    return prepare_event(stored, sent_hash=sent_hash, ext=ext)
