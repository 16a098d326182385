"""The architecture's rules, checked on the source (docs/architecture.md): which package may
import which, no behaviour shared through multiple inheritance (mixins) in the compiler's
stages, and no module reaching into another module's private names."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hpcad"

# The stages in the order of docs/architecture.md's table: each may import only the ones
# before it (data flows one way; imports for annotations only, under TYPE_CHECKING, do not
# count). The user-facing modules and services below them all may import any stage.
STAGES = ("hpcad.ir", "hpcad.runtime", "hpcad.frontend", "hpcad.checkpoint", "hpcad.passes",
          "hpcad.ad", "hpcad.backend")
ABOVE_STAGES = ("hpcad.api", "hpcad.kernel", "hpcad.cli", "hpcad.custom", "hpcad.mpi_job",
                "hpcad.doctor", "hpcad.kernels", "hpcad.gradbench")
FORBIDDEN = {stage: STAGES[k + 1:] + ABOVE_STAGES for k, stage in enumerate(STAGES)}
# where a class may not inherit behaviour from several classes
NO_MIXINS = ("hpcad/ad", "hpcad/checkpoint", "hpcad/frontend", "hpcad/backend/numba")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts), ast.parse(path.read_text(), str(path))


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (annotations only: no run-time import)."""
    return {id(n) for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
            for stmt in block.body for n in ast.walk(stmt)}


def _imports(path: Path, module: str, tree: ast.Module, typing: bool = False):
    """(imported module, names, line) for every import in the file, relative ones resolved;
    those under `if TYPE_CHECKING:` only when `typing`."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    skip = set() if typing else _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_packages_import_only_downstream():
    bad = []
    for path, module, tree in _modules():
        for package, forbidden in FORBIDDEN.items():
            if not _within(module, package):
                continue
            for target, _, line in _imports(path, module, tree):
                if any(_within(target, f) for f in forbidden):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def _sources():
    """hpcad's modules and the tests, benchmarks and examples that use them."""
    yield from _modules()
    for folder in ("tests", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield path, module, ast.parse(path.read_text(), str(path))


def test_no_private_names_across_modules():
    bad = []
    for path, module, tree in _sources():
        for target, names, line in _imports(path, module, tree, typing=True):
            if not target.startswith(("hpcad", "tests", "benchmarks", "examples")):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != module:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {', '.join(private)} "
                           f"from {target}")
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


def test_no_mixins_in_compiler_stages():
    bad = []
    for path, _, tree in _modules():
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(NO_MIXINS):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if len(bases) > 1 or node.name.endswith("Mixin"):
                    bad.append(f"{rel}:{node.lineno} class {node.name}({', '.join(bases)})")
    allowed = {}   # none
    assert not [b for b in bad if b not in allowed], "mixin classes:\n" + "\n".join(bad)


@pytest.mark.parametrize("tree_root", ["tests", "benchmarks", "examples"])
def test_no_sys_path_edits(tree_root):
    edit = re.compile(r"sys\.path\s*(\.(insert|append|extend)|\[|\+?=)")
    bad = [f"{p.relative_to(ROOT)}" for p in sorted((ROOT / tree_root).rglob("*.py"))
           if edit.search(p.read_text())]
    assert not bad, f"sys.path edited in {', '.join(bad)}: import the package instead"


def test_generated_numba_source_reads_snapshot_files_from_the_runtime():
    """The numba writer's generated source names its imports in strings, which the import
    checks above do not see."""
    source = (PACKAGE / "backend" / "numba" / "codegen.py").read_text()
    assert "hpcad.checkpoint" not in source and "hpcad.runtime.snapshots" in source
