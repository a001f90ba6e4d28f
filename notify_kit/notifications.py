"""The one module that talks to the channel layer.

Sync callers (``save()`` in a view, the shell, a Celery task) must not pay for a new event loop
and a new Redis connection per notification, which is what ``async_to_sync(group_send)`` costs.
They hand the message to a background sender instead: one daemon thread running one long-lived
event loop, which keeps the layer's connection pool warm and sends in order per group. The
hand-off never blocks and never raises, so a notification can never fail or slow a user's write;
failures are logged once per outage on the ``notify_kit`` logger.

The in-memory layer is the one exception: its queues belong to the event loop its consumers run
on and are not thread-safe, so sync sends for it are scheduled onto that loop instead (it is a
single-process layer for development and tests anyway).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import logging
import os
import threading
import time
from collections import deque
from typing import Any, Protocol

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from .conf import settings

logger = logging.getLogger("notify_kit")

#: Channel-layer message type of a notification; the consumer's handler is ``notify_event``.
EVENT_TYPE = "notify.event"
#: Message type asking every subscriber of a group to check its access again (``notify_recheck``).
RECHECK_TYPE = "notify.recheck"

_GROUP_PREFIX = "notify_kit."
_MAX_GROUP_LENGTH = 99  # Channels rejects group names of 100 characters or more.
# How many groups one sender drains at once: bounds the layer connections it may open.
_CONCURRENT_GROUPS = 32
# While the layer is failing, one send per interval probes it; the rest are dropped at once
# rather than each waiting out a connection timeout and piling up behind it.
_PROBE_INTERVAL = 1.0
_OVERFLOW_LOG_INTERVAL = 10.0
# A woken sender waits this long before draining what sync callers queued, so that a burst of
# saves costs one wake-up of its thread (and one GIL hand-off) instead of one per save.
_BATCH_DELAY = 0.001


class Coalescable(Protocol):
    """A queued item that may absorb a newer one for the same group while both still wait."""

    def absorb(self, newer: Any) -> bool:
        """Fold ``newer`` into this item and return True, or return False to keep both."""

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message, built when the item is finally sent."""


# Counters since the process started (read with stats()); written on the sender loops only.
_stats = {"sent": 0, "failed": 0, "coalesced": 0}


def stats() -> dict[str, int]:
    """How many sync sends went out, failed or were folded into a later one for the same group."""
    return {**_stats, "dropped": _health.dropped}


def group_name(label: str, hashid: str) -> str:
    """Return the channel-layer group of one object: ``notify_kit.<app>.<model>.<hashid>``."""
    name = f"{_GROUP_PREFIX}{label.lower()}.{hashid}"
    if len(name) > _MAX_GROUP_LENGTH or not name.isascii():
        # Long or non-ASCII app or model names (identifiers may be non-ASCII; group names may
        # not): a digest keeps the name valid and still unique per model.
        digest = hashlib.sha256(label.lower().encode()).hexdigest()[:24]
        name = f"{_GROUP_PREFIX}{digest}.{hashid}"
    return name


def _alias() -> str:
    return settings.CHANNEL_LAYER


def _layer(alias: str | None = None) -> Any:
    layer = get_channel_layer(alias or _alias())
    if layer is None:
        raise ImproperlyConfigured(
            f"notify_kit needs CHANNEL_LAYERS[{alias or _alias()!r}]; see the notify_kit.E002 check."
        )
    return layer


class _LayerHealth:
    """Logs a failing layer once per outage, not once per message, and its recovery."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failing = False
        self.dropped = 0
        self._last_attempt = 0.0
        self._overflow_unlogged = 0
        self._overflow_logged_at = -_OVERFLOW_LOG_INTERVAL

    def should_attempt(self) -> bool:
        """While failing, allow one probing send per interval; drop the others at once."""
        with self._lock:
            if not self.failing or time.monotonic() - self._last_attempt >= _PROBE_INTERVAL:
                self._last_attempt = time.monotonic()
                return True
            self.dropped += 1
            return False

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.dropped += 1
            first = not self.failing
            self.failing = True
        if first:
            logger.error(
                "notify_kit: the channel layer is unreachable (%s: %s); notifications are dropped "
                "until it recovers. Writes are not affected.",
                type(exc).__name__,
                exc,
            )

    def succeeded(self) -> None:
        if not self.failing:  # the hot path: no lock when all is well
            return
        with self._lock:
            dropped, self.dropped, self.failing = self.dropped, 0, False
        logger.warning("notify_kit: the channel layer is back; %d notifications were dropped.", dropped)

    def dropped_overflow(self, count: int) -> None:
        # Sustained overflow would otherwise log once per dropped notification: log at most once
        # per _OVERFLOW_LOG_INTERVAL, with how many were dropped since the last line.
        with self._lock:
            self.dropped += count
            self._overflow_unlogged += count
            now = time.monotonic()
            if now - self._overflow_logged_at < _OVERFLOW_LOG_INTERVAL:
                return
            unlogged, self._overflow_unlogged, self._overflow_logged_at = self._overflow_unlogged, 0, now
        logger.warning("notify_kit: %d notifications dropped: more than MAX_PENDING were queued.", unlogged)


_health = _LayerHealth()


async def _guarded_send(alias: str, group: str, message: dict[str, Any]) -> bool:
    """Send one message; log instead of raising. Returns whether it went out."""
    if not _health.should_attempt():
        return False
    try:
        layer = _layer(alias)
        # asyncio.timeout, not wait_for: no extra task per message on the hot path.
        async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
            await layer.group_send(group, message)
    except Exception as exc:  # noqa: BLE001 - a notification must never fail its caller
        _health.failed(exc)
        return False
    _health.succeeded()
    return True


class _Sender:
    """Sends queued messages on one event loop, one task per busy group so each group stays in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Producers append here from any thread; the loop moves items to per-group queues.
        self._inbox: deque[tuple[str, str, Any]] = deque()
        self._wake_scheduled = False
        self._queues: dict[tuple[str, str], deque[Any]] = {}  # loop thread only
        self._tasks: set[asyncio.Task[None]] = set()
        self._semaphore: asyncio.Semaphore | None = None
        self._pending = 0
        self._lock = threading.Lock()

    def submit(self, alias: str, group: str, message: dict[str, Any] | Coalescable) -> None:
        """Queue a message (or a Coalescable) from any thread; returns at once."""
        limit = int(settings.MAX_PENDING)
        with self._lock:
            if self._pending >= limit:
                overflow = True
            else:
                overflow = False
                self._pending += 1
                self._inbox.append((alias, group, message))
                # Wake the loop only when it is not already due to drain the inbox: waking it
                # writes to its self-pipe, and under load that write, contending for the GIL
                # with the sender thread, was the single largest cost of a save.
                wake, self._wake_scheduled = not self._wake_scheduled, True
        if overflow:
            _health.dropped_overflow(1)
            return
        if wake:
            try:
                self.loop.call_soon_threadsafe(self.loop.call_later, _BATCH_DELAY, self._drain_inbox)
            except RuntimeError:  # the loop was closed under us (interpreter or test teardown)
                with self._lock:
                    self._pending -= len(self._inbox)
                    self._inbox.clear()
                    self._wake_scheduled = False

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    def _drain_inbox(self) -> None:
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._wake_scheduled = False
        for alias, group, message in items:
            self._enqueue(alias, group, message)

    def _enqueue(self, alias: str, group: str, message: Any) -> None:
        key = (alias, group)
        queue = self._queues.get(key)
        if queue is not None:
            # A drain task for this group is running and will pick it up. Only when the sender
            # is really behind on this group (COALESCE_AFTER messages already waiting) may a
            # Coalescable fold the newer one into the last waiting one: one message with the
            # latest state beats a growing backlog, and below that every update goes out.
            if (
                len(queue) >= int(settings.COALESCE_AFTER)
                and hasattr(queue[-1], "absorb")
                and queue[-1].absorb(message)
            ):
                _stats["coalesced"] += 1
                self._done()
                return
            queue.append(message)
            return
        self._queues[key] = deque([message])
        task = self.loop.create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: tuple[str, str]) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(_CONCURRENT_GROUPS)
        queue = self._queues[key]
        try:
            async with self._semaphore:
                while queue:
                    item = queue.popleft()
                    try:
                        message = item.to_message() if hasattr(item, "to_message") else item
                        sent = await _guarded_send(key[0], key[1], message)
                        _stats["sent" if sent else "failed"] += 1
                    except Exception:  # one bad item must not stall its group
                        logger.exception("notify_kit: could not build a notification for %s", key[1])
                    finally:
                        self._done()
        finally:
            # No await between the last empty check and this delete, so a message enqueued
            # after it starts a fresh task instead of landing in a forgotten deque.
            del self._queues[key]

    async def _idle(self) -> None:
        # Items still waiting out _BATCH_DELAY were submitted too: drain them now, or an exit
        # flush would return before they are even queued and they would die with the process.
        self._drain_inbox()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted before this call is sent. Returns False on timeout."""
        if self.loop.is_closed() or not self.loop.is_running():
            # A stopped loop (a server's, at exit) runs nothing more: waiting on it can only
            # time out, and the sends still queued on it cannot go out anyway.
            return self._pending == 0
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("flush() would deadlock on the loop it waits for; use aflush().")
        future = asyncio.run_coroutine_threadsafe(self._idle(), self.loop)
        try:
            future.result(timeout)
        except TimeoutError:
            return False
        return True


class _SenderThread:
    """The long-lived loop for sync callers: started on first use, again after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sender: _Sender | None = None
        self._pid = 0

    def get(self) -> _Sender:
        sender = self._sender
        if sender is not None and self._pid == os.getpid():
            return sender
        with self._lock:
            if self._sender is None or self._pid != os.getpid():
                # A forked child inherits the parent's loop object but not its thread: start anew.
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="notify_kit-sender", daemon=True)
                thread.start()
                self._sender, self._pid = _Sender(loop), os.getpid()
            return self._sender

    def current(self) -> _Sender | None:
        return self._sender if self._pid == os.getpid() else None


_background = _SenderThread()
# Loop that consumers of this process run on, recorded when one joins a group. Sync sends on
# the in-memory layer must run there; keyed by loop because each test may bring its own.
_local_senders: dict[asyncio.AbstractEventLoop, _Sender] = {}
_local_lock = threading.Lock()
_consumer_loop: asyncio.AbstractEventLoop | None = None


def _local_sender() -> _Sender | None:
    loop = _consumer_loop
    if loop is None or loop.is_closed():
        return None
    with _local_lock:
        for stale in [known for known in _local_senders if known.is_closed()]:
            del _local_senders[stale]
        sender = _local_senders.get(loop)
        if sender is None:
            sender = _local_senders[loop] = _Sender(loop)
        return sender


def send(group: str, message: dict[str, Any] | Coalescable) -> None:
    """Send ``message`` to ``group`` from sync code without waiting; never raises.

    Safe from any thread, including one that runs an event loop. Messages to one group arrive
    in the order they were sent. A Coalescable (model events are) may be folded into a newer
    one for the same group if the sender falls behind on that group.
    """
    alias = _alias()
    try:
        in_memory = isinstance(_layer(alias), InMemoryChannelLayer)
    except Exception as exc:  # noqa: BLE001 - misconfiguration is reported by checks, not by save()
        _health.failed(exc)
        return
    if in_memory:
        sender = _local_sender()
        if sender is None:
            return  # no consumer in this process: nobody the in-memory layer could reach
    else:
        sender = _background.get()
    sender.submit(alias, group, message)


async def asend(group: str, message: dict[str, Any]) -> bool:
    """Send ``message`` to ``group`` from async code; never raises. Returns whether it went out."""
    return await _guarded_send(_alias(), group, message)


def flush(timeout: float = 5.0) -> bool:
    """Wait until the sync sends made so far have gone out (tests, shutdown). False on timeout."""
    deadline = time.monotonic() + timeout
    senders = [s for s in (_background.current(),) if s is not None]
    with _local_lock:
        senders += list(_local_senders.values())
    ok = True
    for sender in senders:
        ok = sender.flush(max(0.0, deadline - time.monotonic())) and ok
    return ok


async def aflush() -> None:
    """Wait, from async code, until the sync sends made so far have gone out."""
    await asyncio.to_thread(flush)


async def group_add(group: str, channel_name: str) -> None:
    """Add a consumer's channel to a group (raises: the consumer answers the client)."""
    global _consumer_loop
    _consumer_loop = asyncio.get_running_loop()
    # Bounded like a send: a layer that hangs (redis-py retrying a dead connection with backoff)
    # must not leave the client waiting for an answer that never comes.
    async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
        await _layer().group_add(group, channel_name)


async def group_discard(group: str, channel_name: str) -> None:
    """Remove a consumer's channel from a group; logs instead of raising (it is cleanup)."""
    try:
        async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
            await _layer().group_discard(group, channel_name)
    except Exception:  # a dead layer must not stop the other groups' cleanup
        logger.warning("notify_kit: could not leave group %s", group, exc_info=True)


def _flush_at_exit() -> None:
    if _background.current() is None and not _local_senders:
        return  # nothing was ever sent from sync code in this process
    if not flush(float(settings.SHUTDOWN_TIMEOUT)):
        logger.warning("notify_kit: exiting with notifications still queued.")


# Daemon threads still run while atexit handlers do, so queued notifications go out on exit
# from a management command or Celery worker instead of vanishing with the process.
atexit.register(_flush_at_exit)
