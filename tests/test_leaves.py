"""notify_kit.leaves: a failed group leave is retried in the background, on a real Redis layer.

The layer is channels-redis itself, subclassed so that ``group_discard`` fails a given number of
times (as it does with ``MaxConnectionsError`` when the pool is exhausted) before it works; what
is asserted is the membership as stored in Redis.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from notify_kit import leaves, notifications

GROUP = "notify_kit.testapp.note.leaving"


class FlakyLeaveLayer(RedisChannelLayer):
    """channels-redis whose group_discard raises ``failures`` more times before it works."""

    # On the class: Channels builds a new layer instance whenever CHANNEL_LAYERS changes.
    failures = 0
    attempts = 0

    async def group_discard(self, group, channel):
        type(self).attempts += 1
        if type(self).failures > 0:
            type(self).failures -= 1
            raise ConnectionError("Too many connections")
        await super().group_discard(group, channel)


@pytest.fixture
def flaky_layer(redis_layer, settings):
    """NOTIFY_KIT sends and subscribes on a FlakyLeaveLayer over the test Redis."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["flaky"] = {**layers["redis"], "BACKEND": "tests.test_leaves.FlakyLeaveLayer"}
    settings.CHANNEL_LAYERS = layers
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": "flaky"}
    FlakyLeaveLayer.failures = FlakyLeaveLayer.attempts = 0
    yield get_channel_layer("flaky")
    FlakyLeaveLayer.failures = 0


async def members(layer, group=GROUP):
    """The group's channels as channels-redis stored them."""
    connection = layer.connection(layer.consistent_hash(group))
    return [channel.decode() for channel in await connection.zrange(layer._group_key(group), 0, -1)]


async def eventually(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_failed_leave_is_retried_until_the_membership_is_gone(flaky_layer, caplog):
    before = notifications.stats()
    channel = await flaky_layer.new_channel()
    await notifications.group_add(GROUP, channel)
    assert await members(flaky_layer) == [channel]

    FlakyLeaveLayer.failures = 3  # the leave itself, then two retries fail
    started = time.monotonic()
    await notifications.group_discard(GROUP, channel)
    assert time.monotonic() - started < 0.5  # the disconnect is not held up by the retries
    assert await members(flaky_layer) == [channel]

    async def gone():
        return await members(flaky_layer) == []

    await eventually(gone)
    assert FlakyLeaveLayer.attempts == 4
    after = notifications.stats()
    assert after["leave_retried"] - before["leave_retried"] == 1
    assert after["leave_failed"] == before["leave_failed"]

    async def nothing_waits():  # the retry forgets the leave just after it succeeded
        return leaves.waiting() == 0

    await eventually(nothing_waits)
    assert any("retrying in the background" in r.getMessage() for r in caplog.records if r.name == "notify_kit")


async def test_a_leave_that_keeps_failing_is_given_up_counted_and_logged(flaky_layer, settings, caplog):
    # With a group_expiry of 1 s the membership expires by itself after a second: the retries
    # stop there instead of going on for the layer's default 24 hours.
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["flaky"]["CONFIG"]["group_expiry"] = 1
    settings.CHANNEL_LAYERS = layers  # a new dict: Channels builds the layer anew
    layer = get_channel_layer("flaky")
    channel = await layer.new_channel()
    await notifications.group_add(GROUP, channel)
    before = notifications.stats()["leave_failed"]
    FlakyLeaveLayer.failures = 1000
    await notifications.group_discard(GROUP, channel)

    async def given_up():
        return notifications.stats()["leave_failed"] == before + 1

    await eventually(given_up)

    async def nothing_waits():
        return leaves.waiting() == 0

    await eventually(nothing_waits)
    gave_up = [r for r in caplog.records if r.name == "notify_kit" and "gave up leaving" in r.getMessage()]
    assert len(gave_up) == 1 and gave_up[0].levelno == logging.WARNING


async def test_joining_again_cancels_a_pending_leave(flaky_layer):
    # unsubscribe (the leave fails), then subscribe again: the background retry must not remove
    # the new membership.
    channel = await flaky_layer.new_channel()
    await notifications.group_add(GROUP, channel)
    FlakyLeaveLayer.failures = 1
    await notifications.group_discard(GROUP, channel)
    await notifications.group_add(GROUP, channel)
    await asyncio.sleep(leaves.RETRY_FIRST * 4)
    assert await members(flaky_layer) == [channel]
    assert FlakyLeaveLayer.attempts == 1
    await notifications.group_discard(GROUP, channel)
    assert await members(flaky_layer) == []
