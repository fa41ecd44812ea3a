"""Every setting the code reads is declared once, with its default, in trading/settings.py:
no ``getattr(settings, "X", default)`` that would hide a second default in a module."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
APPS = [
    "trading",
    "accounts",
    "ledger",
    "marketdata",
    "venues",
    "notifications",
    "risk",
    "orders",
    "settlement",
    "portfolio",
    "compliance",
    "ops",
]


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path.name != "settings.py":
                yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def test_no_module_gives_a_setting_a_default_of_its_own():
    found = [
        f"{name}:{node.lineno}"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) in ("getattr", "hasattr")
        and node.args
        and getattr(node.args[0], "id", None) == "settings"
    ]
    assert found == []


def test_every_setting_the_code_reads_is_declared():
    missing = sorted(
        f"{name}:{node.lineno} settings.{node.attr}"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "settings"
        and node.attr.isupper()
        and not hasattr(settings, node.attr)
    )
    assert missing == []


def test_the_list_of_apps_is_complete():
    assert {p.parent.name for p in ROOT.glob("*/apps.py")} <= set(APPS)
