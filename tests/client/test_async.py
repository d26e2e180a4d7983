"""AsyncClient against the real server (both drivers): the same operations as Client,
awaited, with the worker as an asyncio task."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from tests.client.conftest import QUICK_RETRY
from tests.server.conftest import RunningServer
from trailseal.client import AsyncClient, ClientClosedError, QueueFullError, ValidationError


def test_async_client_end_to_end(server: RunningServer, api_key: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncClient(
            server.url,
            api_key,
            flush_interval=0.01,
            retry=QUICK_RETRY,
            trust_store=tmp_path / "trust.json",
            dead_letter_path=tmp_path / "dead.jsonl",
        ) as client:
            ids = [
                await client.log(
                    action="task.run", actor={"id": f"w{n % 3}"}, organization_id="aio"
                )
                for n in range(40)
            ]
            bad = await client.log(
                action="task.run", actor={"id": "w"}, outcome="maybe", organization_id="aio"
            )
            with pytest.raises(ValidationError):
                await client.log(action="no dots", actor={"id": "w"})
            assert await client.flush(timeout=20)
            assert client.stats().delivered == 40 and client.stats().dead_lettered == 1
            assert (await client.get_event(ids[5])).seq == 5
            committed = await client.log_sync(
                action="task.done", actor={"id": "w0"}, organization_id="aio"
            )
            assert committed.seq == 40 and committed.inclusion_proof is not None
            receipts = await client.log_batch(
                [{"action": "a.b", "actor": {"id": "x"}, "organization_id": "aio"}]
            )
            assert receipts[0].status == "committed"  # type: ignore[union-attr]
            page = await client.list_events(organization_id="aio", actor_id="w1", limit=5)
            assert len(page.events) == 5 and page.next_cursor is not None
            seen = [
                e.id
                async for e in client.iter_events(organization_id="aio", q="actor:w1", page_size=4)
            ]
            assert len(seen) == len(set(seen)) == 13  # w1 logged 13 of the 40
            key = (await client.get_log("aio")).verifier_key
            verified = await client.verify_event(ids[0], verifier_key=key)
            assert verified.trust == "first-use" and verified.tree_size == 42
            replayed = await client.replay_dead_letter()
            assert replayed.remaining == 1 and bad in client.dead_letter.path.read_text()  # type: ignore[union-attr]
        with pytest.raises(ClientClosedError):
            await client.log(action="a.b", actor={"id": "x"})

    asyncio.run(main())


def test_async_full_queue_blocks_then_proceeds() -> None:
    opened = asyncio.Event()
    seen: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await opened.wait()
        seen.append(len(orjson.loads(await request.aread())["events"]))
        return httpx.Response(202, json={})

    async def main() -> None:
        client = AsyncClient(
            "http://sdk.test",
            "tsk_test_" + "k" * 40,
            batch_size=1,
            queue_size=1,
            flush_interval=0,
            transport=httpx.MockTransport(handler),
            block_timeout=0.1,
        )
        await client.log(action="a.b", actor={"id": "1"})
        await asyncio.sleep(0.01)  # the worker takes it and waits on the server
        await client.log(action="a.b", actor={"id": "2"})  # queued: the queue is full now
        with pytest.raises(QueueFullError):
            await client.log(action="a.b", actor={"id": "3"})
        client.block_timeout = None
        asyncio.get_running_loop().call_later(0.05, opened.set)
        await client.log(action="a.b", actor={"id": "4"})  # waits for room, then queues
        assert await client.flush(timeout=5)
        await client.close()
        assert sum(seen) == 3 and client.stats().delivered == 3

    asyncio.run(main())
