"""The sender: queues, batches and sends what sync callers hand over, on one event loop.

Sync callers (``save()`` in a view, the shell, a Celery task) hand a message to a ``Sender``
(``submit``, which never blocks and never raises) and return; which loop the sender runs on is
sender_thread.py's business. The design choice is one batch in flight at a time per sender: what
queues up while a batch is on its way goes out as the next batch, shared fairly between groups,
so messages to one group go out in order and a burst costs a few pipelined round trips instead of
several per message. The loop is woken only when it is idle, by the first submit, and starts at
once; while a batch is on its way nothing wakes it (the runner looks at the inbox again when the
batch is done), so a burst costs no wake-up per save and a lone save waits for no timer. An
object's updates fold into one (``Coalescable``) only once the sender is
really behind on it (``COALESCE_AFTER``). Deliveries a full receiver refused wait in a ``Backlog``
per layer and are retried with backoff, and ``flush()`` waits for them while receivers keep
taking them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

from . import delivery
from .backlog import Backlog, Coalescable
from .conf import settings
from .health import counters, health

# After a batch, while saves keep coming, the runner waits this long for the next batch to fill
# up before taking it, unless _GATHER_ENOUGH messages wait already. A batch costs two round trips
# and a task whatever its size, and the writer needs the GIL to produce: batches of one or two
# messages made the sender's per-batch costs the larger part of a save, and each of its loop's
# turns is a GIL hand-off the writer pays for (measured per save, writer and sender CPU together:
# 572 µs with no wait, 480 µs at 1 ms, 437 µs at 3 ms, 409 µs at 6 ms). The cost is latency
# within a stream of saves, at most this long. A lone save (the sender idle) goes out at once:
# the runner is started by its wake-up, not after a wait.
_GATHER = 0.005
_GATHER_ENOUGH = 64
# Most messages one pipelined batch carries: enough to amortise the round trips of a burst,
# few enough that one batch cannot hold the loop for long.
_MAX_BATCH = 256
# A full receiver is retried after _RETRY_FIRST seconds, doubling up to _RETRY_MAX while it
# stays full: retrying at once would only be refused again.
_RETRY_FIRST = 0.02
_RETRY_MAX = 1.0
# A flush stops waiting for full receivers that have taken nothing owed for this long.
_STALLED = 1.0


class Sender:
    """Sends queued messages on one event loop, in pipelined batches, in order per group."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Producers append here from any thread; the loop moves items to per-group queues.
        self._inbox: deque[tuple[str, str, Any]] = deque()
        # True from the submit that woke the loop until the runner finds the inbox empty: while
        # it is set, the loop will look at the inbox again without being woken.
        self._awake = False
        # Loop thread only from here on.
        self._queues: dict[tuple[str, str], deque[Any]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._backlogs: dict[str, Backlog] = {}
        self._retry_handle: asyncio.TimerHandle | None = None
        self._retry_round = 0
        self._flushing = 0  # flushes waiting on this sender: retry the backlog without backing off
        self._pending = 0
        self._lock = threading.Lock()

    def submit(self, alias: str, group: str, message: dict[str, Any] | Coalescable) -> None:
        """Queue a message (or a Coalescable) from any thread; returns at once."""
        self.submit_many(alias, [(group, message)])

    def submit_many(self, alias: str, items: list[tuple[str, Any]]) -> None:
        """Queue several (group, message) pairs at once, in order; returns at once."""
        limit = int(settings.MAX_PENDING)
        with self._lock:
            room = max(0, min(len(items), limit - self._pending))
            self._pending += room
            self._inbox.extend((alias, group, message) for group, message in items[:room])
            # Wake the loop only when it is idle. While a batch is on its way the runner looks
            # at the inbox again when it ends, so a burst of saves costs one wake-up (one write
            # to the loop's self-pipe, one GIL hand-off) instead of one per save, and an idle
            # sender starts at once: no timer, no wait for company.
            wake = room > 0 and not self._awake
            if wake:
                self._awake = True
        if room < len(items):
            health.dropped_overflow(len(items) - room)
        if wake:
            try:
                self.loop.call_soon_threadsafe(self._drain_inbox)
            except RuntimeError:  # the loop was closed under us (interpreter or test teardown)
                with self._lock:
                    self._pending -= len(self._inbox)
                    self._inbox.clear()
                    self._awake = False

    def _done(self, count: int = 1) -> None:
        with self._lock:
            self._pending -= count

    def _move_inbox(self) -> None:
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
        for alias, group, message in items:
            self._enqueue(alias, group, message)

    def _drain_inbox(self) -> None:
        self._move_inbox()
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
            counters["coalesced"] += 1
            self._done()
            return
        queue.append(message)

    def _start(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = self.loop.create_task(self._run())

    async def _run(self) -> None:
        # One batch in flight at a time: what queues up meanwhile goes out in the next batch,
        # so a burst costs a few pipelined round trips instead of several per message.
        finished = False
        try:
            while True:
                self._move_inbox()
                if not self._queues:
                    with self._lock:
                        if self._inbox:
                            continue
                        self._awake = False  # the next submit wakes the loop
                    finished = True
                    break
                batch = self._take_batch()
                by_alias: dict[str, list[tuple[str, Any]]] = {}
                for alias, group, item in batch:
                    by_alias.setdefault(alias, []).append((group, item))
                for alias, items in by_alias.items():
                    try:
                        await delivery.bounded(delivery.deliver(alias, items, self._backlog(alias)), len(items))
                    finally:
                        self._done(len(items))
                if self._inbox and len(self._inbox) < _GATHER_ENOUGH:
                    await asyncio.sleep(_GATHER)  # a stream of saves: let the next batch fill up
        finally:
            if not finished:
                # Left early (cancelled with the loop, or a bug): what is still waiting must not
                # wait for a wake-up that submit() does not send while _awake is set.
                with self._lock:
                    again = self._awake = bool(self._inbox) or bool(self._queues)
                if again and not self.loop.is_closed():
                    self.loop.call_soon(self._drain_inbox)
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

    def _backlog(self, alias: str) -> Backlog:
        backlog = self._backlogs.get(alias)
        if backlog is None:
            backlog = self._backlogs[alias] = Backlog()
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
                await delivery.bounded(delivery.deliver(alias, [], backlog), 0)
        # Then what was submitted meanwhile (no wake-up came for it: the runner was busy).
        await self._run()

    async def _idle(self) -> bool:
        # Items still in the inbox were submitted too: queue them now, or an exit flush could
        # return before they are even queued and they would die with the process.
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
