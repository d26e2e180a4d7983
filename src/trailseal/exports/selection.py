"""Reading a selection (a filter over some logs of a project) page by page, in constant memory.

Two walks, both on ``Store.query_entries`` so an export matches exactly what
``GET /v1/events`` lists for the same filters:

- :func:`iter_selection`: every match across the logs, oldest commit first (what the
  CSV/JSON/NDJSON exports stream). It is bounded by the newest match when the walk starts,
  so a long export is the selection as of its start, never an endless chase of new commits;
  commit-order positions guarantee no entry below the bound is skipped.
- :func:`iter_log`: one log's matches in seq order, below a checkpoint size (what evidence
  packs and reports prove against that checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from trailseal.query import EventFilter
from trailseal.store.base import LogHead, Store, StoredEntry

__all__ = ["PAGE_SIZE", "Selection", "iter_log", "iter_selection"]

#: Rows per query: a few MB of entries at most, few enough round trips to stay fast.
PAGE_SIZE: Final = 2000


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
