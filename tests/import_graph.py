"""The import graph of a baked package, read from its source (no import is run)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path


def module_name(package: Path, path: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_edges(package: Path) -> dict[str, set[str]]:
    """{module: the package's own modules it imports}, function-level imports included."""
    modules = {module_name(package, f): f for f in package.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                anchor = base[: len(base) - node.level + 1] if node.level else []
                target = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    found.add(child if child in modules else target)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def import_cycle(package: Path) -> list[str] | None:
    """One import circle in the package, if there is any."""
    try:
        tuple(graphlib.TopologicalSorter(import_edges(package)).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None
