"""Helpers shared by the send-path tests: a listening channel, events, layer settings, log records."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
from channels.layers import get_channel_layer

from notify_kit import notifications
from notify_kit.conf import settings as conf


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
        """The next message, as the consumer handles it: a bundle (BATCH_TYPE) one event at a time."""
        if getattr(self, "_unpacked", None):
            return self._unpacked.pop(0)
        message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
        if message["type"] == notifications.BATCH_TYPE:
            self.bundles = getattr(self, "bundles", 0) + 1
            message, *self._unpacked = message["messages"]
        return message

    async def fill(self, count):
        """Take ``count`` places in this channel's server-process queue (a receiver that lags)."""
        for index in range(count):
            await self.layer.send(self.channel, {"type": "filler", "index": index})

    async def nothing(self, timeout=0.2):
        with pytest.raises(TimeoutError):
            await self.receive(timeout)


def layers_with(**redis_config):
    """CHANNEL_LAYERS of the test settings with the redis layer's CONFIG updated."""
    from django.conf import settings

    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["redis"]["CONFIG"].update(redis_config)
    return layers


def notify_kit_records(caplog, level):
    return [r for r in caplog.records if r.name == "notify_kit" and r.levelno == level]


def note_event(index, deleted=False):
    from notify_kit.changes import Event

    return Event("testapp.note", "full", deleted=deleted, data=None if deleted else {"title": str(index)},
                 changed=set() if deleted else {f"f{index}"})  # fmt: skip


class Recorder(list):
    """Stands in for ``notifications.send``: keeps (group, channel-layer message) sent to objects' groups.

    Events also go to one group per audience key (collection subscribers, tests/test_subscriptions.py);
    those copies are kept apart in ``audience_sends``.
    """

    def __init__(self):
        super().__init__()
        self.audience_sends = []

    def __call__(self, group, item):
        # Models hand over a Coalescable event; the message is what the sender would send.
        message = item.to_message() if hasattr(item, "to_message") else item
        (self.audience_sends if ".a." in group else self).append((group, message))

    def many(self, items):
        """Stands in for ``notifications.send_many``: each pair as one ``send``."""
        for group, item in items:
            self(group, item)

    @property
    def frames(self):
        return [json.loads(message["text"]) for _, message in self if "text" in message]

    def by_id(self):
        return {frame["id"]: frame for frame in self.frames}
