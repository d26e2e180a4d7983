"""Offline verification of one event against a pinned verifier key (ARCHITECTURE §7).

The server's word is never taken for anything that matters:

1. ``GET /v1/events/{id}``: where the server says the event is (organization, log, seq)
   and its copy of the event. Claims, to be checked.
2. ``GET /v1/events/{id}/proof``: the inclusion proof and the signed checkpoint. The
   checkpoint is opened with the **pinned** key only (the key in the answer is ignored):
   the log's signature and its own timestamped cosignature must verify, and the key's name
   (the log's origin) must be the checkpoint's origin.
3. ``GET /v1/tlog/{log_id}/tile/entries/…``: the C2SP tlog-tiles entry bundle holding the
   exact entry bytes. The leaf hash is computed here from those bytes; the bytes must parse
   as a canonical entry of that origin and seq, holding the event asked for.
4. The inclusion proof must lead from that leaf hash to the signed root
   (:func:`~trailseal.core.verify.verify_proof_bundle`).
5. The server's copy of the event (step 1) must be the entry's (with read defaults), and,
   when the caller passes what it logged (``expected``), so must that.
6. Trust on first use (:mod:`trailseal.client.trust`): the first checkpoint of a log is
   remembered; every later one must extend the remembered one, shown by a consistency proof
   (``GET /v1/logs/{org}/consistency``), and replaces it. An older checkpoint (asked for by
   ``tree_size``) must be a prefix of the remembered one and is not remembered.

Each failure raises :class:`~trailseal.errors.VerificationError` (or its subclass
:class:`~trailseal.errors.ConsistencyError` for step 6) whose ``item`` names what did not
verify: ``checkpoint``, ``entry 17``, ``event <id>``, ``entry bundle``, ``trust store``.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import quote

from trailseal.client.errors import ApiError, ClientError
from trailseal.client.models import CheckpointInfo, InclusionProof, StoredEvent, VerifiedEvent
from trailseal.client.protocol import Call, Op, Reply, Step, api_error, expect_json
from trailseal.client.retry import RetryPolicy, request
from trailseal.client.trust import TrustStore
from trailseal.core.canonical import canonicalize
from trailseal.core.checkpoint import SignedCheckpoint
from trailseal.core.ids import ID_PATTERN
from trailseal.core.schema import (
    normalize_event,
    parse_timestamp,
    validate_event,
    with_read_defaults,
)
from trailseal.core.tiles import decode_entry_bundle, entry_bundle_for_entry
from trailseal.core.verify import (
    RedactedLeaf,
    check_checkpoint_update,
    make_proof_bundle,
    open_log_checkpoint,
    verify_proof_bundle,
)
from trailseal.errors import ConsistencyError, SignatureError, ValidationError, VerificationError

__all__ = ["KeySource", "pinned_key", "verify_event"]

#: A pinned key for every log (one ``origin+keyid+base64`` string), or keys by organization
#: id, log id or origin.
KeySource = str | Mapping[str, str]


def pinned_key(keys: KeySource | None, organization_id: str, log_id: str) -> str:
    """The pinned verifier key for an organization's log; never one from the server."""
    if isinstance(keys, str):
        return keys
    if keys is not None:
        for name in (organization_id, log_id):
            found = keys.get(name)
            if found:
                return found
        for name, key in keys.items():  # keyed by origin: ``<host>/log/<log-id>``
            if name.endswith("/log/" + log_id):
                return key
    raise VerificationError(
        f"no pinned verifier key for organization {organization_id!r} (log {log_id}); pass "
        "verifier_key= (a key obtained out of band, e.g. from GET /v1/logs/{org} once, on a "
        "trusted channel); the server's own word is never used",
        item="verifier key",
    )


def _differences(ours: Any, theirs: Any, pointer: str = "") -> list[str]:
    """JSON pointers where two JSON values differ (numbers compared as JSON numbers)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: list[str] = []
        for key in sorted(set(ours) | set(theirs)):
            here = f"{pointer}/{key}"
            if key not in ours or key not in theirs:
                found.append(here)
            else:
                found.extend(_differences(ours[key], theirs[key], here))
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        found = []
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            found.extend(_differences(a, b, f"{pointer}/{index}"))
        return found
    try:
        same = canonicalize(ours) == canonicalize(theirs)
    except ValidationError:
        same = False
    return [] if same else [pointer or "/"]


def _fetch_json(call: Call, policy: RetryPolicy, rng: random.Random) -> Op[Any]:
    reply = yield from request(call, policy, rng)
    return expect_json(reply)


def verify_event(
    event_id: str,
    keys: KeySource | None,
    trust: TrustStore,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    tree_size: int | None = None,
    expected: Mapping[str, Any] | None = None,
) -> Op[VerifiedEvent]:
    """Verify event ``event_id`` (module docstring). Raises VerificationError, or
    ConsistencyError for a checkpoint inconsistent with the remembered one; ApiError /
    TransportError when the server does not answer as it should."""
    if not isinstance(event_id, str) or ID_PATTERN.fullmatch(event_id) is None:
        raise ValidationError(f"{event_id!r:.80} is not an event id", field="/id", code="pattern")
    path = "/v1/events/" + quote(event_id, safe="")
    stored = StoredEvent.from_json((yield from _fetch_json(Call("GET", path), policy, rng)))
    key = pinned_key(keys, stored.organization_id, stored.log_id)

    params = (("tree_size", str(tree_size)),) if tree_size is not None else ()
    answer = yield from _fetch_json(Call("GET", path + "/proof", params), policy, rng)
    if not isinstance(answer, dict) or not isinstance(answer.get("inclusion_proof"), dict):
        raise ClientError("unexpected answer: the proof has no inclusion_proof")
    proof = InclusionProof.from_json(answer["inclusion_proof"])
    checkpoint = answer.get("checkpoint")
    if not isinstance(checkpoint, dict):
        raise ClientError("unexpected answer: the proof has no checkpoint")
    note = CheckpointInfo.from_json(checkpoint).note

    try:
        signed = open_log_checkpoint(note, key)  # the pinned key, nothing else
    except SignatureError as exc:
        raise SignatureError(
            f"the signed checkpoint does not verify with the pinned key: {exc}",
            item="checkpoint",
        ) from exc
    body = signed.checkpoint
    log_id = body.origin.rpartition("/log/")[2]
    item = f"event {event_id}"
    if stored.log_id != log_id:
        raise VerificationError(
            f"the server places the event in log {stored.log_id}, the signed checkpoint is of "
            f"log {log_id}",
            item=item,
        )
    if proof.leaf_index != stored.seq:
        raise VerificationError(
            f"the server says seq {stored.seq}, its proof is for leaf {proof.leaf_index}",
            item=item,
        )
    if proof.tree_size != body.size:
        raise VerificationError(
            f"the proof is for tree size {proof.tree_size}, the signed checkpoint has "
            f"{body.size} entries",
            item="inclusion proof",
        )
    if not 0 <= stored.seq < body.size:
        raise VerificationError(
            f"seq {stored.seq} is not in the signed tree of {body.size} entries", item=item
        )

    data = yield from _entry_bytes(log_id, stored.seq, body.size, policy, rng)
    if not data and not stored.redacted:
        raise VerificationError(
            "the entry bundle holds no bytes for an entry the server does not call redacted",
            item=f"entry {stored.seq}",
        )
    entry: bytes | RedactedLeaf = data if data else RedactedLeaf(stored.leaf_hash)
    verified = verify_proof_bundle(make_proof_bundle(stored.seq, proof.hashes, note), entry, key)
    event = verified.entry.event if verified.entry is not None else None
    if event is not None:
        _check_event(event_id, stored, event, expected)

    trust_state = yield from _check_trust(
        trust,
        note,
        signed,
        key,
        stored.organization_id,
        older_allowed=tree_size is not None,
        policy=policy,
        rng=rng,
    )
    return VerifiedEvent(
        id=event_id,
        organization_id=stored.organization_id,
        log_id=log_id,
        origin=body.origin,
        seq=stored.seq,
        tree_size=body.size,
        root_hash=body.root_hash,
        leaf_hash=verified.leaf_hash,
        signed_at=signed.timestamp,
        redacted=verified.redacted,
        trust=trust_state,
        event=event,
        entry=data or None,
    )


def _entry_bytes(
    log_id: str, seq: int, size: int, policy: RetryPolicy, rng: random.Random
) -> Generator[Step, Reply | None, bytes]:
    bundle = entry_bundle_for_entry(seq, size)
    reply = yield from request(Call("GET", f"/v1/tlog/{log_id}/{bundle.path()}"), policy, rng)
    if not reply.ok:
        raise api_error(reply)
    try:
        entries = decode_entry_bundle(reply.body)
    except ValidationError as exc:
        raise VerificationError(f"malformed entry bundle: {exc}", item="entry bundle") from exc
    if len(entries) != bundle.width:
        raise VerificationError(
            f"the bundle holds {len(entries)} entries, expected {bundle.width}",
            item="entry bundle",
        )
    return bytes(entries[seq % 256])


def _check_event(
    event_id: str,
    stored: StoredEvent,
    event: Mapping[str, Any],
    expected: Mapping[str, Any] | None,
) -> None:
    if event.get("id") != event_id:
        raise VerificationError(
            f"the signed entry holds event {str(event.get('id'))!r:.80}, not {event_id!r}",
            item=f"entry {stored.seq}",
        )
    item = f"event {event_id}"
    if stored.event is not None:
        differ = _differences(dict(stored.event), with_read_defaults(event))
        if differ:
            raise VerificationError(
                "the server's copy of the event differs from the signed entry at "
                + ", ".join(differ[:5]),
                item=item,
            )
    if expected is not None:
        validate_event(dict(expected))
        occurred = parse_timestamp(event.get("occurred_at"), field="/occurred_at")
        logged = normalize_event(expected, now=occurred, new_id=lambda: event_id)
        differ = _differences(logged, dict(event))
        if differ:
            raise VerificationError(
                "the signed entry differs from the event as logged at " + ", ".join(differ[:5]),
                item=item,
            )


def _consistency(
    organization_id: str, first: int, second: int, policy: RetryPolicy, rng: random.Random
) -> Generator[Step, Reply | None, list[bytes]]:
    call = Call(
        "GET",
        "/v1/logs/" + quote(organization_id, safe="") + "/consistency",
        (("first", str(first)), ("second", str(second))),
    )
    try:
        answer = yield from _fetch_json(call, policy, rng)
    except ApiError as exc:
        raise ConsistencyError(
            f"the server gave no consistency proof from {first} to {second} entries: {exc}",
            item="checkpoint",
        ) from exc
    hashes = answer.get("hashes") if isinstance(answer, dict) else None
    try:
        return [bytes.fromhex(h) for h in hashes]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConsistencyError("the consistency proof is not a list of hex hashes") from None


def _check_trust(
    trust: TrustStore,
    note: str,
    signed: SignedCheckpoint,
    key: str,
    organization_id: str,
    *,
    older_allowed: bool,
    policy: RetryPolicy,
    rng: random.Random,
) -> Generator[Step, Reply | None, str]:
    """Step 6 of the module docstring; returns how the checkpoint relates to the
    remembered one: ``first-use``, ``same``, ``extended`` or ``older``."""
    origin = signed.checkpoint.origin
    new_size = signed.checkpoint.size
    for _ in range(16):  # compare-and-set loses only to another writer's progress
        remembered = trust.get(origin)
        trusted: SignedCheckpoint | None = None
        if remembered is not None:
            try:
                trusted = open_log_checkpoint(remembered, key)
            except SignatureError as exc:
                raise ConsistencyError(
                    f"the remembered checkpoint of {origin} does not open with the pinned "
                    f"key ({exc.message}): the trust store was altered, or the key changed",
                    item="trust store",
                ) from exc
        if trusted is not None and new_size < trusted.checkpoint.size and older_allowed:
            proof = yield from _consistency(
                organization_id, new_size, trusted.checkpoint.size, policy, rng
            )
            # The older one stands in as "trusted": the remembered one must extend it.
            check_checkpoint_update(signed, remembered or "", proof, key)
            return "older"
        proof = []
        if trusted is not None and new_size > trusted.checkpoint.size > 0:
            proof = yield from _consistency(
                organization_id, trusted.checkpoint.size, new_size, policy, rng
            )
        check_checkpoint_update(trusted, note, proof, key)
        if trust.compare_and_set(origin, remembered, note):
            if trusted is None:
                return "first-use"
            return "same" if trusted.checkpoint.size == new_size else "extended"
    raise ClientError(f"the trust store kept changing under us for {origin}")
