"""The MPI calls users write beyond halo exchanges and sums (under mpiexec, 2 and 3 ranks):
MAX/MIN/PROD reductions, scans, Alltoall, Scatter/Gather and Bcast from a non-zero root,
Scatterv/Gatherv to a non-zero root, MPI.IN_PLACE, lower-case allreduce with op=MAX,
Iallreduce with its Wait, persistent requests. Reverse and forward mode match central
differences of the global loss computed by the plain Python function on mpi4py (ties
apart). At ties, the derivative of a MAX or MIN goes whole to the lowest rank holding the
extremum (README), also for lower-case allreduce and Reduce to a non-zero root. Probe
with a Status (receives sized by Get_count) and derived datatypes are refused at their
line."""
import numpy as np
import pytest
from mpi4py import MPI

import hpcad as ad
from hpcad.errors import UnsupportedConstruct
from tests.mpi import case_backends

COMM = MPI.COMM_WORLD


@ad.kernel
def reduce_max_root(x, comm):
    r = np.zeros(x.shape[0])
    root = comm.Get_size() - 1
    comm.Reduce(x, r, op=MPI.MAX, root=root)
    s = 0.0
    if comm.Get_rank() == root:
        for i in range(r.shape[0]):
            s += r[i] * r[i] * (i + 1.0)
    return s

@ad.kernel
def allreduce_min(x, comm):
    r = np.zeros(x.shape[0])
    comm.Allreduce(x, r, op=MPI.MIN)
    s = 0.0
    for i in range(r.shape[0]):
        s += r[i] * r[i] * (i + 1.0) * x[i]
    return s

@ad.kernel
def allreduce_prod(x, comm):
    r = np.zeros(x.shape[0])
    comm.Allreduce(x, r, op=MPI.PROD)
    s = 0.0
    for i in range(r.shape[0]):
        s += r[i] * (i + 1.0) * x[i]
    return s

@ad.kernel
def scan_exscan(x, comm):
    r = np.zeros(x.shape[0])
    e = np.zeros(x.shape[0])
    comm.Scan(x, r)
    comm.Exscan(x, e)
    s = 0.0
    for i in range(r.shape[0]):
        s += r[i] * r[i] * (i + 1.0) + e[i] * e[i] * e[i]
    return s

@ad.kernel
def alltoall(x, comm):
    r = np.zeros(x.shape[0])
    comm.Alltoall(x, r)
    s = 0.0
    for i in range(r.shape[0]):
        s += r[i] * r[i] * (i + 1.0) + x[i] * r[i]
    return s

@ad.kernel
def scatterv_gatherv_root(x, comm):
    """Rank k gets k + 1 elements of the last rank's x, and gives them back changed."""
    size = comm.Get_size()
    rank = comm.Get_rank()
    root = size - 1
    counts = np.zeros(size, np.int64)
    displs = np.zeros(size, np.int64)
    for k in range(size):
        counts[k] = k + 1
        displs[k] = k * (k + 1) // 2
    part = np.zeros(rank + 1)
    comm.Scatterv([x, counts, displs, MPI.DOUBLE], part, root=root)
    for i in range(rank + 1):
        part[i] = part[i] * part[i] + 0.5 * part[i]
    back = np.zeros(x.shape[0])
    comm.Gatherv(part, [back, counts, displs, MPI.DOUBLE], root=root)
    s = 0.0
    for i in range(back.shape[0]):
        s += back[i] * (i + 1.0) * x[i]
    return s


@ad.kernel
def scatter_gather_root(x, comm):
    size = comm.Get_size()
    root = size - 1
    part = np.zeros(2)
    comm.Scatter(x, part, root=root)
    for i in range(2):
        part[i] = part[i] * part[i] + 0.5 * part[i]
    back = np.zeros(x.shape[0])
    comm.Gather(part, back, root=root)
    s = 0.0
    for i in range(back.shape[0]):
        s += back[i] * (i + 1.0) * x[i]
    return s

@ad.kernel
def bcast_root(x, comm):
    root = comm.Get_size() - 1
    b = np.zeros(x.shape[0])
    if comm.Get_rank() == root:
        for i in range(x.shape[0]):
            b[i] = x[i]
    comm.Bcast(b, root=root)
    s = 0.0
    for i in range(b.shape[0]):
        s += b[i] * b[i] * x[i]
    return s

@ad.kernel
def in_place(x, comm):
    b = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        b[i] = x[i] * x[i]
    comm.Allreduce(MPI.IN_PLACE, b)
    s = 0.0
    for i in range(b.shape[0]):
        s += b[i] * x[i]
    return s

@ad.kernel
def lower_max(x, comm):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * (i + 1.0)
    m = comm.allreduce(s, op=MPI.MAX)
    return m * x[0]

@ad.kernel
def iallreduce_wait(x, comm):
    r = np.zeros(x.shape[0])
    req = comm.Iallreduce(x, r)
    req.Wait()
    s = 0.0
    for i in range(r.shape[0]):
        s += r[i] * r[i] * x[i]
    return s

@ad.kernel
def persistent(x, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    y = np.zeros(x.shape[0])
    sreq = comm.Send_init(x, (rank + 1) % size, 3)
    rreq = comm.Recv_init(y, (rank - 1 + size) % size, 3)
    s = 0.0
    for t in range(2):
        rreq.Start()
        sreq.Start()
        MPI.Request.Waitall([rreq, sreq])
        for i in range(y.shape[0]):
            s += y[i] * y[i] * (t + 1.0) * x[i]
    sreq.Free()
    rreq.Free()
    return s

@ad.kernel
def send_expression(x, comm):
    """comm.Send of an array expression (a fresh array of its elements, as mpi4py sends
    NumPy's temporary), even ranks to the next odd one."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    got = np.zeros(x.shape[0])
    if rank % 2 == 0:
        if rank + 1 < size:
            comm.Send(x * x + 1.0, rank + 1, 4)
    else:
        comm.Recv(got, rank - 1, 4)
    s = 0.0
    for i in range(x.shape[0]):
        s += got[i] * x[i] + x[i]
    return s

@ad.kernel
def probe_count(x, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    status = MPI.Status()
    comm.Send(x, (rank + 1) % size, 4)
    comm.Probe((rank - 1 + size) % size, 4, status)
    n = status.Get_count(MPI.DOUBLE)
    y = np.zeros(n)
    comm.Recv(y, (rank - 1 + size) % size, 4)
    return y[0] * y[0]

@ad.kernel
def derived(x, comm):
    rank = comm.Get_rank()
    size = comm.Get_size()
    t = MPI.DOUBLE.Create_contiguous(2)
    t.Commit()
    y = np.zeros(x.shape[0])
    comm.Sendrecv([x, 2, t], (rank + 1) % size, 0, [y, 2, t], (rank - 1 + size) % size, 0)
    return y[0] * y[1]


def _cases():
    n = COMM.size
    return {"reduce_max_root": (reduce_max_root, 4), "allreduce_min": (allreduce_min, 4),
            "allreduce_prod": (allreduce_prod, 4), "scan_exscan": (scan_exscan, 3),
            "alltoall": (alltoall, 2 * n), "scatter_gather_root": (scatter_gather_root, 2 * n),
            "scatterv_gatherv_root": (scatterv_gatherv_root, n * (n + 1) // 2),
            "bcast_root": (bcast_root, 3), "in_place": (in_place, 3),
            "lower_max": (lower_max, 3), "iallreduce_wait": (iallreduce_wait, 3),
            "persistent": (persistent, 3), "send_expression": (send_expression, 3)}


def _global(kernel, x):
    return COMM.allreduce(float(kernel.py_func(x.copy(), COMM)))


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")   # a hang in MPI (C) fails too
@pytest.mark.parametrize("case, backend", case_backends(
    sorted(_cases()), ("reduce_max_root", "scan_exscan", "persistent")))
def test_call_matches_finite_differences(case, backend):
    kernel, n = _cases()[case]
    rng = np.random.default_rng(50 + COMM.rank)
    x, v = rng.standard_normal(n), rng.standard_normal(n)
    h = 1e-6
    fd = (_global(kernel, x + h * v) - _global(kernel, x - h * v)) / (2 * h)
    kernel.backend = backend
    try:
        g = ad.grad(kernel)(x, COMM)
        _, t = ad.jvp(kernel, (x, COMM), (v, None))
    finally:
        kernel.backend = None
    assert COMM.allreduce(float(g @ v)) == pytest.approx(fd, rel=1e-6, abs=1e-8)
    assert COMM.allreduce(float(t)) == pytest.approx(fd, rel=1e-6, abs=1e-8)


@ad.kernel
def tied_lower_max(x, comm):
    m = comm.allreduce(x[0], op=MPI.MAX)
    return m * m


@ad.kernel
def tied_reduce_max(x, comm):
    r = np.zeros(1)
    root = comm.Get_size() - 1
    comm.Reduce(x, r, op=MPI.MAX, root=root)
    s = 0.0
    if comm.Get_rank() == root:
        s = 3.0 * r[0]
    return s


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("kernel, weight", [(tied_lower_max, 2 * 1.5), (tied_reduce_max, 3.0)])
def test_ties_go_to_the_lowest_rank(kernel, weight):
    x = np.array([1.5])   # the same on every rank
    g = ad.grad(kernel)(x, COMM)
    assert g[0] == (weight if COMM.rank == 0 else 0.0)
    _, t = ad.jvp(kernel, (x, COMM), (np.array([COMM.rank + 1.0]), None))
    # (the tangent of rank 0, the owner: lower-case allreduce's result is one value)
    total = t if kernel is tied_lower_max else COMM.allreduce(float(t))
    assert total == weight * 1.0


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("kernel, call", [(probe_count, "MPI.Status"),
                                          (derived, "MPI.DOUBLE.Create_contiguous")])
def test_probe_and_derived_datatypes_are_refused_at_their_line(kernel, call):
    with pytest.raises(UnsupportedConstruct,
                       match=rf"test_mpi_breadth.py:\d+: MPI call `{call}` is not supported"):
        ad.grad(kernel)(np.ones(4), COMM)


def persistent_request_list(u, comm):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    got = np.zeros(1)
    reqs = [comm.Recv_init(got, source=left, tag=0), comm.Send_init(u[0:1], dest=right, tag=0)]
    MPI.Prequest.Startall(reqs)
    MPI.Request.Waitall(reqs)
    return got[0] * u[0]


@pytest.mark.mpi(min_size=2)
@pytest.mark.timeout(120, method="thread")
def test_a_named_list_of_persistent_requests_says_to_list_the_names_in_each_call():
    """mpi4py codes keep persistent requests in one list; hpcad takes the requests' names
    listed in each Startall and Waitall (it spoke of a list literal and a tuple of numbers)."""
    with pytest.raises(UnsupportedConstruct,
                       match=r"test_mpi_breadth.py:\d+: a list of persistent requests bound to "
                             r"a name is not supported .*MPI.Prequest.Startall\(\[r1, r2\]\)"):
        ad.kernel(persistent_request_list, backend="interp")(np.ones(2), COMM)
