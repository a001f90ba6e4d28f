"""Group leaves that failed, retried with backoff in the background while the process lives.

A leave that fails (a pool with no connection free, Redis restarting) would otherwise leave the
membership in the layer until ``group_expiry`` (24 h on channels-redis): the server process keeps
receiving, and paying for, the events of an object its socket no longer follows. The design
choice: the consumer's disconnect or ``unsubscribe`` never waits for this (one bounded attempt,
then the leave is handed over), and the retries run on the sender thread's long-lived loop, the
one loop that outlives a socket. A leave is retried until it succeeds or the membership would
have expired anyway; what could not be cleaned is counted (``stats()["leave_failed"]``) and
logged. A later join of the same channel to the same group cancels the pending leave and waits
for an attempt in flight, so a retry can never remove a membership made after it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any

from . import delivery
from .conf import settings
from .health import counters

logger = logging.getLogger("notify_kit")

# First retry after RETRY_FIRST seconds, doubling up to RETRY_MAX between attempts.
RETRY_FIRST = 0.1
RETRY_MAX = 30.0
# Leaves waiting for a retry at most; past it a failed leave is given up at once (counted),
# so that a long outage with many sockets closing cannot grow this without bound.
MAX_WAITING = 10_000
# Without a group_expiry on the layer, give up after this long (channels-redis' default).
DEFAULT_GIVE_UP = 86_400.0

_Key = tuple[str, str, str]  # (layer alias, group, channel)


class _Waiting:
    """A leave waiting for its next attempt; ``attempt`` is set while one is on its way."""

    def __init__(self) -> None:
        self.attempt: concurrent.futures.Future[None] | None = None


_lock = threading.Lock()
_waiting: dict[_Key, _Waiting] = {}
# Strong references: the loop holds tasks weakly, and a collected task would never retry.
_tasks: set[concurrent.futures.Future[None]] = set()


def retry_later(alias: str, group: str, channel: str, layer: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Retry leaving ``group`` on ``loop`` until it succeeds or the membership has expired."""
    key = (alias, group, channel)
    with _lock:
        if key in _waiting:
            return  # already being retried
        full = len(_waiting) >= MAX_WAITING
        if not full:
            _waiting[key] = _Waiting()
    if full:
        _give_up(group, "too many leaves are waiting to be retried")
        return
    counters["leave_retried"] += 1
    give_up_after = float(getattr(layer, "group_expiry", DEFAULT_GIVE_UP))
    retry = _retry(key, give_up_after)
    try:
        future = asyncio.run_coroutine_threadsafe(retry, loop)
    except RuntimeError:  # the loop was closed under us (interpreter or test teardown)
        retry.close()
        with _lock:
            _waiting.pop(key, None)
        _give_up(group, "the loop to retry on is closed")
        return
    _tasks.add(future)
    future.add_done_callback(_tasks.discard)


async def cancel(alias: str, group: str, channel: str) -> None:
    """A join of ``channel`` to ``group``: forget its pending leave, wait out an attempt in flight."""
    with _lock:
        waiting = _waiting.pop((alias, group, channel), None)
    if waiting is not None and waiting.attempt is not None:
        # The attempt runs on another loop: wait for it (bounded like itself), so the join lands
        # after the leave and not before.
        try:
            await asyncio.wait_for(asyncio.wrap_future(waiting.attempt), float(settings.SEND_TIMEOUT) + 1)
        except Exception:  # noqa: BLE001 - its outcome does not matter, only that it is over
            pass


def waiting() -> int:
    """How many failed leaves are waiting for their next attempt."""
    with _lock:
        return len(_waiting)


async def _retry(key: _Key, give_up_after: float) -> None:
    alias, group, channel = key
    deadline = time.monotonic() + give_up_after
    delay, attempts = RETRY_FIRST, 0
    while True:
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        with _lock:
            waiting = _waiting.get(key)
            if waiting is None:
                return  # the channel joined the group again: leaving now would undo that
            attempt = waiting.attempt = concurrent.futures.Future()
        attempts += 1
        error: Exception | None = None
        try:
            async with asyncio.timeout(float(settings.SEND_TIMEOUT)):
                await delivery.get_layer(alias).group_discard(group, channel)
        except Exception as exc:  # noqa: BLE001 - retried below, or given up and counted
            error = exc
        finally:
            with _lock:
                if error is None or time.monotonic() >= deadline:
                    _waiting.pop(key, None)
                elif key in _waiting:
                    _waiting[key].attempt = None
            attempt.set_result(None)
        if error is None:
            logger.info("notify_kit: left group %s after %d retries.", group, attempts)
            return
        if time.monotonic() >= deadline:
            _give_up(group, f"still failing after {attempts} retries ({type(error).__name__}: {error})")
            return
        delay = min(RETRY_MAX, delay * 2)


def _give_up(group: str, reason: str) -> None:
    counters["leave_failed"] += 1
    logger.warning(
        "notify_kit: gave up leaving group %s: %s; the membership stays in the channel layer until it expires.",
        group,
        reason,
    )
