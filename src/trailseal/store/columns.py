"""Derive an entry's index columns and full-text body from its event (pure).

The entry bytes are the source of truth; everything here can be recomputed from them,
which is how redaction finds the text it must remove from a contentless index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def index_columns(event: Mapping[str, Any]) -> IndexColumns:
    actor = event.get("actor") or {}
    resource = event.get("resource") or {}
    targets = event.get("targets") or []
    tags = event.get("tags") or []
    target_ids = " ".join(t["id"] for t in targets if isinstance(t, dict) and t.get("id"))
    return (
        event["action"],
        actor["id"],
        _str_or_none(actor.get("type")),
        _str_or_none(actor.get("name")),
        _str_or_none(resource.get("type")),
        _str_or_none(resource.get("id")),
        target_ids or None,
        _str_or_none(event.get("outcome")),
        " ".join(t for t in tags if isinstance(t, str)) or None,
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)


def search_text(event: Mapping[str, Any]) -> str:
    """What full-text search matches: message, action (dots as word breaks too), actor
    ids, names and emails, resource and target types, ids and names, and every string or
    number in metadata."""
    parts: list[str] = []
    action = event.get("action")
    if isinstance(action, str):
        parts.append(action)
        parts.append(action.replace(".", " ").replace("_", " "))
    for key in ("message", "source", "status"):
        value = event.get(key)
        if isinstance(value, str):
            parts.append(value)
    actor = event.get("actor")
    if isinstance(actor, dict):
        parts.extend(
            v for k, v in actor.items() if k in ("id", "name", "email") and isinstance(v, str)
        )
    for ref in [event.get("resource"), *(event.get("targets") or [])]:
        if isinstance(ref, dict):
            parts.extend(
                v for k, v in ref.items() if k in ("type", "id", "name") and isinstance(v, str)
            )
    parts.extend(_strings(event.get("metadata")))
    return "\n".join(parts)


def search_text_of_entry(entry: bytes) -> str:
    return search_text(orjson.loads(entry)["event"])
