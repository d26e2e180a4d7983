"""Event ids (UUIDv7), the monotonic generator, log ids and origins."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailseal.core import ids
from trailseal.core.ids import (
    ID_PATTERN,
    LOG_ID_PATTERN,
    UUID7_PATTERN,
    IdGenerator,
    new_log_id,
    origin_for,
    uuid7,
    validate_host_name,
    validate_log_id,
)
from trailseal.errors import ValidationError

MS = st.integers(min_value=0, max_value=2**48 - 1)
RAND10 = st.binary(min_size=10, max_size=10)


def test_all_is_complete() -> None:
    assert all(hasattr(ids, name) for name in ids.__all__)
    defined = {
        name
        for name, value in vars(ids).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == ids.__name__
    }
    assert defined <= set(ids.__all__)


# --- uuid7 ----------------------------------------------------------------------------


def test_uuid7_rfc9562_appendix_a6_example() -> None:
    # RFC 9562 Appendix A.6: unix_ts_ms 0x017F22E279B0, rand_a 0xCC3,
    # rand_b 0x18C4DC0C0C07398F -> 017F22E2-79B0-7CC3-98C4-DC0C0C07398F.
    rand = ((0xCC3 << 68) | 0x18C4DC0C0C07398F).to_bytes(10, "big")
    assert uuid7(0x017F22E279B0, rand) == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"


@given(MS, RAND10)
def test_uuid7_format_version_variant_and_time(ms: int, rand: bytes) -> None:
    text = uuid7(ms, rand)
    assert UUID7_PATTERN.fullmatch(text)
    assert ID_PATTERN.fullmatch(text)
    parsed = uuid.UUID(text)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == ms
    r = int.from_bytes(rand, "big")
    assert (parsed.int >> 64) & 0xFFF == r >> 68  # rand_a: the first 12 bits
    assert parsed.int & (2**62 - 1) == r & (2**62 - 1)  # rand_b: the last 62 bits


@given(MS, MS, RAND10, RAND10)
def test_uuid7_orders_by_time(ms1: int, ms2: int, r1: bytes, r2: bytes) -> None:
    a, b = uuid7(ms1, r1), uuid7(ms2, r2)
    if ms1 < ms2:
        assert a < b
    elif ms1 > ms2:
        assert a > b


@pytest.mark.parametrize(
    ("ms", "rand"),
    [(-1, bytes(10)), (2**48, bytes(10)), (True, bytes(10)), (1.0, bytes(10)), (0, bytes(9))],
)
def test_uuid7_rejects_bad_arguments(ms: int, rand: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (programming errors, plain ValueError)
        uuid7(ms, rand)


# --- IdGenerator --------------------------------------------------------------------------


def _counting_random() -> Callable[[int], bytes]:
    calls = iter(range(1, 10**9))

    def random(n: int) -> bytes:
        # Distinct, high-bit-set seeds: exercises the top-bit-clear guard.
        return (b"\xff" * (n - 2)) + next(calls).to_bytes(2, "big")

    return random


def test_generator_strictly_increasing_with_frozen_clock() -> None:
    gen = IdGenerator(lambda: 1_700_000_000_000, _counting_random())
    made = [gen.next() for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(i).int >> 80 == 1_700_000_000_000 for i in made)
    assert all(UUID7_PATTERN.fullmatch(i) for i in made)


def test_generator_draws_randomness_once_per_millisecond() -> None:
    draws: list[int] = []

    def random(n: int) -> bytes:
        draws.append(n)
        return bytes(n)

    gen = IdGenerator(lambda: 5, random)
    for _ in range(100):
        gen()
    assert draws == [10]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=1, max_size=200))
def test_generator_increasing_whatever_the_clock_does(clock_values: list[int]) -> None:
    ticks = iter(clock_values)
    gen = IdGenerator(lambda: next(ticks), _counting_random())
    made = [gen.next() for _ in clock_values]
    assert all(a < b for a, b in itertools.pairwise(made))
    # The timestamp is the highest clock value seen so far (the clock never goes back).
    high = -1
    for value, text in zip(clock_values, made, strict=True):
        high = max(high, value)
        assert uuid.UUID(text).int >> 80 == high


def test_generator_counter_overflow_moves_to_next_millisecond() -> None:
    gen = IdGenerator(lambda: 1000, _counting_random())
    first = gen.next()
    gen._counter = ids._COUNTER_MAX  # force the (practically impossible) rollover
    after = gen.next()
    assert after > first
    assert uuid.UUID(after).int >> 80 == 1001
    assert gen.next() > after


def test_generator_reset_reseeds() -> None:
    seeds = iter([bytes(10), b"\x01" * 10])
    gen = IdGenerator(lambda: 7, lambda n: next(seeds))
    a = gen.next()
    gen.reset()
    b = gen.next()
    assert a != b
    assert uuid.UUID(b).int >> 80 == 7


@pytest.mark.parametrize(
    ("clock", "random"),
    [(lambda: -1, bytes), (lambda: 2**48, bytes), (lambda: 0, lambda n: bytes(n - 1))],
)
def test_generator_rejects_bad_sources(
    clock: Callable[[], int], random: Callable[[int], bytes]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        IdGenerator(clock, random).next()


# --- log ids and origins ------------------------------------------------------------------


@given(st.binary(min_size=16, max_size=16))
def test_new_log_id_is_26_lowercase_base32(rand: bytes) -> None:
    log_id = new_log_id(rand)
    assert len(log_id) == 26
    assert LOG_ID_PATTERN.fullmatch(log_id)
    assert validate_log_id(log_id) == log_id
    assert base64.b32decode(log_id.upper() + "======") == rand


def test_new_log_id_known_values() -> None:
    assert new_log_id(bytes(16)) == "a" * 26
    assert new_log_id(b"\xff" * 16) == "7" * 25 + "4"


@pytest.mark.parametrize("rand", [bytes(15), bytes(17)])
def test_new_log_id_needs_16_bytes(rand: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        new_log_id(rand)


@pytest.mark.parametrize(
    "text",
    ["a" * 25, "a" * 27, "A" * 26, "a" * 25 + "b", "a" * 25 + "8", "a" * 24 + "1a", "", 5],
)
def test_validate_log_id_rejects(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_log_id(text, field="/log")
    assert info.value.code == "format"
    assert info.value.field == "/log"


def test_origin_for() -> None:
    assert origin_for("trailseal.local", "a" * 26) == "trailseal.local/log/" + "a" * 26
    assert origin_for("x", "a" * 26) == "x/log/" + "a" * 26
    assert origin_for("audit-1.eu.example.com", "a" * 26).startswith("audit-1.eu.")


@pytest.mark.parametrize(
    "host",
    [
        "",
        " trailseal.local",
        "trail seal.local",
        "trailseal.local\n",
        "a+b.local",
        "Trailseal.local",
        "example.com/audit",
        "example.com:8443",
        "a..b",
        ".a",
        "a.",
        "-a.b",
        "a-.b",
        "a_b.local",
        "ünï.local",
        "a" * 64 + ".b",
        ".".join(["a" * 63] * 4) + ".ab",  # 254 characters
    ],
)
def test_origin_for_rejects_bad_host_names(host: str) -> None:
    with pytest.raises(ValidationError) as info:
        origin_for(host, "a" * 26)
    assert info.value.code == "format"


def test_host_name_limits() -> None:
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters
    assert validate_host_name(longest) == longest
    with pytest.raises(ValidationError):
        validate_host_name(5)  # type: ignore[arg-type]


def test_origin_for_validates_log_id() -> None:
    with pytest.raises(ValidationError):
        origin_for("trailseal.local", "org-acme")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("evt_123", True),
        ("a", True),
        ("A.b_c:d-9", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ("slash/no", False),
        ("plus+no", False),
        ("ünï", False),
        ("new\nline", False),
    ],
)
def test_id_pattern(text: str, ok: bool) -> None:
    assert (ID_PATTERN.fullmatch(text) is not None) is ok
