"""Signal receivers: every write of a live model, wherever it is made, becomes a recorded change.

Wiring lives with the models, not in the consumer: every concrete live model gets these receivers
when it is registered, so a save in a view, the admin, ``manage.py shell``, a Celery worker or a
management command notifies alike. Receivers are thin: they capture what only they can see
(what the trackers say changed, who could see the row before the write) and hand it to
notify_kit.changes, which sends after commit. A failure here is logged, never raised: a
notification must not fail a user's write.

* ``post_save``: a new row (``created``) or what a save changed; the state before the write is
  taken from the trackers, lazily and once per object per transaction.
* ``pre_delete`` / ``post_delete``: the row's audiences must be read before the delete, because the
  collector deletes the row's many-to-many links before the row (and ``post_delete``).
  ``post_delete`` (not ``Model.delete()``) is the hook because ``QuerySet.delete()`` fires it too.
* ``m2m_changed``: a share added or removed moves the row into or out of views like a save does,
  from either side of the relation, ``clear()`` included.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.signals import class_prepared, m2m_changed, post_delete, post_save, pre_delete

from . import audiences, changes, rows, trackers
from .live import is_live

if TYPE_CHECKING:
    pass

logger = logging.getLogger("notify_kit")

# The state before a delete, kept on the instance from pre_delete until post_delete.
_BEFORE = "_notify_kit_before"


def _on_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    if raw:  # fixtures are not edits
        return
    try:
        if created:
            changes.record_create(instance, using, written=rows.snapshot(instance, None))
            return
        changed, access_changed = trackers.changes(instance, update_fields)
        if changed or access_changed:
            changes.record_update(
                instance,
                changed,
                using,
                access_changed=access_changed,
                written=rows.snapshot(instance, update_fields),
                # Called only for the first change of the object in the transaction.
                before=lambda: _view_before(instance) if access_changed else None,
            )
    except Exception:  # never fail the user's save over a notification
        logger.exception("notify_kit: could not record a change of %s", sender._meta.label)


def _view_before(instance: models.Model) -> audiences.View | None:
    """Who could see the row before this save (the trackers' previous values); None: as after it."""
    if audiences.view_is_constant(type(instance)):
        return None  # every row has the same view: nothing to read, no copy of the row
    return audiences.view_of(trackers.previous(instance))


def _on_pre_delete(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    try:
        instance.__dict__[_BEFORE] = audiences.view_of(instance)
    except Exception:  # never fail the user's delete over a notification
        logger.exception("notify_kit: could not read the audiences of %s before a delete", sender._meta.label)


def _on_delete(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    try:
        before = instance.__dict__.pop(_BEFORE, None)
        changes.record_delete(instance, using, before=before)
    except Exception:  # never fail the user's delete over a notification
        logger.exception("notify_kit: could not record a delete of %s", sender._meta.label)


def _on_m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set[Any] | None,
    using: str,
    **kwargs: Any,
) -> None:
    # Before the change: who could see each row is read now, its new audiences after commit.
    if action not in ("pre_add", "pre_remove", "pre_clear"):
        return
    try:
        rows_touched: list[models.Model] = []
        if is_live(type(instance)):
            rows_touched.append(instance)
        if is_live(model):
            if pk_set is None:  # clear(): the rows linked now are the ones that leave
                pk_set = set(_linked(sender, instance, model, reverse, using))
            if pk_set:
                rows_touched.extend(model._base_manager.using(using).filter(pk__in=pk_set))
        for row in rows_touched:
            changes.record_access_change(row, using, before=audiences.view_of(row))
    except Exception:  # never fail the user's write over a notification
        logger.exception("notify_kit: could not record a many-to-many change of %s", type(instance)._meta.label)


def _linked(
    through: type[models.Model], instance: models.Model, model: type[models.Model], reverse: bool, using: str
) -> list[Any]:
    """The primary keys of ``model`` that the through table links to ``instance``."""
    keys = [f for f in through._meta.fields if f.is_relation and f.related_model in (type(instance), model)]
    if type(instance) is model:  # a relation of a model to itself: the order of the keys decides
        source, target = (keys[1], keys[0]) if reverse else (keys[0], keys[1])
    else:
        source = next(f for f in keys if f.related_model is type(instance))
        target = next(f for f in keys if f.related_model is model)
    linked = through._base_manager.using(using).filter(**{source.attname: instance.pk})
    return list(linked.values_list(target.attname, flat=True))


def _wire(model: type[models.Model]) -> None:
    trackers.install(model)
    uid = model._meta.label_lower
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=f"notify_kit.save.{uid}")
    pre_delete.connect(_on_pre_delete, sender=model, weak=False, dispatch_uid=f"notify_kit.pre_delete.{uid}")
    post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=f"notify_kit.delete.{uid}")


def _on_class_prepared(sender: type[models.Model], **kwargs: Any) -> None:
    if not is_live(sender) or sender._meta.abstract:
        return
    # Runs when the model is registered, i.e. after every class_prepared receiver, including the
    # finalize_class of a FieldTracker the model declared (connected after this receiver).
    sender._meta.apps.lazy_model_operation(_wire, (sender._meta.app_label, sender._meta.model_name))


class_prepared.connect(_on_class_prepared, dispatch_uid="notify_kit.class_prepared")
# One receiver for every many-to-many relation: either side of it may be the live model.
m2m_changed.connect(_on_m2m_changed, dispatch_uid="notify_kit.m2m_changed")
