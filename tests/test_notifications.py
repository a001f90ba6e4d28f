"""notify_kit.notifications: the one module that talks to the channel layer, on the real layers.

Each test listens on a channel of its own, added to a group through ``notifications.group_add``.
Sync sends go through ``asyncio.to_thread``: that is how a view or a Celery task calls them, and
on the in-memory layer they are delivered on the loop recorded by ``group_add`` (the test's).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import threading
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer

from notify_kit import notifications
from notify_kit.conf import redis_host
from notify_kit.conf import settings as conf
from notify_kit.hashids import encode
from tests.testapp.models import Note


def event(text, **extra):
    return {"type": notifications.EVENT_TYPE, "model": "testapp.note", "id": "x", "text": text, **extra}


class Listener:
    """A channel on the layer notify_kit uses, in one group."""

    def __init__(self, group="notify_kit.testapp.note.listener"):
        self.group = group

    async def __aenter__(self):
        self.layer = get_channel_layer(conf.CHANNEL_LAYER)
        self.channel = await self.layer.new_channel()
        await notifications.group_add(self.group, self.channel)
        return self

    async def __aexit__(self, *exc):
        await notifications.group_discard(self.group, self.channel)

    async def receive(self, timeout=3):
        return await asyncio.wait_for(self.layer.receive(self.channel), timeout)

    async def nothing(self, timeout=0.2):
        with pytest.raises(TimeoutError):
            await self.receive(timeout)


def layers_with(**redis_config):
    """CHANNEL_LAYERS of the test settings with the redis layer's CONFIG updated."""
    from django.conf import settings

    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["redis"]["CONFIG"].update(redis_config)
    return layers


# Delivery


async def test_sync_send_is_delivered(layer):
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("hello"))
        message = await listener.receive()
        assert message["type"] == notifications.EVENT_TYPE
        assert message["text"] == "hello"


async def test_sync_send_reaches_only_its_group(layer):
    async with Listener("notify_kit.testapp.note.a") as a, Listener("notify_kit.testapp.note.b") as b:
        await asyncio.to_thread(notifications.send, a.group, event("for a"))
        assert (await a.receive())["text"] == "for a"
        await b.nothing()


async def test_sync_send_does_not_block_the_caller(layer):
    async with Listener() as listener:

        def timed_send():
            started = time.monotonic()
            notifications.send(listener.group, event("quick"))
            return time.monotonic() - started

        assert await asyncio.to_thread(timed_send) < 0.05
        assert (await listener.receive())["text"] == "quick"


async def test_discarded_channel_gets_nothing(layer):
    async with Listener() as listener:
        await notifications.group_discard(listener.group, listener.channel)
        await asyncio.to_thread(notifications.send, listener.group, event("gone"))
        await asyncio.to_thread(notifications.flush, 3)
        await listener.nothing()


@pytest.fixture
def roomy_layers(settings):
    """Channel capacity above the layers' default 100, so a burst is not cut by the layer itself.

    Channels drops its cached layers when CHANNEL_LAYERS changes (and again when the fixture
    restores it), so the next get_channel_layer() builds them with this configuration.
    """
    layers = layers_with(capacity=1000)
    layers["default"] = {**layers["default"], "CONFIG": {"capacity": 1000}}
    settings.CHANNEL_LAYERS = layers


async def test_order_of_200_messages_is_kept(layer, roomy_layers):
    async with Listener() as listener:

        def burst():
            for index in range(200):
                notifications.send(listener.group, event(str(index)))

        await asyncio.to_thread(burst)
        received = [int((await listener.receive())["text"]) for _ in range(200)]
        assert received == list(range(200))
        await listener.nothing(0.1)


async def test_asend_is_delivered(layer):
    async with Listener() as listener:
        assert await notifications.asend(listener.group, event("async")) is True
        assert (await listener.receive())["text"] == "async"


async def test_asend_from_a_sync_thread_through_async_to_sync(redis_layer):
    # A Celery task using the async twin: asend runs on a short-lived loop of its own. (Redis
    # only: the in-memory layer's queues belong to the loop its consumers run on.)
    from asgiref.sync import async_to_sync

    async with Listener() as listener:
        assert await asyncio.to_thread(async_to_sync(notifications.asend), listener.group, event("x")) is True
        assert (await listener.receive())["text"] == "x"


async def test_flush_returns_true_once_everything_is_sent(layer, roomy_layers):
    async with Listener() as listener:

        def send_then_flush():
            for index in range(50):
                notifications.send(listener.group, event(str(index)))
            return notifications.flush(5)

        assert await asyncio.to_thread(send_then_flush) is True
        # Everything is on the layer already: no waiting needed.
        received = [int((await listener.receive(0.5))["text"]) for _ in range(50)]
        assert received == list(range(50))


async def test_flush_returns_false_on_timeout(layer, monkeypatch):
    async def slow_deliver(alias, items, backlog):
        await asyncio.sleep(0.3)

    monkeypatch.setattr(notifications, "_deliver", slow_deliver)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("slow"))
        assert await asyncio.to_thread(notifications.flush, 0.05) is False
        assert await asyncio.to_thread(notifications.flush, 3) is True


async def test_aflush_waits_from_async_code(layer, monkeypatch):
    sent = []

    async def slow_deliver(alias, items, backlog):
        for _group, message in items:
            await asyncio.sleep(0.05)
            sent.append(message["text"])

    monkeypatch.setattr(notifications, "_deliver", slow_deliver)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("a"))
        await asyncio.to_thread(notifications.send, listener.group, event("b"))
        await notifications.aflush()
        assert sent == ["a", "b"]


def test_sync_send_on_the_memory_layer_without_consumers_is_a_no_op(settings, monkeypatch):
    # Nobody in this process listens: the in-memory layer could reach no one.
    monkeypatch.setattr(notifications, "_consumer_loop", None)
    notifications.send("notify_kit.testapp.note.nobody", event("lost"))
    assert notifications.flush(1) is True


# Group names


def require_valid(name):
    InMemoryChannelLayer().require_valid_group_name(name)  # raises TypeError otherwise
    assert name.isascii()
    assert len(name) < 100


def test_group_name_of_an_object():
    hashid = encode(Note, 1)
    name = notifications.group_name("testapp.note", hashid)
    require_valid(name)
    assert name == f"notify_kit.testapp.note.{hashid}"


def test_group_name_ignores_the_case_of_the_label():
    assert notifications.group_name("TestApp.Note", "abc") == notifications.group_name("testapp.note", "abc")


@pytest.mark.parametrize(
    "label",
    [
        "a" * 60 + "." + "b" * 60,
        "some_rather_long_application_label.AModelWithAVeryLongNameIndeedThatGoesOnAndOn",
        "x" * 200 + ".y",
    ],
)
def test_group_name_is_valid_for_long_labels(label):
    hashid = "A" * 40  # a HashID of a huge pk, or of a long HASHIDS_MIN_LENGTH
    require_valid(notifications.group_name(label, hashid))


def test_long_labels_keep_distinct_group_names():
    first = notifications.group_name("a" * 90 + ".model1", "abc")
    second = notifications.group_name("a" * 90 + ".model2", "abc")
    assert first != second
    assert notifications.group_name("a" * 90 + ".model1", "abd") != first


@pytest.mark.parametrize("label", ["café.note", "notes.entrée", "приложение.заметка"])
def test_group_name_is_valid_for_non_ascii_labels(label):
    # App labels and model names are Python identifiers, which may be non-ASCII; Channels accepts
    # only ASCII letters and digits.
    require_valid(notifications.group_name(label, "abc"))
    assert notifications.group_name(label, "abc") != notifications.group_name(label, "abd")


def test_group_names_of_two_models_differ():
    assert notifications.group_name("testapp.note", "abc") != notifications.group_name("testapp.document", "abc")


# The layer failing


@pytest.fixture
def fast_probe(monkeypatch):
    """Probe a failing layer on every send (instead of once a second): every send really fails."""
    monkeypatch.setattr(notifications, "_PROBE_INTERVAL", 0.0)


@pytest.fixture
def redis_down(redis_layer, settings):
    """The redis layer pointed at a closed port; the settings fixture puts it back afterwards."""
    settings.CHANNEL_LAYERS = layers_with(hosts=[redis_host("redis://127.0.0.1:1/0")])


def notify_kit_records(caplog, level):
    return [r for r in caplog.records if r.name == "notify_kit" and r.levelno == level]


def test_send_returns_at_once_when_redis_is_down(redis_down, fast_probe, caplog):
    started = time.monotonic()
    for index in range(20):
        notifications.send("notify_kit.testapp.note.down", event(str(index)))
    assert time.monotonic() - started < 0.1
    assert notifications.flush(5) is True
    errors = notify_kit_records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "unreachable" in errors[0].getMessage()
    assert notifications._health.failing is True
    assert notifications._health.dropped == 20


async def test_asend_returns_false_when_redis_is_down(redis_down, caplog):
    assert await notifications.asend("notify_kit.testapp.note.down", event("x")) is False
    assert len(notify_kit_records(caplog, logging.ERROR)) == 1


async def test_sends_while_down_wait_for_the_probe_interval(redis_down, caplog, monkeypatch):
    # Between probes a send is dropped at once instead of waiting for the layer to fail again.
    attempts = []
    real = notifications._layer

    def counting_layer(alias=None):
        attempts.append(alias)
        return real(alias)

    monkeypatch.setattr(notifications, "_layer", counting_layer)
    results = [await notifications.asend("notify_kit.testapp.note.down", event(str(i))) for i in range(10)]
    assert results == [False] * 10
    assert len(attempts) == 1


@pytest.mark.django_db(transaction=True)
async def test_redis_outage_keeps_writes_and_recovers(redis_layer, settings, fast_probe, note, caplog):
    # Warm up what a process pays once (importing channels_redis, the thread's DB connection),
    # so the timings below measure the outage only.
    get_channel_layer("redis")
    await database_sync_to_async(Note.objects.count)()
    working = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = layers_with(hosts=[redis_host("redis://127.0.0.1:1/0")])

    def save_timed(title):
        started = time.monotonic()
        note.title = title
        note.save()
        return time.monotonic() - started

    coalesced_before = notifications.stats()["coalesced"]
    durations = [await database_sync_to_async(save_timed)(f"title {i}") for i in range(20)]
    assert max(durations) < 0.5
    assert await database_sync_to_async(lambda: Note.objects.get(pk=note.pk).title)() == "title 19"
    assert await asyncio.to_thread(notifications.flush, 5) is True
    errors = notify_kit_records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "Writes are not affected" in errors[0].getMessage()

    # Redis is back: the next notification goes out, and the recovery is logged with the loss.
    settings.CHANNEL_LAYERS = working
    async with Listener(note.get_live_group_name()) as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("after the outage"))
        assert (await listener.receive())["text"] == "after the outage"
    # The sender logs the recovery just after group_send returns, which may be after the
    # listener already has the message: wait for the sender to finish.
    assert await asyncio.to_thread(notifications.flush, 5) is True
    warnings = notify_kit_records(caplog, logging.WARNING)
    assert len(warnings) == 1
    # Every one of the 20 updates was dropped, alone or folded into another (the sender may
    # coalesce updates of one object while it is behind).
    dropped = int(re.search(r"back; (\d+) notifications were dropped", warnings[0].getMessage())[1])
    assert dropped + notifications.stats()["coalesced"] - coalesced_before == 20
    assert notifications._health.failing is False


async def test_max_pending_overflow_is_counted_and_logged(layer, settings, monkeypatch, caplog):
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "MAX_PENDING": 5}
    monkeypatch.setattr(notifications._health, "_overflow_logged_at", {})
    sent = []

    async def slow_deliver(alias, items, backlog):
        for _group, message in items:
            await asyncio.sleep(0.05)  # far longer than queueing 12 messages takes
            sent.append(message["text"])

    monkeypatch.setattr(notifications, "_deliver", slow_deliver)
    async with Listener() as listener:

        def burst():
            for index in range(12):
                notifications.send(listener.group, event(str(index)))

        await asyncio.to_thread(burst)
        assert await asyncio.to_thread(notifications.flush, 3) is True
        # The first five were queued; the oldest are kept, the rest dropped and counted.
        assert sent == ["0", "1", "2", "3", "4"]
        assert notifications._health.dropped == 7
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
    real_deliver = notifications._deliver

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

    monkeypatch.setattr(notifications, "_deliver", held_deliver)
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


# A full receiver (channels-redis)


def note_event(index, deleted=False):
    from notify_kit.changes import Event

    return Event("testapp.note", "full", deleted=deleted, data=None if deleted else {"title": str(index)},
                 changed=set() if deleted else {f"f{index}"})  # fmt: skip


@pytest.fixture
def tiny_redis_capacity(redis_layer, settings):
    """Server-process queues of two messages: the third message to a process finds it full."""
    settings.CHANNEL_LAYERS = layers_with(capacity=2)


async def test_a_full_receiver_is_owed_the_final_state(tiny_redis_capacity):
    # channels-redis' own group_send would drop updates 3..10 here, the final state with them.
    async with Listener("notify_kit.testapp.note.full") as listener:
        await asyncio.to_thread(lambda: [notifications.send(listener.group, note_event(i)) for i in range(1, 11)])

        # A flush (an exiting writer) waits while the receiver takes what it is owed.
        def flush_then_look():
            flushed = notifications.flush(5)
            return flushed, any(notifications._background.current()._backlogs.values())

        flushing = asyncio.ensure_future(asyncio.to_thread(flush_then_look))
        frames = [json.loads((await listener.receive())["text"]) for _ in range(3)]
        assert await flushing == (True, False)
        await listener.nothing(0.3)
    assert [f["data"]["title"] for f in frames] == ["1", "2", "10"]
    assert [f.get("coalesced", 0) for f in frames] == [0, 0, 7]
    assert frames[-1]["changed"] == sorted(f"f{i}" for i in range(3, 11))
    assert notifications.stats()["deferred"] >= 1


async def test_a_full_receiver_keeps_its_order(tiny_redis_capacity, monkeypatch):
    # Updates sent after a refusal fold into the owed event instead of overtaking it.
    monkeypatch.setattr(notifications, "_STALLED", 0.1)
    async with Listener("notify_kit.testapp.note.full") as listener:
        await asyncio.to_thread(lambda: [notifications.send(listener.group, note_event(i)) for i in range(1, 4)])
        # Nobody reads yet: the flush gives up on the stalled receiver, with 3 owed to it.
        started = time.monotonic()
        assert await asyncio.to_thread(notifications.flush, 5) is False
        assert time.monotonic() - started < 1
        await asyncio.to_thread(lambda: [notifications.send(listener.group, note_event(i)) for i in range(4, 6)])
        await asyncio.to_thread(notifications.flush, 0.2)
        frames = [json.loads((await listener.receive())["text"]) for _ in range(3)]
        await listener.nothing(0.3)
        # Room again: the next event goes out as itself.
        await asyncio.to_thread(notifications.send, listener.group, note_event(6, deleted=True))
        frames.append(json.loads((await listener.receive())["text"]))
    assert [(f["type"], f.get("data", {}).get("title"), f.get("coalesced", 0)) for f in frames] == [
        ("updated", "1", 0),
        ("updated", "2", 0),
        ("updated", "5", 2),
        ("deleted", None, 0),
    ]
    assert frames[2]["changed"] == ["f3", "f4", "f5"]


# The sender heals itself


async def test_a_send_that_ignores_its_timeout_is_abandoned(redis_layer, settings, monkeypatch, caplog):
    # asyncio.timeout works by cancelling; a client library that swallowed the cancellation would
    # otherwise hold the one sender task, and every later notification behind it.
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "SEND_TIMEOUT": 0.1}
    monkeypatch.setattr(notifications, "_ABANDON_GRACE", 0.1)
    real = notifications._redis_deliver
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

    monkeypatch.setattr(notifications, "_redis_deliver", stubborn)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("stuck"))
        await asyncio.sleep(0.05)  # the first batch is on its way
        started = time.monotonic()
        await asyncio.to_thread(notifications.send, listener.group, event("next"))
        assert (await listener.receive(timeout=0.9))["text"] == "next"
        assert time.monotonic() - started < 0.8
    assert any("abandoned" in r.getMessage() for r in notify_kit_records(caplog, logging.WARNING))


async def test_a_dead_sender_thread_is_replaced(redis_layer, caplog):
    sender = await asyncio.to_thread(notifications._background.get)
    sender.loop.call_soon_threadsafe(sender.loop.stop)  # run_forever returns: the thread ends
    await asyncio.to_thread(notifications._background._thread.join, 2)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("after"))
        assert (await listener.receive())["text"] == "after"
    assert notifications._background.get() is not sender
    assert any("sender thread had stopped" in r.getMessage() for r in notify_kit_records(caplog, logging.ERROR))
