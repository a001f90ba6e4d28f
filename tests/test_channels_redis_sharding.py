"""The channels-redis fast path of notify_kit.notifications on a sharded core layer (two Redis hosts).

channels-redis spreads a layer over several ``hosts`` by consistent hashing: a group's member set
lives on the host its group name hashes to, and a server process's message queue on the host its
channel name (``specific.<client prefix>!``) hashes to, so a group on one host may have receivers
on the other. The fast path reads members and writes messages itself, per host, instead of going
through ``group_send``: these tests run it against two real redis-servers of their own (loopback,
free ports, stopped by PID) and check in each Redis where the keys really landed.

Receivers on both hosts are made the way two server processes make them: two layer instances,
whose client prefixes hash to different hosts. Groups join through ``notifications.group_add``
(the layer instance notify_kit uses), which only writes the group's member set.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels_redis.core import RedisChannelLayer
from channels_redis.utils import _consistent_hash

from notify_kit import channels_redis_fastpath, notifications, sender_thread
from notify_kit.conf import redis_host
from tests.conftest import save
from tests.send_helpers import note_event

ALIAS = "redis_sharded"


@pytest.fixture
def sharded(two_private_redis, settings):
    """A channels-redis core layer over two private Redis servers, the layer notify_kit uses."""
    prefix = f"{settings.CHANNEL_LAYERS['redis']['CONFIG']['prefix']}sh"
    config = {"hosts": [redis_host(redis.url) for redis in two_private_redis], "prefix": prefix, "capacity": 1000}
    layer = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, ALIAS: layer}
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": ALIAS}
    yield Shards(two_private_redis, config)
    # A failed test may leave events owed to its receivers: the sender would go on retrying
    # them on an alias that no longer exists, and report the layer down in later tests.
    sender = sender_thread._background.current()
    if sender is not None:
        sender.loop.call_soon_threadsafe(sender._backlogs.pop, ALIAS, None)


class Shards:
    """The two hosts of the sharded layer, and what lives on which."""

    def __init__(self, servers, config):
        self.servers, self.config, self.prefix = servers, config, config["prefix"]
        self.made: list[RedisChannelLayer] = []

    def set_capacity(self, settings, capacity: int) -> None:
        self.config = {**self.config, "capacity": capacity}
        layer = {**settings.CHANNEL_LAYERS[ALIAS], "CONFIG": self.config}
        settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, ALIAS: layer}

    def groups_on(self, host: int, count: int) -> list[str]:
        """``count`` group names whose member sets live on ``host``."""
        names = (f"notify_kit.testapp.note.shard{index}" for index in range(1000))
        return [name for name in names if _consistent_hash(name, 2) == host][:count]

    def process_on(self, host: int) -> RedisChannelLayer:
        """A layer instance (a server process) whose message queue lives on ``host``."""
        while True:
            layer = RedisChannelLayer(**self.config)
            if layer.consistent_hash(f"specific.{layer.client_prefix}!") == host:
                self.made.append(layer)
                return layer

    async def keys(self, host: int, kind: str) -> set[str]:
        """This layer's keys of one kind on one host: ``group`` names, or ``queue`` (process) keys."""
        client = aioredis.Redis.from_url(self.servers[host].url)
        try:
            keys = {key.decode() async for key in client.scan_iter(match=f"{self.prefix}*")}
        finally:
            await client.aclose()
        groups = {key.split(":group:", 1)[1] for key in keys if ":group:" in key}
        return groups if kind == "group" else {key for key in keys if ":group:" not in key}

    async def close(self) -> None:
        for layer in self.made:
            await layer.close_pools()


class Receiver:
    """One channel of a given layer instance, in several groups."""

    def __init__(self, layer: RedisChannelLayer, groups: list[str]):
        self.layer, self.groups = layer, groups

    async def __aenter__(self):
        self.channel = await self.layer.new_channel()
        for group in self.groups:
            await notifications.group_add(group, self.channel)
        return self

    async def __aexit__(self, *exc):
        for group in self.groups:
            await notifications.group_discard(group, self.channel)

    async def receive(self, timeout: float = 3):
        """The next message, as the consumer handles it: a bundle (BATCH_TYPE) one event at a time."""
        if getattr(self, "_unpacked", None):
            return self._unpacked.pop(0)
        message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
        if message["type"] == notifications.BATCH_TYPE:
            message, *self._unpacked = message["messages"]
        return message

    async def nothing(self, timeout: float = 0.2):
        with pytest.raises(TimeoutError):
            await self.receive(timeout)


@pytest.fixture
def fast_path_calls(monkeypatch):
    """Batches that went through the fast path (not group_send): it must be the one under test."""
    calls: list[int] = []
    real = channels_redis_fastpath.deliver

    async def counting(layer, items, backlog):
        calls.append(len(items))
        await real(layer, items, backlog)

    monkeypatch.setattr(channels_redis_fastpath, "deliver", counting)
    return calls


async def test_every_event_reaches_receivers_on_both_hosts_in_order(sharded, fast_path_calls):
    on_0, on_1 = sharded.groups_on(0, 2), sharded.groups_on(1, 2)
    # Each receiver is in groups of both hosts; each host holds both receivers' queues.
    first = Receiver(sharded.process_on(0), [on_0[0], on_1[0]])
    second = Receiver(sharded.process_on(1), [on_0[1], on_1[1]])
    try:
        async with first, second:
            assert await sharded.keys(0, "group") == set(on_0)
            assert await sharded.keys(1, "group") == set(on_1)

            def burst():  # interleaved, so that every batch carries groups of both hosts
                for index in range(50):
                    for group in (*on_0, *on_1):
                        notifications.send(group, notifications_event(group, index))

            await asyncio.to_thread(burst)
            assert await asyncio.to_thread(notifications.flush, 10)
            for receiver in (first, second):
                got: dict[str, list[int]] = {group: [] for group in receiver.groups}
                for _ in range(100):
                    message = await receiver.receive()
                    got[message["group"]].append(message["index"])
                assert got == {group: list(range(50)) for group in receiver.groups}
                await receiver.nothing()
    finally:
        await sharded.close()
    assert fast_path_calls, "the sends went through group_send, not the fast path"


def notifications_event(group: str, index: int) -> dict:
    return {"type": notifications.EVENT_TYPE, "model": "testapp.note", "id": "x", "group": group, "index": index}


async def test_full_receivers_on_both_hosts_are_owed_the_final_state(sharded, settings, fast_path_calls):
    # Queues of two messages: the third message to a process is refused and owed, then retried
    # on the host that holds that process's queue, reading the members from the group's host.
    sharded.set_capacity(settings, 2)
    group_0, group_1 = sharded.groups_on(0, 1)[0], sharded.groups_on(1, 1)[0]
    # Receiver i's queue lives on host i, its group's member set on the other host.
    receivers = [Receiver(sharded.process_on(0), [group_1]), Receiver(sharded.process_on(1), [group_0])]
    try:
        async with receivers[0], receivers[1]:

            def burst():
                for index in range(1, 11):
                    for receiver in receivers:
                        notifications.send(receiver.groups[0], note_event(index))

            # Full before the first update: two plain messages each (never bundled) take the places.
            fillers = [(r.groups[0], {"type": "filler"}) for r in receivers for _ in range(2)]
            await asyncio.to_thread(notifications.send_many, fillers)
            assert await asyncio.to_thread(notifications.flush, 5)
            deferred = notifications.stats()["deferred"]
            await asyncio.to_thread(burst)
            # Nobody reads yet: every update is refused and owed, once per receiver.
            for _ in range(500):
                if notifications.stats()["deferred"] - deferred >= 2:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the burst was not refused and owed within 5 s")
            assert await sharded.keys(0, "group") == {group_0}
            assert await sharded.keys(1, "group") == {group_1}
            for host in (0, 1):
                # The queue of receiver `host` (and only its) is on that host.
                assert await sharded.keys(host, "queue") == {
                    f"{sharded.prefix}specific.{receivers[host].layer.client_prefix}!"
                }

            def flush_then_look():
                flushed = notifications.flush(5)
                return flushed, any(sender_thread._background.current()._backlogs.values())

            flushing = asyncio.ensure_future(asyncio.to_thread(flush_then_look))
            fillers = [[(await r.receive())["type"] for _ in range(2)] for r in receivers]
            frames = [[json.loads((await r.receive())["text"])] for r in receivers]
            assert await flushing == (True, False)
            for receiver in receivers:
                await receiver.nothing(0.3)
    finally:
        await sharded.close()
    assert fillers == [["filler", "filler"], ["filler", "filler"]]
    for received in frames:
        assert [f["data"]["title"] for f in received] == ["10"]
        assert [f.get("coalesced", 0) for f in received] == [9]
    assert fast_path_calls


@pytest.mark.django_db(transaction=True)
async def test_saves_reach_sockets_subscribed_to_objects_on_both_hosts(sharded, ws, alice):
    from tests.testapp.models import Note

    # Notes until both hosts hold one's group (HashIDs, hence group names, depend on the pk).
    notes: dict[int, Note] = {}
    while len(notes) < 2:
        note = await database_sync_to_async(Note.objects.create)(owner=alice, title="0", body="")
        notes.setdefault(_consistent_hash(note.get_live_group_name(), 2), note)
    async with ws(alice) as client:
        for note in notes.values():
            await client.subscribe(note)
        for host, note in notes.items():
            assert await sharded.keys(host, "group") == {note.get_live_group_name()}
        for index in range(1, 6):
            for note in notes.values():
                note.title = str(index)
                await save(note)
        received: dict[str, list[str]] = {note.hashid: [] for note in notes.values()}
        for _ in range(10):
            event = await client.receive()
            received[event["id"]].append(event["data"]["title"])
        assert received == {note.hashid: ["1", "2", "3", "4", "5"] for note in notes.values()}
        assert await asyncio.to_thread(notifications.flush, 5)
        assert await client.nothing()
