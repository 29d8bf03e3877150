"""Small public helpers: power ratio in dB, zero-phase band limiting."""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from ._validation import _open_band, _positive, _ratio_db


# --------------------------------------------------------------------------- helpers


def snr_db(signal, noise) -> float:
    """Power ratio of ``signal`` to ``noise`` in dB: ``10 log10(sum(s^2) / sum(n^2))``.

    Parameters
    ----------
    signal, noise : array_like
        Any shapes; only their total energies matter.

    Returns
    -------
    float
        ``inf`` if the noise is exactly zero, ``-inf`` if the signal is.
    """
    s = float(np.sum(np.square(np.asarray(signal, dtype=np.float64))))
    n = float(np.sum(np.square(np.asarray(noise, dtype=np.float64))))
    return _ratio_db(s, n)


def band_limit(x, *, sr: float, band, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis.

    The filter runs forwards and backwards (``scipy.signal.sosfiltfilt``), so the
    magnitude response is that of the Butterworth filter squared (-6 dB at the band
    edges, 12 * ``order`` dB/octave outside) and the phase is zero.

    Parameters
    ----------
    x : array_like
        Signal(s), time along the last axis.
    sr : float
        Sample rate (Hz).
    band : (float or None, float or None)
        Edges (Hz). A low edge of None or 0 means no high-pass; a high edge of None or
        at/above 0.98 times the Nyquist frequency means no low-pass.
    order : int
        Butterworth order of each of the two sections (high-pass, low-pass).

    Returns
    -------
    ndarray, float64, same shape as ``x``
    """
    x = np.asarray(x, dtype=np.float64)
    sr = _positive(sr, "sr")
    low, high = _open_band(band, sr)
    if low is None and high is None:
        return x.copy()
    if low is not None and high is not None:
        sos = sps.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    elif low is not None:
        sos = sps.butter(order, low, btype="highpass", fs=sr, output="sos")
    else:
        sos = sps.butter(order, high, btype="lowpass", fs=sr, output="sos")
    # Pad by a few periods of the lowest edge so the start and end settle quietly.
    n = x.shape[-1]
    padlen = min(n - 1, int(3 * sr / (low if low is not None else high)))
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=max(padlen, 0))
