"""RFC 8785 canonical JSON: the fast path, the reference and the ``rfc8785`` package agree
byte for byte, and every value outside the data model raises one error naming its field.

Published vectors are in ``test_canonical_vectors.py``.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import json
import math
import re
import sys
import uuid
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailseal.core import canonical
from trailseal.core.canonical import (
    _USE_REFERENCE,
    FAST_PATH_ENABLED,
    MAX_SAFE_INTEGER,
    _float_is_exact,
    _prepare_for_orjson,
    canonicalize,
    canonicalize_reference,
)
from trailseal.errors import CanonicalizationError, ValidationError

ENCODERS = [canonicalize, canonicalize_reference]
encoders = pytest.mark.parametrize("encode", ENCODERS, ids=["fast", "reference"])

EVENT: dict[str, Any] = {
    "v": 1,
    "origin": "audit.example.com/acme",
    "seq": 41,
    "received_at": "2026-11-23T05:29:04.123456Z",
    "event": {
        "id": "01935f2e-7c1a-7b3e-9f00-3c2d1e0f9a8b",
        "action": "invoice.deleted",
        "actor": {"id": "user_8f2k3", "type": "user", "name": "Zoë Müller"},
        "resource": {"type": "invoice", "id": "inv_42", "name": "Rechnung März"},
        "outcome": "success",
        "context": {"ip": "203.0.113.7", "request_id": "req_9b1c"},
        "metadata": {"amount": 1299.5, "count": 3, "dry_run": False, "note": None},
        "tags": ["billing", "gdpr"],
    },
}


def test_public_names() -> None:
    assert sorted(canonical.__all__) == [
        "FAST_PATH_ENABLED",
        "MAX_SAFE_INTEGER",
        "canonicalize",
        "canonicalize_reference",
    ]
    for name in canonical.__all__:
        assert hasattr(canonical, name)


def test_fast_path_probe_passed_for_installed_orjson() -> None:
    # If this fails, a new orjson changed its output: the fast path is off (still correct,
    # but slow) until the module docstring's conditions are re-checked.
    assert FAST_PATH_ENABLED


def test_typical_event_takes_the_fast_path() -> None:
    assert _prepare_for_orjson(EVENT) is EVENT  # nothing to copy, nothing to fall back on
    expected = rfc8785.dumps(EVENT)
    assert canonicalize(EVENT) == canonicalize_reference(EVENT) == expected
    assert orjson.dumps(EVENT, option=orjson.OPT_SORT_KEYS) == expected


# --- values ---------------------------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


class Outcome(enum.StrEnum):
    SUCCESS = "success"


class Text(str):
    pass


class Real(float):
    pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"null"),
        (True, b"true"),
        (False, b"false"),
        (0, b"0"),
        (-7, b"-7"),
        (MAX_SAFE_INTEGER, b"9007199254740991"),
        (-MAX_SAFE_INTEGER, b"-9007199254740991"),
        (1.0, b"1"),
        (-0.0, b"0"),
        (0.0, b"0"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (1e-7, b"1e-7"),
        (1e-6, b"0.000001"),
        (2.0**53, b"9007199254740992"),  # a float: already a double, so accepted
        (5e-324, b"5e-324"),
        (-1.5, b"-1.5"),
        ("", b'""'),
        ("a/b", b'"a/b"'),
        ("\x7f\u2028\u2029", '"\x7f\u2028\u2029"'.encode()),
        ("\x1f\x00\b\t\n\f\r\x0b", b'"\\u001f\\u0000\\b\\t\\n\\f\\r\\u000b"'),
        ('"\\', b'"\\"\\\\"'),
        ("A\u030a", '"A\u030a"'.encode()),  # no normalization
        ([], b"[]"),
        ({}, b"{}"),
        ((1, "x", None), b'[1,"x",null]'),
        ({"b": [{}], "a": {"d": 1, "c": []}}, b'{"a":{"c":[],"d":1},"b":[{}]}'),
        ({"": 1, "\x00": 2, "a": 3}, b'{"":1,"\\u0000":2,"a":3}'),
        # Subclasses are encoded as their base value.
        (Color.RED, b"1"),
        (Outcome.SUCCESS, b'"success"'),
        ({Text("k"): Text("v")}, b'{"k":"v"}'),
        (Real(2.5), b"2.5"),
        (collections.OrderedDict([("b", 1), ("a", 2)]), b'{"a":2,"b":1}'),
    ],
)
@encoders
def test_values(value: object, expected: bytes, encode: Any) -> None:
    assert encode(value) == expected
    assert rfc8785.dumps(value) == expected  # type: ignore[arg-type]


@encoders
def test_keys_sort_by_utf16_code_units_not_code_points(encode: Any) -> None:
    value = {"\ue000": 1, "\U00010000": 2, "\uffff": 3, "z": 4}
    # UTF-16: z (007a) < U+10000 (d800 dc00) < U+E000 < U+FFFF; orjson, by code point,
    # would put U+10000 last.
    expected = '{"z":4,"\U00010000":2,"\ue000":1,"\uffff":3}'.encode()
    assert encode(value) == expected
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) != expected
    assert _prepare_for_orjson(value) is _USE_REFERENCE
    # Non-BMP characters in values, or in keys of another object, do not matter.
    other = {"a": "\U0001f600", "b": {"\ue000": 1}}
    assert _prepare_for_orjson(other) is other


def test_every_character_escapes_as_the_reference_does() -> None:
    """§3.2.2.2 per character: each code point alone, through orjson, the reference and
    rfc8785 (escaping is per character, so one long string checks them all)."""
    text = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    expected = rfc8785.dumps(text)
    assert orjson.dumps(text) == expected
    assert canonicalize_reference(text) == expected
    assert canonicalize(text) == expected
    assert canonicalize({text: text}) == b"{" + expected + b":" + expected + b"}"


SAME, COPY, REFERENCE = "same", "copy", "reference"


@pytest.mark.parametrize(
    ("value", "route"),
    [
        (EVENT, SAME),
        ({"a": 0.5, "b": -123.456, "c": 1e-5}, SAME),
        ({"a": 1.0}, COPY),  # orjson would write 1.0
        ({"a": [1e-6]}, COPY),  # orjson would write 1e-6
        ((1e21,), COPY),  # orjson would write 1e21
        ({"a": 2.0**52 + 0.5}, COPY),  # rounds to the integral double 2**52
        ({"a": [-0.0]}, COPY),
        ({"a": float("nan")}, REFERENCE),  # orjson would write null
        ({"a": [math.inf]}, REFERENCE),
        ({"a": 2**53}, REFERENCE),  # orjson would write it
        ({"a": [2**64]}, REFERENCE),
        ({"\U0001f600": 1}, REFERENCE),
        ({1: 2}, REFERENCE),
        ({"a": Text("x")}, REFERENCE),
        ({Text("a"): 1}, SAME),  # orjson raises KeyMustBeStr, the reference then runs
        ({"a": Color.RED}, REFERENCE),
        ({"a": collections.OrderedDict()}, REFERENCE),
        ({"a": datetime.datetime(2026, 1, 1)}, REFERENCE),  # orjson writes an ISO string
        ({"a": uuid.UUID(int=0)}, REFERENCE),
        ({"a": [1.0, {"b": object()}]}, REFERENCE),  # found after a copy has begun
        ([[[[]]]], SAME),
        ("\ud800", SAME),  # orjson raises on the surrogate
    ],
)
def test_fast_path_routes(value: object, route: str) -> None:
    """What the pre-scan does with a value; whichever way it goes, the result is the
    reference's, and the caller's value is left as it was."""
    before = repr(value)
    prepared = _prepare_for_orjson(value)
    if route == SAME:
        assert prepared is value
    elif route == COPY:
        assert prepared is not value
        assert prepared is not _USE_REFERENCE
    else:
        assert prepared is _USE_REFERENCE
    assert outcome(canonicalize, value) == outcome(canonicalize_reference, value)
    assert repr(value) == before


def test_only_the_path_to_a_spliced_float_is_copied() -> None:
    untouched = {"x": [1, 2]}
    value = {"a": {"b": [0.5, 3.0]}, "c": untouched}
    prepared = _prepare_for_orjson(value)
    assert prepared["c"] is untouched
    assert prepared["a"]["b"][0] == 0.5
    assert isinstance(prepared["a"]["b"][1], orjson.Fragment)
    assert value == {"a": {"b": [0.5, 3.0]}, "c": {"x": [1, 2]}}
    assert canonicalize(value) == b'{"a":{"b":[0.5,3]},"c":{"x":[1,2]}}'


def outcome(encode: Any, value: object) -> bytes | tuple[str, str]:
    """The bytes, or the error's (field, message)."""
    try:
        result: bytes = encode(value)
    except CanonicalizationError as error:
        return error.field, error.message
    return result


def rfc8785_rejects(value: object) -> bool:
    try:
        rfc8785.dumps(value)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError:
        return True
    except ValueError as error:  # it cannot put 10**5000 in its own message
        return "integer string conversion" in str(error)
    return False


def test_float_window_edges() -> None:
    below = math.nextafter(1e-5, 0.0)
    assert _float_is_exact(1e-5)
    assert not _float_is_exact(below)
    assert orjson.dumps(1e-5) == canonicalize_reference(1e-5) == b"0.00001"
    assert orjson.dumps(below) != canonicalize_reference(below)
    top = math.nextafter(2.0**52, 0.0)  # 4503599627370495.5, the largest non-integral double
    assert _float_is_exact(top)
    assert orjson.dumps(top) == canonicalize_reference(top)
    for number in (math.inf, -math.inf, math.nan, 0.0, -0.0, 3.0, 2.0**52, 1e300):
        assert not _float_is_exact(number)


def test_splicing_visits_each_member_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A float deep down is copied up its path without re-scanning the subtrees again at
    every level (which would be exponential in the depth)."""
    value: Any = 1.0
    for level in range(25):  # 50 containers deep, under the scan's cap of 64
        value = {"k": [level, value, "s"], "z": level}
    assert isinstance(_prepare_for_orjson(value), dict)  # spliced, not sent to the reference
    calls = 0
    prepare = canonical._prepare_for_orjson

    def counting(member: Any, *options: Any) -> Any:
        nonlocal calls
        calls += 1
        return prepare(member, *options)

    monkeypatch.setattr(canonical, "_prepare_for_orjson", counting)
    assert canonical.canonicalize(value) == canonicalize_reference(value)
    assert calls <= 3 * 50  # linear: about two calls per container on the path


def test_deep_nesting_beyond_orjson_limit_uses_reference() -> None:
    value: list[Any] = []
    for _ in range(300):  # orjson stops at 255 levels
        value = [value]
    assert canonicalize(value) == b"[" * 301 + b"]" * 301


# --- errors ---------------------------------------------------------------------------------


class Plain(enum.Enum):
    A = "a"


BAD_LEAVES: list[tuple[object, str]] = [
    (math.nan, "not a JSON number"),
    (math.inf, "not a JSON number"),
    (-math.inf, "not a JSON number"),
    (2**53, "outside the I-JSON range"),
    (-(2**53), "outside the I-JSON range"),
    (2**64, "outside the I-JSON range"),
    (10**5000, "a 16610-bit int"),  # too long for str(), so described by its size
    ("ok\ud800", "lone surrogate U+D800 at index 2"),
    ("\udfff", "lone surrogate U+DFFF"),
    (b"bytes", "unsupported type bytes"),
    (bytearray(b"x"), "unsupported type bytearray"),
    ({1, 2}, "unsupported type set"),
    (frozenset(), "unsupported type frozenset"),
    (datetime.date(2026, 1, 1), "unsupported type date"),
    (uuid.UUID(int=1), "unsupported type UUID"),
    (decimal.Decimal("1.5"), "unsupported type Decimal"),
    (Plain.A, "unsupported type Plain"),
    (object(), "unsupported type object"),
    (1 + 2j, "unsupported type complex"),
]


@pytest.mark.parametrize(
    ("leaf", "message"),
    BAD_LEAVES,
    ids=[f"{i}-{type(b[0]).__name__}" for i, b in enumerate(BAD_LEAVES)],
)
@encoders
def test_bad_values_name_their_field(leaf: object, message: str, encode: Any) -> None:
    value = {"a": [1, {"x/y~z": leaf}], "b": "fine"}
    with pytest.raises(CanonicalizationError, match=re.escape(message)) as info:
        encode(value)
    assert info.value.field == "/a/1/x~1y~0z"
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value, ValueError)
    assert info.value.code == "not_canonicalizable"
    assert rfc8785_rejects(value)  # the rfc8785 package draws the same line
    with pytest.raises(CanonicalizationError) as top:
        encode(leaf)
    assert top.value.field == ""


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({1: "x"}, "object key 1 has type int, not str"),
        ({None: "x"}, "object key None has type NoneType"),
        ({(1,): "x"}, "has type tuple"),
        ({b"k": "x"}, "has type bytes"),
        ({"\ud83d": "x"}, r"object key '\\ud83d' contains a lone surrogate U\+D83D"),
    ],
)
@encoders
def test_bad_keys_name_the_object(obj: dict[object, object], message: str, encode: Any) -> None:
    with pytest.raises(CanonicalizationError, match=message) as info:
        encode({"outer": [obj]})
    assert info.value.field == "/outer/0"
    # The message stays printable as UTF-8 even for a lone-surrogate key.
    str(info.value).encode("utf-8")


@encoders
def test_duplicate_names_from_str_subclasses(encode: Any) -> None:
    class Distinct(str):
        __hash__ = object.__hash__

        def __eq__(self, other: object) -> bool:
            return self is other

    with pytest.raises(CanonicalizationError, match="duplicate object key 'a'") as info:
        encode({"m": {Distinct("a"): 1, Distinct("a"): 2}})
    assert info.value.field == "/m"


@encoders
def test_cycles_and_absurd_depth(encode: Any) -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    for value in (cycle, deep, {"a": cycle}):
        with pytest.raises(CanonicalizationError, match="nested too deeply"):
            encode(value)


# --- properties -----------------------------------------------------------------------------

# Keys draw from the whole of Unicode except surrogates, weighted towards the characters
# where UTF-16 and code-point order part ways (U+E000..U+FFFF against non-BMP).
characters = st.characters(exclude_categories=["Cs"])
awkward_characters = st.sampled_from(
    [
        *["\x00", "\x1f", "\x7f", '"', "\\", "/", "~", "é", "€", "\u2028", "\ue000", "\uffff"],
        *["\U00010000", "\U0001f600", "\U0010ffff"],
    ]
)
texts = st.text(st.one_of(characters, awkward_characters), max_size=12)
keys = st.text(st.one_of(st.sampled_from("ab"), awkward_characters, characters), max_size=4)

awkward_floats = st.sampled_from(
    [
        *[0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308],
        *[1e21, 1e-7, 1e-6, 1e-5, 9.999999999999999e20, 1e16, 2.0**52, 2.0**53, 0.1, 1 / 3],
        *[math.nextafter(1e-5, 0.0), math.nextafter(2.0**52, 0.0), 333333333.3333333],
    ]
)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-8, max_value=1e-3),
    st.floats(min_value=2.0**51, max_value=2.0**54),
    st.floats(min_value=1e20, max_value=1e22),
    awkward_floats,
)
ints = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.sampled_from(
        [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER - 1, 2**31, -(2**63)]
    ).filter(lambda n: abs(n) <= MAX_SAFE_INTEGER),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)

# Event-shaped values the fast path must take: BMP keys, finite floats, I-JSON ints.
bmp_keys = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=6)
fast_values = st.recursive(
    st.one_of(st.none(), st.booleans(), ints, texts, floats),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(bmp_keys, children, max_size=6),
    ),
    max_leaves=30,
)

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(json_values)
def test_fast_reference_and_rfc8785_agree(value: Any) -> None:
    expected = rfc8785.dumps(value)
    assert canonicalize_reference(value) == expected
    assert canonicalize(value) == expected
    # Canonical output is valid JSON whose canonical form is itself. Numbers are parsed as
    # doubles, as JCS reads them: the float 2.0**53 is written "9007199254740992", which
    # an int parser would turn into an int outside the I-JSON range.
    assert canonicalize(json.loads(expected, parse_int=float)) == expected


@PROPERTY
@given(fast_values)
def test_fast_path_values_agree(value: Any) -> None:
    before = repr(value)
    prepared = _prepare_for_orjson(value)
    assert prepared is not _USE_REFERENCE
    expected = rfc8785.dumps(value)
    assert orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS) == expected
    assert canonicalize(value) == expected
    assert repr(value) == before  # splicing fragments never touches the caller's value


@settings(max_examples=3000, deadline=None)
@given(floats)
def test_numbers_agree(number: float) -> None:
    expected = rfc8785.dumps(number)
    assert canonicalize_reference(number) == expected
    assert canonicalize(number) == expected
    if _float_is_exact(number):
        assert orjson.dumps(number) == expected
    # Number::toString round-trips: the text parses back to the same double.
    assert float(expected) == number


def pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


bad_leaves = st.sampled_from(BAD_LEAVES).map(lambda pair: pair[0])


@st.composite
def values_with_one_bad_leaf(draw: st.DrawFn) -> tuple[object, str]:
    """A valid value with one bad leaf buried in it, and the JSON pointer to that leaf."""
    value: object = draw(bad_leaves)
    pointer = ""
    for _ in range(draw(st.integers(0, 4))):
        siblings = st.one_of(st.none(), st.booleans(), st.integers(-9, 9), texts)
        if draw(st.booleans()):
            key = draw(keys)
            members: dict[str, object] = draw(st.dictionaries(keys, siblings, max_size=3))
            members[key] = value
            value, pointer = members, f"/{pointer_token(key)}{pointer}"
        else:
            before = draw(st.lists(siblings, max_size=3))
            after = draw(st.lists(siblings, max_size=3))
            value, pointer = [*before, value, *after], f"/{len(before)}{pointer}"
    return value, pointer


@settings(max_examples=300, deadline=None)
@given(values_with_one_bad_leaf())
def test_errors_point_at_the_bad_member(case: tuple[object, str]) -> None:
    value, pointer = case
    for encode in ENCODERS:
        with pytest.raises(CanonicalizationError) as info:
            encode(value)
        assert info.value.field == pointer
    assert rfc8785_rejects(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": {"\ue000": 1, "\U00010000": 2}},  # nested non-BMP key: orjson's order is wrong
        [{"z": 1}, {"\U0001f600": [1.5, 1.0], "\uffff": None}],  # also after a float splice
        {"m": "\U0001f600", "\ue000": {"\uffff": "\U0010ffff"}},  # non-BMP in values only
        {"é": "ü", "ß": ["\u2028"]},  # non-ASCII, all in the BMP
    ],
)
def test_key_order_is_checked_after_the_dump(value: Any) -> None:
    """The fast path no longer looks at keys while scanning; it checks the output for a
    4-byte UTF-8 sequence instead and only then looks at the keys."""
    assert canonicalize(value) == canonicalize_reference(value) == rfc8785.dumps(value)
    assert _prepare_for_orjson(value, check_keys=False) is not _USE_REFERENCE
