"""``trailseal export``: export a filtered selection from a running server.

CSV, JSON and NDJSON stream straight to the output (``GET /v1/exports/events.<fmt>``);
``--job`` runs them as a server-side job instead. PDF reports and evidence packs are always
jobs: ``POST /v1/exports``, a progress bar while the job runs, then the file is fetched
through the job's download link (which needs no auth header).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trailseal.cli.options import EXIT_UNREACHABLE, EXIT_USAGE

__all__ = ["export"]

_FORMATS = ("csv", "json", "ndjson", "pdf", "evidence")
_POLL_SECONDS = 0.5
_CHUNK = 1 << 16


class _Failed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        where = f" ({error['field']})" if error.get("field") else ""
        return f"{response.status_code} {error['code']}: {error['message']}{where}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:200]}"


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    code = EXIT_USAGE if 400 <= response.status_code < 500 else EXIT_UNREACHABLE
    raise _Failed(_error_message(response), code)


def _open_output(output: str | None, default_name: str) -> tuple[IO[bytes], str]:
    if output == "-":
        return sys.stdout.buffer, "stdout"
    path = Path(output or default_name)
    return path.open("wb"), str(path)


def _copy(response: httpx.Response, output: str | None, default_name: str) -> tuple[str, int]:
    target, shown = _open_output(output, default_name)
    written = 0
    try:
        for chunk in response.iter_bytes(_CHUNK):
            target.write(chunk)
            written += len(chunk)
    finally:
        if target is not sys.stdout.buffer:
            target.close()
        else:
            target.flush()
    return shown, written


def _run_job(
    client: httpx.Client, body: dict[str, Any], output: str | None, quiet: bool
) -> tuple[str, int, dict[str, Any]]:
    created = client.post("/v1/exports", json=body)
    _check(created)
    job: dict[str, Any] = created.json()
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task(f"export {job['job_id']} ({body['format']})", total=None)
        while job["status"] in ("queued", "running"):
            time.sleep(_POLL_SECONDS)
            answer = client.get(f"/v1/exports/{job['job_id']}")
            _check(answer)
            job = answer.json()
            progress.update(task, completed=job["progress"]["done"], total=job["progress"]["total"])
    if job["status"] != "done":
        raise _Failed(
            f"export job {job['job_id']} {job['status']}: {job.get('error')}", EXIT_UNREACHABLE
        )
    # The link is the credential: fetched bare, as a browser or curl would.
    with httpx.stream(
        "GET", job["download_url"], timeout=client.timeout, trust_env=False
    ) as answer:
        _check(answer)
        shown, written = _copy(answer, output, job["filename"])
    return shown, written, job


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    default="csv",
    show_default=True,
    help="pdf: a human-readable report (up to 10,000 events listed); evidence: a zip that "
    "`trailseal verify` checks offline.",
)
@click.option(
    "-o",
    "--output",
    default=None,
    help="File to write ('-': stdout). Default: trailseal-events.<format> for streams, the "
    "server's file name for jobs, in the current directory.",
)
@click.option("--organization", default=None, help="One organization's events.")
@click.option("--actor", "actor_id", default=None, help="Actor id (exact).")
@click.option("--actor-type", default=None)
@click.option("--actor-name", default=None, help="Actor name (partial).")
@click.option("--action", default=None, help="Exact, or a prefix: invoice.*")
@click.option("--resource-type", default=None)
@click.option("--resource-id", default=None)
@click.option("--target", "target_id", default=None, help="Target id.")
@click.option("--outcome", type=click.Choice(["success", "failure", "error"]), default=None)
@click.option("--since", default=None, help="RFC 3339 or a date (inclusive).")
@click.option("--until", default=None, help="RFC 3339 or a date (inclusive).")
@click.option("--tag", "tags", multiple=True, help="Repeatable: every tag must be present.")
@click.option("--text", default=None, help="Full-text terms.")
@click.option("-q", "--query", "q", default=None, help='Query language: actor:alice "text"')
@click.option("--excel", is_flag=True, help="CSV for spreadsheets (BOM, formulas defused).")
@click.option("--job", "as_job", is_flag=True, help="Run CSV/JSON/NDJSON as a server job.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--url",
    envvar="TRAILSEAL_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Server URL [env TRAILSEAL_URL].",
)
@click.option(
    "--api-key",
    envvar="TRAILSEAL_API_KEY",
    default=None,
    help="An API key with the export scope [env TRAILSEAL_API_KEY].",
)
def export(
    fmt: str,
    output: str | None,
    as_job: bool,
    quiet: bool,
    url: str,
    api_key: str | None,
    excel: bool,
    **filters: Any,
) -> None:
    """Export the events matching the filters.

    Exit status: 0 written, 2 usage error or refused request, 3 server unreachable or the
    export failed.

    \b
    Examples:
      trailseal export --format csv --organization acme --since 2026-11-01 -o acme.csv
      trailseal export --format evidence -q 'actor:alice action:invoice.*'
      trailseal export --format pdf --organization acme --until 2026-11-30
    """
    if not api_key:
        click.echo("error: an API key is needed (--api-key or TRAILSEAL_API_KEY)", err=True)
        sys.exit(EXIT_USAGE)
    given = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in filters.items()
        if v not in (None, (), "")
    }
    if "organization" in given:
        given["organization_id"] = given.pop("organization")
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(
            base_url=url, headers=headers, timeout=httpx.Timeout(60.0), trust_env=False
        ) as client:
            if fmt in ("csv", "json", "ndjson") and not as_job:
                params = dict(given, **({"excel": "true"} if excel else {}))
                with client.stream("GET", f"/v1/exports/events.{fmt}", params=params) as answer:
                    if not answer.is_success:
                        answer.read()
                    _check(answer)
                    shown, written = _copy(answer, output, f"trailseal-events.{fmt}")
                click.echo(f"wrote {written} bytes to {shown}", err=True)
                return
            body = dict(given, format=fmt, **({"excel": True} if excel else {}))
            shown, written, job = _run_job(client, body, output, quiet)
            click.echo(
                f"wrote {written} bytes ({job['progress']['done']} events) to {shown}", err=True
            )
    except _Failed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.code)
    except httpx.HTTPError as exc:
        click.echo(f"error: cannot reach the server at {url}: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
