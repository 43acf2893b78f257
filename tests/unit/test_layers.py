"""Imports point down only (DESIGN.md, "Layout"): read every module's imports, those inside functions too."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: layer -> the layers of ours it may import (itself included)
ALLOWED = {
    "tables": {"tables"},
    "schemas": {"schemas", "tables"},
    "engine": {"engine", "schemas", "tables"},
    "agents": {"agents", "engine", "schemas", "tables"},
    "api": {"api", "engine", "schemas", "tables"},
    "probe": {"probe", "engine", "schemas", "tables"},  # runs checks; knows no API and no agent
    "pingstream": {"pingstream", "agents", "api", "engine", "probe", "schemas", "tables"},  # the composition root
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def upward_imports(root: Path = ROOT) -> list[str]:
    problems = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((root / layer).rglob("*.py")):
            for line, name in imported(path, root):
                top = name.split(".")[0]
                if top in ALLOWED and top not in allowed:
                    problems.append(f"{path.relative_to(root)}:{line} ({layer}) imports {name}")
    return problems


def test_every_layer_imports_only_the_layers_below_it():
    assert upward_imports() == []


def test_the_check_reads_imports_inside_functions_too(tmp_path):
    layer = tmp_path / "tables"
    layer.mkdir()
    (layer / "__init__.py").write_text("")
    (layer / "sneaky.py").write_text("def f():\n    from engine import app\n    from ..api import gateway\n")
    assert upward_imports(tmp_path) == ["tables/sneaky.py:2 (tables) imports engine",
                                        "tables/sneaky.py:3 (tables) imports api"]
