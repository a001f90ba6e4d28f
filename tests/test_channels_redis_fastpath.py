"""notify_kit.channels_redis_fastpath: full receivers owed the final state, and the drift guard.

The fast path reads channels-redis internals; these tests fail when the installed channels-redis
changes what it relies on, and show the fallback to the layer's own group_send.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import linecache
import sys
import textwrap
import time
from importlib import metadata

import pytest

from notify_kit import channels_redis_fastpath, notifications, sender_thread
from notify_kit import sender as nk_sender
from tests.send_helpers import Listener, event, layers_with, note_event

# A full receiver (channels-redis)


@pytest.fixture
def tiny_redis_capacity(redis_layer, settings):
    """Server-process queues of two messages: the third message to a process finds it full."""
    settings.CHANNEL_LAYERS = layers_with(capacity=2)


async def test_a_full_receiver_is_owed_the_final_state(tiny_redis_capacity):
    # channels-redis' own group_send would drop every update here, the final state with them.
    async with Listener("notify_kit.testapp.note.full") as listener:
        await listener.fill(2)  # the receiver's process queue is full before the first update
        deferred = notifications.stats()["deferred"]
        for index in range(1, 11):
            await asyncio.to_thread(notifications.send, listener.group, note_event(index))
        # Nobody reads until the first delivery has been refused and owed (the sender's first
        # batch may still be on its way, behind a new connection to Redis).
        for _ in range(500):
            if notifications.stats()["deferred"] > deferred:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the update was not refused and owed within 5 s")

        # A flush (an exiting writer) waits while the receiver takes what it is owed.
        def flush_then_look():
            flushed = notifications.flush(5)
            return flushed, any(sender_thread._background.current()._backlogs.values())

        flushing = asyncio.ensure_future(asyncio.to_thread(flush_then_look))
        fillers = [await listener.receive() for _ in range(2)]
        frames = [json.loads((await listener.receive())["text"])]
        assert await flushing == (True, False)
        await listener.nothing(0.3)
    assert [f["type"] for f in fillers] == ["filler", "filler"]
    assert [f["data"]["title"] for f in frames] == ["10"]
    assert [f.get("coalesced", 0) for f in frames] == [9]
    assert frames[-1]["changed"] == sorted(f"f{i}" for i in range(1, 11))
    assert notifications.stats()["deferred"] >= 1


async def test_a_full_receiver_keeps_its_order(tiny_redis_capacity, monkeypatch):
    # Updates sent after a refusal fold into the owed event instead of overtaking it.
    monkeypatch.setattr(nk_sender, "_STALLED", 0.1)
    async with Listener("notify_kit.testapp.note.full") as listener:
        await listener.fill(1)
        # One hand-over, one batch: the three go to the receiver as one message, its last place.
        await asyncio.to_thread(notifications.send_many, [(listener.group, note_event(i)) for i in range(1, 4)])
        assert await asyncio.to_thread(notifications.flush, 5) is True
        # Nobody reads yet: these are refused, and the flush gives up on the stalled receiver.
        await asyncio.to_thread(notifications.send_many, [(listener.group, note_event(i)) for i in range(4, 6)])
        started = time.monotonic()
        assert await asyncio.to_thread(notifications.flush, 5) is False
        assert time.monotonic() - started < 1
        await asyncio.to_thread(notifications.send, listener.group, note_event(6))
        await asyncio.to_thread(notifications.flush, 0.2)
        assert (await listener.receive())["type"] == "filler"
        frames = [json.loads((await listener.receive())["text"]) for _ in range(4)]
        # Room again: the next event goes out as itself, and is the next message (nothing came
        # between). Not a timed-out receive to check that: channels-redis drops a channel's
        # receive buffer when a receive is cancelled, and a message popped meanwhile with it.
        await asyncio.to_thread(notifications.send, listener.group, note_event(7, deleted=True))
        frames.append(json.loads((await listener.receive())["text"]))
    assert [(f["type"], f.get("data", {}).get("title"), f.get("coalesced", 0)) for f in frames] == [
        ("updated", "1", 0),
        ("updated", "2", 0),
        ("updated", "3", 0),
        ("updated", "6", 2),
        ("deleted", None, 0),
    ]
    assert frames[3]["changed"] == ["f4", "f5", "f6"]
    assert listener.bundles == 1


async def test_events_for_one_receiver_in_one_batch_travel_as_one_message(redis_layer):
    # The receiving process pops, decodes and dispatches once for the lot, each event kept whole.
    async with Listener("notify_kit.testapp.note.bundle") as listener:
        await asyncio.to_thread(notifications.send_many, [(listener.group, note_event(i)) for i in range(1, 6)])
        frames = [json.loads((await listener.receive())["text"]) for _ in range(5)]
        await listener.nothing(0.2)
    assert [f["data"]["title"] for f in frames] == ["1", "2", "3", "4", "5"]
    assert listener.bundles == 1


async def test_a_projects_own_messages_are_never_bundled(redis_layer):
    # Another consumer may be in a group of the project's own: it has no notify_batch handler.
    async with Listener("project.room") as listener:
        await asyncio.to_thread(
            notifications.send_many, [(listener.group, {"type": "chat.message", "n": i}) for i in range(3)]
        )
        got = [await listener.receive() for _ in range(3)]
    assert [m["n"] for m in got] == [0, 1, 2]
    assert getattr(listener, "bundles", 0) == 0


# Drift: the channels-redis internals the fast path relies on


def rewritten(method, old, new):
    """``method`` with ``old`` replaced by ``new`` in its source: a channels-redis release that changed it."""
    source = textwrap.dedent(inspect.getsource(method))
    assert old in source
    source = source.replace(old, new)
    filename = f"<changed channels-redis {method.__name__}>"
    # Registered in linecache so that inspect.getsource() reads the changed source, as it would
    # read the file of a new release.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {}
    exec(compile(source, filename, "exec"), vars(sys.modules[method.__module__]), namespace)
    return namespace[method.__name__]


@pytest.fixture
def fresh_verdicts(monkeypatch):
    """Forget what the fast path concluded about the layer class: the next send checks again."""
    monkeypatch.setattr(channels_redis_fastpath, "_verdicts", {})


def test_the_installed_channels_redis_is_one_the_fast_path_knows():
    # Fails when the installed channels-redis is not a release whose group_send (and the other
    # internals listed in RELIED_ON) the fast path was checked against: read the new release's
    # group_send and Lua, adapt GROUP_SEND_LUA if needed, then add its fingerprint to KNOWN.
    from channels_redis.core import RedisChannelLayer

    version = metadata.version("channels-redis")
    found = channels_redis_fastpath.fingerprint(RedisChannelLayer)
    assert channels_redis_fastpath.KNOWN.get(found) == version, (version, found)
    assert channels_redis_fastpath.drift(RedisChannelLayer()) is None


@pytest.mark.parametrize(
    "change",
    ["group_send Lua", "missing _group_key", "group key format", "channel key mapping", "non_local_name"],
)
def test_a_changed_channels_redis_is_detected(change, monkeypatch):
    from channels_redis.core import RedisChannelLayer

    if change == "group_send Lua":
        changed = rewritten(RedisChannelLayer.group_send, "'ZCOUNT', KEYS[i], '-inf', '+inf'", "'ZCARD', KEYS[i]")
        monkeypatch.setattr(RedisChannelLayer, "group_send", changed)
    elif change == "missing _group_key":
        monkeypatch.delattr(RedisChannelLayer, "_group_key")
    elif change == "group key format":
        monkeypatch.setattr(RedisChannelLayer, "_group_key", rewritten(RedisChannelLayer._group_key, ":group:", ":g:"))
    elif change == "channel key mapping":
        method = RedisChannelLayer._map_channel_keys_to_connection
        monkeypatch.setattr(
            RedisChannelLayer,
            "_map_channel_keys_to_connection",
            rewritten(method, "channel_key = self.prefix + channel_non_local_name", "channel_key = channel"),
        )
    else:
        monkeypatch.setattr(RedisChannelLayer, "non_local_name", lambda self, name: name)
    assert channels_redis_fastpath.drift(RedisChannelLayer()) is not None


async def test_a_changed_channels_redis_falls_back_to_its_group_send(redis_layer, fresh_verdicts, monkeypatch, caplog):
    # A release whose group_send Lua differs: the fast path must not write the layer's queues
    # with a script derived from a Lua it no longer matches. The layer's own group_send (the
    # changed one, still a working group_send) carries every message instead, in order.
    from channels_redis.core import RedisChannelLayer

    changed = rewritten(RedisChannelLayer.group_send, "'ZCOUNT', KEYS[i], '-inf', '+inf'", "'ZCARD', KEYS[i]")
    calls = []

    async def counting_group_send(self, group, message):
        calls.append(message["text"])
        await changed(self, group, message)

    counting_group_send.__wrapped__ = changed  # what inspect.getsource() reads: the changed release
    monkeypatch.setattr(RedisChannelLayer, "group_send", counting_group_send)
    fast = []
    real_deliver = channels_redis_fastpath.deliver

    async def recording_deliver(layer, items, backlog):
        fast.append(items)
        await real_deliver(layer, items, backlog)

    monkeypatch.setattr(channels_redis_fastpath, "deliver", recording_deliver)
    async with Listener() as listener:
        await asyncio.to_thread(lambda: [notifications.send(listener.group, event(str(i))) for i in range(3)])
        received = [(await listener.receive())["text"] for _ in range(3)]
        await asyncio.to_thread(notifications.send, listener.group, event("3"))
        received.append((await listener.receive())["text"])
    assert received == ["0", "1", "2", "3"]
    assert calls == ["0", "1", "2", "3"]
    assert fast == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "notify_kit" and "fast path" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, not once per batch
    assert "group_send" in warnings[0]
