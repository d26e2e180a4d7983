"""verify_event against the real server (both drivers): an honest log verifies with the
pinned key alone; a server or proxy that alters an event, its entry bytes, a proof or a
checkpoint is caught and named; a checkpoint inconsistent with the remembered one is
refused; the server's own verifier key is never used."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.client.conftest import QUICK_RETRY
from tests.server.conftest import RunningServer
from trailseal.client import Client, ConsistencyError, TrustStore, VerificationError
from trailseal.core.checkpoint import Checkpoint, LogKeys
from trailseal.errors import SignatureError
from trailseal.ledger.keys import ProjectKeys
from trailseal.runtime import open_store

Edit = Callable[[httpx.Request, bytes], bytes]
Logged = tuple[list[str], str, str]


@pytest.fixture
def server(shared_server: RunningServer) -> RunningServer:
    """These tests keep to their own organizations: one server per driver serves them."""
    return shared_server


class Tamper(httpx.BaseTransport):
    """A man in the middle: real HTTP to the server, answers rewritten by ``edit``."""

    def __init__(self, edit: Edit) -> None:
        self._inner = httpx.HTTPTransport()
        self._edit = edit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        body = self._edit(request, response.read())
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)

    def close(self) -> None:
        self._inner.close()


def _client(server: RunningServer, key: str, tmp_path: Path, edit: Edit | None = None) -> Client:
    return Client(
        server.url,
        key,
        retry=QUICK_RETRY,
        trust_store=tmp_path / "trust.json",
        transport=Tamper(edit) if edit else None,
        flush_interval=0.01,
    )


@pytest.fixture
def logged(client: Client) -> Logged:
    """Ten events in a new organization's log, its verifier key (pinned here from the
    honest server; in real use it comes out of band) and the organization."""
    org = f"acme-{uuid.uuid4().hex[:8]}"
    ids = [
        client.log(action="doc.read", actor={"id": "a"}, organization_id=org, message=f"m{n}")
        for n in range(10)
    ]
    assert client.flush(timeout=20)
    return ids, client.get_log(org).verifier_key, org


def test_an_honest_log_verifies_and_the_checkpoint_is_remembered(
    client: Client, logged: Logged, tmp_path: Path
) -> None:
    ids, key, org = logged
    first = client.verify_event(ids[3], verifier_key=key)
    assert first.seq == 3 and first.tree_size == 10 and first.trust == "first-use"
    assert first.event is not None and first.event["message"] == "m3"
    assert first.signed_at is not None and first.entry is not None
    assert client.verify_event(ids[9], verifier_key=key).trust == "same"
    client.log_sync(action="doc.read", actor={"id": "a"}, organization_id=org)
    grown = client.verify_event(ids[0], verifier_key=key)
    assert grown.trust == "extended" and grown.tree_size == 11
    # An earlier checkpoint (the log signs one per integrated batch) must be a prefix.
    older = client.verify_event(ids[0], verifier_key=key, tree_size=10)
    assert older.trust == "older" and older.tree_size == 10
    remembered = TrustStore(tmp_path / "trust.json").get(grown.origin)
    assert remembered is not None and "\n11\n" in remembered
    # What the caller logged can be checked too.
    client.verify_event(
        ids[2],
        verifier_key=key,
        expected={
            "action": "doc.read",
            "actor": {"id": "a"},
            "organization_id": org,
            "message": "m2",
        },
    )
    with pytest.raises(VerificationError, match="as logged at /message"):
        client.verify_event(
            ids[2],
            verifier_key=key,
            expected={"action": "doc.read", "actor": {"id": "a"}, "organization_id": org},
        )


def test_no_pinned_key_no_verification(client: Client, logged: Logged) -> None:
    with pytest.raises(VerificationError) as refused:
        client.verify_event(logged[0][0])
    assert refused.value.item == "verifier key"


def _replace_in(path_pattern: str, old: bytes, new: bytes) -> Edit:
    def edit(request: httpx.Request, body: bytes) -> bytes:
        if re.fullmatch(path_pattern, request.url.path):
            assert old in body
            return body.replace(old, new, 1)
        return body

    return edit


def test_altered_event_copy_is_caught(
    server: RunningServer, api_key: str, logged: Logged, tmp_path: Path
) -> None:
    ids, key, _org = logged
    edit = _replace_in(r"/v1/events/[^/]+", b'"message":"m4"', b'"message":"m5"')
    with (
        _client(server, api_key, tmp_path, edit) as mitm,
        pytest.raises(VerificationError) as caught,
    ):
        mitm.verify_event(ids[4], verifier_key=key)
    assert caught.value.item == f"event {ids[4]}"
    assert "differs from the signed entry at /message" in caught.value.message


def test_altered_entry_bytes_are_caught(
    server: RunningServer, api_key: str, logged: Logged, tmp_path: Path
) -> None:
    ids, key, _org = logged

    # The same edit in the event view and the entry bundle: consistent lies, still caught.
    def edit(request: httpx.Request, body: bytes) -> bytes:
        if "/tile/entries/" in request.url.path or re.fullmatch(
            r"/v1/events/[^/]+", request.url.path
        ):
            return body.replace(b'"message":"m4"', b'"message":"m5"')
        return body

    with (
        _client(server, api_key, tmp_path, edit) as mitm,
        pytest.raises(VerificationError) as caught,
    ):
        mitm.verify_event(ids[4], verifier_key=key)
    assert caught.value.item == "entry 4"
    assert "inclusion proof" in caught.value.message and "does not match" in caught.value.message


def test_altered_proof_is_caught(
    server: RunningServer, api_key: str, logged: Logged, tmp_path: Path
) -> None:
    ids, key, _org = logged

    def edit(request: httpx.Request, body: bytes) -> bytes:
        if request.url.path.endswith("/proof"):
            return re.sub(
                rb'"hashes":\["(.)',
                lambda m: b'"hashes":["' + (b"0" if m.group(1) != b"0" else b"1"),
                body,
            )
        return body

    with (
        _client(server, api_key, tmp_path, edit) as mitm,
        pytest.raises(VerificationError) as caught,
    ):
        mitm.verify_event(ids[6], verifier_key=key)
    assert caught.value.item == "entry 6" and "inclusion proof" in caught.value.message


def test_altered_checkpoint_is_caught(
    server: RunningServer, api_key: str, logged: Logged, tmp_path: Path
) -> None:
    ids, key, _org = logged

    def edit(request: httpx.Request, body: bytes) -> bytes:
        if request.url.path.endswith("/proof"):
            return body.replace(b"\\n10\\n", b"\\n11\\n", 1)  # the tree size in the note
        return body

    with _client(server, api_key, tmp_path, edit) as mitm, pytest.raises(SignatureError) as caught:
        mitm.verify_event(ids[1], verifier_key=key)
    assert caught.value.item == "checkpoint"
    assert "does not verify with the pinned key" in caught.value.message


def test_the_servers_key_is_never_trusted(
    server: RunningServer, api_key: str, logged: Logged, tmp_path: Path
) -> None:
    ids, key, _org = logged
    origin = key.split("+", 1)[0]
    forged_key = LogKeys.from_seed(origin, b"\x07" * 32).verifier_key()  # same log, other key

    def edit(request: httpx.Request, body: bytes) -> bytes:
        return body.replace(key.encode(), forged_key.encode())

    with _client(server, api_key, tmp_path, edit) as mitm:
        assert mitm.verify_event(ids[1], verifier_key=key).seq == 1  # the answer's key unused
    with _client(server, api_key, tmp_path) as honest, pytest.raises(SignatureError):
        honest.verify_event(ids[1], verifier_key=forged_key)  # a wrong pin fails


def test_tampering_at_rest_is_caught(client: Client, server: RunningServer, logged: Logged) -> None:
    """A rogue operator edits the stored entry bytes in the database."""
    ids, key, org = logged
    log_id = client.get_log(org).log_id
    if server.settings.database_url:
        with psycopg.connect(server.settings.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE entries SET entry = overlay(entry placing 'm8'::bytea"
                " from position('m7'::bytea in entry)) WHERE log_id = %s AND seq = 7",
                (log_id,),
            )
    else:
        with sqlite3.connect(server.settings.sqlite_path) as conn:
            row = conn.execute(
                "SELECT entry FROM entries WHERE log_id = ? AND seq = 7", (log_id,)
            ).fetchone()
            conn.execute(
                "UPDATE entries SET entry = ? WHERE log_id = ? AND seq = 7",
                (bytes(row[0]).replace(b"m7", b"m8"), log_id),
            )
    with pytest.raises(VerificationError) as caught:
        client.verify_event(ids[7], verifier_key=key)
    assert caught.value.item == "entry 7"


def _sign(server: RunningServer, origin: str, size: int, root: bytes) -> str:
    """A checkpoint signed with the log's real key: what a compromised or equivocating
    server could present."""
    store = open_store(server.settings)
    try:
        keys = ProjectKeys(store, bytes(range(32)), now=lambda: "2026-01-01T00:00:00.000000Z")
        log_keys = LogKeys.from_private_key(origin, keys.private_key("default"))
        return log_keys.sign(Checkpoint(origin, size, root), 1_700_000_000)
    finally:
        store.close()


def test_a_checkpoint_inconsistent_with_the_remembered_one_is_refused(
    client: Client, server: RunningServer, logged: Logged, tmp_path: Path
) -> None:
    ids, key, org = logged
    origin = client.get_log(org).raw["origin"]
    trust = TrustStore(tmp_path / "trust.json")
    # A split view: another tree of the same size was shown to this client before.
    assert trust.compare_and_set(origin, None, _sign(server, origin, 10, b"\x11" * 32))
    with pytest.raises(ConsistencyError) as fork:
        client.verify_event(ids[0], verifier_key=key)
    assert fork.value.item == "checkpoint" and "fork" in fork.value.message
    # A rollback: the client saw a larger tree than the server now shows.
    assert trust.compare_and_set(origin, trust.get(origin), _sign(server, origin, 50, b"\x22" * 32))
    with pytest.raises(ConsistencyError, match="rollback"):
        client.verify_event(ids[0], verifier_key=key)
    # A smaller tree that is not a prefix of the remembered one.
    client.log_sync(action="doc.read", actor={"id": "a"}, organization_id=org)
    assert trust.compare_and_set(origin, trust.get(origin), _sign(server, origin, 5, b"\x33" * 32))
    with pytest.raises(ConsistencyError, match="fork"):
        client.verify_event(ids[0], verifier_key=key)


def test_an_edited_trust_store_is_refused(client: Client, logged: Logged, tmp_path: Path) -> None:
    ids, key, _org = logged
    client.verify_event(ids[0], verifier_key=key)
    path = tmp_path / "trust.json"
    path.write_text(path.read_text().replace("\\n10\\n", "\\n9\\n"))
    with pytest.raises(ConsistencyError) as refused:
        client.verify_event(ids[0], verifier_key=key)
    assert refused.value.item == "trust store"
