"""Minimal kernels the generative checker found disagreeing, one per distinct bug, kept as
regression cases: test_generated.py runs the serial ones, tests/mpi/test_generated_mpi.py the
MPI ones, with the same checks as generated kernels. `feature` is the grammar switch
(grammar.FEATURES) that generates such kernels; while it is off the case is an expected
failure (its bug is in grammar.KNOWN_BUGS), once it is on the case must pass."""
import pytest

from tests.generative import grammar
from tests.generative.grammar import Generated

FOUND: dict[str, tuple[str, str, Generated]] = {}   # name -> (feature, symptom, kernel)


def found(name: str, feature: str, symptom: str, source: str, **sizes) -> None:
    sizes = {"n": 6, "nt": 1, "c": 0.2, "seed": 0, "zeros": False, **sizes}
    FOUND[name] = (feature, symptom, Generated(source=source, features=frozenset({feature}),
                                                **sizes))


found("inner_kernel_keywords", "call_kwargs",
      "UnsupportedConstruct: 'inner1' takes 3 arguments, 1 given (keywords dropped)", '''\
@kernel
def inner1(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        b[i] = a[i]
        s += a[i]
    return s


@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    tmp2 = np.zeros(n)
    s += inner1(u, b=tmp2, c=c)
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i] + 0.25 * tmp2[i] * tmp2[i]
    return s
''')

found("prange_inner_loop_saves", "prange_inner",
      "prange body with a private scratch filled by an inner loop: reverse gradient off "
      "(dot test jvp 9.93 vs <v, grad> 7.00), jvp agrees with FD", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    tmp1 = np.zeros(n)
    for i in ad.prange(1, n - 1):
        scratch2 = np.zeros(3)
        for j in range(3):
            scratch2[j] = u[i - 1]
        acc3 = 0.0
        for j in range(3):
            acc3 += scratch2[j] * u[i]
        tmp1[i] = acc3
        s += u[i]
    for i in range(n):
        u[i] = u[i]
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i] + 0.25 * tmp1[i] * tmp1[i]
    return s
''', prange=True)

found("pow_in_triangular_loop", "pow_at_zero",
      "(u[i] * u[i]) ** (1.0 + c) in a triangular inner loop (zero trips at i = 0): reverse "
      "gradient NaN, jvp finite; fine with ** 1.5 or range(3)", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for i in range(n):
        acc1 = 0.0
        for j in range(i):
            acc1 += (u[i] * u[i]) ** (1.0 + c)
        u[i] = u[i] + c * math.tanh(acc1)
    for i in range(n):
        s += u[i]
    for i in range(n):
        u[i] = u[i]
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''')

found("pow_variable_exponent_at_zero", "pow_at_zero",
      "(x * x) ** (1.0 + c) at x == 0.0: forward and reverse derivatives NaN (the true "
      "derivative is 0)", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for i in range(n):
        s += (u[i] * u[i]) ** (1.0 + c)
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''', zeros=True)

found("forkjoin_task_tape_unknown_trips", "forkjoin_ranged_tape",
      "numba only: HpcadError 'a fork-join task saves values in a loop whose trip count is "
      "unknown before it runs; the numba backend cannot size that tape' (interp agrees with "
      "FD; not shrunk: the two-task kernel alone passes)", '''\
@kernel
def task1(a, lo, hi, c):
    r = 0.0
    for i in range(lo, hi):
        r += (math.tanh(a[i]) * math.tanh(a[i])) ** 1.5
    return r


@kernel
def task3(a, b, c):
    r = 0.0
    for i in range(a.shape[0]):
        b[i] = a[i]
        r += b[i]
    return r


@kernel
def task6(a, lo, hi, c):
    r = 0.0
    for i in range(lo, hi):
        r += a[i]
    return r


@kernel
def task8(a, b, c):
    r = 0.0
    for i in range(a.shape[0]):
        b[i] = (a[i] * a[i]) ** 1.5
        r += b[i]
    return r


@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    tmp2 = np.zeros(n)
    r4, r5 = ad.join(task1, (u, 0, n - 1, c), task3, (w, tmp2, c))
    s += r4 * r5 + r5
    tmp7 = np.zeros(n)
    r9, r10 = ad.join(task6, (u, 0, n - 1, c), task8, (w, tmp7, c))
    s += r9 * r10 + r10
    for i in range(n):
        acc11 = 0.0
        for j in range(i, n, 2):
            acc11 += math.sin((w[i] + u[j]))
        w[i] = w[i] + c * math.tanh(acc11)
    grid13 = np.zeros((n, 3))
    for i in range(n):
        for j in range(3):
            grid13[i, j] = (u[i] + c)
    for i in range(n):
        for j in range(3):
            s += grid13[i, j] * grid13[i, j]
    cur14 = np.zeros(n)
    for i in range(n):
        cur14[i] = u[i]
    nxt15 = np.zeros(n)
    for t in range(nt):
        for i in range(1, n - 1):
            nxt15[i] = cur14[i] + c * math.tanh(cur14[i])
        nxt15[0] = cur14[0]
        nxt15[n - 1] = cur14[n - 1]
        cur14, nxt15 = nxt15, cur14
    for i in range(n):
        s += cur14[i] * cur14[i]
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i] + 0.25 * tmp2[i] * tmp2[i] + 0.25 * tmp7[i] * tmp7[i]
    return s
''')

found("tuple_rebound_in_loop", "tuple_state",
      "a tuple a loop rebinds from itself: after the loop it held its value from before the "
      "loop (primal and derivatives silently wrong)", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    pair1 = (c, 0.5)
    for i in range(n):
        pair1 = (pair1[1], pair1[0] + c * math.tanh(u[i] * pair1[1]))
        if w[i] > 0.3:
            pair1 = (pair1[0], 0.5 * pair1[1])
    first2, second3 = pair1
    s += first2 * second3
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''')

found("offset_views_fused", "offset_views",
      "loops through two views of one array at other offsets (lo = u[:n - 1], hi = u[1:]) "
      "were fused as if lo[i] and hi[i] were one element: the second loop read u[i + 1] "
      "before the first wrote it (primal and derivatives silently wrong)", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    lo1 = u[:n - 1]
    hi2 = u[1:]
    for i in range(n - 1):
        lo1[i] = lo1[i] + c * math.tanh(hi2[i])
    for i in range(n - 1):
        s += lo1[i] * hi2[i]
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''')

found("transpose_stale_through_alias", "matrix",
      "a named transpose At = A.T (a copy in hpcad) read after A was written through a view "
      "V = A[:, :]: At stale, primal and gradient silently wrong; now refused", '''\
@kernel
def main(u, w, c, nt, A):
    n = u.shape[0]
    s = 0.0
    V = A[:, :]
    At = A.T
    V[0, 1] = c * u[0]
    s += np.sum(At[1, :] * u)
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''', extras=("A",), m=3, refused="transposed array that the kernel also writes into")

# found by test_nested_generated.py: checked there (nested kernels, forward over them)
NESTED: dict[str, tuple[str, str, Generated]] = {}


def found_nested(name: str, feature: str, symptom: str, source: str, **sizes) -> None:
    found(name, feature, symptom, source, **sizes)
    NESTED[name] = FOUND.pop(name)


found_nested("nested_tangent_tape_unbalanced", "tuple_state",
             "forward over a kernel taking ad.grad of this one: the float argument c starts "
             "a loop-carried tuple, so its class is varied; a value saved from c alone had "
             "no tangent pushed but one popped (interp: 'tape slot 9 popped while empty', "
             "numba: KeyError)", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    pair1 = (c, 0.5)
    for i in range(n):
        pair1 = (pair1[1], pair1[0] + c * math.tanh(u[i]))
    first2, second3 = pair1
    s += first2 * second3
    cur4 = np.zeros(n)
    for i in range(n):
        cur4[i] = u[i]
    nxt5 = np.zeros(n)
    for t in range(nt):
        for i in range(1, n - 1):
            nxt5[i] = cur4[i] + c * math.tanh(cur4[i - 1])
        cur4, nxt5 = nxt5, cur4
    for i in range(n):
        s += cur4[i] * cur4[i]
    for i in range(n):
        if u[i] > 0.3:
            s += u[i]
        else:
            s -= (w[i] * w[i]) ** (1.0 + c)
    return s
''')

MPI_PROLOGUE = '''\
@kernel
def main(u, w, c, nt, comm):
    n = u.shape[0]
    s = 0.0
'''

found("allreduce_buffer_read_in_loop", "mpi_recv_in_loop",
      "Allreduce into glob inside the loop that reads glob[0]: primal wrong on every rank "
      "(5.89 vs 7.38 at 2 ranks), the load is hoisted out of the loop", MPI_PROLOGUE + '''\
    loc1 = np.zeros(1)
    glob2 = np.zeros(1)
    for i in range(n):
        loc1[0] = u[i]
        comm.Allreduce(loc1, glob2, op=MPI.SUM)
        s += glob2[0] * u[i]
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return comm.allreduce(s, op=MPI.SUM)
''')

found("array_allreduce_loss", "mpi_array_loss",
      "loss returned as total[0] of an array Allreduce: reverse gradient counted once per "
      "rank (<v, grad> = ranks x jvp)", MPI_PROLOGUE + '''\
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    part = np.zeros(1)
    part[0] = s
    total = np.zeros(1)
    comm.Allreduce(part, total, op=MPI.SUM)
    return total[0]
''')

found("uniform_integer_loss", "mpi_uniform_loss",
      "total[0] of an array Allreduce carried through range(nt), nt an integer argument the "
      "same on every rank: reverse gradient summed over the ranks (<v, grad> = ranks x jvp)",
      MPI_PROLOGUE + '''\
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    part = np.zeros(1)
    part[0] = s
    total = np.zeros(1)
    comm.Allreduce(part, total, op=MPI.SUM)
    r = total[0]
    for t in range(nt):
        r = 0.9 * r + 0.05 * math.tanh(r)
    return r
''', nt=3)

found("uniform_shape_loss", "mpi_uniform_loss",
      "the mean total[0] / (n * size), n = u.shape[0] the same on every rank: reverse "
      "gradient summed over the ranks", MPI_PROLOGUE + '''\
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    part = np.zeros(1)
    part[0] = s
    total = np.zeros(1)
    comm.Allreduce(part, total, op=MPI.SUM)
    return total[0] / (n * comm.Get_size())
''')

found("bool_array_sum", "bool_masks",
      "m = (u > k) + (w < j) of bool arrays was an int64 array of 0, 1, 2 (NumPy's is their "
      "or): np.sum(m) counted twice, u[m] was refused as fancy indexing", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    m1 = (u > 0.1234) + (w < -0.0617)
    s += c * np.sum(m1) + np.sum(m1 * u)
    m2 = (u > 0.1234) * (w < -0.0617)
    u[m2] += c
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''')

found("product_after_return", "early_return",
      "DifferentiationError: the reverse sweep of this matrix product needs the values 'its "
      "operand' had here, but (the product's own line) overwrites it later in the same loop: "
      "the statements after a loop that may return run in an if", '''\
@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for i in range(n):
        u[i] = u[i] + c * math.tanh(u[i])
        s += u[i]
        if s > 100.0:
            return s
    x4 = np.outer(w, np.tanh(u[:3]))
    s += np.sum(np.cumsum(x4, axis=0) * x4)
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''')

found("ravel_beside_parallel_loop", "cube",
      "numba: a slice of t.ravel() in a function with a parallel loop had length 1 (numba's "
      "parallel array analysis took reshape((-1,))'s -1 as the extent): wrong loss, a loop "
      "past the slice corrupting memory", '''\
@kernel
def task1(i, a, c):
    return a[(i + 1) % a.shape[0]] / (1.0 + a[(i + 1) % a.shape[0]] * a[(i + 1) % a.shape[0]])


@kernel
def main(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    s += ad.par_sum(task1, n, u, c)
    t2 = np.zeros((n, 3, 2))
    for i in range(n):
        for j in range(3):
            for k in range(2):
                t2[i, j, k] = u[i] * (j - k)
    r3 = t2[2:, :, :].ravel()
    for i in range(1, r3.shape[0]):
        r3[i] = r3[i] + c * np.tanh(r3[i - 1])
    s += np.sum(t2 * t2)
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s
''')

SERIAL = {k: v for k, v in FOUND.items() if not v[0].startswith("mpi_")}
MPI_CASES = {k: v for k, v in FOUND.items() if v[0].startswith("mpi_")}


def expect_known_bug(request, feature: str) -> None:
    """A found kernel whose construct is still switched off is expected to fail (its bug)."""
    if not grammar.FEATURES[feature]:
        request.applymarker(pytest.mark.xfail(
            reason=f"{grammar.KNOWN_BUGS[feature]}; once fixed, set grammar.FEATURES"
                   f"[{feature!r}] = True", strict=False))
