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
