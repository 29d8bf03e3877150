"""Alignment step 5 of :func:`~groovescan.metrics.compare`, join pieces, and the whole alignment."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from ._constants import _CURVE_PASSES, _LATER_PENALTY, _MIN_MATCHED
from ._fitting import _curve_shape, _fit_pieces, _linear_shape, _refine_lags, _SmoothLag
from ..errors import ParameterError
from ._sampler import _Sampler
from ._tracking import _find_seed, _RawTrack, _track
from ._validation import _edge_samples, _require_length
from .helpers import band_limit
from .results import AlignmentWarning, LagTrack


def _band_limited_pair(ref, dec, *, sr, band, window_s, silent_message):
    """The edge (samples) the band filter spoils, and both signals band-limited for the
    alignment, once both are long enough and the reference is not silent in the band."""
    edge = _edge_samples(sr, band[0])
    _require_length(ref, sr, edge, window_s, "reference")
    _require_length(dec, sr, edge, window_s, "decoded")
    ref_band = band_limit(ref, sr=sr, band=band)
    dec_band = band_limit(dec, sr=sr, band=band)
    if not np.any(ref_band):
        raise ParameterError(silent_message)
    return edge, ref_band, dec_band


# --- step 5: join pieces ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Alignment:
    pieces: tuple                 # _SmoothLag per piece, in time order
    boundaries: tuple             # (a_s, b_s) between piece i and i + 1: [a, b) unmatched
    track: LagTrack
    status: str


def _place_boundaries(ref_band, dec: _Sampler, pieces, *, sr, gain, window_s):
    """``(a, b)`` per pair of consecutive pieces: the earlier holds before ``a``, the
    later from ``b``; ``[a, b)`` (a skipped turn) has no counterpart in the decode."""
    bounds, lower = [], 0.0
    for early, late in zip(pieces[:-1], pieces[1:]):
        jump = float(late(late.first_s) - early(late.first_s))
        lo = max(lower, early.last_s - window_s)
        # A repeat may have been tracked from its second copy: look a jump further on.
        hi = min(late.last_s, late.first_s + window_s + max(jump, 0.0))
        a, b = _best_split(ref_band, dec, sr=sr, lo_s=lo, hi_s=max(hi, lo + 1 / sr),
                           early=early, late=late, gain=gain)
        bounds.append((a, b))
        lower = b
    return tuple(bounds)


def _best_split(ref_band, dec, *, sr, lo_s, hi_s, early, late, gain):
    """Split ``[lo, hi)`` into early piece, unmatched stretch, late piece at least error.

    Cost per sample: ``(x_early - g r)^2``, ``(g r)^2`` (nothing decoded) or
    ``(x_late - g r)^2``. The last two carry a small extra weight so that where the
    early piece still fits it is preferred.
    """
    n0, n1 = int(np.floor(lo_s * sr)), min(int(np.ceil(hi_s * sr)), ref_band.size)
    t = np.arange(n0, n1) / sr
    target = gain * ref_band[n0:n1]
    missing = target * target

    def cost(piece):
        u = t + piece(t)
        return np.where(dec.inside(u), (dec(u) - target) ** 2, missing)

    def prefix(e):
        return np.concatenate([[0.0], np.cumsum(e)])

    c_early = prefix(cost(early))
    c_none = prefix((1 + _LATER_PENALTY) * missing)
    c_late = prefix((1 + _LATER_PENALTY) * cost(late))
    choose_a = c_early - c_none          # total = choose_a[a] + choose_b[b] + const
    choose_b = c_none - c_late
    best_b_from = np.minimum.accumulate(choose_b[::-1])[::-1]
    a = int(np.argmin(choose_a + best_b_from))
    b = a + int(np.argmin(choose_b[a:]))
    return (n0 + a) / sr, (n0 + b) / sr


# --- putting the alignment together -------------------------------------------------


def _align(ref_band, dec_band, dec: _Sampler, *, sr, band, max_delay_s, max_speed_error,
           window_s, wow_max_hz, turn_s=None) -> _Alignment:
    """Steps 2-5 of :func:`compare`: seed, track, refine and fit, join."""
    duration_s = ref_band.size / sr
    seed = _find_seed(ref_band, dec_band, sr=sr, band=band, max_delay_s=max_delay_s,
                      max_speed_error=max_speed_error)
    raw = None
    if seed is not None:
        raw = _track(ref_band, dec_band, sr=sr, band=band, seed=seed, window_s=window_s,
                     max_jump_s=max_delay_s, max_speed_error=max_speed_error, turn_s=turn_s)
    if raw is None or not raw.locked.any():
        warnings.warn("the decode matches the reference nowhere; SNR computed without "
                      "alignment (check band, max_delay_s, max_speed_error)",
                      AlignmentWarning, stacklevel=3)
        return _unaligned(duration_s)
    lag, weight, pieces, gain = _measure_and_fit(ref_band, dec, raw, sr=sr, band=band,
                                                 duration_s=duration_s, window_s=window_s,
                                                 wow_max_hz=wow_max_hz)
    boundaries = _place_boundaries(ref_band, dec, pieces, sr=sr, gain=gain, window_s=window_s)
    return _Alignment(tuple(pieces), boundaries, _lag_track(raw, lag, weight, pieces),
                      _match_status(raw))


def _measure_and_fit(ref_band, dec, raw: _RawTrack, *, sr, band, duration_s, window_s,
                     wow_max_hz):
    """Measure each window's lag precisely and fit; then measure again reading each
    window along the fitted curve (which follows wow inside it), and fit again."""
    fit = dict(duration_s=duration_s, window_s=window_s, knot_spacing_s=1 / (4 * wow_max_hz),
               tolerance_s=0.1 / band[1])
    refine = dict(sr=sr, window_s=window_s, limit_s=0.25 / band[1])
    lag, info, gain = _refine_lags(ref_band, dec, raw, raw.lag_s, _linear_shape(raw), **refine)
    pieces, weight = _fit_pieces(raw, lag, info, **fit)
    for _ in range(_CURVE_PASSES):
        start = np.where(info > 0, lag, raw.lag_s)
        lag, info, gain = _refine_lags(ref_band, dec, raw, start, _curve_shape(raw, pieces),
                                       **refine)
        pieces, weight = _fit_pieces(raw, lag, info, **fit)
    return lag, weight, pieces, gain


def _match_status(raw: _RawTrack) -> str:
    loud = ~raw.silent
    matched = np.count_nonzero(raw.locked & loud) / max(1, np.count_nonzero(loud))
    if matched >= _MIN_MATCHED:
        return "ok"
    warnings.warn(f"only {matched:.0%} of the non-silent reference matched the decode",
                  AlignmentWarning, stacklevel=4)
    return "partial"


def _lag_track(raw: _RawTrack, lag, weight, pieces) -> LagTrack:
    fitted = np.full(raw.times_s.size, np.nan)
    for p, piece in enumerate(pieces):
        fitted[raw.piece == p] = piece(raw.times_s[raw.piece == p])
    top = weight.max() if weight.size and weight.max() > 0 else 1.0
    return LagTrack(times_s=raw.times_s, lag_s=np.where(raw.locked, lag, np.nan),
                    confidence=np.where(raw.locked, raw.rho, 0.0), weight=weight / top,
                    fitted_lag_s=fitted, piece=raw.piece)


def _unaligned(duration_s) -> _Alignment:
    zero = BSpline(np.r_[[0.0] * 4, [duration_s] * 4], np.zeros(4), 3, extrapolate=False)
    empty = np.zeros(0)
    track = LagTrack(empty, empty, empty, empty, empty, np.zeros(0, dtype=int))
    return _Alignment((_SmoothLag(zero, 0.0, duration_s, np.nan, np.nan),), (), track,
                      "no-alignment")


def _warp_map(alignment: _Alignment, t):
    """Piece index (-1: unmatched) and decoded time for reference times ``t``."""
    piece_of = np.full(t.size, -1)
    u = np.full(t.size, np.nan)
    starts = [-np.inf] + [b for _, b in alignment.boundaries]
    ends = [a for a, _ in alignment.boundaries] + [np.inf]
    for p, (start, end) in enumerate(zip(starts, ends)):
        lo, hi = np.searchsorted(t, [start, end])
        piece_of[lo:hi] = p
        u[lo:hi] = t[lo:hi] + alignment.pieces[p](t[lo:hi])
    return piece_of, u
