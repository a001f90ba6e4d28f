"""The distributions: the wheel and sdist ship the browser client and py.typed, the wheel installs
into a fresh virtualenv and works there, and the npm package holds what a front-end project needs.

These build and install for real (a minute, PyPI for the dependencies), so they run once, in the
tox env ``package``, not in every Python x Django env: ``pytest -m packaging``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.packaging]

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ["notify_kit/static/notify_kit/notify-kit.js", "notify_kit/static/notify_kit/notify-kit.d.ts"]
SHIPPED = [*CLIENT, "notify_kit/py.typed", "notify_kit/__init__.py", "notify_kit/models.py"]


def _run(*args: str | Path, cwd: Path = ROOT) -> str:
    # Not the worktree on the path: the installed copy must be the one imported.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A new virtualenv, and the dist/ that ``python -m build`` wrote from the source tree."""
    tmp = tmp_path_factory.mktemp("packaging")
    venv.create(tmp / "venv", with_pip=True)
    python = tmp / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "build>=1.2")
    # sdist first, then the wheel built from the unpacked sdist: a file the sdist forgets is
    # missing from the wheel too, and the test below sees it.
    _run(python, "-m", "build", "--outdir", tmp / "dist", ROOT)
    return python, tmp / "dist"


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_wheel_and_sdist_ship_the_client_and_py_typed(fresh: tuple[Path, Path]) -> None:
    _, dist = fresh
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= wheel_names
    assert not [n for n in wheel_names if n.startswith(("tests/", "node_modules/"))]
    prefix = f"notify_kit-{_version()}/"
    sdist_names = {n.removeprefix(prefix) for n in tarfile.open(sdist).getnames()}
    assert {*SHIPPED, "package.json", "LICENSE", "README.md", "typings/hashids.pyi"} <= sdist_names
    assert not [n for n in sdist_names if "node_modules" in n]


def test_the_wheel_installs_and_imports_in_a_fresh_venv(fresh: tuple[Path, Path]) -> None:
    python, dist = fresh
    (wheel,) = dist.glob("*.whl")
    _run(python, "-m", "pip", "install", "-q", wheel)
    # Outside the source tree, with a minimal settings module: the app loads, its modules
    # import, and the static files and py.typed are in the installed package.
    script = """
import json, django, importlib.resources as r
from django.conf import settings
settings.configure(
    SECRET_KEY="x",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "channels", "notify_kit"],
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
)
django.setup()
import notify_kit, notify_kit.models, notify_kit.serializers, notify_kit.notifications, notify_kit.routing
package = r.files("notify_kit")
print(json.dumps({
    "file": notify_kit.__file__,
    "files": sorted(p for p in ["py.typed", "static/notify_kit/notify-kit.js", "static/notify_kit/notify-kit.d.ts"]
                    if package.joinpath(p).is_file()),
    "routes": [str(p.pattern) for p in notify_kit.routing.websocket_urlpatterns],
}))
"""
    out = json.loads(_run(python, "-c", script, cwd=dist))
    assert Path(out["file"]).is_relative_to(python.parent.parent), out["file"]
    assert out["files"] == ["py.typed", "static/notify_kit/notify-kit.d.ts", "static/notify_kit/notify-kit.js"]
    assert out["routes"] == ["ws/notifications/"]


def _npm_version(version: str) -> str:
    """PEP 440 ``0.1.0.dev0`` / ``1.2.0rc1`` as semver ``0.1.0-dev.0`` / ``1.2.0-rc.1``."""
    match = re.fullmatch(r"(\d+\.\d+\.\d+)(?:\.?(dev|a|b|rc)(\d+))?", version)
    assert match, f"{version} has no npm equivalent here; extend _npm_version"
    release, tag, number = match.groups()
    return release if tag is None else f"{release}-{tag}.{number}"


def test_npm_package_holds_the_client_and_matches_the_python_version() -> None:
    packed = json.loads(_run("npm", "pack", "--dry-run", "--json", "--ignore-scripts"))
    (package,) = packed
    assert package["name"] == "notify-kit"
    assert package["version"] == _npm_version(_version())
    assert sorted(f["path"] for f in package["files"]) == sorted([*CLIENT, "LICENSE", "README.md", "package.json"])
    manifest = json.loads((ROOT / "package.json").read_text())
    assert manifest["type"] == "module"
    assert not manifest.get("dependencies") and not manifest.get("peerDependencies")
    assert manifest["exports"]["."] == {"types": f"./{CLIENT[1]}", "default": f"./{CLIENT[0]}"}
    assert manifest["types"] == f"./{CLIENT[1]}"


def test_npm_version_mapping() -> None:
    assert [_npm_version(v) for v in ["0.1.0", "0.1.0.dev0", "1.2.0rc1", "2.0.0b3"]] == [
        "0.1.0",
        "0.1.0-dev.0",
        "1.2.0-rc.1",
        "2.0.0-b.3",
    ]
