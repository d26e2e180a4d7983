"""``trailseal keys``: create, list and revoke API keys, directly on the installation's
database, with or without the server running."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from trailseal.cli.options import EXIT_USAGE, data_dir_option


def _open(data_dir: Path | None):  # type: ignore[no-untyped-def]
    from trailseal.runtime import bootstrap, open_store
    from trailseal.settings import Settings

    settings = Settings.from_env(data_dir=data_dir)
    store = open_store(settings)
    bootstrap(store)  # an empty data directory or database is initialized
    return store


@click.group()
def keys() -> None:
    """Manage API keys (shown once, stored hashed).

    \b
    Example:
      trailseal keys create --scopes events:write --organization acme
      trailseal keys list --json
    """


@keys.command("create")
@click.option("--project", default="default", show_default=True)
@click.option(
    "--scopes",
    default="events:write,events:read",
    show_default=True,
    help="Comma-separated: events:write, events:read, verify, export, admin.",
)
@click.option("--organization", default=None, help="Bind the key to one organization.")
@click.option("--name", default="", help="A label shown by `keys list`.")
@click.option("--test", is_flag=True, help="Create a tsk_test_ key.")
@data_dir_option
def create(
    project: str,
    scopes: str,
    organization: str | None,
    name: str,
    test: bool,
    data_dir: Path | None,
) -> None:
    """Create a key; the secret is printed alone on the last line.

    \b
    Example:
      trailseal keys create --scopes events:write --organization acme --name billing
    """
    from trailseal.apikeys import new_key, parse_scopes
    from trailseal.errors import ValidationError
    from trailseal.runtime import now_text
    from trailseal.store.base import ApiKeyRow, ProjectRow

    try:
        parsed = parse_scopes(scopes)
    except ValidationError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
    store = _open(data_dir)
    try:
        store.create_project(ProjectRow(project, now_text()))
        key = new_key(test=test)
        store.create_api_key(
            ApiKeyRow(
                key.key_id, project, key.key_hash, parsed, organization, name, test, now_text()
            )
        )
    finally:
        store.close()
    click.echo(
        f"key id: {key.key_id} (project {project}, scopes {','.join(parsed)}"
        + (f", organization {organization}" if organization else "")
        + ")",
        err=True,
    )
    click.echo(key.secret)


@keys.command("list")
@click.option("--project", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key, for scripts.")
@data_dir_option
def list_keys(project: str, as_json: bool, data_dir: Path | None) -> None:
    """List keys (ids, scopes, bindings; never secrets).

    \b
    Example:
      trailseal keys list --project default --json
    """
    store = _open(data_dir)
    try:
        rows = store.list_api_keys(project)
    finally:
        store.close()
    if as_json:
        for row in rows:
            click.echo(
                json.dumps(
                    {
                        "key_id": row.key_id,
                        "name": row.name,
                        "scopes": list(row.scopes),
                        "organization_id": row.organization,
                        "test": row.test,
                        "created_at": row.created_at,
                        "revoked_at": row.revoked_at,
                    }
                )
            )
        return
    table = Table("key id", "name", "scopes", "organization", "created", "revoked")
    for row in rows:
        table.add_row(
            row.key_id,
            row.name,
            ",".join(row.scopes),
            row.organization or "",
            row.created_at,
            row.revoked_at or "",
        )
    Console().print(table)


@keys.command("revoke")
@click.argument("key_id")
@click.option("--project", default="default", show_default=True)
@data_dir_option
def revoke(key_id: str, project: str, data_dir: Path | None) -> None:
    """Revoke a key by its public id (see `keys list`).

    \b
    Example:
      trailseal keys revoke key_AbC123dEf456
    """
    from trailseal.runtime import now_text

    store = _open(data_dir)
    try:
        done = store.revoke_api_key(project, key_id, now_text())
    finally:
        store.close()
    if not done:
        click.echo(f"error: no active key {key_id} in project {project}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"revoked {key_id}")
