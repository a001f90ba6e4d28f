"""NotificationConsumer: the wire protocol, end to end through a WebsocketCommunicator.

Every consumer test runs on the three channel layers (the ``layer`` fixture: in-memory,
channels-redis core and pub/sub), except the one that is about channels-redis' core layer itself.
"No group joined" is asserted on the layer's own bookkeeping (the in-memory layer's ``groups``,
the Redis group zsets, the pub/sub layer's ``groups`` and Redis' subscriptions), and again
behaviourally: a save of the object reaches nobody.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, transaction

from notify_kit import hashids, notifications
from notify_kit.consumers import NOT_FOUND_DETAIL, NotificationConsumer
from tests.conftest import save
from tests.testapp.models import Document, Note, Plain

pytestmark = pytest.mark.django_db(transaction=True)


# -- helpers -------------------------------------------------------------------------------------


def configure(settings, **values):
    """Override NOTIFY_KIT keys on top of what the ``layer`` fixture chose."""
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, **values}


def redis_client():
    return aioredis.Redis.from_url(django_settings.REDIS_URL)


def redis_group_key(layer, group: str) -> str:
    # channels_redis.core.RedisChannelLayer._group_key: f"{prefix}:group:{group}".
    return f"{layer.prefix}:group:{group}"


def pubsub_group_channel(layer, group: str) -> str:
    # channels_redis.pubsub.RedisPubSubLoopLayer._get_group_channel_name: f"{prefix}__group__{group}".
    return f"{layer.prefix}__group__{group}"


async def groups_of(consumer: NotificationConsumer) -> set[str]:
    """The groups the consumer's channel belongs to, read from the channel layer itself."""
    layer, channel = consumer.channel_layer, consumer.channel_name
    if isinstance(layer, InMemoryChannelLayer):
        return {group for group, channels in layer.groups.items() if channel in channels}
    if isinstance(layer, RedisPubSubChannelLayer):
        # The pub/sub layer keeps group membership in the process (one Redis subscription per group).
        marker = pubsub_group_channel(layer, "")
        members = layer._get_layer().groups
        return {name.removeprefix(marker) for name, channels in members.items() if channel in channels}
    client = redis_client()
    try:
        found = set()
        async for key in client.scan_iter(match=f"{layer.prefix}:group:*", count=1000):
            if await client.zscore(key, channel) is not None:
                found.add(key.decode().split(":group:", 1)[1])
        return found
    finally:
        await client.aclose()


async def settle():
    """Wait until every notification sent from sync code so far has reached the layer."""
    assert await asyncio.to_thread(notifications.flush, 5)


async def save_and_expect_nothing(client, obj, **changes):
    for field, value in changes.items():
        setattr(obj, field, value)
    await save(obj)
    await settle()
    assert await client.nothing()


@database_sync_to_async
def make_note(owner, **fields):
    return Note.objects.create(owner=owner, title=fields.pop("title", "t"), **fields)


def note_frame(obj, **extra):
    return {"type": "subscribe", "model": "testapp.note", "id": obj.hashid, **extra}


# -- subscribe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["req-1", 7, 2.5])
async def test_subscribe_ack_echoes_model_id_and_request_id(layer, ws, alice, note, consumers, request_id):
    async with ws(alice) as client:
        ack = await client.subscribe(note, request_id=request_id)
        assert ack == {"type": "subscribed", "model": "testapp.note", "id": note.hashid, "request_id": request_id}
        assert await groups_of(consumers[0]) == {note.get_live_group_name()}


async def test_subscribe_ack_without_request_id_has_none(layer, ws, alice, note):
    async with ws(alice) as client:
        assert await client.subscribe(note) == {"type": "subscribed", "model": "testapp.note", "id": note.hashid}


async def test_bare_frame_defaults_to_subscribe(layer, ws, alice, note):
    async with ws(alice) as client:
        ack = await client.request({"model": "testapp.note", "id": note.hashid})
        assert ack == {"type": "subscribed", "model": "testapp.note", "id": note.hashid}
        note.title = "bare"
        await save(note)
        assert (await client.receive())["type"] == "updated"


async def test_model_label_is_case_insensitive(layer, ws, alice, note):
    async with ws(alice) as client:
        ack = await client.request({"model": "TestApp.Note", "id": note.hashid, "request_id": 1})
        assert ack == {"type": "subscribed", "model": "testapp.note", "id": note.hashid, "request_id": 1}
        note.title = "cased"
        await save(note)
        event = await client.receive()
        assert (event["type"], event["model"], event["id"]) == ("updated", "testapp.note", note.hashid)


# -- notifications --------------------------------------------------------------------------------


async def test_receives_updated_with_changed_and_data(layer, ws, alice, note):
    async with ws(alice) as client:
        await client.subscribe(note)
        note.body = "new body"
        await save(note)
        assert await client.receive() == {
            "type": "updated",
            "model": "testapp.note",
            "id": note.hashid,
            "data": {"id": note.hashid, "title": "first", "body": "new body"},
            "changed": ["body"],
        }
        assert await client.nothing()


async def test_a_bundle_of_events_is_forwarded_as_one_frame_each_in_order(layer, ws, alice, note):
    # The channels-redis fast path bundles one batch's events for one server process (BATCH_TYPE).
    from notify_kit.delivery import get_layer
    from notify_kit.events import Event

    async with ws(alice) as client:
        await client.subscribe(note)
        events = [
            Event("testapp.note", note.hashid, deleted=False, data={"n": n}, changed={"title"}).to_message()
            for n in range(3)
        ]
        bundle = {"type": notifications.BATCH_TYPE, "messages": events}
        await get_layer().group_send(note.get_live_group_name(), bundle)
        assert [(await client.receive())["data"]["n"] for _ in range(3)] == [0, 1, 2]
        # The same bundle again (through another of the socket's groups, say): forwarded once.
        await get_layer().group_send(note.get_live_group_name(), bundle)
        assert await client.nothing()


async def test_untracked_change_sends_nothing(layer, ws, alice, note):
    async with ws(alice) as client:
        await client.subscribe(note)
        await save_and_expect_nothing(client, note, views=note.views + 1)
        # The next tracked change is the first frame: the views save did not send one late.
        note.title = "tracked"
        await save(note)
        assert (await client.receive())["changed"] == ["title"]


async def test_deleted_after_delete(layer, ws, alice, note):
    hashid = note.hashid
    async with ws(alice) as client:
        await client.subscribe(note)
        await database_sync_to_async(note.delete)()
        assert await client.receive() == {"type": "deleted", "model": "testapp.note", "id": hashid}
        assert await client.nothing()


async def test_two_saves_in_one_transaction_send_one_event_with_the_union(layer, ws, alice, note):
    @database_sync_to_async
    def two_saves():
        with transaction.atomic():
            note.title = "one"
            note.save()
            note.body = "two"
            note.save()

    async with ws(alice) as client:
        await client.subscribe(note)
        await two_saves()
        event = await client.receive()
        assert event["changed"] == ["body", "title"]
        assert event["data"] == {"id": note.hashid, "title": "one", "body": "two"}
        await settle()
        assert await client.nothing()


# -- idempotence and unsubscribe ------------------------------------------------------------------


async def test_double_subscribe_is_idempotent(layer, ws, alice, note, consumers):
    async with ws(alice) as client:
        assert (await client.subscribe(note, request_id=1))["type"] == "subscribed"
        assert await client.subscribe(note, request_id=2) == {
            "type": "subscribed",
            "model": "testapp.note",
            "id": note.hashid,
            "request_id": 2,
        }
        assert consumers[0].subscriptions == {note.get_live_group_name(): ("testapp.note", note.hashid)}
        note.title = "once"
        await save(note)
        assert (await client.receive())["type"] == "updated"
        await settle()
        assert await client.nothing()


async def test_unsubscribe_stops_events(layer, ws, alice, note, consumers):
    async with ws(alice) as client:
        await client.subscribe(note)
        answer = await client.request(
            {"type": "unsubscribe", "model": "testapp.note", "id": note.hashid, "request_id": 3}
        )
        assert answer == {"type": "unsubscribed", "model": "testapp.note", "id": note.hashid, "request_id": 3}
        assert await groups_of(consumers[0]) == set()
        await save_and_expect_nothing(client, note, title="after")


async def test_unsubscribe_of_something_never_subscribed_answers_unsubscribed(layer, ws, alice, note):
    async with ws(alice) as client:
        frame = {"type": "unsubscribe", "model": "testapp.note", "id": note.hashid, "request_id": "u"}
        assert await client.request(frame) == {
            "type": "unsubscribed",
            "model": "testapp.note",
            "id": note.hashid,
            "request_id": "u",
        }
        # Even for an id that names nothing: unsubscribing reveals nothing either.
        frame = {"type": "unsubscribe", "model": "nope.nothing", "id": "garbage", "request_id": "v"}
        assert (await client.request(frame))["type"] == "unsubscribed"


# -- not_found: one indistinguishable answer ------------------------------------------------------


@database_sync_to_async
def _not_found_case(case, alice, bob, note):
    """(user, frame) of one way to ask for something one may not have."""
    if case == "unknown_model":
        return alice, {"model": "testapp.nothing", "id": note.hashid}
    if case == "auth_user":
        return alice, {"model": "auth.user", "id": hashids.encode(type(alice), alice.pk)}
    if case == "not_live":
        plain = Plain.objects.create(name="plain")
        return alice, {"model": "testapp.plain", "id": hashids.encode(Plain, plain.pk)}
    if case == "malformed_hashid":
        return alice, {"model": "testapp.note", "id": "not a hashid!"}
    if case == "foreign_hashid":
        # A Document with the note's very pk: only the per-model salt keeps it from naming the note.
        document = Document.objects.create(pk=note.pk, name="doc")
        return alice, {"model": "testapp.note", "id": document.hashid}
    if case == "missing_row":
        gone = Note.objects.create(owner=alice, title="gone")
        hashid = gone.hashid
        gone.delete()
        return alice, {"model": "testapp.note", "id": hashid}
    if case == "other_users_note":
        return bob, {"model": "testapp.note", "id": note.hashid}
    if case == "anonymous":
        return AnonymousUser(), {"model": "testapp.note", "id": note.hashid}
    raise AssertionError(case)


NOT_FOUND_CASES = [
    "unknown_model",
    "auth_user",
    "not_live",
    "malformed_hashid",
    "foreign_hashid",
    "missing_row",
    "other_users_note",
    "anonymous",
]


async def raw_request(client, frame) -> str:
    await client.communicator.send_json_to(frame)
    return await client.communicator.receive_from(3)


@pytest.mark.parametrize("case", NOT_FOUND_CASES)
async def test_not_found_is_one_indistinguishable_answer(layer, ws, alice, bob, note, consumers, case):
    user, frame = await _not_found_case(case, alice, bob, note)
    async with ws(user) as client:
        # The reference: an id in a model that does not exist at all, on the same connection.
        reference = await raw_request(client, {"model": "nothing.nowhere", "id": "x"})
        assert json.loads(reference) == {"type": "error", "code": "not_found", "detail": NOT_FOUND_DETAIL}

        assert await raw_request(client, frame) == reference  # byte for byte
        answer = await client.request({**frame, "request_id": case})
        assert answer.pop("request_id") == case
        assert answer == json.loads(reference)

        assert consumers[0].subscriptions == {}
        assert await groups_of(consumers[0]) == set()
        await save_and_expect_nothing(client, note, title=f"not for {case}")


# -- limits ---------------------------------------------------------------------------------------


async def test_subscription_limit(layer, ws, settings, alice, note, consumers):
    configure(settings, MAX_SUBSCRIPTIONS=2)
    second, third = await make_note(alice), await make_note(alice)
    async with ws(alice) as client:
        assert (await client.subscribe(note))["type"] == "subscribed"
        assert (await client.subscribe(second))["type"] == "subscribed"
        answer = await client.subscribe(third, request_id=9)
        assert answer["code"] == "limit"
        assert (answer["type"], answer["request_id"], type(answer["detail"])) == ("error", 9, str)
        assert await groups_of(consumers[0]) == {note.get_live_group_name(), second.get_live_group_name()}
        # Re-subscribing to what is held already is not a new subscription.
        assert (await client.subscribe(note))["type"] == "subscribed"

        # The connection still works: notifications flow, and a freed slot can be used.
        await save_and_expect_nothing(client, third, title="not subscribed")
        note.title = "still live"
        await save(note)
        assert (await client.receive())["id"] == note.hashid
        await client.request({"type": "unsubscribe", "model": "testapp.note", "id": second.hashid})
        assert (await client.subscribe(third))["type"] == "subscribed"


async def _valid_subscribe_works(client, obj):
    assert await client.subscribe(obj, request_id="after") == {
        "type": "subscribed",
        "model": "testapp.note",
        "id": obj.hashid,
        "request_id": "after",
    }


BAD_FRAMES = {
    "not_json": lambda n: "{not json",
    "truncated_json": lambda n: '{"model": "testapp.note", "id": ',
    "json_array": lambda n: json.dumps([{"model": "testapp.note", "id": n.hashid}]),
    "json_number": lambda n: "42",
    "json_string": lambda n: '"testapp.note"',
    "json_null": lambda n: "null",
    "missing_model": lambda n: json.dumps({"id": n.hashid}),
    "id_and_filter": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "filter": {}}),
    "unknown_filter_field": lambda n: json.dumps({"model": "testapp.note", "filter": {"nope": 1}}),
    "unknown_action": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "actions": ["moved"]}),
    "unknown_field": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "fields": ["secret"]}),
    "model_as_number": lambda n: json.dumps({"model": 5, "id": n.hashid}),
    "id_as_list": lambda n: json.dumps({"model": "testapp.note", "id": [n.hashid]}),
    "id_as_number": lambda n: json.dumps({"model": "testapp.note", "id": n.pk}),
    "unknown_type": lambda n: json.dumps({"type": "subscribe_all", "model": "testapp.note", "id": n.hashid}),
    "model_over_100_chars": lambda n: json.dumps({"model": "testapp.note" + "x" * 89, "id": n.hashid}),
    "id_over_64_chars": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid + "x" * (65 - len(n.hashid))}),
    "request_id_bool": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "request_id": True}),
    "request_id_object": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "request_id": {"a": 1}}),
    "request_id_over_64_chars": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "request_id": "r" * 65}),
    "request_id_nan": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "request_id": float("nan")}),
    # Valid frames but for their size: without the limit they would subscribe.
    "over_max_message_bytes": lambda n: json.dumps({"model": "testapp.note", "id": n.hashid, "pad": "a" * 5000}),
    "over_max_message_bytes_in_utf8": lambda n: json.dumps(
        {"model": "testapp.note", "id": n.hashid, "pad": "€" * 1400}, ensure_ascii=False
    ),
    # Deep enough for RecursionError in json.loads, small enough to pass the size check.
    "deeply_nested": lambda n: "[" * 4000,
    "deeply_nested_object": lambda n: '{"":' * 1010,
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_input_answers_invalid_and_keeps_the_connection(layer, ws, alice, note, consumers, case):
    text = BAD_FRAMES[case](note)
    async with ws(alice) as client:
        await client.send_text(text)
        answer = await client.receive()
        assert answer.keys() == {"type", "code", "detail"}
        assert (answer["type"], answer["code"]) == ("error", "invalid")
        assert isinstance(answer["detail"], str) and answer["detail"]
        assert await groups_of(consumers[0]) == set()
        await _valid_subscribe_works(client, note)


async def test_nesting_deep_enough_for_recursion_error_answers_invalid(layer, ws, settings, alice, note):
    configure(settings, MAX_MESSAGE_BYTES=1_000_000)  # let it reach json.loads
    async with ws(alice) as client:
        for text in ("[" * 100_000, "[" * 100_000 + "]" * 100_000):
            await client.send_text(text)
            answer = await client.receive()
            assert (answer["type"], answer["code"]) == ("error", "invalid")
        await _valid_subscribe_works(client, note)


def test_oversized_frames_are_over_the_default_limit():
    """The two size cases above test MAX_MESSAGE_BYTES only if they exceed its default."""
    from notify_kit.conf import DEFAULTS

    class _Note:
        hashid, pk = "abcdefgh", 1

    big = BAD_FRAMES["over_max_message_bytes_in_utf8"](_Note)
    assert len(big) < DEFAULTS["MAX_MESSAGE_BYTES"] < len(big.encode())
    assert len(BAD_FRAMES["over_max_message_bytes"](_Note)) > DEFAULTS["MAX_MESSAGE_BYTES"]
    for case in ("deeply_nested", "deeply_nested_object"):
        text = BAD_FRAMES[case](_Note)
        assert len(text) < DEFAULTS["MAX_MESSAGE_BYTES"]
        # RecursionError up to Python 3.12; 3.13's scanner nests deeper and reports the
        # truncated document instead. Either way the consumer answers `invalid`; the
        # RecursionError path itself is covered with MAX_MESSAGE_BYTES raised, above.
        with pytest.raises((RecursionError, ValueError)):
            json.loads(text)


async def test_binary_frame_answers_invalid(layer, ws, alice, note):
    async with ws(alice) as client:
        await client.communicator.send_to(bytes_data=json.dumps(note_frame(note)).encode())
        answer = await client.receive()
        assert (answer["type"], answer["code"]) == ("error", "invalid")
        await _valid_subscribe_works(client, note)


async def test_invalid_frame_echoes_a_valid_request_id(layer, ws, alice, note):
    async with ws(alice) as client:
        answer = await client.request({"type": "bogus", "model": "testapp.note", "id": note.hashid, "request_id": 42})
        assert (answer["code"], answer["request_id"]) == ("invalid", 42)


async def test_rate_limit(layer, ws, settings, alice, note):
    configure(settings, SUBSCRIBE_RATE=2.0, SUBSCRIBE_BURST=3)
    async with ws(alice) as client:
        for n in range(3):
            assert (await client.subscribe(note, request_id=n))["type"] == "subscribed"
        answer = await client.subscribe(note, request_id=3)
        assert (answer["type"], answer["code"]) == ("error", "rate_limited")
        assert answer["request_id"] == 3  # the client can match even a rejected request
        assert isinstance(answer["detail"], str)
        await asyncio.sleep(0.6)  # 2 tokens a second: one is back
        assert (await client.subscribe(note))["type"] == "subscribed"


async def test_not_found_answers_no_sooner_than_the_floor(layer, ws, settings, alice, bob, note):
    configure(settings, NOT_FOUND_MIN_SECONDS=0.2)
    async with ws(bob) as client:
        for frame in ({"model": "nothing.nowhere", "id": "x"}, note_frame(note)):
            started = time.monotonic()
            answer = await client.request(frame)
            assert answer["code"] == "not_found"
            assert time.monotonic() - started >= 0.2
        own = await make_note(bob)
        started = time.monotonic()
        assert (await client.subscribe(own))["type"] == "subscribed"
        assert time.monotonic() - started < 0.15


# -- group cleanup --------------------------------------------------------------------------------


async def test_disconnect_leaves_every_group(layer, ws, alice, note, consumers):
    second = await make_note(alice)
    client = ws(alice)
    await client.__aenter__()
    await client.subscribe(note)
    await client.subscribe(second)
    consumer = consumers[0]
    groups = {note.get_live_group_name(), second.get_live_group_name()}
    assert await groups_of(consumer) == groups

    await client.communicator.disconnect()

    layer_ = consumer.channel_layer
    if isinstance(layer_, InMemoryChannelLayer):
        assert not any(consumer.channel_name in layer_.groups.get(group, {}) for group in groups)
    else:
        redis = redis_client()
        try:
            for group in groups:
                if isinstance(layer_, RedisPubSubChannelLayer):
                    # Its last member gone, the process no longer subscribes to the group in Redis.
                    name = pubsub_group_channel(layer_, group)
                    assert await redis.pubsub_numsub(name) == [(name.encode(), 0)]
                else:
                    assert await redis.zscore(redis_group_key(layer_, group), consumer.channel_name) is None
        finally:
            await redis.aclose()
    assert await groups_of(consumer) == set()

    note.title = "nobody listens"
    await save(note)
    await settle()
    if isinstance(layer_, InMemoryChannelLayer):
        # A send to the dead channel would have queued a message under its name.
        assert consumer.channel_name not in layer_.channels
    elif isinstance(layer_, RedisPubSubChannelLayer):
        assert consumer.channel_name not in layer_._get_layer().channels


# -- revocation -----------------------------------------------------------------------------------


async def test_owner_change_revokes_and_stops_updates(layer, ws, alice, bob, user_factory):
    carol = await database_sync_to_async(user_factory)("carol")
    note = await make_note(bob, title="bob's")
    await database_sync_to_async(note.shared_with.add)(alice)
    async with ws(bob) as bob_client, ws(alice) as alice_client:
        await bob_client.subscribe(note)
        await alice_client.subscribe(note)

        note.owner = carol
        await save(note)
        assert await bob_client.receive() == {"type": "revoked", "model": "testapp.note", "id": note.hashid}
        event = await alice_client.receive()
        assert (event["type"], event["changed"]) == ("updated", ["owner"])
        await settle()
        assert await bob_client.nothing()  # the update itself never reached bob

        note.title = "after the handover"
        await save(note)
        assert (await alice_client.receive())["data"]["title"] == "after the handover"
        await settle()
        assert await bob_client.nothing()


async def test_notify_access_changed_revokes(layer, ws, alice, bob):
    note = await make_note(alice)
    await database_sync_to_async(note.shared_with.add)(bob)
    async with ws(bob) as bob_client, ws(alice) as alice_client:
        await bob_client.subscribe(note)
        await alice_client.subscribe(note)

        @database_sync_to_async
        def unshare():
            note.shared_with.remove(bob)
            note.notify_access_changed()

        await unshare()
        assert await bob_client.receive() == {"type": "revoked", "model": "testapp.note", "id": note.hashid}
        await settle()
        assert await alice_client.nothing()  # still allowed: the recheck is silent

        note.title = "alice only"
        await save(note)
        assert (await alice_client.receive())["data"]["title"] == "alice only"
        await settle()
        assert await bob_client.nothing()


# -- faults ---------------------------------------------------------------------------------------


async def test_database_error_in_can_subscribe_answers_unavailable(
    layer, ws, alice, note, consumers, monkeypatch, caplog
):
    def broken(self, user):
        raise OperationalError("the database went away")

    async with ws(alice) as client:
        with monkeypatch.context() as patch, caplog.at_level(logging.ERROR, logger="notify_kit"):
            patch.setattr(Note, "can_subscribe", broken)
            answer = await client.subscribe(note, request_id=5)
        assert isinstance(answer.pop("detail"), str)
        assert answer == {"type": "error", "code": "unavailable", "request_id": 5}
        records = [r for r in caplog.records if r.name == "notify_kit"]
        assert records and records[0].exc_info[0] is OperationalError
        assert await groups_of(consumers[0]) == set()
        await _valid_subscribe_works(client, note)


async def test_forwarding_skips_aclose_old_connections(layer, ws, alice, bob, note, monkeypatch):
    import channels.consumer

    calls: list[None] = []
    original = channels.consumer.aclose_old_connections

    async def counting():
        calls.append(None)
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    async with ws(alice) as client:
        assert calls, "websocket.connect goes through Channels' dispatch: the patch must see it"
        await client.subscribe(note)
        before = len(calls)
        for title in ("a", "b", "c"):
            note.title = title
            await save(note)
            assert (await client.receive())["data"]["title"] == title
        # A recheck runs on the database thread, which cleans up after itself.
        await database_sync_to_async(note.notify_access_changed)()
        await settle()
        assert await client.nothing()
        assert len(calls) == before


async def test_idle_consumer_on_redis_outlives_the_blocking_receive_timeout(redis_layer, ws, alice, note):
    """Sleeps 6 s on purpose: redis-py 8's default socket timeout (5 s) equals channels-redis's
    blocking receive (5 s), so without the longer socket_timeout from notify_kit.conf.redis_host
    an idle consumer's read times out and kills it."""
    async with ws(alice) as client:
        await client.subscribe(note)
        await asyncio.sleep(6)
        note.title = "after a long idle"
        await save(note)
        assert (await client.receive(timeout=5))["data"]["title"] == "after a long idle"


# -- the channel layer failing under a socket ----------------------------------------------------


class StubbornLayer(InMemoryChannelLayer):
    """Joining a group fails, and receive misses its first cancellation and runs on.

    Python 3.11's ``asyncio.wait_for``, which redis-py wraps around every command write, loses a
    cancellation that lands as the write completes (python/cpython#86296); channels-redis then
    keeps polling Redis. A second cancellation is honoured, so the test leaves nothing running.
    """

    async def receive(self, channel):
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            await asyncio.sleep(30)
            raise

    async def group_add(self, group, channel):
        raise ConnectionError("Redis went away")


async def test_a_failed_join_closes_at_once_even_if_the_layer_receive_runs_on(settings, ws, alice, note):
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, "stubborn": {"BACKEND": "tests.test_consumers.StubbornLayer"}}
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": "stubborn"}
    async with ws(alice) as client:
        await client.send({"model": "testapp.note", "id": note.hashid})
        # The close comes before Channels waits for the cancelled receive, not 30 s later.
        assert await client.communicator.receive_output(2) == {"type": "websocket.close", "code": 1013}
