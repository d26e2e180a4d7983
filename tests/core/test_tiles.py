"""C2SP tlog-tiles: the published vectors (``vectors/tiles/``, see its README), a real tessera
log rebuilt byte for byte, and properties tying tiles to the Merkle reference."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trailseal.core.tiles as tiles
from tests.conftest import load_vector_json, vectors_dir
from tests.core import merkle_reference as ref
from trailseal.core.encoding import hex_to_bytes
from trailseal.core.hashing import RFC9162_SHA256, UNPREFIXED_SHA256, Hasher, leaf_hash
from trailseal.core.merkle import (
    CompactRange,
    consistency_nodes,
    inclusion_nodes,
    peak_node_ids,
    root_from_leaf_hashes,
    verify_inclusion,
)
from trailseal.core.tiles import (
    TILE_WIDTH,
    EntryBundleId,
    TileId,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    entry_bundle_for_entry,
    entry_bundle_path,
    node_hash_in_tile,
    node_reader_from_tiles,
    parse_entry_bundle_path,
    parse_index_path,
    parse_tile_path,
    partial_tiles,
    tile_for_node,
    tile_path,
    tile_updates,
    tile_width,
    tiles_for_nodes,
    tiles_for_size,
)
from trailseal.errors import ValidationError

PATHS: dict[str, Any] = load_vector_json("tiles/tile-paths.json")
TESSERA: dict[str, Any] = load_vector_json("tiles/tessera-testdata-log.json")


def test_every_vector_file_and_section_is_used() -> None:
    files = {p.name for p in (vectors_dir() / "tiles").iterdir()}
    assert files == {"README.md", "tile-paths.json", "tessera-testdata-log.json"}
    tested = {
        "c2sp_spec",
        "tile_path",
        "entries_path",
        "entries_path_for_entry_index",
        "parse_level_and_index",
        "node_coordinates",
        "sumdb_tile_paths_with_height",
    }
    prose = {"description", "parse_note", "node_coordinates_note", "sumdb_note", "sources"}
    assert set(PATHS) == tested | prose


def test_all_is_complete() -> None:
    defined = {
        name
        for name, value in vars(tiles).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == tiles.__name__
    }
    assert defined <= set(tiles.__all__)
    assert all(hasattr(tiles, name) for name in tiles.__all__)


# --- tile-paths.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", PATHS["c2sp_spec"]["index_encoding"], ids=str)
def test_spec_index_encoding(vector: dict[str, Any]) -> None:
    assert encode_index(vector["index"]) == vector["encoded"]
    assert parse_index_path(vector["encoded"]) == (vector["index"], TILE_WIDTH)


@pytest.mark.parametrize(
    "vector", PATHS["c2sp_spec"]["tiles_for_tree_size"], ids=lambda v: str(v["tree_size"])
)
def test_spec_tiles_for_tree_size(vector: dict[str, Any]) -> None:
    size = vector["tree_size"]
    all_tiles = list(tiles_for_size(size))
    for level, count in vector["full_tiles_per_level"].items():
        assert sum(1 for t in all_tiles if t.level == int(level) and t.is_full) == count
    expected = [(p["level"], p["index"], p["width"], p["path"]) for p in vector["partial_tiles"]]
    got = [(t.level, t.index, t.width, t.path()) for t in partial_tiles(size)]
    assert got == expected
    assert [t for t in all_tiles if not t.is_full] == partial_tiles(size)


def test_spec_rules() -> None:
    rules = PATHS["c2sp_spec"]["rules"]
    assert rules["full_tile_hashes"] == TILE_WIDTH
    assert rules["full_tile_bytes"] == TILE_WIDTH * 32
    assert rules["level_range"] == [0, tiles.MAX_TILE_LEVEL]
    assert rules["partial_width_range"] == [1, TILE_WIDTH - 1]
    # "partial_width_at_level" and "tile_hash_definition" are checked by the properties below.


@pytest.mark.parametrize("vector", PATHS["tile_path"], ids=lambda v: v["path"])
def test_tile_path(vector: dict[str, Any]) -> None:
    tile = TileId(vector["level"], vector["index"], vector["width"])
    assert tile.path() == tile_path(tile.level, tile.index, tile.width) == vector["path"]
    assert parse_tile_path(vector["path"]) == tile


@pytest.mark.parametrize("vector", PATHS["entries_path"], ids=lambda v: v["path"])
def test_entries_path(vector: dict[str, Any]) -> None:
    assert entry_bundle_path(vector["index"], vector["width"]) == vector["path"]
    assert parse_entry_bundle_path(vector["path"]) == EntryBundleId(
        vector["index"], vector["width"]
    )


@pytest.mark.parametrize(
    "vector", PATHS["entries_path_for_entry_index"], ids=lambda v: f"{v['entry_index']}"
)
def test_entries_path_for_entry_index(vector: dict[str, Any]) -> None:
    bundle = entry_bundle_for_entry(vector["entry_index"], vector["tree_size"])
    assert bundle.path() == vector["path"]


@pytest.mark.parametrize(
    "vector",
    PATHS["parse_level_and_index"],
    ids=lambda v: f"{v['level']}/{v['index_path']}",
)
def test_parse_level_and_index(vector: dict[str, Any]) -> None:
    path = f"tile/{vector['level']}/{vector['index_path']}"
    if not vector["ok"]:
        with pytest.raises(ValidationError):
            parse_tile_path(path)
        return
    tile = parse_tile_path(path)
    assert (tile.level, tile.index, tile.width) == (
        vector["expected_level"],
        vector["expected_index"],
        vector["expected_width"],
    )
    assert tile.path() == path  # one spelling per tile


@pytest.mark.parametrize(
    "vector", PATHS["node_coordinates"], ids=lambda v: f"{v['tree_level']}-{v['tree_index']}"
)
def test_node_coordinates(vector: dict[str, Any]) -> None:
    assert tile_for_node(vector["tree_level"], vector["tree_index"]) == (
        vector["tile_level"],
        vector["tile_index"],
        vector["node_level_in_tile"],
        vector["node_index_in_tile"],
    )


def parse_sumdb_path(path: str) -> tuple[int, int, int, int]:
    """``tile/<H>/<L>/<N>[.p/<W>]`` of the Go checksum database, with our ``<N>`` parser."""
    prefix, height_text, level_text, index_text = path.split("/", 3)
    if prefix != "tile" or not height_text.isdecimal():
        raise ValidationError("not a sumdb tile path")
    if level_text == "data":
        level = -1
    elif level_text.isdecimal():
        level = int(level_text)
    else:
        raise ValidationError("bad level")
    index, width = parse_index_path(index_text, height=int(height_text))
    return int(height_text), level, index, width


@pytest.mark.parametrize("vector", PATHS["sumdb_tile_paths_with_height"], ids=lambda v: v["path"])
def test_sumdb_paths_share_the_index_encoding(vector: dict[str, Any]) -> None:
    if not vector["ok"]:
        with pytest.raises(ValidationError):
            parse_sumdb_path(vector["path"])
        return
    expected = (vector["height"], vector["level"], vector["index"], vector["width"])
    assert parse_sumdb_path(vector["path"]) == expected


# --- more path rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/001",  # leading zero group: 1 is spelled 001
        "tile/00/001",
        "tile/01/001",
        "tile/0/001.p/08",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2**64
        "tile/0/001/",
        "/tile/0/001",
        "tile/0/ 001",
        "tile/0/\u0661\u0662\u0663",  # non-ASCII digits
        "tile/entries/001",
        "tile/0/X001/002",
        "tiles/0/001",
        "tile/0",
        "",
    ],
)
def test_malformed_tile_paths(path: str) -> None:
    with pytest.raises(ValidationError):
        parse_tile_path(path)


@pytest.mark.parametrize(
    "path", ["tile/entries/x000/001", "tile/entries/001.p/256", "tile/0/001", "tile/entries/"]
)
def test_malformed_entry_bundle_paths(path: str) -> None:
    with pytest.raises(ValidationError):
        parse_entry_bundle_path(path)


def test_largest_index_round_trips() -> None:
    path = "tile/0/x018/x446/x744/x073/x709/x551/615"
    assert parse_tile_path(path) == TileId(0, 2**64 - 1)
    assert TileId(0, 2**64 - 1).path() == path


@pytest.mark.parametrize(
    ("level", "index", "width"), [(64, 0, 1), (-1, 0, 1), (0, -1, 1), (0, 2**64, 1), (0, 0, 0)]
)
def test_tile_id_is_validated(level: int, index: int, width: int) -> None:
    with pytest.raises(ValidationError):
        TileId(level, index, width)


@settings(max_examples=300, deadline=None)
@given(
    level=st.integers(0, 63),
    index=st.integers(0, 2**64 - 1),
    width=st.integers(1, TILE_WIDTH),
)
def test_tile_paths_round_trip(level: int, index: int, width: int) -> None:
    tile = TileId(level, index, width)
    assert parse_tile_path(tile.path()) == tile
    bundle = EntryBundleId(index, width)
    assert parse_entry_bundle_path(bundle.path()) == bundle


# Path-shaped fuzz: the pieces of valid paths, each with near misses.
PATH_TEXT = st.tuples(
    st.sampled_from(["tile/", "tile/entries/", "tile/0/", "tile/63/", "tile/64/", "tile/01/"]),
    st.lists(
        st.sampled_from(["x001/", "x000/", "x999/", "001/", "x01/", "x\u066123/"]), max_size=7
    ).map("".join),
    st.sampled_from(["000", "123", "0001", "12", "x123", ""]),
    st.sampled_from(["", ".p/1", ".p/255", ".p/256", ".p/0", ".p/08", ".p/", ".p", "/"]),
).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(PATH_TEXT, st.text(max_size=20)))
def test_arbitrary_text_parses_canonically_or_raises_our_error(text: str) -> None:
    for parse in (parse_tile_path, parse_entry_bundle_path):
        try:
            parsed = parse(text)
        except ValidationError:
            continue
        assert parsed.path() == text


# --- which tiles exist -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 2**40))
def test_partial_width_rule(size: int) -> None:
    """C2SP: the partial tile at level l has width floor(size / 256**l) mod 256."""
    for tile in partial_tiles(size):
        assert tile.width == (size // 256**tile.level) % 256
        assert tile_width(tile.level, tile.index, size) == tile.width
        assert tile_width(tile.level, tile.index + 1, size) == 0


def test_entry_bundle_for_entry_preconditions() -> None:
    with pytest.raises(ValidationError):
        entry_bundle_for_entry(5, 5)


# --- tessera-testdata-log.json -----------------------------------------------------------------


def test_tessera_log_rebuilt_byte_for_byte() -> None:
    """Replay the real log one entry at a time, writing tiles from CompactRange's completed
    nodes via tile_updates, and bundles from the entries; compare every published file."""
    entries = [entry.encode() for entry in TESSERA["entries_utf8"]]
    published_tiles = {t["path"]: bytes.fromhex(t["hex"]) for t in TESSERA["tiles"]}
    published_bundles = {b["path"]: bytes.fromhex(b["hex"]) for b in TESSERA["entry_bundles"]}
    state = CompactRange.empty()
    rows: dict[tuple[int, int], bytearray] = {}
    written_tiles, written_bundles = {}, {}
    for size, entry in enumerate(entries, start=1):
        state, completed = state.append([leaf_hash(entry)])
        for key, updates in tile_updates(completed).items():
            row = rows.setdefault(key, bytearray())
            for offset, value in updates:
                assert offset * 32 == len(row)  # contiguous, growing from the old width
                row += value
            tile = TileId(*key, len(row) // 32)
            written_tiles[tile.path()] = bytes(row)
        bundle = entry_bundle_for_entry(size - 1, size)
        first = bundle.index * TILE_WIDTH
        written_bundles[bundle.path()] = encode_entry_bundle(entries[first:size])
        assert decode_entry_bundle(written_bundles[bundle.path()]) == entries[first:size]
    assert written_tiles == published_tiles
    assert written_bundles == published_bundles
    assert state.root().hex() == TESSERA["final_checkpoint_root_hex"]
    assert sorted(published_tiles) == sorted(
        t.path() for t in [TileId(0, 0, n) for n in range(1, 16)]
    )


def test_tessera_tiles_serve_proofs() -> None:
    data = {parse_tile_path(t["path"]): bytes.fromhex(t["hex"]) for t in TESSERA["tiles"]}
    root = hex_to_bytes(TESSERA["final_checkpoint_root_hex"])
    leaves = [leaf_hash(e.encode()) for e in TESSERA["entries_utf8"]]
    for index in range(15):
        plan = inclusion_nodes(index, 15)
        needed = tiles_for_nodes(plan.node_ids, 15)
        assert list(needed) == [TileId(0, 0, 15)]
        read = node_reader_from_tiles({t: data[t] for t in needed})
        proof = plan.assemble([read(*node) for node in plan.node_ids])
        verify_inclusion(index, 15, leaves[index], proof, root)


# --- entry bundles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x00\x05abc", b"\x00\x00" * 257], ids=["empty", "short", "cut", "257"]
)
def test_malformed_entry_bundles(data: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_entry_bundle(data)


@pytest.mark.parametrize("entries", [[], [b""] * 257, [b"x" * 65536]], ids=["0", "257", "big"])
def test_unencodable_entry_bundles(entries: list[bytes]) -> None:
    with pytest.raises(ValidationError):
        encode_entry_bundle(entries)


def test_largest_entry_round_trips() -> None:
    entries = [b"", b"y" * 65535]
    assert decode_entry_bundle(encode_entry_bundle(entries)) == entries


# --- tiles vs the Merkle reference ------------------------------------------------------------


def write_tiles(
    state: CompactRange, rows: dict[tuple[int, int], bytearray], batch: list[bytes], hasher: Hasher
) -> CompactRange:
    state, completed = state.append(batch, hasher)
    for key, updates in tile_updates(completed).items():
        row = rows.setdefault(key, bytearray())
        for offset, value in updates:
            assert offset * 32 == len(row)
            row += value
    return state


def as_tiles(rows: dict[tuple[int, int], bytearray]) -> dict[TileId, bytes]:
    return {
        TileId(level, index, len(row) // 32): bytes(row) for (level, index), row in rows.items()
    }


def complete_nodes(size: int) -> Iterable[tuple[int, int]]:
    level = 0
    while size >> level:
        yield from ((level, index) for index in range(size >> level))
        level += 1


@pytest.mark.parametrize(
    "hasher", [RFC9162_SHA256, UNPREFIXED_SHA256], ids=["rfc9162", "unprefixed"]
)
@settings(max_examples=20, deadline=None)
@given(size=st.integers(1, 700), cuts=st.lists(st.integers(0, 700), max_size=5))
def test_tiles_from_completed_nodes_hold_every_reference_node(
    hasher: Hasher, size: int, cuts: list[int]
) -> None:
    """Tiles written from the nodes of batched appends are exactly the tiles C2SP says a tree
    of this size has, and every node read back from them is the RFC's MTH of its leaves
    (sizes up to 700 reach tile level 1, i.e. tree levels 8 and 9)."""
    d = [b"leaf-%d" % i for i in range(size)]
    hashes = [hasher.hash_leaf(x) for x in d]
    state = CompactRange.empty()
    rows: dict[tuple[int, int], bytearray] = {}
    bounds = sorted({0, size, *(c for c in cuts if c < size)})
    for start, end in itertools.pairwise(bounds):
        state = write_tiles(state, rows, hashes[start:end], hasher)
    written = as_tiles(rows)
    assert set(written) == set(tiles_for_size(size))
    read = node_reader_from_tiles(written, hasher)
    for level, index in complete_nodes(size):
        assert read(level, index) == ref.node(level, index, d, hasher)
    assert state.peaks == tuple(read(*node) for node in peak_node_ids(size))


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 3000), data=st.data())
def test_tiles_for_nodes_serve_proof_plans(size: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(b"%d" % i) for i in range(size)]
    rows: dict[tuple[int, int], bytearray] = {}
    write_tiles(CompactRange.empty(), rows, hashes, RFC9162_SHA256)
    written = as_tiles(rows)
    index = data.draw(st.integers(0, size - 1))
    size1 = data.draw(st.integers(0, size))
    for plan in (inclusion_nodes(index, size), consistency_nodes(size1, size)):
        needed = tiles_for_nodes(plan.node_ids, size)
        assert set(needed) <= set(written)  # the right partial widths for this size
        assert sorted(n for group in needed.values() for n in group) == sorted(plan.node_ids)
        read = node_reader_from_tiles({tile: written[tile] for tile in needed})
        for level, index_ in plan.node_ids:
            begin, end = index_ << level, (index_ + 1) << level
            assert read(level, index_) == root_from_leaf_hashes(hashes[begin:end])


def test_a_tree_with_three_tile_levels() -> None:
    """65,536 + 700 leaves: a full level-1 tile, partial tiles on levels 0..2."""
    size = 65536 + 700
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    rows: dict[tuple[int, int], bytearray] = {}
    state = write_tiles(CompactRange.empty(), rows, hashes, RFC9162_SHA256)
    written = as_tiles(rows)
    assert set(written) == set(tiles_for_size(size))
    assert partial_tiles(size) == [TileId(0, 258, 188), TileId(1, 1, 2), TileId(2, 0, 1)]
    read = node_reader_from_tiles(written)
    for level, index in [(16, 0), (15, 1), (9, 128), (8, 257), (10, 63), (3, 8278), (0, 66235)]:
        begin, end = index << level, (index + 1) << level
        assert read(level, index) == root_from_leaf_hashes(hashes[begin:end])
    root = state.root()
    for index in (0, 255, 65535, 65536, 66235):
        plan = inclusion_nodes(index, size)
        needed = tiles_for_nodes(plan.node_ids, size)
        reader = node_reader_from_tiles({t: written[t] for t in needed})
        proof = plan.assemble([reader(*n) for n in plan.node_ids])
        verify_inclusion(index, size, hashes[index], proof, root)


# --- node math preconditions ------------------------------------------------------------------


def test_node_hash_in_tile_checks_its_inputs() -> None:
    tile = b"".join(leaf_hash(b"%d" % i) for i in range(5))
    assert node_hash_in_tile(tile, 2, 0) == root_from_leaf_hashes(
        [tile[i : i + 32] for i in range(0, 128, 32)]
    )
    for args in [
        (tile, 2, 1),
        (tile, 8, 0),
        (tile, 0, 256),
        (tile[:-1], 0, 0),
        (b"", 0, 0),
        (b"\0" * 8224, 0, 0),
    ]:
        with pytest.raises(ValidationError):
            node_hash_in_tile(*args)


def test_tiles_for_nodes_rejects_incomplete_nodes() -> None:
    with pytest.raises(ValidationError):
        tiles_for_nodes([(1, 2)], 5)


def test_tile_updates_keeps_only_tile_rows() -> None:
    nodes = [(0, 255, b"a"), (1, 127, b"b"), (8, 0, b"c"), (0, 256, b"d"), (16, 3, b"e")]
    assert tile_updates(nodes) == {
        (0, 0): [(255, b"a")],
        (1, 0): [(0, b"c")],
        (0, 1): [(0, b"d")],
        (2, 0): [(3, b"e")],
    }


def test_eager_argument_checks() -> None:
    with pytest.raises(ValidationError):
        tiles_for_size(-1)
    with pytest.raises(ValidationError):
        parse_index_path("001", height=0)
