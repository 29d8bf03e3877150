"""Noise spectrum estimation and Wiener-type noise suppression."""
from __future__ import annotations

import numpy as np
from scipy import signal as sps
from scipy import stats
from scipy.ndimage import median_filter, uniform_filter1d

from ..errors import ParameterError
from ._regions import _as_signal, _check_positive, _output_dtype
from .results import NoisePSD


# --------------------------------------------------------------------------------------
# Noise spectrum
# --------------------------------------------------------------------------------------
_NOISE_METHODS = ("minimum", "quiet", "difference")


def estimate_noise_psd(
    signal,
    *,
    sr: float,
    nperseg: int = 1024,
    method: str = "minimum",
    reference=None,
    quantile: float = 0.1,
) -> NoisePSD:
    """Estimate the noise floor's power spectral density from the data.

    Parameters
    ----------
    signal : array_like, shape (n,)
        The noisy signal (or, for ``"difference"``, one of two measurements).
    sr : float
        Sample rate, Hz.
    nperseg : int, default 1024
        Segment length, samples (21 ms at 48 kHz: 47 Hz resolution).
    method : {"minimum", "quiet", "difference"}, default "minimum"
        * ``"minimum"`` — minimum statistics: per frequency, the `quantile` over time
          of the periodogram smoothed over 8 frames, divided by the same quantile of
          noise alone (a gamma distribution), then median-filtered over 15 bins to
          remove sustained tones. Unbiased where the music leaves at least a fraction
          `quantile` of the time to the noise (pauses, lead-in, between phrases);
          where music never pauses at some frequency, it overestimates the noise there
          — prefer ``"difference"`` whenever two measurements exist.
        * ``"quiet"`` — mean spectrum of the quietest `quantile` of the frames (by
          total power); simple, good when whole frames are silent.
        * ``"difference"`` — PSD of ``(signal - reference) / 2``. For two measurements
          of the same signal with independent noises of equal spectrum (the two groove
          walls), this equals the noise PSD of their mean ``(signal + reference) / 2``,
          whatever the music does.
    reference : array_like, shape (n,), optional
        The second measurement; required by, and only used by, ``"difference"``.
    quantile : float, default 0.1
        Fraction of time (frames) assumed free of signal, for ``"minimum"``/``"quiet"``.

    Returns
    -------
    NoisePSD
        ``freqs_hz`` and one-sided ``psd`` (unit² / Hz, :func:`scipy.signal.welch`
        density scaling); unpacks as ``freqs_hz, psd``.

    Examples
    --------
    >>> import numpy as np
    >>> noise = np.random.default_rng(0).standard_normal(96_000)
    >>> freqs, psd = estimate_noise_psd(noise, sr=48_000, method="quiet", quantile=0.5)
    >>> bool(abs(10 * np.log10(np.median(psd) / (2 / 48_000))) < 1.0)
    True
    """
    x = _as_signal(signal, "signal")
    sr = _check_positive(sr, "sr")
    nperseg = _check_positive(nperseg, "nperseg", integer=True)
    if method not in _NOISE_METHODS:
        raise ParameterError(f"method must be one of {_NOISE_METHODS}, got {method!r}")
    if not 0 < quantile < 1:
        raise ParameterError(f"quantile must be between 0 and 1, got {quantile!r}")
    if not np.isfinite(x).all():
        raise ParameterError("signal contains NaN or inf; repair it first (repair_gaps)")
    if len(x) < 2 * nperseg:
        raise ParameterError(
            f"signal has {len(x)} samples; need at least 2 * nperseg = {2 * nperseg}, "
            "pass a smaller nperseg"
        )

    if method == "difference":
        if reference is None:
            raise ParameterError('method="difference" needs reference=, the second measurement')
        ref = _as_signal(reference, "reference")
        if ref.shape != x.shape:
            raise ParameterError(
                f"reference has shape {ref.shape} but signal {x.shape}; they must match"
            )
        freqs, psd = sps.welch((x - ref) / 2, fs=sr, nperseg=nperseg, window="hann")
        return NoisePSD(freqs, psd, method, nperseg)

    freqs, _, spec = sps.stft(
        x, fs=sr, window="hann", nperseg=nperseg, noverlap=nperseg // 2,
        boundary=None, padded=False, detrend=False,
    )
    power = np.abs(spec) ** 2  # (freq, frame), |X|^2 in stft's "spectrum" scaling
    if method == "minimum":
        bin_power = _minimum_statistics(power, quantile)
    else:
        frame_power = power.sum(axis=0)
        quiet = frame_power <= np.quantile(frame_power, quantile)
        bin_power = power[:, quiet].mean(axis=1)
    return NoisePSD(freqs, bin_power / _bin_power_per_psd(freqs, sr, nperseg), method, nperseg)


def _minimum_statistics(
    power: np.ndarray, quantile: float, n_smooth: int = 8, n_bins: int = 15
) -> np.ndarray:
    """Bias-corrected low quantile over time of the periodogram, per frequency bin.

    The result is median-filtered over `n_bins` bins: a sustained tone, which never
    leaves its bins to the noise, is narrower than that and is removed, while a smooth
    noise spectrum passes unchanged (the running median of a monotonic curve is the
    curve itself).
    """
    n_smooth = min(n_smooth, power.shape[1])
    smoothed = uniform_filter1d(power, size=n_smooth, axis=1, mode="nearest")
    # Noise alone: each bin's power is exponential (chi-square, 2 dof); the mean of
    # n_smooth half-overlapping Hann frames behaves like a gamma variable with about
    # 0.9 * n_smooth degrees of freedom (overlap correlates neighbours a little).
    dof = max(0.9 * n_smooth, 1.0)
    bias = stats.gamma.ppf(quantile, a=dof) / dof
    floor = np.quantile(smoothed, quantile, axis=1) / bias
    return median_filter(floor, size=min(n_bins, len(floor)), mode="nearest")


def _bin_power_per_psd(freqs: np.ndarray, sr: float, nperseg: int) -> np.ndarray:
    """Expected Hann-window STFT ``|X|^2`` per unit of one-sided PSD, per bin.

    ``stft`` divides by ``sum(w)``, so noise of variance σ² gives
    ``E|X|^2 = σ² sum(w²) / sum(w)²``; the one-sided PSD is ``2 σ² / sr`` except at
    DC and Nyquist, where it is ``σ² / sr``.
    """
    w = sps.get_window("hann", nperseg)
    enbw = np.sum(w**2) / np.sum(w) ** 2
    factor = np.full(len(freqs), sr / 2 * enbw)
    factor[0] *= 2
    if nperseg % 2 == 0:
        factor[-1] *= 2
    return factor


# --------------------------------------------------------------------------------------
# Noise suppression
# --------------------------------------------------------------------------------------
def denoise(
    audio,
    *,
    sr: float,
    noise_psd=None,
    strength: float = 1.0,
    floor_db: float = -20.0,
    nperseg: int = 1024,
    smoothing: float = 0.98,
) -> np.ndarray:
    """Suppress stationary noise of known (or estimated) spectrum.

    Short-time Fourier transform (Hann window, 75 % overlap), a Wiener gain per bin
    ``xi / (1 + xi)`` with the a-priori SNR ``xi`` from the decision-directed estimate
    (Ephraim & Malah: `smoothing` of the previous frame's cleaned power, the rest from
    the current frame), floored at `floor_db` so the residual noise stays a smooth hiss
    rather than "musical" chirps, and the inverse STFT.

    Parameters
    ----------
    audio : array_like, shape (n,)
        Noisy audio, any unit.
    sr : float
        Sample rate, Hz.
    noise_psd : NoisePSD or (freqs_hz, psd) or ndarray, optional
        One-sided noise PSD in the audio's unit² / Hz (as from
        :func:`estimate_noise_psd`); interpolated onto the STFT bins. A bare array must
        have ``nperseg // 2 + 1`` values. Default: estimated from `audio` with
        ``method="minimum"``.
    strength : float, default 1.0
        Multiplies the noise estimate: above 1 removes more noise (and some music).
    floor_db : float, default -20.0
        Lowest gain, dB. The noise is attenuated by at most this much.
    nperseg : int, default 1024
        STFT frame, samples (21 ms at 48 kHz).
    smoothing : float, default 0.98
        Decision-directed smoothing constant, 0–1. Higher: less musical noise, slower
        response to onsets.

    Returns
    -------
    ndarray, shape (n,)
        Denoised audio, same length; same dtype as the input if floating, else float32.

    Notes
    -----
    The SNR gained depends on how the noise and the music share the spectrum. Against
    blue (6 dB/octave) noise on music-like audio band-limited to 2.5 kHz, the tests
    measure +11.6 dB at 7.5 dB input SNR with the true noise PSD, and +15.6 dB at
    -3 dB input SNR with the default estimate on music with pauses. The default
    estimate needs pauses: on music that never stops, pass a PSD measured with
    ``estimate_noise_psd(..., method="difference")`` from the two walls instead.
    Peak memory: about 10 float64 copies of the signal (the complex STFT at 4x overlap).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(96_000) / 48_000
    >>> clean = np.sin(2 * np.pi * 440 * t)
    >>> noisy = clean + 0.3 * rng.standard_normal(t.size)
    >>> out = denoise(noisy, sr=48_000, noise_psd=np.full(513, 2 * 0.3**2 / 48_000))
    >>> bool(np.mean((out - clean) ** 2) < 0.1 * np.mean((noisy - clean) ** 2))
    True
    """
    out_dtype = _output_dtype(audio)
    x = _as_signal(audio, "audio")
    sr = _check_positive(sr, "sr")
    nperseg = _check_positive(nperseg, "nperseg", integer=True)
    strength = _check_positive(strength, "strength", allow_zero=True)
    if not 0 <= smoothing < 1:
        raise ParameterError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if not np.isfinite(x).all():
        raise ParameterError("audio contains NaN or inf; repair it first (repair_gaps)")
    if len(x) < nperseg:
        raise ParameterError(f"audio has {len(x)} samples, fewer than nperseg={nperseg}")

    if noise_psd is None:
        noise_psd = estimate_noise_psd(x, sr=sr, nperseg=nperseg, method="minimum")
    noverlap = 3 * nperseg // 4
    freqs, _, spec = sps.stft(x, fs=sr, window="hann", nperseg=nperseg, noverlap=noverlap)
    noise_psd_on_bins = strength * _noise_on_bins(noise_psd, freqs)
    noise_power = noise_psd_on_bins * _bin_power_per_psd(freqs, sr, nperseg)
    gain = _decision_directed_gain(
        np.abs(spec) ** 2, noise_power, smoothing=smoothing, floor=10 ** (floor_db / 20)
    )
    _, y = sps.istft(gain * spec, fs=sr, window="hann", nperseg=nperseg, noverlap=noverlap)
    y = y[: len(x)]
    if len(y) < len(x):
        y = np.pad(y, (0, len(x) - len(y)))
    return y.astype(out_dtype)


def _noise_on_bins(noise_psd, freqs: np.ndarray) -> np.ndarray:
    """The noise PSD on the STFT bin frequencies."""
    if isinstance(noise_psd, NoisePSD) or (isinstance(noise_psd, tuple) and len(noise_psd) == 2):
        src_freqs, psd = (np.asarray(a, dtype=np.float64) for a in noise_psd)
        return np.interp(freqs, src_freqs, psd)
    psd = np.asarray(noise_psd, dtype=np.float64)
    if psd.shape != freqs.shape:
        raise ParameterError(
            f"noise_psd has shape {psd.shape}, expected ({len(freqs)},) for this nperseg; "
            "pass a NoisePSD or (freqs_hz, psd) to have it interpolated"
        )
    return psd


def _decision_directed_gain(power, noise_power, *, smoothing, floor):
    """Wiener gains (freq, frame) with the decision-directed a-priori SNR."""
    noise = np.maximum(noise_power, np.finfo(float).tiny)[:, None]
    posterior = power / noise  # a-posteriori SNR, gamma
    gains = np.empty_like(posterior)
    cleaned = np.maximum(posterior[:, 0] - 1.0, 0.0)  # previous frame's |S|^2 / noise
    for frame in range(posterior.shape[1]):
        prior = smoothing * cleaned + (1 - smoothing) * np.maximum(posterior[:, frame] - 1.0, 0.0)
        gain = np.maximum(prior / (1.0 + prior), floor)
        gains[:, frame] = gain
        cleaned = gain**2 * posterior[:, frame]
    return gains
