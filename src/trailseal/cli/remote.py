"""What the commands that talk to a running server share: ``--url`` / ``--api-key`` (env
``TRAILSEAL_URL`` / ``TRAILSEAL_API_KEY``), the filters of ``GET /v1/events``, the SDK
client they all go through (no second HTTP client), and one mapping from what went wrong
to the exit code (:mod:`trailseal.cli.main`):

======================================================  ====
verified / done                                           0
a proof, signature, checkpoint or entry did not verify    1
bad input, or the server refused the request (4xx)        2
the server could not be reached, failed (5xx) or answered 3
something the SDK cannot read
======================================================  ====
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from trailseal.cli.options import EXIT_UNREACHABLE, EXIT_USAGE, EXIT_VERIFY_FAILED

if TYPE_CHECKING:
    from trailseal.client import Client

__all__ = [
    "filter_kwargs",
    "filter_options",
    "open_client",
    "reported_failures",
    "server_options",
    "trust_store_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def server_options(function: F) -> F:
    """``--url`` and ``--api-key``."""
    function = click.option(
        "--api-key",
        envvar="TRAILSEAL_API_KEY",
        default=None,
        help="An API key [env TRAILSEAL_API_KEY].",
    )(function)
    return click.option(
        "--url",
        envvar="TRAILSEAL_URL",
        default="http://127.0.0.1:8080",
        show_default=True,
        help="Server URL [env TRAILSEAL_URL].",
    )(function)


# (option, SDK keyword, extra click arguments), in the order --help lists them.
_FILTERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--organization", "organization_id", {"help": "One organization's events."}),
    ("--actor", "actor_id", {"help": "Actor id (exact)."}),
    ("--actor-type", "actor_type", {"help": "user, agent, system, service or api_key."}),
    ("--actor-name", "actor_name", {"help": "Actor name (partial)."}),
    ("--action", "action", {"help": "Exact, or a prefix: invoice.*"}),
    ("--resource-type", "resource_type", {}),
    ("--resource-id", "resource_id", {}),
    ("--target", "target_id", {"help": "Target id."}),
    (
        "--outcome",
        "outcome",
        {"type": click.Choice(["success", "failure", "error"])},
    ),
    ("--since", "since", {"help": "RFC 3339 or a date (inclusive)."}),
    ("--until", "until", {"help": "RFC 3339 or a date (inclusive)."}),
    ("--tag", "tags", {"multiple": True, "help": "Repeatable: every tag must be present."}),
    ("--text", "text", {"help": "Full-text terms."}),
)


def filter_options(function: F) -> F:
    """The filters of ``GET /v1/events`` and ``-q`` (the query language)."""
    function = click.option(
        "-q",
        "--query",
        "q",
        default=None,
        help='Query language: actor:alice action:invoice.* "free text"',
    )(function)
    for option, keyword, extra in reversed(_FILTERS):
        function = click.option(option, keyword, default=None, **extra)(function)
    return function


def filter_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """The SDK keywords of the filters given on the command line (popped from ``values``)."""
    given: dict[str, Any] = {}
    for _, keyword, _ in _FILTERS:
        value = values.pop(keyword, None)
        if value not in (None, (), ""):
            given[keyword] = list(value) if isinstance(value, tuple) else value
    q = values.pop("q", None)
    if q:
        given["q"] = q
    return given


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def open_client(url: str, api_key: str | None, **options: Any) -> Client:
    """An SDK client for one command: short retries, no background queue to lose events
    in (commands send directly), no dead-letter file."""
    from trailseal.client import Client, RetryPolicy

    if not api_key or not api_key.strip():
        _fail("error: an API key is needed (--api-key or TRAILSEAL_API_KEY)", EXIT_USAGE)
    options.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff=0.2))
    options.setdefault("dead_letter_path", False)
    return Client(url, api_key, timeout=30.0, **options)


def trust_store_option(function: F) -> F:
    return click.option(
        "--trust-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Where remembered checkpoints live [env TRAILSEAL_TRUST_STORE; default "
        "~/.local/state/trailseal/checkpoints.json].",
    )(function)


@contextlib.contextmanager
def reported_failures(url: str) -> Iterator[None]:
    """Turns what the SDK raises into a message on stderr and the exit code."""
    from trailseal.client.errors import ApiError, ClientError, TransportError
    from trailseal.errors import ValidationError, VerificationError

    try:
        yield
    except VerificationError as exc:
        what = exc.item or "verification"
        _fail(f"FAILED: {what} did not verify: {exc.message}", EXIT_VERIFY_FAILED)
    except ValidationError as exc:
        _fail(f"error: {exc.diagnostics()}", EXIT_USAGE)
    except ApiError as exc:
        _fail(f"error: {exc}", EXIT_USAGE if 400 <= exc.status < 500 else EXIT_UNREACHABLE)
    except TransportError as exc:
        _fail(f"error: cannot reach the server at {url}: {exc}", EXIT_UNREACHABLE)
    except ClientError as exc:
        _fail(f"error: {exc}", EXIT_UNREACHABLE)
