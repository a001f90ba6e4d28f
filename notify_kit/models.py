"""LiveModelMixin: a model whose saves and deletes notify the users allowed to see them.

Wiring lives here, not in the consumer: inheriting the mixin connects post_save/post_delete for
that model when the class is registered, so a save in a view, the admin, ``manage.py shell``, a
Celery worker or a management command all notify alike. ``post_delete`` (not ``Model.delete()``)
is the hook for deletes because ``QuerySet.delete()`` fires it too.

django-model-utils' ``FieldTracker`` decides what "really changed" means. A tracker declared on
an abstract mixin is not attached to subclasses, so the mixin declares none: it uses the one the
concrete model declares, and installs one over every concrete field when there is none. That
happens when the model is registered with the app registry, which is after ``class_prepared``
has finalized any tracker the model declared itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from django.db import models, transaction
from django.db.models.signals import class_prepared, post_delete, post_save
from django.utils.module_loading import import_string
from model_utils import FieldTracker

from . import changes, hashids, notifications, rows
from .querysets import LiveManager

logger = logging.getLogger("notify_kit")


class LiveModelMixin(models.Model):
    """Notify subscribers, after commit, when a tracked field changes or the row is deleted."""

    #: The serializer of the ``data`` in ``updated`` events: a class or a dotted path. None
    #: serializes the HashID and the tracked fields.
    live_serializer: ClassVar[type | str | None] = None
    #: Name of the FieldTracker to use when the model declares more than one.
    live_tracker: ClassVar[str | None] = None
    #: The fields can_subscribe reads (an owner, a visibility flag), to narrow which writes make
    #: subscribers check their access again. None (the default, and the safe choice) means every
    #: concrete field: any committed change of the row is checked. Tracked or not, either way.
    live_access_fields: ClassVar[tuple[str, ...] | None] = None

    #: Marks live models for code that must not import this module (serializers, checks).
    is_live_model: ClassVar[bool] = True

    # Inherited by a model that declares no manager of its own: its update(), bulk_update() and
    # bulk_create() notify too (notify_kit.querysets; notify_kit.W004 flags other managers).
    objects = LiveManager()

    class Meta:
        abstract = True

    @property
    def hashid(self) -> str:
        """This object's public id."""
        return hashids.encode(type(self), self.pk)

    @classmethod
    def pk_from_hashid(cls, hashid: object) -> int | None:
        """Return the primary key ``hashid`` stands for in this model, or None."""
        return hashids.decode(cls, hashid)

    @classmethod
    def get_by_hashid(cls, hashid: object, queryset: models.QuerySet[Any] | None = None) -> Any:
        """Return the object with this HashID; raise ``DoesNotExist`` for a missing or malformed one."""
        pk = cls.pk_from_hashid(hashid)
        if pk is None:
            raise cls.DoesNotExist(f"No {cls._meta.object_name} matches the given HashID.")
        return (cls._default_manager.all() if queryset is None else queryset).get(pk=pk)

    def can_subscribe(self, user: Any) -> bool:
        """Whether ``user`` may receive this object's notifications.

        The default asks the authentication backends for the object-level permission first
        (django-guardian and similar), then the model-level ``<app>.view_<model>``.
        """
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
            return False
        perm = f"{self._meta.app_label}.view_{self._meta.model_name}"
        return bool(user.has_perm(perm, self) or user.has_perm(perm))

    def get_live_group_name(self) -> str:
        """The channel-layer group of this object's subscribers."""
        return notifications.group_name(self._meta.label_lower, self.hashid)

    @classmethod
    def get_live_serializer_class(cls) -> type:
        """The serializer class of ``data`` in ``updated`` events."""
        serializer = cls.live_serializer
        if isinstance(serializer, str):
            return import_string(serializer)
        if serializer is None:
            return _default_serializer(cls)
        return serializer

    def get_live_data(self) -> Any:
        """The ``data`` of an ``updated`` event, serialized once for every subscriber."""
        return _reusable_serializer(self.get_live_serializer_class()).to_representation(self)

    @classmethod
    def live_access_attnames(cls) -> frozenset[str] | None:
        """The attnames of ``live_access_fields``, or None for every concrete field."""
        return _access_attnames.get(cls)

    def notify_access_changed(self) -> None:
        """After commit, make every subscriber of this object check ``can_subscribe`` again.

        Call it when access changes without a save of this row (a share removed, a group
        membership changed); subscribers who lost access are dropped and told ``revoked``.
        """
        group, label, hashid = self.get_live_group_name(), self._meta.label_lower, self.hashid
        message = {"type": notifications.RECHECK_TYPE, "model": label, "id": hashid}
        transaction.on_commit(lambda: notifications.send(group, message), robust=True)


_default_serializers: dict[type, type] = {}
_serializers = threading.local()


def _reusable_serializer(serializer_class: type) -> Any:
    # A ModelSerializer builds its fields (model introspection, deep copies) anew for every
    # instance: most of the cost of serializing one object. One unbound serializer per class and
    # thread keeps the built fields; to_representation() keeps no state between calls.
    cache = getattr(_serializers, "by_class", None)
    if cache is None:
        cache = _serializers.by_class = {}
    serializer = cache.get(serializer_class)
    if serializer is None:
        serializer = cache[serializer_class] = serializer_class()
    return serializer


def _default_serializer(model: type[LiveModelMixin]) -> type:
    # Imported here: serializers import DRF settings, which must not load with the app registry.
    from rest_framework import serializers

    from .serializers import LiveSerializerMixin

    if model not in _default_serializers:
        tracked = sorted(tracker_of(model).fields)
        meta = type("Meta", (), {"model": model, "fields": [model._meta.pk.name, *tracked]})
        name = f"{model.__name__}LiveSerializer"
        _default_serializers[model] = type(name, (LiveSerializerMixin, serializers.ModelSerializer), {"Meta": meta})
    return _default_serializers[model]


def tracker_name_of(model: type[models.Model]) -> str | None:
    """Name of the FieldTracker that decides what changed for ``model``, or None."""
    explicit = getattr(model, "live_tracker", None)
    if explicit:
        return explicit
    for klass in model.__mro__:
        for name, value in vars(klass).items():
            if isinstance(value, FieldTracker):
                return name
    return None


def tracker_of(model: type[models.Model]) -> FieldTracker:
    """The FieldTracker that decides what changed for ``model``."""
    name = tracker_name_of(model)
    tracker = getattr(model, name) if name else None
    if not isinstance(tracker, FieldTracker):
        raise TypeError(f"{model._meta.label}.live_tracker = {name!r} is not a FieldTracker.")
    return tracker


def _install_tracker(model: type[models.Model]) -> None:
    if tracker_name_of(model) is not None:
        return
    if hasattr(model, "tracker"):
        raise TypeError(
            f"{model._meta.label} has a 'tracker' attribute that is not a FieldTracker; declare a "
            "FieldTracker and name it in live_tracker."
        )
    tracker = FieldTracker(fields=[f.name for f in model._meta.concrete_fields if not f.primary_key])
    # What contribute_to_class would do, minus waiting for class_prepared, which has fired already.
    tracker.name, tracker.attname = "tracker", "_tracker"
    tracker.finalize_class(model)


def _on_save(
    sender: type[LiveModelMixin],
    instance: LiveModelMixin,
    created: bool,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    # A new row has no subscribers yet (one subscribes to an existing id); fixtures are not edits.
    if created or raw:
        return
    try:
        # The trackers are still un-reset here: model_utils resets them when save_base returns,
        # long before any on_commit callback runs, so what changed must be captured now.
        tracker = getattr(instance, _tracker_names[sender])
        fields = tracker.fields if update_fields is None else [f for f in tracker.fields if f in update_fields]
        changed = [f for f in fields if tracker.has_changed(f)]
        access_changed = _access_changed(sender, instance, tracker, update_fields)
        if changed or access_changed:
            written = rows.snapshot(instance, update_fields)
            changes.record_update(instance, changed, using, access_changed=access_changed, written=written)
    except Exception:  # never fail the user's save over a notification
        logger.exception("notify_kit: could not record a change of %s", sender._meta.label)


def _access_changed(
    model: type[models.Model], instance: models.Model, tracker: Any, update_fields: frozenset[str] | None
) -> bool:
    """Whether the save changed a field that may decide who sees the row (tracked by the model or not)."""
    for name, attname, via_model_tracker in _access_checks[model]:
        if update_fields is not None and name not in update_fields and attname not in update_fields:
            continue
        source = tracker if via_model_tracker else getattr(instance, _ACCESS_TRACKER_ATTNAME)
        if source.has_changed(name):
            return True
    return False


def _on_delete(sender: type[LiveModelMixin], instance: LiveModelMixin, using: str, **kwargs: Any) -> None:
    try:
        changes.record_delete(instance, using)
    except Exception:  # never fail the user's delete over a notification
        logger.exception("notify_kit: could not record a delete of %s", sender._meta.label)


# Resolved once per model when it is wired, not on every save.
_tracker_names: dict[type[models.Model], str] = {}
# model -> (name, attname, whether the model's own tracker follows it) for every access field.
_access_checks: dict[type[models.Model], list[tuple[str, str, bool]]] = {}
_access_attnames: dict[type[models.Model], frozenset[str] | None] = {}
_ACCESS_TRACKER_NAME = "_notify_kit_access_tracker"
_ACCESS_TRACKER_ATTNAME = "_notify_kit_access_tracker_state"


def _install_access_tracker(model: type[models.Model]) -> None:
    # Revocation must not depend on the developer tracking the field that decides access: the
    # fields can_subscribe may read and the model's tracker does not follow get a tracker of
    # our own (only those, so a field is never tracked twice).
    declared = getattr(model, "live_access_fields", None)
    if declared is None:
        access = [f for f in model._meta.concrete_fields if not f.primary_key]
        _access_attnames[model] = None
    else:
        access = [model._meta.get_field(name) for name in declared]
        _access_attnames[model] = frozenset(f.attname for f in access)  # type: ignore[union-attr]
    followed = set()
    for name in tracker_of(model).fields:
        try:
            followed.add(model._meta.get_field(name).name)
        except Exception:  # noqa: BLE001 - an attname such as owner_id
            followed.update(f.name for f in model._meta.concrete_fields if f.attname == name)
    checks = [(f.name, f.attname, f.name in followed) for f in access]
    _access_checks[model] = checks
    own = [name for name, _, via_model_tracker in checks if not via_model_tracker]
    if own:
        tracker = FieldTracker(fields=own)
        tracker.name, tracker.attname = _ACCESS_TRACKER_NAME, _ACCESS_TRACKER_ATTNAME
        tracker.finalize_class(model)


def _wire(model: type[models.Model]) -> None:
    _install_tracker(model)
    _tracker_names[model] = tracker_name_of(model) or "tracker"
    _install_access_tracker(model)
    uid = model._meta.label_lower
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=f"notify_kit.save.{uid}")
    post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=f"notify_kit.delete.{uid}")


def _on_class_prepared(sender: type[models.Model], **kwargs: Any) -> None:
    if not issubclass(sender, LiveModelMixin) or sender._meta.abstract:
        return
    # Runs when the model is registered, i.e. after every class_prepared receiver, including the
    # finalize_class of a FieldTracker the model declared (connected after this receiver).
    sender._meta.apps.lazy_model_operation(_wire, (sender._meta.app_label, sender._meta.model_name))


class_prepared.connect(_on_class_prepared, dispatch_uid="notify_kit.class_prepared")
