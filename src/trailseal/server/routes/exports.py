"""Exports (scope ``export``): CSV/JSON/NDJSON streams, and jobs for large exports, PDF
reports and evidence packs, downloaded through an expiring link that needs no auth header.

The filters are those of ``GET /v1/events`` (the same :func:`build_filter` and
:func:`resolve_logs`), so an export holds exactly what the listing shows; a key bound to an
organization exports only that organization. Streams read the store a page at a time in a
worker thread and never hold the selection in memory. Jobs run in the server process that
accepted them and write under ``<data dir>/exports`` (see :mod:`trailseal.exports.jobs`).
Per process, at most 4 streams and 2 jobs read the store at once; more wait their turn.
``TRAILSEAL_EXPORT_TTL`` (seconds, default 86400) is how long a finished job's link works.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from trailseal.core.schema import format_timestamp
from trailseal.exports.formats import MEDIA_TYPES, StreamFormat, export_chunks
from trailseal.exports.jobs import ExportJob, ExportJobs, JobProgress, JobWork, WorkerPool
from trailseal.exports.selection import Selection, iter_selection, use_small_page_cache
from trailseal.runtime import now_text
from trailseal.server.auth import Principal, not_found
from trailseal.server.context import AppContext, Exporter, context
from trailseal.server.errors import ApiError
from trailseal.server.responses import json_response
from trailseal.server.routes.listing import EventFilters, FilterQuery, resolve_logs

router = APIRouter(prefix="/v1/exports", tags=["exports"])

JobFormat = Literal["csv", "json", "ndjson", "pdf", "evidence"]
#: Streams and jobs read on these few threads per process (see _pumped).
STREAM_WORKERS = 4
JOB_WORKERS = 2
_jobs_lock = threading.Lock()


class ExportRequest(EventFilters):
    format: JobFormat
    excel: bool = Field(False, description="CSV for spreadsheets: BOM, formulas defused")


def _selection(ctx: AppContext, principal: Principal, filters: EventFilters) -> Selection:
    flt, organization = filters.to_filter()
    log_ids = resolve_logs(ctx, principal, organization)
    described: dict[str, Any] = {"organization_id": organization or principal.organization}
    described.update(filters.described())
    return Selection(
        principal.project,
        flt,
        None if log_ids is None else tuple(log_ids),
        {k: v for k, v in described.items() if v not in (None, [], "")},
    )


_END: Any = object()
_WAIT: Any = object()


async def _pumped(chunks: Iterator[bytes], pool: WorkerPool) -> AsyncIterator[bytes]:
    """``chunks`` produced on one thread of the export pool, handed over through a small
    queue.

    Why not Starlette's thread pool: each of its threads has its own store connection
    (kept for the life of the process, SQLite with a 64 MiB page cache each), and one
    stream's pages would visit many of them. The pool's few threads keep small-cache
    connections; the queue bounds what is buffered; a client that goes away stops the
    producer. With every pool thread busy, a new stream waits for one."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        item: Any = _END
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        handoff.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the response, which ends the stream
            item = exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def take() -> Any:
        # A bounded wait: a cancelled request is only told once this returns.
        try:
            return handoff.get(timeout=1.0)
        except queue.Empty:
            return _WAIT

    pool.submit(produce)
    try:
        while True:
            item = await run_in_threadpool(take)
            if item is _WAIT:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class _Organizations:
    """log id -> organization, looked up once per log."""

    def __init__(self, ctx: AppContext, project: str) -> None:
        self._ctx = ctx
        self._project = project
        self._known: dict[str, str] = {}

    def __call__(self, log_id: str) -> str:
        found = self._known.get(log_id)
        if found is None:
            log = self._ctx.store.get_log(self._project, log_id)
            found = self._known[log_id] = log.organization if log is not None else ""
        return found


@router.get(
    "/events.{fmt}",
    summary="Stream the selection as CSV, JSON or NDJSON",
    description="The filters of `GET /v1/events`. Oldest commit first, up to the newest "
    "match when the export starts; streamed in constant memory. CSV: RFC 4180, UTF-8 "
    "without BOM (`excel=true`: BOM and formula-looking cells defused for spreadsheets); "
    "`targets`, `tags` and `metadata` hold JSON. JSON: one array; NDJSON: one event view per "
    "line (the views `GET /v1/events` lists).",
)
async def stream_events(
    fmt: Literal["csv", "json", "ndjson"],
    request: Request,
    principal: Exporter,
    filters: FilterQuery,
    excel: bool = False,
) -> Response:
    ctx = context(request)
    selection = await run_in_threadpool(_selection, ctx, principal, filters)
    chunks = export_chunks(
        fmt,
        iter_selection(ctx.store, selection),
        _Organizations(ctx, principal.project),
        excel=excel,
    )
    _, streams = _pools(request)
    stamp = now_text()[:19].replace(":", "").replace("-", "")
    return StreamingResponse(
        _pumped(chunks, streams),
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="trailseal-events-{stamp}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


def _pools(request: Request) -> tuple[ExportJobs, WorkerPool]:
    """The app's export jobs and stream workers, made on first use."""
    state = request.app.state
    with _jobs_lock:
        found: tuple[ExportJobs, WorkerPool] | None = getattr(state, "exports", None)
        if found is None:
            ctx = context(request)
            ttl = float(os.environ.get("TRAILSEAL_EXPORT_TTL") or 86_400)

            def small_cache() -> None:
                use_small_page_cache(ctx.store)

            jobs = ExportJobs(
                Path(ctx.settings.data_dir) / "exports",
                ttl=ttl,
                max_running=JOB_WORKERS,
                on_worker_start=small_cache,
            )
            streams = WorkerPool(STREAM_WORKERS, "trailseal-export-stream", on_start=small_cache)
            found = state.exports = (jobs, streams)
        return found


def _jobs(request: Request) -> ExportJobs:
    return _pools(request)[0]


def _time(value: float | None) -> str | None:
    return None if value is None else format_timestamp(datetime.fromtimestamp(value, UTC))


def _job_view(ctx: AppContext, jobs: ExportJobs, job: ExportJob) -> dict[str, Any]:
    base = ctx.settings.base_url()
    return {
        "job_id": job.job_id,
        "format": job.format,
        "status": job.status,
        "progress": {"done": job.done, "total": job.total},
        "filters": {k: v for k, v in job.request.items() if k not in ("format",)},
        "created_at": _time(job.created_at),
        "finished_at": _time(job.finished_at),
        "expires_at": _time(job.expires_at),
        "size_bytes": job.size_bytes,
        "filename": job.filename,
        "error": job.error,
        "status_url": f"{base}/v1/exports/{job.job_id}",
        "download_url": f"{base}/v1/exports/download/{jobs.token(job)}",
    }


def _work(ctx: AppContext, selection: Selection, fmt: JobFormat, excel: bool) -> JobWork:
    def run(path: Path, progress: JobProgress) -> int:
        created_at = now_text()
        progress.total(selection.count(ctx.store))
        if fmt == "evidence":
            from trailseal.exports.evidence import build_evidence_pack

            pack = build_evidence_pack(
                ctx.ledger, selection, path, created_at=created_at, progress=progress.done
            )
            return pack.entries
        if fmt == "pdf":
            from trailseal.exports.report import build_pdf_report

            report = build_pdf_report(
                ctx.ledger, selection, path, created_at=created_at, progress=progress.done
            )
            return report.events
        done = 0

        def on_page(count: int) -> None:
            nonlocal done
            done += count
            progress.done(done)

        pages = iter_selection(ctx.store, selection)
        organizations = _Organizations(ctx, selection.project)
        stream: StreamFormat = fmt
        with path.open("wb") as out:
            for chunk in export_chunks(stream, pages, organizations, excel=excel, on_page=on_page):
                out.write(chunk)
        return done

    return run


@router.post(
    "",
    status_code=202,
    summary="Start an export job (CSV, JSON, NDJSON, PDF report, evidence pack)",
    description="Answers 202 with the job: poll `status_url` (scope `export`) for `status` "
    "and `progress`; once `done`, `download_url` serves the file to anyone holding the link "
    "(no auth header) until `expires_at`. PDF reports list and verify up to 10,000 events; "
    "larger selections get the summary and a pointer to the evidence pack.",
)
async def create_job(request: Request, principal: Exporter, body: ExportRequest) -> Response:
    ctx = context(request)
    jobs = _jobs(request)
    selection = await run_in_threadpool(_selection, ctx, principal, body)
    job = await run_in_threadpool(
        lambda: jobs.create(
            project=principal.project,
            owner_organization=principal.organization,
            key_id=principal.key_id,
            fmt=body.format,
            request=body.model_dump(exclude_none=True),
            work=_work(ctx, selection, body.format, body.excel),
        )
    )
    view = _job_view(ctx, jobs, job)
    return json_response(view, status=202, headers={"Location": view["status_url"]})


@router.get(
    "/download/{token}",
    summary="Download a finished export (the link is the credential: no auth header)",
    responses={404: {"description": "unknown or expired link"}, 409: {"description": "not ready"}},
)
async def download(token: str, request: Request) -> Response:
    jobs = _jobs(request)
    job = await run_in_threadpool(jobs.by_token, token)
    if job is None:
        raise not_found("export")
    path = jobs.ready_file(job)
    if path is None:
        if job.status == "failed":
            raise ApiError(409, "export_failed", f"the export failed: {job.error}")
        raise ApiError(
            409, "not_ready", f"the export is {job.status}", headers={"Retry-After": "2"}
        )
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[job.format],
        filename=job.filename,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/{job_id}", summary="An export job's status, progress and download link")
async def job_status(job_id: str, request: Request, principal: Exporter) -> Response:
    ctx = context(request)
    jobs = _jobs(request)
    job = await run_in_threadpool(jobs.get, job_id)
    if job is None or not job.visible_to(principal.project, principal.organization):
        raise not_found("export job")
    return json_response(_job_view(ctx, jobs, job))
