""":func:`thd_n`: total harmonic distortion plus noise of a steady tone."""
from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy import signal as sps

from ..errors import ParameterError
from ._tracking import _parabolic_offset
from ._validation import _as_signal, _edge_samples, _open_band, _positive
from .helpers import band_limit
from .results import ThdN


# --------------------------------------------------------------------------- THD+N


def thd_n(signal, *, sr: float, f0: float | None = None, band=(20.0, 20000.0),
          max_harmonics: int = 20) -> ThdN:
    """Total harmonic distortion plus noise of a steady tone.

    The signal is band-limited, its ends (filter transients, ``3 / band[0]`` s) are
    dropped, the tone's frequency is refined to the one whose least-squares sinusoid
    leaves the least residual (a notch that never misses by a fraction of a bin), and
    the fitted fundamental is subtracted. Harmonics inside the band are fitted at
    exact multiples of that frequency to split distortion from noise.

    Parameters
    ----------
    signal : array_like, shape (n,)
        The recorded tone.
    sr : float
        Sample rate (Hz).
    f0 : float, optional
        Nominal tone frequency (Hz); refined within +-2/T (T: duration). Default: the
        strongest spectral peak in the band.
    band : (float, float)
        Measurement band (Hz); a high edge at or above Nyquist means no low-pass.
    max_harmonics : int
        Most harmonics fitted (2nd, 3rd, ...).

    Returns
    -------
    ThdN
    """
    x = _as_signal(signal, "signal")
    sr = _positive(sr, "sr")
    low, high = _open_band(band, sr)
    low = low if low is not None else 0.0
    high = high if high is not None else sr / 2
    y = band_limit(x, sr=sr, band=(low or None, high if high < 0.98 * sr / 2 else None))
    edge = _edge_samples(sr, max(low, 10.0))
    if y.size <= 2 * edge + int(0.1 * sr):
        raise ParameterError(f"signal too short for THD+N: {x.size / sr:.3f} s; give at least "
                             f"{(2 * edge) / sr + 0.1:.2f} s (or raise band[0])")
    y = y[edge:y.size - edge]
    t = np.arange(y.size) / sr
    guess = _strongest_peak(y, sr=sr, band=(low, high)) if f0 is None else _positive(f0, "f0")
    f_tone = _refine_tone_frequency(y, t, guess)
    orders = [k for k in range(1, max_harmonics + 2) if k * f_tone < min(high, sr / 2)]
    amplitudes, fitted = _fit_harmonics(y, t, f_tone, orders)
    residual = y - fitted[0]
    total_rms = np.sqrt(np.mean(y * y))
    ratio = np.sqrt(np.mean(residual ** 2)) / total_rms
    harmonic_rms = amplitudes[1:] / np.sqrt(2)
    thd = np.sqrt(np.sum(amplitudes[1:] ** 2)) / amplitudes[0]
    return ThdN(
        f0_hz=float(f_tone),
        fundamental_rms=float(amplitudes[0] / np.sqrt(2)),
        thd_n_ratio=float(ratio),
        thd_n_db=float(20 * np.log10(ratio)) if ratio > 0 else float("-inf"),
        thd_ratio=float(thd),
        thd_db=float(20 * np.log10(thd)) if thd > 0 else float("-inf"),
        harmonic_rms=harmonic_rms,
        noise_rms=float(np.sqrt(np.mean((y - sum(fitted)) ** 2))),
        band=(float(low), float(high)),
    )


def _strongest_peak(y, *, sr, band) -> float:
    n = 4 * y.size
    spectrum = np.abs(np.fft.rfft(y * sps.windows.blackmanharris(y.size), n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spectrum[(f < band[0]) | (f > band[1])] = 0
    k = int(np.argmax(spectrum))
    return float(f[k] + _parabolic_offset(np.log(spectrum + 1e-300), k) * (f[1] - f[0]))


def _refine_tone_frequency(y, t, guess) -> float:
    """Frequency whose least-squares sinusoid leaves the least residual energy."""
    span = 2.0 / (t[-1] + t[1])

    energy = float(np.dot(y, y))

    def residual_energy(f):
        c, s = np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)
        gram = np.array([[c @ c, c @ s], [c @ s, s @ s]])
        proj = np.array([c @ y, s @ y])
        return energy - float(proj @ np.linalg.solve(gram, proj))

    result = optimize.minimize_scalar(residual_energy, bounds=(guess - span, guess + span),
                                      method="bounded", options={"xatol": 1e-10 * guess})
    return float(result.x)


def _fit_harmonics(y, t, f0, orders):
    """Joint least-squares fit of ``orders`` x ``f0``; returns amplitudes and components."""
    columns = []
    for k in orders:
        columns += [np.cos(2 * np.pi * k * f0 * t), np.sin(2 * np.pi * k * f0 * t)]
    design = np.column_stack(columns)
    # Sinusoids at distinct harmonics are nearly orthogonal: the normal equations are
    # well conditioned, and much faster than an SVD of the tall design matrix.
    coef = np.linalg.solve(design.T @ design, design.T @ y)
    amplitudes = np.hypot(coef[0::2], coef[1::2])
    components = [design[:, 2 * i:2 * i + 2] @ coef[2 * i:2 * i + 2] for i in range(len(orders))]
    return amplitudes, components
