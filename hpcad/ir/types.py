"""IR types: scalars (float64, float32, int64, int32, bool) and arrays (dtype, ndim, layout).

Types are frozen dataclasses, printed as `f64`, `i1`, `f64[:]` (strided) or `f64[:,::1]`
(C-contiguous), and parsed back by `parse_type`. A float scalar may be a vector of `width`
lanes (`f64x8`: the derivative of an f64 along 8 directions); an array of such elements
(`f64x8[:]`) is stored with the lanes as an extra leading dimension, (8, n)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ScalarType:
    name: str  # f64 f32 i64 i32 i1
    width: int = 1   # lanes of a vector (batched derivatives); 1 for a plain scalar

    def __str__(self) -> str:
        return self.name if self.width == 1 else f"{self.name}x{self.width}"

    @property
    def is_float(self) -> bool:
        return self.name[0] == "f"

    @property
    def is_int(self) -> bool:
        return self.name in ("i64", "i32")

    @property
    def is_bool(self) -> bool:
        return self.name == "i1"

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(_NP_NAMES[self.name])

    @property
    def bits(self) -> int:
        return 1 if self.name == "i1" else int(self.name[1:])


@dataclass(frozen=True)
class ArrayType:
    dtype: ScalarType
    ndim: int
    layout: str = "A"  # "C" contiguous or "A" any (strided view)

    def __str__(self) -> str:
        dims = [":"] * self.ndim
        if self.layout == "C":
            dims[-1] = "::1"
        return f"{self.dtype}[{','.join(dims)}]"

    @property
    def is_float(self) -> bool:
        return False


@dataclass(frozen=True)
class OpaqueType:
    """A constant Python object passed through (e.g. an MPI communicator)."""
    name: str

    def __str__(self) -> str:
        return f"!{self.name}"

    is_float = False


def spoken(t: ScalarType | ArrayType | OpaqueType) -> str:
    """A type in a user's words, for messages: "an int64", "a 2-D float64 array" (the IR's
    `i64`, `f64[:, ::1]`)."""
    if isinstance(t, ArrayType):
        return f"a {t.ndim}-D {_NP_NAMES[t.dtype.name]} array"
    if isinstance(t, ScalarType):
        name = _NP_NAMES[t.name]
        return (f"an {name}" if name[0] == "i" else f"a {name}") if t.width == 1 else \
            f"a {name} vector of {t.width} lanes"
    return "an MPI Cartesian communicator" if t.name.startswith("cart") else \
        f"an MPI {'communicator' if t.name == 'comm' else t.name}"


f64 = ScalarType("f64")
f32 = ScalarType("f32")
i64 = ScalarType("i64")
i32 = ScalarType("i32")
i1 = ScalarType("i1")
SCALARS = {t.name: t for t in (f64, f32, i64, i32, i1)}

_NP_NAMES = {"f64": "float64", "f32": "float32", "i64": "int64", "i32": "int32", "i1": "bool"}
_FROM_NP = {v: k for k, v in _NP_NAMES.items()}
_NUMBA_NAMES = {"float64": f64, "float32": f32, "int64": i64, "int32": i32, "boolean": i1,
                "bool": i1, "double": f64, "float": f32, "intp": i64}

Type = ScalarType | ArrayType | OpaqueType


def with_width(t: Type, width: int) -> Type:
    """The type of t's derivative along `width` directions: float scalars become vectors of
    `width` lanes, float arrays arrays of such vectors; anything else (and width 1) is t."""
    if width == 1:
        return t
    if isinstance(t, ScalarType) and t.is_float:
        return ScalarType(t.name, width)
    if isinstance(t, ArrayType) and t.dtype.is_float:
        return ArrayType(ScalarType(t.dtype.name, width), t.ndim, t.layout)
    return t


def lanes(t: Type) -> int:
    """How many lanes a value of type t carries (its element's width for arrays)."""
    t = t.dtype if isinstance(t, ArrayType) else t
    return t.width if isinstance(t, ScalarType) else 1


def element(t: ScalarType) -> ScalarType:
    """One lane of a (vector) scalar type."""
    return SCALARS[t.name]


def scalar_from_dtype(dtype: npt.DTypeLike) -> ScalarType:
    name = _FROM_NP.get(np.dtype(dtype).name)
    if name is None:
        raise ValueError(f"unsupported dtype {np.dtype(dtype).name}")
    return SCALARS[name]


def is_float(t: Type) -> bool:
    return isinstance(t, ScalarType) and t.is_float


def parse_type(text: str) -> Type:
    """Parse an IR type (`f64`, `f64[:,::1]`) or a numba-style one (`float64[:]`)."""
    text = text.strip()
    if text.startswith("!"):
        return OpaqueType(text[1:])
    base, _, rest = text.partition("[")
    base = base.strip()
    vector = re.fullmatch(r"(f64|f32)x(\d+)", base)
    scalar = ScalarType(vector[1], int(vector[2])) if vector else \
        SCALARS.get(base) or _NUMBA_NAMES.get(base)
    if scalar is None:
        raise ValueError(f"unknown type '{text}'")
    if not rest:
        return scalar
    dims = [d.strip() for d in rest.rstrip("]").split(",")]
    if not all(d in (":", "::1") for d in dims):
        raise ValueError(f"bad array type '{text}'")
    layout = "C" if dims[-1] == "::1" else "A"
    return ArrayType(scalar, len(dims), layout)


def promote(a: ScalarType, b: ScalarType) -> ScalarType:
    """NumPy/numba promotion of two scalar types for arithmetic."""
    if a == b:
        return a if not a.is_bool else i64
    if a.is_float or b.is_float:
        if a == f32 and (b == f32 or b.is_bool):
            return f32
        if b == f32 and a.is_bool:
            return f32
        return f64
    return i64
