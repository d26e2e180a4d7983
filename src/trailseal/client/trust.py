"""The trust-on-first-use store: the last checkpoint seen of each log (ARCHITECTURE §7).

A small JSON file::

    {"version": 1, "checkpoints": {"<origin>": "<signed checkpoint note>", ...}}

It holds signed notes, not bare sizes and roots, so a store that was edited is caught too:
every remembered note is opened again with the pinned key before it is trusted. Updates are
compare-and-set under an exclusive ``flock`` on ``<path>.lock`` and land by an atomic
rename, so processes sharing the file never lose an update or step a log back.
``path=None`` keeps the checkpoints in memory only (for one process's lifetime).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson

from trailseal.client._files import locked, replace_durably
from trailseal.client.errors import ClientError

__all__ = ["TrustStore", "default_dead_letter_path", "default_trust_store_path", "state_dir"]

_VERSION = 1


def state_dir() -> Path:
    """``$XDG_STATE_HOME/trailseal`` (``~/.local/state/trailseal``)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "trailseal"


def default_trust_store_path() -> Path:
    """``$TRAILSEAL_TRUST_STORE``, else ``$XDG_STATE_HOME/trailseal/checkpoints.json``
    (``~/.local/state/trailseal/checkpoints.json``)."""
    configured = os.environ.get("TRAILSEAL_TRUST_STORE")
    return Path(configured) if configured else state_dir() / "checkpoints.json"


def default_dead_letter_path() -> Path:
    """``$TRAILSEAL_DEAD_LETTER``, else ``$XDG_STATE_HOME/trailseal/dead-letter.jsonl``: by
    default nothing that could not be delivered is lost."""
    configured = os.environ.get("TRAILSEAL_DEAD_LETTER")
    return Path(configured) if configured else state_dir() / "dead-letter.jsonl"


class TrustStore:
    """Remembered checkpoints by log origin. Thread- and process-safe."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TrustStore({str(self.path) if self.path else None!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self.path is None:
                yield
            else:
                with locked(self.path):
                    yield

    def _load(self) -> dict[str, str]:
        if self.path is None:
            return dict(self._memory)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ClientError(f"trust store {self.path} is not JSON: {exc}") from None
        checkpoints = document.get("checkpoints") if isinstance(document, dict) else None
        if not isinstance(checkpoints, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in checkpoints.items()
        ):
            raise ClientError(f"trust store {self.path} has no valid 'checkpoints' object")
        return checkpoints

    def get(self, origin: str) -> str | None:
        """The remembered note of log ``origin`` (not yet verified: open it with the key)."""
        with self._locked():
            return self._load().get(origin)

    def compare_and_set(self, origin: str, expected: str | None, note: str) -> bool:
        """Remember ``note`` for ``origin`` if the remembered one is still ``expected``
        (None: nothing remembered). False when another writer got there first."""
        with self._locked():
            checkpoints = self._load()
            if checkpoints.get(origin) != expected:
                return False
            if expected == note:
                return True
            checkpoints[origin] = note
            if self.path is None:
                self._memory = checkpoints
            else:
                self._save(checkpoints)
            return True

    def _save(self, checkpoints: dict[str, str]) -> None:
        assert self.path is not None
        data = orjson.dumps(
            {"version": _VERSION, "checkpoints": checkpoints},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )
        replace_durably(self.path, data)
