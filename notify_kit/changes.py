"""A transaction's changes to live objects, turned into one notification per object after commit.

A change never sends anything by itself: it is recorded against the database connection and
sent by a ``transaction.on_commit(..., robust=True)`` callback, so a rolled back transaction or
savepoint sends nothing, and a failing notification cannot stop the transaction's other
callbacks. The first change of an object registers that callback; later changes of the same
object merge into it (union of ``changed``, the latest instance, a delete wins), so ten saves in
one transaction send one ``updated`` with the final data.

Merging is allowed only into a callback that Django still has queued *at the same savepoint
level*. A callback from an outer level must not absorb changes made inside a savepoint, or rolling
that savepoint back would leave them in; a new callback is registered instead. The payload is
serialized once, in the callback, for all subscribers alike.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from django.db import transaction
from rest_framework.utils.encoders import JSONEncoder

from . import notifications, suppression

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from .models import LiveModelMixin

logger = logging.getLogger("notify_kit")

# Per database connection (so per thread and alias): (model label, pk, savepoint ids) -> pending.
# Savepoint ids restart at every transaction, hence the liveness check in _find().
_registries: WeakKeyDictionary[BaseDatabaseWrapper, dict[tuple[Any, ...], _Pending]] = WeakKeyDictionary()


class _Pending:
    """One object's merged changes in one transaction (at one savepoint level); the on-commit callback."""

    __slots__ = ("changed", "deleted", "group", "hashid", "index", "instance", "key", "label", "queued_in", "registry")

    def __init__(self, instance: LiveModelMixin, key: tuple[Any, ...], registry: dict[tuple[Any, ...], _Pending]):
        self.instance = instance
        self.label = instance._meta.label_lower
        # Captured now: after a delete, instance.pk is None by the time the callback runs.
        self.hashid = instance.hashid
        self.group = instance.get_live_group_name()
        self.changed: set[str] = set()
        self.deleted = False
        self.key = key
        self.registry = registry
        self.queued_in: list[Any] | None = None
        self.index = -1

    def __call__(self) -> None:
        """Run by Django after commit: serialize once and hand the event to the sender."""
        if self.registry.get(self.key) is self:
            del self.registry[self.key]
        try:
            event = Event(
                self.label,
                self.hashid,
                deleted=self.deleted,
                # Serialized here, on the writer's thread, where the ORM instance belongs.
                data=None if self.deleted else self.instance.get_live_data(),
                changed=self.changed,
                # A change that may revoke access: subscribers are checked again before they get it.
                recheck=not self.deleted and bool(self.changed.intersection(self.instance.live_access_fields)),
            )
        except Exception:  # the write has committed; never raise into the caller
            logger.exception("notify_kit: could not serialize %s %s; notification dropped", self.label, self.hashid)
            return
        notifications.send(self.group, event)


class Event:
    """One object's notification on its way to the channel layer (a notifications.Coalescable).

    If the sender falls behind on this object, a newer event folds into an older one that is
    still waiting: ``changed`` becomes the union, ``data`` the newest, a delete wins, and the
    frame says how many updates it folds in (``coalesced``), so nothing is lost silently and the
    final state always goes out.
    """

    __slots__ = ("changed", "coalesced", "data", "deleted", "hashid", "label", "recheck")

    def __init__(self, label: str, hashid: str, *, deleted: bool, data: Any, changed: set[str], recheck: bool):
        self.label, self.hashid, self.deleted, self.data = label, hashid, deleted, data
        self.changed, self.recheck, self.coalesced = set(changed), recheck, 0

    def absorb(self, newer: Any) -> bool:
        """Fold a newer event of the same object into this one, if this one is an update."""
        if not isinstance(newer, Event) or self.deleted or (newer.label, newer.hashid) != (self.label, self.hashid):
            return False
        self.deleted, self.data = newer.deleted, newer.data
        self.changed |= newer.changed
        self.recheck = (self.recheck or newer.recheck) and not self.deleted
        self.coalesced += 1 + newer.coalesced
        return True

    def copy(self) -> Event:
        """An independent copy (the sender folds into it for one receiver only)."""
        twin = Event(self.label, self.hashid, deleted=self.deleted, data=self.data, changed=self.changed,
                     recheck=self.recheck)  # fmt: skip
        twin.coalesced = self.coalesced
        return twin

    def to_message(self) -> dict[str, Any]:
        """The channel-layer message: the frame encoded once, for every subscriber."""
        message = {"type": notifications.EVENT_TYPE, "model": self.label, "id": self.hashid, "text": self.render()}
        if self.recheck:
            message["recheck"] = True
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


def _owner(callback: Any) -> Any:
    """The _Pending behind a queued on-commit callback (registered as its bound __call__)."""
    return getattr(callback, "__self__", None)


def _is_queued(connection: BaseDatabaseWrapper, pending: _Pending) -> bool:
    # Django keeps (savepoint ids, callback, robust) tuples in run_on_commit and replaces the
    # list when a savepoint rolls back. Checking the remembered slot is O(1); a scan is needed
    # only after such a rollback has rebuilt the list.
    queued = connection.run_on_commit
    if queued is pending.queued_in and pending.index < len(queued) and _owner(queued[pending.index][1]) is pending:
        return True
    for index, entry in enumerate(queued):
        if _owner(entry[1]) is pending:
            pending.queued_in, pending.index = queued, index
            return True
    return False


def _pending_for(instance: LiveModelMixin, using: str) -> _Pending | None:
    """The callback this change merges into, registering one if needed; None outside a transaction."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return None
    registry = _registries.get(connection)
    if registry is None:
        registry = _registries[connection] = {}
    elif not connection.run_on_commit:
        registry.clear()  # nothing queued: whatever is left is from a rolled back transaction
    # Only real savepoints count: atomic(savepoint=False), which Django itself uses around every
    # delete (and multi-table saves), pushes None and cannot roll back on its own.
    savepoints = tuple(sid for sid in connection.savepoint_ids if sid is not None)
    key = (instance._meta.label_lower, instance.pk, savepoints)
    pending = registry.get(key)
    if pending is not None and _is_queued(connection, pending):
        pending.instance = instance
        return pending
    pending = registry[key] = _Pending(instance, key, registry)
    # The bound method, not the instance: Django's robust handler logs func.__qualname__, which
    # an instance lacks, and would raise AttributeError instead of logging the failure.
    transaction.on_commit(pending.__call__, using=using, robust=True)
    pending.queued_in, pending.index = connection.run_on_commit, len(connection.run_on_commit) - 1
    return pending


def record_update(instance: LiveModelMixin, changed: list[str], using: str) -> None:
    """Note that tracked ``changed`` fields of ``instance`` were saved; notify after commit."""
    if suppression.active():  # decided now, in the writer's context, not when the commit comes
        # Content is silenced, access never is: subscribers must still be rechecked (see suppression).
        changed = [field for field in changed if field in instance.live_access_fields]
        if not changed:
            return
    pending = _pending_for(instance, using)
    if pending is None:  # autocommit: the row is committed already
        pending = _Pending(instance, (), {})
        pending.changed.update(changed)
        pending()
        return
    pending.changed.update(changed)
    pending.deleted = False  # saved again after a delete in the same transaction: it exists at commit


def record_delete(instance: LiveModelMixin, using: str) -> None:
    """Note that ``instance`` was deleted; notify after commit."""
    if suppression.active():
        return
    pending = _pending_for(instance, using)
    if pending is None:
        pending = _Pending(instance, (), {})
        pending.deleted = True
        pending()
        return
    pending.deleted = True
