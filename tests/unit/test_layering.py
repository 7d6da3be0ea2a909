"""Layers import downward only: engine, store and formats never import chat, api or cli; chat never
imports api; nothing imports cli."""

from __future__ import annotations

from pathlib import Path

import pytest

import mingyan
from tests.layering import LAYERS, layer_of, violations

PACKAGE = Path(mingyan.__file__).parent


def test_no_module_imports_a_higher_layer() -> None:
    found = violations(PACKAGE)
    assert not found, "imports reaching a higher or equal layer:\n" + "\n".join(map(str, found))


def test_every_package_has_a_layer() -> None:
    for entry in PACKAGE.iterdir():
        if entry.name.startswith((".", "_")) and entry.name not in ("__init__.py", "__main__.py"):
            continue
        if entry.is_dir() or entry.suffix == ".py":
            layer_of(entry.name.removesuffix(".py"))


@pytest.mark.parametrize(
    ("module", "bad_import"),
    [
        ("engine/base.py", "from mingyan.chat.service import ChatService"),
        ("store/db.py", "import mingyan.api.app"),
        ("formats/template.py", "from mingyan.cli import main"),
        ("chat/service.py", "from mingyan.api.auth import Principal"),
        ("api/app.py", "from mingyan.cli.main import main"),
        ("engine/base.py", "from mingyan.store.db import Database"),  # peers stay independent
    ],
)
def test_the_checker_finds_a_wrong_import(tmp_path: Path, module: str, bad_import: str) -> None:
    tree = tmp_path / "mingyan"
    for name in ("engine", "store", "formats", "chat", "api", "cli"):
        (tree / name).mkdir(parents=True)
    target = tree / module
    target.write_text(f"def late():\n    {bad_import}\n")
    found = violations(tree)
    assert [(v.module, v.line) for v in found] == [(f"mingyan/{module}", 2)]


def test_layers_are_disjoint() -> None:
    names = [name for layer in LAYERS for name in layer]
    assert len(names) == len(set(names))


def test_every_module_imports_on_its_own() -> None:
    """Import cycles show only when an import starts at a particular module: start at each one, in a
    fresh interpreter (as a test run or a command that imports it first would)."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    modules = sorted(
        ".".join(("mingyan", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts and p.name != "__main__.py"
    )

    def load(module: str) -> str | None:
        result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
        return None if result.returncode == 0 else f"{module}: {result.stderr.strip().splitlines()[-1]}"

    with ThreadPoolExecutor(4) as pool:
        failed = [f for f in pool.map(load, modules) if f]
    assert not failed, "\n".join(failed)
