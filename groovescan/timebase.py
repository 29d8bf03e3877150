"""From groove position against playing angle to audio at the output rate.

The walls are measured at a whole number of samples per turn, so angle *is* time:
``fs = samples_per_turn * rpm / 60``. One FFT then does the rest exactly: the time
derivative (lateral-cut records carry velocity), the band limit, the playback curve,
and the change of rate from ``fs`` to the output ``sr`` (an FFT of n samples read back
at ``n * sr / fs`` points), with no interpolation jitter.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import scipy.fft
from scipy import ndimage

from .eq import playback_response
from .errors import ParameterError

__all__ = ["RPM_PRESETS", "samples_per_turn", "check_rpm", "groove_audio", "default_band"]

RPM_PRESETS = {"78": 78.0, "78-50hz": 77.92, "78-60hz": 78.26, "45": 45.0, "33": 100 / 3}


def check_rpm(rpm) -> float:
    """Validate a turntable speed in rpm (a number or a preset name)."""
    if isinstance(rpm, str):
        key = rpm.lower().replace(" ", "")
        if key in RPM_PRESETS:
            return RPM_PRESETS[key]
        try:
            rpm = float(key)
        except ValueError:
            raise ParameterError(f"unknown speed {rpm!r}; give rpm as a number (e.g. 78, 33.333) "
                                 f"or one of {', '.join(RPM_PRESETS)}") from None
    rpm = float(rpm)
    if not 10.0 <= rpm <= 200.0:
        raise ParameterError(f"rpm={rpm:g} is not a record speed; use 16-200 (78, 45, 33.333 ...)")
    return rpm


def _is_smooth(n, primes):
    """True if ``n`` has no prime factor outside ``primes`` (fast FFT sizes)."""
    for p in primes:
        while n % p == 0:
            n //= p
    return n == 1


def _largest_prime_factor(n):
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n) if n > 1 else largest


def samples_per_turn(*, sr, rpm) -> int:
    """Samples per revolution: the first 7-smooth number at or above ``sr * 60 / rpm``.

    At least ``sr`` samples a second keep the output band; a number with only small
    prime factors keeps the exact change of rate to ``sr`` an FFT of fast length.
    """
    n = int(np.ceil(sr * 60.0 / rpm - 1e-9))
    while not _is_smooth(n, (2, 3, 5, 7)):
        n += 1
    return n


def default_band(rpm) -> tuple[float, float]:
    """Audio band kept by default (Hz): shellac and bone records carry little above 8 kHz."""
    return (30.0, 8000.0) if rpm > 60 else (20.0, 18000.0)


def _remove_slow_path(x, width):
    """Subtract a smooth version so the FFT sees no huge ramp (the spiral's drift).

    Three passes of a box approximate a Gaussian: its side lobes, which would leak
    audio into the subtracted path, fall as the cube of a single box's.
    """
    slow = x
    for _ in range(3):
        slow = ndimage.uniform_filter1d(slow, width, mode="nearest")
    return x - slow


def _band_taper(freqs, lo, hi):
    """Raised-cosine band-pass over one octave at each edge (zero phase)."""
    gain = np.ones_like(freqs)
    if lo > 0:
        a, b = lo / 2, lo
        gain = np.where(freqs <= a, 0.0, np.where(freqs < b, 0.5 - 0.5 * np.cos(np.pi * (freqs - a) / (b - a)), gain))
    if hi is not None:
        a, b = hi, hi * 1.25
        gain = np.where(freqs >= b, 0.0, np.where(freqs > a, 0.5 + 0.5 * np.cos(np.pi * (freqs - a) / (b - a)), gain))
    return gain


def _exact_lengths(n_min, fs, sr):
    """FFT lengths in and out whose ratio is exactly ``sr / fs``.

    Rounding the output length would change the speed by up to 1/n, which drifts
    the phase of high notes over a long side; a whole multiple of the ratio's
    denominator costs a little more FFT time and keeps the timebase exact.
    """
    ratio = Fraction(sr).limit_denominator(10**6) / Fraction(fs).limit_denominator(10**6)
    d = ratio.denominator
    if d > n_min or _largest_prime_factor(d) > 1000:
        # only for pathological rates: rounding the length puts the speed off by up
        # to 0.5 / n, half a sample over the whole output
        n_fft = scipy.fft.next_fast_len(n_min, real=True)
        return n_fft, int(round(n_fft * sr / fs))
    # a prime such as 487 (77.92 rpm) costs the FFT about twice the time, not more
    n_fft = d * scipy.fft.next_fast_len(-(-n_min // d), real=True)
    return n_fft, n_fft * ratio.numerator // d


def groove_audio(displacement_m, *, fs, sr, curve="flat", band=(30.0, 8000.0)):
    """Audio at ``sr`` from lateral displacement (m) sampled at ``fs`` Hz.

    Parameters
    ----------
    displacement_m : (n,) array
        Lateral groove displacement, metres, no NaN (repair gaps first).
    fs : float
        Sample rate of the displacement (``samples_per_turn * rpm / 60``).
    sr : int
        Output sample rate, Hz.
    curve : str
        Playback curve (:mod:`groovescan.eq`); "flat" gives groove velocity (m/s).
    band : (lo, hi)
        Pass band, Hz; smooth one-sided tapers outside it.

    Returns
    -------
    audio : (round(n * sr / fs),) float32
    """
    x = np.asarray(displacement_m, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("displacement contains NaN; repair or fill gaps first")
    lo, hi = band
    hi = min(hi, 0.45 * min(sr, fs)) if hi else 0.45 * min(sr, fs)
    x = _remove_slow_path(x, max(3, int(fs / max(lo / 3, 1.0))))
    n = x.size
    n_fft, n_out_fft = _exact_lengths(n + int(0.1 * n) + 64, fs, sr)
    spectrum = scipy.fft.rfft(x, n_fft)
    freqs = scipy.fft.rfftfreq(n_fft, 1.0 / fs)
    spectrum *= 2j * np.pi * freqs                      # displacement -> velocity
    spectrum *= _band_taper(freqs, lo, hi)
    spectrum *= playback_response(curve, freqs)
    n_bins_out = n_out_fft // 2 + 1
    if n_bins_out <= spectrum.size:
        spectrum = spectrum[:n_bins_out]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(n_bins_out - spectrum.size, spectrum.dtype)])
    audio = scipy.fft.irfft(spectrum, n_out_fft) * (n_out_fft / n_fft)
    return audio[:int(round(n * sr / fs))].astype(np.float32)
