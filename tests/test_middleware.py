"""notify_kit.middleware: a request's writes do not echo back to the socket that made them.

The middleware on its own (sync and async stacks, the header's validation, the reset after the
response), then the whole path through real requests and real consumers on both layers: the
writer's socket skips its own change (or gets it marked), every other socket -- the same user's
included -- receives it, and access checks still run for the writer. This module is its own
URLconf: the views below are the API a page would call.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpResponse
from django.test import AsyncClient
from django.test import Client as HttpClient
from django.urls import path

from notify_kit import notifications
from notify_kit.consumers import NotificationConsumer
from notify_kit.events import Event
from notify_kit.middleware import HEADER, SocketIdMiddleware, clean_socket_id, current_socket_id, origin_socket
from tests.conftest import Client
from tests.testapp.models import Memo, Note

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

MIDDLEWARE = "notify_kit.middleware.SocketIdMiddleware"
SEEN: list[str | None] = []  # current_socket_id() as each view saw it


# -- the API under test ------------------------------------------------------------------------


def set_title(request, pk):
    SEEN.append(current_socket_id())
    note = Note.objects.get(pk=pk)
    note.title = request.body.decode()
    note.save()
    return HttpResponse(status=204)


def set_title_twice_atomically(request, pk):
    with transaction.atomic():  # one event, after commit, when this request's context is long gone
        note = Note.objects.get(pk=pk)
        note.title = "draft"
        note.save()
        note.title = request.body.decode()
        note.save()
    return HttpResponse(status=204)


async def aset_title(request, pk):
    SEEN.append(current_socket_id())
    note = await Note.objects.aget(pk=pk)
    note.title = request.body.decode()
    await note.asave()
    return HttpResponse(status=204)


def give_memo(request, pk, user_pk):
    memo = Memo.objects.get(pk=pk)
    memo.owner_id = user_pk
    memo.save()
    return HttpResponse(status=204)


urlpatterns = [
    path("note/<int:pk>/title/", set_title),
    path("note/<int:pk>/title/atomic/", set_title_twice_atomically),
    path("async/note/<int:pk>/title/", aset_title),
    path("memo/<int:pk>/owner/<int:user_pk>/", give_memo),
]


@pytest.fixture(autouse=True)
def with_middleware(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    SEEN.clear()


def post(url: str, body: str = "", socket_id: str | None = None) -> None:
    headers = {} if socket_id is None else {HEADER: socket_id}
    response = HttpClient().post(url, body, content_type="text/plain", headers=headers)
    assert response.status_code == 204, response


apost = sync_to_async(post)


async def settle():
    assert await asyncio.to_thread(notifications.flush, 5)


class Socket(Client):
    """A protocol client connected with ``?echo=<mode>``; ``socket_id`` from its welcome frame."""

    def __init__(self, user=None, echo: str | None = "skip"):
        super().__init__(user)
        path = "/ws/notifications/" + (f"?echo={echo}" if echo is not None else "")
        scope_user = self.communicator.scope["user"]
        self.communicator = WebsocketCommunicator(NotificationConsumer.as_asgi(), path)
        self.communicator.scope["user"] = scope_user
        self.echo, self.socket_id = echo, None

    async def __aenter__(self):
        await super().__aenter__()
        if self.echo in ("skip", "mark"):
            welcome = await self.receive()
            assert welcome["type"] == "welcome", welcome
            self.socket_id = welcome["socket_id"]
        return self


def updated_title(frame: dict) -> str:
    assert frame["type"] == "updated", frame
    return frame["data"]["title"]


# -- the middleware on its own -------------------------------------------------------------------


def test_the_header_is_noted_for_the_request_and_reset_after_it(note):
    post(f"/note/{note.pk}/title/", "x", socket_id="A" * 22)
    assert SEEN == ["A" * 22]
    assert current_socket_id() is None  # the test client ran the request in this very context


@pytest.mark.parametrize(
    "value",
    ["", "short", "has space in it 0000", "slash/slash/slash/0000", "é" * 22, "x" * 65, "a.b.c.d.e.f.g.h.i.j"],
)
def test_a_header_that_is_no_socket_id_is_ignored(note, value):
    post(f"/note/{note.pk}/title/", "x", socket_id=value)
    assert SEEN == [None]


def test_clean_socket_id_accepts_url_safe_tokens_only():
    assert clean_socket_id("Abc-_0123456789xyz") == "Abc-_0123456789xyz"
    assert clean_socket_id(None) is None
    assert clean_socket_id(b"A" * 22) is None
    assert clean_socket_id("A" * 22 + "\n") is None


async def test_an_async_stack_notes_the_header_and_resets_it(note):
    response = await AsyncClient().post(
        f"/async/note/{note.pk}/title/", "x", content_type="text/plain", headers={HEADER: "B" * 22}
    )
    assert response.status_code == 204
    assert SEEN == ["B" * 22]
    assert current_socket_id() is None


def test_the_middleware_is_sync_and_async_capable():
    assert SocketIdMiddleware.sync_capable and SocketIdMiddleware.async_capable

    async def get_response(request):
        return HttpResponse()

    assert asyncio.iscoroutinefunction(SocketIdMiddleware(get_response))
    assert not asyncio.iscoroutinefunction(SocketIdMiddleware(lambda request: HttpResponse()))


def test_origin_socket_nests_and_restores():
    with origin_socket("C" * 22):
        with origin_socket("not valid"):
            assert current_socket_id() is None
        assert current_socket_id() == "C" * 22
    assert current_socket_id() is None


# -- events: the origin travels, and folding two origins keeps none ------------------------------


def event(title: str, origin: str | None) -> Event:
    return Event("testapp.note", "h", deleted=False, data={"title": title}, changed={"title"}, origin=origin)


def test_the_origin_travels_beside_the_text_not_in_it():
    message = event("t", "D" * 22).to_message()
    assert message["origin"] == "D" * 22
    assert "origin" not in json.loads(message["text"])
    assert "origin" not in event("t", None).to_message()


def test_events_of_one_origin_fold_into_that_origin_and_of_two_into_none():
    same = event("a", "E" * 22)
    assert same.absorb(event("b", "E" * 22)) and same.origin == "E" * 22
    assert same.copy().origin == "E" * 22
    mixed = event("a", "E" * 22)
    assert mixed.absorb(event("b", "F" * 22)) and mixed.origin is None
    unattributed = event("a", None)
    assert unattributed.absorb(event("b", "E" * 22)) and unattributed.origin is None


# -- through real requests and consumers ---------------------------------------------------------


async def test_the_welcome_frame_gives_each_socket_its_own_opaque_id(layer, ws, alice):
    async with Socket(alice) as one, Socket(alice, echo="mark") as two, ws(alice) as old:
        assert one.socket_id != two.socket_id
        for socket in (one, two):
            assert clean_socket_id(socket.socket_id) == socket.socket_id  # the middleware accepts it
            assert len(socket.socket_id) >= 22  # 128 random bits
        assert await old.nothing()  # a client that did not ask gets no frame it does not know


async def test_the_writer_socket_skips_its_own_change_and_the_users_other_sockets_get_it(layer, ws, alice, note):
    async with Socket(alice) as writer, Socket(alice) as other_tab, ws(alice) as old_client:
        for socket in (writer, other_tab, old_client):
            assert (await socket.subscribe(note))["type"] == "subscribed"

        await apost(f"/note/{note.pk}/title/", "from the writer", socket_id=writer.socket_id)
        assert updated_title(await other_tab.receive()) == "from the writer"
        assert updated_title(await old_client.receive()) == "from the writer"
        await settle()
        assert await writer.nothing()

        # Only that request's writes: the writer's socket hears everybody else's.
        await apost(f"/note/{note.pk}/title/", "from another tab", socket_id=other_tab.socket_id)
        assert updated_title(await writer.receive()) == "from another tab"
        await apost(f"/note/{note.pk}/title/", "from nowhere")
        assert updated_title(await writer.receive()) == "from nowhere"
        assert updated_title(await other_tab.receive()) == "from nowhere"


async def test_an_async_view_and_a_transaction_are_attributed_too(layer, alice, note):
    async with Socket(alice) as writer, Socket(alice) as other_tab:
        await writer.subscribe(note)
        await other_tab.subscribe(note)
        await AsyncClient().post(
            f"/async/note/{note.pk}/title/", "async", content_type="text/plain", headers={HEADER: writer.socket_id}
        )
        assert updated_title(await other_tab.receive()) == "async"
        await apost(f"/note/{note.pk}/title/atomic/", "atomic", socket_id=writer.socket_id)
        assert updated_title(await other_tab.receive()) == "atomic"
        await settle()
        assert await writer.nothing()


async def test_an_unknown_or_garbage_header_skips_nobody(layer, alice, note):
    async with Socket(alice) as socket:
        await socket.subscribe(note)
        for header in ("Z" * 22, socket.socket_id + "!", socket.socket_id[:-1], "x"):
            await apost(f"/note/{note.pk}/title/", header, socket_id=header)
            assert updated_title(await socket.receive()) == header


async def test_mark_mode_delivers_the_own_echo_flagged_and_nobody_else_sees_the_flag(layer, ws, alice, note):
    async with Socket(alice, echo="mark") as writer, Socket(alice, echo="mark") as other_tab, ws(alice) as old:
        for socket in (writer, other_tab, old):
            await socket.subscribe(note)
        await apost(f"/note/{note.pk}/title/", "marked", socket_id=writer.socket_id)
        mine = await writer.receive()
        assert mine["echo"] is True and updated_title(mine) == "marked"
        for socket in (other_tab, old):
            theirs = await socket.receive()
            assert "echo" not in theirs and updated_title(theirs) == "marked"

        await apost(f"/note/{note.pk}/title/", "someone else's")
        assert "echo" not in await writer.receive()


async def test_a_write_that_revokes_the_writers_own_access_still_revokes(layer, alice, bob):
    memo = await database_sync_to_async(Memo.objects.create)(owner=alice, title="t")
    async with Socket(alice) as writer:
        assert (await writer.subscribe(memo))["type"] == "subscribed"
        await apost(f"/memo/{memo.pk}/owner/{bob.pk}/", socket_id=writer.socket_id)
        assert await writer.receive() == {"type": "revoked", "model": "testapp.memo", "id": memo.hashid}
        memo.title = "bob's now"
        await database_sync_to_async(memo.save)()
        await settle()
        assert await writer.nothing()


async def test_changes_of_two_sockets_in_one_transaction_reach_both(layer, alice, note):
    @database_sync_to_async
    def write(first: str, second: str) -> None:
        with transaction.atomic():
            with origin_socket(first):
                note.title = "one"
                note.save()
            with origin_socket(second):
                note.title = "two"
                note.save()

    async with Socket(alice) as one, Socket(alice) as two:
        await one.subscribe(note)
        await two.subscribe(note)
        await write(one.socket_id, two.socket_id)
        assert updated_title(await one.receive()) == "two"
        assert updated_title(await two.receive()) == "two"
        await write(one.socket_id, one.socket_id)  # both its own: one skips, two hears it
        assert updated_title(await two.receive()) == "two"
        await settle()
        assert await one.nothing()


async def test_a_deleted_own_echo_is_skipped_too(layer, alice, note):
    @database_sync_to_async
    def delete(socket_id: str) -> None:
        with origin_socket(socket_id):
            note.delete()

    user = await database_sync_to_async(get_user_model().objects.get)(pk=alice.pk)
    async with Socket(user) as writer, Socket(user) as other_tab:
        await writer.subscribe(note)
        await other_tab.subscribe(note)
        hashid = note.hashid
        await delete(writer.socket_id)
        assert await other_tab.receive() == {"type": "deleted", "model": "testapp.note", "id": hashid}
        await settle()
        assert await writer.nothing()
