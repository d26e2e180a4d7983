"""The Store protocol: the one narrow interface between trailseal and its databases.

Two drivers implement it (``sqlite`` and ``postgres``) and pass one shared test suite.
Each driver takes its database's native path (COPY on PostgreSQL, one write lock on
SQLite); the protocol says only what must hold.

Contracts common to every method:

- Every table that holds log data is keyed by (project, log) first, so logs can be
  sharded by log id later without a schema change.
- A method that returns MUST NOT return before what it wrote is durable (committed with
  the database's durable commit: ``synchronous=FULL`` on SQLite, a normal COMMIT on
  PostgreSQL).
- Methods are safe to call from any thread; drivers keep per-thread connections or a pool.
- Only ``trailseal.ledger`` calls :meth:`Store.append`; nothing else writes entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from trailseal.query import EventFilter
from trailseal.store.columns import IndexColumns

__all__ = [
    "ApiKeyRow",
    "AppendTransaction",
    "CheckpointRow",
    "IdRecord",
    "IntakeRow",
    "LogHead",
    "NewEntries",
    "NewEntry",
    "ProjectRow",
    "ReceiptRow",
    "SigningKeyRow",
    "Store",
    "StoredEntry",
    "TileKey",
]

TileKey = tuple[int, int]
"""(tile level, tile index) of a C2SP tile; its width follows from the tree size."""


@dataclass(frozen=True, slots=True)
class ProjectRow:
    project: str
    created_at: str
    retention_days: int | None = None
    monthly_event_limit: int | None = None


@dataclass(frozen=True, slots=True)
class SigningKeyRow:
    """A project's Ed25519 key; ``private_sealed`` is encrypted under the master key."""

    project: str
    key_id: str
    public_key: bytes
    private_sealed: bytes
    created_at: str


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    key_id: str  # short public id, shown by `keys list`, used by `keys revoke`
    project: str
    key_hash: bytes  # SHA-256 of the secret; the secret itself is never stored
    scopes: tuple[str, ...]
    organization: str | None
    name: str
    test: bool
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True, slots=True)
class LogHead:
    """One organization's log and its head: the row appends lock."""

    project: str
    log_id: str
    organization: str
    origin: str
    size: int
    chain_head: bytes  # h(size - 1); 32 zero bytes while empty
    peaks: bytes  # CompactRange peaks, concatenated
    created_at: str


@dataclass(slots=True)  # not frozen: built per event inside the append lock
class NewEntry:
    """An entry as the ledger writes it; the columns after ``content_hash`` are derived
    from the entry bytes so queries need not parse them."""

    seq: int
    event_id: str
    entry: bytes
    leaf_hash: bytes
    chain_hash: bytes
    content_hash: bytes  # SHA-256 of the event as sent: tells a retry from a conflict
    received_at: str
    occurred_at: str
    action: str
    actor_id: str
    actor_type: str | None
    actor_name: str | None
    resource_type: str | None
    resource_id: str | None
    target_ids: str | None  # space-separated, for exact-token matching
    outcome: str | None
    tags: str | None  # space-separated
    search_text: str  # what full-text search indexes


@dataclass(frozen=True, slots=True)
class NewEntries:
    """New entries as columns: row ``i`` holds what a :class:`NewEntry` would. The ledger's
    append path builds these columns anyway and both drivers bind columns, so a batch
    costs no object per entry (those dominated the append path's own overhead, §11)."""

    seqs: Sequence[int]
    event_ids: Sequence[str]
    entries: Sequence[bytes]
    leaf_hashes: Sequence[bytes]
    chain_hashes: Sequence[bytes]
    content_hashes: Sequence[bytes]
    received_at: Sequence[str]
    occurred_at: Sequence[str]
    index_columns: Sequence[IndexColumns]  # per entry: action, actor_id, … tags
    search_texts: Sequence[str]

    def __len__(self) -> int:
        return len(self.event_ids)

    @classmethod
    def of(cls, entries: Sequence[NewEntry] | NewEntries) -> NewEntries:
        """``entries`` as columns (as they are, if they already are)."""
        if isinstance(entries, NewEntries):
            return entries
        return cls(
            [e.seq for e in entries],
            [e.event_id for e in entries],
            [e.entry for e in entries],
            [e.leaf_hash for e in entries],
            [e.chain_hash for e in entries],
            [e.content_hash for e in entries],
            [e.received_at for e in entries],
            [e.occurred_at for e in entries],
            [
                (
                    e.action,
                    e.actor_id,
                    e.actor_type,
                    e.actor_name,
                    e.resource_type,
                    e.resource_id,
                    e.target_ids,
                    e.outcome,
                    e.tags,
                )
                for e in entries
            ],
            [e.search_text for e in entries],
        )


@dataclass(frozen=True, slots=True)
class StoredEntry:
    project: str
    log_id: str
    seq: int
    event_id: str
    entry: bytes | None  # None once redacted: the leaf hash stays, the payload is gone
    leaf_hash: bytes
    chain_hash: bytes
    content_hash: bytes

    @property
    def redacted(self) -> bool:
        return self.entry is None


@dataclass(frozen=True, slots=True)
class IdRecord:
    """Where an event id already lives (the (project, id) → (log, seq) index)."""

    log_id: str
    seq: int
    content_hash: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    log_id: str
    size: int
    root_hash: bytes
    note: str  # the signed checkpoint, verbatim
    created_at: str


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    project: str
    receipt_id: str
    state: str  # queued | committed | failed
    organization: str
    event_ids: tuple[str, ...]
    created_at: str
    updated_at: str
    log_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class IntakeRow:
    """Events acknowledged (durably queued) but not yet sequenced."""

    intake_id: int
    project: str
    organization: str
    receipt_id: str
    received_at: str
    events: bytes  # JSON array of normalized events


class AppendTransaction(Protocol):
    """One append transaction on one log, holding the log's lock.

    MUST: be the only writer of this log while open, across processes (the write lock on
    SQLite, ``SELECT … FOR UPDATE`` on the log head in PostgreSQL); commit everything
    written through it atomically when the context exits normally, and nothing when it
    exits with an exception. MUST NOT: be held across anything but the append's own work.
    """

    @property
    def head(self) -> LogHead:
        """The log head as locked at the start of the transaction."""
        ...

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, IdRecord]:
        """Which of ``event_ids`` the project already holds, in any of its logs."""
        ...

    def insert_entries(self, entries: Sequence[NewEntry] | NewEntries) -> None:
        """Write entries; MUST raise ``DuplicateIdError`` (and write nothing) if an id is
        taken, so a concurrent duplicate is retried rather than appended twice."""
        ...

    def read_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, bytes]: ...

    def put_tiles(self, tiles: dict[TileKey, bytes]) -> None:
        """Replace the stored bottom-row hashes of each tile; a tile only ever grows."""
        ...

    def put_checkpoint(self, checkpoint: CheckpointRow) -> None: ...

    def set_head(self, *, size: int, chain_head: bytes, peaks: bytes) -> None: ...

    def read_state(self, facade: str) -> bytes | None:
        """A façade's per-log derived state (e.g. Pangea's second tree)."""
        ...

    def write_state(self, facade: str, state: bytes) -> None: ...

    def add_usage(self, month: str, events: int) -> None:
        """Count ``events`` appended in ``month`` (``YYYY-MM``) for the project."""
        ...

    def put_receipts(self, receipts: Sequence[ReceiptRow]) -> None:
        """Insert or update receipts in the same transaction as their entries, so a
        receipt reads ``committed`` exactly when its events are."""
        ...

    def delete_intake(self, intake_ids: Sequence[int]) -> None:
        """Drop intake rows whose events this transaction appends."""
        ...


class LogAppends(Protocol):
    """The logs of one :meth:`Store.append_logs` transaction."""

    def append(self, project: str, log_id: str) -> AppendTransaction:
        """Lock one more log and read its head (once per log per transaction). Callers
        finish with a log before they turn to the next. On PostgreSQL an append also
        locks its project's commit counter row, so two transactions of several logs can
        deadlock; the ledger groups logs only on SQLite (one writer)."""
        ...


class Store(Protocol):
    """Persistent state of an installation. See the module docstring for the contracts."""

    kind: str  # "sqlite" | "postgresql"

    def migrate(self) -> None:
        """Bring the schema to the newest version; safe to call from several processes."""
        ...

    def close(self) -> None: ...

    # -- projects, signing keys, API keys -------------------------------------------
    def create_project(self, row: ProjectRow) -> bool:
        """Create ``row.project``; False (and no change) if it exists."""
        ...

    def get_project(self, project: str) -> ProjectRow | None: ...

    def list_projects(self) -> list[ProjectRow]: ...

    def add_signing_key(self, row: SigningKeyRow) -> SigningKeyRow:
        """Store the project's first signing key, or return the one another process stored
        first: a project MUST NOT end up with two active keys from a start-up race."""
        ...

    def signing_keys(self, project: str) -> list[SigningKeyRow]:
        """Oldest first; the newest is the active key."""
        ...

    def create_api_key(self, row: ApiKeyRow) -> None: ...

    def create_first_api_key(self, row: ApiKeyRow) -> bool:
        """Create ``row`` only if the installation has no API key at all; atomic across
        processes, so of several servers starting at once exactly one creates (and
        prints) the admin key."""
        ...

    def find_api_key(self, key_hash: bytes) -> ApiKeyRow | None: ...

    def list_api_keys(self, project: str) -> list[ApiKeyRow]: ...

    def revoke_api_key(self, project: str, key_id: str, when: str) -> bool: ...

    def count_api_keys(self) -> int: ...

    # -- logs --------------------------------------------------------------------------
    def get_or_create_log(
        self, project: str, organization: str, *, log_id: str, origin: str, now: str
    ) -> LogHead:
        """The organization's live log; created with ``log_id``/``origin`` if it has none.
        Under a race exactly one log is created and both callers get it."""
        ...

    def find_log(self, project: str, organization: str) -> LogHead | None: ...

    def get_log(self, project: str, log_id: str) -> LogHead | None: ...

    def list_logs(self, project: str) -> list[LogHead]: ...

    def delete_log(self, project: str, organization: str, when: str) -> bool:
        """Retire the organization's live log; a later event creates a new log (a new
        origin), never reusing the old one."""
        ...

    # -- appends -----------------------------------------------------------------------
    def append(self, project: str, log_id: str) -> AbstractContextManager[AppendTransaction]: ...

    def append_logs(self) -> AbstractContextManager[LogAppends]:
        """One transaction appending to several logs (group commit across logs: one
        commit, one fsync). Everything written through it commits atomically when the
        context exits normally, and nothing when it exits with an exception."""
        ...

    # -- reads -------------------------------------------------------------------------
    def get_entry(self, project: str, log_id: str, seq: int) -> StoredEntry | None: ...

    def get_entry_by_id(self, project: str, event_id: str) -> StoredEntry | None: ...

    def find_ids(self, project: str, event_ids: Sequence[str]) -> dict[str, IdRecord]: ...

    def iter_entries(
        self, project: str, log_id: str, start: int, end: int, *, page: int = 5000
    ) -> Iterator[StoredEntry]:
        """Entries with ``start <= seq < end`` in order, read a page at a time."""
        ...

    def read_tiles(
        self, project: str, log_id: str, keys: Sequence[TileKey]
    ) -> dict[TileKey, bytes]: ...

    def get_checkpoint(self, project: str, log_id: str, size: int) -> CheckpointRow | None: ...

    def latest_checkpoint(self, project: str, log_id: str) -> CheckpointRow | None: ...

    def list_checkpoints(self, project: str, log_id: str) -> list[CheckpointRow]: ...

    def redact_entry(self, project: str, log_id: str, seq: int) -> bool:
        """Erase the payload (and its search text), keep the leaf and chain hashes."""
        ...

    def usage(self, project: str, month: str) -> int:
        """Events appended in ``month`` (``YYYY-MM``)."""
        ...

    # -- receipts and the durable intake --------------------------------------------------
    def put_intake(self, receipt: ReceiptRow, events: bytes) -> IntakeRow:
        """Durably record a queued receipt and its events in one transaction."""
        ...

    def pending_intake(self, limit: int) -> list[IntakeRow]:
        """Oldest first."""
        ...

    def get_receipt(self, project: str, receipt_id: str) -> ReceiptRow | None: ...

    def put_receipt(self, receipt: ReceiptRow) -> None: ...

    def fail_receipt(self, project: str, receipt_id: str, error: str, when: str) -> None: ...

    # -- filtered queries (ARCHITECTURE §7) ----------------------------------------------
    def query_entries(
        self,
        project: str,
        flt: EventFilter,
        *,
        log_ids: Sequence[str] | None,
        after: int | None,
        limit: int,
        descending: bool = True,
        offset: int = 0,
        sort: Literal["commit", "occurred"] = "commit",
    ) -> list[tuple[int, StoredEntry]]:
        """Entries matching ``flt`` (rules in :mod:`trailseal.query`), as (commit position,
        entry), newest commit first when ``descending``.

        ``log_ids`` is the set of logs to search (an organization's logs, resolved by the
        caller, who has checked access), or None for every log of the project;
        ``flt.organization`` is not read here. ``after`` is a position from an earlier
        page: only entries strictly older (descending) or newer (ascending) than it are
        returned. Positions follow commit order across all the project's logs (SQLite's
        rowid, PostgreSQL's commit_seq), so paging on them MUST NOT skip or repeat an entry,
        even one that commits while the caller pages. ``offset`` skips rows after that, for
        façades that page by offset. Redacted entries are listed (``entry`` None) when
        their remaining index columns match.

        ``sort="occurred"`` orders by the events' own time (``occurred_at``) instead, ties
        in commit order, both in the ``descending`` direction: for listings by time (a
        façade's contract). Positions do not follow that order, so it takes no ``after``
        (MUST raise ValueError) and pages by ``offset``; the order is deterministic, so an
        offset walk neither repeats nor skips an entry while nothing commits.
        """
        ...

    def count_entries(
        self, project: str, flt: EventFilter, *, log_ids: Sequence[str] | None
    ) -> int:
        """How many entries :meth:`query_entries` would list with no cursor and no limit."""
        ...
