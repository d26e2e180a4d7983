"""The Auditledge façade, driven by the real, unmodified ``auditledge==0.1.1`` client from
PyPI against the real server over HTTP, on both drivers.

Results are compared with what was logged: every filter against a brute-force filter over
the logged events (the same rules, written out in Python), totals and offset walks against
the brute-force list in the contract's order (newest ``timestamp`` first, ties in commit
order), exports parsed back and compared with ``get``. Events logged through the façade are
checked in the native API too: readable, proven against a signed checkpoint with the log's
pinned verifier key, verified server-side, and verified offline by ``trailseal verify``
from an evidence pack.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from auditledge import AuditLedge, AuditLedgeError
from click.testing import CliRunner

from tests.server.conftest import RunningServer
from trailseal.cli.main import cli
from trailseal.core.hashing import leaf_hash
from trailseal.core.merkle import verify_inclusion
from trailseal.core.verify import open_log_checkpoint

MOUNT = "/compat/auditledge/v1"
WRITE_READ_EXPORT = "events:write,events:read,export"
CSV_REQUIRED = [
    "id",
    "timestamp",
    "organization_id",
    "actor_id",
    "actor_name",
    "actor_email",
    "action",
    "resource_type",
    "resource_id",
    "resource_name",
    "metadata",
]


def _client(server: RunningServer, key: str, *, slash: bool = False) -> AuditLedge:
    return AuditLedge(key, base_url=server.url + MOUNT + ("/" if slash else ""))


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------
# A data set and the contract's rules, written out.
# ---------------------------------------------------------------------------------------

ACTORS = [
    {"id": "user_alice", "name": "Alice Liddell", "email": "alice@example.com"},
    {"id": "user_bob", "name": "Bob Marley"},
    {"id": "user_zoe", "name": "Zoë Lichtenstein", "email": None},
    {"id": "svc_billing"},  # no name at all
]
ACTIONS = [
    "invoice.deleted",
    "Invoice.Paid",
    "invoice.sent",
    "user.login",
    "user.password_reset",
    "report.exported",
    "User Login",  # not dot notation: mapped, the original kept in ext
]
RESOURCES = [
    {"type": "invoice", "id": "inv-1", "name": "Invoice #1042"},
    {"type": "invoice", "id": "inv-2"},
    {"type": "account", "id": "acct-9", "name": None},
    {"type": "report", "id": "rep-3", "name": "Quarterly"},
]
ORGANIZATIONS = ["acme", "globex", None]  # None: the key's organization, i.e. `default`
BASE = datetime(2026, 3, 10, 8, 0, 0, tzinfo=UTC)


def _dataset() -> list[dict[str, Any]]:
    """Events whose timestamps run out of commit order (some backdated, some equal), with
    offsets, fractions, naive and absent timestamps; every optional member sometimes
    absent."""
    events: list[dict[str, Any]] = []
    for n in range(42):
        event: dict[str, Any] = {
            "actor": dict(ACTORS[n % len(ACTORS)]),
            "action": ACTIONS[(n * 5) % len(ACTIONS)],
            "resource": dict(RESOURCES[(n * 3) % len(RESOURCES)]),
        }
        organization = ORGANIZATIONS[n % 3]
        if organization is not None:
            event["organization_id"] = organization
        if n % 4 != 3:
            event["metadata"] = {"n": n, "ip": f"10.0.0.{n}", "nested": {"ok": n % 2 == 0}}
        # Hours scattered over four days, not in n order; a few equal instants.
        when = BASE + timedelta(hours=(n * 37) % 96, minutes=n % 3)
        if n % 7 == 0:
            when = BASE + timedelta(days=1)  # ties: 0, 7, 14, ... share one instant
        style = n % 5
        if style == 0:
            event["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif style == 1:
            event["timestamp"] = (when - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S-05:00")
        elif style == 2:
            shifted = when + timedelta(hours=2)
            event["timestamp"] = shifted.strftime("%Y-%m-%dT%H:%M:%S.250000+02:00")
            when = when + timedelta(microseconds=250000)
        elif style == 3:
            event["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S")  # no zone: UTC
        else:
            event["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
            when = when + timedelta(microseconds=123456)
        event["_when"] = _stamp(when)
        events.append(event)
    return events


def _log_all(client: AuditLedge, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log each event; return what the façade must show for it, in commit order."""
    logged = []
    for event in events:
        body = {k: v for k, v in event.items() if not k.startswith("_")}
        answer = client.log(body)
        assert answer["success"] is True
        stored = answer["event"]
        assert stored["timestamp"] == event["_when"]
        logged.append(stored)
    return logged


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _metadata_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _metadata_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _metadata_strings(v)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _search_fields(e: dict[str, Any]) -> list[str]:
    """The searchable text of an event logged through the façade: action (as stored), actor
    id, name and email, resource type, id and name, metadata strings and numbers."""
    fields = [
        e["_native_action"],
        e["actor"]["id"],
        e["actor"]["name"],
        e["actor"]["email"],
        e["resource"]["type"],
        e["resource"]["id"],
        e["resource"]["name"],
        *_metadata_strings(e["metadata"]),
    ]
    return [f for f in fields if isinstance(f, str)]


def _phrase_in(term: str, fields: list[str]) -> bool:
    want = _words(term)
    for field in fields:
        words = _words(field)
        for i in range(len(words) - len(want) + 1):
            if words[i : i + len(want)] == want:
                return True
    return False


def _contains(needle: str, haystack: str | None) -> bool:
    return haystack is not None and needle.lower() in haystack.lower()


def _bound(value: str, *, end_of_day: bool) -> str:
    """A date bound in stored form: a bare date is its first (or last) microsecond, a
    timestamp without a zone is UTC."""
    if "T" not in value:
        return f"{value}T23:59:59.999999Z" if end_of_day else f"{value}T00:00:00.000000Z"
    parsed = datetime.fromisoformat(value)
    return _stamp(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _brute(events: list[dict[str, Any]], filters: dict[str, str]) -> list[dict[str, Any]]:
    """The contract's filter rules over what was logged, in the contract's order."""
    out = []
    for e in events:
        ok = True
        for name, value in filters.items():
            if name == "organization_id":
                ok = ok and e["organization_id"] == value
            elif name == "actor_id":
                ok = ok and e["actor"]["id"] == value
            elif name == "actor_name":
                ok = ok and _contains(value, e["actor"]["name"])
            elif name == "action":
                ok = ok and _contains(value, e["action"])
            elif name == "resource_type":
                ok = ok and e["resource"]["type"] == value
            elif name == "search":
                ok = ok and _phrase_in(value, _search_fields(e))
            elif name == "start_date":
                ok = ok and e["timestamp"] >= _bound(value, end_of_day=False)
            elif name == "end_date":
                ok = ok and e["timestamp"] <= _bound(value, end_of_day=True)
            else:
                raise AssertionError(name)
        if ok:
            out.append(e)
    # Newest timestamp first; equal timestamps: the later commit first.
    return sorted(out, key=lambda e: (e["timestamp"], e["sequence_global"]), reverse=True)


def _walk(client: AuditLedge, filters: dict[str, str], limit: int) -> tuple[list[str], int]:
    ids: list[str] = []
    total = None
    offset = 0
    while True:
        page = client.query({**filters, "limit": limit, "offset": offset})
        assert page["limit"] == limit and page["offset"] == offset
        total = page["total"] if total is None else total
        assert page["total"] == total
        ids.extend(e["id"] for e in page["events"])
        if len(page["events"]) < limit:
            return ids, total
        offset += limit


@pytest.fixture
def seeded(server: RunningServer) -> tuple[AuditLedge, list[dict[str, Any]]]:
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    events = _dataset()
    logged = _log_all(client, events)
    for n, (sent, shown) in enumerate(zip(events, logged, strict=True)):
        shown["sequence_global"] = n  # commit order across organizations
        shown["_native_action"] = re.sub(r"[^A-Za-z0-9_.-]", "_", sent["action"])
    return client, logged


def _strip(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if k not in ("sequence_global", "_native_action")}


# ---------------------------------------------------------------------------------------
# log / get
# ---------------------------------------------------------------------------------------


def test_log_returns_the_stored_event_and_get_reads_it_back(server: RunningServer) -> None:
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    before = datetime.now(UTC)
    full = client.log(
        {
            "actor": {"id": "user_123", "name": "Alice", "email": "alice@example.com"},
            "action": "invoice.deleted",
            "resource": {"type": "invoice", "id": "inv_456", "name": "Invoice #1042"},
            "organization_id": "org_789",
            "metadata": {
                "ip": "192.168.1.1",
                "nested": {"list": [1, 2.5, None, "ünï"], "null": None},
                "float": 1.0,
                "emoji": "🧾",
            },
            "timestamp": "2026-01-01T12:00:00.5+02:00",
        }
    )
    assert full["success"] is True
    event = full["event"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", event["id"]) and event["id"] != "export"
    assert event["organization_id"] == "org_789"
    assert event["actor"] == {"id": "user_123", "name": "Alice", "email": "alice@example.com"}
    assert event["action"] == "invoice.deleted"
    assert event["resource"] == {"type": "invoice", "id": "inv_456", "name": "Invoice #1042"}
    assert event["metadata"] == {
        "ip": "192.168.1.1",
        "nested": {"list": [1, 2.5, None, "ünï"], "null": None},
        "float": 1,
        "emoji": "🧾",
    }
    assert event["timestamp"] == "2026-01-01T10:00:00.500000Z"
    assert before.strftime("%Y-%m-%dT%H:%M") <= event["created_at"][:16]
    assert event["sequence"] == 0 and re.fullmatch(r"[0-9a-f]{64}", event["hash"])
    assert event["prev_hash"] == "0" * 64
    assert client.get(event["id"]) == event

    minimal = client.log(
        {"actor": {"id": "u2"}, "action": "user.login", "resource": {"type": "t", "id": "r"}}
    )["event"]
    assert minimal["organization_id"] == "default"
    assert minimal["actor"] == {"id": "u2", "name": None, "email": None}
    assert minimal["resource"] == {"type": "t", "id": "r", "name": None}
    assert minimal["metadata"] == {}
    # No timestamp: the receipt time, stored normalized.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", minimal["timestamp"])
    assert abs(
        datetime.fromisoformat(minimal["timestamp"]) - datetime.fromisoformat(minimal["created_at"])
    ) < timedelta(seconds=5)
    assert client.get(minimal["id"]) == minimal

    second = client.log(
        {"actor": {"id": "u2"}, "action": "user.logout", "resource": {"type": "t", "id": "r"}}
    )["event"]
    assert second["sequence"] == 1 and second["prev_hash"] == minimal["hash"]

    with pytest.raises(AuditLedgeError, match=r"^event not found$"):
        client.get("0190a000-0000-7000-8000-000000000000")
    with pytest.raises(AuditLedgeError, match=r"^event not found$"):
        client.get("no%20such")


def test_timestamps_in_every_accepted_form(server: RunningServer) -> None:
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    cases = {
        "2026-05-01T12:00:00Z": "2026-05-01T12:00:00.000000Z",
        "2026-05-01T12:00:00.123456789Z": "2026-05-01T12:00:00.123456Z",
        "2026-05-01T14:00:00+02:00": "2026-05-01T12:00:00.000000Z",
        "2026-05-01T07:30:00-04:30": "2026-05-01T12:00:00.000000Z",
        "2026-05-01T12:00:00": "2026-05-01T12:00:00.000000Z",  # no zone: UTC
        "2026-05-01 12:00:00.5+00:00": "2026-05-01T12:00:00.500000Z",  # str(datetime)
        "2026-05-01T12:00Z": "2026-05-01T12:00:00.000000Z",
        "2026-05-01": "2026-05-01T00:00:00.000000Z",
    }
    for sent, stored in cases.items():
        event = client.log(
            {
                "actor": {"id": "a"},
                "action": "x.y",
                "resource": {"type": "t", "id": "r"},
                "timestamp": sent,
            }
        )["event"]
        assert event["timestamp"] == stored, sent


# ---------------------------------------------------------------------------------------
# The events are ordinary entries of the organization's log.
# ---------------------------------------------------------------------------------------


def test_facade_events_are_ordinary_native_entries(server: RunningServer) -> None:
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    logged = [
        client.log(
            {
                "actor": {"id": f"user_{n}", "name": "Ann"},
                "action": "invoice.paid" if n != 2 else "Invoice paid (manual)!",
                "resource": {"type": "invoice", "id": f"inv-{n}"},
                "organization_id": "acme",
                "metadata": {"n": n},
            }
        )["event"]
        for n in range(5)
    ]
    with server.client() as native:
        log = native.get("/v1/logs/acme").json()
        assert log["tree_size"] == 5
        for seq, event in enumerate(logged):
            entry = native.get(f"/v1/events/{event['id']}")
            assert entry.status_code == 200, entry.text
            body = entry.json()
            assert body["organization_id"] == "acme" and body["seq"] == seq == event["sequence"]
            assert body["hash"] == event["hash"] and body["prev_hash"] == event["prev_hash"]
            assert body["event"]["actor"] == {"id": f"user_{seq}", "name": "Ann", "type": "user"}
            assert body["event"]["resource"] == {"type": "invoice", "id": f"inv-{seq}"}
            assert body["event"]["occurred_at"] == event["timestamp"]
            assert body["received_at"] == event["created_at"]
            if seq == 2:  # mapped action: native form, the original verbatim in ext
                assert body["event"]["action"] == "Invoice_paid__manual__"
                assert body["ext"] == {"auditledge": {"action": "Invoice paid (manual)!"}}
            else:
                assert body["event"]["action"] == "invoice.paid" and "ext" not in body

            proof = native.get(f"/v1/events/{event['id']}/proof")
            assert proof.status_code == 200, proof.text
            proven = proof.json()
            assert proven["verifier_key"] == log["verifier_key"]
            opened = open_log_checkpoint(
                proven["checkpoint"]["checkpoint"], log["verifier_key"], origin=log["origin"]
            )
            assert opened.checkpoint.size == proven["inclusion_proof"]["tree_size"] == 5
            assert leaf_hash(_entry_bytes(server, event["id"])) == bytes.fromhex(
                proven["leaf_hash"]
            )
            verify_inclusion(
                seq,
                5,
                bytes.fromhex(proven["leaf_hash"]),
                [bytes.fromhex(h) for h in proven["inclusion_proof"]["hashes"]],
                opened.checkpoint.root_hash,
            )
        listed = native.get("/v1/events", params={"organization_id": "acme", "total": "true"})
        assert listed.json()["total"] == 5
        assert {e["id"] for e in listed.json()["events"]} == {e["id"] for e in logged}
    with server.client(server.create_key("verify")) as verifier:
        report = verifier.post("/v1/verify", json={"organization_id": "acme"}).json()
    assert report["ok"] is True and report["checked"] == 5 and report["tree_size"] == 5


def _entry_bytes(server: RunningServer, event_id: str) -> bytes:
    """The stored entry bytes, read behind the API (what a mirror or an auditor re-hashes)."""
    if server.settings.database_url:
        import psycopg

        with psycopg.connect(server.settings.database_url) as conn:
            row = conn.execute(
                "SELECT entry FROM entries WHERE event_id = %s", (event_id,)
            ).fetchone()
    else:
        import sqlite3

        with sqlite3.connect(server.settings.sqlite_path) as conn:
            row = conn.execute(
                "SELECT entry FROM entries WHERE event_id = ?", (event_id,)
            ).fetchone()
    assert row is not None
    return bytes(row[0])


def test_native_events_are_visible_through_the_facade(server: RunningServer) -> None:
    with server.client() as native:
        native.post(
            "/v1/events?sync=true",
            json={
                "id": "native-1",
                "action": "doc.read",
                "actor": {"id": "bob", "type": "service"},
                "organization_id": "acme",
                "targets": [{"type": "doc", "id": "d1"}],
            },
        ).raise_for_status()
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    event = client.get("native-1")
    assert event["action"] == "doc.read" and event["organization_id"] == "acme"
    assert event["actor"] == {"id": "bob", "name": None, "email": None}
    assert event["resource"] == {"type": None, "id": None, "name": None}
    assert event["metadata"] == {}
    assert client.query({"organization_id": "acme"})["events"] == [event]


# ---------------------------------------------------------------------------------------
# query
# ---------------------------------------------------------------------------------------

QUERY_CASES: list[dict[str, str]] = [
    {},
    {"organization_id": "acme"},
    {"organization_id": "default"},
    {"organization_id": "nobody"},
    {"actor_id": "user_bob"},
    {"actor_id": "user"},  # exact: a prefix is not a match
    {"actor_name": "lic"},  # partial, case-insensitive: Alice Liddell, Zoë Lichtenstein
    {"actor_name": "LIDDELL"},
    {"actor_name": "bob mar"},  # with a space
    {"actor_name": "zoë"},
    {"action": "oice.dele"},  # substring, not a prefix
    {"action": "INVOICE"},  # case-insensitive: invoice.* and Invoice.Paid
    {"action": "paid"},
    {"action": "user login"},  # the mapped action, by its original text
    {"action": "login"},
    {"action": "password_reset"},
    {"resource_type": "invoice"},
    {"resource_type": "Invoice"},  # exact: case matters
    {"search": "invoice"},  # action, resource type, resource name
    {"search": "ALICE"},  # actor name
    {"search": "quarterly"},  # resource name (more fields are allowed)
    {"search": "report"},  # resource type and action
    {"search": "invoice.sent"},
    {"search": "nonexistent"},
    {"start_date": "2026-03-11"},
    {"end_date": "2026-03-11"},  # a bare end date covers the whole day
    {"start_date": "2026-03-11", "end_date": "2026-03-11"},
    {"start_date": "2026-03-11T09:00:00Z", "end_date": "2026-03-12T09:00:00Z"},
    {"start_date": "2026-03-11T11:00:00+02:00", "end_date": "2026-03-12T11:00:00+02:00"},
    {"start_date": "2026-03-11T09:00:00", "end_date": "2026-03-11T09:00:00.250000Z"},
    {"start_date": "2026-03-12", "end_date": "2026-03-11"},  # empty, not an error
    {"organization_id": "globex", "actor_name": "li", "action": "invoice"},
    {"resource_type": "invoice", "search": "alice", "end_date": "2026-03-12"},
    {"actor_id": "user_alice", "action": "user", "start_date": "2026-03-10"},
]


def test_query_filters_totals_and_offset_walks_match_brute_force(
    seeded: tuple[AuditLedge, list[dict[str, Any]]],
) -> None:
    client, logged = seeded
    for filters in QUERY_CASES:
        expected = _brute(logged, filters)
        page = client.query(filters or None)
        assert page["limit"] == 20 and page["offset"] == 0, filters
        assert page["total"] == len(expected), filters
        assert page["events"] == [_strip(e) for e in expected[:20]], filters
        ids, total = _walk(client, filters, 7)
        assert total == len(expected) and ids == [e["id"] for e in expected], filters
    # The case list exercises both empty and large results.
    sizes = {len(_brute(logged, f)) for f in QUERY_CASES}
    assert 0 in sizes and len(logged) in sizes and len(sizes) > 10


def test_query_bounds_are_inclusive_at_the_microsecond(
    seeded: tuple[AuditLedge, list[dict[str, Any]]],
) -> None:
    client, logged = seeded
    for event in logged[:12]:
        stamp = event["timestamp"]
        exact = client.query({"start_date": stamp, "end_date": stamp, "limit": 1000})
        expected = [e["id"] for e in _brute(logged, {"start_date": stamp, "end_date": stamp})]
        assert event["id"] in expected
        assert [e["id"] for e in exact["events"]] == expected and exact["total"] == len(expected)
        after = _stamp(datetime.fromisoformat(stamp) + timedelta(microseconds=1))
        assert event["id"] not in [
            e["id"] for e in client.query({"start_date": after, "limit": 1000})["events"]
        ]


def test_query_paging_limits_and_order(seeded: tuple[AuditLedge, list[dict[str, Any]]]) -> None:
    client, logged = seeded
    everything = _brute(logged, {})
    # Newest timestamp first, ties by commit order (later first): not the commit order.
    assert [e["id"] for e in everything] != [e["id"] for e in reversed(logged)]
    big = client.query({"limit": 5000})
    assert big["limit"] == 1000 and big["total"] == len(logged)
    assert [e["id"] for e in big["events"]] == [e["id"] for e in everything]
    past = client.query({"offset": 1000})
    assert past["events"] == [] and past["total"] == len(logged) and past["offset"] == 1000
    last = client.query({"limit": 10, "offset": len(logged) - 3})
    assert [e["id"] for e in last["events"]] == [e["id"] for e in everything[-3:]]
    one = client.query({"limit": 1, "offset": 5, "action": "invoice"})
    assert [e["id"] for e in one["events"]] == [
        e["id"] for e in _brute(logged, {"action": "invoice"})[5:6]
    ]


# ---------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------

EXPORT_CASES: list[dict[str, str]] = [
    {},
    {"organization_id": "acme"},
    {"organization_id": "acme", "start_date": "2026-03-11", "end_date": "2026-03-12"},
    {"actor_id": "user_zoe"},
    {"actor_name": "LIDD"},
    {"action": "user login"},
    {"resource_type": "report"},
    {"search": "invoice"},
    {"organization_id": "nobody"},
]


def _commit_ordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: e["sequence_global"])


def test_export_json_is_every_match_as_get_shows_it(
    seeded: tuple[AuditLedge, list[dict[str, Any]]],
) -> None:
    client, logged = seeded
    for filters in EXPORT_CASES:
        expected = [_strip(e) for e in _commit_ordered(_brute(logged, filters))]
        exported = client.export(filters or None)
        assert isinstance(exported, list), filters
        assert exported == expected, filters
        assert client.export({**filters, "format": "json"}) == expected, filters
    for event in client.export()[:5]:
        assert client.get(event["id"]) == event


def test_export_csv_has_the_documented_columns_and_parses_back(
    server: RunningServer, seeded: tuple[AuditLedge, list[dict[str, Any]]]
) -> None:
    client, logged = seeded
    for filters in EXPORT_CASES:
        text = client.export({**filters, "format": "csv"})
        assert isinstance(text, str) and not text.startswith("\ufeff"), filters
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        header = next(csv.reader(io.StringIO(text, newline="")))
        assert header[: len(CSV_REQUIRED)] == CSV_REQUIRED
        expected = _commit_ordered(_brute(logged, filters))
        assert len(rows) == len(expected), filters
        for row, event in zip(rows, expected, strict=True):
            assert row["id"] == event["id"]
            assert row["timestamp"] == event["timestamp"]
            assert row["organization_id"] == event["organization_id"]
            assert row["actor_id"] == event["actor"]["id"]
            assert row["actor_name"] == (event["actor"]["name"] or "")
            assert row["actor_email"] == (event["actor"]["email"] or "")
            assert row["action"] == event["action"]
            assert row["resource_type"] == event["resource"]["type"]
            assert row["resource_id"] == event["resource"]["id"]
            assert row["resource_name"] == (event["resource"]["name"] or "")
            assert json.loads(row["metadata"]) == event["metadata"]
            assert row["created_at"] == event["created_at"]
            assert int(row["sequence"]) == event["sequence"] and row["hash"] == event["hash"]
    with httpx.Client(base_url=server.url + MOUNT) as raw:
        answer = raw.get(
            "/events/export",
            params={"format": "csv", "organization_id": "nobody"},
            headers={"Authorization": f"Bearer {client.api_key}"},
        )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.text == ",".join(
        [*CSV_REQUIRED, "created_at", "sequence", "hash", "prev_hash"]
    ) + ("\r\n")


def test_csv_quotes_what_needs_quoting(server: RunningServer) -> None:
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    tricky = 'Smith, "Jr."\nsecond line'
    event = client.log(
        {
            "actor": {"id": "a", "name": tricky, "email": "=cmd|' /C calc'!A0"},
            "action": "x.y",
            "resource": {"type": "t", "id": "r", "name": "-10"},
            "metadata": {"quote": '"', "comma": ","},
        }
    )["event"]
    (row,) = list(csv.DictReader(io.StringIO(client.export({"format": "csv"}), newline="")))
    assert row["actor_name"] == tricky
    assert row["actor_email"] == "=cmd|' /C calc'!A0"  # exported as logged
    assert row["resource_name"] == "-10"
    assert json.loads(row["metadata"]) == event["metadata"]


# ---------------------------------------------------------------------------------------
# usage
# ---------------------------------------------------------------------------------------


def test_usage_counts_accepted_events_for_the_keys_scope(server: RunningServer) -> None:
    project_key = server.create_key(WRITE_READ_EXPORT)
    bound_key = server.create_key(WRITE_READ_EXPORT, organization="acme")
    client, bound = _client(server, project_key), _client(server, bound_key)
    reader = _client(server, server.create_key("events:read"))
    start = client.usage()
    assert start == {
        "plan": "growth",
        "events_this_month": 0,
        "events_limit": 2**53 - 1,
        "retention_days": 36500,
    }
    event = {"actor": {"id": "a"}, "action": "x.y", "resource": {"type": "t", "id": "r"}}
    for _ in range(3):
        client.log({**event, "organization_id": "globex"})
    for _ in range(2):
        bound.log(event)  # the key's organization: acme
    client.log({**event, "timestamp": "2020-01-01T00:00:00Z"})  # counted by ingest time
    with pytest.raises(AuditLedgeError):
        client.log({**event, "action": ""})  # rejected: not counted
    assert client.usage()["events_this_month"] == 6
    assert reader.usage()["events_this_month"] == 6
    assert bound.usage()["events_this_month"] == 2
    usage = bound.usage()
    assert all(isinstance(usage[k], int) for k in ("events_limit", "retention_days"))


# ---------------------------------------------------------------------------------------
# Access: keys, scopes, organizations.
# ---------------------------------------------------------------------------------------


def test_keys_scopes_and_bound_organizations(server: RunningServer) -> None:
    event = {"actor": {"id": "a"}, "action": "x.y", "resource": {"type": "t", "id": "r"}}
    admin = _client(server, server.admin_key)
    other = admin.log({**event, "organization_id": "globex"})["event"]
    bound = _client(server, server.create_key(WRITE_READ_EXPORT, organization="acme"))
    mine = bound.log(event)["event"]
    assert mine["organization_id"] == "acme"
    assert bound.log({**event, "organization_id": "acme"})["event"]["organization_id"] == "acme"
    with pytest.raises(AuditLedgeError, match="bound to another organization"):
        bound.log({**event, "organization_id": "globex"})
    with pytest.raises(AuditLedgeError, match="bound to another organization"):
        bound.query({"organization_id": "globex"})
    with pytest.raises(AuditLedgeError, match="bound to another organization"):
        bound.export({"organization_id": "globex"})
    with pytest.raises(AuditLedgeError, match=r"^event not found$"):
        bound.get(other["id"])
    seen = bound.query()
    assert seen["total"] == 2 and mine["id"] in {e["id"] for e in seen["events"]}
    assert seen == bound.query({"organization_id": "acme"})
    assert {e["organization_id"] for e in bound.export()} == {"acme"}
    assert admin.query()["total"] == 3

    writer = _client(server, server.create_key("events:write"))
    writer.log(event)
    with pytest.raises(AuditLedgeError, match="events:read"):
        writer.query()
    with pytest.raises(AuditLedgeError, match="events:read"):
        writer.get(mine["id"])
    reader = _client(server, server.create_key("events:read"))
    with pytest.raises(AuditLedgeError, match="events:write"):
        reader.log(event)
    with pytest.raises(AuditLedgeError, match="`export`"):
        reader.export()
    assert reader.query()["total"] == 4
    for key in ("tsk_live_" + "x" * 40, "not-a-key"):
        for call in (lambda c: c.log(event), lambda c: c.query(), lambda c: c.usage()):
            with pytest.raises(AuditLedgeError, match=r"^invalid API key$"):
                call(_client(server, key))


# ---------------------------------------------------------------------------------------
# Bad input: the server's message, nothing stored.
# ---------------------------------------------------------------------------------------

BAD_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({"action": ""}, "^action: must not be empty$"),
    ({"action": None}, "^action: is required$"),
    ({"action": 42}, "^action: expected a string, got int$"),
    ({"action": "a" * 300}, "^action: longer than 256"),
    ({"metadata": ["a", "b"]}, "^metadata: expected a JSON object, got list$"),
    ({"metadata": "text"}, "^metadata: expected a JSON object"),
    ({"metadata": 7}, "^metadata: expected a JSON object"),
    ({"metadata": {"x": float("nan")}}, "not valid JSON"),
    ({"metadata": {"x": float("inf")}}, "not valid JSON"),
    ({"metadata": {"big": 2**60}}, "^metadata.big: "),
    ({"timestamp": "yesterday"}, "^timestamp: 'yesterday' is not an ISO 8601 timestamp"),
    ({"timestamp": "2026-02-30T00:00:00Z"}, "^timestamp: .* is not a real date"),
    ({"timestamp": 1700000000}, "^timestamp: expected an ISO 8601 string, got int$"),
    ({"timestamp": "2026-01-01T00:00:00+25:00"}, "^timestamp: .*impossible UTC offset"),
    ({"organization_id": "has space"}, "^organization_id: "),
    ({"organization_id": 5}, "^organization_id: "),
    ({"actor": {"id": 123}}, "^actor.id: "),
    ({"actor": {"id": "a", "role": "admin"}}, "^actor.role: unknown field"),
    ({"resource": {"type": "t", "id": "r", "owner": "x"}}, "^resource.owner: unknown field"),
    ({"resource": {"type": 5, "id": "r"}}, "^resource.type: "),
    ({"ip": "1.2.3.4"}, "^ip: unknown field"),
    ({"metadata": {"blob": "x" * 70_000}}, "^event: event is .* bytes"),
]


def test_bad_input_reaches_the_caller_and_nothing_is_stored(server: RunningServer) -> None:
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    good = {"actor": {"id": "a"}, "action": "x.y", "resource": {"type": "t", "id": "r"}}
    client.log(good)
    for change, message in BAD_EVENTS:
        with pytest.raises(AuditLedgeError, match=message) as caught:
            client.log({**good, **change})
        assert isinstance(caught.value.args[0], str), change
    # The client's own checks (before any request).
    for event, message in [
        ({"action": "x", "resource": {"type": "t", "id": "r"}}, "event.actor is required"),
        ({"actor": {"id": "a"}, "resource": {"type": "t", "id": "r"}}, "event.action"),
        ({"actor": {"id": "a"}, "action": "x"}, "event.resource is required"),
    ]:
        with pytest.raises(AuditLedgeError, match=message):
            client.log(event)
    # Bad query and export parameters.
    for filters, message in [
        ({"limit": "abc"}, "^limit: expected an integer ≥ 1"),
        ({"limit": 0}, "^limit: expected an integer ≥ 1"),
        ({"limit": -5}, "^limit: expected an integer ≥ 1"),
        ({"offset": -1}, "^offset: expected an integer ≥ 0"),
        ({"offset": 1.5}, "^offset: expected an integer ≥ 0"),
        ({"start_date": "last week"}, "^start_date: 'last week' is not an ISO 8601"),
        ({"end_date": "2026-13-01"}, "^end_date: .*not a real date"),
        ({"resource_id": "r"}, "^resource_id: unknown query parameter"),
        ({"search": "..."}, "^search: '...' has no letters or digits"),
        ({"actor_name": "a\x00b"}, "^actor_name: contains NUL"),
    ]:
        with pytest.raises(AuditLedgeError, match=message):
            client.query(filters)
    with pytest.raises(AuditLedgeError, match=r"^format: expected 'json' or 'csv', got 'xml'$"):
        client.export({"format": "xml"})
    with pytest.raises(AuditLedgeError, match=r"^limit: unknown query parameter"):
        client.export({"limit": 5})
    with pytest.raises(AuditLedgeError, match=r"^event_id is required$"):
        client.get("")
    # Nothing of any rejected event was stored, in the façade or the native API.
    assert client.query()["total"] == 1 and client.usage()["events_this_month"] == 1
    with server.client() as native:
        listed = native.get("/v1/events", params={"total": "true"}).json()
        assert listed["total"] == 1
        assert native.get("/v1/logs/default").json()["tree_size"] == 1


# ---------------------------------------------------------------------------------------
# The wire: no redirects, doubled slashes, JSON on every non-CSV answer.
# ---------------------------------------------------------------------------------------


def test_a_base_url_with_a_trailing_slash_works_for_every_method(server: RunningServer) -> None:
    client = _client(server, server.create_key(WRITE_READ_EXPORT), slash=True)
    event = client.log(
        {"actor": {"id": "a"}, "action": "x.y", "resource": {"type": "t", "id": "r"}}
    )["event"]
    assert client.get(event["id"]) == event
    assert client.query()["events"] == [event]
    assert client.export() == [event]
    assert client.export({"format": "csv"}).count("\r\n") == 2
    assert client.usage()["events_this_month"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("GET", "/"),
        ("GET", "/events/"),
        ("POST", "/events/"),
        ("GET", "//events"),
        ("GET", "/events//export"),
        ("GET", "/usage/"),
        ("GET", "/nope"),
        ("POST", "/usage"),
        ("DELETE", "/events"),
        ("GET", "/events/export/"),
        ("GET", "/events/a/b"),
    ],
)
def test_nothing_under_the_mount_redirects(server: RunningServer, method: str, path: str) -> None:
    headers = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, follow_redirects=False) as raw:
        body = b'{"actor":{"id":"a"},"action":"x.y","resource":{"type":"t","id":"r"}}'
        answer = raw.request(
            method, MOUNT + path, headers=headers, content=body if method == "POST" else None
        )
    assert not 300 <= answer.status_code < 400, (answer.status_code, answer.headers)
    assert answer.headers["content-type"].startswith("application/json")
    payload = answer.json()
    if answer.status_code >= 400:
        assert isinstance(payload["error"], str) and payload["error"]
    expected: dict[str, int] = {
        "/events/": 200,
        "//events": 200,
        "/events//export": 200,
        "/usage/": 200,
        "/events/export/": 200,
    }
    if method == "POST":
        assert answer.status_code in (201, 405)
    elif path in expected:
        assert answer.status_code == expected[path]
    else:
        assert answer.status_code in (404, 405)


def test_errors_are_json_strings_and_gets_ignore_the_content_type(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url + MOUNT) as raw:
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
            answer = raw.get("/events", headers=headers)
            assert answer.status_code == 401 and answer.json()["error"] == "invalid API key"
        key = {"Authorization": f"Bearer {server.admin_key}"}
        answer = raw.post("/events", headers=key, content=b"")
        assert answer.status_code == 400 and isinstance(answer.json()["error"], str)
        answer = raw.post("/events", headers=key, content=b"[1, 2]")
        assert answer.status_code == 400 and "JSON object" in answer.json()["error"]
        answer = raw.post("/events", headers=key, content=b'{"action": NaN}')
        assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
        answer = raw.get("/events", headers={**key, "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["total"] == 0
        answer = raw.get("/events/export", headers=key)
        assert (
            answer.status_code == 200
            and answer.headers["content-type"].startswith("application/json")
            and answer.json() == []
        )


def test_query_values_are_form_decoded(seeded: tuple[AuditLedge, list[dict[str, Any]]]) -> None:
    """``urlencode`` sends a space as ``+`` and ``+`` as ``%2B``: both must mean what the
    caller wrote."""
    client, logged = seeded
    filters = {"actor_name": "Bob Mar", "start_date": "2026-03-11T10:00:00+01:00"}
    expected = _brute(logged, {"actor_name": "Bob Mar", "start_date": "2026-03-11T09:00:00Z"})
    assert expected
    assert [e["id"] for e in client.query({**filters, "limit": 100})["events"]] == [
        e["id"] for e in expected
    ]


def test_actions_outside_dot_notation_round_trip_and_match_in_mapped_form(
    server: RunningServer,
) -> None:
    """Such an action is indexed one character for one (others become ``_``) and shown
    back verbatim; a filter holding such characters is matched in that same form, so it
    finds every fragment of the original, and also a dot-notation action that reads the
    same with ``_`` (the documented approximation)."""
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    base = {"actor": {"id": "a", "name": "Ann"}, "resource": {"type": "t", "id": "r"}}
    odd = client.log({**base, "action": "Rechnung gelöscht!"})["event"]
    dots = client.log({**base, "action": "..x..", "timestamp": "2020-01-01T00:00:00Z"})["event"]
    plain = client.log({**base, "action": "rechnung_gel_scht_", "timestamp": "2020-01-02"})["event"]
    assert odd["action"] == "Rechnung gelöscht!" and client.get(odd["id"]) == odd
    assert dots["action"] == "..x.." and client.get(dots["id"])["action"] == "..x.."
    for fragment in ("rechnung g", "GELÖSCHT!", "ung gel", "!"):
        found = [e["id"] for e in client.query({"action": fragment})["events"]]
        assert odd["id"] in found, fragment
    assert [e["id"] for e in client.query({"action": "gelöscht"})["events"]] == [
        odd["id"],
        plain["id"],
    ]
    assert [e["id"] for e in client.query({"action": "x"})["events"]] == [dots["id"]]
    assert [e["id"] for e in client.query({"search": "rechnung"})["events"]] == [
        odd["id"],
        plain["id"],
    ]
    assert [e["action"] for e in client.export()] == [
        "Rechnung gelöscht!",
        "..x..",
        "rechnung_gel_scht_",
    ]


@pytest.fixture
def starter_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAILSEAL_AUDITLEDGE_PLAN", "starter")


def test_usage_reports_the_configured_plan(starter_plan: None, server: RunningServer) -> None:
    client = _client(server, server.create_key("events:read"))
    assert client.usage()["plan"] == "starter"


def test_facade_events_verify_offline_with_trailseal_verify(
    server: RunningServer, tmp_path: Path
) -> None:
    """An evidence pack of the façade's events (native export job) passes ``trailseal
    verify`` with the log's pinned key alone."""
    client = _client(server, server.create_key(WRITE_READ_EXPORT))
    for n in range(7):
        client.log(
            {
                "actor": {"id": f"u{n}", "name": "Ann"},
                "action": "invoice.paid" if n % 2 else "Rechnung bezahlt!",
                "resource": {"type": "invoice", "id": f"inv-{n}"},
                "organization_id": "acme",
                "metadata": {"n": n},
            }
        )
    with server.client(server.create_key("export")) as native:
        job = native.post("/v1/exports", json={"format": "evidence"}).json()
        deadline = time.monotonic() + 120
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
            job = native.get(f"/v1/exports/{job['job_id']}").json()
        assert job["status"] == "done", job
        pack = tmp_path / "pack.zip"
        pack.write_bytes(httpx.get(job["download_url"]).content)
    with server.client() as admin:
        key = admin.get("/v1/logs/acme").json()["verifier_key"]
    result = CliRunner().invoke(cli, ["verify", str(pack), "--key", key])
    assert result.exit_code == 0, result.output
    assert "verified: 7 entries in 1 log(s)" in result.output
