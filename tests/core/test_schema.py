"""The native event schema: every rule with its exact pointer and code, batches, the SDK
pre-check, timestamps, normalization and read defaults (ARCHITECTURE §4)."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from trailseal.core import schema
from trailseal.core.canonical import canonicalize
from trailseal.core.schema import (
    CODES,
    DEFAULT_LIMITS,
    EVENT_MEMBERS,
    STORED_TIMESTAMP_PATTERN,
    BatchProblem,
    Limits,
    event_problems,
    format_timestamp,
    normalize_event,
    parse_timestamp,
    quick_check,
    validate_batch,
    validate_event,
    with_read_defaults,
)
from trailseal.errors import ValidationError

PUBLIC_KEY = "A" * 43 + "="  # canonical base64 of 32 zero bytes
SIG = "A" * 86 + "=="  # canonical base64 of 64 zero bytes
STORED_TS = "2024-05-01T12:00:00.000000Z"


def base() -> dict[str, Any]:
    return {"action": "invoice.deleted", "actor": {"id": "user_123"}}


def full() -> dict[str, Any]:
    """One event using every member."""
    return {
        "action": "invoice.deleted",
        "actor": {"id": "user_123", "type": "user", "name": "Alice", "email": "a@example.com"},
        "resource": {"type": "invoice", "id": "inv_456", "name": "Invoice 456"},
        "targets": [{"type": "customer", "id": "cus_1", "name": None}, {"id": "x"}],
        "outcome": "failure",
        "organization_id": "org_789",
        "occurred_at": "2024-05-01T14:00:00.25+02:00",
        "id": "evt_01",
        "message": "Alice deleted invoice 456",
        "source": "billing-api",
        "status": 403,
        "old": {"state": "open"},
        "new": None,
        "context": {
            "ip": "2001:db8::1",
            "user_agent": "curl/8",
            "request_id": "req-1",
            "location": "Berlin, DE",
        },
        "metadata": {"amount": 12.5, "list": [1, None, True], "nested": {"ünï": "✓"}},
        "tags": ["billing", "gdpr"],
    }


def with_member(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``value`` at the slash-separated ``path`` (creating objects on the way); the
    value ``DELETE`` removes the member."""
    parts = path.split("/")
    target = event
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    if value is DELETE:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value
    return event


DELETE = object()


def nested(depth: int) -> dict[str, Any]:
    """An object of exactly ``depth`` levels: {"a": {"a": ... {} }}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_all_is_complete() -> None:
    assert all(hasattr(schema, name) for name in schema.__all__)
    defined = {
        name
        for name, value in vars(schema).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == schema.__name__
    }
    assert defined <= set(schema.__all__)


# --- valid events -------------------------------------------------------------------------

VALID: list[tuple[str, Any]] = [
    ("actor/type", "api_key"),
    ("actor/type", "service"),
    ("actor/name", ""),
    ("actor/name", None),
    ("actor/email", None),
    ("resource", None),
    ("resource", {"id": "r"}),
    ("targets", []),
    ("targets", ({"id": "t"},)),
    ("targets", None),
    ("outcome", "error"),
    ("outcome", None),
    ("organization_id", "Acme-Corp_1@eu"),
    ("occurred_at", "2024-05-01T12:00:00Z"),
    ("occurred_at", "2024-05-01t12:00:00.123456789z"),
    ("occurred_at", "2024-05-01T12:00:00-00:00"),
    ("occurred_at", "0001-01-01T00:00:00Z"),
    ("occurred_at", "9999-12-31T23:59:59.999999Z"),
    ("occurred_at", "2024-02-29T23:59:59+23:59"),
    ("occurred_at", None),
    ("id", "x" * 128),
    ("id", "01890a5d-ac96-774b-bcce-b302099a8057"),
    ("id", None),
    ("message", "m" * 32768),
    ("message", ""),
    ("status", "success"),
    ("status", 0),
    ("status", -(2**53 - 1)),
    ("old", "string"),
    ("old", [1, [2, [3]]]),
    ("new", 2.5),
    ("new", False),
    ("context", {}),
    ("context/ip", "203.0.113.7"),
    ("context/ip", None),
    ("metadata", {}),
    ("metadata", {"big": 2**53 - 1, "small": -(2**53 - 1), "f": 1e300, "z": -0.0}),
    ("metadata", {"f": 9007199254740991.0, "g": -1e21, "h": 2.0**70, "i": 1e-300}),
    ("metadata", {"": "", "a/b~c": {"\U0001f600": None}}),
    ("metadata", nested(16)),
    ("metadata", None),
    ("tags", []),
    ("tags", ["t" * 128] * 64),
    ("tags", None),
    ("action", "a"),
    ("action", "A-b_c.d9.e" + "x" * 246),
    ("actor/id", "i" * 256),
    ("signature", None),
]


@pytest.mark.parametrize(("path", "value"), VALID)
def test_valid_events(path: str, value: Any) -> None:
    event = with_member(base(), path, value)
    validate_event(event)
    assert event_problems(event) == []
    quick_check(event)


def test_valid_full_event() -> None:
    validate_event(full())
    quick_check(full())


def test_valid_signed_event() -> None:
    event = base() | {
        "id": "evt_1",
        "occurred_at": STORED_TS,
        "signature": {"alg": "ed25519", "public_key": PUBLIC_KEY, "sig": SIG},
    }
    validate_event(event)


def _sig(**members: str) -> dict[str, str]:
    return {"alg": "ed25519", "public_key": PUBLIC_KEY, "sig": SIG} | members


# --- invalid events: one row per rule ------------------------------------------------------

INVALID: list[tuple[str, Any, str, str]] = [
    # (path, value, pointer, code)
    ("action", DELETE, "/action", "required"),
    ("action", None, "/action", "required"),
    ("action", 1, "/action", "type"),
    ("action", "", "/action", "too_short"),
    ("action", "a" * 257, "/action", "too_long"),
    ("action", "invoice deleted", "/action", "pattern"),
    ("action", "invoice..deleted", "/action", "pattern"),
    ("action", ".invoice", "/action", "pattern"),
    ("action", "invoice.", "/action", "pattern"),
    ("action", "invoice/deleted", "/action", "pattern"),
    ("action", "ünï.x", "/action", "pattern"),
    ("actor", DELETE, "/actor", "required"),
    ("actor", None, "/actor", "required"),
    ("actor", "alice", "/actor", "type"),
    ("actor", {}, "/actor/id", "required"),
    ("actor/id", None, "/actor/id", "required"),
    ("actor/id", "", "/actor/id", "too_short"),
    ("actor/id", 5, "/actor/id", "type"),
    ("actor/id", "i" * 257, "/actor/id", "too_long"),
    ("actor/type", "robot", "/actor/type", "enum"),
    ("actor/type", "User", "/actor/type", "enum"),
    ("actor/type", 1, "/actor/type", "type"),
    ("actor/name", "n" * 257, "/actor/name", "too_long"),
    ("actor/email", "e" * 321, "/actor/email", "too_long"),
    ("actor/nmae", "Alice", "/actor/nmae", "unknown_field"),
    ("resource", [], "/resource", "type"),
    ("resource", {"type": "invoice"}, "/resource/id", "required"),
    ("resource", {"id": "r", "type": ""}, "/resource/type", "too_short"),
    ("resource", {"id": "r", "type": "t" * 129}, "/resource/type", "too_long"),
    ("resource", {"id": "r", "name": 3}, "/resource/name", "type"),
    ("resource", {"id": "r", "extra": 1}, "/resource/extra", "unknown_field"),
    ("targets", {}, "/targets", "type"),
    ("targets", [None], "/targets/0", "type"),
    ("targets", ["t"], "/targets/0", "type"),
    ("targets", [{"id": "a"}, {"id": "b", "type": 5}], "/targets/1/type", "type"),
    ("targets", [{"type": "x"}], "/targets/0/id", "required"),
    ("targets", [{"id": "a", "kind": "x"}], "/targets/0/kind", "unknown_field"),
    ("targets", [{"id": "a"}] * 101, "/targets", "too_many"),
    ("outcome", "ok", "/outcome", "enum"),
    ("outcome", True, "/outcome", "type"),
    ("organization_id", "", "/organization_id", "too_short"),
    ("organization_id", "a/b", "/organization_id", "pattern"),
    ("organization_id", "a b", "/organization_id", "pattern"),
    ("organization_id", "a?b", "/organization_id", "pattern"),
    ("organization_id", "100%", "/organization_id", "pattern"),
    ("organization_id", "o" * 257, "/organization_id", "too_long"),
    ("organization_id", 7, "/organization_id", "type"),
    ("occurred_at", 1714564800, "/occurred_at", "type"),
    ("occurred_at", "2024-05-01T12:00:00", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01 12:00:00Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01", "/occurred_at", "format"),
    ("occurred_at", "20240501T120000Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00:00+0200", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00:00.Z", "/occurred_at", "format"),
    ("occurred_at", "2024-02-30T12:00:00Z", "/occurred_at", "format"),
    ("occurred_at", "2023-02-29T12:00:00Z", "/occurred_at", "format"),
    ("occurred_at", "2024-13-01T12:00:00Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T24:00:00Z", "/occurred_at", "format"),
    ("occurred_at", "2016-12-31T23:59:60Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00:00.1234567891Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00:00+24:00", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00:00+02:60", "/occurred_at", "format"),
    ("occurred_at", "２０２４-05-01T12:00:00Z", "/occurred_at", "format"),
    ("occurred_at", "2024-05-01T12:00:00Z ", "/occurred_at", "format"),
    ("occurred_at", "0000-01-01T00:00:00Z", "/occurred_at", "out_of_range"),
    ("occurred_at", "0001-01-01T00:00:00+01:00", "/occurred_at", "out_of_range"),
    ("occurred_at", "9999-12-31T23:59:59-01:00", "/occurred_at", "out_of_range"),
    ("id", "", "/id", "too_short"),
    ("id", "has space", "/id", "pattern"),
    ("id", "x" * 129, "/id", "too_long"),
    ("id", 5, "/id", "type"),
    ("message", "m" * 32769, "/message", "too_long"),
    ("message", ["m"], "/message", "type"),
    ("source", "s" * 257, "/source", "too_long"),
    ("status", True, "/status", "type"),
    ("status", 1.5, "/status", "type"),
    ("status", 2**53, "/status", "out_of_range"),
    ("status", "s" * 257, "/status", "too_long"),
    ("old", math.nan, "/old", "not_finite"),
    ("new", {"a": [1, math.inf]}, "/new/a/1", "not_finite"),
    ("new", {"a": [1, -math.inf]}, "/new/a/1", "not_finite"),
    ("old", nested(17), "/old" + "/a" * 16, "too_deep"),
    ("context", "ctx", "/context", "type"),
    ("context", {"ip": "999.1.1.1"}, "/context/ip", "format"),
    ("context", {"ip": "1.2.3.4:80"}, "/context/ip", "format"),
    ("context", {"ip": "1.2.3.4, 5.6.7.8"}, "/context/ip", "format"),
    ("context", {"ip": "01.2.3.4"}, "/context/ip", "format"),
    ("context", {"ip": 16909060}, "/context/ip", "type"),
    ("context", {"user_agent": "u" * 1025}, "/context/user_agent", "too_long"),
    ("context", {"request_id": ""}, "/context/request_id", "too_short"),
    ("context", {"location": 5}, "/context/location", "type"),
    ("context", {"session_id": "s"}, "/context/session_id", "unknown_field"),
    ("metadata", [], "/metadata", "type"),
    ("metadata", "x", "/metadata", "type"),
    ("metadata", nested(17), "/metadata" + "/a" * 16, "too_deep"),
    ("metadata", {"l": [[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]}, "/metadata/l" + "/0" * 15, "too_deep"),
    ("metadata", {"a": {"b": 2**53}}, "/metadata/a/b", "out_of_range"),
    ("metadata", {"a": -(2**53)}, "/metadata/a", "out_of_range"),
    ("metadata", {"a": 2**70}, "/metadata/a", "out_of_range"),
    ("metadata", {"a": 1e16}, "/metadata/a", "out_of_range"),
    ("metadata", {"a": [-(2.0**53)]}, "/metadata/a/0", "out_of_range"),
    ("new", 9.99e20, "/new", "out_of_range"),
    ("metadata", {"a/b": {"c~d": math.nan}}, "/metadata/a~1b/c~0d", "not_finite"),
    ("metadata", {"a": [0, 1, {"b": math.nan}]}, "/metadata/a/2/b", "not_finite"),
    ("metadata", {1: "x"}, "/metadata/1", "type"),
    ("metadata", {"a": b"bytes"}, "/metadata/a", "type"),
    ("metadata", {"a": {1, 2}}, "/metadata/a", "type"),
    ("metadata", {"a": datetime(2024, 1, 1, tzinfo=UTC)}, "/metadata/a", "type"),
    ("metadata", {"\ud800x": 1}, "/metadata/\ud800x", "format"),
    ("metadata", {"a": "ok\udfff"}, "/metadata/a", "format"),
    ("message", "lone \ud83d surrogate", "/message", "format"),
    ("actor/name", "\udc00", "/actor/name", "format"),
    ("tags", "a", "/tags", "type"),
    ("tags", [""], "/tags/0", "too_short"),
    ("tags", ["t" * 129], "/tags/0", "too_long"),
    ("tags", ["t"] * 65, "/tags", "too_many"),
    ("tags", ["a", 1], "/tags/1", "type"),
    ("tags", [None], "/tags/0", "type"),
    ("signature", "sig", "/signature", "type"),
    ("signature", {"alg": "rsa", "public_key": PUBLIC_KEY, "sig": SIG}, "/signature/alg", "enum"),
    ("signature", {"alg": "ed25519", "public_key": PUBLIC_KEY}, "/signature/sig", "required"),
    ("signature", _sig(public_key="AAAA"), "/signature/public_key", "format"),
    ("signature", _sig(public_key=PUBLIC_KEY[:-2] + "B="), "/signature/public_key", "format"),
    ("signature", _sig(sig=SIG.replace("A", "-", 1)), "/signature/sig", "format"),
    ("signature", _sig(kid="k"), "/signature/kid", "unknown_field"),
    ("actr", {"id": "u"}, "/actr", "unknown_field"),
    ("ext", {}, "/ext", "unknown_field"),
    ("timestamp", STORED_TS, "/timestamp", "unknown_field"),
    ("a~b", 1, "/a~0b", "unknown_field"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "pointer", "code"), INVALID)
def test_invalid_events(path: str, value: Any, pointer: str, code: str) -> None:
    event = with_member(base(), path, value)
    with pytest.raises(ValidationError) as info:
        validate_event(event)
    assert (info.value.field, info.value.code) == (pointer, code)
    assert info.value.code in CODES
    assert info.value.message  # says what is wrong and what is expected
    assert [(p.field, p.code) for p in event_problems(event)] == [(pointer, code)]


def test_unknown_member_message_suggests_the_right_name() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(base() | {"actr": 1})
    assert "did you mean 'actor'?" in info.value.message
    assert "organization_id" in info.value.message  # lists what is allowed


def test_non_string_top_level_key() -> None:
    event: dict[Any, Any] = base()
    event[1] = "x"
    with pytest.raises(ValidationError) as info:
        validate_event(event)
    assert (info.value.field, info.value.code) == ("/1", "unknown_field")


@pytest.mark.parametrize("raw", [None, [], "event", 1, ("action",)])
def test_event_must_be_an_object(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(raw)
    assert (info.value.field, info.value.code) == ("", "type")


def test_messages_name_expectations() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(base() | {"outcome": "ok"})
    assert "success, failure, error" in info.value.message
    with pytest.raises(ValidationError) as info:
        validate_event(base() | {"occurred_at": "2024-05-01T12:00:00"})
    assert "offset" in info.value.message
    with pytest.raises(ValidationError) as info:
        validate_event(base() | {"occurred_at": "2016-12-31T23:59:60Z"})
    assert "leap second" in info.value.message


def test_every_problem_is_listed() -> None:
    event = {"actr": 1, "outcome": "ok", "tags": [""], "metadata": []}
    found = [(p.field, p.code) for p in event_problems(event)]
    assert found == [
        ("/action", "required"),
        ("/actor", "required"),
        ("/actr", "unknown_field"),
        ("/outcome", "enum"),
        ("/tags/0", "too_short"),
        ("/metadata", "type"),
    ]


# --- signed events ------------------------------------------------------------------------


def _signed(**members: Any) -> dict[str, Any]:
    event = base() | {"signature": {"alg": "ed25519", "public_key": PUBLIC_KEY, "sig": SIG}}
    event.update(members)
    return {k: v for k, v in event.items() if v is not DELETE}


@pytest.mark.parametrize(
    ("members", "pointer", "code"),
    [
        ({"occurred_at": STORED_TS}, "/id", "required"),
        ({"id": "e", "occurred_at": None}, "/occurred_at", "required"),
        ({"id": "e", "occurred_at": "2024-05-01T12:00:00Z"}, "/occurred_at", "format"),
        ({"id": "e", "occurred_at": "2024-05-01T14:00:00.000000+02:00"}, "/occurred_at", "format"),
    ],
)
def test_signed_events_must_be_in_stored_form(
    members: dict[str, Any], pointer: str, code: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(_signed(**members))
    assert (info.value.field, info.value.code) == (pointer, code)


def test_signed_event_bad_timestamp_reported_once() -> None:
    problems = event_problems(_signed(id="e", occurred_at="nope"))
    assert [(p.field, p.code) for p in problems] == [("/occurred_at", "format")]


# --- size ---------------------------------------------------------------------------------


def _padded(size: int) -> dict[str, Any]:
    """An event of exactly ``size`` canonical bytes."""
    event = base() | {"metadata": {"pad": ""}}
    event["metadata"]["pad"] = "x" * (size - len(canonicalize(event)))
    assert len(canonicalize(event)) == size
    return event


def test_event_size_limit_is_exact() -> None:
    validate_event(_padded(61440))
    with pytest.raises(ValidationError) as info:
        validate_event(_padded(61441))
    assert (info.value.field, info.value.code) == ("", "too_large")
    assert "61441" in info.value.message


def test_size_limit_counts_canonical_numbers() -> None:
    # orjson writes 1e-6 in 4 bytes, RFC 8785 as 0.000001 in 8: the canonical size decides.
    floats = [1e-6] * 5000
    event = base() | {"new": floats}
    canonical = len(canonicalize(event))
    limits = Limits(max_event_bytes=canonical)
    validate_event(event, limits)
    with pytest.raises(ValidationError) as info:
        validate_event(event, Limits(max_event_bytes=canonical - 1))
    assert info.value.code == "too_large"
    assert canonical > 30000 > len(orjson.dumps(event))  # orjson's length would pass
    with pytest.raises(ValidationError):
        validate_event(event, Limits(max_event_bytes=30000))


def test_limits_are_configurable_and_checked() -> None:
    small = Limits(max_action_length=5, max_tags=1, max_metadata_depth=2)
    with pytest.raises(ValidationError) as info:
        validate_event(base(), small)
    assert info.value.code == "too_long"
    with pytest.raises(ValidationError) as info:
        validate_event(base() | {"action": "a", "metadata": {"a": {"b": {}}}}, small)
    assert (info.value.field, info.value.code) == ("/metadata/a/b", "too_deep")
    with pytest.raises(ValueError, match="max_event_bytes"):
        Limits(max_event_bytes=61441)
    with pytest.raises(ValueError, match="positive"):
        Limits(max_tags=0)
    with pytest.raises(ValueError, match="depth"):
        Limits(max_metadata_depth=65)


# --- batches ------------------------------------------------------------------------------


def test_batch_lists_every_bad_event() -> None:
    events = [base(), {"actor": {"id": "u"}}, base(), base() | {"tags": [1], "outcome": "x"}]
    problems = validate_batch(events)
    assert [(p.index, p.field, p.code) for p in problems] == [
        (1, "/action", "required"),
        (3, "/tags/0", "type"),
        (3, "/outcome", "enum"),
    ]
    assert problems[1].pointer == "/3/tags/0"
    assert problems[0].to_dict() == {
        "index": 1,
        "field": "/action",
        "code": "required",
        "message": problems[0].message,
    }


def test_valid_and_empty_batches() -> None:
    assert validate_batch([base(), full()]) == []
    assert validate_batch(()) == []


@pytest.mark.parametrize("raw", [None, {}, "events", base()])
def test_batch_must_be_an_array(raw: object) -> None:
    problems = validate_batch(raw)
    assert [(p.index, p.field, p.code) for p in problems] == [(None, "", "type")]
    assert problems[0].pointer == ""


def test_batch_count_limit_rejects_without_validating() -> None:
    assert validate_batch([base()] * 1000) == []
    problems = validate_batch([None] * 1001)  # the events themselves are not looked at
    assert [(p.index, p.code) for p in problems] == [(None, "too_large")]


def test_batch_byte_limit() -> None:
    event = _padded(1000)
    assert validate_batch([event] * 5, Limits(max_batch_bytes=5000)) == []
    problems = validate_batch([event] * 5, Limits(max_batch_bytes=4999))
    assert [(p.index, p.code) for p in problems] == [(None, "too_large")]
    assert "5000" in problems[0].message


def test_batch_byte_limit_uses_exact_sizes_when_the_bound_is_over() -> None:
    # 0.5 is 3 bytes in both encoders, but the bound adds 22 per float.
    event = base() | {"new": [0.5] * 100}
    size = len(canonicalize(event))
    limits = Limits(max_batch_bytes=size * 3)
    assert validate_batch([event] * 3, limits) == []
    problems = validate_batch([event] * 3, Limits(max_batch_bytes=size * 3 - 1))
    assert [(p.index, p.code) for p in problems] == [(None, "too_large")]
    assert str(size * 3) in problems[0].message


def test_batch_problem_is_frozen() -> None:
    problem = BatchProblem(0, "/a", "type", "m")
    with pytest.raises(AttributeError):
        problem.code = "x"  # type: ignore[misc]


# --- quick_check --------------------------------------------------------------------------

QUICK_INVALID: list[tuple[Any, str, str]] = [
    ([], "", "type"),
    ({"actor": {"id": "u"}}, "/action", "required"),
    (base() | {"action": ""}, "/action", "required"),
    (base() | {"action": 5}, "/action", "type"),
    (base() | {"action": "a" * 257}, "/action", "too_long"),
    (base() | {"action": "not dotted!"}, "/action", "pattern"),
    ({"action": "a.b"}, "/actor", "required"),
    (base() | {"actor": "alice"}, "/actor", "type"),
    (base() | {"actor": {}}, "/actor/id", "required"),
    (base() | {"actor": {"id": 5}}, "/actor/id", "type"),
    (base() | {"actor": {"id": "i" * 257}}, "/actor/id", "too_long"),
    (base() | {"actr": 1}, "/actr", "unknown_field"),
    (base() | {"metadata": []}, "/metadata", "type"),
    (base() | {"tags": "a"}, "/tags", "type"),
    (base() | {"occurred_at": datetime(2024, 1, 1, tzinfo=UTC)}, "/occurred_at", "type"),
    (base() | {"id": "has space"}, "/id", "pattern"),
    (base() | {"metadata": {"when": datetime(2024, 1, 1, tzinfo=UTC)}}, "", "type"),
    (base() | {"metadata": {"s": {1, 2}}}, "", "type"),
    (base() | {"metadata": {"big": "x" * 61440}}, "", "too_large"),
]


@pytest.mark.parametrize(("event", "pointer", "code"), QUICK_INVALID)
def test_quick_check_rejects(event: Any, pointer: str, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        quick_check(event)
    assert (info.value.field, info.value.code) == (pointer, code)
    # Whatever quick_check refuses, the full validation refuses too.
    with pytest.raises(ValidationError):
        validate_event(event)


# --- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000000Z"),
        ("2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00.500000Z"),
        ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123456Z"),
        ("2024-05-01T12:00:00.999999999Z", "2024-05-01T12:00:00.999999Z"),
        ("2024-05-01t12:00:00z", "2024-05-01T12:00:00.000000Z"),
        ("2024-05-01T14:00:00.25+02:00", "2024-05-01T12:00:00.250000Z"),
        ("2024-05-01T00:30:00+00:45", "2024-04-30T23:45:00.000000Z"),
        ("2024-12-31T23:00:00-01:00", "2025-01-01T00:00:00.000000Z"),
        ("2024-05-01T12:00:00-00:00", "2024-05-01T12:00:00.000000Z"),
        ("2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00.000000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00.000000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T22:59:59-01:00", "9999-12-31T23:59:59.000000Z"),
    ],
)
def test_timestamps_normalize(text: str, stored: str) -> None:
    parsed = parse_timestamp(text, field="/t")
    assert parsed.tzinfo is UTC
    assert format_timestamp(parsed) == stored
    assert STORED_TIMESTAMP_PATTERN.fullmatch(stored)
    assert parse_timestamp(stored, field="/t") == parsed


def test_parse_timestamp_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        parse_timestamp("yesterday", field="/occurred_at")
    assert (info.value.field, info.value.code) == ("/occurred_at", "format")
    with pytest.raises(ValidationError) as info:
        parse_timestamp(12, field="/x")
    assert (info.value.field, info.value.code) == ("/x", "type")


def test_format_timestamp() -> None:
    berlin = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2024, 5, 1, 14, 0, tzinfo=berlin)) == (
        "2024-05-01T12:00:00.000000Z"
    )
    assert format_timestamp(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError, match="aware"):
        format_timestamp(datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="0001-9999"):
        format_timestamp(datetime(1, 1, 1, tzinfo=berlin))


_DIGITS = st.integers


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> str:
    """Texts the strict grammar accepts (dates possibly impossible)."""
    date = f"{draw(_DIGITS(0, 9999)):04d}-{draw(_DIGITS(0, 13)):02d}-{draw(_DIGITS(0, 32)):02d}"
    time = f"{draw(_DIGITS(0, 24)):02d}:{draw(_DIGITS(0, 60)):02d}:{draw(_DIGITS(0, 60)):02d}"
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,11}", fullmatch=True)))
    zone = draw(
        st.one_of(
            st.sampled_from(["Z", "z", "+00:00", "-00:00"]),
            st.builds(
                lambda s, h, m: f"{s}{h:02d}:{m:02d}",
                st.sampled_from("+-"),
                _DIGITS(0, 25),
                _DIGITS(0, 61),
            ),
        )
    )
    sep = draw(st.sampled_from("Tt"))
    return f"{date}{sep}{time}{fraction}{zone}"


@settings(max_examples=200, deadline=None)
@given(rfc3339_texts())
def test_fast_and_slow_timestamp_paths_agree(text: str) -> None:
    match = schema._RFC3339.fullmatch(text)
    assert match is not None
    try:
        slow: object = schema._parse_timestamp_slow(text, match, "/t")
    except ValidationError as exc:
        slow = (exc.code, exc.field)
    try:
        fast: object = parse_timestamp(text, field="/t")
    except ValidationError as exc:
        fast = (exc.code, exc.field)
    assert fast == slow
    if isinstance(fast, datetime):
        assert fast.tzinfo is UTC
        assert 1 <= fast.year <= 9999


# --- normalization ------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def fixed_id() -> str:
    return "01890a5d-ac96-774b-bcce-b302099a8057"


def test_normalize_fills_id_and_occurred_at_only() -> None:
    event = base()
    stored = normalize_event(event, now=NOW, new_id=fixed_id)
    assert stored == base() | {"id": fixed_id(), "occurred_at": "2024-05-01T12:00:00.123456Z"}
    assert "outcome" not in stored
    assert "type" not in stored["actor"]
    assert event == base()  # not mutated


def test_normalize_keeps_what_was_sent() -> None:
    event = full() | {"outcome": None, "resource": None, "id": "mine"}
    before = copy.deepcopy(event)
    stored = normalize_event(event, now=NOW, new_id=lambda: pytest.fail("id was given"))
    assert event == before
    assert stored["occurred_at"] == "2024-05-01T12:00:00.250000Z"
    assert stored["id"] == "mine"
    assert stored["outcome"] is None
    assert stored["resource"] is None
    assert {k: v for k, v in stored.items() if k != "occurred_at"} == {
        k: v for k, v in before.items() if k != "occurred_at"
    }


def test_normalize_treats_null_id_and_time_as_absent() -> None:
    stored = normalize_event(base() | {"id": None, "occurred_at": None}, now=NOW, new_id=fixed_id)
    assert stored["id"] == fixed_id()
    assert stored["occurred_at"] == "2024-05-01T12:00:00.123456Z"


def test_normalize_converts_now_to_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert normalize_event(base(), now=local, new_id=fixed_id)["occurred_at"] == (
        "2024-05-01T12:00:00.123456Z"
    )


def test_normalize_checks_its_callers() -> None:
    with pytest.raises(ValueError, match="not a valid event id"):
        normalize_event(base(), now=NOW, new_id=lambda: "bad id")
    with pytest.raises(ValueError, match="aware"):
        normalize_event(base(), now=datetime(2024, 5, 1), new_id=fixed_id)


def test_with_read_defaults() -> None:
    stored = normalize_event(base(), now=NOW, new_id=fixed_id)
    read = with_read_defaults(stored)
    assert read["actor"] == {"id": "user_123", "type": "user"}
    assert read["outcome"] == "success"
    assert "type" not in stored["actor"]  # the stored form is untouched
    explicit = stored | {"actor": {"id": "b", "type": "agent"}, "outcome": "error"}
    assert with_read_defaults(explicit) == explicit
    nulls = stored | {"actor": {"id": "b", "type": None}, "outcome": None}
    assert with_read_defaults(nulls)["actor"]["type"] == "user"
    assert with_read_defaults(nulls)["outcome"] == "success"


# --- properties ---------------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(codec=None, categories=None, exclude_characters=""), max_size=12
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)
ANY_EVENT = st.dictionaries(st.one_of(st.sampled_from(EVENT_MEMBERS), _TEXT), JSON, max_size=8)

# Mostly-valid events: each member drawn from values near the rules' edges.
_ID = st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True)
_MEMBER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "action": st.one_of(st.from_regex(r"[a-z]{1,8}(\.[a-z_-]{1,8}){0,2}", fullmatch=True), JSON),
    "actor": st.one_of(
        st.fixed_dictionaries(
            {"id": _ID},
            optional={
                "type": st.sampled_from(["user", "agent", "robot", None]),
                "name": st.one_of(st.none(), _TEXT),
                "email": _TEXT,
            },
        ),
        JSON,
    ),
    "resource": st.fixed_dictionaries({"id": _ID}, optional={"type": _ID, "name": _TEXT}),
    "targets": st.lists(st.fixed_dictionaries({"id": _ID}, optional={"type": _ID}), max_size=3),
    "outcome": st.sampled_from(["success", "failure", "error", "oops", None]),
    "organization_id": st.one_of(_ID, _TEXT),
    "occurred_at": st.one_of(
        rfc3339_texts(),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        _TEXT,
        st.none(),
    ),
    "id": st.one_of(_ID, _TEXT, st.none()),
    "message": _TEXT,
    "status": st.one_of(_TEXT, st.integers(-(2**54), 2**54)),
    "old": JSON,
    "new": JSON,
    "context": st.fixed_dictionaries(
        {}, optional={"ip": st.ip_addresses().map(str), "user_agent": _TEXT, "location": _TEXT}
    ),
    "metadata": st.dictionaries(_TEXT, JSON, max_size=4),
    "tags": st.lists(_TEXT, max_size=4),
}
_VALID_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "action": st.from_regex(r"[a-z]{1,8}(\.[a-z_-]{1,8}){0,2}", fullmatch=True),
    "actor": st.fixed_dictionaries(
        {"id": _ID},
        optional={"type": st.sampled_from(["user", "agent", None]), "name": st.text(max_size=8)},
    ),
    "resource": _MEMBER_VALUES["resource"],
    "outcome": st.sampled_from(["success", "failure", "error", None]),
    "occurred_at": st.one_of(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]))
        .filter(lambda d: 1 < d.year < 9999)
        .map(lambda d: d.isoformat()),
        st.none(),
    ),
    "id": st.one_of(_ID, st.none()),
    "metadata": st.dictionaries(
        st.text(max_size=6),
        st.one_of(st.none(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=6)),
        max_size=4,
    ),
    "tags": st.lists(st.text(min_size=1, max_size=8), max_size=3),
}
VALID_EVENTS = st.fixed_dictionaries(
    {"action": _VALID_VALUES["action"], "actor": _VALID_VALUES["actor"]},
    optional={k: v for k, v in _VALID_VALUES.items() if k not in ("action", "actor")},
)
EVENTISH = st.fixed_dictionaries(
    {"action": _MEMBER_VALUES["action"], "actor": _MEMBER_VALUES["actor"]},
    optional={k: v for k, v in _MEMBER_VALUES.items() if k not in ("action", "actor")},
)


def _check_contract(raw: Any) -> bool:
    """Validation raises ValidationError or nothing; when it passes, the event is
    canonicalizable within the limit and passes quick_check. Returns validity."""
    problem: ValidationError | None = None
    try:
        validate_event(raw)
    except ValidationError as exc:
        problem = exc
    if problem is not None:
        assert problem.code in CODES or problem.code == "not_canonicalizable"
        assert problem.field == "" or problem.field.startswith("/")
        valid = False
    else:
        data = canonicalize(raw)
        assert len(data) <= DEFAULT_LIMITS.max_event_bytes
        # The size used for limits bounds the canonical size, and equals it when exact.
        _, bound, exact = schema._problems(raw, DEFAULT_LIMITS)
        assert bound == len(data) if exact else bound >= len(data)
        assert canonicalize(orjson.loads(data)) == data  # stored bytes re-read and re-encode
        quick_check(raw)
        valid = True
    assert (event_problems(raw) == []) is valid
    try:
        quick_check(raw)
    except ValidationError:
        assert not valid
    assert validate_batch([raw]) == [] if valid else validate_batch([raw])
    hypothesis_event(f"valid={valid}")
    return valid


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_EVENT)
def test_arbitrary_objects_validate_or_raise_validation_error(raw: dict[str, Any]) -> None:
    _check_contract(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(EVENTISH, VALID_EVENTS, JSON))
def test_eventish_values_validate_or_raise_validation_error(raw: Any) -> None:
    _check_contract(raw)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(VALID_EVENTS, EVENTISH), st.datetimes(timezones=st.just(UTC)))
def test_normalize_is_idempotent(raw: dict[str, Any], now: datetime) -> None:
    assume(event_problems(raw) == [])
    before = copy.deepcopy(raw)
    once = normalize_event(raw, now=now, new_id=fixed_id)
    assert raw == before  # input not mutated
    twice = normalize_event(once, now=now, new_id=fixed_id)
    assert twice == once
    validate_event(once)  # the stored form is itself a valid event
    assert STORED_TIMESTAMP_PATTERN.fullmatch(once["occurred_at"])
    assert set(once) - set(raw) <= {"id", "occurred_at"}


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.text(alphabet="0123456789.", max_size=16),
        st.lists(st.integers(0, 300).map(str), min_size=4, max_size=4).map(".".join),
    )
)
def test_ipv4_fast_path_agrees_with_ipaddress(text: str) -> None:
    import ipaddress

    try:
        ipaddress.IPv4Address(text)
        expected = True
    except ValueError:
        expected = False
    assert (schema._IPV4.fullmatch(text) is not None) is expected


# --- the fast path agrees with the rule table ------------------------------------------------

# Limits small enough that drawn strings and arrays cross them often.
TIGHT = Limits(
    max_action_length=12,
    max_id_length=6,
    max_type_length=4,
    max_name_length=5,
    max_email_length=6,
    max_message_length=8,
    max_user_agent_length=5,
    max_targets=2,
    max_tags=2,
    max_tag_length=3,
    max_metadata_depth=2,
    max_event_bytes=400,
)

_NEAR_VALID: dict[str, st.SearchStrategy[Any]] = {
    **_MEMBER_VALUES,
    "occurred_at": st.one_of(
        _MEMBER_VALUES["occurred_at"],
        st.datetimes(timezones=st.just(UTC)).map(format_timestamp),
        st.from_regex(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z", fullmatch=True
        ),
    ),
    "context": st.fixed_dictionaries(
        {},
        optional={
            "ip": st.one_of(st.ip_addresses().map(str), _TEXT),
            "user_agent": st.one_of(_TEXT, st.integers()),
            "request_id": st.one_of(_TEXT, st.none()),
            "location": _TEXT,
            "port": st.integers(),
        },
    ),
    "status": st.one_of(_TEXT, st.integers(-(2**54), 2**54), st.booleans(), st.floats()),
    "tags": st.one_of(st.lists(st.one_of(_TEXT, st.none()), max_size=3), JSON),
    "targets": st.one_of(
        st.lists(
            st.one_of(
                st.fixed_dictionaries({"id": _ID}, optional={"type": _ID, "name": _TEXT}),
                JSON,
            ),
            max_size=3,
        ).map(lambda items: tuple(items) if len(items) % 2 else items),
        JSON,
    ),
    "signature": st.one_of(
        st.none(), st.just({"alg": "ed25519", "public_key": PUBLIC_KEY, "sig": SIG})
    ),
    "source": st.one_of(_TEXT, st.integers()),
    "message": st.one_of(_TEXT, st.binary(max_size=3)),
}
NEAR_VALID = st.fixed_dictionaries(
    {"action": _MEMBER_VALUES["action"], "actor": _MEMBER_VALUES["actor"]},
    optional={k: v for k, v in _NEAR_VALID.items() if k not in ("action", "actor")},
)


def _outcome(result: tuple[list[ValidationError], int, bool]) -> object:
    problems, size, exact = result
    return [(p.field, p.code, p.message) for p in problems], size, exact


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(NEAR_VALID, VALID_EVENTS, EVENTISH, ANY_EVENT, JSON),
    st.sampled_from([DEFAULT_LIMITS, TIGHT]),
)
def test_fast_path_agrees_with_the_rule_table(raw: Any, limits: Limits) -> None:
    """Whatever the input, :func:`schema._problems` (fast path first) returns exactly what
    the rule table alone returns: same problems in the same order, same size bound."""
    expected = _outcome(schema._table_problems(raw, limits))
    assert _outcome(schema._problems(raw, limits)) == expected
    if isinstance(raw, dict) and schema._accepted_floats(raw, limits) is not None:
        hypothesis_event("fast path accepted the structure")


class _Str(str):
    pass


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.__setitem__(_Str("source"), "x"),  # not an exact str key: unknown member
        lambda e: e["actor"].__setitem__(_Str("name"), "x"),
        lambda e: e["actor"].__setitem__("name", "lone \udc00"),  # left to orjson's check
        lambda e: e.__setitem__("message", "lone \ud800"),
        lambda e: e["metadata"].__setitem__("k\udfff", 1),
        lambda e: e.__setitem__("occurred_at", "2024-02-30T00:00:00.000000Z"),
        lambda e: e.__setitem__("occurred_at", "2024-05-01T24:00:00.000000Z"),
        lambda e: e.__setitem__("occurred_at", "0000-01-01T00:00:00.000000Z"),
        lambda e: e.__setitem__("status", True),
        lambda e: e.__setitem__("status", 2**53),
        lambda e: e.__setitem__("tags", ["a", ""]),
        lambda e: e.__setitem__("targets", [{"id": "a"}, None]),
        lambda e: e.__setitem__("context", {"ip": "10.0.0.256"}),
        lambda e: e.__setitem__("metadata", {"deep": nested(17)}),
        lambda e: e.__setitem__("metadata", {"n": math.nan}),
        lambda e: e.__setitem__("message", "x" * 61_440),  # too large
        lambda e: None,  # valid
    ],
)
def test_fast_path_edges(change: Any) -> None:
    raw = full()
    raw["occurred_at"] = STORED_TS
    change(raw)
    expected = _outcome(schema._table_problems(raw, DEFAULT_LIMITS))
    assert _outcome(schema._problems(raw, DEFAULT_LIMITS)) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        rfc3339_texts(),
        st.datetimes(timezones=st.just(UTC)).map(format_timestamp),
        st.from_regex(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z", fullmatch=True
        ),
    )
)
def test_stored_timestamp_shortcut_is_exact(text: str) -> None:
    """The shortcut says yes exactly when parsing and formatting give the text back."""
    try:
        again: str | None = format_timestamp(parse_timestamp(text, field="/t"))
    except ValidationError:
        again = None
    assert schema._is_stored_timestamp(text) is (again == text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(VALID_EVENTS, NEAR_VALID), st.datetimes(timezones=st.just(UTC)))
def test_normalize_says_when_it_changed_something(raw: dict[str, Any], now: datetime) -> None:
    try:
        stored, changed = schema._normalize(raw, now, fixed_id)
    except ValidationError:
        with pytest.raises(ValidationError):
            normalize_event(raw, now=now, new_id=fixed_id)
        return
    assert stored == normalize_event(raw, now=now, new_id=fixed_id)
    assert changed is (stored != raw)
