"""Unsupported kernel constructs are hpcad errors naming the construct and the kernel's
file:line (the line marked `# error here` in each kernel below)."""
import inspect

import numba_mpi
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad

SELF = MPI.COMM_SELF   # a communicator the kernel neither takes nor names as MPI.COMM_WORLD


def _marked_line(fn) -> int:
    lines, start = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if "# error here" in line:
            return start + k
    raise AssertionError("no marked line")


def _check(fn, args, fragment, error=ad.UnsupportedConstruct):
    k = ad.kernel(fn)
    with pytest.raises(error) as info:
        k(*args)
    msg = str(info.value)
    assert f"{__file__}:{_marked_line(fn)}" in msg, msg
    assert fragment in msg, msg


def slicing(a):
    s = 0.0
    b = a[:, None]  # error here
    return s


def early_return(a):
    for i in range(len(a)):
        if a[i] > 0:
            return a  # error here
    return a


def loop_variable_after_its_loop(a):
    x = 0.0   # (assigned before the loop too: the loop's variable still ends with it)
    for x in a:
        a[0] += x
    return x  # error here


def loop_variable_after_break(a):
    for i, x in enumerate(a):
        if x > 0.5:
            break
    return a[i]  # error here


def for_else(a):
    s = 0.0
    for i in range(a.shape[0]):  # error here
        if a[i] > 2.0:
            break
    else:
        s = 1.0
    return s


def astype(a):
    b = a.astype(np.int64, copy=False)  # error here
    return b[0] * 1.0


def list_literal(a):
    xs = [1.0, 2.0]  # error here
    return a[0]


def plain_call(a):
    return helper(a[0])  # error here


helper = lambda x: x * 2   # noqa: E731  (a def of the user's code would be inlined)


def loop_over_tuple(a):
    s = 0.0
    for v in (a, 2.0 * a):  # error here
        s += v[0]
    return s


def while_else(x):
    while x > 1.0:  # error here
        x = x / 2
    else:
        x = 0.0
    return x


def undefined_after_branch(x):
    if x > 0:
        y = x
    return y  # error here


@ad.kernel
def recursive(x, n):
    if n > 0:
        x = recursive(x, n - 1)  # error here
    return x


def array_if_expression(a, flag):
    b = np.zeros(a.shape[0])
    v = a if flag > 0 else b  # error here
    for i in range(1, a.shape[0]):
        v[i] = v[i - 1] + a[i]
    return v[a.shape[0] - 1]


def array_if_expression_in_call(a, b, flag):
    return np.sum(a[1:] if flag > 0 else b)  # error here


def type_clash(a, flag):
    v = a
    if flag > 0:  # error here
        v = 1.0
    return 0.0


def array_conditional(a):
    t = a[1:] if a[0] > 0.0 else a[:-1]  # error here
    return np.sum(t)


@pytest.mark.parametrize("fn,args,fragment", [
    (array_conditional, (np.ones(4),), "a conditional expression choosing between arrays is "
                                       "not supported in hpcad kernels; write it as an if "
                                       "statement (if a[0] > 0.0: t = a[1:] / else: t = "
                                       "a[:-1])"),   # (it said to index or reduce a scalar)
    (slicing, (np.ones(4),), "giving a name to a slice with np.newaxis"),
    (early_return, (np.ones(4),), "returning an array from a kernel that may return before"),
    (list_literal, (np.ones(4),), "a list literal"),
    (plain_call, (np.ones(4),), "define it with `def`"),
    (loop_over_tuple, (np.ones(4),), "a `for` loop over a tuple"),
    (while_else, (4.0,), "while ... else"),
    (undefined_after_branch, (1.0,), "'y'"),
    (loop_variable_after_its_loop, (np.ones(4),), "using the loop variable 'x' after its for "
                                                  "loop at line"),
    (loop_variable_after_break, (np.ones(4),), "keep the value you need in another variable"),
    (for_else, (np.ones(4),), "set a flag before the loop"),
    (astype, (np.ones(4),), "write a.astype(np.float64)"),
    (array_if_expression, (np.ones(4), 1), "a conditional expression choosing between arrays"),
    (array_if_expression_in_call, (np.ones(4), np.ones(3), 1), "write it as an if statement"),
])
def test_unsupported_construct_names_file_line(fn, args, fragment):
    _check(fn, args, fragment)


def test_recursion_is_reported():
    with pytest.raises(ad.UnsupportedConstruct) as info:
        recursive(1.0, 3)
    assert "recursive kernel call" in str(info.value)
    assert f"{__file__}:{_marked_line(recursive.py_func)}" in str(info.value)


def test_incompatible_types_across_branches():
    _check(type_clash, (np.ones(3), 1), "incompatible types", ad.KernelTypeError)


def test_bad_argument_type_names_argument():
    k = ad.kernel(lambda_free)
    with pytest.raises(ad.ArgumentError, match="argument 'a'.*str"):
        k("text")


def lambda_free(a):
    return 1.0


def test_a_masked_array_is_refused_on_both_backends():
    """The interpreter read the masked elements as numbers (a sum of 14.0 where NumPy's is
    10.0) and numba raised its own NumbaTypeError."""
    m = np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])
    for backend in ("interp", "numba"):
        with pytest.raises(ad.ArgumentError, match=r"argument 'a': masked arrays are not "
                                                   r"supported .* pass a.filled\(value\)"):
            ad.kernel(lambda_free, backend=backend)(m)


@ad.kernel
def scaled(v, scale=2.0):
    return scale * v


def unknown_keyword(a):
    return scaled(a[0], sclae=3.0)  # error here


def missing_argument(a):
    return scaled(scale=3.0)  # error here


def argument_twice(a):
    return scaled(a[0], 3.0, scale=1.0)  # error here


@pytest.mark.parametrize("fn,fragment", [
    (unknown_keyword, "unexpected keyword argument 'sclae'"),
    (missing_argument, "missing a required argument: 'v'"),
    (argument_twice, "multiple values for argument 'scale'"),
])
def test_bad_call_of_an_inner_kernel_names_the_call_and_the_callee(fn, fragment):
    _check(fn, (np.ones(3),), fragment, ad.KernelTypeError)
    _check(fn, (np.ones(3),), f"kernel 'scaled(v, scale=2.0)' (defined at {__file__}:",
           ad.KernelTypeError)


def mpi_waitany(comm, a):
    comm.Waitany([])  # error here
    return a[0]


def mpi_query_thread(comm, a):
    t = MPI.Query_thread()  # error here
    return a[0] * t


def mpi_window(comm, a):
    w = MPI.Win.Create(a)  # error here
    return a[0]


def mpi_unknown_attribute(comm, a):
    return a[0] * comm.name  # error here


def numba_mpi_query_thread(comm, a):
    t = numba_mpi.query_thread()  # error here
    return a[0] * t


def mpi_on_a_global_communicator(comm, a):
    return a[0] * SELF.Get_rank()  # error here


@pytest.mark.parametrize("fn,name", [
    (mpi_waitany, "MPI call `comm.Waitany`"),
    (mpi_query_thread, "MPI call `MPI.Query_thread`"),
    (mpi_window, "MPI call `MPI.Win.Create`"),
    (mpi_unknown_attribute, "MPI attribute `comm.name`"),
    (numba_mpi_query_thread, "MPI call `numba_mpi.query_thread`"),
    (mpi_on_a_global_communicator, "MPI call `SELF.Get_rank`"),
])
def test_unsupported_mpi_call_is_named_with_what_is_supported(fn, name):
    _check(fn, (MPI.COMM_WORLD, np.ones(3)), f"{name} is not supported by hpcad")
    _check(fn, (MPI.COMM_WORLD, np.ones(3)), "comm.Sendrecv")
    _check(fn, (MPI.COMM_WORLD, np.ones(3)), "numba_mpi.allreduce")


def test_call_on_a_global_communicator_says_to_pass_it():
    _check(mpi_on_a_global_communicator, (MPI.COMM_WORLD, np.ones(3)),
           "pass the communicator to the kernel")


GLOBAL_WEIGHTS = np.arange(8.0)
GLOBAL_TABLE = (0.5, 0.25, 0.25)


def _index_transpose_again(A):
    A.T[0, 1] = 7.0  # error here
    return A[1, 0]


def _index_global_array(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += GLOBAL_WEIGHTS[i] * x[i]  # error here
    return s


def _index_global_tuple(x):
    s = 0.0
    for i in range(3):
        s += GLOBAL_TABLE[i] * x[i]  # error here
    return s


def _global_array_in_expression(x):
    return np.sum(GLOBAL_WEIGHTS * x)  # error here


@pytest.mark.parametrize("fn, args, fragment", [
    (_index_transpose_again, (np.ones((2, 3)),), "indexing `A.T` (a transpose"),
    (_index_global_array, (np.ones(8),), "indexing the global array `GLOBAL_WEIGHTS`"),
    (_index_global_tuple, (np.ones(8),), "indexing the global tuple `GLOBAL_TABLE`"),
    (_global_array_in_expression, (np.ones(8),), "using a global NumPy array"),
], ids=lambda v: getattr(v, "__name__", "_"))
def test_indexing_what_is_no_array_value_says_what_it_is(fn, args, fragment):
    """These were all 'indexing something that is not an array' (or 'using a Python ndarray
    object where a scalar is expected ... index it'), which named neither the view nor the
    global."""
    _check(fn, args, fragment)


def _tuple_past_its_end(x):
    t = (x[0], x[1])
    return t[2]  # error here


def test_a_tuple_indexed_past_its_end_names_the_line():
    """It was Python's IndexError 'tuple index out of range', with no line."""
    _check(_tuple_past_its_end, (np.ones(3),), "tuple index 2 out of range: `t` holds 2 items",
           error=ad.KernelTypeError)


def test_a_kernel_is_made_of_a_python_function_only():
    """hpcad.kernel of a numba.vectorize ufunc (numba-examples' zero suppression), of a NumPy
    ufunc or of a built-in says what it was given and what to write; numba's ufunc raised an
    AttributeError, NumPy's an error about an argument 'casting'."""
    import numba

    @numba.vectorize(nopython=True)
    def suppressed(v, t):
        return v if abs(v) >= t else 0.0

    for fn, words in [(suppressed, "the numba.vectorize or guvectorize function 'suppressed'"),
                      (np.sin, "NumPy's ufunc 'sin'"), (len, "the built-in function 'len'")]:
        with pytest.raises(ad.UnsupportedConstruct, match="hpcad.kernel takes a Python "
                                                          "function") as info:
            ad.kernel(fn, backend="interp")
        assert words in str(info.value)
