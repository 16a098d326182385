"""What each Python construct is called in an error message, and the nearest way to write it
that hpcad supports: one table per kind of syntax (statements, expressions, operators,
assignment targets, constants), keyed by the name of the construct's `ast` class, so that no
message shows an AST class name. Data only: the lowering rules decide what is supported,
and look a construct up here (`describe`) only when they refuse it."""
from __future__ import annotations

# a `raise` statement other than `raise ValueError("message")` (statements.stmt_raise)
RAISE = ("a `raise` of other than a built-in exception (ValueError, RuntimeError, "
         "ZeroDivisionError, ...) with a string literal or nothing, or with `from`",
         "write `raise ValueError(\"what went wrong\")`, or stop the kernel with "
         "`assert cond, \"message\"`")
# what to write instead of a function a kernel cannot take (closures.py too)
DEF_HINT = "define it at module level (a `def` of your code is inlined where a kernel calls it)"
_LOOP_FILL = "allocate the result (np.empty(n)) and fill it in a for loop"
_CALLER = "in the Python code that calls the kernel"
_OUTSIDE = "do that " + _CALLER
_ARGUMENT = "pass the value in as an argument, or write results into an output array argument"
# how a kernel keeps MPI requests (each in a variable: hpcad completes each at a point it
# knows when compiling, which an array of request handles would hide)
REQUESTS = ("keep each request in its own variable, `status, r1 = numba_mpi.isend(...)` or "
            "`r1 = comm.Isend(...)`, and complete them with numba_mpi.waitall((r1, r2)) or "
            "MPI.Request.Waitall([r1, r2]); arrays of request handles are not supported")

# statement class -> (what the user wrote, the nearest supported way to write it)
STATEMENTS = {
    "FunctionDef": ("a function defined inside a kernel", DEF_HINT),
    "AsyncFunctionDef": ("an async function defined inside a kernel", DEF_HINT),
    "ClassDef": ("a class defined inside a kernel",
                 "define classes outside and pass their numbers and arrays as arguments"),
    "Return": ("this `return`", "return scalars at the end of the kernel"),
    "Delete": ("`del`", "leave the variable alone (it ends with the kernel); to clear an "
                        "array write a[:] = 0"),
    "Assign": ("this assignment", "assign to a name, a tuple of names or an array element"),
    "AugAssign": ("this augmented assignment (`+=`, `*=`, ...)",
                  "write it out: x = x + e, a[i] = a[i] + e"),
    "AnnAssign": ("this annotated assignment", "drop the annotation: x = e"),
    "TypeAlias": ("a `type` alias statement", "define the alias at module level"),
    "For": ("this `for` loop", "loop over indices: for i in range(n)"),
    "AsyncFor": ("an `async for` loop", "use a plain loop: for i in range(n)"),
    "While": ("this `while` loop", "use while cond: with a body that changes cond"),
    "If": ("this `if` statement", "use if/elif/else on scalar conditions"),
    "With": ("a `with` block", "kernels have no context managers; " + _OUTSIDE),
    "AsyncWith": ("an `async with` block", "kernels have no context managers; " + _OUTSIDE),
    "Match": ("a `match` statement", "use if/elif/else"),
    "Raise": RAISE,
    "Try": ("a `try` statement", "kernels cannot catch exceptions; test the condition with if "
                                 "before the operation that could fail"),
    "TryStar": ("a `try ... except*` statement", "kernels cannot catch exceptions; test the "
                                                 "condition with if"),
    "Assert": ("an `assert` statement", "check the condition before calling the kernel"),
    "Import": ("an `import` inside a kernel",
               "import at module level: kernels see the module's globals (np, math, ...)"),
    "ImportFrom": ("a `from ... import` inside a kernel",
                   "import at module level: kernels see the module's globals (np, math, ...)"),
    "Global": ("a `global` declaration", _ARGUMENT),
    "Nonlocal": ("a `nonlocal` declaration", _ARGUMENT),
    "Expr": ("this expression statement", "assign its value or drop it"),
    "Pass": ("`pass`", "leave it out"),
    "Break": ("this `break`", "use break only inside a for or while loop"),
    "Continue": ("this `continue`", "use continue only inside a for or while loop"),
}

# expression class -> (what the user wrote, the nearest supported way to write it)
EXPRESSIONS = {
    "BoolOp": ("this `and`/`or`", "combine scalar conditions: a > 0 and b > 0"),
    "NamedExpr": ("an assignment expression (`:=`)",
                  "assign on a line of its own first (x = e), then use x"),
    "BinOp": ("this arithmetic", "combine numbers or arrays with + - * / // % **"),
    "UnaryOp": ("this unary operation", "use -x or not x"),
    "Lambda": ("a `lambda` other than `name = lambda ...` in the kernel's body",
               "bind it to a name at the top of the kernel (f = lambda x: ...) and call "
               "f(...), or " + DEF_HINT),
    "IfExp": ("this conditional expression (`a if c else b`)",
              "use it on scalars, or np.where(c, a, b) on arrays"),
    "Dict": ("a dict literal", "use an array indexed by integers, or separate variables"),
    "Set": ("a set literal", "use an array, or compare against each value with =="),
    "ListComp": ("a list comprehension", _LOOP_FILL),
    "SetComp": ("a set comprehension", _LOOP_FILL),
    "DictComp": ("a dict comprehension", _LOOP_FILL),
    "GeneratorExp": ("a generator expression",
                     "accumulate in a for loop: s = 0.0, then s += a[i] for i in range(n)"),
    "Await": ("`await`", "kernels are not coroutines; " + _OUTSIDE),
    "Yield": ("`yield`", "kernels are not generators; " + _ARGUMENT),
    "YieldFrom": ("`yield from`", "kernels are not generators; " + _ARGUMENT),
    "Compare": ("this comparison", "compare numbers with == != < <= > >="),
    "Call": ("this call", "call NumPy/math functions, MPI, parallel markers or other "
                          "@hpcad.kernel functions"),
    "FormattedValue": ("an f-string", "kernels compute numbers; format text " + _CALLER),
    "JoinedStr": ("an f-string", "kernels compute numbers; format text " + _CALLER),
    "TemplateStr": ("a template string (t-string)",
                    "kernels compute numbers; format text " + _CALLER),
    "Interpolation": ("a template string (t-string)",
                      "kernels compute numbers; format text " + _CALLER),
    "Constant": ("this constant", "use numbers and True/False"),
    "Attribute": ("this attribute", "use module attributes (np.pi, math.e) and array "
                                    "attributes (a.shape, a.size, a.ndim)"),
    "Subscript": ("this indexing", "index arrays with integers and slices: a[i, j], a[1:-1]"),
    "Starred": ("a starred expression (`*x`)",
                "pass or unpack the elements one by one: f(t[0], t[1]) or a, b = t"),
    "Name": ("this name", "assign the variable before using it"),
    "List": ("a list literal", "use a tuple of numbers, or allocate an array (np.empty(n)) "
                               "and fill it"),
    "Tuple": ("this tuple", "use tuples of numbers and arrays"),
    "Slice": ("a slice (`lo:hi`) outside an index", "slice arrays inside brackets: a[lo:hi]"),
}

# operator class -> (the operator as written, the nearest supported way to write it)
OPERATORS = {
    "Add": ("the operator `+`", "add numbers or arrays"),
    "Sub": ("the operator `-`", "subtract numbers or arrays"),
    "Mult": ("the operator `*`", "multiply numbers or arrays"),
    "MatMult": ("the matrix product `@`",
                "write the product as a loop: for k in range(n): c[i, j] += a[i, k] * b[k, j]"),
    "Div": ("the operator `/`", "divide numbers or arrays"),
    "FloorDiv": ("the operator `//`", "floor-divide numbers or arrays"),
    "Mod": ("the operator `%`", "take remainders of numbers or arrays"),
    "Pow": ("the operator `**`", "raise numbers or arrays to a power"),
    "LShift": ("the shift `<<`", "shift integers"),
    "RShift": ("the shift `>>`", "shift integers"),
    "BitAnd": ("the operator `&`", "use `and` on conditions, `&` on integers"),
    "BitOr": ("the operator `|`", "use `or` on conditions, `|` on integers"),
    "BitXor": ("the operator `^`", "use != on conditions, `^` on integers"),
    "Invert": ("the bitwise not `~` of a float", "use `not c` on a condition, `~` on integers"),
    "Not": ("`not`", "use not on a scalar condition"),
    "UAdd": ("unary `+`", "leave it out"),
    "USub": ("unary `-`", "negate numbers or arrays"),
    "Eq": ("the comparison `==`", "compare numbers"),
    "NotEq": ("the comparison `!=`", "compare numbers"),
    "Lt": ("the comparison `<`", "compare numbers"),
    "LtE": ("the comparison `<=`", "compare numbers"),
    "Gt": ("the comparison `>`", "compare numbers"),
    "GtE": ("the comparison `>=`", "compare numbers"),
    "Is": ("the identity test `is`", "compare values with =="),
    "IsNot": ("the identity test `is not`", "compare values with !="),
    "In": ("the membership test `in`", "compare against each value: x == a or x == b, "
                                       "or search an array in a loop"),
    "NotIn": ("the membership test `not in`", "compare against each value: x != a and "
                                              "x != b, or search an array in a loop"),
    "And": ("`and`", "combine scalar conditions"),
    "Or": ("`or`", "combine scalar conditions"),
}

# assignment target class -> (what assigning to it is called, the nearest supported way)
TARGETS = {
    "Attribute": ("assigning to an attribute (`obj.x = ...`)",
                  "kernels cannot change objects; write results into an array argument"),
    "Starred": ("starred unpacking (`a, *rest = ...`)",
                "unpack a fixed number of values: a, b, c = t"),
    "List": ("unpacking into a list (`[a, b] = ...`)", "unpack into names: a, b = t"),
}

# type of a literal constant -> (what it is, the nearest supported way to write it)
CONSTANTS = {
    "str": ("a string", "kernels compute numbers; keep text " + _CALLER),
    "bytes": ("a bytes literal", "kernels compute numbers; keep bytes " + _CALLER),
    "NoneType": ("`None`", "use a number or a flag (e.g. -1 or False) for 'no value'; an "
                           "MPI buffer that only the root uses (`recvbuf = None`, then "
                           "`if rank == 0: recvbuf = np.empty(...)`) is allocated on every "
                           "rank instead (MPI ignores it on the others), or written as None "
                           "in the call itself"),
    "complex": ("a complex number",
                "carry the real and imaginary parts as two float variables"),
    "ellipsis": ("`...` other than in an array's index",
                 "`...` stands for whole axes in an array's index (u[..., k]); elsewhere "
                 "write what it stands for"),
}

# type of a Python object met where a number or an array is needed -> what it is called
VALUES = {
    "tuple": "a tuple", "list": "a list", "dict": "a dict", "str": "a string",
    "NoneType": "None", "module": "a module", "type": "a type", "function": "a function",
    "builtin_function_or_method": "a function", "ufunc": "a NumPy function",
    "CPUDispatcher": "a numba function",
}

_TABLES = (STATEMENTS, EXPRESSIONS, OPERATORS)


def describe(node, table: dict | None = None) -> tuple[str, str]:
    """(what the construct is called, the nearest supported way to write it) for an AST node
    or operator; a class no table knows (a newer Python's) is described generically."""
    for cls in type(node).__mro__:
        for t in (table,) if table is not None else _TABLES:
            if cls.__name__ in t:
                return t[cls.__name__]
    return ("this construct", "rewrite it with loops over arrays and scalar arithmetic")


# numba's thread ids size and index per-thread copies (a particle code's forces), which a
# kernel states per iteration instead: races and derivatives are reasoned per iteration
_PER_ITERATION = ("write per iteration, not per thread: sum over every j and write only "
                  "f[i], or give iteration i its own copy (fpriv[i, j] -= fij) and sum the "
                  "copies after the loop (hpcad's parallel derivatives make their "
                  "per-thread copies themselves)")

# a library function kernels do not have, by module.name -> how to write it with what they have
FUNCTIONS = {
    "numba.np.ufunc.parallel.get_thread_id": _PER_ITERATION,
    "numba.np.ufunc.parallel.get_num_threads": _PER_ITERATION,
    "numpy.gradient": "take differences of slices: (u[2:] - u[:-2]) / (2 * h) inside, "
                      "(u[1] - u[0]) / h and (u[-1] - u[-2]) / h at the ends",
    "numpy.trapezoid": "sum the slices: h * (np.sum(u) - 0.5 * (u[0] + u[-1]))",
    "numpy.trapz": "sum the slices: h * (np.sum(u) - 0.5 * (u[0] + u[-1]))",
    "builtins.print": "kernels compute numbers; print " + _CALLER + " (return or store "
                      "what you want to see)",
    "numpy.linalg.lstsq": "for a matrix a of full column rank, solve the normal equations: "
                          "np.linalg.solve(a.T @ a, a.T @ b)",
    "numpy.linalg.pinv": "for a matrix a of full column rank, write "
                         "np.linalg.solve(a.T @ a, a.T); for a square one, np.linalg.inv(a)",
    "numpy.linalg.matrix_power": "multiply in a loop (p = a.copy(); then p = p @ a), or "
                                 "np.linalg.inv(a) first for a negative power",
    "math.copysign": "write `abs(x) if y >= 0.0 else -abs(x)`",
    "math.fmod": "write `x - y * np.trunc(x / y)` (the remainder with the sign of x)",
    "numpy.fmod": "write `x - y * np.trunc(x / y)` (the remainder with the sign of x)",
    "numpy.cbrt": "write `np.sign(x) * np.abs(x) ** (1.0 / 3.0)`",
    "math.degrees": "multiply: `x * (180.0 / math.pi)`",
    "math.radians": "multiply: `x * (math.pi / 180.0)`",
    "numpy.degrees": "multiply: `x * (180.0 / np.pi)`",
    "numpy.rad2deg": "multiply: `x * (180.0 / np.pi)`",
    "numpy.radians": "multiply: `x * (np.pi / 180.0)`",
    "numpy.deg2rad": "multiply: `x * (np.pi / 180.0)`",
    "numpy.logaddexp": "write `m + math.log(math.exp(a - m) + math.exp(b - m))` with "
                       "`m = max(a, b)`",
    "math.lgamma": "compute it before the call and pass the values in, or write a series "
                   "for it in the kernel (Stirling's, for large arguments)",
    "math.gamma": "compute it before the call and pass the values in, or write a series "
                  "for it in the kernel (Stirling's, for large arguments)",
}

# an array method or attribute kernels do not have -> how to write it with what they have
ARRAY_METHODS = {
    "fill": "assign the value to every element: a[:] = value",
}


def target(node) -> tuple[str, str]:
    """What assigning to `node` is called, and how to write it instead."""
    if type(node).__name__ in TARGETS:
        return TARGETS[type(node).__name__]
    what, hint = describe(node)
    return f"assigning to {what}", hint


def value(obj) -> str:
    """What a Python object used as a kernel value is called (a module, a tuple, ...)."""
    return VALUES.get(type(obj).__name__, f"a Python {type(obj).__name__} object")


def constant(value) -> tuple[str, str]:
    """What a literal constant is called, and what to use instead."""
    return CONSTANTS.get(type(value).__name__, (f"the constant {value!r}", "use a number"))
