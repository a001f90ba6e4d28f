"""Test helpers for projects using notify_kit: record the notifications a block of code causes.

``capture_notifications()`` hooks ``notifications.send()`` (through ``notify_kit.capture``):
while it is open, what would go to the channel layer is recorded *instead*, so a test needs no
layer, no consumer and no server, and nothing it causes reaches a socket. Each entry is the frame a
subscriber would receive, decoded from the very text the sender would send (``Event.render()``),
so the helpers cannot drift from the wire format.

It records what is sent, and notifications are sent after commit, as in production: a rolled back
transaction or savepoint records nothing, and a transaction still open when the block exits has
sent nothing yet. Django's ``TestCase`` never commits (each test runs inside an atomic block that
is rolled back), so on exit the block runs the on-commit callbacks registered inside it when the
only transaction open around it is the test's own: what a real commit would have run. Under
``TransactionTestCase`` (pytest-django's ``transactional_db``) commits are real and nothing extra
runs.

Imports of Django's ORM and of the rest of notify_kit happen on use, so a conftest may import
this module before Django is set up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import capture

logger = logging.getLogger("notify_kit")


class Captured(list[dict[str, Any]]):
    """The frames a block caused, in the order they were sent: a list of dicts, as on the wire.

    ``messages`` keeps every ``(group, channel-layer message)`` pair; ``rechecks`` lists the
    ``{"model", "id"}`` of access rechecks (``notify_access_changed()``), which send no frame to
    a subscriber still allowed and ``revoked`` to one who is not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._seen: set[str] = set()

    @property
    def rechecks(self) -> list[dict[str, str]]:
        """The objects whose subscribers were asked to check their access again."""
        from .notifications import RECHECK_TYPE

        found = []
        for _, m in self.messages:
            # notify_access_changed(), or a write that changed who may see the row and nothing else.
            if m.get("type") == RECHECK_TYPE or ("row" in m and "text" not in m):
                found.append({"model": m["model"], "id": m["id"]})
        return found

    def _record(self, group: str, item: Any) -> None:
        from .notifications import EVENT_TYPE

        # Built now, as the sender would build it: a model event is rendered once, to the text
        # every subscriber is sent. Called on the thread that sends, hence list.append only.
        message = item.to_message() if hasattr(item, "to_message") else item
        if message.get("type") == EVENT_TYPE:
            # One event goes to its object's group and to one group per audience: record it once.
            ids = message.get("event") or []
            if ids and ids[0] in self._seen:
                return
            self._seen.update(ids)
        self.messages.append((group, message))
        if message.get("type") != EVENT_TYPE:
            return
        if "text" in message:
            self.append(json.loads(message["text"]))
        elif message.get("views") and message["views"]["old"] is None and message["views"]["new"]:
            # A new row: what a collection subscriber of its first audience receives.
            views = message["views"]
            data = json.loads(views["payloads"][views["new"][0][1]])
            self.append({"type": "created", "model": message["model"], "id": message["id"], "data": data})


@contextmanager
def capture_notifications() -> Iterator[Captured]:
    """Record, instead of sending, the notifications the block causes; yields the list of frames."""
    from django.db import connections

    from . import changes

    # The callbacks queued before the block (kept alive, so their ids stay unique) are not ours to run.
    before = {conn.alias: list(conn.run_on_commit) for conn in connections.all(initialized_only=True)}
    for connection in connections.all(initialized_only=True):
        if _inside_testcase_only(connection):
            # Writes before the block (setUp, fixtures) are a commit of their own: what the block
            # changes is announced as the block's, not folded into their callbacks.
            changes.seal(connection.alias)
    sent = Captured()
    capture.add(sent._record)
    try:
        yield sent
    finally:
        try:
            for connection in connections.all(initialized_only=True):
                _commit_testcase_callbacks(connection, before.get(connection.alias, []))
        finally:
            capture.remove(sent._record)


def _inside_testcase_only(connection: Any) -> bool:
    # The test's atomic blocks are flagged _from_testcase by Django (it uses the flag to allow
    # durable blocks inside TestCase). Any other block open around us may still roll back: its
    # callbacks are not ours to run, they run (and are recorded, if still capturing) at its commit.
    blocks = connection.atomic_blocks
    return (
        connection.in_atomic_block
        and not connection.needs_rollback
        and bool(blocks)
        and all(getattr(block, "_from_testcase", False) for block in blocks)
    )


def _commit_testcase_callbacks(connection: Any, before: list[Any]) -> None:
    """Run the on-commit callbacks queued inside the block, as the commit TestCase never makes would."""
    if not _inside_testcase_only(connection):
        return
    # By the callback, not the entry: a savepoint rollback rebuilds the queue with new tuples.
    old = {id(entry[1]) for entry in before}
    while True:  # a callback may queue more (a save in an on-commit callback)
        queued = connection.run_on_commit
        new = [entry for entry in queued if id(entry[1]) not in old]
        if not new:
            return
        # Taken off the queue before they run, as a commit does: they must not run a second time
        # (an enclosing captureOnCommitCallbacks(execute=True)), and a later save of the same
        # object must queue a callback of its own rather than merge into one that has run.
        # Callbacks of a savepoint rolled back inside the block were already removed by Django.
        connection.run_on_commit = [entry for entry in queued if id(entry[1]) in old]
        for _sids, func, robust in new:
            if not robust:
                func()
                continue
            try:
                func()
            except Exception:  # robust=True: logged and skipped, as Django does at commit
                logger.exception("notify_kit: on-commit callback %r failed", func)


def _identity(obj: Any, hashid: str | None) -> tuple[str, str]:
    label = obj._meta.label_lower
    if hashid is not None:
        return label, hashid
    if getattr(obj, "pk", None) is None:
        raise TypeError(
            f"{obj!r} has no primary key (Django clears it on delete): read `hashid = obj.hashid` before "
            "the delete and pass hashid=hashid."
        )
    return label, obj.hashid


def _describe(sent: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {frame}" for frame in sent) or "  (nothing)"


def assert_notified(
    sent: list[dict[str, Any]],
    obj: Any,
    type: str = "updated",  # the frame's key, shadowing the builtin on purpose
    *,
    changed: list[str] | None = None,
    data: dict[str, Any] | None = None,
    hashid: str | None = None,
) -> dict[str, Any]:
    """Assert that ``sent`` holds a ``type`` frame for ``obj`` (with these ``changed``/``data``); return it.

    ``obj`` is a live model instance, or a live model class with ``hashid=`` (a deleted instance
    has lost its primary key: pass ``hashid=`` read before the delete). ``changed`` is compared
    as a set; ``data`` must equal the frame's whole ``data``.
    """
    label, id_ = _identity(obj, hashid)
    frames = [f for f in sent if f.get("model") == label and f.get("id") == id_ and f.get("type") == type]
    if changed is not None:
        frames = [f for f in frames if sorted(f.get("changed", [])) == sorted(changed)]
    if data is not None:
        frames = [f for f in frames if f.get("data") == data]
    if not frames:
        wanted: dict[str, Any] = {"type": type, "model": label, "id": id_}
        wanted.update({k: v for k, v in (("changed", sorted(changed or [])), ("data", data)) if v})
        raise AssertionError(f"No notification matching {wanted}; sent:\n{_describe(sent)}")
    return frames[-1]


def assert_not_notified(sent: list[dict[str, Any]], obj: Any = None, *, hashid: str | None = None) -> None:
    """Assert that ``sent`` holds no frame for ``obj``, or no frame at all when ``obj`` is None."""
    if obj is None:
        if sent:
            raise AssertionError(f"Expected no notification; sent:\n{_describe(sent)}")
        return
    label, id_ = _identity(obj, hashid)
    frames = [f for f in sent if f.get("model") == label and f.get("id") == id_]
    if frames:
        raise AssertionError(f"Expected no notification for {label} {id_}; sent:\n{_describe(frames)}")


try:  # the fixture, when pytest is there; the module is usable without it
    import pytest
except ImportError:  # pragma: no cover - pytest is not a dependency of notify_kit
    pass
else:

    @pytest.fixture
    def notify_kit_capture() -> Any:
        """``with notify_kit_capture() as sent:``: capture_notifications, without an import.

        Like pytest-django's ``django_capture_on_commit_callbacks``, it gives the context
        manager rather than wrapping the whole test: under ``db`` the frames exist only once
        the block exits (that is when the test's on-commit callbacks are run).
        """
        return capture_notifications
