"""Collection filters: exact matches on ``live_filter_fields``, checked once when a client subscribes.

A client names each field by its name and gives a JSON scalar; a foreign key to a live model is
given as the related row's HashID (a primary key never crosses the wire). The value is converted
the way the model field converts it, then normalized exactly as the writer normalizes the row's
values in events (notify_kit.audiences.filter_value), so that delivery compares plain values and
never asks the database.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from . import audiences


class FilterError(ValueError):
    """A filter the model does not allow; the message says why (sent as an `invalid` frame)."""


_KINDS: tuple[tuple[type[models.Field[Any, Any]], tuple[type, ...]], ...] = (
    (models.BooleanField, (bool,)),
    (models.IntegerField, (int,)),
    (models.FloatField, (int, float)),
    (models.DecimalField, (int, float, str)),
    (models.CharField, (str,)),
    (models.TextField, (str,)),
)


def parse(model: type[models.Model], raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``raw`` checked against the model: (values to compare with events, lookups for the ORM)."""
    allowed = tuple(getattr(model, "live_filter_fields", ()) or ())
    compare: dict[str, Any] = {}
    lookups: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in allowed:
            choices = ", ".join(allowed) or "none"
            raise FilterError(
                f"filter: {name!r} is not a filter field of {model._meta.label_lower} (allowed: {choices})."
            )
        field = model._meta.get_field(name)
        python = _python(field, value)  # type: ignore[arg-type]
        compare[name] = audiences.filter_value(field, python)  # type: ignore[arg-type]
        lookups[field.attname] = python  # type: ignore[union-attr]
    return compare, lookups


def _python(field: models.Field[Any, Any], value: Any) -> Any:
    if value is None:
        if not field.null:
            raise FilterError(f"filter: {field.name!r} cannot be null.")
        return None
    if field.is_relation:
        related = field.related_model
        if getattr(related, "is_live_model", False) is True:
            pk = related.pk_from_hashid(value) if isinstance(value, str) else None  # type: ignore[union-attr]
            if pk is None:
                raise FilterError(f"filter: {field.name!r} takes the HashID of a {related._meta.label_lower}.")  # type: ignore[union-attr]
            return pk
        field = field.target_field  # type: ignore[attr-defined]
    for kind, accepted in _KINDS:
        if isinstance(field, kind):
            if (isinstance(value, bool) and bool not in accepted) or not isinstance(value, accepted):
                raise FilterError(f"filter: wrong type for {field.name!r}.")
            break
    try:
        return field.to_python(value)
    except ValidationError:
        raise FilterError(f"filter: invalid value for {field.name!r}.") from None
