"""RFC 8785 JSON Canonicalization Scheme (JCS): the bytes every hash and signature covers.

Two encoders, one output (ARCHITECTURE §5):

- :func:`canonicalize_reference` is written from the RFC, one function per section, for
  reading and for cross-checking. It is the definition of "correct" in this code base.
- :func:`canonicalize` is the ingest hot path. It hands the value to ``orjson`` (sorted keys)
  only when a cheap pre-scan proves orjson writes exactly the reference's bytes, and
  otherwise calls the reference. Both give byte-identical output for every input, and both
  raise the same :class:`~trailseal.errors.CanonicalizationError`.

Accepted values (RFC 8785 §3.1: the data model is I-JSON, RFC 7493):

    None -> null, bool -> true/false, int, float, str,
    dict with str keys -> object, list or tuple -> array.

Subclasses of these types (``IntEnum``, ``StrEnum``, ``OrderedDict``) are encoded as their
base value; anything else (bytes, set, datetime, Decimal, a plain Enum, ...) is an error.

Choices where the RFC leaves room, so that two trailseal nodes never disagree:

- Integers must lie in the I-JSON safe range -(2**53-1) .. 2**53-1 (RFC 7493 §2.2). Beyond
  it a double cannot tell n from n+1, so the number's value would not survive a JavaScript
  reader; send such values as strings (RFC 8785 Appendix D). This is also the range of the
  ``rfc8785`` package, which the tests compare against. Floats are doubles already and are
  accepted whatever their magnitude (``1e300``), except NaN and ±Infinity (§3.2.2.3).
  So ``2.0**53`` is written ``9007199254740992``: whoever re-canonicalizes parsed canonical
  text must read numbers as doubles (JCS's model), not as Python ints.
- Strings (keys included) must be valid Unicode: a lone surrogate has no UTF-8 form
  (§3.2.4), so it is rejected rather than replaced.
- Errors carry ``field``, an RFC 6901 JSON pointer to the offending member; for a bad key
  it points at the object holding it (the key itself may not be printable).

Theory of the fast path (see :func:`_prepare_for_orjson`): ``orjson.dumps(v, OPT_SORT_KEYS)``
already escapes strings exactly as §3.2.2.2 asks and writes integers in plain decimal; it
departs from JCS in three places, all handled by one pre-scan:

1. Key order. orjson sorts by UTF-8 bytes, i.e. by code point; JCS sorts by UTF-16 code
   units (§3.2.3). The two orders agree whenever no key has a character outside the BMP:
   then every character is one code unit equal to its code point. (They do disagree with
   one: U+10000 is D800 DC00 in UTF-16, so it sorts before U+E000 in JCS, after it in
   orjson.) A value with a non-BMP character in any key goes to the reference.
2. Floats. orjson prints integral floats as ``1.0`` (JCS: ``1``) and switches to exponent
   notation outside 1e-5 <= |x| < 1e16 (JCS: outside 1e-6 <= |x| < 1e21, and ``1e+21``).
   Inside, both write the shortest round-tripping digits, the closest of them, in plain
   decimal. So a float passes as is only when it is non-integral with 1e-5 <= |x| < 2**52
   (every double at or above 2**52 is integral), which also excludes NaN, ±Infinity and
   -0.0. Any other finite float is replaced, in a copy of the containers above it, by an
   ``orjson.Fragment`` holding the reference's text, which orjson copies verbatim.
3. Domain. orjson accepts ints up to 64 bits, writes NaN as ``null``, serializes datetime,
   UUID, Enum, dataclass and subclasses. The scan admits only the exact built-in types,
   ints in the I-JSON range and finite floats. Lone surrogates and str-subclass keys make
   orjson raise; the reference then decides, and names the field.

An import-time probe (:data:`FAST_PATH_ENABLED`) re-checks these facts against the installed
orjson and disables the fast path, rather than writing wrong bytes, should a future release
change its output.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson

from trailseal.errors import CanonicalizationError

__all__ = [
    "FAST_PATH_ENABLED",
    "MAX_SAFE_INTEGER",
    "canonicalize",
    "canonicalize_reference",
]

#: Largest integer magnitude accepted: 2**53 - 1 (RFC 7493 §2.2, ECMAScript's
#: ``Number.MAX_SAFE_INTEGER``).
MAX_SAFE_INTEGER = 2**53 - 1

_Sink = Callable[[str], None]

# ---------------------------------------------------------------------------------------
# Reference encoder, written from RFC 8785.
# ---------------------------------------------------------------------------------------


def canonicalize_reference(value: object) -> bytes:
    """Return the RFC 8785 canonical form of ``value`` as UTF-8 bytes.

    A direct transcription of RFC 8785 §3.2: no whitespace (§3.2.1), primitives serialized
    per §3.2.2, object members sorted per §3.2.3, and the result encoded as UTF-8 (§3.2.4).
    Raises :class:`CanonicalizationError` (with ``field`` set) for values outside the
    I-JSON data model (§3.1).
    """
    parts: list[str] = []
    try:
        _serialize_value(value, parts.append)
    except RecursionError:
        # A cycle, or nesting far beyond any event limit (ARCHITECTURE §4 allows 16).
        raise CanonicalizationError("value is nested too deeply (or contains a cycle)") from None
    # §3.2.4: the text is UTF-8. Every string was checked for lone surrogates on the way,
    # so this encode cannot fail.
    return "".join(parts).encode("utf-8")


def _serialize_value(value: object, sink: _Sink) -> None:
    """Dispatch on the JSON type of ``value`` (RFC 8785 §3.2.2 and §3.2.3).

    ``bool`` is tested before ``int`` because Python's bool is an int subclass.
    """
    if value is None or isinstance(value, bool):
        _serialize_literal(value, sink)
    elif isinstance(value, int):
        _serialize_integer(value, sink)
    elif isinstance(value, float):
        _serialize_number(value, sink)
    elif isinstance(value, str):
        _serialize_string(value, sink)
    elif isinstance(value, dict):
        _serialize_object(value, sink)
    elif isinstance(value, (list, tuple)):
        _serialize_array(value, sink)
    else:
        raise CanonicalizationError(f"unsupported type {type(value).__qualname__}")


def _serialize_literal(value: bool | None, sink: _Sink) -> None:
    """RFC 8785 §3.2.2.1: the literals ``null``, ``true`` and ``false``, in lowercase."""
    sink("null" if value is None else "true" if value else "false")


def _serialize_integer(value: int, sink: _Sink) -> None:
    """RFC 8785 §3.2.2.3 for a Python int.

    JSON numbers are IEEE-754 doubles (§3.2.2.3); an int in the I-JSON safe range
    (RFC 7493 §2.2) is exactly a double, and ECMAScript writes such a double as its plain
    decimal integer, which is ``str(int)``. Outside the range the value would be rounded,
    so it is rejected rather than silently changed.
    """
    number = int.__int__(value)  # the plain int behind an IntEnum or other subclass
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        # str() of a huge int can itself fail (sys.int_max_str_digits), so describe its size.
        shown = str(number) if number.bit_length() <= 128 else f"a {number.bit_length()}-bit int"
        raise CanonicalizationError(
            f"integer {shown} is outside the I-JSON range ±(2**53-1); send it as a string"
        )
    sink(str(number))


def _serialize_number(value: float, sink: _Sink) -> None:
    """RFC 8785 §3.2.2.3: a double (see :func:`_number_text`)."""
    sink(_number_text(value))


def _number_text(value: float) -> str:
    """RFC 8785 §3.2.2.3: a double, written as ECMAScript's Number::toString writes it.

    NaN and ±Infinity have no JSON form and MUST be rejected (§3.2.2.3). Otherwise this is
    ECMA-262 (6th ed.) §7.1.12.1, Number::toString, steps 2-10, over the shortest digit string
    that round-trips, with the closest such digits (ECMA-262 note 2, which RFC 8785 requires);
    Python's ``repr`` of a float yields exactly those digits.
    """
    number = float.__float__(value)  # the plain float behind a subclass
    if not math.isfinite(number):
        raise CanonicalizationError(f"{number!r} is not a JSON number (RFC 8785 §3.2.2.3)")
    if number == 0:
        return "0"  # step 2: +0 and -0 are both "0"
    if number < 0:
        return "-" + _number_text(-number)  # step 3: the sign, then the magnitude
    digits, n = _shortest_digits(number)
    k = len(digits)
    if k <= n <= 21:
        # step 6: an integer; the digits, then n-k zeros
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        # step 7: the decimal point falls inside the digits
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        # step 8: a small number, "0." and -n zeros before the digits
        return "0." + "0" * -n + digits
    # steps 9-10: exponent notation, always with an explicit exponent sign
    exponent = n - 1
    sign = "+" if exponent >= 0 else "-"
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{sign}{abs(exponent)}"


def _shortest_digits(number: float) -> tuple[str, int]:
    """Return ``(s, n)`` for a finite ``number > 0``, in ECMA-262 §7.1.12.1 step 5's terms:
    ``s`` the shortest decimal digits (no leading or trailing zeros) that round-trip, ``n``
    the position of the decimal point, so that ``number == 0.s × 10**n``.

    CPython's ``repr`` gives the shortest round-tripping digits, and of those the nearest
    (David Gay's algorithm, mode 0), in forms like ``123.45``, ``1e-07`` or ``1.5e+16``.
    """
    text = repr(number)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    n = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)  # each leading zero moves the point left
    return stripped.rstrip("0"), n


# §3.2.2.2: escape only '"', '\' and U+0000..U+001F; the five controls with a two-character
# form use it, the rest use \u00xx with lowercase hex. Everything else (DEL, U+2028, ...)
# is written as itself.
_ESCAPES = {chr(c): f"\\u{c:04x}" for c in range(0x20)} | {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\]')
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _serialize_string(value: str, sink: _Sink) -> None:
    """RFC 8785 §3.2.2.2: a JSON string (see :func:`_string_text`)."""
    sink(_string_text(value))


def _string_text(value: str, *, is_key: bool = False) -> str:
    """RFC 8785 §3.2.2.2: ``value`` as a quoted JSON string, with the minimal escaping of
    ECMAScript's JSON.stringify and no Unicode normalization (§3.1).

    Python strings hold code points, so a surrogate (U+D800..U+DFFF) in one is always
    unpaired; it has no UTF-8 encoding (§3.2.4) and is rejected.
    """
    text = str.__str__(value)  # the plain str behind a StrEnum or other subclass
    found = None if text.isascii() else _LONE_SURROGATE.search(text)
    if found is not None:
        what = f"object key {text!r}" if is_key else "string"  # repr keeps it printable
        raise CanonicalizationError(
            f"{what} contains a lone surrogate U+{ord(found.group()):04X} at index "
            f"{found.start()}, which UTF-8 cannot encode (RFC 8785 §3.2.4)"
        )
    return f'"{_NEEDS_ESCAPE.sub(_escape, text)}"'


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def _utf16_sort_key(name: str) -> bytes:
    """RFC 8785 §3.2.3: member names compare as arrays of UTF-16 code units. Big-endian
    UTF-16 compares byte-wise in exactly that order (two bytes per unit, high byte first)."""
    return name.encode("utf-16-be")


def _serialize_object(value: dict[object, object], sink: _Sink) -> None:
    """RFC 8785 §3.2.3: members sorted by name in UTF-16 code-unit order, at every level;
    names are strings (RFC 8259 §4) and unique (RFC 7493 §2.3)."""
    # (name, its JSON text, value); each name is validated and escaped once.
    members: list[tuple[str, str, object]] = []
    for key, member in dict.items(value):
        if not isinstance(key, str):
            raise CanonicalizationError(
                f"object key {key!r} has type {type(key).__qualname__}, not str"
            )
        members.append((str.__str__(key), _string_text(key, is_key=True), member))
    members.sort(key=lambda item: _utf16_sort_key(item[0]))
    sink("{")
    previous: str | None = None
    for index, (name, name_text, member) in enumerate(members):
        if name == previous:
            # Only str subclasses with their own __eq__/__hash__ can get here.
            raise CanonicalizationError(f"duplicate object key {name!r}")
        previous = name
        if index:
            sink(",")
        sink(name_text)
        sink(":")
        try:
            _serialize_value(member, sink)
        except CanonicalizationError as exc:
            _prefix_pointer(exc, name)
            raise
    sink("}")


def _serialize_array(value: list[object] | tuple[object, ...], sink: _Sink) -> None:
    """RFC 8785 §3.2.2 / RFC 8259 §5: elements in their given order, comma-separated."""
    sink("[")
    for index, element in enumerate(value):
        if index:
            sink(",")
        try:
            _serialize_value(element, sink)
        except CanonicalizationError as exc:
            _prefix_pointer(exc, str(index))
            raise
    sink("]")


def _prefix_pointer(error: CanonicalizationError, token: str) -> None:
    """Prefix the JSON pointer of ``error``, raised inside one member, with that member's
    reference token (RFC 6901 §3-4: "~" as "~0", "/" as "~1"). Pointers are built only as
    an error unwinds, so the success path pays nothing for them."""
    escaped = token.replace("~", "~0").replace("/", "~1")
    error.field = f"/{escaped}{error.field}"


# ---------------------------------------------------------------------------------------
# Fast path: orjson, where it provably writes the reference's bytes.
# ---------------------------------------------------------------------------------------

_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")
_FLOAT_MIN = 1e-5  # below this orjson writes exponent notation where JCS does not
_FLOAT_MAX = 2.0**52  # at and above this every double is integral
_FAST_PATH_MAX_DEPTH = 64  # events nest at most 16 deep (ARCHITECTURE §4)
_BELOW_F0 = bytes(range(0xF0))  # deleting these leaves the lead bytes of 4-byte UTF-8


def canonicalize(value: object) -> bytes:
    """Return the RFC 8785 canonical form of ``value`` as UTF-8 bytes.

    Byte-identical to :func:`canonicalize_reference` for every input, errors included;
    faster for the common case (see the module docstring for when orjson is used).
    """
    if FAST_PATH_ENABLED:
        prepared = _prepare_for_orjson(value, 0, False)
        if prepared is not _USE_REFERENCE:
            try:
                data = orjson.dumps(prepared, option=_ORJSON_OPTIONS)
            except orjson.JSONEncodeError:
                pass  # lone surrogate, non-str key: the reference names the problem
            else:
                # Key order is checked here, once, rather than per object in the scan: a
                # non-BMP character anywhere is a 4-byte UTF-8 sequence (lead byte F0-F4),
                # and only when one is present are the keys looked at.
                if data.isascii() or not data.translate(None, _BELOW_F0):
                    return data
                if _prepare_for_orjson(value) is not _USE_REFERENCE:
                    return data
    return canonicalize_reference(value)


class _UseReference:
    """Type of :data:`_USE_REFERENCE`, the pre-scan's "orjson cannot be trusted here"."""


_USE_REFERENCE: Final = _UseReference()


def _prepare_for_orjson(value: Any, depth: int = 0, check_keys: bool = True) -> Any:
    """Return what to hand ``orjson.dumps(..., OPT_SORT_KEYS)`` so that it writes the
    reference's bytes (or raises), or :data:`_USE_REFERENCE` when that cannot be shown.
    With ``check_keys`` false, object keys are not looked at: the caller then checks the
    output for non-BMP characters instead (a non-str key makes orjson raise anyway).

    One pass over exact built-in types. Usually returns ``value`` itself; a float orjson
    would print differently becomes an ``orjson.Fragment`` of the reference's own text, in
    a shallow copy of each container on its path (the caller's value is never changed).
    Strings need no check: orjson escapes as §3.2.2.2 does and raises on lone surrogates.
    Each object's keys are joined so the BMP check is a single C-level scan. The depth cap
    bounds the recursion, cycles included.
    """
    kind = type(value)
    members: Iterable[Any]
    if kind is dict:
        if check_keys:
            try:
                names = "".join(value)
            except TypeError:
                return _USE_REFERENCE  # a non-str key
            if not names.isascii() and _NON_BMP.search(names) is not None:
                return _USE_REFERENCE
        members = value.values()
    elif kind is list or kind is tuple:
        members = value
    elif kind is str or kind is bool or value is None:
        return value
    elif kind is int:
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _USE_REFERENCE
    elif kind is float:
        if _float_is_exact(value):
            return value
        if not math.isfinite(value):
            return _USE_REFERENCE  # the reference raises, naming the member
        return orjson.Fragment(_number_text(value))
    else:
        return _USE_REFERENCE
    if depth >= _FAST_PATH_MAX_DEPTH:
        return _USE_REFERENCE
    for member in members:
        # Strings, literals and ints, the bulk of an event, are settled without a call.
        member_kind = type(member)
        if member_kind is str or member_kind is bool or member is None:
            continue
        if member_kind is int:
            if -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER:
                continue
            return _USE_REFERENCE
        prepared = _prepare_for_orjson(member, depth + 1, check_keys)  # positional: faster
        if prepared is not member:
            if prepared is _USE_REFERENCE:
                return _USE_REFERENCE
            return _copy_prepared(value, depth, member, prepared, check_keys)
    return value


def _copy_prepared(
    container: Any, depth: int, changed: object, replacement: object, check_keys: bool
) -> Any:
    """The rare half of :func:`_prepare_for_orjson`: a shallow copy of ``container`` (a
    dict, list or tuple) in which ``changed``, its first member to need a new form, becomes
    ``replacement`` and the members after it are prepared too. Members before it were
    already found fine, and ``changed`` is not prepared again, so each member is visited
    once however deep the float. Kept apart so the common loop needs no keys or indexes."""
    copy: Any = dict(container) if type(container) is dict else list(container)
    slots = iter(copy.items() if type(copy) is dict else enumerate(copy))
    for slot, member in slots:  # same order as the scan, so the first match is the one
        if member is changed:
            copy[slot] = replacement
            break
    for slot, member in slots:  # the rest; replacing values does not disturb iteration
        prepared = _prepare_for_orjson(member, depth + 1, check_keys)
        if prepared is _USE_REFERENCE:
            return _USE_REFERENCE
        copy[slot] = prepared
    return copy


def _float_is_exact(number: float) -> bool:
    """True when orjson writes ``number`` as §3.2.2.3 does: non-integral and
    1e-5 <= |x| < 2**52, where both print the same shortest digits in plain decimal.
    NaN fails both comparisons, ±Infinity the upper bound, -0.0 is integral."""
    return _FLOAT_MIN <= abs(number) < _FLOAT_MAX and not number.is_integer()


def _probe_orjson() -> bool:
    """Check, once at import, the orjson behaviours the fast path relies on: escaping of
    every character class §3.2.2.2 names, code-point key order for BMP keys, the float
    window's edges and fragments. Pure computation; a mismatch disables the fast path."""
    text = "".join(chr(c) for c in range(0x80)) + "\x80\xff\u2028\u2029\ud7ff\ue000\ufeff\uffff"
    text += "\U00010000\U0001f600\U0010ffff"
    keys = {chr(c): c for c in (0x0D, 0x31, 0x7F, 0x80, 0xF6, 0x20AC, 0xD7FF, 0xE000, 0xFB33)}
    floats = [
        1e-5,
        -1.5e-5,
        0.1,
        0.3 + 0.6,  # 0.8999999999999999: seventeen digits
        123.456,
        333333333.3333333,
        2.0**52 - 0.5,
        -(2.0**51 + 0.5),
        5e-5,
        0.00012345678901234567,
    ]
    # Fragments carry the floats orjson itself would misprint.
    spliced = [orjson.Fragment(_number_text(x)) for x in (1.0, 1e21, 1e-7, 1e-6, 2.0**60)]
    samples: list[object] = [text, keys, floats, [0, -1, 1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]]
    try:
        return (
            all(
                orjson.dumps(sample, option=_ORJSON_OPTIONS) == canonicalize_reference(sample)
                for sample in samples
            )
            and all(_float_is_exact(number) for number in floats)
            and orjson.dumps(spliced) == b"[1,1e+21,1e-7,0.000001,1152921504606847000]"
        )
    except (orjson.JSONEncodeError, CanonicalizationError):
        return False


#: Whether the installed orjson passed the import-time probe (tests assert that it did).
FAST_PATH_ENABLED: bool = _probe_orjson()
