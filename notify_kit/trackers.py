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

from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.base import ModelState
from model_utils import FieldTracker
from model_utils.tracker import FieldInstanceTracker

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


def _changed_test(instance: models.Model) -> Callable[[Any, str], bool]:
    """``has_changed(tracker, field)`` for this save, reading the row's deferred fields once.

    django-model-utils' ``has_changed`` asks ``get_deferred_fields()`` (a loop over every
    concrete field) twice per field, and one save asks about each field up to twice: most of the
    cost of telling what changed. For a field that is not deferred it only compares the saved
    value with the current one, which is done here directly; a deferred field, whose previous
    value may have to be loaded, and any tracker class of the project's own, keep model_utils'
    own answer.
    """
    deferred = instance.get_deferred_fields()

    def has_changed(tracker: Any, field: str) -> bool:
        if field in deferred or type(tracker) is not FieldInstanceTracker:
            return bool(tracker.has_changed(field))
        if field not in tracker.fields:
            raise FieldError(f'field "{field}" not tracked')
        return bool(tracker.saved_data.get(field) != getattr(instance, tracker.field_map[field]))

    return has_changed


def changes(instance: models.Model, update_fields: frozenset[str] | None) -> tuple[list[str], bool]:
    """What this save changed: the tracked fields (with ``update_fields``, only those written), and
    whether a field that may decide who sees the row changed (tracked by the model or not).
    """
    has_changed = _changed_test(instance)
    tracker, own = _trackers(instance)
    fields = tracker.fields if update_fields is None else [f for f in tracker.fields if f in update_fields]
    changed = [f for f in fields if has_changed(tracker, f)]
    found, asked = set(changed), set(fields)
    for name, attname, followed in _access[type(instance)]:
        if update_fields is not None and name not in update_fields and attname not in update_fields:
            continue
        if followed and name in asked:
            now = name in found  # the model's tracker was asked about it just above: not twice
        else:
            now = has_changed(tracker if followed else own, name)
        if now:
            return changed, True
    return changed, False


def _trackers(instance: models.Model) -> tuple[Any, Any]:
    return getattr(instance, _tracker_names[type(instance)]), getattr(instance, _OWN_NAME, None)


def previous(instance: models.Model) -> models.Model:
    """A copy of ``instance`` as it was before this save, for what the fields deciding access were."""
    model_tracker, own = _trackers(instance)
    has_changed = _changed_test(instance)
    model = type(instance)
    # A shallow copy of the field values with a state of its own, without the related objects
    # cached on the saved instance: what copy.copy() gives, at a tenth of its cost (no pickling
    # protocol, no deep copy of _state).
    before = model.__new__(model)
    before.__dict__.update(instance.__dict__)
    before._state = ModelState()
    before._state.db, before._state.adding = instance._state.db, instance._state.adding
    for name, attname, followed in _access[model]:
        tracker = model_tracker if followed else own
        if has_changed(tracker, name):
            before.__dict__[attname] = tracker.previous(name)
    return before
