"""One batch integration inside an append transaction (the locked part of group commit).

Given the locked log head and whole requests, it decides each request's fate (appended,
already stored, or an idempotency conflict), then for the new events assigns sequence
numbers, builds entry bytes, leaf and chain hashes, grows the Merkle tree and its tiles,
signs one checkpoint for the new size, runs the façade hooks and moves the head, all
through the transaction, so it commits or vanishes as one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from trailseal.core.checkpoint import Checkpoint
from trailseal.core.entry import EntryAssembler
from trailseal.core.merkle import CompactRange
from trailseal.core.tiles import tile_updates
from trailseal.errors import TrailsealError
from trailseal.ledger.prepare import PreparedEvent
from trailseal.store.base import (
    AppendTransaction,
    CheckpointRow,
    IdRecord,
    LogHead,
    NewEntry,
    TileKey,
)

__all__ = [
    "AppendHook",
    "AppendResult",
    "CommittedEntry",
    "IdempotencyConflict",
    "LogSigner",
    "integrate",
]

_HASH = 32


class IdempotencyConflict(TrailsealError):
    """An event id that is already stored with other content (HTTP 409)."""

    def __init__(self, event_id: str, index: int, *, batch: bool = True) -> None:
        super().__init__(f"event id {event_id!r} is already stored with different content")
        self.event_id = event_id
        self.index = index  # position in the request's batch
        self.batch = batch


@dataclass(slots=True)  # not frozen: one per event on the hot path, frozen init is slower
class AppendResult:
    event_id: str
    log_id: str
    seq: int
    duplicate: bool  # already stored before this request: a retry
    leaf_hash: bytes | None = None  # known for entries appended by this batch
    prev_hash: bytes | None = None
    chain_hash: bytes | None = None
    checkpoint: CheckpointRow | None = None  # the checkpoint that first covered the entry


@dataclass(frozen=True, slots=True)
class CommittedEntry:
    """What a façade hook sees of each entry its batch appends."""

    seq: int
    entry: bytes
    leaf_hash: bytes
    event: PreparedEvent


class AppendHook(Protocol):
    """A façade's per-log derived state, kept inside the append transaction (§3)."""

    name: str

    def on_append(
        self, txn: AppendTransaction, head: LogHead, entries: Sequence[CommittedEntry]
    ) -> None: ...


class LogSigner(Protocol):
    def sign(self, checkpoint: Checkpoint, timestamp: int) -> str:
        """The signed checkpoint note, with the log's own timestamped cosignature."""
        ...


def _classify(
    requests: Sequence[Sequence[PreparedEvent]], stored: dict[str, IdRecord]
) -> tuple[list[list[PreparedEvent] | IdempotencyConflict], dict[str, IdRecord]]:
    """Per request: the events to append, or the conflict that rejects it whole. Ids seen
    earlier in the same batch count as stored, so a duplicate inside a batch is a retry."""
    pending: dict[str, bytes] = {}
    fates: list[list[PreparedEvent] | IdempotencyConflict] = []
    for events in requests:
        fresh: list[PreparedEvent] = []
        conflict: IdempotencyConflict | None = None
        local: dict[str, bytes] = {}
        for index, event in enumerate(events):
            known = stored.get(event.event_id)
            earlier = known.content_hash if known else pending.get(event.event_id)
            earlier = earlier if earlier is not None else local.get(event.event_id)
            if earlier is None:
                local[event.event_id] = event.content_hash
                fresh.append(event)
            elif earlier != event.content_hash:
                conflict = IdempotencyConflict(event.event_id, index)
                break
        if conflict is not None:
            fates.append(conflict)
        else:
            pending.update(local)
            fates.append(fresh)
    return fates, stored


def _grow_tiles(
    txn: AppendTransaction, completed: Sequence[tuple[int, int, bytes]]
) -> dict[TileKey, bytes]:
    """Append the newly completed nodes at tile levels (0, 8, 16, …) to their tiles."""
    rows = tile_updates(completed)
    # Only a tile that already holds hashes needs reading: the one partial tile per level.
    partial = [key for key, added in rows.items() if added[0][0] != 0]
    current = txn.read_tiles(partial) if partial else {}
    updated: dict[TileKey, bytes] = {}
    for key, added in rows.items():
        data = current.get(key, b"")
        if len(data) != added[0][0] * _HASH:
            raise RuntimeError(
                f"tile {key} holds {len(data) // _HASH} hashes, expected"
                f" {added[0][0]}: the stored tree is damaged"
            )
        updated[key] = data + b"".join(digest for _, digest in added)
    return updated


def integrate(
    txn: AppendTransaction,
    requests: Sequence[Sequence[PreparedEvent]],
    *,
    received_at: str,
    timestamp: int,
    signer: LogSigner,
    hooks: Sequence[AppendHook] = (),
    optimistic: bool = False,
) -> list[list[AppendResult] | IdempotencyConflict]:
    """``optimistic``: skip looking the ids up first and let the unique id index refuse a
    stored one (``DuplicateIdError``, the transaction rolls back); the caller then retries
    with ``optimistic=False``, which classifies retries and conflicts. New ids, the
    common case, then cost no lookup at all."""
    head = txn.head
    if optimistic:
        stored: dict[str, IdRecord] = {}
    else:
        stored = txn.find_ids(list({e.event_id for events in requests for e in events}))
    fates, stored = _classify(requests, stored)

    seq = head.size
    previous = head.chain_head
    new_entries: list[NewEntry] = []
    committed: list[CommittedEntry] = []
    placed: dict[str, tuple[int, bytes, bytes, bytes]] = {}
    origin = head.origin
    assemble = EntryAssembler(origin, received_at).entry
    sha256 = hashlib.sha256
    for fate in fates:
        if isinstance(fate, IdempotencyConflict):
            continue
        for event in fate:
            data = assemble(seq, event.canonical, event.ext)
            leaf = sha256(b"\x00" + data).digest()  # leaf_hash, inlined on the hot path
            link = sha256(previous + leaf).digest()  # chain_hash
            placed[event.event_id] = (seq, leaf, previous, link)
            new_entries.append(
                NewEntry(
                    seq,
                    event.event_id,
                    data,
                    leaf,
                    link,
                    event.content_hash,
                    received_at,
                    event.occurred_at,
                    *event.columns,
                    event.search_text,
                )
            )
            if hooks:
                committed.append(CommittedEntry(seq, data, leaf, event))
            previous = link
            seq += 1

    checkpoint: CheckpointRow | None = None
    if new_entries:
        txn.insert_entries(new_entries)
        tree, completed = CompactRange.from_bytes(head.size, head.peaks).append(
            [e.leaf_hash for e in new_entries]
        )
        txn.put_tiles(_grow_tiles(txn, completed))
        root = tree.root()
        note = signer.sign(Checkpoint(origin, tree.size, root), timestamp)
        checkpoint = CheckpointRow(head.log_id, tree.size, root, note, received_at)
        txn.put_checkpoint(checkpoint)
        txn.add_usage(received_at[:7], len(new_entries))
        for hook in hooks:
            hook.on_append(txn, head, committed)
        txn.set_head(size=tree.size, chain_head=previous, peaks=tree.to_bytes())

    results: list[list[AppendResult] | IdempotencyConflict] = []
    for fate, events in zip(fates, requests, strict=True):
        if isinstance(fate, IdempotencyConflict):
            results.append(fate)
            continue
        outcome = []
        for event in events:
            record = stored.get(event.event_id)
            if record is not None:
                outcome.append(AppendResult(event.event_id, record.log_id, record.seq, True))
            else:
                at, leaf, prev, link = placed[event.event_id]
                outcome.append(
                    AppendResult(
                        event.event_id, head.log_id, at, False, leaf, prev, link, checkpoint
                    )
                )
        results.append(outcome)
    return results
