"""Ingest over HTTP: sync with proofs, async receipts, batches, idempotency, errors."""

from __future__ import annotations

import uuid

from tests.server.conftest import RunningServer
from trailseal.core.checkpoint import log_verifiers, open_checkpoint
from trailseal.core.merkle import verify_inclusion


def _event(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": f"e-{uuid.uuid4().hex}",
        "action": "invoice.paid",
        "actor": {"id": "alice"},
        "organization_id": "acme",
    }
    body.update(extra)
    return body


def test_sync_ingest_returns_a_verifiable_proof(server: RunningServer) -> None:
    with server.client() as client:
        client.post("/v1/events?sync=true", json=_event()).raise_for_status()
        answer = client.post("/v1/events", json=_event(), headers={"X-Trailseal-Sync": "true"})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["seq"] == 1 and body["duplicate"] is False
        log = client.get("/v1/logs/acme").json()
    verifiers = log_verifiers(log["verifier_key"])
    opened = open_checkpoint(body["checkpoint"]["checkpoint"], verifiers, origin=log["origin"])
    assert opened.checkpoint.size == body["inclusion_proof"]["tree_size"] == 2
    verify_inclusion(
        1,
        2,
        bytes.fromhex(body["leaf_hash"]),
        [bytes.fromhex(h) for h in body["inclusion_proof"]["hashes"]],
        opened.checkpoint.root_hash,
    )


def test_async_ingest_answers_202_with_a_committed_receipt(server: RunningServer) -> None:
    event = _event()
    with server.client() as client:
        answer = client.post("/v1/events", json=event)
        assert answer.status_code == 202, answer.text
        receipt = answer.json()
        assert receipt["status"] == "committed" and receipt["event_ids"] == [event["id"]]
        followed = client.get(f"/v1/receipts/{receipt['receipt_id']}").json()
        assert followed["status"] == "committed"
        assert followed["events"][0]["seq"] == 0
        stored = client.get(f"/v1/events/{event['id']}").json()
        assert stored["event"]["action"] == "invoice.paid"
        assert stored["event"]["outcome"] == "success"  # a read default, never stored


def test_retry_returns_the_original_and_conflict_is_409(server: RunningServer) -> None:
    event = _event()
    with server.client() as client:
        first = client.post("/v1/events?sync=true", json=event).json()
        again = client.post("/v1/events?sync=true", json=event).json()
        assert again["duplicate"] is True and again["seq"] == first["seq"]
        conflict = client.post("/v1/events?sync=true", json=dict(event, action="other.thing"))
        assert conflict.status_code == 409
        assert conflict.json()["error"] == {
            "code": "idempotency_conflict",
            "field": "/id",
            "message": conflict.json()["error"]["message"],
        }


def test_idempotency_key_header_dedupes_events_without_ids(server: RunningServer) -> None:
    event = {"action": "user.login", "actor": {"id": "bob"}}
    headers = {"Idempotency-Key": "req-123"}
    with server.client() as client:
        first = client.post("/v1/events?sync=true", json=event, headers=headers).json()
        second = client.post("/v1/events?sync=true", json=event, headers=headers).json()
    assert first["id"] == second["id"] == "req-123" and second["duplicate"] is True


def test_batch_is_all_or_nothing_and_lists_every_problem(server: RunningServer) -> None:
    good = _event()
    events = [good, {"action": "x"}, _event(outcome="maybe")]
    with server.client() as client:
        answer = client.post("/v1/events/batch", json={"events": events})
        assert answer.status_code == 422
        error = answer.json()["error"]
        pointers = {d["pointer"] for d in error["details"]}
        assert {"/events/1/actor", "/events/2/outcome"} <= pointers
        assert client.get(f"/v1/events/{good['id']}").status_code == 404


def test_batch_sync_and_mixed_organizations(server: RunningServer) -> None:
    events = [_event(organization_id=org) for org in ("acme", "globex", "acme")]
    with server.client() as client:
        answer = client.post("/v1/events/batch?sync=true", json={"events": events})
        assert answer.status_code == 201, answer.text
        views = answer.json()["events"]
        assert [v["id"] for v in views] == [e["id"] for e in events]
        assert [v["organization_id"] for v in views] == ["acme", "globex", "acme"]
        assert [v["seq"] for v in views] == [0, 0, 1]


def test_bad_input_gets_a_machine_readable_4xx(server: RunningServer) -> None:
    with server.client() as client:
        for body, field in (
            (b"{not json", ""),
            (b"[]", ""),
            (b'{"action": 5, "actor": {"id": "a"}}', "/action"),
        ):
            answer = client.post(
                "/v1/events", content=body, headers={"Content-Type": "application/json"}
            )
            assert 400 <= answer.status_code < 500, answer.text
            assert set(answer.json()["error"]) >= {"code", "message", "field"}
            if field:
                assert answer.json()["error"]["field"] == field
        missing = client.post("/v1/events", json={"actor": {"id": "a"}}).json()["error"]
        assert missing["field"] == "/action" and missing["code"] == "required"


def test_auth_errors(server: RunningServer) -> None:
    with server.client("tsk_live_" + "x" * 40) as client:
        assert client.post("/v1/events", json=_event()).status_code == 401
    reader = server.create_key("events:read")
    with server.client(reader) as client:
        answer = client.post("/v1/events", json=_event())
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"


def test_health_metrics_openapi(server: RunningServer) -> None:
    with httpx_client(server) as client:
        assert client.get("/healthz").status_code == 200
        assert "trailseal_events_ingested" in client.get("/metrics").text
        paths = client.get("/openapi.json").json()["paths"]
        assert "/v1/events" in paths and "/v1/events/batch" in paths
        assert client.get("/docs").status_code == 200


def httpx_client(server: RunningServer):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Client(base_url=server.url, timeout=30)
