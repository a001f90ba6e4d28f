"""The package's shape (issue 9): no module a reader cannot hold in one sitting, no import cycle.

Imports inside functions count: a cycle kept lazy is still a cycle a reader has to untangle.
Imports under ``if TYPE_CHECKING:`` do not: they never run, and name a type only.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "notify_kit"
MODULES = {path.stem: path for path in PACKAGE.glob("*.py")}


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped.update(ast.walk(node))
    return skipped


def imports_of(path: Path) -> set[str]:
    found = set()
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
            found.update(name for name in names if name in MODULES and name != path.stem)
    return found


def test_no_module_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: size for name, size in sizes.items() if size > 400} == {}


def test_no_import_cycle():
    graph = {name: imports_of(path) for name, path in MODULES.items()}
    cycles = []

    def walk(start, node, path):
        for follower in graph[node]:
            if follower == start:
                cycles.append([*path, follower])
            elif follower not in path and follower > start:
                walk(start, follower, [*path, follower])

    for name in sorted(graph):
        walk(name, name, [name])
    assert cycles == []


def test_the_check_sees_a_cycle(tmp_path, monkeypatch):
    # The check above would pass on anything if imports_of found nothing: show it finds one.
    (tmp_path / "a.py").write_text("from . import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import x\n")
    monkeypatch.setitem(MODULES, "a", tmp_path / "a.py")
    monkeypatch.setitem(MODULES, "b", tmp_path / "b.py")
    assert imports_of(tmp_path / "a.py") == {"b"} and imports_of(tmp_path / "b.py") == {"a"}
