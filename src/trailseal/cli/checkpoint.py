"""``trailseal checkpoint``: the latest signed checkpoint of an organization's log, printed
only after it verified with the pinned key and extends the one remembered in the trust
store (trust on first use, :mod:`trailseal.client.logcheck`).

The signed note goes to stdout verbatim (``> checkpoint.txt`` keeps it); what was checked
goes to stderr, or, with ``--json``, everything is one JSON object on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from trailseal.cli.remote import open_client, reported_failures, server_options, trust_store_option

__all__ = ["checkpoint", "key_options", "pinned_keys", "signed_time"]

F = TypeVar("F", bound=Callable[..., Any])


def pinned_keys(keys: tuple[str, ...], key_files: tuple[Path, ...]) -> str | dict[str, str]:
    """One pinned key, or several by log origin (the key's name)."""
    from trailseal.cli.verify_pack import read_key_files

    pinned = list(keys) + read_key_files(key_files)
    if len(pinned) == 1:
        return pinned[0]
    return {key.split("+", 1)[0]: key for key in pinned}


def signed_time(timestamp: int | None) -> str:
    if timestamp is None:
        return "unknown"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_options(function: F) -> F:
    """``--key`` (repeatable) and ``--key-file``."""
    function = click.option(
        "--key-file",
        "key_files",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="A file of verifier keys, one per line (# comments allowed).",
    )(function)
    return click.option(
        "--key",
        "keys",
        multiple=True,
        metavar="VERIFIER_KEY",
        help="The log's verifier key (origin+hash+base64), obtained independently; "
        "repeat for several logs.",
    )(function)


@click.command()
@click.option("--organization", "organization_id", default="default", show_default=True)
@key_options
@trust_store_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@server_options
def checkpoint(
    organization_id: str,
    keys: tuple[str, ...],
    key_files: tuple[Path, ...],
    trust_file: Path | None,
    as_json: bool,
    url: str,
    api_key: str | None,
) -> None:
    """Print the latest checkpoint of an organization's log, after verifying it with the
    pinned key and checking it extends the last one this machine saw (trust on first use).

    Exit status: 0 verified, 1 the checkpoint did not verify or is inconsistent with the
    remembered one, 2 usage error or refused, 3 server unreachable.

    \b
    Example:
      trailseal checkpoint --organization acme --key 'trailseal.local/log/abc…+1a2b3c4d+AbC…'
    """
    from trailseal.cli.options import EXIT_USAGE
    from trailseal.client.logcheck import check_latest_checkpoint

    if not keys and not key_files:
        click.echo(
            "error: pin the log's verifier key with --key (or --key-file); the server's own "
            "word is never used",
            err=True,
        )
        raise SystemExit(EXIT_USAGE)
    pinned = pinned_keys(keys, key_files)
    client = open_client(url, api_key, trust_store=trust_file)
    with client, reported_failures(url):
        found = check_latest_checkpoint(client, organization_id, pinned)
    summary = {
        "organization_id": found.organization_id,
        "origin": found.origin,
        "log_id": found.log_id,
        "tree_size": found.tree_size,
        "root_hash": found.root_hash.hex(),
        "signed_at": signed_time(found.signed_at),
        "trust": found.trust,
        "checkpoint": found.note,
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(found.note, nl=not found.note.endswith("\n"))
    click.echo(
        f"verified: checkpoint of {found.organization_id} ({found.origin}), tree size "
        f"{found.tree_size}, root {found.root_hash.hex()}, signed {summary['signed_at']}; "
        f"trust: {found.trust}",
        err=True,
    )
