"""Smoke test of example_site, so the demo cannot rot: its checks, its tests, and the demo set-up run twice.

The example site has its own settings and apps, so it runs in subprocesses of its own
``manage.py``, each on a temporary SQLite file (EXAMPLE_DB_PATH) and the in-memory layer.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "example_site" / "manage.py"


def example_env(db_path: Path, **extra: str) -> dict[str, str]:
    """Environment for the example site's manage.py: its own settings, this database, no Redis."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest-django set it to the test suite's settings
    env.pop("REDIS_URL", None)  # the default in-memory layer
    env.update(EXAMPLE_DB_PATH=str(db_path), PYTHONUNBUFFERED="1", **extra)
    return env


def manage(*args: str, db_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run example_site/manage.py with ``args``; fail the test with its output if it fails."""
    cmd = [sys.executable, "-W", "error::DeprecationWarning", str(MANAGE), *args]
    result = subprocess.run(cmd, cwd=ROOT, env=example_env(db_path), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def test_check_passes(tmp_path):
    manage("check", "--fail-level", "WARNING", db_path=tmp_path / "db.sqlite3")


def test_example_site_tests_pass(tmp_path):
    result = manage("test", "notes", "--noinput", db_path=tmp_path / "db.sqlite3")
    assert "OK" in result.stderr


def test_demo_set_up_is_idempotent(tmp_path):
    db = tmp_path / "db.sqlite3"

    def counts() -> tuple[int, ...]:
        with closing(sqlite3.connect(db)) as conn:
            return tuple(
                conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("auth_user", "notes_note", "notes_note_shared_with", "notes_profile")
            )

    first = manage("demo", "--no-serve", db_path=db)
    for username in ("alice", "bob", "carol"):
        assert username in first.stdout
    assert counts() == (4, 4, 1, 4)  # alice, bob, carol, admin; one note shared (with bob); a profile each

    manage("demo", "--no-serve", db_path=db)
    assert counts() == (4, 4, 1, 4)
