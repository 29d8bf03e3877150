""":func:`wow_flutter` of a test tone, and the IEC 60386 weighting it uses."""
from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft
from scipy import signal as sps

from ..errors import ParameterError
from ._validation import _as_signal, _positive
from .helpers import band_limit
from .results import WowFlutter
from .thd import _strongest_peak


# --------------------------------------------------------------------------- wow & flutter

_FLUTTER_RATE_HZ = 4000.0   # deviation signal rate: keeps the bilinear warp < 0.1 dB at 200 Hz
_FLUTTER_SETTLE_S = 2.0     # weighting filter settling left out (its slowest pole ~0.45 Hz)
_FLUTTER_WEIGHTING = dict(lowpass_hz=11.5, highpass1_hz=1.39, highpass2_hz=0.448, highpass2_q=0.646)


def flutter_weighting_db(freqs_hz) -> np.ndarray:
    """Response (dB) of our wow & flutter weighting filter, 0 dB at 4 Hz.

    IEC 60386 (= AES6, DIN 45507, CCIR 409) tabulate the weighting at 17 frequencies
    from 0.1 to 200 Hz: a peak at 4 Hz, about 6 dB/octave on either side, and an extra
    drop below 0.5 Hz. We realise it as an analog filter with three zeros at DC (the
    18 dB/octave asymptote below 0.5 Hz) and four poles: a first-order low-pass at
    11.5 Hz, a first-order high-pass at 1.39 Hz and a second-order high-pass at
    0.448 Hz (Q 0.646). Those four numbers are our own least-squares fit to the table;
    the fit stays within 0.85 dB of every table value (the standard allows +-2 dB in
    the passband, +-4 dB or more at the extremes).

    Parameters
    ----------
    freqs_hz : array_like
        Modulation frequencies (Hz), > 0.

    Returns
    -------
    ndarray
        Gain in dB.
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    h = _flutter_weighting_analog(f) / abs(_flutter_weighting_analog(np.array(4.0)))
    return 20 * np.log10(np.abs(h))


def wow_flutter(signal, *, sr: float, f0: float = 3150.0, weighting: str = "iec",
                search_fraction: float = 0.1) -> WowFlutter:
    """Wow and flutter of a test tone, weighted (IEC 60386 / AES6) and unweighted.

    The tone is found near ``f0``, band-passed around it, and its instantaneous
    frequency is read from the phase advance of the analytic signal between
    consecutive samples. The relative deviation from the mean frequency is then
    (a) low-passed at 200 Hz with the mean removed: *unweighted*; (b) passed through
    the weighting filter of :func:`flutter_weighting_db` (causal, as a meter):
    *weighted*. Peaks are two-sigma values: the magnitude exceeded 5 % of the time.

    Parameters
    ----------
    signal : array_like, shape (n,)
        Recording of the test tone; at least 5 s is advisable (AES6).
    sr : float
        Sample rate (Hz).
    f0 : float
        Nominal test-tone frequency (Hz); 3150 Hz in IEC 60386 / AES6.
    weighting : {"iec", "none"}
        ``"iec"`` (also ``"aes6"``, ``"din"``): the weighting filter; ``"none"``: the
        weighted fields repeat the unweighted ones.
    search_fraction : float
        The tone is looked for within ``f0 * (1 +- search_fraction)``.

    Returns
    -------
    WowFlutter
    """
    x = _as_signal(signal, "signal")
    sr = _positive(sr, "sr")
    f0 = _positive(f0, "f0")
    weighting = _weighting_name(weighting)
    if not 0 < search_fraction < 0.5:
        raise ParameterError(f"search_fraction must be in (0, 0.5); got {search_fraction}")
    if f0 * (1 + search_fraction) >= 0.45 * sr:
        raise ParameterError(f"f0 = {f0} Hz is too close to the Nyquist frequency {sr / 2} Hz")
    carrier = _strongest_peak(x, sr=sr, band=(f0 * (1 - search_fraction),
                                              f0 * (1 + search_fraction)))
    half_width = min(0.45 * carrier, max(300.0, 0.1 * carrier))
    tone = band_limit(x, sr=sr, band=(carrier - half_width, carrier + half_width))
    analytic = _analytic(tone)
    edge = int(np.ceil(max(0.05, 10 / half_width) * sr))
    if analytic.size <= 2 * edge + int(1.0 * sr):
        raise ParameterError(f"signal too short for wow & flutter: {x.size / sr:.2f} s; "
                             "give at least 1.5 s (5 s or more recommended)")
    analytic = analytic[edge:analytic.size - edge]
    # Frequency from the phase advance between samples: no unwrapping, no bias.
    inst_hz = np.angle(analytic[1:] * np.conj(analytic[:-1])) * sr / (2 * np.pi)
    mean_hz = float(np.mean(inst_hz))
    step = max(1, int(sr // _FLUTTER_RATE_HZ))
    rate = sr / step
    deviation = sps.resample_poly(inst_hz / mean_hz - 1, 1, step) if step > 1 else inst_hz / mean_hz - 1
    unweighted = band_limit(deviation, sr=rate, band=(None, 200.0))
    unweighted -= unweighted.mean()
    weighted = _apply_flutter_weighting(deviation - deviation.mean(), rate) if weighting == "iec" \
        else unweighted
    if weighting == "iec":
        settle = int(min(_FLUTTER_SETTLE_S, 0.25 * weighted.size / rate) * rate)
        weighted = weighted[settle:]
    return WowFlutter(
        weighted_peak_percent=100 * _two_sigma_peak(weighted),
        weighted_rms_percent=100 * float(np.sqrt(np.mean(weighted ** 2))),
        unweighted_peak_percent=100 * _two_sigma_peak(unweighted),
        unweighted_rms_percent=100 * float(np.sqrt(np.mean(unweighted ** 2))),
        mean_frequency_hz=mean_hz,
        speed_error=mean_hz / f0 - 1,
        deviation=unweighted,
        weighted_deviation=weighted,
        rate_hz=rate,
        weighting=weighting,
    )


def _analytic(x):
    """Analytic signal (``scipy.signal.hilbert``), padded to a fast FFT length."""
    n = x.size
    return sps.hilbert(x, N=sp_fft.next_fast_len(n))[:n]


def _two_sigma_peak(x) -> float:
    return float(np.percentile(np.abs(x), 95))


def _weighting_name(weighting) -> str:
    key = str(weighting).lower().replace("-", "").replace(" ", "")
    if key in {"iec", "iec386", "iec60386", "aes6", "din", "din45507", "weighted"}:
        return "iec"
    if key in {"none", "unweighted", "flat"}:
        return "none"
    raise ParameterError(f"unknown weighting {weighting!r}; use 'iec' or 'none'")


def _flutter_weighting_zpk():
    """Analog zeros, poles (rad/s) and gain of the weighting filter, 0 dB at 4 Hz."""
    w = {k: 2 * np.pi * v for k, v in _FLUTTER_WEIGHTING.items() if k.endswith("_hz")}
    q = _FLUTTER_WEIGHTING["highpass2_q"]
    w2 = w["highpass2_hz"]
    quadratic = np.roots([1.0, w2 / q, w2 * w2])
    zeros = np.zeros(3)
    poles = np.r_[-w["lowpass_hz"], -w["highpass1_hz"], quadratic]
    gain = w["lowpass_hz"]
    s = 2j * np.pi * 4.0
    at_4hz = gain * np.prod(s - zeros) / np.prod(s - poles)
    return zeros, poles, gain / abs(at_4hz)


def _flutter_weighting_analog(f):
    zeros, poles, gain = _flutter_weighting_zpk()
    s = 2j * np.pi * np.asarray(f, dtype=np.float64)[..., None]
    return gain * np.prod(s - zeros, axis=-1) / np.prod(s - poles, axis=-1)


def _flutter_weighting_sos(rate):
    zeros, poles, gain = _flutter_weighting_zpk()
    z, p, k = sps.bilinear_zpk(zeros, poles, gain, fs=rate)
    return sps.zpk2sos(z, p, k)


def _apply_flutter_weighting(deviation, rate):
    """Causal weighting (like a meter), started in the steady state of the first value."""
    sos = _flutter_weighting_sos(rate)
    zi = sps.sosfilt_zi(sos) * deviation[0]
    out, _ = sps.sosfilt(sos, deviation, zi=zi)
    return out
