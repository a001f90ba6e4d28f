"""notify_kit.suppression: writes inside suppress() send nothing, in this thread or task only.

What leaves a transaction is recorded with notify_kit.testing.capture_notifications; every test
that expects silence also makes one write that must be recorded, so a capture that recorded
nothing could not make it pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from notify_kit import suppress
from notify_kit.testing import assert_not_notified, assert_notified, capture_notifications
from tests.testapp.models import Document

on_commit_db = pytest.mark.django_db(transaction=True)


def edit(obj, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save()


@pytest.fixture
def other(alice):
    return Document.objects.create(name="other")


def test_importing_notify_kit_touches_no_django():
    code = (
        "import sys, notify_kit; from notify_kit import suppress\n"
        "with suppress(): pass\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@on_commit_db
def test_save_and_delete_inside_send_nothing(note, other):
    with capture_notifications() as sent:
        with suppress():
            edit(note, title="quiet")
            other.delete()
        edit(note, body="loud")
    assert sent == [assert_notified(sent, note, changed=["body"])]


@on_commit_db
def test_commit_after_the_block_still_sends_nothing(note, other):
    with capture_notifications() as sent:
        with transaction.atomic():
            with suppress():
                edit(note, title="quiet")
            edit(other, name="loud")  # the same transaction, after the block: notified
        # The commit (and its callbacks) came after the block had exited.
    assert_not_notified(sent, note)
    assert_notified(sent, other, changed=["name"])


@on_commit_db
def test_nested_blocks_suppress_until_the_outer_one_exits(note):
    with capture_notifications() as sent:
        with suppress():
            with suppress():
                pass
            edit(note, title="still quiet")
        edit(note, title="loud")
    assert [f["data"]["title"] for f in sent] == ["loud"]


@on_commit_db
def test_one_instance_reentered(note):
    quiet = suppress()
    with capture_notifications() as sent:
        with quiet:
            with quiet:
                pass
            edit(note, title="still quiet")
        edit(note, title="loud")
    assert [f["data"]["title"] for f in sent] == ["loud"]


@on_commit_db
def test_another_threads_block_does_not_silence_this_one(note):
    entered, done = threading.Event(), threading.Event()

    def suppress_elsewhere():
        with suppress():
            entered.set()
            done.wait(10)

    thread = threading.Thread(target=suppress_elsewhere)
    thread.start()
    try:
        assert entered.wait(10)
        with capture_notifications() as sent:
            edit(note, title="loud")  # while the other thread is inside suppress()
    finally:
        done.set()
        thread.join(10)
    assert_notified(sent, note, changed=["title"])


@on_commit_db
def test_decorated_sync_function(note):
    @suppress()
    def import_data(obj):
        edit(obj, title="quiet")

    with capture_notifications() as sent:
        import_data(note)
        edit(note, body="loud")
    assert sent == [assert_notified(sent, note, changed=["body"])]


@on_commit_db
async def test_decorated_async_function(note):
    @suppress()
    async def import_data(obj):
        await asyncio.sleep(0)  # the writes come after the first await, when the coroutine runs
        obj.title = "quiet"
        await database_sync_to_async(obj.save)()

    with capture_notifications() as sent:
        await import_data(note)
        note.body = "loud"
        await database_sync_to_async(note.save)()
    assert sent == [assert_notified(sent, note, changed=["body"])]


@on_commit_db
async def test_one_task_suppressing_does_not_silence_another(note, other):
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def quiet():
        with suppress():
            inside.set()
            await leave.wait()  # held open while the other task writes
            other.name = "quiet"
            await database_sync_to_async(other.save)()

    async def loud():
        await inside.wait()
        note.title = "loud"
        await database_sync_to_async(note.save)()
        leave.set()

    with capture_notifications() as sent:
        await asyncio.gather(quiet(), loud())
    assert sent == [assert_notified(sent, note, changed=["title"])]


@on_commit_db
def test_access_changes_are_never_suppressed(note, bob):
    with capture_notifications() as sent:
        with suppress():
            edit(note, title="quiet", owner=bob)
            note.notify_access_changed()
    # Nothing of the content is announced, but every subscriber checks its access again on the
    # committed row (and the one who lost it is told `revoked`): once for the write, once for the call.
    assert sent == []
    _group, message = sent.messages[0]
    assert json.loads(message["row"]) == {"id": note.pk, "owner_id": bob.pk}
    assert sent.rechecks == [{"model": "testapp.note", "id": note.hashid}] * 2


@pytest.mark.django_db
def test_inside_testcase_transaction(note):
    with capture_notifications() as sent:
        with suppress():
            edit(note, title="quiet")
        edit(note, body="loud")
    assert sent == [assert_notified(sent, note, changed=["body"])]
