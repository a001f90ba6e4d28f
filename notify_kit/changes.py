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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from django.db import transaction

from . import audiences, notifications, rows, suppression
from .events import Event, Views
from .live import default_group_name
from .middleware import current_socket_id

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("notify_kit")

# Per database connection (so per thread and alias): (model label, pk, savepoint ids) -> pending.
# Savepoint ids restart at every transaction, hence the liveness check in _find().
_registries: WeakKeyDictionary[BaseDatabaseWrapper, dict[tuple[Any, ...], _Pending]] = WeakKeyDictionary()


_UNKNOWN: Any = None  # the state before: not needed yet (nothing that decides access changed so far)


class _Pending:
    """One object's merged changes in one transaction (at one savepoint level); the on-commit callback."""

    __slots__ = (
        "access_changed", "batch", "before", "changed", "created", "deleted", "group", "hashid", "index", "instance",
        "key", "label", "origin", "queued_in", "registry", "using", "written",
    )  # fmt: skip

    def __init__(
        self, instance: Any, key: tuple[Any, ...], registry: dict[tuple[Any, ...], _Pending], using: str
    ) -> None:
        self.instance = instance
        self.label = instance._meta.label_lower
        # Captured now: after a delete, instance.pk is None by the time the callback runs.
        self.hashid = instance.hashid
        # The mixin's group name is a function of the HashID: no second encode of the same pk.
        if default_group_name(type(instance)):
            self.group = notifications.group_name(self.label, self.hashid)
        else:
            self.group = instance.get_live_group_name()
        self.changed: set[str] = set()
        self.access_changed = False
        self.created = False
        # Who could see the row before the transaction's first change of it that could change
        # that (audiences.View); _UNKNOWN while no such change was made: then it is the state after.
        self.before: audiences.View | None = _UNKNOWN
        self.written: rows.Snapshot = None
        # Set by a bulk write (notify_kit.bulk): the committed row comes from its one read after commit.
        self.batch: Any = None
        self.deleted = False
        self.key = key
        self.registry = registry
        self.using = using
        self.queued_in: list[Any] | None = None
        self.index = -1
        # The socket whose request made the change (SocketIdMiddleware), read now, on the writer's
        # thread: the callback runs after commit, when the request may be over.
        self.origin = current_socket_id()

    def note_before(self, before: Callable[[], audiences.View | None] | audiences.View | None) -> None:
        """Remember who could see the row before this change, unless an earlier change told already."""
        if self.before is _UNKNOWN and not self.created:
            self.before = before() if callable(before) else before

    def __call__(self) -> None:
        """Run by Django after commit: read the committed state, serialize once, hand the event over."""
        if self.registry.get(self.key) is self:
            del self.registry[self.key]
        try:
            event = self.event()
        except Exception:  # the write has committed; never raise into the caller
            logger.exception("notify_kit: could not serialize %s %s; notification dropped", self.label, self.hashid)
            return
        if event is None:
            return
        groups = [] if self.created else [self.group]
        groups.extend(audiences.group(self.label, key) for key in sorted(event.views.digests() if event.views else ()))
        # Each group gets its own copy: the sender may fold a later event into one of them.
        notifications.send_many([(group, event if index == 0 else event.copy()) for index, group in enumerate(groups)])

    def event(self) -> Event | None:
        """The event this transaction's changes of the object amount to, as committed."""
        if self.deleted:
            if self.created:
                return None  # created and deleted before anyone could see it
            old = self.before
            views = None if old is None else Views(old[0], None, [], old[1], None)
            return Event(
                self.label, self.hashid, deleted=True, data=None, changed=set(), views=views, origin=self.origin
            )
        # On the writer's thread, after commit: the one place a re-read may happen (rows.committed).
        if self.batch is not None:
            row = self.batch.committed(self.instance.pk)
        else:
            row = rows.committed(self.instance, self.written, self.using)
        if row is None:  # deleted since by another transaction, whose delete notifies
            return None
        data = row.get_live_data() if self.changed or self.created else None
        # Encoded once, for the instance frame and the live serializer's audiences alike.
        text = None if data is None else audiences.encode(data)
        return Event(
            self.label,
            self.hashid,
            deleted=False,
            data=data,
            data_text=text,
            changed=self.changed,
            # Who may see the row may have changed: each subscriber checks it from these values.
            row=rows.encode(row, row.live_access_attnames()) if self.access_changed and not self.created else None,
            views=self._views(row, data, text),
            created=self.created,
            origin=self.origin,
        )

    def _views(self, row: Any, data: Any, text: str | None) -> Views | None:
        keyed = audiences.audiences_of(row)
        after: audiences.View = (
            frozenset(audiences.digest(key) for key, _ in keyed),
            audiences.filter_values(type(row), row),
        )
        before = None if self.created else (self.before or after)
        if not self.created and not self.changed and before == after:
            return None  # nothing that any view could see changed
        known = {type(row).get_live_serializer_class(): (data, text)} if text is not None else {}
        ordered, payloads, visible = audiences.payloads(row, keyed, known)
        old_keys, old_filter = (None, None) if before is None else before
        return Views(old_keys, ordered, payloads, old_filter, after[1], visible)


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
        if pending.origin != current_socket_id():
            pending.origin = None  # changes from two sockets (or none): nobody's own echo
        return pending
    pending = registry[key] = _Pending(instance, key, registry, using)
    # The bound method, not the instance: Django's robust handler logs func.__qualname__, which
    # an instance lacks, and would raise AttributeError instead of logging the failure.
    transaction.on_commit(pending.__call__, using=using, robust=True)
    pending.queued_in, pending.index = connection.run_on_commit, len(connection.run_on_commit) - 1
    return pending


def seal(using: str) -> None:
    """Let no later change merge into the callbacks queued so far on ``using`` (notify_kit.testing).

    Inside a TestCase every write shares the test's one transaction: a row created in setUp and
    saved in the test would otherwise be announced once, as created, by a callback that never runs.
    """
    registry = _registries.get(transaction.get_connection(using))
    if registry is not None:
        registry.clear()


def record_create(instance: Any, using: str, *, written: rows.Snapshot) -> None:
    """Note that ``instance`` was created; collection subscribers who may see it get ``created``."""
    if suppression.active():  # decided now, in the writer's context, not when the commit comes
        return
    pending = _pending_for(instance, using)
    pending.created = True
    pending.written = written
    pending.deleted = False
    if not pending.key:
        pending()


def record_update(
    instance: Any,
    changed: list[str],
    using: str,
    *,
    access_changed: bool,
    written: rows.Snapshot,
    before: Callable[[], audiences.View | None] | None = None,
    batch: Any = None,
) -> None:
    """Note a save of ``instance``: tracked ``changed`` fields, whether access may have changed, what
    was written (rows.snapshot), and who could see it before (called once per transaction).

    ``batch`` (notify_kit.bulk) reads the committed rows of a whole bulk write at once; once an
    object has one it keeps it, since a read after commit is right whatever was written later.
    """
    if suppression.active():  # decided now, in the writer's context, not when the commit comes
        # Content is silenced, access never is: subscribers are still checked (see suppression).
        changed = []
        if not access_changed:
            return
    pending = _pending_for(instance, using)
    pending.changed.update(changed)
    if access_changed:
        pending.access_changed = True
        if before is not None:
            pending.note_before(before)
    pending.written = written  # the latest save's: a full save rewrites every column
    if batch is not None:
        pending.batch = batch
    pending.deleted = False  # saved again after a delete in the same transaction: it exists at commit
    if not pending.key:
        pending()


def record_access_change(instance: Any, using: str, *, before: audiences.View) -> None:
    """Note a change of who may see ``instance`` outside its row (a many-to-many link)."""
    pending = _pending_for(instance, using)
    pending.access_changed = True
    pending.note_before(before)
    if not pending.key:
        pending()


def record_delete(instance: Any, using: str, *, before: audiences.View | None = None) -> None:
    """Note that ``instance`` was deleted; notify after commit."""
    if suppression.active():
        return
    pending = _pending_for(instance, using)
    pending.note_before(before)
    pending.deleted = True
    if not pending.key:
        pending()
