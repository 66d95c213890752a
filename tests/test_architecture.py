"""docs/architecture.md describes the tree as it is: every package and top-level module of src/altostratus is in
its layout block and in the import-linter layers, and nothing named there is gone.

The import rules themselves are checked by `lint-imports` in scripts/test; this keeps the page that explains them
from drifting away from the code.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "altostratus"


def tree_entries() -> set[str]:
    """Packages (``name/``) and top-level modules (``name.py``) of src/altostratus."""
    entries = {f"{p.name}/" for p in SRC.iterdir() if (p / "__init__.py").exists()}
    entries |= {p.name for p in SRC.glob("*.py") if p.name != "__init__.py"}
    return entries


def documented_entries() -> set[str]:
    """What the layout block of docs/architecture.md names at its left margin."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```\nsrc/altostratus/\n", 1)[1].split("```", 1)[0]
    names: set[str] = set()
    for line in block.splitlines():
        first = re.match(r"^  ([\w.]+/?(?:, [\w.]+/?)*)", line)
        if first:
            names |= {n.strip() for n in first.group(1).split(",")}
    return names


def test_the_layout_block_names_every_package_and_module() -> None:
    assert documented_entries() == tree_entries()


def test_every_package_and_module_has_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    layered = {name.strip().removeprefix("altostratus.") for layer in layers for name in re.split(r"[|:]", layer)}
    expected = {e.removesuffix("/").removesuffix(".py") for e in tree_entries()}
    assert layered == expected
