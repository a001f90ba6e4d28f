"""The hook through which ``notify_kit.testing`` records what ``notifications.send()`` is given.

While a sink is registered, ``send()`` hands each message to the sinks *instead of* the channel
layer: tests that capture need no layer, no consumer and no server, and what they capture cannot
also reach sockets of another test. The sinks are process-wide, not per thread, because the
writes a test causes may commit in another thread (``sync_to_async``, a worker the test starts).

Standard library only, and nothing but a list: ``notifications`` imports it, so it imports nothing
of ours.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Called with ``(group, message)`` for every send while registered; a message is a plain dict or
#: a ``notifications.Coalescable`` (model events), exactly as ``send()`` received it.
Sink = Callable[[str, Any], None]

sinks: list[Sink] = []
_lock = threading.Lock()


def add(sink: Sink) -> None:
    """Start handing sends to ``sink`` (instead of the channel layer)."""
    with _lock:
        sinks.append(sink)


def remove(sink: Sink) -> None:
    """Stop handing sends to ``sink``."""
    with _lock:
        sinks.remove(sink)


def deliver(group: str, message: Any) -> None:
    """Hand one send to every registered sink; called by ``notifications.send()``."""
    for sink in list(sinks):  # a copy: a sink may be removed by another thread meanwhile
        sink(group, message)
