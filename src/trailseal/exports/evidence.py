"""Building an evidence pack (layout in :mod:`trailseal.exports.pack`) into a file.

Constant memory whatever the selection's size: entries are read a page at a time
(:func:`~trailseal.exports.selection.iter_log`), their inclusion proofs assembled a page at a
time at the checkpoint's size (one tile read per page, :class:`ExportProofs`), and
every file is streamed into the zip while its SHA-256 is taken. A zip member is written in
one go, so while a log's proofs stream into the zip its entry lines go to a temporary file
next to the output, copied in afterwards.

Each log is proved against its latest checkpoint, read before its entries: only entries
below that checkpoint's size are included, so an entry that commits while the pack is being
built is left out rather than left unproved.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from trailseal.core.verify import make_proof_bundle
from trailseal.exports.pack import (
    CHECKPOINT,
    ENTRIES,
    KEYS,
    MANIFEST,
    PACK_FORMAT,
    PROOFS,
    README,
    entry_line,
    manifest_bytes,
    pack_readme,
    proof_line,
    redacted_line,
)
from trailseal.exports.selection import PAGE_SIZE, ExportProofs, Selection, iter_log
from trailseal.ledger.service import Ledger

__all__ = ["PackSummary", "build_evidence_pack"]

_COPY_CHUNK: Final = 1 << 20
# Level 1: about 6x faster than the default for 1-2% more bytes (entries and proofs are
# mostly hex/base64 and repeated checkpoints).
_COMPRESS_LEVEL: Final = 1


@dataclass(frozen=True, slots=True)
class PackSummary:
    path: Path
    entries: int
    logs: int
    size_bytes: int


class _Hashing:
    """A write-only stream that hashes what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.target.write(data)


def _zip_time(created_at: str) -> tuple[int, int, int, int, int, int]:
    # "YYYY-MM-DDTHH:MM:SS.ffffffZ"; zip timestamps have 2-second resolution, no zone.
    return (
        int(created_at[0:4]),
        int(created_at[5:7]),
        int(created_at[8:10]),
        int(created_at[11:13]),
        int(created_at[14:16]),
        int(created_at[17:19]) // 2 * 2,
    )


class _PackWriter:
    def __init__(self, archive: zipfile.ZipFile, created_at: str) -> None:
        self.archive = archive
        self.when = _zip_time(created_at)
        self.files: dict[str, str] = {}

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, self.when)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def add(self, name: str, data: bytes) -> None:
        self.archive.writestr(self._info(name), data, compresslevel=_COMPRESS_LEVEL)
        self.files[name] = hashlib.sha256(data).hexdigest()

    def stream(self, name: str) -> _MemberStream:
        return _MemberStream(self, name)


class _MemberStream:
    def __init__(self, writer: _PackWriter, name: str) -> None:
        self.writer = writer
        self.name = name

    def __enter__(self) -> _Hashing:
        self.archive_member = self.writer.archive.open(
            self.writer._info(self.name), "w", force_zip64=True
        )
        self.hashing = _Hashing(self.archive_member)
        return self.hashing

    def __exit__(self, *exc: object) -> None:
        self.archive_member.close()
        self.writer.files[self.name] = self.hashing.digest.hexdigest()


def build_evidence_pack(
    ledger: Ledger,
    selection: Selection,
    out: Path,
    *,
    created_at: str,
    progress: Callable[[int], None] | None = None,
    page: int = PAGE_SIZE,
) -> PackSummary:
    """Write the evidence pack of ``selection`` to ``out`` (replaced if present).
    ``progress`` is called with the number of entries written so far after each page."""
    store = ledger.store
    project = selection.project
    done = 0
    described_logs: list[dict[str, Any]] = []
    readme_logs: list[tuple[str, str, str]] = []
    keys_lines = [
        "# The verifier keys of the logs in this pack, as the server that built it reported",
        "# them. INFORMATIONAL ONLY: verify with a key you obtained independently (see",
        "# README.txt), never with this file.",
    ]
    proof_source = ExportProofs(store)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        writer = _PackWriter(archive, created_at)
        for log in selection.logs(store):
            checkpoint = ledger.checkpoint(project, log.log_id)
            if checkpoint is None:
                continue
            probe = store.query_entries(
                project, selection.flt, log_ids=[log.log_id], after=None, limit=1
            )
            if not probe:
                continue  # no match in this log: no files for it
            key = ledger.verifier_key(project, log)
            prefix = f"logs/{log.log_id}/"
            count = 0
            with tempfile.TemporaryFile(dir=out.parent) as spool:
                with writer.stream(prefix + PROOFS) as proofs:
                    for entries in iter_log(
                        store,
                        project,
                        selection.flt,
                        log.log_id,
                        below=checkpoint.size,
                        page=page,
                    ):
                        paths = proof_source.inclusion_proofs(
                            project, log.log_id, [e.seq for e in entries], checkpoint.size
                        )
                        lines = []
                        for entry, path in zip(entries, paths, strict=True):
                            lines.append(
                                redacted_line(entry.seq, entry.leaf_hash)
                                if entry.entry is None
                                else entry_line(entry.entry)
                            )
                            proofs.write(
                                proof_line(
                                    entry.seq, make_proof_bundle(entry.seq, path, checkpoint.note)
                                )
                            )
                        chunk = b"".join(lines)
                        spool.write(chunk)
                        count += len(entries)
                        done += len(entries)
                        if progress is not None:
                            progress(done)
                spool.seek(0)
                with writer.stream(prefix + ENTRIES) as target:
                    while chunk := spool.read(_COPY_CHUNK):
                        target.write(chunk)
            writer.add(prefix + CHECKPOINT, checkpoint.note.encode("utf-8"))
            described_logs.append(
                {
                    "log_id": log.log_id,
                    "organization_id": log.organization,
                    "origin": log.origin,
                    "tree_size": checkpoint.size,
                    "root_hash": checkpoint.root_hash.hex(),
                    "entries": count,
                    "verifier_key": key,
                }
            )
            readme_logs.append((log.organization, log.log_id, key))
            keys_lines += [f"# organization {log.organization!r}, log {log.log_id}", key]
        writer.add(KEYS, ("\n".join(keys_lines) + "\n").encode("utf-8"))
        writer.add(README, pack_readme(readme_logs, done, created_at).encode("utf-8"))
        manifest = {
            "format": PACK_FORMAT,
            "created_at": created_at,
            "entries": done,
            "selection": selection.described,
            "logs": described_logs,
            "files": dict(sorted(writer.files.items())),
        }
        archive.writestr(
            writer._info(MANIFEST), manifest_bytes(manifest), compresslevel=_COMPRESS_LEVEL
        )
    return PackSummary(out, done, len(described_logs), out.stat().st_size)
