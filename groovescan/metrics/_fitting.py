"""Alignment step 4 of :func:`~groovescan.metrics.compare`: refine the lags, fit smooth curves."""
from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.interpolate import BSpline
from scipy.sparse import linalg as sparse_linalg

from ._constants import _IRLS_ITERATIONS, _REFINE_ITERATIONS, _SMOOTHING, _TUKEY_C
from ._sampler import _Sampler
from ._tracking import _RawTrack


# --- step 4: refine and fit ---------------------------------------------------------


class _SmoothLag:
    """Lag (s) as a smooth function of reference time over one piece.

    A cubic spline on its domain, continued by straight lines outside it.
    """

    def __init__(self, spline: BSpline, t_lo, t_hi, first_s, last_s):
        # the spline's own base interval: its knots are sums that may round t_hi
        # down by an ulp, and outside it the spline is NaN
        k = spline.k
        self.spline = spline
        self.t_lo, self.t_hi = max(t_lo, spline.t[k]), min(t_hi, spline.t[-k - 1])
        self.first_s, self.last_s = first_s, last_s  # span of the windows that fed it
        self._slope = spline.derivative()

    def __call__(self, t_s):
        t = np.asarray(t_s, dtype=np.float64)
        inner = np.clip(t, self.t_lo, self.t_hi)
        return self.spline(inner) + self._slope(inner) * (t - inner)

    def slope(self, t_s):
        return self._slope(np.clip(np.asarray(t_s, dtype=np.float64), self.t_lo, self.t_hi))


def _fit_pieces(track: _RawTrack, lag_s, weight, *, duration_s, window_s, knot_spacing_s,
                tolerance_s):
    """Robust penalised spline per piece; returns the pieces and the final weights."""
    pieces, final = [], np.zeros_like(weight)
    ids = np.unique(track.piece[track.piece >= 0])
    for p in ids:
        sel = np.flatnonzero((track.piece == p) & (weight > 0) & np.isfinite(lag_s))
        if sel.size == 0:
            sel = np.flatnonzero((track.piece == p) & np.isfinite(lag_s))
        t = track.times_s[sel]
        t_lo = 0.0 if p == ids[0] else t[0] - window_s
        t_hi = duration_s if p == ids[-1] else t[-1] + window_s
        w0 = np.maximum(weight[sel], 0)
        if not np.any(w0 > 0):
            w0 = np.ones_like(t)
        spline, robust = _robust_spline(t, lag_s[sel], w0, t_lo=t_lo, t_hi=t_hi,
                                        knot_spacing_s=knot_spacing_s, tolerance_s=tolerance_s)
        pieces.append(_SmoothLag(spline, t_lo, t_hi, t[0], t[-1]))
        final[sel] = robust
    return pieces, final


def _robust_spline(t, y, w0, *, t_lo, t_hi, knot_spacing_s, tolerance_s):
    """Penalised spline with Tukey-biweight reweighting (outlier lags get weight 0).

    A lag is down-weighted when it is far from the curve compared with its own
    standard error (``1 / sqrt(weight)``, scaled robustly), but never when it is
    within ``tolerance_s``: the outliers to reject are correlation sidelobes, half a
    period of the highest frequency away or more, not small systematic errors.
    No window counts for more than 100 typical ones: on clean data the residual that
    sets a window's weight is numerical dust, and a few windows would else decide
    the whole curve.
    """
    w0 = np.minimum(w0 / np.median(w0[w0 > 0]), 100.0)
    w = w0.copy()
    used = w0 > 0
    for _ in range(_IRLS_ITERATIONS):
        spline = _penalised_spline(t, y, w, t_lo=t_lo, t_hi=t_hi, knot_spacing_s=knot_spacing_s)
        residual = y - spline(t)
        # Scale floor of 1 ns: below anything measurable, and avoids 0/0 on exact data.
        scale = max(1.4826 * np.median(np.abs(residual[used] * np.sqrt(w0[used]))), 1e-9)
        limit = np.maximum(_TUKEY_C * scale / np.sqrt(np.maximum(w0, 1e-300)), tolerance_s)
        u = residual / limit
        w = w0 * np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
    return spline, w


def _penalised_spline(t, y, w, *, t_lo, t_hi, knot_spacing_s) -> BSpline:
    """Weighted least-squares cubic spline with a small second-difference penalty.

    The penalty (a P-spline) bridges gaps in the data with straight lines and keeps
    the solution unique; at 1e-4 of the typical data weight it does not pull the
    curve away from the data anywhere else.
    """
    n_int = max(1, int(np.ceil((t_hi - t_lo) / knot_spacing_s)))
    # Uniform knots running past both ends (not clamped): a straight line then has
    # evenly spaced coefficients, so the penalty never bends a constant speed.
    h = (t_hi - t_lo) / n_int
    knots = t_lo + h * np.arange(-3, n_int + 4)
    n_coef = n_int + 3
    basis = BSpline.design_matrix(np.clip(t, t_lo, t_hi), knots, 3)
    weighted = basis.T @ sparse.diags(w)
    normal = (weighted @ basis).tocsc()
    second_diff = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n_coef - 2, n_coef))
    diagonal = normal.diagonal()
    lam = _SMOOTHING * max(np.median(diagonal[diagonal > 0]) if np.any(diagonal > 0) else 0, 1e-300)
    coef = sparse_linalg.spsolve((normal + lam * (second_diff.T @ second_diff)).tocsc(),
                                 weighted @ y)
    return BSpline(knots, np.atleast_1d(coef), 3, extrapolate=False)


def _linear_shape(track: _RawTrack):
    """Lag variation inside windows: the tracker's slope (speed, wow averaged)."""
    def shape(chunk, t):
        return track.slope[chunk, None] * (t - track.times_s[chunk, None])
    return shape


def _curve_shape(track: _RawTrack, pieces):
    """Lag variation inside windows: the fitted curve of the window's piece."""
    def shape(chunk, t):
        out = np.empty_like(t)
        for p in np.unique(track.piece[chunk]):
            rows = track.piece[chunk] == p
            centre = track.times_s[chunk[rows]]
            out[rows] = pieces[p](t[rows]) - pieces[p](centre)[:, None]
        return out
    return shape


def _refine_lags(ref_band, dec: _Sampler, track: _RawTrack, start_s, shape, *, sr, window_s,
                 limit_s):
    """Gauss-Newton refinement of each window's lag, independently of any fit.

    Within window ``j`` the decode is read along ``u = t + lag_j + shape(j, t)``, where
    ``shape`` is how the lag varies inside the window (0 at its centre ``t_j``): a
    straight line from the tracker at first, then the fitted curve, so that wow
    does not bias the lag towards its window average (2.8 % low for 1.3 Hz wow).
    With ``x`` the decode there, ``x'`` its time derivative and ``g`` the decode /
    reference gain, ``x(u + d) ~ x + d x' = g r`` gives ``d = sum((g r - x) x') /
    sum(x'^2)``; a few such steps converge from anywhere within a quarter period of
    the highest frequency. Each window's weight is its Fisher information,
    ``sum(x'^2) / var(g r - x - d x')`` (the inverse variance of its lag). Steps are
    clipped to ``limit_s``; windows that have not converged get weight 0 (one that
    converged on a correlation sidelobe is left to the robust fit). Samples whose
    counterpart lies outside the decode are left out.

    Returns the lags (s), their weights, and the overall gain.
    """
    n = track.times_s.size
    lag, info = np.full(n, np.nan), np.zeros(n)
    length = int(round(window_s * sr))
    total_rx = total_rr = 0.0
    usable = np.flatnonzero(track.locked & np.isfinite(start_s))
    for chunk in np.array_split(usable, max(1, usable.size // 256)):
        if chunk.size == 0:
            continue
        centre = track.times_s[chunk]
        first = np.clip(np.round(centre * sr - (length - 1) / 2).astype(int), 0,
                        ref_band.size - length)
        idx = first[:, None] + np.arange(length)
        within = shape(chunk, idx / sr)
        r = ref_band[idx]
        estimate = start_s[chunk].copy()
        dx = None
        for _ in range(_REFINE_ITERATIONS):
            u = idx / sr + estimate[:, None] + within
            inside = dec.inside(u)
            x = dec(u)
            if dx is None:  # the slope barely moves between steps: read it once
                dx = dec.derivative(u) * inside
            rr, rx = np.sum(r * r * inside, axis=1), np.sum(r * x, axis=1)
            g = rx / np.maximum(rr, 1e-300)
            residual = (g[:, None] * r - x) * inside
            curvature = np.sum(dx * dx, axis=1)
            step = np.sum(residual * dx, axis=1) / np.maximum(curvature, 1e-300)
            estimate += np.clip(step, -limit_s, limit_s)
        # Noise: what the last step leaves (not the misfit it removed), floored at
        # -120 dB of the signal so that exact data keeps a finite weight.
        after = residual - step[:, None] * dx
        count = np.maximum(inside.sum(axis=1), 1)
        noise = np.maximum(np.sum(after ** 2, axis=1) / count, 1e-12 * rr / count * g * g)
        ok = (inside.mean(axis=1) >= 0.8) & (curvature > 0) & (np.abs(step) <= 0.01 * limit_s)
        lag[chunk] = estimate
        info[chunk] = np.where(ok, curvature / np.maximum(noise, 1e-300), 0.0)
        total_rx += np.sum(rx[ok])
        total_rr += np.sum(rr[ok])
    gain = total_rx / total_rr if total_rr > 0 else 0.0
    return lag, info, gain
