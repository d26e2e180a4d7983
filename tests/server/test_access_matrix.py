"""The access matrix (ARCHITECTURE §8): every route × every kind of key × own/other project ×
bound/other organization answers the status §8's rule gives, and no answer ever carries
another tenant's data.

Theory of operation
-------------------
The expected statuses come from two hand-written tables below, never from the code under
test: ``ACCESS`` (README's "native API" table: which scope each route needs, and its success
status) and :func:`rule` (§8, in order):

1. a route that needs no key answers its success status to anyone (one that names a
   resource by a credential in its URL, an export's download link, answers 404 when it
   does not exist);
2. a missing, malformed, unknown or revoked key answers 401;
3. a key lacking every scope the route accepts answers 403 (``admin`` implies every scope);
4. a resource of another project, of an organization the key is not bound to, or that does
   not exist answers 404, with the same body (existence is never revealed);
5. otherwise the route's success status.

The world, built once per driver: project ``default`` ("own", the server's bootstrap
project) with organizations acme and globex, and project ``other`` with acme, globex and
initech (an organization only ``other`` has, to name another project's log by its
organization). Each log holds a sync-ingested event and an async one (with its receipt).
Keys of the own project: each scope alone, unbound and bound to acme, plus no key, a
malformed one, a well-formed unknown one and a revoked admin key.

Every cell is one request. Besides the status, each 2xx body is searched for every id
(event, receipt, log, key) the key must not see: the other project's, and for a bound key
the other organization's; writes and revocations are checked in the database afterwards
(stored/revoked exactly when the answer was 2xx, always in the own project); and the
other project's logs, sizes, keys and usage are compared with a snapshot taken before any
cell ran.

Departures found by this matrix (and fixed): a key bound to one organization creating a
key for another got 403 instead of 404; the proof route told "log not found" from "event
not found", revealing which ids exist in other organizations.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from tests.dbfixtures import DRIVERS, new_pg_database
from tests.server.conftest import start_server
from trailseal.apikeys import new_key
from trailseal.runtime import now_text, open_store
from trailseal.server.app import create_app
from trailseal.settings import Settings
from trailseal.store.base import ApiKeyRow, ProjectRow, Store

OWN = "default"
OTHER = "other"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()

# -- the hand-written tables (README "native API", ARCHITECTURE §8) ----------------------------

SCOPES = ("events:write", "events:read", "verify", "export", "admin")
ANY_KEY: tuple[str, ...] = ()  # any valid key, whatever its scopes
PUBLIC = None  # no key needed


@dataclass(frozen=True)
class Access:
    scopes: tuple[str, ...] | None  # any one of these; ANY_KEY; PUBLIC
    success: int


READ_OR_VERIFY = ("events:read", "verify")

ACCESS: dict[tuple[str, str], Access] = {
    ("POST", "/v1/events"): Access(("events:write",), 202),
    ("POST", "/v1/events/batch"): Access(("events:write",), 202),
    ("GET", "/v1/receipts/{receipt_id}"): Access(("events:write", "events:read"), 200),
    ("GET", "/v1/events"): Access(("events:read",), 200),
    ("GET", "/v1/events/{event_id}"): Access(("events:read",), 200),
    ("GET", "/v1/stream/events"): Access(("events:read",), 200),
    ("GET", "/v1/events/{event_id}/proof"): Access(READ_OR_VERIFY, 200),
    ("GET", "/v1/logs"): Access(READ_OR_VERIFY, 200),
    ("GET", "/v1/logs/{organization_id}"): Access(READ_OR_VERIFY, 200),
    ("GET", "/v1/logs/{organization_id}/checkpoint"): Access(READ_OR_VERIFY, 200),
    ("GET", "/v1/logs/{organization_id}/consistency"): Access(READ_OR_VERIFY, 200),
    ("GET", "/v1/tlog/{log_id}/checkpoint"): Access(READ_OR_VERIFY, 200),
    ("GET", "/v1/tlog/{log_id}/tile/{path:path}"): Access(READ_OR_VERIFY, 200),
    ("POST", "/v1/verify"): Access(("verify",), 200),
    ("GET", "/v1/usage"): Access(ANY_KEY, 200),
    ("POST", "/v1/keys"): Access(("admin",), 201),
    ("GET", "/v1/keys"): Access(("admin",), 200),
    ("DELETE", "/v1/keys/{key_id}"): Access(("admin",), 200),
    ("GET", "/v1/exports/events.{fmt}"): Access(("export",), 200),
    ("POST", "/v1/exports"): Access(("export",), 202),
    ("GET", "/v1/exports/{job_id}"): Access(("export",), 200),
    # The download link is the credential (no key); an unknown link is 404.
    ("GET", "/v1/exports/download/{token}"): Access(PUBLIC, 200),
    ("GET", "/healthz"): Access(PUBLIC, 200),
    ("GET", "/metrics"): Access(PUBLIC, 200),
    ("GET", "/openapi.json"): Access(PUBLIC, 200),
    ("GET", "/docs"): Access(PUBLIC, 200),
}


@dataclass(frozen=True)
class KeyKind:
    name: str
    valid: bool
    scopes: tuple[str, ...] = ()
    organization: str | None = None


KEY_KINDS: tuple[KeyKind, ...] = (
    KeyKind("no key", valid=False),
    KeyKind("malformed key", valid=False),
    KeyKind("unknown key", valid=False),
    KeyKind("revoked admin key", valid=False),
    *(KeyKind(scope, True, (scope,)) for scope in SCOPES),
    *(KeyKind(f"{scope}@acme", True, (scope,), "acme") for scope in SCOPES),
)


@dataclass(frozen=True)
class Resource:
    """What a cell addresses: a project (None: a resource that does not exist) and an
    organization."""

    name: str
    project: str | None
    organization: str | None


OWN_ACME = Resource("own/acme", OWN, "acme")
OWN_GLOBEX = Resource("own/globex", OWN, "globex")
OTHER_PROJECT = Resource("other project", OTHER, "acme")  # by name: initech (see module doc)
MISSING = Resource("missing", None, None)
ADDRESSED = (OWN_ACME, OWN_GLOBEX, OTHER_PROJECT, MISSING)


def rule(access: Access, key: KeyKind, resource: Resource | None) -> int:
    """§8, written out: the status a cell must answer."""
    if access.scopes is PUBLIC:
        return 404 if resource is MISSING else access.success
    if not key.valid:
        return 401
    if access.scopes and "admin" not in key.scopes and not set(access.scopes) & set(key.scopes):
        return 403
    if resource is not None:
        if resource.project != OWN:
            return 404
        if key.organization is not None and resource.organization != key.organization:
            return 404
    return access.success


# -- the world -------------------------------------------------------------------------------


@dataclass
class Tenant:
    project: str
    admin: str
    events: dict[str, str] = field(default_factory=dict)  # organization -> event id
    receipts: dict[str, str] = field(default_factory=dict)  # organization -> receipt id
    logs: dict[str, str] = field(default_factory=dict)  # organization -> log id
    jobs: dict[str, str] = field(default_factory=dict)  # organization -> export job id
    tokens: dict[str, str] = field(default_factory=dict)  # organization -> download token

    def ids(self, organization: str | None = None) -> list[str]:
        """Every id this tenant holds (of one organization, if given)."""
        wanted = [o for o in self.logs if organization in (None, o)]
        kinds = (self.events, self.receipts, self.logs, self.jobs)
        return [d[o] for o in wanted for d in kinds if o in d]


@dataclass
class World:
    driver: str
    url: str
    store: Store
    http: httpx.Client
    own: Tenant
    other: Tenant
    secrets: dict[str, str | None]  # key kind -> the Authorization header value
    other_snapshot: dict[str, Any]
    other_targets: list[str] = field(default_factory=list)  # the other project's keys to revoke
    counter: Iterator[int] = field(default_factory=itertools.count)

    def headers(self, kind: KeyKind) -> dict[str, str]:
        value = self.secrets[kind.name]
        return {} if value is None else {"Authorization": value}

    def admin_get(self, tenant: Tenant, path: str) -> httpx.Response:
        return self.http.get(path, headers={"Authorization": f"Bearer {tenant.admin}"})

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self.driver}-{next(self.counter)}-{secrets.token_hex(4)}"

    def add_key(
        self, project: str, scopes: tuple[str, ...], organization: str | None
    ) -> tuple[str, str]:
        """A key created directly in the database (not through the API under test):
        (secret, key id)."""
        key = new_key()
        self.store.create_api_key(
            ApiKeyRow(
                key.key_id, project, key.key_hash, scopes, organization, "matrix", False, now_text()
            )
        )
        return key.secret, key.key_id

    def forbidden_ids(self, kind: KeyKind) -> list[str]:
        """Ids that must never appear in a 2xx answer to a key of this kind."""
        ids = self.other.ids() + [k.key_id for k in self.store.list_api_keys(OTHER)]
        if kind.organization is not None:
            ids += [i for o in self.own.logs if o != kind.organization for i in self.own.ids(o)]
        return ids

    def snapshot(self, project: str) -> dict[str, Any]:
        return {
            "logs": sorted(
                (log.organization, log.log_id, log.size) for log in self.store.list_logs(project)
            ),
            "keys": sorted((k.key_id, k.revoked_at) for k in self.store.list_api_keys(project)),
            "usage": self.store.usage(project, now_text()[:7]),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _event(event_id: str, organization: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "action": "matrix.setup",
        "actor": {"id": "alice"},
        "organization_id": organization,
    }


def _populate(http: httpx.Client, tenant: Tenant, organizations: tuple[str, ...], tag: str) -> None:
    headers = {"Authorization": f"Bearer {tenant.admin}"}
    for organization in organizations:
        event_id = f"setup-{tag}-{tenant.project}-{organization}-{secrets.token_hex(6)}"
        answer = http.post(
            "/v1/events?sync=true", json=_event(event_id, organization), headers=headers
        )
        assert answer.status_code == 201, answer.text
        tenant.events[organization] = event_id
        tenant.logs[organization] = answer.json()["log_id"]
        answer = http.post(
            "/v1/events", json=_event(event_id + "-async", organization), headers=headers
        )
        assert answer.status_code == 202, answer.text
        tenant.receipts[organization] = answer.json()["receipt_id"]


def _export_job(http: httpx.Client, tenant: Tenant, secret: str, organization: str) -> None:
    """A finished export job of one organization, created by ``secret``'s key."""
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"format": "ndjson", "organization_id": organization}
    answer = http.post("/v1/exports", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    deadline = time.monotonic() + 30
    while job["status"] != "done":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.02)
        job = http.get(f"/v1/exports/{job['job_id']}", headers=headers).json()
    tenant.jobs[organization] = job["job_id"]
    tenant.tokens[organization] = job["download_url"].rsplit("/", 1)[1]


@pytest.fixture(scope="module", params=DRIVERS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    driver = str(request.param)
    database_url = (
        new_pg_database(request.getfixturevalue("pg_server")) if driver == "postgres" else None
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TRAILSEAL_MASTER_KEY", MASTER_KEY)
        settings = Settings(
            port=_free_port(),
            data_dir=tmp_path_factory.mktemp(f"matrix-{driver}") / "data",
            host_name="test.local",
            database_url=database_url,
        )
        uv, thread, admin = start_server(settings)
        store = open_store(settings)
        http = httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=30)
        try:
            store.create_project(ProjectRow(OTHER, now_text()))
            other_admin = new_key()
            store.create_api_key(
                ApiKeyRow(
                    other_admin.key_id,
                    OTHER,
                    other_admin.key_hash,
                    ("admin",),
                    None,
                    "admin",
                    False,
                    now_text(),
                )
            )
            own, other = Tenant(OWN, admin), Tenant(OTHER, other_admin.secret)
            _populate(http, own, ("acme", "globex"), driver)
            _populate(http, other, ("acme", "globex", "initech"), driver)
            world = World(driver, str(http.base_url), store, http, own, other, {}, {})
            for organization in ("acme", "globex"):  # jobs owned by bound keys
                secret, _ = world.add_key(OWN, ("export",), organization)
                _export_job(http, own, secret, organization)
            _export_job(http, other, other.admin, "acme")
            world.secrets = {
                "no key": None,
                "malformed key": "Bearer not-a-trailseal-key",
                "unknown key": "Bearer tsk_live_" + "A" * 40,
            }
            revoked, revoked_id = world.add_key(OWN, ("admin",), None)
            assert store.revoke_api_key(OWN, revoked_id, now_text())
            world.secrets["revoked admin key"] = f"Bearer {revoked}"
            for kind in KEY_KINDS:
                if kind.valid:
                    secret, _ = world.add_key(OWN, kind.scopes, kind.organization)
                    world.secrets[kind.name] = f"Bearer {secret}"
            # Revocation targets in the other project exist before the snapshot, which
            # must then never change.
            world.other_targets = [
                world.add_key(OTHER, ("events:read",), "acme")[1] for _ in KEY_KINDS
            ]
            world.other_snapshot = world.snapshot(OTHER)
            yield world
        finally:
            http.close()
            store.close()
            uv.should_exit = True
            thread.join(timeout=15)


# -- the cells -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    identifier: str | None = None  # the id the request names (blanked when comparing 404s)
    marker: str | None = None  # a string a 2xx answer must contain (it answers about this)


@dataclass(frozen=True)
class Case:
    name: str
    route: tuple[str, str]  # a key of ACCESS
    resources: tuple[Resource | None, ...]
    build: Callable[[World, Resource | None], Call]


def _tenant(world: World, resource: Resource) -> Tenant:
    return world.own if resource.project == OWN else world.other


def _event_id(world: World, resource: Resource | None) -> str:
    assert resource is not None
    if resource.project is None:
        return "no-such-event-" + secrets.token_hex(8)
    assert resource.organization is not None
    return _tenant(world, resource).events[resource.organization]


def _receipt_id(world: World, resource: Resource | None) -> str:
    assert resource is not None
    if resource.project is None:
        return "rcpt_" + secrets.token_hex(16)
    assert resource.organization is not None
    return _tenant(world, resource).receipts[resource.organization]


def _organization(resource: Resource | None) -> str:
    """An organization name: the other project's is one the own project does not have."""
    assert resource is not None
    if resource.project is None:
        return "no-such-organization"
    if resource.project == OTHER:
        return "initech"
    assert resource.organization is not None
    return resource.organization


def _log_id(world: World, resource: Resource | None) -> str:
    assert resource is not None
    if resource.project is None:
        return "a" * 26
    assert resource.organization is not None
    return _tenant(world, resource).logs[resource.organization]


def _own_log_marker(world: World, resource: Resource | None) -> str | None:
    if resource is None or resource.project != OWN or resource.organization is None:
        return None
    return world.own.logs[resource.organization]


def _write(world: World, resource: Resource | None, *, batch: bool) -> Call:
    assert resource is not None and resource.organization is not None
    event = {
        "id": world.unique("mx"),
        "action": "matrix.write",
        "actor": {"id": "mallory"},
        "organization_id": resource.organization,
    }
    if batch:
        return Call("POST", "/v1/events/batch", {"events": [event]}, marker=event["id"])
    return Call("POST", "/v1/events", event, marker=event["id"])


def _tlog(suffix: str, *, names_log: bool = True) -> Callable[[World, Resource | None], Call]:
    """``names_log``: the answer carries the origin (and so the log id); a hash tile does not."""

    def build(world: World, resource: Resource | None) -> Call:
        log_id = _log_id(world, resource)
        marker = _own_log_marker(world, resource) if names_log else None
        return Call("GET", f"/v1/tlog/{log_id}/{suffix}", identifier=log_id, marker=marker)

    return build


def _by_organization(suffix: str) -> Callable[[World, Resource | None], Call]:
    def build(world: World, resource: Resource | None) -> Call:
        organization = _organization(resource)
        return Call(
            "GET",
            f"/v1/logs/{organization}{suffix}",
            identifier=organization,
            marker=_own_log_marker(world, resource),
        )

    return build


def _list_events(world: World, resource: Resource | None) -> Call:
    """The whole project's events, or one organization's (a filter, not a resource: an
    organization without events lists nothing, so only a bound key's 404 is in the matrix)."""
    if resource is None:
        return Call("GET", "/v1/events?limit=200")
    organization = _organization(resource)
    marker = world.own.events[organization]
    return Call("GET", f"/v1/events?limit=200&organization_id={organization}", marker=marker)


def _live_stream(world: World, resource: Resource | None) -> Call:
    """The live stream's catch-up (a plain client does not ask for text/event-stream, so
    the answer ends): from the first position, like the listing, a filter not a resource."""
    if resource is None:
        return Call("GET", "/v1/stream/events?after=0")
    organization = _organization(resource)
    marker = world.own.events[organization]
    return Call("GET", f"/v1/stream/events?after=0&organization_id={organization}", marker=marker)


def _export_stream(world: World, resource: Resource | None) -> Call:
    """Like the listing: the project's events, or one organization's (a filter)."""
    if resource is None:
        return Call("GET", "/v1/exports/events.ndjson")
    organization = _organization(resource)
    marker = world.own.events[organization]
    return Call("GET", f"/v1/exports/events.ndjson?organization_id={organization}", marker=marker)


def _export_job_call(world: World, resource: Resource | None) -> Call:
    body = {"format": "ndjson"}
    if resource is not None:
        body["organization_id"] = _organization(resource)
    return Call("POST", "/v1/exports", body, marker='"job_id"')


def _job_status(world: World, resource: Resource | None) -> Call:
    assert resource is not None
    if resource.project is None:
        job_id = "exp_" + "a" * 26
    else:
        assert resource.organization is not None
        job_id = _tenant(world, resource).jobs[resource.organization]
    return Call("GET", f"/v1/exports/{job_id}", identifier=job_id, marker=job_id)


def _download(world: World, resource: Resource | None) -> Call:
    """A finished job's link: the link alone is the credential, whoever follows it."""
    assert resource is not None
    if resource.project is None:
        token = "exp_" + "a" * 26 + "." + "A" * 43
        return Call("GET", f"/v1/exports/download/{token}", identifier=token)
    assert resource.organization is not None
    token = world.own.tokens[resource.organization]
    return Call("GET", f"/v1/exports/download/{token}", marker=world.own.events["acme"])


def _create_key(world: World, resource: Resource | None) -> Call:
    assert resource is not None
    body = {
        "name": world.unique("matrix"),
        "scopes": ["events:read"],
        "organization_id": resource.organization,
    }
    return Call("POST", "/v1/keys", body, marker=body["name"])


def _revoke_key(world: World, resource: Resource | None) -> Call:
    """A fresh target key per cell (revoking consumes it)."""
    assert resource is not None
    if resource.project is None:
        key_id = "key_" + secrets.token_hex(6)
    elif resource.project == OTHER:
        key_id = world.other_targets.pop()
    else:
        _, key_id = world.add_key(resource.project, ("events:read",), resource.organization)
    return Call("DELETE", f"/v1/keys/{key_id}", identifier=key_id, marker=key_id)


CASES: tuple[Case, ...] = (
    Case(
        "POST /v1/events",
        ("POST", "/v1/events"),
        (OWN_ACME, OWN_GLOBEX),
        lambda w, r: _write(w, r, batch=False),
    ),
    Case(
        "POST /v1/events/batch",
        ("POST", "/v1/events/batch"),
        (OWN_ACME, OWN_GLOBEX),
        lambda w, r: _write(w, r, batch=True),
    ),
    Case("GET /v1/events", ("GET", "/v1/events"), (None, OWN_ACME, OWN_GLOBEX), _list_events),
    Case(
        "GET /v1/stream/events",
        ("GET", "/v1/stream/events"),
        (None, OWN_ACME, OWN_GLOBEX),
        _live_stream,
    ),
    Case(
        "POST /v1/verify",
        ("POST", "/v1/verify"),
        ADDRESSED,
        lambda w, r: Call(
            "POST",
            "/v1/verify",
            {"organization_id": (o := _organization(r))},
            identifier=o,
            marker='"ok":true',
        ),
    ),
    Case(
        "GET /v1/receipts/{id}",
        ("GET", "/v1/receipts/{receipt_id}"),
        ADDRESSED,
        lambda w, r: Call(
            "GET", f"/v1/receipts/{(i := _receipt_id(w, r))}", identifier=i, marker=i
        ),
    ),
    Case(
        "GET /v1/events/{id}",
        ("GET", "/v1/events/{event_id}"),
        ADDRESSED,
        lambda w, r: Call("GET", f"/v1/events/{(i := _event_id(w, r))}", identifier=i, marker=i),
    ),
    Case(
        "GET /v1/events/{id}/proof",
        ("GET", "/v1/events/{event_id}/proof"),
        ADDRESSED,
        lambda w, r: Call(
            "GET", f"/v1/events/{(i := _event_id(w, r))}/proof", identifier=i, marker=i
        ),
    ),
    Case("GET /v1/logs", ("GET", "/v1/logs"), (None,), lambda w, r: Call("GET", "/v1/logs")),
    Case(
        "GET /v1/logs/{org}", ("GET", "/v1/logs/{organization_id}"), ADDRESSED, _by_organization("")
    ),
    Case(
        "GET /v1/logs/{org}/checkpoint",
        ("GET", "/v1/logs/{organization_id}/checkpoint"),
        ADDRESSED,
        _by_organization("/checkpoint"),
    ),
    Case(
        "GET /v1/logs/{org}/consistency",
        ("GET", "/v1/logs/{organization_id}/consistency"),
        ADDRESSED,
        _by_organization("/consistency?first=1&second=2"),
    ),
    Case(
        "GET /v1/tlog/{log_id}/checkpoint",
        ("GET", "/v1/tlog/{log_id}/checkpoint"),
        ADDRESSED,
        _tlog("checkpoint"),
    ),
    # Partial tiles: every log here has fewer than 256 entries, so the full tile 0/000 does
    # not exist yet and would answer 404 whoever asks; width 2 exists from size 2 on.
    Case(
        "GET /v1/tlog/{log_id}/tile/0/000.p/2",
        ("GET", "/v1/tlog/{log_id}/tile/{path:path}"),
        ADDRESSED,
        _tlog("tile/0/000.p/2", names_log=False),
    ),
    Case(
        "GET /v1/tlog/{log_id}/tile/entries/000.p/2",
        ("GET", "/v1/tlog/{log_id}/tile/{path:path}"),
        ADDRESSED,
        _tlog("tile/entries/000.p/2"),
    ),
    Case(
        "GET /v1/usage",
        ("GET", "/v1/usage"),
        (None,),
        lambda w, r: Call("GET", "/v1/usage", marker=f'"{OWN}"'),
    ),
    Case("POST /v1/keys", ("POST", "/v1/keys"), (OWN_ACME, OWN_GLOBEX), _create_key),
    Case("GET /v1/keys", ("GET", "/v1/keys"), (None,), lambda w, r: Call("GET", "/v1/keys")),
    Case("DELETE /v1/keys/{key_id}", ("DELETE", "/v1/keys/{key_id}"), ADDRESSED, _revoke_key),
    Case(
        "GET /v1/exports/events.ndjson",
        ("GET", "/v1/exports/events.{fmt}"),
        (None, OWN_ACME, OWN_GLOBEX),
        _export_stream,
    ),
    Case(
        "POST /v1/exports", ("POST", "/v1/exports"), (None, OWN_ACME, OWN_GLOBEX), _export_job_call
    ),
    Case(
        "GET /v1/exports/{job_id}",
        ("GET", "/v1/exports/{job_id}"),
        (OWN_ACME, OWN_GLOBEX, OTHER_PROJECT, MISSING),
        _job_status,
    ),
    Case(
        "GET /v1/exports/download/{token}",
        ("GET", "/v1/exports/download/{token}"),
        (OWN_ACME, MISSING),
        _download,
    ),
    *(
        Case(f"{method} {path}", (method, path), (None,), lambda w, r, p=path: Call("GET", p))
        for (method, path), access in ACCESS.items()
        if access.scopes is PUBLIC and "{" not in path
    ),
)

# -- running cells ---------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    key: KeyKind
    resource: Resource | None
    call: Call
    expected: int
    answer: httpx.Response

    @property
    def label(self) -> str:
        where = self.resource.name if self.resource else "-"
        return f"[{self.case.name} | key={self.key.name} | resource={where}]"


def _run(world: World, case: Case, key: KeyKind, resource: Resource | None) -> Outcome:
    call = case.build(world, resource)
    answer = world.http.request(call.method, call.url, json=call.json, headers=world.headers(key))
    return Outcome(case, key, resource, call, rule(ACCESS[case.route], key, resource), answer)


def _problems(world: World, outcome: Outcome, missing: Outcome | None) -> list[str]:
    """Everything wrong with one cell's answer: its status; for a 2xx what it shows; for a
    404, whether it differs from the answer about a ``missing`` resource of the same route
    to the same key (existence is never revealed)."""
    answer, label = outcome.answer, outcome.label
    if answer.status_code != outcome.expected:
        return [
            f"{label} expected {outcome.expected}, got {answer.status_code}: {answer.text[:200]}"
        ]
    problems = []
    public = ACCESS[outcome.case.route].scopes is PUBLIC
    if 200 <= answer.status_code < 300 and (not public or outcome.resource is not None):
        body = answer.content
        leaked = [i for i in world.forbidden_ids(outcome.key) if i.encode() in body]
        if leaked:
            problems.append(f"{label} 2xx answer carries ids it must not show: {leaked}")
        marker = outcome.call.marker
        if marker is not None and marker.encode() not in body:
            problems.append(f"{label} 2xx answer does not mention {marker!r}: {answer.text[:200]}")
    if (
        answer.status_code == 401
        and "bearer" not in answer.headers.get("www-authenticate", "").lower()
    ):
        problems.append(f"{label} 401 without a `WWW-Authenticate: Bearer` challenge")
    if (
        answer.status_code == 404
        and missing is not None
        and missing is not outcome
        and missing.answer.status_code == 404
        and _error_shape(outcome) != _error_shape(missing)
    ):
        problems.append(
            f"{label} 404 differs from a missing resource's, so it reveals existence: "
            f"{_error_shape(outcome)} vs {_error_shape(missing)}"
        )
    return problems + _check_listing(world, outcome)


def _error_shape(outcome: Outcome) -> Any:
    """A 404 body with the requested id blanked out: what must not depend on existence."""
    text = outcome.answer.text
    if outcome.call.identifier:
        text = text.replace(outcome.call.identifier, "<id>")
    return outcome.answer.status_code, text


def _check_writes(world: World, outcomes: list[Outcome]) -> list[str]:
    """A write is stored exactly when it was acknowledged, in the own project and the
    organization it named; never in the other project."""
    problems = []
    for outcome in outcomes:
        event = (
            outcome.call.json["events"][0] if "events" in outcome.call.json else outcome.call.json
        )
        stored = world.store.get_entry_by_id(OWN, event["id"])
        acknowledged = 200 <= outcome.answer.status_code < 300
        if acknowledged != (stored is not None):
            status = outcome.answer.status_code
            problems.append(f"{outcome.label} answered {status} but stored={stored is not None}")
        if stored is not None:
            log = world.store.get_log(OWN, stored.log_id)
            if log is None or log.organization != event["organization_id"]:
                problems.append(
                    f"{outcome.label} stored in organization {log and log.organization}"
                )
        if world.store.get_entry_by_id(OTHER, event["id"]) is not None:
            problems.append(f"{outcome.label} the event appeared in the other project")
    return problems


def _check_key_changes(world: World, outcomes: list[Outcome]) -> list[str]:
    problems = []
    own_keys = {k.key_id: k for k in world.store.list_api_keys(OWN)}
    other_keys = {k.key_id: k for k in world.store.list_api_keys(OTHER)}
    for outcome in outcomes:
        ok = 200 <= outcome.answer.status_code < 300
        if outcome.call.method == "DELETE":
            key_id = outcome.call.url.rsplit("/", 1)[1]
            target = own_keys.get(key_id) or other_keys.get(key_id)
            revoked = target is not None and target.revoked_at is not None
            if ok != revoked:
                problems.append(
                    f"{outcome.label} answered {outcome.answer.status_code} but revoked={revoked}"
                )
        elif ok:
            key_id = outcome.answer.json()["key_id"]
            created = own_keys.get(key_id)
            if created is None or key_id in other_keys:
                problems.append(f"{outcome.label} the created key is not (only) in the own project")
            elif (
                outcome.key.organization is not None
                and created.organization != outcome.key.organization
            ):
                problems.append(
                    f"{outcome.label} a bound key created a key bound to {created.organization}"
                )
    return problems


def _check_listing(world: World, outcome: Outcome) -> list[str]:
    """Listings show exactly what the key may see."""
    listing = (("GET", "/v1/logs"), ("GET", "/v1/keys"))
    if outcome.answer.status_code != 200 or outcome.case.route not in listing:
        return []
    body, kind = outcome.answer.json(), outcome.key
    if outcome.case.route == ("GET", "/v1/logs"):
        shown = {(item["organization_id"], item["log_id"]) for item in body["logs"]}
        visible = {
            (log.organization, log.log_id)
            for log in world.store.list_logs(OWN)
            if kind.organization in (None, log.organization)
        }
        if shown != visible:
            return [f"{outcome.label} listed {sorted(shown)}, expected {sorted(visible)}"]
    if outcome.case.route == ("GET", "/v1/keys"):
        shown_keys = {item["key_id"]: item["organization_id"] for item in body["keys"]}
        own = {k.key_id: k.organization for k in world.store.list_api_keys(OWN)}
        wrong = {
            k: o
            for k, o in shown_keys.items()
            if k not in own or kind.organization not in (None, o)
        }
        if wrong:
            return [f"{outcome.label} listed keys it must not: {wrong}"]
    return []


def _check_other_untouched(world: World) -> list[str]:
    now = world.snapshot(OTHER)
    if now != world.other_snapshot:
        return [f"the other project changed: {world.other_snapshot} -> {now}"]
    return []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_access_matrix(world: World, case: Case) -> None:
    outcomes = [
        _run(world, case, key, resource) for key in KEY_KINDS for resource in case.resources
    ]
    missing = {o.key.name: o for o in outcomes if o.resource is MISSING}
    problems = [
        p for outcome in outcomes for p in _problems(world, outcome, missing.get(outcome.key.name))
    ]
    if case.route[0] == "POST" and case.route[1].startswith("/v1/events"):
        problems += _check_writes(world, outcomes)
    if case.route[1].startswith("/v1/keys") and case.route[0] != "GET":
        problems += _check_key_changes(world, outcomes)
    problems += _check_other_untouched(world)
    assert not problems, f"{len(problems)} of {len(outcomes)} cells wrong:\n" + "\n".join(problems)


# -- dedicated cross-tenant checks -----------------------------------------------------------


def test_bound_key_batch_into_another_organization_stores_nothing(world: World) -> None:
    """All or nothing: one event for another organization makes the whole batch 404."""
    writer = next(k for k in KEY_KINDS if k.name == "events:write@acme")
    events = [
        {"id": world.unique("mixed"), "action": "a.b", "actor": {"id": "x"}, "organization_id": org}
        for org in ("acme", "globex")
    ]
    answer = world.http.post(
        "/v1/events/batch?sync=true", json={"events": events}, headers=world.headers(writer)
    )
    assert answer.status_code == 404, answer.text
    for event in events:
        assert world.admin_get(world.own, f"/v1/events/{event['id']}").status_code == 404
        assert world.store.get_entry_by_id(OWN, event["id"]) is None


def test_another_projects_ids_and_names_are_not_reachable(world: World) -> None:
    """A key of the own project writing with the other project's event id and
    organization name gets its own, new event: no 409 that would reveal the other
    project's id, and nothing changes in the other project."""
    before = world.snapshot(OTHER)
    taken = world.other.events["initech"]
    original = world.admin_get(world.other, f"/v1/events/{taken}").json()
    event = {"id": taken, "action": "x.y", "actor": {"id": "mallory"}, "organization_id": "initech"}
    answer = world.http.post(
        "/v1/events?sync=true", json=event, headers={"Authorization": f"Bearer {world.own.admin}"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["log_id"] != world.other.logs["initech"]
    assert world.admin_get(world.other, f"/v1/events/{taken}").json() == original
    assert world.snapshot(OTHER) == before
    mine = world.admin_get(world.own, f"/v1/events/{taken}").json()
    assert mine["event"]["actor"]["id"] == "mallory" and mine["log_id"] == answer.json()["log_id"]


def test_every_v1_route_has_an_access_rule(tmp_path: Path) -> None:
    """A new route without a row in ACCESS fails here; so does a row for a route that is
    gone."""
    app = create_app(Settings(data_dir=tmp_path))
    routes = _flat_routes(app.routes)
    served = {
        (method, path)
        for path, methods in routes
        if path.startswith("/v1")
        for method in methods - {"HEAD"}
    }
    assert served, "no /v1 routes found"
    ruled = {(m, p) for (m, p), a in ACCESS.items() if p.startswith("/v1")}
    assert served - ruled == set(), "routes without an access rule in ACCESS"
    assert ruled - served == set(), "ACCESS rows for routes the app does not serve"
    # The OpenAPI document, a second, public description of the same routes.
    described = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    }
    assert described == {(m, p.replace(":path}", "}")) for m, p in ruled}
    public = {p for (_, p), a in ACCESS.items() if a.scopes is PUBLIC}
    assert public <= {path for path, _ in routes}
    assert {c.route for c in CASES} == set(ACCESS), "every ACCESS row needs a case"


def _flat_routes(routes: list[BaseRoute]) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route, through included routers. FastAPI ≥ 0.165 keeps an
    included router as one entry that ``iter_route_contexts`` expands; older versions
    copy its APIRoutes into ``app.routes``."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        flat: list[Any] = list(routes)
    else:
        flat = list(iter_route_contexts(routes))
    found = [(r.path, set(r.methods or ())) for r in flat if getattr(r, "path", None)]
    assert len(found) >= len([r for r in routes if isinstance(r, APIRoute)])
    return found
