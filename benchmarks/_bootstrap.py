"""Create or refresh benchmarks/.venv, then re-run the caller inside it (stdlib only).

The environment is rebuilt whenever requirements.txt or the repository's pyproject.toml change
(a stamp file records their hash). uv is used when it is on PATH, else ``venv`` + pip.
notify_kit is installed from this repository in editable mode, so a change to notify_kit/ is
measured without a rebuild; if the editable build fails (it needs the README.md and LICENSE
that pyproject.toml names), the repository is put on the venv's path with a .pth file instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".bench-stamp"


def _digest() -> str:
    h = hashlib.sha256()
    for path in (BENCH / "requirements.txt", REPO / "pyproject.toml"):
        h.update(path.read_bytes())
    return h.hexdigest()


def _run(cmd: list[str], timeout: int = 900) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, timeout=timeout)


def _site_packages() -> Path:
    out = subprocess.run(
        [str(PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def ensure_venv() -> None:
    """Build benchmarks/.venv if it is missing or stale."""
    digest = _digest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    uv = shutil.which("uv")
    if VENV.exists():
        shutil.rmtree(VENV)
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(VENV)])
        install = [uv, "pip", "install", "--quiet", "--python", str(PY)]
    else:
        _run([sys.executable, "-m", "venv", str(VENV)])
        install = [str(PY), "-m", "pip", "install", "--quiet"]
    _run([*install, "-r", str(BENCH / "requirements.txt")])
    try:
        _run([*install, "--no-deps", "-e", str(REPO)])
    except subprocess.CalledProcessError:
        print(
            "! editable install of notify_kit failed (see above); putting the repository on the "
            "venv's path with a .pth file instead",
            flush=True,
        )
        (_site_packages() / "notify_kit_repo.pth").write_text(str(REPO) + "\n")
    STAMP.write_text(digest + "\n")


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec_in_venv(script: Path, argv: list[str]) -> None:
    """Make sure the venv exists, then replace this process with the script run by its python."""
    if in_venv():
        return
    ensure_venv()
    os.execv(str(PY), [str(PY), str(script), *argv])
