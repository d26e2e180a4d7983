"""`trailseal serve` and `make serve` as a user runs them: a real process, its stdout read
through a pipe, the operating contract of ARCHITECTURE §12."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
KEY_LINE = re.compile(r"^admin key: (tsk_live_[A-Za-z0-9]{32,})$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "listening on" in line:
            return process, lines
    process.kill()
    raise AssertionError(f"server did not start: {lines}")


def _stop(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.stdout:
        process.stdout.close()


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("/healthz never answered 200")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    env["TRAILSEAL_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_prints_the_admin_key_once_and_serves(tmp_path: Path, workers: int) -> None:
    port = _free_port()
    trailseal = str(Path(sys.executable).parent / "trailseal")
    argv = [trailseal, "serve", "--port", str(port), "--workers", str(workers)]
    process, lines = _start(argv, _env(tmp_path))
    try:
        keys = [m.group(1) for line in lines if (m := KEY_LINE.match(line))]
        assert len(keys) == 1, lines
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url)
        headers = {"Authorization": f"Bearer {keys[0]}"}
        for n in range(6):  # with 2 workers, both processes take requests
            answer = httpx.post(
                f"{url}/v1/events?sync=true",
                headers=headers,
                timeout=30,
                json={"action": "a.b", "actor": {"id": str(n)}},
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["seq"] == n
    finally:
        _stop(process)
    # A second start on the same data directory prints no key.
    process, lines = _start(argv, _env(tmp_path))
    _stop(process)
    assert not any(KEY_LINE.match(line) for line in lines), lines
    assert (tmp_path / "data" / "master.key").stat().st_mode & 0o777 == 0o600


def test_make_serve_honours_port(tmp_path: Path) -> None:
    port = _free_port()
    process, lines = _start(
        ["make", "--no-print-directory", "serve", f"PORT={port}"], _env(tmp_path)
    )
    try:
        assert any(KEY_LINE.match(line) for line in lines), lines
        _wait_healthy(f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


def test_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from trailseal.cli.main import cli

    runner = CliRunner()
    data = str(tmp_path / "data")
    created = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--data-dir",
            data,
            "--scopes",
            "events:read,verify",
            "--organization",
            "acme",
        ],
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"tsk_live_[A-Za-z0-9]{40}", secret)
    listed = runner.invoke(cli, ["keys", "list", "--data-dir", data, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    bound = [r for r in rows if r["organization_id"] == "acme"]
    assert len(bound) == 1 and bound[0]["scopes"] == ["events:read", "verify"]
    assert secret not in listed.output
    table = runner.invoke(cli, ["keys", "list", "--data-dir", data])
    assert table.exit_code == 0 and "key id" in table.output
    key_id = re.search(r"key id: (key_\w+)", created.stderr)
    assert key_id is not None
    revoked = runner.invoke(cli, ["keys", "revoke", key_id.group(1), "--data-dir", data])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(cli, ["keys", "revoke", key_id.group(1), "--data-dir", data])
    assert again.exit_code == 2
    bad = runner.invoke(cli, ["keys", "create", "--data-dir", data, "--scopes", "root"])
    assert bad.exit_code == 2 and "unknown scope" in bad.stderr
