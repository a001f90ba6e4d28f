"""The committed state of a row: what an event may claim the row holds, and how it travels.

An event must describe the row as a read right after commit would return it, never the in-memory
instance: a ``save(update_fields=[...])`` leaves unsaved values on the instance, an ``F()``
expression leaves an expression object, and code may change the instance after ``save()`` and
before the commit. Re-reading the row for every event would cost a query per save, so the choice
is to re-read only when the instance cannot be trusted:

* at save time, :func:`snapshot` copies the values that were written, and says whether they are
  the whole row (a full ``save()`` of plain values) or not (``update_fields``, deferred fields,
  expressions);
* at commit time, :func:`committed` uses the instance itself when the snapshot was whole and the
  instance still holds exactly those values (the common case: no query), and reads the row once
  otherwise, once per event and never per subscriber.

The same committed values travel with an event that may change who can see the row
(:func:`encode`), so that each receiving socket decides access from the event itself
(:func:`decode`), without a query for a policy over the row's own fields.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import json
import uuid
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils.duration import duration_iso_string

#: A snapshot of the written values: attname -> value, or None when they are not the whole row.
Snapshot = dict[str, Any] | None

_MISSING = object()
# Decoded rows kept per process: every socket of one process that receives an event decodes the
# same text, so one decode serves them all. Small: only the events in flight matter.
_DECODED_MAX = 256
_decoded: OrderedDict[tuple[str, str], models.Model] = OrderedDict()


def _concrete(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return list(model._meta.concrete_fields)


def snapshot(instance: models.Model, update_fields: frozenset[str] | None) -> Snapshot:
    """The values a ``save()`` wrote, if they are the whole row; else None (the row is re-read)."""
    if update_fields is not None:
        return None  # the other columns hold whatever the database has, not what the instance has
    values: dict[str, Any] = {}
    state = instance.__dict__
    for field in _concrete(type(instance)):
        value = state.get(field.attname, _MISSING)
        # A deferred or generated column is not on the instance; an expression (F(), Now()) is
        # only resolved by the database.
        if value is _MISSING or hasattr(value, "resolve_expression"):
            return None
        # A JSON value mutated in place after save() must not change the snapshot with it.
        values[field.attname] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return values


def committed(instance: models.Model, written: Snapshot, using: str) -> models.Model | None:
    """The row as committed: ``instance`` when it still holds what was written, else read once.

    Returns None when the row no longer exists (deleted since by another transaction, whose own
    delete notifies).
    """
    if written is not None:
        state = instance.__dict__
        if all(state.get(name, _MISSING) == value for name, value in written.items()):
            return instance
    # The base manager: a default manager that hides rows (soft deletes) must not hide this one.
    return type(instance)._base_manager.using(using).filter(pk=instance.pk).first()


def plain_column(model: type, attname: str) -> bool:
    """Whether reading ``attname`` on an instance gives the value in its ``__dict__``.

    Django's own DeferredAttribute does (django-model-utils' tracker wraps it, keeping that);
    a field with a descriptor of its own (FileField's FieldFile, a money or encrypted field)
    does not, and is left to DRF.
    """
    for klass in model.__mro__:
        if attname in vars(klass):
            found = vars(klass)[attname]
            found = getattr(found, "descriptor", found)  # model_utils' DescriptorWrapper
            return type(found) is DeferredAttribute
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.timedelta):
        return duration_iso_string(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()  # full precision: DjangoJSONEncoder cuts microseconds
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot travel in an event's row")


# One encoder object for every row: json.dumps(default=...) builds a new one on every call.
_encoder = json.JSONEncoder(default=_plain, separators=(",", ":"))


def encode(instance: models.Model, attnames: frozenset[str] | None = None) -> str:
    """The committed values of ``instance`` (all concrete fields, or ``attnames`` and the pk) as text."""
    values: dict[str, Any] = {}
    state = instance.__dict__
    for field, binary, plain in _encoded_fields(type(instance), attnames):
        # A plain column's loaded value as it is: what value_from_object reads, minus the
        # descriptor django-model-utils wraps around tracked fields. Anything else (a deferred
        # value, a field with a descriptor of its own) is read the usual way.
        value = state[field.attname] if plain and field.attname in state else field.value_from_object(instance)
        if binary and value is not None:
            value = field.value_to_string(instance)  # base64, which BinaryField.to_python reads back
        values[field.attname] = value
    return _encoder.encode(values)


@lru_cache(maxsize=512)
def _encoded_fields(
    model: type[models.Model], attnames: frozenset[str] | None
) -> tuple[tuple[models.Field[Any, Any], bool, bool], ...]:
    # Which fields an encoded row carries, and how each is read, is fixed per model: decided
    # once, not per event.
    pk_name = model._meta.pk.attname
    return tuple(
        (field, isinstance(field, models.BinaryField), plain_column(model, field.attname))
        for field in _concrete(model)
        if attnames is None or field.attname in attnames or field.attname == pk_name
    )


def decode(model: type[models.Model], text: str) -> models.Model:
    """An unsaved-looking instance holding the committed values of ``text`` (cached per process).

    Fields the text does not carry are deferred: reading one loads it from the database, which
    on a consumer's event loop raises SynchronousOnlyOperation and moves the decision to the
    database thread (see notify_kit.access).
    """
    key = (model._meta.label_lower, text)
    instance = _decoded.get(key)
    if instance is not None:
        _decoded.move_to_end(key)
        return instance
    raw = json.loads(text)
    names, values = [], []
    for field in _concrete(model):
        if field.attname in raw:
            value = raw[field.attname]
            names.append(field.attname)
            values.append(None if value is None else field.to_python(value))
    # from_db marks the missing fields deferred and the instance as existing, as a query would.
    instance = model.from_db(None, names, values)
    _decoded[key] = instance
    if len(_decoded) > _DECODED_MAX:
        _decoded.popitem(last=False)
    return instance
