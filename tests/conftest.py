"""Session-wide fixtures: where the published test vectors live."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.dbfixtures"]


def vectors_dir() -> Path:
    """``$TRAILSEAL_VECTORS`` or ``../shared/vectors`` beside the checkout. Missing vectors
    are an error, never a skip: every published vector must be exercised."""
    configured = os.environ.get("TRAILSEAL_VECTORS")
    path = Path(configured) if configured else REPO.parent / "shared" / "vectors"
    if not path.is_dir():
        raise RuntimeError(f"test vectors not found at {path}; set TRAILSEAL_VECTORS")
    return path


def load_vector_json(relative: str) -> Any:
    return json.loads((vectors_dir() / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def vectors() -> Path:
    return vectors_dir()


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SDK state (dead-letter file, trust store) goes to a throwaway directory, never to
    the real home of whoever runs the suite."""
    state = tmp_path_factory.mktemp("state")
    os.environ["XDG_STATE_HOME"] = str(state)
    os.environ.pop("TRAILSEAL_DEAD_LETTER", None)
    os.environ.pop("TRAILSEAL_TRUST_STORE", None)
