"""The access matrix (ARCHITECTURE §8): every route × every kind of key × own/other project ×
bound/other organization answers the status §8's rule gives, and no answer ever carries
another tenant's data.

Theory of operation
-------------------
The expected statuses come from two hand-written tables below, never from the code under
test: ``ACCESS`` (README's "native API" table: which scope each route needs, and its success
status) and :func:`rule` (§8, in order):

1. a route that needs no key answers its success status to anyone, unless it names
   something that does not exist (404): the export download link is the credential, so a
   genuine link works whoever follows it, and a forged, guessed or expired one is 404;
2. a missing, malformed, unknown or revoked key answers 401;
3. a key lacking every scope the route accepts answers 403 (``admin`` implies every scope);
4. a resource of another project, of an organization the key is not bound to, or that does
   not exist answers 404, with the same body (existence is never revealed); an export job
   belongs to the organization its creating key is bound to (none: only the project's
   unbound keys see it). One written exception: the Auditledge façade answers a bound key
   that *names* another organization (a body's or a filter's ``organization_id``) with
   403, as its vendor contract requires (shared/compat/auditledge.md §4.1, §4.2, §5);
   naming one its project does not even have answers the same 403, so nothing is
   revealed either way. The Fact0 façade (shared/compat/fact0.md §1) gives every key one
   log, its "tenant": the organization it is bound to, else ``default``; so for it an
   unbound key is treated as bound to ``default``;
5. otherwise the route's success status.

The world, built once per driver: project ``default`` ("own", the server's bootstrap
project) with organizations acme, globex and default, and project ``other`` with the same
three and initech (an organization only ``other`` has, to name another project's log by its
organization). Each log holds a sync-ingested event and an async one (with its receipt).
Finished export jobs: in the own project one by an unbound key, one by a key bound to acme
and one by a key bound to globex, plus an unbound key's whose link has expired; in the
other project one by a key bound to acme. Keys of the own project: each scope alone,
unbound and bound to acme, plus no key, a malformed one, a well-formed unknown one and a
revoked admin key.

Every cell is one request. Besides the status, each 2xx body is searched for every id
(event, receipt, log, key) the key must not see: the other project's, and for a bound key
the other organization's; writes and revocations are checked in the database afterwards
(stored/revoked exactly when the answer was 2xx, always in the own project); and the
other project's logs, sizes, keys, usage and export jobs are compared with a snapshot
taken before any cell ran. Export jobs a cell starts are checked once finished: created
exactly when the answer was 202, in the own project, owned by the key's organization, and
their download carries nothing the key may not see. Dedicated tests compare whole exports
(streamed, jobs, the Auditledge façade's) and the Fact0 façade's listings and evidence
packs with what the database says the key may see. Endless answers (Fact0's live stream)
are read up to their first frame.

Cells where the server departs from the rule go in ``KNOWN_BUGS``: the matrix skips them,
and each gets its own strict xfail test asserting the rule, so the bug stays visible and a
fix turns the suite red until the entry is removed.

Departures found by this matrix (and fixed): a key bound to one organization creating a
key for another got 403 instead of 404; the proof route told "log not found" from "event
not found", revealing which ids exist in other organizations. The export routes and both
façades follow the rules cell by cell. Departures pinned as strict xfails (the final
section): event ids are unique per project (§4), so a bound key writing another
organization's id is told 409 where a fresh id is stored, which reveals that id (natively
and through Fact0); and Fact0 acknowledges an event whose id and content another log of
the project holds without storing it in the caller's log (201 with a `null` body). An
event id with a line feed escapes either façade's mount: pinned in test_openapi_fuzz.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import secrets
import socket
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount

from tests.dbfixtures import DRIVERS, new_pg_database
from tests.server.conftest import start_server
from trailseal.apikeys import new_key
from trailseal.runtime import now_text, open_store
from trailseal.server.app import create_app
from trailseal.server.compat.auditledge import PREFIX as FACADE
from trailseal.server.compat.auditledge import create_facade
from trailseal.server.compat.fact0 import PREFIX as FACT0
from trailseal.server.compat.fact0 import create_facade as create_fact0
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
    # A bound key naming another organization: 404 (§8); 403 where a façade's contract says so.
    other_organization: int = 404
    # The key's one log: its organization, else `default` (the Fact0 façade's tenant).
    tenant: bool = False


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
    ("GET", "/v1/exports/download/{token}"): Access(PUBLIC, 200),  # the link is the credential
    ("GET", "/healthz"): Access(PUBLIC, 200),
    ("GET", "/metrics"): Access(PUBLIC, 200),
    ("GET", "/openapi.json"): Access(PUBLIC, 200),
    ("GET", "/docs"): Access(PUBLIC, 200),
    ("GET", "/docs/oauth2-redirect"): Access(PUBLIC, 200),
    ("GET", "/redoc"): Access(PUBLIC, 200),
    # The Auditledge façade (shared/compat/auditledge.md §4, §5; README "Moving from
    # Auditledge"): trailseal keys, sent as the vendor's client sends them (`Bearer`).
    ("POST", f"{FACADE}/events"): Access(("events:write",), 201, other_organization=403),
    ("GET", f"{FACADE}/events"): Access(("events:read",), 200, other_organization=403),
    ("GET", f"{FACADE}/events/export"): Access(("export",), 200, other_organization=403),
    ("GET", f"{FACADE}/events/{{event_id}}"): Access(("events:read",), 200),
    ("GET", f"{FACADE}/usage"): Access(ANY_KEY, 200),
    # The Fact0 façade (shared/compat/fact0.md §3-§8, §10; its module's route table).
    ("POST", f"{FACT0}/v1/events/batch"): Access(("events:write",), 202, tenant=True),
    ("POST", f"{FACT0}/v1/events"): Access(("events:write",), 201, tenant=True),  # ?sync=true
    ("GET", f"{FACT0}/v1/receipts/{{receipt_id}}"): Access(
        ("events:write", "events:read"), 200, tenant=True
    ),
    ("GET", f"{FACT0}/v1/events"): Access(("events:read",), 200, tenant=True),
    ("GET", f"{FACT0}/v1/events/stream"): Access(("events:read",), 200, tenant=True),
    ("GET", f"{FACT0}/v1/events/{{event_id}}"): Access(("events:read",), 200, tenant=True),
    ("GET", f"{FACT0}/v1/events/{{event_id}}/verify"): Access(("verify",), 200, tenant=True),
    ("GET", f"{FACT0}/v1/verify"): Access(("verify",), 200, tenant=True),
    ("GET", f"{FACT0}/v1/export/pdf"): Access(("export",), 200, tenant=True),
    ("GET", f"{FACT0}/v1/export/evidence-pack"): Access(("export",), 200, tenant=True),
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
FILTERED = (None, OWN_ACME, OWN_GLOBEX)  # listings and exports: all, or one organization's
OWN_DEFAULT = Resource("own/default", OWN, "default")
OTHER_DEFAULT = Resource("other project/default", OTHER, "default")
TENANTS = (OWN_DEFAULT, OWN_ACME, OWN_GLOBEX, OTHER_DEFAULT, OTHER_PROJECT, MISSING)
# An export job belongs to the organization of the key that created it; an unbound key's
# job to none (only the project's unbound keys see it).
OWN_UNBOUND = Resource("own/unbound", OWN, None)
# What does not exist (project None): an expired job or link, and links that only look
# like one: a real job id with another real job's secret, another project's real job id
# with a guessed secret, a bare job id.
EXPIRED = Resource("expired", None, None)
SWAPPED_SECRET = Resource("own job + another job's secret", None, None)
GUESSED_SECRET = Resource("other project's job + guessed secret", None, None)
BARE_JOB_ID = Resource("own job id alone", None, None)
JOBS = (OWN_UNBOUND, OWN_ACME, OWN_GLOBEX, OTHER_PROJECT, EXPIRED, MISSING)
LINKS = (OWN_ACME, OTHER_PROJECT, SWAPPED_SECRET, GUESSED_SECRET, BARE_JOB_ID, EXPIRED, MISSING)


def rule(access: Access, key: KeyKind, resource: Resource | None) -> int:
    """§8, written out: the status a cell must answer."""
    if access.scopes is PUBLIC:
        return 404 if resource is not None and resource.project is None else access.success
    if not key.valid:
        return 401
    if access.scopes and "admin" not in key.scopes and not set(access.scopes) & set(key.scopes):
        return 403
    if resource is not None:
        if resource.project != OWN:
            return 404
        sees = key.organization or ("default" if access.tenant else None)
        if sees is not None and resource.organization != sees:
            return access.other_organization
    return access.success


# -- the world -------------------------------------------------------------------------------


@dataclass
class Tenant:
    project: str
    admin: str
    events: dict[str, str] = field(default_factory=dict)  # organization -> event id
    receipts: dict[str, str] = field(default_factory=dict)  # organization -> receipt id
    logs: dict[str, str] = field(default_factory=dict)  # organization -> log id
    # The creating key's organization (None: unbound) -> a finished export job's id, and
    # its download token (`<job id>.<secret>`).
    jobs: dict[str | None, str] = field(default_factory=dict)
    links: dict[str | None, str] = field(default_factory=dict)

    def ids(self, organization: str | None = None) -> list[str]:
        """Every id this tenant holds (of one organization, if given)."""
        wanted = [o for o in self.logs if organization in (None, o)]
        return [d[o] for o in wanted for d in (self.events, self.receipts, self.logs) if o in d]

    def job_ids(self, owner: str | None) -> list[str]:
        """A job's id and its link's secret."""
        return [self.jobs[owner], self.links[owner].partition(".")[2]]


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
    exports_dir: Path = Path()  # where the server keeps export jobs (<data dir>/exports)
    other_targets: list[str] = field(default_factory=list)  # the other project's keys to revoke
    expired: tuple[str, str] = ("", "")  # an own job whose link has expired: (job id, token)
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

    def forbidden_ids(self, kind: KeyKind, *, tenant: bool = False) -> list[str]:
        """Ids that must never appear in a 2xx answer to a key of this kind (``tenant``:
        on a route where an unbound key sees the `default` organization alone)."""
        if tenant and kind.organization is None:
            kind = replace(kind, organization="default")
        ids = self.other.ids() + [k.key_id for k in self.store.list_api_keys(OTHER)]
        ids += [i for owner in self.other.jobs for i in self.other.job_ids(owner)]
        if kind.organization is not None:
            ids += [i for o in self.own.logs if o != kind.organization for i in self.own.ids(o)]
            ids += [
                i
                for owner in self.own.jobs
                if owner != kind.organization
                for i in self.own.job_ids(owner)
            ]
        # Event ids are per project: the own project may hold one of the other's on purpose
        # (test_another_projects_ids_and_names_are_not_reachable), and show it.
        shared = self.store.find_ids(OWN, ids)
        if shared:
            logs = {log.log_id: log.organization for log in self.store.list_logs(OWN)}
            seen = {i for i, r in shared.items() if kind.organization in (None, logs[r.log_id])}
            ids = [i for i in ids if i not in seen]
        return ids

    def visible_events(self, organization: str | None) -> dict[str, tuple[str, str]]:
        """Committed events of the own project a key bound to ``organization`` (None:
        unbound) may see, straight from the database: event id -> (organization, chain
        hash in hex, which tells the entry from another project's of the same id)."""
        found = {}
        for log in self.store.list_logs(OWN):
            if organization in (None, log.organization):
                for entry in self.store.iter_entries(OWN, log.log_id, 0, log.size):
                    found[entry.event_id] = (log.organization, entry.chain_hash.hex())
        return found

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every export job the server keeps, as recorded: job id -> record."""
        return {
            path.name.split(".", 1)[0]: orjson.loads(path.read_bytes())
            for path in self.exports_dir.glob("exp_*.job.json")
        }

    def snapshot(self, project: str) -> dict[str, Any]:
        return {
            "logs": sorted(
                (log.organization, log.log_id, log.size) for log in self.store.list_logs(project)
            ),
            "keys": sorted((k.key_id, k.revoked_at) for k in self.store.list_api_keys(project)),
            "usage": self.store.usage(project, now_text()[:7]),
            "jobs": sorted(
                (job_id, job["status"], job["expires_at"])
                for job_id, job in self.jobs().items()
                if job["project"] == project
            ),
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


def _finished_job(http: httpx.Client, secret: str, body: dict[str, Any]) -> dict[str, Any]:
    """Start an export job with this key and wait for it to finish: its final view."""
    headers = {"Authorization": f"Bearer {secret}"}
    answer = http.post("/v1/exports", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    deadline = time.monotonic() + 60
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
        answer = http.get(f"/v1/exports/{job['job_id']}", headers=headers)
        assert answer.status_code == 200, answer.text
        job = answer.json()
    assert job["status"] == "done", job
    return job


def _add_job(world: World, tenant: Tenant, organization: str | None) -> None:
    """A finished NDJSON export of everything, by a key of ``tenant`` bound to
    ``organization`` (None: unbound)."""
    secret, _ = world.add_key(tenant.project, ("export",), organization)
    job = _finished_job(world.http, secret, {"format": "ndjson"})
    tenant.jobs[organization] = job["job_id"]
    tenant.links[organization] = _token(job)


def _token(job: dict[str, Any]) -> str:
    url: str = job["download_url"]
    assert "/v1/exports/download/" in url, url
    return url.rsplit("/", 1)[1]


def _expire(world: World, job_id: str) -> None:
    """As the clock would: the job's link stopped working a second ago."""
    path = world.exports_dir / f"{job_id}.job.json"
    record = orjson.loads(path.read_bytes())
    assert record["status"] == "done", record
    record["expires_at"] = time.time() - 1
    path.write_bytes(orjson.dumps(record))


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
            _populate(http, own, ("acme", "globex", "default"), driver)
            _populate(http, other, ("acme", "globex", "initech", "default"), driver)
            world = World(driver, str(http.base_url), store, http, own, other, {}, {})
            world.exports_dir = Path(settings.data_dir) / "exports"
            for organization in (None, "acme", "globex"):
                _add_job(world, own, organization)
            _add_job(world, other, "acme")  # the same organization name, another project
            secret, _ = world.add_key(OWN, ("export",), None)
            expired = _finished_job(http, secret, {"format": "ndjson"})
            _expire(world, expired["job_id"])
            world.expired = (expired["job_id"], _token(expired))
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
    stream: bool = False  # an endless answer: read up to its first frame, then hang up


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


def _filter(resource: Resource | None) -> str:
    """`&organization_id=…` for one organization's selection, nothing for all."""
    return "" if resource is None else f"&organization_id={_organization(resource)}"


def _filtered_marker(world: World, resource: Resource | None) -> str:
    """An event every 2xx answer about this selection must hold: acme's is in the whole
    project's and in a key bound to acme's."""
    return world.own.events["acme" if resource is None else _organization(resource)]


def _export_stream(fmt: str) -> Callable[[World, Resource | None], Call]:
    def build(world: World, resource: Resource | None) -> Call:
        url = f"/v1/exports/events.{fmt}?excel=false{_filter(resource)}"
        return Call("GET", url, marker=_filtered_marker(world, resource))

    return build


JOB_FORMATS = {None: "csv", "acme": "json", "globex": "ndjson"}  # by the selection's organization


def _start_job(world: World, resource: Resource | None) -> Call:
    body: dict[str, Any] = {
        "format": JOB_FORMATS[None if resource is None else resource.organization]
    }
    if resource is not None:
        body["organization_id"] = _organization(resource)
    return Call("POST", "/v1/exports", body, marker='"job_id"')


def _missing_job_id() -> str:
    return "exp_" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))


def _job_status(world: World, resource: Resource | None) -> Call:
    assert resource is not None
    if resource is EXPIRED:
        job_id = world.expired[0]
    elif resource.project is None:
        job_id = _missing_job_id()
    else:
        job_id = _tenant(world, resource).jobs[resource.organization]
    return Call("GET", f"/v1/exports/{job_id}", identifier=job_id, marker=job_id)


def _download(world: World, resource: Resource | None) -> Call:
    """A finished job's link: the link alone is the credential, whoever follows it."""
    assert resource is not None
    marker = None
    if resource in (OWN_ACME, OTHER_PROJECT):
        tenant = _tenant(world, resource)
        token, marker = tenant.links["acme"], tenant.events["acme"]
    elif resource is SWAPPED_SECRET:
        token = world.own.jobs["acme"] + "." + world.other.links["acme"].partition(".")[2]
    elif resource is GUESSED_SECRET:
        token = world.other.jobs["acme"] + "." + secrets.token_urlsafe(32)
    elif resource is BARE_JOB_ID:
        token = world.own.jobs["acme"]
    elif resource is EXPIRED:
        token = world.expired[1]
    else:
        token = _missing_job_id() + "." + secrets.token_urlsafe(32)
    return Call("GET", f"/v1/exports/download/{token}", identifier=token, marker=marker)


def _facade_write(world: World, resource: Resource | None) -> Call:
    """One event through the façade; a unique resource id finds it (or its absence) in the
    database afterwards (the façade takes no client event id)."""
    assert resource is not None and resource.organization is not None
    mark = world.unique("fx")
    event = {
        "actor": {"id": "mallory"},
        "action": "matrix.write",
        "resource": {"type": "cell", "id": mark},
        "organization_id": resource.organization,
    }
    return Call("POST", f"{FACADE}/events", event, marker=mark)


def _facade_query(world: World, resource: Resource | None) -> Call:
    url = f"{FACADE}/events?limit=1000{_filter(resource)}"
    return Call("GET", url, marker=_filtered_marker(world, resource))


def _facade_export(fmt: str) -> Callable[[World, Resource | None], Call]:
    def build(world: World, resource: Resource | None) -> Call:
        url = f"{FACADE}/events/export?format={fmt}{_filter(resource)}"
        return Call("GET", url, marker=_filtered_marker(world, resource))

    return build


def _fact0_write(*, batch: bool) -> Callable[[World, Resource | None], Call]:
    """One Fact0 wire event (§3.1) with a client id: into the key's own log, whichever."""

    def build(world: World, resource: Resource | None) -> Call:
        event = {
            "id": world.unique("f0"),
            "actor": {"id": "mallory", "type": "human"},
            "action": "matrix.write",
            "resource": {"id": "cell", "type": "matrix"},
            "outcome": "success",
            "metadata": {},
        }
        if batch:
            body: dict[str, Any] = {"events": [event]}
            return Call("POST", f"{FACT0}/v1/events/batch", body, marker=event["id"])
        return Call("POST", f"{FACT0}/v1/events?sync=true", event, marker=event["id"])

    return build


def _fact0_by_id(suffix: str = "") -> Callable[[World, Resource | None], Call]:
    def build(world: World, resource: Resource | None) -> Call:
        event_id = _event_id(world, resource)
        url = f"{FACT0}/v1/events/{event_id}{suffix}"
        return Call("GET", url, identifier=event_id, marker=event_id)

    return build


def _fact0_receipt(world: World, resource: Resource | None) -> Call:
    receipt_id = _receipt_id(world, resource)
    url = f"{FACT0}/v1/receipts/{receipt_id}"
    return Call("GET", url, identifier=receipt_id, marker=receipt_id)


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
    *(
        Case(
            f"GET /v1/exports/events.{fmt}",
            ("GET", "/v1/exports/events.{fmt}"),
            FILTERED,
            _export_stream(fmt),
        )
        for fmt in ("csv", "json", "ndjson")
    ),
    Case("POST /v1/exports", ("POST", "/v1/exports"), FILTERED, _start_job),
    Case("GET /v1/exports/{job_id}", ("GET", "/v1/exports/{job_id}"), JOBS, _job_status),
    Case(
        "GET /v1/exports/download/{token}",
        ("GET", "/v1/exports/download/{token}"),
        LINKS,
        _download,
    ),
    *(
        Case(f"{method} {path}", (method, path), (None,), lambda w, r, p=path: Call("GET", p))
        for (method, path), access in ACCESS.items()
        if access.scopes is PUBLIC and "{" not in path
    ),
    # The Auditledge façade.
    Case(
        f"POST {FACADE}/events",
        ("POST", f"{FACADE}/events"),
        (OWN_ACME, OWN_GLOBEX),
        _facade_write,
    ),
    Case(f"GET {FACADE}/events", ("GET", f"{FACADE}/events"), FILTERED, _facade_query),
    *(
        Case(
            f"GET {FACADE}/events/export?format={fmt}",
            ("GET", f"{FACADE}/events/export"),
            FILTERED,
            _facade_export(fmt),
        )
        for fmt in ("json", "csv")
    ),
    Case(
        f"GET {FACADE}/events/{{id}}",
        ("GET", f"{FACADE}/events/{{event_id}}"),
        ADDRESSED,
        lambda w, r: Call(
            "GET", f"{FACADE}/events/{(i := _event_id(w, r))}", identifier=i, marker=i
        ),
    ),
    Case(
        f"GET {FACADE}/usage",
        ("GET", f"{FACADE}/usage"),
        (None,),
        lambda w, r: Call("GET", f"{FACADE}/usage", marker='"events_this_month"'),
    ),
    # The Fact0 façade: the key's one log.
    Case(
        f"POST {FACT0}/v1/events/batch",
        ("POST", f"{FACT0}/v1/events/batch"),
        (None,),
        _fact0_write(batch=True),
    ),
    Case(
        f"POST {FACT0}/v1/events?sync=true",
        ("POST", f"{FACT0}/v1/events"),
        (None,),
        _fact0_write(batch=False),
    ),
    Case(
        f"GET {FACT0}/v1/receipts/{{id}}",
        ("GET", f"{FACT0}/v1/receipts/{{receipt_id}}"),
        TENANTS,
        _fact0_receipt,
    ),
    Case(
        f"GET {FACT0}/v1/events",
        ("GET", f"{FACT0}/v1/events"),
        (None,),
        lambda w, r: Call("GET", f"{FACT0}/v1/events?page_size=1000", marker='"events"'),
    ),
    Case(
        f"GET {FACT0}/v1/events/stream",
        ("GET", f"{FACT0}/v1/events/stream"),
        (None,),
        lambda w, r: Call("GET", f"{FACT0}/v1/events/stream", marker="event: open", stream=True),
    ),
    Case(
        f"GET {FACT0}/v1/events/{{id}}",
        ("GET", f"{FACT0}/v1/events/{{event_id}}"),
        TENANTS,
        _fact0_by_id(),
    ),
    Case(
        f"GET {FACT0}/v1/events/{{id}}/verify",
        ("GET", f"{FACT0}/v1/events/{{event_id}}/verify"),
        TENANTS,
        _fact0_by_id("/verify"),
    ),
    Case(
        f"GET {FACT0}/v1/verify",
        ("GET", f"{FACT0}/v1/verify"),
        (None,),
        lambda w, r: Call("GET", f"{FACT0}/v1/verify", marker='"valid":true'),
    ),
    Case(
        f"GET {FACT0}/v1/export/pdf",
        ("GET", f"{FACT0}/v1/export/pdf"),
        (None,),
        lambda w, r: Call("GET", f"{FACT0}/v1/export/pdf", marker="%PDF-"),
    ),
    Case(
        f"GET {FACT0}/v1/export/evidence-pack",
        ("GET", f"{FACT0}/v1/export/evidence-pack"),
        (None,),
        lambda w, r: Call("GET", f"{FACT0}/v1/export/evidence-pack", marker="PK\x03\x04"),
    ),
)

# (case, key kind, resource name or "-") -> why the server departs from the rule. Each is
# a strict xfail test of its own (test_known_bug); the matrix skips it. None known now (the
# two of 324df2c are fixed).
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}

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
    if call.stream:
        answer = _first_frame(world, call, key)
    else:
        answer = world.http.request(
            call.method, call.url, json=call.json, headers=world.headers(key)
        )
    return Outcome(case, key, resource, call, rule(ACCESS[case.route], key, resource), answer)


def _first_frame(world: World, call: Call, key: KeyKind) -> httpx.Response:
    """An event stream's status, headers and first frame (an error answer whole)."""
    with world.http.stream(call.method, call.url, headers=world.headers(key)) as answer:
        received = b""
        for chunk in answer.iter_bytes():
            received += chunk
            if answer.is_success and b"\n\n" in received:
                break
        return httpx.Response(answer.status_code, headers=answer.headers, content=received)


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
    body = answer.content
    # A public route answers the same whoever asks: what it may show does not depend on
    # the key (the export download serves its job's file; checked in _check_jobs).
    access = ACCESS[outcome.case.route]
    if 200 <= answer.status_code < 300 and access.scopes is not PUBLIC:
        forbidden = world.forbidden_ids(outcome.key, tenant=access.tenant)
        leaked = [i for i in forbidden if i.encode() in body]
        if leaked:
            problems.append(f"{label} 2xx answer carries ids it must not show: {leaked}")
    marker = outcome.call.marker
    if 200 <= answer.status_code < 300 and marker is not None and marker.encode() not in body:
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


def _check_facade_writes(world: World, outcomes: list[Outcome]) -> list[str]:
    """A façade write is stored exactly when it was acknowledged, as the event the answer
    names, in the own project and the organization it named; never in the other project."""
    problems = []
    stored = {
        p: _entries_carrying(world, p, [o.call.marker or "" for o in outcomes])
        for p in (OWN, OTHER)
    }
    for outcome in outcomes:
        mark = outcome.call.marker or ""
        found = stored[OWN].get(mark, [])
        acknowledged = 200 <= outcome.answer.status_code < 300
        if acknowledged != bool(found) or len(found) > 1:
            status = outcome.answer.status_code
            problems.append(f"{outcome.label} answered {status} but stored {len(found)} event(s)")
        if acknowledged and found:
            event_id, organization = found[0]
            answered = outcome.answer.json()["event"]
            if (answered["id"], answered["organization_id"]) != (event_id, organization):
                problems.append(f"{outcome.label} answered {answered} but stored {found}")
            if organization != outcome.call.json["organization_id"]:
                problems.append(f"{outcome.label} stored in organization {organization}")
        if stored[OTHER].get(mark):
            problems.append(f"{outcome.label} the event appeared in the other project")
    return problems


def _check_fact0_writes(world: World, outcomes: list[Outcome]) -> list[str]:
    """A Fact0 write is stored exactly when it was acknowledged (an async batch within a
    few seconds), under its client id, in the own project and the key's log (its
    organization, else `default`); never in the other project."""
    problems = []
    deadline = time.monotonic() + 10
    for outcome in outcomes:
        event_id = outcome.call.marker or ""
        acknowledged = 200 <= outcome.answer.status_code < 300
        stored = world.store.get_entry_by_id(OWN, event_id)
        while acknowledged and stored is None and time.monotonic() < deadline:
            time.sleep(0.05)
            stored = world.store.get_entry_by_id(OWN, event_id)
        if acknowledged != (stored is not None):
            status = outcome.answer.status_code
            problems.append(f"{outcome.label} answered {status} but stored={stored is not None}")
        if stored is not None:
            log = world.store.get_log(OWN, stored.log_id)
            tenant = outcome.key.organization or "default"
            if log is None or log.organization != tenant:
                problems.append(f"{outcome.label} stored in {log and log.organization}")
        if world.store.get_entry_by_id(OTHER, event_id) is not None:
            problems.append(f"{outcome.label} the event appeared in the other project")
    return problems


def _entries_carrying(world: World, project: str, marks: list[str]) -> dict[str, list[Any]]:
    """mark -> [(event id, organization)] of the project's entries whose bytes hold it."""
    found: dict[str, list[Any]] = {}
    for log in world.store.list_logs(project):
        for entry in world.store.iter_entries(project, log.log_id, 0, log.size):
            for mark in marks:
                if entry.entry is not None and mark.encode() in entry.entry:
                    found.setdefault(mark, []).append((entry.event_id, log.organization))
    return found


def _check_jobs(world: World, outcomes: list[Outcome], before: set[str]) -> list[str]:
    """A job exists exactly when the answer was 202, in the own project, owned by the
    key's organization; once finished, its link (no key) serves only what the key may
    see, of the organization it asked for."""
    problems = []
    created = {i: job for i, job in world.jobs().items() if i not in before}
    answered = {o.answer.json()["job_id"]: o for o in outcomes if o.answer.status_code == 202}
    if set(created) != set(answered):
        problems.append(f"jobs created: {sorted(created)}; answered 202: {sorted(answered)}")
    for job_id, outcome in answered.items():
        record = created.get(job_id)
        if record is None:
            continue
        if (record["project"], record["owner_organization"]) != (OWN, outcome.key.organization):
            problems.append(
                f"{outcome.label} job in {record['project']} owned by "
                f"{record['owner_organization']}, expected {OWN} and {outcome.key.organization}"
            )
        asked = outcome.call.json.get("organization_id")
        job = _wait(world, outcome.key, job_id)
        download = world.http.get(f"/v1/exports/download/{_token(job)}")  # no key
        if job["status"] != "done" or download.status_code != 200:
            problems.append(f"{outcome.label} job {job}: download {download.status_code}")
            continue
        rows = _export_rows(outcome.call.json["format"], download.content)
        visible = world.visible_events(outcome.key.organization)
        wrong = [r for r in rows if visible.get(r[0]) != r[1:] or asked not in (None, r[1])]
        leaked = [i for i in world.forbidden_ids(outcome.key) if i.encode() in download.content]
        if wrong or leaked:
            problems.append(f"{outcome.label} job {job_id} holds {wrong} {leaked}")
        expected = _filtered_marker(world, outcome.resource)
        if expected not in {i for i, _, _ in rows}:
            problems.append(f"{outcome.label} job {job_id} misses {expected}")
    return problems


def _wait(world: World, key: KeyKind, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        answer = world.http.get(f"/v1/exports/{job_id}", headers=world.headers(key))
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def _export_rows(fmt: str, body: bytes) -> list[tuple[str, str, str]]:
    """(event id, organization, chain hash) of every record of an export, native or
    façade (whose JSON array of event objects and CSV carry the same three members)."""
    if fmt == "csv":
        records: list[dict[str, Any]] = list(
            csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
        )
    elif fmt == "json":
        records = orjson.loads(body)
    else:
        assert fmt == "ndjson", fmt
        records = [orjson.loads(line) for line in body.splitlines()]
    return [(r["id"], r["organization_id"], r["hash"]) for r in records]


def _check_other_untouched(world: World) -> list[str]:
    now = world.snapshot(OTHER)
    if now != world.other_snapshot:
        return [f"the other project changed: {world.other_snapshot} -> {now}"]
    return []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_access_matrix(world: World, case: Case) -> None:
    jobs_before = set(world.jobs())
    outcomes = [
        _run(world, case, key, resource)
        for key in KEY_KINDS
        for resource in case.resources
        if (case.name, key.name, resource.name if resource else "-") not in KNOWN_BUGS
    ]
    missing = {o.key.name: o for o in outcomes if o.resource is MISSING}
    problems = [
        p for outcome in outcomes for p in _problems(world, outcome, missing.get(outcome.key.name))
    ]
    if case.route[0] == "POST" and case.route[1].startswith("/v1/events"):
        problems += _check_writes(world, outcomes)
    if case.route[1].startswith("/v1/keys") and case.route[0] != "GET":
        problems += _check_key_changes(world, outcomes)
    if case.route == ("POST", "/v1/exports"):
        problems += _check_jobs(world, outcomes, jobs_before)
    elif set(world.jobs()) != jobs_before:
        problems.append(f"export jobs appeared: {sorted(set(world.jobs()) - jobs_before)}")
    if case.route == ("POST", f"{FACADE}/events"):
        problems += _check_facade_writes(world, outcomes)
    if case.route[0] == "POST" and case.route[1].startswith(FACT0):
        problems += _check_fact0_writes(world, outcomes)
    problems += _check_other_untouched(world)
    assert not problems, f"{len(problems)} of {len(outcomes)} cells wrong:\n" + "\n".join(problems)


if KNOWN_BUGS:  # collected only with entries (an empty parametrization is a skip)

    @pytest.mark.parametrize(
        "bug",
        [
            pytest.param(
                cell, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)
            )
            for cell, reason in KNOWN_BUGS.items()
        ],
        ids=[" | ".join(cell) for cell in KNOWN_BUGS],
    )
    def test_known_bug(world: World, bug: tuple[str, str, str]) -> None:
        case = next(c for c in CASES if c.name == bug[0])
        key = next(k for k in KEY_KINDS if k.name == bug[1])
        resource = next(r for r in case.resources if (r.name if r else "-") == bug[2])
        outcome = _run(world, case, key, resource)
        missing = _run(world, case, key, MISSING) if MISSING in case.resources else None
        assert not _problems(world, outcome, missing)


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


EXPORTERS = tuple(k for k in KEY_KINDS if k.valid and k.scopes[0] in ("export", "admin"))
EXPORTS = {
    "native csv": ("csv", "/v1/exports/events.csv?"),
    "native json": ("json", "/v1/exports/events.json?"),
    "native ndjson": ("ndjson", "/v1/exports/events.ndjson?"),
    "façade json": ("json", f"{FACADE}/events/export?format=json&"),
    "façade csv": ("csv", f"{FACADE}/events/export?format=csv&"),
}


@pytest.mark.parametrize("export", list(EXPORTS))
def test_exports_hold_exactly_what_the_key_may_see(world: World, export: str) -> None:
    """Zero cross-tenant reads, whole exports against the database: every export-capable
    key's export of everything holds every event of the own project it may see (a bound
    key: its organization's) committed before the export, nothing committed after, nothing
    else; filtered by another organization it holds that organization's alone (a bound key
    is refused); filtered by an organization only the other project has, nothing."""
    fmt, url = EXPORTS[export]
    refused = 403 if url.startswith(FACADE) else 404  # the façade's contract, see rule()
    problems = []
    for kind in EXPORTERS:
        for organization in (None, "globex", "initech"):
            before = world.visible_events(kind.organization)
            query = "" if organization is None else f"organization_id={organization}"
            answer = world.http.get(url + query, headers=world.headers(kind))
            after = world.visible_events(kind.organization)
            label = f"[{export} | key={kind.name} | organization={organization}]"
            if kind.organization not in (None, organization) and organization is not None:
                if answer.status_code != refused:
                    problems.append(f"{label} expected {refused}, got {answer.status_code}")
                continue
            if answer.status_code != 200:
                problems.append(f"{label} got {answer.status_code}: {answer.text[:200]}")
                continue
            rows = _export_rows(fmt, answer.content)
            ids = [i for i, _, _ in rows]
            wanted = {i for i, (o, _) in before.items() if organization in (None, o)}
            allowed = {i for i, (o, _) in after.items() if organization in (None, o)}
            if len(ids) != len(set(ids)):
                problems.append(f"{label} repeats events")
            if not wanted <= set(ids):
                problems.append(f"{label} misses {sorted(wanted - set(ids))}")
            if not set(ids) <= allowed:
                problems.append(f"{label} holds events it must not: {sorted(set(ids) - allowed)}")
            # The very entries (by chain hash), not another project's of the same id.
            strangers = [r for r in rows if after.get(r[0]) != r[1:]]
            if strangers:
                problems.append(f"{label} holds records that are not the key's: {strangers}")
            leaked = [i for i in world.forbidden_ids(kind) if i.encode() in answer.content]
            if leaked:
                problems.append(f"{label} carries ids it must not show: {leaked}")
    assert not problems, "\n".join(problems)


def test_export_jobs_hold_only_what_their_creator_may_see(world: World) -> None:
    """The setup's jobs, downloaded without a key: a job holds what the key that created
    it may see (bound: its organization's only), the other project's job the other
    project's events only."""
    problems = []
    owners: list[tuple[Tenant, str | None]] = [(world.own, o) for o in world.own.jobs]
    for tenant, owner in [*owners, (world.other, "acme")]:
        label = f"[{tenant.project} job of a key bound to {owner}]"
        answer = world.http.get(f"/v1/exports/download/{tenant.links[owner]}")
        assert answer.status_code == 200, f"{label} {answer.status_code} {answer.text[:200]}"
        rows = _export_rows("ndjson", answer.content)
        ids = {i for i, _, _ in rows}
        if tenant is world.own:
            visible = world.visible_events(owner)
            wrong = [r for r in rows if visible.get(r[0]) != r[1:]]
            expected = {tenant.events[o] for o in tenant.events if owner in (None, o)}
            kind = KeyKind("job owner", True, ("export",), owner)
            leaked = [i for i in world.forbidden_ids(kind) if i.encode() in answer.content]
        else:
            assert owner is not None
            wrong = [r for r in rows if r[1] != owner]
            expected = {tenant.events[owner]}
            own = [i for o in world.own.logs for i in world.own.ids(o)]
            leaked = [i for i in own if i.encode() in answer.content]
        if wrong or leaked or not expected <= ids:
            problems.append(
                f"{label} wrong rows {wrong}, leaked {leaked}, missing {expected - ids}"
            )
    assert not problems, "\n".join(problems)


FACT0_READERS = tuple(k for k in KEY_KINDS if k.valid and k.scopes[0] in ("events:read", "admin"))


def test_fact0_shows_each_key_exactly_its_own_log(world: World) -> None:
    """Zero cross-tenant reads through the Fact0 façade: every reading key's listing holds
    exactly the events of its one log (bound: its organization's, else `default`'s)
    committed before it, nothing committed after, nothing else (the very entries, by chain
    hash); every exporting key's evidence pack holds its log's events and no id the key may
    not see, in any member."""
    problems = []
    for kind in FACT0_READERS + tuple(k for k in EXPORTERS if k not in FACT0_READERS):
        tenant = kind.organization or "default"
        label = f"[key={kind.name} | log={tenant}]"
        forbidden = world.forbidden_ids(kind, tenant=True)
        if kind in FACT0_READERS:
            before = world.visible_events(tenant)
            answer = world.http.get(
                f"{FACT0}/v1/events?page_size=1000", headers=world.headers(kind)
            )
            after = world.visible_events(tenant)
            assert answer.status_code == 200, f"{label} {answer.status_code} {answer.text}"
            body = answer.json()
            rows = [(e["id"], e["tenant_id"], e["hash"]) for e in body["events"]]
            ids = {i for i, _, _ in rows}
            if not set(before) <= ids or not ids <= set(after) or body["total"] != len(rows):
                problems.append(f"{label} listed {sorted(ids)}, the log holds {sorted(after)}")
            strangers = [
                r for r in rows if r[1] != f"{OWN}/{tenant}" or after.get(r[0], ("", ""))[1] != r[2]
            ]
            if strangers:
                problems.append(f"{label} lists records of another log: {strangers}")
            leaked = [i for i in forbidden if i.encode() in answer.content]
            if leaked:
                problems.append(f"{label} listing carries ids it must not show: {leaked}")
        if kind in EXPORTERS:
            answer = world.http.get(f"{FACT0}/v1/export/evidence-pack", headers=world.headers(kind))
            assert answer.status_code == 200, f"{label} {answer.status_code} {answer.text}"
            with zipfile.ZipFile(io.BytesIO(answer.content)) as pack:
                members = b"".join(pack.read(name) for name in pack.namelist())
            leaked = [i for i in forbidden if i.encode() in members]
            missing = [i for i in (world.own.events[tenant],) if i.encode() not in members]
            if leaked or missing:
                problems.append(f"{label} evidence pack leaks {leaked}, misses {missing}")
    assert not problems, "\n".join(problems)


def test_a_job_of_a_key_bound_to_acme_is_unreachable_to_globex_and_the_other_project(
    world: World,
) -> None:
    """A job created by a key bound to acme: a key bound to globex (export or admin) and
    the other project's keys (even one bound to an organization named acme) get the 404
    of a job that does not exist, by id and by the job status route alike."""
    job_id = world.own.jobs["acme"]
    keys = {
        "own export@globex": world.add_key(OWN, ("export",), "globex")[0],
        "own admin@globex": world.add_key(OWN, ("admin",), "globex")[0],
        "other export@acme": world.add_key(OTHER, ("export",), "acme")[0],
        "other admin": world.other.admin,
    }
    for name, secret in keys.items():
        headers = {"Authorization": f"Bearer {secret}"}
        answer = world.http.get(f"/v1/exports/{job_id}", headers=headers)
        unknown = world.http.get(f"/v1/exports/{_missing_job_id()}", headers=headers)
        assert answer.status_code == 404, f"{name}: {answer.status_code} {answer.text}"
        assert answer.text == unknown.text, name
        assert job_id not in answer.text and world.own.links["acme"] not in answer.text
    # The key that made it, and an unbound key of its project, do see it.
    for kind in ("export@acme", "admin"):
        kind_ = next(k for k in KEY_KINDS if k.name == kind)
        assert world.http.get(f"/v1/exports/{job_id}", headers=world.headers(kind_)).is_success


# -- departures that are not one cell (strict xfails: a fix turns the suite red) ---------------

ID_PROBE = (
    "§8 vs §4: event ids are unique per project (§4: the same id with other content is 409 "
    "`idempotency_conflict`), so a key bound to acme that writes an id another organization "
    "of its project holds is answered 409, where an id nobody holds is answered {fresh}: a "
    "bound key can tell which event ids exist in organizations it may not see (§8: their "
    "existence is not revealed). Reproduce: a key bound to acme, `{request}` with the id of "
    "a globex event -> 409; with a new id -> {fresh}"
)


@pytest.mark.parametrize(
    "door",
    [
        pytest.param(
            "native",
            marks=pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason=ID_PROBE.format(
                    fresh=201,
                    request='POST /v1/events?sync=true {"id": <id>, "action": "a.b", '
                    '"actor": {"id": "m"}, "organization_id": "acme"}',
                ),
            ),
        ),
        pytest.param(
            "fact0",
            marks=pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason=ID_PROBE.format(
                    fresh=200,
                    request='POST /compat/fact0/v1/events/batch?sync=true {"events": [{"id": '
                    '<id>, "actor": {"id": "m", "type": "human"}, "action": "a.b", '
                    '"resource": {"id": "r", "type": "t"}, "outcome": "success"}]}',
                ),
            ),
        ),
    ],
)
def test_a_bound_key_cannot_tell_which_ids_other_organizations_hold(
    world: World, door: str
) -> None:
    secret, _ = world.add_key(OWN, ("events:write",), "acme")
    headers = {"Authorization": f"Bearer {secret}"}

    def write(event_id: str) -> int:
        if door == "native":
            body: dict[str, Any] = {
                "id": event_id,
                "action": "a.b",
                "actor": {"id": "m"},
                "organization_id": "acme",
            }
            return world.http.post("/v1/events?sync=true", json=body, headers=headers).status_code
        event = {
            "id": event_id,
            "actor": {"id": "m", "type": "human"},
            "action": "a.b",
            "resource": {"id": "r", "type": "t"},
            "outcome": "success",
        }
        url = f"{FACT0}/v1/events/batch?sync=true"
        return world.http.post(url, json={"events": [event]}, headers=headers).status_code

    taken, fresh = write(world.own.events["globex"]), write(world.unique("fresh"))
    assert taken == fresh, f"an id globex holds: {taken}; a new id: {fresh}"


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="bug (Fact0 contract §2, §3.2, §3.5): a key bound to acme that sends, through "
    "the Fact0 façade, an event whose id and content are already stored in another log of "
    "its project (here `default`'s, written by an unbound key) is told it was stored: "
    "POST /compat/fact0/v1/events?sync=true answers 201 with the body `null` (not the "
    "event; not even a JSON object), POST /compat/fact0/v1/events/batch answers 200/202 "
    '`{"status": "committed", "accepted": 1, "duplicates": 1}`; yet nothing is in acme\'s '
    "log (GET /compat/fact0/v1/events/{id} with that key: 404). Idempotency is per log in "
    "the contract, per project in the store, so the caller's event is silently dropped",
)
def test_fact0_a_2xx_means_the_event_is_in_the_callers_log(world: World) -> None:
    event = {
        "id": world.unique("f0dup"),
        "actor": {"id": "m", "type": "human"},
        "action": "a.b",
        "resource": {"id": "r", "type": "t"},
        "outcome": "success",
        "metadata": {},
    }
    unbound = {"Authorization": f"Bearer {world.add_key(OWN, ('events:write',), None)[0]}"}
    first = world.http.post(f"{FACT0}/v1/events?sync=true", json=event, headers=unbound)
    assert first.status_code == 201 and first.json()["tenant_id"] == f"{OWN}/default"
    secret, _ = world.add_key(OWN, ("events:write", "events:read"), "acme")
    bound = {"Authorization": f"Bearer {secret}"}
    again = world.http.post(f"{FACT0}/v1/events?sync=true", json=event, headers=bound)
    read = world.http.get(f"{FACT0}/v1/events/{event['id']}", headers=bound)
    answered = (again.status_code, again.text[:200], read.status_code)
    if 200 <= again.status_code < 300:
        assert isinstance(again.json(), dict), answered
        assert read.status_code == 200, answered
        assert again.json()["tenant_id"] == f"{OWN}/acme", answered


def test_every_route_has_an_access_rule(tmp_path: Path) -> None:
    """A new route without a row in ACCESS fails here (under /v1, a façade's mount or
    anywhere else); so does a row for a route that is gone."""
    app = create_app(Settings(data_dir=tmp_path))
    facades = {FACADE: create_facade, FACT0: create_fact0}
    mounts = {r.path for r in app.routes if isinstance(r, Mount)}
    assert mounts == set(facades), "a new mount: add its routes to ACCESS"
    mounted = [
        (prefix + path, methods)
        for prefix, create in facades.items()
        for path, methods in _flat_routes(create(app).routes)
    ]
    served = {
        (method, path)
        for path, methods in _flat_routes(app.routes) + mounted
        for method in methods - {"HEAD"}
    }
    assert {p for _, p in served if p.startswith("/v1/")}, "no /v1 routes found"
    for prefix in facades:
        assert {p for _, p in served if p.startswith(prefix + "/")}, f"no {prefix} routes"
    assert served - set(ACCESS) == set(), "routes without an access rule in ACCESS"
    assert set(ACCESS) - served == set(), "ACCESS rows for routes the app does not serve"


def test_every_v1_route_has_an_access_rule(tmp_path: Path) -> None:
    """A new /v1 route without a row in ACCESS fails here; so does a row for a route that
    is gone."""
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
