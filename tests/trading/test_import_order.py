"""The house's import rules (ARCHITECTURE.md, "Apps and the direction of imports"), read from
the code itself: every import of every module, at any depth in a file, is checked.

* An app imports only itself and apps below it; apps on one floor do not import each other.
* The kernel (``trading``) imports no app, except in urls.py, routing.py and asgi.py, where
  the project is assembled.
* No circle of imports inside an app.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# floor of each app: an app may import apps on lower floors only
FLOORS = {
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
KERNEL_ASSEMBLY = {"trading/urls.py", "trading/routing.py", "trading/asgi.py"}


def _modules() -> dict[str, Path]:
    modules = {}
    for app in FLOORS:
        for path in sorted((ROOT / app).rglob("*.py")) if (ROOT / app).is_dir() else []:
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


DYNAMIC_IMPORTS = {"import_module", "import_string", "__import__"}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names; ``from x import y`` counts as x.y when
    x.y is a module of the house, else x), also through ``import_module("...")`` and its
    kin with a literal name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if called in DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return {module for module in found if module.split(".")[0] in FLOORS}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _upward(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for name, imported in graph.items():
        app = name.split(".")[0]
        path = name.replace(".", "/") + ".py"
        for target in imported:
            other = target.split(".")[0]
            if other == app or (app == "trading" and path in KERNEL_ASSEMBLY):
                continue
            if FLOORS[other] >= FLOORS[app]:
                found.append(f"{name} imports {target} ({app} is floor {FLOORS[app]}, {other} floor {FLOORS[other]})")
    return sorted(found)


def test_apps_import_only_themselves_and_the_apps_below():
    assert not _upward(GRAPH), "\n".join(_upward(GRAPH))


def test_a_dynamic_import_counts(tmp_path):
    module = tmp_path / "x.py"
    module.write_text("import importlib\nimportlib.import_module('notifications.selectors')\n")
    assert _imports("trading.x", module) == {"notifications.selectors"}


def test_the_rule_sees_an_upward_import_and_a_kernel_reaching_up():
    graph = {
        "ledger.services": {"orders.models"},
        "trading.context_processors": {"notifications.selectors"},
        "trading.urls": {"orders.urls"},
        "settlement.services": {"portfolio.selectors"},
    }
    assert [line.split(" (")[0] for line in _upward(graph)] == [
        "ledger.services imports orders.models",
        "settlement.services imports portfolio.selectors",
        "trading.context_processors imports notifications.selectors",
    ]


def test_no_circle_of_imports_inside_an_app():
    edges = defaultdict(set)
    for name, imported in GRAPH.items():
        app = name.split(".")[0]
        for target in imported:
            module = target
            while module not in MODULES and "." in module:
                module = module.rpartition(".")[0]
            if module in MODULES and module != name and module.split(".")[0] == app:
                # a package's face (its __init__) that only hands names on is not a room of its own
                edges[name].add(module)
    circles = _circles(edges)
    assert not circles, "\n".join(" -> ".join(circle) for circle in circles)


def _circles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return result


def test_every_project_app_has_a_floor():
    from django.conf import settings

    local = [app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()]
    assert local and not [app for app in local if app not in FLOORS]


def test_a_circle_is_found():
    assert _circles({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}) == [["a.x", "a.y", "a.z"]]
