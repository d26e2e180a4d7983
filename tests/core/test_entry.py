"""Entry bytes (ARCHITECTURE §5, normative): encoding, strict parsing, leaf and chain hashes."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailseal.core import entry as entry_module
from trailseal.core.canonical import canonicalize
from trailseal.core.entry import (
    MAX_ENTRY_BYTES,
    Entry,
    entry_bytes,
    hash_entries,
    parse_entry,
)
from trailseal.core.hashing import ZERO_HASH, chain_hash, leaf_hash
from trailseal.core.schema import format_timestamp
from trailseal.errors import ValidationError

ORIGIN = "trailseal.local/log/" + "a" * 26
RECEIVED = "2024-05-01T12:00:00.000001Z"
EVENT = {
    "action": "invoice.deleted",
    "actor": {"id": "user_123", "name": "Zoë"},
    "id": "evt_1",
    "occurred_at": "2024-05-01T11:59:59.500000Z",
    "metadata": {"amount": 12.5, "list": [1, None]},
}
GOLDEN = (
    '{"event":{"action":"invoice.deleted","actor":{"id":"user_123","name":"Zoë"},'
    '"id":"evt_1","metadata":{"amount":12.5,"list":[1,null]},'
    '"occurred_at":"2024-05-01T11:59:59.500000Z"},"ext":{"pangea":{"hash":"ab"}},'
    '"origin":"trailseal.local/log/aaaaaaaaaaaaaaaaaaaaaaaaaa",'
    '"received_at":"2024-05-01T12:00:00.000001Z","seq":7,"v":1}'
).encode()


def make(**overrides: Any) -> bytes:
    members: dict[str, Any] = {
        "origin": ORIGIN,
        "seq": 7,
        "received_at": RECEIVED,
        "event": EVENT,
        "ext": {"pangea": {"hash": "ab"}},
    }
    members.update(overrides)
    return entry_bytes(**members)


def test_all_is_complete() -> None:
    assert all(hasattr(entry_module, name) for name in entry_module.__all__)
    defined = {
        name
        for name, value in vars(entry_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == entry_module.__name__
    }
    assert defined <= set(entry_module.__all__)


# --- entry_bytes ---------------------------------------------------------------------------


def test_golden_entry_bytes() -> None:
    assert make() == GOLDEN


def test_without_ext() -> None:
    data = make(ext=None)
    assert b'"ext"' not in data
    assert data.startswith(b'{"event":{') and data.endswith(b',"seq":7,"v":1}')


def test_entry_bytes_is_jcs_of_the_envelope() -> None:
    data = make()
    assert data == canonicalize(
        {
            "v": 1,
            "origin": ORIGIN,
            "seq": 7,
            "received_at": RECEIVED,
            "event": EVENT,
            "ext": {"pangea": {"hash": "ab"}},
        }
    )


def test_entry_bytes_accepts_any_mapping() -> None:
    from types import MappingProxyType

    assert make(
        event=MappingProxyType(EVENT), ext=MappingProxyType({"pangea": {"hash": "ab"}})
    ) == (GOLDEN)


def test_entry_size_limit() -> None:
    overhead = len(make(event={"p": ""}, ext=None))
    exact = {"p": "x" * (MAX_ENTRY_BYTES - overhead)}
    assert len(make(event=exact, ext=None)) == MAX_ENTRY_BYTES
    with pytest.raises(ValidationError) as info:
        make(event={"p": "x" * (MAX_ENTRY_BYTES - overhead + 1)}, ext=None)
    assert (info.value.field, info.value.code) == ("", "too_large")


@pytest.mark.parametrize(
    ("overrides", "pointer", "code"),
    [
        ({"origin": ""}, "/origin", "format"),
        ({"origin": "trailseal.local/log/a b"}, "/origin", "format"),
        ({"origin": "a+b/log/x"}, "/origin", "format"),
        ({"origin": "a\tb"}, "/origin", "format"),
        ({"origin": "o" * 513}, "/origin", "format"),
        ({"origin": 5}, "/origin", "format"),
        ({"seq": -1}, "/seq", "out_of_range"),
        ({"seq": 2**53}, "/seq", "out_of_range"),
        ({"seq": True}, "/seq", "type"),
        ({"seq": 1.0}, "/seq", "type"),
        ({"received_at": "2024-05-01T12:00:00Z"}, "/received_at", "format"),
        ({"received_at": "2024-05-01T12:00:00.000000+00:00"}, "/received_at", "format"),
        ({"received_at": "2024-02-30T12:00:00.000000Z"}, "/received_at", "format"),
        ({"received_at": None}, "/received_at", "format"),
        ({"event": ["not", "an", "object"]}, "/event", "type"),
        ({"event": {"x": float("nan")}}, "/event/x", "not_canonicalizable"),
        ({"event": {"x": 2**53}}, "/event/x", "not_canonicalizable"),
        ({"ext": {}}, "/ext", "too_short"),
        ({"ext": []}, "/ext", "type"),
        ({"ext": {"Pangea": {}}}, "/ext", "pattern"),
        ({"ext": {"": {}}}, "/ext", "pattern"),
        ({"ext": {"pangea": 1}}, "/ext/pangea", "type"),
        ({"ext": {"pangea": {"x": float("inf")}}}, "/ext/pangea/x", "not_canonicalizable"),
    ],
)
def test_entry_bytes_rejects(overrides: dict[str, Any], pointer: str, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        make(**overrides)
    assert (info.value.field, info.value.code) == (pointer, code)


# --- Entry and parse_entry ------------------------------------------------------------------


def test_parse_golden() -> None:
    parsed = parse_entry(GOLDEN)
    assert parsed == Entry(
        origin=ORIGIN, seq=7, received_at=RECEIVED, event=EVENT, ext={"pangea": {"hash": "ab"}}
    )
    assert parsed.v == 1
    assert parsed.to_bytes() == GOLDEN
    assert parse_entry(bytearray(GOLDEN)) == parsed
    assert parse_entry(memoryview(GOLDEN)) == parsed


def test_entry_is_frozen_and_validated() -> None:
    parsed = parse_entry(GOLDEN)
    with pytest.raises(AttributeError):
        parsed.seq = 8  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        Entry(v=2, origin=ORIGIN, seq=0, received_at=RECEIVED, event={})
    assert info.value.code == "unsupported_version"
    with pytest.raises(ValidationError):
        Entry(origin=ORIGIN, seq=-5, received_at=RECEIVED, event={})


def _swap(old: bytes, new: bytes) -> bytes:
    assert old in GOLDEN
    return GOLDEN.replace(old, new, 1)


NOT_ENTRIES: list[tuple[object, str, str]] = [
    ("a string", "", "type"),
    (b"", "", "format"),
    (b"\xff", "", "format"),
    (b"{", "", "format"),
    (b"[]", "", "type"),
    (b"null", "", "type"),
    (b'"x"', "", "type"),
    (GOLDEN + b" ", "", "not_canonical"),
    (GOLDEN + b"\n", "", "not_canonical"),
    (b" " + GOLDEN, "", "not_canonical"),
    (_swap(b'"seq":7,', b'"seq": 7,'), "", "not_canonical"),
    (_swap(b'"seq":7', b'"seq":7.0'), "/seq", "type"),
    (_swap(b'"seq":7', b'"seq":7e0'), "/seq", "type"),
    (_swap(b'"seq":7', b'"seq":-1'), "/seq", "out_of_range"),
    (_swap(b'"seq":7', b'"seq":"7"'), "/seq", "type"),
    (_swap(b'"v":1', b'"v":2'), "/v", "unsupported_version"),
    (_swap(b'"v":1', b'"v":1.0'), "/v", "unsupported_version"),
    (_swap(b'"v":1', b'"v":"1"'), "/v", "unsupported_version"),
    (_swap(b'"v":1', b'"v":true'), "/v", "unsupported_version"),
    (_swap(b',"v":1}', b"}"), "/v", "required"),
    (_swap(b',"v":1}', b',"v":1,"w":1}'), "/w", "unknown_field"),
    (_swap(b'"amount":12.5', b'"amount":1.25e1'), "", "not_canonical"),
    (_swap(b'"amount":12.5', b'"amount":12.50'), "", "not_canonical"),
    (_swap(b'"name":"Zo\xc3\xab"', b'"name":"Zo\\u00eb"'), "", "not_canonical"),
    (_swap(b'"id":"evt_1",', b'"id":"evt_1","id":"evt_1",'), "", "not_canonical"),
    (_swap(b'"id":"evt_1",', b'"id":"evt_2","id":"evt_1",'), "", "not_canonical"),
    (
        _swap(
            b'{"action":"invoice.deleted","actor":{"id":"user_123","name":"Zo\xc3\xab"}',
            b'{"actor":{"id":"user_123","name":"Zo\xc3\xab"},"action":"invoice.deleted"',
        ),
        "",
        "not_canonical",
    ),
    (_swap(b'"id":"user_123","name"', b'"name":"x","id":"user_123","name"'), "", "not_canonical"),
    (_swap(b'"ext":{"pangea":{"hash":"ab"}}', b'"ext":{}'), "/ext", "too_short"),
    (_swap(b'"ext":{"pangea":{"hash":"ab"}}', b'"ext":null'), "/ext", "type"),
    (_swap(b'"ext":{"pangea"', b'"ext":{"Pangea"'), "/ext", "pattern"),
    (_swap(b"trailseal.local/log", b"trailseal local/log"), "/origin", "format"),
    (_swap(b"12:00:00.000001Z", b"12:00:00.000001+00:00"), "/received_at", "format"),
    (_swap(b'"event":{', b'"event":[{').replace(b',"ext"', b'],"ext"', 1), "/event", "type"),
    (_swap(b'"amount":12.5', b'"amount":NaN'), "", "format"),
    (_swap(b'"amount":12.5', b'"amount":1e400'), "", "format"),
    (_swap(b'"amount":12.5', b'"amount":9007199254740993'), "", "not_canonical"),
    (_swap(b'"amount":12.5', b'"amount":1' + b"0" * 400), "", "format"),
    (_swap(b'"amount":12.5', b'"amount":1' + b"0" * 30), "", "not_canonical"),
    (_swap(b'"hash":"ab"', b'"hash":"\\ud800"'), "", "format"),
    (GOLDEN.replace(b"evt_1", b"e" * (MAX_ENTRY_BYTES - len(GOLDEN) + 6)), "", "too_large"),
]


def test_integral_doubles_beyond_2_53_read_back_as_doubles() -> None:
    # JCS writes 1e16 as 10000000000000000; a plain JSON reader sees an int beyond the
    # I-JSON range. parse_entry reads it as the double it was, so the bytes re-encode.
    data = make(event={"x": 1e16, "y": -(2.0**60), "z": 1e21}, ext=None)
    assert b'"x":10000000000000000' in data
    parsed = parse_entry(data)
    assert parsed.event == {"x": 1e16, "y": -(2.0**60), "z": 1e21}
    assert parsed.to_bytes() == data


@pytest.mark.parametrize(("data", "pointer", "code"), NOT_ENTRIES)
def test_parse_entry_rejects(data: object, pointer: str, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_entry(data)  # type: ignore[arg-type]
    assert (info.value.field, info.value.code) == (pointer, code)


def test_parse_entry_accepts_max_size() -> None:
    data = GOLDEN.replace(b"evt_1", b"e" * (MAX_ENTRY_BYTES - len(GOLDEN) + 5))
    assert len(data) == MAX_ENTRY_BYTES
    assert parse_entry(data).to_bytes() == data


# --- round trip ---------------------------------------------------------------------------

_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53) + 1, 2**53 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    origin=st.from_regex(r"[a-z0-9.-]{1,30}/log/[a-z2-7]{25}[aeimquy4]", fullmatch=True),
    seq=st.integers(0, 2**53 - 1),
    received=st.datetimes(timezones=st.just(UTC)),
    event=st.dictionaries(st.text(max_size=10), _json, max_size=6),
    ext=st.none()
    | st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
        st.dictionaries(st.text(max_size=6), _json, max_size=3),
        min_size=1,
        max_size=2,
    ),
)
def test_entry_bytes_parse_round_trip(
    origin: str,
    seq: int,
    received: datetime,
    event: dict[str, Any],
    ext: dict[str, dict[str, Any]] | None,
) -> None:
    received_at = format_timestamp(received)
    data = entry_bytes(origin=origin, seq=seq, received_at=received_at, event=event, ext=ext)
    parsed = parse_entry(data)
    assert parsed == Entry(origin=origin, seq=seq, received_at=received_at, event=event, ext=ext)
    assert parsed.to_bytes() == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_validation_error(data: bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_entry(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(GOLDEN) - 1), st.integers(0, 255))
def test_every_byte_change_is_rejected_or_changes_the_entry(index: int, byte: int) -> None:
    mutated = bytearray(GOLDEN)
    mutated[index] = byte
    try:
        parsed = parse_entry(bytes(mutated))
    except ValidationError:
        return
    assert bytes(mutated) == GOLDEN or parsed.to_bytes() == bytes(mutated)


# --- hashes -------------------------------------------------------------------------------


def _reference(entries: list[bytes], prev: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for data in entries:
        leaf = leaf_hash(data)
        prev = chain_hash(prev, leaf)
        out.append((leaf, prev))
    return out


def test_hash_entries_known_values() -> None:
    assert hash_entries([], ZERO_HASH) == []
    [(leaf, chain)] = hash_entries([b""], ZERO_HASH)
    assert leaf.hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert chain == hashlib.sha256(ZERO_HASH + leaf).digest()


@given(st.lists(st.binary(max_size=300), max_size=20), st.binary(min_size=32, max_size=32))
def test_hash_entries_matches_the_definitions(entries: list[bytes], prev: bytes) -> None:
    assert hash_entries(entries, prev) == _reference(entries, prev)


@given(st.lists(st.binary(max_size=50), max_size=10), st.lists(st.binary(max_size=50), max_size=10))
def test_hash_entries_continues_a_chain(first: list[bytes], second: list[bytes]) -> None:
    head = hash_entries(first, ZERO_HASH)
    prev = head[-1][1] if head else ZERO_HASH
    assert head + hash_entries(second, prev) == hash_entries(first + second, ZERO_HASH)


def test_hash_entries_accepts_buffers_and_checks_prev() -> None:
    data = make()
    assert hash_entries([bytearray(data), memoryview(data)], ZERO_HASH) == _reference(
        [data, data], ZERO_HASH
    )
    with pytest.raises(ValueError, match="32 bytes"):
        hash_entries([data], bytes(31))
