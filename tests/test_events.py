"""notify_kit.events: the frame's bytes, and one message per event shared by its copies."""

from __future__ import annotations

import json

from rest_framework.utils.encoders import JSONEncoder

from notify_kit import audiences
from notify_kit.events import Event


def reference_frame(event):
    """The frame as json.dumps gives it for the whole payload (the format before data_text)."""
    payload = {"type": "updated", "model": event.label, "id": event.hashid, "data": event.data,
               "changed": sorted(event.changed)}  # fmt: skip
    if event.coalesced:
        payload["coalesced"] = event.coalesced
    return json.dumps(payload, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"))


def updated(title, changed=("title",)):
    data = {"id": "h", "title": title, "n": 1.5, "none": None}
    return Event("testapp.note", "h", deleted=False, data=data, changed=set(changed), data_text=audiences.encode(data))


def test_a_frame_embedding_the_encoded_data_has_the_same_bytes():
    event = updated('Grüße "quoted" \\ \u2028', changed=("title", "body"))
    assert event.render() == reference_frame(event)
    event.absorb(updated("later"))
    assert event.coalesced == 1
    assert event.render() == reference_frame(event)
    assert json.loads(event.render())["data"]["title"] == "later"


def test_copies_share_one_message_until_one_of_them_folds():
    event = updated("first")
    twin = event.copy()
    assert twin.to_message() is event.to_message()  # built once for both groups
    twin.absorb(updated("second"))
    assert json.loads(twin.to_message()["text"])["data"]["title"] == "second"
    # The original still sends what it was, ids included.
    assert json.loads(event.to_message()["text"])["data"]["title"] == "first"
    assert event.to_message()["event"] == event.ids and len(event.ids) == 1
    assert len(twin.to_message()["event"]) == 2


def test_folding_the_original_leaves_a_copys_message_alone():
    event = updated("first")
    twin = event.copy()
    message = twin.to_message()
    event.absorb(updated("second"))
    assert twin.to_message() is message
    assert message["event"] == twin.ids and len(message["event"]) == 1
    assert json.loads(event.to_message()["text"])["data"]["title"] == "second"
