"""Fixtures shared by the suite: the two channel layers, users and notes, and a connected client.

Redis and PostgreSQL are used for real. Where they are not running the tests that need them skip
with the reason, except when CI is set: there a missing service fails the run.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from notify_kit import notifications
from notify_kit.consumers import NotificationConsumer
from notify_kit.testing import notify_kit_capture  # noqa: F401 - the fixture, imported as the docs tell projects to

CI = bool(os.environ.get("CI"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI, fail) when a service the test needs is not running."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if CI:
        pytest.fail(f"{message}; CI must run these tests.")
    pytest.skip(f"{message}; start it to run this test.")


def require_redis() -> None:
    url = urlparse(settings.REDIS_URL)
    require_service("Redis", url.hostname or "127.0.0.1", url.port or 6379)


def pytest_configure(config):
    if os.environ.get("NOTIFY_KIT_TEST_DB") == "postgres":
        host = os.environ.get("NOTIFY_KIT_PG_HOST", "127.0.0.1")
        port = int(os.environ.get("NOTIFY_KIT_PG_PORT", "5432"))
        if not _reachable(host, port):
            if CI:
                raise pytest.UsageError(f"PostgreSQL is not reachable at {host}:{port}; CI must run on it.")
            config.issue_config_time_warning(
                pytest.PytestWarning(f"PostgreSQL not reachable at {host}:{port}; database tests will error."), 2
            )


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings):
    """Run the test once on the in-memory layer and once on channels-redis."""
    if request.param == "redis":
        require_redis()
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": "default" if request.param == "memory" else "redis"}
    return request.param


@pytest.fixture
def redis_layer(settings):
    """The channels-redis layer only (for tests of Redis itself)."""
    require_redis()
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": "redis"}
    return "redis"


@pytest.fixture(autouse=True)
def _drain_notifications():
    """Leave no queued notification or outage state behind for the next test."""
    yield
    notifications.flush(5)
    notifications._health.failing = False
    notifications._health.dropped = 0


@pytest.fixture
def user_factory(django_user_model):
    def make(username: str, **extra):
        return django_user_model.objects.create_user(username=username, password="pw", **extra)

    return make


@pytest.fixture
def alice(user_factory):
    return user_factory("alice")


@pytest.fixture
def bob(user_factory):
    return user_factory("bob")


@pytest.fixture
def note(alice):
    from tests.testapp.models import Note

    return Note.objects.create(owner=alice, title="first", body="hello")


class Client:
    """A WebsocketCommunicator speaking the notify_kit protocol."""

    def __init__(self, user=None):
        from django.contrib.auth.models import AnonymousUser

        self.communicator = WebsocketCommunicator(NotificationConsumer.as_asgi(), "/ws/notifications/")
        self.communicator.scope["user"] = user if user is not None else AnonymousUser()
        self.consumer_groups = None

    async def __aenter__(self):
        connected, _ = await self.communicator.connect()
        assert connected
        return self

    async def __aexit__(self, *exc):
        await self.communicator.disconnect()

    async def send(self, frame):
        await self.communicator.send_json_to(frame)

    async def send_text(self, text):
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout=10):
        return await self.communicator.receive_json_from(timeout)

    async def request(self, frame, timeout=10):
        await self.send(frame)
        return await self.receive(timeout)

    async def subscribe(self, obj, **extra):
        frame = {"type": "subscribe", "model": obj._meta.label_lower, "id": obj.hashid, **extra}
        return await self.request(frame)

    async def nothing(self, timeout=0.3):
        return await self.communicator.receive_nothing(timeout)


@pytest.fixture
def ws():
    """``async with ws(user) as client``: a connected protocol client."""
    return Client


async def save(obj, **kwargs):
    await database_sync_to_async(obj.save)(**kwargs)
