"""The sender: queues, batches and sends what sync callers hand over, on one event loop.

Sync callers (``save()`` in a view, the shell, a Celery task) hand a message to a ``Sender``
(``submit``, which never blocks and never raises) and return; which loop the sender runs on is
sender_thread.py's business. The design choice is one batch in flight at a time per sender: what
queues up while a batch is on its way goes out as the next batch, shared fairly between groups,
so messages to one group go out in order and a burst costs a few pipelined round trips instead of
several per message. An object's updates fold into one (``Coalescable``) only once the sender is
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
# A flush stops waiting for full receivers that have taken nothing owed for this long.
_STALLED = 1.0


class Sender:
    """Sends queued messages on one event loop, in pipelined batches, in order per group."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Producers append here from any thread; the loop moves items to per-group queues.
        self._inbox: deque[tuple[str, str, Any]] = deque()
        self._wake_scheduled = False
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
            health.dropped_overflow(1)
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
        while self._queues:
            batch = self._take_batch()
            by_alias: dict[str, list[tuple[str, Any]]] = {}
            for alias, group, item in batch:
                by_alias.setdefault(alias, []).append((group, item))
            for alias, items in by_alias.items():
                try:
                    await delivery.bounded(delivery.deliver(alias, items, self._backlog(alias)), len(items))
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
