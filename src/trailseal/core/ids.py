"""Identifiers: event ids (UUIDv7), log ids and log origins (ARCHITECTURE §2, §4, §9).

Theory of operation
-------------------
- **Event ids** are caller-chosen strings matching :data:`ID_PATTERN`, or, when absent,
  time-ordered UUIDv7 text (RFC 9562 §5.7) made here. Time order matters: a unique index
  takes new ids at its right edge, about 3x faster than random UUIDv4s (§9 measurements).
- :func:`uuid7` is the pure encoder: the caller supplies the milliseconds and the random
  bytes. :class:`IdGenerator` adds the one piece of state RFC 9562 §6.2 asks for, so ids
  from one generator strictly increase even when the clock stands still or steps back.
- **Log ids** are 128 random bits as 26 lowercase, unpadded base32 characters; the
  **origin** of a log is ``<host-name>/log/<log-id>`` (§2). Caller-chosen names never enter
  an origin.

Nothing here reads a clock or a random source: both are parameters.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Final

from trailseal.errors import ValidationError

__all__ = [
    "HOST_NAME_PATTERN",
    "ID_PATTERN",
    "LOG_ID_PATTERN",
    "UUID7_PATTERN",
    "IdGenerator",
    "new_log_id",
    "origin_for",
    "uuid7",
    "validate_host_name",
    "validate_log_id",
]

#: Event ids (ARCHITECTURE §4). Use with ``fullmatch``.
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: What :func:`uuid7` produces: lowercase, version 7, RFC 9562 variant.
UUID7_PATTERN: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)

#: 16 bytes in base32 are 25 full characters plus one that carries 3 bits and 2 zero
#: padding bits, so the last character is one of 8; anything else is not canonical.
LOG_ID_PATTERN: Final = re.compile(r"[a-z2-7]{25}[aeimquy4]")

#: Host names: lowercase DNS names (RFC 1123 labels, dot separated, no trailing dot).
HOST_NAME_PATTERN: Final = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
_HOST_NAME_MAX = 253

# UUIDv7 layout (RFC 9562 §5.7): unix_ts_ms:48 | ver:4 | rand_a:12 | var:2 | rand_b:62.
_MS_LIMIT: Final = 1 << 48
_VERSION_BITS: Final = 0x7 << 76
_VARIANT_BITS: Final = 0b10 << 62
_RAND_B_MASK: Final = (1 << 62) - 1
_RAND_A_MASK: Final = 0xFFF
_RAND_BYTES: Final = 10
_COUNTER_BITS: Final = 74  # rand_a and rand_b together
_COUNTER_MAX: Final = (1 << _COUNTER_BITS) - 1
# A fresh millisecond seeds the counter with its top bit clear, leaving at least 2**73
# increments before a rollover (RFC 9562 §6.2 "counter rollover guards").
_SEED_MASK: Final = (1 << (_COUNTER_BITS - 1)) - 1


def _format(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7(unix_ms: int, rand: bytes) -> str:
    """UUIDv7 text (RFC 9562 §5.7), lowercase, for ``unix_ms`` and 10 random bytes.

    ``rand`` supplies the 74 random bits: ``rand_a`` is its first 12 bits and ``rand_b``
    its last 62 bits (the 6 bits between are dropped). Ids of later milliseconds sort
    after earlier ones, as text and as bytes.

    Preconditions: ``0 <= unix_ms < 2**48``, ``len(rand) == 10``.
    """
    if type(unix_ms) is not int or not 0 <= unix_ms < _MS_LIMIT:
        raise ValueError(f"unix_ms must be an int in [0, 2**48), got {unix_ms!r}")
    if len(rand) != _RAND_BYTES:
        raise ValueError(f"rand must be {_RAND_BYTES} bytes, got {len(rand)}")
    r = int.from_bytes(rand, "big")
    return _format(
        (unix_ms << 80)
        | _VERSION_BITS
        | (((r >> 68) & _RAND_A_MASK) << 64)
        | _VARIANT_BITS
        | (r & _RAND_B_MASK)
    )


class IdGenerator:
    """Strictly increasing UUIDv7 ids for one process (RFC 9562 §6.2, method 2).

    ``clock()`` returns Unix time in milliseconds; ``random(n)`` returns ``n`` random bytes
    (``os.urandom`` in production). The 74 bits after the version and variant (``rand_a``
    and ``rand_b``) act as one counter: each new millisecond seeds it from ``random`` with
    its top bit clear; a call in the same millisecond (or after the clock stepped back)
    keeps the last timestamp and adds one, so no random bytes are drawn on that path. In the
    practically impossible case that the counter overflows, the timestamp moves on by 1 ms.

    Why +1 and not a random increment: it costs no system call on the SDK's hot path, and
    ids are not secrets (they are idempotency keys, and ``tsk_`` keys guard the API).
    Uniqueness across processes rests on the 73 random seed bits of each millisecond.

    Not thread-safe: callers that share one generator between threads must serialize
    :meth:`next` (a ``threading.Lock`` around it). After ``os.fork()`` call :meth:`reset`
    in the child, or parent and child would continue one counter and collide.
    """

    __slots__ = ("_clock", "_counter", "_ms", "_random")

    def __init__(self, clock: Callable[[], int], random: Callable[[int], bytes]) -> None:
        self._clock = clock
        self._random = random
        self._ms = -1
        self._counter = 0

    def reset(self) -> None:
        """Forget the last timestamp and counter; the next id reseeds from ``random``."""
        self._ms = -1
        self._counter = 0

    def _seed(self) -> int:
        rand = self._random(_RAND_BYTES)
        if len(rand) != _RAND_BYTES:
            raise ValueError(f"random({_RAND_BYTES}) returned {len(rand)} bytes")
        return int.from_bytes(rand, "big") & _SEED_MASK

    def next(self) -> str:
        """The next id: strictly greater (as text) than every id this generator made."""
        ms = self._clock()
        if ms > self._ms:
            if not ms < _MS_LIMIT:
                raise ValueError(f"clock() must be in [0, 2**48) ms, got {ms!r}")
            counter = self._seed()
            self._ms = ms
        else:
            # Clock did not advance (or went back): stay on the last timestamp, count up.
            if self._ms < 0:
                raise ValueError(f"clock() must be in [0, 2**48) ms, got {ms!r}")
            ms = self._ms
            counter = self._counter + 1
            if counter > _COUNTER_MAX:
                ms += 1
                if ms >= _MS_LIMIT:
                    raise ValueError("UUIDv7 timestamp space exhausted")
                counter = self._seed()
                self._ms = ms
        self._counter = counter
        return _format(
            (ms << 80)
            | _VERSION_BITS
            | ((counter >> 62) << 64)
            | _VARIANT_BITS
            | (counter & _RAND_B_MASK)
        )

    __call__ = next


def new_log_id(rand: bytes) -> str:
    """A log id: the 16 bytes ``rand`` as 26 lowercase base32 characters, no padding."""
    if len(rand) != 16:
        raise ValueError(f"rand must be 16 bytes, got {len(rand)}")
    return base64.b32encode(rand).decode("ascii").rstrip("=").lower()


def validate_log_id(text: str, *, field: str = "") -> str:
    """Return ``text`` if it is a canonical log id (what :func:`new_log_id` makes)."""
    if not isinstance(text, str) or LOG_ID_PATTERN.fullmatch(text) is None:
        raise ValidationError(
            f"expected a log id (26 lowercase base32 characters), got {text!r}",
            field=field,
            code="format",
        )
    return text


def validate_host_name(host_name: str, *, field: str = "") -> str:
    """Return ``host_name`` if it may start an origin, else raise ValidationError.

    Rules: a lowercase DNS name of 1-253 characters; labels of 1-63 characters from
    ``a-z``, ``0-9`` and ``-`` that neither start nor end with ``-``, separated by single
    dots, no trailing dot. So no whitespace, ``+`` or ``/`` (which C2SP origins and
    signed-note key names forbid or would make ambiguous), no uppercase (one spelling per
    origin), no port or path.
    """
    if not isinstance(host_name, str) or not host_name:
        raise ValidationError("host name must be a non-empty string", field=field, code="format")
    if len(host_name) > _HOST_NAME_MAX or HOST_NAME_PATTERN.fullmatch(host_name) is None:
        raise ValidationError(
            f"host name {host_name!r} is not a lowercase DNS name (labels of a-z, 0-9 and "
            "'-', dot separated, at most 253 characters; no spaces, '+', '/' or port)",
            field=field,
            code="format",
        )
    return host_name


def origin_for(host_name: str, log_id: str) -> str:
    """The origin of a log: ``<host-name>/log/<log-id>`` (ARCHITECTURE §2)."""
    validate_host_name(host_name)
    validate_log_id(log_id)
    return f"{host_name}/log/{log_id}"
