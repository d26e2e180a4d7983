"""Derive an entry's index columns and full-text body from its event (pure).

The entry bytes are the source of truth; everything here can be recomputed from them,
which is how redaction finds the text it must remove from a contentless index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

__all__ = ["IndexColumns", "index_columns", "search_text", "search_text_of_entry"]

IndexColumns = tuple[
    str,  # action
    str,  # actor_id
    str | None,  # actor_type
    str | None,  # actor_name
    str | None,  # resource_type
    str | None,  # resource_id
    str | None,  # target_ids (space-separated)
    str | None,  # outcome
    str | None,  # tags (space-separated)
]


def index_columns(event: Mapping[str, Any]) -> IndexColumns:
    # Written out rather than through helpers and generators (it runs once per ingested
    # event, ARCHITECTURE §11), in the original order of lookups, so even a malformed
    # event fails the same way.
    actor = event.get("actor") or {}
    resource = event.get("resource") or {}
    targets = event.get("targets") or []
    tags = event.get("tags") or []
    target_ids = (
        " ".join([t["id"] for t in targets if isinstance(t, dict) and t.get("id")])
        if targets
        else ""
    )
    action = event["action"]
    actor_id = actor["id"]
    actor_type = actor.get("type")
    actor_name = actor.get("name")
    resource_type = resource.get("type")
    resource_id = resource.get("id")
    outcome = event.get("outcome")
    return (
        action,
        actor_id,
        actor_type if isinstance(actor_type, str) else None,
        actor_name if isinstance(actor_name, str) else None,
        resource_type if isinstance(resource_type, str) else None,
        resource_id if isinstance(resource_id, str) else None,
        target_ids or None,
        outcome if isinstance(outcome, str) else None,
        (" ".join([t for t in tags if isinstance(t, str)]) if tags else "") or None,
    )


def _add_strings(value: Any, parts: list[str]) -> None:
    """Append every string and number inside ``value`` (dicts and lists, not tuples, are
    entered; booleans and nulls skipped), depth first in order. Scalars one level down are
    handled in the loop: metadata is mostly flat."""
    if isinstance(value, dict):
        items: Iterable[Any] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        if isinstance(value, str):
            parts.append(value)
        elif not (isinstance(value, bool) or value is None) and isinstance(value, int | float):
            parts.append(str(value))
        return
    append = parts.append
    for item in items:
        kind = type(item)
        if kind is str:
            append(item)
        elif kind is int or kind is float:
            append(str(item))
        elif item is not None and kind is not bool:
            _add_strings(item, parts)


_ACTOR_TEXT = frozenset(("id", "name", "email"))
_REF_TEXT = frozenset(("type", "id", "name"))


def search_text(event: Mapping[str, Any]) -> str:
    """What full-text search matches: message, action (dots as word breaks too), actor
    ids, names and emails, resource and target types, ids and names, and every string or
    number in metadata."""
    parts: list[str] = []
    append = parts.append
    action = event.get("action")
    if isinstance(action, str):
        append(action)
        append(action.replace(".", " ").replace("_", " "))
    message, source, status = event.get("message"), event.get("source"), event.get("status")
    if isinstance(message, str):
        append(message)
    if isinstance(source, str):
        append(source)
    if isinstance(status, str):
        append(status)
    actor = event.get("actor")
    if isinstance(actor, dict):
        for key, value in actor.items():  # in the event's own member order
            if key in _ACTOR_TEXT and isinstance(value, str):
                append(value)
    resource = event.get("resource")
    targets = event.get("targets")
    for ref in [resource, *targets] if targets else (resource,):
        if isinstance(ref, dict):
            for key, value in ref.items():
                if key in _REF_TEXT and isinstance(value, str):
                    append(value)
    metadata = event.get("metadata")
    if metadata is not None:
        _add_strings(metadata, parts)
    return "\n".join(parts)


def search_text_of_entry(entry: bytes) -> str:
    return search_text(orjson.loads(entry)["event"])
