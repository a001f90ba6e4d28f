"""DRF's ``Serializer.to_representation``, without its per-field overhead, for the plain cases.

An event's ``data`` is the live serializer's output, computed once per write in the writer. For
a serializer of plain model columns, most of DRF's cost is not the values but the generic path
around each one: ``Field.get_attribute`` (a loop over the source's parts, a ``Mapping`` ABC check,
a callable check, exception handling for missing attributes), the ``PKOnlyObject`` check, and
the ``_readable_fields`` generator. The design choice is to take the fast path only where it
provably gives DRF's output, and DRF's own path everywhere else:

* the serializer keeps DRF's ``Serializer.to_representation`` (not overridden);
* every readable field is either a column read as it is (``get_attribute`` not overridden, a
  one-part ``source`` naming a concrete, non-relational model field, read from the instance's
  ``__dict__``), or notify_kit's ``HashidField`` (the instance itself);
* each value still goes through the field's own ``to_representation``, overridden or not, and
  ``None`` stays ``None`` without it, as DRF does.

A serializer with any other field (a method field, a nested or related one, a dotted source), or
an instance with a deferred column, is serialized by DRF itself. tests/test_representation.py
compares both paths.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from rest_framework import fields, serializers

from .rows import plain_column

#: One readable field: (its name in the output, the attname read, or None for the instance
#: itself, and the field's bound to_representation).
Step = tuple[str, str | None, Any]

_MISSING = object()


def applies(serializer: Any) -> bool:
    """Whether ``serializer`` has DRF's own ``to_representation`` (asked on every call: cheap)."""
    return type(serializer).to_representation is serializers.Serializer.to_representation


def plan(serializer: Any, instance_field: Any) -> list[Step] | None:
    """The fast path's steps for ``serializer``, or None when DRF's own path must be taken.

    ``instance_field`` is the field class whose value is the instance itself (HashidField).
    """
    if not applies(serializer):
        return None
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    if model is None:
        return None
    steps: list[Step] = []
    field: Any
    for field in serializer.fields.values():
        if field.write_only:
            continue
        if type(field) is instance_field:
            steps.append((field.field_name, None, field.to_representation))
            continue
        if type(field).get_attribute is not fields.Field.get_attribute or len(field.source_attrs) != 1:
            return None
        try:
            column = model._meta.get_field(field.source_attrs[0])
        except FieldDoesNotExist:
            return None  # a property or method of the model: DRF may call it
        if not getattr(column, "concrete", False) or column.is_relation or not plain_column(model, column.attname):
            return None
        steps.append((field.field_name, column.attname, field.to_representation))
    return steps


def represent(steps: list[Step], instance: Any) -> dict[str, Any] | None:
    """DRF's output for ``instance`` by ``steps``; None when a column is deferred (use DRF's path)."""
    state = instance.__dict__
    ret: dict[str, Any] = {}
    for name, attname, to_representation in steps:
        if attname is None:
            ret[name] = to_representation(instance)
            continue
        value = state.get(attname, _MISSING)
        if value is _MISSING:
            return None  # deferred: reading it would load it, as DRF's getattr does
        ret[name] = None if value is None else to_representation(value)
    return ret
