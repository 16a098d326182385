"""One IR-in/IR-out test per loop rewrite: tests/passes/golden/PASS.CASE.in.ir is a small
function of the shape the rewrite is for (a 2-D and a 3-D scatter nest, two arrays in one
nest, a 1-D stencil after its copy adjoint, a tape slot in a nest, a parallel nest in a time
loop, ...), PASS.CASE.out.ir
what the pass makes of it. Each test fails if the rewrite does nothing. Regenerate the
outputs after an intended change with HPCAD_UPDATE_GOLDEN=1 and review the diff."""
import os
from pathlib import Path

import pytest

from hpcad.ir import parse_function, print_function
from hpcad.ir.verifier import verify_function
from hpcad.passes.fusion import fuse_shifted
from hpcad.passes.gather import ascend_independent, gather_stencils
from hpcad.passes.gather_nest import gather_nests
from hpcad.passes.gather_parallel import gather_parallel
from hpcad.passes.overwrite import sink_overwritten, sink_scratch_stores
from hpcad.passes.simplify import simplify
from hpcad.passes.tape import index_tape

GOLDEN = Path(__file__).parent / "golden"
PASSES = {"gather_stencils": gather_stencils, "gather_nests": gather_nests,
          "ascend_independent": ascend_independent, "index_tape": index_tape,
          "fuse_shifted": fuse_shifted, "sink_overwritten": sink_overwritten,
          "sink_scratch_stores": sink_scratch_stores, "simplify": simplify,
          "gather_parallel": gather_parallel}
CASES = sorted(p.name[:-len(".in.ir")] for p in GOLDEN.glob("*.in.ir"))


@pytest.mark.parametrize("case", CASES)
def test_rewrite_golden(case):
    text = (GOLDEN / f"{case}.in.ir").read_text()
    fn = parse_function(text)
    assert PASSES[case.split(".")[0]](fn), f"{case}: the rewrite did nothing"
    verify_function(fn)
    out = print_function(fn)
    path = GOLDEN / f"{case}.out.ir"
    if os.environ.get("HPCAD_UPDATE_GOLDEN"):
        path.write_text(out)
    assert out != text and out == path.read_text()


def test_every_rewrite_has_a_golden_case():
    assert {case.split(".")[0] for case in CASES} == set(PASSES)
