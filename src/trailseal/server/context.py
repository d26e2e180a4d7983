"""What every request handler needs: settings, store, ledger, and the authenticated
principal (FastAPI dependencies, one per scope)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from trailseal.ledger.service import Ledger
from trailseal.server.auth import KeyCache, Principal, authenticate_request, require_any_scope
from trailseal.settings import Settings
from trailseal.store.base import Store

__all__ = [
    "Admin",
    "AnyKey",
    "AppContext",
    "EventsReader",
    "EventsWriter",
    "Exporter",
    "ProofReader",
    "ReceiptReader",
    "Verifier",
    "context",
    "principal_with",
    "principal_with_any",
]


@dataclass
class AppContext:
    settings: Settings
    store: Store
    ledger: Ledger
    keys: KeyCache = field(default_factory=KeyCache)


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def principal_with(scope: str) -> Callable[[Request], object]:
    """A dependency that authenticates the caller and checks ``scope`` (admin implies
    every scope). A key not in the process's key cache is read in the thread pool."""
    return principal_with_any(scope)


def principal_with_any(*scopes: str) -> Callable[[Request], object]:
    """Like :func:`principal_with`, satisfied by any one of ``scopes``."""

    async def dependency(request: Request) -> Principal:
        ctx = context(request)
        principal = await authenticate_request(request, ctx.store, ctx.keys)
        require_any_scope(principal, scopes)
        return principal

    dependency.__name__ = "principal_with_" + "_or_".join(s.replace(":", "_") for s in scopes)
    return dependency


# The principals routes ask for, as annotated types (FastAPI's recommended form).
EventsWriter = Annotated[Principal, Depends(principal_with("events:write"))]
EventsReader = Annotated[Principal, Depends(principal_with("events:read"))]
ProofReader = Annotated[Principal, Depends(principal_with_any("events:read", "verify"))]
ReceiptReader = Annotated[Principal, Depends(principal_with_any("events:write", "events:read"))]
Verifier = Annotated[Principal, Depends(principal_with("verify"))]
Exporter = Annotated[Principal, Depends(principal_with("export"))]
Admin = Annotated[Principal, Depends(principal_with("admin"))]
AnyKey = Annotated[
    Principal, Depends(principal_with_any("events:read", "events:write", "verify", "export"))
]
