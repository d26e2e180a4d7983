"""Versioned schema migrations, one numbered SQL file per version and driver."""

from __future__ import annotations

from importlib import resources

__all__ = ["load_migrations"]


def load_migrations(driver: str) -> list[tuple[int, str]]:
    """``[(version, sql), ...]`` in order, from ``migrations/<driver>/NNNN_name.sql``."""
    folder = resources.files(__package__).joinpath(driver)
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), item.read_text(encoding="utf-8")))
    return sorted(found)
