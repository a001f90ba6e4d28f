"""Snapshots: the current state a ``subscribed`` answer carries, read on the database thread.

The socket joins its groups before the snapshot is read, so no change committed in between is
missed; a client may see a row both in the snapshot and in a ``created`` or ``updated`` right
after it (the protocol says so). A collection's snapshot holds the rows the user sees, as the
events would show them: visibility and payload come from the same audience keys, in the same
order. At most ``SNAPSHOT_LIMIT`` rows, by primary key, flagged ``truncated`` when cut.

Reading the rows a user sees costs what ``live_snapshot_queryset(user)`` costs: narrow it to the
user's rows (``owner=user``) and the scan is theirs only; the default scans the whole model and
keeps the rows whose keys the user holds.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from . import audiences
from .serializers import serialize

_CHUNK = 500


def _payload(row: models.Model, keys: frozenset[str]) -> Any:
    """The row's data for a holder of ``keys``: its first held audience's serializer; else None."""
    for key, serializer in audiences.audiences_of(row):
        if audiences.digest(key) in keys:
            cls = audiences.serializer_class(type(row), serializer)
            return serialize(cls, row)
    return None


def only(data: Any, fields: list[str] | None) -> Any:
    """``data`` narrowed to ``fields`` (and always its id), as the subscription's frames are."""
    if fields is None or not isinstance(data, dict):
        return data
    return {name: value for name, value in data.items() if name in fields or name == "id"}


def instance(row: models.Model, keys: frozenset[str]) -> Any:
    """One object's snapshot: its audience's payload, or the live serializer's data."""
    data = _payload(row, keys) if keys else None
    return row.get_live_data() if data is None else data  # type: ignore[attr-defined]


def collection(
    model: type[models.Model], user: Any, keys: frozenset[str], filter: dict[str, Any], limit: int
) -> tuple[list[Any], bool]:
    """The rows ``user`` sees that match ``filter`` (python values), at most ``limit``; and whether cut."""
    if not keys:
        return [], False
    queryset = model.live_snapshot_queryset(user).filter(**filter).order_by("pk")  # type: ignore[attr-defined]
    rows: list[Any] = []
    for row in queryset.iterator(chunk_size=_CHUNK):
        data = _payload(row, keys)
        if data is None:
            continue
        if len(rows) == limit:
            return rows, True
        rows.append(data)
    return rows, False
