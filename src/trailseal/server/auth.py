"""Authentication and authorization (ARCHITECTURE §8).

``Authorization: Bearer tsk_live_…`` (or ``tsk_test_…``). The key is looked up by its
SHA-256 (the only form stored) and the hash compared again in constant time. A missing or
unknown key answers 401, a missing scope 403, and anything of another project or of an
organization the key is not bound to answers 404, so existence is never revealed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from trailseal.apikeys import has_scope, hash_secret, looks_like_key, same_hash
from trailseal.server.errors import ApiError
from trailseal.store.base import ApiKeyRow, Store

__all__ = [
    "KeyCache",
    "Principal",
    "authenticate",
    "authenticate_request",
    "not_found",
    "require_any_scope",
]


@dataclass(frozen=True, slots=True)
class Principal:
    project: str
    key_id: str
    scopes: tuple[str, ...]
    organization: str | None  # bound keys see and write only this organization

    def can_see(self, organization: str) -> bool:
        return self.organization is None or self.organization == organization


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="trailseal"'}
    )


class KeyCache:
    """Recently seen API keys of this process, by hash, for ``ttl`` seconds: a sync
    request at 500/s should not pay a database read for its key every time. A revocation
    through this process takes effect at once (:meth:`forget`); through another process or
    the CLI, within ``ttl``."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._rows: dict[bytes, tuple[float, ApiKeyRow]] = {}

    def get(self, digest: bytes) -> ApiKeyRow | None:
        found = self._rows.get(digest)
        if found is None or time.monotonic() - found[0] > self.ttl:
            return None
        return found[1]

    def put(self, row: ApiKeyRow) -> None:
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[row.key_hash] = (time.monotonic(), row)

    def forget(self, key_id: str) -> None:
        for digest, (_, row) in list(self._rows.items()):
            if row.key_id == key_id:
                self._rows.pop(digest, None)


def _key_digest(request: Request) -> bytes:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("missing API key: send `Authorization: Bearer tsk_live_…`")
    if not looks_like_key(secret):
        raise _unauthorized("unknown API key")
    return hash_secret(secret)


def _principal(row: ApiKeyRow | None, digest: bytes) -> Principal:
    if row is None or not same_hash(row.key_hash, digest) or row.revoked_at is not None:
        raise _unauthorized("unknown or revoked API key")
    return Principal(row.project, row.key_id, row.scopes, row.organization)


def _stored_row(store: Store, digest: bytes, cache: KeyCache | None) -> ApiKeyRow | None:
    row = store.find_api_key(digest)
    if row is not None and row.revoked_at is None and cache is not None:
        cache.put(row)
    return row


def authenticate(request: Request, store: Store, cache: KeyCache | None = None) -> Principal:
    digest = _key_digest(request)
    row = cache.get(digest) if cache is not None else None
    if row is None:
        row = _stored_row(store, digest, cache)
    return _principal(row, digest)


async def authenticate_request(request: Request, store: Store, cache: KeyCache) -> Principal:
    """:func:`authenticate` for async handlers: a cached key is checked on the event loop
    (a thread-pool hop costs more than the check); only a database read leaves it."""
    digest = _key_digest(request)
    row = cache.get(digest)
    if row is None:
        row = await run_in_threadpool(_stored_row, store, digest, cache)
    return _principal(row, digest)


def require_any_scope(principal: Principal, scopes: tuple[str, ...]) -> None:
    if not any(has_scope(principal.scopes, scope) for scope in scopes):
        wanted = " or ".join(f"`{s}`" for s in scopes)
        raise ApiError(403, "forbidden", f"this API key lacks the {wanted} scope", field="scope")
