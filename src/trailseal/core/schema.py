"""The native event: validation, normalization and read defaults (ARCHITECTURE §4).

Theory of operation
-------------------
An event goes through three steps, all pure:

1. :func:`validate_event` (or :func:`validate_batch`) checks it against the rule table
   below. Each rule failure is a :class:`~trailseal.errors.ValidationError` whose ``field``
   is an RFC 6901 JSON pointer (``/actor/id``, ``/targets/2/type``, ``/metadata/a/b``) and
   whose ``code`` is one of :data:`CODES`. :func:`event_problems` lists one problem per
   bad top-level member; a batch lists every bad event (§6: the 4xx names each one).
2. :func:`normalize_event` makes the stored form: ``occurred_at`` in UTC
   ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and ``id`` / ``occurred_at`` filled in when absent.
   Nothing else is written: other defaults are read-time only.
3. :func:`with_read_defaults` applies ``actor.type = "user"`` and ``outcome = "success"``
   when a stored event is read.

:func:`quick_check` is a cheap subset of step 1 for the SDK's ``log()`` (20 µs budget):
required members, top-level types, unknown members and an approximate size.

Rules (defaults from :class:`Limits`; "str n..m" = string of n to m characters)
------------------------------------------------------------------------------

=================  ==========================================================  ============
member             rule                                                        codes
=================  ==========================================================  ============
(event)            a JSON object; only the members below                       type,
                                                                               unknown_field
(event)            canonical JSON (RFC 8785) ≤ 61,440 bytes                    too_large
action             required; str 1..256; ``[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*``   required,
                                                                               pattern
actor              required object {id, type, name, email}                     required
actor.id           required; str 1..256                                        too_short
actor.type         user | agent | system | service | api_key                   enum
actor.name         str 0..256                                                  too_long
actor.email        str 0..320 (not checked further: the log records what the   too_long
                   application says)
resource           object {type, id, name}; ``id`` required                    required
resource.id        str 1..256;  resource.type str 1..128;  name str 0..256     too_short
targets            array of ≤ 100 objects shaped like ``resource``             too_many
outcome            success | failure | error                                   enum
organization_id    str 1..256 without whitespace, control characters or        pattern
                   ``/ ? # %`` (it appears in URL paths)
occurred_at        RFC 3339 with ``Z`` or ``±HH:MM``; years 0001-9999 in UTC;  format,
                   no leap second; ≤ 9 fraction digits (truncated to µs)       out_of_range
id                 ``[A-Za-z0-9._:-]{1,128}``                                  pattern
message            str 0..32,768                                               too_long
source             str 0..256
status             str 0..256 or an integer (e.g. an HTTP status)              type
old, new           any JSON value, nesting ≤ 16                                too_deep
context            object {ip, user_agent, request_id, location}
context.ip         an IPv4 or IPv6 address (``ipaddress.ip_address``)          format
context.*          user_agent str 0..1024; request_id str 1..256;
                   location str 0..256
metadata           a JSON object, nesting ≤ 16 (the object itself is level 1)  type,
                                                                               too_deep
tags               array of ≤ 64 str 1..128                                    too_many
signature          {"alg": "ed25519", "public_key": base64 of 32 bytes,        enum, format
                   "sig": base64 of 64 bytes}; canonical base64; shape only
                   (the server verifies it). A signed event must also carry
                   ``id`` and an ``occurred_at`` already in stored form, so
                   normalization cannot change the bytes the producer signed.
(every string)     valid Unicode (no lone surrogates)                          format
(every number)     integers within ±(2**53-1), floats too when integral and    out_of_range,
                   below 1e21 (JCS writes 1e16 as an integer); no NaN or      not_finite
                   ±Infinity
=================  ==========================================================  ============

Nulls: every optional member (top level or nested) may be ``null``; it is kept as sent.
A required member that is ``null`` is reported as ``required``. Exception: ``id: null`` and
``occurred_at: null`` are treated as absent by :func:`normalize_event` and filled in, since
every stored event has both. Unknown members are rejected (``unknown_field``) in the event
and in every fixed-shape object (actor, resource, targets, context, signature): an audit
log should not silently store a typo. ``metadata``, ``old`` and ``new`` are free JSON.
Arrays may be lists or tuples; objects must be dicts with string keys.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import orjson

from trailseal.core.canonical import MAX_SAFE_INTEGER, canonicalize
from trailseal.core.encoding import b64decode_canonical
from trailseal.core.ids import ID_PATTERN
from trailseal.errors import ValidationError

__all__ = [
    "ACTION_PATTERN",
    "ACTOR_TYPES",
    "CODES",
    "DEFAULT_LIMITS",
    "EVENT_MEMBERS",
    "MAX_EVENT_BYTES",
    "MAX_SAFE_INTEGER",
    "OUTCOMES",
    "STORED_TIMESTAMP_PATTERN",
    "BatchProblem",
    "Limits",
    "event_problems",
    "format_timestamp",
    "normalize_event",
    "parse_timestamp",
    "quick_check",
    "validate_batch",
    "validate_event",
    "with_read_defaults",
]


#: Ceiling of :attr:`Limits.max_event_bytes`: 65,535 (the tlog-tiles entry-bundle limit on
#: entry bytes) minus 4,095 bytes of envelope headroom. The envelope (origin ≤ 290
#: characters, ``received_at``, ``seq``, ``v``) plus what normalization adds (an ``id`` of
#: ≤ 128 characters, a longer ``occurred_at``) stays under 700 bytes; the rest is margin.
MAX_EVENT_BYTES: Final = 61_440

ACTOR_TYPES: Final = ("user", "agent", "system", "service", "api_key")
OUTCOMES: Final = ("success", "failure", "error")
ACTION_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_ORGANIZATION_PATTERN: Final = re.compile(r"[^\s/?#%\x00-\x1f\x7f]+")

#: The stored timestamp form: UTC, microseconds, ``Z``.
STORED_TIMESTAMP_PATTERN: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
)

#: Every ``code`` a validation error from this module can carry.
CODES: Final = frozenset(
    {
        "required",  # a required member is absent or null
        "type",  # wrong JSON type
        "unknown_field",  # a member the schema does not define
        "too_short",  # an empty string or array where one item is needed
        "too_long",  # a string over its length limit
        "too_many",  # an array over its item limit
        "pattern",  # a string outside its character pattern
        "enum",  # a value outside a fixed set
        "format",  # a malformed timestamp, IP address, base64 or Unicode string
        "out_of_range",  # integer beyond ±(2**53-1), or a date outside 0001-9999
        "not_finite",  # NaN or ±Infinity
        "too_deep",  # free JSON nested deeper than max_metadata_depth
        "too_large",  # event or batch over its byte limit; batch over its event count
    }
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable limits (ARCHITECTURE §4). Sizes are bytes of canonical JSON; string
    lengths are characters (code points). ``max_event_bytes`` may be lowered but not raised
    above :data:`MAX_EVENT_BYTES` (entry bytes ≤ 65,535 is normative, §5)."""

    max_event_bytes: int = MAX_EVENT_BYTES
    max_metadata_depth: int = 16
    max_batch_events: int = 1000
    max_batch_bytes: int = 5 * 1024 * 1024
    max_action_length: int = 256
    max_id_length: int = 256  # actor.id, resource.id, targets[].id, organization_id, request_id
    max_type_length: int = 128  # resource.type, targets[].type
    max_name_length: int = 256  # names, source, status, context.location
    max_email_length: int = 320
    max_message_length: int = 32 * 1024
    max_user_agent_length: int = 1024
    max_targets: int = 100
    max_tags: int = 64
    max_tag_length: int = 128

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.max_event_bytes > MAX_EVENT_BYTES:
            raise ValueError(f"Limits.max_event_bytes must be ≤ {MAX_EVENT_BYTES}")
        if self.max_metadata_depth > 64:
            # Bounded so that validation and canonicalization never near the recursion limit.
            raise ValueError("Limits.max_metadata_depth must be ≤ 64")


DEFAULT_LIMITS: Final = Limits()

_dumps = orjson.dumps


# ---------------------------------------------------------------------------------------
# Failures: raised deep inside, the JSON pointer is assembled as they unwind.
# ---------------------------------------------------------------------------------------


class _Fail(Exception):
    """Internal: one rule failure. ``tokens`` is the path, innermost first; each level
    appends its own token while unwinding, so the success path builds no pointers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.tokens: list[str] = []

    def pointer(self, *outer: str) -> str:
        tokens = [*outer, *reversed(self.tokens)]
        return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _jtype(value: object) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return f"{type(value).__qualname__} (not a JSON value)"


def _unknown(name: object, allowed: Sequence[str], where: str) -> _Fail:
    text = str(name)
    hint = difflib.get_close_matches(text, allowed, n=1)
    also = f"; did you mean {hint[0]!r}?" if hint else ""
    fail = _Fail(
        "unknown_field",
        f"{where} has no member {text!r}{also} Allowed: {', '.join(allowed)}",
    )
    fail.tokens.append(text)
    return fail


# ---------------------------------------------------------------------------------------
# Checkers: ``check(value, limits)`` raises _Fail. ``value`` is never None here: null
# optional members are accepted before a checker is called.
# ---------------------------------------------------------------------------------------

# A checker returns the number of floats it saw (None or 0 for fixed-shape members).
_Checker = Callable[[Any, Limits], int | None]


def _check_unicode(value: str) -> None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Fail(
                "format",
                f"string contains a lone surrogate U+{ord(value[exc.start]):04X} at index "
                f"{exc.start}; strings must be valid Unicode",
            ) from None


def _string(
    limit: str | int,
    *,
    min_length: int = 0,
    pattern: re.Pattern[str] | None = None,
    pattern_text: str = "",
) -> _Checker:
    """A string of ``min_length`` to ``limit`` characters (an int, or the name of a
    :class:`Limits` field), optionally matching ``pattern`` in full."""
    get_max: Callable[[Limits], int] = (
        (lambda _: limit) if isinstance(limit, int) else operator.attrgetter(limit)
    )

    def check(value: Any, limits: Limits) -> None:
        if not isinstance(value, str):
            raise _Fail("type", f"expected a string, got {_jtype(value)}")
        size = len(value)
        if size < min_length:
            raise _Fail("too_short", "must not be empty")
        if size > get_max(limits):
            raise _Fail("too_long", f"expected at most {get_max(limits)} characters, got {size}")
        if not value.isascii():
            _check_unicode(value)
        if pattern is not None and pattern.fullmatch(value) is None:
            raise _Fail("pattern", f"{value[:80]!r} does not match {pattern_text}")

    return check


def _enum(choices: Sequence[str]) -> _Checker:
    allowed = frozenset(choices)
    listed = ", ".join(choices)

    def check(value: Any, limits: Limits) -> None:
        if not isinstance(value, str):
            raise _Fail("type", f"expected one of {listed} (a string), got {_jtype(value)}")
        if value not in allowed:
            raise _Fail("enum", f"{value[:80]!r} is not one of {listed}")

    return check


def _object(spec: Mapping[str, tuple[_Checker, bool]], what: str) -> _Checker:
    """A fixed-shape object: ``spec`` maps member name → (checker, required)."""
    names = tuple(spec)
    required = tuple(name for name, (_, needed) in spec.items() if needed)
    table = dict(spec)

    def check(value: Any, limits: Limits) -> None:
        if not isinstance(value, dict):
            raise _Fail("type", f"expected {what} (a JSON object), got {_jtype(value)}")
        for name in required:
            if value.get(name) is None:
                fail = _Fail("required", f"{what} needs {name!r} (not null)")
                fail.tokens.append(name)
                raise fail
        for key, member in value.items():
            entry = table.get(key) if type(key) is str else None
            if entry is None:
                raise _unknown(key, names, what)
            if member is not None:  # null optional members are kept as sent
                try:
                    entry[0](member, limits)
                except _Fail as fail:
                    fail.tokens.append(key)
                    raise

    return check


def _array(item: _Checker, limit: str, what: str) -> _Checker:
    """An array (list or tuple) of at most ``getattr(limits, limit)`` items, none null."""

    def check(value: Any, limits: Limits) -> None:
        if not isinstance(value, list | tuple):
            raise _Fail("type", f"expected an array of {what}, got {_jtype(value)}")
        maximum: int = getattr(limits, limit)
        if len(value) > maximum:
            raise _Fail("too_many", f"expected at most {maximum} {what}, got {len(value)}")
        for index, element in enumerate(value):
            try:
                if element is None:
                    raise _Fail("type", f"expected {what}, got null")
                item(element, limits)
            except _Fail as fail:
                fail.tokens.append(str(index))
                raise

    return check


def _bad_int(value: int) -> _Fail:
    return _Fail(
        "out_of_range",
        f"integer is outside ±(2**53-1) ({value.bit_length()} bits); "
        "send it as a string to keep every digit",
    )


def _float_ok(value: float) -> bool:
    """Finite, and not an integer beyond ±(2**53-1) in disguise: RFC 8785 writes an
    integral double below 1e21 as plain digits (1e16 -> ``10000000000000000``), which
    every reader takes back as an integer outside the I-JSON range, so the stored bytes
    would not re-encode. Callers test ``-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER``
    inline first: that is true for nearly every float and excludes NaN and ±Infinity."""
    return abs(value) >= 1e21 and math.isfinite(value)


def _bad_float(value: float) -> _Fail:
    if not math.isfinite(value):
        return _Fail("not_finite", f"{value!r} is not a JSON number (no NaN or Infinity)")
    return _Fail(
        "out_of_range",
        f"{value!r} is an integer beyond ±(2**53-1) in JSON (it is written as "
        f"{int(value)}); send it as a string",
    )


def _json_value(value: Any, depth: int, max_depth: int) -> int:
    """Check any JSON value; return how many floats it holds (for the size bound in
    :func:`_problems`). ``depth`` is the level a container here would have: containers
    count one level each, scalars none.

    Speed matters (this walks metadata, old and new of every ingested event): exact types
    are dispatched with ``type() is`` and scalars inside containers are checked inline,
    without a call; subclasses (``StrEnum``, ``OrderedDict``, ...) take the slower
    ``isinstance`` route at the end.
    """
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if depth > max_depth:
            raise _Fail("too_deep", f"nested deeper than {max_depth} levels")
        return _container(value, depth, max_depth)
    if kind is str:
        if not value.isascii():
            _check_unicode(value)
        return 0
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _bad_int(value)
        return 0
    if kind is float:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER and not _float_ok(value):
            raise _bad_float(value)
        return 1
    if value is None or kind is bool:
        return 0
    # Subclasses of the JSON types, or not JSON at all.
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        _check_unicode(value)
        return 0
    if isinstance(value, int):
        return _json_value(int(value), depth, max_depth)
    if isinstance(value, float):
        return _json_value(float(value), depth, max_depth)
    if isinstance(value, dict | list | tuple):
        if depth > max_depth:
            raise _Fail("too_deep", f"nested deeper than {max_depth} levels")
        return _container(value, depth, max_depth)
    raise _Fail("type", f"expected a JSON value, got {_jtype(value)}")


def _container(value: Any, depth: int, max_depth: int) -> int:
    """The members of a dict, list or tuple at ``depth`` (already checked against the
    limit); scalars inline, containers by recursion."""
    floats = 0
    inner = depth + 1
    token: object = None
    try:
        if isinstance(value, dict):
            for token, member in value.items():
                if type(token) is not str:
                    if not isinstance(token, str):
                        raise _Fail("type", f"member names must be strings, got {_jtype(token)}")
                    _check_unicode(token)
                elif not token.isascii():
                    _check_unicode(token)
                kind = type(member)
                if kind is str:
                    if not member.isascii():
                        _check_unicode(member)
                elif kind is int:
                    if not -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER:
                        raise _bad_int(member)
                elif kind is float:
                    if not -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER and not _float_ok(
                        member
                    ):
                        raise _bad_float(member)
                    floats += 1
                elif member is not None and kind is not bool:
                    floats += _json_value(member, inner, max_depth)
        else:
            for token, member in enumerate(value):  # noqa: B007 (read by the except)
                kind = type(member)
                if kind is str:
                    if not member.isascii():
                        _check_unicode(member)
                elif kind is int:
                    if not -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER:
                        raise _bad_int(member)
                elif kind is float:
                    if not -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER and not _float_ok(
                        member
                    ):
                        raise _bad_float(member)
                    floats += 1
                elif member is not None and kind is not bool:
                    floats += _json_value(member, inner, max_depth)
    except _Fail as fail:
        fail.tokens.append(str(token))
        raise
    return floats


def _any_json(value: Any, limits: Limits) -> int:
    return _json_value(value, 1, limits.max_metadata_depth)


def _metadata(value: Any, limits: Limits) -> int:
    if not isinstance(value, dict):
        raise _Fail("type", f"expected a JSON object, got {_jtype(value)}")
    return _json_value(value, 1, limits.max_metadata_depth)


_status_text = _string("max_name_length")


def _status(value: Any, limits: Limits) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _json_value(value, 1, limits.max_metadata_depth)
    elif isinstance(value, str):
        _status_text(value, limits)
    else:
        raise _Fail("type", f"expected a string or an integer, got {_jtype(value)}")


# Dotted-quad IPv4 without leading zeros: what ``ipaddress`` accepts, six times faster.
_IPV4: Final = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def _ip(value: Any, limits: Limits) -> None:
    if not isinstance(value, str):
        raise _Fail("type", f"expected an IP address string, got {_jtype(value)}")
    if _IPV4.fullmatch(value) is not None:
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _Fail(
            "format", f"{value[:80]!r} is not an IPv4 or IPv6 address (no port, no list)"
        ) from None


def _timestamp(value: Any, limits: Limits) -> None:
    if not isinstance(value, str):
        raise _Fail("type", f"expected an RFC 3339 timestamp string, got {_jtype(value)}")
    try:
        _parse_timestamp(value, "", to_utc=False)
    except ValidationError as exc:
        raise _Fail(exc.code, exc.message) from None


def _base64(size: int) -> _Checker:
    def check(value: Any, limits: Limits) -> None:
        if not isinstance(value, str):
            raise _Fail("type", f"expected base64 text, got {_jtype(value)}")
        try:
            b64decode_canonical(value, size=size)
        except ValidationError as exc:
            raise _Fail("format", f"{exc.message} (canonical base64 of {size} bytes)") from None

    return check


_REF = {  # resource and targets[] share one shape
    "type": (_string("max_type_length", min_length=1), False),
    "id": (_string("max_id_length", min_length=1), True),
    "name": (_string("max_name_length"), False),
}

#: Top-level members in checking order: name → (checker, required).
_EVENT_SPEC: Final[dict[str, tuple[_Checker, bool]]] = {
    "action": (
        _string(
            "max_action_length",
            min_length=1,
            pattern=ACTION_PATTERN,
            pattern_text="dot notation (letters, digits, '_', '-' in dot-separated words, "
            "e.g. 'invoice.deleted')",
        ),
        True,
    ),
    "actor": (
        _object(
            {
                "id": (_string("max_id_length", min_length=1), True),
                "type": (_enum(ACTOR_TYPES), False),
                "name": (_string("max_name_length"), False),
                "email": (_string("max_email_length"), False),
            },
            "actor",
        ),
        True,
    ),
    "resource": (_object(_REF, "resource"), False),
    "targets": (_array(_object(_REF, "target"), "max_targets", "targets"), False),
    "outcome": (_enum(OUTCOMES), False),
    "organization_id": (
        _string(
            "max_id_length",
            min_length=1,
            pattern=_ORGANIZATION_PATTERN,
            pattern_text="an id without whitespace, control characters or '/', '?', '#', '%'",
        ),
        False,
    ),
    "occurred_at": (_timestamp, False),
    "id": (
        _string(
            128,
            min_length=1,
            pattern=ID_PATTERN,
            pattern_text="[A-Za-z0-9._:-]{1,128}",
        ),
        False,
    ),
    "message": (_string("max_message_length"), False),
    "source": (_string("max_name_length"), False),
    "status": (_status, False),
    "old": (_any_json, False),
    "new": (_any_json, False),
    "context": (
        _object(
            {
                "ip": (_ip, False),
                "user_agent": (_string("max_user_agent_length"), False),
                "request_id": (_string("max_id_length", min_length=1), False),
                "location": (_string("max_name_length"), False),
            },
            "context",
        ),
        False,
    ),
    "metadata": (_metadata, False),
    "tags": (
        _array(_string("max_tag_length", min_length=1), "max_tags", "tags (strings)"),
        False,
    ),
    "signature": (
        _object(
            {
                "alg": (_enum(("ed25519",)), True),
                "public_key": (_base64(32), True),
                "sig": (_base64(64), True),
            },
            "signature",
        ),
        False,
    ),
}

#: Every member an event may have (ARCHITECTURE §4, plus ``signature`` from §6).
EVENT_MEMBERS: Final = tuple(_EVENT_SPEC)
_EVENT_MEMBER_SET: Final = frozenset(EVENT_MEMBERS)


# ---------------------------------------------------------------------------------------
# Validation entry points.
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# The common case in one function: a valid event of exact built-in types.
# ---------------------------------------------------------------------------------------

# Batch ingest validates every event (ARCHITECTURE §11 budgets it per event), and nearly all
# are valid. :func:`_accepted_floats` only ever says "valid" (with the float count the size
# bound needs) or "ask the rule table", so every message, code, pointer and their order still
# come from the table: whatever it does not settle inline goes to the slow path unchanged.
# Two checks are left to the one ``orjson.dumps`` the size bound needs anyway: it raises on a
# lone surrogate in any string and on any object key that is not an exact ``str``, which is
# every Unicode check and every key-type check of the fixed-shape members.


@dataclass(frozen=True, slots=True)
class _Bounds:
    """Per :class:`Limits`: (min, max) characters of each plain-string member of the fixed-
    shape objects; enum and IP members get (0, any) here and their own check."""

    actor: dict[str, tuple[int, int]]
    ref: dict[str, tuple[int, int]]
    context: dict[str, tuple[int, int]]


def _bounds_of(limits: Limits) -> _Bounds:
    any_length = 1 << 62
    return _Bounds(
        actor={
            "id": (1, limits.max_id_length),
            "type": (0, any_length),  # and in ACTOR_TYPES
            "name": (0, limits.max_name_length),
            "email": (0, limits.max_email_length),
        },
        ref={
            "type": (1, limits.max_type_length),
            "id": (1, limits.max_id_length),
            "name": (0, limits.max_name_length),
        },
        context={
            "ip": (0, any_length),  # and an IP address
            "user_agent": (0, limits.max_user_agent_length),
            "request_id": (1, limits.max_id_length),
            "location": (0, limits.max_name_length),
        },
    )


_DEFAULT_BOUNDS: Final = _bounds_of(DEFAULT_LIMITS)
_ACTOR_TYPE_SET: Final = frozenset(ACTOR_TYPES)
_OUTCOME_SET: Final = frozenset(OUTCOMES)


# Actions and organization ids repeat from event to event (a few dozen distinct values in
# a batch), and a set lookup costs a fraction of a regex match. Each set holds only strings
# that matched its own pattern; it is emptied when full, so it stays bounded.
_ACTIONS_MATCHED: Final[set[str]] = set()
_ORGANIZATIONS_MATCHED: Final[set[str]] = set()
_MATCHED_MAX: Final = 4096


def _matched(pattern: re.Pattern[str], matched: set[str], text: str) -> bool:
    """``pattern.fullmatch(text)``, remembered in ``matched`` when true (callers look in
    ``matched`` first, inline)."""
    if pattern.fullmatch(text) is None:
        return False
    if len(matched) >= _MATCHED_MAX:
        matched.clear()
    matched.add(text)
    return True


def _plain_object(value: Any, bounds: Mapping[str, tuple[int, int]]) -> bool:
    """``value`` is a dict whose every member is known and null or a str within bounds."""
    if type(value) is not dict:
        return False
    for key, member in value.items():
        bound = bounds.get(key)
        if bound is None:
            return False  # unknown, even when null
        if member is not None and (
            type(member) is not str or not bound[0] <= len(member) <= bound[1]
        ):
            return False
    return True


def _ref_ok(value: Any, bounds: _Bounds) -> bool:
    return _plain_object(value, bounds.ref) and value.get("id") is not None


def _accepted_floats(raw: dict[Any, Any], limits: Limits) -> int | None:
    """The number of floats in ``raw`` when every structural rule of the table passes
    without a doubt (Unicode and key types aside, see above), else None: then the rule
    table decides. Exact built-in types only; subclasses and signatures take the table."""
    if not raw.keys() <= _EVENT_MEMBER_SET or "signature" in raw:
        return None
    bounds = _DEFAULT_BOUNDS if limits is DEFAULT_LIMITS else _bounds_of(limits)
    get = raw.get
    value = get("action")
    if (
        type(value) is not str
        or not 0 < len(value) <= limits.max_action_length
        or (value not in _ACTIONS_MATCHED and not _matched(ACTION_PATTERN, _ACTIONS_MATCHED, value))
    ):
        return None
    actor: Any = get("actor")
    if not _plain_object(actor, bounds.actor) or actor.get("id") is None:
        return None
    value = actor.get("type")
    if value is not None and value not in _ACTOR_TYPE_SET:
        return None
    value = get("id")
    if value is not None and (type(value) is not str or ID_PATTERN.fullmatch(value) is None):
        return None
    value = get("occurred_at")
    if value is not None and not (type(value) is str and _is_stored_timestamp(value)):
        try:
            _timestamp(value, limits)
        except _Fail:
            return None
    value = get("organization_id")
    if value is not None and (
        type(value) is not str
        or not 0 < len(value) <= limits.max_id_length
        or (
            value not in _ORGANIZATIONS_MATCHED
            and not _matched(_ORGANIZATION_PATTERN, _ORGANIZATIONS_MATCHED, value)
        )
    ):
        return None
    value = get("outcome")
    if value is not None and (type(value) is not str or value not in _OUTCOME_SET):
        return None
    value = get("message")
    if value is not None and (type(value) is not str or len(value) > limits.max_message_length):
        return None
    value = get("source")
    if value is not None and (type(value) is not str or len(value) > limits.max_name_length):
        return None
    value = get("status")
    if value is not None:
        kind = type(value)
        if kind is str:
            if len(value) > limits.max_name_length:
                return None
        elif kind is not int or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return None
    value = get("resource")
    if value is not None and not _ref_ok(value, bounds):
        return None
    value = get("targets")
    if value is not None:
        kind = type(value)
        if (kind is not list and kind is not tuple) or len(value) > limits.max_targets:
            return None
        for target in value:
            if not _ref_ok(target, bounds):
                return None
    value = get("context")
    if value is not None:
        if not _plain_object(value, bounds.context):
            return None
        ip = value.get("ip")
        if ip is not None:
            try:
                _ip(ip, limits)
            except _Fail:
                return None
    value = get("tags")
    if value is not None:
        kind = type(value)
        if (kind is not list and kind is not tuple) or len(value) > limits.max_tags:
            return None
        maximum = limits.max_tag_length
        for tag in value:
            if type(tag) is not str or not 0 < len(tag) <= maximum:
                return None
    floats = 0
    try:
        value = get("metadata")
        if value is not None:
            if type(value) is not dict:
                return None
            floats += _container(value, 1, limits.max_metadata_depth)
        value = get("old")
        if value is not None:
            floats += _json_value(value, 1, limits.max_metadata_depth)
        value = get("new")
        if value is not None:
            floats += _json_value(value, 1, limits.max_metadata_depth)
    except _Fail:
        return None
    return floats


# Sizing without a second encoder pass (ARCHITECTURE §11: ingest is budgeted per event).
# orjson's compact output has exactly the canonical length except for floats: orjson
# writes at least 3 characters for one ("0.0"), RFC 8785 at most 25 ("-0.00000" plus 17
# digits, or "-1.2345678901234567e-308"). Key order and string escaping do not change the
# length. So ``len(orjson) + 22 * floats`` bounds the canonical size from above, and the
# exact (slower) canonical size is computed only when that bound is over a limit.
_FLOAT_SLACK: Final = 22


def _problems(raw: object, limits: Limits) -> tuple[list[ValidationError], int, bool]:
    """All problems of one event: missing required members first, then at most one per
    member in the event's own order (unknown members included). When there are none, also
    an upper bound on its canonical size in bytes, and whether that bound is exact."""
    if type(raw) is dict:
        floats = _accepted_floats(raw, limits)
        if floats is not None:
            try:
                bound = len(_dumps(raw)) + _FLOAT_SLACK * floats
            except TypeError:  # orjson.JSONEncodeError: the table names the problem
                pass
            else:
                if bound <= limits.max_event_bytes:
                    return [], bound, floats == 0
    return _table_problems(raw, limits)


def _table_problems(raw: object, limits: Limits) -> tuple[list[ValidationError], int, bool]:
    """:func:`_problems` by the rule table alone: the definition the fast path must match."""
    if not isinstance(raw, dict):
        problem = ValidationError(
            f"expected an event (a JSON object), got {_jtype(raw)}", code="type"
        )
        return [problem], 0, True
    found: list[ValidationError] = []
    if raw.get("action") is None:
        found.append(
            ValidationError(
                "required: every event needs an action (not null)",
                field="/action",
                code="required",
            )
        )
    if raw.get("actor") is None:
        found.append(
            ValidationError(
                "required: every event needs an actor with an id (not null)",
                field="/actor",
                code="required",
            )
        )
    floats = 0
    spec = _EVENT_SPEC
    for key, value in raw.items():
        entry = spec.get(key) if type(key) is str else None
        if entry is None:
            fail = _unknown(key, EVENT_MEMBERS, "the event")
            found.append(ValidationError(fail.message, field=fail.pointer(), code=fail.code))
            continue
        if value is None:
            continue  # optional and null: kept as sent (required ones were reported above)
        try:
            counted = entry[0](value, limits)
        except _Fail as fail:
            found.append(ValidationError(fail.message, field=fail.pointer(key), code=fail.code))
        else:
            if counted:
                floats += counted
    if raw.get("signature") is not None and not any(
        p.field in ("/id", "/occurred_at") or p.field.startswith("/signature") for p in found
    ):
        found.extend(_signed_event_problems(raw))
    if found:
        return found, 0, True
    try:
        bound = len(_dumps(raw)) + _FLOAT_SLACK * floats
    except TypeError:  # orjson.JSONEncodeError: a type orjson will not take; measure exactly
        bound = limits.max_event_bytes + 1
    if bound <= limits.max_event_bytes:
        return [], bound, floats == 0
    try:
        size = len(canonicalize(raw))
    except ValidationError as exc:  # not expected after the walk; keep its pointer
        return [exc], 0, True
    if size > limits.max_event_bytes:
        problem = ValidationError(
            f"event is {size} bytes as canonical JSON; the limit is "
            f"{limits.max_event_bytes} (move bulky data out of metadata, old or new)",
            code="too_large",
        )
        return [problem], size, True
    return [], size, True


def _canonical_size(raw: object) -> int:
    return len(canonicalize(raw))


def _signed_event_problems(raw: Mapping[str, Any]) -> list[ValidationError]:
    """A producer signature covers the event's JCS bytes as sent (§6). Normalization must
    then leave those bytes alone, so ``id`` and ``occurred_at`` must already be there, the
    latter in stored form."""
    found = []
    if raw.get("id") is None:
        found.append(
            ValidationError(
                "a signed event must carry its own id (the server cannot add one without "
                "changing the signed bytes)",
                field="/id",
                code="required",
            )
        )
    occurred = raw.get("occurred_at")
    if occurred is None:
        found.append(
            ValidationError(
                "a signed event must carry occurred_at (in the form YYYY-MM-DDTHH:MM:SS.ffffffZ)",
                field="/occurred_at",
                code="required",
            )
        )
    elif isinstance(occurred, str) and STORED_TIMESTAMP_PATTERN.fullmatch(occurred) is None:
        found.append(
            ValidationError(
                "a signed event's occurred_at must already be in stored form "
                "YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC, 6 fraction digits), or normalization "
                "would change the signed bytes",
                field="/occurred_at",
                code="format",
            )
        )
    return found


def event_problems(raw: object, limits: Limits = DEFAULT_LIMITS) -> list[ValidationError]:
    """Every problem found in ``raw`` (empty when valid): one per bad top-level member and
    one per unknown member. The size limit is checked only once the structure is valid."""
    return _problems(raw, limits)[0]


def validate_event(raw: object, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise :class:`ValidationError` for the first problem of ``raw``, else return.

    ``raw`` is the event as decoded from JSON (or as given to the SDK). See the module
    docstring for the rules, codes and null handling.
    """
    found = _problems(raw, limits)[0]
    if found:
        raise found[0]


@dataclass(frozen=True, slots=True)
class BatchProblem:
    """One problem of a batch. ``index`` is the event's position (``None`` for the batch as a
    whole); ``field`` is a JSON pointer inside that event (``""``: the whole event)."""

    index: int | None
    field: str
    code: str
    message: str

    @property
    def pointer(self) -> str:
        """The pointer into the batch array (``/3/actor/id``)."""
        return self.field if self.index is None else f"/{self.index}{self.field}"

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "field": self.field,
            "code": self.code,
            "message": self.message,
        }


def validate_batch(raw_events: object, limits: Limits = DEFAULT_LIMITS) -> list[BatchProblem]:
    """Every problem of a batch: each bad event's index and fields, and the batch limits
    (count ≤ ``max_batch_events``, sum of canonical event sizes ≤ ``max_batch_bytes``).
    Empty when the whole batch is acceptable; batches are all-or-nothing (§6), so callers
    reject the batch when this is non-empty. An empty batch is valid (and does nothing).

    A batch over the event count is rejected without looking at its events, so an oversized
    request costs no validation work.
    """
    if not isinstance(raw_events, list | tuple):
        return [
            BatchProblem(None, "", "type", f"expected an array of events, got {_jtype(raw_events)}")
        ]
    if len(raw_events) > limits.max_batch_events:
        return [
            BatchProblem(
                None,
                "",
                "too_large",
                f"a batch holds at most {limits.max_batch_events} events, got {len(raw_events)}",
            )
        ]
    found: list[BatchProblem] = []
    total = 0
    inexact: list[tuple[int, int]] = []  # (index, bound) of events sized by a bound only
    for index, raw in enumerate(raw_events):
        problems, size, exact = _problems(raw, limits)
        total += size
        if not exact:
            inexact.append((index, size))
        if problems:  # (rare: no generator per valid event)
            found.extend(BatchProblem(index, p.field, p.code, p.message) for p in problems)
    if total > limits.max_batch_bytes and inexact:
        # The bound is over: replace bounds by exact sizes before rejecting the batch.
        for index, bound in inexact:
            total += _canonical_size(raw_events[index]) - bound
    if total > limits.max_batch_bytes:
        found.append(
            BatchProblem(
                None,
                "",
                "too_large",
                f"the batch's events total {total} bytes as canonical JSON; the limit is "
                f"{limits.max_batch_bytes}; send smaller batches",
            )
        )
    return found


# ---------------------------------------------------------------------------------------
# The SDK's cheap pre-check.
# ---------------------------------------------------------------------------------------

# Top-level type expectations for quick_check (None is always allowed for optional ones).
_QUICK_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "action": str,
    "actor": dict,
    "resource": dict,
    "targets": (list, tuple),
    "outcome": str,
    "organization_id": str,
    "occurred_at": str,
    "id": str,
    "message": str,
    "source": str,
    "status": (str, int),
    "old": object,
    "new": object,
    "context": dict,
    "metadata": dict,
    "tags": (list, tuple),
    "signature": dict,
}
# datetimes and dataclasses make orjson raise instead of serializing them: they are not
# JSON values, and the worker's full validation would reject them anyway.
_QUICK_DUMPS_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def quick_check(event: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> None:
    """A cheap subset of :func:`validate_event` for the caller's thread (SDK ``log()``).

    Checks: ``event`` is a dict; ``action`` is a non-empty string within its length and
    pattern; ``actor`` is an object with a non-empty string ``id``; no unknown top-level
    members; each top-level member has the right JSON type (or is null); ``id``, when
    given, matches :data:`~trailseal.core.ids.ID_PATTERN`; and the compact JSON size
    (orjson, close to the canonical size) is within ``max_event_bytes``. Nested rules,
    enums, timestamps, NaN and integer ranges are left to :func:`validate_event` on the
    worker. Raises :class:`ValidationError` with the same pointers and codes.
    """
    if not isinstance(event, dict):
        raise ValidationError(f"expected an event (a dict), got {_jtype(event)}", code="type")
    action = event.get("action")
    if not isinstance(action, str) or not action:
        raise ValidationError(
            "required: every event needs an action (a non-empty string)",
            field="/action",
            code="required" if action is None or action == "" else "type",
        )
    if len(action) > limits.max_action_length:
        raise ValidationError(
            f"expected at most {limits.max_action_length} characters, got {len(action)}",
            field="/action",
            code="too_long",
        )
    if ACTION_PATTERN.fullmatch(action) is None:
        raise ValidationError(
            f"{action[:80]!r} is not dot notation (e.g. 'invoice.deleted')",
            field="/action",
            code="pattern",
        )
    actor = event.get("actor")
    if not isinstance(actor, dict):
        raise ValidationError(
            "required: every event needs an actor object with an id",
            field="/actor",
            code="required" if actor is None else "type",
        )
    actor_id = actor.get("id")
    if not isinstance(actor_id, str) or not actor_id:
        raise ValidationError(
            "required: the actor needs an id (a non-empty string)",
            field="/actor/id",
            code="required" if actor_id is None or actor_id == "" else "type",
        )
    if len(actor_id) > limits.max_id_length:
        raise ValidationError(
            f"expected at most {limits.max_id_length} characters, got {len(actor_id)}",
            field="/actor/id",
            code="too_long",
        )
    types = _QUICK_TYPES
    for key, value in event.items():
        expected = types.get(key)
        if expected is None:
            fail = _unknown(key, EVENT_MEMBERS, "the event")
            raise ValidationError(fail.message, field=fail.pointer(), code=fail.code)
        if value is not None and not isinstance(value, expected):
            raise ValidationError(
                f"expected {_QUICK_NAMES[key]}, got {_jtype(value)}",
                field=f"/{key}",
                code="type",
            )
    event_id = event.get("id")
    if event_id is not None and ID_PATTERN.fullmatch(event_id) is None:
        raise ValidationError(
            f"{event_id[:80]!r} does not match [A-Za-z0-9._:-]{{1,128}}",
            field="/id",
            code="pattern",
        )
    try:
        size = len(_dumps(event, option=_QUICK_DUMPS_OPTIONS))
    except TypeError as exc:  # orjson.JSONEncodeError: not JSON, or a lone surrogate
        raise ValidationError(f"not representable as JSON: {exc}", code="type") from None
    if size > limits.max_event_bytes:
        raise ValidationError(
            f"event is about {size} bytes as JSON; the limit is {limits.max_event_bytes}",
            code="too_large",
        )


_QUICK_NAMES: Final = {
    key: (
        "a string"
        if expected is str
        else "an object"
        if expected is dict
        else "an array"
        if expected == (list, tuple)
        else "a string or an integer"
        if expected == (str, int)
        else "a JSON value"
    )
    for key, expected in _QUICK_TYPES.items()
}


# ---------------------------------------------------------------------------------------
# Timestamps.
# ---------------------------------------------------------------------------------------

# RFC 3339 §5.6 date-time; "T" and "Z" may be lower case (§5.6 NOTE). ASCII digits only
# ("\d" would accept other scripts' digits).
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_NO_OFFSET = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?")
_EXAMPLE = "e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.250+02:00"


def parse_timestamp(text: object, *, field: str) -> datetime:
    """Parse a strict RFC 3339 date-time (§5.6) into an aware UTC datetime.

    Requires an offset (``Z`` or ``±HH:MM``; ``-00:00`` counts as UTC); accepts up to 9
    fraction digits, truncated to microseconds; rejects leap seconds (``:60``: Python
    datetimes cannot hold them), impossible dates, and instants outside years 0001-9999
    once converted to UTC. Raises :class:`ValidationError` naming ``field``.
    """
    if not isinstance(text, str):
        raise ValidationError(
            f"expected an RFC 3339 timestamp string, got {_jtype(text)}", field=field, code="type"
        )
    return _parse_timestamp(text, field, to_utc=True)


def _parse_timestamp(text: str, field: str, *, to_utc: bool) -> datetime:
    """:func:`parse_timestamp`; with ``to_utc`` false (validation only) the result may keep
    its offset, and the conversion is done only where it can fail (years 1 and 9999)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        if _NO_OFFSET.fullmatch(text):
            hint = "it has no UTC offset; add 'Z' or '±HH:MM' (naive times are ambiguous)"
        elif len(text) > 10 and text[10] == " ":
            hint = "separate date and time with 'T', not a space"
        else:
            hint = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"
        raise ValidationError(
            f"{text[:64]!r} is not an RFC 3339 timestamp: {hint}; {_EXAMPLE}",
            field=field,
            code="format",
        )
    fraction, off_m = match.group(7, 11)
    if (fraction is None or len(fraction) <= 9) and (off_m is None or off_m < "60"):
        # Fast path: the text is strict RFC 3339, which the C parser reads exactly as the
        # slow path below would (it truncates fractions too); it still rejects impossible
        # dates, second 60, year 0 and offsets of 24 hours, which the slow path explains.
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if value.utcoffset() and (to_utc or value.year in (1, 9999)):
                try:
                    return value.astimezone(UTC)
                except OverflowError:
                    raise ValidationError(
                        f"{text!r} falls outside years 0001-9999 once converted to UTC",
                        field=field,
                        code="out_of_range",
                    ) from None
            if not to_utc or value.tzinfo is UTC:
                return value
            return value.replace(tzinfo=UTC)
    return _parse_timestamp_slow(text, match, field)


def _parse_timestamp_slow(text: str, match: re.Match[str], field: str) -> datetime:
    """Field by field, with a specific message for each way a matched text can still be
    wrong (and the lower-case ``t``/``z`` that ``fromisoformat`` does not take)."""
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    fraction, zulu, sign, off_h, off_m = match.group(7, 8, 9, 10, 11)
    if second == 60:
        raise ValidationError(
            f"{text!r} is a leap second (:60), which cannot be stored; send :59.999999 "
            "or the next second",
            field=field,
            code="format",
        )
    if fraction is not None and len(fraction) > 9:
        raise ValidationError(
            f"{text[:64]!r} has {len(fraction)} fraction digits; at most 9 are accepted",
            field=field,
            code="format",
        )
    if year == 0:
        raise ValidationError(
            f"{text!r}: years must be 0001-9999", field=field, code="out_of_range"
        )
    micro = int((fraction or "").ljust(6, "0")[:6])
    if zulu is not None:
        tz: timezone = UTC
    else:
        hours, minutes = int(off_h), int(off_m)
        if hours > 23 or minutes > 59:
            raise ValidationError(
                f"{text!r} has an impossible UTC offset (at most ±23:59)",
                field=field,
                code="format",
            )
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if sign == "-" else delta) if delta else UTC
    try:
        value = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise ValidationError(
            f"{text!r} is not a real date and time ({exc})", field=field, code="format"
        ) from None
    if tz is UTC:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            f"{text!r} falls outside years 0001-9999 once converted to UTC",
            field=field,
            code="out_of_range",
        ) from None


def _is_stored_timestamp(text: str) -> bool:
    """True when ``text`` is a real instant already in stored form, so that it passes
    validation and normalizes to itself: the common case (SDKs send the stored form) then
    costs a match and the C parser instead of a parse and a format."""
    if STORED_TIMESTAMP_PATTERN.fullmatch(text) is None or text[11:13] > "23":
        return False  # (an hour of 24 is refused here even if a newer Python reads it)
    try:
        datetime.fromisoformat(text)  # impossible dates, second 60, year 0
    except ValueError:
        return False
    return True


def format_timestamp(dt: datetime) -> str:
    """The stored form of an aware datetime: UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("format_timestamp needs a timezone-aware datetime")
    if offset:
        try:
            dt = dt.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{dt!r} is outside years 0001-9999 in UTC") from None
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (2x faster than f-string)
        dt.year,
        dt.month,
        dt.day,
        dt.hour,
        dt.minute,
        dt.second,
        dt.microsecond,
    )


# ---------------------------------------------------------------------------------------
# Normalization and read defaults.
# ---------------------------------------------------------------------------------------


def normalize_event(
    raw: Mapping[str, Any], *, now: datetime, new_id: Callable[[], str]
) -> dict[str, Any]:
    """The stored form of a valid event (ARCHITECTURE §4 "What is stored").

    Returns a new dict (``raw`` is not changed): ``occurred_at`` normalized to
    UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, or ``format_timestamp(now)`` when absent or null;
    ``id`` set to ``new_id()`` when absent or null. No other member is added, removed or
    changed: other defaults are applied only on read (:func:`with_read_defaults`), and
    other nulls are kept. Idempotent for a fixed ``now`` and ``new_id``. The copy is
    shallow: nested members are shared with ``raw``, and neither is modified (the stored
    form is encoded right away; a deep copy would cost more than all the rest).

    Precondition: ``raw`` passed :func:`validate_event`; ``now`` is timezone-aware.
    """
    return _normalize(raw, now, new_id)[0]


def _normalize(
    raw: Mapping[str, Any], now: datetime, new_id: Callable[[], str]
) -> tuple[dict[str, Any], bool]:
    """:func:`normalize_event`, and whether it may have filled in or rewritten anything.
    False guarantees the result equals ``raw`` (sent in stored form), which spares the
    ingest path a deep comparison; True only means "compare, or assume they differ"."""
    out = dict(raw)
    changed = False
    if out.get("id") is None:
        event_id = new_id()
        if not isinstance(event_id, str) or ID_PATTERN.fullmatch(event_id) is None:
            raise ValueError(f"new_id() returned {event_id!r}, which is not a valid event id")
        out["id"] = event_id
        changed = True
    occurred = out.get("occurred_at")
    if occurred is None:
        out["occurred_at"] = format_timestamp(now)
        changed = True
    elif type(occurred) is not str or not _is_stored_timestamp(occurred):
        stored = format_timestamp(parse_timestamp(occurred, field="/occurred_at"))
        out["occurred_at"] = stored
        changed = changed or type(occurred) is not str or stored != occurred
    return out, changed


def with_read_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event with the read-time defaults applied: ``actor.type`` ``"user"`` and
    ``outcome`` ``"success"`` when absent or null. Returns a new dict; nested objects other
    than ``actor`` are shared with ``stored``."""
    out = dict(stored)
    actor = out.get("actor")
    if isinstance(actor, dict) and actor.get("type") is None:
        out["actor"] = {**actor, "type": "user"}
    if out.get("outcome") is None:
        out["outcome"] = "success"
    return out
