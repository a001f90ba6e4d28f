"""LiveModelMixin: a model whose writes notify the users allowed to see them.

The mixin holds the hooks a project overrides (who may subscribe, who may see a row, what the
events carry) and their secure defaults; the wiring that turns writes into events lives in
notify_kit.receivers (connected when the model is registered) and notify_kit.changes.

Two ways to say who may see a row, and they agree by default:

* ``can_subscribe(user)``, asked for one object (an instance subscription);
* audiences: ``live_audiences()`` gives the row's keys, ``live_audiences_of(user)`` the keys a
  user holds, and a user sees a row when they hold one of its keys. Collection subscriptions use
  only these, so that delivering an event costs no query (see notify_kit.audiences). A model that
  declares no audiences has one key: its ``<app>.view_<model>`` permission. A model that declares
  them gets, as its default ``can_subscribe``, "holds one of the row's keys".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from django.db import models, transaction
from django.utils.module_loading import import_string

from . import audiences, hashids, notifications, receivers, trackers
from .querysets import LiveManager

logger = logging.getLogger("notify_kit")

__all__ = ["LiveModelMixin", "receivers", "tracker_of"]
tracker_of = trackers.tracker_of


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

    #: The fields a collection subscription may filter on (exact match).
    live_filter_fields: ClassVar[tuple[str, ...]] = ()

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

        For a model that declares audiences: the user holds one of the row's keys. Otherwise the
        authentication backends are asked for the object-level permission first (django-guardian
        and similar), then the model-level ``<app>.view_<model>``.
        """
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
            if not type(self).declares_audiences():
                return False
        if type(self).declares_audiences():
            held = {str(key) for key in type(self).live_audiences_of(user)}
            return any(key in held for key, _ in audiences.audiences_of(self))
        perm = f"{self._meta.app_label}.view_{self._meta.model_name}"
        return bool(user.has_perm(perm, self) or user.has_perm(perm))

    def live_audiences(self) -> list[str] | Mapping[str, Any]:
        """Who may see this row, as audience keys (or ``{key: serializer}``). Runs once per write, in the writer."""
        return [audiences.permission_key(type(self))]

    @classmethod
    def live_audiences_of(cls, user: Any) -> list[str]:
        """The keys ``user`` holds. Runs once per subscription, on the database thread."""
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
            return []
        perm = f"{cls._meta.app_label}.view_{cls._meta.model_name}"
        return [audiences.permission_key(cls)] if user.has_perm(perm) else []

    @classmethod
    def declares_audiences(cls) -> bool:
        """Whether the model overrides ``live_audiences`` (else its audience is the view permission)."""
        return cls.live_audiences is not LiveModelMixin.live_audiences

    @classmethod
    def live_snapshot_queryset(cls, user: Any) -> models.QuerySet[Any]:
        """The rows a collection snapshot reads before it keeps those ``user`` sees (narrow it to be fast)."""
        return cls._default_manager.all()

    def get_live_group_name(self) -> str:
        """The channel-layer group of this object's subscribers."""
        return notifications.group_name(self._meta.label_lower, self.hashid)

    @classmethod
    def get_live_serializer_class(cls) -> type:
        """The serializer class of ``data`` in ``updated`` events."""
        serializer = cls.live_serializer
        if isinstance(serializer, str):
            # Asked a few times per write: import_string (a module lookup and getattr) once per path.
            found = _imported.get(serializer)
            if found is None:
                found = _imported[serializer] = cast(type, import_string(serializer))
            return found
        if serializer is None:
            return _default_serializer(cls)
        return serializer

    def get_live_data(self) -> Any:
        """The ``data`` of an ``updated`` event, serialized once for every subscriber."""
        from .serializers import serialize

        return serialize(self.get_live_serializer_class(), self)

    @classmethod
    def live_access_attnames(cls) -> frozenset[str] | None:
        """The attnames of ``live_access_fields``, or None for every concrete field."""
        return trackers.access_attnames(cls)

    def notify_access_changed(self) -> None:
        """After commit, make every subscriber of this object check ``can_subscribe`` again.

        Call it when access changes without a save of this row (a share removed, a group
        membership changed); subscribers who lost access are dropped and told ``revoked``.
        """
        group, label, hashid = self.get_live_group_name(), self._meta.label_lower, self.hashid
        message = {"type": notifications.RECHECK_TYPE, "model": label, "id": hashid}
        transaction.on_commit(lambda: notifications.send(group, message), robust=True)


_default_serializers: dict[type, type] = {}
# Dotted paths of live serializers, imported once.
_imported: dict[str, type] = {}


def _default_serializer(model: type[LiveModelMixin]) -> type:
    # Imported here: serializers import DRF settings, which must not load with the app registry.
    from rest_framework import serializers

    from .serializers import LiveSerializerMixin

    if model not in _default_serializers:
        tracked = sorted(trackers.tracker_of(model).fields)
        meta = type("Meta", (), {"model": model, "fields": [model._meta.pk.name, *tracked]})
        name = f"{model.__name__}LiveSerializer"
        _default_serializers[model] = type(name, (LiveSerializerMixin, serializers.ModelSerializer), {"Meta": meta})
    return _default_serializers[model]
