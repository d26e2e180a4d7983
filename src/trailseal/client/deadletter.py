"""The dead-letter file: batches that still failed after their retries, kept so that
nothing logged is lost, and replayed later.

Format: JSON Lines, one failed batch per line::

    {"v":1,"failed_at":"2026-…Z","attempts":8,"error":{"status":503,"code":"overloaded",
     "message":"…","field":null},"events":[{…},{…}]}

``events`` are the events exactly as they were sent: ids and ``occurred_at`` included, so
sending them again is idempotent (the server answers a repeat with the original). A line is
written with one ``write`` and ``fsync``-ed before the worker moves on. Appends and the
replay's rewrite take an exclusive ``flock`` on a sidecar ``<path>.lock``, so several
threads and processes (a forked child, a replay running beside a live client) may share one
file. The file and its lock are created ``0600``: they hold event data.

Replay (:func:`replay`) sends each line's events as one batch (with the usual retries and
splitting), then rewrites the file atomically (temporary file, ``fsync``, ``rename``):
acknowledged events are gone, still-failing ones stay with their new error, lines appended
meanwhile are kept, and a line that cannot be read is kept untouched. A crash in the middle
loses nothing: the old file is still there, and sending it again is harmless.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from trailseal.client._files import append_durably, locked, replace_durably
from trailseal.client.batching import Failure, Prepared, deliver
from trailseal.client.models import ReplayResult
from trailseal.client.protocol import Op
from trailseal.client.retry import RetryPolicy
from trailseal.core.schema import format_timestamp

__all__ = ["DeadLetterFile", "DeadLetterLine", "replay"]

_VERSION = 1


@dataclass(frozen=True, slots=True)
class DeadLetterLine:
    """One line as read: its exact bytes, and its events (None when it cannot be read)."""

    raw: bytes
    events: list[Prepared] | None
    problem: str | None = None


def encode_line(failure: Failure, failed_at: str) -> bytes:
    head = orjson.dumps({"v": _VERSION, "failed_at": failed_at, "attempts": failure.attempts})[:-1]
    return (
        head
        + b',"error":'
        + orjson.dumps(failure.error_json())
        + b',"events":['
        + b",".join(e.data for e in failure.events)
        + b"]}"
    )


def _decode_line(raw: bytes) -> DeadLetterLine:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return DeadLetterLine(raw, None, f"not JSON: {exc}")
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return DeadLetterLine(raw, None, "no events array")
    return DeadLetterLine(raw, [Prepared(str(e.get("id")), orjson.dumps(e)) for e in events])


class DeadLetterFile:
    """One dead-letter file (see the module docstring). Thread- and process-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"DeadLetterFile({str(self.path)!r})"

    def append(self, failures: Sequence[Failure]) -> int:
        """Write one line per failure, durably. Returns the number of events written."""
        if not failures:
            return 0
        stamp = format_timestamp(datetime.now(UTC))
        data = b"".join(encode_line(f, stamp) + b"\n" for f in failures)
        with locked(self.path):
            append_durably(self.path, data)
        return sum(len(f.events) for f in failures)

    def read(self) -> list[DeadLetterLine]:
        """Every non-empty line, in order (an absent file has none)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [_decode_line(raw) for raw in data.splitlines() if raw.strip()]

    def count(self) -> int:
        """Events in the file (unreadable lines count as none)."""
        return sum(len(line.events or ()) for line in self.read())

    def rewrite(self, outcomes: Sequence[tuple[bytes, Sequence[Failure]]]) -> list[bytes]:
        """Atomically replace each line in ``outcomes`` (matched by its exact bytes, once
        each) with the lines of its remaining failures (none: the line goes). Lines not
        in ``outcomes`` (appended since they were read) stay. Returns the lines left."""
        stamp = format_timestamp(datetime.now(UTC))
        replacements: dict[bytes, list[list[bytes]]] = {}
        for raw, failures in outcomes:
            replacements.setdefault(raw, []).append([encode_line(f, stamp) for f in failures])
        with locked(self.path):
            try:
                current = [raw for raw in self.path.read_bytes().splitlines() if raw.strip()]
            except FileNotFoundError:
                current = []
            kept: list[bytes] = []
            for raw in current:
                pending = replacements.get(raw)
                if pending:
                    kept.extend(pending.pop(0))
                else:
                    kept.append(raw)
            if kept == current:
                return kept
            replace_durably(self.path, b"".join(line + b"\n" for line in kept))
        return kept


def replay(
    dead_letter: DeadLetterFile, policy: RetryPolicy, rng: random.Random
) -> Op[ReplayResult]:
    """Send every readable line again and remove what the server acknowledged."""
    lines = dead_letter.read()
    outcomes: list[tuple[bytes, list[Failure]]] = []
    delivered = 0
    errors: list[str] = []
    for line in lines:
        if line.events is None:
            errors.append(f"kept an unreadable line: {line.problem}")
            continue
        if not line.events:
            outcomes.append((line.raw, []))
            continue
        delivery = yield from deliver(line.events, policy, rng)
        delivered += len(delivery.delivered)
        outcomes.append((line.raw, delivery.failures))
        errors.extend(f.describe() for f in delivery.failures)
    kept = dead_letter.rewrite(outcomes)
    remaining = sum(len(_decode_line(raw).events or ()) for raw in kept)
    return ReplayResult(delivered, remaining, len(kept), tuple(errors))
