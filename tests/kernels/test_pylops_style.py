"""PyLops's numba kernels (github PyLops/pylops 2.8: basicoperators/_spread_numba.py,
waveeqprocessing/kirchhoff.py, signalprocessing/_spraying2d_numba.py and _radon2d_numba.py,
utils/_pwd2d_numba.py) under hpcad.kernel as PyLops writes them, loops, prange, helpers and
all. A linear operator's forward kernel y = A x has a hand-written adjoint kernel: hpcad's
vjp of the forward with cotangent v must equal the adjoint's A^T v, its jvp along dx the
forward's A dx, and the vjp of the adjoint the forward. Values against plain Python (and
numba.njit for a few); the non-linear plane-wave filter's gradient against central
differences. Most run on the interpreter; the Kirchhoff kernels also on numba, in parallel.

Where hpcad refuses what PyLops writes, the kernels here say what they change: `dims` (a
tuple argument) is passed as its two numbers, and the spread kernels' `dindices`, bound
only under `if interp:`, is bound on every path."""
import cmath
import copy
import math
from math import floor

import numba
import numpy as np
import pytest
from numba import prange

import hpcad as ad
from tests.ad.harness import SLOW, njit_of, relative_error

TOL = 1e-13


# -- pylops/basicoperators/_spread_numba.py (table) ------------------------------------------

def spread_matvec_table(x, y, dim0, dim1, interp, table, dtable):
    x = x.reshape((dim0, dim1))
    for ix0 in range(dim0):
        for it in range(dim1):
            indices = table[ix0, it]
            dindices = dtable[ix0, it]

            for i, indexfloat in enumerate(indices):
                if not math.isnan(indexfloat):
                    index = int(indexfloat)
                    if not interp:
                        y[i, index] += x[ix0, it]
                    else:
                        y[i, index] += (1 - dindices[i]) * x[ix0, it]
                        y[i, index + 1] += dindices[i] * x[ix0, it]
    return y.ravel()


def spread_rmatvec_table(x, y, dim0, dim1, dimd0, dimd1, interp, table, dtable):
    x = x.reshape((dimd0, dimd1))
    for ix0 in prange(dim0):
        for it in range(dim1):
            indices = table[ix0, it]
            dindices = dtable[ix0, it]

            for i, indexfloat in enumerate(indices):
                if not math.isnan(indexfloat):
                    index = int(indexfloat)
                    if not interp:
                        y[ix0, it] += x[i, index]
                    else:
                        y[ix0, it] += (
                            x[i, index] * (1 - dindices[i])
                            + x[i, index + 1] * dindices[i]
                        )
    return y.ravel()


# -- pylops/waveeqprocessing/kirchhoff.py (the three engines' kernels) ------------------------

def trav_kirch_matvec(x, y, nsnr, nt, ni, itrav, travd):
    for isrcrec in prange(nsnr):
        itravisrcrec = itrav[:, isrcrec]
        travdisrcrec = travd[:, isrcrec]
        for ii in range(ni):
            itravii = itravisrcrec[ii]
            travdii = travdisrcrec[ii]
            if 0 <= itravii < nt - 1:
                y[isrcrec, itravii] += x[ii] * (1 - travdii)
                y[isrcrec, itravii + 1] += x[ii] * travdii
    return y


def trav_kirch_rmatvec(x, y, nsnr, nt, ni, itrav, travd):
    for ii in prange(ni):
        itravii = itrav[ii]
        travdii = travd[ii]
        for isrcrec in range(nsnr):
            itravisrcrecii = itravii[isrcrec]
            travdisrcrecii = travdii[isrcrec]
            if 0 <= itravisrcrecii < nt - 1:
                y[ii] += (
                    x[isrcrec, itravisrcrecii] * (1 - travdisrcrecii)
                    + x[isrcrec, itravisrcrecii + 1] * travdisrcrecii
                )
    return y


def travsrcrec_kirch_matvec(x, y, ns, nr, nt, ni, dt, trav_srcs, trav_recs):
    for isrc in prange(ns):
        travisrc = trav_srcs[:, isrc]
        for irec in range(nr):
            travirec = trav_recs[:, irec]
            trav = travisrc + travirec
            itrav = (trav / dt).astype("int32")
            travd = trav / dt - itrav
            for ii in range(ni):
                itravii = itrav[ii]
                travdii = travd[ii]
                if 0 <= itravii < nt - 1:
                    y[isrc * nr + irec, itravii] += x[ii] * (1 - travdii)
                    y[isrc * nr + irec, itravii + 1] += x[ii] * travdii
    return y


def travsrcrec_kirch_rmatvec(x, y, ns, nr, nt, ni, dt, trav_srcs, trav_recs):
    for ii in prange(ni):
        trav_srcsii = trav_srcs[ii]
        trav_recsii = trav_recs[ii]
        for isrc in prange(ns):
            trav_srcii = trav_srcsii[isrc]
            for irec in range(nr):
                trav_recii = trav_recsii[irec]
                travii = trav_srcii + trav_recii
                itravii = int(travii / dt)
                travdii = travii / dt - itravii
                if 0 <= itravii < nt - 1:
                    y[ii] += (
                        x[isrc * nr + irec, itravii] * (1 - travdii)
                        + x[isrc * nr + irec, itravii + 1] * travdii
                    )
    return y


def ampsrcrec_kirch_matvec(x, y, ns, nr, nt, ni, dt, vel, trav_srcs, trav_recs, amp_srcs,
                           amp_recs, aperturemin, aperturemax, aperturetap, nz, six, rix,
                           angleaperturemin, angleaperturemax, angles_srcs, angles_recs):
    daperture = aperturemax - aperturemin
    dangleaperture = angleaperturemax - angleaperturemin
    for isrc in prange(ns):
        travisrc = trav_srcs[:, isrc]
        ampisrc = amp_srcs[:, isrc]
        angleisrc = angles_srcs[:, isrc]
        for irec in range(nr):
            travirec = trav_recs[:, irec]
            trav = travisrc + travirec
            itrav = (trav / dt).astype("int32")
            travd = trav / dt - itrav
            ampirec = amp_recs[:, irec]
            angleirec = angles_recs[:, irec]
            sixisrcrec = six[isrc * nr + irec]
            rixisrcrec = rix[isrc * nr + irec]
            cosangle = np.cos((angleisrc - angleirec) / 2.0)
            amp = 2.0 * cosangle * ampisrc * ampirec / vel
            for ii in range(ni):
                itravii = itrav[ii]
                travdii = travd[ii]
                damp = amp[ii]
                angle_src = angleisrc[ii]
                angle_rec = angleirec[ii]
                abs_angle_src = abs(angle_src)
                abs_angle_rec = abs(angle_rec)
                aptap = 1.0
                if abs_angle_src < angleaperturemax and abs_angle_rec < angleaperturemax:
                    if abs_angle_src >= angleaperturemin:
                        aptap = aptap * aperturetap[
                            int(20 * (abs_angle_src - angleaperturemin) // dangleaperture)]
                    if abs_angle_rec >= angleaperturemin:
                        aptap = aptap * aperturetap[
                            int(20 * (abs_angle_rec - angleaperturemin) // dangleaperture)]
                    iz = ii % nz
                    aperture = abs(sixisrcrec - rixisrcrec) / (iz + 1)
                    if aperture < aperturemax:
                        if aperture >= aperturemin:
                            aptap = aptap * aperturetap[
                                int(20 * ((aperture - aperturemin) // daperture))]
                        if 0 <= itravii < nt - 1:
                            y[isrc * nr + irec, itravii] += x[ii] * (1 - travdii) * damp * aptap
                            y[isrc * nr + irec, itravii + 1] += x[ii] * travdii * damp * aptap
    return y


def ampsrcrec_kirch_rmatvec(x, y, ns, nr, nt, ni, dt, vel, trav_srcs, trav_recs, amp_srcs,
                            amp_recs, aperturemin, aperturemax, aperturetap, nz, six, rix,
                            angleaperturemin, angleaperturemax, angles_srcs, angles_recs):
    daperture = aperturemax - aperturemin
    dangleaperture = angleaperturemax - angleaperturemin
    for ii in prange(ni):
        trav_srcsii = trav_srcs[ii]
        trav_recsii = trav_recs[ii]
        amp_srcsii = amp_srcs[ii]
        amp_recsii = amp_recs[ii]
        velii = vel[ii]
        angle_srcsii = angles_srcs[ii]
        angle_recsii = angles_recs[ii]
        iz = ii % nz
        for isrc in range(ns):
            trav_srcii = trav_srcsii[isrc]
            amp_srcii = amp_srcsii[isrc]
            angle_src = angle_srcsii[isrc]
            for irec in range(nr):
                trav_recii = trav_recsii[irec]
                travii = trav_srcii + trav_recii
                itravii = int(travii / dt)
                travdii = travii / dt - itravii
                amp_recii = amp_recsii[irec]
                angle_rec = angle_recsii[irec]
                sixisrcrec = six[isrc * nr + irec]
                rixisrcrec = rix[isrc * nr + irec]
                abs_angle_src = abs(angle_src)
                abs_angle_rec = abs(angle_rec)
                cosangle = np.cos((angle_src - angle_rec) / 2.0)
                damp = 2.0 * cosangle * amp_srcii * amp_recii / velii
                aptap = 1.0
                if abs_angle_src < angleaperturemax and abs_angle_rec < angleaperturemax:
                    if abs_angle_src >= angleaperturemin:
                        aptap = aptap * aperturetap[
                            int(20 * (abs_angle_src - angleaperturemin) // dangleaperture)]
                    if abs_angle_rec >= angleaperturemin:
                        aptap = aptap * aperturetap[
                            int(20 * (abs_angle_rec - angleaperturemin) // dangleaperture)]
                    aperture = abs(sixisrcrec - rixisrcrec) / (iz + 1)
                    if aperture < aperturemax:
                        if aperture >= aperturemin:
                            aptap = aptap * aperturetap[
                                int(20 * ((aperture - aperturemin) // daperture))]
                        if 0 <= itravii < nt - 1:
                            y[ii] += (
                                (x[isrc * nr + irec, itravii] * (1 - travdii)
                                 + x[isrc * nr + irec, itravii + 1] * travdii)
                                * damp * aptap
                            )
    return y


# -- pylops/signalprocessing/_spraying2d_numba.py --------------------------------------------
# (the forward is @njit(parallel=False): its prange runs serially in numba, and its
# iterations add into the same elements; hpcad runs a prange in parallel, so it is a range)

def spray_forward(m, sigma, radius, alpha, out):
    nz, nx = m.shape
    ftype = sigma.dtype.type
    alpha = ftype(alpha)
    for z0 in range(nz):
        for x0 in range(nx):
            v0 = m[z0, x0]
            if v0 == m.dtype.type(0.0):
                continue

            out[z0, x0] += v0

            amp = v0
            z = float(z0)
            for k in range(1, radius + 1):
                x = x0 + k
                if x >= nx:
                    break
                s = sigma[z0, min(x - 1, nx - 1)]
                z += s
                amp *= alpha
                zi = floor(z)
                t = z - zi
                zi0 = 0 if zi < 0 else (nz - 1 if zi >= nz else zi)
                zi1 = 0 if zi + 1 < 0 else (nz - 1 if zi + 1 >= nz else zi + 1)
                out[zi0, x] += (1 - t) * amp
                out[zi1, x] += t * amp

            amp = v0
            z = float(z0)
            for k in range(1, radius + 1):
                x = x0 - k
                if x < 0:
                    break
                s = sigma[z0, x]
                z -= s
                amp *= alpha
                zi = floor(z)
                t = z - zi
                zi0 = 0 if zi < 0 else (nz - 1 if zi >= nz else zi)
                zi1 = 0 if zi + 1 < 0 else (nz - 1 if zi + 1 >= nz else zi + 1)
                out[zi0, x] += (1 - t) * amp
                out[zi1, x] += t * amp


def spray_adjoint(d, sigma, radius, alpha, out):
    nz, nx = d.shape
    ftype = sigma.dtype.type
    alpha = ftype(alpha)
    for z0 in prange(nz):
        for x0 in range(nx):
            acc = d[z0, x0]

            amp = ftype(1.0)
            z = ftype(z0)
            for k in range(1, radius + 1):
                x = x0 + k
                if x >= nx:
                    break
                s = sigma[z0, min(x - 1, nx - 1)]
                z += s
                amp *= alpha
                zi = floor(z)
                t = z - zi
                zi0 = 0 if zi < 0 else (nz - 1 if zi >= nz else zi)
                zi1 = 0 if zi + 1 < 0 else (nz - 1 if zi + 1 >= nz else zi + 1)
                acc += (1 - t) * amp * d[zi0, x]
                acc += t * amp * d[zi1, x]

            amp = ftype(1.0)
            z = ftype(z0)
            for k in range(1, radius + 1):
                x = x0 - k
                if x < 0:
                    break
                s = sigma[z0, x]
                z -= s
                amp *= alpha
                zi = floor(z)
                t = z - zi
                zi0 = 0 if zi < 0 else (nz - 1 if zi >= nz else zi)
                zi1 = 0 if zi + 1 < 0 else (nz - 1 if zi + 1 >= nz else zi + 1)
                acc += (1 - t) * amp * d[zi0, x]
                acc += t * amp * d[zi1, x]

            out[z0, x0] += acc


def sprayed(m, out, sigma, radius, alpha):
    """PyLops's PWSprayer2D._matvec: the kernel fills the zeroed output."""
    spray_forward(m, sigma, radius, alpha, out)
    return out


def gathered(d, out, sigma, radius, alpha):
    spray_adjoint(d, sigma, radius, alpha, out)
    return out


# -- pylops/utils/_pwd2d_numba.py (plane-wave destruction, non-linear in the dip) -------------

@numba.njit(fastmath=True)
def _B3(sigma):
    b0 = (1.0 - sigma) * (2.0 - sigma) / 12.0
    b1 = (2.0 + sigma) * (2.0 - sigma) / 6.0
    b2 = (1.0 + sigma) * (2.0 + sigma) / 12.0
    return b0, b1, b2


@numba.njit(fastmath=True)
def _B3d(sigma):
    b0 = -(2.0 - sigma) / 12.0 - (1.0 - sigma) / 12.0
    b1 = (2.0 - sigma) / 6.0 - (2.0 + sigma) / 6.0
    b2 = (2.0 + sigma) / 12.0 + (1.0 + sigma) / 12.0
    return b0, b1, b2


@numba.njit(fastmath=True)
def _B5(sigma):
    s = sigma
    b0 = (1 - s) * (2 - s) * (3 - s) * (4 - s) / 1680.0
    b1 = (4 - s) * (2 - s) * (3 - s) * (4 + s) / 420.0
    b2 = (4 - s) * (3 - s) * (3 + s) * (4 + s) / 280.0
    b3 = (4 - s) * (2 + s) * (3 + s) * (4 + s) / 420.0
    b4 = (1 + s) * (2 + s) * (3 + s) * (4 + s) / 1680.0
    return b0, b1, b2, b3, b4


@numba.njit(fastmath=True)
def _B5d(sigma):
    s = sigma
    b0 = -((2 - s) * (3 - s) * (4 - s) + (1 - s) * (3 - s) * (4 - s)
           + (1 - s) * (2 - s) * (4 - s) + (1 - s) * (2 - s) * (3 - s)) / 1680.0
    b1 = (-((2 - s) * (3 - s) * (4 + s) + (4 - s) * (3 - s) * (4 + s)
            + (4 - s) * (2 - s) * (4 + s)) / 420.0 + (4 - s) * (2 - s) * (3 - s) / 420.0)
    b2 = (-((3 - s) * (3 + s) * (4 + s) + (4 - s) * (3 + s) * (4 + s)) / 280.0
          + (4 - s) * (3 - s) * (4 + s) / 280.0 + (4 - s) * (3 - s) * (3 + s) / 280.0)
    b3 = (-((2 + s) * (3 + s) * (4 + s)) / 420.0 + (4 - s) * (3 + s) * (4 + s) / 420.0
          + (4 - s) * (2 + s) * (4 + s) / 420.0 + (4 - s) * (2 + s) * (3 + s) / 420.0)
    b4 = ((2 + s) * (3 + s) * (4 + s) + (1 + s) * (3 + s) * (4 + s)
          + (1 + s) * (2 + s) * (4 + s) + (1 + s) * (2 + s) * (3 + s)) / 1680.0
    return b0, b1, b2, b3, b4


def conv_allpass(din, dip, order, u1, u2):
    n1, n2 = din.shape[:2]
    nw = 1 if order == 1 else 2
    u1[:] = 0.0
    u2[:] = 0.0
    for i1 in prange(nw, n1 - nw):
        for i2 in range(0, n2 - 1):
            s = dip[i1, i2]
            if order == 1:
                b0d, b1d, b2d = _B3d(s)
                b0, b1, b2 = _B3(s)
                v = din[i1 - 1, i2 + 1] - din[i1 + 1, i2]
                u1[i1, i2] += v * b0d
                u2[i1, i2] += v * b0
                v = din[i1 + 0, i2 + 1] - din[i1 + 0, i2]
                u1[i1, i2] += v * b1d
                u2[i1, i2] += v * b1
                v = din[i1 + 1, i2 + 1] - din[i1 - 1, i2]
                u1[i1, i2] += v * b2d
                u2[i1, i2] += v * b2
            else:
                c0d, c1d, c2d, c3d, c4d = _B5d(s)
                c0, c1, c2, c3, c4 = _B5(s)
                v = din[i1 - 2, i2 + 1] - din[i1 + 2, i2]
                u1[i1, i2] += v * c0d
                u2[i1, i2] += v * c0
                v = din[i1 - 1, i2 + 1] - din[i1 + 1, i2]
                u1[i1, i2] += v * c1d
                u2[i1, i2] += v * c1
                v = din[i1 + 0, i2 + 1] - din[i1 + 0, i2]
                u1[i1, i2] += v * c2d
                u2[i1, i2] += v * c2
                v = din[i1 + 1, i2 + 1] - din[i1 - 1, i2]
                u1[i1, i2] += v * c3d
                u2[i1, i2] += v * c3
                v = din[i1 + 2, i2 + 1] - din[i1 - 2, i2]
                u1[i1, i2] += v * c4d
                u2[i1, i2] += v * c4


def pwd_misfit(din, dip, order, w1, w2):
    """A loss of the filter's two outputs (u2 squared: non-linear in din too)."""
    u1 = np.zeros(din.shape)
    u2 = np.zeros(din.shape)
    conv_allpass(din, dip, order, u1, u2)
    return np.sum(w1 * u1 + w2 * u2 * u2)


# -- pylops/signalprocessing/_radon2d_numba.py (the look-up table) ---------------------------

@numba.njit
def _linear_numba(x, t, px):
    return t + px * x


@numba.njit
def _indices_2d_numba(x, px, t, nt, interp=True):
    tdecscan = _linear_numba(x, t, px)
    if not interp:
        xscan = (tdecscan >= 0) & (tdecscan < nt)
    else:
        xscan = (tdecscan >= 0) & (tdecscan < nt - 1)
    tscanfs = tdecscan[xscan]
    tscan = np.zeros(len(tscanfs))
    dtscan = np.zeros(len(tscanfs))
    for it, tscanf in enumerate(tscanfs):
        tscan[it] = int(tscanf)
        if interp:
            dtscan[it] = tscanf - tscan[it]
    return xscan, tscan, dtscan


def create_table(x, pxaxis, nt, npx, nx, interp):
    table = np.full((npx, nt, nx), np.nan, dtype=np.float32)
    dtable = np.full((npx, nt, nx), np.nan)
    for ipx in range(npx):
        px = pxaxis[ipx]
        for it in range(nt):
            xscans, tscan, dtscan = _indices_2d_numba(x, px, it, nt, interp=interp)
            itscan = 0
            for ixscan, xscan in enumerate(xscans):
                if xscan:
                    table[ipx, it, ixscan] = tscan[itscan]
                    if interp:
                        dtable[ipx, it, ixscan] = dtscan[itscan]
                    itscan += 1
    return table, dtable


# -- pylops/signalprocessing/_fourierradon2d_numba.py -----------------------------------------
# PyLops's kernels are complex (cmath.exp of X[ipx, ifr], complex128 arrays), which hpcad
# refuses with a hint; the kernels below carry real and imaginary parts as its hint says.

def radon_inner_2d(X, Y, f, px, h, flim0, flim1, npx, nh):
    for ih in prange(nh):
        for ifr in range(flim0, flim1):
            for ipx in range(npx):
                Y[ih, ifr] += X[ipx, ifr] * cmath.exp(-1j * 2 * math.pi * f[ifr] * px[ipx]
                                                      * h[ih])


def aradon_inner_2d(X, Y, f, px, h, flim0, flim1, npx, nh):
    for ipx in prange(npx):
        for ifr in range(flim0, flim1):
            for ih in range(nh):
                X[ipx, ifr] += Y[ih, ifr] * cmath.exp(1j * 2 * math.pi * f[ifr] * px[ipx]
                                                      * h[ih])


def radon_2d_parts(Xr, Xi, Yr, Yi, f, px, h, flim0, flim1, npx, nh):
    for ih in prange(nh):
        for ifr in range(flim0, flim1):
            for ipx in range(npx):
                phase = -2 * math.pi * f[ifr] * px[ipx] * h[ih]
                c, s = math.cos(phase), math.sin(phase)
                Yr[ih, ifr] += Xr[ipx, ifr] * c - Xi[ipx, ifr] * s
                Yi[ih, ifr] += Xr[ipx, ifr] * s + Xi[ipx, ifr] * c
    return Yr, Yi


def aradon_2d_parts(Xr, Xi, Yr, Yi, f, px, h, flim0, flim1, npx, nh):
    for ipx in prange(npx):
        for ifr in range(flim0, flim1):
            for ih in range(nh):
                phase = 2 * math.pi * f[ifr] * px[ipx] * h[ih]
                c, s = math.cos(phase), math.sin(phase)
                Xr[ipx, ifr] += Yr[ih, ifr] * c - Yi[ih, ifr] * s
                Xi[ipx, ifr] += Yr[ih, ifr] * s + Yi[ih, ifr] * c
    return Xr, Xi


# -- the operators' arguments -----------------------------------------------------------------

class Operator:
    """A forward kernel and its hand-written adjoint with their arguments: the model x (the
    data d) is argument 0 of the forward (the adjoint), the zeroed output argument 1."""

    def __init__(self, forward, adjoint, model, data, out_shapes, rest, adjoint_rest=None):
        self.forward, self.adjoint = forward, adjoint
        self.model, self.data, self.out_shapes = model, data, out_shapes
        self.rest = rest
        self.adjoint_rest = rest if adjoint_rest is None else adjoint_rest

    def forward_args(self, x):
        return (x.copy(), np.zeros(self.out_shapes[0])) + self.rest

    def adjoint_args(self, d):
        return (d.copy(), np.zeros(self.out_shapes[1])) + self.adjoint_rest


def spread(interp: bool) -> Operator:
    rng = np.random.default_rng(11)
    dims, dimsd = (3, 4), (5, 6)
    table = rng.uniform(0.0, dimsd[1] - 1.01, size=dims + (dimsd[0],)).astype(np.float32)
    table[rng.random(table.shape) < 0.3] = np.nan
    dtable = rng.random(table.shape)
    return Operator(spread_matvec_table, spread_rmatvec_table, rng.standard_normal(12),
                    rng.standard_normal(30), (dimsd, dims), (*dims, interp, table, dtable),
                    (*dims, *dimsd, interp, table, dtable))


def kirchhoff(kind: str) -> Operator:
    rng = np.random.default_rng(12)
    ns, nr, nt, nz, nx, dt = 2, 3, 12, 3, 4, 0.01
    ni, nsnr = nz * nx, ns * nr
    x, d, shapes = rng.standard_normal(ni), rng.standard_normal((nsnr, nt)), ((nsnr, nt), ni)
    if kind == "trav":
        trav = rng.uniform(0.0, (nt + 1) * dt, size=(ni, nsnr))
        itrav = (trav / dt).astype("int32")
        return Operator(trav_kirch_matvec, trav_kirch_rmatvec, x, d, shapes,
                        (nsnr, nt, ni, itrav, trav / dt - itrav))
    trav_srcs = rng.uniform(0.0, nt * dt / 2 + dt, size=(ni, ns))
    trav_recs = rng.uniform(0.0, nt * dt / 2, size=(ni, nr))
    if kind == "travsrcrec":
        return Operator(travsrcrec_kirch_matvec, travsrcrec_kirch_rmatvec, x, d, shapes,
                        (ns, nr, nt, ni, dt, trav_srcs, trav_recs))
    rest = (ns, nr, nt, ni, dt, rng.uniform(1.5, 2.5, ni), trav_srcs, trav_recs,
            rng.uniform(0.5, 1.0, (ni, ns)), rng.uniform(0.5, 1.0, (ni, nr)), 0.5, 3.0,
            np.hanning(41)[20:], nz, rng.integers(0, nx, nsnr).astype(float),
            rng.integers(0, nx, nsnr).astype(float), 0.3, 1.0,
            rng.uniform(-1.2, 1.2, (ni, ns)), rng.uniform(-1.2, 1.2, (ni, nr)))
    return Operator(ampsrcrec_kirch_matvec, ampsrcrec_kirch_rmatvec, x, d, shapes, rest)


def sprayer() -> Operator:
    rng = np.random.default_rng(13)
    nz, nx = 6, 7
    # m has no zeros: the forward skips a zero sample, where the derivative is the skipped
    # branch's (none), not the operator's column
    return Operator(sprayed, gathered, rng.standard_normal((nz, nx)),
                    rng.standard_normal((nz, nx)), ((nz, nx), (nz, nx)),
                    (rng.uniform(-1.5, 1.5, (nz, nx)), 3, 0.9))


OPERATORS = {
    "spread_interp": lambda: spread(True),
    "spread_nearest": lambda: spread(False),
    "kirchhoff_trav": lambda: kirchhoff("trav"),
    "kirchhoff_travsrcrec": lambda: kirchhoff("travsrcrec"),
    "kirchhoff_ampsrcrec": lambda: kirchhoff("ampsrcrec"),
    "sprayer": sprayer,
}
# on the numba backend too (seconds of compiling each): the Kirchhoff kernels whose prange
# loops write blocks of rows (modelling) and nest a prange (adjoint); the others on the
# interpreter, which shares everything with numba up to the backend
ON_NUMBA = {"kirchhoff_travsrcrec"}


def on_backends():
    return pytest.mark.parametrize("name, backend", [
        pytest.param(name, backend, id=f"{name}-{backend}",
                     marks=SLOW if backend == "numba" else ())
        for name in OPERATORS for backend in ("interp", "numba")
        if backend == "interp" or name in ON_NUMBA])


def assert_close(got, want, what: str, tol: float = TOL) -> None:
    """Relative error (harness.relative_error) of real arrays, or of complex ones' parts."""
    got, want = np.asarray(got), np.asarray(want)
    if np.iscomplexobj(got) or np.iscomplexobj(want):
        got, want = np.stack([got.real, got.imag]), np.stack([want.real, want.imag])
    err = relative_error(got, want)
    assert err <= tol, f"{what}: relative error {err:.1e}"


@on_backends()
def test_forward_and_adjoint_values_are_pythons(name, backend):
    op = OPERATORS[name]()
    for kernel, args in ((op.forward, op.forward_args(op.model)),
                         (op.adjoint, op.adjoint_args(op.data))):
        got = ad.kernel(kernel, backend=backend)(*copy.deepcopy(args))
        assert_close(got, kernel(*copy.deepcopy(args)), f"{name}: {kernel.__name__}")


@on_backends()
def test_vjp_of_the_forward_is_the_hand_written_adjoint(name, backend):
    """vjp of y = A x with cotangent d is A^T d, the adjoint kernel's (run by Python)."""
    op = OPERATORS[name]()
    _, pullback = ad.vjp(ad.kernel(op.forward, backend=backend), *op.forward_args(op.model))
    want = op.adjoint(*op.adjoint_args(op.data))
    got = pullback(op.data.reshape(np.shape(op.forward(*op.forward_args(op.model)))))[0]
    assert_close(np.ravel(got), np.ravel(want), f"{name}: vjp against the adjoint")


@on_backends()
def test_jvp_of_the_forward_is_the_forward_of_the_direction(name, backend):
    op = OPERATORS[name]()
    dx = np.random.default_rng(5).standard_normal(op.model.shape)
    args = op.forward_args(op.model)
    tangents = (dx, np.zeros(op.out_shapes[0])) + (None,) * len(op.rest)
    _, got = ad.jvp(ad.kernel(op.forward, backend=backend), args, tangents)
    assert_close(got, op.forward(*op.forward_args(dx)), f"{name}: jvp against A dx")


@pytest.mark.parametrize("name", [n for n in OPERATORS if n != "sprayer"])
def test_vjp_of_the_adjoint_is_the_forward(name):
    """(A^T)^T x = A x. (The sprayer's adjoint breaks out of loops inside its prange, whose
    reverse sweep hpcad refuses with a hint.)"""
    op = OPERATORS[name]()
    _, pullback = ad.vjp(ad.kernel(op.adjoint, backend="interp"), *op.adjoint_args(op.data))
    want = op.forward(*op.forward_args(op.model))
    got = pullback(op.model.reshape(np.shape(op.adjoint(*op.adjoint_args(op.data)))))[0]
    assert_close(np.ravel(got), np.ravel(want), f"{name}: vjp of the adjoint")


def test_the_sprayers_adjoint_has_no_reverse_sweep_inside_its_prange():
    """A `break` in an inner loop of a prange: hpcad cannot give each iteration a tape of
    its own and says what to write instead (not a wrong answer)."""
    op = sprayer()
    with pytest.raises(ad.DifferentiationError, match=r"test_pylops_style.py:\d+: a while "
                       r"loop \(or a for loop with `break`.*inside the parallel loop"):
        _, pullback = ad.vjp(ad.kernel(gathered, backend="interp"), *op.adjoint_args(op.data))
        pullback(op.model)


@pytest.mark.parametrize("name", ["kirchhoff_travsrcrec", "spread_interp"])
@pytest.mark.slow
def test_numba_njit_gives_the_same_values(name):
    op = OPERATORS[name]()
    for kernel, args in ((op.forward, op.forward_args(op.model)),
                         (op.adjoint, op.adjoint_args(op.data))):
        got = ad.kernel(kernel, backend="interp")(*copy.deepcopy(args))
        assert_close(got, njit_of(kernel)(*copy.deepcopy(args)), f"{name}: {kernel.__name__}")


@pytest.mark.parametrize("order", [1, 2])
def test_plane_wave_filter_values_and_gradient(order):
    """The all-pass filter (parallel=True, B-spline helpers returning tuples): values against
    Python, the gradient of a misfit in the data and in the dip (non-linear) against central
    differences along random directions."""
    rng = np.random.default_rng(order)
    din, dip = rng.standard_normal((9, 6)), rng.uniform(-0.8, 0.8, (9, 6))
    w1, w2 = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
    got = [np.zeros((9, 6)), np.zeros((9, 6))]
    want = [np.zeros((9, 6)), np.zeros((9, 6))]
    ad.kernel(conv_allpass, backend="interp", parallel=True)(din, dip, order, *got)
    conv_allpass(din, dip, order, *want)
    assert_close(got, want, "conv_allpass")
    grads = ad.grad(ad.kernel(pwd_misfit, backend="interp"), argnums=(0, 1))(
        din, dip, order, w1, w2)
    h = 1e-6
    for k, g in enumerate(grads):
        v = rng.standard_normal(din.shape)
        plus, minus = [din.copy(), dip.copy()], [din.copy(), dip.copy()]
        plus[k] += h * v
        minus[k] -= h * v
        fd = (pwd_misfit(*plus, order, w1, w2) - pwd_misfit(*minus, order, w1, w2)) / (2 * h)
        assert_close(np.sum(g * v), fd, f"order {order}: gradient {k}", tol=1e-7)


@pytest.mark.parametrize("interp", [True, False])
def test_radon_table_is_pythons(interp):
    """The look-up table: @njit helpers returning a mask and two vectors, a mask read
    (tdecscan[xscan]), enumerate over a bool vector, a keyword argument, NaN-filled float32."""
    x, pxaxis = np.linspace(-2.0, 2.0, 7), np.linspace(-1.5, 1.5, 4)
    got = ad.kernel(create_table, backend="interp")(x, pxaxis, 9, 4, 7, interp)
    want = create_table(x, pxaxis, 9, 4, 7, interp)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and np.array_equal(g, w, equal_nan=True)


def zeros(shape):
    """Two zeroed arrays: the parts of an output the kernel adds into."""
    return np.zeros(shape), np.zeros(shape)


def fourier_radon_case():
    rng = np.random.default_rng(14)
    npx, nh, nfft = 4, 5, 8
    f, px, h = np.fft.rfftfreq(nfft, 0.004), np.linspace(-1e-3, 1e-3, npx), np.linspace(
        -200.0, 200.0, nh)
    X = rng.standard_normal((npx, 5)) + 1j * rng.standard_normal((npx, 5))
    Y = rng.standard_normal((nh, 5)) + 1j * rng.standard_normal((nh, 5))
    return X, Y, (f, px, h, 1, 4, npx, nh)


def test_fourier_radon_in_real_and_imaginary_parts():
    """The complex kernels run by Python are the reference: the split forward's values are
    theirs; its vjp with cotangent (Re v, Im v) is (Re, Im) of the adjoint kernel's A^H v
    (the transpose of a complex-linear map, as a real one), its jvp the forward's."""
    X, Y, rest = fourier_radon_case()
    kernel = ad.kernel(radon_2d_parts, backend="interp", parallel=True)
    want = np.zeros(Y.shape, complex)
    radon_inner_2d(X, want, *rest)
    got = kernel(X.real.copy(), X.imag.copy(), *zeros(Y.shape), *rest)
    assert_close(got[0] + 1j * got[1], want, "forward")
    adjoint = np.zeros(X.shape, complex)
    aradon_inner_2d(adjoint, Y, *rest)
    _, pullback = ad.vjp(kernel, X.real.copy(), X.imag.copy(), *zeros(Y.shape), *rest)
    dr, di = pullback((Y.real.copy(), Y.imag.copy()))[:2]
    assert_close(dr + 1j * di, adjoint, "vjp against the adjoint")
    dX = X[::-1].copy()
    _, (tr, ti) = ad.jvp(kernel, (X.real.copy(), X.imag.copy(), *zeros(Y.shape), *rest),
                         (dX.real.copy(), dX.imag.copy(), *zeros(Y.shape))
                         + (None,) * len(rest))
    want = np.zeros(Y.shape, complex)
    radon_inner_2d(dX, want, *rest)
    assert_close(tr + 1j * ti, want, "jvp")
    got = ad.kernel(aradon_2d_parts, backend="interp", parallel=True)(
        *zeros(X.shape), Y.real.copy(), Y.imag.copy(), *rest)
    assert_close(got[0] + 1j * got[1], adjoint, "adjoint")


def test_complex_kernels_are_refused_with_the_parts_to_pass():
    X, Y, rest = fourier_radon_case()
    with pytest.raises(ad.ArgumentError, match=r"complex128 are not supported.*X.real.copy\(\) "
                                               r"and X.imag.copy\(\)"):
        ad.kernel(radon_inner_2d, backend="interp")(X, np.zeros(Y.shape, complex), *rest)

    def phase_of(t):
        return cmath.exp(1j * t[0]).real

    with pytest.raises(ad.UnsupportedConstruct, match=r"test_pylops_style.py:\d+: calling "
                       r"`cmath.exp` is not supported.*two floats \(cmath.exp\(1j \* t\) is"):
        ad.kernel(phase_of, backend="interp")(np.ones(2))
