"""Event: one object's change on its way from a commit to the sockets.

An event is built once per object and transaction, in the writer, and everything that can be done
once per event is done there: the instance frame is encoded once, each audience's payload is
serialized once. What a socket must decide for itself travels beside them:

* the object's model and HashID (is this socket subscribed to it?);
* ``row``: when the write may have changed who can see the object, the row's committed values, on
  which an instance subscriber asks ``can_subscribe`` again (notify_kit.access);
* ``views``: who could see the row before the write and who can after it (audience digests, and
  the values of ``live_filter_fields``), with one payload per audience, from which a collection
  subscriber decides whether the row entered, stayed in or left its view (notify_kit.subscriptions);
* ``event``: ids, so that a socket reached through several groups (an object's group and one per
  audience key) forwards the event once.

Events of one object fold when the sender falls behind on it (a notifications.Coalescable):
``changed`` becomes the union, the data, row and views after the write the newest, the views
before it the oldest, a delete wins, and the frame counts what it folds in (``coalesced``), so
nothing is lost silently and the final state always goes out.

An event made by a request that carried a socket id (notify_kit.middleware) names that socket
as its ``origin``: that one socket skips it (its own echo). Events of different origins fold into
one of no origin, which every subscriber receives: skipping it would hide the other writer's change.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from rest_framework.utils.encoders import JSONEncoder

from .notifications import EVENT_TYPE

# Event ids: unique per process (a random prefix) and cheap (a counter), never a uuid per save.
_PREFIX = secrets.token_hex(4)
_counter = itertools.count()


def new_id() -> str:
    """A fresh event id."""
    return f"{_PREFIX}{next(_counter):x}"


class Views:
    """Who could see a row before a write (``old``) and can after it (``new``), and their payloads.

    ``old`` is the set of key digests before, or None for a row that did not exist; ``new`` the
    ordered ``[digest, payload index]`` pairs after, or None for a row that is gone. ``payloads``
    are JSON texts, one per distinct serializer, and ``visible`` per payload the fields its
    audience may see named in ``changed`` (None: every tracked field). ``filter_old`` and
    ``filter_new`` are the values of the model's ``live_filter_fields`` before and after.
    """

    __slots__ = ("filter_new", "filter_old", "new", "old", "payloads", "visible")

    def __init__(
        self,
        old: frozenset[str] | None,
        new: list[list[Any]] | None,
        payloads: list[str],
        filter_old: dict[str, Any] | None,
        filter_new: dict[str, Any] | None,
        visible: list[frozenset[str] | None] | None = None,
    ) -> None:
        self.old, self.new, self.payloads = old, new, payloads
        self.filter_old, self.filter_new = filter_old, filter_new
        self.visible = visible or [None] * len(payloads)

    def after(self, newer: Views) -> Views:
        """These views followed by a newer write: this one's before, the newer one's after."""
        return Views(self.old, newer.new, newer.payloads, self.filter_old, newer.filter_new, newer.visible)

    def digests(self) -> set[str]:
        """Every audience digest before or after: the groups the event goes to."""
        found = set(self.old or ())
        found.update(pair[0] for pair in self.new or ())
        return found

    def to_message(self, changed: set[str]) -> dict[str, Any]:
        """The views as plain data for the channel layer, with ``changed`` as each audience may hear it."""
        return {
            "old": None if self.old is None else sorted(self.old),
            "new": self.new,
            "payloads": self.payloads,
            "changed": [sorted(changed if fields is None else changed & fields) for fields in self.visible],
            "fo": self.filter_old,
            "fn": self.filter_new,
        }


class Event:
    """One object's change after commit: created, updated, deleted, or a change of who may see it."""

    __slots__ = ("_message", "_shared", "changed", "coalesced", "created", "data", "data_text", "deleted", "hashid",
                 "ids", "label", "origin", "row", "views")  # fmt: skip

    def __init__(
        self,
        label: str,
        hashid: str,
        *,
        deleted: bool,
        data: Any,
        changed: set[str],
        row: str | None = None,
        views: Views | None = None,
        created: bool = False,
        origin: str | None = None,
        data_text: str | None = None,
    ) -> None:
        self.label, self.hashid, self.deleted, self.data = label, hashid, deleted, data
        # ``data`` as JSON text (audiences.encode), when the writer encoded it already for the
        # audiences' payloads: the frame embeds it instead of encoding the same data again.
        self.data_text = data_text
        self.changed, self.row, self.coalesced = set(changed), row, 0
        self.views, self.created, self.origin = views, created, origin
        self.ids = [new_id()]
        self._message: dict[str, Any] | None = None
        # The message, once built, for this event and the copies made of it for other groups
        # (one cell, shared until one of them folds in a newer event and builds its own).
        self._shared: list[dict[str, Any] | None] = [None]

    @property
    def has_frame(self) -> bool:
        """Whether instance subscribers receive a frame (a change of access alone sends none)."""
        return not self.created and (self.deleted or bool(self.changed))

    def absorb(self, newer: Any) -> bool:
        """Fold a newer event of the same object into this one, if this one is not a delete."""
        if not isinstance(newer, Event) or self.deleted or (newer.label, newer.hashid) != (self.label, self.hashid):
            return False
        if newer.has_frame or newer.created:
            # A frame-less event has no data of its own: the last frame's data stays the newest.
            self.data, self.data_text = newer.data, newer.data_text
            self.coalesced += (1 if self.has_frame else 0) + newer.coalesced
        self.deleted = newer.deleted
        self.changed |= newer.changed
        # A newer event without a row left every access field as this one's row has it.
        self.row = None if self.deleted else (newer.row or self.row)
        if newer.views is not None:
            self.views = newer.views if self.views is None else self.views.after(newer.views)
        if newer.origin != self.origin:
            self.origin = None
        self.ids.extend(newer.ids)
        self._message, self._shared = None, [None]
        return True

    def copy(self) -> Event:
        """An independent copy (the sender folds into it for one receiver or group only)."""
        twin = Event.__new__(Event)
        twin.label, twin.hashid, twin.deleted, twin.data = self.label, self.hashid, self.deleted, self.data
        twin.data_text, twin.changed, twin.row, twin.coalesced = (
            self.data_text,
            set(self.changed),
            self.row,
            self.coalesced,
        )
        twin.views, twin.created, twin.origin, twin.ids = self.views, self.created, self.origin, list(self.ids)
        twin._message, twin._shared = self._message, self._shared
        return twin

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message: built once, shared by the copies sent to other groups."""
        if self._message is None and self._shared[0] is not None:
            self._message = self._shared[0]  # a copy built it already: the same event, once
        if self._message is None:
            # The ids as a list of the message's own: a later fold extends this event's list.
            message: dict[str, Any] = {
                "type": EVENT_TYPE, "model": self.label, "id": self.hashid, "event": list(self.ids)
            }  # fmt: skip
            if self.has_frame:
                message["text"] = self.render()
            if self.deleted:
                message["deleted"] = True
            if self.row is not None:
                message["row"] = self.row
            if self.origin is not None:
                message["origin"] = self.origin
            if self.views is not None:
                message["views"] = self.views.to_message(self.changed)
                message["changed"] = sorted(self.changed)
                if self.coalesced:
                    message["coalesced"] = self.coalesced
            self._message = self._shared[0] = message
        return self._message

    def render(self) -> str:
        """The instance subscribers' wire frame."""
        if self.data_text is not None and not self.deleted:
            # The same bytes json.dumps gives for the whole frame (compact separators, UTF-8,
            # keys in this order), with the data encoded once for frame and payloads alike.
            return "".join((
                '{"type":"updated","model":', _dumps(self.label), ',"id":', _dumps(self.hashid),
                ',"data":', self.data_text, ',"changed":', _dumps(sorted(self.changed)),
                f',"coalesced":{self.coalesced}}}' if self.coalesced else "}",
            ))  # fmt: skip
        payload: dict[str, Any] = {
            "type": "deleted" if self.deleted else "updated",
            "model": self.label,
            "id": self.hashid,
        }
        if not self.deleted:
            payload["data"] = self.data
            payload["changed"] = sorted(self.changed)
            if self.coalesced:
                payload["coalesced"] = self.coalesced
        return _dumps(payload)


# One encoder for every frame: json.dumps(cls=...) builds a new encoder object on every call.
_dumps = JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
