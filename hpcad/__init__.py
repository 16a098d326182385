"""hpcad: parallel-aware automatic differentiation of numba-style HPC kernels."""
from .backend.numba.threads import preload_tbb as _preload_tbb

_preload_tbb()   # before anything starts numba's threads, so that its `tbb` layer can load

from . import testing as testing  # hpcad.testing: dot_test, taylor_test
from .api import (
                  Active,
                  Const,
                  Dual,
                  Duplicated,
                  DuplicatedNoNeed,
                  autodiff,
                  check_grad,
                  checkpoint,
                  grad,
                  grad_and_hvp,
                  hvp,
                  jacobian,
                  jvp,
                  plan,
                  value_and_grad,
                  vjp,
)
from .custom import CustomKernel, custom_jvp, custom_vjp
from .errors import (
                  ArgumentError,
                  BufferMemoryError,
                  CollectiveError,
                  DifferentiationError,
                  GradientMismatch,
                  HpcadError,
                  HpcadWarning,
                  IndexOutOfBounds,
                  IntegerConversionError,
                  IntegerDivisionByZero,
                  IRParseError,
                  IRVerifyError,
                  KernelAssertionError,
                  KernelTypeError,
                  MpiError,
                  PlanMismatch,
                  UnsupportedConstruct,
)
from .frontend.markers import register_marker
from .kernel import Kernel, kernel
from .parallel import join, par_map, par_sum, prange, spawn, sync

__version__ = "0.1.0"

__all__ = ["Active", "Const", "Dual", "Duplicated", "DuplicatedNoNeed", "autodiff",
           "CustomKernel", "custom_jvp", "custom_vjp", "check_grad", "checkpoint", "plan", "grad",
           "grad_and_hvp", "hvp", "jacobian", "jvp", "value_and_grad", "vjp", "ArgumentError",
           "DifferentiationError", "GradientMismatch", "HpcadError", "HpcadWarning",
           "IndexOutOfBounds", "IntegerConversionError", "IntegerDivisionByZero",
           "IRParseError", "IRVerifyError", "KernelAssertionError", "KernelTypeError",
           "BufferMemoryError", "CollectiveError", "MpiError", "PlanMismatch",
           "UnsupportedConstruct", "Kernel", "kernel", "join", "par_map", "par_sum", "prange",
           "register_marker", "spawn", "sync"]
