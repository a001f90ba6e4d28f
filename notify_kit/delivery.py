"""One batch onto one channel layer: the only place a send touches the layer.

The design choice is that delivery never raises into its caller: a notification must never fail
or slow a user's write, so every layer error is counted and reported to ``health`` (logged once
per outage), and every send is bounded by ``SEND_TIMEOUT``. A batch goes through the
channels-redis fast path when the layer is the plain channels-redis layer whose internals we know
(``channels_redis_fastpath.usable``), and through the layer's own public ``group_send`` per
message otherwise (any other layer, or a channels-redis release we do not know).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, cast

from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from . import channels_redis_fastpath
from .backlog import Backlog, buildable
from .conf import settings
from .health import counters, health

logger = logging.getLogger("notify_kit")

# How long past SEND_TIMEOUT a batch may still take before the sender stops waiting for it.
ABANDON_GRACE = 1.0


def current_alias() -> str:
    """The CHANNEL_LAYERS alias notify_kit sends on (read on every call: settings may change)."""
    return cast(str, settings.CHANNEL_LAYER)


def get_layer(alias: str | None = None) -> Any:
    """The channel layer under ``alias``; raises ImproperlyConfigured when there is none."""
    layer = get_channel_layer(alias or current_alias())
    if layer is None:
        raise ImproperlyConfigured(
            f"notify_kit needs CHANNEL_LAYERS[{alias or current_alias()!r}]; see the notify_kit.E002 check."
        )
    return layer


async def guarded_send(alias: str, group: str, message: dict[str, Any]) -> bool:
    """Send one message; log instead of raising. Returns whether it went out."""
    if not health.should_attempt():
        return False
    try:
        layer = get_layer(alias)
        # asyncio.timeout, not wait_for: no extra task per message on the hot path.
        async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
            await layer.group_send(group, message)
    except Exception as exc:  # noqa: BLE001 - a notification must never fail its caller
        health.failed(exc)
        return False
    health.succeeded()
    return True


async def send_each(layer: Any, items: list[tuple[str, Any]]) -> None:
    """Any other layer: its own group_send, in order per group, groups side by side."""
    chains: dict[str, list[Any]] = {}
    for group, item in items:
        chains.setdefault(group, []).append(item)

    async def chain(group: str, messages: list[Any]) -> None:
        built: dict[int, dict[str, Any]] = {}
        for item in buildable(messages, built, group):
            await layer.group_send(group, built[id(item)])

    await asyncio.gather(*(chain(group, messages) for group, messages in chains.items()))


async def deliver(alias: str, items: list[tuple[str, Any]], backlog: Backlog) -> None:
    """Send one batch for one layer alias; log instead of raising (never fails a write)."""
    if not health.should_attempt(len(items)):
        counters["failed"] += len(items)
        return
    try:
        layer = get_layer(alias)
        async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
            if channels_redis_fastpath.usable(layer):
                await channels_redis_fastpath.deliver(layer, items, backlog)
            else:
                await send_each(layer, items)
    except Exception as exc:  # noqa: BLE001 - a notification must never fail its caller
        health.failed(exc, len(items))
        counters["failed"] += len(items)
        return
    health.succeeded()
    counters["sent"] += len(items)


async def bounded(delivery: Coroutine[Any, Any, None], count: int) -> None:
    """Run one batch's delivery, but never let it hold the sender for longer than it may take.

    ``deliver`` bounds itself with ``asyncio.timeout``, which works by cancelling; a client
    library that swallows a cancellation (redis-py has had such bugs) would otherwise park the
    one sender task for good, and every later notification of the process behind it. Past the
    bound the batch is abandoned (logged, counted) and the sender moves on.
    """
    task = asyncio.ensure_future(delivery)
    try:
        done, _ = await asyncio.wait([task], timeout=float(settings.SEND_TIMEOUT) + ABANDON_GRACE)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        counters["failed"] += count
        health.dropped_overflow(count, "a send to the channel layer did not return and was abandoned")
        return
    if not task.cancelled() and task.exception() is not None:  # a bug, not a layer failure
        logger.error("notify_kit: could not send %d notifications", count, exc_info=task.exception())
