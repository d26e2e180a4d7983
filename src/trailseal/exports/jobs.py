"""Export jobs: run an export in the background, report progress, serve the result through
an expiring, unguessable link.

Theory of operation
-------------------
A job is a JSON file ``<job_id>.job.json`` in the exports directory (``<data dir>/exports``),
rewritten atomically (temporary file, then rename) at each change; its result is
``<job_id>.<ext>``, written as ``<job_id>.<ext>.part`` and renamed when complete. Every
process that shares the directory therefore sees every job: the ``--workers N`` processes
of one server do. Several servers on different hosts (PostgreSQL) do not share a data
directory: a job's status and download must reach the host that ran it, unless the
exports directory is a shared volume.

==========  ===============================================================================
status      meaning
==========  ===============================================================================
queued      accepted; waiting for one of ``max_running`` slots in this process
running     the export is being written; ``progress`` = {done, total} entries
done        the file is complete; ``download_url`` works until ``expires_at``
failed      ``error`` says why; also a queued/running job whose process went away
==========  ===============================================================================

The download link is ``<job_id>.<secret>`` with 256 random bits of secret, compared in
constant time, so it needs no ``Authorization`` header and cannot be guessed. The job file
keeps the secret so that the status can show the link again: whoever can read the exports
directory can read the exports themselves anyway. Expired jobs (``ttl`` after they finished) and
their files are deleted by a sweep that runs at most once a minute, on use.

A process that dies mid-job leaves it ``queued``/``running``: a reader marks it failed when
the recorded process is gone (same host), when it has run without a sign of life (progress
is written at least every page) for ``stale_after`` seconds, or has been queued longer than
``ttl`` (another host).

Jobs run on a :class:`WorkerPool`: a fixed set of long-lived daemon threads, not a thread
per job, because store drivers keep a connection (and its page cache) per thread for the
life of the process (SQLite's driver keeps each one it opens); fixed threads reuse theirs.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import logging
import os
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import orjson

from trailseal.errors import TrailsealError

__all__ = ["EXTENSIONS", "ExportJob", "ExportJobs", "JobProgress", "JobWork", "WorkerPool"]

log = logging.getLogger(__name__)

EXTENSIONS: Final = {
    "csv": "csv",
    "json": "json",
    "ndjson": "ndjson",
    "pdf": "pdf",
    "evidence": "zip",
}
_JOB_ID = re.compile(r"exp_[a-z2-7]{26}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_SWEEP_EVERY: Final = 60.0
_PROGRESS_EVERY: Final = 0.5  # seconds between job-file rewrites while running


class WorkerPool:
    """A fixed set of daemon threads running submitted tasks, oldest first. ``on_start``
    runs once on each thread before its first task (e.g. to set up its store connection)."""

    def __init__(
        self, workers: int, name: str, *, on_start: Callable[[], None] | None = None
    ) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._on_start = on_start
        for number in range(workers):
            threading.Thread(target=self._loop, name=f"{name}-{number}", daemon=True).start()

    def submit(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)

    def _loop(self) -> None:
        if self._on_start is not None:
            try:
                self._on_start()
            except Exception:
                log.exception("export worker set-up failed; running without it")
        while True:
            task = self._tasks.get()
            try:
                task()
            except Exception:
                log.exception("export task failed")


@dataclass(frozen=True, slots=True)
class ExportJob:
    job_id: str
    project: str
    owner_organization: str | None  # the creating key's binding: only it (or unbound) sees it
    key_id: str
    format: str
    request: dict[str, Any]
    status: str
    done: int
    total: int | None
    created_at: float
    updated_at: float
    secret: str
    host: str
    pid: int
    finished_at: float | None = None
    expires_at: float | None = None
    size_bytes: int | None = None
    error: str | None = None

    @property
    def filename(self) -> str:
        return f"trailseal-export-{self.job_id}.{EXTENSIONS[self.format]}"

    def visible_to(self, project: str, organization: str | None) -> bool:
        return self.project == project and (
            organization is None or organization == self.owner_organization
        )


class JobProgress:
    """Handed to a job's work: report the total once known and entries done as they go."""

    def __init__(self, jobs: ExportJobs, job_id: str) -> None:
        self._jobs = jobs
        self._job_id = job_id
        self._written = 0.0

    def total(self, total: int) -> None:
        self._jobs._update(self._job_id, total=total)

    def done(self, done: int) -> None:
        now = time.monotonic()
        if now - self._written >= _PROGRESS_EVERY:
            self._written = now
            self._jobs._update(self._job_id, done=done)


JobWork = Callable[[Path, JobProgress], int]
"""Write the export to the path; return the number of entries written."""


def _new_job_id() -> str:
    return "exp_" + base64.b32encode(secrets.token_bytes(16)).decode("ascii").lower()[:26]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExportJobs:
    """The jobs of one exports directory (module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        ttl: float = 86_400.0,
        max_running: int = 2,
        stale_after: float = 900.0,
        clock: Callable[[], float] = time.time,
        on_worker_start: Callable[[], None] | None = None,
    ) -> None:
        self.directory = directory
        self.ttl = ttl
        self.stale_after = stale_after
        self._clock = clock
        self._pool = WorkerPool(max_running, "trailseal-export-job", on_start=on_worker_start)
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self._host = socket.gethostname()
        directory.mkdir(parents=True, exist_ok=True)

    # -- files -----------------------------------------------------------------------------
    def _job_path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.job.json"

    def result_path(self, job: ExportJob) -> Path:
        return self.directory / f"{job.job_id}.{EXTENSIONS[job.format]}"

    def _write(self, job: ExportJob) -> None:
        path = self._job_path(job.job_id)
        temporary = path.with_name(f".{job.job_id}.{secrets.token_hex(4)}.tmp")
        temporary.write_bytes(orjson.dumps(asdict(job)))
        os.replace(temporary, path)

    def _read(self, job_id: str) -> ExportJob | None:
        try:
            data = orjson.loads(self._job_path(job_id).read_bytes())
            return ExportJob(**data)
        except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
            return None

    def _update(self, job_id: str, **changes: Any) -> ExportJob | None:
        with self._lock:
            job = self._read(job_id)
            if job is None:
                return None
            job = replace(job, updated_at=self._clock(), **changes)
            self._write(job)
            return job

    # -- use -------------------------------------------------------------------------------
    def create(
        self,
        *,
        project: str,
        owner_organization: str | None,
        key_id: str,
        fmt: str,
        request: dict[str, Any],
        work: JobWork,
    ) -> ExportJob:
        """Record a queued job, start it, and return it."""
        if fmt not in EXTENSIONS:
            raise ValueError(f"unknown export format {fmt!r}")
        self.sweep()
        job_id, secret = _new_job_id(), secrets.token_urlsafe(32)
        now = self._clock()
        job = ExportJob(
            job_id=job_id,
            project=project,
            owner_organization=owner_organization,
            key_id=key_id,
            format=fmt,
            request=request,
            status="queued",
            done=0,
            total=None,
            created_at=now,
            updated_at=now,
            secret=secret,
            host=self._host,
            pid=os.getpid(),
        )
        with self._lock:
            self._write(job)
        self._pool.submit(lambda: self._run(job_id, work))
        return job

    def get(self, job_id: str) -> ExportJob | None:
        """The job, or None when unknown or expired (a dead runner's job reads as failed)."""
        if not _JOB_ID.fullmatch(job_id):
            return None
        self.sweep()
        job = self._read(job_id)
        if job is None:
            return None
        now = self._clock()
        if job.expires_at is not None and now >= job.expires_at:
            return None
        if job.status in ("queued", "running"):
            gone = job.host == self._host and not _pid_alive(job.pid)
            silent = job.status == "running" and now - job.updated_at > self.stale_after
            if gone or silent or now - job.created_at > self.ttl:
                job = (
                    self._update(
                        job_id,
                        status="failed",
                        error="interrupted: the server process running it stopped; start it again",
                        finished_at=now,
                        expires_at=now + self.ttl,
                    )
                    or job
                )
        return job

    def token(self, job: ExportJob) -> str:
        return f"{job.job_id}.{job.secret}"

    def by_token(self, token: str) -> ExportJob | None:
        """The job a download token belongs to; None when unknown, wrong or expired."""
        job_id, _, secret = token.partition(".")
        if not _SECRET.fullmatch(secret):
            return None
        job = self.get(job_id)
        if job is None or not hmac.compare_digest(job.secret.encode(), secret.encode()):
            return None
        return job

    def ready_file(self, job: ExportJob) -> Path | None:
        path = self.result_path(job)
        return path if job.status == "done" and path.is_file() else None

    def sweep(self) -> None:
        """Delete expired jobs and their files (at most once a minute)."""
        now = self._clock()
        if now - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = now
        for path in self.directory.glob("exp_*.job.json"):
            job = self._read(path.name.split(".", 1)[0])
            if job is None or job.expires_at is None or now < job.expires_at:
                continue
            for stale in (self.result_path(job), path):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()

    # -- the runner ------------------------------------------------------------------------
    def _run(self, job_id: str, work: JobWork) -> None:
        job = self._update(job_id, status="running")
        if job is None:
            return
        final = self.result_path(job)
        part = final.with_name(final.name + ".part")
        try:
            written = work(part, JobProgress(self, job_id))
            os.replace(part, final)
        except Exception as exc:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            if isinstance(exc, TrailsealError):
                message = str(exc)
            else:
                log.exception("export job %s failed", job_id)
                message = "internal error while exporting (see the server log)"
            now = self._clock()
            self._update(
                job_id, status="failed", error=message, finished_at=now, expires_at=now + self.ttl
            )
            return
        now = self._clock()
        current = self._read(job_id)
        self._update(
            job_id,
            status="done",
            done=written,
            total=written if current is None or current.total is None else current.total,
            finished_at=now,
            expires_at=now + self.ttl,
            size_bytes=final.stat().st_size,
        )
