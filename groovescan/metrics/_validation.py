"""Checks of the metrics' arguments, shared by all of them."""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError


# --------------------------------------------------------------------------- validation


def _as_signal(x, name) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a numeric 1-D array; got {type(x).__name__}") from exc
    if a.ndim != 1:
        raise ParameterError(f"{name} must be 1-D (mono); got shape {a.shape}; "
                             "pick or average the channels first")
    if not np.all(np.isfinite(a)):
        raise ParameterError(f"{name} contains NaN or infinite samples; repair or drop them")
    return a


def _positive(value, name) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a number; got {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ParameterError(f"{name} must be a positive finite number; got {value!r}")
    return v


def _open_band(band, sr):
    """(low, high) with None for an absent edge; see band_limit."""
    try:
        low, high = band
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"band must be a pair (low_hz, high_hz); got {band!r}") from exc
    nyquist = sr / 2
    low = None if low is None or float(low) <= 0 else float(low)
    high = None if high is None or float(high) >= 0.98 * nyquist else float(high)
    if high is not None and high <= 0:
        raise ParameterError(f"band high edge must be positive; got {band!r}")
    if low is not None and low >= 0.98 * nyquist:
        raise ParameterError(f"band low edge {low} Hz is at or above the Nyquist frequency "
                             f"{nyquist} Hz")
    if low is not None and high is not None and low >= high:
        raise ParameterError(f"band low edge must be below the high edge; got {band!r}")
    return low, high


def _closed_band(band, sr):
    try:
        low, high = (float(b) for b in band)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"band must be a pair of numbers (low_hz, high_hz); got {band!r}") from exc
    if not 0 < low < high < 0.95 * sr / 2:
        raise ParameterError(f"band must satisfy 0 < low < high < 0.95 * Nyquist "
                             f"({0.95 * sr / 2:g} Hz at sr = {sr:g}); got {band!r}")
    return (low, high)


def _check_compare_options(rpm, max_delay_s, max_speed_error, window_s, wow_max_hz, segment_s,
                           segment_clip_db):
    if rpm is not None and not 5 <= _positive(rpm, "rpm") <= 200:
        raise ParameterError(f"rpm must be between 5 and 200; got {rpm}")
    _positive(max_delay_s, "max_delay_s")
    if not 0 < float(max_speed_error) < 0.3:
        raise ParameterError(f"max_speed_error must be in (0, 0.3); got {max_speed_error}")
    if not 0.01 <= _positive(window_s, "window_s") <= 2:
        raise ParameterError(f"window_s must be between 0.01 and 2 s; got {window_s}")
    if _positive(wow_max_hz, "wow_max_hz") * window_s > 1:
        raise ParameterError("wow_max_hz * window_s must be <= 1: windows cannot see faster wow")
    _positive(segment_s, "segment_s")
    lo, hi = (float(v) for v in segment_clip_db)
    if not lo < hi:
        raise ParameterError(f"segment_clip_db must be (low, high) with low < high; got "
                             f"{segment_clip_db}")
    return dict(segment_clip_db=(lo, hi))


def _edge_samples(sr, low_hz) -> int:
    """Samples at each end disturbed by the band filter: three periods of its low edge."""
    return int(np.ceil(3.0 * sr / low_hz))


def _require_length(x, sr, edge, window_s, name):
    need = 2 * edge + int(np.ceil(4 * window_s * sr))
    if x.size < need:
        raise ParameterError(f"{name} too short: {x.size / sr:.3f} s; need at least "
                             f"{need / sr:.3f} s for this band and window_s")


def _ratio_db(num, den) -> float:
    if den <= 0:
        return float("inf") if num > 0 else float("nan")
    if num <= 0:
        return float("-inf")
    return float(10 * np.log10(num / den))
