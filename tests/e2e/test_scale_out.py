"""Several ASGI server processes and a writer process sharing one Redis; and a bounded load test.

Loopback only; every process is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.e2e.conftest import run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Subscriber:
    """One socket, its subscriptions and every `updated` title it received, per object."""

    def __init__(self, server, cookie, hashids):
        self.server, self.cookie, self.hashids = server, cookie, list(hashids)
        self.titles: dict[str, list[str]] = {h: [] for h in self.hashids}
        self.unexpected: list[dict] = []

    async def connect(self):
        headers = {"Cookie": self.cookie, "Origin": self.server.origin}
        self.ws = await websockets.connect(self.server.url, additional_headers=headers, max_queue=None)
        for i, hashid in enumerate(self.hashids):
            await self.ws.send(json.dumps({"model": "testapp.note", "id": hashid, "request_id": i}))
        for _ in self.hashids:
            answer = json.loads(await self.ws.recv())
            assert answer["type"] == "subscribed", answer

    async def collect(self, last: str, deadline: float):
        """Receive until every subscribed object reached title ``last``, or the deadline."""
        while any(not titles or titles[-1] != last for titles in self.titles.values()):
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                event = json.loads(await self.ws.recv())
            if event.get("type") == "updated" and event["id"] in self.titles:
                self.titles[event["id"]].append(event["data"]["title"])
            else:
                self.unexpected.append(event)

    async def quiet(self, seconds: float):
        """Anything arriving after the last expected update is unexpected."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    self.unexpected.append(json.loads(await self.ws.recv()))
        except TimeoutError:
            pass
        await self.ws.close()


def make_notes(owner, count):
    from tests.testapp.models import Note

    return [Note.objects.create(owner=owner, title="0") for _ in range(count)]


async def run(subscribers, writer_args, last, budget):
    await asyncio.gather(*(s.connect() for s in subscribers))
    started = time.monotonic()
    writer = asyncio.create_task(sync_to_async(run_writer)(*writer_args, timeout=budget))
    deadline = started + budget
    await asyncio.gather(*(s.collect(last, deadline) for s in subscribers))
    await writer
    duration = time.monotonic() - started
    await asyncio.gather(*(s.quiet(0.5) for s in subscribers))
    return duration


async def test_two_servers_one_writer(servers, alice):
    notes = await sync_to_async(make_notes)(alice, 4)
    ids = [n.hashid for n in notes]
    cookie = await sync_to_async(session_cookie)(alice)
    one, two = servers.start("uvicorn"), servers.start("daphne")
    subscribers = [
        Subscriber(one, cookie, ids[0:2]),
        Subscriber(two, cookie, ids[1:3]),
        Subscriber(two, cookie, ids[3:4]),
        Subscriber(one, cookie, []),  # subscribed to nothing: must hear nothing
    ]
    rounds = 20
    await run(subscribers, ["--rounds", str(rounds), *ids], str(rounds), budget=60)
    expected = [str(i) for i in range(1, rounds + 1)]
    for subscriber in subscribers:
        # Every update of each subscribed object, exactly once, in order; nothing else.
        assert subscriber.titles == {h: expected for h in subscriber.hashids}
        assert subscriber.unexpected == []


LOAD_CLIENTS = int(os.environ.get("NOTIFY_KIT_LOAD_CLIENTS", "60"))
LOAD_NOTES = int(os.environ.get("NOTIFY_KIT_LOAD_NOTES", "12"))
LOAD_ROUNDS = int(os.environ.get("NOTIFY_KIT_LOAD_ROUNDS", "15"))


async def test_load_every_update_exactly_once(servers, alice, capsys):
    """N clients over two servers, K updates: zero losses, duplicates or strays. Sizes from env."""
    notes = await sync_to_async(make_notes)(alice, LOAD_NOTES)
    ids = [n.hashid for n in notes]
    cookie = await sync_to_async(session_cookie)(alice)
    pool = [servers.start("uvicorn"), servers.start("uvicorn")]
    per_client = 3
    subscribers = [
        Subscriber(pool[i % 2], cookie, [ids[(i + k) % LOAD_NOTES] for k in range(per_client)])
        for i in range(LOAD_CLIENTS)
    ]
    duration = await run(subscribers, ["--rounds", str(LOAD_ROUNDS), *ids], str(LOAD_ROUNDS), budget=120)
    expected = [str(i) for i in range(1, LOAD_ROUNDS + 1)]
    updates = LOAD_NOTES * LOAD_ROUNDS
    deliveries = sum(len(t) for s in subscribers for t in s.titles.values())
    lost = LOAD_CLIENTS * per_client * LOAD_ROUNDS - sum(
        len(set(t) & set(expected)) for s in subscribers for t in s.titles.values()
    )
    with capsys.disabled():
        print(
            f"\nload: {LOAD_CLIENTS} clients on 2 servers, {updates} updates ({LOAD_NOTES} objects x "
            f"{LOAD_ROUNDS}), {deliveries} deliveries in {duration:.2f}s, lost {lost}"
        )
    for subscriber in subscribers:
        assert subscriber.titles == {h: expected for h in subscriber.hashids}
        assert subscriber.unexpected == []
    assert lost == 0
