"""``trailseal log``, ``query`` and ``tail``: write and read events on a running server,
through the SDK (:class:`trailseal.client.Client`).

- ``log`` sends one event in sync mode, so the command returns once the event is covered
  by a signed checkpoint, and prints where it landed.
- ``query`` lists (a table, ``--json`` or ``--ndjson``), one page or ``--all``.
- ``tail`` follows the live stream (``GET /v1/stream/events``); it resumes by itself after
  a dropped connection, without gaps or repeats, and prints each event as it arrives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from trailseal.cli.options import EXIT_USAGE
from trailseal.cli.remote import (
    filter_kwargs,
    filter_options,
    open_client,
    reported_failures,
    server_options,
)

__all__ = ["log", "query", "tail"]


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _read_event(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {source}: {exc}")
    try:
        document = json.loads(text)
    except ValueError as exc:
        _fail(f"{'stdin' if source == '-' else source} is not JSON: {exc}")
    if not isinstance(document, dict):
        _fail("the event must be a JSON object")
    return document


def _json_option(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        _fail(f"--{name} is not JSON: {exc}")


@click.command()
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--organization", "organization_id", default=None)
@click.option("--action", default=None, help="Dot notation: invoice.deleted")
@click.option("--actor", "actor_id", default=None, help="The actor's id.")
@click.option("--actor-type", default=None, help="user (default), agent, system, service…")
@click.option("--actor-name", default=None)
@click.option("--resource-type", default=None)
@click.option("--resource-id", default=None)
@click.option("--outcome", type=click.Choice(["success", "failure", "error"]), default=None)
@click.option("--message", default=None)
@click.option("--metadata", default=None, help="A JSON object.")
@click.option("--tag", "tags", multiple=True, help="Repeatable.")
@click.option("--id", "event_id", default=None, help="Your own id (also the idempotency key).")
@click.option("--occurred-at", default=None, help="RFC 3339 (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
@server_options
def log(
    source: str | None,
    organization_id: str | None,
    action: str | None,
    actor_id: str | None,
    actor_type: str | None,
    actor_name: str | None,
    resource_type: str | None,
    resource_id: str | None,
    outcome: str | None,
    message: str | None,
    metadata: str | None,
    tags: tuple[str, ...],
    event_id: str | None,
    occurred_at: str | None,
    as_json: bool,
    url: str,
    api_key: str | None,
) -> None:
    """Log one event, from flags or a JSON object (FILE, or - for stdin); flags win over
    the JSON. Returns once the event is in a signed checkpoint; prints its id, log and seq.

    Exit status: 0 logged, 2 invalid event or refused, 3 server unreachable.

    \b
    Example:
      trailseal log --organization acme --action invoice.deleted --actor user_1
      echo '{"action":"user.login","actor":{"id":"u1"}}' | trailseal log -
    """
    event: dict[str, Any] = _read_event(source) if source else {}
    actor = dict(event.get("actor") or {}) if isinstance(event.get("actor"), dict) else {}
    for key, value in (("id", actor_id), ("type", actor_type), ("name", actor_name)):
        if value is not None:
            actor[key] = value
    if actor:
        event["actor"] = actor
    resource = dict(event["resource"]) if isinstance(event.get("resource"), dict) else {}
    for key, value in (("type", resource_type), ("id", resource_id)):
        if value is not None:
            resource[key] = value
    if resource:
        event["resource"] = resource
    flags = {
        "organization_id": organization_id,
        "action": action,
        "outcome": outcome,
        "message": message,
        "metadata": _json_option(metadata, "metadata"),
        "id": event_id,
        "occurred_at": occurred_at,
        "tags": list(tags) or None,
    }
    event.update({k: v for k, v in flags.items() if v is not None})
    if not event:
        _fail("no event: give --action and --actor, or a JSON object (FILE or -)")
    client = open_client(url, api_key)
    with client, reported_failures(url):
        committed = client.log_sync(**event)
    if as_json:
        click.echo(json.dumps(dict(committed.raw)))
        return
    note = " (already logged: the original is kept)" if committed.duplicate else ""
    click.echo(
        f"logged {committed.id}: {committed.organization_id} seq {committed.seq} "
        f"(log {committed.log_id}){note}"
    )


def _row(view: dict[str, Any]) -> list[str]:
    event = view.get("event") or {}
    actor = event.get("actor") or {}
    resource = event.get("resource") or {}
    return [
        str(event.get("occurred_at") or view.get("received_at") or ""),
        str(view.get("organization_id", "")),
        str(view.get("seq", "")),
        str(actor.get("name") or actor.get("id") or ""),
        "(redacted)" if view.get("redacted") else str(event.get("action", "")),
        "/".join(str(resource[k]) for k in ("type", "id") if resource.get(k)),
        str(event.get("outcome", "")),
        str(view.get("id", "")),
    ]


def _table(views: list[dict[str, Any]]) -> Table:
    table = Table()
    for name in ("occurred", "organization", "seq", "actor", "action", "resource", "outcome", "id"):
        table.add_column(name, overflow="fold")  # long ids wrap rather than vanish in "…"
    for view in views:
        table.add_row(*_row(view))
    return table


def _console() -> Console:
    """stdout; a file or pipe gets a wide table instead of rich's default 80 columns."""
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)


@click.command()
@filter_options
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor", default=None, help="The next page (printed after a page).")
@click.option("--order", type=click.Choice(["desc", "asc"]), default="desc", show_default=True)
@click.option("--all", "every", is_flag=True, help="Every matching event, page after page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--ndjson", is_flag=True, help="One JSON event per line.")
@server_options
def query(
    limit: int,
    cursor: str | None,
    order: str,
    every: bool,
    as_json: bool,
    ndjson: bool,
    url: str,
    api_key: str | None,
    **values: Any,
) -> None:
    """List and search events: filters, full text and the query language (-q).

    Newest first (--order asc: oldest first); a table, or --json / --ndjson for scripts.

    Exit status: 0 listed, 2 bad filter or refused, 3 server unreachable.

    \b
    Examples:
      trailseal query --organization acme --action 'invoice.*' --since 2026-11-01
      trailseal query -q 'actor:alice outcome:failure "refund"' --ndjson
    """
    if as_json and ndjson:
        _fail("--json and --ndjson exclude each other")
    filters = filter_kwargs(values)
    client = open_client(url, api_key)
    with client, reported_failures(url):
        next_cursor: str | None = None
        if every and ndjson:  # printed page by page: any size, constant memory
            for event in client.iter_events(page_size=200, order=order, **filters):
                click.echo(json.dumps(dict(event.raw)))
            return
        if every:
            views = [dict(e.raw) for e in client.iter_events(order=order, **filters)]
        else:
            page = client.list_events(cursor=cursor, limit=limit, order=order, **filters)
            views, next_cursor = [dict(e.raw) for e in page.events], page.next_cursor
    if ndjson:
        for view in views:
            click.echo(json.dumps(view))
    elif as_json:
        click.echo(json.dumps({"events": views, "next_cursor": next_cursor}))
    else:
        _console().print(_table(views))
        click.echo(f"{len(views)} event(s)", err=True)
    if next_cursor is not None and not ndjson and not as_json:
        click.echo(f"more: --cursor {next_cursor}", err=True)


def _line(view: dict[str, Any]) -> str:
    occurred, organization, seq, actor, action, resource, outcome, event_id = _row(view)
    parts = [f"[{view.get('position')}]", occurred, organization, f"seq {seq}", actor, action]
    parts += [p for p in (resource, outcome) if p] + [event_id]
    return "  ".join(parts)


@click.command()
@filter_options
@click.option(
    "--after",
    default=None,
    metavar="POSITION",
    help="Start after this stream position (the [n] printed before each event).",
)
@click.option("--from-start", is_flag=True, help="Every matching event, then follow.")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after N events.")
@click.option("--ndjson", "--json", "ndjson", is_flag=True, help="One JSON event per line.")
@server_options
def tail(
    after: str | None,
    from_start: bool,
    count: int | None,
    ndjson: bool,
    url: str,
    api_key: str | None,
    **values: Any,
) -> None:
    """Follow new events as they are committed (the live stream), until Ctrl-C.

    A dropped connection is resumed where it stopped: nothing is skipped or shown twice.

    Exit status: 0 stopped, 2 bad filter or refused, 3 the server stayed unreachable.

    \b
    Examples:
      trailseal tail --organization acme --action 'invoice.*'
      trailseal tail --after 4711 --ndjson | jq .event.action
    """
    from trailseal.client import RetryPolicy

    if after is not None and from_start:
        _fail("--after and --from-start exclude each other")
    filters = filter_kwargs(values)
    client = open_client(url, api_key)
    start = "0" if from_start else after
    # Following is long-lived: once it runs, ride out a server restart (minutes), not just
    # a blip; but a wrong URL, key or filter should fail at once, so ask once first.
    patient = RetryPolicy(max_attempts=60, initial_backoff=0.5, max_backoff=10.0)
    try:
        with client, reported_failures(url):
            client.list_events(limit=1, **filters)
            for event in client.stream_events(after=start, limit=count, retry=patient, **filters):
                view = dict(event.raw)
                click.echo(json.dumps(view) if ndjson else _line(view))
    except KeyboardInterrupt:  # Ctrl-C is how one stops following: not an error
        return
