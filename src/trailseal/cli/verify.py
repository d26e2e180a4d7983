"""``trailseal verify``: offline verification with a pinned key (base install).

Targets, by kind (add a kind by adding a branch to :func:`verify`):

- ``PACK.zip``: an evidence pack (:mod:`trailseal.cli.verify_pack`), checked with nothing
  but the pack and the pinned key(s).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import click

from trailseal.cli.options import EXIT_USAGE

__all__ = ["verify"]


@click.command()
@click.argument("target")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="VERIFIER_KEY",
    help="A log's verifier key (origin+hash+base64), obtained independently; repeat for "
    "a pack that spans several logs.",
)
@click.option(
    "--key-file",
    "key_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A file of verifier keys, one per line (# comments allowed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify(target: str, keys: tuple[str, ...], key_files: tuple[Path, ...], as_json: bool) -> None:
    """Verify TARGET offline against pinned verifier keys.

    Exit status: 0 verified, 1 verification failed (the first failing item is named),
    2 usage error.

    \b
    Example:
      trailseal verify evidence.zip --key 'trailseal.local/log/abc…+1a2b3c4d+AbC…'
    """
    path = Path(target)
    if target.endswith(".zip") or (path.is_file() and zipfile.is_zipfile(path)):
        from trailseal.cli.verify_pack import run_verify_pack

        if not path.is_file():
            click.echo(f"error: no such file: {target}", err=True)
            sys.exit(EXIT_USAGE)
        sys.exit(run_verify_pack(path, keys, key_files, as_json=as_json))
    click.echo(f"error: cannot verify {target!r}: expected an evidence pack (.zip)", err=True)
    sys.exit(EXIT_USAGE)
