"""Writes of many rows at once (``update()``, ``bulk_update()``, raw SQL), notified like saves.

A bulk write notifies each row it wrote exactly as a ``save()`` of that row would: through the
same per-transaction registry (notify_kit.changes), so a row that is also saved, or written by a
second statement, in the same transaction still sends one event. What differs is where the
committed row comes from. A save can often trust its instance; a statement has no instances, and
reading each row in its own callback would cost one query per row. So the rows of one statement
share a :class:`Batch`: the first of its events that runs after commit reads every row of the
batch at once (one ``SELECT ... WHERE pk IN``, chunked where the database limits parameters) and
the others take theirs from it. Ten thousand rows cost one read, not ten thousand.

``changed`` holds the tracked fields the statement wrote, on every row it wrote, without reading
the old values: comparing would cost a read before the write. A field that decides access (see
``live_access_fields``) makes the event carry the row's committed values, so subscribers check
``can_subscribe`` again and lose the object if they may no longer see it, as after a save.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.db import connections, models, transaction
from django.db.models.base import ModelState

from . import audiences, changes, rows
from .live import default_group_name
from .trackers import tracker_of

logger = logging.getLogger("notify_kit")


class Batch:
    """The committed rows of one bulk write, read once after commit for all of its events."""

    def __init__(self, model: type[models.Model], using: str, needs_data: bool) -> None:
        self.model, self.using, self.needs_data = model, using, needs_data
        self.pks: list[Any] = []
        self._rows: dict[Any, models.Model] | None = None

    def committed(self, pk: Any) -> models.Model | None:
        """The row ``pk`` as committed (None if it is gone); the first call reads them all."""
        if self._rows is None:
            # Runs in an on-commit callback on the writer's thread: the transaction has committed,
            # so this is the state a subscriber would read now.
            access = self.model.live_access_attnames()  # type: ignore[attr-defined]
            # No tracked field written: the events carry only the access values (and the pk).
            only = access if not self.needs_data and access is not None else None
            self._rows = read_rows(self.model, self.pks, self.using, only)
        return self._rows.get(pk)


def read_rows(
    model: type[models.Model], pks: list[Any], using: str, only: Iterable[str] | None = None
) -> dict[Any, models.Model]:
    """The rows ``pks`` by primary key, in as few queries as the database's parameter limit allows."""
    # The base manager: a default manager that hides rows (soft deletes) must not hide these.
    queryset = model._base_manager.using(using).order_by()
    if only is not None:
        queryset = queryset.only(*only)
    size = connections[using].features.max_query_params or len(pks) or 1
    found: dict[Any, models.Model] = {}
    for start in range(0, len(pks), size):
        for row in queryset.filter(pk__in=pks[start : start + size]):
            found[row.pk] = row
    return found


def _stand_in(model: type[models.Model], pk: Any, using: str) -> models.Model:
    """An instance holding only ``pk``: enough for the HashID and the default group name.

    Not ``model(pk=pk)``, whose other fields would hold defaults, not the row's values; not
    ``from_db()`` with the rest deferred, whose post_init runs the FieldTrackers, and those load
    a deferred foreign key: one query per row. Any other field read loads it from the database.
    """
    instance = model.__new__(model)
    instance.__dict__[model._meta.pk.attname] = pk
    instance._state = ModelState()
    instance._state.db, instance._state.adding = using, False
    return instance


def written_fields(model: type[models.Model], names: Iterable[str]) -> tuple[list[str], bool]:
    """The tracked fields among ``names`` (``changed``), and whether any of them decides access."""
    opts = model._meta
    written: set[str] = set()
    for name in names:
        field = opts.get_field(name)
        written.update((field.name, getattr(field, "attname", field.name)))
    changed = sorted(name for name in tracker_of(model).fields if name in written)
    access = model.live_access_attnames()  # type: ignore[attr-defined]
    if access is None:  # every concrete field may decide access
        access = frozenset(f.attname for f in opts.concrete_fields)
    # A filter field decides which collection views see the row, as save() treats it (trackers).
    filtered = {opts.get_field(name).attname for name in getattr(model, "live_filter_fields", ()) or ()}  # type: ignore[union-attr]
    return changed, bool(written & (access | filtered))


def views_before(model: type[models.Model], queryset: models.QuerySet[Any]) -> dict[Any, audiences.View] | None:
    """Who can see each row now, before a bulk write that may change it: one read, and the
    queries ``live_audiences()`` itself makes. None when no write can change it (a model with
    no declared audiences and no filter fields: its one key is its view permission)."""
    if not model.declares_audiences() and not getattr(model, "live_filter_fields", ()):  # type: ignore[attr-defined]
        return None
    return {row.pk: audiences.view_of(row) for row in queryset.order_by()}


def record(
    model: type[models.Model],
    pks: Iterable[Any],
    changed: list[str],
    access_changed: bool,
    using: str,
    before: dict[Any, audiences.View] | None = None,
) -> None:
    """Note that the rows ``pks`` were written (inside the caller's transaction); notify after commit.

    Never raises: a notification failure must not roll back the write that caused it.
    """
    if not changed and not access_changed:
        return  # as for a save: neither a tracked nor an access field was written
    try:
        _record(model, pks, changed, access_changed, using, before or {})
    except Exception:
        logger.exception("notify_kit: could not record a bulk write of %s", model._meta.label)


def _record(
    model: type[models.Model],
    pks: Iterable[Any],
    changed: list[str],
    access_changed: bool,
    using: str,
    before: dict[Any, audiences.View],
) -> None:
    batch = Batch(model, using, needs_data=bool(changed))
    batch.pks = list(dict.fromkeys(model._meta.pk.to_python(pk) for pk in pks))
    instances: dict[Any, models.Model] | None = None
    if not default_group_name(model):
        # An overridden group name may read any field: give it the rows as they are now, in one read.
        instances = read_rows(model, batch.pks, using)
    for pk in batch.pks:
        instance = _stand_in(model, pk, using) if instances is None else instances.get(pk)
        view = before.get(pk)
        if instance is not None:  # None: not in the table (any more), nothing to notify
            changes.record_update(
                instance,
                changed,
                using,
                access_changed=access_changed,
                written=None,
                batch=batch,
                # The default binds this row's view now; mypy infers no type for such a lambda.
                before=cast("Callable[[], audiences.View | None]", lambda view=view: view),
            )


def notify_changed(
    model: type[models.Model], pks: Iterable[Any], fields: Iterable[str] | None = None, using: str = "default"
) -> None:
    """After commit, notify the rows ``pks`` of ``model`` as written by ``fields`` (None: every field).

    For writes notify_kit cannot see (raw SQL, another program): the rows are read in one query
    after commit, and merged with the transaction's other changes of them like a save.
    """
    names = [f.name for f in model._meta.concrete_fields if not f.primary_key] if fields is None else list(fields)
    changed, access_changed = written_fields(model, names)
    # Outside a transaction this opens one, so that the events still wait for a commit and merge.
    with transaction.atomic(using=using, savepoint=False):
        record(model, pks, changed, access_changed, using)


def record_created(objs: Iterable[models.Model], using: str) -> None:
    """Note rows that bulk_create() made: ``created`` for the collection subscribers who may see them."""
    try:
        for obj in objs:
            if obj.pk is not None:  # else the database did not say which row it is
                changes.record_create(obj, using, written=rows.snapshot(obj, None))
    except Exception:  # never fail the user's write over a notification
        logger.exception("notify_kit: could not record a bulk_create() of %s", type(obj)._meta.label)


def notify_deleted(model: type[models.Model], pks: Iterable[Any], using: str = "default") -> None:
    """After commit, tell the subscribers of the rows ``pks`` of ``model`` that they were deleted."""
    with transaction.atomic(using=using, savepoint=False):
        for pk in dict.fromkeys(model._meta.pk.to_python(raw) for raw in pks):
            changes.record_delete(_stand_in(model, pk, using), using)
