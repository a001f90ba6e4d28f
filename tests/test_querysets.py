"""notify_kit.querysets and notify_kit.bulk: writes of many rows notify like saves, at O(1) queries.

Two halves, as in the rest of the suite: the unit recorder (``notifications.send`` replaced) for
exactly which events leave a transaction and how many queries it took, then real consumers on
both layers for what a subscriber sees, revocation included. Memo is the README's model: access by
``owner_id``, no ``live_access_fields`` (every column may decide access).
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.deletion import Collector
from django.test.utils import CaptureQueriesContext

from notify_kit import bulk, django_sql, notifications
from notify_kit.querysets import LiveManager, LiveQuerySet
from tests.send_helpers import Recorder
from tests.test_access import revoked, settle
from tests.testapp.models import Document, Memo, Note

on_commit_db = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def memos(owner, count, **fields):
    return Memo.objects.bulk_create([Memo(owner=owner, title=f"m{i}", **fields) for i in range(count)])


# The manager


def test_a_live_model_without_a_manager_gets_the_live_one():
    assert isinstance(Memo.objects, LiveManager)
    assert isinstance(Memo.objects.filter(pk=1), LiveQuerySet)
    assert Memo._default_manager.name == "objects"


@on_commit_db
def test_related_managers_are_live(sent, alice):
    memo = Memo.objects.create(owner=alice, title="t")
    assert isinstance(alice.memos.all(), LiveQuerySet)
    alice.memos.update(title="through the relation")
    assert [(f["id"], f["data"]["title"]) for f in sent.frames] == [(memo.hashid, "through the relation")]


# update()


@on_commit_db
def test_an_overridden_group_name_gets_the_rows_read_once_in_the_transaction(sent, monkeypatch, alice, bob):
    rows = memos(alice, 3) + memos(bob, 2)
    monkeypatch.setattr(Memo, "get_live_group_name", lambda self: f"memos-of-{self.owner_id}")
    with CaptureQueriesContext(connection) as captured:
        Memo.objects.update(title="x")
    assert sorted(group for group, _ in sent) == sorted(f"memos-of-{m.owner_id}" for m in rows)
    assert [q["sql"].split()[0] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")] == [
        "UPDATE",
        "SELECT",  # the rows for the group names, in the transaction
        "SELECT",  # the rows as committed, for the events
    ]


@on_commit_db
def test_update_sends_one_updated_per_row_after_commit(sent, alice, bob):
    mine, theirs = memos(alice, 3), memos(bob, 1)
    with transaction.atomic():
        assert Memo.objects.filter(owner=alice).update(title="bulk") == 3
        assert sent == []
    assert sorted(sent.by_id()) == sorted(m.hashid for m in mine)
    for memo in mine:
        frame = sent.by_id()[memo.hashid]
        assert frame == {
            "type": "updated",
            "model": "testapp.memo",
            "id": memo.hashid,
            "data": {"id": memo.hashid, "title": "bulk", "body": ""},
            "changed": ["title"],
        }
    assert {group for group, _ in sent} == {m.get_live_group_name() for m in mine}
    assert theirs[0].hashid not in sent.by_id()


@on_commit_db
def test_update_data_is_the_committed_value_of_an_expression(sent):
    doc = Document.objects.create(name="d", size=1)
    Document.objects.filter(pk=doc.pk).update(size=F("size") + 41)
    assert sent.frames[0]["data"]["size"] == 42
    assert sent.frames[0]["changed"] == ["size"]


@on_commit_db
def test_update_of_a_field_neither_tracked_nor_deciding_access_sends_nothing(sent, note):
    # Note: tracker (title, body, owner), live_access_fields = ("owner",); views is neither.
    assert Note.objects.filter(pk=note.pk).update(views=7) == 1
    assert sent == []


@on_commit_db
def test_update_of_an_access_field_carries_the_committed_access_values(sent, note, bob):
    Note.objects.filter(pk=note.pk).update(owner=bob)
    (_, message), frame = sent[0], sent.frames[0]
    assert frame["changed"] == ["owner"]
    assert json.loads(message["row"]) == {"id": note.pk, "owner_id": bob.pk}


@on_commit_db
def test_update_of_an_untracked_access_field_sends_a_recheck_without_a_frame(sent, alice, bob):
    (memo,) = memos(alice, 1)
    Memo.objects.filter(pk=memo.pk).update(owner=bob)  # Memo's tracker follows title and body only
    ((_, message),) = sent
    assert "text" not in message
    assert json.loads(message["row"])["owner_id"] == bob.pk


@on_commit_db
def test_rolled_back_update_sends_nothing(sent, alice):
    memos(alice, 2)
    with pytest.raises(Rollback), transaction.atomic():
        Memo.objects.update(title="never")
        raise Rollback
    assert sent == []


@on_commit_db
def test_update_in_a_rolled_back_savepoint_sends_nothing_and_keeps_the_outer_save(sent, alice):
    (memo,) = memos(alice, 1)
    with transaction.atomic():
        memo.title = "kept"
        memo.save()
        with pytest.raises(Rollback), transaction.atomic():
            Memo.objects.update(body="rolled back")
            raise Rollback
    assert [(f["changed"], f["data"]) for f in sent.frames] == [
        (["title"], {"id": memo.hashid, "title": "kept", "body": ""})
    ]


@on_commit_db
def test_update_merges_with_a_save_of_the_same_row(sent, alice):
    first, second = memos(alice, 2)
    with transaction.atomic():
        first.title = "saved"
        first.save()
        Memo.objects.filter(owner=alice).update(body="bulk")
        second.title = "saved after"
        second.save(update_fields=["title"])
    assert len(sent) == 2
    assert sent.by_id()[first.hashid]["changed"] == ["body", "title"]
    assert sent.by_id()[first.hashid]["data"] == {"id": first.hashid, "title": "saved", "body": "bulk"}
    assert sent.by_id()[second.hashid]["data"] == {"id": second.hashid, "title": "saved after", "body": "bulk"}


@on_commit_db
def test_two_updates_of_the_same_rows_send_one_event_each(sent, alice):
    rows = memos(alice, 3)
    with transaction.atomic():
        Memo.objects.update(title="one")
        Memo.objects.update(body="two")
    assert len(sent) == 3
    assert {f["id"]: (f["changed"], f["data"]["title"], f["data"]["body"]) for f in sent.frames} == {
        m.hashid: (["body", "title"], "one", "two") for m in rows
    }


@on_commit_db
def test_update_then_delete_sends_only_deleted(sent, alice):
    (memo,) = memos(alice, 1)
    with transaction.atomic():
        Memo.objects.update(title="gone")
        Memo.objects.filter(pk=memo.pk).delete()
    assert [f["type"] for f in sent.frames] == ["deleted"]


@on_commit_db
def test_update_without_returning_reads_the_pks_first(sent, monkeypatch, alice, bob):
    # The public-API path used where UPDATE cannot return rows (MySQL, a multi-table parent's field).
    monkeypatch.setattr(django_sql, "update_returning_pks", lambda queryset, values: None)
    mine = memos(alice, 2)
    memos(bob, 1)
    assert Memo.objects.filter(owner=alice).update(title="fallback") == 2
    assert sorted(sent.by_id()) == sorted(m.hashid for m in mine)


def _queries(count, write, owner):
    """For ``write(rows)`` on ``count`` fresh rows: (queries in its transaction, after commit, events)."""
    Memo.objects.all().delete()
    rows = memos(owner, count)
    recorder, marks = Recorder(), []
    original, notifications.send_many = notifications.send_many, recorder.many
    try:
        with CaptureQueriesContext(connection) as captured:
            with transaction.atomic():
                # Registered first, so it runs first after commit: the queries after it are the events'.
                transaction.on_commit(lambda: marks.append(len(captured)))
                start = len(captured)
                write(rows)
                in_transaction = len(captured) - start
    finally:
        notifications.send_many = original
    return in_transaction, len(captured) - marks[0], len(recorder)


@on_commit_db
@pytest.mark.parametrize(
    ("write", "plain"),
    [
        pytest.param(
            lambda rows: Memo.objects.update(title="x"), lambda rows: QuerySet(Memo).update(title="x"), id="tracked"
        ),
        pytest.param(
            lambda rows: Memo.objects.update(views=F("views") + 1),
            lambda rows: QuerySet(Memo).update(views=F("views") + 1),
            id="untracked-access-field",
        ),
        pytest.param(
            lambda rows: Memo.objects.filter(owner__is_active=True).update(title="x"),
            lambda rows: QuerySet(Memo).filter(owner__is_active=True).update(title="x"),
            id="join",
        ),
        pytest.param(
            lambda rows: Memo.objects.bulk_update([*(setattr(m, "title", "y") or m for m in rows)], ["title"]),
            lambda rows: QuerySet(Memo).bulk_update([*(setattr(m, "title", "y") or m for m in rows)], ["title"]),
            id="bulk_update",
        ),
    ],
)
def test_a_bulk_write_costs_one_read_after_commit_whatever_its_rows(write, plain, alice):
    for count in (10, 200):
        in_transaction, after_commit, events = _queries(count, write, alice)
        assert events == count
        # The statement costs what Django's own does (UPDATE ... RETURNING instead of UPDATE)...
        assert in_transaction == _queries(count, plain, alice)[0]
        # ...and the events one read after commit.
        assert after_commit == 1


@on_commit_db
def test_queryset_delete_reads_nothing_after_commit(alice):
    for count in (10, 200):
        _, after_commit, events = _queries(count, lambda rows: Memo.objects.all().delete(), alice)
        assert (after_commit, events) == (0, count)


@on_commit_db
def test_a_live_model_is_never_fast_deleted(alice):
    # A fast delete sends no post_delete; the collector only does it for models without receivers.
    memos(alice, 1)
    assert not Collector(using="default", origin=None).can_fast_delete(Memo.objects.all())


@on_commit_db
def test_rows_read_for_access_alone_hold_the_access_fields_only(note):
    # No tracked field written: the events carry no data, only the access values.
    batch = bulk.Batch(Note, "default", needs_data=False)
    batch.pks = [note.pk]
    with CaptureQueriesContext(connection) as captured:
        row = batch.committed(note.pk)
        assert (row.pk, row.owner_id) == (note.pk, note.owner_id)
    assert len(captured) == 1
    assert row.get_deferred_fields() == {"title", "body", "views"}


# bulk_update()


@on_commit_db
def test_bulk_update_sends_each_object_in_every_batch(sent, alice):
    rows = memos(alice, 5)
    for memo in rows:
        memo.title, memo.views = f"new {memo.pk}", 3
    assert Memo.objects.bulk_update(rows, ["title"], batch_size=2) == 5
    assert {f["id"]: (f["changed"], f["data"]["title"]) for f in sent.frames} == {
        m.hashid: (["title"], f"new {m.pk}") for m in rows
    }


@on_commit_db
def test_bulk_update_of_a_field_neither_tracked_nor_deciding_access_sends_nothing(sent, note):
    note.views = 4
    Note.objects.bulk_update([note], ["views"])
    assert sent == []


@on_commit_db
def test_rolled_back_bulk_update_sends_nothing(sent, alice):
    rows = memos(alice, 2)
    with pytest.raises(Rollback), transaction.atomic():
        Memo.objects.bulk_update(rows, ["title"])
        raise Rollback
    assert sent == []


# bulk_create()


@on_commit_db
def test_bulk_create_sends_nothing_like_a_create(sent, alice):
    created = memos(alice, 3)
    assert all(m.pk for m in created)
    assert sent == []


@on_commit_db
def test_a_save_after_bulk_create_reports_only_what_it_changed(sent, alice):
    (note,) = Note.objects.bulk_create([Note(owner=alice, title="t", body="b")])
    note.title = "changed"
    note.save()
    ((_, message),) = sent
    assert json.loads(message["text"])["changed"] == ["title"]
    assert "row" not in message  # the owner did not change: nobody needs to check access again


# Raw SQL


@on_commit_db
def test_notify_changed_sends_the_rows_as_committed_in_one_read(sent, alice):
    rows = memos(alice, 30)
    table = connection.ops.quote_name(Memo._meta.db_table)
    marks = []
    with CaptureQueriesContext(connection) as captured:
        with transaction.atomic():
            transaction.on_commit(lambda: marks.append(len(captured)))
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET title = %s", ["raw"])
            before = len(captured)
            bulk.notify_changed(Memo, [m.pk for m in rows], ["title"])
            assert sent == [] and len(captured) == before  # nothing read before commit
    assert len(captured) - marks[0] == 1
    assert {f["id"]: (f["changed"], f["data"]["title"]) for f in sent.frames} == {
        m.hashid: (["title"], "raw") for m in rows
    }


@on_commit_db
def test_notify_changed_outside_a_transaction_still_sends(sent, alice):
    (memo,) = memos(alice, 1)
    Memo.objects.filter(pk=memo.pk).update(title="x")
    sent.clear()
    bulk.notify_changed(Memo, [memo.pk])  # every field: Memo's access may have changed too
    ((_, message),) = sent
    assert json.loads(message["text"])["changed"] == ["body", "title"]
    assert json.loads(message["row"])["owner_id"] == alice.pk


@on_commit_db
def test_notify_changed_skips_a_row_that_is_gone(sent, alice):
    rows = memos(alice, 2)
    Memo.objects.filter(pk=rows[0].pk).delete()
    sent.clear()
    bulk.notify_changed(Memo, [m.pk for m in rows], ["title"])
    assert [f["id"] for f in sent.frames] == [rows[1].hashid]


@on_commit_db
def test_notify_deleted(sent, alice):
    rows = memos(alice, 2)
    with transaction.atomic():
        Memo.objects.filter(owner=alice)._raw_delete("default")  # a delete that sends no post_delete
        bulk.notify_deleted(Memo, [m.pk for m in rows])
    assert sorted((f["type"], f["id"]) for f in sent.frames) == sorted(("deleted", m.hashid) for m in rows)


# Through a real consumer, on both layers


@database_sync_to_async
def _memos(owner, count):
    return memos(owner, count)


@on_commit_db
async def test_subscribers_receive_an_update(layer, ws, alice, bob):
    mine, theirs = await _memos(alice, 2), await _memos(bob, 1)
    async with ws(alice) as client:
        for memo in mine:
            assert (await client.subscribe(memo))["type"] == "subscribed"
        await database_sync_to_async(Memo.objects.all().update)(title="bulk")
        received = {(await client.receive())["id"] for _ in mine}
        assert received == {m.hashid for m in mine}
        await settle()
        assert await client.nothing()
    assert theirs


@on_commit_db
async def test_an_update_of_the_owner_revokes(layer, ws, alice, bob):
    (memo,) = await _memos(alice, 1)
    async with ws(alice) as alice_client:
        await alice_client.subscribe(memo)
        await database_sync_to_async(Memo.objects.filter(pk=memo.pk).update)(owner=bob, title="for bob")
        assert await alice_client.receive() == revoked(memo)
        await database_sync_to_async(Memo.objects.filter(pk=memo.pk).update)(title="bob's secret")
        await settle()
        assert await alice_client.nothing()


@on_commit_db
async def test_a_bulk_update_of_the_owner_revokes_only_the_rows_given_away(layer, ws, alice, bob):
    kept, given = await _memos(alice, 2)
    async with ws(alice) as client:
        await client.subscribe(kept)
        await client.subscribe(given)
        kept.title, given.owner, given.title = "still mine", bob, "bob's now"

        @database_sync_to_async
        def write():
            Memo.objects.bulk_update([kept, given], ["title", "owner"])

        await write()
        frames = [await client.receive(), await client.receive()]
        assert revoked(given) in frames
        (update,) = [f for f in frames if f["type"] == "updated"]
        assert (update["id"], update["data"]["title"]) == (kept.hashid, "still mine")
        await settle()
        assert await client.nothing()


@on_commit_db
async def test_subscribers_receive_a_raw_sql_write_notified(layer, ws, alice):
    (memo,) = await _memos(alice, 1)
    async with ws(alice) as client:
        await client.subscribe(memo)

        @database_sync_to_async
        def write():
            with transaction.atomic():
                QuerySet(Memo).filter(pk=memo.pk).update(title="behind notify_kit's back")
                bulk.notify_changed(Memo, [memo.pk], ["title"])

        await write()
        event = await client.receive()
        assert (event["changed"], event["data"]["title"]) == (["title"], "behind notify_kit's back")
