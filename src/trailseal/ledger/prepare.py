"""Everything about an event that can be computed before the log lock is taken.

Canonicalization, hashing of the content and derivation of index columns run on the
caller's side of the sequencer so the locked part of an append does only what needs the
sequence number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from trailseal.core.canonical import canonicalize
from trailseal.core.schema import (
    DEFAULT_LIMITS,
    Limits,
    _normalize,  # normalize_event, and whether it changed
    validate_event,
)
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


# PreparedEvent is built once per ingested event. Its generated frozen __init__ stores each
# field through ``object.__setattr__``; calling the slots' own descriptors does the same
# stores in about half the time. The unpacking fails at import if a field is added.
(
    _set_event_id,
    _set_event,
    _set_canonical,
    _set_ext,
    _set_content_hash,
    _set_occurred_at,
    _set_columns,
    _set_search_text,
) = (PreparedEvent.__dict__[field.name].__set__ for field in fields(PreparedEvent))


def _new_prepared(
    event_id: str,
    event: Mapping[str, Any],
    canonical: bytes,
    ext: bytes | None,
    content_hash: bytes,
    occurred_at: str,
    columns: IndexColumns,
    search_text: str,
) -> PreparedEvent:
    """``PreparedEvent(...)`` with the same fields, faster (see above)."""
    prepared = object.__new__(PreparedEvent)
    _set_event_id(prepared, event_id)
    _set_event(prepared, event)
    _set_canonical(prepared, canonical)
    _set_ext(prepared, ext)
    _set_content_hash(prepared, content_hash)
    _set_occurred_at(prepared, occurred_at)
    _set_columns(prepared, columns)
    _set_search_text(prepared, search_text)
    return prepared


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
    return _new_prepared(
        stored["id"],
        stored,
        canonical,
        ext_bytes,
        sent_hash,
        stored["occurred_at"],
        index_columns(stored),
        search_text(stored),
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
    stored, changed = _normalize(raw, now, new_id)
    # Sent in stored form (id and normalized occurred_at present): one canonicalization.
    # Hashing ``raw`` when the two are equal after all gives the same hash, only slower.
    sent_hash = None if not changed else content_hash(raw, ext)
    return prepare_event(stored, sent_hash=sent_hash, ext=ext)
