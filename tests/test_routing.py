"""The documented routing (tests/asgi.py): Origin check and session authentication in front of the consumer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client as HttpClient

from notify_kit.consumers import NOT_FOUND_DETAIL
from tests.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/notifications/"


def communicator(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, PATH, headers=[(b"host", b"testserver"), *headers])


@sync_to_async
def session_cookie(username: str) -> bytes:
    http = HttpClient()
    assert http.login(username=username, password="pw")
    return f"sessionid={http.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize("origin", [b"http://evil.example", b"https://testserver.evil.example", b"null"])
async def test_origin_not_in_allowed_hosts_is_rejected(layer, origin):
    ws = communicator((b"origin", origin))
    connected, _ = await ws.connect()
    assert not connected
    await ws.disconnect()


async def test_missing_origin_is_rejected(layer):
    ws = communicator()
    connected, _ = await ws.connect()
    assert not connected
    await ws.disconnect()


@pytest.mark.parametrize("origin", [b"http://testserver", b"https://localhost:8000", b"http://127.0.0.1"])
async def test_allowed_origin_connects(layer, origin):
    ws = communicator((b"origin", origin))
    connected, _ = await ws.connect()
    assert connected
    await ws.disconnect()


async def test_foreign_origin_is_rejected_even_with_a_valid_session(layer, alice):
    ws = communicator((b"origin", b"http://evil.example"), (b"cookie", await session_cookie("alice")))
    connected, _ = await ws.connect()
    assert not connected
    await ws.disconnect()


async def test_session_user_subscribes_to_own_note(layer, alice, note):
    ws = communicator((b"origin", b"http://testserver"), (b"cookie", await session_cookie("alice")))
    connected, _ = await ws.connect()
    assert connected
    try:
        await ws.send_json_to({"model": "testapp.note", "id": note.hashid, "request_id": 1})
        assert await ws.receive_json_from(3) == {
            "type": "subscribed",
            "model": "testapp.note",
            "id": note.hashid,
            "request_id": 1,
        }
    finally:
        await ws.disconnect()


async def test_session_of_another_user_gets_not_found(layer, bob, note):
    ws = communicator((b"origin", b"http://testserver"), (b"cookie", await session_cookie("bob")))
    assert (await ws.connect())[0]
    try:
        await ws.send_json_to({"model": "testapp.note", "id": note.hashid})
        assert await ws.receive_json_from(3) == {"type": "error", "code": "not_found", "detail": NOT_FOUND_DETAIL}
    finally:
        await ws.disconnect()


@pytest.mark.parametrize("cookie", [None, b"sessionid=forged-or-expired"])
async def test_anonymous_gets_not_found(layer, note, cookie):
    headers = [(b"origin", b"http://testserver")] + ([(b"cookie", cookie)] if cookie else [])
    ws = communicator(*headers)
    connected, _ = await ws.connect()
    assert connected  # anonymous connections are allowed; they get what can_subscribe allows
    try:
        await ws.send_json_to({"model": "testapp.note", "id": note.hashid})
        assert await ws.receive_json_from(3) == {"type": "error", "code": "not_found", "detail": NOT_FOUND_DETAIL}
    finally:
        await ws.disconnect()
