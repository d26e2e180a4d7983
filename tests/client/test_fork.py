"""fork(): a child logs and flushes its own events with the client it inherited; the
events the parent had queued before the fork are the parent's, and still arrive, once."""

from __future__ import annotations

import json
import os

import pytest

from tests.client.conftest import QUICK_RETRY
from tests.server.conftest import RunningServer
from trailseal.client import Client


def _child(client: Client, write_end: int) -> None:
    """Runs in the child; never returns (os._exit skips pytest's and the parent's cleanup)."""
    code = 1
    try:
        report: dict[str, object] = {"queued_after_fork": client.stats().queued}
        report["ids"] = [
            client.log(action="child.work", actor={"id": "child"}, organization_id="forks")
            for _ in range(15)
        ]
        report["flushed"] = client.flush(timeout=30)
        report["stats"] = client.stats().delivered
        os.write(write_end, json.dumps(report).encode())
        code = 0
    finally:
        os._exit(code)


# Python 3.12+ warns when fork() is called while threads run (our worker, the test
# server's). The child only logs, flushes and calls os._exit, which is what the SDK's
# at-fork handler prepares it for.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_child_logs_its_own_and_the_parents_events_still_arrive(
    server: RunningServer, api_key: str
) -> None:
    # A long age: the parent's first events are still queued when it forks.
    client = Client(server.url, api_key, flush_interval=60, retry=QUICK_RETRY)
    try:
        client.log(action="parent.warmup", actor={"id": "parent"}, organization_id="forks")
        assert client.flush(timeout=30)  # the worker thread and connections exist
        parent_ids = [
            client.log(action="parent.work", actor={"id": "parent"}, organization_id="forks")
            for _ in range(20)
        ]
        assert client.stats().queued == 20
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(client, write_end)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            report = json.loads(pipe.read() or b"{}")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, report
        assert report["queued_after_fork"] == 0  # the parent's queue is not the child's
        assert report["flushed"] is True and report["stats"] == 15

        parent_ids += [
            client.log(action="parent.more", actor={"id": "parent"}, organization_id="forks")
            for _ in range(5)
        ]
        assert client.flush(timeout=30)
        assert client.stats().delivered == 1 + 25
    finally:
        client.close()

    child_ids = report["ids"]
    assert isinstance(child_ids, list)
    everything = set(parent_ids) | set(child_ids)
    assert len(everything) == 25 + 15  # no id made twice across the fork
    with Client(server.url, api_key, retry=QUICK_RETRY) as reader:
        assert reader.get_log("forks").tree_size == 1 + 25 + 15  # each stored once
        stored = {e.id for e in reader.iter_events(organization_id="forks")}
    assert everything <= stored
