"""A socket's subscriptions, and the frame each one makes of an event, decided from the event alone.

A subscription is an object, ``(model, id)``, or a collection, ``(model, filter)``: every row of
the model that the user may see and that matches the filter. The design choice is that delivery
never asks anyone: what the socket learnt when it subscribed (the audience keys its user holds,
the filter, the options) and what the event carries (who could see the row before and after the
write, the filter values before and after, one payload per audience) decide each frame:

* a collection frame is relative to the subscriber's view: a row that enters it is ``created``,
  one that stays ``updated``, one that leaves it, deleted or no longer visible or matching,
  ``deleted`` (leaving and deleting look alike: a user who loses access learns nothing of the
  row's fate);
* an object subscription of a model that declares audiences is ``revoked`` when the user holds
  none of the row's keys any more; others are checked with ``can_subscribe`` by the consumer.

One event reaches a socket through several groups (the object's, and one per audience key the
user holds): the table remembers recent event ids, so each subscription gets one frame per event.
Frames are built by joining JSON texts that the writer encoded once (a payload per audience), so
nothing is serialized per subscriber but what differs per subscription (``request_id``,
``fields``).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from typing import Any

ACTIONS = ("created", "updated", "deleted")
#: A subscription made without a request_id (frames then carry none).
NO_REQUEST_ID: Any = object()
REVOKE = "revoke"  # what an object subscription makes of an event that took its access away
_SEEN_EVENTS = 512  # recent event ids remembered per socket: the copies of one event arrive together


class Subscription:
    """One subscription of a socket, with what was learnt when it was made."""

    __slots__ = ("actions", "by_keys", "fields", "filter", "filter_key", "groups", "hashid", "keys", "label",
                 "request_id")  # fmt: skip

    def __init__(
        self,
        label: str,
        *,
        hashid: str | None = None,
        filter: dict[str, Any] | None = None,
        keys: frozenset[str] = frozenset(),
        by_keys: bool = False,
        actions: frozenset[str] = frozenset(ACTIONS),
        fields: tuple[str, ...] | None = None,
        request_id: Any = NO_REQUEST_ID,
        groups: tuple[str, ...] = (),
    ) -> None:
        self.label, self.hashid, self.filter = label, hashid, filter or {}
        self.filter_key = canonical(self.filter)
        self.keys, self.by_keys, self.actions, self.fields = keys, by_keys, actions, fields
        self.request_id, self.groups = request_id, groups

    @property
    def identity(self) -> tuple[str, str, str]:
        """(model, "id", hashid) or (model, "filter", canonical filter): subscribing twice is idempotent."""
        return identity(self.label, self.hashid, self.filter)

    @property
    def is_collection(self) -> bool:
        """Whether this follows every visible row (``(model, filter)``) rather than one object."""
        return self.hashid is None


def canonical(filter: dict[str, Any] | None) -> str:
    """The filter as canonical JSON (sorted keys): part of a collection subscription's identity."""
    return json.dumps(filter or {}, sort_keys=True, separators=(",", ":"))


def identity(label: str, hashid: str | None, filter: dict[str, Any] | None) -> tuple[str, str, str]:
    """The identity of the subscription to (label, hashid) or (label, filter)."""
    return (label, "id", hashid) if hashid is not None else (label, "filter", canonical(filter))


class Table:
    """A socket's subscriptions, indexed for delivery, with the groups they share counted."""

    def __init__(self) -> None:
        self.by_identity: dict[tuple[str, str, str], Subscription] = {}
        self.collections: dict[str, list[Subscription]] = {}
        self._groups: Counter[str] = Counter()
        self._seen: deque[str] = deque(maxlen=_SEEN_EVENTS)
        self._seen_set: set[str] = set()

    def __len__(self) -> int:
        return len(self.by_identity)

    def get(self, key: tuple[str, str, str]) -> Subscription | None:
        """The subscription of this identity, if any."""
        return self.by_identity.get(key)

    def instance(self, label: str, hashid: str) -> Subscription | None:
        """The subscription to one object, if any."""
        return self.by_identity.get((label, "id", hashid))

    def instance_groups(self) -> dict[str, tuple[str, str]]:
        """group -> (model, id) of the object subscriptions."""
        return {sub.groups[0]: (sub.label, sub.hashid) for sub in self.by_identity.values() if sub.hashid is not None}

    def add(self, sub: Subscription) -> None:
        """Add a subscription (its groups must have been joined)."""
        self.by_identity[sub.identity] = sub
        if sub.is_collection:
            self.collections.setdefault(sub.label, []).append(sub)
        self._groups.update(sub.groups)

    def remove(self, key: tuple[str, str, str]) -> tuple[Subscription | None, list[str]]:
        """Remove a subscription; returns it and the groups no other subscription needs."""
        sub = self.by_identity.pop(key, None)
        if sub is None:
            return None, []
        if sub.is_collection:
            self.collections[sub.label].remove(sub)
        return sub, self.release(sub.groups)

    def release(self, groups: tuple[str, ...]) -> list[str]:
        """Count ``groups`` as no longer needed by one subscription; returns those needed by none."""
        unused = []
        for group in groups:
            self._groups[group] -= 1
            if self._groups[group] <= 0:
                del self._groups[group]
                unused.append(group)
        return unused

    def joined(self, group: str) -> bool:
        """Whether a subscription of this socket already holds ``group``."""
        return self._groups[group] > 0

    def clear(self) -> list[str]:
        """Forget every subscription; returns every group held."""
        groups = list(self._groups)
        self.by_identity.clear()
        self.collections.clear()
        self._groups.clear()
        return groups

    def first_time(self, ids: list[str] | None) -> bool:
        """Whether an event (its id, and those folded into it) is new to this socket; remembers it."""
        if not ids:
            return True
        if all(event_id in self._seen_set for event_id in ids):
            return False
        for event_id in ids:
            if event_id not in self._seen_set:
                if len(self._seen) == self._seen.maxlen:
                    self._seen_set.discard(self._seen[0])
                self._seen.append(event_id)
                self._seen_set.add(event_id)
        return True


def _held(keys: frozenset[str], pairs: list[list[Any]] | None) -> int | None:
    """The payload index of the first of the row's keys that ``keys`` holds, or None."""
    for key_digest, index in pairs or ():
        if key_digest in keys:
            return int(index)
    return None


def _matches(wanted: dict[str, Any], values: dict[str, Any] | None) -> bool:
    return values is not None and all(values.get(name) == value for name, value in wanted.items())


def frame(
    kind: str,
    label: str,
    hashid: str,
    *,
    data: str | None = None,
    changed: list[str] | None = None,
    coalesced: int = 0,
    request_id: Any = NO_REQUEST_ID,
    echo: bool = False,
    fields: tuple[str, ...] | None = None,
) -> str:
    """A frame, joined from JSON texts (``data`` is the payload's JSON, encoded once by the writer)."""
    parts = [json.dumps({"type": kind, "model": label, "id": hashid}, ensure_ascii=False, separators=(",", ":"))[:-1]]
    if data is not None:
        if fields is not None:  # only the fields asked for, and always the id
            full = json.loads(data)
            data = json.dumps({name: full[name] for name in full if name in fields or name == "id"},
                              ensure_ascii=False, separators=(",", ":"))  # fmt: skip
        parts.append(',"data":' + data)
    if changed is not None:
        parts.append(',"changed":' + json.dumps(changed, separators=(",", ":")))
    if coalesced:
        parts.append(f',"coalesced":{int(coalesced)}')
    if request_id is not NO_REQUEST_ID:
        parts.append(',"request_id":' + json.dumps(request_id, ensure_ascii=False))
    if echo:
        parts.append(',"echo":true')
    parts.append("}")
    return "".join(parts)


def collection_frame(sub: Subscription, message: dict[str, Any], echo: bool = False) -> str | None:
    """The frame a collection subscription makes of an event, relative to its view; None for none."""
    views = message.get("views")
    if views is None:
        return None  # nothing any view could see changed
    was = views["old"] is not None and not sub.keys.isdisjoint(views["old"]) and _matches(sub.filter, views["fo"])
    index = _held(sub.keys, views["new"]) if _matches(sub.filter, views["fn"]) else None
    # What this audience may hear changed: a field only another audience's payload holds is not named.
    changed = views["changed"][index] if index is not None else []
    if was and index is not None:
        if not changed:
            return None  # who may see it changed, or what only others see: nothing for this view
        kind = "updated"
    elif index is not None:
        kind = "created"
    elif was:
        kind = "deleted"
    else:
        return None
    if kind not in sub.actions:
        return None
    if kind == "deleted":
        return frame(kind, sub.label, message["id"], request_id=sub.request_id, echo=echo)
    return frame(
        kind,
        sub.label,
        message["id"],
        data=views["payloads"][index],
        changed=changed if kind == "updated" else None,
        coalesced=message.get("coalesced", 0) if kind == "updated" else 0,
        request_id=sub.request_id,
        echo=echo,
        fields=sub.fields,
    )


def instance_frame(sub: Subscription, message: dict[str, Any], echo: bool = False) -> str | None:
    """The frame an object subscription makes of an event: a frame, None, or REVOKE."""
    views = message.get("views")
    index = None
    if views is not None and views["new"] is not None:
        index = _held(sub.keys, views["new"])
        if sub.by_keys and index is None:
            return REVOKE  # the user holds none of the row's keys any more
    text: str | None = message.get("text")
    if text is None:
        return None  # a change of who may see it, and this socket still may
    kind = "deleted" if message.get("deleted") else "updated"
    if kind not in sub.actions:
        return None
    if index is None or kind == "deleted":
        # The frame every subscriber of the object gets (the live serializer's data), encoded once.
        if sub.fields is None or kind == "deleted":
            return text[:-1] + ',"echo":true}' if echo else text
        full = json.loads(text)
        data = json.dumps(full["data"], ensure_ascii=False, separators=(",", ":"))
        changed = full["changed"]
    else:
        # This user's audience's payload (views are present whenever a tracked field changed),
        # and what of it changed; nothing it shows changed: no frame.
        data, changed = views["payloads"][index], views["changed"][index]  # type: ignore[index]
        if not changed:
            return None
    return frame(
        kind,
        sub.label,
        message["id"],
        data=data,
        changed=changed,
        coalesced=message.get("coalesced", 0),
        echo=echo,
        fields=sub.fields,
    )
