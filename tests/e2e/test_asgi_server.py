"""Through a real ASGI server and Redis, with the save made in another process."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.e2e.conftest import receive, run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def notes(alice, bob):
    from tests.testapp.models import Note

    return Note.objects.create(owner=alice, title="a", body=""), Note.objects.create(owner=bob, title="b", body="")


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_save_in_another_process_reaches_subscriber(kind, servers, alice, notes):
    from asgiref.sync import sync_to_async

    server = servers.start(kind)
    mine, theirs = notes
    cookie = await sync_to_async(session_cookie)(alice)
    headers = {"Cookie": cookie, "Origin": server.origin}
    async with websockets.connect(server.url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"model": "testapp.note", "id": mine.hashid, "request_id": 1}))
        assert await receive(ws) == {"type": "subscribed", "model": "testapp.note", "id": mine.hashid, "request_id": 1}
        await ws.send(json.dumps({"model": "testapp.note", "id": theirs.hashid, "request_id": 2}))
        denied = await receive(ws)
        assert denied["type"] == "error" and denied["code"] == "not_found" and denied["request_id"] == 2

        await sync_to_async(run_writer)(f"{mine.hashid}=from another process", f"{theirs.hashid}=not for alice")

        event = await receive(ws)
        assert event == {
            "type": "updated",
            "model": "testapp.note",
            "id": mine.hashid,
            "data": {"id": mine.hashid, "title": "from another process", "body": ""},
            "changed": ["title"],
        }
        with pytest.raises(TimeoutError):
            await receive(ws, 0.5)  # nothing about bob's note


async def test_origin_not_in_allowed_hosts_is_refused(servers):
    server = servers.start()
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(server.url, additional_headers={"Origin": "http://evil.example"}):
            pass
    assert refused.value.response.status_code == 403
