"""Which loop a sync send runs on: the background sender thread, or the consumers' own loop.

The design choice: one daemon thread running one long-lived event loop per process
(``_SenderThread``), started on first use and again after a fork or if its loop died, keeps the
layer's connection pool warm; a new loop and connection per notification (what
``async_to_sync(group_send)`` costs) would make every save pay for it.

The in-memory layer is the one exception: its queues belong to the event loop its consumers run
on and are not thread-safe, so sync sends for it go to a ``Sender`` on that loop instead
(``local_sender``; it is a single-process layer for development and tests anyway).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from .sender import Sender

logger = logging.getLogger("notify_kit")


class _SenderThread:
    """The long-lived loop for sync callers: started on first use, again after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sender: Sender | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def _ours(self) -> bool:
        """A sender exists and was started by this process (not inherited through a fork)."""
        return self._sender is not None and self._pid == os.getpid()

    def _usable(self) -> bool:
        return self._ours() and self._thread is not None and self._thread.is_alive()

    def get(self) -> Sender:
        """This process's background sender, started (again) if it is not running."""
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
            self._sender, self._pid = Sender(loop), os.getpid()
            return self._sender

    def current(self) -> Sender | None:
        """The background sender if this process started one, without starting it."""
        return self._sender if self._pid == os.getpid() else None


_background = _SenderThread()
# Loop that consumers of this process run on, recorded when one joins a group. Sync sends on
# the in-memory layer must run there; keyed by loop because each test may bring its own.
_local_senders: dict[asyncio.AbstractEventLoop, Sender] = {}
_local_lock = threading.Lock()
_consumer_loop: asyncio.AbstractEventLoop | None = None


def local_sender() -> Sender | None:
    """The sender on the consumers' loop, for the in-memory layer; None without a consumer."""
    loop = _consumer_loop
    if loop is None or loop.is_closed():
        return None
    with _local_lock:
        _forget_closed_loops()
        sender = _local_senders.get(loop)
        if sender is None:
            sender = _local_senders[loop] = Sender(loop)
        return sender


def record_consumer_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Remember the loop this process's consumers run on (for sync sends on the in-memory layer)."""
    global _consumer_loop
    _consumer_loop = loop


def senders() -> list[Sender]:
    """Every sender of this process that may still hold something to send."""
    found = [s for s in (_background.current(),) if s is not None]
    with _local_lock:
        _forget_closed_loops()
        found += list(_local_senders.values())
    return found


def _forget_closed_loops() -> None:
    # The loop of a consumer that has gone (a finished test, a stopped server) runs nothing
    # more: what it still held cannot go out, and must not make every later flush fail.
    for stale in [known for known in _local_senders if known.is_closed()]:
        del _local_senders[stale]


def ever_used() -> bool:
    """Whether anything was ever sent from sync code in this process."""
    return _background.current() is not None or bool(_local_senders)


def background() -> Sender:
    """This process's background sender (started on first use)."""
    return _background.get()
