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
from trailseal.core.tiles import TILE_HEIGHT, TILE_WIDTH
from trailseal.errors import TrailsealError
from trailseal.ledger.prepare import PreparedEvent
from trailseal.store.base import (
    AppendTransaction,
    CheckpointRow,
    IdRecord,
    LogHead,
    NewEntries,
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
) -> list[Sequence[PreparedEvent] | IdempotencyConflict]:
    """Per request: the events to append, or the conflict that rejects it whole. Ids seen
    earlier in the same batch count as stored, so a duplicate inside a batch is a retry."""
    if not stored:
        ids = [event.event_id for events in requests for event in events]
        if len(set(ids)) == len(ids):
            return list(requests)  # the common case: every event is new
    pending: dict[str, bytes] = {}
    fates: list[Sequence[PreparedEvent] | IdempotencyConflict] = []
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
    return fates


_Row = tuple[int, int, list[bytes]]  # (level, first index, hashes): CompactRange.append_rows


def _tile_growth(rows: Sequence[_Row]) -> dict[TileKey, tuple[int, bytes]]:
    """``tile_updates`` from completed rows: per tile, the offset where its new hashes go
    and those hashes concatenated; one slice and join per tile, not a tuple per node."""
    growth: dict[TileKey, tuple[int, bytes]] = {}
    for level, start, row in rows:
        if level % TILE_HEIGHT:
            continue
        end = start + len(row)
        index = start
        while index < end:
            tile_index = index >> TILE_HEIGHT
            stop = min(end, (tile_index + 1) * TILE_WIDTH)
            growth[(level // TILE_HEIGHT, tile_index)] = (
                index % TILE_WIDTH,
                b"".join(row[index - start : stop - start]),
            )
            index = stop
    return growth


def _grow_tiles(txn: AppendTransaction, completed: Sequence[_Row]) -> dict[TileKey, bytes]:
    """Append the newly completed nodes at tile levels (0, 8, 16, …) to their tiles."""
    growth = _tile_growth(completed)
    # Only a tile that already holds hashes needs reading: the one partial tile per level.
    partial = [key for key, (offset, _) in growth.items() if offset]
    current = txn.read_tiles(partial) if partial else {}
    updated: dict[TileKey, bytes] = {}
    for key, (offset, added) in growth.items():
        data = current.get(key, b"")
        if len(data) != offset * _HASH:
            raise RuntimeError(
                f"tile {key} holds {len(data) // _HASH} hashes, expected"
                f" {offset}: the stored tree is damaged"
            )
        updated[key] = data + added
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
    tiles_written: dict[TileKey, bytes] | None = None,
) -> list[list[AppendResult] | IdempotencyConflict]:
    """``tiles_written`` receives the tiles the transaction writes (for the proof cache,
    once committed). ``optimistic``: skip looking the ids up first and let the unique id
    index refuse a stored one (``DuplicateIdError``, the transaction rolls back); the
    caller then retries with ``optimistic=False``, which classifies retries and
    conflicts. New ids, the common case, then cost no lookup at all.

    Runs inside the log's lock and is all of the ledger's overhead over a plain INSERT
    (§11), so per-event work is whole-batch comprehensions, and the entries go to the
    store as columns rather than an object each."""
    head = txn.head
    if optimistic:
        stored: dict[str, IdRecord] = {}
    else:
        stored = txn.find_ids(list({e.event_id for events in requests for e in events}))
    fates = _classify(requests, stored)
    # The new events in sequence order: each request's fresh events, one after another.
    fresh: Sequence[PreparedEvent] = [
        event for fate in fates if not isinstance(fate, IdempotencyConflict) for event in fate
    ]

    size = head.size
    count = len(fresh)
    leaves: list[bytes] = []
    links: list[bytes] = []
    checkpoint: CheckpointRow | None = None
    if fresh:
        data = EntryAssembler(head.origin, received_at).entries(
            size, [e.canonical for e in fresh], [e.ext for e in fresh]
        )
        sha256 = hashlib.sha256
        leaves = [sha256(b"\x00" + d).digest() for d in data]  # leaf_hash, inlined
        link = head.chain_head
        add_link = links.append
        for leaf in leaves:
            link = sha256(link + leaf).digest()  # chain_hash, inlined
            add_link(link)
        txn.insert_entries(
            NewEntries(
                range(size, size + count),
                [e.event_id for e in fresh],
                data,
                leaves,
                links,
                [e.content_hash for e in fresh],
                [received_at] * count,
                [e.occurred_at for e in fresh],
                [e.columns for e in fresh],
                [e.search_text for e in fresh],
            )
        )
        tree, completed = CompactRange.from_bytes(size, head.peaks).append_rows(leaves)
        tiles = _grow_tiles(txn, completed)
        txn.put_tiles(tiles)
        if tiles_written is not None:
            tiles_written.update(tiles)
        root = tree.root()
        note = signer.sign(Checkpoint(head.origin, tree.size, root), timestamp)
        checkpoint = CheckpointRow(head.log_id, tree.size, root, note, received_at)
        txn.put_checkpoint(checkpoint)
        txn.add_usage(received_at[:7], count)
        if hooks:
            committed = list(map(CommittedEntry, range(size, size + count), data, leaves, fresh))
            for hook in hooks:
                hook.on_append(txn, head, committed)
        txn.set_head(size=tree.size, chain_head=links[-1], peaks=tree.to_bytes())

    log_id = head.log_id
    prevs = [head.chain_head, *links[:-1]]  # each new entry's previous chain hash
    placed: dict[str, int] | None = None  # event id -> position in ``fresh``
    position = 0
    results: list[list[AppendResult] | IdempotencyConflict] = []
    for fate, events in zip(fates, requests, strict=True):
        if isinstance(fate, IdempotencyConflict):
            results.append(fate)
            continue
        end = position + len(fate)
        if len(fate) == len(events):  # all new: ``fresh[position:end]`` in order
            results.append(
                [
                    AppendResult(event.event_id, log_id, seq, False, leaf, prev, link, checkpoint)
                    for event, seq, leaf, prev, link in zip(
                        events,
                        range(size + position, size + end),
                        leaves[position:end],
                        prevs[position:end],
                        links[position:end],
                        strict=True,
                    )
                ]
            )
            position = end
            continue
        if placed is None:
            placed = {e.event_id: n for n, e in enumerate(fresh)}
        outcome = []
        for event in events:
            record = stored.get(event.event_id)
            if record is not None:
                outcome.append(AppendResult(event.event_id, record.log_id, record.seq, True))
            else:  # appended by this batch (here or by an earlier copy in it)
                n = placed[event.event_id]
                outcome.append(
                    AppendResult(
                        event.event_id,
                        log_id,
                        size + n,
                        False,
                        leaves[n],
                        prevs[n],
                        links[n],
                        checkpoint,
                    )
                )
        results.append(outcome)
        position = end
    return results
