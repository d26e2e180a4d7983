"""``trailseal serve``: start the server (ARCHITECTURE §12, the operating contract)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from trailseal.cli.options import EXIT_UNREACHABLE, EXIT_USAGE, data_dir_option


@click.command()
@click.option(
    "--host", default=None, help="Interface to listen on [env TRAILSEAL_HOST; default 127.0.0.1]."
)
@click.option("--port", type=int, default=None, help="Port [env TRAILSEAL_PORT; default 8080].")
@data_dir_option
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (each stateless; appends are serialized by the database).",
)
def serve(host: str | None, port: int | None, data_dir: Path | None, workers: int) -> None:
    """Start the trailseal server.

    On first start it creates project `default` and prints `admin key: tsk_live_…` once.

    \b
    Example:
      trailseal serve --port 9000 --data-dir /var/lib/trailseal
      TRAILSEAL_DATABASE_URL=postgresql://… TRAILSEAL_MASTER_KEY=… trailseal serve --workers 4
    """
    try:
        import uvicorn

        from trailseal.runtime import bootstrap, open_ledger, open_store
        from trailseal.server.app import create_app
    except ImportError as exc:  # the base install has no server
        raise click.ClickException(
            f"the server needs the `server` extra: pip install 'trailseal[server]' ({exc})"
        ) from exc
    from trailseal.errors import TrailsealError
    from trailseal.settings import Settings

    settings = Settings.from_env(host=host, port=port, data_dir=data_dir, workers=workers)
    try:
        store = open_store(settings)
        admin = bootstrap(store)
        open_ledger(store, settings).close()  # fails early, and clearly, on a bad master key
        store.close()
    except TrailsealError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        click.echo(f"error: cannot open the database: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    if admin is not None:
        # Printed once, by the parent, before any worker starts; flushed so that a script
        # reading a pipe or a file sees it at once.
        click.echo(f"admin key: {admin}")
        sys.stdout.flush()
    database = "PostgreSQL" if settings.uses_postgres else f"SQLite in {settings.data_dir}"
    click.echo(f"trailseal listening on http://{settings.host}:{settings.port} ({database})")
    sys.stdout.flush()
    if workers == 1:
        uvicorn.run(
            create_app(settings), host=settings.host, port=settings.port, log_level="warning"
        )
        return
    os.environ.update(settings.environment())
    uvicorn.run(
        "trailseal.server.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
    )
