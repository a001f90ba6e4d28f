"""No echo of a writer's own change, through real ASGI servers and Redis, the write in another process."""

from __future__ import annotations

import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.e2e.conftest import receive, run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_the_writers_socket_skips_its_echo_and_a_socket_on_another_server_gets_it(kind, servers, alice):
    from tests.testapp.models import Note

    note = await sync_to_async(Note.objects.create)(owner=alice, title="a")
    cookie = await sync_to_async(session_cookie)(alice)
    first, second = servers.start(kind), servers.start(kind)
    sockets = []
    for server, echo in ((first, "skip"), (second, "skip"), (second, "mark")):
        headers = {"Cookie": cookie, "Origin": server.origin}
        ws = await websockets.connect(f"{server.url}?echo={echo}", additional_headers=headers)
        welcome = await receive(ws)
        assert welcome["type"] == "welcome" and len(welcome["socket_id"]) >= 22, welcome
        await ws.send(json.dumps({"model": "testapp.note", "id": note.hashid}))
        assert (await receive(ws))["type"] == "subscribed"
        sockets.append((ws, welcome["socket_id"]))
    (writer, writer_id), (other, _), (marked, marked_id) = sockets
    try:
        await sync_to_async(run_writer)("--origin", writer_id, f"{note.hashid}=by the writer")
        assert (await receive(other))["data"]["title"] == "by the writer"
        assert "echo" not in await receive(marked)
        await sync_to_async(run_writer)("--origin", marked_id, f"{note.hashid}=by the marked one")
        assert (await receive(other))["data"]["title"] == "by the marked one"
        assert (await receive(marked))["echo"] is True
        # The writer's socket got neither its own change nor anything else out of order: the
        # next frame it receives is the marked socket's change.
        assert (await receive(writer))["data"]["title"] == "by the marked one"
    finally:
        for ws, _ in sockets:
            await ws.close()
