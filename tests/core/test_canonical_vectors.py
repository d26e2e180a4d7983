"""Published RFC 8785 vectors (``vectors/jcs/``, see its README for sources), run through
both encoders. Every file in the directory is used; a new or missing file fails the suite."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785

from tests.conftest import load_vector_json, vectors_dir
from trailseal.core.canonical import (
    _float_is_exact,
    canonicalize,
    canonicalize_reference,
)
from trailseal.errors import CanonicalizationError

ENCODERS = [canonicalize, canonicalize_reference]
PAIR_NAMES = ["arrays", "french", "structures", "unicode", "values", "weird"]
ES6_FILE = "es6-numbers-first-10000.txt"


def jcs_dir() -> Path:
    return vectors_dir() / "jcs"


def double_from_bits(bits: int) -> float:
    value: float = struct.unpack(">d", struct.pack(">Q", bits))[0]
    return value


def test_every_vector_file_is_known() -> None:
    """The directory holds exactly the files these tests read (none skipped, none missing)."""
    expected = {
        "README.md",
        "es6-numbers.json",
        ES6_FILE,
        "rfc8785-appendix-b-numbers.json",
        "rfc8785-sorting-example.json",
        *(f"input/{name}.json" for name in PAIR_NAMES),
        *(f"output/{name}.json" for name in PAIR_NAMES),
        *(f"outhex/{name}.txt" for name in PAIR_NAMES),
    }
    found = {
        path.relative_to(jcs_dir()).as_posix() for path in jcs_dir().rglob("*") if path.is_file()
    }
    assert found == expected
    readme = (jcs_dir() / "README.md").read_text(encoding="utf-8")
    for name in ["es6-numbers.json", ES6_FILE, "rfc8785-appendix-b-numbers.json"]:
        assert f"`{name}`" in readme
    assert "rfc8785-sorting-example.json" in readme


# --- input / output / outhex pairs (cyberphone testdata) ----------------------------------


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_output_and_outhex_agree(name: str) -> None:
    output = (jcs_dir() / "output" / f"{name}.json").read_bytes()
    outhex = (jcs_dir() / "outhex" / f"{name}.txt").read_text(encoding="ascii")
    assert bytes.fromhex("".join(outhex.split())) == output


@pytest.mark.parametrize("name", PAIR_NAMES)
@pytest.mark.parametrize("parse", [json.loads, orjson.loads], ids=["json", "orjson"])
@pytest.mark.parametrize("encode", ENCODERS, ids=["fast", "reference"])
def test_input_canonicalizes_to_output(name: str, parse: Any, encode: Any) -> None:
    source = (jcs_dir() / "input" / f"{name}.json").read_bytes()
    expected = (jcs_dir() / "output" / f"{name}.json").read_bytes()
    value = parse(source)
    assert encode(value) == expected
    # The canonical form is a fixed point.
    assert encode(parse(expected)) == expected


# --- RFC 8785 Appendix B numbers ------------------------------------------------------------


APPENDIX_B = load_vector_json("jcs/rfc8785-appendix-b-numbers.json")["vectors"]


def test_appendix_b_has_all_rows() -> None:
    assert len(APPENDIX_B) == 26
    assert sum(1 for row in APPENDIX_B if row["error"]) == 2


@pytest.mark.parametrize("row", APPENDIX_B, ids=[row["ieee754_hex"] for row in APPENDIX_B])
@pytest.mark.parametrize("encode", ENCODERS, ids=["fast", "reference"])
def test_appendix_b_number(row: dict[str, Any], encode: Any) -> None:
    number = double_from_bits(int(row["ieee754_hex"], 16))
    if row["error"]:
        assert not math.isfinite(number)
        with pytest.raises(CanonicalizationError) as info:
            encode({"n": [number]})
        assert info.value.field == "/n/0"
        with pytest.raises(rfc8785.CanonicalizationError):
            rfc8785.dumps(number)
    else:
        expected = row["expected"].encode("ascii")
        assert encode(number) == expected
        assert encode([number]) == b"[" + expected + b"]"
        assert rfc8785.dumps(number) == expected


# --- RFC 8785 §3.2.3 sorting example --------------------------------------------------------


def test_sorting_example() -> None:
    example = load_vector_json("jcs/rfc8785-sorting-example.json")
    value = json.loads(example["input_json"])
    expected = example["expected_output"].encode("utf-8")
    assert expected == bytes.fromhex(example["expected_output_hex"])
    order = [key.encode("utf-16-be").hex() for key in json.loads(expected)]
    assert order == example["expected_key_order_utf16_hex"]
    for encode in ENCODERS:
        assert encode(value) == expected


# --- ES6 number file (first 10,000 lines of es6testfile100m.txt) ----------------------------


def es6_lines() -> list[str]:
    data = (jcs_dir() / ES6_FILE).read_bytes()
    meta = load_vector_json("jcs/es6-numbers.json")
    assert meta["file"] == ES6_FILE
    published = {row["lines"]: row for row in meta["published_prefix_hashes"]}
    lines = data.decode("ascii").split("\n")
    assert lines[-1] == ""  # every line, the last included, ends with LF
    lines = lines[:-1]
    assert len(lines) == 10_000
    # The prefixes are byte for byte the published file's (es6-numbers.json).
    for count in (1_000, 10_000):
        prefix = "".join(line + "\n" for line in lines[:count]).encode("ascii")
        assert len(prefix) == published[count]["size_bytes"]
        assert hashlib.sha256(prefix).hexdigest() == published[count]["sha256"]
    return lines


def test_es6_numbers() -> None:
    checked_fast_window = 0
    for line in es6_lines():
        bits, expected_text = line.split(",")
        number = double_from_bits(int(bits, 16))
        expected = expected_text.encode("ascii")
        assert canonicalize_reference(number) == expected, line
        assert canonicalize(number) == expected, line
        assert canonicalize([number, {"x": number}]) == b'[%s,{"x":%s}]' % (expected, expected)
        if _float_is_exact(number):
            # The fast path's claim, checked on orjson itself.
            assert orjson.dumps(number) == expected, line
            checked_fast_window += 1
    assert checked_fast_window >= 300  # the window is really exercised (336 lines)
