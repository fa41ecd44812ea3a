"""Imports point down one order (ARCHITECTURE.md): the kernel imports no app (except the
modules that wire every app together), each app imports only those below it, and nothing
imports the apps on top."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lower numbers first; an app may import only apps with a lower number. Apps on one level
# (settlement and portfolio, compliance and ops) do not import each other.
LEVELS = {
    "trading": 0,
    "accounts": 1,
    "ledger": 2,
    "marketdata": 3,
    "venues": 4,
    "notifications": 5,
    "risk": 6,
    "orders": 7,
    "settlement": 8,
    "portfolio": 8,
    "compliance": 9,
    "ops": 9,
}
# The kernel's modules that name every app: the URL and websocket routes, and the ASGI
# entry point (settings.py names apps only as dotted strings).
KERNEL_WIRING = {"trading/urls.py", "trading/routing.py", "trading/asgi.py"}
DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _upward_imports() -> list[str]:
    found = []
    for app, level in LEVELS.items():
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in KERNEL_WIRING:
                continue
            for line, module in _imported_modules(ast.parse(path.read_text(), filename=relative)):
                top = module.split(".")[0]
                if top in LEVELS and top != app and LEVELS[top] >= level:
                    found.append(f"{relative}:{line} imports {module}")
    return found


def test_imports_point_down_the_app_order():
    assert _upward_imports() == []


@pytest.mark.parametrize("module", ["trading.context_processors", "trading.audit", "trading.models"])
def test_the_kernel_modules_apps_use_import_no_app(module):
    path = ROOT / (module.replace(".", "/") + ".py")
    imported = {name.split(".")[0] for _, name in _imported_modules(ast.parse(path.read_text()))}
    assert not imported & (set(LEVELS) - {"trading"})


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    package = tmp_path / "ledger"
    package.mkdir()
    (package / "bad.py").write_text("def f():\n    from orders.models import SpotOrder\n")
    (tmp_path / "trading").mkdir()
    (tmp_path / "trading" / "x.py").write_text("import importlib\nimportlib.import_module('notifications.selectors')\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _upward_imports() == ["trading/x.py:2 imports notifications.selectors", "ledger/bad.py:2 imports orders.models"]
