"""notify_kit.rows: an event's data is the committed row, never the in-memory instance.

Each test is a reproduction from issue 8 part 1, run through a real consumer on both layers: the
frame a subscriber receives must equal what a read of the row right after commit returns.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from notify_kit import notifications, rows
from tests.testapp.models import Document, Memo, Note
from tests.testapp.serializers import NoteSerializer

pytestmark = pytest.mark.django_db(transaction=True)


async def settle():
    assert await database_sync_to_async(notifications.flush)(5)


def fresh(obj):
    return type(obj)._base_manager.get(pk=obj.pk)


async def test_update_fields_sends_the_saved_values_only(layer, ws, alice, note):
    async with ws(alice) as client:
        await client.subscribe(note)

        @database_sync_to_async
        def write():
            n = Note.objects.get(pk=note.pk)
            n.title = "saved title"
            n.body = "unsaved body"
            n.save(update_fields=["title"])
            return NoteSerializer(fresh(n)).data

        committed = await write()
        event = await client.receive()
        assert event["data"] == committed == {"id": note.hashid, "title": "saved title", "body": "hello"}
        assert event["changed"] == ["title"]


async def test_changes_after_save_and_before_commit_are_not_sent(layer, ws, alice, note):
    async with ws(alice) as client:
        await client.subscribe(note)

        @database_sync_to_async
        def write():
            with transaction.atomic():
                note.title = "committed"
                note.save()
                note.title = "never saved"  # the instance changes, the row does not
                note.body = "never saved either"

        await write()
        event = await client.receive()
        assert event["data"] == {"id": note.hashid, "title": "committed", "body": "hello"}


async def test_an_f_expression_sends_the_value_the_database_computed(layer, ws, user_factory):
    admin = await database_sync_to_async(user_factory)("admin", is_superuser=True)
    doc = await database_sync_to_async(Document.objects.create)(name="d", size=41)
    async with ws(admin) as client:
        await client.subscribe(doc)
        doc.size = F("size") + 1
        await database_sync_to_async(doc.save)()
        event = await client.receive()
        assert event["type"] == "updated" and event["changed"] == ["size"]
        assert event["data"]["size"] == 42


def note_selects(queries):
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and "testapp_note" in q["sql"]]


def test_a_full_save_of_an_untouched_instance_reads_nothing_back(note):
    note.title = "no read"
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            note.save()
    assert note_selects(queries) == []


def test_a_partial_save_reads_the_row_once_after_commit(note):
    note.title = "read once"
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            note.save(update_fields=["title"])
            note.save(update_fields=["title"])
    assert len(note_selects(queries)) == 1


def test_snapshot_is_none_when_the_instance_is_not_the_whole_row(note):
    assert rows.snapshot(note, frozenset({"title"})) is None
    note.views = F("views") + 1
    assert rows.snapshot(note, None) is None
    deferred = Note.objects.only("title").get(pk=note.pk)
    assert rows.snapshot(deferred, None) is None


def test_snapshot_is_not_changed_by_later_edits_of_a_json_value(note):
    written = rows.snapshot(note, None)
    assert written is not None and written["title"] == "first"
    note.title = "later"
    assert rows.committed(note, written, "default").title == "first"  # read back, not the instance


def test_encode_then_decode_round_trips_every_value(alice):
    memo = Memo.objects.create(owner=alice, title="t", body="b", views=3)
    text = rows.encode(memo)
    assert json.loads(text) == {"id": memo.pk, "owner_id": alice.pk, "title": "t", "body": "b", "views": 3}
    copy = rows.decode(Memo, text)
    assert (copy.pk, copy.owner_id, copy.title, copy.views) == (memo.pk, alice.pk, "t", 3)
    assert rows.decode(Memo, text) is copy  # decoded once per process, shared by its sockets


def test_decode_defers_what_the_row_does_not_carry(alice):
    memo = Memo.objects.create(owner=alice, title="t", body="b")
    copy = rows.decode(Memo, rows.encode(memo, frozenset({"owner_id"})))
    assert copy.get_deferred_fields() == {"title", "body", "views"}
