"""C2SP tlog-tiles layout (tile height 8): paths, node↔tile math, tile contents.

Theory of operation
-------------------
A tile at tile level ``L`` and index ``N`` holds up to 256 consecutive hashes of tree level
``8 * L``: nodes ``[N * 256, N * 256 + width)``, concatenated (32 bytes each). A node at any
tree level lives in exactly one tile row: tree level ``l`` is tile level ``l // 8``, and its
hash is rebuilt from ``2 ** (l % 8)`` hashes of that tile's bottom row. A tile is *full* at
256 hashes (immutable from then on) and *partial* below; for a tree of ``n`` leaves, tile
level ``L`` has ``n >> 8L`` hashes in all, so its last tile has width ``(n >> 8L) mod 256``.

Paths (relative to the log prefix): ``tile/<L>/<N>[.p/<W>]`` and
``tile/entries/<N>[.p/<W>]``, where ``<N>`` is written in 3-digit groups, every group but
the last prefixed with ``x`` (1234067 → ``x001/x234/067``). Parsing is strict: one index has
one spelling, so leading-zero groups (``x000/001``), levels or widths are rejected, as is any
index beyond uint64, any level beyond 63 and any width outside 1..255. Every malformed path
raises :class:`~trailseal.errors.ValidationError`.

Entry bundles hold the entries of one level-0 tile, each as a big-endian uint16 length and
the entry bytes.

Pure functions over bytes and ints; the caller does the IO (see STYLE.md, tessera
``api/layout/paths.go``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from trailseal.core.hashing import HASH_SIZE, RFC9162_SHA256, Hasher
from trailseal.core.merkle import NodeId, NodeReader
from trailseal.errors import ValidationError

__all__ = [
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "EntryBundleId",
    "TileId",
    "TileUpdates",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "encode_index",
    "entry_bundle_for_entry",
    "entry_bundle_path",
    "node_hash_in_tile",
    "node_reader_from_tiles",
    "parse_entry_bundle_path",
    "parse_index_path",
    "parse_tile_path",
    "partial_tiles",
    "tile_for_node",
    "tile_path",
    "tile_updates",
    "tile_width",
    "tiles_for_nodes",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile
MAX_TILE_LEVEL = 63
_MAX_INDEX = (1 << 64) - 1  # indices are uint64 in the spec
_MAX_ENTRY = 0xFFFF
_PATH_PREFIX = "tile/"
_ENTRIES_PREFIX = "tile/entries/"

# All but the last group are "x" + 3 digits; the last is 3 digits; then an optional width.
# [0-9], not \d: \d would accept non-ASCII digits.
_INDEX_PATH = re.compile(r"((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([1-9][0-9]{0,18}))?")
_LEVEL = re.compile(r"0|[1-9][0-9]?")


def _bad(message: str, code: str = "bad_tile_path") -> ValidationError:
    return ValidationError(message, code=code)


def _require_int(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _bad(f"{name} must be an integer in {low}..{high}, got {value!r}", f"bad_{name}")
    return value


# --- identifiers and paths ----------------------------------------------------------------


def encode_index(index: int) -> str:
    """``<N>`` of a tile path: 3-digit groups, all but the last prefixed with ``x``."""
    _require_int("index", index, 0, _MAX_INDEX)
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{group}" for group in groups[:-1]), groups[-1]])


def _with_width(prefix: str, width: int) -> str:
    return prefix if width == TILE_WIDTH else f"{prefix}.p/{width}"


@dataclass(frozen=True, slots=True)
class TileId:
    """One tile: tile ``level`` (tree level ``8 * level``), ``index`` and ``width`` (number
    of hashes; 256 is a full tile, 1..255 a partial one)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _require_int("level", self.level, 0, MAX_TILE_LEVEL)
        _require_int("index", self.index, 0, _MAX_INDEX)
        _require_int("width", self.width, 1, TILE_WIDTH)

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``."""
        return _with_width(f"{_PATH_PREFIX}{self.level}/{encode_index(self.index)}", self.width)


@dataclass(frozen=True, slots=True)
class EntryBundleId:
    """The entry bundle of level-0 tile ``index``, holding ``width`` entries."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _require_int("index", self.index, 0, _MAX_INDEX)
        _require_int("width", self.width, 1, TILE_WIDTH)

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    def path(self) -> str:
        """``tile/entries/<N>[.p/<W>]``."""
        return _with_width(f"{_ENTRIES_PREFIX}{encode_index(self.index)}", self.width)


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Path of tile (``level``, ``index``) with ``width`` hashes (256 = full)."""
    return TileId(level, index, width).path()


def entry_bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """Path of entry bundle ``index`` with ``width`` entries (256 = full)."""
    return EntryBundleId(index, width).path()


def parse_index_path(text: str, *, height: int = TILE_HEIGHT) -> tuple[int, int]:
    """Parse ``<N>[.p/<W>]`` into ``(index, width)``; a full tile has width ``2 ** height``.
    ``height`` is 8 in C2SP; other values serve the Go checksum database's
    ``tile/<H>/<L>/<N>`` form, whose ``<N>`` encoding is the same."""
    _require_int("height", height, 1, 16)
    match = _INDEX_PATH.fullmatch(text)
    if match is None:
        raise _bad(f"malformed tile index {text!r}")
    prefix, last, width_text = match.groups()
    groups = [*prefix.split("/")[:-1], last]
    if len(groups) > 1 and groups[0] == "x000":
        raise _bad(f"tile index {text!r} has a leading zero group")
    index = int("".join(group.lstrip("x") for group in groups))
    if index > _MAX_INDEX:
        raise _bad(f"tile index {text!r} does not fit in 64 bits")
    full = 1 << height
    width = full if width_text is None else int(width_text)
    if not 1 <= width <= full or (width_text is not None and width == full):
        raise _bad(f"partial tile width in {text!r} must be 1..{full - 1}")
    return index, width


def parse_tile_path(path: str) -> TileId:
    """Parse ``tile/<L>/<N>[.p/<W>]`` (strict; see the module docstring)."""
    if not path.startswith(_PATH_PREFIX):
        raise _bad(f"tile path {path!r} does not start with {_PATH_PREFIX!r}")
    level_text, _, index_text = path[len(_PATH_PREFIX) :].partition("/")
    if _LEVEL.fullmatch(level_text) is None or int(level_text) > MAX_TILE_LEVEL:
        raise _bad(f"tile level {level_text!r} is not a number in 0..{MAX_TILE_LEVEL}")
    index, width = parse_index_path(index_text)
    return TileId(int(level_text), index, width)


def parse_entry_bundle_path(path: str) -> EntryBundleId:
    """Parse ``tile/entries/<N>[.p/<W>]`` (strict; see the module docstring)."""
    if not path.startswith(_ENTRIES_PREFIX):
        raise _bad(f"entry bundle path {path!r} does not start with {_ENTRIES_PREFIX!r}")
    index, width = parse_index_path(path[len(_ENTRIES_PREFIX) :])
    return EntryBundleId(index, width)


# --- which tiles exist ----------------------------------------------------------------------


def tile_width(level: int, index: int, tree_size: int) -> int:
    """Hashes in tile (``level``, ``index``) of a tree of ``tree_size`` leaves; 0 if the tile
    does not exist yet."""
    _require_int("tree_size", tree_size, 0, _MAX_INDEX)
    hashes = tree_size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, hashes - index * TILE_WIDTH))


def tiles_for_size(tree_size: int) -> Iterator[TileId]:
    """Every tile of a tree of ``tree_size`` leaves, level by level, in index order (lazily:
    a large log has millions)."""
    _require_int("tree_size", tree_size, 0, _MAX_INDEX)
    return _tiles_for_size(tree_size)


def _tiles_for_size(tree_size: int) -> Iterator[TileId]:
    level = 0
    while hashes := tree_size >> (TILE_HEIGHT * level):
        full, rest = divmod(hashes, TILE_WIDTH)
        yield from (TileId(level, index) for index in range(full))
        if rest:
            yield TileId(level, full, rest)
        level += 1


def partial_tiles(tree_size: int) -> list[TileId]:
    """The partial tiles of a tree of ``tree_size`` leaves (at most one per level)."""
    _require_int("tree_size", tree_size, 0, _MAX_INDEX)
    found: list[TileId] = []
    level = 0
    while hashes := tree_size >> (TILE_HEIGHT * level):
        if rest := hashes % TILE_WIDTH:
            found.append(TileId(level, hashes // TILE_WIDTH, rest))
        level += 1
    return found


def entry_bundle_for_entry(entry_index: int, tree_size: int) -> EntryBundleId:
    """The bundle holding entry ``entry_index`` in a tree of ``tree_size`` leaves (partial
    when the tree ends inside it)."""
    _require_int("tree_size", tree_size, 0, _MAX_INDEX)
    _require_int("entry_index", entry_index, 0, tree_size - 1)
    bundle = entry_index // TILE_WIDTH
    return EntryBundleId(bundle, min(TILE_WIDTH, tree_size - bundle * TILE_WIDTH))


# --- node <-> tile ----------------------------------------------------------------------------


def tile_for_node(level: int, index: int) -> tuple[int, int, int, int]:
    """Where tree node (``level``, ``index``) lives: ``(tile_level, tile_index, level_in_tile,
    index_in_tile)``. Its hash is rebuilt from that tile's hashes
    ``[index_in_tile << level_in_tile, (index_in_tile + 1) << level_in_tile)``."""
    _require_int("level", level, 0, TILE_HEIGHT * (MAX_TILE_LEVEL + 1) - 1)
    _require_int("index", index, 0, _MAX_INDEX)
    tile_level, level_in_tile = divmod(level, TILE_HEIGHT)
    per_tile = TILE_WIDTH >> level_in_tile  # nodes of this level in one tile
    return tile_level, index // per_tile, level_in_tile, index % per_tile


def tiles_for_nodes(node_ids: Iterable[NodeId], tree_size: int) -> dict[TileId, list[NodeId]]:
    """Group the nodes a proof plan reads by the tile (with its width at ``tree_size``) that
    holds them, so a store fetches each tile once. Every node must be complete at
    ``tree_size``."""
    _require_int("tree_size", tree_size, 0, _MAX_INDEX)
    grouped: dict[TileId, list[NodeId]] = {}
    for level, index in node_ids:
        if (index + 1) << level > tree_size:
            raise _bad(f"node {(level, index)} is not complete in a tree of {tree_size}", "node")
        tile_level, tile_index, _, _ = tile_for_node(level, index)
        width = tile_width(tile_level, tile_index, tree_size)
        grouped.setdefault(TileId(tile_level, tile_index, width), []).append((level, index))
    return grouped


def _split_hashes(tile_hashes: bytes) -> list[bytes]:
    if not tile_hashes or len(tile_hashes) % HASH_SIZE or len(tile_hashes) > 8192:
        raise _bad(f"tile data of {len(tile_hashes)} bytes is not 1..256 hashes", "bad_tile")
    return [tile_hashes[i : i + HASH_SIZE] for i in range(0, len(tile_hashes), HASH_SIZE)]


def node_hash_in_tile(
    tile_hashes: bytes,
    level_in_tile: int,
    index_in_tile: int,
    hasher: Hasher = RFC9162_SHA256,
) -> bytes:
    """Hash of the node at ``level_in_tile`` (0..7), ``index_in_tile`` of a tile whose data
    (concatenated 32-byte hashes) is ``tile_hashes``: the perfect subtree over the tile's
    hashes ``[index_in_tile << level_in_tile, (index_in_tile + 1) << level_in_tile)``."""
    _require_int("level_in_tile", level_in_tile, 0, TILE_HEIGHT - 1)
    _require_int("index_in_tile", index_in_tile, 0, (TILE_WIDTH >> level_in_tile) - 1)
    hashes = _split_hashes(tile_hashes)
    begin, end = index_in_tile << level_in_tile, (index_in_tile + 1) << level_in_tile
    if end > len(hashes):
        raise _bad(f"tile of {len(hashes)} hashes does not hold hashes {begin}..{end - 1}", "node")
    row = hashes[begin:end]
    while len(row) > 1:  # a perfect subtree: pair up level by level
        row = list(map(hasher.hash_children, row[0::2], row[1::2]))
    return row[0]


def node_reader_from_tiles(
    tiles: Mapping[TileId, bytes], hasher: Hasher = RFC9162_SHA256
) -> NodeReader:
    """A :data:`~trailseal.core.merkle.NodeReader` over fetched tiles (e.g. those
    :func:`tiles_for_nodes` named). Raises ``KeyError`` for a node whose tile is missing."""
    by_position = {(tile.level, tile.index): data for tile, data in tiles.items()}

    def read_node(level: int, index: int) -> bytes:
        tile_level, tile_index, level_in_tile, index_in_tile = tile_for_node(level, index)
        data = by_position[tile_level, tile_index]
        return node_hash_in_tile(data, level_in_tile, index_in_tile, hasher)

    return read_node


TileUpdates = dict[tuple[int, int], list[tuple[int, bytes]]]
"""``(tile_level, tile_index)`` → ``[(offset, hash), ...]``: see :func:`tile_updates`."""


def tile_updates(completed_nodes: Iterable[tuple[int, int, bytes]]) -> TileUpdates:
    """Which tile rows grew: maps ``(tile_level, tile_index)`` to ``[(offset, hash), ...]`` for
    every completed node that is stored in a tile (tree levels 0, 8, 16, ...), in the order
    given. Fed the nodes of :meth:`CompactRange.append`, each list is contiguous and
    ascending from the tile's previous width, so the writer appends the hashes to the tile's
    bytes; a tile whose new width reaches 256 is full and never changes again."""
    updates: TileUpdates = {}
    for level, index, node_hash in completed_nodes:
        if level % TILE_HEIGHT:
            continue
        key = (level // TILE_HEIGHT, index >> TILE_HEIGHT)
        updates.setdefault(key, []).append((index & (TILE_WIDTH - 1), node_hash))
    return updates


# --- entry bundles ----------------------------------------------------------------------------


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes (1..256 of
    them, each at most 65,535 bytes)."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise _bad(f"an entry bundle holds 1..256 entries, got {len(entries)}", "bad_bundle")
    parts: list[bytes] = []
    for position, entry in enumerate(entries):
        if len(entry) > _MAX_ENTRY:
            raise ValidationError(
                f"entry is {len(entry)} bytes, above {_MAX_ENTRY}",
                field=f"/{position}",
                code="bad_bundle",
            )
        parts += (len(entry).to_bytes(2, "big"), entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """Inverse of :func:`encode_entry_bundle`; rejects truncated or over-long bundles."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise _bad("entry bundle ends inside a length prefix", "bad_bundle")
        size = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + size > len(data):
            raise _bad("entry bundle ends inside an entry", "bad_bundle")
        entries.append(data[offset : offset + size])
        offset += size
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise _bad(f"an entry bundle holds 1..256 entries, got {len(entries)}", "bad_bundle")
    return entries
