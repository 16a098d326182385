"""hpcad: parallel-aware automatic differentiation of numba-style HPC kernels."""
from .errors import (ArgumentError, DifferentiationError, GradientMismatch, HpcadError,
                     IRParseError, IRVerifyError, KernelTypeError, UnsupportedConstruct)

__version__ = "0.1.0"
