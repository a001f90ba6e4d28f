"""notify_kit.testing: capture_notifications records the frames subscribers would get, without a layer.

Run under each way a project runs its tests: Django's TestCase (on-commit callbacks never run
unless captured) and TransactionTestCase (real commits), pytest-django's ``db`` and
``transactional_db``.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, transaction
from django.test import TestCase, TransactionTestCase, override_settings

from notify_kit import notifications
from notify_kit.changes import Event
from notify_kit.testing import assert_not_notified, assert_notified, capture_notifications
from tests.testapp.models import Document, Note

on_commit_db = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def edit(obj, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save()


def updated(note, *changed):
    return {
        "type": "updated",
        "model": "testapp.note",
        "id": note.hashid,
        "data": {"id": note.hashid, "title": note.title, "body": note.body},
        "changed": sorted(changed),
    }


class CaptureInTestCase(TestCase):
    """Inside the test's transaction, which never commits."""

    @classmethod
    def setUpTestData(cls):
        from django.contrib.auth import get_user_model

        cls.alice = get_user_model().objects.create_user("alice")
        cls.note = Note.objects.create(owner=cls.alice, title="first", body="hello")

    def test_records_the_frame_as_on_the_wire(self):
        with capture_notifications() as sent:
            edit(self.note, title="second")
        self.assertEqual(sent, [updated(self.note, "title")])

    def test_one_frame_per_object_per_transaction(self):
        with capture_notifications() as sent:
            with transaction.atomic():
                edit(self.note, title="second")
                edit(self.note, body="more")
        self.assertEqual(sent, [updated(self.note, "title", "body")])

    def test_rolled_back_savepoint_records_nothing(self):
        with capture_notifications() as sent:
            try:
                with transaction.atomic():
                    edit(self.note, title="undone")
                    raise Rollback
            except Rollback:
                pass
            doc = Document.objects.create(name="kept")
            edit(doc, name="renamed")
        self.assertEqual([f["model"] for f in sent], ["testapp.document"])

    def test_deleted(self):
        hashid = self.note.hashid
        with capture_notifications() as sent:
            self.note.delete()
        self.assertEqual(sent, [{"type": "deleted", "model": "testapp.note", "id": hashid}])
        assert_notified(sent, Note, "deleted", hashid=hashid)

    def test_transaction_still_open_at_exit_has_sent_nothing(self):
        with transaction.atomic():
            with capture_notifications() as sent:
                edit(self.note, title="not yet")
            # The block around may still roll back: its callbacks are not the capture's to run.
            self.assertEqual(sent, [])
            with capture_notifications() as later:
                pass
        self.assertEqual(later, [])

    def test_callbacks_run_once(self):
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            with capture_notifications() as sent:
                edit(self.note, title="second")
        self.assertEqual(len(sent), 1)
        self.assertEqual(callbacks, [])  # taken off the queue as a commit does: not run twice

    def test_a_later_save_is_a_new_notification(self):
        with capture_notifications() as first:
            edit(self.note, title="second")
        with capture_notifications() as second:
            edit(self.note, body="again")
        self.assertEqual(first, [updated(Note(pk=self.note.pk, title="second", body="hello"), "title")])
        self.assertEqual(second, [updated(self.note, "body")])

    def test_callbacks_queued_before_the_block_are_left_alone(self):
        edit(self.note, title="before")
        queued = list(connection.run_on_commit)
        with capture_notifications() as sent:
            pass
        self.assertEqual(sent, [])
        self.assertEqual(connection.run_on_commit, queued)

    def test_access_recheck(self):
        with capture_notifications() as sent:
            self.note.notify_access_changed()
        self.assertEqual(sent, [])  # no frame: only subscribers who lost access get one (revoked)
        self.assertEqual(sent.rechecks, [{"model": "testapp.note", "id": self.note.hashid}])


class CaptureInTransactionTestCase(TransactionTestCase):
    """Real commits."""

    def setUp(self):
        from django.contrib.auth import get_user_model

        self.note = Note.objects.create(owner=get_user_model().objects.create_user("alice"), title="first")

    def test_records_after_commit(self):
        with capture_notifications() as sent:
            with transaction.atomic():
                edit(self.note, title="second")
                self.assertEqual(sent, [])  # not before the commit
        self.assertEqual(sent, [updated(self.note, "title")])

    def test_rolled_back_transaction_records_nothing(self):
        with capture_notifications() as sent:
            try:
                with transaction.atomic():
                    edit(self.note, title="undone")
                    raise Rollback
            except Rollback:
                pass
            self.note.refresh_from_db()
            edit(self.note, body="committed")
        self.assertEqual(sent, [updated(self.note, "body")])

    def test_rolled_back_savepoint_records_nothing(self):
        with capture_notifications() as sent:
            with transaction.atomic():
                edit(self.note, body="kept")
                try:
                    with transaction.atomic():
                        edit(self.note, title="undone")
                        raise Rollback
                except Rollback:
                    pass
        self.assertEqual([f["changed"] for f in sent], [["body"]])


# pytest-django


@pytest.mark.django_db
def test_db_fixture(note, notify_kit_capture):
    with notify_kit_capture() as sent:
        edit(note, title="second")
    assert sent == [updated(note, "title")]


@on_commit_db
def test_transactional_db_fixture(note, notify_kit_capture):
    with notify_kit_capture() as sent:
        edit(note, title="second")
    assert sent == [updated(note, "title")]


@on_commit_db
def test_savepoint_rollback_transactional(note, alice):
    with capture_notifications() as sent:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    edit(note, title="undone")
                    raise Rollback
            except Rollback:
                pass
            kept = Note.objects.create(owner=alice, title="kept")
            edit(kept, body="committed")
    # Created and edited in one transaction: one `created`, with the committed data.
    assert sent == [{"type": "created", "model": "testapp.note", "id": kept.hashid, "data": updated(kept)["data"]}]


@pytest.mark.django_db
def test_savepoint_rollback_db(note, alice):
    with capture_notifications() as sent:
        try:
            with transaction.atomic():
                edit(note, title="undone")
                raise Rollback
        except Rollback:
            pass
        kept = Note.objects.create(owner=alice, title="kept")
        edit(kept, body="committed")
    # Created and edited in one transaction: one `created`, with the committed data.
    assert sent == [{"type": "created", "model": "testapp.note", "id": kept.hashid, "data": updated(kept)["data"]}]


@on_commit_db
def test_frame_is_the_rendered_event(note):
    with capture_notifications() as sent:
        edit(note, title="second")
    group, message = sent.messages[0]
    assert group == note.get_live_group_name()
    data = updated(note)["data"]
    event = Event("testapp.note", note.hashid, deleted=False, data=data, changed={"title"})
    assert message["text"] == event.render()
    assert sent == [json.loads(event.render())]


@on_commit_db
@override_settings(CHANNEL_LAYERS={})
def test_needs_no_channel_layer(note):
    with capture_notifications() as sent:
        edit(note, title="second")
    assert sent == [updated(note, "title")]


@on_commit_db
def test_writes_committed_in_another_thread_are_recorded(note):
    def write():
        try:
            edit(Note.objects.get(pk=note.pk), title="elsewhere")
        finally:
            from django.db import connection as thread_connection

            thread_connection.close()

    with capture_notifications() as sent:
        thread = threading.Thread(target=write)
        thread.start()
        thread.join(10)
    assert [f["data"]["title"] for f in sent] == ["elsewhere"]


@on_commit_db
async def test_recorded_instead_of_sent(layer, ws, alice, note):
    async with ws(alice) as client:
        assert (await client.subscribe(note))["type"] == "subscribed"
        with capture_notifications() as sent:
            note.title = "captured"
            await notifications_save(note)
        await notifications.aflush()
        assert len(sent) == 1
        assert await client.nothing()  # the layer never got it
        note.title = "sent"
        await notifications_save(note)
        assert (await client.receive())["data"]["title"] == "sent"  # the same save, not captured


async def notifications_save(obj):
    from channels.db import database_sync_to_async

    await database_sync_to_async(obj.save)()


def test_nothing_left_hooked_after_an_error():
    from notify_kit import capture

    with pytest.raises(Rollback), capture_notifications():
        raise Rollback
    assert capture.sinks == []


# Assertion helpers


def frames(note):
    return [updated(note, "title"), {"type": "deleted", "model": "testapp.document", "id": "x"}]


@pytest.mark.django_db
def test_assert_notified_returns_the_frame(note):
    sent = frames(note)
    assert assert_notified(sent, note, "updated", changed=["title"]) == sent[0]
    assert assert_notified(sent, note, data=updated(note)["data"]) == sent[0]
    assert assert_notified(sent, Document, "deleted", hashid="x") == sent[1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs",
    [{"type": "deleted"}, {"changed": ["body"]}, {"changed": ["title", "body"]}, {"data": {"title": "other"}}],
)
def test_assert_notified_fails_when_no_frame_matches(note, kwargs):
    with pytest.raises(AssertionError, match="No notification matching"):
        assert_notified(frames(note), note, **kwargs)


@pytest.mark.django_db
def test_assert_notified_of_a_deleted_object_needs_its_hashid(note):
    note.delete()
    with pytest.raises(TypeError, match="hashid="):
        assert_notified([], note, "deleted")


@pytest.mark.django_db
def test_assert_not_notified(note, alice):
    sent = frames(note)
    other = Note.objects.create(owner=alice, title="other")
    assert_not_notified(sent, other)
    assert_not_notified([])
    with pytest.raises(AssertionError, match=r"Expected no notification for testapp\.note"):
        assert_not_notified(sent, note)
    with pytest.raises(AssertionError, match="Expected no notification"):
        assert_not_notified(sent)
