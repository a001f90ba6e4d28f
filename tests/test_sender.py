"""notify_kit.sender and sender_thread: batching, coalescing, overflow, and a sender that heals itself.

Driven through the public ``notifications.send``/``flush`` on the real layers, with the delivery
of a batch held or slowed where a test needs the sender to fall behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from notify_kit import channels_redis_fastpath, delivery, health, notifications, sender_thread
from tests.send_helpers import Listener, event, notify_kit_records


async def test_max_pending_overflow_is_counted_and_logged(layer, settings, monkeypatch, caplog):
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "MAX_PENDING": 5}
    monkeypatch.setattr(health.health, "_overflow_logged_at", {})
    sent = []

    async def slow_deliver(alias, items, backlog):
        for _group, message in items:
            await asyncio.sleep(0.05)  # far longer than queueing 12 messages takes
            sent.append(message["text"])

    monkeypatch.setattr(delivery, "deliver", slow_deliver)
    async with Listener() as listener:

        def burst():
            for index in range(12):
                notifications.send(listener.group, event(str(index)))

        await asyncio.to_thread(burst)
        assert await asyncio.to_thread(notifications.flush, 3) is True
        # The first five were queued; the oldest are kept, the rest dropped and counted.
        assert sent == ["0", "1", "2", "3", "4"]
        assert health.health.dropped == 7
        # One warning for the whole burst, not one per dropped notification.
        overflow = [r for r in notify_kit_records(caplog, logging.WARNING) if "MAX_PENDING" in r.getMessage()]
        assert len(overflow) == 1

        # Drained: there is room again.
        await asyncio.to_thread(notifications.send, listener.group, event("room"))
        await asyncio.to_thread(notifications.flush, 3)
        assert sent[-1] == "room"


async def test_flush_includes_sends_still_waiting_for_the_batch_wakeup(layer):
    """An exit flush right after a send must not return before that send is even queued."""
    async with Listener() as listener:

        def send_then_flush():
            before = notifications.stats()["sent"]
            notifications.send(listener.group, event("last words"))
            flushed = notifications.flush(3)
            return flushed, notifications.stats()["sent"] - before  # read before the loop runs on

        assert await asyncio.to_thread(send_then_flush) == (True, 1)
        assert (await listener.receive())["text"] == "last words"


async def test_updates_fold_only_when_the_sender_is_behind(layer, settings, monkeypatch):
    """Below COALESCE_AFTER waiting updates every one goes out; beyond it they fold, counted, final state kept."""
    from notify_kit.changes import Event

    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "COALESCE_AFTER": 3}
    frames = []
    gate = threading.Event()
    real_deliver = delivery.deliver

    async def held_deliver(alias, items, backlog):
        # The first batch waits at the gate (off the loop), so what is sent meanwhile queues up.
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 5)
        frames.extend(json.loads(item.to_message()["text"]) for _group, item in items)
        await real_deliver(alias, items, backlog)

    def burst(first, last):
        for index in range(first, last + 1):
            data = {"title": str(index)}
            notifications.send("notify_kit.testapp.note.fold", Event("testapp.note", "fold", deleted=False, data=data,
                                                                     changed={f"f{index}"}))  # fmt: skip

    monkeypatch.setattr(delivery, "deliver", held_deliver)
    async with Listener("notify_kit.testapp.note.fold"):  # a consumer, so the in-memory layer sends
        gate.set()
        await asyncio.to_thread(burst, 1, 3)
        assert await asyncio.to_thread(notifications.flush, 5)
        assert [f["data"]["title"] for f in frames] == ["1", "2", "3"]  # nothing waits: nothing folds
        assert all("coalesced" not in f for f in frames)

        frames.clear()
        gate.clear()
        await asyncio.to_thread(burst, 1, 1)
        await asyncio.sleep(0.1)  # the first batch is now held at the gate
        await asyncio.to_thread(burst, 2, 12)
        gate.set()
        assert await asyncio.to_thread(notifications.flush, 5)

    titles = [f["data"]["title"] for f in frames]
    # 1 was on its way; 2 and 3 queued; 4 was the third waiting, so 5..12 folded into it.
    assert titles == ["1", "2", "3", "12"]
    assert [f.get("coalesced", 0) for f in frames] == [0, 0, 0, 8]
    assert frames[-1]["changed"] == sorted(f"f{i}" for i in range(4, 13))
    assert notifications.stats()["coalesced"] >= 8


# The sender heals itself


async def test_a_send_that_ignores_its_timeout_is_abandoned(redis_layer, settings, monkeypatch, caplog):
    # asyncio.timeout works by cancelling; a client library that swallowed the cancellation would
    # otherwise hold the one sender task, and every later notification behind it.
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "SEND_TIMEOUT": 0.1}
    monkeypatch.setattr(delivery, "ABANDON_GRACE", 0.1)
    real = channels_redis_fastpath.deliver
    calls = []

    async def stubborn(layer, items, backlog):
        calls.append(items)
        if len(calls) == 1:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                await asyncio.sleep(1)  # swallows the cancellation and lingers on
            return
        await real(layer, items, backlog)

    monkeypatch.setattr(channels_redis_fastpath, "deliver", stubborn)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("stuck"))
        await asyncio.sleep(0.05)  # the first batch is on its way
        started = time.monotonic()
        await asyncio.to_thread(notifications.send, listener.group, event("next"))
        assert (await listener.receive(timeout=0.9))["text"] == "next"
        assert time.monotonic() - started < 0.8
    assert any("abandoned" in r.getMessage() for r in notify_kit_records(caplog, logging.WARNING))


async def test_a_dead_sender_thread_is_replaced(redis_layer, caplog):
    sender = await asyncio.to_thread(sender_thread._background.get)
    sender.loop.call_soon_threadsafe(sender.loop.stop)  # run_forever returns: the thread ends
    await asyncio.to_thread(sender_thread._background._thread.join, 2)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("after"))
        assert (await listener.receive())["text"] == "after"
    assert sender_thread._background.get() is not sender
    assert any("sender thread had stopped" in r.getMessage() for r in notify_kit_records(caplog, logging.ERROR))
