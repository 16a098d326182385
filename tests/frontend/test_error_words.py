"""A construct hpcad does not support is named in user words (a list comprehension, the
membership test `in`), never by its `ast` class name (ListComp, In), with the kernel's
file:line (the line marked `# error here` below) and the nearest supported way to write it."""
import ast
import inspect
import math
import random
import re

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.frontend import words

# every class name the ast module defines (node classes, operators, contexts, helpers)
AST_NAMES = sorted(n for n, c in vars(ast).items()
                   if isinstance(c, type) and issubclass(c, ast.AST) and n[0].isupper())
COUNTER = 0.0


def _marked_line(fn) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if "# error here" in line)


def _ast_names_in(text: str) -> list[str]:
    return [n for n in AST_NAMES if re.search(rf"\b{n}\b", text)]


def list_comprehension(a):
    b = [x * 2.0 for x in range(3)]  # error here
    return b


def dict_literal(a):
    d = {"x": a[0]}  # error here
    return d


def set_literal(a):
    s = {1, 2}  # error here
    return s


def a_lambda(a):
    return (lambda *x: x[0] * 2.0)(a[0])  # error here


def f_string(a):
    s = f"{a[0]}"  # error here
    return s


def with_block(a):
    with open("x"):  # error here
        pass
    return a[0]


def try_block(a):
    try:  # error here
        x = a[0]
    except IndexError:
        x = 0.0
    return x


def raise_stmt(a):
    if a[0] < 0:
        raise ValueError(f"negative: {a[0]}")  # error here
    return a[0]


def global_stmt(a):
    global COUNTER  # error here
    return a[0]


def make_nonlocal():
    total = 0.0

    def nonlocal_stmt(a):
        nonlocal total  # error here
        return a[0]
    return nonlocal_stmt


def generator(a):
    yield a[0]  # error here


def walrus(a):
    x = 0.0
    if (n := a[0]) > 0:  # error here
        x = n
    return x


def starred_target(a):
    x, *rest = (a[0], a[1], a[2])  # error here
    return x + rest[0]


def starred_argument(a):
    t = (a[0],)
    return math.exp(*t)  # error here


def delete(a):
    x = a[0]
    del x  # error here
    return a[1]


def import_inside(a):
    import math  # error here
    return math.exp(a[0])


def nested_def(a):
    def twice(x):  # error here
        y = 2.0 * x
        return y
    return twice(a[0])


def nested_class(a):
    class Box:  # error here
        pass
    return a[0]


def membership(a):
    x = a[0] in (1.0, 2.0)  # error here
    return x


def identity(a):
    x = a[0] is None  # error here
    return x


def root_only_buffer(a):
    recvbuf = None  # error here
    if a.shape[0] > 2:
        recvbuf = np.empty(3)
    return recvbuf[0]


def string_constant(a):
    s = "text"  # error here
    return s


def match_stmt(a):
    match 1:  # error here
        case 1:
            pass
    return a[0]


def generator_expression(a):
    g = (x for x in range(3))  # error here
    return g


def attribute_target(a):
    np.x = a[0]  # error here
    return a[0]


def _first_of(x):
    return x[0]


def make_reading_a_captured_array():
    """PyLops's on-the-fly Radon kernels call a helper with arrays of the function that
    made the kernel, which numba freezes as constants."""
    axis = np.linspace(0.0, 1.0, 3)

    def reads_captured(a):
        return a[0] * _first_of(axis)  # error here
    return reads_captured


CASES = [
    (list_comprehension, "a list comprehension"),
    (dict_literal, "a dict literal"),
    (set_literal, "a set literal"),
    (a_lambda, "a function defined in a kernel with *args, **kwargs, positional-only or "
               "keyword-only parameters"),
    (f_string, "an f-string"),
    (with_block, "a `with` block"),
    (try_block, "a `try` statement"),
    (raise_stmt, words.RAISE[0]),
    (global_stmt, "a `global` declaration"),
    (make_nonlocal(), "a `nonlocal` declaration"),
    (generator, "`yield`"),
    (walrus, "an assignment expression (`:=`)"),
    (starred_target, "starred unpacking (`a, *rest = ...`)"),
    (starred_argument, "a starred expression (`*x`)"),
    (delete, "`del`"),
    (import_inside, "an `import` inside a kernel"),
    (nested_def, "a function defined inside a kernel whose body is more than one `return` "
                 "of an expression"),
    (nested_class, "a class defined inside a kernel"),
    (membership, "the membership test `in`"),
    (identity, "the identity test `is`"),
    (string_constant, "a string"),
    (root_only_buffer, "`None`"),
    (match_stmt, "a `match` statement"),
    (generator_expression, "a generator expression"),
    (attribute_target, "assigning to an attribute (`obj.x = ...`)"),
    (make_reading_a_captured_array(), "passing the array `axis` from outside the kernel (a "
                                      "global, or a variable of the function that made it: "
                                      "numba freezes it as a constant) as argument 'x' of "
                                      "kernel '_first_of'"),
]


@pytest.mark.parametrize("fn, phrase", CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_unsupported_construct_is_named_in_words_with_location_and_hint(fn, phrase):
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn, backend="interp")(np.ones(3))
    msg = str(info.value)
    where = f"{inspect.getsourcefile(fn)}:{_marked_line(fn)}: "
    assert msg.startswith(where), msg
    text = msg[len(where):]
    assert text.startswith(phrase + " is not supported in hpcad kernels; "), msg
    hint = text.split("; ", 1)[1]
    assert len(hint.split()) >= 2, msg
    assert _ast_names_in(text) == [], msg


def test_none_as_a_buffer_only_the_root_allocates_says_to_allocate_it_everywhere():
    """mpi4py's tutorial sets a Gather's receive buffer to None and allocates it on the root
    only; the kernel's refusal says how to write that."""
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(root_only_buffer, backend="interp")(np.ones(3))
    assert "is allocated on every rank instead" in str(info.value), str(info.value)


def _concrete(base):
    for cls in base.__subclasses__():
        if cls.__module__ == "ast" and not issubclass(cls, ast.Constant) or cls is ast.Constant:
            yield cls
        yield from _concrete(cls)


@pytest.mark.parametrize("base, table", [
    (ast.stmt, words.STATEMENTS), (ast.expr, words.EXPRESSIONS),
    (ast.operator, words.OPERATORS), (ast.unaryop, words.OPERATORS),
    (ast.cmpop, words.OPERATORS), (ast.boolop, words.OPERATORS)])
def test_every_python_construct_has_words_and_a_hint(base, table):
    """Every statement, expression and operator of this Python is in the table (the
    deprecated aliases of Constant, never produced by ast.parse, describe as Constant)."""
    for cls in set(_concrete(base)):
        assert cls.__name__ in table, cls
        what, hint = words.describe(cls.__new__(cls), table)
        assert what and hint and _ast_names_in(what + " " + hint) == [], (cls, what, hint)


def test_no_table_entry_uses_an_ast_class_name():
    for table in (words.STATEMENTS, words.EXPRESSIONS, words.OPERATORS, words.TARGETS,
                  words.CONSTANTS):
        for what, hint in table.values():
            assert _ast_names_in(what + " " + hint) == [], (what, hint)


def test_matrix_product_is_called_a_matrix_product():
    what, hint = words.describe(ast.MatMult())
    assert what == "the matrix product `@`" and "MatMult" not in hint


def module_as_number(a):
    return a[0] + np  # error here


def module_as_bound(a):
    s = 0.0
    for i in range(math):  # error here
        s += a[0]
    return s


def tuple_as_number(a):
    t = (a[0], a[1])
    return t * 2.0  # error here


@pytest.mark.parametrize("fn, words_", [
    (module_as_number, "a module"), (module_as_bound, "a module"),
    (tuple_as_number, "a tuple")], ids=["module", "bound", "tuple"])
def test_python_values_are_named_in_words(fn, words_):
    with pytest.raises(ad.HpcadError) as info:
        ad.kernel(fn, backend="interp")(np.ones(3))
    msg = str(info.value)
    assert f"{inspect.getsourcefile(fn)}:{_marked_line(fn)}: " in msg and words_ in msg, msg
    assert "Static" not in msg and "module'" not in msg, msg


def returns_a_module(a):
    return np  # error here


def test_returning_a_python_object_names_it_in_words():
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(returns_a_module, backend="interp")(np.ones(3))
    msg = str(info.value)
    assert f":{_marked_line(returns_a_module)}: returning a module from `np`" in msg, msg


def scatter_add_at(x, idx, out):
    np.add.at(out, idx, x)  # error here
    return np.sum(out * out)


def scatter_add_loop(x, idx, out):
    for i in range(idx.shape[0]):
        out[idx[i]] += x[i]
    return np.sum(out * out)


def numpy_random(a):
    return a[0] * np.random.standard_normal()  # error here


def generator_random(a):
    return a[0] + np.random.default_rng(0).normal()  # error here


def python_random(a):
    return a[0] * random.random()  # error here


@numba.vectorize(["float64(float64)"])
def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def calls_vectorize(a):
    return np.sum(sigmoid(a))  # error here


@pytest.mark.parametrize("fn, hint", [
    (numpy_random, "draw them before the call"), (generator_random, "draw them before the call"),
    (python_random, "draw them before the call"),
    (calls_vectorize, "@numba.vectorize ufunc, which hpcad does not inline: decorate its "
                      "scalar function with @numba.njit")],
    ids=["np.random", "generator", "random", "vectorize"])
def test_calls_hpcad_cannot_inline_say_what_to_do(fn, hint):
    """Random numbers were refused with "decorate it with @hpcad.kernel so hpcad can inline
    it" (np.random's functions have Python code), a @numba.vectorize ufunc with "see the
    supported-construct list". (A numba.njit function is inlined: test_numba_functions.py.)"""
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn, backend="interp")(np.ones(3))
    msg = str(info.value)
    assert msg.startswith(f"{inspect.getsourcefile(fn)}:{_marked_line(fn)}: calling `"), msg
    assert hint in msg and "so hpcad can inline it" not in msg, msg


def calls_gradient(a):
    return np.sum(np.gradient(a) * a)  # error here


def calls_lstsq(a):
    return np.sum(np.linalg.lstsq(np.eye(3), a)[0])  # error here


def calls_copysign(a):
    return math.copysign(a[0], a[1])  # error here


def calls_fmod(a):
    return np.sum(np.fmod(a, 0.7))  # error here


def calls_degrees(a):
    return math.degrees(a[0])  # error here


def per_thread_copies(a):
    out = np.zeros((numba.get_num_threads(), 3))  # error here
    for i in numba.prange(3):
        out[numba.get_thread_id(), i] += a[i]
    return np.sum(out)


def per_thread_index(a):
    s = 0.0
    for i in numba.prange(3):
        s += a[i] * numba.get_thread_id()  # error here
    return s


@pytest.mark.parametrize("fn, name", [
    (calls_gradient, "numpy.gradient"),
    (calls_lstsq, "numpy.linalg.lstsq"), (calls_copysign, "math.copysign"),
    (calls_fmod, "numpy.fmod"), (calls_degrees, "math.degrees"),
    (per_thread_copies, "numba.np.ufunc.parallel.get_num_threads"),
    (per_thread_index, "numba.np.ufunc.parallel.get_thread_id")],
    ids=["gradient", "lstsq", "copysign", "fmod", "degrees", "num_threads",
         "thread_id"])
def test_common_library_functions_say_how_to_write_them(fn, name):
    """np.gradient, np.sort, np.linalg.lstsq, math.copysign... said "see the supported-construct
    list in the README"; each now gives the way to write it with what kernels have.
    numba.get_thread_id / get_num_threads (a particle code's per-thread force copies) said
    "write what it computes in the kernel", which no kernel can: now how to write the copies
    per iteration."""
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn, backend="interp")(np.array([0.5, -1.0, 2.0]))
    msg = str(info.value)
    assert msg.startswith(f"{inspect.getsourcefile(fn)}:{_marked_line(fn)}: calling `"), msg
    assert msg.endswith(words.FUNCTIONS[name]) and "README" not in msg, msg


def calls_fill(a):
    b = a.copy()
    b.fill(2.0)  # error here
    return np.sum(b * a)


@pytest.mark.parametrize("fn, hint, start", [
    (calls_fill, words.ARRAY_METHODS["fill"], "the attribute `fill`")], ids=["fill"])
def test_array_methods_kernels_lack_say_how_to_write_them(fn, hint, start):
    """`a.fill(v)` (numba's parfor tests use it) said only "the attribute `fill` is not
    supported"; it now says how to write it (a.var(), a.std(), np.var and np.std are
    supported: tests/frontend/test_reductions.py)."""
    a = np.array([0.5, -1.0, 2.0, 0.25])
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(fn, backend="interp")(a)
    msg = str(info.value)
    assert msg.startswith(f"{inspect.getsourcefile(fn)}:{_marked_line(fn)}: {start} "), msg
    assert msg.endswith("; " + hint), msg


def transposes(a, b):
    return np.sum(a.transpose() * b) + a.transpose()[1, 0] * a.T.transpose()[0, 1]


def transposes_with_axes(a):
    return a.transpose(1, 0)[0, 0]  # error here


def test_the_transpose_method_is_the_T_attribute():
    """`a.transpose()` (numba's parfor tests use it) was refused as an attribute; it is
    `a.T` now: values against NumPy, the gradient against central differences; with axes it
    says to write a.T."""
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))
    k = ad.kernel(transposes, backend="interp")
    assert k(a, b) == pytest.approx(transposes(a, b), rel=1e-14)
    g = ad.grad(k)(a, b)
    d = rng.standard_normal(a.shape)
    fd = (transposes(a + 1e-6 * d, b) - transposes(a - 1e-6 * d, b)) / 2e-6
    assert np.sum(g * d) == pytest.approx(fd, rel=1e-7)
    with pytest.raises(ad.UnsupportedConstruct, match="write a.T, which reverses all axes"):
        ad.kernel(transposes_with_axes, backend="interp")(a)


def test_ufunc_at_is_named_as_written_and_the_loop_it_suggests_is_np_add_at():
    """np.add.at was refused as "calling `at`"; it is named as written, and the loop the
    hint gives accumulates repeated indices as np.add.at does (value and gradient)."""
    x, idx = np.array([0.5, -1.0, 2.0, 0.25]), np.array([1, 1, 0, 1])
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(scatter_add_at, backend="interp")(x, idx, np.ones(3))
    where = f"{inspect.getsourcefile(scatter_add_at)}:{_marked_line(scatter_add_at)}: "
    assert str(info.value).startswith(where + "calling `np.add.at` is not supported in hpcad "
                                      "kernels; write it as a loop over the indices"), info.value
    assert "out[idx[i]] += x[i]" in str(info.value)
    loop = ad.kernel(scatter_add_loop, backend="interp")
    assert loop(x, idx, np.ones(3)) == pytest.approx(scatter_add_at(x, idx, np.ones(3)))
    g = ad.grad(loop)(x, idx, np.ones(3))
    out = np.ones(3)
    np.add.at(out, idx, x)
    assert g == pytest.approx(2.0 * out[idx])   # d sum(out^2) / d x[i] = 2 out[idx[i]]


def slice_of_reversed(x):
    x[1:] = x[::-1][:-1] + x[1:]
    return np.sum(x * x)


def slice_of_reversed_as_one(x):
    x[1:] = x[:0:-1] + x[1:]
    return np.sum(x * x)


def test_a_slice_of_a_stepped_slice_is_a_slice_of_its_view():
    """x[::-1][:-1] was refused (first as 'indexing the result of an array expression',
    then with the one-slice form as a hint); a slice with a step is now a view, which a
    second subscript slices again, and the right side is read whole before the store, as
    NumPy does: both forms give NumPy's answer."""
    x = np.array([0.5, -1.0, 2.0, 0.25])
    ref = x.copy()
    ref[1:] = ref[::-1][:-1] + ref[1:]
    for fn in (slice_of_reversed, slice_of_reversed_as_one):
        k = ad.kernel(fn, backend="interp")
        y = x.copy()
        assert k(y) == pytest.approx(np.sum(ref * ref))
        np.testing.assert_allclose(y, ref)


def view_of_another_width(a):
    b = a.view(np.int32)  # error here
    return b[0] * 1.0


def float_to_int(a):
    return a[0] + int(a[1] * math.inf)  # error here


IR_TYPE_NAMES = re.compile(r"\b[fi](?:64|32)\b|\bi1\b")


@pytest.mark.parametrize("fn", [view_of_another_width, float_to_int])
def test_types_are_named_as_numpy_names_them(fn):
    """Messages that name an element type say NumPy's name (float64, int64), never the IR's
    (f64, i64); the conversion fault says the same on both back ends."""
    for backend in ("interp", "numba") if fn is float_to_int else ("interp",):
        with pytest.raises(ad.HpcadError) as info:
            ad.kernel(fn, backend=backend)(np.ones(3))
        msg = str(info.value)
        assert f"{inspect.getsourcefile(fn)}:{_marked_line(fn)}: " in msg, msg
        assert re.search(r"\b(float64|int64|int32)\b", msg), msg
        assert not IR_TYPE_NAMES.search(msg), msg
