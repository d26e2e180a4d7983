"""prepare_incoming's shortcuts (the sent-form flag, one canonicalization, the fast
constructor) give exactly what the definitions give."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.core.test_columns import reference_index_columns, reference_search_text
from tests.core.test_schema import VALID_EVENTS, fixed_id
from trailseal.core.canonical import canonicalize_reference
from trailseal.core.schema import event_problems, format_timestamp, normalize_event
from trailseal.ledger import prepare
from trailseal.ledger.prepare import PreparedEvent, content_hash, prepare_incoming

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
EXT_VALUES = st.one_of(
    st.none(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=4), st.floats(0.5, 1e9)
)


def test_fast_constructor_builds_the_same_frozen_dataclass() -> None:
    values = ("id", {"a": 1}, b"{}", None, b"h", "t", ("a",) * 9, "text")
    fast = prepare._new_prepared(*values)
    assert type(fast) is PreparedEvent
    assert fast == PreparedEvent(*values)
    assert dataclasses.astuple(fast)[2:] == values[2:]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.event_id = "other"  # type: ignore[misc]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    VALID_EVENTS,
    st.booleans(),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=4), EXT_VALUES, max_size=3)),
)
def test_prepare_incoming_matches_the_definitions(
    raw: dict[str, Any], stored_form: bool, ext: dict[str, Any] | None
) -> None:
    assume(event_problems(raw) == [])
    if stored_form:  # as the SDK sends it: id and stored occurred_at present
        raw = normalize_event(raw, now=NOW, new_id=fixed_id)
    prepared = prepare_incoming(raw, now=NOW, new_id=fixed_id, ext=ext)
    stored = normalize_event(raw, now=NOW, new_id=fixed_id)
    assert prepared.event == stored
    assert prepared.event_id == stored["id"]
    assert prepared.occurred_at == stored["occurred_at"]
    assert prepared.canonical == canonicalize_reference(stored)
    assert prepared.ext == (None if ext is None else canonicalize_reference(ext))
    assert prepared.content_hash == content_hash(raw, ext)
    assert prepared.columns == reference_index_columns(stored)
    assert prepared.search_text == reference_search_text(stored)


def test_stored_form_timestamp_is_kept_and_others_normalized() -> None:
    raw = {"action": "a", "actor": {"id": "u"}, "id": "e1", "occurred_at": format_timestamp(NOW)}
    assert prepare_incoming(raw, now=NOW, new_id=fixed_id).event == raw
    raw["occurred_at"] = "2024-05-01T14:00:00.123456+02:00"
    assert prepare_incoming(raw, now=NOW, new_id=fixed_id).occurred_at == format_timestamp(NOW)
