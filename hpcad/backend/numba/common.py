"""Small facts shared by the code-generation modules."""
from __future__ import annotations

from ...ir.core import Block

NP_TYPES = {"f64": "np.float64", "f32": "np.float32", "i64": "np.int64", "i32": "np.int32",
            "i1": "np.bool_"}
# the `mpi_handles` argument of code that calls MPI: the handles of these mpi4py names, in
# this order (mpi.py reads them in the running process), at these slots; here, not in
# mpi.py, so that generating code does not import the compiled MPI helpers
HANDLE_NAMES = ("DOUBLE", "FLOAT", "INT64_T", "INT32_T", "C_BOOL", "SUM", "MAX", "MIN",
                "COMM_WORLD")
DTYPE_SLOT = {"f64": 0, "f32": 1, "i64": 2, "i32": 3, "i1": 4}
OP_SLOT = {"sum": 5, "max": 6, "min": 7}
WORLD_SLOT = 8


def without_terminator(block: Block) -> Block:
    """A view of the block without its terminator (the owning op reads the terminator)."""
    view = Block()
    view.ops = block.ops[:-1]
    return view
