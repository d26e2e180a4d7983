"""SDK benchmarks, each figure beside its baseline from the same run (ARCHITECTURE §11).

1. ``Client.log()`` on the caller's thread (budget: median <= 20 µs, never blocking on the
   network): per-call median and p99, measured one call at a time with
   ``perf_counter_ns`` while the worker sends to a live local server, and again with the
   server unreachable (the worker retrying) — the caller must not notice. Beside them, the
   pieces it is made of: ``quick_check`` alone, ``orjson.dumps`` alone, and a bare
   ``queue.Queue.put_nowait``; and the timer's own overhead.
2. End-to-end throughput to a local server (``trailseal serve`` in a subprocess, SQLite in
   a temporary directory, or PostgreSQL with ``--database-url``): events/s from the first
   ``log()`` to the end of ``flush()``, every event acknowledged as durable. Baseline: the
   same events pre-serialized and posted as batches of the same size with a bare
   ``httpx.Client`` in a loop (the API's own speed for one sender).

Events are seeded, realistic 300-600 byte audit events, built before timing.

    .venv/bin/python benchmarks/bench_sdk.py            # full run
    .venv/bin/python benchmarks/bench_sdk.py --quick    # a few seconds
    .venv/bin/python benchmarks/bench_sdk.py --json     # machine-readable figures
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from trailseal.client import Client, RetryPolicy
from trailseal.core.schema import quick_check

SEED = 20261123
_NAMES = ["Zoë Ångström", "José Núñez", "Łukasz Żółć", "山田 太郎", "Ana Lima"]
_ACTIONS = ["invoice.deleted", "user.login", "document.shared", "api_key.created", "role.granted"]


def make_event(rnd: random.Random, organization: str) -> dict[str, Any]:
    """One realistic event as an application logs it (no id, no occurred_at)."""
    event: dict[str, Any] = {
        "action": rnd.choice(_ACTIONS),
        "actor": {"id": f"user_{rnd.randrange(10**6):06d}", "name": rnd.choice(_NAMES)},
        "organization_id": organization,
        "resource": {"type": "invoice", "id": f"inv_{rnd.randrange(10**8)}"},
        "context": {"ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}"},
        "metadata": {
            "amount": rnd.randrange(10**6) / 100,
            "currency": "EUR",
            "lines": rnd.randrange(40),
        },
    }
    if rnd.random() < 0.5:
        event["message"] = "Invoice removed after the customer's request, see ticket " + str(
            rnd.randrange(10**5)
        )
    if rnd.random() < 0.5:
        event["tags"] = ["billing", rnd.choice(["eu", "us", "apac"])]
    return event


# --- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_server(database_url: str | None) -> Iterator[tuple[str, str]]:
    """``trailseal serve`` on a free port; yields (url, admin key)."""
    port = _free_port()
    data = Path(tempfile.mkdtemp(prefix="bench-sdk-"))
    env = dict(os.environ, TRAILSEAL_DATA_DIR=str(data), TRAILSEAL_PORT=str(port))
    if database_url:
        env["TRAILSEAL_DATABASE_URL"] = database_url
        env.setdefault("TRAILSEAL_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    exe = shutil.which("trailseal", path=str(Path(sys.executable).parent)) or "trailseal"
    process = subprocess.Popen(
        [exe, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        admin = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.match(r"admin key: (tsk_\S+)", line)
            admin = found.group(1) if found else admin
            if "listening on" in line:
                break
        if admin is None:
            raise RuntimeError("the server did not print an admin key (reused database?)")
        url = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url, admin
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)


# --- 1. log() on the caller's thread ---------------------------------------------------------


def per_call_ns(
    call: Callable[[dict[str, Any]], object], events: Sequence[dict[str, Any]]
) -> list[int]:
    """One timing per call; each call gets a fresh copy, as ``log(**event)`` would."""
    clock = time.perf_counter_ns
    samples = []
    gc.collect()
    for event in events:
        fresh = dict(event)
        start = clock()
        call(fresh)
        samples.append(clock() - start)
    return samples


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": statistics.median(ordered) / 1000,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
    }


def bench_log_cost(url: str, key: str, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    results: dict[str, Any] = {"calls": len(events)}
    timer = per_call_ns(lambda e: None, events)
    results["timer_overhead"] = summary(timer)
    results["quick_check"] = summary(per_call_ns(quick_check, events))
    results["orjson_dumps"] = summary(per_call_ns(orjson.dumps, events))
    plain: queue.Queue[object] = queue.Queue()
    results["queue_put_nowait"] = summary(per_call_ns(plain.put_nowait, events))

    with Client(url, key, queue_size=len(events) + 1) as client:
        client.log(**events[0])  # start the worker and its connection
        client.flush(timeout=60)
        results["log_live_server"] = summary(per_call_ns(lambda e: client.log(**e), events))
        client.flush(timeout=300)
        results["log_live_server"]["delivered"] = client.stats().delivered

    # The worker retrying against a port nobody listens on: log() must not notice.
    unreachable = f"http://127.0.0.1:{_free_port()}"
    slow_retry = RetryPolicy(max_attempts=1000, initial_backoff=0.01, max_backoff=0.05)
    client = Client(unreachable, key, queue_size=len(events) + 1, retry=slow_retry)
    sdk_log = logging.getLogger("trailseal.client")
    level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)  # the undelivered events are expected here
    try:
        results["log_server_down"] = summary(per_call_ns(lambda e: client.log(**e), events))
    finally:
        client.close(timeout=0.1)
        sdk_log.setLevel(level)
    return results


# --- 2. end-to-end throughput ----------------------------------------------------------------


def bench_throughput(
    url: str, key: str, events: Sequence[dict[str, Any]], batch_size: int, repeat: int
) -> dict[str, Any]:
    best_sdk = best_raw = float("inf")
    for round_ in range(repeat):
        # Baseline: pre-serialized batches posted by one httpx.Client in a loop.
        rnd = random.Random(round_)
        bodies = []
        for start in range(0, len(events), batch_size):
            chunk = [
                dict(e, id=f"raw-{round_}-{start + n}-{rnd.getrandbits(32)}")
                for n, e in enumerate(events[start : start + batch_size])
            ]
            bodies.append(orjson.dumps({"events": chunk}))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            started = time.perf_counter()
            for body in bodies:
                http.post("/v1/events/batch", content=body).raise_for_status()
            best_raw = min(best_raw, time.perf_counter() - started)

        with Client(url, key, batch_size=batch_size, queue_size=len(events) + 1) as client:
            started = time.perf_counter()
            for event in events:
                client.log(**event)
            assert client.flush(timeout=600)
            best_sdk = min(best_sdk, time.perf_counter() - started)
            assert client.stats().delivered == len(events) and client.stats().failed == 0
    return {
        "events": len(events),
        "batch_size": batch_size,
        "sdk_events_per_s": len(events) / best_sdk,
        "raw_httpx_events_per_s": len(events) / best_raw,
        "ratio": best_raw / best_sdk,
    }


def _line(name: str, figures: dict[str, float]) -> str:
    return f"   {name:<34} median {figures['median_us']:6.2f} µs   p99 {figures['p99_us']:7.2f} µs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for 2 (default 3)")
    parser.add_argument("--events", type=int, help="events for 2 (default 100,000)")
    parser.add_argument("--batch-size", type=int, default=500, help="SDK batch size (500)")
    parser.add_argument("--database-url", help="PostgreSQL DSN for the server (default SQLite)")
    args = parser.parse_args(argv)
    say: Callable[[str], None] = (lambda _: None) if args.json else print

    calls = 5_000 if args.quick else 50_000
    count = args.events or (10_000 if args.quick else 100_000)
    rnd = random.Random(SEED)
    events = [make_event(rnd, f"org-{n % 8}") for n in range(max(calls, count))]
    sizes = [len(orjson.dumps(e)) for e in events[:2000]]
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "quick": args.quick,
            "database": "postgresql" if args.database_url else "sqlite",
        },
        "event_bytes": {"min": min(sizes), "max": max(sizes), "mean": statistics.fmean(sizes)},
    }
    with local_server(args.database_url) as (url, key):
        database = results["machine"]["database"]
        say(f"server {url} ({database}); events of {min(sizes)}-{max(sizes)} bytes")
        results["log"] = cost = bench_log_cost(url, key, events[:calls])
        say(f"\n1. log() on the caller's thread, {calls:,} calls (budget: median <= 20 µs)")
        say(_line("Client.log(), server up", cost["log_live_server"]))
        say(_line("Client.log(), server down", cost["log_server_down"]))
        say("   of which, alone:")
        say(_line("  core.schema.quick_check", cost["quick_check"]))
        say(_line("  orjson.dumps", cost["orjson_dumps"]))
        say(_line("  queue.Queue.put_nowait", cost["queue_put_nowait"]))
        say(_line("  (timer overhead)", cost["timer_overhead"]))
        results["throughput"] = tp = bench_throughput(
            url, key, events[:count], args.batch_size, 1 if args.quick else args.repeat
        )
        say(
            f"\n2. end to end, {tp['events']:,} events, batches of {tp['batch_size']}, "
            "acknowledged as durable\n"
            f"   SDK: log() ... flush()         {tp['sdk_events_per_s']:>10,.0f} events/s\n"
            f"   bare httpx batch posts (base)   {tp['raw_httpx_events_per_s']:>10,.0f} events/s\n"
            f"   ratio                           {tp['ratio']:>10.2f} x baseline"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
