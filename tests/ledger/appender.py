"""A child process that appends through the ledger and records every acknowledgement.

Used by the crash and concurrency tests: ``python -m tests.ledger.appender DRIVER URL ACKS
SECONDS``. Each acknowledged event id is written to ACKS (one per line, unbuffered write
after the commit returned) so that a SIGKILL can only lose acknowledgements, never invent
them. Several threads keep appends in flight so a kill lands mid-batch.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time

from tests.ledger.helpers import event, make_ledger, prepared
from trailseal.store.base import Store
from trailseal.store.postgres import PostgresStore
from trailseal.store.sqlite import SQLiteStore


def main() -> None:
    driver, url, acks_path, seconds = sys.argv[1:5]
    store: Store = SQLiteStore(url) if driver == "sqlite" else PostgresStore(url)
    store.migrate()
    ledger = make_ledger(store)
    acks = os.open(acks_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    lock = threading.Lock()
    deadline = time.monotonic() + float(seconds)
    os.write(sys.stdout.fileno(), b"ready\n")

    def run(worker: int) -> None:
        rng = random.Random(os.getpid() * 100 + worker)
        while time.monotonic() < deadline:
            raws = [event() for _ in range(rng.choice([1, 3, 20, 150]))]
            results = ledger.append("p1", "acme", [prepared(r) for r in raws]).result()
            line = "".join(f"{r.event_id}\n" for r in results).encode()
            with lock:
                os.write(acks, line)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.close()
    store.close()


if __name__ == "__main__":
    main()
