"""Faults with a real Redis of the test's own, stopped and restarted under a running server and writer."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.e2e.conftest import receive, run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def subscribe(server, cookie, note, retry_for=0.0):
    """Connect and subscribe; like notify-kit.js, reconnect after a 1013 close until ``retry_for`` runs out."""
    deadline = time.monotonic() + retry_for
    while True:
        ws = await websockets.connect(server.url, additional_headers={"Cookie": cookie, "Origin": server.origin})
        await ws.send(json.dumps({"model": "testapp.note", "id": note.hashid}))
        try:
            assert (await receive(ws))["type"] == "subscribed"
            return ws
        except websockets.exceptions.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1013, closed
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        except TimeoutError:
            # No answer at all (notify-kit.js's ackTimeout): give up on this socket, reconnect.
            await ws.close()
            if time.monotonic() > deadline:
                raise


async def test_redis_down_then_back(servers, private_redis, alice):
    from tests.testapp.models import Note

    note = await sync_to_async(Note.objects.create)(owner=alice, title="t0")
    cookie = await sync_to_async(session_cookie)(alice)
    server = servers.start(REDIS_URL=private_redis.url)
    ws = await subscribe(server, cookie, note)

    private_redis.stop()
    # Saves while Redis is down: they commit, return fast, and the outage is logged once.
    started = time.monotonic()
    result = await sync_to_async(run_writer)(
        *(f"{note.hashid}=down-{i}" for i in range(20)), REDIS_URL=private_redis.url
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["saves"] == 20 and report["max_seconds"] < 0.5, report
    assert time.monotonic() - started < 30
    assert result.stderr.count("channel layer is unreachable") == 1, result.stderr
    await sync_to_async(note.refresh_from_db)()
    assert note.title == "down-19"  # every write stood

    # The consumer whose layer vanished under its receive loop closes the socket with 1013
    # (try again later) instead of crashing with 1011.
    async with asyncio.timeout(15):
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

    private_redis.start()  # same port, empty: every group membership is gone
    # The client reconnects and re-subscribes, as notify-kit.js does. The server's first use of
    # a Redis connection pooled before the restart may still fail and close with 1013 once more,
    # even after a `subscribed`; at-most-once delivery means a save made meanwhile is missed, so
    # the client (like a person) tries again: the server itself is never restarted.
    deadline = time.monotonic() + 40
    for attempt in range(1, 10):
        ws = await subscribe(server, cookie, note, retry_for=15)
        await sync_to_async(run_writer)(f"{note.hashid}=back-{attempt}", REDIS_URL=private_redis.url)
        try:
            event = await receive(ws, 5)
            break
        except (TimeoutError, websockets.exceptions.ConnectionClosed):
            if time.monotonic() > deadline:
                raise
    assert event["type"] == "updated" and event["data"]["title"] == f"back-{attempt}"
    await ws.close()


async def test_server_process_dies(servers, alice):
    """Clients of a killed server reconnect elsewhere and re-subscribe; the other server's clients never notice."""
    import signal

    from tests.testapp.models import Note

    note = await sync_to_async(Note.objects.create)(owner=alice, title="t0")
    cookie = await sync_to_async(session_cookie)(alice)
    doomed, survivor = servers.start("uvicorn"), servers.start("uvicorn")
    orphan = await subscribe(doomed, cookie, note)
    steady = await subscribe(survivor, cookie, note)

    doomed.stop(signal.SIGKILL)
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        async with asyncio.timeout(10):
            await orphan.recv()
    # The load balancer sends the reconnecting client to the surviving process.
    orphan = await subscribe(survivor, cookie, note)

    await sync_to_async(run_writer)(f"{note.hashid}=after the crash")
    for ws in (orphan, steady):
        event = await receive(ws)
        assert event["type"] == "updated" and event["data"]["title"] == "after the crash"
        await ws.close()
