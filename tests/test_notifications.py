"""notify_kit.notifications: the public send API, on the real layers.

Each test listens on a channel of its own, added to a group through ``notifications.group_add``.
Sync sends go through ``asyncio.to_thread``: that is how a view or a Celery task calls them, and
on the in-memory layer they are delivered on the loop recorded by ``group_add`` (the test's).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer

from notify_kit import delivery, health, notifications, sender_thread
from notify_kit.conf import redis_host
from notify_kit.hashids import encode
from tests.send_helpers import Listener, event, layers_with, notify_kit_records
from tests.testapp.models import Note

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

    monkeypatch.setattr(delivery, "deliver", slow_deliver)
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

    monkeypatch.setattr(delivery, "deliver", slow_deliver)
    async with Listener() as listener:
        await asyncio.to_thread(notifications.send, listener.group, event("a"))
        await asyncio.to_thread(notifications.send, listener.group, event("b"))
        await notifications.aflush()
        assert sent == ["a", "b"]


def test_sync_send_on_the_memory_layer_without_consumers_is_a_no_op(settings, monkeypatch):
    # Nobody in this process listens: the in-memory layer could reach no one.
    monkeypatch.setattr(sender_thread, "_consumer_loop", None)
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
    monkeypatch.setattr(health, "PROBE_INTERVAL", 0.0)


@pytest.fixture
def redis_down(redis_layer, settings):
    """The redis layer pointed at a closed port; the settings fixture puts it back afterwards."""
    settings.CHANNEL_LAYERS = layers_with(hosts=[redis_host("redis://127.0.0.1:1/0")])


def test_send_returns_at_once_when_redis_is_down(redis_down, fast_probe, caplog):
    started = time.monotonic()
    for index in range(20):
        notifications.send("notify_kit.testapp.note.down", event(str(index)))
    assert time.monotonic() - started < 0.1
    assert notifications.flush(5) is True
    errors = notify_kit_records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "unreachable" in errors[0].getMessage()
    assert health.health.failing is True
    assert health.health.dropped == 20


async def test_asend_returns_false_when_redis_is_down(redis_down, caplog):
    assert await notifications.asend("notify_kit.testapp.note.down", event("x")) is False
    assert len(notify_kit_records(caplog, logging.ERROR)) == 1


async def test_sends_while_down_wait_for_the_probe_interval(redis_down, caplog, monkeypatch):
    # Between probes a send is dropped at once instead of waiting for the layer to fail again.
    attempts = []
    real = delivery.get_layer

    def counting_layer(alias=None):
        attempts.append(alias)
        return real(alias)

    monkeypatch.setattr(delivery, "get_layer", counting_layer)
    results = [await notifications.asend("notify_kit.testapp.note.down", event(str(i))) for i in range(10)]
    assert results == [False] * 10
    assert len(attempts) == 1


@pytest.mark.django_db(transaction=True)
async def test_redis_outage_keeps_writes_and_recovers(redis_layer, settings, fast_probe, note, caplog):
    # Warm up what a process pays once (importing channels_redis, the thread's DB connection),
    # so the timings below measure the outage only.
    get_channel_layer("redis")
    await database_sync_to_async(Note.objects.count)()
    # The note's own `created` event goes out before the outage begins.
    assert await asyncio.to_thread(notifications.flush, 5) is True
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
    # coalesce updates of one object while it is behind), and each is sent to two groups: the
    # note's own, and its model's one audience (collection subscribers, notify_kit.audiences).
    dropped = int(re.search(r"back; (\d+) notifications were dropped", warnings[0].getMessage())[1])
    assert dropped + notifications.stats()["coalesced"] - coalesced_before == 20 * 2
    assert health.health.failing is False
