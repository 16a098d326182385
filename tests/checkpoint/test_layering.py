"""Layering: checkpoint/ (planning) imports no backend, and no backend imports checkpoint/;
what both need at run time (snapshot files, the tape's sizes) is in hpcad/runtime/, which
imports neither. Read from the sources (imports inside functions count too)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent.parent / "hpcad"


def _imports(path: Path) -> set[str]:
    """The hpcad modules a source file imports, as dotted names."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("hpcad")}


def _importers(area: str, of: tuple[str, ...]) -> list[str]:
    """Files under hpcad/<area> that import a module under one of `of`."""
    return [f"{p.relative_to(PACKAGE)}: {m}" for p in sorted((PACKAGE / area).rglob("*.py"))
            for m in sorted(_imports(p)) if m.startswith(of)]


@pytest.mark.parametrize("area, forbidden", [
    ("checkpoint", ("hpcad.backend",)),
    ("backend", ("hpcad.checkpoint",)),
    ("runtime", ("hpcad.backend", "hpcad.checkpoint", "hpcad.ad")),
])
def test_no_import_across_layers(area, forbidden):
    assert _importers(area, forbidden) == []


def test_generated_numba_source_reads_snapshot_files_from_the_runtime():
    source = (PACKAGE / "backend" / "numba" / "codegen.py").read_text()
    assert "hpcad.checkpoint" not in source and "hpcad.runtime.snapshots" in source
