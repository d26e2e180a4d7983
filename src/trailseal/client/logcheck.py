"""Log-level checks as sans-IO operations (:mod:`trailseal.client.protocol`), for the
``trailseal checkpoint`` and ``trailseal verify --organization`` commands:

- :func:`latest_checkpoint`: the log's newest signed checkpoint, opened with the **pinned**
  key only (the log's signature and its own timestamped cosignature), checked against the
  server's description of it, and trust-on-first-use checked against the remembered one
  (:mod:`trailseal.client.trust`: it must extend it, shown by a consistency proof). What it
  returns comes from the signed note, never from the server's JSON.
- :func:`verify_range`: ``POST /v1/verify``, the server re-checking a range of its own log
  (the first bad entry named). That is the server's word about itself; an auditor who does
  not trust the server verifies an evidence pack or single events offline instead.

:func:`check_latest_checkpoint` and :func:`verify_log_range` run them over a
:class:`~trailseal.client.Client`'s connection, retry policy and trust store.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from trailseal.client import api
from trailseal.client.errors import ClientError
from trailseal.client.protocol import Call, Op, expect_json
from trailseal.client.retry import RetryPolicy, request
from trailseal.client.trust import TrustStore
from trailseal.client.verify import KeySource, _check_trust, pinned_key
from trailseal.core.verify import open_log_checkpoint
from trailseal.errors import SignatureError, VerificationError

if TYPE_CHECKING:
    from trailseal.client.client import Client

__all__ = [
    "RangeReport",
    "TrustedCheckpoint",
    "check_latest_checkpoint",
    "latest_checkpoint",
    "verify_log_range",
    "verify_range",
]


@dataclass(frozen=True, slots=True)
class TrustedCheckpoint:
    """A checkpoint that opened with the pinned key and is consistent with every one this
    trust store saw before (``trust``: ``first-use``, ``same`` or ``extended``). ``note``
    is the signed note verbatim; the other members are read from it."""

    organization_id: str
    origin: str
    log_id: str
    tree_size: int
    root_hash: bytes
    signed_at: int | None
    trust: str
    note: str


@dataclass(frozen=True, slots=True)
class RangeReport:
    """The server's verification of entries ``start`` to ``end`` (exclusive) of a log."""

    ok: bool
    organization_id: str
    start: int
    end: int
    tree_size: int
    checked: int
    redacted: int
    first_bad: str | None
    message: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


def latest_checkpoint(
    organization_id: str,
    keys: KeySource | None,
    trust: TrustStore,
    policy: RetryPolicy,
    rng: random.Random,
) -> Op[TrustedCheckpoint]:
    """The latest checkpoint of ``organization_id``'s log, verified (module docstring).
    Raises SignatureError (item ``checkpoint``), VerificationError when the server's
    description differs from what it signed, ConsistencyError (trust store)."""
    info = yield from api.get_checkpoint(organization_id, None, policy, rng)
    key = pinned_key(keys, organization_id, info.log_id or "")
    try:
        signed = open_log_checkpoint(info.note, key)
    except SignatureError as exc:
        raise SignatureError(
            f"the signed checkpoint does not verify with the pinned key: {exc.message}",
            item="checkpoint",
        ) from exc
    body = signed.checkpoint
    claims = {
        "tree_size": (info.tree_size, body.size),
        "root_hash": (info.root_hash, body.root_hash),
    }
    differ = [name for name, (said, signed_value) in claims.items() if said != signed_value]
    if differ:
        raise VerificationError(
            f"the server describes the checkpoint with a {' and a '.join(differ)} other than "
            f"the signed note's (size {body.size}, root {body.root_hash.hex()})",
            item="checkpoint",
        )
    state = yield from _check_trust(
        trust,
        info.note,
        signed,
        key,
        organization_id,
        older_allowed=False,
        policy=policy,
        rng=rng,
    )
    return TrustedCheckpoint(
        organization_id=organization_id,
        origin=body.origin,
        log_id=body.origin.rpartition("/log/")[2],
        tree_size=body.size,
        root_hash=body.root_hash,
        signed_at=signed.timestamp,
        trust=state,
        note=info.note,
    )


def verify_range(
    organization_id: str,
    start: int,
    end: int | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> Op[RangeReport]:
    """``POST /v1/verify`` (read-only, so retried like a read)."""
    body: dict[str, Any] = {"organization_id": organization_id, "from": start}
    if end is not None:
        body["to"] = end
    reply = yield from request(Call("POST", "/v1/verify", (), orjson.dumps(body)), policy, rng)
    answer = expect_json(reply)
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise ClientError("unexpected answer: a verification report has no 'ok'")
    try:
        return RangeReport(
            ok=answer["ok"],
            organization_id=str(answer.get("organization_id", organization_id)),
            start=int(answer["from"]),
            end=int(answer["to"]),
            tree_size=int(answer["tree_size"]),
            checked=int(answer["checked"]),
            redacted=int(answer.get("redacted") or 0),
            first_bad=answer.get("first_bad"),
            message=answer.get("message"),
            raw=answer,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ClientError(f"unexpected answer: a verification report lacks {exc}") from None


def check_latest_checkpoint(
    client: Client, organization_id: str, keys: KeySource | None = None
) -> TrustedCheckpoint:
    """:func:`latest_checkpoint` over ``client``'s connection, retry policy and trust
    store; ``keys`` default to the client's ``verifier_key``."""
    pinned = keys if keys is not None else client.verifier_key
    op = latest_checkpoint(organization_id, pinned, client.trust_store(), client.retry, client._rng)
    return client._run(op)


def verify_log_range(
    client: Client, organization_id: str, start: int = 0, end: int | None = None
) -> RangeReport:
    """:func:`verify_range` over ``client``'s connection and retry policy."""
    return client._run(verify_range(organization_id, start, end, client.retry, client._rng))
