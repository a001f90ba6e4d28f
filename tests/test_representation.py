"""notify_kit.representation: the fast path gives exactly DRF's output, and steps aside when it cannot."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from notify_kit import representation
from notify_kit.serializers import HashidField, LiveSerializerMixin, serialize
from tests.testapp.models import Comment, Note
from tests.testapp.serializers import CommentSerializer, NoteSerializer


class Shouting(serializers.CharField):
    def to_representation(self, value):
        return str(value).upper()


class NoteWithEverything(LiveSerializerMixin, serializers.ModelSerializer):
    loud = Shouting(source="title")
    count = serializers.IntegerField(source="views")
    nothing = serializers.CharField(source="body", allow_null=True)

    class Meta:
        model = Note
        fields = ["id", "title", "body", "views", "loud", "count", "nothing"]


class NoteWithMethod(LiveSerializerMixin, serializers.ModelSerializer):
    length = serializers.SerializerMethodField()

    class Meta:
        model = Note
        fields = ["id", "title", "length"]

    def get_length(self, obj):
        return len(obj.title)


class NoteWithOwnRepresentation(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = ["id", "title"]

    def to_representation(self, instance):
        return {"only": instance.title}


def steps(serializer_class):
    return representation.plan(serializer_class(), HashidField)


def test_plain_columns_take_the_fast_path_with_drfs_output():
    note = Note(pk=7, title="Grüße", body="", views=3)
    assert steps(NoteSerializer) is not None
    assert steps(NoteWithEverything) is not None
    for cls in (NoteSerializer, NoteWithEverything):
        assert serialize(cls, note) == cls(note).data


def test_none_stays_none_without_the_fields_representation():
    note = Note(pk=7, title="t", body=None, views=0)
    assert serialize(NoteWithEverything, note) == NoteWithEverything(note).data
    assert serialize(NoteWithEverything, note)["nothing"] is None


@pytest.mark.parametrize(
    "cls",
    [NoteWithMethod, NoteWithOwnRepresentation, CommentSerializer],
    ids=["method field", "own to_representation", "related field"],
)
def test_anything_else_is_left_to_drf(cls, db, alice):
    assert steps(cls) is None
    note = Note.objects.create(title="x", owner=alice)
    obj = Comment.objects.create(note=note, text="c") if cls is CommentSerializer else note
    assert serialize(cls, obj) == cls(obj).data


def test_a_deferred_column_is_read_by_drfs_path(db, alice):
    Note.objects.create(title="deferred", body="loaded when read", owner=alice)
    note = Note.objects.only("id", "title").get()
    assert representation.represent(steps(NoteSerializer), note) is None
    assert serialize(NoteSerializer, note) == NoteSerializer(note).data
