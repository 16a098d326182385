"""Writer rules of the `linalg` dialect: a matrix product is one `np.dot(a, b, out)`, the BLAS
call numba links (gemm, gemv), a transpose is `.T` (an F-ordered view BLAS reads as it is);
an operand numba cannot prove contiguous is copied first (np.ascontiguousarray), a result
that is not contiguous is computed aside and copied in. An outer product is a loop nest.
Operands of vectors (batched derivatives) give one product per lane, over their lane views."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...ir.core import Op, Value
from ...ir.types import ArrayType, lanes
from . import vector
from .rules import rule

if TYPE_CHECKING:
    from .writer import Writer


def _ndim(v: Value) -> int:
    assert isinstance(v.type, ArrayType)
    return v.type.ndim


def _contiguous(v: Value) -> bool:
    """Whether numba types v C-contiguous: an argument or an allocation the IR types so
    (numba types a view such as a[1:3, :] 'A' where the IR knows it is contiguous; a lane's
    view of an array of vectors is taken as strided, whichever layout vector.py chose)."""
    assert isinstance(v.type, ArrayType)
    made = not isinstance(v.owner, Op) or v.owner.name == "mem.alloc"
    return v.type.layout == "C" and made and lanes(v.type) == 1


def _lane_view(w: Writer, v: Value, lane: str | None) -> str:
    """v's source text: for an array of vectors, its plane of lane `lane`."""
    if lane is None or lanes(v.type) == 1:
        return w.ref(v)
    return f"{w.ref(v)}[{', '.join(vector.with_lane(w, [':'] * _ndim(v), lane))}]"


def _operand(v: Value, text: str, transpose: bool) -> str:
    if not _contiguous(v):
        text = f"np.ascontiguousarray({text})"
    return f"{text}.T" if transpose else text


def _write_matmul(w: Writer, op: Op, depth: int, texts: list[str]) -> None:
    a, b, out = op.operands
    x = _operand(a, texts[0], bool(op.attrs.get("transpose_a")))
    y = _operand(b, texts[1], bool(op.attrs.get("transpose_b")))
    if _contiguous(out):
        w.emit(depth, f"np.dot({x}, {y}, {texts[2]})")
    else:
        w.emit(depth, f"{texts[2]}[{', '.join([':'] * _ndim(out))}] = np.dot({x}, {y})")


def _write_outer(w: Writer, op: Op, depth: int, texts: list[str]) -> None:
    i, j = w.fresh("i"), w.fresh("j")
    x, y, out = texts
    w.emit(depth, f"for {i} in range({x}.shape[0]):")
    w.emit(depth + 1, f"for {j} in range({y}.shape[0]):")
    w.emit(depth + 2, f"{out}[{i}, {j}] = {x}[{i}] * {y}[{j}]")


_WRITERS = {"linalg.matmul": _write_matmul, "linalg.outer": _write_outer}


@rule("linalg.matmul", "linalg.outer")
def linalg_product(w: Writer, op: Op, depth: int) -> None:
    if lanes(op.operands[2].type) == 1:
        _WRITERS[op.name](w, op, depth, [w.ref(v) for v in op.operands])
        return
    lane = w.fresh("w")
    w.emit(depth, f"for {lane} in range(_lanes):")
    _WRITERS[op.name](w, op, depth + 1, [_lane_view(w, v, lane) for v in op.operands])
