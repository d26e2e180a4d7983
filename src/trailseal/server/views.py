"""JSON shapes of the native API's answers (hashes as lowercase hex, §5)."""

from __future__ import annotations

from typing import Any

import orjson

from trailseal.core.schema import with_read_defaults
from trailseal.ledger.integrate import AppendResult
from trailseal.store.base import CheckpointRow, LogHead, ReceiptRow, StoredEntry

__all__ = ["append_view", "checkpoint_view", "entry_view", "log_view", "receipt_view"]


def checkpoint_view(row: CheckpointRow, origin: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "log_id": row.log_id,
        "tree_size": row.size,
        "root_hash": row.root_hash.hex(),
        "checkpoint": row.note,
        "created_at": row.created_at,
    }
    if origin is not None:
        view["origin"] = origin
    return view


def append_view(
    result: AppendResult,
    organization: str,
    *,
    proof: list[bytes] | None = None,
    checkpoint: CheckpointRow | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": result.event_id,
        "organization_id": organization,
        "log_id": result.log_id,
        "seq": result.seq,
        "duplicate": result.duplicate,
    }
    if result.leaf_hash is not None:
        view["leaf_hash"] = result.leaf_hash.hex()
    if result.prev_hash is not None and result.chain_hash is not None:
        view["prev_hash"] = result.prev_hash.hex()
        view["hash"] = result.chain_hash.hex()
    if proof is not None and checkpoint is not None:
        view["inclusion_proof"] = {
            "leaf_index": result.seq,
            "tree_size": checkpoint.size,
            "hashes": [h.hex() for h in proof],
        }
        view["checkpoint"] = checkpoint_view(checkpoint)
    return view


def entry_view(
    entry: StoredEntry,
    organization: str,
    prev_hash: bytes | None,
    *,
    position: int | None = None,
) -> dict[str, Any]:
    """An event as read back: with read defaults applied, its place in the log and the
    hashes a reader needs to check the chain."""
    view: dict[str, Any] = {
        "id": entry.event_id,
        "organization_id": organization,
        "log_id": entry.log_id,
        "seq": entry.seq,
        "leaf_hash": entry.leaf_hash.hex(),
        "prev_hash": prev_hash.hex() if prev_hash is not None else None,
        "hash": entry.chain_hash.hex(),
        "redacted": entry.redacted,
    }
    if entry.entry is not None:
        document = orjson.loads(entry.entry)
        view["received_at"] = document["received_at"]
        view["event"] = with_read_defaults(document["event"])
        if "ext" in document:
            view["ext"] = document["ext"]
    if position is not None:
        view["position"] = position
    return view


def log_view(log: LogHead, verifier_key: str) -> dict[str, Any]:
    return {
        "organization_id": log.organization,
        "log_id": log.log_id,
        "origin": log.origin,
        "tree_size": log.size,
        "verifier_key": verifier_key,
        "created_at": log.created_at,
    }


def receipt_view(receipt: ReceiptRow, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "receipt_id": receipt.receipt_id,
        "status": receipt.state,
        "organization_id": receipt.organization,
        "log_id": receipt.log_id,
        "event_ids": list(receipt.event_ids),
        "created_at": receipt.created_at,
        "updated_at": receipt.updated_at,
    }
    if receipt.error:
        view["error"] = receipt.error
    if events is not None:
        view["events"] = events
    return view
