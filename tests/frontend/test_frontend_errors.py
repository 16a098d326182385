"""Unsupported kernel constructs are hpcad errors naming the construct and the kernel's
file:line (the line marked `# error here` in each kernel below)."""
import inspect

import numpy as np
import pytest

import hpcad as ad


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
    b = a[::2]  # error here
    return s


def early_return(a):
    for i in range(len(a)):
        if a[i] > 0:
            return a[i]  # error here
    return 0.0


def list_literal(a):
    xs = [1.0, 2.0]  # error here
    return a[0]


def plain_call(a):
    return helper(a[0])  # error here


def helper(x):
    return x * 2


def loop_over_array(a):
    s = 0.0
    for x in a:  # error here
        s += x
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


def partial_index(a):
    return a[0]  # error here


def array_arith(a):
    return a * 2.0  # error here


@ad.kernel
def recursive(x, n):
    if n > 0:
        x = recursive(x, n - 1)  # error here
    return x


def type_clash(a, flag):
    v = a
    if flag > 0:  # error here
        v = 1.0
    return 0.0


@pytest.mark.parametrize("fn,args,fragment", [
    (slicing, (np.ones(4),), "a slice with a step"),
    (early_return, (np.ones(4),), "`return` before the end"),
    (list_literal, (np.ones(4),), "List"),
    (plain_call, (np.ones(4),), "@hpcad.kernel"),
    (loop_over_array, (np.ones(4),), "range()"),
    (while_else, (4.0,), "while ... else"),
    (undefined_after_branch, (1.0,), "'y'"),
    (partial_index, (np.ones((2, 2)),), "returning arrays"),
    (array_arith, (np.ones(3),), "whole-array expressions"),
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
