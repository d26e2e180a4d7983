"""Proof reads from stored tiles: every node a proof needs comes from at most one tile per
tile level, fetched in one store call.

A tile's internal levels (the 255 nodes above its 256 stored hashes) are hashed once and
kept, for partial tiles too: a log's right-edge tiles grow with every commit, and a sync
append asks for a proof at the new size at once, so a grown tile is *extended* (only the
new hashes and the nodes above them are hashed) rather than hashed again. A node is
complete at one tree size and never changes later, so levels read at a larger width serve
every smaller one. Cached tiles are bounded (LRU).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from trailseal.core.hashing import node_hash
from trailseal.core.merkle import NodeId, ProofPlan
from trailseal.core.tiles import TILE_HEIGHT, TileId, tile_for_node, tiles_for_nodes
from trailseal.store.base import Store

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


class TileReader:
    """Reads proof nodes of logs from a store, caching the levels of full tiles."""

    def __init__(self, store: Store, *, cached_tiles: int = 4096) -> None:
        self._store = store
        self._cache: OrderedDict[_TileKey, Levels] = OrderedDict()
        self._capacity = cached_tiles
        self._lock = threading.Lock()

    def cached_nodes(
        self, project: str, log_id: str, node_ids: Iterable[NodeId], size: int
    ) -> dict[NodeId, bytes] | None:
        """:meth:`nodes` if every tile they need is cached (no store read, so callable on
        an event loop), else None."""
        needed = tiles_for_nodes(node_ids, size)
        levels = self._cached(project, log_id, needed)
        if len(levels) < len(needed):
            return None
        return _pick(needed, levels)

    def nodes(
        self, project: str, log_id: str, node_ids: Iterable[NodeId], size: int
    ) -> dict[NodeId, bytes]:
        """Hashes of complete nodes of the tree of ``size`` leaves."""
        needed = tiles_for_nodes(node_ids, size)
        levels = self._cached(project, log_id, needed)
        missing = [tile for tile in needed if (tile.level, tile.index) not in levels]
        if missing:
            fetched = self._store.read_tiles(project, log_id, [(t.level, t.index) for t in missing])
            for tile in missing:
                data = fetched.get((tile.level, tile.index))
                if data is None or len(data) < tile.width * _HASH:
                    raise LookupError(f"tile {tile.path()} of log {log_id} is missing")
                levels[(tile.level, tile.index)] = self._grow(
                    (project, log_id, tile.level, tile.index), data
                )
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

    def _cached(
        self, project: str, log_id: str, needed: Iterable[TileId]
    ) -> dict[tuple[int, int], Levels]:
        """The needed tiles cached at least as wide as needed."""
        found: dict[tuple[int, int], Levels] = {}
        with self._lock:
            for tile in needed:
                key = (project, log_id, tile.level, tile.index)
                cached = self._cache.get(key)
                if cached is not None and len(cached[0]) >= tile.width:
                    self._cache.move_to_end(key)
                    found[(tile.level, tile.index)] = cached
        return found

    def _grow(self, key: _TileKey, data: bytes) -> Levels:
        """Levels of the tile holding ``data`` (as stored now), extending the cached
        levels of its earlier, narrower state when they are a prefix of it."""
        with self._lock:
            known = self._cache.get(key)
        if known is not None and (
            len(known[0]) > len(data) // _HASH
            or b"".join(known[0]) != data[: len(known[0]) * _HASH]
        ):
            known = None  # not a prefix: never expected of an append-only log; start over
        levels = _levels(data, known)
        with self._lock:
            current = self._cache.get(key)
            if current is None or len(current[0]) < len(levels[0]):
                self._cache[key] = levels
            self._cache.move_to_end(key)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
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
