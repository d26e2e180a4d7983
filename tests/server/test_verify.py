"""Server-side verification of a range: untouched logs verify; tampering at rest in the
database is caught and the first bad entry is named."""

from __future__ import annotations

import sqlite3
import uuid

import psycopg

from tests.server.conftest import RunningServer


def _sql(server: RunningServer, statement: str, params: tuple[object, ...]) -> None:
    if server.settings.database_url:
        with psycopg.connect(server.settings.database_url, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s"), params)
    else:
        with sqlite3.connect(server.settings.sqlite_path) as conn:
            conn.execute(statement, params)


def _tamper_bytes(server: RunningServer, seq: int, old: bytes, new: bytes) -> None:
    """Change an entry's stored bytes behind trailseal's back, as a rogue operator would."""
    if server.settings.database_url:
        with psycopg.connect(server.settings.database_url, autocommit=True) as conn:
            row = conn.execute("SELECT entry FROM entries WHERE seq = %s", (seq,)).fetchone()
            assert row is not None
            conn.execute(
                "UPDATE entries SET entry = %s WHERE seq = %s",
                (bytes(row[0]).replace(old, new), seq),
            )
    else:
        with sqlite3.connect(server.settings.sqlite_path) as conn:
            row = conn.execute("SELECT entry FROM entries WHERE seq = ?", (seq,)).fetchone()
            conn.execute(
                "UPDATE entries SET entry = ? WHERE seq = ?", (bytes(row[0]).replace(old, new), seq)
            )


def _ingest(server: RunningServer, count: int) -> list[dict[str, object]]:
    events = [
        {
            "id": f"v-{uuid.uuid4().hex}",
            "action": "doc.read",
            "actor": {"id": "a"},
            "organization_id": "acme",
            "message": f"read {n}",
        }
        for n in range(count)
    ]
    with server.client() as client:
        for start in range(0, count, 100):
            client.post(
                "/v1/events/batch?sync=true", json={"events": events[start : start + 100]}
            ).raise_for_status()
    return events


def _verify(server: RunningServer, **body: object) -> dict[str, object]:
    with server.client(server.create_key("verify")) as client:
        answer = client.post("/v1/verify", json={"organization_id": "acme", **body})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def test_untouched_log_and_ranges_verify(server: RunningServer) -> None:
    _ingest(server, 300)
    whole = _verify(server)
    assert whole["ok"] is True and whole["checked"] == 300 and whole["tree_size"] == 300
    part = _verify(server, **{"from": 17, "to": 260})
    assert part["ok"] is True and part["checked"] == 243


def test_tampered_entry_bytes_are_named(server: RunningServer) -> None:
    _ingest(server, 50)
    _tamper_bytes(server, 7, b"read 7", b"read 8")
    report = _verify(server)
    assert report["ok"] is False and report["first_bad"] == "entry 7"
    sub = _verify(server, **{"from": 5, "to": 20})
    assert sub["ok"] is False and sub["first_bad"] == "entry 7"


def test_tampered_chain_and_leaf_are_named(server: RunningServer) -> None:
    _ingest(server, 40)
    _sql(server, "UPDATE entries SET chain_hash = ? WHERE seq = 12", (bytes(32),))
    report = _verify(server)
    assert report["ok"] is False and report["first_bad"] == "entry 12"


def test_redacted_entries_still_verify(server: RunningServer) -> None:
    events = _ingest(server, 30)
    _sql(server, "UPDATE entries SET entry = NULL WHERE event_id = ?", (events[4]["id"],))
    report = _verify(server)
    assert report["ok"] is True and report["redacted"] == 1


def test_bad_range_is_a_4xx_naming_the_field(server: RunningServer) -> None:
    _ingest(server, 5)
    with server.client() as client:
        answer = client.post("/v1/verify", json={"organization_id": "acme", "from": 3, "to": 99})
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "/to"
        missing = client.post("/v1/verify", json={"organization_id": "nobody"})
        assert missing.status_code == 404
