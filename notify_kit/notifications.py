"""The public send API: send, flush, group membership and the counters, on any channel layer.

Everything here returns at once or is bounded, and nothing here raises into a user's write: a
sync ``send`` hands the message to a background sender and returns, failures are logged once per
outage on the ``notify_kit`` logger and counted in ``stats()``. The design choice is that this
module only decides *where* a message goes; how it is queued, batched and sent lives apart, one
concept per module, along the data path:

- ``sender_thread``: which loop a sync send runs on (one long-lived sender thread per process,
  or the consumers' own loop for the in-memory layer);
- ``sender``: queues, batches and coalescing, in order per group;
- ``delivery``: one batch onto the layer, bounded, never raising;
- ``channels_redis_fastpath``: the same in two round trips on channels-redis, with a fallback to
  the layer's own ``group_send`` when channels-redis is not a release we know;
- ``backlog``: events owed to a full receiver until it has room;
- ``health``: the outage log and the counters; ``leaves``: failed group leaves, retried.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import time
from typing import Any

from channels.layers import InMemoryChannelLayer

from . import capture, delivery, health, leaves, sender_thread
from .backlog import Coalescable
from .conf import settings
from .layer_messages import BATCH_TYPE, EVENT_TYPE, GROUP_PREFIX, RECHECK_TYPE

__all__ = [
    "BATCH_TYPE",
    "EVENT_TYPE",
    "RECHECK_TYPE",
    "Coalescable",
    "aflush",
    "asend",
    "flush",
    "group_add",
    "group_discard",
    "group_name",
    "send",
    "send_many",
    "stats",
]

logger = logging.getLogger("notify_kit")

_MAX_GROUP_LENGTH = 99  # Channels rejects group names of 100 characters or more.


def stats() -> dict[str, int]:
    """Counters of sync sends and group leaves since the process started.

    ``sent``/``failed``: messages handed to the layer or lost to a layer error; ``coalesced``:
    updates folded into a later one of the same object; ``deferred``: deliveries a full
    receiver refused and that were kept to retry; ``dropped``: lost for good (layer down,
    MAX_PENDING exceeded, a receiver full for longer than the layer's expiry);
    ``leave_retried``: group leaves that failed and were retried in the background;
    ``leave_failed``: leaves given up, the membership left to expire in the layer.
    """
    return health.stats()


def group_name(label: str, hashid: str) -> str:
    """Return the channel-layer group of one object: ``notify_kit.<app>.<model>.<hashid>``."""
    name = f"{GROUP_PREFIX}{label.lower()}.{hashid}"
    if len(name) > _MAX_GROUP_LENGTH or not name.isascii():
        # Long or non-ASCII app or model names (identifiers may be non-ASCII; group names may
        # not): a digest keeps the name valid and still unique per model.
        digest = hashlib.sha256(label.lower().encode()).hexdigest()[:24]
        name = f"{GROUP_PREFIX}{digest}.{hashid}"
    return name


def send(group: str, message: dict[str, Any] | Coalescable) -> None:
    """Send ``message`` to ``group`` from sync code without waiting; never raises.

    Safe from any thread, including one that runs an event loop. Messages to one group arrive
    in the order they were sent. A Coalescable (model events are) may be folded into a newer
    one for the same group if the sender falls behind on that group.
    """
    send_many([(group, message)])


def send_many(items: list[tuple[str, dict[str, Any] | Coalescable]]) -> None:
    """``send`` for several (group, message) pairs, in order, with one hand-over; never raises."""
    if capture.sinks:  # notify_kit.testing is recording: recorded instead of sent
        for group, message in items:
            capture.deliver(group, message)
        return
    alias = delivery.current_alias()
    try:
        in_memory = isinstance(delivery.get_layer(alias), InMemoryChannelLayer)
    except Exception as exc:  # noqa: BLE001 - misconfiguration is reported by checks, not by save()
        health.health.failed(exc)
        return
    if in_memory:
        sender = sender_thread.local_sender()
        if sender is None:
            return  # no consumer in this process: nobody the in-memory layer could reach
    else:
        sender = sender_thread.background()
    sender.submit_many(alias, items)


async def asend(group: str, message: dict[str, Any]) -> bool:
    """Send ``message`` to ``group`` from async code; never raises. Returns whether it went out."""
    return await delivery.guarded_send(delivery.current_alias(), group, message)


def flush(timeout: float = 5.0) -> bool:
    """Wait until the sync sends made so far have gone out (tests, shutdown). False on timeout."""
    deadline = time.monotonic() + timeout
    ok = True
    for sender in sender_thread.senders():
        ok = sender.flush(max(0.0, deadline - time.monotonic())) and ok
    return ok


async def aflush() -> None:
    """Wait, from async code, until the sync sends made so far have gone out."""
    await asyncio.to_thread(flush)


async def group_add(group: str, channel_name: str) -> None:
    """Add a consumer's channel to a group (raises: the consumer answers the client)."""
    sender_thread.record_consumer_loop(asyncio.get_running_loop())
    alias = delivery.current_alias()
    # A leave of this channel from this group may still be retried in the background: it must
    # not undo this join, so it is cancelled first (and an attempt in flight waited for).
    await leaves.cancel(alias, group, channel_name)
    # Bounded like a send: a layer that hangs (redis-py retrying a dead connection with backoff)
    # must not leave the client waiting for an answer that never comes.
    async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
        await delivery.get_layer(alias).group_add(group, channel_name)


async def group_discard(group: str, channel_name: str) -> None:
    """Remove a consumer's channel from a group; never raises, and a failed leave is retried later."""
    alias = delivery.current_alias()
    layer = None
    try:
        layer = delivery.get_layer(alias)
        async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
            await layer.group_discard(group, channel_name)
    except Exception:  # a dead layer must not stop the other groups' cleanup
        if layer is None:  # no layer configured: there is no membership to clean up either
            logger.warning("notify_kit: could not leave group %s", group, exc_info=True)
            return
        logger.warning("notify_kit: could not leave group %s; retrying in the background", group, exc_info=True)
        # The disconnect goes on at once; the retries run on a loop that outlives the socket
        # (the sender thread's), except on the in-memory layer, whose state belongs to this loop.
        if isinstance(layer, InMemoryChannelLayer):
            loop = asyncio.get_running_loop()
        else:
            loop = sender_thread.background().loop
        leaves.retry_later(alias, group, channel_name, layer, loop)


def _flush_at_exit() -> None:
    if not sender_thread.ever_used():
        return  # nothing was ever sent from sync code in this process
    if not flush(float(settings.SHUTDOWN_TIMEOUT)):
        logger.warning("notify_kit: exiting with notifications still queued.")


# Daemon threads still run while atexit handlers do, so queued notifications go out on exit
# from a management command or Celery worker instead of vanishing with the process.
atexit.register(_flush_at_exit)
