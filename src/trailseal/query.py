"""Event filters, the query language and opaque cursors (pure: no IO, no clock).

Theory of operation
-------------------
A listing request (ARCHITECTURE §7) becomes one :class:`EventFilter`: query-string
parameters build one, the ``q`` language (:func:`parse_query`) builds another, and
:meth:`EventFilter.merge` combines them (filters are conjunctive, so a merge is an
intersection; two different exact values cannot both hold and are an error). The store
runs the filter (``Store.query_entries``) over the logs the caller may read, in commit
order, and the caller hands back a :class:`Cursor` to continue. Every bad input is a
:class:`~trailseal.errors.ValidationError` naming a field: ``/q`` for the query language,
``/cursor`` for cursors, the parameter's name (``/since``) for the rest.

Matching rules (the same on both store drivers)
-----------------------------------------------
==================  =========================================================================
field               matches when
==================  =========================================================================
organization        the entry is in one of the organization's logs (the caller resolves the
                    logs; ``None`` means every log of the project)
actor_id            ``actor.id`` equals the value (case-sensitive)
actor_type          ``actor.type`` equals it; an absent type reads as ``user``
actor_name          ``actor.name`` contains the value, case-insensitively
action              ``action`` equals the value (a valid action, case-sensitive)
action_prefix       ``action`` starts with the value (``invoice.*`` → ``invoice.``)
action_contains     ``action`` contains the value, case-insensitively
resource_type, _id  ``resource.type`` / ``resource.id`` equal the value
target_id           some ``targets[].id`` equals it (no whitespace: ids are stored
                    space-separated, so an id holding a space cannot be matched exactly)
outcome             ``outcome`` equals it; an absent outcome reads as ``success``
since, until        ``since <= occurred_at <= until`` (both inclusive); RFC 3339 with an
                    offset, or a bare date: ``since:2026-01-31`` is that day's first
                    microsecond, ``until:2026-01-31`` its last (the whole day is included)
tags                every listed tag is among ``tags`` (exact, no whitespace)
text                every term occurs in the searchable text (message, action, source,
                    status, actor id/name/email, resource and target types, ids and
                    names, metadata strings and numbers): its words, in order and
                    adjacent, case-insensitively. A word is a run of letters and
                    digits; anything else separates words, so ``"foo-bar"``
                    matches ``foo bar`` and ``foo.bar``. No operators, no prefixes: user
                    text never reaches a full-text query language unquoted.
==================  =========================================================================

Full text rests on each database's own tokenizer (SQLite FTS5 ``unicode61`` with
diacritics removed; PostgreSQL's ``simple`` parser). They agree on words of letters and
digits, in any script and case, which the store tests check against one reference. They
differ at the edges: SQLite also folds accents (``cafe`` finds ``café``; PostgreSQL needs
the accent), and PostgreSQL indexes host names, e-mail addresses, decimals and versions as
single tokens (``alice@example.com`` is found by the whole address on both drivers, by
``example`` alone only on SQLite; a hyphenated compound also shifts phrase positions).

Redacted entries keep ``action``, ``actor.id``/``type``, ``resource``, ``outcome`` and
``occurred_at`` as index columns and still match on those; their names, targets, tags and
text are gone, so filters on those no longer match them.

Query language
--------------
::

    query   = ws* [ clause *( ws+ clause ) ] ws*
    clause  = key ":" value          ; a filter
            | value                  ; a full-text term (bare word or "quoted phrase")
    key     = letter-or-_ *( letter / digit / "_" )      ; case-insensitive
    value   = quoted / bare
    quoted  = DQUOTE *( any-but-\\-or-DQUOTE / "\\" DQUOTE / "\\\\" ) DQUOTE
    bare    = 1*( any character but whitespace and DQUOTE )

Keys: ``org`` (alias ``organization``), ``actor`` (actor id, exact), ``actor_type``,
``actor_name`` (partial), ``action``, ``resource`` (``type/id``, split at the first ``/``;
without a ``/`` it is the id), ``resource_type``, ``resource_id``, ``target``, ``outcome``,
``tag`` (repeatable: all must hold), ``since``, ``until``. ``action:`` takes
``invoice.paid`` (exact), ``invoice.*`` or ``invoice*`` (prefix), ``*paid*`` (contains).
Any other ``word:`` is an unknown key and an error (quote the term to search for it:
``"https://example.com"``); tokens whose part before ``:`` is not a key-like word (``12:30``)
are ordinary terms. A quoted value must be followed by whitespace or the end. Repeating a key
narrows (``since``/``until`` intersect, prefixes keep the longer) and two different exact
values are an error. There is no OR and no negation.

Cursors
-------
A :class:`Cursor` is the commit position of the last entry a page returned (SQLite's
database-wide rowid, PostgreSQL's project-wide ``commit_seq``), the order, and a
fingerprint of the filter, packed with a checksum into 30 URL-safe characters. It is opaque:
clients must not build or edit one, and the position is not part of the API contract. The
checksum catches corruption and casual edits (a forged cursor can only move within the same
filter and the caller's own logs, which the store applies on every page anyway).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from trailseal.core.schema import (
    ACTION_PATTERN,
    ACTOR_TYPES,
    OUTCOMES,
    format_timestamp,
    parse_timestamp,
)
from trailseal.errors import ValidationError

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TAGS",
    "MAX_TERMS",
    "MAX_VALUE_CHARS",
    "QUERY_KEYS",
    "Cursor",
    "EventFilter",
    "format_query",
    "parse_query",
]

#: Longest accepted ``q`` string, filter value, and number of tags / full-text terms.
MAX_QUERY_CHARS: Final = 8192
MAX_VALUE_CHARS: Final = 1024
MAX_TAGS: Final = 32
MAX_TERMS: Final = 32

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ACTION_PART = re.compile(r"[A-Za-z0-9_.-]+")
# A word is a run of letters and digits; ``_`` is a separator (as in both full-text
# tokenizers), so it does not count as a word character here.
_WORD_CHAR = re.compile(r"[^\W_]")
# Lone surrogates cannot be encoded for either database; NUL cannot live in PostgreSQL text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_SCALARS: Final = (
    "organization",
    "actor_id",
    "actor_type",
    "actor_name",
    "action",
    "action_prefix",
    "action_contains",
    "resource_type",
    "resource_id",
    "target_id",
    "outcome",
)


def _check_string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"expected a string, got {type(value).__name__}", field=field, code="type"
        )
    if not value:
        raise ValidationError("must not be empty", field=field, code="too_short")
    if len(value) > MAX_VALUE_CHARS:
        raise ValidationError(
            f"longer than {MAX_VALUE_CHARS} characters", field=field, code="too_long"
        )
    if _UNSTORABLE.search(value):
        raise ValidationError("contains NUL or a lone surrogate", field=field, code="format")
    return value


def _no_space(value: str, field: str, what: str) -> None:
    if any(c.isspace() for c in value):
        # Tags and target ids are indexed as space-separated tokens.
        raise ValidationError(
            f"{what} with whitespace cannot be matched: {value[:64]!r}", field=field, code="pattern"
        )


def _bound(value: object, field: str, *, end_of_day: bool) -> str:
    text = _check_string(value, field)
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                f"{text!r} is not a real date", field=field, code="format"
            ) from None
        clock = "23:59:59.999999" if end_of_day else "00:00:00.000000"
        return f"{day.isoformat()}T{clock}Z"
    return format_timestamp(parse_timestamp(text, field=field))


def _tuple(value: object, field: str, limit: int) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ValidationError("expected a list of strings", field=field, code="type")
    out: list[str] = []
    for n, item in enumerate(value):
        item = _check_string(item, f"{field}/{n}")
        if item not in out:
            out.append(item)
    if len(out) > limit:
        raise ValidationError(f"at most {limit} values", field=field, code="too_many")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a listing must match; see the module docstring for each field's rule.

    Validated and normalized on construction (raises :class:`ValidationError` naming the
    field): ``since``/``until`` become stored-form UTC timestamps, ``tags``/``text`` become
    tuples without duplicates. ``None`` and ``()`` mean "no condition".
    """

    organization: str | None = None
    actor_id: str | None = None
    actor_type: str | None = None
    actor_name: str | None = None
    action: str | None = None
    action_prefix: str | None = None
    action_contains: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    tags: tuple[str, ...] = ()
    text: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in _SCALARS:
            value = getattr(self, name)
            if value is not None:
                _check_string(value, f"/{name}")
        if self.actor_type is not None and self.actor_type not in ACTOR_TYPES:
            raise ValidationError(
                f"expected one of {', '.join(ACTOR_TYPES)}", field="/actor_type", code="enum"
            )
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValidationError(
                f"expected one of {', '.join(OUTCOMES)}", field="/outcome", code="enum"
            )
        if self.action is not None and ACTION_PATTERN.fullmatch(self.action) is None:
            raise ValidationError(
                f"{self.action[:64]!r} is not an action (e.g. invoice.paid)",
                field="/action",
                code="pattern",
            )
        for name in ("action_prefix", "action_contains"):
            value = getattr(self, name)
            if value is not None and _ACTION_PART.fullmatch(value) is None:
                raise ValidationError(
                    "may hold only letters, digits, '.', '_' and '-'",
                    field=f"/{name}",
                    code="pattern",
                )
        if self.target_id is not None:
            _no_space(self.target_id, "/target_id", "target ids")
        tags = _tuple(self.tags, "/tags", MAX_TAGS)
        for n, tag in enumerate(tags):
            _no_space(tag, f"/tags/{n}", "tags")
        text = _tuple(self.text, "/text", MAX_TERMS)
        for n, term in enumerate(text):
            if _WORD_CHAR.search(term) is None:
                raise ValidationError(
                    f"search term {term[:64]!r} has no letters or digits",
                    field=f"/text/{n}",
                    code="pattern",
                )
        since = None if self.since is None else _bound(self.since, "/since", end_of_day=False)
        until = None if self.until is None else _bound(self.until, "/until", end_of_day=True)
        if since is not None and until is not None and since > until:
            raise ValidationError(
                f"since ({since}) is after until ({until})", field="/since", code="out_of_range"
            )
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "until", until)

    @property
    def empty(self) -> bool:
        """True when the filter matches every entry of the logs it is run over."""
        return self == _EMPTY

    def merge(self, other: EventFilter, *, field: str = "/q") -> EventFilter:
        """Both filters at once (an intersection). Raises :class:`ValidationError` on
        ``field`` when they ask for two different exact values, or two partial values of
        which neither implies the other."""
        changes: dict[str, object] = {}
        for name in _SCALARS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is None or theirs is None or mine == theirs:
                changes[name] = theirs if mine is None else mine
            elif name == "action_prefix" and (mine.startswith(theirs) or theirs.startswith(mine)):
                changes[name] = max(mine, theirs, key=len)  # the longer prefix implies both
            elif name in ("actor_name", "action_contains") and (
                mine.lower() in theirs.lower() or theirs.lower() in mine.lower()
            ):
                changes[name] = max(mine, theirs, key=len)
            else:
                raise ValidationError(
                    f"{name} cannot be both {mine!r} and {theirs!r}", field=field, code="conflict"
                )
        bounds = [b for b in (self.since, other.since) if b is not None]
        changes["since"] = max(bounds) if bounds else None
        bounds = [b for b in (self.until, other.until) if b is not None]
        changes["until"] = min(bounds) if bounds else None
        changes["tags"] = self.tags + other.tags
        changes["text"] = self.text + other.text
        try:
            return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ValidationError(exc.message, field=field, code=exc.code) from None

    def fingerprint(self) -> bytes:
        """8 bytes that differ (in practice) between filters that match differently; the
        order of tags and terms does not matter."""
        data = [getattr(self, name) for name in _SCALARS]
        data += [self.since, self.until, sorted(self.tags), sorted(self.text)]
        encoded = json.dumps(["trailseal-filter/1", data], ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).digest()[:8]


_EMPTY: Final = EventFilter()


# ---------------------------------------------------------------------------------------
# The query language.
# ---------------------------------------------------------------------------------------

#: Keys of the query language and the filter field each one sets.
QUERY_KEYS: Final = {
    "org": "organization",
    "organization": "organization",
    "actor": "actor_id",
    "actor_type": "actor_type",
    "actor_name": "actor_name",
    "action": "action",
    "resource": "resource",
    "resource_type": "resource_type",
    "resource_id": "resource_id",
    "target": "target_id",
    "outcome": "outcome",
    "tag": "tags",
    "since": "since",
    "until": "until",
}
# Keys people try that are not ours, and what to use instead.
_HINTS: Final = {
    "type": "'actor_type' or 'resource_type'",
    "id": "'actor', 'resource_id' or 'target'",
    "name": "'actor_name'",
    "organization_id": "'org'",
    "status": "'outcome'",
    "from": "'since'",
    "to": "'until'",
    "tags": "'tag'",
    "targets": "'target'",
    "text": 'a bare word or a "quoted phrase"',
}
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")
_LOOKS_LIKE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:")


def _q_error(message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, field="/q", code=code)


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """The string of the quoted value opening at ``text[start]``; returns it and the index
    after the closing quote."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ('"', "\\"):
                raise _q_error(
                    f"unknown escape {text[i : i + 2]!r} in a quoted value at "
                    f'offset {i} (only \\" and \\\\ are escapes)'
                )
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    raise _q_error(f"unterminated quote starting at offset {start}")


def _read_bare(text: str, start: int) -> tuple[str, int]:
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    value = text[start:end]
    if '"' in value:
        raise _q_error(f"a quote inside {value[:64]!r}; quote the whole value instead")
    return value, end


def _action_clause(value: str) -> EventFilter:
    if "*" not in value:
        return EventFilter(action=value)
    if value.startswith("*") and value.endswith("*") and value.count("*") == 2 and len(value) > 2:
        return EventFilter(action_contains=value[1:-1])
    if value.endswith("*") and value.count("*") == 1 and len(value) > 1:
        return EventFilter(action_prefix=value[:-1])
    raise _q_error("a wildcard may end an action (invoice.*) or surround it (*paid*) only")


def _clause(key: str, value: str) -> EventFilter:
    field = QUERY_KEYS[key]
    if field == "action":
        return _action_clause(value)
    if field == "resource":
        if "/" not in value:
            return EventFilter(resource_id=value)
        rtype, rid = value.split("/", 1)
        if not rtype or not rid:
            raise _q_error("resource: takes type/id (split at the first '/') or an id")
        return EventFilter(resource_type=rtype, resource_id=rid)
    if field == "tags":
        return EventFilter(tags=(value,))
    fields: dict[str, Any] = {field: value}
    return EventFilter(**fields)


def parse_query(text: str) -> EventFilter:
    """The filter a ``q`` string describes (grammar in the module docstring). Raises
    :class:`ValidationError` on field ``/q`` naming the offending token."""
    if not isinstance(text, str):
        raise _q_error(f"expected a string, got {type(text).__name__}", "type")
    if len(text) > MAX_QUERY_CHARS:
        raise _q_error(f"longer than {MAX_QUERY_CHARS} characters", "too_long")
    result = _EMPTY
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        start = i
        key_match = _KEY.match(text, i)
        key: str | None = None
        if key_match is not None:
            key = key_match.group(1).lower()
            if key not in QUERY_KEYS:
                close = _HINTS.get(key) or ", ".join(
                    repr(k) for k in difflib.get_close_matches(key, list(QUERY_KEYS), n=1)
                )
                hint = f"; did you mean {close}?" if close else ""
                raw = text[start:].split(None, 1)[0]
                raise _q_error(
                    f"unknown key {key!r} in {raw[:64]!r}{hint} (known keys: "
                    f"{', '.join(sorted(QUERY_KEYS))}; quote the term to search "
                    "for it as text)",
                    "unknown_key",
                )
            i = key_match.end()
        if i < len(text) and text[i] == '"':
            value, i = _read_quoted(text, i)
            if i < len(text) and not text[i].isspace():
                raise _q_error(f"expected whitespace after the quoted value at offset {start}")
        else:
            value, i = _read_bare(text, i)
        token = text[start:i]
        try:
            if key is None:
                clause = EventFilter(text=(value,))
            elif not value:
                raise _q_error("needs a value", "too_short")
            else:
                clause = _clause(key, value)
            result = result.merge(clause)
        except ValidationError as exc:
            raise _q_error(f"{token[:64]!r}: {exc.message}", exc.code) from None
    return result


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(value: str) -> str:
    if value and '"' not in value and not any(c.isspace() for c in value):
        return value
    return _quote(value)


def _term(value: str) -> str:
    if _LOOKS_LIKE_KEY.match(value):
        return _quote(value)  # would read as key:value
    return _value(value)


def format_query(flt: EventFilter) -> str:
    """A ``q`` string that :func:`parse_query` reads back as ``flt`` (same field values,
    same tag and term order)."""
    parts: list[str] = []

    def add(key: str, value: str | None) -> None:
        if value is not None:
            parts.append(f"{key}:{_value(value)}")

    add("org", flt.organization)
    add("actor", flt.actor_id)
    add("actor_type", flt.actor_type)
    add("actor_name", flt.actor_name)
    add("action", flt.action)
    add("action", None if flt.action_prefix is None else flt.action_prefix + "*")
    add("action", None if flt.action_contains is None else f"*{flt.action_contains}*")
    add("resource_type", flt.resource_type)
    add("resource_id", flt.resource_id)
    add("target", flt.target_id)
    add("outcome", flt.outcome)
    for tag in flt.tags:
        add("tag", tag)
    add("since", flt.since)
    add("until", flt.until)
    parts.extend(_term(term) for term in flt.text)
    return " ".join(parts)


# ---------------------------------------------------------------------------------------
# Cursors.
# ---------------------------------------------------------------------------------------

_CURSOR_VERSION: Final = 1
_CURSOR_BYTES: Final = 22  # version, flags, position (8), fingerprint (8), checksum (4)
_CURSOR_DOMAIN: Final = b"trailseal-cursor/1\x00"
_CURSOR_CHARS = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_POSITION: Final = 2**63 - 1  # a signed 64-bit column on both databases


def _cursor_error(message: str, code: str = "invalid_cursor") -> ValidationError:
    return ValidationError(message, field="/cursor", code=code)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after commit ``position``, in one order, for one filter.

    Build it with :meth:`after`, send :meth:`encode`; on the next request :meth:`decode`
    the client's text and :meth:`resume` it against the request's filter and order.
    """

    position: int
    descending: bool
    fingerprint: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.position <= _MAX_POSITION:
            raise ValueError(f"cursor position {self.position} outside 0..2**63-1")
        if len(self.fingerprint) != 8:
            raise ValueError("a cursor fingerprint is 8 bytes")

    @classmethod
    def after(cls, position: int, flt: EventFilter, *, descending: bool) -> Cursor:
        return cls(position, descending, flt.fingerprint())

    def encode(self) -> str:
        body = (
            bytes([_CURSOR_VERSION, int(self.descending)])
            + self.position.to_bytes(8, "big")
            + self.fingerprint
        )
        check = hashlib.sha256(_CURSOR_DOMAIN + body).digest()[:4]
        return base64.urlsafe_b64encode(body + check).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: object) -> Cursor:
        """Parse a client's cursor; raises :class:`ValidationError` (``/cursor``) for
        anything :meth:`encode` did not produce."""
        if not isinstance(text, str) or _CURSOR_CHARS.fullmatch(text) is None:
            raise _cursor_error("malformed cursor (not one this server issued)")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise _cursor_error("malformed cursor (not one this server issued)") from None
        if len(raw) != _CURSOR_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=") != (
            text.encode("ascii")
        ):
            raise _cursor_error("malformed cursor (not one this server issued)")
        body, check = raw[:-4], raw[-4:]
        if hashlib.sha256(_CURSOR_DOMAIN + body).digest()[:4] != check:
            raise _cursor_error("cursor checksum mismatch (it was altered or truncated)")
        if body[0] != _CURSOR_VERSION or body[1] not in (0, 1):
            raise _cursor_error("unsupported cursor version")
        position = int.from_bytes(body[2:10], "big")
        if position > _MAX_POSITION:
            raise _cursor_error("malformed cursor (position out of range)")
        return cls(position, bool(body[1]), bytes(body[10:18]))

    def resume(self, flt: EventFilter, *, descending: bool) -> int:
        """The position to continue after, once the cursor is known to belong to this
        filter and order; raises :class:`ValidationError` (``/cursor``) otherwise."""
        if self.descending != descending:
            raise _cursor_error("the cursor was issued for the other order", "cursor_mismatch")
        if self.fingerprint != flt.fingerprint():
            raise _cursor_error("the cursor was issued for a different filter", "cursor_mismatch")
        return self.position
