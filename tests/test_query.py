"""trailseal.query: filters, the query language and cursors (pure; no database).

Properties: arbitrary text parses or raises ValidationError; ``format_query`` round-trips
every filter; cursors round-trip and any other text is rejected as ``/cursor``.
"""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trailseal.query as query_module
from trailseal.core.schema import format_timestamp
from trailseal.errors import ValidationError
from trailseal.query import (
    MAX_VALUE_CHARS,
    QUERY_KEYS,
    Cursor,
    EventFilter,
    format_query,
    parse_query,
)


def test_all_is_complete() -> None:
    imported = {"ACTION_PATTERN", "ACTOR_TYPES", "OUTCOMES"}
    defined = {
        name
        for name, value in vars(query_module).items()
        if not name.startswith("_")
        and name not in imported
        and (getattr(value, "__module__", None) == query_module.__name__ or name.isupper())
    }
    assert defined == set(query_module.__all__)


# -- the language, by example ---------------------------------------------------------------


def test_example_from_the_issue() -> None:
    flt = parse_query(
        'actor:alice action:invoice.* outcome:failure "free text" '
        "resource:invoice/inv_1 target:xyz tag:pci tag:sox org:acme "
        "since:2026-01-01 until:2026-01-31 actor_type:agent actor_name:Ali"
    )
    assert flt == EventFilter(
        organization="acme",
        actor_id="alice",
        actor_type="agent",
        actor_name="Ali",
        action_prefix="invoice.",
        resource_type="invoice",
        resource_id="inv_1",
        target_id="xyz",
        outcome="failure",
        since="2026-01-01T00:00:00.000000Z",
        until="2026-01-31T23:59:59.999999Z",
        tags=("pci", "sox"),
        text=("free text",),
    )


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("", EventFilter()),
        ("   \t\n", EventFilter()),
        ("action:invoice.paid", EventFilter(action="invoice.paid")),
        ("action:invoice*", EventFilter(action_prefix="invoice")),
        ("action:*paid*", EventFilter(action_contains="paid")),
        ("ACTOR:Bob", EventFilter(actor_id="Bob")),
        ('actor:"Alice Smith"', EventFilter(actor_id="Alice Smith")),
        ('actor_name:"Alice Smith"', EventFilter(actor_name="Alice Smith")),
        ("resource:inv_1", EventFilter(resource_id="inv_1")),
        ("resource:a/b/c", EventFilter(resource_type="a", resource_id="b/c")),
        ("organization:acme", EventFilter(organization="acme")),
        ("12:30 -x", EventFilter(text=("12:30", "-x"))),
        ('"say \\"hi\\" \\\\o/"', EventFilter(text=('say "hi" \\o/',))),
        ("since:2026-01-01T10:00:00+02:00", EventFilter(since="2026-01-01T08:00:00.000000Z")),
        ("until:2026-01-31", EventFilter(until="2026-01-31T23:59:59.999999Z")),
        ("since:2026-01-01 since:2026-02-01", EventFilter(since="2026-02-01T00:00:00.000000Z")),
        ("until:2026-01-05 until:2026-01-03", EventFilter(until="2026-01-03T23:59:59.999999Z")),
        ("action:inv* action:invoice.*", EventFilter(action_prefix="invoice.")),
        ("actor_name:li actor_name:ALICE", EventFilter(actor_name="ALICE")),
        ("actor:a actor:a foo foo", EventFilter(actor_id="a", text=("foo",))),
        ("tag:b tag:a tag:b", EventFilter(tags=("b", "a"))),
    ],
)
def test_parse_examples(q: str, expected: EventFilter) -> None:
    assert parse_query(q) == expected


@pytest.mark.parametrize(
    ("q", "needle", "code"),
    [
        ("foo:bar", "'foo'", "unknown_key"),
        ("type:user", "actor_type", "unknown_key"),
        ("https://example.com", "'https'", "unknown_key"),
        ("actor:a actor:b", "actor:b", "conflict"),
        ("outcome:oops", "outcome:oops", "enum"),
        ("actor_type:robot", "actor_type:robot", "enum"),
        ("action:*.paid", "action:*.paid", "invalid"),
        ("action:in*v*", "action:in*v*", "invalid"),
        ("action:*", "action:*", "invalid"),
        ("since:2026-02-30", "since:2026-02-30", "format"),
        ("since:2026-01-01T00:00:00", "UTC offset", "format"),
        ("since:2026-03-01 until:2026-02-01", "after", "out_of_range"),
        ('"unterminated', "unterminated", "invalid"),
        ('"a"b', "whitespace after", "invalid"),
        ('foo"bar', "quote inside", "invalid"),
        ('"bad \\n escape"', "escape", "invalid"),
        ("actor:", "needs a value", "too_short"),
        ('actor:""', "needs a value", "too_short"),
        ("!!!", "no letters or digits", "pattern"),
        ("resource:/x", "type/id", "invalid"),
        ("x\x00y", "NUL", "format"),
        ("x" * 9000, "longer", "too_long"),
    ],
)
def test_parse_errors(q: str, needle: str, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_query(q)
    assert caught.value.field == "/q"
    assert caught.value.code == code
    assert needle in caught.value.message


def test_filter_validation_names_the_field() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"outcome": "meh"}, "/outcome"),
        ({"actor_id": ""}, "/actor_id"),
        ({"actor_id": "x" * (MAX_VALUE_CHARS + 1)}, "/actor_id"),
        ({"action": "not an action"}, "/action"),
        ({"action_prefix": "inv*"}, "/action_prefix"),
        ({"target_id": "a b"}, "/target_id"),
        ({"tags": ("ok", "not ok")}, "/tags/1"),
        ({"tags": "pci"}, "/tags"),
        ({"text": ("--",)}, "/text/0"),
        ({"since": "yesterday"}, "/since"),
        ({"until": "2026-13-01"}, "/until"),
        ({"resource_id": "a\ud800"}, "/resource_id"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as caught:
            EventFilter(**kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field, kwargs


def test_merge() -> None:
    params = EventFilter(actor_id="alice", tags=("pci",), since="2026-01-01")
    q = parse_query("action:invoice.* tag:sox until:2026-02-01 receipt")
    merged = params.merge(q)
    assert merged == EventFilter(
        actor_id="alice",
        action_prefix="invoice.",
        tags=("pci", "sox"),
        since="2026-01-01",
        until="2026-02-01",
        text=("receipt",),
    )
    assert q.merge(params).fingerprint() == merged.fingerprint()
    assert EventFilter().merge(params) == params
    with pytest.raises(ValidationError) as caught:
        params.merge(EventFilter(actor_id="bob"), field="/actor_id")
    assert caught.value.field == "/actor_id"
    assert caught.value.code == "conflict"
    with pytest.raises(ValidationError):
        EventFilter(action_prefix="invoice.").merge(EventFilter(action_prefix="user."))
    with pytest.raises(ValidationError):
        EventFilter(since="2026-03-01").merge(EventFilter(until="2026-01-01"))


def test_whitespace_separates_even_inside_what_looks_like_one_value() -> None:
    # Unquoted values end at any whitespace (NBSP included); quote to keep it together.
    assert parse_query("action:invoice paid") == EventFilter(action="invoice", text=("paid",))
    assert parse_query("tag:a\u00a0b") == EventFilter(tags=("a",), text=("b",))


def test_empty() -> None:
    assert EventFilter().empty
    assert parse_query("  ").empty
    assert not EventFilter(text=("x",)).empty


# -- properties -----------------------------------------------------------------------------

_value_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=20,
)
_no_space_text = _value_text.filter(lambda s: not any(c.isspace() for c in s))
_term = _value_text.filter(lambda s: any(c.isalnum() and c != "_" for c in s))
_action = st.from_regex(r"[A-Za-z0-9_-]{1,6}(\.[A-Za-z0-9_-]{1,6}){0,2}", fullmatch=True)
_action_part = st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True)
_timestamp = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC),
).map(format_timestamp)


@st.composite
def filters(draw: st.DrawFn) -> EventFilter:
    maybe = lambda s: draw(st.none() | s)  # noqa: E731
    since, until = maybe(_timestamp), maybe(_timestamp)
    if since and until and since > until:
        since, until = until, since
    return EventFilter(
        organization=maybe(_value_text),
        actor_id=maybe(_value_text),
        actor_type=maybe(st.sampled_from(["user", "agent", "system", "service", "api_key"])),
        actor_name=maybe(_value_text),
        action=maybe(_action),
        action_prefix=maybe(_action_part),
        action_contains=maybe(_action_part),
        resource_type=maybe(_value_text),
        resource_id=maybe(_value_text),
        target_id=maybe(_no_space_text),
        outcome=maybe(st.sampled_from(["success", "failure", "error"])),
        since=since,
        until=until,
        tags=tuple(draw(st.lists(_no_space_text, max_size=4))),
        text=tuple(draw(st.lists(_term, max_size=4))),
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(filters())
def test_format_round_trips(flt: EventFilter) -> None:
    assert parse_query(format_query(flt)) == flt


_query_alphabet = st.sampled_from(
    list('  "\\:*/-._')
    + list("actorgsinulmdpy")
    + [
        "actor:",
        "action:",
        "since:",
        "tag:",
        "until:",
        "2026-01-31",
        "T00:00:00Z",
        "é",
        "\u00a0",
        "\x00",
        "\ud800",
    ]
)


@settings(max_examples=600)
@given(st.text() | st.lists(_query_alphabet, max_size=30).map("".join))
def test_arbitrary_text_parses_or_raises_validation_error(text: str) -> None:
    try:
        flt = parse_query(text)
    except ValidationError as exc:
        field = exc.field
    else:
        field = "/q"
        assert parse_query(format_query(flt)) == flt
    assert field == "/q"


@given(st.integers(0, 2**63 - 1), st.booleans(), filters())
def test_cursor_round_trip(position: int, descending: bool, flt: EventFilter) -> None:
    cursor = Cursor.after(position, flt, descending=descending)
    text = cursor.encode()
    assert set(text) <= set(string.ascii_letters + string.digits + "-_")
    decoded = Cursor.decode(text)
    assert decoded == cursor
    assert decoded.resume(flt, descending=descending) == position
    with pytest.raises(ValidationError) as caught:
        decoded.resume(flt, descending=not descending)
    assert caught.value.field == "/cursor"
    other = flt.merge(EventFilter(text=("zzzunlikely",)))
    if other.fingerprint() != flt.fingerprint():
        with pytest.raises(ValidationError):
            decoded.resume(other, descending=descending)


@given(
    st.text(max_size=80)
    | st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode())
)
def test_garbage_cursors_are_rejected(text: str) -> None:
    try:
        decoded = Cursor.decode(text)
    except ValidationError as exc:
        field = exc.field
    else:  # only a genuine encoding decodes
        field = "/cursor"
        assert decoded.encode() == text
    assert field == "/cursor"


def test_every_single_character_edit_of_a_cursor_is_rejected() -> None:
    text = Cursor.after(123456, EventFilter(actor_id="a"), descending=True).encode()
    alphabet = string.ascii_letters + string.digits + "-_"
    for i in range(len(text)):
        for c in alphabet:
            if c == text[i]:
                continue
            edited = text[:i] + c + text[i + 1 :]
            with pytest.raises(ValidationError):
                Cursor.decode(edited)
    for cut in range(len(text)):
        with pytest.raises(ValidationError):
            Cursor.decode(text[:cut])
    with pytest.raises(ValidationError):
        Cursor.decode(text + "A")
    with pytest.raises(ValidationError):
        Cursor.decode(None)


def test_fingerprint_ignores_tag_and_term_order() -> None:
    a = EventFilter(tags=("a", "b"), text=("x", "y"))
    b = EventFilter(tags=("b", "a"), text=("y", "x"))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != EventFilter(tags=("a",)).fingerprint()


def test_query_keys_documented() -> None:
    doc = query_module.__doc__ or ""
    for key in QUERY_KEYS:
        assert f"``{key}``" in doc, key
