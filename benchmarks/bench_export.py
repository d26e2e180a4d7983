"""Export benchmark: CSV, JSON, NDJSON and evidence packs of 1 M events from the real server,
with the server process's peak RSS (budget ≤ 200 MB whatever the size, ARCHITECTURE §11).

Run ``.venv/bin/python benchmarks/bench_export.py [--events N] [--quick] [--json]``
(``--quick``: 100,000 events). The table goes to stdout (with ``--json``, one JSON document
instead and the table to stderr); progress lines go to stderr.

The server under test is the real one, unmodified: ``trailseal serve --port P --data-dir
TMP`` (SQLite, one process) in its own process group. Phases:

1. **Load**: N realistic events (300-600 bytes, 10 organizations, server-assigned ids)
   through ``POST /v1/events/batch`` (1000 per request, async, two client threads), until
   every one is sequenced. Not a figure of this benchmark (see bench_http.py).
2. The server is **restarted**, so that its RSS reflects exports only.
3. **Streams**: ``GET /v1/exports/events.{csv,json,ndjson}`` of all N events, read to the
   end by the client; events/s from the first request byte to the last response byte.
4. **Evidence pack of all N** events as a job (``POST /v1/exports``, polled until done);
   events/s over the job's own duration (created_at → finished_at), then downloaded.
5. **Evidence pack of one organization** (N/10 events: 100k for 1 M) as a job: build time;
   then ``verify_pack`` offline in a fresh Python process (time and its peak RSS).

RSS: the server's VmRSS sampled every 50 ms during each phase (peak shown per phase) and
its VmHWM (lifetime peak since the restart) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TRAILSEAL = ROOT / ".venv" / "bin" / "trailseal"
BUDGET_MB = 200.0
ORGANIZATIONS = [f"org-{n}" for n in range(10)]


def progress(message: str) -> None:
    print(f"[bench_export] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TRAILSEAL_PUBLIC_URL=self.url)
        self.stdout = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [str(TRAILSEAL), "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            stdout=self.stdout,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)

    def admin_key(self) -> str:
        self.stdout.seek(0)
        for line in self.stdout.read().decode().splitlines():
            if line.startswith("admin key: "):
                return line.removeprefix("admin key: ").strip()
        raise RuntimeError("no admin key printed")

    def rss_mb(self) -> float:
        return _status_kb(self.process.pid, "VmRSS") / 1024

    def hwm_mb(self) -> float:
        return _status_kb(self.process.pid, "VmHWM") / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def sampling(server: Server) -> Iterator[list[float]]:
    """Peak VmRSS (MB) of the server while the block runs: ``peak[0]``."""
    peak = [server.rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], server.rss_mb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], server.rss_mb())


WORDS = [
    "invoice",
    "payment",
    "refund",
    "user",
    "login",
    "export",
    "policy",
    "role",
    "key",
    "token",
    "account",
    "plan",
    "seat",
]


def _event(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "action": rng.choice(["invoice.paid", "invoice.sent", "user.login", "role.granted"]),
        "actor": {"id": f"user_{rng.randrange(1000)}", "name": f"User {n % 997} Zoë"},
        "resource": {"type": "invoice", "id": f"inv_{rng.randrange(10**6)}"},
        "occurred_at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
        "message": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 16))),
        "metadata": {"ip": f"10.0.{n % 256}.{rng.randrange(256)}", "plan": "pro", "n": n},
        "tags": rng.sample(["pci", "sox", "gdpr"], rng.randrange(0, 3)),
    }


def load(server: Server, key: str, total: int) -> float:
    per_thread = total // 2
    started = time.perf_counter()

    def send(worker: int) -> None:
        rng = random.Random(worker)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            for start in range(0, per_thread, 1000):
                organization = ORGANIZATIONS[(start // 1000 * 2 + worker) % len(ORGANIZATIONS)]
                events = [
                    {
                        **_event(rng, worker * per_thread + start + i),
                        "organization_id": organization,
                    }
                    for i in range(min(1000, per_thread - start))
                ]
                while True:
                    answer = client.post("/v1/events/batch", json={"events": events})
                    if answer.status_code != 503:
                        answer.raise_for_status()
                        break
                    time.sleep(float(answer.headers.get("retry-after", "1")))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        while True:
            sizes = sum(log["tree_size"] for log in client.get("/v1/logs").json()["logs"])
            if sizes >= per_thread * 2:
                break
            time.sleep(0.5)
    return time.perf_counter() - started


def stream(server: Server, key: str, fmt: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    with sampling(server) as peak:
        started = time.perf_counter()
        size = lines = 0
        with httpx.stream(
            "GET", f"{server.url}/v1/exports/events.{fmt}", headers=headers, timeout=600
        ) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_bytes(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size, "lines": lines, "peak_rss_mb": peak[0]}


def job(server: Server, key: str, body: dict[str, Any], out: Path) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    with (
        sampling(server) as peak,
        httpx.Client(base_url=server.url, headers=headers, timeout=60) as client,
    ):
        created = client.post("/v1/exports", json=body)
        created.raise_for_status()
        state = created.json()
        while state["status"] in ("queued", "running"):
            time.sleep(0.5)
            state = client.get(f"/v1/exports/{state['job_id']}").json()
        if state["status"] != "done":
            raise RuntimeError(f"export job failed: {state}")
        with (
            httpx.stream("GET", state["download_url"], timeout=600) as answer,
            out.open("wb") as target,
        ):
            answer.raise_for_status()
            for chunk in answer.iter_bytes(1 << 20):
                target.write(chunk)
    from datetime import datetime

    def parse(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    return {
        "seconds": parse(state["finished_at"]) - parse(state["created_at"]),
        "events": state["progress"]["done"],
        "bytes": out.stat().st_size,
        "peak_rss_mb": peak[0],
    }


VERIFY = """
import json, resource, sys, time
from trailseal.exports.pack import verify_pack
started = time.perf_counter()
report = verify_pack(sys.argv[1], sys.argv[2:])
print(json.dumps({"seconds": time.perf_counter() - started, "entries": report.entries,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def verify_offline(pack: Path, keys: Sequence[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", VERIFY, str(pack), *keys],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    total = 100_000 if args.quick else args.events
    total -= total % 2000
    results: dict[str, Any] = {"events": total, "budget_rss_mb": BUDGET_MB}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        data_dir, work = Path(tmp) / "data", Path(tmp)
        server = Server(data_dir)
        try:
            admin = server.admin_key()
            progress(f"loading {total} events")
            results["load_seconds"] = load(server, admin, total)
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {admin}"}
            ) as client:
                key = client.post("/v1/keys", json={"scopes": ["export"], "name": "bench"}).json()[
                    "key"
                ]
        finally:
            server.stop()
        progress(f"loaded in {results['load_seconds']:.0f} s; restarting the server")
        server = Server(data_dir)
        try:
            results["rss_after_restart_mb"] = server.rss_mb()
            for fmt in ("csv", "json", "ndjson"):
                progress(f"streaming {fmt}")
                results[fmt] = stream(server, key, fmt)
            progress("evidence pack of every event")
            results["evidence_all"] = job(server, key, {"format": "evidence"}, work / "all.zip")
            (work / "all.zip").unlink()
            progress("evidence pack of one organization")
            results["evidence_org"] = job(
                server,
                key,
                {"format": "evidence", "organization_id": ORGANIZATIONS[0]},
                work / "org.zip",
            )
            results["server_vmhwm_mb"] = server.hwm_mb()
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {admin}"}
            ) as client:
                org_key = client.get(f"/v1/logs/{ORGANIZATIONS[0]}").json()["verifier_key"]
        finally:
            server.stop()
        progress("verifying the organization's pack offline")
        results["verify_org"] = verify_offline(work / "org.zip", [org_key])

    rows = [["phase", "events", "seconds", "events/s", "size MB", "server peak RSS MB"]]
    for name in ("csv", "json", "ndjson"):
        r = results[name]
        events = r["lines"] - (1 if name == "csv" else 2 if name == "json" else 0)
        r["events"] = events
        rows.append(
            [
                f"stream {name}",
                str(events),
                f"{r['seconds']:.1f}",
                f"{events / r['seconds']:,.0f}",
                f"{r['bytes'] / 1e6:.0f}",
                f"{r['peak_rss_mb']:.0f}",
            ]
        )
    for name, label in (
        ("evidence_all", "evidence pack (all)"),
        ("evidence_org", "evidence pack (1 org)"),
    ):
        r = results[name]
        rows.append(
            [
                label,
                str(r["events"]),
                f"{r['seconds']:.1f}",
                f"{r['events'] / r['seconds']:,.0f}",
                f"{r['bytes'] / 1e6:.0f}",
                f"{r['peak_rss_mb']:.0f}",
            ]
        )
    v = results["verify_org"]
    rows.append(
        [
            "verify pack offline (1 org)",
            str(v["entries"]),
            f"{v['seconds']:.1f}",
            f"{v['entries'] / v['seconds']:,.0f}",
            "",
            f"(verifier {v['peak_rss_mb']:.0f})",
        ]
    )
    peak = max(
        results[k]["peak_rss_mb"] for k in ("csv", "json", "ndjson", "evidence_all", "evidence_org")
    )
    results["peak_rss_mb"] = max(peak, results["server_vmhwm_mb"])
    verdict = "within" if results["peak_rss_mb"] <= BUDGET_MB else "OVER"
    text = (
        table(rows) + f"\n\nserver RSS after restart {results['rss_after_restart_mb']:.0f} MB; "
        f"lifetime peak (VmHWM) {results['server_vmhwm_mb']:.0f} MB: {verdict} the "
        f"{BUDGET_MB:.0f} MB budget. Load: {total} events in {results['load_seconds']:.0f} s."
    )
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(results, indent=2))
    else:
        print(text)


if __name__ == "__main__":
    main()
