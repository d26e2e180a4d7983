"""The ``trailseal`` command. Exit codes: 0 ok, 1 verification failed, 2 usage or
configuration error, 3 the server or database could not be reached."""

from __future__ import annotations

import click

from trailseal import __version__
from trailseal.cli.checkpoint import checkpoint
from trailseal.cli.events import log, query, tail
from trailseal.cli.export import export
from trailseal.cli.keys import keys
from trailseal.cli.serve import serve
from trailseal.cli.verify import verify

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trailseal")
def cli() -> None:
    """trailseal: a tamper-evident audit log.

    \b
    Example:
      trailseal serve --port 8080
      trailseal keys create --scopes events:write
    """


cli.add_command(serve)
cli.add_command(keys)
cli.add_command(export)
cli.add_command(verify)
cli.add_command(log)
cli.add_command(query)
cli.add_command(tail)
cli.add_command(checkpoint)


def main() -> None:
    cli()
