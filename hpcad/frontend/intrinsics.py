"""What kernel calls to Python and NumPy functions mean: a table from the function object
(found through the kernel's globals, so aliases like `from math import sin` work) to the IR
it lowers to. Elementwise math is one row per function."""
from __future__ import annotations

import builtins
import math

import numba
import numpy as np

# unary float math: python object -> math dialect op
UNARY_MATH = {}
for _name, _op in [("sin", "sin"), ("cos", "cos"), ("tan", "tan"), ("exp", "exp"),
                   ("log", "log"), ("log1p", "log1p"), ("expm1", "expm1"), ("sqrt", "sqrt"),
                   ("tanh", "tanh"), ("atan", "atan"), ("asin", "asin"), ("acos", "acos"),
                   ("sinh", "sinh"), ("cosh", "cosh"), ("log10", "log10"), ("log2", "log2"),
                   ("fabs", "abs"), ("erf", "erf"), ("erfc", "erfc"), ("asinh", "asinh"),
                   ("acosh", "acosh"), ("atanh", "atanh")]:
    UNARY_MATH[getattr(math, _name)] = _op
for _name, _op in [("sin", "sin"), ("cos", "cos"), ("tan", "tan"), ("exp", "exp"),
                   ("log", "log"), ("log1p", "log1p"), ("expm1", "expm1"), ("sqrt", "sqrt"),
                   ("tanh", "tanh"), ("arctan", "atan"), ("arcsin", "asin"), ("arccos", "acos"),
                   ("sinh", "sinh"), ("cosh", "cosh"), ("log10", "log10"), ("log2", "log2"),
                   ("fabs", "abs"), ("floor", "floor"), ("ceil", "ceil"), ("rint", "rint"),
                   ("arcsinh", "asinh"), ("arccosh", "acosh"), ("arctanh", "atanh")]:
    UNARY_MATH[getattr(np, _name)] = _op

# functions returning an int in Python (math.floor(2.5) == 2) but computed in float math
INT_ROUNDING = {math.floor: "floor", math.ceil: "ceil"}

ABS = {builtins.abs, np.abs, np.absolute}
MIN = {builtins.min, np.minimum, np.fmin}
MAX = {builtins.max, np.maximum, np.fmax}
POW = {builtins.pow, math.pow, np.power}
# binary float math: python object -> math dialect op
BINARY_MATH = {math.atan2: "atan2", np.arctan2: "atan2", math.hypot: "hypot", np.hypot: "hypot"}
# float classification: python object -> the test it makes (False for integers)
FLOAT_CLASS = {math.isnan: "isnan", np.isnan: "isnan", math.isinf: "isinf", np.isinf: "isinf",
               math.isfinite: "isfinite", np.isfinite: "isfinite"}
ROUND = {builtins.round}
# NumPy ufuncs that are Python operators: np.add(a, b) is a + b element by element
UFUNC_OPERATORS = {np.add: "Add", np.subtract: "Sub", np.multiply: "Mult", np.divide: "Div",
                   np.true_divide: "Div", np.floor_divide: "FloorDiv", np.mod: "Mod",
                   np.remainder: "Mod"}
# NumPy ufuncs that are Python comparisons: np.less(a, b) is a < b element by element
UFUNC_COMPARISONS = {np.less: "Lt", np.less_equal: "LtE", np.greater: "Gt",
                     np.greater_equal: "GtE", np.equal: "Eq", np.not_equal: "NotEq"}
NEGATIVE = {np.negative}
DIVMOD = {builtins.divmod}
NP_ROUND = {np.round, np.around}
TRUNC = {math.trunc, np.trunc}

WHERE = {np.where}
CLIP = {np.clip}
SIGN = {np.sign}
SQUARE = {np.square}
LOGICAL = {np.logical_and: "and", np.logical_or: "or", np.logical_not: "not"}
LOGICAL_NOT = {np.logical_not}
LOGICAL_BINARY = {np.logical_and, np.logical_or}


# scalar conversions: callable -> target scalar type name
# numba's scalar types, called as conversions (`numba.float64(i)`) or named as a dtype
# (`np.zeros(n, dtype=numba.float32)`), as numba's own code writes them
NUMBA_SCALARS = {numba.float64: "f64", numba.float32: "f32", numba.int64: "i64",
                 numba.int32: "i32", numba.boolean: "i1"}
CASTS = {builtins.float: "f64", builtins.int: "i64", builtins.bool: "i1", np.float64: "f64",
         np.float32: "f32", np.int64: "i64", np.int32: "i32", np.bool_: "i1", **NUMBA_SCALARS}


def is_scalar_type(obj) -> bool:
    """Whether obj is a scalar type a kernel may hold in a variable and call as a conversion
    (`ftype = a.dtype.type; ftype(x)`, as numba's code writes it; `numba.float32`)."""
    try:
        return obj in CASTS
    except TypeError:   # unhashable
        return False


def numba_scalar(obj) -> str | None:
    """The IR scalar type name of one of numba's scalar types (NUMBA_SCALARS), else None."""
    try:
        return NUMBA_SCALARS.get(obj)
    except TypeError:   # unhashable
        return None

CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}
