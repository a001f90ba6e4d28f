"""Fixtures shared by the suite: the channel layers, private Redis servers, users and notes, a connected client.

Redis and PostgreSQL are used for real. Where they are not running the tests that need them skip
with the reason, except when CI is set: there a missing service fails the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from urllib.parse import urlparse

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from notify_kit import health, notifications
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


#: ``layer`` fixture parameter -> CHANNEL_LAYERS alias in tests/settings.py.
LAYER_ALIASES = {"memory": "default", "redis": "redis", "pubsub": "redis_pubsub"}
# NOTIFY_KIT_TEST_LAYERS=memory,redis runs the layer-parametrised tests on those layers only (the
# tox envs beyond the first Python x Django pair, to keep the whole matrix within CI's time).
_LAYERS = [name for name in os.environ.get("NOTIFY_KIT_TEST_LAYERS", ",".join(LAYER_ALIASES)).split(",") if name]


@pytest.fixture(params=_LAYERS)
def layer(request, settings):
    """Run the test on the in-memory layer, channels-redis' core layer and its pub/sub layer."""
    if request.param != "memory":
        require_redis()
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": LAYER_ALIASES[request.param]}
    return request.param


@pytest.fixture
def redis_layer(settings):
    """The channels-redis layer only (for tests of Redis itself)."""
    require_redis()
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": "redis"}
    return "redis"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, to stop and restart at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def require_redis_server() -> None:
    """Skip (or, under CI, fail) when redis-server is not installed to start private ones."""
    if shutil.which("redis-server") is not None:
        return
    if CI:
        pytest.fail("redis-server is not installed; CI must run the tests that start their own Redis.")
    pytest.skip("redis-server is not installed; these tests start their own Redis.")


@pytest.fixture
def private_redis():
    """A private Redis, stopped by its PID after the test."""
    require_redis_server()
    redis = PrivateRedis().start()
    yield redis
    redis.stop()


@pytest.fixture
def two_private_redis():
    """Two private Redis servers (a sharded channel layer's hosts), stopped by their PIDs after the test."""
    require_redis_server()
    started: list[PrivateRedis] = []
    try:
        for _ in range(2):
            started.append(PrivateRedis().start())
        yield started
    finally:
        for redis in started:
            redis.stop()


@pytest.fixture(autouse=True)
def _drain_notifications():
    """Leave no queued notification or outage state behind for the next test."""
    yield
    notifications.flush(5)
    health.health.failing = False
    health.health.dropped = 0


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


@pytest.fixture
def consumers(monkeypatch):
    """Every NotificationConsumer instantiated during the test, in order."""
    made: list[NotificationConsumer] = []
    original = NotificationConsumer.__init__

    def recording_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(NotificationConsumer, "__init__", recording_init)
    return made


@pytest.fixture
def sent(monkeypatch):
    """Every notification a test causes, recorded instead of sent (a Recorder)."""
    from tests.send_helpers import Recorder

    recorder = Recorder()
    monkeypatch.setattr(notifications, "send", recorder)
    monkeypatch.setattr(notifications, "send_many", recorder.many)
    return recorder
