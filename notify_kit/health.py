"""How the send path is doing: the outage log and the counters behind ``notifications.stats()``.

A failing channel layer is logged once per outage, not once per message, and its recovery is
logged with how much was lost meanwhile; while it fails, one send per ``PROBE_INTERVAL`` probes it
and the others are dropped at once instead of each waiting out a connection timeout. The design
choice is that health is process-wide state with no I/O of its own: every sender and every loop
reports into the one ``health`` object and the one ``counters`` dict, so ``stats()`` is a cheap read
and a test can reset it between cases.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("notify_kit")

# While the layer is failing, one send per interval probes it; the rest are dropped at once
# rather than each waiting out a connection timeout and piling up behind it.
PROBE_INTERVAL = 1.0
OVERFLOW_LOG_INTERVAL = 10.0

# Counters since the process started (read with stats()). The send counters are written on the
# sender loops only; the leave counters on the loop that retries leaves (see leaves.py).
counters = {"sent": 0, "failed": 0, "coalesced": 0, "deferred": 0, "leave_retried": 0, "leave_failed": 0}


class LayerHealth:
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
            if not self.failing or time.monotonic() - self._last_attempt >= PROBE_INTERVAL:
                self._last_attempt = time.monotonic()
                return True
            self.dropped += count
            return False

    def failed(self, exc: BaseException, count: int = 1) -> None:
        """Count ``count`` messages lost to ``exc``; log the first failure of an outage."""
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
        """A send went out: end the outage, if there was one, and log what it cost."""
        if not self.failing:  # the hot path: no lock when all is well
            return
        with self._lock:
            dropped, self.dropped, self.failing = self.dropped, 0, False
        logger.warning("notify_kit: the channel layer is back; %d notifications were dropped.", dropped)

    def dropped_overflow(self, count: int, reason: str = "more than MAX_PENDING were queued") -> None:
        """Count ``count`` messages lost for ``reason``; log at most once per interval and reason."""
        # Sustained overflow would otherwise log once per dropped notification: log at most once
        # per OVERFLOW_LOG_INTERVAL and reason, with how many were dropped since the last line.
        with self._lock:
            self.dropped += count
            self._overflow_unlogged[reason] = self._overflow_unlogged.get(reason, 0) + count
            now = time.monotonic()
            if now - self._overflow_logged_at.get(reason, float("-inf")) < OVERFLOW_LOG_INTERVAL:
                return
            unlogged = self._overflow_unlogged.pop(reason)
            self._overflow_logged_at[reason] = now
        logger.warning("notify_kit: %d notifications dropped: %s.", unlogged, reason)


health = LayerHealth()


def stats() -> dict[str, int]:
    """Counters since the process started; documented on ``notifications.stats``."""
    return {**counters, "dropped": health.dropped}
