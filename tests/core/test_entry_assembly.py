"""entry_bytes_from_canonical (the sequencer's fast path) equals entry_bytes exactly."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from trailseal.core.canonical import canonicalize
from trailseal.core.entry import entry_bytes, entry_bytes_from_canonical, parse_entry

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
vendors = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
exts = st.none() | st.dictionaries(
    vendors, st.dictionaries(st.text(max_size=6), json_values, max_size=3), min_size=1, max_size=2
)


@given(
    event=events,
    ext=exts,
    seq=st.integers(0, 2**53 - 1),
    origin=st.from_regex(r"[a-z0-9.]{1,20}/log/[a-z2-7]{26}", fullmatch=True),
)
def test_assembly_equals_entry_bytes(
    event: dict[str, Any], ext: dict[str, dict[str, Any]] | None, seq: int, origin: str
) -> None:
    received_at = "2026-11-23T10:00:00.123456Z"
    expected = entry_bytes(origin=origin, seq=seq, received_at=received_at, event=event, ext=ext)
    assembled = entry_bytes_from_canonical(
        origin=origin,
        seq=seq,
        received_at=received_at,
        event=canonicalize(event),
        ext=canonicalize(ext) if ext is not None else None,
    )
    assert assembled == expected
    assert parse_entry(assembled).seq == seq
