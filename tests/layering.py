"""The layers of mingyan, and a checker that finds imports reaching upward.

A package may import its own modules and the packages of lower layers, never a higher or an equal
one (two packages of one layer are peers and stay independent). Imports inside functions count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Lowest first. A top-level module (`config`, `errors`, `bootstrap`) is its own "package".
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "web", "__init__"}),
    frozenset({"config", "sampling"}),
    frozenset({"formats"}),
    frozenset({"engine", "store"}),
    frozenset({"models"}),
    # Capabilities the chat service composes; peers (none imports another).
    frozenset({"documents", "safety", "tools", "serving"}),
    frozenset({"chat"}),
    frozenset({"accounts"}),
    frozenset({"bootstrap"}),
    frozenset({"api", "terminal"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)


@dataclass(frozen=True)
class Violation:
    module: str  # e.g. mingyan/engine/llamacpp/engine.py
    line: int
    imported: str  # e.g. mingyan.api.app

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}"


def layer_of(package: str) -> int:
    for rank, names in enumerate(LAYERS):
        if package in names:
            return rank
    raise KeyError(f"package {package!r} has no layer: add it to tests/layering.py LAYERS")


def _imports(tree: ast.AST, root: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == root:  # `from mingyan import cli`
                for alias in node.names:
                    yield node.lineno, f"{root}.{alias.name}"


def violations(package_dir: Path) -> list[Violation]:
    """Every import in `package_dir` (e.g. .../mingyan) of a package of a higher or equal layer."""
    root = package_dir.name
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir)
        own = relative.parts[0].removesuffix(".py")
        own_rank = layer_of(own)
        for line, name in _imports(ast.parse(path.read_text(), str(path)), root):
            parts = name.split(".")
            if parts[0] != root or len(parts) < 2 or parts[1] in (own, "__init__"):
                continue
            if name == root or parts[1] == "__version__":
                continue
            if layer_of(parts[1]) >= own_rank:
                found.append(Violation(f"{root}/{relative}", line, name))
    return found
