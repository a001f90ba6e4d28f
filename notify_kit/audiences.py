"""Audiences: who may see a row, as opaque keys computed in the writer, once per write.

A model says who may see a row with ``live_audiences()`` (keys such as ``"user:5"``,
``"team:3"``, ``"public"``), and which keys a user holds with ``live_audiences_of(user)``. A
user sees a row when they hold one of its keys. The design choice is to decide visibility by
set intersection on both ends of the wire, never by a query per subscriber:

* the writer computes the row's keys before the write (from the trackers' previous values) and
  after it (on the committed row), at most once each, and runs each distinct payload serializer
  once per event;
* each key is a channel-layer group (``notify_kit.<label>.a.<digest>``), so an event reaches only
  the sockets that hold one of its keys, and carries the digests of its old and new keys;
* a socket compares those digests with the keys it learnt when it subscribed.

Keys never reach the browser: groups and messages carry a digest of each key.
``live_audiences()`` may return a mapping ``{key: serializer}`` instead of a list, for
per-audience payloads; a subscriber gets the payload of the first key it holds, in the mapping's
order. A model that declares no audiences has one key, its model-level view permission.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, cast

from django.db import models
from django.utils.module_loading import import_string
from rest_framework.utils.encoders import JSONEncoder

from . import notifications


def permission_key(model: type[models.Model]) -> str:
    """The key of a model that declares no audiences: its ``<app>.view_<model>`` permission."""
    return f"perm:{model._meta.app_label}.view_{model._meta.model_name}"


def digest(key: str) -> str:
    """The digest standing for ``key`` in groups and messages (keys never leave the server)."""
    return _digest(str(key))


@lru_cache(maxsize=4096)
def _digest(key: str) -> str:
    # A few digests per write, mostly of the same keys (a model's permission key, a team's).
    return hashlib.blake2b(key.encode(), digest_size=9).hexdigest()


def group(label: str, key_digest: str) -> str:
    """The channel-layer group of one audience of one model."""
    return notifications.group_name(label, f"a.{key_digest}")


def digests_of(keys: Iterable[Any]) -> frozenset[str]:
    """The digests of the keys a user holds."""
    return frozenset(digest(key) for key in keys)


def audiences_of(instance: models.Model) -> list[tuple[str, Any]]:
    """The row's keys in order, each with its payload serializer class (None: the live serializer)."""
    declared = instance.live_audiences()  # type: ignore[attr-defined]
    if isinstance(declared, Mapping):
        return [(str(key), serializer) for key, serializer in declared.items()]
    return [(str(key), None) for key in declared]


def serializer_class(model: type[models.Model], serializer: Any) -> type:
    """The serializer class an audience names: a class, a dotted path, or None for the live serializer."""
    if serializer is None:
        return model.get_live_serializer_class()  # type: ignore[attr-defined, no-any-return]
    if isinstance(serializer, str):
        return _imported(serializer)
    return serializer  # type: ignore[no-any-return]


@lru_cache(maxsize=256)
def _imported(path: str) -> type:
    # Once per dotted path, not once per write and audience.
    return import_string(path)  # type: ignore[no-any-return]


def payloads(
    instance: models.Model, keyed: list[tuple[str, Any]], known: Mapping[type, tuple[Any, str]] | None = None
) -> tuple[list[list[Any]], list[str], list[frozenset[str] | None]]:
    """Each distinct serializer run once: ([[digest, payload index], ...], [payload JSON, ...], fields).

    ``known`` maps serializer classes already run for this event to their data and its JSON text. ``fields`` holds,
    per payload, the field names an audience with its own serializer may hear about in
    ``changed`` (None: the live serializer's audiences hear every tracked field, as object
    subscribers do): a change of a field only another audience sees must not be announced.
    """
    from .serializers import serialize  # DRF is imported when the first event is built, not with models

    model = type(instance)
    texts: list[str] = []
    visible: list[frozenset[str] | None] = []
    index_of: dict[type, int] = {}
    ordered: list[list[Any]] = []
    live = model.get_live_serializer_class()  # type: ignore[attr-defined]
    for key, serializer in keyed:
        cls = serializer_class(model, serializer)
        if cls not in index_of:
            index_of[cls] = len(texts)
            if known and cls in known:
                data, text = known[cls]
            else:
                data = serialize(cls, instance)
                text = encode(data)
            texts.append(text)
            visible.append(None if cls is live else frozenset(data))
        ordered.append([digest(key), index_of[cls]])
    return ordered, texts, visible


def encode(data: Any) -> str:
    """JSON exactly as frames are encoded (DRF's encoder, compact, UTF-8)."""
    return _encode(data)


# One encoder object for every payload: json.dumps(cls=...) builds a new one on every call.
_encode = JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# -- filters ----------------------------------------------------------------------------------


def filter_value(field: models.Field[Any, Any], value: Any) -> Any:
    """A column's value as the JSON scalar that filters compare (a foreign key: the related pk)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return str(value)


def filter_values(model: type[models.Model], instance: models.Model) -> dict[str, Any]:
    """The values of the model's ``live_filter_fields`` on ``instance``."""
    names = getattr(model, "live_filter_fields", ()) or ()
    values = {}
    for name in names:
        # A filter field is a concrete column (its attname is read), never a reverse relation.
        field = cast("models.Field[Any, Any]", model._meta.get_field(name))
        values[name] = filter_value(field, instance.__dict__.get(field.attname))
    return values


def matches(wanted: Mapping[str, Any], values: Mapping[str, Any] | None) -> bool:
    """Whether a row's filter values satisfy a subscription's exact-match filter."""
    if values is None:
        return False
    return all(values.get(name) == value for name, value in wanted.items())


#: Who could see a row at one moment: its key digests and its filter values.
View = tuple[frozenset[str], dict[str, Any]]


def view_is_constant(model: type[models.Model]) -> bool:
    """Whether every row of ``model`` has the same view: no audiences of its own, no filter fields."""
    return not model.declares_audiences() and not getattr(model, "live_filter_fields", ())  # type: ignore[attr-defined]


def view_of(instance: models.Model) -> View:
    """The row's key digests and filter values as the instance holds them now (may query)."""
    keys = frozenset(digest(key) for key, _ in audiences_of(instance))
    return keys, filter_values(type(instance), instance)
