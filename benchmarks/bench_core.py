"""Core benchmarks, each figure beside its baseline from the same run (ARCHITECTURE §11).

1. JCS: ``trailseal.core.canonical.canonicalize`` vs ``rfc8785.dumps`` on the same events.
2. Entry -> leaf -> chain hashing vs one raw ``hashlib.sha256`` call per entry.
3. Whole-log offline verification (leaves, chain, root, seq/origin checks) of 1,000,000
   entries as a fraction of the raw limit (one SHA-256 call per entry's bytes, same
   entries, single-threaded). Budget: >= 0.5; both cores may be used. Measured single-
   threaded (``verify_log_run``) and on two processes from the core's pieces (the parent
   checks and leaf-hashes, a helper chains and builds the tree), by wall clock and by CPU
   time (which stays meaningful when other work shares the machine).
4. Integrating 1,000,000 leaves with ``CompactRange.append`` in batches of 1000.
5. Batch-ingest preparation, the server's CPU work per event of POST /v1/events/batch before
   the log lock: ``validate_batch`` + ``prepare_incoming(validated=True)`` in µs/event of CPU
   time, on ``bench_append``'s realistic SDK-shaped events (1000 per batch). No baseline
   runs beside it: compare runs (ARCHITECTURE §11 budgets ingest at ≥ 20,000 events/s).

Data is seeded: realistic 300-600 byte events (nested actor/context/metadata, non-ASCII),
built up front and never timed. Each figure is the best of ``--repeat`` runs, baseline and
candidate interleaved so a noisy neighbour hits both alike.

    .venv/bin/python benchmarks/bench_core.py            # full run
    .venv/bin/python benchmarks/bench_core.py --quick    # small sizes, a few seconds
    .venv/bin/python benchmarks/bench_core.py --json     # machine-readable figures
    .venv/bin/python benchmarks/bench_core.py --profile  # + where the verifier's time goes
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import fcntl
import gc
import hashlib
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

import rfc8785

from trailseal.core.canonical import canonicalize
from trailseal.core.checkpoint import Checkpoint, LogKeys, SignedCheckpoint
from trailseal.core.entry import entry_bytes_from_canonical, hash_entries
from trailseal.core.hashing import HASH_SIZE, ZERO_HASH
from trailseal.core.merkle import CompactRange, root_from_leaf_hashes
from trailseal.core.schema import DEFAULT_LIMITS, validate_batch
from trailseal.core.verify import (
    CHUNK,
    chain_head,
    chain_heads,
    check_entries,
    extend_tree,
    leaf_hashes_of,
    open_log_checkpoint,
    verify_log_run,
)
from trailseal.errors import VerificationError
from trailseal.ledger.prepare import prepare_incoming

ORIGIN = "trailseal.local/log/abcdefghijklmnopqrstuvwxy4"
SEED = 20240501
_digest = type(hashlib.sha256()).digest


# --- data ----------------------------------------------------------------------------------

_NAMES = ["Zoë Ångström", "José Núñez", "Łukasz Żółć", "山田 太郎", "Søren Kierkegård", "Ana Lima"]
_ACTIONS = ["invoice.deleted", "user.login", "document.shared", "api_key.created", "role.granted"]
_AGENTS = ["Firefox/126.0 (Linux)", "curl/8.5.0", "okhttp/4.12.0"]


def make_event(rnd: random.Random, i: int) -> dict[str, Any]:
    """One realistic stored event (§4): nested actor/resource/context/metadata, non-ASCII;
    300-600 bytes canonical, the optional members present at random."""
    event: dict[str, Any] = {
        "action": rnd.choice(_ACTIONS),
        "actor": {"id": f"user_{rnd.randrange(10**6):06d}", "name": rnd.choice(_NAMES)},
        "occurred_at": f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}.{rnd.randrange(10**6):06d}Z",
        "id": f"01HX{rnd.randrange(16**20):020X}",
        "source": "billing-api-v2",
        "metadata": {
            "plan": rnd.choice(["free", "pro", "enterprise"]),
            "amount": {"value": rnd.randrange(10**6) / 100, "currency": "EUR"},
            "flags": [rnd.random() < 0.5, None, rnd.randrange(100)],
            "comment": "".join(
                rnd.choice("abcdéfghïjklmnöp qrstüvwxyz") for _ in range(rnd.randrange(16, 32))
            ),
        },
    }
    if rnd.random() < 0.5:
        event["actor"].update(type="user", email=f"u{rnd.randrange(10**4)}@example.com")
    if rnd.random() < 0.7:
        event["resource"] = {
            "type": "invoice",
            "id": f"inv_{rnd.randrange(10**8)}",
            "name": "Q2 réglement",
        }
    if rnd.random() < 0.5:
        event["outcome"] = rnd.choice(["success", "failure"])
        event["organization_id"] = f"org_{rnd.randrange(500)}"
    if rnd.random() < 0.5:
        event["context"] = {
            "ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
            "user_agent": rnd.choice(_AGENTS),
            "request_id": f"req_{rnd.randrange(16**12):012x}",
        }
    if rnd.random() < 0.3:
        event["tags"] = rnd.sample(["billing", "security", "export", "gdpr", "admin"], 2)
    return event


def _stamp(seq: int) -> str:
    """received_at of entry ``seq``: 7 ms apart from midnight, stored form."""
    ms = seq * 7
    hours, minutes, seconds = ms // 3_600_000 % 24, ms // 60_000 % 60, ms // 1000 % 60
    return f"2024-05-01T{hours:02d}:{minutes:02d}:{seconds:02d}.{ms % 1000:03d}{seq % 1000:03d}Z"


def make_entries(events: Sequence[bytes], count: int) -> list[bytes]:
    """``count`` entry bytes of one log, cycling through the canonical ``events``."""
    return [
        entry_bytes_from_canonical(
            origin=ORIGIN, seq=seq, received_at=_stamp(seq), event=events[seq % len(events)]
        )
        for seq in range(count)
    ]


# --- timing --------------------------------------------------------------------------------


def best_of(repeat: int, *functions: Callable[[], object]) -> list[float]:
    """Best wall time of each function over ``repeat`` rounds, run interleaved."""
    return [wall for wall, _ in best_of_with_cpu(repeat, *functions)]


def best_of_with_cpu(repeat: int, *functions: Callable[[], object]) -> list[tuple[float, float]]:
    """Best (wall, CPU) seconds of each function over ``repeat`` rounds, run interleaved.
    CPU is this process's CPU time, or, when a function returns a float (a helper
    process's CPU seconds), the larger of the two: the critical path on free cores. CPU
    time is what stays meaningful when other work shares the machine."""
    best = [(float("inf"), float("inf"))] * len(functions)
    for _ in range(repeat):
        for k, function in enumerate(functions):
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            helper_cpu = function()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if isinstance(helper_cpu, float):
                cpu = max(cpu, helper_cpu)
            best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
    return best


def raw_limit(entries: Sequence[bytes]) -> list[bytes]:
    """The baseline: one SHA-256 call per entry's bytes, the loop in C."""
    return list(map(_digest, map(hashlib.sha256, entries)))


# --- the two-process verifier -------------------------------------------------------------
#
# The parent checks and leaf-hashes each chunk (the part that reads the entries) and streams
# the leaf hashes, 32 bytes per entry, to one helper process that chains them and builds the
# tree (the sequential part). Only hashes cross the pipe, and the helper never touches the
# entries, so no copy-on-write page faults: a pool of forked workers reading the parent's
# entries measured slower here (each worker's refcount writes copy the pages they touch).


def _chain_and_tree(leaf_reader: Connection, result_writer: Connection) -> None:
    """The helper: chain and tree over the leaf hashes the parent sends, chunk by chunk."""
    cpu = time.process_time()
    cuts = [slice(i, i + HASH_SIZE) for i in range(0, CHUNK * HASH_SIZE, HASH_SIZE)]
    head = ZERO_HASH
    tree = CompactRange.empty()
    while chunk := leaf_reader.recv_bytes():
        leaves = list(map(chunk.__getitem__, cuts[: len(chunk) // HASH_SIZE]))
        head = chain_head(leaves, head)
        tree = extend_tree(tree, leaves)
    result_writer.send((head, tree.size, tree.peaks, time.process_time() - cpu))


def _grow_pipe(connection: Connection) -> None:
    """A 1 MiB pipe (Linux): the parent may run 8 chunks ahead instead of blocking on each
    (a 64 KiB pipe holds half a chunk, so the two processes would take turns)."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def verify_two_processes(
    entries: Sequence[bytes], checkpoint: SignedCheckpoint, context: BaseContext
) -> tuple[bytes, float]:
    """verify_log_run(entries, checkpoint) from entry 0 on two cores (helper start-up
    included). Returns the last chain hash and the helper's CPU seconds; raises
    VerificationError."""
    body = checkpoint.checkpoint
    leaf_reader, leaf_writer = context.Pipe(duplex=False)
    result_reader, result_writer = context.Pipe(duplex=False)
    _grow_pipe(leaf_writer)
    helper = context.Process(target=_chain_and_tree, args=(leaf_reader, result_writer), daemon=True)
    helper.start()
    leaf_reader.close()
    result_writer.close()
    try:
        for start in range(0, len(entries), CHUNK):
            part = entries[start : start + CHUNK]
            check_entries(part, start=start, origin=body.origin)
            leaf_writer.send_bytes(b"".join(leaf_hashes_of(part)))
        leaf_writer.send_bytes(b"")
        head, size, peaks, helper_cpu = result_reader.recv()
    finally:
        leaf_writer.close()
        result_reader.close()
        helper.join()
    root = CompactRange(size, peaks).root()
    if size != body.size or root != body.root_hash:
        raise VerificationError(f"size {size} or root {root.hex()} differs", item="checkpoint")
    return bytes(head), float(helper_cpu)


# --- sections ------------------------------------------------------------------------------


def bench_jcs(events: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    ours = [canonicalize(e) for e in events]
    reference = [rfc8785.dumps(e) for e in events]
    assert ours == reference, "canonicalize and rfc8785 disagree"
    t_ours, t_ref = best_of(
        repeat,
        lambda: [canonicalize(e) for e in events],
        lambda: [rfc8785.dumps(e) for e in events],
    )
    sizes = [len(b) for b in ours]
    return {
        "events": len(events),
        "bytes_min": min(sizes),
        "bytes_mean": round(sum(sizes) / len(sizes)),
        "bytes_max": max(sizes),
        "trailseal_events_per_s": len(events) / t_ours,
        "rfc8785_events_per_s": len(events) / t_ref,
        "ratio": t_ref / t_ours,
    }


def bench_hashing(entries: list[bytes], repeat: int) -> dict[str, Any]:
    expected = hash_entries(entries, ZERO_HASH)
    leaves = leaf_hashes_of(entries)
    assert [p[0] for p in expected] == leaves and [p[1] for p in expected] == chain_heads(leaves)
    t_raw, t_entry, t_verify = best_of(
        repeat,
        lambda: raw_limit(entries),
        lambda: hash_entries(entries, ZERO_HASH),
        lambda: chain_heads(leaf_hashes_of(entries)),
    )
    n = len(entries)
    return {
        "entries": n,
        "raw_sha256_per_s": n / t_raw,
        "hash_entries_per_s": n / t_entry,
        "hash_entries_ratio": t_raw / t_entry,
        "verify_pieces_per_s": n / t_verify,
        "verify_pieces_ratio": t_raw / t_verify,
    }


def bench_verify(
    entries: list[bytes], checkpoint: SignedCheckpoint, repeat: int, start_method: str
) -> dict[str, Any]:
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # The server imports this module once; helpers forked from it need not re-import.
        context.set_forkserver_preload(["__main__"])
    single = verify_log_run(entries, checkpoint)
    # Untimed warm-up: checks the result and, for forkserver, starts the fork server.
    assert verify_two_processes(entries, checkpoint, context)[0] == single.chain_head
    raw, one, two = best_of_with_cpu(
        repeat,
        lambda: raw_limit(entries),
        lambda: verify_log_run(entries, checkpoint),
        lambda: verify_two_processes(entries, checkpoint, context)[1],
    )
    variants = {"single thread": raw[0] / one[0], "two processes": raw[0] / two[0]}
    best = max(variants, key=variants.__getitem__)
    return {
        "entries": len(entries),
        "bytes_mean": round(sum(map(len, entries)) / len(entries)),
        "raw_seconds": raw[0],
        "single_thread_seconds": one[0],
        "single_thread_fraction": raw[0] / one[0],
        "two_process_seconds": two[0],
        "two_process_fraction": raw[0] / two[0],
        "start_method": start_method,
        "best_variant": best,
        "best_fraction": variants[best],
        "both_cores_used": best == "two processes",
        "budget": 0.5,
        "budget_met": variants[best] >= 0.5,
        # CPU-time view: robust to other load; for two processes the busier one.
        "raw_cpu_seconds": raw[1],
        "single_thread_cpu_fraction": raw[1] / one[1],
        "two_process_critical_cpu_fraction": raw[1] / two[1],
    }


def bench_integrate(leaves: list[bytes], repeat: int, batch: int = 1000) -> dict[str, Any]:
    batches = [leaves[i : i + batch] for i in range(0, len(leaves), batch)]

    def append() -> CompactRange:
        tree = CompactRange.empty()
        for part in batches:
            tree, _ = tree.append(part)
        return tree

    def extend() -> CompactRange:
        tree = CompactRange.empty()
        for part in batches:
            tree = extend_tree(tree, part)
        return tree

    assert append() == extend()
    t_append, t_extend = best_of(repeat, append, extend)
    return {
        "leaves": len(leaves),
        "batch": batch,
        "compact_range_append_seconds": t_append,
        "extend_tree_seconds": t_extend,
    }


def profile_verify(entries: list[bytes], checkpoint: SignedCheckpoint) -> str:
    """Where verify_log_run's time goes: CPU microseconds per entry for each piece (the
    same calls, chunk by chunk), then cProfile's top functions by own time."""
    origin = checkpoint.checkpoint.origin
    pieces = dict.fromkeys(["raw sha256", "check_entries", "leaf_hashes_of", "chain_head",
                            "extend_tree"], 0.0)  # fmt: skip
    clock = time.process_time
    start = clock()
    raw_limit(entries)
    pieces["raw sha256"] = clock() - start
    head, tree = ZERO_HASH, CompactRange.empty()
    for at in range(0, len(entries), CHUNK):
        part = entries[at : at + CHUNK]
        t0 = clock()
        check_entries(part, start=at, origin=origin)
        t1 = clock()
        leaves = leaf_hashes_of(part)
        t2 = clock()
        head = chain_head(leaves, head)
        t3 = clock()
        tree = extend_tree(tree, leaves)
        t4 = clock()
        for name, spent in zip(list(pieces)[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            pieces[name] += spent
    lines = [
        f"   {name:<16}{seconds / len(entries) * 1e6:6.2f} us/entry"
        for name, seconds in pieces.items()
    ]
    total = sum(list(pieces.values())[1:])
    lines.append(f"   {'sum of pieces':<16}{total / len(entries) * 1e6:6.2f} us/entry"
                 f"  ({pieces['raw sha256'] / total:.2f} x raw)")  # fmt: skip

    profiler = cProfile.Profile()
    profiler.enable()
    verify_log_run(entries, checkpoint)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(10)
    report = out.getvalue()
    return "\n".join(lines) + "\n" + report[report.find("   ncalls") :].rstrip()


def bench_prepare(batches: int, repeat: int) -> dict[str, Any]:
    from bench_append import EventSource  # beside this script; realistic SDK events

    events = [EventSource(seed).batch(1000) for seed in range(batches)]
    count = sum(len(batch) for batch in events)
    now = datetime.now(UTC)

    def no_id() -> str:
        raise AssertionError("every event carries its id")

    def validate() -> None:
        for batch in events:
            assert not validate_batch(batch, DEFAULT_LIMITS)

    def prepare() -> None:
        for batch in events:
            for raw in batch:
                prepare_incoming(raw, now=now, new_id=no_id, validated=True)

    (_, validate_cpu), (_, prepare_cpu) = best_of_with_cpu(repeat, validate, prepare)
    return {
        "events": count,
        "validate_batch_us_per_event": validate_cpu / count * 1e6,
        "prepare_incoming_us_per_event": prepare_cpu / count * 1e6,
        "total_us_per_event": (validate_cpu + prepare_cpu) / count * 1e6,
    }


def _prepare_report(prep: dict[str, Any]) -> str:
    rows = [
        ("validate_batch", prep["validate_batch_us_per_event"]),
        ("prepare_incoming(validated=True)", prep["prepare_incoming_us_per_event"]),
        ("together", prep["total_us_per_event"]),
    ]
    return (
        f"\n5. batch-ingest preparation, {prep['events']:,} realistic events, CPU time"
        + "".join(f"\n   {name:<34}{us:6.2f} us/event" for name, us in rows)
    )


# --- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile the verifier")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--entries", type=int, help="log size for 3 and 4 (default 1,000,000)")
    parser.add_argument(
        "--start-method",
        default="forkserver",
        choices=multiprocessing.get_all_start_methods(),
        help="how the two-process variant starts its helper (default forkserver)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="only section 5 (a few seconds)"
    )
    args = parser.parse_args(argv)
    if args.prepare_only:
        prepared = bench_prepare(2 if args.quick else 20, args.repeat)
        print(json.dumps(prepared, indent=2) if args.json else _prepare_report(prepared).lstrip())
        return 0

    log_size = args.entries or (20_000 if args.quick else 1_000_000)
    jcs_events = 2_000 if args.quick else 20_000
    hash_entries_count = 20_000 if args.quick else 200_000
    say: Callable[[str], None] = (lambda _: None) if args.json else print

    rnd = random.Random(SEED)
    say(f"building {jcs_events} events and a log of {log_size} entries (not timed) ...")
    events = [make_event(rnd, i) for i in range(jcs_events)]
    canonical = [canonicalize(e) for e in events]
    entries = make_entries(canonical, log_size)
    leaves = [leaf for leaf, _ in hash_entries(entries, ZERO_HASH)]
    keys = LogKeys.from_seed(ORIGIN, bytes(32))
    note = keys.sign(Checkpoint(ORIGIN, log_size, root_from_leaf_hashes(leaves)), 1_714_564_800)
    checkpoint = open_log_checkpoint(note, keys.verifier_key())

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": os.getloadavg(),
            "quick": args.quick,
            "repeat": args.repeat,
        }
    }
    results["jcs"] = jcs = bench_jcs(events, args.repeat)
    say(
        f"\n1. JCS, {jcs['events']} events of {jcs['bytes_min']}-{jcs['bytes_max']} bytes "
        f"(mean {jcs['bytes_mean']}), identical output\n"
        f"   trailseal canonicalize {jcs['trailseal_events_per_s']:>12,.0f} events/s\n"
        f"   rfc8785.dumps          {jcs['rfc8785_events_per_s']:>12,.0f} events/s\n"
        f"   ratio                  {jcs['ratio']:>12.1f} x faster"
    )
    results["hashing"] = hashing = bench_hashing(entries[:hash_entries_count], args.repeat)
    say(
        f"\n2. entry -> leaf -> chain hashing, {hashing['entries']} entries\n"
        f"   raw hashlib.sha256 per entry   {hashing['raw_sha256_per_s']:>12,.0f} entries/s\n"
        f"   entry.hash_entries             {hashing['hash_entries_per_s']:>12,.0f} entries/s"
        f"   {hashing['hash_entries_ratio']:.2f} x raw\n"
        f"   verify leaf_hashes_of+chain    {hashing['verify_pieces_per_s']:>12,.0f} entries/s"
        f"   {hashing['verify_pieces_ratio']:.2f} x raw"
    )
    results["verify"] = ver = bench_verify(entries, checkpoint, args.repeat, args.start_method)
    say(
        f"\n3. whole-log offline verification, {ver['entries']:,} entries "
        f"(mean {ver['bytes_mean']} bytes): leaves, chain, root, seq/origin\n"
        f"   raw limit (1 sha256/entry, 1 thread)   {ver['raw_seconds']:7.3f} s\n"
        f"   verify_log_run, single thread          {ver['single_thread_seconds']:7.3f} s"
        f"   {ver['single_thread_fraction']:.2f} x raw\n"
        f"   two processes ({ver['start_method']}, helper start included)"
        f"{ver['two_process_seconds']:7.3f} s   {ver['two_process_fraction']:.2f} x raw\n"
        f"     parent: check_entries + leaf_hashes_of; helper: chain_head + extend_tree\n"
        f"   by CPU time (robust to other load): single thread "
        f"{ver['single_thread_cpu_fraction']:.2f} x raw; two processes, busier one "
        f"{ver['two_process_critical_cpu_fraction']:.2f} x raw\n"
        f"   best: {ver['best_variant']} at {ver['best_fraction']:.2f} x raw; budget 0.5 "
        f"{'MET' if ver['budget_met'] else 'MISSED'}; both cores used: "
        f"{'yes' if ver['both_cores_used'] else 'no'} ({os.cpu_count()} CPUs on this machine)"
    )
    results["integrate"] = integ = bench_integrate(leaves, args.repeat)
    say(
        f"\n4. integrating {integ['leaves']:,} leaves in batches of {integ['batch']}\n"
        f"   CompactRange.append   {integ['compact_range_append_seconds']:7.3f} s\n"
        f"   verify.extend_tree    {integ['extend_tree_seconds']:7.3f} s (no completed nodes)"
    )
    if args.profile:
        results["profile"] = profile = profile_verify(entries, checkpoint)
        say(
            "\nprofile of verify_log_run, single thread: CPU per entry by piece, then cProfile "
            "(C-level map loops count as their calling function's own time):\n" + profile
        )
    results["prepare"] = bench_prepare(2 if args.quick else 20, args.repeat)
    say(_prepare_report(results["prepare"]))
    results["machine"]["load_average_at_end"] = os.getloadavg()
    say(
        f"\nmachine: Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{results['machine']['load_average_at_start'][0]:.2f} at start, "
        f"{results['machine']['load_average_at_end'][0]:.2f} at end (other work shares it)"
    )
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
