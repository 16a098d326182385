"""Particle codes as numba users write them (numba/numba-examples lennard_jones, pyLJ's
`lj_numba.py`, and the molecular-dynamics tutorial shapes: minimum image with np.round and
math.floor, cutoffs and shifted potentials, linked cell lists walked by while loops, cell
lists by counting sort, Verlet neighbour lists in integer arrays, Newton's third law
scatters, helpers returning tuples, N-body with softening, bonds, SPH, Morse, Yukawa,
velocity Verlet, a while loop over time, a skin-triggered list rebuild, force matching)
under hpcad.kernel in place of numba.njit. Such codes carry an
independent reference for the gradient: the forces F = -dE/dx their authors write by hand.

Each energy's value is checked against Python's, its gradient against minus the
hand-written forces where the code has them, and along a random direction against central
differences; a few steps of velocity Verlet are differentiated in the initial positions and
velocities (jvp against central differences, vjp against jvp), serial and prange. A prange
whose iterations scatter into f[j] (Newton's third law, a pair list, a linked list) is
refused as a race (one that says allow_races=True runs but is not differentiated); the
race-free forms (all j per i, private copies per iteration) give serial's answer. The
Jacobian of the forces is checked for symmetry (F = -grad E). Most run on the
interpreter; the prange forces and integrator also on numba at 2 threads (slow tier)."""
import math

import numba
import numpy as np
import pytest
from numba import prange

import hpcad as ad
from hpcad.passes.race import RaceError
from tests.ad.harness import SLOW, njit_of, relative_error

TOL = 1e-12      # hpcad against the same arithmetic (Python, hand-written forces)
FD_TOL = 1e-7    # against central differences, step 1e-6


# -- numba-examples lennard_jones/numba_scalar_prange_impl.py: helpers taking rows ---------

def lj(r):
    sr6 = (1. / r) ** 6
    pot = 4. * (sr6 * sr6 - sr6)
    return pot


def distance(atom1, atom2):
    dx = atom2[0] - atom1[0]
    dy = atom2[1] - atom1[1]
    dz = atom2[2] - atom1[2]
    r = (dx * dx + dy * dy + dz * dz) ** 0.5
    return r


def potential_prange(cluster):
    energy = 0.0
    for i in prange(len(cluster) - 1):
        for j in range(i + 1, len(cluster)):
            r = distance(cluster[i], cluster[j])
            e = lj(r)
            energy += e
    return energy


def cluster_forces(cluster):
    n = len(cluster)
    f = np.zeros_like(cluster)
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = cluster[i] - cluster[j]
            r2 = (d * d).sum()
            sr6 = (1. / r2) ** 3
            fr = 24. * (2. * sr6 * sr6 - sr6) / r2
            f[i] += fr * d
            f[j] -= fr * d
    return f


# -- periodic Lennard-Jones: np.round minimum image, cutoff, shifted, forces beside ----------

def lj_pbc_energy_forces(x, f, L, rc):
    n = x.shape[0]
    rc2 = rc * rc
    sr6c = 1.0 / (rc2 * rc2 * rc2)
    ecut = 4.0 * (sr6c * sr6c - sr6c)
    for i in range(n):
        for k in range(3):
            f[i, k] = 0.0
    epot = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            dx = x[i, 0] - x[j, 0]
            dy = x[i, 1] - x[j, 1]
            dz = x[i, 2] - x[j, 2]
            dx -= L * np.round(dx / L)
            dy -= L * np.round(dy / L)
            dz -= L * np.round(dz / L)
            r2 = dx * dx + dy * dy + dz * dz
            if r2 < rc2:
                ir2 = 1.0 / r2
                ir6 = ir2 * ir2 * ir2
                epot += 4.0 * (ir6 * ir6 - ir6) - ecut
                ff = 48.0 * ir2 * ir6 * (ir6 - 0.5)
                f[i, 0] += ff * dx
                f[i, 1] += ff * dy
                f[i, 2] += ff * dz
                f[j, 0] -= ff * dx
                f[j, 1] -= ff * dy
                f[j, 2] -= ff * dz
    return epot


def pbc_forces(x, L, rc):
    f = np.zeros_like(x)
    lj_pbc_energy_forces(x, f, L, rc)
    return f


# -- 2-D, coordinates in two arrays, math.floor minimum image in a helper --------------------

def min_image(d, L):
    return d - L * math.floor(d / L + 0.5)


def lj2d_energy(px, py, L, rc):
    n = px.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = min_image(px[i] - px[j], L)
            dy = min_image(py[i] - py[j], L)
            r2 = dx * dx + dy * dy
            if r2 < rc * rc:
                inv6 = 1.0 / (r2 * r2 * r2)
                e += 4.0 * inv6 * (inv6 - 1.0)
    return e


def lj2d_forces(px, py, L, rc):
    n = px.shape[0]
    fx = np.zeros(n)
    fy = np.zeros(n)
    for i in range(n):
        for j in range(i + 1, n):
            dx = min_image(px[i] - px[j], L)
            dy = min_image(py[i] - py[j], L)
            r2 = dx * dx + dy * dy
            if r2 < rc * rc:
                inv6 = 1.0 / (r2 * r2 * r2)
                fr = 24.0 * inv6 * (2.0 * inv6 - 1.0) / r2
                fx[i] += fr * dx
                fy[i] += fr * dy
                fx[j] -= fr * dx
                fy[j] -= fr * dy
    return fx, fy


# -- linked cell list (head/next) built in the kernel, walked by while loops -----------------

def cell_list_energy(x, L, rc):
    n = x.shape[0]
    nc = int(math.floor(L / rc))
    lc = L / nc
    head = -np.ones(nc * nc * nc, dtype=np.int64)
    nxt = -np.ones(n, dtype=np.int64)
    for i in range(n):
        cx = int(math.floor(x[i, 0] / lc)) % nc
        cy = int(math.floor(x[i, 1] / lc)) % nc
        cz = int(math.floor(x[i, 2] / lc)) % nc
        c = (cx * nc + cy) * nc + cz
        nxt[i] = head[c]
        head[c] = i
    rc2 = rc * rc
    sr6c = 1.0 / (rc2 * rc2 * rc2)
    ecut = 4.0 * (sr6c * sr6c - sr6c)
    e = 0.0
    for cx in range(nc):
        for cy in range(nc):
            for cz in range(nc):
                c = (cx * nc + cy) * nc + cz
                for ox in range(-1, 2):
                    for oy in range(-1, 2):
                        for oz in range(-1, 2):
                            c2 = (((cx + ox) % nc) * nc + (cy + oy) % nc) * nc + (cz + oz) % nc
                            i = head[c]
                            while i != -1:
                                j = head[c2]
                                while j != -1:
                                    if i < j:
                                        dx = x[i, 0] - x[j, 0]
                                        dy = x[i, 1] - x[j, 1]
                                        dz = x[i, 2] - x[j, 2]
                                        dx -= L * np.round(dx / L)
                                        dy -= L * np.round(dy / L)
                                        dz -= L * np.round(dz / L)
                                        r2 = dx * dx + dy * dy + dz * dz
                                        if r2 < rc2:
                                            ir6 = 1.0 / (r2 * r2 * r2)
                                            e += 4.0 * (ir6 * ir6 - ir6) - ecut
                                    j = nxt[j]
                                i = nxt[i]
    return e


# -- Verlet neighbour list in integer arrays (half list, serial) -----------------------------

def build_neighbors(x, L, rlist, nbr, nn):
    n = x.shape[0]
    for i in range(n):
        nn[i] = 0
    for i in range(n - 1):
        for j in range(i + 1, n):
            d2 = 0.0
            for k in range(3):
                d = x[i, k] - x[j, k]
                d -= L * np.round(d / L)
                d2 += d * d
            if d2 < rlist * rlist:
                nbr[i, nn[i]] = j
                nn[i] += 1


def nlist_energy(x, L, rc, nbr, nn):
    n = x.shape[0]
    sr6c = 1.0 / rc ** 6
    ecut = 4.0 * sr6c * (sr6c - 1.0)
    e = 0.0
    for i in range(n):
        for m in range(nn[i]):
            j = nbr[i, m]
            r2 = 0.0
            for k in range(3):
                d = x[i, k] - x[j, k]
                d -= L * np.round(d / L)
                r2 += d * d
            if r2 < rc * rc:
                ir6 = 1.0 / r2 ** 3
                e += 4.0 * ir6 * (ir6 - 1.0) - ecut
    return e


# -- N-body gravity with Plummer softening --------------------------------------------------

def nbody_energy(pos, mass, eps):
    n = pos.shape[0]
    pe = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[j, 0] - pos[i, 0]
            dy = pos[j, 1] - pos[i, 1]
            dz = pos[j, 2] - pos[i, 2]
            pe -= mass[i] * mass[j] / math.sqrt(dx**2 + dy**2 + dz**2 + eps**2)
    return pe


def nbody_acc(pos, mass, eps):
    n = pos.shape[0]
    a = np.zeros_like(pos)
    for i in range(n):
        for j in range(n):
            if i != j:
                d = pos[j] - pos[i]
                inv3 = (d[0]**2 + d[1]**2 + d[2]**2 + eps**2) ** (-1.5)
                a[i] += mass[j] * inv3 * d
    return a


# -- harmonic bonds over a list of index pairs ----------------------------------------------

def bond_energy(x, bonds, k, r0):
    e = 0.0
    for b in range(bonds.shape[0]):
        i = bonds[b, 0]
        j = bonds[b, 1]
        d = x[i] - x[j]
        r = np.sqrt(np.sum(d * d))
        e += 0.5 * k * (r - r0) ** 2
    return e


def bond_forces(x, bonds, k, r0):
    f = np.zeros_like(x)
    for b in range(bonds.shape[0]):
        i, j = bonds[b]
        d = x[i] - x[j]
        r = np.linalg.norm(d)
        fr = -k * (r - r0) / r
        f[i] += fr * d
        f[j] -= fr * d
    return f


# -- SPH density (cubic spline with branches) in a prange helper; self term apart -----------

def w_cubic(r, h):
    q = r / h
    sigma = 1.0 / (math.pi * h ** 3)
    if q < 1.0:
        return sigma * (1.0 - 1.5 * q * q + 0.75 * q ** 3)
    elif q < 2.0:
        return sigma * 0.25 * (2.0 - q) ** 3
    return 0.0


def sph_density(x, m, h, rho):
    n = x.shape[0]
    for i in prange(n):
        s = m[i] * w_cubic(0.0, h)
        for j in range(n):
            if j != i:
                dx = x[i, 0] - x[j, 0]
                dy = x[i, 1] - x[j, 1]
                dz = x[i, 2] - x[j, 2]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                s += m[j] * w_cubic(r, h)
        rho[i] = s


def sph_energy(x, m, h, k):
    n = x.shape[0]
    rho = np.zeros(n)
    sph_density(x, m, h, rho)
    e = 0.0
    for i in range(n):
        e += k * m[i] * rho[i]
    return e


# -- Morse and screened Coulomb (Yukawa) with a shifted cutoff ------------------------------

def morse_energy(x, D, a, re):
    n = x.shape[0]
    e = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            r = math.sqrt((x[i, 0] - x[j, 0])**2 + (x[i, 1] - x[j, 1])**2
                          + (x[i, 2] - x[j, 2])**2)
            t = 1.0 - math.exp(-a * (r - re))
            e += D * t * t
    return e


def yukawa_energy(x, q, kappa, rc):
    n = x.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            r = np.linalg.norm(x[i] - x[j])
            if r < rc:
                e += q[i] * q[j] * (math.exp(-kappa * r) / r - math.exp(-kappa * rc) / rc)
    return e


# -- 2-D periodic LJ: rows with a tuple-returning pair helper; forces in prange ---------------

def pair_lj(r2, rc2):
    if r2 > rc2:
        return 0.0, 0.0
    ir2 = 1.0 / r2
    ir6 = ir2 * ir2 * ir2
    return 4.0 * ir6 * (ir6 - 1.0), 24.0 * ir2 * ir6 * (2.0 * ir6 - 1.0)


def lj_rows(x, f, L, rc):
    n, dim = x.shape
    f[:] = 0.0
    e = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = x[i] - x[j]
            d -= L * np.round(d / L)
            r2 = np.dot(d, d)
            if r2 > rc * rc:
                continue
            eij, fij = pair_lj(r2, rc * rc)
            e += eij
            f[i] += fij * d
            f[j] -= fij * d
    return e


def rows_forces(x, L, rc):
    f = np.zeros_like(x)
    lj_rows(x, f, L, rc)
    return f


def forces_prange_full(x, f, L, rc):
    """Each iteration sums over every j and writes its own f[i]: race-free."""
    n = x.shape[0]
    epot = 0.0
    for i in prange(n):
        fx = 0.0
        fy = 0.0
        for j in range(n):
            if j != i:
                dx = x[i, 0] - x[j, 0]
                dy = x[i, 1] - x[j, 1]
                dx -= L * np.round(dx / L)
                dy -= L * np.round(dy / L)
                eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
                epot += 0.5 * eij
                fx += fij * dx
                fy += fij * dy
        f[i, 0] = fx
        f[i, 1] = fy
    return epot


def forces_prange_newton(x, f, L, rc):
    """Newton's third law in a prange: iteration i writes f[j] for j > i, a race."""
    n = x.shape[0]
    epot = 0.0
    for i in prange(n):
        for j in range(i + 1, n):
            dx = x[i, 0] - x[j, 0]
            dy = x[i, 1] - x[j, 1]
            dx -= L * np.round(dx / L)
            dy -= L * np.round(dy / L)
            eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
            epot += eij
            f[i, 0] += fij * dx
            f[i, 1] += fij * dy
            f[j, 0] -= fij * dx
            f[j, 1] -= fij * dy
    return epot


def lj_private_copies(x, L, rc):
    """Newton's third law made race-free: iteration i scatters into its own copy fpriv[i]."""
    n = x.shape[0]
    fpriv = np.zeros((n, n, 2))
    e = 0.0
    for i in prange(n):
        for j in range(i + 1, n):
            dx = x[i, 0] - x[j, 0]
            dy = x[i, 1] - x[j, 1]
            dx -= L * np.round(dx / L)
            dy -= L * np.round(dy / L)
            eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
            e += eij
            fpriv[i, i, 0] += fij * dx
            fpriv[i, i, 1] += fij * dy
            fpriv[i, j, 0] -= fij * dx
            fpriv[i, j, 1] -= fij * dy
    f = fpriv.sum(axis=0)
    return e + 0.01 * np.sum(f * f)


def pairs_prange(x, f, pairs):
    """A prange over a pair list scattering into both ends: a race."""
    e = 0.0
    for p in prange(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        dx = x[i, 0] - x[j, 0]
        dy = x[i, 1] - x[j, 1]
        r2 = dx * dx + dy * dy
        e += 0.5 * (r2 - 1.0) ** 2
        f[i, 0] -= 2.0 * (r2 - 1.0) * dx
        f[j, 0] += 2.0 * (r2 - 1.0) * dx
    return e


def cells_prange_write(x, f, head, nxt):
    """A prange over cells writing the particles of its linked list: disjoint only if the
    lists are, which hpcad cannot know: a race to refuse."""
    for c in prange(head.shape[0]):
        i = head[c]
        while i != -1:
            f[i] = 2.0 * x[i]
            i = nxt[i]
    return f.sum()


# -- full neighbour list built in prange, forces from it; cells by counting sort ------------

def build_full_list(x, L, rlist, nbr, nn):
    n = x.shape[0]
    for i in prange(n):
        c = 0
        for j in range(n):
            if j != i:
                dx = x[i, 0] - x[j, 0]
                dy = x[i, 1] - x[j, 1]
                dx -= L * np.round(dx / L)
                dy -= L * np.round(dy / L)
                if dx * dx + dy * dy < rlist * rlist:
                    nbr[i, c] = j
                    c += 1
        nn[i] = c


def forces_from_list(x, f, L, rc, nbr, nn):
    n = x.shape[0]
    e = 0.0
    for i in prange(n):
        fx = 0.0
        fy = 0.0
        for m in range(nn[i]):
            j = nbr[i, m]
            dx = x[i, 0] - x[j, 0]
            dy = x[i, 1] - x[j, 1]
            dx -= L * np.round(dx / L)
            dy -= L * np.round(dy / L)
            eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
            e += 0.5 * eij
            fx += fij * dx
            fy += fij * dy
        f[i, 0] = fx
        f[i, 1] = fy
    return e


def cells_energy(x, L, rc):
    n = x.shape[0]
    nc = int(L / rc)
    lc = L / nc
    cell = np.empty(n, dtype=np.int64)
    count = np.zeros(nc * nc, dtype=np.int64)
    for i in range(n):
        cx = int(x[i, 0] / lc) % nc
        cy = int(x[i, 1] / lc) % nc
        cell[i] = cx * nc + cy
        count[cell[i]] += 1
    start = np.zeros(nc * nc + 1, dtype=np.int64)
    start[1:] = np.cumsum(count)
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[cell[i]]] = i
        fill[cell[i]] += 1
    e = 0.0
    for i in prange(n):
        cx = cell[i] // nc
        cy = cell[i] % nc
        for ox in range(-1, 2):
            for oy in range(-1, 2):
                c2 = ((cx + ox) % nc) * nc + (cy + oy) % nc
                for p in range(start[c2], start[c2 + 1]):
                    j = order[p]
                    if j != i:
                        dx = x[i, 0] - x[j, 0]
                        dy = x[i, 1] - x[j, 1]
                        dx -= L * np.round(dx / L)
                        dy -= L * np.round(dy / L)
                        eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
                        e += 0.5 * eij
    return e


def scratch_energy(x, L, rc):
    """A scratch vector per prange iteration; minimum image by branches."""
    n = x.shape[0]
    e = 0.0
    for i in prange(n):
        d = np.empty(3)
        for j in range(n):
            if j == i:
                continue
            for k in range(3):
                dk = x[i, k] - x[j, k]
                if dk > 0.5 * L:
                    dk -= L
                elif dk < -0.5 * L:
                    dk += L
                d[k] = dk
            r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
            if r2 < rc * rc:
                ir6 = 1.0 / r2 ** 3
                e += 2.0 * ir6 * (ir6 - 1.0)
    return e


def triangle_energy(x, eps):
    """Pairs i < j of a flattened prange(n * n), softened Coulomb."""
    n = x.shape[0]
    e = 0.0
    for k in prange(n * n):
        i = k // n
        j = k % n
        if i < j:
            r2 = (x[i, 0] - x[j, 0]) ** 2 + (x[i, 1] - x[j, 1]) ** 2 + eps
            e += 1.0 / math.sqrt(r2)
    return e


# -- velocity Verlet ---------------------------------------------------------------------

def forces_serial(x, f, L, rc):
    n = x.shape[0]
    f[:, :] = 0.0
    epot = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            dx = x[i, 0] - x[j, 0]
            dy = x[i, 1] - x[j, 1]
            dx -= L * np.round(dx / L)
            dy -= L * np.round(dy / L)
            eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
            epot += eij
            f[i, 0] += fij * dx
            f[i, 1] += fij * dy
            f[j, 0] -= fij * dx
            f[j, 1] -= fij * dy
    return epot


def verlet(x, v, dt, nsteps, L, rc):
    n = x.shape[0]
    f = np.zeros_like(x)
    epot = forces_serial(x, f, L, rc)
    for step in range(nsteps):
        for i in range(n):
            for k in range(2):
                v[i, k] += 0.5 * dt * f[i, k]
                x[i, k] += dt * v[i, k]
        epot = forces_serial(x, f, L, rc)
        for i in range(n):
            for k in range(2):
                v[i, k] += 0.5 * dt * f[i, k]
    ekin = 0.0
    for i in range(n):
        ekin += 0.5 * (v[i, 0] ** 2 + v[i, 1] ** 2)
    return epot + 0.3 * ekin


def verlet_prange(x, v, dt, nsteps, L, rc):
    n = x.shape[0]
    f = np.zeros_like(x)
    epot = forces_prange_full(x, f, L, rc)
    for step in range(nsteps):
        for i in prange(n):
            v[i, 0] += 0.5 * dt * f[i, 0]
            v[i, 1] += 0.5 * dt * f[i, 1]
            x[i, 0] += dt * v[i, 0]
            x[i, 1] += dt * v[i, 1]
        epot = forces_prange_full(x, f, L, rc)
        for i in prange(n):
            v[i, 0] += 0.5 * dt * f[i, 0]
            v[i, 1] += 0.5 * dt * f[i, 1]
    ekin = 0.0
    for i in prange(n):
        ekin += 0.5 * (v[i, 0] ** 2 + v[i, 1] ** 2)
    return epot + 0.3 * ekin


def verlet_wrapped(x, v, m, dt, nsteps, L, rc, nbr, nn):
    """Masses, positions wrapped into the box (x % L), forces from a neighbour list."""
    n = x.shape[0]
    f = np.zeros_like(x)
    epot = forces_from_list(x, f, L, rc, nbr, nn)
    for step in range(nsteps):
        for i in prange(n):
            for k in range(2):
                v[i, k] += 0.5 * dt * f[i, k] / m[i]
                x[i, k] = (x[i, k] + dt * v[i, k]) % L
        epot = forces_from_list(x, f, L, rc, nbr, nn)
        for i in prange(n):
            for k in range(2):
                v[i, k] += 0.5 * dt * f[i, k] / m[i]
    s = 0.0
    for i in range(n):
        s += x[i, 0] * 0.3 + x[i, 1] * 0.7 + m[i] * v[i, 0]
    return s + epot


def rescaled_oscillators(x, v, dt, nsteps, T0):
    """Harmonic trap with a Berendsen-like velocity rescale (depends on v)."""
    n = x.shape[0]
    for s in range(nsteps):
        ek = 0.0
        for i in range(n):
            ek += v[i] * v[i]
        lam = math.sqrt(1.0 + 0.1 * (T0 / (ek / n) - 1.0))
        for i in range(n):
            v[i] = lam * v[i] - dt * x[i]
            x[i] += dt * v[i]
    return np.sum(x * x) + np.sum(v)


def build_cells(x, L, nc, head, nxt):
    lc = L / nc
    head[:] = -1
    for i in range(x.shape[0]):
        c = (int(math.floor(x[i, 0] / lc)) % nc) * nc + int(math.floor(x[i, 1] / lc)) % nc
        nxt[i] = head[c]
        head[c] = i


def cells_prange_while(x, L, rc, head, nxt, nc):
    """A prange over particles, each walking its neighbour cells' linked lists."""
    n = x.shape[0]
    lc = L / nc
    e = 0.0
    for i in prange(n):
        cx = int(math.floor(x[i, 0] / lc)) % nc
        cy = int(math.floor(x[i, 1] / lc)) % nc
        for ox in range(-1, 2):
            for oy in range(-1, 2):
                c2 = ((cx + ox) % nc) * nc + (cy + oy) % nc
                j = head[c2]
                while j != -1:
                    if j != i:
                        dx = x[i, 0] - x[j, 0]
                        dy = x[i, 1] - x[j, 1]
                        dx -= L * np.round(dx / L)
                        dy -= L * np.round(dy / L)
                        eij, fij = pair_lj(dx * dx + dy * dy, rc * rc)
                        e += 0.5 * eij
                    j = nxt[j]
    return e


# -- force matching (the forces are the model), a while loop over time, a skin rebuild ------

def forces_into(x, f, L, rc):
    n = x.shape[0]
    f[:] = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = x[i] - x[j]
            d -= L * np.round(d / L)
            r2 = np.sum(d * d)
            if r2 < rc * rc:
                ir6 = 1.0 / r2 ** 3
                ff = 24.0 * ir6 * (2.0 * ir6 - 1.0) / r2
                f[i] += ff * d
                f[j] -= ff * d


def force_matching(x, fref, L, rc):
    f = np.zeros_like(x)
    forces_into(x, f, L, rc)
    return np.sum((f - fref) ** 2)


def forces_only(x, L, rc):
    f = np.zeros_like(x)
    forces_into(x, f, L, rc)
    return f


def while_md(x, v, dt, tmax, L, rc):
    """Time as a float in a while loop; positions wrapped by while loops."""
    f = np.zeros_like(x)
    forces_into(x, f, L, rc)
    t = 0.0
    while t < tmax:
        v += 0.5 * dt * f
        x += dt * v
        for i in range(x.shape[0]):
            for k in range(x.shape[1]):
                while x[i, k] >= L:
                    x[i, k] -= L
                while x[i, k] < 0.0:
                    x[i, k] += L
        forces_into(x, f, L, rc)
        v += 0.5 * dt * f
        t += dt
    return np.sum(x * np.arange(x.size).reshape(x.shape)) + np.sum(v * v)


def skin_md(x, v, dt, nsteps, L, rc, skin, nbr, nn):
    """The neighbour list rebuilt when a particle has moved more than half the skin (at
    steps 0, 2 and 4 of the case below)."""
    n = x.shape[0]
    x0 = x.copy()
    f = np.zeros_like(x)
    for s in range(nsteps):
        disp = 0.0
        for i in range(n):
            d = x[i] - x0[i]
            disp = max(disp, math.sqrt(d[0] ** 2 + d[1] ** 2))
        if s == 0 or disp > 0.5 * skin:
            for i in range(n):
                nn[i] = 0
                for j in range(n):
                    if j != i:
                        d = x[i] - x[j]
                        d -= L * np.round(d / L)
                        if d[0] ** 2 + d[1] ** 2 < (rc + skin) ** 2:
                            nbr[i, nn[i]] = j
                            nn[i] += 1
            x0[:] = x
        for i in range(n):
            f[i] = 0.0
            for m in range(nn[i]):
                j = nbr[i, m]
                d = x[i] - x[j]
                d -= L * np.round(d / L)
                r2 = d[0] ** 2 + d[1] ** 2
                if r2 < rc * rc:
                    ir6 = 1.0 / r2 ** 3
                    f[i] += 24.0 * ir6 * (2.0 * ir6 - 1.0) / r2 * d
        for i in range(n):
            v[i] += dt * f[i]
            x[i] += dt * v[i]
    return np.sum(x[:, 0] * 0.5 - x[:, 1]) + np.sum(v ** 2)


def newton_allowed_races(x, f):
    """Newton's third law in a prange that says allow_races=True: runs, not differentiated."""
    n = x.shape[0]
    e = 0.0
    for i in ad.prange(n, allow_races=True):
        for j in range(i + 1, n):
            d = x[i, 0] - x[j, 0]
            e += d * d
            f[i, 0] += 2.0 * d
            f[j, 0] -= 2.0 * d
    return e + np.sum(f * f)


# -- the cases ----------------------------------------------------------------------------

def lattice(n_side, L, dim, jitter, seed):
    g = (np.arange(n_side) + 0.5) * (L / n_side)
    x = np.stack(np.meshgrid(*[g] * dim, indexing="ij"), axis=-1).reshape(-1, dim)
    return (x + jitter * np.random.default_rng(seed).standard_normal(x.shape)) % L


X3 = lattice(3, 3.2, 3, 0.05, 0)          # 27 particles, box 3.2
X2 = lattice(4, 4.0, 2, 0.05, 1)          # 16 particles, box 4
X25 = lattice(5, 5.0, 2, 0.05, 2)         # 25 particles, box 5


def half_list(x, L, rlist):
    nbr = np.zeros((len(x), len(x)), np.int64)
    nn = np.zeros(len(x), np.int64)
    build_neighbors(x, L, rlist, nbr, nn)
    return nbr, nn


def full_list(x, L, rlist):
    nbr = np.zeros((len(x), len(x)), np.int64)
    nn = np.zeros(len(x), np.int64)
    build_full_list(x, L, rlist, nbr, nn)
    return nbr, nn


def bonded_chain():
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.standard_normal((10, 3)) * 0.5 + 1.0, axis=0)
    bonds = np.array([[i, i + 1] for i in range(9)] + [[0, 9], [2, 7]], dtype=np.int64)
    return x, bonds


RNG = np.random.default_rng(3)
MASSES = RNG.uniform(0.5, 2.0, 8)
NBODY = RNG.standard_normal((8, 3))
CHARGES = RNG.choice([-1.0, 1.0], 10)
SPH_MASSES = RNG.uniform(0.5, 1.5, 8)
CHAIN, BONDS = bonded_chain()
FREF = RNG.standard_normal(X2.shape)

# name: (energy kernel, its arguments, the argument differentiated, minus the hand-written
# forces (d energy / d that argument) or None where the code writes none)
ENERGIES = {
    "numba_examples_cluster_prange": (potential_prange, (X3.copy(),), 0,
                                      lambda x: -cluster_forces(x)),
    "lj_pbc_shifted_with_forces": (lj_pbc_energy_forces, (X3, np.zeros_like(X3), 3.2, 1.5), 0,
                                   lambda x, f, L, rc: -pbc_forces(x, L, rc)),
    "lj2d_floor_min_image_x": (lj2d_energy, (X2[:, 0].copy(), X2[:, 1].copy(), 4.0, 2.5), 0,
                               lambda px, py, L, rc: -lj2d_forces(px, py, L, rc)[0]),
    "lj2d_floor_min_image_y": (lj2d_energy, (X2[:, 0].copy(), X2[:, 1].copy(), 4.0, 2.5), 1,
                               lambda px, py, L, rc: -lj2d_forces(px, py, L, rc)[1]),
    "linked_cell_list_while": (cell_list_energy, (lattice(4, 4.5, 3, 0.05, 5), 4.5, 1.5), 0,
                               lambda x, L, rc: -pbc_forces(x, L, rc)),
    "half_neighbour_list": (nlist_energy, (X3, 3.2, 1.5, *half_list(X3, 3.2, 1.8)), 0,
                            lambda x, L, rc, nbr, nn: -pbc_forces(x, L, rc)),
    "nbody_softened_positions": (nbody_energy, (NBODY, MASSES, 0.1), 0,
                                 lambda p, m, eps: -(m[:, None] * nbody_acc(p, m, eps))),
    "nbody_softened_masses": (nbody_energy, (NBODY, MASSES, 0.1), 1, None),
    "harmonic_bonds": (bond_energy, (CHAIN, BONDS, 3.0, 1.1), 0,
                       lambda x, b, k, r0: -bond_forces(x, b, k, r0)),
    "sph_cubic_spline_prange_helper": (sph_energy, (lattice(2, 2.0, 3, 0.1, 6), SPH_MASSES,
                                                    0.9, 2.0), 0, None),
    "morse": (morse_energy, (X3[:10], 1.0, 1.5, 1.1), 0, None),
    "yukawa_shifted": (yukawa_energy, (X3[:10], CHARGES, 0.8, 2.0), 0, None),
    "rows_tuple_helper_continue": (lj_rows, (X25, np.zeros_like(X25), 5.0, 2.5), 0,
                                   lambda x, f, L, rc: -rows_forces(x, L, rc)),
    "prange_all_j_own_row": (forces_prange_full, (X2, np.zeros_like(X2), 4.0, 2.5), 0,
                             lambda x, f, L, rc: -rows_forces(x, L, rc)),
    "prange_private_copies": (lj_private_copies, (X2, 4.0, 2.5), 0, None),
    "full_list_built_in_prange": (forces_from_list, (X25, np.zeros_like(X25), 5.0, 2.5,
                                                     *full_list(X25, 5.0, 2.8)), 0,
                                  lambda x, f, L, rc, nbr, nn: -rows_forces(x, L, rc)),
    "cells_counting_sort_prange": (cells_energy, (X25, 5.0, 1.6), 0,
                                   lambda x, L, rc: -rows_forces(x, L, rc)),
    "prange_scratch_branch_min_image": (scratch_energy, (X3, 3.2, 1.4), 0, None),
    "flattened_triangle_prange": (triangle_energy, (X25, 0.01), 0, None),
    "force_matching_positions": (force_matching, (X2, FREF, 4.0, 2.5), 0, None),
    "force_matching_reference": (force_matching, (X2, FREF, 4.0, 2.5), 1,
                                 lambda x, fref, L, rc: -2.0 * (forces_only(x, L, rc) - fref)),
}
FORCES = [name for name, case in ENERGIES.items() if case[3] is not None]


def fresh(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def assert_close(got, want, what, tol=TOL):
    err = relative_error(got, want)
    assert err <= tol, f"{what}: relative error {err:.1e}"


@pytest.mark.parametrize("name", ENERGIES)
def test_energy_is_pythons(name):
    kernel, args, _, _ = ENERGIES[name]
    got = ad.kernel(kernel, backend="interp")(*fresh(args))
    assert_close(got, kernel(*fresh(args)), name)


@pytest.mark.parametrize("name", FORCES)
def test_gradient_is_minus_the_hand_written_forces(name):
    kernel, args, argnum, minus_forces = ENERGIES[name]
    got = ad.grad(ad.kernel(kernel, backend="interp"), argnums=argnum)(*fresh(args))
    assert_close(got, minus_forces(*fresh(args)), name)


@pytest.mark.parametrize("name", ENERGIES)
def test_gradient_along_a_direction_is_central_differences(name):
    kernel, args, argnum, _ = ENERGIES[name]
    got = ad.grad(ad.kernel(kernel, backend="interp"), argnums=argnum)(*fresh(args))
    direction = np.random.default_rng(7).standard_normal(np.shape(args[argnum]))
    h = 1e-6
    plus, minus = list(fresh(args)), list(fresh(args))
    plus[argnum] = plus[argnum] + h * direction
    minus[argnum] = minus[argnum] - h * direction
    fd = (kernel(*plus) - kernel(*minus)) / (2 * h)
    assert_close(np.sum(got * direction), fd, name, tol=FD_TOL)


def test_cell_and_neighbour_lists_count_every_pair_once():
    """The lists' energies are the all-pairs energy (the references above rest on it), and
    the integer lists hpcad builds are Python's."""
    x4 = ENERGIES["linked_cell_list_while"][1][0]
    assert_close(cell_list_energy(x4, 4.5, 1.5),
                 lj_pbc_energy_forces(x4, np.zeros_like(x4), 4.5, 1.5), "cell list")
    assert_close(nlist_energy(X3, 3.2, 1.5, *half_list(X3, 3.2, 1.8)),
                 lj_pbc_energy_forces(X3, np.zeros_like(X3), 3.2, 1.5), "half list")
    assert_close(cells_energy(X25, 5.0, 1.6), lj_rows(X25, np.zeros_like(X25), 5.0, 1.6),
                 "counting sort cells")
    for build, shape in ((build_neighbors, X3), (build_full_list, X25)):
        L, rlist = (3.2, 1.8) if shape is X3 else (5.0, 2.8)
        got = (np.zeros((len(shape), len(shape)), np.int64), np.zeros(len(shape), np.int64))
        want = (got[0].copy(), got[1].copy())
        ad.kernel(build, backend="interp")(shape.copy(), L, rlist, *got)
        build(shape.copy(), L, rlist, *want)
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), build.__name__


# name: (integrator, its arguments, the tangent directions' arguments)
INTEGRATORS = {
    "verlet_serial_newton": (verlet, (X2, 0.3 * np.random.default_rng(8).standard_normal(
        X2.shape), 0.005, 4, 4.0, 2.5), (0, 1)),
    "verlet_prange": (verlet_prange, (X2, 0.3 * np.random.default_rng(8).standard_normal(
        X2.shape), 0.005, 4, 4.0, 2.5), (0, 1)),
    "verlet_wrapped_masses_list": (verlet_wrapped, (
        X25, 0.3 * np.random.default_rng(9).standard_normal(X25.shape),
        np.random.default_rng(10).uniform(0.8, 1.2, 25), 0.005, 2, 5.0, 2.5,
        *full_list(X25, 5.0, 2.8)), (0, 1, 2)),
    "rescaled_oscillators": (rescaled_oscillators, (
        np.random.default_rng(11).standard_normal(5),
        np.random.default_rng(12).standard_normal(5), 0.05, 6, 1.3), (0, 1, 4)),
    "while_time_loop_wrapped": (while_md, (X2, 0.3 * np.random.default_rng(14).standard_normal(
        X2.shape), 0.01, 0.03, 4.0, 2.5), (0, 1)),
    "skin_rebuilt_neighbour_list": (skin_md, (
        X2, 0.3 * np.random.default_rng(15).standard_normal(X2.shape), 0.01, 5, 4.0, 2.5, 0.02,
        np.zeros((16, 16), np.int64), np.zeros(16, np.int64)), (0, 1)),
}


def integrator_derivatives(name, backend):
    """jvp along random directions of the float arguments named, against central
    differences of the Python integrator; vjp's dot with the directions against jvp."""
    kernel, args, active = INTEGRATORS[name]
    rng = np.random.default_rng(13)
    tangents = [None] * len(args)
    for k in active:
        tangents[k] = rng.standard_normal(np.shape(args[k]))
        if np.ndim(args[k]) == 0:
            tangents[k] = float(tangents[k])
    for k, a in enumerate(args):
        if tangents[k] is None and isinstance(a, float):
            tangents[k] = 0.0
    compiled = ad.kernel(kernel, backend=backend)
    value, tangent = ad.jvp(compiled, fresh(args), tuple(tangents))
    assert_close(value, kernel(*fresh(args)), f"{name}: value")
    h = 1e-6
    plus, minus = list(fresh(args)), list(fresh(args))
    for k in active:
        plus[k] = plus[k] + h * tangents[k]
        minus[k] = minus[k] - h * tangents[k]
    fd = (kernel(*plus) - kernel(*minus)) / (2 * h)
    assert_close(tangent, fd, f"{name}: jvp", tol=FD_TOL)
    _, pullback = ad.vjp(compiled, *fresh(args))
    cotangents = pullback(1.0)
    dot = sum(np.sum(cotangents[k] * tangents[k]) for k in active)
    assert_close(dot, tangent, f"{name}: vjp against jvp")


@pytest.mark.parametrize("name", INTEGRATORS)
def test_integrator_jvp_is_central_differences_and_vjp_its_transpose(name):
    integrator_derivatives(name, "interp")


@pytest.mark.parametrize("kernel, args, line", [
    (forces_prange_newton, (X2, np.zeros_like(X2), 4.0, 2.5), "f[i, 0] += fij * dx"),
    (pairs_prange, (X2, np.zeros_like(X2), np.array([[i, (i + 1) % 16] for i in range(16)])),
     "f[i, 0] -= 2.0 * (r2 - 1.0) * dx"),
    (cells_prange_write, (np.ones(4), np.zeros(4), np.array([0, 2, -1]),
                          np.array([1, -1, 3, -1])), "f[i] = 2.0 * x[i]"),
], ids=["newton_third_law", "pair_list", "linked_list_per_cell"])
def test_scatter_into_other_particles_in_a_prange_is_refused_as_a_race(kernel, args, line):
    """Refused (file:line of the loop and of the first write of f that another iteration
    may touch), never run with a race."""
    with open(__file__) as source:
        lines = source.read().splitlines()
    write_line = next(k for k, text in enumerate(lines, 1)
                      if text.strip() == line and k > kernel.__code__.co_firstlineno)
    with pytest.raises(RaceError, match=rf"test_particle_codes.py:\d+: iterations of this "
                       rf"parallel loop race on array 'f' \(an element one iteration writes at "
                       rf"\S*test_particle_codes.py:{write_line} "):
        ad.kernel(kernel, backend="interp")(*fresh(args))


def test_the_jacobian_of_the_forces_is_minus_a_symmetric_hessian():
    """d F / d x of the Newton-scatter forces: reverse and forward mode agree, the matrix is
    symmetric (F = -grad E), and a column is the forces' central difference."""
    compiled = ad.kernel(forces_only, backend="interp")
    rev = ad.jacobian(compiled)(X2.copy(), 4.0, 2.5).reshape(32, 32)
    fwd = ad.jacobian(compiled, mode="fwd")(X2.copy(), 4.0, 2.5).reshape(32, 32)
    assert_close(rev, fwd, "reverse against forward")
    assert_close(rev, rev.T, "symmetry")
    h, plus, minus = 1e-6, X2.copy(), X2.copy()
    plus[3, 1] += h
    minus[3, 1] -= h
    fd = (forces_only(plus, 4.0, 2.5) - forces_only(minus, 4.0, 2.5)).ravel() / (2 * h)
    assert_close(rev[:, 7], fd, "a column", tol=FD_TOL)


def test_allowed_races_run_but_are_not_differentiated():
    x = np.random.default_rng(16).standard_normal((6, 1))
    compiled = ad.kernel(newton_allowed_races, backend="interp")
    assert_close(compiled(x.copy(), np.zeros((6, 1))),
                 newton_allowed_races(x.copy(), np.zeros((6, 1))), "value")
    with pytest.raises(ad.DifferentiationError, match=r"test_particle_codes.py:\d+: cannot "
                       r"differentiate this write to 'f': its parallel loop .* says "
                       r"allow_races=True"):
        ad.grad(compiled)(x.copy(), np.zeros((6, 1)))


def test_linked_lists_walked_in_a_prange_jvp_and_a_reverse_sweep_refused_with_a_hint():
    """The value and jvp of a prange whose iterations walk linked lists are right; its
    reverse sweep would need a tape block of unknown size per iteration: refused, saying
    to bound the walk or make the outer loop sequential (cell_list_energy above: the
    gradient of the serial form is checked)."""
    head, nxt = np.zeros(9, np.int64), np.zeros(25, np.int64)
    build_cells(X25, 5.0, 3, head, nxt)
    args = (X25.copy(), 5.0, 1.6, head, nxt, 3)
    compiled = ad.kernel(cells_prange_while, backend="interp")
    assert_close(compiled(*fresh(args)), lj_rows(X25.copy(), np.zeros_like(X25), 5.0, 1.6),
                 "value against all pairs")
    direction = np.random.default_rng(17).standard_normal(X25.shape)
    _, tangent = ad.jvp(compiled, fresh(args), (direction, 0.0, 0.0, None, None, None))
    assert_close(tangent, np.sum(rows_forces(X25, 5.0, 1.6) * -direction), "jvp")
    with pytest.raises(ad.DifferentiationError, match=r"test_particle_codes.py:\d+: a while "
                       r"loop .* inside the parallel loop at .* write it as a for loop over "
                       r"a bounded range .* or make the outer loop sequential"):
        ad.grad(compiled)(*fresh(args))


# -- numba, 2 threads ---------------------------------------------------------------------

@pytest.fixture
def two_threads():
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@SLOW
def test_prange_forces_on_numba_are_serials(two_threads):
    """Values against the serial Newton-scatter forces run by Python; the gradient (its
    adjoint gathers x[j] from every iteration) against minus those forces."""
    f = np.zeros_like(X2)
    compiled = ad.kernel(forces_prange_full, backend="numba")
    energy = compiled(X2.copy(), f, 4.0, 2.5)
    assert_close(energy, lj_rows(X2.copy(), np.zeros_like(X2), 4.0, 2.5), "energy")
    assert_close(f, rows_forces(X2, 4.0, 2.5), "forces against serial")
    grad = ad.grad(compiled)(X2.copy(), np.zeros_like(X2), 4.0, 2.5)
    assert_close(grad, -rows_forces(X2, 4.0, 2.5), "gradient against minus the forces")


@SLOW
def test_shifted_lj_on_numba_is_numba_njits():
    """The self-contained periodic kernel: energy and forces against numba.njit's."""
    args = (X3, np.zeros_like(X3), 3.2, 1.5)
    got, want = fresh(args), fresh(args)
    energy = ad.kernel(lj_pbc_energy_forces, backend="numba")(*got)
    assert_close(energy, njit_of(lj_pbc_energy_forces)(*want), "energy")
    assert_close(got[1], want[1], "forces")


@SLOW
def test_prange_integrator_on_numba(two_threads):
    integrator_derivatives("verlet_prange", "numba")
