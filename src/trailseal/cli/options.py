"""Options shared by the commands that open an installation directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def data_dir_option(function: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Data directory for SQLite and the key file [env TRAILSEAL_DATA_DIR; "
        "default ./.trailseal]. TRAILSEAL_DATABASE_URL=postgresql://… selects PostgreSQL.",
    )(function)
