"""Entry bytes: an event as sequenced into a log (ARCHITECTURE §5, **normative**).

Entry bytes are the RFC 8785 (JCS) canonical JSON of::

    {"v": 1, "origin": <log origin>, "seq": <n>, "received_at": <UTC timestamp>,
     "event": {<stored event>}, "ext": {"<vendor>": {...}}}      # "ext" optional

They are the source of truth (indexed columns are derived from them), the leaf hash covers
them, and they are at most 65,535 bytes (the tlog-tiles entry-bundle limit). Because they
are canonical, one entry has exactly one byte form: :func:`parse_entry` accepts only bytes
that re-encode to themselves.

Envelope rules (checked by :func:`entry_bytes`, :class:`Entry` and :func:`parse_entry`):

- ``v`` is 1. Any other version is refused (``unsupported_version``), never guessed at.
- ``origin``: 1-512 characters, no whitespace, control characters or ``+`` (the C2SP
  origin rules). :func:`~trailseal.core.ids.origin_for` makes stricter ones; the envelope
  does not insist on that form, so verifiers keep reading logs if host-name rules widen.
- ``seq``: an integer in 0 .. 2**53-1 (the I-JSON range JCS can carry exactly).
- ``received_at``: UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, a real instant.
- ``event``: a JSON object. It is not re-validated against the event schema here: entries
  are history, and the schema may gain members after an entry was written.
- ``ext``: absent, or a non-empty object whose keys are vendor names
  (``[a-z][a-z0-9_-]{0,31}``) and whose values are objects. ``"ext": {}`` is refused so
  that "no extension" has one byte form.

:func:`hash_entries` computes leaf and chain hashes for a run of entries: the ingest hot
path and offline verification (budget: ≥ 0.5 x one SHA-256 call per entry, §11).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from trailseal.core.canonical import MAX_SAFE_INTEGER, canonicalize
from trailseal.core.hashing import HASH_SIZE
from trailseal.core.schema import STORED_TIMESTAMP_PATTERN, parse_timestamp
from trailseal.errors import CanonicalizationError, ValidationError

__all__ = [
    "ENTRY_VERSION",
    "MAX_ENTRY_BYTES",
    "VENDOR_PATTERN",
    "Entry",
    "EntryAssembler",
    "entry_bytes",
    "entry_bytes_from_canonical",
    "hash_entries",
    "parse_entry",
]

ENTRY_VERSION: Final = 1
#: tlog-tiles entry bundles length-prefix each entry with 16 bits.
MAX_ENTRY_BYTES: Final = 65_535
#: Names of ``ext`` members (``auditledge``, ``fact0``, ``invoance``, ``pangea``, ...).
VENDOR_PATTERN: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ORIGIN_PATTERN: Final = re.compile(r"[^\s+\x00-\x1f\x7f]{1,512}")
_MEMBERS: Final = frozenset({"v", "origin", "seq", "received_at", "event", "ext"})
_REQUIRED: Final = ("v", "origin", "seq", "received_at", "event")


def _type_name(value: object) -> str:
    return type(value).__qualname__


def _check_envelope(
    v: object, origin: object, seq: object, received_at: object, event: object, ext: object
) -> None:
    """Raise ValidationError (pointer into the entry) for the first bad envelope member."""
    if type(v) is not int or v != ENTRY_VERSION:
        raise ValidationError(
            f"entry version {v!r} is not supported; this code reads version {ENTRY_VERSION}",
            field="/v",
            code="unsupported_version",
        )
    if not isinstance(origin, str) or _ORIGIN_PATTERN.fullmatch(origin) is None:
        raise ValidationError(
            f"expected an origin (1-512 characters, no whitespace, control characters or "
            f"'+'), got {origin!r:.80}",
            field="/origin",
            code="format",
        )
    if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
        raise ValidationError(
            f"expected an integer in 0..2**53-1, got {seq!r:.40}",
            field="/seq",
            code="type" if type(seq) is not int else "out_of_range",
        )
    if not isinstance(received_at, str) or STORED_TIMESTAMP_PATTERN.fullmatch(received_at) is None:
        raise ValidationError(
            f"expected a UTC timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ, got {received_at!r:.80}",
            field="/received_at",
            code="format",
        )
    parse_timestamp(received_at, field="/received_at")  # a real date, not 2024-02-30
    if not isinstance(event, dict):
        raise ValidationError(
            f"expected the event as a JSON object, got {_type_name(event)}",
            field="/event",
            code="type",
        )
    if ext is None:
        return
    if not isinstance(ext, dict):
        raise ValidationError(
            f"expected ext as an object of vendor objects, got {_type_name(ext)}",
            field="/ext",
            code="type",
        )
    if not ext:
        raise ValidationError(
            "ext must be omitted rather than empty (one byte form per entry)",
            field="/ext",
            code="too_short",
        )
    for vendor, body in ext.items():
        if not isinstance(vendor, str) or VENDOR_PATTERN.fullmatch(vendor) is None:
            raise ValidationError(
                f"ext member {vendor!r:.40} is not a vendor name ([a-z][a-z0-9_-]{{0,31}})",
                field="/ext",
                code="pattern",
            )
        if not isinstance(body, dict):
            raise ValidationError(
                f"expected an object, got {_type_name(body)}",
                field=f"/ext/{vendor}",
                code="type",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One log entry, validated on construction (see the module docstring).

    ``event`` and ``ext`` are plain dicts as decoded; treat them as read-only (the
    dataclass is frozen, its contents cannot be).
    """

    v: int = ENTRY_VERSION
    origin: str
    seq: int
    received_at: str
    event: dict[str, Any]
    ext: dict[str, dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        _check_envelope(self.v, self.origin, self.seq, self.received_at, self.event, self.ext)

    def to_bytes(self) -> bytes:
        """The entry bytes (what :func:`entry_bytes` gives for these members)."""
        return entry_bytes(
            origin=self.origin,
            seq=self.seq,
            received_at=self.received_at,
            event=self.event,
            ext=self.ext,
        )


def entry_bytes(
    *,
    origin: str,
    seq: int,
    received_at: str,
    event: Mapping[str, Any],
    ext: Mapping[str, Mapping[str, Any]] | None = None,
) -> bytes:
    """The entry bytes of one event (ARCHITECTURE §5).

    Preconditions: ``event`` is the stored form (validated and normalized by
    :mod:`trailseal.core.schema`); ``received_at`` is in stored form. Raises
    :class:`ValidationError` for a bad envelope member, a value JCS cannot encode (its
    pointer starts ``/event`` or ``/ext``), or a result over 65,535 bytes (``too_large``).
    """
    # Other Mappings (MappingProxyType, ...) become dicts; non-mappings reach the checks.
    event_dict = (
        dict(event) if isinstance(event, Mapping) and not isinstance(event, dict) else event
    )
    ext_dict = dict(ext) if isinstance(ext, Mapping) and not isinstance(ext, dict) else ext
    _check_envelope(ENTRY_VERSION, origin, seq, received_at, event_dict, ext_dict)
    document: dict[str, object] = {
        "v": ENTRY_VERSION,
        "origin": origin,
        "seq": seq,
        "received_at": received_at,
        "event": event_dict,
    }
    if ext_dict is not None:
        document["ext"] = ext_dict
    data = canonicalize(document)
    if len(data) > MAX_ENTRY_BYTES:
        raise ValidationError(
            f"entry is {len(data)} bytes; entry bytes are at most {MAX_ENTRY_BYTES} "
            "(tlog-tiles entry bundles)",
            code="too_large",
        )
    return data


def parse_entry(data: bytes) -> Entry:
    """Parse entry bytes strictly: valid UTF-8 JSON, exactly the envelope members, ``v`` 1,
    each member well formed, at most 65,535 bytes, and canonical (re-encoding gives
    ``data`` back byte for byte). Raises :class:`ValidationError` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(f"expected bytes, got {_type_name(data)}", code="type")
    if len(data) > MAX_ENTRY_BYTES:
        raise ValidationError(
            f"entry is {len(data)} bytes; at most {MAX_ENTRY_BYTES}", code="too_large"
        )
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid UTF-8 JSON: {exc}", code="format") from None
    if not isinstance(document, dict):
        raise ValidationError(f"expected an entry object, got {_type_name(document)}", code="type")
    for key in document:
        if key not in _MEMBERS:
            raise ValidationError(
                f"entries have no member {key!r:.40} (v, origin, seq, received_at, event, ext)",
                field=f"/{key.replace('~', '~0').replace('/', '~1')}",
                code="unknown_field",
            )
    for key in _REQUIRED:
        if key not in document:
            raise ValidationError(f"entries need {key!r}", field=f"/{key}", code="required")
    if "ext" in document and document["ext"] is None:
        raise ValidationError("ext must be omitted rather than null", field="/ext", code="type")
    try:
        canonical = canonicalize(document)
    except CanonicalizationError:
        # JSON numbers are doubles (RFC 8785 §3.2.2.3): an integral double such as 1e16 is
        # written as plain digits, which orjson reads back as an int beyond the I-JSON
        # range. Read such numbers as doubles, as the writer meant them, and retry.
        document = _loads_doubles(data)
        canonical = canonicalize(document)
    entry = Entry(
        v=document["v"],
        origin=document["origin"],
        seq=document["seq"],
        received_at=document["received_at"],
        event=document["event"],
        ext=document.get("ext"),
    )
    if canonical != data:
        raise ValidationError(
            "entry bytes are not RFC 8785 canonical JSON (member order, whitespace, number "
            "or string form, or a duplicate member)",
            code="not_canonical",
        )
    return entry


def _int_or_double(text: str) -> int | float:
    value = float(text)
    return int(text) if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else value


def _reject_constant(name: str) -> object:
    raise ValidationError(f"{name} is not JSON", code="format")


def _loads_doubles(data: bytes | bytearray | memoryview) -> Any:
    """Decode JSON reading integers beyond ±(2**53-1) as doubles (slow path, rare)."""
    try:
        return json.loads(bytes(data), parse_int=_int_or_double, parse_constant=_reject_constant)
    except ValueError as exc:  # ValidationError is a ValueError too
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"not valid UTF-8 JSON: {exc}", code="format") from None


def hash_entries(entries: Sequence[bytes], prev_hash: bytes) -> list[tuple[bytes, bytes]]:
    """``(leaf_hash, chain_hash)`` of each entry in order, starting the chain from
    ``prev_hash`` (the chain hash before the first entry; ``ZERO_HASH`` for entry 0).

    Same results as :func:`~trailseal.core.hashing.leaf_hash` and
    :func:`~trailseal.core.hashing.chain_hash`, written for speed: SHA-256 bound locally,
    the 0x00 prefix hashed once and its state copied per entry (no concatenation copy of
    the entry bytes).
    """
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    sha256 = hashlib.sha256
    leaf_prefix = sha256(b"\x00")
    copy = leaf_prefix.copy
    out: list[tuple[bytes, bytes]] = []
    append = out.append
    chain = bytes(prev_hash)
    for data in entries:
        state = copy()
        state.update(data)
        leaf = state.digest()
        chain = sha256(chain + leaf).digest()
        append((leaf, chain))
    return out


class EntryAssembler:
    """Entry bytes of one batch (one origin, one ``received_at``) from the events'
    already-canonical JCS bytes, so the sequencer's locked section does no JSON work.

    Why this is exact: RFC 8785 sorts the envelope members by UTF-16 code units, which for
    these ASCII names is ``event`` < ``ext`` < ``origin`` < ``received_at`` < ``seq`` <
    ``v``; a canonical member value is the same bytes wherever it is nested. The members
    after ``ext`` are the same for the whole batch but ``seq``, so they are encoded once.

    Preconditions (the caller's, not re-checked for speed): ``event`` is
    ``canonicalize(stored_event)``, ``ext`` is ``canonicalize(ext)`` of a valid ext
    object, ``origin`` and ``received_at`` pass the envelope rules. The 65,535-byte limit
    is checked.
    """

    __slots__ = ("_middle",)

    def __init__(self, origin: str, received_at: str) -> None:
        self._middle = (
            b',"origin":'
            + canonicalize(origin)
            + b',"received_at":"'
            + received_at.encode("ascii")
            + b'","seq":'
        )

    def entry(self, seq: int, event: bytes, ext: bytes | None = None) -> bytes:
        if ext is None:
            data = b"".join((b'{"event":', event, self._middle, b"%d" % seq, b',"v":1}'))
        else:
            data = b"".join(
                (b'{"event":', event, b',"ext":', ext, self._middle, b"%d" % seq, b',"v":1}')
            )
        if len(data) > MAX_ENTRY_BYTES:
            raise _too_large(data)
        return data

    def entries(
        self, first_seq: int, events: Sequence[bytes], exts: Sequence[bytes | None]
    ) -> list[bytes]:
        """:meth:`entry` of each ``(events[i], exts[i])`` at ``seq = first_seq + i``: the
        append path's form, one comprehension and one size check for the whole run."""
        middle = self._middle
        data = [
            b'{"event":%b%b%d,"v":1}' % (event, middle, seq)
            if ext is None
            else b'{"event":%b,"ext":%b%b%d,"v":1}' % (event, ext, middle, seq)
            for seq, event, ext in zip(
                range(first_seq, first_seq + len(events)), events, exts, strict=True
            )
        ]
        if data and max(map(len, data)) > MAX_ENTRY_BYTES:
            raise _too_large(next(d for d in data if len(d) > MAX_ENTRY_BYTES))
        return data


def _too_large(data: bytes) -> ValidationError:
    return ValidationError(
        f"entry is {len(data)} bytes; entry bytes are at most {MAX_ENTRY_BYTES} "
        "(tlog-tiles entry bundles)",
        code="too_large",
    )


def entry_bytes_from_canonical(
    *, origin: str, seq: int, received_at: str, event: bytes, ext: bytes | None = None
) -> bytes:
    """One entry's bytes from canonical members (see :class:`EntryAssembler`)."""
    return EntryAssembler(origin, received_at).entry(seq, event, ext)
