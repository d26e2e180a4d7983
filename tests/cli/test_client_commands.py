"""The client commands against the real server (both drivers): ``log``, ``query``,
``tail``, ``verify`` (an event offline with a pinned key and the trust store; a range on
the server) and ``checkpoint``; their exit codes (0 ok, 1 did not verify, 2 usage or
refused, 3 unreachable); and the tamper test: a proxy that alters an event, a proof or a
checkpoint is caught by ``trailseal verify`` / ``trailseal checkpoint`` with a message
naming what did not verify, and a checkpoint inconsistent with the remembered one is
refused. Every command's ``--help`` shows an example."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner, Result

from tests.client.conftest import shared_server  # noqa: F401 (fixture)
from tests.client.proxy import FlakyProxy
from tests.client.test_verify import _sign
from tests.server.conftest import RunningServer, _free_port
from trailseal.cli.main import cli
from trailseal.client import TrustStore

Edit = Callable[[str, bytes], bytes]  # (request path, answer body) -> the body passed on


class TamperingProxy(FlakyProxy):
    """The SDK tests' proxy (real TCP, one request per connection), rewriting each answer's
    body with ``edit`` on its way back, Content-Length fixed: a man in the middle, or a
    lying server, as the command line meets it."""

    def __init__(self, upstream_port: int, edit: Edit) -> None:
        self.edit = edit
        super().__init__(upstream_port)

    def _serve(self, conn: Any) -> None:
        import socket

        from tests.client.proxy import _read_request

        with conn:
            request = _read_request(conn)
            if request is None:
                return
            path = request.split(b" ", 2)[1].split(b"?", 1)[0].decode()
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                upstream.sendall(request)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            body = self.edit(path, body)
            lines = [
                line
                for line in head.split(b"\r\n")
                if not line.lower().startswith(b"content-length:")
            ]
            lines.append(f"Content-Length: {len(body)}".encode())
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)


@pytest.fixture
def server(shared_server: RunningServer) -> RunningServer:  # noqa: F811
    return shared_server


@pytest.fixture
def key(server: RunningServer) -> str:
    return server.create_key("events:write,events:read,verify")


@pytest.fixture
def trust(tmp_path: Path) -> Path:
    return tmp_path / "trust.json"


def run(*args: str, url: str, key: str | None, stdin: str | None = None) -> Result:
    env = {"TRAILSEAL_URL": url, "TRAILSEAL_API_KEY": key}
    return CliRunner(env=env).invoke(cli, list(args), input=stdin)


@pytest.fixture
def logged(server: RunningServer, key: str) -> tuple[str, list[str], str]:
    """Six events in a new organization, logged with ``trailseal log``; its verifier key
    (pinned from the honest server; in real use it comes out of band)."""
    org = f"cli-{uuid.uuid4().hex[:8]}"
    ids = []
    for n in range(6):
        result = run(
            "log",
            "--organization",
            org,
            "--action",
            "doc.read" if n % 2 else "doc.write",
            "--actor",
            f"user_{n}",
            "--message",
            f"m{n}",
            "--json",
            url=server.url,
            key=key,
        )
        assert result.exit_code == 0, result.output
        ids.append(json.loads(result.stdout)["id"])
    with server.client(key) as http:
        verifier_key = http.get(f"/v1/logs/{org}").json()["verifier_key"]
    return org, ids, verifier_key


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            id=" ".join(("trailseal", *path)),
        )
        for path in [(), *_commands(cli)]
    ],
)
def test_every_command_help_shows_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`trailseal {' '.join(path)} --help` has no example"


def test_the_client_commands_are_there() -> None:
    commands = set(_commands(cli))
    assert {("log",), ("query",), ("tail",), ("verify",), ("checkpoint",)} <= commands


def test_log_from_flags_and_from_stdin(server: RunningServer, key: str) -> None:
    org = f"cli-{uuid.uuid4().hex[:8]}"
    flags = run(
        "log", "--organization", org, "--action", "a.b", "--actor", "u1", url=server.url, key=key
    )
    assert flags.exit_code == 0, flags.output
    assert re.fullmatch(rf"logged \S+: {org} seq 0 \(log \w+\)\n", flags.stdout)
    event = {"action": "user.login", "actor": {"id": "u2"}, "metadata": {"ip": "10.0.0.1"}}
    stdin = json.dumps(event)
    piped = run("log", "-", "--organization", org, "--json", url=server.url, key=key, stdin=stdin)
    assert piped.exit_code == 0, piped.output
    answer = json.loads(piped.stdout)
    assert answer["seq"] == 1 and answer["organization_id"] == org
    assert answer["inclusion_proof"]["tree_size"] >= 2  # sync: in a signed checkpoint
    again = run("log", "-", "--id", answer["id"], url=server.url, key=key, stdin="{}")
    assert again.exit_code == 2 and "/action" in again.stderr  # invalid: named, nothing sent
    assert run("log", "-", url=server.url, key=key, stdin="[1]").exit_code == 2
    assert run("log", url=server.url, key=key).exit_code == 2


def test_query_table_json_ndjson_and_filters(
    server: RunningServer, key: str, logged: tuple[str, list[str], str]
) -> None:
    org, ids, _ = logged
    table = run("query", "--organization", org, url=server.url, key=key)
    assert table.exit_code == 0, table.output
    assert "doc.write" in table.stdout and "6 event(s)" in table.stderr
    as_json = run("query", "--organization", org, "--json", "--limit", "4", url=server.url, key=key)
    document = json.loads(as_json.stdout)
    assert [e["id"] for e in document["events"]] == ids[::-1][:4]  # newest first
    assert document["next_cursor"]
    lines = run(
        "query", "--organization", org, "--action", "doc.r*", "--ndjson", "--order", "asc",
        url=server.url, key=key,
    ).stdout.splitlines()  # fmt: skip
    assert [json.loads(line)["id"] for line in lines] == ids[1::2]
    found = run("query", "-q", f"org:{org} actor:user_4", "--ndjson", url=server.url, key=key)
    assert [json.loads(line)["id"] for line in found.stdout.splitlines()] == [ids[4]]
    every = run("query", "--organization", org, "--all", "--limit", "2", "--ndjson",
                url=server.url, key=key)  # fmt: skip
    assert len(every.stdout.splitlines()) == 6
    bad = run("query", "--since", "yesterday-ish", url=server.url, key=key)
    assert bad.exit_code == 2 and "since" in bad.stderr


def test_tail_follows_the_live_stream(
    server: RunningServer, key: str, logged: tuple[str, list[str], str]
) -> None:
    org, ids, _ = logged
    replay = run(
        "tail", "--organization", org, "--from-start", "--count", "6", "--ndjson",
        url=server.url, key=key,
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output
    views = [json.loads(line) for line in replay.stdout.splitlines()]
    assert [v["id"] for v in views] == ids
    # Live, as a user runs it: a real process, events logged while it follows.
    env = {**os.environ, "TRAILSEAL_URL": server.url, "TRAILSEAL_API_KEY": key}
    trailseal = str(Path(sys.executable).parent / "trailseal")
    argv = [trailseal, "tail", "--organization", org, "--after", str(views[-1]["position"])]
    follower = subprocess.Popen(
        [*argv, "--count", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        for action in ("doc.later", "doc.last"):
            logged_now = run(
                "log", "--organization", org, "--action", action, "--actor", "z",
                url=server.url, key=key,
            )  # fmt: skip
            assert logged_now.exit_code == 0
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    shown = out.splitlines()
    assert len(shown) == 2 and "doc.later" in shown[0] and "doc.last" in shown[1]
    assert f"{org}  seq 6" in shown[0] and shown[0].startswith("[")


def test_verify_an_event_offline_and_a_range_on_the_server(
    server: RunningServer, key: str, logged: tuple[str, list[str], str], trust: Path
) -> None:
    org, ids, vkey = logged
    args = ("--key", vkey, "--trust-file", str(trust))
    first = run("verify", ids[2], *args, url=server.url, key=key)
    assert first.exit_code == 0, first.output
    assert f"event {ids[2]} is entry 2 of" in first.stdout and "first-use" in first.stdout
    again = run("verify", ids[5], *args, "--json", url=server.url, key=key)
    report = json.loads(again.stdout)
    assert report["verified"] and report["seq"] == 5 and report["trust"] == "same"
    ranged = run("verify", "--organization", org, "--from", "1", "--to", "5", url=server.url,
                 key=key)  # fmt: skip
    assert ranged.exit_code == 0, ranged.output
    assert "entries 1 to 4" in ranged.stdout
    # Usage errors: no key pinned, nothing to verify, an id that cannot be one.
    assert run("verify", ids[0], url=server.url, key=key).exit_code == 2
    assert run("verify", url=server.url, key=key).exit_code == 2
    assert run("verify", "no/such", *args, url=server.url, key=key).exit_code == 2
    # Refused: another organization's key (404), a key without the verify scope (403).
    other = server.create_key("events:read,verify", organization="someone-else")
    assert run("verify", ids[0], *args, url=server.url, key=other).exit_code == 2
    reader = server.create_key("events:read")
    refused = run("verify", "--organization", org, url=server.url, key=reader)
    assert refused.exit_code == 2 and "403" in refused.stderr


def test_exit_codes_for_a_missing_key_and_an_unreachable_server() -> None:
    nowhere, key = f"http://127.0.0.1:{_free_port()}", "tsk_live_" + "A" * 40
    for args in (("query",), ("log", "--action", "a.b", "--actor", "x"), ("tail",)):
        assert run(*args, url=nowhere, key=None).exit_code == 2, args
        result = run(*args, url=nowhere, key=key)
        assert result.exit_code == 3 and "cannot reach the server" in result.stderr, args


def test_the_range_check_names_the_first_bad_entry(
    server: RunningServer, key: str, logged: tuple[str, list[str], str]
) -> None:
    """A rogue operator edits stored entry bytes; the server's range check finds it."""
    org, _, _ = logged
    with server.client(key) as http:
        log_id = http.get(f"/v1/logs/{org}").json()["log_id"]
    if server.settings.database_url:
        with psycopg.connect(server.settings.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE entries SET entry = overlay(entry placing 'm9'::bytea"
                " from position('m3'::bytea in entry)) WHERE log_id = %s AND seq = 3",
                (log_id,),
            )
    else:
        with sqlite3.connect(server.settings.sqlite_path) as conn:
            row = conn.execute(
                "SELECT entry FROM entries WHERE log_id = ? AND seq = 3", (log_id,)
            ).fetchone()
            conn.execute(
                "UPDATE entries SET entry = ? WHERE log_id = ? AND seq = 3",
                (bytes(row[0]).replace(b"m3", b"m9"), log_id),
            )
    result = run("verify", "--organization", org, url=server.url, key=key)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("FAILED: entry 3 did not verify")


def test_checkpoint_prints_the_verified_latest(
    server: RunningServer, key: str, logged: tuple[str, list[str], str], trust: Path
) -> None:
    org, _, vkey = logged
    args = ("checkpoint", "--organization", org, "--key", vkey, "--trust-file", str(trust))
    first = run(*args, url=server.url, key=key)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[1] == "6" and "trust: first-use" in first.stderr
    run("log", "--organization", org, "--action", "a.b", "--actor", "x", url=server.url, key=key)
    grown = json.loads(run(*args, "--json", url=server.url, key=key).stdout)
    assert grown["tree_size"] == 7 and grown["trust"] == "extended"
    assert grown["checkpoint"].splitlines()[1] == "7"
    assert run("checkpoint", "--organization", org, url=server.url, key=key).exit_code == 2


# -- the tamper test ------------------------------------------------------------------------


def _replace(pattern: str, old: bytes, new: bytes) -> Edit:
    def edit(path: str, body: bytes) -> bytes:
        return body.replace(old, new, 1) if re.fullmatch(pattern, path) else body

    return edit


def _altered_proof(path: str, body: bytes) -> bytes:
    if not path.endswith("/proof"):
        return body
    return re.sub(rb'"hashes":\["(.)', lambda m: b'"hashes":["' + (b"1" if m[1] == b"0" else b"0"),
                  body)  # fmt: skip


TAMPERING: dict[str, tuple[Edit, str]] = {
    # what the proxy alters -> (the edit, what `verify` must name)
    "the event": (
        _replace(r"/v1/events/[^/]+", b'"message":"m4"', b'"message":"m5"'),
        "FAILED: event {id} did not verify: the server's copy of the event differs",
    ),
    "the entry bytes": (
        lambda path, body: (
            body.replace(b'"message":"m4"', b'"message":"m5"')
            if "/tile/entries/" in path or re.fullmatch(r"/v1/events/[^/]+", path)
            else body
        ),
        "FAILED: entry 4 did not verify",
    ),
    "the proof": (_altered_proof, "FAILED: entry 4 did not verify"),
    "the checkpoint": (
        _replace(r".*/proof", b"\\n6\\n", b"\\n7\\n"),
        "FAILED: checkpoint did not verify: the signed checkpoint does not verify",
    ),
}


@pytest.mark.parametrize("altered", list(TAMPERING))
def test_verify_catches_a_tampering_proxy(
    server: RunningServer,
    key: str,
    logged: tuple[str, list[str], str],
    trust: Path,
    altered: str,
) -> None:
    _, ids, vkey = logged
    edit, expected = TAMPERING[altered]
    proxy = TamperingProxy(int(server.url.rsplit(":", 1)[1]), edit)
    try:
        honest = run("verify", ids[4], "--key", vkey, "--trust-file", str(trust),
                     url=server.url, key=key)  # fmt: skip
        assert honest.exit_code == 0, honest.output
        result = run("verify", ids[4], "--key", vkey, "--trust-file", str(trust),
                     url=proxy.url, key=key)  # fmt: skip
    finally:
        proxy.close()
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(expected.format(id=ids[4])), result.stderr


def test_checkpoint_catches_a_tampering_proxy_and_an_inconsistent_history(
    server: RunningServer, key: str, logged: tuple[str, list[str], str], trust: Path
) -> None:
    org, ids, vkey = logged
    args = ("checkpoint", "--organization", org, "--key", vkey, "--trust-file", str(trust))
    edits: list[tuple[Edit, str]] = [
        (
            _replace(r".*/checkpoint", b"\\n6\\n", b"\\n5\\n"),
            "FAILED: checkpoint did not verify: the signed checkpoint does not verify",
        ),
        (
            _replace(r".*/checkpoint", b'"tree_size":6', b'"tree_size":60'),
            "FAILED: checkpoint did not verify: the server describes the checkpoint with a "
            "tree_size other than",
        ),
    ]
    for edit, expected in edits:
        proxy = TamperingProxy(int(server.url.rsplit(":", 1)[1]), edit)
        try:
            result = run(*args, url=proxy.url, key=key)
        finally:
            proxy.close()
        assert result.exit_code == 1 and result.stderr.startswith(expected), result.output
        assert result.stdout == ""  # nothing unverified is printed
    # A split view: this machine remembers another tree of the same size, validly signed.
    with server.client(key) as http:
        origin = http.get(f"/v1/logs/{org}").json()["origin"]
    store = TrustStore(trust)
    assert store.compare_and_set(origin, store.get(origin), _sign(server, origin, 6, b"\x11" * 32))
    fork = run(*args, url=server.url, key=key)
    assert fork.exit_code == 1 and "fork" in fork.stderr, fork.output
    fork_event = run("verify", ids[0], "--key", vkey, "--trust-file", str(trust),
                     url=server.url, key=key)  # fmt: skip
    assert fork_event.exit_code == 1 and "FAILED: checkpoint" in fork_event.stderr
    # A rollback: it remembers a larger tree than the server now shows.
    assert store.compare_and_set(origin, store.get(origin), _sign(server, origin, 60, b"\x22" * 32))
    rollback = run(*args, url=server.url, key=key)
    assert rollback.exit_code == 1 and "rollback" in rollback.stderr, rollback.output
