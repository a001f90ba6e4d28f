"""notify_kit.serializers: HashIDs in and out of live serializers, and the client frame's validation."""

from __future__ import annotations

import math

import pytest
from rest_framework import serializers

from notify_kit import notifications
from notify_kit.serializers import HashidRelatedField, LiveSerializerMixin, SubscriptionRequestSerializer
from tests.testapp.models import Comment, Document, Note
from tests.testapp.serializers import CommentSerializer, NoteSerializer

pytestmark = pytest.mark.django_db


@pytest.fixture
def comment(note):
    return Comment.objects.create(note=note, text="nice")


# LiveSerializerMixin: output


def test_primary_key_is_rendered_as_the_hashid(note):
    assert NoteSerializer(note).data == {"id": note.hashid, "title": "first", "body": "hello"}


def test_many_instances_render_their_own_hashids(note, alice):
    other = Note.objects.create(owner=alice, title="other")
    data = NoteSerializer(Note.objects.order_by("pk"), many=True).data
    assert [item["id"] for item in data] == [note.hashid, other.hashid]


def test_pk_field_name_is_rendered_as_the_hashid(note):
    class ByPk(LiveSerializerMixin, serializers.ModelSerializer):
        class Meta:
            model = Note
            fields = ["pk", "title"]

    assert ByPk(note).data == {"pk": note.hashid, "title": "first"}


def test_foreign_key_to_a_live_model_is_rendered_as_its_hashid(comment, note):
    assert CommentSerializer(comment).data == {"id": comment.hashid, "note": note.hashid, "text": "nice"}
    # The note's id, not the comment model's id of the same pk.
    assert CommentSerializer(comment).data["note"] != Comment(pk=note.pk).hashid


def test_foreign_key_to_a_model_that_is_not_live_keeps_its_pk(note, alice):
    class WithOwner(LiveSerializerMixin, serializers.ModelSerializer):
        class Meta:
            model = Note
            fields = ["id", "owner"]

    assert WithOwner(note).data == {"id": note.hashid, "owner": alice.pk}


def test_serializer_without_the_mixin_is_left_alone(note):
    class Plain(serializers.ModelSerializer):
        class Meta:
            model = Note
            fields = ["id"]

    assert Plain(note).data == {"id": note.pk}


def test_id_field_is_read_only(note):
    serializer = NoteSerializer(note, data={"id": "somethingelse", "title": "changed", "body": ""})
    assert serializer.is_valid(), serializer.errors
    assert "id" not in serializer.validated_data
    assert serializer.save().pk == note.pk


# LiveSerializerMixin: input


def test_hashid_of_a_related_live_object_is_parsed(note):
    serializer = CommentSerializer(data={"note": note.hashid, "text": "reply"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["note"] == note
    assert serializer.save().note_id == note.pk


def test_hashid_output_round_trips_as_input(comment):
    data = CommentSerializer(comment).data
    serializer = CommentSerializer(data={"note": data["note"], "text": "again"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["note"] == comment.note


@pytest.mark.parametrize("value", ["garbage!", "", "abcdefgh", "x" * 100])
def test_garbage_related_id_is_rejected(note, value):
    serializer = CommentSerializer(data={"note": value, "text": "reply"})
    assert not serializer.is_valid()
    assert "note" in serializer.errors


def test_another_models_hashid_is_rejected(note):
    # A Document with the very pk of the note: its HashID must not name the note.
    document = Document.objects.create(pk=note.pk, name="same pk")
    serializer = CommentSerializer(data={"note": document.hashid, "text": "reply"})
    assert not serializer.is_valid()
    assert serializer.errors["note"][0].code == "does_not_exist"


def test_hashid_of_a_deleted_object_is_rejected(note):
    hashid = note.hashid
    note.delete()
    serializer = CommentSerializer(data={"note": hashid, "text": "reply"})
    assert not serializer.is_valid()
    assert serializer.errors["note"][0].code == "does_not_exist"


@pytest.mark.parametrize("value", ["pk", 1.0, ["x"], {"id": "x"}])
def test_raw_pk_and_other_types_are_rejected(note, value):
    # A client must not be able to name an object by its sequential pk.
    value = note.pk if value == "pk" else value
    serializer = CommentSerializer(data={"note": value, "text": "reply"})
    assert not serializer.is_valid()
    assert serializer.errors["note"][0].code == "incorrect_type"


def test_related_queryset_limits_what_a_hashid_may_name(note, alice, bob):
    bobs = Note.objects.create(owner=bob, title="bob's")

    class OwnNotesOnly(CommentSerializer):
        note = HashidRelatedField(queryset=Note.objects.filter(owner=alice))

    assert OwnNotesOnly(data={"note": note.hashid, "text": "mine"}).is_valid()
    serializer = OwnNotesOnly(data={"note": bobs.hashid, "text": "not mine"})
    assert not serializer.is_valid()
    assert serializer.errors["note"][0].code == "does_not_exist"


# get_group_name


def test_get_group_name_of_the_serializers_instance(note):
    name = NoteSerializer(note).get_group_name()
    assert name == note.get_live_group_name() == notifications.group_name("testapp.note", note.hashid)


def test_get_group_name_of_a_given_instance(note, alice):
    other = Note.objects.create(owner=alice, title="other")
    assert NoteSerializer(note).get_group_name(other) == other.get_live_group_name() != note.get_live_group_name()


# SubscriptionRequestSerializer


def validate(**frame):
    serializer = SubscriptionRequestSerializer(data=frame)
    return serializer.is_valid(), (serializer.validated_data if serializer.is_valid() else serializer.errors)


def test_type_defaults_to_subscribe():
    ok, data = validate(model="testapp.note", id="abcdefgh")
    assert ok
    assert data == {"type": "subscribe", "model": "testapp.note", "id": "abcdefgh"}


@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe"])
def test_known_types_are_accepted(kind):
    ok, data = validate(type=kind, model="testapp.note", id="abcdefgh")
    assert ok
    assert data["type"] == kind


@pytest.mark.parametrize("kind", ["publish", "Subscribe", "", None, 1])
def test_unknown_type_is_rejected(kind):
    ok, errors = validate(type=kind, model="testapp.note", id="abcdefgh")
    assert not ok
    assert "type" in errors


@pytest.mark.parametrize("field", ["model", "id"])
@pytest.mark.parametrize("value", [5, 5.5, True, None, ["x"], {"x": 1}])
def test_model_and_id_must_be_strings(field, value):
    frame = {"model": "testapp.note", "id": "abcdefgh", field: value}
    ok, errors = validate(**frame)
    assert not ok
    assert list(errors) == [field]


def test_model_is_required():
    ok, errors = validate(id="abcdefgh")
    assert not ok
    assert errors["model"][0].code == "required"


def test_without_id_the_frame_is_about_a_collection():
    ok, _ = validate(model="testapp.note")
    assert ok
    ok, _ = validate(model="testapp.note", filter={"archived": False}, actions=["created"], fields=["title"],
                     snapshot=True)  # fmt: skip
    assert ok


@pytest.mark.parametrize(
    "extra",
    [
        {"id": "abcdefgh", "filter": {}},
        {"filter": {"a": [1]}},
        {"filter": {"a": {"b": 1}}},
        {"filter": []},
        {"actions": ["created", "moved"]},
        {"actions": "created"},
        {"fields": [1]},
        {"snapshot": "yes"},
        {"snapshot": 1},
    ],
)
def test_collection_options_are_validated(extra):
    ok, _ = validate(model="testapp.note", **extra)
    assert not ok, extra


@pytest.mark.parametrize(("field", "limit"), [("model", 100), ("id", 64)])
def test_over_long_strings_are_rejected(field, limit):
    frame = {"model": "testapp.note", "id": "abcdefgh"}
    assert validate(**{**frame, field: "x" * limit})[0]
    ok, errors = validate(**{**frame, field: "x" * (limit + 1)})
    assert not ok
    assert errors[field][0].code == "max_length"


@pytest.mark.parametrize("request_id", ["r-1", "", "x" * 64, 7, 0, -3, 2**53, 1.5])
def test_request_id_string_or_number_is_accepted_as_is(request_id):
    ok, data = validate(model="testapp.note", id="abcdefgh", request_id=request_id)
    assert ok, data
    assert data["request_id"] == request_id
    assert type(data["request_id"]) is type(request_id)


def test_request_id_is_optional():
    ok, data = validate(model="testapp.note", id="abcdefgh")
    assert ok
    assert "request_id" not in data


@pytest.mark.parametrize(
    "request_id",
    [True, False, None, ["x"], {"x": 1}, "x" * 65, math.nan, math.inf, -math.inf, 2**53 + 1, -(2**53) - 1],
)
def test_bad_request_id_is_rejected(request_id):
    ok, errors = validate(model="testapp.note", id="abcdefgh", request_id=request_id)
    assert not ok
    assert list(errors) == ["request_id"]


def test_unknown_keys_are_ignored():
    ok, data = validate(model="testapp.note", id="abcdefgh", extra="ignored")
    assert ok
    assert "extra" not in data
