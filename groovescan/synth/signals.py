"""Test signals: sine tones and logarithmic sweeps."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ParameterError
from ._common import TWO_PI


# =====================================================================================
# Test signals
# =====================================================================================

def _fade(x: np.ndarray, sr: float, fade_s: float) -> np.ndarray:
    """Raised-cosine fade in and out over ``fade_s`` seconds (avoids clicks at the ends)."""
    n = min(int(round(fade_s * sr)), x.size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(x.dtype)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _synthesise(phase_of_time: Callable[[np.ndarray], np.ndarray], n: int, sr: float,
                amplitude: float, fade_s: float) -> np.ndarray:
    """``amplitude * sin(phase(t))`` as float32, a million samples at a time (the float64
    phase of a 3-minute signal would otherwise need hundreds of MB)."""
    out = np.empty(n, np.float32)
    block = 1 << 20
    for a in range(0, n, block):
        t = np.arange(a, min(n, a + block)) / float(sr)
        out[a:a + block] = amplitude * np.sin(phase_of_time(t))
    return _fade(out, sr, fade_s)


def tone(freq_hz: float, *, duration_s: float, sr: float, amplitude: float = 1.0,
         phase_rad: float = 0.0, fade_s: float = 0.0) -> np.ndarray:
    """A sine tone ``amplitude * sin(2 pi f t + phase)``.

    Parameters
    ----------
    freq_hz : float
        Frequency in Hz.
    duration_s : float
        Length in seconds.
    sr : float
        Sample rate in Hz.
    amplitude : float
        Peak value.
    phase_rad : float
        Phase at ``t = 0`` in radians.
    fade_s : float
        Raised-cosine fade in/out in seconds (0: none).

    Returns
    -------
    numpy.ndarray
        Shape ``(round(duration_s * sr),)``, float32.
    """
    return _synthesise(lambda t: TWO_PI * freq_hz * t + phase_rad,
                       int(round(duration_s * sr)), sr, amplitude, fade_s)


def sweep(f_start_hz: float, f_stop_hz: float, *, duration_s: float, sr: float,
          amplitude: float = 1.0, fade_s: float = 0.01) -> np.ndarray:
    """A logarithmic (exponential) sine sweep from ``f_start_hz`` to ``f_stop_hz``.

    The instantaneous frequency is ``f_start * (f_stop / f_start) ** (t / duration_s)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(round(duration_s * sr),)``, float32.
    """
    if not (0 < f_start_hz and 0 < f_stop_hz):
        raise ParameterError("sweep frequencies must be positive; got "
                             f"{f_start_hz} and {f_stop_hz} Hz")
    rate = math.log(f_stop_hz / f_start_hz) / duration_s
    if abs(rate) < 1e-12:
        return tone(f_start_hz, duration_s=duration_s, sr=sr, amplitude=amplitude, fade_s=fade_s)
    return _synthesise(lambda t: TWO_PI * f_start_hz * np.expm1(rate * t) / rate,
                       int(round(duration_s * sr)), sr, amplitude, fade_s)
