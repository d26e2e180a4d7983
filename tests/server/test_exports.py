"""Exports over real HTTP on both drivers: CSV/JSON/NDJSON round trips and filters, jobs and
their expiring links, the PDF report (rendered with pdftoppm), evidence packs checked by
``trailseal verify``, and ``trailseal export``."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from tests.server.conftest import RunningServer
from trailseal.cli.main import cli
from trailseal.exports.formats import CSV_COLUMNS

# Awkward on purpose: non-ASCII, CSV's special characters, nesting, JSON-looking text.
AWKWARD = [
    {
        "action": "invoice.paid",
        "actor": {"id": "alice", "name": 'Zoë Ålander, "the" boss', "type": "user"},
        "resource": {"type": "invoice", "id": "inv_1"},
        "organization_id": "acme",
        "message": 'line one\nline two, with "quotes" and a comma\r\nend',
        "metadata": {"deep": {"list": [1, 2.5, None, True, {"ключ": "値"}]}, "emoji": "🧾"},
        "tags": ["pci", "gdpr"],
        "targets": [{"type": "user", "id": "bob", "name": "Bob, Jr."}],
        "occurred_at": "2026-11-02T10:00:00.123456Z",
    },
    {
        "action": "user.login",
        "actor": {"id": "bob"},
        "organization_id": "acme",
        "message": '=HYPERLINK("http://x")',
        "outcome": "failure",
        "occurred_at": "2026-11-03T10:00:00Z",
    },
    {
        "action": "invoice.deleted",
        "actor": {"id": "carol", "type": "service", "name": "批处理"},
        "organization_id": "globex",
        "metadata": {"a,b": 'c"d', "n": -12345678901},
        "occurred_at": "2026-11-04T00:00:00Z",
    },
]


def _ingest(server: RunningServer, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stored = []
    for event in events:
        event = {"id": f"x-{uuid.uuid4().hex}", **event}
        stored.append(event)
    with server.client() as client:
        for start in range(0, len(stored), 500):
            answer = client.post(
                "/v1/events/batch?sync=true", json={"events": stored[start : start + 500]}
            )
            assert answer.status_code in (200, 201, 202), answer.text
    return stored


def _expected(event: dict[str, Any]) -> dict[str, Any]:
    """The event as read back: read defaults applied, timestamps normalized."""
    out = dict(event)
    out["actor"] = {"type": "user", **event["actor"]}
    out.setdefault("outcome", "success")
    stamp = event["occurred_at"].rstrip("Z")
    if "." not in stamp:
        stamp += ".000000"
    out["occurred_at"] = stamp + "Z"
    return out


def _export(server: RunningServer, key: str, fmt: str, **params: Any) -> httpx.Response:
    with server.client(key) as client:
        return client.get(f"/v1/exports/events.{fmt}", params=params)


def _views(fmt: str, body: bytes) -> list[dict[str, Any]]:
    if fmt == "json":
        views: list[dict[str, Any]] = orjson.loads(body)
        return views
    assert body.endswith(b"\n") or body == b""
    return [orjson.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_formats_round_trip_what_was_ingested(server: RunningServer, fmt: str) -> None:
    sent = _ingest(server, AWKWARD)
    key = server.create_key("export")
    answer = _export(server, key, fmt)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(
        "application/json" if fmt == "json" else "application/x-ndjson"
    )
    views = _views(fmt, answer.content)
    # A batch is split per organization and the parts commit in any order; within one
    # organization the export keeps commit order.
    assert sorted(v["id"] for v in views) == sorted(e["id"] for e in sent)
    acme = [v["id"] for v in views if v["organization_id"] == "acme"]
    assert acme == [e["id"] for e in sent if e["organization_id"] == "acme"]
    by_id = {v["id"]: v for v in views}
    for event in sent:
        view = by_id[event["id"]]
        assert view["event"] == _expected(event)
        assert view["organization_id"] == event["organization_id"]
        assert len(view["leaf_hash"]) == 64 and len(view["hash"]) == 64
        assert view["redacted"] is False


def test_csv_round_trips_what_was_ingested(server: RunningServer) -> None:
    sent = _ingest(server, AWKWARD)
    key = server.create_key("export")
    answer = _export(server, key, "csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert not answer.content.startswith(b"\xef\xbb\xbf")  # no BOM by default
    assert b"\r\n" in answer.content  # RFC 4180 record separator
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8"), newline="")))
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert sorted(r["id"] for r in rows) == sorted(e["id"] for e in sent)
    by_id = {r["id"]: r for r in rows}
    for event in sent:
        row = by_id[event["id"]]
        expected = _expected(event)
        assert row["organization_id"] == event["organization_id"]
        assert row["occurred_at"] == expected["occurred_at"]
        assert row["action"] == event["action"]
        assert row["actor_id"] == event["actor"]["id"]
        assert row["actor_type"] == expected["actor"]["type"]
        assert row["actor_name"] == event["actor"].get("name", "")
        assert row["resource_type"] == event.get("resource", {}).get("type", "")
        assert row["resource_id"] == event.get("resource", {}).get("id", "")
        assert row["outcome"] == expected["outcome"]
        assert row["message"] == event.get("message", "")
        for column in ("targets", "tags", "metadata"):
            assert (json.loads(row[column]) if row[column] else None) == event.get(column)
        assert row["redacted"] == "false"
        assert int(row["seq"]) >= 0


def test_csv_for_spreadsheets_has_bom_and_defused_formulas(server: RunningServer) -> None:
    _ingest(server, AWKWARD)
    key = server.create_key("export")
    answer = _export(server, key, "csv", excel="true")
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))
    assert '\'=HYPERLINK("http://x")' in [r["message"] for r in rows]


def _seed_many(server: RunningServer, count: int = 300) -> list[dict[str, Any]]:
    events = []
    for n in range(count):
        events.append(
            {
                "action": ["invoice.paid", "invoice.sent", "user.login"][n % 3],
                "actor": {"id": ["alice", "bob", "carol"][n % 5 % 3]},
                "organization_id": ["acme", "globex"][n % 2],
                "occurred_at": f"2026-11-{1 + n % 20:02d}T10:00:00Z",
                "message": ["paid in full", "refund issued"][n % 7 % 2],
                "tags": [["pci"], [], ["sox", "pci"]][n % 3],
                **({"outcome": "failure"} if n % 4 == 0 else {}),
            }
        )
    return _ingest(server, events)


def _listed_ids(server: RunningServer, key: str, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    cursor = None
    with server.client(key) as client:
        while True:
            page = client.get(
                "/v1/events",
                params={
                    **params,
                    "order": "asc",
                    "limit": 200,
                    **({"cursor": cursor} if cursor else {}),
                },
            )
            assert page.status_code == 200, page.text
            ids += [e["id"] for e in page.json()["events"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return ids


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({}, lambda e: True),
    ({"organization_id": "globex"}, lambda e: e["organization_id"] == "globex"),
    ({"actor_id": "bob"}, lambda e: e["actor"]["id"] == "bob"),
    ({"action": "invoice.*"}, lambda e: e["action"].startswith("invoice.")),
    ({"outcome": "failure"}, lambda e: e.get("outcome") == "failure"),
    ({"tags": ["sox"]}, lambda e: "sox" in e["tags"]),
    (
        {"since": "2026-11-05", "until": "2026-11-09"},
        lambda e: "2026-11-05" <= e["occurred_at"][:10] <= "2026-11-09",
    ),
    ({"text": "refund issued"}, lambda e: e["message"] == "refund issued"),
    (
        {"q": "actor:alice action:invoice.* org:acme"},
        lambda e: (
            e["actor"]["id"] == "alice"
            and e["action"].startswith("invoice.")
            and e["organization_id"] == "acme"
        ),
    ),
]


def test_filters_apply_as_in_the_listing(server: RunningServer) -> None:
    sent = _seed_many(server)
    key = server.create_key("export,events:read")
    for params, predicate in FILTERS:
        expected = sorted(e["id"] for e in sent if predicate(e))
        assert expected, params
        listed = _listed_ids(server, key, params)  # commit order, as exports follow it
        assert sorted(listed) == expected, params
        for fmt in ("csv", "ndjson"):
            answer = _export(server, key, fmt, **params)
            assert answer.status_code == 200, answer.text
            if fmt == "csv":
                rows = csv.DictReader(io.StringIO(answer.text, newline=""))
                ids = [r["id"] for r in rows]
            else:
                ids = [v["id"] for v in _views(fmt, answer.content)]
            assert ids == listed, (fmt, params)


def test_exports_need_the_export_scope_and_confine_bound_keys(server: RunningServer) -> None:
    sent = _seed_many(server, 40)
    reader = server.create_key("events:read")
    assert _export(server, reader, "csv").status_code == 403
    assert httpx.get(f"{server.url}/v1/exports/events.csv").status_code == 401
    bound = server.create_key("export", organization="acme")
    views = _views("ndjson", _export(server, bound, "ndjson").content)
    assert sorted(v["id"] for v in views) == sorted(
        e["id"] for e in sent if e["organization_id"] == "acme"
    )
    assert _export(server, bound, "ndjson", organization_id="globex").status_code == 404
    with server.client(bound) as client:
        assert (
            client.post(
                "/v1/exports", json={"format": "csv", "organization_id": "globex"}
            ).status_code
            == 404
        )
    bad = _export(server, server.create_key("export"), "csv", outcome="maybe")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "/outcome"
    assert _export(server, server.create_key("export"), "xml").status_code == 422


def _run_job(server: RunningServer, key: str, body: dict[str, Any]) -> dict[str, Any]:
    with server.client(key) as client:
        created = client.post("/v1/exports", json=body)
        assert created.status_code == 202, created.text
        job: dict[str, Any] = created.json()
        assert job["status"] in ("queued", "running", "done")
        assert job["download_url"].startswith(server.url + "/v1/exports/download/")
        assert created.headers["location"] == job["status_url"]
        deadline = time.monotonic() + 120
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
            answer = client.get(f"/v1/exports/{job['job_id']}")
            assert answer.status_code == 200, answer.text
            job = answer.json()
        assert job["status"] == "done", job
        return job


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_job_downloads_the_same_bytes_without_auth(server: RunningServer, fmt: str) -> None:
    _seed_many(server, 120)
    key = server.create_key("export")
    job = _run_job(server, key, {"format": fmt, "action": "invoice.*"})
    assert job["progress"] == {"done": 80, "total": 80}
    download = httpx.get(job["download_url"])  # bare: no Authorization header
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    streamed = _export(server, key, fmt, action="invoice.*")
    assert download.content == streamed.content
    assert job["size_bytes"] == len(download.content)


def test_job_links_are_unguessable_and_expire(server: RunningServer) -> None:
    _seed_many(server, 10)
    key = server.create_key("export")
    job = _run_job(server, key, {"format": "ndjson"})
    url = job["download_url"]
    assert httpx.get(url).status_code == 200
    token = url.rsplit("/", 1)[1]
    job_id, secret = token.split(".")
    forged = f"{job_id}.{'A' * len(secret)}"
    assert httpx.get(url.replace(token, forged)).status_code == 404
    assert httpx.get(f"{server.url}/v1/exports/download/nonsense").status_code == 404
    # Another organization's key does not see the job; an unknown job is 404 too.
    with server.client(server.create_key("export", organization="acme")) as client:
        assert client.get(f"/v1/exports/{job_id}").status_code == 404
    with server.client(key) as client:
        assert client.get("/v1/exports/exp_" + "a" * 26).status_code == 404
    # Expire it (as the clock would): the link and the status answer 404.
    path = Path(server.settings.data_dir) / "exports" / f"{job_id}.job.json"
    record = orjson.loads(path.read_bytes())
    record["expires_at"] = time.time() - 1
    path.write_bytes(orjson.dumps(record))
    assert httpx.get(url).status_code == 404
    with server.client(key) as client:
        assert client.get(f"/v1/exports/{job_id}").status_code == 404


def _pages_have_ink(pdf: Path, out: Path) -> list[Path]:
    """Render with pdftoppm; every page must be a real image with dark pixels on it."""
    assert shutil.which("pdftoppm"), "pdftoppm (Debian poppler-utils) is needed"
    subprocess.run(["pdftoppm", "-r", "40", "-gray", str(pdf), str(out / "page")], check=True)
    pages = sorted(out.glob("page-*.pgm"))
    assert pages
    for page in pages:
        data = page.read_bytes()
        # PGM: "P5\n<w> <h>\n255\n" then one byte per pixel
        header_end = data.index(b"\n", data.index(b"\n", data.index(b"\n") + 1) + 1) + 1
        pixels = data[header_end:]
        assert len(pixels) > 10_000
        assert sum(1 for p in pixels[::7] if p < 128) > 50, f"{page.name} looks blank"
    return pages


def test_pdf_report_renders(server: RunningServer, tmp_path: Path) -> None:
    _ingest(server, AWKWARD)
    _seed_many(server, 150)
    key = server.create_key("export")
    job = _run_job(server, key, {"format": "pdf", "organization_id": "acme"})
    download = httpx.get(job["download_url"])
    assert download.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(download.content)
    assert download.content.startswith(b"%PDF-")
    pages = _pages_have_ink(pdf, tmp_path)
    assert len(pages) >= 2  # summary, then the table continues
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "All 77 events of organization 'acme' were verified against checkpoint" in text
    assert "Zoë Ålander" in text
    assert "organization_id" in text and "acme" in text


def test_pdf_of_a_large_selection_is_a_summary(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trailseal.exports.report as report

    monkeypatch.setattr(report, "MAX_REPORT_EVENTS", 20)  # the server runs in this process
    _seed_many(server, 60)
    job = _run_job(server, server.create_key("export"), {"format": "pdf"})
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(httpx.get(job["download_url"]).content)
    _pages_have_ink(pdf, tmp_path)
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "evidence pack" in text and "60 events" in text


def _verifier_keys(server: RunningServer) -> list[str]:
    with server.client() as client:
        return [log["verifier_key"] for log in client.get("/v1/logs").json()["logs"]]


def test_evidence_pack_verifies_offline(server: RunningServer, tmp_path: Path) -> None:
    sent = _ingest(server, AWKWARD)
    _seed_many(server, 100)
    job = _run_job(
        server, server.create_key("export"), {"format": "evidence", "action": "invoice.*"}
    )
    pack = tmp_path / "pack.zip"
    pack.write_bytes(httpx.get(job["download_url"]).content)
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        assert {"README.txt", "keys.txt", "manifest.json"} <= names
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["selection"] == {"action": "invoice.*"}
        lines = b"".join(archive.read(n) for n in names if n.endswith("entries.ndjson"))
        assert sent[0]["id"].encode() in lines and sent[1]["id"].encode() not in lines
    keys = _verifier_keys(server)
    runner = CliRunner()
    args = ["verify", str(pack)] + [a for k in keys for a in ("--key", k)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "verified: 69 entries in 2 log(s)" in result.output
    result = runner.invoke(cli, [*args, "--json"])
    report = json.loads(result.stdout)
    assert report["verified"] is True and report["entries"] == 69
    # Pinned keys of only one log: the other log's checkpoint is named.
    result = runner.invoke(cli, ["verify", str(pack), "--key", keys[0]])
    assert result.exit_code == 1
    assert "no pinned key for log" in result.output
    # No key at all is a usage error: keys.txt inside the pack is never used.
    assert runner.invoke(cli, ["verify", str(pack)]).exit_code == 2


def test_cli_export_streams_and_runs_jobs(server: RunningServer, tmp_path: Path) -> None:
    sent = _seed_many(server, 90)
    key = server.create_key("export")
    runner = CliRunner()
    base = ["export", "--url", server.url, "--api-key", key, "--quiet"]
    out = tmp_path / "acme.csv"
    result = runner.invoke(
        cli, [*base, "--format", "csv", "--organization", "acme", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert sorted(r["id"] for r in rows) == sorted(
        e["id"] for e in sent if e["organization_id"] == "acme"
    )

    out = tmp_path / "bob.ndjson"
    result = runner.invoke(
        cli,
        [*base, "--format", "ndjson", "--job", "--actor", "bob", "--tag", "pci", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    expected = sorted(e["id"] for e in sent if e["actor"]["id"] == "bob" and "pci" in e["tags"])
    assert sorted(v["id"] for v in _views("ndjson", out.read_bytes())) == expected

    pack = tmp_path / "pack.zip"
    result = runner.invoke(
        cli, [*base, "--format", "evidence", "-q", "org:globex", "-o", str(pack)]
    )
    assert result.exit_code == 0, result.output
    with server.client() as client:
        globex_key = client.get("/v1/logs/globex").json()["verifier_key"]
    assert runner.invoke(cli, ["verify", str(pack), "--key", globex_key]).exit_code == 0

    result = runner.invoke(
        cli, [*base, "--format", "csv", "--outcome", "failure", "--since", "nope"]
    )
    assert result.exit_code == 2 and "/since" in result.output
    result = runner.invoke(
        cli, ["export", "--url", server.url, "--api-key", "tsk_live_" + "x" * 40]
    )
    assert result.exit_code == 2
    result = runner.invoke(cli, ["export", "--url", "http://127.0.0.1:9", "--api-key", key])
    assert result.exit_code == 3


def test_abandoned_streams_free_their_workers(server: RunningServer) -> None:
    """More abandoned multi-page streams than stream workers; a full export still runs."""
    events = [{"action": "a.b", "actor": {"id": f"u{n}"}} for n in range(12_000)]
    with server.client() as client:
        for start in range(0, len(events), 1000):
            answer = client.post("/v1/events/batch", json={"events": events[start : start + 1000]})
            assert answer.status_code == 202, answer.text
    key = server.create_key("export")
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(6):
        with httpx.stream(
            "GET", f"{server.url}/v1/exports/events.ndjson", headers=headers, timeout=30
        ) as answer:
            assert answer.status_code == 200
            next(answer.iter_raw())
    started = time.monotonic()
    answer = _export(server, key, "ndjson")
    assert answer.content.count(b"\n") == 12_000
    assert time.monotonic() - started < 60
