"""NotificationConsumer: one WebSocket consumer for every live model.

A client subscribes with ``{"model": "app.model", "id": "<hashid>"}``; the consumer validates the
frame with a DRF serializer, resolves the model and HashID, loads the row and asks
``can_subscribe(user)`` on the database thread, and only then joins the object's group.

Three choices shape it:

* Every answer is one frame of a documented shape, and nothing a client sends closes the socket:
  binary frames, oversized or malformed JSON (even nesting deep enough for ``RecursionError``)
  and unexpected errors all become ``error`` frames.
* ``not_found`` is one answer for an unknown model, a model that is not live, a malformed or
  foreign HashID, a missing row and a forbidden one, with the same text, and no sooner than
  ``NOT_FOUND_MIN_SECONDS``: neither its content nor its timing tells whether an id exists.
* A client that connects with ``?echo=skip`` (or ``mark``) is sent a ``welcome`` frame with its
  socket's opaque, random id, which it sends with its API calls (notify_kit.middleware). Events
  of those writes name the socket as their ``origin``; this socket alone skips them, after its
  access check (a write that revokes the writer's own access still revokes), or marks them
  ``"echo": true``. Without the parameter nothing changes: no frame, no id, nothing skipped.
* Forwarding a notification is the hot path and touches no database, so it skips the
  ``aclose_old_connections()`` hop that Channels makes on its one shared database thread before
  every handler; every ORM call here goes through ``database_sync_to_async``, which closes stale
  connections itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import access, frames, notifications, rows, subscriptions
from .conf import settings
from .frames import NOT_FOUND_DETAIL
from .serializers import SubscriptionRequestSerializer
from .subscribing import LayerUnavailable, SubscribingMixin, live_models

logger = logging.getLogger("notify_kit")

__all__ = ["NOT_FOUND_DETAIL", "NotificationConsumer"]
#: WebSocket close code when the channel layer is unreachable: "try again later".
LAYER_UNAVAILABLE_CLOSE_CODE = 1013
#: What ``?echo=`` may ask for: skip this socket's own echoes, or send them marked ``"echo": true``.
ECHO_MODES = frozenset({"skip", "mark"})
#: The same, where the server refuses to send 1013: daphne (through autobahn) lets an application
#: close only with 1000 or 3000-4999, and raises on anything else (django/daphne#374).
LAYER_UNAVAILABLE_FALLBACK_CLOSE_CODE = 4013
# Handlers that need no database connection cleanup first (see the module docstring).
_NO_CLEANUP = frozenset(
    {"websocket.receive", notifications.EVENT_TYPE, notifications.RECHECK_TYPE, notifications.BATCH_TYPE}
)


class NotificationConsumer(SubscribingMixin, AsyncJsonWebsocketConsumer):
    """Subscribes a WebSocket to live objects its user may see, and forwards their notifications."""

    request_serializer_class = SubscriptionRequestSerializer
    _closed_unavailable = False  # set once the socket was closed because the layer failed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The ignore is a stub gap: types-channels declares channel_layer_alias a ClassVar, but
        # AsyncConsumer.__call__ reads it from the instance, so a per-instance value is honoured.
        self.channel_layer_alias = settings.CHANNEL_LAYER  # type: ignore[misc]
        # This socket's subscriptions. This table, not the layer's group membership, decides what
        # is forwarded: a group leave that failed (and is being retried) must not let anything
        # through after `unsubscribed`/`revoked`.
        self._table = subscriptions.Table()
        # Set in connect() when the client asked (?echo=skip|mark); None: this socket has no id.
        self.socket_id: str | None = None
        self.echo_mode: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer; if the channel layer fails under it, close with 1013 instead of crashing."""
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:  # e.g. Redis went away under the receive loop
            # Without the layer this socket can receive nothing: say so with 1013 (try again
            # later) so the client reconnects with backoff and subscribes again, rather than
            # letting the server log a crash and close with 1011.
            logger.warning("notify_kit: closing a socket, the channel layer failed: %s: %s", type(exc).__name__, exc)
            if not await self._close_unavailable():
                # Returning now would leave the socket open: daphne closes a socket only when its
                # application raises (1011), never when it returns. Better 1011 than a silent socket.
                raise
            # The server will not dispatch websocket.disconnect to a consumer that has returned:
            # leave the groups here, or the layer keeps sending to a channel nobody reads.
            try:
                await self.disconnect(LAYER_UNAVAILABLE_CLOSE_CODE)
            except Exception:  # cleanup of a layer that just failed
                logger.warning("notify_kit: could not leave the groups of a closed socket", exc_info=True)

    async def _close_unavailable(self) -> bool:
        """Close with 1013, or 4013 where the server refuses 1013; whether a close was accepted.

        Called as soon as a handler finds the layer failing, not only from ``__call__``: on the way
        out, Channels' ``await_many_dispatch`` awaits the channel-layer receive it cancelled, and on
        Python 3.11 that cancellation can be lost (``asyncio.wait_for`` in redis-py's command write
        swallows a cancel that lands as the write completes, CPython gh-86296), after which
        channels-redis polls Redis for as long as it is up: the close must not wait for it.
        """
        if self._closed_unavailable:
            return True
        for code in (LAYER_UNAVAILABLE_CLOSE_CODE, LAYER_UNAVAILABLE_FALLBACK_CLOSE_CODE):
            try:
                await self.close(code=code)
                self._closed_unavailable = True
                return True
            except Exception:  # daphne raises on 1013; a socket may be gone already
                logger.debug("notify_kit: the server refused close code %s", code, exc_info=True)
        return False

    async def connect(self) -> None:
        """Called when the WebSocket opens; anonymous users connect too and get what can_subscribe allows."""
        self._bucket = frames.TokenBucket(float(settings.SUBSCRIBE_RATE), int(settings.SUBSCRIBE_BURST))
        await self.accept()
        mode = frames.query_param(self.scope, "echo")
        if mode in ECHO_MODES:
            # Random, not derived from the channel name: it is shown to this socket only, and
            # must let no one else name this socket in a request header.
            self.socket_id, self.echo_mode = secrets.token_urlsafe(16), mode
            await self.send_json({"type": "welcome", "socket_id": self.socket_id})

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route a message to its handler, skipping the DB cleanup hop where no DB is used."""
        if message["type"] in _NO_CLEANUP:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Called with each client frame: answer it with exactly one frame, whatever it holds."""
        started = time.monotonic()
        content: Any = None
        try:
            # Every frame, even an undecodable one, takes a token; the frame is decoded before the
            # verdict only so that a rate_limited answer can still echo its request_id.
            allowed = self._bucket.take()
            content = frames.decode(text_data, bytes_data)
            if not allowed:
                raise frames.RequestError("rate_limited", "Too many requests; slow down.")
            await self.receive_json(content)
        except frames.RequestError as error:
            if error.code == "not_found":
                # Pad every not_found to the same floor: the time to answer must not tell a
                # missing row from a forbidden one.
                delay = float(settings.NOT_FOUND_MIN_SECONDS) - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_error(error.code, error.detail, frames.request_id_of(content))
        except LayerUnavailable:
            # Close before the error unwinds: Channels then waits for its cancelled channel-layer
            # receive, which can miss the cancellation and run on (see _close_unavailable).
            await self._close_unavailable()
            raise
        except Exception:  # a bug or a dead database must not drop the socket
            logger.exception("notify_kit: error while handling a client frame")
            await self.send_error(
                "unavailable",
                "The server could not handle this request; try again later.",
                frames.request_id_of(content),
            )

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Called with a decoded client frame: validate it, then subscribe or unsubscribe."""
        serializer = self.request_serializer_class(data=content)
        if not serializer.is_valid():
            raise frames.RequestError("invalid", frames.describe(serializer.errors))
        request = dict(serializer.validated_data)
        label = request["model"] = request["model"].lower()
        answer: dict[str, Any] = {"type": request["type"] + "d", "model": label}
        if "id" in request:
            answer["id"] = request["id"]
        else:
            answer["filter"] = request.get("filter") or {}
        if "request_id" in request:
            answer["request_id"] = request["request_id"]
        if request["type"] == "subscribe":
            answer.update(await self.subscribe(label, request))
        elif "id" in request:
            await self.unsubscribe(label, request["id"])
        else:
            await self._leave(subscriptions.identity(label, None, self._filter(label, request)[0]))
        await self.send_json(answer)

    async def notify_batch(self, batch: dict[str, Any]) -> None:
        """Several events in one channel-layer message: each handled as if it had come alone, in order."""
        for event in batch["messages"]:
            if event.get("type") == notifications.EVENT_TYPE:
                await self.notify_event(event)

    async def notify_event(self, event: dict[str, Any]) -> None:
        """Forward an event to each subscription it concerns, decided from the event alone."""
        if not self._table.first_time(event.get("event")):
            return  # the same event through another of this socket's groups
        label, hashid = event["model"], event["id"]
        echo = self.socket_id is not None and event.get("origin") == self.socket_id
        instance = self._table.instance(label, hashid)
        if instance is not None:
            await self._forward_instance(instance, event, echo)
        for sub in list(self._table.collections.get(label, ())):
            text = subscriptions.collection_frame(sub, event, echo and self.echo_mode == "mark")
            if text is not None and not (echo and self.echo_mode != "mark"):
                await self.send(text_data=text)

    async def _forward_instance(self, sub: subscriptions.Subscription, event: dict[str, Any], echo: bool) -> None:
        label, hashid = event["model"], event["id"]
        if not sub.by_keys and "row" in event and not await self._allowed_by_row(event):
            return
        text = subscriptions.instance_frame(sub, event, echo and self.echo_mode == "mark")
        if text == subscriptions.REVOKE:
            await self._revoke(label, hashid)
        elif text is not None and not (echo and self.echo_mode != "mark"):
            # The writer's own echo is skipped only after the access check above: a write that
            # revokes the writer's own access still revokes.
            await self.send(text_data=text)

    async def notify_recheck(self, event: dict[str, Any]) -> None:
        """Access to an object changed outside its row: drop this subscription if the user lost it."""
        label, hashid = event["model"], event["id"]
        if self._table.instance(label, hashid) is None:
            return
        model = live_models().get(label)
        pk = model.pk_from_hashid(hashid) if model is not None else None
        try:
            allowed = model is not None and pk is not None and await self._allowed(model, pk)
        except Exception:  # fail closed: better a lost notification than a leaked one
            logger.exception("notify_kit: could not recheck access to %s %s", label, hashid)
            allowed = False
        if not allowed:
            await self._revoke(label, hashid)

    async def _allowed_by_row(self, event: dict[str, Any]) -> bool:
        """Check access against the committed row the event carries; revoke on failure."""
        label, hashid = event["model"], event["id"]
        try:
            obj = rows.decode(live_models()[label], event["row"])
            allowed = await access.allowed(self.can_subscribe, obj, self.scope.get("user"))
        except Exception:  # fail closed: better a lost notification than a leaked one
            logger.exception("notify_kit: could not recheck access to %s %s", label, hashid)
            allowed = False
        if not allowed:
            await self._revoke(label, hashid)
        return allowed

    async def _revoke(self, label: str, hashid: str) -> None:
        await self.unsubscribe(label, hashid)
        await self.send_json({"type": "revoked", "model": label, "id": hashid})

    async def send_error(self, code: str, detail: str, request_id: Any = None) -> None:
        """Send an ``error`` frame (codes are listed in the protocol reference)."""
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if request_id is not None:
            frame["request_id"] = request_id
        await self.send_json(frame)

    async def disconnect(self, code: int) -> None:
        """Called when the WebSocket closes: leave every group."""
        await self._discard(self._table.clear())

    @property
    def subscriptions(self) -> dict[str, tuple[str, str]]:
        """group -> (model, id) of this socket's object subscriptions."""
        return self._table.instance_groups()
