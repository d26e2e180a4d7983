"""trailseal.core is pure: it imports only the standard library (minus IO, clocks and
threads), cryptography, orjson and trailseal's own error module and core modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import trailseal.core

ALLOWED_THIRD_PARTY = {"cryptography", "orjson"}
ALLOWED_OWN = {"trailseal.core", "trailseal.errors"}
# Standard-library modules that would let the core do IO, read a clock or start threads.
FORBIDDEN_STDLIB = {
    "asyncio",
    "io",
    "logging",
    "multiprocessing",
    "os",
    "pathlib",
    "random",
    "secrets",
    "select",
    "selectors",
    "shutil",
    "socket",
    "sqlite3",
    "subprocess",
    "tempfile",
    "threading",
    "time",
    "urllib",
    "http",
    "concurrent",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _core_files() -> list[Path]:
    root = Path(trailseal.core.__file__).parent
    return sorted(root.glob("*.py"))


def test_core_has_modules_to_check() -> None:
    names = {p.stem for p in _core_files()}
    assert {"canonical", "merkle", "note", "checkpoint", "tiles", "schema", "entry"} <= names


def test_core_imports_only_the_allowed_set() -> None:
    bad: list[str] = []
    for path in _core_files():
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "trailseal":
                if not any(module == own or module.startswith(own + ".") for own in ALLOWED_OWN):
                    bad.append(f"{path.name}: {module}")
            elif top in FORBIDDEN_STDLIB:
                bad.append(f"{path.name}: {module} (IO, clock or threads)")
            elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
                bad.append(f"{path.name}: {module} (not an allowed dependency)")
            elif top == "__future__":
                continue
    assert bad == []


def test_core_never_reads_the_clock() -> None:
    readers = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "urandom"}
    bad = []
    for path in _core_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in readers
            ):
                bad.append(f"{path.name}:{node.lineno}: .{node.func.attr}()")
    assert bad == []


def test_core_reexports_every_public_name() -> None:
    import importlib

    for path in _core_files():
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"trailseal.core.{path.stem}")
        missing = [n for n in getattr(module, "__all__", []) if n not in trailseal.core.__all__]
        assert missing == [], f"{path.stem}: {missing}"
        for name in module.__all__:
            assert getattr(trailseal.core, name) is getattr(module, name)
