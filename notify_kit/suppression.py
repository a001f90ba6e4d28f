"""``suppress()``: writes made inside it send no notification.

The decision is taken at write time, in the writing thread: a save or delete made while
suppression is active records nothing at all, so nothing can be sent for it later, even if its
transaction commits after the block has exited. Deciding at send time instead would be wrong
both ways: the on-commit callback may run outside the block (a transaction opened around it) or
inside someone else's.

Access is never suppressed, only content: a suppressed save that changes one of the model's
``live_access_fields`` still sends its event for those fields (``changed`` lists only them, and
every subscriber is checked again before it gets it), and ``notify_access_changed()`` is not
suppressed at all. Otherwise a data migration that moves objects to another owner inside
``suppress()`` would leave the former owner's open pages subscribed, receiving every later update.

The state is a ``ContextVar`` holding a depth, not a global flag or a thread-local: it is per
thread *and* per asyncio task, so suppressing in one thread, request or task never silences the
writes of another, and blocks nest. asgiref's ``sync_to_async``/``async_to_sync`` carry the
context across, so ``with suppress(): await sync_to_async(obj.save)()`` is suppressed too; a plain
``threading.Thread`` started inside the block starts with a fresh context and is not.

Standard library only: ``from notify_kit import suppress`` must not touch the app registry.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# A depth, not a bool: an inner block's exit must not end an outer block's suppression.
_depth: ContextVar[int] = ContextVar("notify_kit_suppressed", default=0)


def active() -> bool:
    """Whether writes made here and now should send nothing."""
    return _depth.get() > 0


class suppress:  # lower case, as contextlib.suppress: it reads as a verb at the call site
    """Send no notification for the writes made inside this block (or call), in this thread or task only.

    Usable as ``with suppress():`` and as a decorator of sync and async functions. One instance
    may be entered again, nested or from several threads at once: it holds no state of its own.
    """

    def __enter__(self) -> suppress:
        # Increment and decrement rather than ContextVar.reset(token): no token to keep on the
        # instance, so one instance (a decorator's) can be in use in several threads at once.
        _depth.set(_depth.get() + 1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _depth.set(_depth.get() - 1)

    def __call__(self, func: F) -> F:
        """Decorate ``func`` so that every call of it runs suppressed."""
        if inspect.iscoroutinefunction(func):
            # contextlib.ContextDecorator would wrap only the creation of the coroutine, not its
            # run: the writes awaited inside would escape. Enter around the await instead.
            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with suppress():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with suppress():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]
