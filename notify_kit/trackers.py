"""Trackers: what a save changed, captured before django-model-utils forgets it.

django-model-utils' ``FieldTracker`` decides what "really changed" means. A tracker declared on
an abstract mixin is not attached to subclasses, so the mixin declares none: notify_kit uses the
one the concrete model declares, and installs one over every concrete field when there is none.

Revocation and audiences must not depend on which fields the developer chose to track, so the
fields that may decide who sees a row (``live_access_fields``, by default every concrete field,
and ``live_filter_fields``) that the model's tracker does not follow get a second tracker of
notify_kit's own, over those fields only: a field is never tracked twice.

Everything here runs in ``post_save``, while the trackers still hold the previous values:
model_utils resets them when ``save_base`` returns, long before any on-commit callback runs.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from django.db import models
from model_utils import FieldTracker

_OWN_NAME = "_notify_kit_access_tracker"
_OWN_ATTNAME = "_notify_kit_access_tracker_state"

# Resolved once per model when it is wired, not on every save.
_tracker_names: dict[type[models.Model], str] = {}
# model -> (name, attname, whether the model's own tracker follows it) per field deciding access.
_access: dict[type[models.Model], list[tuple[str, str, bool]]] = {}
_access_attnames: dict[type[models.Model], frozenset[str] | None] = {}


def tracker_name_of(model: type[models.Model]) -> str | None:
    """Name of the FieldTracker that decides what changed for ``model``, or None."""
    explicit = getattr(model, "live_tracker", None)
    if explicit:
        return str(explicit)
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


def _finalize(model: type[models.Model], fields: list[str], name: str, attname: str) -> None:
    tracker = FieldTracker(fields=fields)
    # What contribute_to_class would do, minus waiting for class_prepared, which has fired already.
    tracker.name, tracker.attname = name, attname
    tracker.finalize_class(model)


def install(model: type[models.Model]) -> None:
    """Give ``model`` a tracker if it has none, and track the fields that decide access."""
    if tracker_name_of(model) is None:
        if hasattr(model, "tracker"):
            raise TypeError(
                f"{model._meta.label} has a 'tracker' attribute that is not a FieldTracker; declare a "
                "FieldTracker and name it in live_tracker."
            )
        _finalize(model, [f.name for f in model._meta.concrete_fields if not f.primary_key], "tracker", "_tracker")
    _tracker_names[model] = tracker_name_of(model) or "tracker"

    declared = getattr(model, "live_access_fields", None)
    if declared is None:
        access = [f for f in model._meta.concrete_fields if not f.primary_key]
        _access_attnames[model] = None
    else:
        # Concrete fields only (check E004 rejects any other name), never a reverse relation.
        access = [cast("models.Field[Any, Any]", model._meta.get_field(name)) for name in declared]
        _access_attnames[model] = frozenset(f.attname for f in access)
    watched = {f.name: f for f in access}
    for name in getattr(model, "live_filter_fields", ()) or ():
        field = model._meta.get_field(name)
        watched.setdefault(field.name, field)  # type: ignore[arg-type]
    followed: set[str] = set()
    for name in tracker_of(model).fields:
        followed.update(f.name for f in model._meta.concrete_fields if name in (f.name, f.attname))
    _access[model] = [(f.name, f.attname, f.name in followed) for f in watched.values()]
    own = [name for name, _, followed_already in _access[model] if not followed_already]
    if own:
        _finalize(model, own, _OWN_NAME, _OWN_ATTNAME)


def access_attnames(model: type[models.Model]) -> frozenset[str] | None:
    """The attnames of ``live_access_fields``, or None for every concrete field."""
    return _access_attnames.get(model)


def changed_fields(instance: models.Model, update_fields: frozenset[str] | None) -> list[str]:
    """The tracked fields this save changed (with ``update_fields``, only those written)."""
    tracker = getattr(instance, _tracker_names[type(instance)])
    fields = tracker.fields if update_fields is None else [f for f in tracker.fields if f in update_fields]
    return [f for f in fields if tracker.has_changed(f)]


def _trackers(instance: models.Model) -> tuple[Any, Any]:
    return getattr(instance, _tracker_names[type(instance)]), getattr(instance, _OWN_NAME, None)


def access_changed(instance: models.Model, update_fields: frozenset[str] | None) -> bool:
    """Whether the save changed a field that may decide who sees the row (tracked by the model or not)."""
    model_tracker, own = _trackers(instance)
    for name, attname, followed in _access[type(instance)]:
        if update_fields is not None and name not in update_fields and attname not in update_fields:
            continue
        if (model_tracker if followed else own).has_changed(name):
            return True
    return False


def previous(instance: models.Model) -> models.Model:
    """A copy of ``instance`` as it was before this save, for what the fields deciding access were."""
    model_tracker, own = _trackers(instance)
    before = copy.copy(instance)
    # A state of its own, without the related objects cached on the saved instance.
    before._state = copy.copy(instance._state)
    before._state.fields_cache = {}
    for name, attname, followed in _access[type(instance)]:
        tracker = model_tracker if followed else own
        if tracker.has_changed(name):
            before.__dict__[attname] = tracker.previous(name)
    return before
