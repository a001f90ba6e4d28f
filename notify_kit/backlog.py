"""Coalescing, and the backlog of events owed to full receivers.

channels-redis keeps one queue per server process, bounded by ``capacity``, and refuses a group
message to a process whose queue is full. Its own ``group_send`` drops that message silently, and
because it is always the *newest* message that is refused, a burst can leave subscribers on a
stale state for good. The design choice here: notify_kit keeps the refused event instead, folds
later events of the same object into it (the ``Coalescable`` contract), and retries that process
alone until it has room, so the final state of an object always arrives and the frame counts what
was folded (``coalesced``). Nothing in this module does I/O: the sender decides when to retry, the
channels-redis fast path decides what was refused.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol, cast

from .health import counters, health

logger = logging.getLogger("notify_kit")


class Coalescable(Protocol):
    """A queued item that may absorb a newer one for the same group while both still wait."""

    def absorb(self, newer: Any) -> bool:
        """Fold ``newer`` into this item and return True, or return False to keep both."""

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message, built when the item is finally sent."""

    def copy(self) -> Coalescable:
        """An independent copy: folding into it must leave the original alone."""


def message_of(item: Any) -> dict[str, Any]:
    """The channel-layer message of a queued item (a plain message is its own)."""
    return cast("dict[str, Any]", item.to_message() if hasattr(item, "to_message") else item)


def folded(item: Any) -> int:
    """How many updates a message stands for (itself plus what it absorbed)."""
    return 1 + int(getattr(item, "coalesced", 0) or 0)


def buildable(items: list[Any], built: dict[int, dict[str, Any]], group: str) -> list[Any]:
    """The items whose message can be built (built once, into ``built``); a bad one is logged and skipped."""
    good = []
    for item in items:
        try:
            built[id(item)] = message_of(item)
        except Exception:  # one bad item must not stall its group
            logger.exception("notify_kit: could not build a notification for %s", group)
            continue
        good.append(item)
    return good


class Backlog:
    """Deliveries a full receiver refused, waiting for room: at most one per (group, receiver)."""

    def __init__(self) -> None:
        # group -> receiver key -> (the folded event still owed, when it was first refused)
        self.waiting: dict[str, dict[str, tuple[Any, float]]] = {}
        # When a receiver last took an owed event (time.monotonic()): a flush waits for the
        # backlog only while receivers keep taking from it.
        self.progress_at = time.monotonic()

    def __bool__(self) -> bool:
        return bool(self.waiting)

    def take(self, group: str) -> dict[str, tuple[Any, float]]:
        """Remove and return what every receiver of ``group`` is owed."""
        return self.waiting.pop(group, {})

    def keep(self, group: str, key: str, item: Any, since: float) -> None:
        """Owe ``item`` to receiver ``key`` of ``group``, refused first at ``since``."""
        self.waiting.setdefault(group, {})[key] = (item, since)


def owe(backlog: Backlog, group: str, key: str, unsent: list[Any], since: float) -> None:
    """Keep what a full receiver refused as one folded event, to retry when it has room."""
    held = None
    for item in unsent:
        if held is not None and held.absorb(item):
            counters["coalesced"] += 1
        elif hasattr(item, "absorb"):
            if held is not None:  # cannot fold (a delete came first): the older one is lost
                health.dropped_overflow(folded(held), "receiver full")
            held = item.copy()
        else:  # a plain message cannot be folded and is not retried
            health.dropped_overflow(1, "receiver full")
    if held is not None:
        counters["deferred"] += 1
        backlog.keep(group, key, held, since)
