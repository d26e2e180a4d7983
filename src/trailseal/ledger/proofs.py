"""Proof reads from stored tiles: every node a proof needs comes from at most one tile per
tile level, fetched in one store call.

Tiles are cached (bounded LRU) as their stored hashes plus the internal levels (the 255
nodes above 256 hashes) of some prefix of them, hashed on first use and *extended*, not
hashed again, when the tile has grown: a log's right-edge tiles grow with every commit,
and a sync append asks for proofs at the new size at once. The sequencer hands over the
tiles each commit wrote (:meth:`TileReader.remember`), so those proofs need no store read.
A node is complete at one tree size and never changes later, so a tile cached at a larger
width serves every smaller one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from trailseal.core.hashing import node_hash
from trailseal.core.merkle import NodeId, ProofPlan
from trailseal.core.tiles import TILE_HEIGHT, TileId, tile_for_node, tiles_for_nodes
from trailseal.store.base import Store, TileKey

__all__ = ["TileReader"]

_HASH = 32
Levels = list[list[bytes]]  # levels[k][i]: node at height k inside the tile
_TileKey = tuple[str, str, int, int]  # project, log id, tile level, tile index


def _levels(data: bytes, known: Levels | None = None) -> Levels:
    """The tile's levels; ``known`` (levels of a prefix of ``data``) is extended, not
    hashed again. Builds new lists: cached ones may be read by other threads."""
    row = list(known[0]) if known else []
    row.extend(data[i : i + _HASH] for i in range(len(row) * _HASH, len(data), _HASH))
    levels = [row]
    for height in range(1, TILE_HEIGHT):
        below = levels[-1]
        done = known[height] if known else []
        row = list(done)
        start = 2 * len(done)
        # drops an unpaired last hash: only complete nodes
        row.extend(map(node_hash, below[start::2], below[start + 1 :: 2]))
        levels.append(row)
    return levels


@dataclass(slots=True)
class _Cached:
    data: bytes  # the tile's hashes, as last read or written (later ones only extend it)
    levels: Levels  # levels of a prefix of ``data``; [] until first used


class TileReader:
    """Reads proof nodes of logs from a store, caching tiles and their levels."""

    def __init__(self, store: Store, *, cached_tiles: int = 4096) -> None:
        self._store = store
        self._cache: OrderedDict[_TileKey, _Cached] = OrderedDict()
        self._capacity = cached_tiles
        self._lock = threading.Lock()

    def remember(self, project: str, log_id: str, tiles: Mapping[TileKey, bytes]) -> None:
        """Cache tiles as a commit wrote them (call only after the commit is durable)."""
        for (level, index), data in tiles.items():
            self._store_data((project, log_id, level, index), data)

    def cached_nodes(
        self, project: str, log_id: str, node_ids: Iterable[NodeId], size: int
    ) -> dict[NodeId, bytes] | None:
        """:meth:`nodes` if every tile they need is cached (no store read, so callable on
        an event loop), else None."""
        needed = tiles_for_nodes(node_ids, size)
        levels, missing = self._from_cache(project, log_id, needed)
        return None if missing else _pick(needed, levels)

    def nodes(
        self, project: str, log_id: str, node_ids: Iterable[NodeId], size: int
    ) -> dict[NodeId, bytes]:
        """Hashes of complete nodes of the tree of ``size`` leaves."""
        needed = tiles_for_nodes(node_ids, size)
        levels, missing = self._from_cache(project, log_id, needed)
        if missing:
            fetched = self._store.read_tiles(project, log_id, [(t.level, t.index) for t in missing])
            for tile in missing:
                key = (project, log_id, tile.level, tile.index)
                data = fetched.get((tile.level, tile.index))
                if data is None or len(data) < tile.width * _HASH:
                    raise LookupError(f"tile {tile.path()} of log {log_id} is missing")
                self._store_data(key, data)
                found = self._levels_of(key, tile.width)
                levels[(tile.level, tile.index)] = found if found is not None else _levels(data)
        return _pick(needed, levels)

    def assemble(
        self, project: str, log_id: str, plans: Sequence[ProofPlan], size: int
    ) -> list[list[bytes]]:
        """The proofs of several plans over one tree size, reading each tile once."""
        wanted = {node for plan in plans for node in plan.node_ids}
        return _assemble(plans, self.nodes(project, log_id, wanted, size))

    def assemble_cached(
        self, project: str, log_id: str, plans: Sequence[ProofPlan], size: int
    ) -> list[list[bytes]] | None:
        """:meth:`assemble` from cached tiles only, else None."""
        wanted = {node for plan in plans for node in plan.node_ids}
        hashes = self.cached_nodes(project, log_id, wanted, size)
        return None if hashes is None else _assemble(plans, hashes)

    def _from_cache(
        self, project: str, log_id: str, needed: Iterable[TileId]
    ) -> tuple[dict[tuple[int, int], Levels], list[TileId]]:
        """The levels of the needed tiles cached wide enough, and the tiles that are not."""
        levels: dict[tuple[int, int], Levels] = {}
        missing: list[TileId] = []
        for tile in needed:
            found = self._levels_of((project, log_id, tile.level, tile.index), tile.width)
            if found is None:
                missing.append(tile)
            else:
                levels[(tile.level, tile.index)] = found
        return levels, missing

    def _store_data(self, key: _TileKey, data: bytes) -> None:
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                self._cache[key] = _Cached(data, [])
            elif len(cached.data) < len(data):
                if data.startswith(cached.data):
                    cached.data = data
                else:  # never expected of an append-only log: trust the newer, start over
                    self._cache[key] = _Cached(data, [])
            self._cache.move_to_end(key)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)

    def _levels_of(self, key: _TileKey, width: int) -> Levels | None:
        """The cached tile's levels covering at least ``width`` hashes, or None if it is
        not cached that wide. Extends the known levels when the data has grown."""
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or len(cached.data) < width * _HASH:
                return None
            self._cache.move_to_end(key)
            data, known = cached.data, cached.levels
        if known and len(known[0]) >= width:
            return known
        levels = _levels(data, known or None)  # outside the lock: up to 255 hashes
        with self._lock:
            current = self._cache.get(key)
            if (
                current is not None
                and current.data.startswith(data)
                and (not current.levels or len(current.levels[0]) < len(levels[0]))
            ):
                current.levels = levels
        return levels


def _assemble(plans: Sequence[ProofPlan], hashes: dict[NodeId, bytes]) -> list[list[bytes]]:
    return [plan.assemble([hashes[node] for node in plan.node_ids]) for plan in plans]


def _pick(
    needed: dict[TileId, list[NodeId]], levels: dict[tuple[int, int], Levels]
) -> dict[NodeId, bytes]:
    found: dict[NodeId, bytes] = {}
    for nodes in needed.values():
        for level, index in nodes:
            tile_level, tile_index, level_in_tile, index_in_tile = tile_for_node(level, index)
            found[(level, index)] = levels[(tile_level, tile_index)][level_in_tile][index_in_tile]
    return found
