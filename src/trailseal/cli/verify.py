"""``trailseal verify``: verification with a pinned key (base install).

Targets, by kind (add a kind by adding a branch to :func:`verify`):

- ``PACK.zip``: an evidence pack (:mod:`trailseal.cli.verify_pack`), checked with nothing
  but the pack and the pinned key(s).
- ``EVENT_ID``: one event, fetched from the server and checked on this machine against the
  pinned key and the trust store (:mod:`trailseal.cli.verify_remote`).
- no target, ``--organization``: the server re-checks a range of that log
  (``POST /v1/verify``, :mod:`trailseal.cli.verify_remote`).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import click

from trailseal.cli.options import EXIT_USAGE
from trailseal.cli.remote import server_options, trust_store_option

__all__ = ["verify"]


@click.command()
@click.argument("target", required=False)
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
@click.option(
    "--organization",
    "organization_id",
    default=None,
    help="Without TARGET: have the server verify this organization's log (a range).",
)
@click.option("--from", "start", type=click.IntRange(0), default=0, help="First seq (range).")
@click.option(
    "--to", "end", type=click.IntRange(1), default=None, help="One past the last seq (range)."
)
@trust_store_option
@server_options
def verify(
    target: str | None,
    keys: tuple[str, ...],
    key_files: tuple[Path, ...],
    as_json: bool,
    organization_id: str | None,
    start: int,
    end: int | None,
    trust_file: Path | None,
    url: str,
    api_key: str | None,
) -> None:
    """Verify an evidence pack (offline), one event (against the pinned key and the trust
    store), or, with --organization and no TARGET, a range of a log on the server.

    Exit status: 0 verified, 1 verification failed (what did not verify is named),
    2 usage error or refused, 3 server unreachable.

    \b
    Examples:
      trailseal verify evidence.zip --key 'trailseal.local/log/abc…+1a2b3c4d+AbC…'
      trailseal verify 01J9Z… --key 'trailseal.local/log/abc…+1a2b3c4d+AbC…'
      trailseal verify --organization acme --from 0 --to 1000
    """
    if target is None:
        if organization_id is None:
            click.echo("error: give a TARGET (pack or event id) or --organization", err=True)
            sys.exit(EXIT_USAGE)
        from trailseal.cli.verify_remote import run_verify_range

        sys.exit(
            run_verify_range(organization_id, start, end, url=url, api_key=api_key, as_json=as_json)
        )
    path = Path(target)
    if target.endswith(".zip") or (path.is_file() and zipfile.is_zipfile(path)):
        from trailseal.cli.verify_pack import run_verify_pack

        if not path.is_file():
            click.echo(f"error: no such file: {target}", err=True)
            sys.exit(EXIT_USAGE)
        sys.exit(run_verify_pack(path, keys, key_files, as_json=as_json))
    from trailseal.cli.verify_remote import run_verify_event
    from trailseal.core.ids import ID_PATTERN

    if ID_PATTERN.fullmatch(target) is None:
        click.echo(
            f"error: cannot verify {target!r}: expected an evidence pack (.zip) or an event id",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    sys.exit(
        run_verify_event(
            target,
            keys,
            key_files,
            trust_file=trust_file,
            url=url,
            api_key=api_key,
            as_json=as_json,
        )
    )
