"""HTTP benchmark: the real server under load from separate generator processes.

Run ``.venv/bin/python benchmarks/bench_http.py [--quick] [--json] [--driver D]`` with D one
of ``sqlite``, ``postgres``, ``both`` (default). The full run is bounded to 14 minutes (the
fill-up of part 3 is cut short to fit; every loop has a deadline and a count bound),
``--quick`` takes under a minute on an idle machine and skips the storage baseline
(``--baseline`` forces it). The table goes to stdout; with ``--json`` stdout carries one
JSON document instead (the table then goes to stderr).
Progress lines always go to stderr. Everything is on 127.0.0.1; clients ignore proxy
settings from the environment.

The server under test is the real one, unmodified: ``.venv/bin/trailseal serve --port P
--data-dir TMP [--workers N]`` in its own process group; its ``admin key: tsk_live_…`` line is
read from its stdout and the run waits for ``GET /healthz``. SQLite lives in the temporary
data directory (WAL, synchronous=FULL: the store's own settings). PostgreSQL is a
throwaway PostgreSQL 15 cluster from ``tests/pgserver.py`` in durable mode (fsync and
synchronous_commit on), the server getting ``TRAILSEAL_DATABASE_URL`` and a random
``TRAILSEAL_MASTER_KEY``. The load generators are separate processes (``multiprocessing``,
spawn): the machine's two cores are shared by server, database and generators, so every
figure comes with the CPU seconds each of them used and the load average.

What is measured, per driver (ARCHITECTURE §11 budgets):

1. **Batch ingest over HTTP** (budget ≥ 20,000 events/s, moonshot 50,000): ``POST
   /v1/events/batch`` with 1000 realistic events per request (300-600 bytes each; ids from
   ``IdGenerator``, time-ordered as the SDK sends them), async mode, where a 202 means
   durable (§6). G generator processes × C connections (one thread and one ``httpx.Client``
   each) send closed-loop for a fixed time (and at most a fixed number of batches).
   Two shapes: *mixed* batches, each spanning four organizations (the server splits such a
   batch per organization and appends the parts in parallel), and *single-organization*
   batches (each batch one organization, batches rotating over the same four). Reported:
   events acknowledged with 2xx per second of the phase, how many of them the 202 reported
   as already committed (the rest were parked in the durable intake because the sequencer
   was behind), and the *sequenced* rate (events over the time until every acknowledged
   event is in a log, read from ``GET /v1/logs``), with request latency and the CPU used.
   The figure of the storage benchmark (``bench_append.bench_overhead``: the plain INSERT
   of the same rows and the in-process ``ledger.append``) is printed beside it, measured
   after the server has stopped. The server's ``/metrics`` group-commit batch-size
   histogram is summarized after the ingest phases (one worker process's view).
2. **Sync single-event latency** (budget p99 ≤ 25 ms at 500 requests/s): ``POST
   /v1/events?sync=true``, open loop: each generator process schedules its sends at fixed
   instants (asyncio on uvloop) and never waits for an answer to send the next, so a slow
   server cannot slow the offered load. The client is a minimal keep-alive HTTP/1.1 client
   on asyncio streams (:class:`RawPool`; ``--sync-client httpx`` uses ``httpx.AsyncClient``
   instead, which on this machine costs ~10x the CPU per request and cannot offer 500/s).
   Latency is measured from the *scheduled* instant (so generator lag counts against the
   figure: no coordinated omission); the service time from the actual send and the send
   lag are shown too.
3. **Query** (budget p99 ≤ 50 ms): one page of 50 over the events loaded (1,000,000: the
   ingest phases' database, filled up through the batch endpoint, time-bounded; 10M does
   not fit the run's time bound on this machine), sequentially on one connection:
   (a) ``actor_id`` + ``action=invoice.*`` + a 3-day ``since``/``until`` window, (b) a
   full-text term (``text=…``). Selectivities are realistic: 1000 actors (each ~1/1000 of
   the events), events spread over 30 days of ``occurred_at``, 5 rare words each in ~1% of
   messages. Values rotate between requests; matches are counted with ``total=true``
   (untimed). On PostgreSQL the run first does ``ANALYZE entries`` (timed, printed), as
   after any bulk load: a minutes-old database has no planner statistics until
   autovacuum's first analyze.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import json
import math
import multiprocessing
import os
import platform
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.pgserver: the throwaway PostgreSQL server
BENCHMARKS = Path(__file__).resolve().parent
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))  # bench_append: the storage baseline

from trailseal.core.ids import IdGenerator  # noqa: E402

TRAILSEAL = REPO / ".venv" / "bin" / "trailseal"
HOST = "127.0.0.1"
BATCH = 1000
ORGANIZATIONS = ("org_acme", "org_globex", "org_initech", "org_umbrella")
ACTORS = 1000
TEMPLATES = 8192
SPAN_DAYS = 30
WINDOW_DAYS = 3
TERMS = ("chargeback", "quarantined", "escalation", "subpoena", "reconciled")
TERM_SHARE = 0.05  # of messages carry one of the TERMS: each term in ~1% of messages
BASE_MS = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
INGEST_BUDGET = 20_000
INGEST_MOONSHOT = 50_000
SYNC_BUDGET_MS = 25.0
SYNC_RATE = 500.0
QUERY_BUDGET_MS = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- output ------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[bench_http {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        first, *rest = cells
        right = (str(c).rjust(w) for c, w in zip(rest, widths[1:], strict=True))
        return "  ".join([str(first).ljust(widths[0]), *right]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, fmt(header), rule, *(fmt(r) for r in rows)])


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(q / 100 * len(sorted_values)))) - 1
    return sorted_values[rank]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


# --- CPU accounting ----------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds including waited-for children) for every process."""
    out: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        out[int(entry.name)] = (int(fields[1]), ticks / CLK_TCK)
    return out


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds of the process trees under ``roots`` (live processes plus what their
    exited, reaped children used). 0 where /proc is unavailable."""
    try:
        procs = _proc_table()
    except OSError:
        return 0.0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0.0, list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        total += procs[pid][1]
        stack.extend(children.get(pid, ()))
    return total


class CpuMeter:
    """CPU seconds used by the server, the database and the generators over a window."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._start: tuple[float, float, float] = (0.0, 0.0, time.monotonic())
        self.load_before = load_average()

    def start(self) -> None:
        self._start = (self._server.cpu(), self._server.database_cpu(), time.monotonic())

    def stop(self, generators_s: float) -> dict[str, float]:
        server, database, started = self._start
        seconds = time.monotonic() - started
        return {
            "window_s": seconds,
            "server": self._server.cpu() - server,
            "database": self._server.database_cpu() - database,
            "generators": generators_s,
        }


# --- events ------------------------------------------------------------------------------

_ACTIONS = (
    "invoice.created",
    "invoice.paid",
    "invoice.voided",
    "user.login",
    "user.logout",
    "user.invited",
    "user.password_changed",
    "document.viewed",
    "document.shared",
    "document.deleted",
    "role.granted",
    "api_key.created",
    "settings.updated",
    "export.requested",
)
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus", "Margaret")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman")
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "acme-cli/2.4.1 python-httpx/0.27",
)
_CHANNELS = ("dashboard", "api", "cli", "mobile app", "sso")


def actor_id(number: int) -> str:
    return f"user_{number:04d}"


def _actor(number: int) -> dict[str, Any]:
    rng = random.Random(number)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "id": actor_id(number),
        "type": "user",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{number}@acme.example",
    }


def _template(rng: random.Random) -> dict[str, Any]:
    """An event without id, time, actor and organization (filled in per event)."""
    action = rng.choice(_ACTIONS)
    kind, verb = action.split(".", 1)
    resource = f"{kind}_{rng.randrange(16**10):010x}"
    event: dict[str, Any] = {
        "action": action,
        "resource": {"type": kind, "id": resource},
        "context": {
            "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "user_agent": rng.choice(_AGENTS),
            "request_id": f"req_{rng.randrange(16**16):016x}",
        },
    }
    if rng.random() < 0.6:
        event["metadata"] = {
            "plan": rng.choice(("free", "team", "enterprise")),
            "amount": rng.randrange(100_000),
            "currency": "EUR",
        }
    if rng.random() < 0.7:
        message = f"{verb.replace('_', ' ')} {kind} {resource} via {rng.choice(_CHANNELS)}"
        if rng.random() < TERM_SHARE:
            message += f" ({rng.choice(TERMS)})"
        event["message"] = message
    if rng.random() < 0.25:
        event["targets"] = [{"type": "user", "id": actor_id(rng.randrange(ACTORS))}]
    if rng.random() < 0.25:
        event["tags"] = rng.sample(("billing", "security", "web", "api", "admin"), 2)
    if rng.random() < 0.05:
        event["outcome"] = "failure"
    return event


_DAY_MS = 86_400_000
_DATES: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC text of a Unix time in milliseconds (the stored form's shape)."""
    day, rest = divmod(ms, _DAY_MS)
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}000Z"


class EventPool:
    """The seeded event material every generator shares: ``TEMPLATES`` templates and a
    table of 65,536 (template, actor) pairs; event number ``g`` takes the pair at ``g``
    modulo the table's size, so the data set depends on the seed only, not on which
    process or thread sent which batch."""

    SIZE = 65_536

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        templates = [_template(rng) for _ in range(TEMPLATES)]
        actors = [_actor(n) for n in range(ACTORS)]
        self.pairs = [
            (templates[rng.randrange(TEMPLATES)], actors[rng.randrange(ACTORS)])
            for _ in range(self.SIZE)
        ]


class EventFactory:
    """Realistic events as an SDK sends them. Event number ``g`` (a global index handed
    out by the parent, so that processes never overlap) occurred at ``BASE_MS + g *
    step_ms``; its id comes from this factory's ``IdGenerator`` on that simulated clock, so
    ids are time-ordered across processes up to the few batches in flight. The bulk of the
    event comes from the shared :class:`EventPool` (cheap: the generator must not eat the
    CPU the server needs); id, time and organization are set per event."""

    def __init__(self, pool: EventPool, seed: int, step_ms: float) -> None:
        self._pairs = pool.pairs
        self._step = step_ms
        self._ms = BASE_MS
        self._ids = IdGenerator(lambda: self._ms, random.Random(seed).randbytes)

    def event(self, index: int, organization: str) -> dict[str, Any]:
        self._ms = ms = BASE_MS + int(index * self._step)
        template, actor = self._pairs[index % EventPool.SIZE]
        event = dict(template)
        event["id"] = self._ids.next()
        event["occurred_at"] = iso_ms(ms)
        event["actor"] = actor
        event["organization_id"] = organization
        return event

    def batch(self, first: int, count: int, organizations: Sequence[str]) -> list[dict[str, Any]]:
        width = len(organizations)
        return [self.event(first + n, organizations[(first + n) % width]) for n in range(count)]


# --- the server under test ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """``trailseal serve`` in its own process group, with its database."""

    driver: str
    workers: int
    url: str
    admin_key: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    database_pids: list[int]
    dsn: str | None
    log: Path

    def cpu(self) -> float:
        return tree_cpu([self.process.pid])

    def database_cpu(self) -> float:
        return tree_cpu(self.database_pids) if self.database_pids else 0.0

    def database_mb(self) -> float:
        if self.dsn is None:
            return sum(p.stat().st_size for p in self.data_dir.glob("trailseal.db*")) / 1e6
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) / 1e6 if row else 0.0

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _postmaster_pids(directory: Path) -> list[int]:
    try:
        return [int((directory / "data" / "postmaster.pid").read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []


@contextlib.contextmanager
def running_server(driver: str, workers: int, deadline_s: float = 60.0) -> Iterator[Server]:
    """Start PostgreSQL (for ``postgres``) and the server; stop both on exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="trailseal-bench-http-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    pg: Any = None
    server: Server | None = None
    try:
        dsn: str | None = None
        database_pids: list[int] = []
        if driver == "postgres":
            from tests.pgserver import start_postgres

            progress("starting a throwaway PostgreSQL 15 (durable)")
            pg = start_postgres(durable=True)
            dsn = pg.create_database("trailseal")
            database_pids = _postmaster_pids(pg.directory)
            env["TRAILSEAL_DATABASE_URL"] = dsn
            env["TRAILSEAL_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
        port = free_port()
        log = data_dir / "server.log"
        argv = [str(TRAILSEAL), "serve", "--host", HOST, "--port", str(port)]
        argv += ["--data-dir", str(data_dir), "--workers", str(workers)]
        progress(f"starting: {' '.join(argv[1:])}")
        with log.open("wb") as err:
            process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
            )
        url = f"http://{HOST}:{port}"
        server = Server(driver, workers, url, "", process, data_dir, database_pids, dsn, log)
        deadline = time.monotonic() + deadline_s
        server.admin_key = _read_admin_key(process, data_dir, deadline)
        with httpx.Client(base_url=url, trust_env=False, timeout=2.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    detail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"/healthz never answered 200; server stderr:\n{detail}")
                time.sleep(0.05)
        yield server
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _read_admin_key(process: subprocess.Popen[bytes], data_dir: Path, deadline: float) -> str:
    """The ``admin key: tsk_live_…`` line of the server's stdout. A thread keeps reading
    stdout afterwards (into ``server.stdout``) so the server never blocks on a full pipe."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        with (data_dir / "server.stdout").open("wb") as out:
            for raw in process.stdout:
                out.write(raw)
                out.flush()
                lines.put(raw.decode(errors="replace").strip())
        lines.put(None)

    threading.Thread(target=pump, name="server-stdout", daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None or time.monotonic() > deadline:
            detail = (data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server printed no admin key; its stderr:\n{detail}")
        if line.startswith("admin key: "):
            return line.removeprefix("admin key: ").strip()


def committed_events(client: httpx.Client) -> int:
    """Entries in all the project's logs (the sum of their tree sizes)."""
    response = client.get("/v1/logs")
    response.raise_for_status()
    return sum(int(log["tree_size"]) for log in response.json()["logs"])


def wait_sequenced(client: httpx.Client, expected: int, deadline_s: float) -> tuple[int, float]:
    """Poll until ``expected`` entries are in the logs (or the deadline); returns the count
    seen and the monotonic instant it was reached (or the deadline)."""
    deadline = time.monotonic() + deadline_s
    while True:
        seen = committed_events(client)
        now = time.monotonic()
        if seen >= expected or now > deadline:
            return seen, now
        time.sleep(0.1)


def scrape_metrics(url: str) -> dict[str, Any]:
    """The group-commit histograms from /metrics (one worker process's counters)."""
    try:
        with httpx.Client(base_url=url, trust_env=False, timeout=30.0) as client:
            text = client.get("/metrics").text
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    buckets: dict[str, float] = {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith('trailseal_batch_events_bucket{le="'):
            buckets[name.split('"')[1]] = float(value)
        elif name in (
            "trailseal_batch_events_count",
            "trailseal_batch_events_sum",
            "trailseal_commit_seconds_count",
            "trailseal_commit_seconds_sum",
            "trailseal_events_ingested_total",
        ):
            values[name] = float(value)
    commits = values.get("trailseal_batch_events_count", 0.0)
    per_bucket: dict[str, int] = {}
    previous = 0.0
    for le, count in buckets.items():
        per_bucket[le] = int(count - previous)
        previous = count
    return {
        "commits": int(commits),
        "events": int(values.get("trailseal_batch_events_sum", 0.0)),
        "mean_batch": values.get("trailseal_batch_events_sum", 0.0) / commits if commits else 0.0,
        "mean_commit_ms": values.get("trailseal_commit_seconds_sum", 0.0)
        / max(1.0, values.get("trailseal_commit_seconds_count", 0.0))
        * 1e3,
        "batch_size_buckets": per_bucket,
    }


# --- generator processes -----------------------------------------------------------------


@dataclass(frozen=True)
class IngestJob:
    url: str
    key: str
    organizations: tuple[str, ...]
    per_batch_organizations: bool  # True: each batch one organization (rotating)
    connections: int
    seed: int  # the data set's (EventPool)
    stream: int  # the id generators' (one per phase)
    step_ms: float
    duration_s: float
    max_index: int  # count bound: no event numbered >= this is sent
    timeout_s: float = 60.0


@dataclass
class _Sender:
    """One connection of an ingest generator and what it recorded."""

    factory: EventFactory
    client: httpx.Client
    records: list[tuple[float, float, int, int, int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    build_s: float = 0.0


def _ingest_loop(job: IngestJob, sender: _Sender, counter: Any, start_at: Any) -> None:
    """Closed loop until the deadline or the count bound: take the next batch number,
    build the batch, send it, record (sent, done, status, events, committed, parked)."""
    deadline = start_at.value + job.duration_s
    while time.monotonic() < deadline:
        with counter.get_lock():
            first = counter.value
            if first + BATCH > job.max_index:
                return
            counter.value = first + BATCH
        t0 = time.perf_counter()
        organizations = job.organizations
        if job.per_batch_organizations:
            organizations = (organizations[(first // BATCH) % len(organizations)],)
        body = orjson.dumps({"events": sender.factory.batch(first, BATCH, organizations)})
        sender.build_s += time.perf_counter() - t0
        sent = time.monotonic()
        committed = parked = 0
        try:
            response = sender.client.post("/v1/events/batch", content=body)
            status = response.status_code
            if status == 202:
                answer = orjson.loads(response.content)
                for receipt in answer.get("receipts", [answer]):
                    if receipt["status"] == "committed":
                        committed += len(receipt["event_ids"])
                    else:
                        parked += len(receipt["event_ids"])
            elif len(sender.errors) < 5:
                sender.errors.append(f"HTTP {status}: {response.text[:200]}")
            if status == 503:
                time.sleep(0.1)
        except httpx.HTTPError as exc:
            status = 0
            if len(sender.errors) < 5:
                sender.errors.append(f"{type(exc).__name__}: {exc}")
        sender.records.append((sent, time.monotonic(), status, BATCH, committed, parked))


def ingest_process(
    job: IngestJob, number: int, counter: Any, start_at: Any, go: EventType, results: Any
) -> None:
    """One generator process: ``job.connections`` threads, one connection each. All the
    setup (event pool, clients, a first connection each) happens before it reports ready."""
    pool = EventPool(job.seed)
    headers = {"Authorization": f"Bearer {job.key}", "Content-Type": "application/json"}
    senders = []
    for n in range(job.connections):
        client = httpx.Client(
            base_url=job.url, headers=headers, trust_env=False, timeout=job.timeout_s
        )
        client.get("/healthz")
        factory = EventFactory(pool, hash((job.seed, job.stream, number, n)), job.step_ms)
        senders.append(_Sender(factory, client))
    results.put(("ready", number))
    try:
        if not go.wait(60):
            results.put(("done", number, [], ["never started"], 0.0, 0.0))
            return
        cpu0 = time.process_time()
        threads = [
            threading.Thread(target=_ingest_loop, args=(job, sender, counter, start_at))
            for sender in senders
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu = time.process_time() - cpu0
    finally:
        for sender in senders:
            sender.client.close()
    results.put(
        (
            "done",
            number,
            [r for sender in senders for r in sender.records],
            [e for sender in senders for e in sender.errors],
            cpu,
            sum(sender.build_s for sender in senders),
        )
    )


@dataclass(frozen=True)
class SyncJob:
    url: str
    key: str
    rate: float  # requests/s over all processes
    processes: int
    duration_s: float
    seed: int
    stream: int
    step_ms: float
    first_index: int
    client: str  # "raw" or "httpx"
    connections: int = 64  # per process
    timeout_s: float = 5.0


class RawPool:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for the open-loop phase.

    Measured on this machine against a do-nothing ASGI app in another process,
    ``httpx.AsyncClient`` costs 2-9 ms of generator CPU per request and cannot offer 500
    requests/s from one process (its pool bookkeeping grows with the queue), while this
    costs ~0.25 ms; on two cores the difference would otherwise be taken from the server.
    It speaks only what the benchmark needs: one request per connection at a time,
    ``Content-Length`` bodies (uvicorn's answers here), no redirects, no TLS."""

    def __init__(self, url: str, size: int) -> None:
        parsed = httpx.URL(url)
        self._host, self._port = str(parsed.host), int(parsed.port or 80)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(size)

    def head(self, target: str, key: str, length: int) -> bytes:
        return (
            f"POST {target} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send one request and read its answer. A reused connection that the server
        closed while idle (uvicorn's keep-alive timeout) fails before any answer byte;
        like other clients, that case is retried once on a new connection."""
        async with self._slots:
            if self._idle:
                reader, writer = self._idle.pop()
                try:
                    return await self._exchange(reader, writer, data)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise
            reader, writer = await asyncio.open_connection(self._host, self._port)
            return await self._exchange(reader, writer, data)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
    ) -> tuple[int, bytes]:
        try:
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, keep = 0, True
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            body = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return status, body

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


def sync_process(job: SyncJob, number: int, start_at: Any, go: EventType, results: Any) -> None:
    """One open-loop generator process: sends number, number + P, number + 2P, … at
    ``start + k / rate``, each in its own task, never waiting for earlier answers."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_sync_main(job, number, start_at, go, results))
    else:
        uvloop.run(_sync_main(job, number, start_at, go, results))


async def _sync_main(job: SyncJob, number: int, start_at: Any, go: EventType, results: Any) -> None:
    count = int(job.rate * job.duration_s)
    mine = list(range(number, count, job.processes))
    factory = EventFactory(EventPool(job.seed), hash((job.seed, job.stream, number)), job.step_ms)
    bodies = [
        orjson.dumps(factory.event(job.first_index + k, ORGANIZATIONS[k % len(ORGANIZATIONS)]))
        for k in mine
    ]
    target = "/v1/events?sync=true"
    records: list[tuple[float, float, float, int]] = []
    errors: list[str] = []
    raw = RawPool(job.url, job.connections)
    limits = httpx.Limits(max_connections=job.connections)
    client = httpx.AsyncClient(
        base_url=job.url,
        headers={"Authorization": f"Bearer {job.key}", "Content-Type": "application/json"},
        trust_env=False,
        timeout=job.timeout_s,
        limits=limits,
    )
    payloads = (
        [raw.head(target, job.key, len(b)) + b for b in bodies] if job.client == "raw" else []
    )

    async def post(n: int) -> tuple[int, bytes]:
        if job.client == "raw":
            return await asyncio.wait_for(raw.request(payloads[n]), job.timeout_s)
        response = await client.post(target, content=bodies[n])
        return response.status_code, response.content

    async def send(n: int, scheduled: float) -> None:
        sent = time.monotonic()
        try:
            status, body = await post(n)
            if status != 201 and len(errors) < 5:
                errors.append(f"HTTP {status}: {body[:200]!r}")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
            status = 0
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}")
        records.append((scheduled, sent, time.monotonic(), status))

    try:
        results.put(("ready", number))
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, go.wait, 60):
            results.put(("done", number, [], ["never started"], 0.0, 0))
            return
        cpu0 = time.process_time()
        start = start_at.value
        tasks = []
        for n, k in enumerate(mine):
            scheduled = start + k / job.rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(n, scheduled)))
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=job.timeout_s + 1)
        for task in pending:
            task.cancel()
        cpu = time.process_time() - cpu0
    finally:
        raw.close()
        await client.aclose()
    results.put(("done", number, records, errors, cpu, len(pending)))


def run_processes(
    target: Any,
    args_for: Sequence[tuple[Any, ...]],
    deadline_s: float,
    on_start: Callable[[], None] = lambda: None,
) -> tuple[float, list[tuple[Any, ...]]]:
    """Start one spawned process per ``args_for`` entry (``target(*args, start_at, go,
    results)``), release them together once all are ready, and collect their ``done``
    messages. Returns the start instant (monotonic) and the messages."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    processes = [
        ctx.Process(target=target, args=(*args, start_at, go, results), daemon=True)
        for args in args_for
    ]
    for process in processes:
        process.start()
    done: list[tuple[Any, ...]] = []
    try:
        ready = 0
        while ready < len(processes):
            message = results.get(timeout=60)
            ready += message[0] == "ready"
        start_at.value = time.monotonic() + 0.2
        go.set()
        time.sleep(0.2)
        on_start()
        end = time.monotonic() + deadline_s
        while len(done) < len(processes):
            message = results.get(timeout=max(1.0, end - time.monotonic()))
            if message[0] == "done":
                done.append(message)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
    return start_at.value, done


# --- 1. batch ingest ---------------------------------------------------------------------


@dataclass
class Plan:
    ingest_s: float
    target_events: int
    fill_s: float
    sync_rate: float
    sync_s: float
    sync_processes: int
    sync_client: str
    queries: int
    baseline_events: int
    baseline_s: float
    ingest_processes: int
    ingest_connections: int
    postgres_workers: int
    sqlite_workers: int
    budget_s: float  # the whole run (all drivers)


FULL = Plan(
    ingest_s=25.0,
    target_events=1_000_000,
    fill_s=150.0,
    sync_rate=SYNC_RATE,
    sync_s=20.0,
    sync_processes=2,
    sync_client="raw",
    queries=200,
    baseline_events=30_000,
    baseline_s=20.0,
    ingest_processes=2,
    ingest_connections=3,
    postgres_workers=2,
    sqlite_workers=1,
    budget_s=840.0,
)
QUICK = replace(
    FULL,
    ingest_s=3.0,
    target_events=40_000,
    fill_s=3.0,
    sync_s=3.0,
    queries=30,
    baseline_events=10_000,
    baseline_s=2.0,
    budget_s=55.0,
)


@dataclass
class Loaded:
    """What the run has put into the server so far."""

    acknowledged: int = 0
    next_index: int = 0


def ingest_phase(
    server: Server,
    plan: Plan,
    loaded: Loaded,
    *,
    name: str,
    per_batch_organizations: bool,
    duration_s: float,
    max_events: int,
    seed: int,
    stream: int,
    step_ms: float,
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", loaded.next_index)
    job = IngestJob(
        url=server.url,
        key=server.admin_key,
        organizations=ORGANIZATIONS,
        per_batch_organizations=per_batch_organizations,
        connections=plan.ingest_connections,
        seed=seed,
        stream=stream,
        step_ms=step_ms,
        duration_s=duration_s,
        max_index=loaded.next_index + max_events,
    )
    meter = CpuMeter(server)
    start, done = run_processes(
        ingest_process,
        [(job, n, counter) for n in range(plan.ingest_processes)],
        deadline_s=duration_s + job.timeout_s + 30,
        on_start=meter.start,
    )
    records = sorted(r for message in done for r in message[2])
    errors = [e for message in done for e in message[3]]
    generator_cpu = sum(message[4] for message in done)
    build_s = sum(message[5] for message in done)
    end = max((r[1] for r in records), default=start)
    ok = [r for r in records if 200 <= r[2] < 300]
    acknowledged = sum(r[3] for r in ok)
    committed = sum(r[4] for r in ok)
    loaded.next_index = counter.value
    loaded.acknowledged += acknowledged
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        trust_env=False,
        timeout=10.0,
    ) as client:
        seen, sequenced_at = wait_sequenced(client, loaded.acknowledged, deadline_s=60.0)
    elapsed = max(end - start, 1e-9)
    cpu = meter.stop(generator_cpu)
    cpu["generator_build"] = build_s
    latencies = sorted((r[1] - r[0]) * 1e3 for r in ok)
    return {
        "phase": name,
        "organizations_per_batch": 1 if per_batch_organizations else len(ORGANIZATIONS),
        "seconds": elapsed,
        "requests": len(records),
        "errors": len(records) - len(ok),
        "error_samples": errors,
        "events": acknowledged,
        "events_per_s": acknowledged / elapsed,
        "committed_at_202": committed,
        "parked_in_intake": acknowledged - committed,
        "sequenced_per_s": acknowledged / max(sequenced_at - start, 1e-9),
        "all_sequenced": seen >= loaded.acknowledged,
        "drain_s": max(0.0, sequenced_at - end),
        "request_ms_p50": percentile(latencies, 50),
        "request_ms_p99": percentile(latencies, 99),
        "cpu_s": cpu,
        "load_average": [meter.load_before, load_average()],
    }


def event_sizes(seed: int, step_ms: float) -> dict[str, int]:
    factory = EventFactory(EventPool(seed), seed, step_ms)
    sizes = sorted(len(orjson.dumps(e)) for e in factory.batch(0, 5000, ORGANIZATIONS))
    return {
        "min": sizes[0],
        "p50": int(percentile(sizes, 50)),
        "mean": round(statistics.fmean(sizes)),
        "max": sizes[-1],
    }


# --- 2. sync latency ---------------------------------------------------------------------


def sync_phase(
    server: Server, plan: Plan, loaded: Loaded, *, seed: int, stream: int, step_ms: float
) -> dict[str, Any]:
    job = SyncJob(
        url=server.url,
        key=server.admin_key,
        rate=plan.sync_rate,
        processes=plan.sync_processes,
        duration_s=plan.sync_s,
        seed=seed,
        stream=stream,
        step_ms=step_ms,
        first_index=loaded.next_index,
        client=plan.sync_client,
    )
    meter = CpuMeter(server)
    start, done = run_processes(
        sync_process,
        [(job, n) for n in range(plan.sync_processes)],
        deadline_s=plan.sync_s + job.timeout_s + 30,
        on_start=meter.start,
    )
    cpu = meter.stop(sum(message[4] for message in done))
    loaded.next_index += int(plan.sync_rate * plan.sync_s)
    records = [r for message in done for r in message[2]]
    errors = [e for message in done for e in message[3]]
    unfinished = sum(message[5] for message in done)
    ok = [r for r in records if r[3] == 201]
    loaded.acknowledged += len(ok)
    offered = int(plan.sync_rate * plan.sync_s)
    last = max((r[2] for r in records), default=start)
    latency = sorted((r[2] - r[0]) * 1e3 for r in ok)
    service = sorted((r[2] - r[1]) * 1e3 for r in ok)
    lag = sorted((r[1] - r[0]) * 1e3 for r in records)
    return {
        "target_rate": plan.sync_rate,
        "seconds": plan.sync_s,
        "offered": offered,
        "completed_ok": len(ok),
        "errors": offered - len(ok),
        "unfinished": unfinished,
        "error_samples": errors,
        "achieved_rate": len(ok) / max(last - start, 1e-9),
        "latency_ms": {
            "p50": percentile(latency, 50),
            "p90": percentile(latency, 90),
            "p99": percentile(latency, 99),
            "max": latency[-1] if latency else float("nan"),
        },
        "service_ms_p99": percentile(service, 99),
        "send_lag_ms_p99": percentile(lag, 99),
        "generator_processes": plan.sync_processes,
        "cpu_s": cpu,
        "load_average": [meter.load_before, load_average()],
    }


# --- 3. queries --------------------------------------------------------------------------


def analyze_entries(dsn: str) -> float:
    """``ANALYZE entries``, as after any bulk load: the database is minutes old, and until
    autovacuum's first analyze (up to a minute after the fill) the planner has no
    statistics and takes ``project = …`` for a 0.5 % filter, which made a full-text page a
    bitmap of the whole project index (~150 ms at 1M rows). Returns its seconds."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE entries")
    return time.perf_counter() - started


def query_phase(
    server: Server, plan: Plan, loaded: Loaded, *, seed: int, step_ms: float
) -> dict[str, Any]:
    rng = random.Random(seed)
    span_ms = loaded.next_index * step_ms
    window_ms = WINDOW_DAYS * 86_400_000
    actors = [actor_id(rng.randrange(ACTORS)) for _ in range(20)]

    def window() -> tuple[str, str]:
        start = BASE_MS + int(rng.random() * max(0.0, span_ms - window_ms))
        return iso_ms(start), iso_ms(start + window_ms)

    windows = [window() for _ in range(20)]
    shapes: dict[str, list[dict[str, Any]]] = {
        "actor_id + action=invoice.* + 3-day since/until": [
            {
                "actor_id": actors[n % len(actors)],
                "action": "invoice.*",
                "since": windows[n % len(windows)][0],
                "until": windows[n % len(windows)][1],
                "limit": 50,
            }
            for n in range(plan.queries)
        ],
        "full-text term (text=…)": [
            {"text": TERMS[n % len(TERMS)], "limit": 50} for n in range(plan.queries)
        ],
    }
    out: list[dict[str, Any]] = []
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        trust_env=False,
        timeout=30.0,
    ) as client:
        total = committed_events(client)
        for name, requests in shapes.items():
            distinct = {json.dumps(p, sort_keys=True): p for p in requests[:20]}
            matches = sorted(
                int(client.get("/v1/events", params={**p, "total": "true"}).json()["total"])
                for p in distinct.values()
            )
            for params in requests[:5]:  # warm-up, untimed
                client.get("/v1/events", params=params).raise_for_status()
            times: list[float] = []
            rows: list[int] = []
            errors = 0
            deadline = time.monotonic() + 60
            for params in requests:
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                response = client.get("/v1/events", params=params)
                times.append((time.perf_counter() - t0) * 1e3)
                if response.status_code != 200:
                    errors += 1
                    continue
                rows.append(len(response.json()["events"]))
            times.sort()
            out.append(
                {
                    "query": name,
                    "example": requests[0],
                    "events_in_database": total,
                    "requests": len(times),
                    "errors": errors,
                    "matches": {
                        "min": matches[0],
                        "median": int(statistics.median(matches)),
                        "max": matches[-1],
                        "share": statistics.fmean(matches) / max(total, 1),
                    },
                    "rows_per_page_mean": statistics.fmean(rows) if rows else 0.0,
                    "ms_p50": percentile(times, 50),
                    "ms_p99": percentile(times, 99),
                    "ms_max": times[-1] if times else float("nan"),
                }
            )
    return {"queries": out, "events": total}


# --- the storage baseline ----------------------------------------------------------------


def storage_baseline(driver: str, plan: Plan, seed: int) -> dict[str, Any]:
    """``bench_append.bench_overhead``: the ledger's in-process append beside a plain
    INSERT of the same rows (its own database, run after the server has stopped)."""
    command = f".venv/bin/python benchmarks/bench_append.py --parts 1 --driver {driver}"
    try:
        bench_append = importlib.import_module("bench_append")
        with bench_append.open_driver(driver) as database:
            result = bench_append.bench_overhead(
                database, events=plan.baseline_events, seed=seed, deadline_s=plan.baseline_s
            )
    except Exception as exc:  # a missing or changed storage benchmark must not sink this one
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}", "command": command}
    best = max(result["baselines"], key=lambda b: b["events_per_s"])
    return {
        "available": True,
        "command": command,
        "events_per_side": result["events_per_side"],
        "ledger_append_per_s": result["ledger"]["events_per_s"],
        "plain_insert": [
            {"name": b["name"], "events_per_s": b["events_per_s"]} for b in result["baselines"]
        ],
        "best_plain_insert_per_s": best["events_per_s"],
    }


# --- the run -----------------------------------------------------------------------------


def run_driver(
    driver: str, plan: Plan, seed: int, baseline: bool, deadline: float
) -> dict[str, Any]:
    """All three parts on one driver; the fill-up is shortened so the driver's part of
    the run ends by ``deadline`` (monotonic)."""
    workers = plan.postgres_workers if driver == "postgres" else plan.sqlite_workers
    step_ms = SPAN_DAYS * 86_400_000 / plan.target_events
    out: dict[str, Any] = {
        "server_workers": workers,
        "generator": {
            "ingest_processes": plan.ingest_processes,
            "ingest_connections_per_process": plan.ingest_connections,
            "sync_processes": plan.sync_processes,
            "sync_client": plan.sync_client,
            "sync_connections_per_process": SyncJob.connections,
        },
    }
    loaded = Loaded()
    with running_server(driver, workers) as server:
        # Warm-up, untimed: creates the organizations' logs, opens connections.
        ingest_phase(
            server,
            plan,
            loaded,
            name="warm-up",
            per_batch_organizations=False,
            duration_s=1.0,
            max_events=10 * BATCH,
            seed=seed,
            stream=0,
            step_ms=step_ms,
        )
        phases: list[dict[str, Any]] = []
        for name, single in (("mixed", False), ("single-org", True)):
            progress(f"{driver}: 1. batch ingest, {name} batches, {plan.ingest_s:.0f} s")
            phases.append(
                ingest_phase(
                    server,
                    plan,
                    loaded,
                    name=name,
                    per_batch_organizations=single,
                    duration_s=plan.ingest_s,
                    max_events=int(plan.ingest_s * INGEST_MOONSHOT * 2),
                    seed=seed,
                    stream=len(phases) + 1,
                    step_ms=step_ms,
                )
            )
            progress(
                f"{driver}: {name}: {phases[-1]['events_per_s']:,.0f} events/s acknowledged,"
                f" {phases[-1]['sequenced_per_s']:,.0f}/s sequenced"
            )
        out["ingest"] = phases
        out["metrics"] = scrape_metrics(server.url)
        missing = plan.target_events - loaded.next_index
        reserve = plan.sync_s + 40 + (plan.baseline_s + 30 if baseline else 0)
        fill_s = min(plan.fill_s, deadline - time.monotonic() - reserve)
        if missing > 0 and fill_s >= 1:
            progress(
                f"{driver}: filling up to {plan.target_events:,} events (at most {fill_s:.0f} s)"
            )
            out["fill"] = ingest_phase(
                server,
                plan,
                loaded,
                name="fill",
                per_batch_organizations=True,
                duration_s=fill_s,
                max_events=missing,
                seed=seed,
                stream=10,
                step_ms=step_ms,
            )
        if server.dsn is not None:
            out["analyze_s"] = analyze_entries(server.dsn)
        progress(f"{driver}: 3. queries over {loaded.acknowledged:,} events")
        out["query"] = query_phase(server, plan, loaded, seed=seed, step_ms=step_ms)
        progress(f"{driver}: 2. sync latency at {plan.sync_rate:.0f}/s for {plan.sync_s:.0f} s")
        before = scrape_metrics(server.url) if workers == 1 else None
        out["sync"] = sync_phase(server, plan, loaded, seed=seed, stream=20, step_ms=step_ms)
        if before is not None:  # one process: its counters are the server's
            out["sync_metrics"] = metrics_delta(before, scrape_metrics(server.url))
        out["database_mb"] = server.database_mb()
        out["events_total"] = loaded.acknowledged
    if baseline:
        progress(f"{driver}: storage baseline (bench_append.bench_overhead)")
        out["baseline"] = storage_baseline(driver, plan, seed)
    return out


def git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+dirty src' if dirty else ''}"


# --- rendering ---------------------------------------------------------------------------


def _cores(cpu: dict[str, float]) -> str:
    """Cores used by server / database / generators over the measured window."""
    seconds = cpu["window_s"]
    if seconds <= 0:
        return "-"
    return " / ".join(f"{cpu[k] / seconds:.2f}" for k in ("server", "database", "generators"))


def _per_event(cpu: dict[str, float], events: int) -> str:
    """CPU microseconds the server and the database spent per event: the figure that,
    unlike a rate, the other load on the machine changes least."""
    if not events:
        return "-"
    return f"{(cpu['server'] + cpu['database']) / events * 1e6:.0f}"


def _load(pair: Sequence[Sequence[float]]) -> str:
    return f"{pair[0][0]:.1f}→{pair[1][0]:.1f}"


def render(report: dict[str, Any]) -> str:
    machine = report["machine"]
    plan = report["plan"]
    sizes = report["event_bytes"]
    parts = [
        f"trailseal bench_http — {report['mode']} run, seed {report['seed']},"
        f" {machine['cpus']} CPUs, Python {machine['python']}, git {machine['git']}",
        "load average (1/5/15 min) at start "
        + "/".join(f"{v:.2f}" for v in machine["load_average_at_start"])
        + ", at end "
        + "/".join(f"{v:.2f}" for v in machine["load_average_at_end"])
        + " (other work on this machine skews every figure; 'load' columns show the 1-min"
        " average before→after each phase)",
        f"events: {sizes['min']}-{sizes['max']} B as sent (median {sizes['p50']}),"
        f" {ACTORS} actors, {len(ORGANIZATIONS)} organizations, occurred_at spread over"
        f" {SPAN_DAYS} days, ids from IdGenerator (UUIDv7, time-ordered)",
        "",
    ]
    ingest_rows = []
    sync_rows = []
    query_rows = []
    notes = []
    for name, result in report["drivers"].items():
        gen = result["generator"]
        label = f"{name} (server --workers {result['server_workers']})"
        for phase in [*result["ingest"], *([result["fill"]] if "fill" in result else [])]:
            rate = phase["events_per_s"]
            ingest_rows.append(
                [
                    label,
                    phase["phase"],
                    str(phase["organizations_per_batch"]),
                    f"{phase['seconds']:.1f}",
                    f"{phase['events']:,}",
                    f"{rate:,.0f}",
                    f"{phase['committed_at_202'] / max(phase['events'], 1):.0%}",
                    f"{phase['sequenced_per_s']:,.0f}"
                    + ("" if phase["all_sequenced"] else " (incomplete)"),
                    f"{phase['request_ms_p50']:.0f} / {phase['request_ms_p99']:.0f}",
                    str(phase["errors"]),
                    _cores(phase["cpu_s"]),
                    _per_event(phase["cpu_s"], phase["events"]),
                    _load(phase["load_average"]),
                    "-"
                    if phase["phase"] == "fill"
                    else f"{verdict(rate >= INGEST_BUDGET)}"
                    + (" moonshot" if rate >= INGEST_MOONSHOT else ""),
                ]
            )
        baseline = result.get("baseline")
        if baseline is None:
            notes.append(
                f"{name}: storage baseline not measured in this run;"
                f" `.venv/bin/python benchmarks/bench_append.py --parts 1 --driver {name}`"
                " prints it"
            )
        else:
            if baseline["available"]:
                ratio = _best_ingest(result) / baseline["best_plain_insert_per_s"]
                inserts = ", ".join(
                    f"{b['name']} {b['events_per_s']:,.0f}/s" for b in baseline["plain_insert"]
                )
                notes.append(
                    f"{name}: storage baseline (bench_append.bench_overhead, in-process, same"
                    f" rows, durable, {baseline['events_per_side']:,} events per side):"
                    f" {inserts}; ledger.append {baseline['ledger_append_per_s']:,.0f}/s."
                    f" Best HTTP phase = {ratio:.2f} × the best plain INSERT."
                )
            else:
                notes.append(
                    f"{name}: storage baseline unavailable ({baseline['reason']});"
                    f" run `{baseline['command']}`"
                )
        notes.append(
            f"{name}: /metrics after the ingest phases"
            f"{' (one of the worker processes)' if result['server_workers'] > 1 else ''}: "
            + _metrics_text(result["metrics"])
        )
        if "sync_metrics" in result:
            notes.append(
                f"{name}: /metrics over the sync phase: " + _metrics_text(result["sync_metrics"])
            )
        notes.append(
            f"{name}: generators: ingest {gen['ingest_processes']} processes ×"
            f" {gen['ingest_connections_per_process']} connections (threads, httpx.Client);"
            f" sync {gen['sync_processes']} processes (asyncio + uvloop, {gen['sync_client']}"
            f" client, up to {gen['sync_connections_per_process']} connections each);"
            f" database {result['database_mb']:,.0f} MB for {result['events_total']:,} events"
        )
        if "analyze_s" in result:
            notes.append(f"{name}: ANALYZE entries before the queries: {result['analyze_s']:.1f} s")
        for phase in result["ingest"]:
            if phase["error_samples"]:
                notes.append(f"{name} {phase['phase']} errors: {phase['error_samples'][:3]}")
        sync = result["sync"]
        lat = sync["latency_ms"]
        sync_rows.append(
            [
                label,
                f"{sync['target_rate']:.0f}",
                f"{sync['achieved_rate']:.0f}",
                f"{sync['completed_ok']:,}/{sync['offered']:,}",
                str(sync["errors"]),
                f"{lat['p50']:.1f}",
                f"{lat['p90']:.1f}",
                f"{lat['p99']:.1f}",
                f"{lat['max']:.0f}",
                f"{sync['service_ms_p99']:.1f}",
                f"{sync['send_lag_ms_p99']:.1f}",
                _cores(sync["cpu_s"]),
                _load(sync["load_average"]),
                verdict(lat["p99"] <= SYNC_BUDGET_MS)
                if sync["target_rate"] >= SYNC_RATE
                else f"- (budget is at {SYNC_RATE:.0f}/s)",
            ]
        )
        if sync["error_samples"]:
            notes.append(f"{name} sync errors: {sync['error_samples'][:3]}")
        for query in result["query"]["queries"]:
            matches = query["matches"]
            query_rows.append(
                [
                    label,
                    query["query"],
                    f"{query['events_in_database']:,}",
                    str(query["requests"]),
                    f"{matches['min']:,}-{matches['max']:,} (median {matches['median']:,},"
                    f" {matches['share']:.3%})",
                    f"{query['rows_per_page_mean']:.1f}",
                    f"{query['ms_p50']:.1f}",
                    f"{query['ms_p99']:.1f}",
                    f"{query['ms_max']:.1f}",
                    verdict(query["ms_p99"] <= QUERY_BUDGET_MS and not query["errors"]),
                ]
            )
    parts.append(
        table(
            f"1. Batch ingest over HTTP: POST /v1/events/batch, {BATCH} events/request, async"
            " (202 = durable), full indexing. ev/s = events acknowledged 2xx per second;"
            " 'at 202' = share already committed when acknowledged (the rest parked in the"
            " durable intake); sequenced = events / time until all are in a log; CPU ="
            " cores used by server / database / generators until all were sequenced; µs/ev ="
            " server + database CPU per event (2 cores = 2,000,000 µs/s: the rate this CPU"
            " cost allows at best is 2e6 / µs/ev)",
            [
                "driver",
                "batches",
                "orgs/batch",
                "s",
                "events",
                "ev/s",
                "at 202",
                "sequenced ev/s",
                "req p50/p99 ms",
                "errors",
                "CPU srv/db/gen",
                "µs/ev srv+db",
                "load",
                f">= {INGEST_BUDGET:,}",
            ],
            ingest_rows,
        )
    )
    parts += ["", *notes, ""]
    parts.append(
        table(
            f"2. Sync single-event ingest: POST /v1/events?sync=true, open loop at"
            f" {plan['sync_rate']:.0f} requests/s for {plan['sync_s']:.0f} s, latency from the"
            " scheduled send instant (service = from the actual send; lag = actual - scheduled)",
            [
                "driver",
                "target/s",
                "achieved/s",
                "ok/offered",
                "errors",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "service p99",
                "lag p99",
                "CPU srv/db/gen",
                "load",
                f"p99 <= {SYNC_BUDGET_MS:g} ms",
            ],
            sync_rows,
        )
    )
    parts.append("")
    parts.append(
        table(
            "3. Query: GET /v1/events, one page of 50 (newest first), across the project's"
            " logs, sequential on one connection; matches from total=true over the distinct"
            " values used; PostgreSQL after ANALYZE entries (see the docstring). 10M events:"
            " not loaded (the run's time bound; loading runs at the ingest rate above)",
            [
                "driver",
                "query",
                "events",
                "requests",
                "matches",
                "rows/page",
                "p50 ms",
                "p99 ms",
                "max ms",
                f"p99 <= {QUERY_BUDGET_MS:g} ms",
            ],
            query_rows,
        )
    )
    target = plan["target_events"]
    for name, result in report["drivers"].items():
        loaded = result["query"]["events"]
        if loaded < target:
            parts.append(
                f"{name}: {loaded:,} of the {target:,} events wanted for part 3 were in the"
                " database: the fill-up's time bound ran out (it loads at the ingest rate of"
                " part 1)"
            )
    parts.append("")
    parts.append(f"total wall time {report['wall_s']:.0f} s")
    return "\n".join(parts)


def _metrics_text(metrics: dict[str, Any]) -> str:
    if "error" in metrics:
        return f"unavailable ({metrics['error']})"
    buckets = ", ".join(
        f"≤{le.removesuffix('.0')}: {n}"
        for le, n in metrics["batch_size_buckets"].items()
        if n and le != "+Inf"
    )
    return (
        f"{metrics['commits']:,} group commits, {metrics['events']:,} events, mean"
        f" {metrics['mean_batch']:.1f} events/commit, mean commit"
        f" {metrics['mean_commit_ms']:.1f} ms; commits by size: {buckets}"
    )


def metrics_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the counters of ``scrape_metrics`` grew by between two scrapes."""
    if "error" in before or "error" in after:
        return {"error": before.get("error") or after.get("error")}
    commits = after["commits"] - before["commits"]
    events = after["events"] - before["events"]
    commit_ms = (
        after["mean_commit_ms"] * after["commits"] - before["mean_commit_ms"] * before["commits"]
    )
    return {
        "commits": commits,
        "events": events,
        "mean_batch": events / commits if commits else 0.0,
        "mean_commit_ms": commit_ms / commits if commits else 0.0,
        "batch_size_buckets": {
            le: n - before["batch_size_buckets"].get(le, 0)
            for le, n in after["batch_size_buckets"].items()
        },
    }


def _best_ingest(result: dict[str, Any]) -> float:
    return max(float(phase["events_per_s"]) for phase in result["ingest"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases, under a minute")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, table on stderr")
    parser.add_argument("--driver", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--ingest-seconds", type=float, help="seconds per ingest phase")
    parser.add_argument("--events", type=int, help="events to load for the queries")
    parser.add_argument("--processes", type=int, help="ingest generator processes")
    parser.add_argument("--connections", type=int, help="connections per ingest process")
    parser.add_argument("--pg-workers", type=int, help="server processes on PostgreSQL")
    parser.add_argument("--sqlite-workers", type=int, help="server processes on SQLite")
    parser.add_argument("--sync-rate", type=float, help="open-loop requests/s in part 2")
    parser.add_argument("--sync-seconds", type=float, help="length of part 2")
    parser.add_argument(
        "--sync-client",
        choices=("raw", "httpx"),
        help="open-loop client: raw asyncio HTTP/1.1 (default) or httpx.AsyncClient",
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        help="measure bench_append's plain-INSERT figure after each driver (default: on,"
        " off with --quick)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    overrides = {
        "ingest_s": args.ingest_seconds,
        "target_events": args.events,
        "ingest_processes": args.processes,
        "ingest_connections": args.connections,
        "postgres_workers": args.pg_workers,
        "sqlite_workers": args.sqlite_workers,
        "sync_client": args.sync_client,
        "sync_rate": args.sync_rate,
        "sync_s": args.sync_seconds,
    }
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    drivers = ("sqlite", "postgres") if args.driver == "both" else (args.driver,)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "bench_http",
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "git": git_describe(),
            "load_average_at_start": load_average(),
        },
        "plan": asdict(plan),
        "event_bytes": event_sizes(args.seed, SPAN_DAYS * 86_400_000 / plan.target_events),
        "budgets": {
            "ingest_events_per_s": INGEST_BUDGET,
            "ingest_moonshot": INGEST_MOONSHOT,
            "sync_p99_ms": SYNC_BUDGET_MS,
            "query_p99_ms": QUERY_BUDGET_MS,
        },
        "drivers": {},
    }
    baseline = not args.quick if args.baseline is None else args.baseline
    begun = time.monotonic()
    for number, name in enumerate(drivers, 1):
        deadline = begun + plan.budget_s * number / len(drivers)
        report["drivers"][name] = run_driver(name, plan, args.seed, baseline, deadline)
    report["wall_s"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = load_average()
    text = render(report)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(report, indent=2, default=str))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
