"""Sparse and unstructured-mesh kernels as numba users write them, under hpcad.kernel in
place of numba.njit: CSR SpMV over rows in a prange (a research code's `csr_spmv_multi_thread`),
NPBench's `vals @ x[cols]`, sliced ELLPACK with a prange in a prange, CSR^T, COO and CSC
products that scatter, SpMM by rows, a lower-triangular CSR solve and Gauss-Seidel sweeps,
graph Laplacians over an edge list, PageRank power steps, finite-volume fluxes over edges
(`i, j = edges[e]`, r[i] -= f; r[j] += f) and the same residual gathered per cell through a
cell-to-face list, P1 finite-element assembly through a connectivity array, a linear-binning
histogram, Laplacian mesh smoothing over a CSR adjacency, argsort then gather, and an
in-place scatter whose indices repeat.

Their transposes are what a reverse sweep computes, so most have an independent reference
for the vjp: the dense matrix's transpose (scipy builds the matrices), the hand-written
assembly or binning derivative. Every kernel's value is checked against Python's, its jvp
against central differences and its vjp against its jvp (dot test), on the interpreter; a
few run on numba at 2 threads several times (their adjoints scatter x[col[k]] from every
row: private copies or atomics, never a race), against numba.njit and the serial answer.
A prange whose iterations scatter into shared elements (CSR^T, assembly, np.add.at-style)
is refused as a race."""
import math

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from numba import prange

import hpcad as ad
from hpcad.passes.race import RaceError
from tests.ad.harness import SLOW, njit_of, relative_error

TOL = 1e-12      # hpcad against the same arithmetic (Python, a hand-written transpose)
FD_TOL = 1e-7    # against central differences, step 1e-6


# -- sparse matrix-vector products ---------------------------------------------------------

def csr_spmv_prange(y, num_row, rowptr, colidx, val, x):
    for i in prange(num_row):
        row_data = 0.0
        for j in range(rowptr[i], rowptr[i + 1]):
            row_data += val[j] * x[colidx[j]]
        y[i] = row_data
    return y


def npbench_spmv(A_row, A_col, A_val, x):
    y = np.empty(A_row.size - 1, A_val.dtype)
    for i in range(A_row.size - 1):
        cols = A_col[A_row[i]:A_row[i + 1]]
        vals = A_val[A_row[i]:A_row[i + 1]]
        y[i] = vals @ x[cols]
    return y


def sell_spmv(y, slice_count, slice_ptr, colidx, val, x, slice_height):
    for s in prange(slice_count):
        for r in prange(slice_height):
            row_data = 0.0
            for i in range(slice_ptr[s] + r, slice_ptr[s + 1], slice_height):
                row_data += x[colidx[i]] * val[i]
            y[s * slice_height + r] = row_data
    return y


def csr_spmv_t(rowptr, colidx, val, x, ncol):
    y = np.zeros(ncol)
    for i in range(rowptr.shape[0] - 1):
        for k in range(rowptr[i], rowptr[i + 1]):
            y[colidx[k]] += val[k] * x[i]
    return y


def csr_spmv_t_prange(rowptr, colidx, val, x, ncol):
    y = np.zeros(ncol)
    for i in prange(rowptr.shape[0] - 1):
        for k in range(rowptr[i], rowptr[i + 1]):
            y[colidx[k]] += val[k] * x[i]
    return y


def coo_spmv(row, col, val, x, nrow):
    y = np.zeros(nrow)
    for k in range(val.shape[0]):
        y[row[k]] += val[k] * x[col[k]]
    return y


def csc_spmv(colptr, rowidx, val, x, nrow):
    y = np.zeros(nrow)
    for j in range(colptr.shape[0] - 1):
        xj = x[j]
        for k in range(colptr[j], colptr[j + 1]):
            y[rowidx[k]] += val[k] * xj
    return y


def csr_spmm(ptr, col, val, X):
    Y = np.zeros((ptr.shape[0] - 1, X.shape[1]))
    for i in range(ptr.shape[0] - 1):
        for k in range(ptr[i], ptr[i + 1]):
            Y[i, :] += val[k] * X[col[k], :]
    return Y


def csr_lower_solve(ptr, col, val, b, x):
    n = b.shape[0]
    for i in range(n):
        s = b[i]
        d = 1.0
        for k in range(ptr[i], ptr[i + 1]):
            j = col[k]
            if j < i:
                s -= val[k] * x[j]
            elif j == i:
                d = val[k]
        x[i] = s / d
    return x


def gauss_seidel(ptr, col, val, b, x, nsweeps):
    n = b.shape[0]
    for sweep in range(nsweeps):
        for i in range(n):
            s = b[i]
            d = 0.0
            for k in range(ptr[i], ptr[i + 1]):
                j = col[k]
                if j == i:
                    d = val[k]
                else:
                    s -= val[k] * x[j]
            x[i] = s / d
    r = 0.0
    for i in range(n):
        r += x[i] * x[i]
    return r


# -- graphs -------------------------------------------------------------------------------

def laplacian_energy(x, edges, w):
    e = 0.0
    for k in range(edges.shape[0]):
        i, j = edges[k]
        d = x[i] - x[j]
        e += 0.5 * w[k] * d * d
    return e


def laplacian_apply(x, edges, w):
    y = np.zeros_like(x)
    for k in range(edges.shape[0]):
        i = edges[k, 0]
        j = edges[k, 1]
        d = w[k] * (x[i] - x[j])
        y[i] += d
        y[j] -= d
    return y


def pagerank(pr, indptr, src, outdeg, d, niter):
    n = pr.shape[0]
    new = np.empty(n)
    for it in range(niter):
        for i in prange(n):
            s = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                j = src[k]
                s += pr[j] / outdeg[j]
            new[i] = (1.0 - d) / n + d * s
        for i in range(n):
            pr[i] = new[i]
    return pr


# -- finite volumes over an edge list -----------------------------------------------------

def rusanov(ul, ur):
    fl = 0.5 * ul * ul
    fr = 0.5 * ur * ur
    a = max(abs(ul), abs(ur))
    return 0.5 * (fl + fr) - 0.5 * a * (ur - ul)


def fv_edges(u, edges, area, length, dt, nsteps):
    n = u.shape[0]
    r = np.zeros(n)
    for t in range(nsteps):
        r[:] = 0.0
        for e in range(edges.shape[0]):
            i, j = edges[e]
            f = rusanov(u[i], u[j]) * length[e]
            r[i] -= f
            r[j] += f
        for i in range(n):
            u[i] += dt * r[i] / area[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] * area[i]
    return s


def fv_two_phase(u, edges, length):
    ne = edges.shape[0]
    flux = np.empty(ne)
    for e in prange(ne):
        flux[e] = length[e] * rusanov(u[edges[e, 0]], u[edges[e, 1]])
    r = np.zeros_like(u)
    for e in range(ne):
        r[edges[e, 0]] -= flux[e]
        r[edges[e, 1]] += flux[e]
    return r


def fv_cell_gather(u, cptr, cface, edges, length):
    n = u.shape[0]
    r = np.zeros(n)
    for c in prange(n):
        acc = 0.0
        for k in range(cptr[c], cptr[c + 1]):
            e = cface[k]
            f = length[e] * rusanov(u[edges[e, 0]], u[edges[e, 1]])
            if edges[e, 0] == c:
                acc -= f
            else:
                acc += f
        r[c] = acc
    return r


# -- finite elements, binning, meshes, sorting --------------------------------------------

def p1_assemble(xy, conn, kappa, K):
    for el in range(conn.shape[0]):
        i0 = conn[el, 0]
        i1 = conn[el, 1]
        i2 = conn[el, 2]
        x0, y0 = xy[i0, 0], xy[i0, 1]
        x1, y1 = xy[i1, 0], xy[i1, 1]
        x2, y2 = xy[i2, 0], xy[i2, 1]
        area = 0.5 * ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
        b = np.array([y1 - y2, y2 - y0, y0 - y1])
        c = np.array([x2 - x1, x0 - x2, x1 - x0])
        ke = np.empty((3, 3))
        for a in range(3):
            for bb in range(3):
                ke[a, bb] = kappa[el] * (b[a] * b[bb] + c[a] * c[bb]) / (4.0 * area)
        for a in range(3):
            for bb in range(3):
                K[conn[el, a], conn[el, bb]] += ke[a, bb]
    return K


def p1_assemble_prange(xy, conn, kappa, K):
    for el in prange(conn.shape[0]):
        for a in range(3):
            for bb in range(3):
                K[conn[el, a], conn[el, bb]] += kappa[el] * xy[conn[el, a], 0]
    return K


def p1_plane_ke(ec, E):
    """A 6 x 6 element matrix of the P1 Laplacian on each of two displacement components."""
    area = 0.5 * ((ec[1, 0] - ec[0, 0]) * (ec[2, 1] - ec[0, 1])
                  - (ec[2, 0] - ec[0, 0]) * (ec[1, 1] - ec[0, 1]))
    ke = np.zeros((6, 6))
    for a in range(3):
        for b in range(3):
            ba = ec[(a + 1) % 3, 1] - ec[(a + 2) % 3, 1]
            bb = ec[(b + 1) % 3, 1] - ec[(b + 2) % 3, 1]
            ca = ec[(a + 2) % 3, 0] - ec[(a + 1) % 3, 0]
            cb = ec[(b + 2) % 3, 0] - ec[(b + 1) % 3, 0]
            for d in range(2):
                ke[2 * a + d, 2 * b + d] = E * (ba * bb + ca * cb) / (4.0 * area)
    return ke


def assemble_symmetric(coords, connect, E):
    """A course's global stiffness (rows of coords gathered by the element's nodes, a DOF
    map, the upper triangle added and mirrored): the mirror `stiff[gc, gr] = stiff[gr, gc]`
    overwrites through indices that meet on the diagonal."""
    nd = 2
    n = coords.shape[0]
    stiff = np.zeros((n * nd, n * nd))
    dof = np.empty(3 * nd, np.int64)
    for eid in range(connect.shape[0]):
        econn = connect[eid]
        ke = p1_plane_ke(coords[econn], E[eid])
        for a in range(3):
            for d in range(nd):
                dof[nd * a + d] = nd * econn[a] + d
        for r in range(6):
            gr = dof[r]
            for c in range(r, 6):
                gc = dof[c]
                stiff[gr, gc] += ke[r, c]
                stiff[gc, gr] = stiff[gr, gc]
    return stiff


def soft_hist(x, w, lo, width, nbins):
    h = np.zeros(nbins)
    for k in range(x.shape[0]):
        t = (x[k] - lo) / width
        b = int(math.floor(t))
        f = t - b
        if b >= 0 and b + 1 < nbins:
            h[b] += w[k] * (1.0 - f)
            h[b + 1] += w[k] * f
    return h


def scatter_prange(x, idx, n):
    y = np.zeros(n)
    for i in prange(x.shape[0]):
        y[idx[i]] += x[i]
    return y


def gather_prange(x, idx, a):
    y = np.empty(idx.shape[0])
    for i in prange(idx.shape[0]):
        y[i] = a[i] * x[idx[i]] ** 2
    return y


def smooth(X, adjptr, adj, lam, niter):
    nv = X.shape[0]
    Xn = np.empty_like(X)
    for it in range(niter):
        for v in prange(nv):
            deg = adjptr[v + 1] - adjptr[v]
            for d in range(X.shape[1]):
                s = 0.0
                for k in range(adjptr[v], adjptr[v + 1]):
                    s += X[adj[k], d]
                Xn[v, d] = (1.0 - lam) * X[v, d] + lam * s / deg
        X[:, :] = Xn
    return X


def sorted_weighted(key, x, w):
    order = np.argsort(key)
    s = 0.0
    acc = 0.0
    for i in range(order.shape[0]):
        acc += x[order[i]]
        s += w[i] * acc * acc
    return s


def rank_cumsum(key, x):
    order = np.argsort(key)
    out = np.empty_like(x)
    acc = 0.0
    for i in range(order.shape[0]):
        acc += x[order[i]]
        out[order[i]] = acc * x[order[i]]
    return out


def segment_sums(idx, w, n):
    return np.bincount(idx, weights=w * w, minlength=n)


def bincount_per_segment(idx, w, seg, nb):
    out = np.empty((seg.shape[0] - 1, nb))
    for s in prange(seg.shape[0] - 1):
        h = np.bincount(idx[seg[s]:seg[s + 1]], w[seg[s]:seg[s + 1]], nb)
        for b in range(nb):
            out[s, b] = h[b] * h[b]
    return out


def scatter_assign(u, idx, a):
    for k in range(idx.shape[0]):
        u[idx[k]] = a * u[k] * u[k] + 0.5 * u[idx[k]]
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] ** 3
    return s


# -- data: a random CSR matrix, its graph, a perturbed triangulated grid -----------------

N = 9
_rng = np.random.default_rng(0)
A = (sp.random(N, N, density=0.35, random_state=1, format="csr")
     + sp.eye(N, format="csr")).tocsr()
A.sort_indices()
DENSE = A.toarray()
PTR, COL, VAL = A.indptr.astype(np.int64), A.indices.astype(np.int64), A.data.copy()
COO = A.tocoo()
CSC = A.tocsc()
X = _rng.standard_normal(N)
EDGES = np.array([(i, j) for i in range(N) for j in range(i + 1, N)
                  if DENSE[i, j] != 0 or DENSE[j, i] != 0], np.int64)
W_EDGE = _rng.uniform(0.5, 1.5, len(EDGES))
LENGTH = _rng.uniform(0.5, 1.0, len(EDGES))
AREA = _rng.uniform(0.8, 1.2, N)
U0 = 0.5 + 0.3 * _rng.standard_normal(N)
IN_LINKS = (sp.csr_matrix(DENSE != 0).astype(float)).T.tocsr()
OUTDEG = np.asarray((DENSE != 0).sum(axis=1), dtype=np.float64)
LOWER = sp.csr_matrix(np.tril(DENSE) + 2.0 * np.eye(N))
DOMINANT = sp.csr_matrix(DENSE + 4.0 * np.eye(N))


def _cell_faces():
    faces = [[] for _ in range(N)]
    for e, (i, j) in enumerate(EDGES):
        faces[i].append(e)
        faces[j].append(e)
    return (np.cumsum([0] + [len(f) for f in faces]).astype(np.int64),
            np.array([e for f in faces for e in f], np.int64))


def _grid(m):
    """Points of an m x m grid moved a little, two triangles a square, and each point's
    neighbours as a CSR adjacency."""
    xy = np.array([(i + 0.1 * _rng.standard_normal(), j + 0.1 * _rng.standard_normal())
                   for j in range(m) for i in range(m)])
    tri = []
    for j in range(m - 1):
        for i in range(m - 1):
            a = j * m + i
            tri += [(a, a + 1, a + m + 1), (a, a + m + 1, a + m)]
    nbrs = [set() for _ in range(m * m)]
    for t in tri:
        nbrs[t[0]].update(t[1:])
        nbrs[t[1]].update((t[0], t[2]))
        nbrs[t[2]].update(t[:2])
    adjptr = np.cumsum([0] + [len(s) for s in nbrs]).astype(np.int64)
    return xy, np.array(tri, np.int64), adjptr, np.array([b for s in nbrs for b in sorted(s)],
                                                          np.int64)


CPTR, CFACE = _cell_faces()
XY, CONN, ADJPTR, ADJ = _grid(4)
KAPPA = _rng.uniform(0.5, 2.0, len(CONN))
IDX15 = _rng.integers(0, N, 15)
# sliced ELLPACK of two slices of 4 rows: 2 and 3 entries a row, stored column-major
SELL_PTR = np.array([0, 8, 20])
SELL_COL = _rng.integers(0, N, 20)
SELL_VAL = _rng.standard_normal(20)


def _sell_dense():
    d = np.zeros((8, N))
    for s in range(2):
        for r in range(4):
            for k in range(SELL_PTR[s] + r, SELL_PTR[s + 1], 4):
                d[4 * s + r, SELL_COL[k]] += SELL_VAL[k]
    return d


def _laplacian():
    lap = np.zeros((N, N))
    for (i, j), w in zip(EDGES, W_EDGE):
        lap[np.ix_([i, j], [i, j])] += w * np.array([[1.0, -1.0], [-1.0, 1.0]])
    return lap


# name: (kernel, arguments, the float arguments differentiated)
CASES = {
    "csr_spmv_prange": (csr_spmv_prange, (np.zeros(N), N, PTR, COL, VAL, X), (4, 5)),
    "npbench_spmv_fancy_index": (npbench_spmv, (PTR, COL, VAL, X), (2, 3)),
    "sell_spmv_nested_prange": (sell_spmv, (np.zeros(8), 2, SELL_PTR, SELL_COL, SELL_VAL, X,
                                            4), (4, 5)),
    "csr_transpose_product": (csr_spmv_t, (PTR, COL, VAL, X, N), (2, 3)),
    "coo_spmv": (coo_spmv, (COO.row.astype(np.int64), COO.col.astype(np.int64),
                            COO.data.copy(), X, N), (2, 3)),
    "csc_spmv": (csc_spmv, (CSC.indptr.astype(np.int64), CSC.indices.astype(np.int64),
                            CSC.data.copy(), X, N), (2, 3)),
    "csr_spmm_rows": (csr_spmm, (PTR, COL, VAL, _rng.standard_normal((N, 3))), (2, 3)),
    "csr_lower_solve": (csr_lower_solve, (LOWER.indptr.astype(np.int64),
                                          LOWER.indices.astype(np.int64), LOWER.data.copy(),
                                          X, np.zeros(N)), (2, 3)),
    "gauss_seidel": (gauss_seidel, (DOMINANT.indptr.astype(np.int64),
                                    DOMINANT.indices.astype(np.int64), DOMINANT.data.copy(),
                                    X, np.zeros(N), 3), (2, 3)),
    "laplacian_energy": (laplacian_energy, (X, EDGES, W_EDGE), (0, 2)),
    "laplacian_apply": (laplacian_apply, (X, EDGES, W_EDGE), (0, 2)),
    "pagerank": (pagerank, (np.full(N, 1.0 / N) + 0.01 * _rng.standard_normal(N),
                            IN_LINKS.indptr.astype(np.int64), IN_LINKS.indices.astype(np.int64),
                            OUTDEG, 0.85, 5), (0, 4)),
    "fv_edges_rusanov": (fv_edges, (U0, EDGES, AREA, LENGTH, 0.05, 4), (0, 3)),
    "fv_two_phase": (fv_two_phase, (U0, EDGES, LENGTH), (0, 2)),
    "fv_cell_gather": (fv_cell_gather, (U0, CPTR, CFACE, EDGES, LENGTH), (0, 4)),
    "p1_assembly": (p1_assemble, (XY, CONN, KAPPA, np.zeros((16, 16))), (0, 2)),
    "assembly_mirrored_upper_triangle": (assemble_symmetric, (XY, CONN, KAPPA), (0, 2)),
    "linear_binning": (soft_hist, (_rng.uniform(0.0, 4.0, 20), _rng.uniform(0.5, 1.0, 20),
                                   0.0, 0.7, 7), (0, 1)),
    "gather_prange": (gather_prange, (X, IDX15, _rng.standard_normal(15)), (0, 2)),
    "laplacian_smoothing": (smooth, (XY, ADJPTR, ADJ, 0.3, 3), (0, 3)),
    "argsort_gather": (sorted_weighted, (_rng.standard_normal(N), X,
                                         _rng.standard_normal(N)), (1, 2)),
    "argsort_unsort_scatter": (rank_cumsum, (_rng.standard_normal(N), X), (1,)),
    "bincount_segment_sums": (segment_sums, (IDX15, _rng.standard_normal(15), N + 2), (1,)),
    "bincount_per_segment_prange": (bincount_per_segment, (IDX15, _rng.standard_normal(15),
                                                           np.array([0, 5, 9, 15]), N), (1,)),
    "scatter_assign_repeated": (scatter_assign, (_rng.uniform(0.5, 1.0, N),
                                                 np.array([3, 1, 3, 0, 7, 1, 2]), 0.7), (0, 2)),
}


def fresh(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def assert_close(got, want, what, tol=TOL):
    err = relative_error(got, want)
    assert err <= tol, f"{what}: relative error {err:.1e}"


def directions(name):
    """A random tangent for each differentiated argument, zero for the other floats."""
    _, args, active = CASES[name]
    rng = np.random.default_rng(len(name))
    tangents = []
    for k, a in enumerate(args):
        if k in active:
            t = rng.standard_normal(np.shape(a))
            tangents.append(float(t) if np.ndim(a) == 0 else t)
        elif isinstance(a, float):
            tangents.append(0.0)
        elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
            tangents.append(np.zeros_like(a))
        else:
            tangents.append(None)
    return tangents


def central_differences(name, tangents, h=1e-6):
    fn, args, active = CASES[name]
    plus, minus = list(fresh(args)), list(fresh(args))
    for k in active:
        plus[k] = plus[k] + h * tangents[k]
        minus[k] = minus[k] - h * tangents[k]
    return (np.asarray(fn(*plus)) - np.asarray(fn(*minus))) / (2 * h)


def pullback(name, backend, cotangent):
    fn, args, _ = CASES[name]
    _, vjp_fn = ad.vjp(ad.kernel(fn, backend=backend), *fresh(args))
    return vjp_fn(cotangent)


def cotangent_of(name):
    fn, args, _ = CASES[name]
    out = fn(*fresh(args))
    w = np.random.default_rng(100 + len(name)).standard_normal(np.shape(out))
    return float(w) if np.ndim(out) == 0 else w


@pytest.mark.parametrize("name", CASES)
def test_value_is_pythons(name):
    fn, args, _ = CASES[name]
    assert_close(ad.kernel(fn, backend="interp")(*fresh(args)), fn(*fresh(args)), name)


@pytest.mark.parametrize("name", CASES)
def test_jvp_is_central_differences(name):
    fn, args, _ = CASES[name]
    tangents = directions(name)
    _, tangent = ad.jvp(ad.kernel(fn, backend="interp"), fresh(args), tuple(tangents))
    assert_close(tangent, central_differences(name, tangents), name, tol=FD_TOL)


@pytest.mark.parametrize("name", CASES)
def test_vjp_is_adjoint_to_jvp(name):
    fn, args, active = CASES[name]
    tangents = directions(name)
    _, tangent = ad.jvp(ad.kernel(fn, backend="interp"), fresh(args), tuple(tangents))
    w = cotangent_of(name)
    cotangents = pullback(name, "interp", w)
    assert_close(sum(np.sum(cotangents[k] * tangents[k]) for k in active),
                 np.sum(w * tangent), name)


# name: (the argument, d <w, f> / d that argument by a hand-written transpose)
TRANSPOSES = {
    "csr_spmv_prange": (5, lambda w: DENSE.T @ w),
    "npbench_spmv_fancy_index": (3, lambda w: DENSE.T @ w),
    "sell_spmv_nested_prange": (5, lambda w: _sell_dense().T @ w),
    "csr_transpose_product": (3, lambda w: DENSE @ w),
    "coo_spmv": (2, lambda w: w[COO.row] * X[COO.col]),
    "csc_spmv": (3, lambda w: DENSE.T @ w),
    "csr_spmm_rows": (3, lambda w: DENSE.T @ w),
    "csr_lower_solve": (3, lambda w: np.linalg.solve(LOWER.toarray().T, w)),
    "laplacian_energy": (0, lambda w: w * (_laplacian() @ X)),
    "laplacian_apply": (0, lambda w: _laplacian() @ w),
    "gather_prange": (0, lambda w: np.bincount(IDX15, 2.0 * CASES["gather_prange"][1][2]
                                               * X[IDX15] * w, minlength=N)),
    "linear_binning": (1, lambda w: _binning_transpose(w)),
    "p1_assembly": (2, lambda w: _assembly_transpose(w)),
    "bincount_segment_sums": (1, lambda w: 2.0 * CASES["bincount_segment_sums"][1][1]
                              * w[IDX15]),
    "assembly_mirrored_upper_triangle": (2, lambda w: _mirrored_transpose(w)),
}


def _binning_transpose(w):
    x, _, lo, width, nbins = CASES["linear_binning"][1]
    t = (x - lo) / width
    b = np.floor(t).astype(np.int64)
    f = t - b
    inside = (b >= 0) & (b + 1 < nbins)
    return np.where(inside, w[np.clip(b, 0, nbins - 1)] * (1 - f)
                    + w[np.clip(b + 1, 0, nbins - 1)] * f, 0.0)


def _assembly_transpose(w):
    """d <w, K> / d kappa[el] = sum over a, b of w[conn a, conn b] * ke[a, b] / kappa[el]."""
    out = np.empty(len(CONN))
    for el, nodes in enumerate(CONN):
        (x0, y0), (x1, y1), (x2, y2) = XY[nodes]
        area = 0.5 * ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
        b = np.array([y1 - y2, y2 - y0, y0 - y1])
        c = np.array([x2 - x1, x0 - x2, x1 - x0])
        out[el] = np.sum(w[np.ix_(nodes, nodes)] * (np.outer(b, b) + np.outer(c, c))
                         / (4.0 * area))
    return out


def _mirrored_transpose(w):
    """d <w, K> / d E[el]: K's entries from element el are ke's upper triangle at (gr, gc)
    and mirrored at (gc, gr), each ke[r, c] / E[el]; the diagonal once."""
    out = np.empty(len(CONN))
    for el, nodes in enumerate(CONN):
        ke = p1_plane_ke(XY[nodes], 1.0)
        dof = (2 * nodes[:, None] + np.arange(2)).ravel()
        sym = np.triu(w[np.ix_(dof, dof)]) + np.triu(w[np.ix_(dof, dof)].T, 1)
        out[el] = np.sum(np.triu(ke) * sym)
    return out


@pytest.mark.parametrize("name", TRANSPOSES)
def test_vjp_is_the_hand_written_transpose(name):
    argnum, transpose = TRANSPOSES[name]
    w = cotangent_of(name)
    assert_close(pullback(name, "interp", w)[argnum], transpose(w), name)


def test_products_are_the_matrixs():
    """The kernels' products are scipy's (the transposes above rest on it), and the cell
    gather's residual is the edge scatter's."""
    assert_close(csr_spmv_prange(np.zeros(N), N, PTR, COL, VAL, X), DENSE @ X, "csr")
    assert_close(sell_spmv(np.zeros(8), 2, SELL_PTR, SELL_COL, SELL_VAL, X, 4),
                 _sell_dense() @ X, "sell")
    assert_close(laplacian_apply(X, EDGES, W_EDGE), _laplacian() @ X, "laplacian")
    assert_close(fv_cell_gather(U0, CPTR, CFACE, EDGES, LENGTH),
                 fv_two_phase(U0, EDGES, LENGTH), "cell gather")


def colored_fluxes(u, edges, cstart, length):
    """Edges sorted by colour, no two of a colour sharing a vertex: race-free as written,
    but only the colouring says so."""
    r = np.zeros_like(u)
    for c in range(cstart.shape[0] - 1):
        for e in prange(cstart[c], cstart[c + 1]):
            i = edges[e, 0]
            j = edges[e, 1]
            f = length[e] * (u[i] * u[i] - u[j] * u[j])
            r[i] -= f
            r[j] += f
    return r


def colored_fluxes_racing(u, edges, cstart, length):
    r = np.zeros_like(u)
    for c in range(cstart.shape[0] - 1):
        for e in ad.prange(cstart[c], cstart[c + 1], allow_races=True):
            i = edges[e, 0]
            j = edges[e, 1]
            f = length[e] * (u[i] * u[i] - u[j] * u[j])
            r[i] -= f
            r[j] += f
    return r


def _colored_edges():
    """EDGES sorted by a greedy colouring, and where each colour starts."""
    colors = []
    for i, j in EDGES:
        c = 0
        while any(colors[k] == c and {i, j} & set(EDGES[k]) for k in range(len(colors))):
            c += 1
        colors.append(c)
    order = np.argsort(colors, kind="stable")
    starts = np.searchsorted(np.sort(colors), np.arange(max(colors) + 2))
    return EDGES[order], starts, LENGTH[order]


def test_colored_edge_loops_are_refused_not_raced():
    """hpcad cannot see a colouring: the prange over a colour's edges is refused as a race;
    with allow_races=True it runs (numba's answer) and its derivative is refused."""
    edges, starts, length = _colored_edges()
    with pytest.raises(RaceError, match="race on array 'r'"):
        ad.kernel(colored_fluxes, backend="interp")(U0, edges, starts, length)
    k = ad.kernel(colored_fluxes_racing, backend="interp")
    assert_close(k(U0, edges, starts, length), colored_fluxes(U0, edges, starts, length), "r")
    with pytest.raises(ad.DifferentiationError, match="allow_races=True"):
        ad.vjp(k, U0, edges, starts, length)[1](np.ones(N))


def test_second_derivatives_are_the_matrices():
    """The Hessian of the Laplacian energy is the Laplacian, of 0.5 |A x|^2 (a prange sum
    over CSR rows) A^T A; the Jacobian of the CSR product is A, in both modes, batched."""
    v = np.random.default_rng(5).standard_normal(N)
    energy = ad.kernel(laplacian_energy, backend="interp")
    assert_close(ad.hvp(energy)(X, EDGES, W_EDGE, v), _laplacian() @ v, "laplacian")
    normal = ad.kernel(csr_energy, backend="interp")
    assert_close(ad.hvp(normal, argnums=3)(PTR, COL, VAL, X, v), DENSE.T @ (DENSE @ v), "AtA")
    product = ad.kernel(npbench_spmv, backend="interp")
    for mode in ("fwd", "rev"):
        assert_close(ad.jacobian(product, argnums=3, mode=mode, batch=4)(PTR, COL, VAL, X),
                     DENSE, mode)


def csr_energy(rowptr, colidx, val, x):
    e = 0.0
    for i in prange(rowptr.shape[0] - 1):
        s = 0.0
        for j in range(rowptr[i], rowptr[i + 1]):
            s += val[j] * x[colidx[j]]
        e += 0.5 * s * s
    return e


def parallel_gather(x, idx, w):
    return x[idx] * w + np.sin(x[idx])


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=SLOW)])
def test_gather_under_parallel_true_adds_into_repeated_elements(backend, two_threads):
    """x[idx] * w under parallel=True is a parallel loop whose adjoint adds into x-bar at
    repeated indices from different iterations: np.add.at's answer on every run."""
    rng = np.random.default_rng(6)
    idx = np.tile(np.array([0, -1, 3, 3, 3, 8, 2, -2, 5, 5, 5, 5]), 30)
    w, ct = rng.standard_normal(len(idx)), rng.standard_normal(len(idx))
    want = np.zeros(N)
    np.add.at(want, idx, ct * (w + np.cos(X[idx])))
    k = ad.kernel(parallel_gather, backend=backend, parallel=True)
    assert_close(k(X, idx, w), parallel_gather(X, idx, w), "value")
    for _ in range(3):
        assert_close(ad.vjp(k, X, idx, w)[1](ct)[0], want, "vjp", tol=1e-14)


@pytest.mark.parametrize("fn, args, array", [
    (csr_spmv_t_prange, (PTR, COL, VAL, X, N), "y"),
    (p1_assemble_prange, (XY, CONN, KAPPA, np.zeros((16, 16))), "K"),
    (scatter_prange, (_rng.standard_normal(15), IDX15, N), "y"),
])
def test_prange_scatter_is_refused_as_a_race(fn, args, array):
    with pytest.raises(RaceError, match=f"race on array '{array}'") as e:
        ad.kernel(fn, backend="interp")(*fresh(args))
    assert "test_sparse_codes.py:" in str(e.value)


def test_integer_array_index_reads_numpys_elements():
    """x[idx] by a vector of integers, NumPy's integer-array indexing: repeated and
    negative indices, rows of a matrix, an index expression, a copy when bound to a name
    (x changed after it is not seen), against Python; its vjp adds into repeated rows."""
    def gathers(x, M, idx):
        g = x[idx]
        x[0] = 5.0
        rows = M[idx]
        return g @ g + np.sum(rows * rows[:, ::-1]) + x[idx + 1][0] * x[idx][1]

    x, M = np.arange(1.0, 7.0), np.arange(12.0).reshape(6, 2) / 7.0
    idx = np.array([0, -1, 3, 3, -6])
    k = ad.kernel(gathers, backend="interp")
    assert_close(k(x.copy(), M, idx), gathers(x.copy(), M, idx), "value")
    _, vjp_fn = ad.vjp(k, x.copy(), M, idx)
    dM = vjp_fn(1.0)[1]
    want = np.zeros_like(M)
    np.add.at(want, idx, 2.0 * M[idx][:, ::-1])
    assert_close(dM, want, "rows' vjp")


def counts(idx, n):
    return np.bincount(idx, minlength=n)


def weighted(idx, w):
    return np.bincount(idx, w)


def test_bincount_is_numpys():
    """np.bincount's counts and sums (bins up to max(x) or minlength, int32 values, none)
    are NumPy's, types included; a negative value, weights of another length and a
    negative minlength stop the kernel at its line, where NumPy raises."""
    k, kw = ad.kernel(counts, backend="interp"), ad.kernel(weighted, backend="interp")
    for idx, n in ((IDX15, 0), (IDX15, N + 3), (IDX15.astype(np.int32), 2),
                   (np.zeros(0, np.int64), 0)):
        got, want = k(idx, n), counts(idx, n)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        w = np.arange(len(idx), dtype=np.float32)
        got, want = kw(idx, w), weighted(idx, w).astype(np.float64)
        # float64 sums as numba's (NumPy's of no values are int64)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    for kernel, args in ((k, (np.array([1, -1]), 0)), (k, (IDX15, -1)),
                         (kw, (IDX15, np.ones(3)))):
        with pytest.raises(ad.KernelAssertionError, match="np.bincount") as e:
            kernel(*args)
        assert "test_sparse_codes.py:" in str(e.value)
    with pytest.raises(ad.UnsupportedConstruct, match="vector of integers"):
        k(IDX15 > 3, 0)   # numba counts integers only


@pytest.fixture
def two_threads():
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# the numba code their adjoints need: private copies of x-bar (an inner loop's scatter),
# atomic adds (a scatter at the body's top), a prange in a prange, a gather by x[cols]
ON_NUMBA = ["csr_spmv_prange", "gather_prange", "sell_spmv_nested_prange",
            "npbench_spmv_fancy_index", "bincount_segment_sums"]


@SLOW
@pytest.mark.parametrize("name", ON_NUMBA)
def test_numba_at_two_threads_is_serial(name, two_threads):
    """numba.njit's value; the vjp against the interpreter's (serial) one, five runs alike
    (a race would show as runs that differ)."""
    fn, args, _ = CASES[name]
    got = ad.kernel(fn, backend="numba")(*fresh(args))
    assert_close(got, njit_of(fn)(*fresh(args)), f"{name}: value")
    w = cotangent_of(name)
    want = pullback(name, "interp", w)
    for _ in range(5):
        for g, r in zip(pullback(name, "numba", w), want):
            if r is not None:
                assert_close(g, r, f"{name}: vjp")
