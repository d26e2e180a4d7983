"""Health, metrics and usage."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailseal.server.context import AnyKey, context
from trailseal.server.metrics import REGISTRY
from trailseal.server.responses import json_response

router = APIRouter()


@router.get("/healthz", tags=["system"], summary="200 once the server accepts events")
async def healthz(request: Request) -> Response:
    ctx = context(request)
    return json_response({"status": "ok", "database": ctx.store.kind})


@router.get("/metrics", tags=["system"], summary="Prometheus metrics")
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/usage", tags=["usage"], summary="Events this month, limits and retention")
async def usage(
    request: Request,
    principal: AnyKey,
) -> Response:
    ctx = context(request)
    month = ctx.ledger.now_text()[:7]

    def build() -> dict[str, object]:
        project = ctx.store.get_project(principal.project)
        used = ctx.store.usage(principal.project, month)
        return {
            "project": principal.project,
            "month": month,
            "events_this_month": used,
            "monthly_event_limit": project.monthly_event_limit if project else None,
            "retention_days": project.retention_days if project else None,
        }

    return json_response(await run_in_threadpool(build))
