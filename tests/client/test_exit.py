"""At interpreter exit: a Client that was never closed still delivers what it queued; an
AsyncClient, with no loop left to send with, keeps its queue in the dead-letter file.
Real processes, configured only by TRAILSEAL_URL / TRAILSEAL_API_KEY."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.client.conftest import QUICK_RETRY
from tests.conftest import REPO
from tests.server.conftest import RunningServer
from trailseal.client import Client, DeadLetterFile


def _python(code: str, server: RunningServer, key: str) -> None:
    env = dict(os.environ, TRAILSEAL_URL=server.url, TRAILSEAL_API_KEY=key)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_client_left_open_flushes_at_exit(server: RunningServer, api_key: str) -> None:
    _python(
        """
        from trailseal.client import Client
        client = Client(flush_interval=3600)  # nothing is due before the exit
        for n in range(50):
            client.log(action="job.done", actor={"id": "cron"}, organization_id="atexit")
        assert client.stats().queued == 50
        """,
        server,
        api_key,
    )
    with Client(server.url, api_key, retry=QUICK_RETRY) as reader:
        assert reader.get_log("atexit").tree_size == 50


def test_an_async_client_left_open_keeps_its_queue(
    server: RunningServer, api_key: str, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    _python(
        f"""
        import asyncio
        from trailseal.client import AsyncClient

        async def main():
            client = AsyncClient(flush_interval=3600, dead_letter_path={str(dead)!r})
            for n in range(20):
                await client.log(action="job.done", actor={{"id": "cron"}}, organization_id="aexit")
            return client

        client = asyncio.run(main())  # the loop is gone; the client was never closed
        """,
        server,
        api_key,
    )
    assert DeadLetterFile(dead).count() == 20
    with Client(server.url, api_key, retry=QUICK_RETRY) as replayer:
        assert replayer.replay_dead_letter(dead).delivered == 20
        assert replayer.get_log("aexit").tree_size == 20
