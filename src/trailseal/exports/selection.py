"""Reading a selection (a filter over some logs of a project) page by page, in constant memory.

Two walks, both on ``Store.query_entries`` so an export matches exactly what
``GET /v1/events`` lists for the same filters:

- :func:`iter_selection`: every match across the logs, oldest commit first (what the
  CSV/JSON/NDJSON exports stream). It is bounded by the newest match when the walk starts,
  so a long export is the selection as of its start, never an endless chase of new commits;
  commit-order positions guarantee no entry below the bound is skipped.
- :func:`iter_log`: one log's matches in seq order, below a checkpoint size (what evidence
  packs and reports prove against that checkpoint).

Their inclusion proofs come from :class:`ExportProofs`, a tile reader of the export's own
with a small cache, not the ledger's shared one: a pack of a million entries reads
thousands of leaf tiles once each, which would fill the shared cache (≈150 MB at its 4096
tiles) and evict the tiles that serve single proofs. Entries arrive in seq order, so the
few upper-level tiles every proof shares stay in a small cache anyway.

:func:`use_small_page_cache` is for the threads that run exports: a scan reads each page
once, so SQLite's 64 MiB page cache per connection buys nothing there and would stay
resident for the life of the process (its driver keeps a connection per thread).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from trailseal.core.merkle import inclusion_nodes
from trailseal.ledger.proofs import TileReader
from trailseal.query import EventFilter
from trailseal.store.base import LogHead, Store, StoredEntry

__all__ = [
    "PAGE_SIZE",
    "ExportProofs",
    "Selection",
    "iter_log",
    "iter_selection",
    "use_small_page_cache",
]

#: Rows per query: a few MB of entries at most, few enough round trips to stay fast.
PAGE_SIZE: Final = 2000
#: Full tiles an export keeps: a page's leaf tiles (2000 / 256) and every upper level.
_EXPORT_TILES: Final = 64
#: SQLite page cache of an export thread's connection, in KiB.
_EXPORT_PAGE_CACHE_KIB: Final = 4096


def use_small_page_cache(store: Store) -> None:
    """Give the calling thread's SQLite connection a small page cache (module docstring);
    a no-op on other drivers. Call it once on each thread that runs exports."""
    if store.kind != "sqlite":
        return
    # The driver's per-thread connection is not part of the Store protocol; this is the one
    # place that reaches for it (a "bulk read" hint on the protocol would replace it).
    connection = getattr(store, "_conn", None)
    if callable(connection):
        connection().execute(f"PRAGMA cache_size = -{_EXPORT_PAGE_CACHE_KIB}")


@dataclass(frozen=True, slots=True)
class Selection:
    """What to export. ``log_ids`` None: every log of the project (an unbound key and no
    organization filter); ``()``: nothing (an organization without a log). ``described``
    is the request's filters as given, for manifests and reports."""

    project: str
    flt: EventFilter
    log_ids: tuple[str, ...] | None
    described: dict[str, Any] = field(default_factory=dict)

    def logs(self, store: Store) -> list[LogHead]:
        """The selection's logs (ordered by organization for a whole project)."""
        if self.log_ids is None:
            return store.list_logs(self.project)
        found = (store.get_log(self.project, log_id) for log_id in self.log_ids)
        return [log for log in found if log is not None]

    def count(self, store: Store) -> int:
        if self.log_ids == ():
            return 0
        return store.count_entries(self.project, self.flt, log_ids=self.log_ids)


def iter_selection(
    store: Store, selection: Selection, *, page: int = PAGE_SIZE
) -> Iterator[list[StoredEntry]]:
    """Pages of matching entries, oldest commit first, up to the newest match at the start."""
    if selection.log_ids == ():
        return
    project, flt, log_ids = selection.project, selection.flt, selection.log_ids
    newest = store.query_entries(project, flt, log_ids=log_ids, after=None, limit=1)
    if not newest:
        return
    bound = newest[0][0]
    after: int | None = None
    while True:
        rows = store.query_entries(
            project, flt, log_ids=log_ids, after=after, limit=page, descending=False
        )
        kept = [entry for position, entry in rows if position <= bound]
        if kept:
            yield kept
        if len(rows) < page or len(kept) < len(rows):
            return
        after = rows[-1][0]


def iter_log(
    store: Store,
    project: str,
    flt: EventFilter,
    log_id: str,
    *,
    below: int,
    page: int = PAGE_SIZE,
) -> Iterator[list[StoredEntry]]:
    """Pages of one log's matching entries in seq order, only those with ``seq < below``
    (the size of the checkpoint they will be proved against)."""
    after: int | None = None
    while True:
        rows = store.query_entries(
            project, flt, log_ids=[log_id], after=after, limit=page, descending=False
        )
        kept = [entry for _, entry in rows if entry.seq < below]
        if kept:
            yield kept
        if len(rows) < page or len(kept) < len(rows):
            return
        after = rows[-1][0]


class ExportProofs:
    """Inclusion proofs for one export (module docstring: why a reader of its own)."""

    def __init__(self, store: Store, *, cached_tiles: int = _EXPORT_TILES) -> None:
        self._tiles = TileReader(store, cached_tiles=cached_tiles)

    def inclusion_proofs(
        self, project: str, log_id: str, seqs: Sequence[int], size: int
    ) -> list[list[bytes]]:
        """The proofs of entries ``seqs`` in the tree of ``size`` leaves (each seq below
        ``size``: the callers read only entries below their checkpoint's size)."""
        plans = [inclusion_nodes(seq, size) for seq in seqs]
        return self._tiles.assemble(project, log_id, plans, size)
