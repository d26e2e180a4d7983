"""Evidence packs against tampering: every byte of the entries, proofs, checkpoint and
manifest matters, dropped and reordered entries are named, and only the pinned key counts.

The pack is built in process from a real SQLite store and ledger (two logs, one redacted
entry); each test rewrites one member of the zip and expects :func:`verify_pack` to fail
naming it, both as a careless forger would leave the manifest and as a careful one would
recompute it (the manifest is unsigned, so the proofs must catch the change)."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tests.ledger.helpers import PROJECT, event, make_ledger, prepared
from trailseal.cli.main import cli
from trailseal.core.checkpoint import LogKeys
from trailseal.core.verify import RedactedLeaf, verify_proof_bundle
from trailseal.exports.evidence import build_evidence_pack
from trailseal.exports.pack import PackError, manifest_bytes, verify_pack
from trailseal.exports.selection import Selection
from trailseal.query import EventFilter
from trailseal.store.sqlite import SQLiteStore

CREATED = "2026-11-23T12:00:00.000000Z"


class Pack:
    def __init__(self, path: Path, keys: list[str], logs: dict[str, str]) -> None:
        self.path = path
        self.keys = keys
        self.logs = logs  # organization -> log id
        with zipfile.ZipFile(path) as archive:
            self.members = {name: archive.read(name) for name in archive.namelist()}

    def member(self, organization: str, name: str) -> str:
        return f"logs/{self.logs[organization]}/{name}"

    def rewrite(self, changes: dict[str, bytes], out: Path, *, fix_manifest: bool = False) -> Path:
        members = dict(self.members, **changes)
        if fix_manifest:
            manifest = orjson.loads(members["manifest.json"])
            for name in changes:
                manifest["files"][name] = hashlib.sha256(members[name]).hexdigest()
            members["manifest.json"] = manifest_bytes(manifest)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return out


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pack]:
    directory = tmp_path_factory.mktemp("pack")
    store = SQLiteStore(directory / "trailseal.db")
    store.migrate()
    ledger = make_ledger(store)
    try:
        acme = [prepared(event(organization_id="acme", message='é, "q"\n')) for _ in range(4)]
        ledger.append(PROJECT, "acme", acme).result()
        ledger.append(PROJECT, "globex", [prepared(event()) for _ in range(3)]).result()
        ledger.append(PROJECT, "acme", [prepared(event())]).result()
        assert ledger.redact(PROJECT, acme[1].event_id)
        logs = {log.organization: log for log in store.list_logs(PROJECT)}
        keys = [ledger.verifier_key(PROJECT, log) for log in logs.values()]
        path = directory / "pack.zip"
        selection = Selection(PROJECT, EventFilter(), None, {"note": "all"})
        summary = build_evidence_pack(ledger, selection, path, created_at=CREATED)
        assert summary.entries == 8 and summary.logs == 2
        yield Pack(path, keys, {org: log.log_id for org, log in logs.items()})
    finally:
        ledger.close()
        store.close()


def test_an_untouched_pack_verifies(pack: Pack) -> None:
    report = verify_pack(pack.path, pack.keys)
    assert report.entries == 8 and report.redacted == 1
    by_org = {log.organization: log for log in report.logs}
    assert by_org["acme"].entries == 5 and by_org["acme"].whole_log
    assert (by_org["acme"].first_seq, by_org["acme"].last_seq) == (0, 4)
    assert by_org["globex"].entries == 3 and by_org["globex"].redacted == 0
    assert all(log.signed_at is not None for log in report.logs)
    assert report.selection == {"note": "all"}


def test_every_proof_line_is_a_standard_tlog_proof(pack: Pack) -> None:
    """Each proof line, taken alone, passes the core's verify_proof_bundle."""
    for key in pack.keys:
        log_id = key.split("+")[0].rsplit("/", 1)[1]
        entries = pack.members[f"logs/{log_id}/entries.ndjson"].splitlines()
        proofs = pack.members[f"logs/{log_id}/proofs.ndjson"].splitlines()
        assert len(entries) == len(proofs)
        for entry, proof in zip(entries, proofs, strict=True):
            record = orjson.loads(proof)
            value: bytes | RedactedLeaf = entry
            if entry.startswith(b'{"leaf_hash"'):
                value = RedactedLeaf(bytes.fromhex(orjson.loads(entry)["leaf_hash"]))
            verified = verify_proof_bundle(record["tlog_proof"], value, key)
            assert verified.index == record["seq"]


def _positions(size: int, samples: int = 60) -> list[int]:
    step = max(1, size // samples)
    return sorted({*range(0, size, step), size - 1})


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def _fails(path: Path, keys: list[str]) -> PackError:
    with pytest.raises(PackError) as caught:
        verify_pack(path, keys)
    return caught.value


@pytest.mark.parametrize(
    "name",
    ["acme:entries.ndjson", "acme:proofs.ndjson", "acme:checkpoint.txt", "globex:proofs.ndjson"],
)
@pytest.mark.parametrize("fix_manifest", [False, True], ids=["manifest-as-is", "manifest-fixed"])
def test_flipping_any_byte_of_a_log_file_fails_and_names_it(
    pack: Pack, tmp_path: Path, name: str, fix_manifest: bool
) -> None:
    organization, file_name = name.split(":")
    member = pack.member(organization, file_name)
    data = pack.members[member]
    for position in _positions(len(data)):
        out = pack.rewrite(
            {member: _flip(data, position)}, tmp_path / "t.zip", fix_manifest=fix_manifest
        )
        error = _fails(out, pack.keys)
        assert member in error.item, (position, str(error))


@pytest.mark.parametrize("name", ["manifest.json", "README.txt", "keys.txt"])
def test_flipping_any_byte_of_the_manifest_readme_or_keys_fails(
    pack: Pack, tmp_path: Path, name: str
) -> None:
    data = pack.members[name]
    for position in _positions(len(data), 150 if name == "manifest.json" else 40):
        error = _fails(pack.rewrite({name: _flip(data, position)}, tmp_path / "t.zip"), pack.keys)
        assert name in str(error) or "manifest.json" in str(error), (position, str(error))


def _lines(pack: Pack, organization: str) -> tuple[str, list[bytes]]:
    member = pack.member(organization, "entries.ndjson")
    return member, pack.members[member].splitlines(keepends=True)


@pytest.mark.parametrize("fix_manifest", [False, True], ids=["manifest-as-is", "manifest-fixed"])
def test_dropping_an_entry_fails_and_names_it(
    pack: Pack, tmp_path: Path, fix_manifest: bool
) -> None:
    member, lines = _lines(pack, "acme")
    for dropped in range(len(lines)):
        kept = b"".join(lines[:dropped] + lines[dropped + 1 :])
        out = pack.rewrite({member: kept}, tmp_path / "t.zip", fix_manifest=fix_manifest)
        error = _fails(out, pack.keys)
        assert error.item.startswith(member)
        assert f"seq {dropped}" in str(error), str(error)


@pytest.mark.parametrize("fix_manifest", [False, True], ids=["manifest-as-is", "manifest-fixed"])
def test_reordering_two_entries_fails_and_names_them(
    pack: Pack, tmp_path: Path, fix_manifest: bool
) -> None:
    member, lines = _lines(pack, "acme")
    for first in range(len(lines) - 1):
        swapped = list(lines)
        swapped[first], swapped[first + 1] = swapped[first + 1], swapped[first]
        out = pack.rewrite(
            {member: b"".join(swapped)}, tmp_path / "t.zip", fix_manifest=fix_manifest
        )
        error = _fails(out, pack.keys)
        assert error.item == f"{member} line {first + 1} (seq {first + 1})", str(error)
        assert "dropped or moved" in error.message


def test_reordering_entries_and_proofs_together_fails(pack: Pack, tmp_path: Path) -> None:
    member, lines = _lines(pack, "acme")
    proofs_member = pack.member("acme", "proofs.ndjson")
    proofs = pack.members[proofs_member].splitlines(keepends=True)
    lines[0], lines[2] = lines[2], lines[0]
    proofs[0], proofs[2] = proofs[2], proofs[0]
    out = pack.rewrite(
        {member: b"".join(lines), proofs_member: b"".join(proofs)},
        tmp_path / "t.zip",
        fix_manifest=True,
    )
    error = _fails(out, pack.keys)
    assert error.item.startswith(member) and "out of order" in error.message


def test_dropping_an_entry_and_its_proof_is_seen_in_the_manifest(
    pack: Pack, tmp_path: Path
) -> None:
    member, lines = _lines(pack, "globex")
    proofs_member = pack.member("globex", "proofs.ndjson")
    proofs = pack.members[proofs_member].splitlines(keepends=True)
    out = pack.rewrite(
        {member: b"".join(lines[1:]), proofs_member: b"".join(proofs[1:])},
        tmp_path / "t.zip",
        fix_manifest=True,
    )
    error = _fails(out, pack.keys)
    assert error.item == "manifest.json" and "has 3 entries, the pack holds 2" in error.message


def test_the_wrong_pinned_key_fails(pack: Pack) -> None:
    origins = [key.split("+")[0] for key in pack.keys]
    impostors = [LogKeys.from_seed(origin, bytes(32)).verifier_key() for origin in origins]
    error = _fails(pack.path, impostors)
    assert error.item.endswith("checkpoint.txt") and "pinned key" in error.message
    # One log's key only: the other log cannot be checked, and says so.
    error = _fails(pack.path, pack.keys[:1])
    assert error.item.endswith("checkpoint.txt") and "no pinned key" in error.message


def test_damaged_and_foreign_zips_fail(pack: Pack, tmp_path: Path) -> None:
    raw = pack.path.read_bytes()
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"PK\x03\x04 nothing")
    assert "not a readable zip" in str(_fails(not_zip, pack.keys))
    # A flipped byte in the compressed data: the member is named (bad CRC or deflate).
    with zipfile.ZipFile(pack.path) as archive:
        info = archive.getinfo(pack.member("acme", "proofs.ndjson"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    damaged = tmp_path / "d.zip"
    damaged.write_bytes(_flip(raw, start))
    assert _fails(damaged, pack.keys).item.startswith(info.filename)
    extra = pack.rewrite({"logs/evil.txt": b"hi"}, tmp_path / "e.zip")
    assert _fails(extra, pack.keys).item == "logs/evil.txt"
    members = dict(pack.members)
    del members["README.txt"]
    missing = tmp_path / "m.zip"
    with zipfile.ZipFile(missing, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    error = _fails(missing, pack.keys)
    assert error.item == "README.txt" and "missing" in error.message


def test_cli_verify_names_the_failing_item(pack: Pack, tmp_path: Path) -> None:
    runner = CliRunner()
    keys = [arg for key in pack.keys for arg in ("--key", key)]
    result = runner.invoke(cli, ["verify", str(pack.path), *keys])
    assert result.exit_code == 0, result.output
    assert "verified: 8 entries in 2 log(s)" in result.output
    key_file = tmp_path / "keys"
    key_file.write_text("# pinned last week\n" + "\n".join(pack.keys) + "\n")
    result = runner.invoke(cli, ["verify", str(pack.path), "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    member, lines = _lines(pack, "acme")
    tampered = pack.rewrite(
        {member: b"".join(lines).replace(b'"n":', b'"m":', 1)},
        tmp_path / "t.zip",
        fix_manifest=True,
    )
    result = runner.invoke(cli, ["verify", str(tampered), *keys])
    assert result.exit_code == 1
    assert f"FAILED: {member} line 1 (seq 0)" in result.output
    assert runner.invoke(cli, ["verify", str(pack.path), "--key", "nonsense"]).exit_code == 2
    assert runner.invoke(cli, ["verify", "missing.zip", *keys]).exit_code == 2


def test_a_pack_of_a_filtered_selection_is_not_a_whole_log(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "trailseal.db")
    store.migrate()
    ledger = make_ledger(store)
    try:
        ledger.append(
            PROJECT, "acme", [prepared(event(action=a)) for a in ("a.x", "b.y", "a.z")]
        ).result()
        log = store.list_logs(PROJECT)[0]
        selection = Selection(PROJECT, EventFilter(action_prefix="a."), (log.log_id,))
        build_evidence_pack(ledger, selection, tmp_path / "p.zip", created_at=CREATED)
        report = verify_pack(tmp_path / "p.zip", ledger.verifier_key(PROJECT, log))
        assert [(r.entries, r.first_seq, r.last_seq, r.whole_log) for r in report.logs] == [
            (2, 0, 2, False)
        ]
        # An empty selection still makes a valid (empty) pack.
        empty = Selection(PROJECT, EventFilter(action="none.here"), (log.log_id,))
        build_evidence_pack(ledger, empty, tmp_path / "e.zip", created_at=CREATED)
        assert verify_pack(tmp_path / "e.zip", ledger.verifier_key(PROJECT, log)).entries == 0
    finally:
        ledger.close()
        store.close()


def test_a_log_moved_under_another_log_id_fails(pack: Pack, tmp_path: Path) -> None:
    real = pack.logs["acme"]
    fake = "a" * 26
    members = {name.replace(real, fake): data for name, data in pack.members.items()}
    manifest = orjson.loads(members["manifest.json"])
    manifest["files"] = {k.replace(real, fake): v for k, v in manifest["files"].items()}
    for log in manifest["logs"]:
        log["log_id"] = fake if log["log_id"] == real else log["log_id"]
    members["manifest.json"] = manifest_bytes(manifest)
    out = tmp_path / "moved.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    error = _fails(out, pack.keys)
    assert error.item == f"logs/{fake}/checkpoint.txt" and real in error.message
