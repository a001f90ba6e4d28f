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
import json
import logging
import secrets
import time
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.apps import apps

from . import access, notifications, rows
from .conf import settings
from .serializers import SubscriptionRequestSerializer, is_live

logger = logging.getLogger("notify_kit")

NOT_FOUND_DETAIL = "No such object, or you may not subscribe to it."
#: WebSocket close code when the channel layer is unreachable: "try again later".
LAYER_UNAVAILABLE_CLOSE_CODE = 1013
#: What ``?echo=`` may ask for: skip this socket's own echoes, or send them marked ``"echo": true``.
ECHO_MODES = frozenset({"skip", "mark"})
# Handlers that need no database connection cleanup first (see the module docstring).
_NO_CLEANUP = frozenset({"websocket.receive", notifications.EVENT_TYPE, notifications.RECHECK_TYPE})


@cache
def _live_models() -> dict[str, type]:
    # The app registry is frozen once the server runs; one lookup table, case-insensitive keys
    # because apps.get_model() is case-sensitive on the app label.
    return {model._meta.label_lower: model for model in apps.get_models() if is_live(model)}


class _LayerUnavailable(Exception):
    """The channel layer failed while joining a group: the socket is closed with 1013."""


class _RequestError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class _TokenBucket:
    """Per-connection rate limit: ``burst`` frames at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Subscribes a WebSocket to live objects its user may see, and forwards their notifications."""

    request_serializer_class = SubscriptionRequestSerializer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_layer_alias = settings.CHANNEL_LAYER
        # group -> (model label, hashid) of every subscription on this socket. This table, not
        # the layer's group membership, decides what is forwarded: a group leave that failed
        # (and is being retried) must not let anything through after `unsubscribed`/`revoked`.
        self.subscriptions: dict[str, tuple[str, str]] = {}
        self._subscribed: set[tuple[str, str]] = set()
        # Set in connect() when the client asked (?echo=skip|mark); None: this socket has no id.
        self.socket_id: str | None = None
        self.echo_mode: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer; if the channel layer fails under it, close with 1013 instead of crashing."""
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis went away under the receive loop
            # Without the layer this socket can receive nothing: say so with 1013 (try again
            # later) so the client reconnects with backoff and subscribes again, rather than
            # letting the server log a crash and close with 1011.
            logger.warning("notify_kit: closing a socket, the channel layer failed: %s: %s", type(exc).__name__, exc)
            try:
                await self.close(code=LAYER_UNAVAILABLE_CLOSE_CODE)
            except Exception:  # noqa: BLE001 - the socket may be gone already
                pass

    async def connect(self) -> None:
        """Called when the WebSocket opens; anonymous users connect too and get what can_subscribe allows."""
        self._bucket = _TokenBucket(float(settings.SUBSCRIBE_RATE), int(settings.SUBSCRIBE_BURST))
        await self.accept()
        mode = _query_param(self.scope, "echo")
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
            content = self._decode(text_data, bytes_data)
            if not allowed:
                raise _RequestError("rate_limited", "Too many requests; slow down.")
            await self.receive_json(content)
        except _RequestError as error:
            if error.code == "not_found":
                # Pad every not_found to the same floor: the time to answer must not tell a
                # missing row from a forbidden one.
                delay = float(settings.NOT_FOUND_MIN_SECONDS) - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_error(error.code, error.detail, _request_id_of(content))
        except _LayerUnavailable:
            raise
        except Exception:  # a bug or a dead database must not drop the socket
            logger.exception("notify_kit: error while handling a client frame")
            await self.send_error(
                "unavailable", "The server could not handle this request; try again later.", _request_id_of(content)
            )

    def _decode(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        if text_data is None:
            raise _RequestError("invalid", "Binary frames are not supported; send JSON text.")
        limit = int(settings.MAX_MESSAGE_BYTES)
        if len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
            raise _RequestError("invalid", f"Message too large; the limit is {limit} bytes.")
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # deep nesting raises RecursionError, not ValueError
            raise _RequestError("invalid", "Not valid JSON.") from None
        if not isinstance(content, dict):
            raise _RequestError("invalid", "Expected a JSON object.")
        return content

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Called with a decoded client frame: validate it, then subscribe or unsubscribe."""
        serializer = self.request_serializer_class(data=content)
        if not serializer.is_valid():
            raise _RequestError("invalid", _describe(serializer.errors))
        request = serializer.validated_data
        label = request["model"].lower()
        if request["type"] == "subscribe":
            await self.subscribe(label, request["id"])
        else:
            await self.unsubscribe(label, request["id"])
        answer = {"type": request["type"] + "d", "model": label, "id": request["id"]}
        if "request_id" in request:
            answer["request_id"] = request["request_id"]
        await self.send_json(answer)

    async def subscribe(self, label: str, hashid: str) -> None:
        """Join the group of (label, hashid) if the user may see it; raise _RequestError otherwise."""
        model = _live_models().get(label)
        pk = model.pk_from_hashid(hashid) if model is not None else None
        if model is None or pk is None:
            # Same time-floored answer as a missing row; the extra DB round trip of that path
            # is not worth doing for ids that cannot exist.
            raise _RequestError("not_found", NOT_FOUND_DETAIL)
        group = notifications.group_name(label, hashid)
        if group in self.subscriptions:
            # Subscribing again asks again: access may have changed since the first answer.
            if not await self._allowed(model, pk):
                await self.unsubscribe(label, hashid)
                raise _RequestError("not_found", NOT_FOUND_DETAIL)
            return
        if len(self.subscriptions) >= int(settings.MAX_SUBSCRIPTIONS):
            raise _RequestError("limit", f"At most {settings.MAX_SUBSCRIPTIONS} subscriptions per connection.")
        # Join first, then check: a change of access committed between the check and the join
        # would otherwise send its event before this socket could receive it, and the stale
        # answer would stand. Events that arrive meanwhile wait until this handler returns
        # (a consumer handles one message at a time), and by then the table decides.
        try:
            await notifications.group_add(group, self.channel_name)
        except Exception as exc:  # re-raised as the one error __call__ turns into 1013
            # Propagates to __call__, which closes with 1013: the client reconnects later and
            # subscribes again, instead of dropping this subscription over an `error` answer.
            raise _LayerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            allowed = await self._allowed(model, pk)
        except BaseException:
            await notifications.group_discard(group, self.channel_name)
            raise
        if not allowed:
            await notifications.group_discard(group, self.channel_name)
            raise _RequestError("not_found", NOT_FOUND_DETAIL)
        self.subscriptions[group] = (label, hashid)
        self._subscribed.add((label, hashid))

    async def unsubscribe(self, label: str, hashid: str) -> None:
        """Leave the group of (label, hashid); a no-op when not subscribed."""
        self._subscribed.discard((label, hashid))  # first: nothing more is forwarded, whatever the layer does
        for group, key in list(self.subscriptions.items()):
            if key == (label, hashid):
                del self.subscriptions[group]
                await notifications.group_discard(group, self.channel_name)

    @database_sync_to_async
    def _allowed(self, model: type, pk: int) -> bool:
        obj = self.get_object(model, pk)
        return obj is not None and bool(self.can_subscribe(obj, self.scope.get("user")))

    def get_object(self, model: type, pk: int) -> Any:
        """Load the object a client asks for (runs on the database thread); None if missing."""
        return model._default_manager.filter(pk=pk).first()

    def can_subscribe(self, obj: Any, user: Any) -> bool:
        """Whether ``user`` may subscribe to ``obj`` (on the event loop when it needs no query)."""
        return obj.can_subscribe(user)

    async def notify_event(self, event: dict[str, Any]) -> None:
        """Forward a notification: its text was encoded once, by the sender, for every subscriber."""
        if (event["model"], event["id"]) not in self._subscribed:
            return
        if "row" in event and not await self._allowed_by_row(event):
            return
        text = event.get("text")
        if text is None:  # an event that only changed who may see the row has no frame
            return
        if self.socket_id is not None and event.get("origin") == self.socket_id:
            # This socket's own write, after its access check above: skipped, or marked for
            # this one socket (the text stays encoded once for every other subscriber).
            if self.echo_mode != "mark":
                return
            text = text[:-1] + ',"echo":true}'  # the frame is a compact JSON object
        await self.send(text_data=text)

    async def notify_recheck(self, event: dict[str, Any]) -> None:
        """Access to an object changed outside its row: drop this subscription if the user lost it."""
        if (event["model"], event["id"]) not in self._subscribed:
            return
        label, hashid = event["model"], event["id"]
        model = _live_models().get(label)
        pk = model.pk_from_hashid(hashid) if model is not None else None
        try:
            allowed = pk is not None and await self._allowed(model, pk)
        except Exception:  # fail closed: better a lost notification than a leaked one
            logger.exception("notify_kit: could not recheck access to %s %s", label, hashid)
            allowed = False
        if not allowed:
            await self._revoke(label, hashid)

    async def _allowed_by_row(self, event: dict[str, Any]) -> bool:
        """Check access against the committed row the event carries; revoke on failure."""
        label, hashid = event["model"], event["id"]
        try:
            obj = rows.decode(_live_models()[label], event["row"])
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
        self._subscribed.clear()
        for group in list(self.subscriptions):
            await notifications.group_discard(group, self.channel_name)
        self.subscriptions.clear()


def _query_param(scope: Any, name: str) -> str | None:
    """The last value of ``name`` in the connect URL's query string, or None."""
    raw = scope.get("query_string", b"")
    values = parse_qs(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)).get(name)
    return values[-1] if values else None


def _request_id_of(content: Any) -> Any:
    """The frame's request_id when it is a valid one, so even a rejected frame can be matched."""
    if not isinstance(content, dict) or "request_id" not in content:
        return None
    field = SubscriptionRequestSerializer().fields["request_id"]
    try:
        return field.run_validation(content["request_id"])
    except Exception:  # noqa: BLE001 - an invalid request_id is simply not echoed
        return None


def _describe(errors: dict[str, Any]) -> str:
    """Flatten DRF errors into one line: ``model: This field is required. id: ...``."""
    parts = []
    for field, messages in sorted(errors.items()):
        text = " ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        parts.append(f"{field}: {text}")
    return " ".join(parts)
