"""GET /v1/events over HTTP: filters and the query language against a brute-force filter
over what was ingested, cursor walks, confinement of bound keys, bad input."""

from __future__ import annotations

import random
import uuid
from typing import Any

from tests.server.conftest import RunningServer

ACTIONS = ["invoice.paid", "invoice.deleted", "invoice.sent", "user.login", "user.logout"]


def _seed(server: RunningServer, count: int = 120) -> list[dict[str, Any]]:
    rng = random.Random(7)
    events = []
    for n in range(count):
        event: dict[str, Any] = {
            "id": f"l-{uuid.uuid4().hex}",
            "action": rng.choice(ACTIONS),
            "actor": {"id": rng.choice(["alice", "bob", "carol"]), "name": "Zoë Example"},
            "organization_id": rng.choice(["acme", "globex"]),
            "occurred_at": f"2026-11-{1 + n % 20:02d}T10:00:00Z",
            "message": rng.choice(["paid in full", "refund issued", "password reset"]),
            "tags": rng.sample(["pci", "gdpr", "sox"], rng.randint(0, 2)),
        }
        if rng.random() < 0.3:
            event["outcome"] = "failure"
        events.append(event)
    with server.client() as client:
        for start in range(0, count, 50):
            client.post(
                "/v1/events/batch", json={"events": events[start : start + 50]}
            ).raise_for_status()
    return events


def _walk(server: RunningServer, params: dict[str, Any], key: str | None = None) -> list[str]:
    ids: list[str] = []
    with server.client(key) as client:
        cursor = None
        while True:
            page = client.get(
                "/v1/events",
                params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})},
            )
            assert page.status_code == 200, page.text
            body = page.json()
            ids.extend(e["id"] for e in body["events"])
            cursor = body["next_cursor"]
            if cursor is None:
                return ids


def test_filters_match_brute_force(server: RunningServer) -> None:
    events = _seed(server)
    cases: list[tuple[dict[str, Any], Any]] = [
        ({}, lambda e: True),
        ({"organization_id": "acme"}, lambda e: e["organization_id"] == "acme"),
        ({"actor_id": "bob"}, lambda e: e["actor"]["id"] == "bob"),
        ({"action": "invoice.*"}, lambda e: e["action"].startswith("invoice.")),
        ({"action": "user.login"}, lambda e: e["action"] == "user.login"),
        ({"outcome": "success"}, lambda e: e.get("outcome", "success") == "success"),
        ({"tags": ["pci"]}, lambda e: "pci" in e["tags"]),
        (
            {"since": "2026-11-05", "until": "2026-11-09"},
            lambda e: "2026-11-05" <= e["occurred_at"][:10] <= "2026-11-09",
        ),
        (
            {"q": 'actor:alice action:invoice.* "refund issued"'},
            lambda e: (
                e["actor"]["id"] == "alice"
                and e["action"].startswith("invoice.")
                and e["message"] == "refund issued"
            ),
        ),
        (
            {"q": "outcome:failure org:globex"},
            lambda e: e.get("outcome") == "failure" and e["organization_id"] == "globex",
        ),
        ({"actor_name": "zoë"}, lambda e: True),
    ]
    # A batch spanning organizations commits per organization, so commit order (the
    # listing order) is checked against the full listing, and membership by brute force.
    full = _walk(server, {})
    assert sorted(full) == sorted(e["id"] for e in events)
    for params, keep in cases:
        wanted = {e["id"] for e in events if keep(e)}
        assert _walk(server, params) == [i for i in full if i in wanted], params
    assert _walk(server, {"order": "asc"}) == list(reversed(full))
    with server.client() as client:
        counted = client.get("/v1/events", params={"actor_id": "carol", "total": "true"}).json()
        assert counted["total"] == sum(1 for e in events if e["actor"]["id"] == "carol")
        skipped = client.get("/v1/events", params={"offset": 5, "limit": 3}).json()["events"]
        assert [e["id"] for e in skipped] == full[5:8]


def test_bound_key_sees_only_its_organization(server: RunningServer) -> None:
    events = _seed(server, 40)
    bound = server.create_key("events:read", organization="acme")
    acme = {e["id"] for e in events if e["organization_id"] == "acme"}
    assert _walk(server, {}, bound) == [i for i in _walk(server, {}) if i in acme]
    with server.client(bound) as client:
        assert client.get("/v1/events", params={"organization_id": "globex"}).status_code == 404


def test_bad_listing_input_is_a_clear_4xx(server: RunningServer) -> None:
    with server.client() as client:
        for params, field in (
            ({"cursor": "garbage!"}, "/cursor"),
            ({"q": "nope:x"}, "/q"),
            ({"outcome": "maybe"}, "/outcome"),
            ({"since": "yesterday"}, "/since"),
        ):
            answer = client.get("/v1/events", params=params)
            assert answer.status_code == 422, (params, answer.text)
            assert answer.json()["error"]["field"] == field, answer.text
        first = client.get("/v1/events", params={"limit": 1, "actor_id": "x"}).json()
        assert first["events"] == [] and first["next_cursor"] is None
