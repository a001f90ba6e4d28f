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

import logging
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from django.db import transaction

from . import notifications, rows
from .events import Event

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("notify_kit")

# Per database connection (so per thread and alias): (model label, pk, savepoint ids) -> pending.
# Savepoint ids restart at every transaction, hence the liveness check in _find().
_registries: WeakKeyDictionary[BaseDatabaseWrapper, dict[tuple[Any, ...], _Pending]] = WeakKeyDictionary()


class _Pending:
    """One object's merged changes in one transaction (at one savepoint level); the on-commit callback."""

    __slots__ = (
        "access_changed", "batch", "changed", "deleted", "group", "hashid", "index", "instance", "key", "label",
        "queued_in", "registry", "using", "written",
    )  # fmt: skip

    def __init__(
        self, instance: Any, key: tuple[Any, ...], registry: dict[tuple[Any, ...], _Pending], using: str
    ) -> None:
        self.instance = instance
        self.label = instance._meta.label_lower
        # Captured now: after a delete, instance.pk is None by the time the callback runs.
        self.hashid = instance.hashid
        self.group = instance.get_live_group_name()
        self.changed: set[str] = set()
        self.access_changed = False
        self.written: rows.Snapshot = None
        # Set by a bulk write (notify_kit.bulk): the committed row comes from its one read after commit.
        self.batch: Any = None
        self.deleted = False
        self.key = key
        self.registry = registry
        self.using = using
        self.queued_in: list[Any] | None = None
        self.index = -1

    def __call__(self) -> None:
        """Run by Django after commit: read the committed state, serialize once, hand the event over."""
        if self.registry.get(self.key) is self:
            del self.registry[self.key]
        try:
            event = self.event()
        except Exception:  # the write has committed; never raise into the caller
            logger.exception("notify_kit: could not serialize %s %s; notification dropped", self.label, self.hashid)
            return
        if event is not None:
            notifications.send(self.group, event)

    def event(self) -> Event | None:
        """The event this transaction's changes of the object amount to, as committed."""
        if self.deleted:
            return Event(self.label, self.hashid, deleted=True, data=None, changed=set())
        # On the writer's thread, after commit: the one place a re-read may happen (rows.committed).
        if self.batch is not None:
            row = self.batch.committed(self.instance.pk)
        else:
            row = rows.committed(self.instance, self.written, self.using)
        if row is None:  # deleted since by another transaction, whose delete notifies
            return None
        return Event(
            self.label,
            self.hashid,
            deleted=False,
            data=row.get_live_data() if self.changed else None,
            changed=self.changed,
            # Who may see the row may have changed: each subscriber checks it from these values.
            row=rows.encode(row, row.live_access_attnames()) if self.access_changed else None,
        )


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


def _pending_for(instance: Any, using: str) -> _Pending:
    """The callback this change merges into, registering one if needed (run at once outside a transaction)."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return _Pending(instance, (), {}, using)  # autocommit: the caller runs it, the row is committed
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
    pending = registry[key] = _Pending(instance, key, registry, using)
    # The bound method, not the instance: Django's robust handler logs func.__qualname__, which
    # an instance lacks, and would raise AttributeError instead of logging the failure.
    transaction.on_commit(pending.__call__, using=using, robust=True)
    pending.queued_in, pending.index = connection.run_on_commit, len(connection.run_on_commit) - 1
    return pending


def record_update(
    instance: Any,
    changed: list[str],
    using: str,
    *,
    access_changed: bool,
    written: rows.Snapshot,
    batch: Any = None,
) -> None:
    """Note a save of ``instance``: tracked ``changed`` fields, whether access may have changed, and
    what was written (rows.snapshot). Notifies after commit.

    ``batch`` (notify_kit.bulk) reads the committed rows of a whole bulk write at once; once an
    object has one it keeps it, since a read after commit is right whatever was written later.
    """
    pending = _pending_for(instance, using)
    pending.changed.update(changed)
    pending.access_changed = pending.access_changed or access_changed
    pending.written = written  # the latest save's: a full save rewrites every column
    if batch is not None:
        pending.batch = batch
    pending.deleted = False  # saved again after a delete in the same transaction: it exists at commit
    if not pending.key:
        pending()


def record_delete(instance: Any, using: str) -> None:
    """Note that ``instance`` was deleted; notify after commit."""
    pending = _pending_for(instance, using)
    pending.deleted = True
    if not pending.key:
        pending()
