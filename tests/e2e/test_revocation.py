"""Revocation by default through a real ASGI server and Redis, with the writes made in another process."""

from __future__ import annotations

import json

import pytest
import websockets
from asgiref.sync import sync_to_async

from tests.e2e.conftest import receive, run_writer, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_owner_change_then_title_change_reaches_the_previous_owner_only_as_revoked(kind, servers, alice, bob):
    from tests.testapp.models import Memo

    memo = await sync_to_async(Memo.objects.create)(owner=alice, title="alice's")
    server = servers.start(kind)
    sockets = {}
    for user in (alice, bob):
        cookie = await sync_to_async(session_cookie)(user)
        sockets[user.username] = await websockets.connect(
            server.url, additional_headers={"Cookie": cookie, "Origin": server.origin}
        )
    try:
        await sockets["alice"].send(json.dumps({"model": "testapp.memo", "id": memo.hashid}))
        assert (await receive(sockets["alice"]))["type"] == "subscribed"

        # The README's model: the tracker follows title and body, not the owner.
        await sync_to_async(run_writer)("--memo", memo.hashid, "owner=bob")
        assert await receive(sockets["alice"]) == {"type": "revoked", "model": "testapp.memo", "id": memo.hashid}

        await sockets["bob"].send(json.dumps({"model": "testapp.memo", "id": memo.hashid}))
        assert (await receive(sockets["bob"]))["type"] == "subscribed"
        await sync_to_async(run_writer)("--memo", memo.hashid, "title=bob's secret")
        event = await receive(sockets["bob"])
        assert (event["type"], event["data"]["title"]) == ("updated", "bob's secret")
        with pytest.raises(TimeoutError):
            frame = await receive(sockets["alice"], 1.0)
            pytest.fail(f"the previous owner received {frame}")
    finally:
        for ws in sockets.values():
            await ws.close()
