"""Row ↔ value conversions shared by both drivers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from trailseal.store.base import (
    ApiKeyRow,
    CheckpointRow,
    LogHead,
    ReceiptRow,
    StoredEntry,
)

__all__ = [
    "api_key_from_row",
    "api_key_params",
    "checkpoint_from_row",
    "log_head_from_row",
    "receipt_from_row",
    "stored_entry_from_row",
]


def _b(value: Any) -> bytes:
    return bytes(value) if value is not None else b""


def log_head_from_row(row: Sequence[Any]) -> LogHead:
    project, log_id, organization, origin, size, chain_head, peaks, created_at = row
    return LogHead(
        project, log_id, organization, origin, int(size), _b(chain_head), _b(peaks), str(created_at)
    )


def stored_entry_from_row(row: Sequence[Any]) -> StoredEntry:
    project, log_id, seq, event_id, entry, leaf, chain, content = row
    return StoredEntry(
        project,
        log_id,
        int(seq),
        event_id,
        bytes(entry) if entry is not None else None,
        _b(leaf),
        _b(chain),
        _b(content),
    )


def api_key_from_row(row: Sequence[Any]) -> ApiKeyRow:
    key_id, project, key_hash, scopes, organization, name, test, created_at, revoked_at = row
    return ApiKeyRow(
        key_id,
        project,
        _b(key_hash),
        tuple(s for s in scopes.split(",") if s),
        organization,
        name,
        bool(test),
        str(created_at),
        str(revoked_at) if revoked_at is not None else None,
    )


def api_key_params(row: ApiKeyRow) -> tuple[Any, ...]:
    """Column values in the order of ``api_keys`` (both drivers' INSERT)."""
    return (
        row.key_id,
        row.project,
        row.key_hash,
        ",".join(row.scopes),
        row.organization,
        row.name,
        row.test,
        row.created_at,
        row.revoked_at,
    )


def checkpoint_params(project: str, row: CheckpointRow) -> tuple[Any, ...]:
    """Column values in the order of ``checkpoints`` (both drivers' INSERT)."""
    return (project, row.log_id, row.size, row.root_hash, row.note, row.created_at)


def checkpoint_from_row(row: Sequence[Any]) -> CheckpointRow:
    log_id, size, root_hash, note, created_at = row
    return CheckpointRow(log_id, int(size), _b(root_hash), note, str(created_at))


def receipt_from_row(row: Sequence[Any]) -> ReceiptRow:
    project, receipt_id, state, organization, event_ids, created, updated, log_id, error = row
    ids = orjson.loads(event_ids)
    return ReceiptRow(
        project,
        receipt_id,
        state,
        organization,
        tuple(ids),
        str(created),
        str(updated),
        log_id,
        error,
    )
