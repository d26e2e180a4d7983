"""Evidence packs: the format, and :func:`verify_pack`, the offline check (ARCHITECTURE §5, §7).

Base install only (stdlib, ``cryptography`` and ``orjson`` through the core): an auditor runs
``trailseal verify PACK.zip --key <verifier key>`` with nothing but the pack and a key pinned
on the command line. The pack's own ``keys.txt`` is informational and never trusted.

Layout (format ``trailseal-evidence-pack/1``)
---------------------------------------------
::

    README.txt                      how to check the pack, for a human
    keys.txt                        the logs' verifier keys (informational: pin your own)
    logs/<log_id>/checkpoint.txt    the log's signed checkpoint (C2SP signed note), verbatim,
                                    with the log's own timestamped cosignature
    logs/<log_id>/entries.ndjson    one line per entry, increasing seq: the stored entry
                                    bytes verbatim (RFC 8785 JSON never holds a raw LF), or
                                    for an erased entry {"leaf_hash":"<hex>","redacted":true,
                                    "seq":N}: its leaf hash stands in for the bytes (§5)
    logs/<log_id>/proofs.ndjson     one line per entry, same order: {"seq":N,"tlog_proof":
                                    "<C2SP tlog-proof text>"}; every proof carries that same
                                    checkpoint verbatim
    manifest.json                   the SHA-256 of every other file (sorted), the logs and
                                    the selection (filters) the pack was built for

Why one NDJSON of proofs per log rather than one file per proof: zip readers and writers
keep a few hundred bytes per member in memory, so a million members would break the
200 MB budget (§11); each line still holds one complete, standard tlog-proof.

What :func:`verify_pack` proves
-------------------------------
For each log: the checkpoint opens with the *pinned* key whose name is the log's origin
(both the log signature and the log's own cosignature, :func:`open_log_checkpoint`); every
proof carries that checkpoint byte for byte; each entry line and its proof line have the
same seq, seqs strictly increase (an entry dropped or two swapped is named); each entry's
bytes parse as an entry of that log with that seq, and its leaf hash is leaf ``seq`` of the
signed tree (RFC 9162 inclusion). The checkpoint is opened once per log: two Ed25519
verifications per proof would cost about 1 ms each on a small machine, and the proofs
must all carry the same checkpoint anyway. The first proof of each log also goes through
:func:`verify_proof_bundle` whole, so the standard path and this one stay in agreement.
Last, every file's SHA-256 must match the manifest and no file may be missing or extra.

The manifest is not signed: it catches damage, not forgery; what is signed is each log's
checkpoint. A pack proves that every entry it holds is in its log; it cannot prove that
nothing matching the selection was left out, except where it holds a whole log
(``whole_log`` in the report: seqs 0 .. size-1, every one).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import orjson

from trailseal.core.checkpoint import SignedCheckpoint, log_verifiers
from trailseal.core.entry import parse_entry
from trailseal.core.hashing import HASH_SIZE, leaf_hash
from trailseal.core.merkle import verify_inclusion
from trailseal.core.proofbundle import ProofBundle, parse_proof_bundle
from trailseal.core.verify import RedactedLeaf, open_log_checkpoint, verify_proof_bundle
from trailseal.errors import ValidationError, VerificationError

__all__ = [
    "MANIFEST",
    "PACK_FORMAT",
    "LogReport",
    "PackError",
    "PackReport",
    "entry_line",
    "manifest_bytes",
    "pack_readme",
    "proof_line",
    "redacted_line",
    "verify_pack",
]

PACK_FORMAT: Final = "trailseal-evidence-pack/1"
MANIFEST: Final = "manifest.json"
README: Final = "README.txt"
KEYS: Final = "keys.txt"
CHECKPOINT: Final = "checkpoint.txt"
ENTRIES: Final = "entries.ndjson"
PROOFS: Final = "proofs.ndjson"

_LOG_FILE = re.compile(r"logs/([a-z2-7]{26})/(checkpoint\.txt|entries\.ndjson|proofs\.ndjson)")
# An entry is at most 65,535 bytes; a proof line holds <= 64 hashes and a checkpoint with
# its signature lines. Longer lines are refused before they are held in memory.
_MAX_ENTRY_LINE: Final = 65_536
_MAX_PROOF_LINE: Final = 1 << 20
_MAX_SMALL_FILE: Final = 16 << 20  # checkpoint.txt, manifest.json
_READ_CHUNK: Final = 1 << 20


class PackError(VerificationError):
    """An evidence pack did not verify; ``item`` names the file and, where there is one,
    the entry (``logs/<id>/entries.ndjson line 18 (seq 17)``)."""


@dataclass(frozen=True, slots=True)
class LogReport:
    """One log of a verified pack. ``whole_log``: the pack holds every entry 0 .. size-1."""

    log_id: str
    origin: str
    organization: str | None  # from the manifest: informational
    tree_size: int
    root_hash: str
    signed_at: int | None  # the log's own cosignature timestamp (POSIX seconds)
    entries: int
    redacted: int
    first_seq: int | None
    last_seq: int | None
    whole_log: bool
    verifier_key: str


@dataclass(frozen=True, slots=True)
class PackReport:
    """What :func:`verify_pack` proved (module docstring)."""

    path: str
    logs: tuple[LogReport, ...]
    files: int
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        return sum(log.entries for log in self.logs)

    @property
    def redacted(self) -> int:
        return sum(log.redacted for log in self.logs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verified": True,
            "entries": self.entries,
            "redacted": self.redacted,
            "files": self.files,
            "selection": self.selection,
            "logs": [
                {
                    "log_id": log.log_id,
                    "origin": log.origin,
                    "organization_id": log.organization,
                    "tree_size": log.tree_size,
                    "root_hash": log.root_hash,
                    "signed_at": log.signed_at,
                    "entries": log.entries,
                    "redacted": log.redacted,
                    "first_seq": log.first_seq,
                    "last_seq": log.last_seq,
                    "whole_log": log.whole_log,
                    "verifier_key": log.verifier_key,
                }
                for log in self.logs
            ],
        }


# --- lines, as the builder writes them ------------------------------------------------------


def entry_line(entry: bytes) -> bytes:
    """The entries.ndjson line of stored entry bytes: the bytes verbatim, then LF."""
    if b"\n" in entry:  # canonical JSON escapes control characters; never expected
        raise ValidationError("entry bytes hold a newline", field="/entry")
    return entry + b"\n"


def redacted_line(seq: int, leaf: bytes) -> bytes:
    """The entries.ndjson line of an erased entry: its leaf hash stands in for the bytes."""
    return orjson.dumps({"leaf_hash": leaf.hex(), "redacted": True, "seq": seq}) + b"\n"


def proof_line(seq: int, tlog_proof: str) -> bytes:
    """The proofs.ndjson line for entry ``seq``: its C2SP tlog-proof text."""
    return orjson.dumps({"seq": seq, "tlog_proof": tlog_proof}) + b"\n"


def _manifest_body(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """manifest.json: ``manifest`` plus ``manifest_sha256``, the SHA-256 of the rest as
    written, so that a change to any of its bytes is seen (it is not signed: damage only)."""
    rest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    digest = hashlib.sha256(_manifest_body(rest)).hexdigest()
    return _manifest_body({**rest, "manifest_sha256": digest}) + b"\n"


def pack_readme(logs: Sequence[tuple[str, str, str]], entries: int, created_at: str) -> str:
    """README.txt: what is in the pack and how to check it. ``logs``: (organization, log
    id, verifier key) of each log in the pack."""
    listed = "\n".join(
        f"  - organization {org!r}: logs/{log_id}/  (key {key})" for org, log_id, key in logs
    )
    return f"""trailseal evidence pack ({PACK_FORMAT})
created {created_at}; {entries} entries from {len(logs)} log(s):
{listed or "  (none: the selection matched no entries)"}

WHAT IT PROVES
Every entry in this pack is in a tamper-evident log: it is a leaf of the Merkle tree
(RFC 9162) whose root the log signed (C2SP signed note, Ed25519) in logs/<log_id>/checkpoint.txt.
Nobody, the operator included, can change, drop or reorder an entry without the check
below failing. The pack does not prove that nothing matching the selection was left out,
unless it holds a whole log (the check reports "whole log": every entry 0 .. size-1).

HOW TO CHECK IT (offline, needs nothing but this file and the key)
1. Get each log's verifier key from a source you trust, NOT from keys.txt in this pack:
   e.g. the key you pinned earlier, or GET /v1/logs/<organization> on the server, with the
   operator's confirmation. It looks like  <origin>+<8 hex digits>+<base64>.
2. pip install trailseal
   trailseal verify THIS.zip --key '<verifier key>' [--key '<another log key>' ...]
   (or --key-file FILE with one key per line). Exit status 0: verified; 1: it names the
   first item that failed; 2: a usage error.

WHAT THE CHECK DOES (to do it by hand or with other tools)
- logs/<id>/checkpoint.txt must verify with the pinned key: the log signature (type 0x01)
  and the log's own timestamped cosignature (type 0x04, C2SP tlog-cosignature); its first
  line, the origin, is the key's name.
- logs/<id>/entries.ndjson: one entry per line, seq increasing. A line is the entry's stored
  bytes verbatim (RFC 8785 JSON with "origin" and "seq"); its leaf hash is
  SHA-256(0x00 || line without its LF). An erased entry is {{"leaf_hash":..,"redacted":true,
  "seq":..}}: its payload was deleted (retention, GDPR) and only its leaf hash remains.
- logs/<id>/proofs.ndjson: line n is the proof of entry line n, {{"seq": N, "tlog_proof":
  "..."}}; tlog_proof is a standard C2SP tlog-proof (c2sp.org/tlog-proof@v1): the
  inclusion proof of leaf N and the same signed checkpoint. To get one as a file:
  jq -r 'select(.seq==17).tlog_proof' logs/<id>/proofs.ndjson > 17.tlog-proof
- manifest.json lists the SHA-256 of every other file. It is not signed: it detects
  damage; the signatures are what detect forgery.
"""


# --- reading --------------------------------------------------------------------------------


def _fail(item: str, message: str) -> PackError:
    return PackError(message, item=item)


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes:
    with _Member(archive, name) as stream:
        data = stream.read(_MAX_SMALL_FILE + 1)
    if len(data) > _MAX_SMALL_FILE:
        raise _fail(name, f"larger than {_MAX_SMALL_FILE} bytes")
    return data


class _Member:
    """Open a zip member; damage (bad CRC, broken deflate) is reported as a PackError
    naming the file, wherever the read fails."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self.name = name
        try:
            self.stream: IO[bytes] = archive.open(name)
        except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError) as exc:
            raise _fail(name, f"cannot be read from the zip: {exc}") from exc

    def __enter__(self) -> IO[bytes]:
        return self.stream

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.stream.close()
        if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)):
            raise _fail(self.name, f"cannot be read from the zip: {exc}") from exc


def _lines(stream: IO[bytes], name: str, limit: int) -> Iterator[bytes]:
    """The LF-terminated lines of a member, without their LF; a last line without LF, or a
    line over ``limit`` bytes, is an error naming the line."""
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if not line.endswith(b"\n"):
            if len(line) > limit:
                raise _fail(f"{name} line {number}", f"longer than {limit} bytes")
            raise _fail(f"{name} line {number}", "the last line has no newline (truncated?)")
        yield line[:-1]


def _keys_by_origin(pinned: str | Sequence[str]) -> dict[str, str]:
    keys = [pinned] if isinstance(pinned, str) else list(pinned)
    found: dict[str, str] = {}
    for key in keys:
        key = key.strip()
        if not key:
            continue
        name = log_verifiers(key)[0].name  # raises ValidationError for a malformed key
        if found.get(name, key) != key:
            raise ValidationError(
                f"two different keys pinned for log {name!r}", field="/key", code="conflict"
            )
        found[name] = key
    if not found:
        raise ValidationError("pin at least one verifier key", field="/key", code="required")
    return found


@dataclass(frozen=True, slots=True)
class _ParsedEntry:
    seq: int
    value: bytes | RedactedLeaf
    origin: str | None


def _parse_entry_line(line: bytes, item: str) -> _ParsedEntry:
    if line.startswith(b'{"leaf_hash":'):
        try:
            marker = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _fail(item, f"not JSON: {exc}") from exc
        seq = marker.get("seq") if isinstance(marker, dict) else None
        if type(seq) is not int or seq < 0 or not isinstance(marker.get("leaf_hash"), str):
            raise _fail(item, "not an entry and not a redaction marker")
        try:
            digest = bytes.fromhex(marker["leaf_hash"])
        except ValueError:
            digest = b""
        if len(digest) != HASH_SIZE or redacted_line(seq, digest) != line + b"\n":
            raise _fail(item, "malformed redaction marker")
        return _ParsedEntry(seq, RedactedLeaf(digest), None)
    try:
        entry = parse_entry(line)
    except ValidationError as exc:
        raise _fail(item, f"not valid entry bytes: {exc}") from exc
    return _ParsedEntry(entry.seq, line, entry.origin)


def _parse_proof_line(line: bytes, item: str) -> tuple[int, ProofBundle]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _fail(item, f"not JSON: {exc}") from exc
    if (
        not isinstance(record, dict)
        or set(record) != {"seq", "tlog_proof"}
        or type(record["seq"]) is not int
        or not isinstance(record["tlog_proof"], str)
    ):
        raise _fail(item, 'expected {"seq": <int>, "tlog_proof": <text>}')
    try:
        bundle = parse_proof_bundle(record["tlog_proof"])
    except ValidationError as exc:
        raise _fail(item, f"malformed tlog-proof: {exc}") from exc
    if bundle.index != record["seq"]:
        raise _fail(
            item, f"the tlog-proof is for index {bundle.index}, the line says seq {record['seq']}"
        )
    return record["seq"], bundle


def _check_log(
    archive: zipfile.ZipFile,
    log_id: str,
    keys: dict[str, str],
    organization: str | None,
) -> LogReport:
    prefix = f"logs/{log_id}/"
    cp_name, entries_name, proofs_name = prefix + CHECKPOINT, prefix + ENTRIES, prefix + PROOFS
    try:
        note = _read_small(archive, cp_name).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(cp_name, "not UTF-8 text") from exc
    origin = note.split("\n", 1)[0]
    key = keys.get(origin)
    if key is None:
        raise _fail(
            cp_name,
            f"no pinned key for log {origin!r} (pass its verifier key with --key; pinned: "
            f"{', '.join(sorted(keys)) or 'none'})",
        )
    try:
        signed: SignedCheckpoint = open_log_checkpoint(note, key)
    except VerificationError as exc:
        raise _fail(cp_name, f"does not verify with the pinned key: {exc.message}") from exc
    body = signed.checkpoint
    if not body.origin.endswith(f"/log/{log_id}"):  # origins are <host>/log/<log id> (§2)
        raise _fail(cp_name, f"is the checkpoint of log {body.origin!r}, not of log {log_id}")
    count = redacted = 0
    first: int | None = None
    last: int | None = None
    with (
        _Member(archive, entries_name) as entry_stream,
        _Member(archive, proofs_name) as proof_stream,
    ):
        entry_lines = _lines(entry_stream, entries_name, _MAX_ENTRY_LINE)
        proof_lines = _lines(proof_stream, proofs_name, _MAX_PROOF_LINE)
        number = 0
        while True:
            number += 1
            entry_raw = next(entry_lines, None)
            proof_raw = next(proof_lines, None)
            if entry_raw is None and proof_raw is None:
                break
            entry_item = f"{entries_name} line {number}"
            proof_item = f"{proofs_name} line {number}"
            if proof_raw is None:
                raise _fail(entry_item, "an entry without a proof (proofs.ndjson ends early)")
            seq_p, bundle = _parse_proof_line(proof_raw, proof_item)
            if entry_raw is None:
                raise _fail(
                    f"{entries_name} (seq {seq_p})",
                    f"entry seq {seq_p} is missing: its proof ({proof_item}) has no entry line",
                )
            parsed = _parse_entry_line(entry_raw, entry_item)
            entry_item = f"{entry_item} (seq {parsed.seq})"
            if last is not None and parsed.seq <= last:
                raise _fail(
                    entry_item,
                    f"entries out of order: seq {parsed.seq} follows seq {last} "
                    "(reordered or repeated)",
                )
            if last is not None and seq_p <= last:
                raise _fail(proof_item, f"proofs out of order: seq {seq_p} follows seq {last}")
            if parsed.seq > seq_p:
                raise _fail(
                    entry_item,
                    f"holds entry seq {parsed.seq} where entry seq {seq_p} belongs (its proof "
                    f"is {proof_item}): entry {seq_p} was dropped or moved",
                )
            if parsed.seq < seq_p:
                raise _fail(
                    entry_item, f"entry seq {parsed.seq} has no proof ({proof_item} is seq {seq_p})"
                )
            if bundle.checkpoint != note:
                raise _fail(proof_item, f"the proof carries another checkpoint than {cp_name}")
            if first is None:
                # The standard path, whole, once per log (module docstring).
                try:
                    verify_proof_bundle(bundle, parsed.value, key)
                except VerificationError as exc:
                    raise _fail(f"{entry_item} / {proof_item}", exc.message) from exc
            if parsed.origin is not None and parsed.origin != body.origin:
                raise _fail(entry_item, f"entry is of log {parsed.origin!r}, not {body.origin!r}")
            leaf = (
                parsed.value.leaf_hash
                if isinstance(parsed.value, RedactedLeaf)
                else leaf_hash(parsed.value)
            )
            try:
                verify_inclusion(seq_p, body.size, leaf, bundle.hashes, body.root_hash)
            except VerificationError as exc:
                # A changed entry and a changed proof look alike here: name both.
                raise _fail(
                    f"{entry_item} / {proof_item}",
                    f"the entry is not in the signed tree (size {body.size}) by this proof; "
                    f"one of the two was changed: {exc.message}",
                ) from exc
            first = parsed.seq if first is None else first
            last = parsed.seq
            count += 1
            redacted += isinstance(parsed.value, RedactedLeaf)
    return LogReport(
        log_id=log_id,
        origin=body.origin,
        organization=organization,
        tree_size=body.size,
        root_hash=body.root_hash.hex(),
        signed_at=signed.timestamp,
        entries=count,
        redacted=redacted,
        first_seq=first,
        last_seq=last,
        whole_log=count == body.size,  # seqs strictly increase below size: all of them
        verifier_key=key,
    )


def _manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    data = _read_small(archive, MANIFEST)
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _fail(MANIFEST, f"not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise _fail(MANIFEST, f"not a {PACK_FORMAT} manifest")
    if manifest_bytes(manifest) != data:
        raise _fail(MANIFEST, "its manifest_sha256 does not match its content (changed)")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) for v in files.values()
    ):
        raise _fail(MANIFEST, '"files" must map file names to SHA-256 hex digests')
    return manifest


def _sha256_member(archive: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    with _Member(archive, name) as stream:
        while chunk := stream.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_pack(path: str | Path, verifier_keys: str | Sequence[str]) -> PackReport:
    """Check an evidence pack offline against the pinned ``verifier_keys`` (one per log,
    matched by key name = the log's origin); the module docstring says what is proved.

    Returns the report, or raises :class:`PackError` naming the first item that fails;
    ValidationError for malformed or conflicting keys."""
    keys = _keys_by_origin(verifier_keys)
    name = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(name, f"not a readable zip file: {exc}") from exc
    with archive:
        members = [info.filename for info in archive.infolist()]
        if len(set(members)) != len(members):
            raise _fail(name, "the zip holds two files of one name")
        if MANIFEST not in members:
            raise _fail(MANIFEST, "missing: not an evidence pack")
        manifest = _manifest(archive)
        log_files: dict[str, set[str]] = {}
        for member in members:
            match = _LOG_FILE.fullmatch(member)
            if match:
                log_files.setdefault(match[1], set()).add(match[2])
            elif member not in (MANIFEST, README, KEYS):
                raise _fail(member, "unexpected file in the pack")
        logs_listed = manifest.get("logs")
        described: list[Any] = logs_listed if isinstance(logs_listed, list) else []
        organizations = {
            str(d.get("log_id")): d.get("organization_id") for d in described if isinstance(d, dict)
        }
        reports = []
        for log_id in sorted(log_files):
            for needed in (CHECKPOINT, ENTRIES, PROOFS):
                if needed not in log_files[log_id]:
                    raise _fail(f"logs/{log_id}/{needed}", "missing")
            organization = organizations.get(log_id)
            reports.append(
                _check_log(
                    archive, log_id, keys, organization if isinstance(organization, str) else None
                )
            )
        # The manifest last: it is unsigned, so it can only add a damage check.
        listed: dict[str, str] = manifest["files"]
        for member in sorted(set(members) - {MANIFEST}):
            if member not in listed:
                raise _fail(member, "not listed in manifest.json")
            actual = _sha256_member(archive, member)
            if actual != listed[member]:
                raise _fail(
                    member,
                    f"SHA-256 is {actual}, manifest.json says {listed[member]} (the file or "
                    "the manifest was changed)",
                )
        for member in sorted(set(listed) - set(members)):
            raise _fail(member, "listed in manifest.json but missing from the pack")
        counts = {str(d.get("log_id")): d.get("entries") for d in described if isinstance(d, dict)}
        for report in reports:
            if counts.get(report.log_id) != report.entries:
                raise _fail(
                    MANIFEST,
                    f"says log {report.log_id} has {counts.get(report.log_id)} entries, the "
                    f"pack holds {report.entries}",
                )
        if set(counts) != {r.log_id for r in reports}:
            raise _fail(MANIFEST, "lists other logs than the pack holds")
        selection = manifest.get("selection")
        return PackReport(
            path=name,
            logs=tuple(reports),
            files=len(members),
            selection=selection if isinstance(selection, dict) else {},
        )
