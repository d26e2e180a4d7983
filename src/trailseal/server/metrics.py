"""Prometheus metrics: ingested events, batch sizes, commit latency.

With ``--workers N`` each process keeps its own counters (a scrape sees one process);
the figures are per process, as is usual for uvicorn workers without a multiprocess dir.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["BATCH_SIZE", "COMMIT_SECONDS", "EVENTS_INGESTED", "REGISTRY"]

REGISTRY = CollectorRegistry(auto_describe=True)
EVENTS_INGESTED = Counter("trailseal_events_ingested", "Events appended to logs", registry=REGISTRY)
BATCH_SIZE = Histogram(
    "trailseal_batch_events",
    "Events per group-commit transaction",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000),
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "trailseal_commit_seconds",
    "Append transaction latency (lock to commit)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
