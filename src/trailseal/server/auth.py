"""Authentication and authorization (ARCHITECTURE §8).

``Authorization: Bearer tsk_live_…`` (or ``tsk_test_…``). The key is looked up by its
SHA-256 (the only form stored) and the hash compared again in constant time. A missing or
unknown key answers 401, a missing scope 403, and anything of another project or of an
organization the key is not bound to answers 404, so existence is never revealed.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from trailseal.apikeys import has_scope, hash_secret, looks_like_key, same_hash
from trailseal.server.errors import ApiError
from trailseal.store.base import Store

__all__ = ["Principal", "authenticate", "not_found", "require_any_scope"]


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


def authenticate(request: Request, store: Store) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("missing API key: send `Authorization: Bearer tsk_live_…`")
    if not looks_like_key(secret):
        raise _unauthorized("unknown API key")
    digest = hash_secret(secret)
    row = store.find_api_key(digest)
    if row is None or not same_hash(row.key_hash, digest) or row.revoked_at is not None:
        raise _unauthorized("unknown or revoked API key")
    return Principal(row.project, row.key_id, row.scopes, row.organization)


def require_any_scope(principal: Principal, scopes: tuple[str, ...]) -> None:
    if not any(has_scope(principal.scopes, scope) for scope in scopes):
        wanted = " or ".join(f"`{s}`" for s in scopes)
        raise ApiError(403, "forbidden", f"this API key lacks the {wanted} scope", field="scope")
