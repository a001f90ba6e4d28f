"""notify_kit.access: revocation by default, decided from what the event carries.

The reproductions of issue 8 parts 2 and 3, each through a real consumer on both layers. Memo is
the README's model exactly: ``can_subscribe`` compares ``owner_id`` and the tracker follows only
``title`` and ``body``, so nothing in it opts in to revocation.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from notify_kit import access, leaves, notifications
from tests.conftest import save
from tests.testapp.models import Memo, Note

pytestmark = pytest.mark.django_db(transaction=True)


async def settle():
    assert await asyncio.to_thread(notifications.flush, 5)


@database_sync_to_async
def make_memo(owner, **fields):
    return Memo.objects.create(owner=owner, title=fields.pop("title", "t"), **fields)


def revoked(obj):
    return {"type": "revoked", "model": obj._meta.label_lower, "id": obj.hashid}


async def test_owner_change_of_an_untracked_owner_revokes(layer, ws, alice, bob):
    memo = await make_memo(alice)
    async with ws(alice) as alice_client, ws(bob) as bob_client:
        assert (await alice_client.subscribe(memo))["type"] == "subscribed"
        memo.owner = bob
        await save(memo)
        assert await alice_client.receive() == revoked(memo)

        memo.title = "secret"
        await save(memo)
        await settle()
        assert await alice_client.nothing()  # nothing more of it, and never the new title
        assert (await bob_client.subscribe(memo))["type"] == "subscribed"  # the new owner may


async def test_owner_and_title_changed_in_one_save_send_only_revoked(layer, ws, alice, bob):
    memo = await make_memo(alice)
    async with ws(alice) as client:
        await client.subscribe(memo)
        memo.owner, memo.title = bob, "for bob's eyes"
        await save(memo)
        assert await client.receive() == revoked(memo)
        await settle()
        assert await client.nothing()


async def test_a_subscriber_who_keeps_access_gets_the_update_and_no_revoked(layer, ws, alice):
    memo = await make_memo(alice)
    async with ws(alice) as client:
        await client.subscribe(memo)
        memo.views = 5  # neither tracked nor deciding access here, but the policy might read it
        await save(memo)
        memo.title = "still mine"
        await save(memo)
        event = await client.receive()
        assert (event["type"], event["data"]["title"]) == ("updated", "still mine")
        await settle()
        assert await client.nothing()


async def test_a_row_local_policy_is_decided_on_the_loop_without_a_query(layer, ws, alice, bob, monkeypatch):
    memo = await make_memo(alice)
    threads = []
    original = Memo.can_subscribe

    def recording(self, user):
        try:
            asyncio.get_running_loop()
            threads.append("loop")
        except RuntimeError:
            threads.append("database thread")
        return original(self, user)

    monkeypatch.setattr(Memo, "can_subscribe", recording)
    async with ws(alice) as client:
        await client.subscribe(memo)
        assert threads == ["database thread"]  # subscribing reads the row
        memo.owner = bob
        await save(memo)
        assert await client.receive() == revoked(memo)
        assert threads == ["database thread", "loop"]  # delivery decided from the event alone


async def test_a_policy_that_queries_is_honoured_on_the_database_thread(layer, ws, alice, bob, user_factory):
    carol = await database_sync_to_async(user_factory)("carol")
    note = await database_sync_to_async(Note.objects.create)(owner=alice, title="t")
    await database_sync_to_async(note.shared_with.add)(bob)
    async with ws(bob) as bob_client, ws(alice) as alice_client:
        await bob_client.subscribe(note)
        await alice_client.subscribe(note)
        note.owner = carol  # alice loses access; bob keeps his share, which only a query can tell
        await save(note)
        assert await alice_client.receive() == revoked(note)
        event = await bob_client.receive()
        assert (event["type"], event["changed"]) == ("updated", ["owner"])
    assert Note in access._needs_database


async def test_removing_a_share_revokes_without_notify_access_changed(layer, ws, alice, bob):
    note = await database_sync_to_async(Note.objects.create)(owner=alice, title="t")
    await database_sync_to_async(note.shared_with.add)(bob)
    async with ws(bob) as bob_client, ws(alice) as alice_client:
        await bob_client.subscribe(note)
        await alice_client.subscribe(note)
        await database_sync_to_async(bob.shared_notes.remove)(note)  # the reverse side of the relation
        assert await bob_client.receive() == revoked(note)
        await settle()
        assert await alice_client.nothing()  # still allowed: the check is silent


async def test_a_repeated_subscribe_checks_access_again(layer, ws, alice, bob):
    note = await database_sync_to_async(Note.objects.create)(owner=alice, title="t")
    await database_sync_to_async(note.shared_with.add)(bob)
    async with ws(bob) as client:
        assert (await client.subscribe(note, request_id=1))["type"] == "subscribed"
        # A change of access notify_kit cannot see (raw SQL): only a new subscribe can notice it.
        await database_sync_to_async(Note.shared_with.through.objects.filter(note=note).delete)()
        answer = await client.subscribe(note, request_id=2)
        assert (answer["type"], answer["code"], answer["request_id"]) == ("error", "not_found", 2)
        note.title = "after the share was removed"
        await save(note)
        await settle()
        assert await client.nothing()


async def test_a_policy_error_on_delivery_fails_closed(layer, ws, alice, bob, monkeypatch):
    memo = await make_memo(alice)
    async with ws(alice) as client:
        await client.subscribe(memo)

        def broken(self, user):
            raise RuntimeError("policy bug")

        monkeypatch.setattr(Memo, "can_subscribe", broken)
        memo.owner = bob
        await save(memo)
        assert await client.receive() == revoked(memo)


# -- issue 8 part 3: after `unsubscribed` or `revoked`, nothing more, even when leaving failed ---


@pytest.fixture(params=["memory", "redis"])
def failing_leave(request, settings):
    """The layers of the `layer` fixture, with a group_discard that always raises."""
    if request.param == "redis":
        from tests.conftest import require_redis

        require_redis()
    alias = f"{request.param}_nodiscard"
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": alias}
    yield alias
    # These leaves can never succeed: drop their retries, which would outlive the test.
    with leaves._lock:
        for key in [key for key in leaves._waiting if key[0] == alias]:
            del leaves._waiting[key]


async def test_nothing_is_forwarded_after_unsubscribed_when_leaving_fails(failing_leave, ws, alice):
    memo = await make_memo(alice)
    async with ws(alice) as client:
        await client.subscribe(memo)
        answer = await client.request({"type": "unsubscribe", "model": "testapp.memo", "id": memo.hashid})
        assert answer["type"] == "unsubscribed"
        memo.title = "after unsubscribed"
        await save(memo)
        await settle()
        assert await client.nothing()


async def test_nothing_is_forwarded_after_revoked_when_leaving_fails(failing_leave, ws, alice, bob):
    memo = await make_memo(alice)
    async with ws(alice) as client:
        await client.subscribe(memo)
        memo.owner = bob
        await save(memo)
        assert await client.receive() == revoked(memo)
        memo.title = "bob's secret"
        await save(memo)
        await settle()
        assert await client.nothing()
