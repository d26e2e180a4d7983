"""Crash and cross-process concurrency tests, on both drivers (issue: "nothing lost").

Crash: a child appends through the ledger, recording each acknowledgement; it is killed
with SIGKILL mid-load; afterwards every acknowledged entry is present and the whole log
verifies. Concurrency: two processes append to one log at once; sequence numbers are
gap-free and every pair of stored checkpoints is consistent.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.dbfixtures import StoreFactory
from tests.ledger.helpers import PROJECT, make_ledger, verify_whole_log
from trailseal.core.merkle import verify_consistency

pytestmark = pytest.mark.slow


def _spawn(driver: str, url: str, acks: Path, seconds: float) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.appender", driver, url, str(acks), str(seconds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    ready = child.stdout.readline()
    child.stdout.close()  # the child only announces that it is ready
    assert ready == b"ready\n"
    return child


def _acked(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_loses_no_acknowledged_entry(
    driver: str, database_url: str, store_factory: StoreFactory, tmp_path: Path, trial: int
) -> None:
    acks = tmp_path / "acks"
    total_acked: set[str] = set()
    for round_ in range(2):  # kill, restart on the same database, kill again
        child = _spawn(driver, database_url, acks, 30)
        time.sleep(random.Random(trial * 10 + round_).uniform(0.4, 1.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        total_acked.update(_acked(acks))
    assert len(total_acked) > 0, "the child acknowledged nothing before the kill"
    store = store_factory()
    ledger = make_ledger(store)
    try:
        missing = [i for i in total_acked if ledger.entry(PROJECT, i) is None]
        assert missing == [], f"{len(missing)} acknowledged events were lost"
        log = ledger.log_for(PROJECT, "acme")
        size = verify_whole_log(ledger, PROJECT, log.log_id)
        assert size >= len(total_acked)
    finally:
        ledger.close()


def test_two_processes_append_to_one_log(
    driver: str, database_url: str, store_factory: StoreFactory, tmp_path: Path
) -> None:
    children = [_spawn(driver, database_url, tmp_path / f"acks{n}", 2.5) for n in range(2)]
    for child in children:
        assert child.wait(timeout=120) == 0
    acked = _acked(tmp_path / "acks0") + _acked(tmp_path / "acks1")
    assert len(acked) == len(set(acked)) > 0
    store = store_factory()
    ledger = make_ledger(store)
    try:
        log = ledger.log_for(PROJECT, "acme")
        assert verify_whole_log(ledger, PROJECT, log.log_id) == len(acked)
        checkpoints = store.list_checkpoints(PROJECT, log.log_id)
        sample = checkpoints if len(checkpoints) <= 60 else random.Random(1).sample(checkpoints, 60)
        for older, newer in itertools.combinations(sorted(sample, key=lambda c: c.size), 2):
            proof = ledger.consistency_proof(PROJECT, log.log_id, older.size, newer.size)
            verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
    finally:
        ledger.close()
