"""Event: one object's notification on its way from a commit to the sockets.

An event is rendered to its wire frame once, in the sender, for every subscriber alike: the
consumer forwards the text as it is. What a socket needs to decide for itself travels beside
the text: the object's model and HashID (is this socket subscribed to it?) and, when the write
may have changed who can see the object, the row's committed values (``row``, see
notify_kit.rows and notify_kit.access). An event whose write changed who may see the row but no
tracked field carries no frame at all: each socket only checks its access.

Events of one object fold when the sender falls behind on it (a notifications.Coalescable):
``changed`` becomes the union, ``data`` and ``row`` the newest, a delete wins, and the frame
counts what it folds in (``coalesced``), so nothing is lost silently and the final state
always goes out.

An event made by a request that carried a socket id (notify_kit.middleware) names that socket
as its ``origin``, beside the text: that one socket skips it (its own echo). Events of different
origins fold into one of no origin, which every subscriber receives: skipping it would hide the
other writer's change.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.utils.encoders import JSONEncoder

from .notifications import EVENT_TYPE


class Event:
    """One object's change after commit: an update, a delete, or a change of who may see it."""

    __slots__ = ("changed", "coalesced", "data", "deleted", "hashid", "label", "origin", "row")

    def __init__(
        self,
        label: str,
        hashid: str,
        *,
        deleted: bool,
        data: Any,
        changed: set[str],
        row: str | None = None,
        origin: str | None = None,
    ) -> None:
        self.label, self.hashid, self.deleted, self.data = label, hashid, deleted, data
        self.changed, self.row, self.coalesced = set(changed), row, 0
        self.origin = origin

    @property
    def has_frame(self) -> bool:
        """Whether subscribers receive a frame (a check of access alone sends none)."""
        return self.deleted or bool(self.changed)

    def absorb(self, newer: Any) -> bool:
        """Fold a newer event of the same object into this one, if this one is not a delete."""
        if not isinstance(newer, Event) or self.deleted or (newer.label, newer.hashid) != (self.label, self.hashid):
            return False
        if newer.has_frame:
            # A frame-less event has no data of its own: the last frame's data stays the newest.
            self.data = newer.data
            self.coalesced += (1 if self.has_frame else 0) + newer.coalesced
        self.deleted = newer.deleted
        self.changed |= newer.changed
        # A newer event without a row left every access field as this one's row has it.
        self.row = None if self.deleted else (newer.row or self.row)
        if newer.origin != self.origin:
            self.origin = None
        return True

    def copy(self) -> Event:
        """An independent copy (the sender folds into it for one receiver only)."""
        twin = Event(self.label, self.hashid, deleted=self.deleted, data=self.data, changed=self.changed, row=self.row)
        twin.coalesced, twin.origin = self.coalesced, self.origin
        return twin

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message: the frame encoded once, for every subscriber."""
        message: dict[str, Any] = {"type": EVENT_TYPE, "model": self.label, "id": self.hashid}
        if self.has_frame:
            message["text"] = self.render()
        if self.row is not None:
            message["row"] = self.row
        if self.origin is not None:
            message["origin"] = self.origin
        return message

    def render(self) -> str:
        """The wire frame."""
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
        return json.dumps(payload, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"))
