"""Small facts shared by the code-generation modules."""
from __future__ import annotations

from ...ir.core import Block

NP_TYPES = {"f64": "np.float64", "f32": "np.float32", "i64": "np.int64", "i32": "np.int32",
            "i1": "np.bool_"}


def without_terminator(block: Block) -> Block:
    """A view of the block without its terminator (the owning op reads the terminator)."""
    view = Block()
    view.ops = block.ops[:-1]
    return view
