"""The index columns and search text, written out for speed, agree with the plain
definitions below (the code they replaced) on any input, errors included."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.test_schema import ANY_EVENT, EVENTISH, JSON, VALID_EVENTS
from trailseal.store.columns import index_columns, search_text


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def reference_index_columns(event: Mapping[str, Any]) -> tuple[Any, ...]:
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


def reference_search_text(event: Mapping[str, Any]) -> str:
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


def outcome(function: Any, event: Any) -> object:
    try:
        return function(event)
    except Exception as exc:  # the exception type is what is compared
        return type(exc)


_REFS = st.fixed_dictionaries({}, optional={"id": JSON, "type": JSON, "name": JSON, "other": JSON})
COLUMNISH = st.fixed_dictionaries(
    {},
    optional={
        "action": JSON,
        "actor": st.one_of(_REFS, JSON),
        "resource": st.one_of(_REFS, JSON),
        "targets": st.one_of(st.lists(st.one_of(_REFS, JSON), max_size=3), JSON),
        "tags": st.one_of(st.lists(JSON, max_size=3), JSON),
        "outcome": JSON,
        "message": JSON,
        "status": JSON,
        "metadata": JSON,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(VALID_EVENTS, EVENTISH, ANY_EVENT, COLUMNISH))
def test_columns_and_search_text_agree_with_the_definitions(event: dict[str, Any]) -> None:
    assert outcome(index_columns, event) == outcome(reference_index_columns, event)
    assert outcome(search_text, event) == outcome(reference_search_text, event)


def test_search_text_walks_lists_not_tuples_and_keeps_member_order() -> None:
    event = {
        "action": "a.b_c",
        "actor": {"name": "N", "id": "I"},
        "metadata": {"x": [1, 2.5, True, None, ("t",)], "y": {"z": "deep"}},
    }
    assert search_text(event) == "a.b_c\na b c\nN\nI\n1\n2.5\ndeep"
    assert search_text(event) == reference_search_text(event)
