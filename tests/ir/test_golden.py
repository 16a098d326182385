"""Golden IR text: the optimized primal and its forward and reverse derivatives of a few
kernels are pinned in tests/ir/golden/NAME.MODE.ir. Regenerate after an intended compiler
change with HPCAD_UPDATE_GOLDEN=1 and review the diff."""
import os
from pathlib import Path

import pytest

from hpcad.cli import default_activity, specialization
from hpcad.ir import parse_function, print_function
from tests.ir.golden_kernels import GOLDEN

GOLDEN_DIR = Path(__file__).parent / "golden"
MODES = ("primal", "fwd", "rev")


def render(name: str, mode: str) -> str:
    kernel, sig = GOLDEN[name]
    spec = specialization(kernel, sig)
    if mode == "primal":
        return print_function(spec.primal)
    direction = "forward" if mode == "fwd" else "reverse"
    return print_function(spec.derivative(direction, default_activity(spec), True))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_ir(name, mode):
    text = render(name, mode)
    path = GOLDEN_DIR / f"{name}.{mode}.ir"
    if os.environ.get("HPCAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with HPCAD_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_text_parses_back(name):
    for mode in MODES:
        text = (GOLDEN_DIR / f"{name}.{mode}.ir").read_text()
        assert print_function(parse_function(text)) == text
