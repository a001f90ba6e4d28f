"""The one module that talks to the channel layer.

Sync callers (``save()`` in a view, the shell, a Celery task) must not pay for a new event loop
and a new Redis connection per notification, which is what ``async_to_sync(group_send)`` costs.
They hand the message to a background sender instead: one daemon thread running one long-lived
event loop, which keeps the layer's connection pool warm and sends in order per group. The
hand-off never blocks and never raises, so a notification can never fail or slow a user's write;
failures are logged once per outage on the ``notify_kit`` logger.

What queues up while a batch is on its way goes out as the next batch. On channels-redis a batch
costs two pipelined round trips whatever its size (read the groups, then one script per group),
where ``group_send`` costs three per message; and a server process whose queue is full is not
skipped silently, as ``group_send`` does, but owed the object's latest event until it has room
(see ``_Backlog``): the final state of an object always reaches every subscriber.

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
from collections.abc import Coroutine
from typing import Any, Protocol

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from . import capture
from .conf import settings

logger = logging.getLogger("notify_kit")

#: Channel-layer message type of a notification; the consumer's handler is ``notify_event``.
EVENT_TYPE = "notify.event"
#: Message type asking every subscriber of a group to check its access again (``notify_recheck``).
RECHECK_TYPE = "notify.recheck"

_GROUP_PREFIX = "notify_kit."
_MAX_GROUP_LENGTH = 99  # Channels rejects group names of 100 characters or more.
# While the layer is failing, one send per interval probes it; the rest are dropped at once
# rather than each waiting out a connection timeout and piling up behind it.
_PROBE_INTERVAL = 1.0
_OVERFLOW_LOG_INTERVAL = 10.0
# A woken sender waits this long before draining what sync callers queued, so that a burst of
# saves costs one wake-up of its thread (and one GIL hand-off) instead of one per save.
_BATCH_DELAY = 0.001
# Most messages one pipelined batch carries: enough to amortise the round trips of a burst,
# few enough that one batch cannot hold the loop for long.
_MAX_BATCH = 256
# A full receiver is retried after _RETRY_FIRST seconds, doubling up to _RETRY_MAX while it
# stays full: retrying at once would only be refused again.
_RETRY_FIRST = 0.02
_RETRY_MAX = 1.0
# How long past SEND_TIMEOUT a batch may still take before the sender stops waiting for it.
_ABANDON_GRACE = 1.0
# A flush stops waiting for full receivers that have taken nothing owed for this long.
_STALLED = 1.0


class Coalescable(Protocol):
    """A queued item that may absorb a newer one for the same group while both still wait."""

    def absorb(self, newer: Any) -> bool:
        """Fold ``newer`` into this item and return True, or return False to keep both."""

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message, built when the item is finally sent."""

    def copy(self) -> Coalescable:
        """An independent copy: folding into it must leave the original alone."""


# Counters since the process started (read with stats()); written on the sender loops only.
_stats = {"sent": 0, "failed": 0, "coalesced": 0, "deferred": 0}


def stats() -> dict[str, int]:
    """Counters of sync sends since the process started.

    ``sent``/``failed``: messages handed to the layer or lost to a layer error; ``coalesced``:
    updates folded into a later one of the same object; ``deferred``: deliveries a full
    receiver refused and that were kept to retry; ``dropped``: lost for good (layer down,
    MAX_PENDING exceeded, a receiver full for longer than the layer's expiry).
    """
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
        self._overflow_unlogged: dict[str, int] = {}
        self._overflow_logged_at: dict[str, float] = {}

    def should_attempt(self, count: int = 1) -> bool:
        """While failing, allow one probing send per interval; drop the others at once."""
        with self._lock:
            if not self.failing or time.monotonic() - self._last_attempt >= _PROBE_INTERVAL:
                self._last_attempt = time.monotonic()
                return True
            self.dropped += count
            return False

    def failed(self, exc: BaseException, count: int = 1) -> None:
        with self._lock:
            self.dropped += count
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

    def dropped_overflow(self, count: int, reason: str = "more than MAX_PENDING were queued") -> None:
        # Sustained overflow would otherwise log once per dropped notification: log at most once
        # per _OVERFLOW_LOG_INTERVAL and reason, with how many were dropped since the last line.
        with self._lock:
            self.dropped += count
            self._overflow_unlogged[reason] = self._overflow_unlogged.get(reason, 0) + count
            now = time.monotonic()
            if now - self._overflow_logged_at.get(reason, float("-inf")) < _OVERFLOW_LOG_INTERVAL:
                return
            unlogged = self._overflow_unlogged.pop(reason)
            self._overflow_logged_at[reason] = now
        logger.warning("notify_kit: %d notifications dropped: %s.", unlogged, reason)


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


def _message(item: Any) -> dict[str, Any]:
    return item.to_message() if hasattr(item, "to_message") else item


def _folded(item: Any) -> int:
    """How many updates a message stands for (itself plus what it absorbed)."""
    return 1 + int(getattr(item, "coalesced", 0) or 0)


class _Backlog:
    """Deliveries a full receiver refused, waiting for room: at most one per (group, receiver).

    channels-redis keeps one queue per server process, bounded by ``capacity``, and refuses a
    group message to a process whose queue is full. Its own ``group_send`` drops that message
    silently, and because it is always the *newest* message that is refused, a burst can leave
    subscribers on a stale state for good. notify_kit keeps the refused event instead, folds
    later events of the same object into it, and retries that process alone until it has room:
    the final state always arrives, and the frame counts what was folded (``coalesced``).
    """

    def __init__(self) -> None:
        # group -> receiver key -> (the folded event still owed, when it was first refused)
        self.waiting: dict[str, dict[str, tuple[Any, float]]] = {}
        # When a receiver last took an owed event (time.monotonic()): a flush waits for the
        # backlog only while receivers keep taking from it.
        self.progress_at = time.monotonic()

    def __bool__(self) -> bool:
        return bool(self.waiting)

    def take(self, group: str) -> dict[str, tuple[Any, float]]:
        return self.waiting.pop(group, {})

    def keep(self, group: str, key: str, item: Any, since: float) -> None:
        self.waiting.setdefault(group, {})[key] = (item, since)


# channels-redis' group_send Lua, changed in two ways: a process queue takes this batch's
# messages for it in order and stops at the first it has no room for (so nothing newer
# overtakes a refused message), and it reports which one that was instead of dropping it.
# KEYS: receiver keys of one group on one Redis host. ARGV: first score, expiry, then per key:
# capacity, n, its n messages. Returns per key the 1-based index of the first refused, or 0.
_GROUP_SEND_LUA = """
local score, expiry = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = 3
local refused = {}
for i = 1, #KEYS do
    local capacity, n = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(score) - expiry)
    local first = 0
    for j = 1, n do
        if redis.call('ZCARD', KEYS[i]) < capacity then
            redis.call('ZADD', KEYS[i], score + j * 0.000001, ARGV[at + 1 + j])
        else
            first = j
            break
        end
    end
    if first ~= 1 then
        redis.call('EXPIRE', KEYS[i], expiry)
    end
    refused[i] = first
    at = at + 2 + n
end
return refused
"""

_redis_layer_class: Any = None
_last_score = 0.0


def _is_plain_channels_redis(layer: Any) -> bool:
    """The channels-redis core layer with its own group_send (not a subclass that changed it)."""
    global _redis_layer_class
    if _redis_layer_class is None:
        try:
            from channels_redis.core import RedisChannelLayer
        except ImportError:
            _redis_layer_class = False
        else:
            _redis_layer_class = RedisChannelLayer
    return bool(_redis_layer_class) and type(layer).group_send is _redis_layer_class.group_send


# The fast path reads channels-redis' layer the way its own group_send does: _group_key(),
# connection(), consistent_hash(), non_local_name(), get_capacity(), serialize(), prefix, expiry
# and group_expiry. The dependency is pinned below channels-redis 5, and the Redis-layer tests
# (delivery, order, a full receiver) run through this path on every supported version.


async def _redis_members(layer: Any, groups: list[str], now: float) -> dict[str, list[str]]:
    """Every group's channels in one pipelined round trip per Redis host, as group_send reads them."""
    by_host: dict[int, list[str]] = {}
    for group in groups:
        by_host.setdefault(layer.consistent_hash(group), []).append(group)
    members: dict[str, list[str]] = {}
    for index, names in by_host.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for group in names:
            key = layer._group_key(group)
            pipe.zremrangebyscore(key, min=0, max=int(now) - layer.group_expiry)
            pipe.zrange(key, 0, -1)
        results = await pipe.execute()
        for group, channels in zip(names, results[1::2], strict=True):
            members[group] = [channel.decode("utf8") for channel in channels]
    return members


async def _redis_deliver(layer: Any, items: list[tuple[str, Any]], backlog: _Backlog) -> None:
    """Send a batch (and the backlog) through channels-redis in two pipelined round trips."""
    global _last_score
    now = time.time()
    sequences: dict[str, list[Any]] = {}
    for group, item in items:
        sequences.setdefault(group, []).append(item)
    if not items:  # a retry round: every group still owed to a full receiver
        for group in list(backlog.waiting):
            sequences.setdefault(group, [])
    members = await _redis_members(layer, list(sequences), now)

    # Scores keep each receiver's messages in send order across batches; within a batch the
    # script adds j microseconds to the j-th message of a key.
    score = max(now, _last_score + 0.000001)
    longest = 0
    # host -> [(group, keys, script args, per key [owed since, starts with an owed event, *sequence])]
    calls: dict[int, list[tuple[str, list[str], list[Any], list[list[Any]]]]] = {}
    built: dict[int, dict[str, Any]] = {}  # one to_message() per item, shared by its receivers
    for group, new in sequences.items():
        new = _buildable(new, built, group)
        receivers: dict[str, list[str]] = {}
        for channel in members[group]:
            receivers.setdefault(layer.prefix + layer.non_local_name(channel), []).append(channel)
        owed = backlog.take(group)
        by_host: dict[int, tuple[list[str], list[Any], list[list[Any]]]] = {}
        for key, channels in receivers.items():
            sequence: list[Any] = list(new)
            since, owed_first = now, False
            if key in owed:
                held, since = owed[key]
                if now - since > layer.expiry:
                    # channels-redis would expire it unread by now anyway: give up, counted.
                    _health.dropped_overflow(_folded(held), "a receiver stayed full")
                    since = now
                else:
                    rest: list[Any] = []
                    for item in new:  # fold in order; once one cannot fold, the rest follow it
                        if not rest and held.absorb(item):
                            _stats["coalesced"] += 1
                            continue
                        rest.append(item)
                    sequence, owed_first = [held, *rest], True
                    built[id(held)] = held.to_message()
            if not sequence:
                continue
            host = layer.consistent_hash(layer.non_local_name(channels[0]))
            keys, args, sent = by_host.setdefault(host, ([], [], []))
            keys.append(key)
            args += [layer.get_capacity(channels[0]), len(sequence)]
            args += [layer.serialize({**built[id(item)], "__asgi_channel__": channels}) for item in sequence]
            sent.append([since, owed_first, *sequence])
            longest = max(longest, len(sequence))
        for host, (keys, args, sent) in by_host.items():
            calls.setdefault(host, []).append((group, keys, args, sent))
    _last_score = score + longest * 0.000001

    for index, host_calls in calls.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for _group, keys, args, _sent in host_calls:
            pipe.eval(_GROUP_SEND_LUA, len(keys), *keys, repr(score), layer.expiry, *args)
        results = await pipe.execute()
        for (group, keys, _args, sent), refused in zip(host_calls, results, strict=True):
            for key, first, (since, owed_first, *sequence) in zip(keys, refused, sent, strict=True):
                if owed_first and first != 1:
                    backlog.progress_at = time.monotonic()
                if first:
                    _owe(backlog, group, key, sequence[first - 1 :], since)


def _buildable(items: list[Any], built: dict[int, dict[str, Any]], group: str) -> list[Any]:
    """The items whose message can be built (built once, into ``built``); a bad one is logged and skipped."""
    good = []
    for item in items:
        try:
            built[id(item)] = _message(item)
        except Exception:  # one bad item must not stall its group
            logger.exception("notify_kit: could not build a notification for %s", group)
            continue
        good.append(item)
    return good


def _owe(backlog: _Backlog, group: str, key: str, unsent: list[Any], since: float) -> None:
    """Keep what a full receiver refused as one folded event, to retry when it has room."""
    held = None
    for item in unsent:
        if held is not None and held.absorb(item):
            _stats["coalesced"] += 1
        elif hasattr(item, "absorb"):
            if held is not None:  # cannot fold (a delete came first): the older one is lost
                _health.dropped_overflow(_folded(held), "receiver full")
            held = item.copy()
        else:  # a plain message cannot be folded and is not retried
            _health.dropped_overflow(1, "receiver full")
    if held is not None:
        _stats["deferred"] += 1
        backlog.keep(group, key, held, since)


async def _send_each(layer: Any, items: list[tuple[str, Any]]) -> None:
    """Any other layer: its own group_send, in order per group, groups side by side."""
    chains: dict[str, list[Any]] = {}
    for group, item in items:
        chains.setdefault(group, []).append(item)

    async def chain(group: str, messages: list[Any]) -> None:
        built: dict[int, dict[str, Any]] = {}
        for item in _buildable(messages, built, group):
            await layer.group_send(group, built[id(item)])

    await asyncio.gather(*(chain(group, messages) for group, messages in chains.items()))


async def _deliver(alias: str, items: list[tuple[str, Any]], backlog: _Backlog) -> None:
    """Send one batch for one layer alias; log instead of raising (never fails a write)."""
    if not _health.should_attempt(len(items)):
        _stats["failed"] += len(items)
        return
    try:
        layer = _layer(alias)
        async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
            if _is_plain_channels_redis(layer):
                await _redis_deliver(layer, items, backlog)
            else:
                await _send_each(layer, items)
    except Exception as exc:  # noqa: BLE001 - a notification must never fail its caller
        _health.failed(exc, len(items))
        _stats["failed"] += len(items)
        return
    _health.succeeded()
    _stats["sent"] += len(items)


async def _bounded(delivery: Coroutine[Any, Any, None], count: int) -> None:
    """Run one batch's delivery, but never let it hold the sender for longer than it may take.

    ``_deliver`` bounds itself with ``asyncio.timeout``, which works by cancelling; a client
    library that swallows a cancellation (redis-py has had such bugs) would otherwise park the
    one sender task for good, and every later notification of the process behind it. Past the
    bound the batch is abandoned (logged, counted) and the sender moves on.
    """
    task = asyncio.ensure_future(delivery)
    try:
        done, _ = await asyncio.wait([task], timeout=float(settings.SEND_TIMEOUT) + _ABANDON_GRACE)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        _stats["failed"] += count
        _health.dropped_overflow(count, "a send to the channel layer did not return and was abandoned")
        return
    if not task.cancelled() and task.exception() is not None:  # a bug, not a layer failure
        logger.error("notify_kit: could not send %d notifications", count, exc_info=task.exception())


class _Sender:
    """Sends queued messages on one event loop, in pipelined batches, in order per group."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Producers append here from any thread; the loop moves items to per-group queues.
        self._inbox: deque[tuple[str, str, Any]] = deque()
        self._wake_scheduled = False
        # Loop thread only from here on.
        self._queues: dict[tuple[str, str], deque[Any]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._backlogs: dict[str, _Backlog] = {}
        self._retry_handle: asyncio.TimerHandle | None = None
        self._retry_round = 0
        self._flushing = 0  # flushes waiting on this sender: retry the backlog without backing off
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

    def _done(self, count: int = 1) -> None:
        with self._lock:
            self._pending -= count

    def _drain_inbox(self) -> None:
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._wake_scheduled = False
        for alias, group, message in items:
            self._enqueue(alias, group, message)
        self._start()

    def _enqueue(self, alias: str, group: str, message: Any) -> None:
        key = (alias, group)
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque([message])
            return
        # Only when the sender is really behind on this group (COALESCE_AFTER messages already
        # waiting) may a Coalescable fold the newer one into the last waiting one: one message
        # with the latest state beats a growing backlog, and below that every update goes out.
        if len(queue) >= int(settings.COALESCE_AFTER) and hasattr(queue[-1], "absorb") and queue[-1].absorb(message):
            _stats["coalesced"] += 1
            self._done()
            return
        queue.append(message)

    def _start(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = self.loop.create_task(self._run())

    async def _run(self) -> None:
        # One batch in flight at a time: what queues up meanwhile goes out in the next batch,
        # so a burst costs a few pipelined round trips instead of several per message.
        while self._queues:
            batch = self._take_batch()
            by_alias: dict[str, list[tuple[str, Any]]] = {}
            for alias, group, item in batch:
                by_alias.setdefault(alias, []).append((group, item))
            for alias, items in by_alias.items():
                try:
                    await _bounded(_deliver(alias, items, self._backlog(alias)), len(items))
                finally:
                    self._done(len(items))
        self._schedule_retry()

    def _take_batch(self) -> list[tuple[str, str, Any]]:
        """Up to _MAX_BATCH items, shared fairly between groups, each group's in order."""
        share = max(1, _MAX_BATCH // len(self._queues))
        batch: list[tuple[str, str, Any]] = []
        for key in list(self._queues):
            queue = self._queues.pop(key)
            for _ in range(min(share, len(queue))):
                batch.append((key[0], key[1], queue.popleft()))
            if queue:  # the rest goes to the back: one busy group cannot starve the others
                self._queues[key] = queue
        return batch

    def _backlog(self, alias: str) -> _Backlog:
        backlog = self._backlogs.get(alias)
        if backlog is None:
            backlog = self._backlogs[alias] = _Backlog()
        return backlog

    def _schedule_retry(self) -> None:
        if not any(self._backlogs.values()):
            self._retry_round = 0
            return
        # Back off while the receivers stay full: retrying at once would only be refused again.
        # Not while a flush waits (an exiting process): then every _RETRY_FIRST counts.
        delay = _RETRY_FIRST if self._flushing else min(_RETRY_MAX, _RETRY_FIRST * 2**self._retry_round)
        if self._retry_handle is not None:
            if self._retry_handle.when() <= self.loop.time() + delay:
                return
            self._retry_handle.cancel()
        self._retry_round += 1
        self._retry_handle = self.loop.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._retry_handle = None
        if self._runner is not None and not self._runner.done():
            return  # the running batch schedules the next retry when it ends
        self._runner = self.loop.create_task(self._resend())

    async def _resend(self) -> None:
        for alias, backlog in list(self._backlogs.items()):
            if backlog:
                await _bounded(_deliver(alias, [], backlog), 0)
        if self._queues:
            await self._run()
        else:
            self._schedule_retry()

    async def _idle(self) -> bool:
        # Items still waiting out _BATCH_DELAY were submitted too: drain them now, or an exit
        # flush would return before they are even queued and they would die with the process.
        self._drain_inbox()
        await self._runner_done()
        # Then what full receivers are still owed (a writer that exits right after a burst would
        # take the final states with it), as long as they keep taking some of it: a server
        # process that takes nothing for _STALLED seconds is stuck or gone.
        started = time.monotonic()
        self._flushing += 1
        try:
            while any(self._backlogs.values()):
                last = max([started, *(backlog.progress_at for backlog in self._backlogs.values())])
                if time.monotonic() - last > _STALLED:
                    return False
                self._schedule_retry()
                await asyncio.sleep(_RETRY_FIRST)
                await self._runner_done()
        finally:
            self._flushing -= 1
        return True

    async def _runner_done(self) -> None:
        while self._runner is not None and not self._runner.done():
            await asyncio.wait([self._runner])

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
            return future.result(timeout)
        except TimeoutError:
            return False


class _SenderThread:
    """The long-lived loop for sync callers: started on first use, again after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sender: _Sender | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def _ours(self) -> bool:
        """A sender exists and was started by this process (not inherited through a fork)."""
        return self._sender is not None and self._pid == os.getpid()

    def _usable(self) -> bool:
        return self._ours() and self._thread is not None and self._thread.is_alive()

    def get(self) -> _Sender:
        if self._usable():
            return self._sender  # type: ignore[return-value]  # _usable() checked it
        with self._lock:
            if self._usable():
                return self._sender  # type: ignore[return-value]
            if self._ours():
                # Its loop died (something raised through run_forever): what it held is lost.
                logger.error("notify_kit: the sender thread had stopped; starting a new one.")
            # A forked child inherits the parent's loop object but not its thread: start anew.
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="notify_kit-sender", daemon=True)
            self._thread.start()
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
    if capture.sinks:  # notify_kit.testing is recording: recorded instead of sent
        return capture.deliver(group, message)
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
        # The loop of a consumer that has gone (a finished test, a stopped server) runs nothing
        # more: what it still held cannot go out, and must not make every later flush fail.
        for stale in [known for known in _local_senders if known.is_closed()]:
            del _local_senders[stale]
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
