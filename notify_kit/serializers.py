"""DRF serializers: LiveSerializerMixin for live models, and the validation of client frames.

The design choice: a sequential primary key never leaves the server. A serializer with the mixin
renders the model's primary key, and every foreign key to another live model, as HashIDs, so a
REST client holds exactly the id it subscribes with; and it names the channel-layer group of its
instance, so custom code can send to the same subscribers.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, cast

from rest_framework import serializers

from . import hashids, representation
from .live import is_live

if TYPE_CHECKING:
    from django.db.models import QuerySet

_serializers = threading.local()


def serialize(serializer_class: type, instance: Any) -> Any:
    """``serializer_class(instance).data``, without rebuilding the serializer's fields each time."""
    # A ModelSerializer builds its fields (model introspection, deep copies) anew for every
    # instance: most of the cost of serializing one object. One unbound serializer per class and
    # thread keeps the built fields; to_representation() keeps no state between calls.
    cache = getattr(_serializers, "by_class", None)
    if cache is None:
        cache = _serializers.by_class = {}
    entry = cache.get(serializer_class)
    if entry is None:
        serializer = serializer_class()
        entry = cache[serializer_class] = (serializer, representation.plan(serializer, HashidField))
    serializer, steps = entry
    if steps is not None and representation.applies(serializer):
        data = representation.represent(steps, instance)
        if data is not None:
            return data
    return serializer.to_representation(instance)


class HashidField(serializers.Field[Any, Any, str, Any]):
    """A live model's primary key, rendered as its HashID (read-only)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance: Any) -> Any:
        return instance

    def to_representation(self, value: Any) -> str:
        return hashids.encode(type(value), value.pk)


class HashidRelatedField(serializers.PrimaryKeyRelatedField[Any]):
    """A relation to a live model, rendered and parsed as the related object's HashID."""

    default_error_messages = {
        "does_not_exist": "Invalid id - object does not exist.",
        "incorrect_type": "Incorrect type. Expected a HashID string.",
    }

    def to_representation(self, value: Any) -> str:
        # With a queryset set, get_queryset() returns a QuerySet (DRF calls .all() on a Manager).
        # The ignore is a stub gap: the stubs type `queryset` as possibly a Manager, and mypy then
        # applies Manager.__get__ (which refuses instances, to catch `obj.objects`) to this read.
        model = (
            cast("QuerySet[Any]", self.get_queryset()).model
            if self.queryset is not None  # type: ignore[arg-type]
            else value.__class__
        )
        return hashids.encode(model, value.pk)

    def to_internal_value(self, data: Any) -> Any:
        # Only a writable field parses input, and DRF asserts that a writable one has a queryset.
        queryset = cast("QuerySet[Any]", self.get_queryset())
        if not isinstance(data, str):
            self.fail("incorrect_type")
        pk = hashids.decode(queryset.model, data)
        if pk is None:
            self.fail("does_not_exist")
        try:
            return queryset.get(pk=pk)
        except queryset.model.DoesNotExist:
            self.fail("does_not_exist")


class LiveSerializerMixin:
    """For a ModelSerializer of a live model: HashIDs for keys, and the instance's group name."""

    def build_field(
        self, field_name: str, info: Any, model_class: type, nested_depth: int
    ) -> tuple[type, dict[str, Any]]:
        field_class, kwargs = super().build_field(field_name, info, model_class, nested_depth)  # type: ignore[misc]
        if is_live(model_class) and field_name in ("pk", info.pk.name):
            return HashidField, {}
        return field_class, kwargs

    def build_relational_field(self, field_name: str, relation_info: Any) -> tuple[type, dict[str, Any]]:
        field_class, kwargs = super().build_relational_field(field_name, relation_info)  # type: ignore[misc]
        if is_live(relation_info.related_model) and issubclass(field_class, serializers.PrimaryKeyRelatedField):
            return HashidRelatedField, kwargs
        return field_class, kwargs

    def get_group_name(self, instance: Any = None) -> str:
        """The channel-layer group of ``instance`` (default: this serializer's instance)."""
        instance = self.instance if instance is None else instance  # type: ignore[attr-defined]
        return cast(str, instance.get_live_group_name())


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers instead of turning them into strings."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RequestIdField(serializers.Field[Any, Any, Any, Any]):
    """The client's correlation id: a string of up to 64 characters or a finite number."""

    default_error_messages = {"invalid": "Must be a string of at most 64 characters or a number."}

    def to_internal_value(self, data: Any) -> str | int | float:
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > 64:
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        if isinstance(data, int) and abs(data) > 2**53:  # beyond what a JavaScript number keeps exact
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class StrictBooleanField(serializers.BooleanField):
    """A BooleanField that takes only JSON true and false, not "yes" or 1."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class FilterField(serializers.DictField):
    """A collection's filter: field names to JSON scalars (checked against the model later)."""

    default_error_messages = {
        "scalar": "Filter values must be strings, numbers, booleans or null.",
        "too_many": "At most 10 fields in a filter.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if len(value) > 10:
            self.fail("too_many")
        for name, item in value.items():
            if len(name) > 100 or not (item is None or isinstance(item, (str, int, float, bool))):
                self.fail("scalar")
            if isinstance(item, str) and len(item) > 200:
                self.fail("scalar")
        return value


class SubscriptionRequestSerializer(serializers.Serializer[Any]):
    """One client frame: ``{"type", "model", "id"?, "filter"?, "actions"?, "fields"?, "snapshot"?, "request_id"?}``.

    With ``id`` it is about one object; without, about a collection (every row the user may see
    that matches ``filter``).
    """

    type = serializers.ChoiceField(
        choices=["subscribe", "unsubscribe"],
        default="subscribe",
        error_messages={"invalid_choice": 'Unknown type; expected "subscribe" or "unsubscribe".'},
    )
    model = StrictCharField(max_length=100)
    id = StrictCharField(max_length=64, required=False)
    filter = FilterField(required=False)
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=["created", "updated", "deleted"]), required=False, max_length=3
    )
    # The ignore: for mypy this shadows Serializer.fields (the bound fields), but at runtime the
    # serializer's metaclass moves every declared field out of the class, so nothing is shadowed.
    fields = serializers.ListField(  # type: ignore[assignment]
        child=StrictCharField(max_length=100), required=False, max_length=100
    )
    snapshot = StrictBooleanField(required=False)
    request_id = RequestIdField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "id" in attrs and "filter" in attrs:
            raise serializers.ValidationError({"filter": "A subscription names an id or a filter, not both."})
        return attrs
