"""The ``trailseal verify`` forms that talk to a server, through the SDK:

- ``verify EVENT_ID --key VKEY``: one event checked on this machine
  (:meth:`trailseal.client.Client.verify_event`): the entry bytes hashed here, the inclusion
  proof up to a checkpoint that opens with the pinned key, the server's copy of the event
  compared with the signed entry, and the checkpoint checked against the one remembered in
  the trust store (trust on first use). The server is not trusted for any of it.
- ``verify --organization acme [--from N] [--to M]``: the server re-checks a range of its
  log (``POST /v1/verify``) and names the first bad entry; that is the server's own word.

Each returns the exit code; failures are printed on stderr, naming what did not verify.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from trailseal.cli.checkpoint import pinned_keys, signed_time
from trailseal.cli.options import EXIT_OK, EXIT_USAGE, EXIT_VERIFY_FAILED
from trailseal.cli.remote import open_client, reported_failures

__all__ = ["run_verify_event", "run_verify_range"]


def run_verify_event(
    event_id: str,
    keys: tuple[str, ...],
    key_files: tuple[Path, ...],
    *,
    trust_file: Path | None,
    url: str,
    api_key: str | None,
    as_json: bool,
) -> int:
    if not keys and not key_files:
        click.echo(
            "error: pin the log's verifier key with --key (or --key-file); the server's own "
            "word is never used",
            err=True,
        )
        return EXIT_USAGE
    pinned = pinned_keys(keys, key_files)
    client = open_client(url, api_key, trust_store=trust_file)
    with client, reported_failures(url):
        verified = client.verify_event(event_id, verifier_key=pinned)
    report = {
        "verified": True,
        "id": verified.id,
        "organization_id": verified.organization_id,
        "origin": verified.origin,
        "seq": verified.seq,
        "tree_size": verified.tree_size,
        "root_hash": verified.root_hash.hex(),
        "leaf_hash": verified.leaf_hash.hex(),
        "signed_at": signed_time(verified.signed_at),
        "redacted": verified.redacted,
        "trust": verified.trust,
    }
    if as_json:
        click.echo(json.dumps(report))
        return EXIT_OK
    what = "its leaf (the entry is redacted)" if verified.redacted else "its entry bytes"
    click.echo(
        f"verified: event {verified.id} is entry {verified.seq} of {verified.origin} "
        f"({verified.organization_id}); {what} are in the signed tree of "
        f"{verified.tree_size} entries (signed {report['signed_at']})"
    )
    click.echo(f"checkpoint: {verified.trust} (trust store {client.trust_store().path})")
    return EXIT_OK


def run_verify_range(
    organization_id: str,
    start: int,
    end: int | None,
    *,
    url: str,
    api_key: str | None,
    as_json: bool,
) -> int:
    from trailseal.client.logcheck import verify_log_range

    client = open_client(url, api_key)
    with client, reported_failures(url):
        report = verify_log_range(client, organization_id, start, end)
    if as_json:
        click.echo(json.dumps(dict(report.raw)))
    if not report.ok:
        click.echo(
            f"FAILED: {report.first_bad or 'the range'} did not verify: {report.message}",
            err=True,
        )
        return EXIT_VERIFY_FAILED
    if not as_json:
        redacted = f" ({report.redacted} redacted)" if report.redacted else ""
        click.echo(
            f"verified by the server: entries {report.start} to {report.end - 1} of "
            f"{report.organization_id}'s log{redacted}: bytes, leaf hashes, chain and the "
            f"signed root of tree size {report.tree_size}"
            if report.end > report.start
            else f"verified by the server: {report.organization_id}'s log holds no entries "
            "in that range"
        )
    return EXIT_OK
