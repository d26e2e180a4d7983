"""Proof reads from stored tiles: every node a proof needs comes from at most one tile per
tile level, fetched in one store call.

A tile's internal levels (the 255 nodes above its 256 stored hashes) are hashed once and
kept; full tiles never change, so they are cached across requests (bounded LRU), which
makes a warm proof a few dictionary lookups.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from trailseal.core.hashing import node_hash
from trailseal.core.merkle import NodeId, ProofPlan
from trailseal.core.tiles import TILE_HEIGHT, TILE_WIDTH, TileId, tile_for_node, tiles_for_nodes
from trailseal.store.base import Store

__all__ = ["TileReader"]

_HASH = 32
Levels = list[list[bytes]]  # levels[k][i]: node at height k inside the tile


def _levels(data: bytes) -> Levels:
    row = [data[i : i + _HASH] for i in range(0, len(data), _HASH)]
    levels = [row]
    for _ in range(TILE_HEIGHT - 1):
        row = list(map(node_hash, row[0::2], row[1::2]))  # drops an unpaired last hash
        levels.append(row)
    return levels


class TileReader:
    """Reads proof nodes of logs from a store, caching the levels of full tiles."""

    def __init__(self, store: Store, *, cached_tiles: int = 4096) -> None:
        self._store = store
        self._cache: OrderedDict[tuple[str, str, int, int], Levels] = OrderedDict()
        self._capacity = cached_tiles
        self._lock = threading.Lock()

    def nodes(
        self, project: str, log_id: str, node_ids: Iterable[NodeId], size: int
    ) -> dict[NodeId, bytes]:
        """Hashes of complete nodes of the tree of ``size`` leaves."""
        needed = tiles_for_nodes(node_ids, size)
        levels: dict[tuple[int, int], Levels] = {}
        missing: list[TileId] = []
        with self._lock:
            for tile in needed:
                cached = self._cache.get((project, log_id, tile.level, tile.index))
                if cached is not None:
                    self._cache.move_to_end((project, log_id, tile.level, tile.index))
                    levels[(tile.level, tile.index)] = cached
                else:
                    missing.append(tile)
        if missing:
            fetched = self._store.read_tiles(project, log_id, [(t.level, t.index) for t in missing])
            for tile in missing:
                data = fetched.get((tile.level, tile.index))
                if data is None or len(data) < tile.width * _HASH:
                    raise LookupError(f"tile {tile.path()} of log {log_id} is missing")
                computed = _levels(data[: tile.width * _HASH])
                levels[(tile.level, tile.index)] = computed
                if tile.width == TILE_WIDTH:
                    self._remember((project, log_id, tile.level, tile.index), computed)
        found: dict[NodeId, bytes] = {}
        for nodes in needed.values():
            for level, index in nodes:
                tile_level, tile_index, level_in_tile, index_in_tile = tile_for_node(level, index)
                found[(level, index)] = levels[(tile_level, tile_index)][level_in_tile][
                    index_in_tile
                ]
        return found

    def assemble(
        self, project: str, log_id: str, plans: Sequence[ProofPlan], size: int
    ) -> list[list[bytes]]:
        """The proofs of several plans over one tree size, reading each tile once."""
        wanted = {node for plan in plans for node in plan.node_ids}
        hashes = self.nodes(project, log_id, wanted, size)
        return [plan.assemble([hashes[node] for node in plan.node_ids]) for plan in plans]

    def _remember(self, key: tuple[str, str, int, int], levels: Levels) -> None:
        with self._lock:
            self._cache[key] = levels
            self._cache.move_to_end(key)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
