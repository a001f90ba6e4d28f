"""notify_kit.models: LiveModelMixin's rules, one test each.

What a save or delete hands to the channel layer is captured by replacing
``notifications.send`` with a recorder: a unit seam, so these tests see exactly which
notifications leave a transaction and when. The consumer tests drive the real layers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connections, transaction
from model_utils import FieldTracker

from notify_kit import notifications
from notify_kit.conf import settings as conf
from notify_kit.models import tracker_of
from tests.testapp.models import Comment, Document, Note
from tests.testapp.serializers import NoteSerializer

on_commit_db = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def edit(obj, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save()


# Updates


@on_commit_db
def test_tracked_change_sends_one_updated(sent, note):
    edit(note, title="second")
    assert len(sent) == 1
    group, message = sent[0]
    assert group == note.get_live_group_name()
    assert message["type"] == notifications.EVENT_TYPE
    assert (message["model"], message["id"]) == ("testapp.note", note.hashid)
    assert sent.frames == [
        {
            "type": "updated",
            "model": "testapp.note",
            "id": note.hashid,
            "data": {"id": note.hashid, "title": "second", "body": "hello"},
            "changed": ["title"],
        }
    ]


@on_commit_db
def test_data_is_the_live_serializer_output(sent, note):
    edit(note, body="new body")
    assert sent.frames[0]["data"] == NoteSerializer(note).data
    assert sent.frames[0]["data"]["id"] == note.hashid != note.pk


@on_commit_db
def test_changed_lists_every_tracked_field_that_differs(sent, note):
    edit(note, title="t", body="b", views=9)
    assert sent.frames[0]["changed"] == ["body", "title"]


@on_commit_db
def test_untracked_change_sends_nothing(sent, note):
    edit(note, views=note.views + 1)
    assert sent == []


@on_commit_db
def test_save_without_a_change_sends_nothing(sent, note):
    note.save()
    edit(note, title=note.title)  # assigned, but equal
    assert sent == []


@on_commit_db
def test_change_of_an_access_field_carries_the_committed_access_values(sent, note, bob):
    edit(note, owner=bob)
    assert sent.frames[0]["changed"] == ["owner"]
    # live_access_fields = ("owner",) narrows the row to the pk and the owner.
    assert json.loads(sent[0][1]["row"]) == {"id": note.pk, "owner_id": bob.pk}


@on_commit_db
def test_change_of_other_fields_needs_no_recheck(sent, note):
    edit(note, title="x")
    assert "row" not in sent[0][1]


@on_commit_db
def test_create_sends_nothing(sent, alice):
    Note.objects.create(owner=alice, title="new")
    with transaction.atomic():
        Note.objects.create(owner=alice, title="newer")
    Document.objects.create(name="doc")
    assert sent == []


@on_commit_db
def test_raw_save_sends_nothing(sent, note):
    # loaddata saves with raw=True: fixtures are not edits.
    note.title = "from a fixture"
    note.save_base(raw=True)
    assert sent == []


@on_commit_db
def test_update_fields_without_the_changed_field_sends_nothing(sent, note):
    note.title = "unsaved"
    note.views = 3
    note.save(update_fields=["views"])
    assert sent == []
    note.refresh_from_db(fields=["title"])
    assert note.title == "first"


@on_commit_db
def test_update_fields_with_the_changed_field_sends_only_it(sent, note):
    note.title = "saved"
    note.body = "not saved"
    note.save(update_fields=["title"])
    assert [frame["changed"] for frame in sent.frames] == [["title"]]


@on_commit_db
def test_change_left_out_of_update_fields_is_sent_by_the_next_full_save(sent, note):
    note.title = "later"
    note.save(update_fields=["views"])
    note.save()
    assert [frame["changed"] for frame in sent.frames] == [["title"]]


# Transactions


@on_commit_db
def test_nothing_is_sent_before_commit(sent, note):
    with transaction.atomic():
        edit(note, title="in transaction")
        assert sent == []
    assert len(sent) == 1


@on_commit_db
def test_rollback_sends_nothing(sent, note):
    with pytest.raises(Rollback), transaction.atomic():
        edit(note, title="rolled back")
        raise Rollback
    assert sent == []


@on_commit_db
def test_rolled_back_savepoint_sends_nothing(sent, note):
    with transaction.atomic():
        with pytest.raises(Rollback), transaction.atomic():
            edit(note, title="rolled back")
            raise Rollback
    assert sent == []


@on_commit_db
def test_rolled_back_savepoint_keeps_the_outer_change(sent, note):
    with transaction.atomic():
        edit(note, title="outer")
        with pytest.raises(Rollback), transaction.atomic():
            # Another instance of the row, so the in-memory note does not carry the lost body.
            edit(Note.objects.get(pk=note.pk), body="rolled back")
            raise Rollback
    assert sent.frames == [
        {
            "type": "updated",
            "model": "testapp.note",
            "id": note.hashid,
            "data": {"id": note.hashid, "title": "outer", "body": "hello"},
            "changed": ["title"],
        }
    ]


@on_commit_db
def test_change_after_a_rolled_back_savepoint_merges_into_the_outer_one(sent, note):
    with transaction.atomic():
        edit(note, title="outer")
        with pytest.raises(Rollback), transaction.atomic():
            edit(Note.objects.get(pk=note.pk), views=1, title="lost")
            raise Rollback
        edit(note, body="after")
    assert [frame["changed"] for frame in sent.frames] == [["body", "title"]]


@on_commit_db
def test_several_saves_in_one_transaction_send_one_notification(sent, note):
    with transaction.atomic():
        edit(note, title="t2")
        edit(note, body="b2")
        edit(note, title="t3")
    assert len(sent) == 1
    assert sent.frames[0]["changed"] == ["body", "title"]
    assert sent.frames[0]["data"] == {"id": note.hashid, "title": "t3", "body": "b2"}


@on_commit_db
def test_saves_of_two_instances_of_one_row_merge_with_the_latest_data(sent, note):
    with transaction.atomic():
        edit(note, title="from the first")
        other = Note.objects.get(pk=note.pk)
        edit(other, body="from the second")
    assert len(sent) == 1
    assert sent.frames[0]["changed"] == ["body", "title"]
    assert sent.frames[0]["data"] == {"id": note.hashid, "title": "from the first", "body": "from the second"}


@on_commit_db
def test_saves_of_two_objects_send_one_notification_each(sent, note, alice):
    other = Note.objects.create(owner=alice, title="other")
    with transaction.atomic():
        edit(note, title="a")
        edit(other, title="b")
        edit(note, body="c")
    assert sorted((frame["id"], tuple(frame["changed"])) for frame in sent.frames) == sorted(
        [(note.hashid, ("body", "title")), (other.hashid, ("title",))]
    )


@on_commit_db
def test_released_savepoint_sends_after_the_outer_commit(sent, note):
    """A change inside a savepoint is sent on the outer commit, never when the savepoint is released."""
    with transaction.atomic():
        with transaction.atomic():
            edit(note, title="inner")
        assert sent == []
    assert [frame["changed"] for frame in sent.frames] == [["title"]]


@on_commit_db
def test_released_savepoint_is_sent_apart_from_the_outer_change(sent, note):
    """Documented behaviour: a change in a (released) savepoint is its own notification.

    Changes merge only at one savepoint level, so that rolling a savepoint back can take its
    changes out. Both are sent after the commit, outer level first, each with the data at commit.
    """
    with transaction.atomic():
        edit(note, title="outer")
        with transaction.atomic():
            edit(note, body="inner")
    final = {"id": note.hashid, "title": "outer", "body": "inner"}
    assert [(frame["changed"], frame["data"]) for frame in sent.frames] == [(["title"], final), (["body"], final)]


@on_commit_db
def test_next_transaction_starts_afresh(sent, note):
    with pytest.raises(Rollback), transaction.atomic():
        edit(note, title="lost")
        raise Rollback
    note.refresh_from_db()
    with transaction.atomic():
        edit(note, body="kept")
    assert [frame["changed"] for frame in sent.frames] == [["body"]]


# Deletes


@on_commit_db
def test_delete_sends_deleted_with_the_hashid_from_before(sent, note):
    hashid, group = note.hashid, note.get_live_group_name()
    note.delete()
    assert note.pk is None
    [(sent_group, message)] = sent
    assert (sent_group, message["model"], message["id"]) == (group, "testapp.note", hashid)
    assert sent.frames == [{"type": "deleted", "model": "testapp.note", "id": hashid}]


@on_commit_db
def test_delete_in_a_transaction_sends_after_commit(sent, note):
    hashid = note.hashid
    with transaction.atomic():
        note.delete()
        assert sent == []
    assert sent.frames == [{"type": "deleted", "model": "testapp.note", "id": hashid}]


@on_commit_db
def test_rolled_back_delete_sends_nothing(sent, note):
    pk = note.pk
    with pytest.raises(Rollback), transaction.atomic():
        note.delete()
        raise Rollback
    assert sent == []
    assert Note.objects.filter(pk=pk).exists()


@on_commit_db
def test_queryset_delete_sends_deleted_for_each_row(sent, note, alice, bob):
    others = [Note.objects.create(owner=alice, title=f"n{i}") for i in range(3)]
    kept = Note.objects.create(owner=bob, title="bob's")
    expected = {note.hashid, *(other.hashid for other in others)}
    Note.objects.filter(owner=alice).delete()
    assert [frame["type"] for frame in sent.frames] == ["deleted"] * 4
    assert {frame["id"] for frame in sent.frames} == expected
    assert kept.hashid not in {frame["id"] for frame in sent.frames}


@on_commit_db
def test_cascade_delete_sends_deleted_for_the_related_rows(sent, note):
    comment = Comment.objects.create(note=note, text="hi")
    Note.objects.filter(pk=note.pk).delete()
    assert sorted((frame["model"], frame["id"]) for frame in sent.frames) == sorted(
        [("testapp.note", note.hashid), ("testapp.comment", comment.hashid)]
    )


@on_commit_db
def test_update_then_delete_sends_only_deleted(sent, note, caplog):
    hashid = note.hashid
    with transaction.atomic():
        edit(note, title="short-lived")
        note.delete()
    assert sent.frames == [{"type": "deleted", "model": "testapp.note", "id": hashid}]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@on_commit_db
def test_update_then_delete_of_another_instance_sends_only_deleted(sent, note):
    # Django deletes inside atomic(savepoint=False): that is not a savepoint level of its own.
    hashid = note.hashid
    with transaction.atomic():
        edit(note, title="short-lived")
        Note.objects.filter(pk=note.pk).delete()
    assert sent.frames == [{"type": "deleted", "model": "testapp.note", "id": hashid}]


@on_commit_db
def test_saves_inside_atomic_without_savepoint_merge(sent, note):
    with transaction.atomic():
        edit(note, title="outer")
        with transaction.atomic(savepoint=False):
            edit(note, body="no savepoint")
    assert [frame["changed"] for frame in sent.frames] == [["body", "title"]]


# Async forms


@pytest.fixture
async def close_thread_connections():
    """asave() runs on asgiref's thread: close the connection it opens there (PostgreSQL teardown)."""
    yield
    await database_sync_to_async(connections.close_all)()


@on_commit_db
async def test_asave_notifies(sent, note, close_thread_connections):
    note.title = "async"
    await note.asave()
    assert [frame["changed"] for frame in sent.frames] == [["title"]]
    assert sent.frames[0]["data"]["title"] == "async"


@on_commit_db
async def test_asave_of_an_untracked_change_sends_nothing(sent, note, close_thread_connections):
    note.views = 5
    await note.asave()
    assert sent == []


@on_commit_db
async def test_adelete_notifies(sent, note, close_thread_connections):
    hashid = note.hashid
    await note.adelete()
    assert sent.frames == [{"type": "deleted", "model": "testapp.note", "id": hashid}]


@on_commit_db
async def test_queryset_adelete_notifies(sent, note, close_thread_connections):
    hashid = note.hashid
    await Note.objects.filter(pk=note.pk).adelete()
    assert sent.frames == [{"type": "deleted", "model": "testapp.note", "id": hashid}]


# Trackers


def test_declared_tracker_is_used():
    assert tracker_of(Note) is Note.tracker
    assert tracker_of(Note).fields == {"title", "body", "owner"}


def test_model_without_a_tracker_gets_one_over_all_concrete_non_pk_fields():
    tracker = tracker_of(Document)
    assert isinstance(tracker, FieldTracker)
    assert Document.tracker is tracker
    assert tracker.fields == {"name", "size"}


@on_commit_db
def test_model_without_a_tracker_notifies_on_change(sent):
    document = Document.objects.create(name="draft", size=1)
    edit(document, name="final")
    assert sent.frames == [
        {
            "type": "updated",
            "model": "testapp.document",
            "id": document.hashid,
            "data": {"id": document.hashid, "name": "final", "size": 1},
            "changed": ["name"],
        }
    ]


@on_commit_db
def test_model_without_a_tracker_sends_nothing_without_change(sent):
    document = Document.objects.create(name="draft")
    document.save()
    assert sent == []


# HashIDs


@pytest.mark.django_db
def test_hashid_is_a_str_that_is_not_the_pk(note):
    assert isinstance(note.hashid, str)
    assert note.hashid != str(note.pk)
    assert len(note.hashid) >= 8


@pytest.mark.django_db
def test_pk_from_hashid(note):
    assert Note.pk_from_hashid(note.hashid) == note.pk
    assert Note.pk_from_hashid("garbage!") is None
    assert Note.pk_from_hashid(note.pk) is None
    assert Document.pk_from_hashid(note.hashid) is None


@pytest.mark.django_db
def test_get_by_hashid(note):
    assert Note.get_by_hashid(note.hashid) == note


@pytest.mark.django_db
def test_get_by_hashid_uses_the_given_queryset(note, bob):
    assert Note.get_by_hashid(note.hashid, queryset=Note.objects.filter(owner=note.owner)) == note
    with pytest.raises(Note.DoesNotExist):
        Note.get_by_hashid(note.hashid, queryset=Note.objects.filter(owner=bob))


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["garbage!", "", None, 1, "abcdefgh"])
def test_get_by_hashid_raises_does_not_exist_for_garbage(note, value):
    with pytest.raises(Note.DoesNotExist):
        Note.get_by_hashid(value)


@pytest.mark.django_db
def test_get_by_hashid_raises_does_not_exist_for_another_models_id(note):
    document = Document.objects.create(pk=note.pk, name="same pk")
    with pytest.raises(Note.DoesNotExist):
        Note.get_by_hashid(document.hashid)
    with pytest.raises(Document.DoesNotExist):
        Document.get_by_hashid(note.hashid)


@pytest.mark.django_db
def test_get_by_hashid_raises_does_not_exist_for_a_deleted_row(note):
    hashid = note.hashid
    note.delete()
    with pytest.raises(Note.DoesNotExist):
        Note.get_by_hashid(hashid)


# can_subscribe (the default, on Document)


@pytest.fixture
def document(db):
    return Document.objects.create(name="doc")


def grant(user, codename="view_document"):
    user.user_permissions.add(Permission.objects.get(content_type__app_label="testapp", codename=codename))
    return type(user).objects.get(pk=user.pk)  # a fresh instance: permissions are cached per instance


def test_anonymous_user_may_not_subscribe(document):
    assert document.can_subscribe(AnonymousUser()) is False


def test_unauthenticated_user_is_refused_whatever_its_permissions(document):
    # Not only AnonymousUser (which is also inactive): any user object that is not authenticated.
    visitor = SimpleNamespace(is_authenticated=False, is_active=True, has_perm=lambda perm, obj=None: True)
    assert document.can_subscribe(visitor) is False


def test_authenticated_user_without_the_permission_may_not_subscribe(document, alice):
    assert document.can_subscribe(alice) is False


def test_user_with_the_view_permission_may_subscribe(document, alice):
    assert document.can_subscribe(grant(alice)) is True


def test_another_models_permission_is_not_enough(document, alice):
    assert document.can_subscribe(grant(alice, "view_note")) is False


def test_inactive_user_with_the_permission_may_not_subscribe(document, user_factory):
    carol = grant(user_factory("carol", is_active=False))
    assert document.can_subscribe(carol) is False


def test_superuser_may_subscribe(document, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw")
    assert document.can_subscribe(root) is True


class OneDocumentBackend:
    """An object-permission backend (django-guardian style) granting one document, to anyone."""

    allowed_pk = None
    asked = []

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None):
        type(self).asked.append((perm, obj))
        return obj is not None and perm == "testapp.view_document" and obj.pk == type(self).allowed_pk


@pytest.fixture
def object_backend(settings, monkeypatch):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", f"{__name__}.OneDocumentBackend"]
    monkeypatch.setattr(OneDocumentBackend, "asked", [])
    return OneDocumentBackend


def test_object_level_permission_is_asked(object_backend, monkeypatch, document, alice):
    other = Document.objects.create(name="other")
    monkeypatch.setattr(object_backend, "allowed_pk", document.pk)
    assert document.can_subscribe(alice) is True
    assert other.can_subscribe(alice) is False
    assert ("testapp.view_document", document) in object_backend.asked


def test_anonymous_user_is_refused_even_by_an_object_backend(object_backend, monkeypatch, document):
    # Such backends may grant anonymous users (django-guardian can); notify_kit's default does not.
    monkeypatch.setattr(object_backend, "allowed_pk", document.pk)
    assert AnonymousUser().has_perm("testapp.view_document", document) is True
    assert document.can_subscribe(AnonymousUser()) is False


def test_inactive_user_is_refused_even_by_an_object_backend(object_backend, monkeypatch, document, user_factory):
    # The object backend, unlike ModelBackend, does not look at is_active.
    monkeypatch.setattr(object_backend, "allowed_pk", document.pk)
    carol = user_factory("carol", is_active=False)
    assert document.can_subscribe(carol) is False


# A failing notification never fails the write


@on_commit_db
def test_failing_send_does_not_fail_the_save(monkeypatch, note, caplog):
    def broken_send(items):
        raise RuntimeError("layer exploded")

    monkeypatch.setattr(notifications, "send_many", broken_send)
    after = []
    with transaction.atomic():
        edit(note, title="kept")
        transaction.on_commit(lambda: after.append("ran"))
    assert after == ["ran"]
    edit(note, body="kept too")  # autocommit: the notification is handed over at once
    note.refresh_from_db()
    assert (note.title, note.body) == ("kept", "kept too")
    assert any("layer exploded" in str(record.exc_info) for record in caplog.records if record.exc_info)


@on_commit_db
def test_failing_send_does_not_fail_the_delete(monkeypatch, note):
    def broken_send(items):
        raise RuntimeError("layer exploded")

    monkeypatch.setattr(notifications, "send_many", broken_send)
    after = []
    with transaction.atomic():
        note.delete()
        transaction.on_commit(lambda: after.append("ran"))
    assert after == ["ran"]
    assert not Note.objects.exists()


@on_commit_db
def test_failing_serializer_does_not_fail_the_save(monkeypatch, sent, note, caplog):
    def broken(self, instance):
        raise ValueError("serializer exploded")

    monkeypatch.setattr(NoteSerializer, "to_representation", broken)
    document = Document.objects.create(name="draft")
    after = []
    with caplog.at_level(logging.ERROR, logger="notify_kit"), transaction.atomic():
        edit(note, title="kept")
        edit(document, name="sent anyway")
        transaction.on_commit(lambda: after.append("ran"))
    assert after == ["ran"]
    note.refresh_from_db()
    assert note.title == "kept"
    # The note's notification is dropped (and logged); the document's still goes out.
    assert [(frame["model"], frame["changed"]) for frame in sent.frames] == [("testapp.document", ["name"])]
    assert any("could not serialize testapp.note" in record.getMessage() for record in caplog.records)


# The sync entry point inside a running event loop


async def _listen(layer_alias):
    channel_layer = get_channel_layer(layer_alias)
    channel = await channel_layer.new_channel()
    group = notifications.group_name("testapp.note", "loopcheck")
    await notifications.group_add(group, channel)
    return channel_layer, channel, group


async def test_sync_send_from_a_running_event_loop(layer):
    channel_layer, channel, group = await _listen(conf.CHANNEL_LAYER)
    try:
        # Called in the loop's own thread: async_to_sync would raise here.
        notifications.send(group, {"type": notifications.EVENT_TYPE, "text": "from the loop"})
        message = await asyncio.wait_for(channel_layer.receive(channel), 3)
        assert message["text"] == "from the loop"
    finally:
        await notifications.group_discard(group, channel)


@on_commit_db
async def test_save_in_the_event_loop_thread_notifies(layer, note, monkeypatch):
    # A sync save called from code that runs an event loop in the same thread (a notebook,
    # an async framework calling sync helpers): the ORM is allowed here only by this flag.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    channel_layer = get_channel_layer(conf.CHANNEL_LAYER)
    channel = await channel_layer.new_channel()
    group = note.get_live_group_name()
    await notifications.group_add(group, channel)
    try:
        edit(note, title="saved in the loop's thread")
        message = await asyncio.wait_for(channel_layer.receive(channel), 3)
        assert json.loads(message["text"])["changed"] == ["title"]
    finally:
        await notifications.group_discard(group, channel)
        # The ORM kept a connection for this task's context; pytest-django knows only its own.
        connections.close_all()
