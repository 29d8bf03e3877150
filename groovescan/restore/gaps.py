"""Gap repair: LSAR interpolation of short gaps, smooth bridges over long ones."""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import linalg

from ._ar import _fit_ar
from ._regions import (
    _DENSE_SOLVE_LIMIT,
    _MAD_TO_SIGMA,
    _as_mask,
    _as_signal,
    _check_positive,
    _output_dtype,
    mask_to_regions,
)


def repair_gaps(
    signal,
    mask,
    *,
    sr: float | None = None,
    ar_order: int = 32,
    context: int = 512,
    max_gap: int | None = None,
) -> np.ndarray:
    """Fill the masked samples of a signal from the good samples around them.

    Gaps up to `max_gap` samples are filled by least-squares AR interpolation (LSAR):
    an AR model of order `ar_order` is fitted on the good samples within `context`
    samples of the gap, and the missing samples are the values that minimise the sum of
    squared prediction errors of every prediction they take part in. Gaps closer than
    `ar_order` samples share predictions and are solved together.

    Longer gaps (the groove lost for more than `max_gap`) cannot be interpolated — LSAR
    fades to zero in the middle of a long gap — so they are **bridged**: the output
    follows a straight line between the local mean levels on either side, joined to the
    signal at each edge by a cubic fade (about ``max_gap / 4`` long) that matches the
    edge value and slope. Value and slope continuity mean no click in the velocity
    audio; in between, the bridge is near-silent. Gaps that touch either end of the
    signal are bridged too, whatever their length: with good samples on one side only,
    LSAR would extrapolate the AR model, which can grow without bound; the bridge holds
    the local level instead. Use :func:`declick` to get the bridged regions listed,
    e.g. to report them.

    Parameters
    ----------
    signal : array_like, shape (n,)
        Signal to repair (typically the groove displacement), any unit.
    mask : array_like of bool, shape (n,)
        True where a sample is corrupted. Non-finite samples are repaired too.
    sr : float, optional
        Sample rate, Hz; used only for the default `max_gap`.
    ar_order : int, default 32
        AR model order for the interpolation (long enough to model several partials).
    context : int, default 512
        Good samples used on each side of a gap to fit its AR model.
    max_gap : int, optional
        Longest gap, in samples, filled by LSAR. Default: 20 ms at `sr`, or 960 samples
        (20 ms at 48 kHz) when `sr` is not given.

    Returns
    -------
    ndarray, shape (n,)
        The repaired signal; unmasked samples are returned unchanged. Same dtype as the
        input if floating, else float32. If no sample is good, zeros with a warning.

    Notes
    -----
    Cost is about ``(ar_order * context + gap**2 * ar_order)`` operations per gap plus
    ~0.5 ms of Python overhead: 1e6 samples with 1 % masked in 1–40-sample gaps take
    about 0.4 s (``benchmarks/bench_restore.py``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(4800) / 48_000
    >>> clean = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t)
    >>> mask = np.zeros(t.size, bool); mask[1000:1030] = True
    >>> damaged = np.where(mask, 3.0, clean)
    >>> repaired = repair_gaps(damaged, mask)
    >>> bool(np.max(np.abs(repaired - clean)) < 1e-3)
    True
    """
    out_dtype = _output_dtype(signal)
    x = _as_signal(signal, "signal")
    n = len(x)
    bad = _as_mask(mask, n, "mask") | ~np.isfinite(x)
    ar_order = _check_positive(ar_order, "ar_order", integer=True)
    context = _check_positive(context, "context", integer=True)
    if max_gap is None:
        max_gap = int(round(0.02 * _check_positive(sr, "sr"))) if sr is not None else 960
    max_gap = _check_positive(max_gap, "max_gap", integer=True)

    if not bad.any():
        return x.astype(out_dtype)
    if bad.all():
        warnings.warn("repair_gaps: every sample is masked; returning zeros", stacklevel=2)
        return np.zeros(n, dtype=out_dtype)

    x[bad] = 0.0  # placeholders, never used as data
    good = ~bad
    regions = mask_to_regions(bad)
    is_long = _bridged(regions, n, max_gap)
    fade = max(max_gap // 4, 1)
    for start, stop in regions[is_long]:
        _bridge_long_gap(x, good, start, stop, fade)
    # Bridged samples may serve as boundary values below, but never to fit a model.
    for cluster in _clusters(regions[~is_long], ar_order):
        _lsar_cluster(x, good, cluster, ar_order, context)
    return x.astype(out_dtype)


def _bridged(regions: np.ndarray, n: int, max_gap: int) -> np.ndarray:
    """Which regions are bridged rather than interpolated: too long, or at an end."""
    too_long = (regions[:, 1] - regions[:, 0]) > max_gap
    return too_long | (regions[:, 0] == 0) | (regions[:, 1] == n)


def _clusters(regions: np.ndarray, order: int):
    """Groups of regions close enough (<= order apart) to share prediction errors."""
    if len(regions) == 0:
        return []
    split = np.flatnonzero(regions[1:, 0] - regions[:-1, 1] > order) + 1
    return np.split(regions, split)


def _lsar_cluster(x, good, cluster, order, context):
    """LSAR-fill the regions of one cluster in place."""
    indices, values = _lsar_estimate(x, good, cluster, order, context)
    x[indices] = values


def _local_model(x, good, first, last, order, context):
    """AR model of the good samples within `context` of ``x[first:last]``.

    Returns ``(lo, window, usable, level, c)``: the window ``x[lo:hi] - level``, centred
    on the mean of its good samples so the model spends no effort on the offset; which
    of its samples are good; and the prediction-error filter (order lowered if the
    context is too short; ``None`` if no model fits).
    """
    # At least `order` samples each side, so every prediction touching a gap is in view.
    lo, hi = max(first - max(context, order), 0), min(last + max(context, order), len(x))
    usable = good[lo:hi]
    level = float(np.mean(x[lo:hi][usable])) if usable.any() else 0.0
    window = x[lo:hi] - level
    c = None
    for p in (order, order // 2, order // 4):
        if p >= 1 and (c := _fit_ar(window, usable, p)) is not None:
            break
    return lo, window, usable, level, c


def _lsar_estimate(x, good, cluster, order, context):
    """LSAR estimate ``(indices, values)`` of the samples in a cluster of regions."""
    first, last = int(cluster[0, 0]), int(cluster[-1, 1])
    lo, window, usable, level, c = _local_model(x, good, first, last, order, context)
    unknown = np.concatenate([np.arange(a, b) for a, b in cluster]) - lo
    if c is None:  # not even a tiny model fits: fall back to a straight line
        known = np.setdiff1d(np.arange(len(window)), unknown)
        return unknown + lo, np.interp(unknown, known, x[known + lo])
    normal, rhs = _lsar_normal_equations(window, unknown, c)
    return unknown + lo, level + _solve_banded_spd(normal, rhs)


def _innovation_sigma(x: np.ndarray, usable: np.ndarray, c: np.ndarray) -> float:
    """Robust standard deviation of the prediction error on the rows of usable samples."""
    p = len(c) - 1
    bad_in_row = np.convolve(~usable, np.ones(p + 1), mode="valid") > 0.5
    errors = np.convolve(x, c, mode="valid")[~bad_in_row]
    return float(np.median(np.abs(errors)) * _MAD_TO_SIGMA)


def _lsar_normal_equations(x: np.ndarray, unknown: np.ndarray, c: np.ndarray):
    """Normal equations ``G x_u = rhs`` for the samples of `x` at sorted indices `unknown`.

    The values at `unknown` that minimise the power of the AR prediction errors
    ``e = A_u x_u + b`` of every row involving them solve ``(A_u^T A_u) x_u = -A_u^T b``.
    ``G = A_u^T A_u`` is banded (two unknowns more than ``p`` apart share no row) and
    its entries are partial autocorrelations of ``c``, so it is built directly in the
    upper banded form of :func:`scipy.linalg.solveh_banded`. Returns ``(G, rhs)``.
    """
    n, p, m = len(x), len(c) - 1, len(unknown)
    seg_lo, seg_hi = max(int(unknown[0]) - p, 0), min(int(unknown[-1]) + p + 1, n)
    row_lo, row_hi = seg_lo + p, seg_hi - 1  # rows (prediction targets) that exist
    segment = x[seg_lo:seg_hi].copy()
    segment[unknown - seg_lo] = 0.0
    b = np.convolve(segment, c, mode="valid")  # errors with the unknowns set to zero

    # -A_u^T b: each unknown at u meets row u + k with weight c[k].
    rows = unknown[:, None] + np.arange(p + 1)
    exists = (rows >= row_lo) & (rows <= row_hi)
    b_at = np.where(exists, b[np.clip(rows - row_lo, 0, len(b) - 1)], 0.0)
    rhs = -(b_at * c).sum(axis=1)

    # G[i, j] = sum over existing rows r of c[r - u_i] c[r - u_j]; for u_j = u_i + lag,
    # with k = r - u_j in [0, p - lag]: sum_k c[k] c[k + lag] over the k whose row
    # exists, i.e. a difference of the running sums partial[lag, k].
    shifted = sliding_window_view(np.concatenate([c, np.zeros(p)]), p + 1)  # [lag, k] = c[k + lag]
    partial = np.zeros((p + 1, p + 2))
    np.cumsum(c * shifted, axis=1, out=partial[:, 1:])
    bandwidth = min(p, m - 1)
    offset = np.arange(bandwidth + 1)[:, None]  # G[i, i + offset], all offsets at once
    i = np.arange(m)[None, :]
    inside = i + offset < m
    u_i, u_j = unknown[i], unknown[np.minimum(i + offset, m - 1)]
    lag = np.minimum(u_j - u_i, p)
    k_lo = np.maximum(0, row_lo - u_j)
    k_hi = np.minimum(p - lag, row_hi - u_j)
    value = partial[lag, np.clip(k_hi + 1, 0, p + 1)] - partial[lag, np.clip(k_lo, 0, p + 1)]
    value = np.where(inside & (u_j - u_i <= p) & (k_hi >= k_lo), value, 0.0)
    normal = np.zeros((bandwidth + 1, m))  # upper form: normal[bw - offset, j] = G[j - offset, j]
    rows, cols = np.broadcast_arrays(bandwidth - offset, i + offset)
    normal[rows[inside], cols[inside]] = value[inside]
    # Tiny ridge: keeps unknowns near the array ends (few rows) well posed; elsewhere
    # the diagonal is at least c[0]**2 = 1.
    normal[bandwidth] += 1e-9
    return normal, rhs


def _solve_banded_spd(normal: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the symmetric positive definite system given by its upper band."""
    if len(rhs) > _DENSE_SOLVE_LIMIT:
        return linalg.solveh_banded(normal, rhs, check_finite=False)
    return np.linalg.solve(_dense_from_upper_band(normal), rhs)


def _dense_from_upper_band(banded: np.ndarray) -> np.ndarray:
    """Symmetric dense matrix from its upper band (``solveh_banded`` layout)."""
    bandwidth, m = banded.shape[0] - 1, banded.shape[1]
    dense = np.zeros((m, m))
    for offset in range(bandwidth + 1):
        i = np.arange(m - offset)
        dense[i, i + offset] = dense[i + offset, i] = banded[bandwidth - offset, offset:]
    return dense


class _Edge(NamedTuple):
    """The good signal next to a bridged gap."""

    value: float  # the sample at the edge
    slope: float  # its local derivative, per sample
    level: float  # the mean of the good samples near the edge


def _edge(x, good, edge, step, span) -> _Edge | None:
    """The good signal ending at index `edge`, seen looking away from the gap.

    `step` is -1 to look left from `edge`, +1 to look right; `span` samples are
    averaged for the level. ``None`` if `edge` is outside the signal.
    """
    n = len(x)
    if not 0 <= edge < n:
        return None
    idx = edge + step * np.arange(span)
    idx = idx[(idx >= 0) & (idx < n)]
    idx = idx[good[idx]] if good[idx].any() else idx[:1]
    near = idx[:8]  # slope from the nearest few samples: the local derivative
    slope = float(np.polyfit(near, x[near], 1)[0]) if len(near) >= 2 else 0.0
    return _Edge(float(x[edge]), slope, float(np.mean(x[idx])))


def _bridge_long_gap(x, good, start, stop, fade):
    """Fill ``x[start:stop]`` with a near-silent curve joined smoothly to the signal.

    Between two good stretches: a straight line between their mean levels, with a
    cubic fade at each end from the edge's value and slope onto the line. At an end of
    the signal: the edge value carried on, its slope fading out.
    """
    left = _edge(x, good, start - 1, -1, fade)
    right = _edge(x, good, stop, +1, fade)
    t = np.arange(start, stop, dtype=np.float64)
    if left is None or right is None:
        edge = left or right
        held = _Edge(edge.value, edge.slope, level=edge.value)
        distance, direction = (t - (start - 1), 1.0) if left else (stop - t, -1.0)
        length = min(fade, stop - start + 1)
        x[start:stop] = edge.value + _fade(held, 0.0, distance, length, direction)
        return
    t0, t1 = start - 1.0, float(stop)
    line_slope = (right.level - left.level) / (t1 - t0)
    length = min(fade, (t1 - t0) / 2)
    x[start:stop] = (
        left.level
        + line_slope * (t - t0)
        + _fade(left, line_slope, t - t0, length, 1.0)
        + _fade(right, line_slope, t1 - t, length, -1.0)
    )


def _fade(edge: _Edge, line_slope, distance, length, direction):
    """Departure from a line through ``edge.level`` that starts with the edge's value
    and slope and dies out, with zero slope, `length` samples from the edge (a cubic
    Hermite curve). `direction` is +1 right of the edge, -1 left of it."""
    tau = np.clip(distance / length, 0.0, 1.0)
    value_fade = 2 * tau**3 - 3 * tau**2 + 1  # 1 -> 0, flat at both ends
    slope_fade = tau * (1 - tau) ** 2  # 0 -> 0, unit slope at the edge
    slope_gap = (edge.slope - line_slope) * direction
    return (edge.value - edge.level) * value_fade + slope_gap * length * slope_fade
