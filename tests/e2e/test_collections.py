"""A collection through a real ASGI server and Redis, with every write made in another process."""

from __future__ import annotations

import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.e2e.conftest import receive, run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_a_note_appears_when_shared_and_disappears_when_the_share_is_removed(
    kind, servers, alice, bob, user_factory
):
    from tests.testapp.models import SharedNote

    carol = await sync_to_async(user_factory)("carol")
    note = await sync_to_async(SharedNote.objects.create)(owner=alice, title="alice's")
    server = servers.start(kind)
    sockets = {}
    for user in (bob, carol):
        cookie = await sync_to_async(session_cookie)(user)
        ws = await websockets.connect(server.url, additional_headers={"Cookie": cookie, "Origin": server.origin})
        sockets[user.username] = ws
        await ws.send(json.dumps({"model": "testapp.sharednote", "snapshot": True, "request_id": 9}))
        answer = await receive(ws)
        assert (answer["type"], answer["data"]) == ("subscribed", [])
    bob_ws, carol_ws = sockets["bob"], sockets["carol"]
    try:
        await sync_to_async(run_writer)("--shared", note.hashid, "share=bob")
        assert await receive(bob_ws) == {
            "type": "created", "model": "testapp.sharednote", "id": note.hashid,
            "data": {"id": note.hashid, "title": "alice's", "archived": False}, "request_id": 9,
        }  # fmt: skip
        await sync_to_async(run_writer)("--shared", note.hashid, "title=for bob too")
        event = await receive(bob_ws)
        assert (event["type"], event["data"]["title"], event["changed"]) == ("updated", "for bob too", ["title"])
        await sync_to_async(run_writer)("--shared", note.hashid, "unshare=bob")
        assert await receive(bob_ws) == {
            "type": "deleted", "model": "testapp.sharednote", "id": note.hashid, "request_id": 9,
        }  # fmt: skip
        await sync_to_async(run_writer)("--shared", note.hashid, "title=alice only")
        for ws in (bob_ws, carol_ws):
            with pytest.raises(TimeoutError):
                frame = await receive(ws, 1.0)
                pytest.fail(f"received {frame}")
    finally:
        for ws in sockets.values():
            await ws.close()
