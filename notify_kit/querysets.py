"""LiveQuerySet: the statements that write many rows notify like the same rows saved one by one.

``QuerySet.update()`` and ``bulk_update()`` send no ``post_save``, so the mixin's receivers never
see them. The choice is to override them on the queryset rather than to patch Django: the
queryset knows which rows a statement writes (``UPDATE ... RETURNING pk`` where the database has
it, notify_kit.django_sql) and which fields (its arguments), and hands both to notify_kit.bulk,
which merges them into the transaction's other changes and reads the rows once after commit.

``LiveModelMixin`` declares ``objects = LiveManager()``. A manager on an abstract model is
inherited, so a live model that declares no manager gets this one as its default (and its
related managers, built from the default manager's class, are live too). A model that declares
its own manager keeps it; the system check ``notify_kit.W004`` says when that manager's queryset
is not a LiveQuerySet, and how to mix it in.

``QuerySet.delete()`` needs nothing here: Django's collector sends ``post_delete`` for every row
of a model that has receivers (it never fast-deletes a live model), from the rows it reads anyway.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction
from model_utils import FieldTracker

from . import bulk, django_sql

logger = logging.getLogger("notify_kit")

# Set while bulk_update() runs: the update() calls it makes, one per batch, are notified by
# bulk_update() itself, once for all batches (it knows the rows without reading them).
_in_bulk_update: contextvars.ContextVar[bool] = contextvars.ContextVar("notify_kit_in_bulk_update", default=False)


class LiveQuerySet(models.QuerySet[Any]):
    """A QuerySet whose ``update()``, ``bulk_update()`` and ``bulk_create()`` notify like saves."""

    def update(self, **kwargs: Any) -> int:
        """Update the rows, and notify each row written after commit (merged per transaction)."""
        if _in_bulk_update.get() or not kwargs or self.query.is_sliced or self.query.combinator:
            return super().update(**kwargs)  # Django raises for a slice or a combined query
        try:
            changed, access_changed = bulk.written_fields(self.model, kwargs)
        except FieldDoesNotExist:
            return super().update(**kwargs)  # Django's own error says what is wrong
        except Exception:  # never fail the user's write over a notification (E004 explains)
            logger.exception("notify_kit: cannot notify an update() of %s", self.model._meta.label)
            return super().update(**kwargs)
        if not changed and not access_changed:
            return super().update(**kwargs)  # nothing a subscriber sees or that decides access
        self._for_write = True  # as QuerySet.update(): route to the write database
        using = self.db
        # One transaction for the statement and the recording: the events wait for its commit,
        # and in autocommit the fallback's SELECT and UPDATE see the same rows (SQLite).
        with transaction.atomic(using=using, savepoint=False):
            # Who could see each row before: collection subscribers it leaves are told `deleted`.
            before = bulk.views_before(self.model, self) if access_changed else None
            pks = django_sql.update_returning_pks(self, kwargs)
            if pks is None:
                pks = list(self.order_by().values_list("pk", flat=True))
                count = super().update(**kwargs)
            else:
                count = len(pks)
            bulk.record(self.model, pks, changed, access_changed, using, before)
        self._result_cache = None
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Iterable[models.Model], fields: Iterable[str], batch_size: int | None = None) -> int:
        """Update ``fields`` of ``objs``, and notify each of them after commit (no extra query before)."""
        objs, fields = tuple(objs), tuple(fields)
        try:
            changed, access_changed = bulk.written_fields(self.model, fields)
        except FieldDoesNotExist:
            changed, access_changed = [], False  # Django's bulk_update() raises its own error below
        except Exception:  # never fail the user's write over a notification (E004 explains)
            logger.exception("notify_kit: cannot notify a bulk_update() of %s", self.model._meta.label)
            changed, access_changed = [], False
        self._for_write = True
        using = self.db
        token = _in_bulk_update.set(True)
        try:
            with transaction.atomic(using=using, savepoint=False):
                pks = [obj.pk for obj in objs]
                before = None
                if access_changed:  # the rows as they are before the write: who could see each
                    before = bulk.views_before(self.model, self.model._base_manager.using(using).filter(pk__in=pks))
                count = super().bulk_update(objs, fields, batch_size=batch_size)
                bulk.record(self.model, pks, changed, access_changed, using, before)
        finally:
            _in_bulk_update.reset(token)
        return count

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> list[models.Model]:
        """Create the rows; like ``save()`` creating one, this notifies nobody yet (see _created)."""
        created = super().bulk_create(objs, *args, **kwargs)
        self._created(created)
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    def _created(self, objs: list[models.Model]) -> None:
        """Creation events, as ``save()`` sends them (collections); the objects' trackers marked as saved.

        Only rows whose primary key bulk_create() set (the database returns them on PostgreSQL
        and SQLite 3.35+) can be announced.
        """
        bulk.record_created(objs, self.db)
        # bulk_create() runs no save(), so django-model-utils never marks the new rows as saved
        # and the next save() of one would report every tracked field (and access) as changed.
        names = _tracker_names(self.model)
        for obj in objs:
            if obj.pk is not None:  # else the database did not say which row it is
                for name in names:
                    getattr(obj, name).set_saved_fields()


_trackers: dict[type[models.Model], list[str]] = {}


def _tracker_names(model: type[models.Model]) -> list[str]:
    """Every FieldTracker of ``model``: its own and notify_kit's access tracker."""
    names = _trackers.get(model)
    if names is None:
        found = {v.name for k in model.__mro__ for v in vars(k).values() if isinstance(v, FieldTracker)}
        names = _trackers[model] = sorted(found)
    return names


#: The manager LiveModelMixin gives a model that declares none.
LiveManager = models.Manager.from_queryset(LiveQuerySet, "LiveManager")
