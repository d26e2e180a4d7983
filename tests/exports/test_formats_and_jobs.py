"""Export writers on edge cases (empty selections, pages, redacted entries) and the job
store's bookkeeping (progress, interrupted runners, expiry, tokens)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from trailseal.errors import ValidationError
from trailseal.exports.formats import CSV_COLUMNS, export_chunks
from trailseal.exports.jobs import ExportJobs, JobProgress
from trailseal.store.base import StoredEntry

ENTRY = (
    b'{"event":{"action":"a.b","actor":{"id":"u"},"id":"e1","occurred_at":'
    b'"2026-11-23T00:00:00.000000Z"},"origin":"o/log/x","received_at":'
    b'"2026-11-23T00:00:01.000000Z","seq":0,"v":1}'
)


def _entry(seq: int, entry: bytes | None) -> StoredEntry:
    return StoredEntry("p", "log1", seq, f"e{seq}", entry, b"\x01" * 32, b"\x02" * 32, b"")


def _join(fmt: str, pages: list[list[StoredEntry]], **kw: bool) -> bytes:
    return b"".join(export_chunks(fmt, pages, lambda log_id: "acme", **kw))  # type: ignore[arg-type]


def test_empty_exports_are_valid_documents() -> None:
    assert orjson.loads(_join("json", [])) == []
    assert _join("ndjson", []) == b""
    assert _join("csv", []) == (",".join(CSV_COLUMNS) + "\r\n").encode()
    assert _join("csv", [], excel=True).startswith(b"\xef\xbb\xbf")


def test_pages_join_into_one_json_array_and_redacted_entries_keep_their_hashes() -> None:
    pages = [[_entry(0, ENTRY)], [_entry(1, None), _entry(2, ENTRY)]]
    views = orjson.loads(_join("json", pages))
    assert [v["seq"] for v in views] == [0, 1, 2]
    assert views[1]["redacted"] is True and "event" not in views[1]
    assert [orjson.loads(line)["seq"] for line in _join("ndjson", pages).splitlines()] == [0, 1, 2]
    rows = list(csv.DictReader(io.StringIO(_join("csv", pages).decode(), newline="")))
    assert rows[1]["redacted"] == "true" and rows[1]["action"] == ""
    assert rows[1]["leaf_hash"] == "01" * 32 and rows[1]["hash"] == "02" * 32
    assert rows[0]["actor_type"] == "user" and rows[0]["outcome"] == "success"  # read defaults


def _wait(jobs: ExportJobs, job_id: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.get(job_id)
        assert job is not None
        if job.status not in ("queued", "running"):
            return job.status
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_job_reports_progress_and_its_file(tmp_path: Path) -> None:
    jobs = ExportJobs(tmp_path)
    release = threading.Event()

    def work(path: Path, progress: JobProgress) -> int:
        progress.total(3)
        progress.done(1)
        release.wait(5)
        path.write_bytes(b"a\nb\nc\n")
        return 3

    job = jobs.create(
        project="p", owner_organization=None, key_id="k", fmt="ndjson", request={}, work=work
    )
    time.sleep(0.1)
    running = jobs.get(job.job_id)
    assert running is not None and running.status == "running"
    assert (running.done, running.total) == (1, 3)
    assert jobs.ready_file(running) is None  # not before it is done
    release.set()
    assert _wait(jobs, job.job_id) == "done"
    done = jobs.by_token(jobs.token(job))
    assert done is not None and (done.done, done.total, done.size_bytes) == (3, 3, 6)
    ready = jobs.ready_file(done)
    assert ready is not None and ready.read_bytes() == b"a\nb\nc\n"
    assert jobs.by_token(job.job_id + "." + "x" * 43) is None
    assert jobs.by_token("../../etc/passwd") is None
    assert jobs.get("../" + job.job_id) is None


def test_failed_work_is_reported_without_internals(tmp_path: Path) -> None:
    jobs = ExportJobs(tmp_path)

    def bad_input(path: Path, progress: JobProgress) -> int:
        raise ValidationError("nope", field="/since")

    def crash(path: Path, progress: JobProgress) -> int:
        path.write_bytes(b"partial")
        raise RuntimeError("secret detail")

    for work, message in ((bad_input, "/since: nope"), (crash, "internal error")):
        job = jobs.create(
            project="p", owner_organization=None, key_id="k", fmt="csv", request={}, work=work
        )
        assert _wait(jobs, job.job_id) == "failed"
        failed = jobs.get(job.job_id)
        assert failed is not None and failed.error is not None
        assert failed.error.startswith(message) and "secret" not in failed.error
        assert not list(tmp_path.glob("*.part"))


def test_a_job_whose_process_died_reads_as_failed_and_expired_jobs_vanish(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    jobs = ExportJobs(tmp_path, ttl=60, clock=lambda: now[0])
    release = threading.Event()
    job = jobs.create(
        project="p",
        owner_organization="acme",
        key_id="k",
        fmt="pdf",
        request={},
        work=lambda path, progress: release.wait(30) and 0,
    )
    # As if another process (now gone) had been running it.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = tmp_path / f"{job.job_id}.job.json"
    data = orjson.loads(record.read_bytes())
    data["pid"] = dead.pid
    record.write_bytes(orjson.dumps(data))
    failed = jobs.get(job.job_id)
    assert (
        failed is not None and failed.status == "failed" and "interrupted" in (failed.error or "")
    )
    assert failed.visible_to("p", None) and failed.visible_to("p", "acme")
    assert not failed.visible_to("p", "globex") and not failed.visible_to("q", None)
    now[0] += 61
    assert jobs.get(job.job_id) is None
    jobs.sweep()
    assert not record.exists()
    release.set()


def test_unknown_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xml"):
        ExportJobs(tmp_path).create(
            project="p",
            owner_organization=None,
            key_id="k",
            fmt="xml",
            request={},
            work=lambda path, progress: 0,
        )
