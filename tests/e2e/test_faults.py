"""Faults with a real Redis of the test's own, stopped and restarted under a running server and writer.

Every test runs under uvicorn and under daphne: they differ exactly where faults are handled (daphne
refuses close code 1013 and closes a socket only when its application raises).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.e2e.conftest import receive, run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: Close codes that mean "try again later": 1013, or 4013 where the server refuses 1013 (daphne).
TRY_AGAIN_LATER = (1013, 4013)
#: The documented bound on an answer (docs/protocol.md): SEND_TIMEOUT (2 s) for joining the group,
#: plus the database lookup and the ``not_found`` floor; 5 s leaves room for a loaded CI machine.
ANSWER_BOUND = 5.0


@pytest.fixture(params=["uvicorn", "daphne"])
def kind(request) -> str:
    """The ASGI server the test runs under."""
    return request.param


async def answer_or_close(ws, frame: dict, bound: float = ANSWER_BOUND) -> dict | int:
    """Send ``frame``; its answer (a dict) or the socket's close code (an int), within ``bound`` seconds."""
    try:
        await ws.send(json.dumps(frame))  # the close may come first: a socket can fail before any frame
        return await receive(ws, bound)
    except websockets.exceptions.ConnectionClosed as closed:
        assert closed.rcvd is not None, f"closed without a close frame: {closed}"
        return closed.rcvd.code


async def wait_closed(ws, bound: float) -> int:
    """The close code the server sends within ``bound`` seconds (frames before it are ignored)."""
    async with asyncio.timeout(bound):
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, f"closed without a close frame: {closed.value}"
    return closed.value.rcvd.code


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
            assert closed.rcvd is not None and closed.rcvd.code in TRY_AGAIN_LATER, closed
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        except TimeoutError:
            # No answer at all (notify-kit.js's ackTimeout): give up on this socket, reconnect.
            await ws.close()
            if time.monotonic() > deadline:
                raise


async def test_redis_down_then_back(kind, servers, private_redis, alice):
    from tests.testapp.models import Note

    note = await sync_to_async(Note.objects.create)(owner=alice, title="t0")
    cookie = await sync_to_async(session_cookie)(alice)
    server = servers.start(kind, REDIS_URL=private_redis.url)
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
    # (try again later) instead of crashing with 1011, or leaving it open and silent (daphne).
    assert await wait_closed(ws, 15) in TRY_AGAIN_LATER

    # While Redis is down, a new socket's subscribe is answered by a close within the bound.
    ws = await websockets.connect(server.url, additional_headers={"Cookie": cookie, "Origin": server.origin})
    assert await answer_or_close(ws, {"model": "testapp.note", "id": note.hashid}) in TRY_AGAIN_LATER

    private_redis.start()  # same port, empty: every group membership is gone
    # The first new socket after the outage: its subscribe is answered within the bound,
    # `subscribed` or (a connection pooled before the restart failing) a close with 1013.
    ws = await websockets.connect(server.url, additional_headers={"Cookie": cookie, "Origin": server.origin})
    answer = await answer_or_close(ws, {"model": "testapp.note", "id": note.hashid, "request_id": 1})
    assert answer in TRY_AGAIN_LATER or answer == {
        "type": "subscribed", "model": "testapp.note", "id": note.hashid, "request_id": 1
    }, answer  # fmt: skip
    await ws.close()
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


async def test_idle_socket_on_a_plain_redis_url(kind, servers, private_redis, alice):
    """With a bare URL, redis-py's 5 s read timeout ends an idle receive: the socket is closed, never left mute."""
    from tests.testapp.models import Note

    note = await sync_to_async(Note.objects.create)(owner=alice, title="t0")
    cookie = await sync_to_async(session_cookie)(alice)
    server = servers.start(kind, REDIS_URL=private_redis.url, NOTIFY_KIT_TEST_PLAIN_REDIS="1")
    ws = await subscribe(server, cookie, note)
    # channels-redis blocks 5 s on BZPOPMIN; redis-py gives up reading after 5 s too (notify_kit.W001).
    assert await wait_closed(ws, 15) in TRY_AGAIN_LATER

    # Redis never went away: the reconnecting client's subscribe is answered at once, and the
    # group left by the closed socket is not the one the save reaches.
    ws = await websockets.connect(server.url, additional_headers={"Cookie": cookie, "Origin": server.origin})
    answer = await answer_or_close(ws, {"model": "testapp.note", "id": note.hashid, "request_id": 1})
    assert answer == {"type": "subscribed", "model": "testapp.note", "id": note.hashid, "request_id": 1}, answer
    await sync_to_async(run_writer)(f"{note.hashid}=after the timeout", REDIS_URL=private_redis.url)
    event = await receive(ws, ANSWER_BOUND)
    assert event["type"] == "updated" and event["data"]["title"] == "after the timeout"
    await ws.close()


async def test_server_process_dies(kind, servers, alice):
    """Clients of a killed server reconnect elsewhere and re-subscribe; the other server's clients never notice."""
    import signal

    from tests.testapp.models import Note

    note = await sync_to_async(Note.objects.create)(owner=alice, title="t0")
    cookie = await sync_to_async(session_cookie)(alice)
    doomed, survivor = servers.start(kind), servers.start(kind)
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
