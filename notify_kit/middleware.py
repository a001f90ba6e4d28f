"""SocketIdMiddleware: the writes of a request do not echo back to the socket that made them.

The browser client learns its socket's opaque id from the server's ``welcome`` frame and sends
it with its API calls as ``X-Notify-Socket-ID`` (Laravel's ``X-Socket-ID``/``toOthers()``). This
middleware notes the id for the request in a ``ContextVar``; notify_kit.changes reads it when a
change is recorded, on the writer's thread, and the event carries it as its ``origin``; the one
consumer whose socket has that id skips the event (or marks it, if its client asked).

A ContextVar rather than a thread-local or a request attribute: the model layer never sees the
request, and a ContextVar follows the request wherever Django runs it -- a sync view on the
request thread, an async view on the event loop, and the threads of ``sync_to_async`` and
``database_sync_to_async`` (asgiref copies the context into them). It is reset after the
response, so nothing leaks into the next request a worker serves.

The id only ever *withholds* one copy of a notification from one socket: a forged or stale id
makes its holder miss their own echo at worst, and shows nobody anything. Ids are random and
shown only to their own socket, so one user cannot silence another's socket. Values that are
not short URL-safe tokens are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

#: The request header the browser client sends (``client.headers()``).
HEADER = "X-Notify-Socket-ID"
# What the consumer hands out (secrets.token_urlsafe) is 22 of these; anything else is not ours.
_VALID = re.compile(r"[A-Za-z0-9_-]{16,64}")

_origin: ContextVar[str | None] = ContextVar("notify_kit_origin_socket", default=None)


def current_socket_id() -> str | None:
    """The socket id whose writes are being made in this context, or None."""
    return _origin.get()


def clean_socket_id(value: Any) -> str | None:
    """``value`` if it looks like a socket id the consumer hands out, else None."""
    if isinstance(value, str) and _VALID.fullmatch(value):
        return value
    return None


@contextmanager
def origin_socket(socket_id: str | None) -> Iterator[None]:
    """Attribute the writes made inside the block to ``socket_id`` (what the middleware does per request)."""
    token = _origin.set(clean_socket_id(socket_id))
    try:
        yield
    finally:
        _origin.reset(token)


class SocketIdMiddleware:
    """Notes the request's ``X-Notify-Socket-ID`` so its writes skip that socket; sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django checks the instance, not __call__, to tell an async middleware.
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Run the rest of the stack with the request's socket id noted."""
        if self.async_mode:
            return self.__acall__(request)
        with origin_socket(request.headers.get(HEADER)):
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        # Set and reset in this coroutine's own context: an async view's writes happen in it, or
        # in sync_to_async threads that run in a copy of it.
        with origin_socket(request.headers.get(HEADER)):
            response: Awaitable[Any] = self.get_response(request)
            return await response
