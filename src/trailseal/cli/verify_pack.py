"""Checking an evidence pack from the command line: pinned keys in, a report or the first
failing item out. Base install only (no server extra), as an auditor has it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from trailseal.cli.options import EXIT_OK, EXIT_USAGE, EXIT_VERIFY_FAILED
from trailseal.errors import ValidationError

__all__ = ["read_key_files", "run_verify_pack"]


def read_key_files(paths: Sequence[Path]) -> list[str]:
    """Verifier keys from files: one per line; blank lines and ``#`` comments skipped."""
    keys: list[str] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append(line)
    return keys


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def run_verify_pack(
    path: Path, keys: Sequence[str], key_files: Sequence[Path], *, as_json: bool
) -> int:
    """Verify the pack at ``path``; print the report (stdout) or the failure (stderr);
    return the exit code."""
    from trailseal.exports.pack import PackError, verify_pack

    pinned = list(keys) + read_key_files(key_files)
    if not pinned:
        click.echo(
            "error: pin the log's verifier key with --key (or --key-file); the pack's own "
            "keys.txt is not trusted",
            err=True,
        )
        return EXIT_USAGE
    try:
        report = verify_pack(path, pinned)
    except ValidationError as exc:
        click.echo(f"error: {exc.diagnostics()}", err=True)
        return EXIT_USAGE
    except PackError as exc:
        if as_json:
            click.echo(
                json.dumps(
                    {"path": str(path), "verified": False, "item": exc.item, "message": exc.message}
                )
            )
        click.echo(f"FAILED: {exc.item}: {exc.message}", err=True)
        return EXIT_VERIFY_FAILED
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return EXIT_OK
    table = Table("organization", "log", "entries", "seqs", "checkpoint", "signed", "whole log")
    for log in report.logs:
        seqs = "" if log.first_seq is None else f"{log.first_seq}-{log.last_seq}"
        table.add_row(
            log.organization or "",
            log.log_id,
            str(log.entries) + (f" ({log.redacted} redacted)" if log.redacted else ""),
            seqs,
            f"size {log.tree_size}",
            _when(log.signed_at),
            "yes" if log.whole_log else "no",
        )
    console = Console(file=sys.stdout)
    console.print(table)
    click.echo(
        f"verified: {report.entries} entries in {len(report.logs)} log(s), every one in its "
        f"log's signed tree; {report.files} files match the manifest"
    )
    if not report.logs:
        click.echo("note: the pack holds no entries", err=True)
    return EXIT_OK
