"""CSV, JSON and NDJSON exports: pages of entries in, byte chunks out (one chunk per page).

- **NDJSON**: one event view per line, the same view ``GET /v1/events`` lists (``id``,
  ``organization_id``, ``log_id``, ``seq``, ``leaf_hash``, ``prev_hash`` (null: not looked up
  for exports), ``hash``, ``redacted``, ``received_at``, ``event`` with read defaults,
  ``ext``), UTF-8, LF.
- **JSON**: the same views as one array, streamed: ``[`` view ``,`` view ... ``]``.
- **CSV**: RFC 4180 (the ``csv`` module's quoting: fields with commas, quotes or line breaks
  are quoted, quotes doubled; CRLF between records), UTF-8, a header row of
  :data:`CSV_COLUMNS`. ``targets``, ``tags`` and ``metadata`` hold compact JSON, so every
  value parses back exactly; a column whose member is absent is empty. Redacted entries
  keep ``id``, ``organization_id``, ``seq`` and the hashes, with ``redacted`` ``true``.
  No byte-order mark by default: programs reading UTF-8 CSV would take it for part of the
  first column's name. ``excel=True`` is for spreadsheets: it adds the BOM (so Excel reads
  UTF-8) and defuses cells that a spreadsheet would run as a formula (a value starting with
  ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'``); such a file no longer
  round-trips byte for byte.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Literal

import orjson

from trailseal.server.views import entry_view
from trailseal.store.base import StoredEntry

__all__ = [
    "CSV_COLUMNS",
    "MEDIA_TYPES",
    "StreamFormat",
    "csv_record",
    "export_chunks",
]

StreamFormat = Literal["csv", "json", "ndjson"]

CSV_COLUMNS: Final = (
    "id",
    "organization_id",
    "seq",
    "occurred_at",
    "received_at",
    "action",
    "actor_id",
    "actor_type",
    "actor_name",
    "resource_type",
    "resource_id",
    "targets",
    "outcome",
    "message",
    "tags",
    "metadata",
    "leaf_hash",
    "hash",
    "redacted",
)

MEDIA_TYPES: Final = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "pdf": "application/pdf",
    "evidence": "application/zip",
}

_BOM: Final = "\ufeff"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode("utf-8")


def _json(value: Any) -> str:
    return "" if value is None else orjson.dumps(value).decode("utf-8")


def csv_record(view: dict[str, Any]) -> list[str]:
    """One CSV record (:data:`CSV_COLUMNS`) of an event view."""
    event = view.get("event") or {}
    actor: dict[str, Any] = event.get("actor") or {}
    resource: dict[str, Any] = event.get("resource") or {}
    return [
        view["id"],
        view["organization_id"],
        str(view["seq"]),
        _text(event.get("occurred_at")),
        _text(view.get("received_at")),
        _text(event.get("action")),
        _text(actor.get("id")),
        _text(actor.get("type")),
        _text(actor.get("name")),
        _text(resource.get("type")),
        _text(resource.get("id")),
        _json(event.get("targets")),
        _text(event.get("outcome")),
        _text(event.get("message")),
        _json(event.get("tags")),
        _json(event.get("metadata")),
        view["leaf_hash"],
        view["hash"],
        "true" if view["redacted"] else "false",
    ]


def _defuse(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def export_chunks(
    fmt: StreamFormat,
    pages: Iterable[list[StoredEntry]],
    organization_of: Callable[[str], str],
    *,
    excel: bool = False,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export as byte chunks: a header (CSV, JSON), one chunk per page, a trailer
    (JSON). ``organization_of`` maps a log id to its organization; ``on_page`` is told how
    many entries each page held, after its chunk is produced."""
    first = True
    if fmt == "csv":
        yield ((_BOM if excel else "") + _csv_lines([list(CSV_COLUMNS)])).encode("utf-8")
    elif fmt == "json":
        yield b"["
    for page in pages:
        views = [entry_view(e, organization_of(e.log_id), None) for e in page]
        if fmt == "csv":
            records = [csv_record(view) for view in views]
            if excel:
                records = [[_defuse(cell) for cell in record] for record in records]
            yield _csv_lines(records).encode("utf-8")
        elif fmt == "json":
            if views:
                yield (b"\n" if first else b",\n") + b",\n".join(map(orjson.dumps, views))
                first = False
        else:
            yield b"".join(orjson.dumps(view) + b"\n" for view in views)
        if on_page is not None:
            on_page(len(page))
    if fmt == "json":
        yield b"]\n" if first else b"\n]\n"


def _csv_lines(records: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue()
