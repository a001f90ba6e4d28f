"""notify_kit.subscriptions: collections, relative to each subscriber's view, through a real consumer.

Every test runs on each channel layer (the ``layer`` fixture). SharedNote is issue 10's model
exactly (keys ``user:<pk>`` for its owner and each user it is shared with, a filter on
``archived``); Profile has per-audience payloads; Classroom is filtered by a school.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from notify_kit import access, notifications
from notify_kit.consumers import NotificationConsumer
from tests.conftest import save
from tests.testapp.models import Classroom, Document, Profile, School, SharedNote

pytestmark = pytest.mark.django_db(transaction=True)


async def settle():
    assert await asyncio.to_thread(notifications.flush, 5)


@database_sync_to_async
def make(owner, **fields):
    return created(SharedNote, owner=owner, title=fields.pop("title", "t"), **fields)


def created(model, **fields):
    """A new row, once its own `created` event has gone out: it must not reach a later subscriber."""
    row = model.objects.create(**fields)
    assert notifications.flush(5)
    return row


def collection(request_id=1, **extra):
    return {"type": "subscribe", "model": "testapp.sharednote", "request_id": request_id, **extra}


def data(note, **values):
    return {"id": note.hashid, "title": note.title, "archived": note.archived, **values}


async def test_a_share_moves_the_row_into_and_out_of_the_view(layer, ws, alice, bob, user_factory):
    carol = await database_sync_to_async(user_factory)("carol")
    note = await make(alice, title="alice's")
    async with ws(bob) as bob_client, ws(carol) as carol_client:
        answer = await bob_client.request(collection(snapshot=True))
        assert answer == {
            "type": "subscribed",
            "model": "testapp.sharednote",
            "filter": {},
            "request_id": 1,
            "data": [],
        }
        assert (await carol_client.request(collection(7)))["type"] == "subscribed"

        await database_sync_to_async(note.shared_with.add)(bob)
        assert await bob_client.receive() == {
            "type": "created", "model": "testapp.sharednote", "id": note.hashid, "data": data(note), "request_id": 1,
        }  # fmt: skip
        note.title = "edited"
        await save(note)
        assert await bob_client.receive() == {
            "type": "updated", "model": "testapp.sharednote", "id": note.hashid, "data": data(note),
            "changed": ["title"], "request_id": 1,
        }  # fmt: skip
        await database_sync_to_async(bob.visible_shared_notes.remove)(note)  # the other side of the relation
        assert await bob_client.receive() == {
            "type": "deleted", "model": "testapp.sharednote", "id": note.hashid, "request_id": 1,
        }  # fmt: skip
        note.title = "after the share"
        await save(note)
        await settle()
        assert await bob_client.nothing()
        assert await carol_client.nothing()  # never saw any of it


async def test_clear_moves_every_row_out(layer, ws, alice, bob):
    notes = [await make(alice, title=f"n{i}") for i in range(2)]
    for note in notes:
        await database_sync_to_async(note.shared_with.add)(bob)
    await settle()  # the shares' own events went out before the subscription
    async with ws(bob) as client:
        await client.request(collection())
        await database_sync_to_async(bob.visible_shared_notes.clear)()
        frames = [await client.receive(), await client.receive()]
        assert sorted((f["type"], f["id"]) for f in frames) == sorted(("deleted", n.hashid) for n in notes)


async def test_created_reaches_only_who_may_see_it(layer, ws, alice, bob):
    async with ws(alice) as alice_client, ws(bob) as bob_client:
        await alice_client.request(collection())
        await bob_client.request(collection())
        note = await make(alice, title="new")
        created = await alice_client.receive()
        assert (created["type"], created["id"], created["data"]["title"]) == ("created", note.hashid, "new")
        await settle()
        assert await bob_client.nothing()


async def test_deleting_a_row_deletes_it_from_every_view(layer, ws, alice, bob):
    note = await make(alice)
    await database_sync_to_async(note.shared_with.add)(bob)
    await settle()  # the share's own event went out before the subscriptions
    hashid = note.hashid
    async with ws(alice) as alice_client, ws(bob) as bob_client:
        await alice_client.request(collection())
        await bob_client.request(collection(3))
        await database_sync_to_async(note.delete)()
        for client, request_id in ((alice_client, 1), (bob_client, 3)):
            assert await client.receive() == {
                "type": "deleted", "model": "testapp.sharednote", "id": hashid, "request_id": request_id,
            }  # fmt: skip


async def test_an_owner_change_moves_the_row_between_views(layer, ws, alice, bob):
    note = await make(alice)
    async with ws(alice) as alice_client, ws(bob) as bob_client:
        await alice_client.request(collection())
        await bob_client.request(collection())
        note.owner = bob
        await save(note)
        assert (await alice_client.receive())["type"] == "deleted"
        assert (await bob_client.receive())["type"] == "created"


async def test_a_filter_is_a_view_too(layer, ws, alice):
    note = await make(alice)
    async with ws(alice) as client:
        answer = await client.request(collection(filter={"archived": False}, snapshot=True))
        assert answer["filter"] == {"archived": False} and [row["id"] for row in answer["data"]] == [note.hashid]
        note.archived = True
        await save(note)
        assert (await client.receive())["type"] == "deleted"
        note.archived = False
        await save(note)
        assert (await client.receive())["type"] == "created"


async def test_two_collections_of_one_model_each_get_their_frame(layer, ws, alice):
    async with ws(alice) as client:
        await client.request(collection(1, filter={"archived": False}))
        await client.request(collection(2))
        note = await make(alice)
        frames = [await client.receive(), await client.receive()]
        assert sorted((f["type"], f["id"], f["request_id"]) for f in frames) == [
            ("created", note.hashid, 1),
            ("created", note.hashid, 2),
        ]
        await settle()
        assert await client.nothing()


async def test_actions_and_fields(layer, ws, alice):
    note = await make(alice)
    async with ws(alice) as client:
        await client.request(collection(actions=["created", "deleted"], fields=["title"]))
        note.title = "not announced"
        await save(note)
        other = await make(alice, title="announced")
        assert await client.receive() == {
            "type": "created", "model": "testapp.sharednote", "id": other.hashid,
            "data": {"id": other.hashid, "title": "announced"}, "request_id": 1,
        }  # fmt: skip
        await settle()
        assert await client.nothing()


async def test_snapshot_is_limited_and_says_so(layer, ws, alice, settings):
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "SNAPSHOT_LIMIT": 2}
    notes = [await make(alice, title=f"n{i}") for i in range(3)]
    async with ws(alice) as client:
        answer = await client.request(collection(snapshot=True))
        assert answer["truncated"] is True
        assert [row["id"] for row in answer["data"]] == [n.hashid for n in notes[:2]]


async def test_subscribing_twice_is_idempotent_and_unsubscribe_names_the_filter(layer, ws, alice, consumers):
    async with ws(alice) as client:
        await client.request(collection(1, filter={"archived": False}))
        await client.request(collection(2, filter={"archived": False}))
        assert len(consumers[0]._table) == 1
        answer = await client.request({"type": "unsubscribe", "model": "testapp.sharednote",
                                       "filter": {"archived": False}, "request_id": 3})  # fmt: skip
        assert answer == {"type": "unsubscribed", "model": "testapp.sharednote", "filter": {"archived": False},
                          "request_id": 3}  # fmt: skip
        await make(alice)
        await settle()
        assert await client.nothing()


async def test_collections_count_toward_the_limit(layer, ws, alice, settings):
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "MAX_SUBSCRIPTIONS": 1}
    async with ws(alice) as client:
        await client.request(collection(1))
        answer = await client.request(collection(2, filter={"archived": True}))
        assert (answer["type"], answer["code"]) == ("error", "limit")


@pytest.mark.parametrize(
    "bad",
    [{"filter": {"title": "x"}}, {"filter": {"archived": "no"}}, {"filter": {"archived": 0}}, {"fields": ["secret"]},
     {"actions": ["moved"]}],
)  # fmt: skip
async def test_bad_filters_fields_and_actions_are_invalid(layer, ws, alice, bad):
    async with ws(alice) as client:
        answer = await client.request(collection(**bad))
        assert (answer["type"], answer["code"], answer["request_id"]) == ("error", "invalid", 1)


async def test_a_model_that_is_not_live_is_not_found(layer, ws, alice):
    async with ws(alice) as client:
        answer = await client.request({"model": "testapp.plain", "request_id": 1})
        assert (answer["type"], answer["code"]) == ("error", "not_found")


async def test_one_frame_per_event_when_a_user_holds_several_keys(layer, ws, alice, bob):
    profile = await database_sync_to_async(created)(Profile, user=alice, display_name="Alice", email="a@x")
    async with ws(alice) as client:
        answer = await client.request({"model": "testapp.profile", "snapshot": True, "request_id": 1})
        # Alice holds user:alice and signed-in: her own profile's payload is the first key's, in full.
        assert answer["data"] == [{"id": profile.hashid, "display_name": "Alice", "email": "a@x"}]
        profile.email = "new@x"
        await save(profile)
        event = await client.receive()
        assert event["data"] == {"id": profile.hashid, "display_name": "Alice", "email": "new@x"}
        await settle()
        assert await client.nothing()


async def test_per_audience_payloads(layer, ws, alice, bob):
    profile = await database_sync_to_async(created)(Profile, user=alice, display_name="Alice", email="a@x")
    async with ws(bob) as bob_client, ws(alice) as alice_client:
        answer = await bob_client.request({"model": "testapp.profile", "snapshot": True, "request_id": 1})
        assert answer["data"] == [{"id": profile.hashid, "display_name": "Alice"}]  # no email for others
        await alice_client.subscribe(profile)
        profile.display_name = "Alice B."
        await save(profile)
        assert (await bob_client.receive())["data"] == {"id": profile.hashid, "display_name": "Alice B."}
        assert (await alice_client.receive())["data"] == {"id": profile.hashid, "display_name": "Alice B.",
                                                          "email": "a@x"}  # fmt: skip


async def test_an_object_subscription_of_an_audience_model_is_revoked_by_keys(layer, ws, alice, bob):
    note = await make(alice)
    await database_sync_to_async(note.shared_with.add)(bob)
    await settle()
    async with ws(bob) as client:
        assert (await client.subscribe(note))["type"] == "subscribed"
        await database_sync_to_async(note.shared_with.remove)(bob)
        assert await client.receive() == {"type": "revoked", "model": "testapp.sharednote", "id": note.hashid}


async def test_delivery_asks_no_one(layer, ws, alice, bob, monkeypatch):
    note = await make(alice)
    async with ws(bob) as client:
        await client.request(collection())

        def forbidden(*args, **kwargs):
            raise AssertionError("delivery must not read the database or ask a policy")

        monkeypatch.setattr(NotificationConsumer, "_check_and_read", forbidden)
        monkeypatch.setattr(NotificationConsumer, "_allowed", forbidden)
        monkeypatch.setattr(access, "allowed", forbidden)
        await database_sync_to_async(note.shared_with.add)(bob)
        assert (await client.receive())["type"] == "created"
        note.title = "x"
        await save(note)
        assert (await client.receive())["type"] == "updated"


async def test_a_filter_on_a_foreign_key_chooses_a_schools_classrooms(layer, ws, user_factory):
    teacher = await database_sync_to_async(user_factory)("teacher", is_staff=True)
    north, south = [await database_sync_to_async(created)(School, name=n) for n in ("north", "south")]
    async with ws(teacher) as client:
        answer = await client.request({"model": "testapp.classroom", "filter": {"school": north.pk}, "request_id": 1})
        assert answer["type"] == "subscribed"
        await database_sync_to_async(created)(Classroom, school=south, name="elsewhere")
        room = await database_sync_to_async(created)(Classroom, school=north, name="1A")
        event = await client.receive()
        assert (event["type"], event["id"], event["data"]["name"]) == ("created", room.hashid, "1A")
        await settle()
        assert await client.nothing()


async def test_a_model_without_audiences_is_seen_with_its_view_permission(layer, ws, alice, user_factory):
    admin = await database_sync_to_async(user_factory)("admin", is_superuser=True)
    async with ws(admin) as admin_client, ws(alice) as alice_client:
        await admin_client.request({"model": "testapp.document", "request_id": 1})
        await alice_client.request({"model": "testapp.document", "request_id": 1})
        doc = await database_sync_to_async(created)(Document, name="d")
        assert (await admin_client.receive())["id"] == doc.hashid
        await settle()
        assert await alice_client.nothing()


async def test_a_change_only_another_audience_sees_is_not_announced(layer, ws, alice, bob):
    profile = await database_sync_to_async(created)(Profile, user=alice, display_name="Alice", email="a@x")
    async with ws(bob) as bob_client, ws(alice) as alice_client:
        await bob_client.request({"model": "testapp.profile", "request_id": 1})
        await alice_client.request({"model": "testapp.profile", "request_id": 1})
        profile.email = "new-secret@x"
        await save(profile)
        event = await alice_client.receive()
        assert (event["changed"], event["data"]["email"]) == (["email"], "new-secret@x")
        await settle()
        assert await bob_client.nothing()  # neither the email nor that it changed


async def test_fields_narrow_the_snapshot_too(layer, ws, alice):
    note = await make(alice, title="kept")
    async with ws(alice) as client:
        answer = await client.request(collection(fields=["title"], snapshot=True))
        assert answer["data"] == [{"id": note.hashid, "title": "kept"}]
        answer = await client.subscribe(note, fields=["archived"], snapshot=True)
        assert answer["data"] == {"id": note.hashid, "archived": False}


async def test_a_filter_of_too_many_fields_is_invalid(layer, ws, alice):
    async with ws(alice) as client:
        answer = await client.request(collection(filter={f"f{i}": i for i in range(11)}))
        assert (answer["type"], answer["code"]) == ("error", "invalid")


async def test_update_of_a_filter_field_moves_rows_out_of_the_view(layer, ws, alice):
    note = await make(alice)
    async with ws(alice) as client:
        await client.request(collection(filter={"archived": False}))
        await database_sync_to_async(SharedNote.objects.filter(pk=note.pk).update)(archived=True)
        assert (await client.receive())["type"] == "deleted"
