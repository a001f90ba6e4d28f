"""Real processes for the end-to-end tests: ASGI servers and writers sharing the test database and Redis.

Every process listens on loopback only, is bounded in time, and is stopped by its own PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def process_env(**extra: str) -> dict[str, str]:
    """Environment for a child process: this test's database, this run's Redis prefix, the Redis layer."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONPATH"] = str(ROOT)
    env["NOTIFY_KIT_TEST_LAYER"] = "redis"
    env["NOTIFY_KIT_REDIS_PREFIX"] = settings.CHANNEL_LAYERS["redis"]["CONFIG"]["prefix"]
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        env["NOTIFY_KIT_PG_NAME"] = name
    else:
        env["NOTIFY_KIT_SQLITE_PATH"] = str(name)
    env.update(extra)
    return env


class Server:
    """An ASGI server process (uvicorn or daphne) serving tests.asgi on a loopback port."""

    def __init__(self, kind: str = "uvicorn", port: int | None = None, **env: str):
        self.kind, self.port, self.env = kind, port or free_port(), env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> Server:
        if self.kind == "daphne":
            cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "tests.asgi:application"]
        else:
            cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning", "tests.asgi:application"]  # fmt: skip
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=process_env(**self.env))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} did not listen on {self.port} within {timeout}s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def servers(redis_layer):
    """Start servers with ``servers.start(kind)``; all are stopped by PID after the test."""
    started: list[Server] = []

    class Servers:
        def start(self, kind: str = "uvicorn", **env: str) -> Server:
            server = Server(kind, **env)
            started.append(server)
            return server.start()

    yield Servers()
    for server in started:
        server.stop()


def run_writer(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run tests.e2e.writer in its own process and wait for it (and its exit flush)."""
    return subprocess.run([sys.executable, "-m", "tests.e2e.writer", *args], cwd=ROOT, env=process_env(**env),
                          check=True, timeout=timeout, capture_output=True, text=True)  # fmt: skip


async def receive(ws, timeout: float = 10) -> dict:
    """The next frame of a ``websockets`` client connection, decoded, within ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


def session_cookie(user) -> str:
    """A session cookie header value for ``user``, stored in the shared test database."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
