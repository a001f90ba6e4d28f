"""The README's quick start, run as a new user would: its code blocks in a fresh project, served by daphne.

The README's Python blocks are found by their first-line comment (``# mysite/settings.py``,
``# notes/models.py``, ...) and written into a project made by ``startproject``/``startapp``; only the
Redis ``prefix`` is replaced, so parallel runs do not share groups. Everything runs in other
processes (manage.py, daphne, the writer), against Redis on 127.0.0.1:6379 and the project's own
database: SQLite as startproject makes it, or a fresh PostgreSQL database with
``NOTIFY_KIT_TEST_DB=postgres``.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import websockets

from tests.conftest import require_redis
from tests.e2e.conftest import ROOT, Server, free_port, receive

pytestmark = pytest.mark.e2e

README = (ROOT / "README.md").read_text()
BLOCKS = {
    "mysite/settings.py": "append",
    "notes/models.py": "write",
    "notes/serializers.py": "write",
    "mysite/asgi.py": "write",
}
PASSWORD = "quick-start-pw"


def readme_blocks() -> dict[str, str]:
    """The README's ``python`` code blocks, keyed by the path in their first-line comment."""
    found = {}
    for block in re.findall(r"```python\n(.*?)```", README, re.DOTALL):
        first = block.splitlines()[0]
        for path in BLOCKS:
            if first.startswith(f"# {path}"):
                assert path not in found, f"two README blocks for {path}"
                found[path] = block
    assert set(found) == set(BLOCKS), f"README blocks missing: {set(BLOCKS) - set(found)}"
    return found


def test_the_documented_pip_command_installs_daphne_and_channels_redis():
    """The quick start's ``pip install`` names extras that exist and bring what the settings use."""
    command = re.search(r'pip install "notify-kit\[([a-z,]+)\]"', README)
    assert command, "the quick start must show its pip install command"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = []
    for extra in command.group(1).split(","):
        assert extra in extras, f"pyproject.toml has no extra {extra!r}"
        installed += [re.split(r"[<>=\[ ]", requirement)[0] for requirement in extras[extra]]
    assert {"daphne", "channels-redis"} <= set(installed), installed


class Project:
    """A project made from the README in ``path``; every command runs in its own process."""

    def __init__(self, path: Path, prefix: str, database: dict[str, str] | None) -> None:
        self.path, self.prefix, self.database = path, prefix, database
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NOTIFY_KIT_"))}
        # The notify_kit under test, not whatever the environment has installed.
        self.env.update(PYTHONPATH=os.pathsep.join([str(path), str(ROOT)]), DJANGO_SETTINGS_MODULE="mysite.settings")

    def run(self, *args: str, timeout: float = 120, **env: str) -> str:
        result = subprocess.run([sys.executable, *args], cwd=self.path, env={**self.env, **env}, timeout=timeout,
                                capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def manage(self, *args: str, **env: str) -> str:
        return self.run("manage.py", *args, **env)

    def create(self) -> None:
        self.run("-m", "django", "startproject", "mysite", ".")
        self.manage("startapp", "notes")
        for path, block in readme_blocks().items():
            if path == "mysite/settings.py":
                assert '"prefix": "mysite"' in block, "the settings block must show the shared prefix"
                block = block.replace('"prefix": "mysite"', f'"prefix": "{self.prefix}"')
                if self.database:  # not in the README: the test's PostgreSQL instead of SQLite
                    block += f"\nDATABASES = {{'default': {self.database!r}}}\n"
            target = self.path / path
            text = target.read_text() + "\n" + block if BLOCKS[path] == "append" else block
            target.write_text(text)


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database for the project under NOTIFY_KIT_TEST_DB=postgres, else None (SQLite)."""
    if os.environ.get("NOTIFY_KIT_TEST_DB") != "postgres":
        yield None
        return
    import psycopg

    params = {
        "host": os.environ.get("NOTIFY_KIT_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("NOTIFY_KIT_PG_PORT", "5432"),
        "user": os.environ.get("NOTIFY_KIT_PG_USER", "postgres"),
        "password": os.environ.get("NOTIFY_KIT_PG_PASSWORD", ""),
    }
    name = f"quickstart_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dbname="test", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield {"ENGINE": "django.db.backends.postgresql", "NAME": name, **{k.upper(): v for k, v in params.items()}}
    with psycopg.connect(dbname="test", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class QuickStartServer(Server):
    """daphne serving the quick-start project's ``mysite.asgi``, from its directory, with its environment."""

    app = "mysite.asgi:application"

    def __init__(self, project: Project) -> None:
        super().__init__("daphne", free_port())
        self.cwd, self.project = project.path, project

    def process_env(self) -> dict[str, str]:
        return self.project.env


def log_in(base: str, username: str) -> str:
    """Log in through the admin's login form, as a person would; the session cookie header value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = {"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD, "next": "/admin/"}
    opener.open(f"{base}/admin/login/", data=urllib.parse.urlencode(form).encode(), timeout=10)
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert "sessionid" in cookies, "login failed"
    return f"sessionid={cookies['sessionid']}"


async def test_the_readme_quick_start_works_as_written(tmp_path, postgres_database):
    from asgiref.sync import sync_to_async

    require_redis()
    project = Project(tmp_path, f"qs{uuid.uuid4().hex[:10]}", postgres_database)
    await sync_to_async(project.create)()
    await sync_to_async(project.manage)("makemigrations", "notes")
    await sync_to_async(project.manage)("migrate")
    checked = await sync_to_async(project.manage)("check")
    assert "System check identified no issues" in checked, checked
    superuser = ["createsuperuser", "--noinput", "--username", "alice", "--email", "alice@example.com"]
    await sync_to_async(project.manage)(*superuser, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    create = (
        "from django.contrib.auth.models import User; from django.db import connection; from notes.models import Note; "
        "print(connection.vendor, Note.objects.create(owner=User.objects.get(username='alice'), title='first').hashid)"
    )
    vendor, hashid = (await sync_to_async(project.manage)("shell", "-c", create)).split()[-2:]
    assert vendor == ("postgresql" if postgres_database else "sqlite")

    # The documented command: `daphne mysite.asgi:application` (on a free port here).
    server = QuickStartServer(project).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        script = await sync_to_async(_get)(f"{base}/static/notify_kit/notify-kit.js")
        assert "export function connect" in script

        cookie = await sync_to_async(log_in)(base, "alice")
        headers = {"Origin": base, "Cookie": cookie}
        async with websockets.connect(server.url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"model": "notes.note", "id": hashid, "request_id": 1}))
            assert await receive(ws) == {"type": "subscribed", "model": "notes.note", "id": hashid, "request_id": 1}

            # The save, from another process, as `manage.py shell` would make it.
            save = f"from notes.models import Note; n = Note.get_by_hashid({hashid!r}); n.title = 'from the shell'"
            save += "; n.save()"
            await sync_to_async(project.manage)("shell", "-c", save)
            event = await receive(ws)
            assert event == {
                "type": "updated", "model": "notes.note", "id": hashid,
                "data": {"id": hashid, "title": "from the shell", "body": ""}, "changed": ["title"],
            }  # fmt: skip
    finally:
        server.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()
