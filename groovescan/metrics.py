"""Objective measures of a decode: SNR after alignment, THD+N, frequency response, wow & flutter.

These functions judge the decoder's round trips (render a scan from known audio, decode
it, compare with the audio), so they are built to be hard to fool:

* :func:`compare` forgives only what a turntable would also forgive -- a delay, a gain,
  the polarity, a constant speed error and slow wow -- and reports each of them
  separately. Noise, clicks, distortion, and skipped or repeated groove turns stay in
  the error.
* The alignment has few degrees of freedom (a smooth lag curve per stretch between
  skips), so it cannot follow noise: an unrelated signal scores at or below 0 dB.

Conventions
-----------
Signals are 1-D arrays sampled at ``sr`` Hz. Times are in seconds. A *lag* is decoded
time minus reference time: the sample of the reference at time ``t`` is found in the
decode at time ``t + lag(t)`` (positive: the decode is late). SNRs are power ratios in
dB. Everything is computed in float64: SNRs of 60 dB and lags of nanoseconds need it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, optimize, sparse
from scipy import signal as sps
from scipy.interpolate import BSpline
from scipy.sparse import linalg as sparse_linalg

from .errors import ParameterError

__all__ = [
    "AlignmentWarning",
    "Comparison",
    "FrequencyResponse",
    "LagTrack",
    "ThdN",
    "WowFlutter",
    "band_limit",
    "compare",
    "flutter_weighting_db",
    "frequency_response",
    "snr_db",
    "thd_n",
    "wow_flutter",
]


class AlignmentWarning(UserWarning):
    """The decode could be aligned with the reference only partly, or not at all."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class LagTrack:
    """Local lags measured along the reference, and the smooth model fitted to them.

    Attributes
    ----------
    times_s : ndarray, shape (n,)
        Window centres on the reference timebase (s).
    lag_s : ndarray, shape (n,)
        Measured local lag, decoded time minus reference time (s); NaN where none was
        measured (silence, no match).
    confidence : ndarray, shape (n,)
        Magnitude of the normalised cross-correlation at the lag (0..1); 0 where none.
    weight : ndarray, shape (n,)
        Relative weight of the window in the final fit (0..1); 0 = not used (silent,
        no match, or rejected as an outlier).
    fitted_lag_s : ndarray, shape (n,)
        The smooth lag model (delay + speed + wow) at ``times_s`` (s); NaN outside pieces.
    piece : ndarray of int, shape (n,)
        Index of the continuous stretch (between skips) the window belongs to; -1 if none.
    """

    times_s: np.ndarray
    lag_s: np.ndarray
    confidence: np.ndarray
    weight: np.ndarray
    fitted_lag_s: np.ndarray
    piece: np.ndarray


@dataclass(frozen=True, eq=False)
class Comparison:
    """How well a decode matches its reference, and how their timebases differ.

    Attributes
    ----------
    snr_db : float
        In-band SNR after alignment (dB): reference power over error power, with the
        decode modelled as ``gain * polarity * reference + error``. Reference stretches
        with no counterpart in the decode (skipped turns) count as error, and so does
        decoded material the alignment had to jump over (repeated turns).
        ``-inf`` if the decode is silent.
    segmental_snr_db : float
        Mean over ``segment_s`` segments of their SNR in dB, each clipped to
        ``segment_clip_db``; segments 40 dB below the mean reference power are left out.
    delay_s : float
        Lag of the constant-speed fit at reference time 0 (s): positive if the decode
        is late.
    gain : float
        Magnitude of the decode's gain relative to the reference (least squares of the
        decode on the reference, so noise in the decode does not bias it).
    polarity : int
        +1, or -1 if the decode is inverted.
    speed_error : float
        Constant speed error as a fraction: +0.01 means the decode plays 1 % fast
        (it is 1 % shorter, pitches are 1 % high).
    wow_percent : float
        Peak (0-to-peak) of the slow speed variation left after removing the constant
        speed, in % of speed, for variations slower than about ``wow_max_hz``.
    wow_rms_percent : float
        RMS of the same speed variation, in %.
    skips : tuple of (float, int)
        ``(time_s, revolutions)`` for every lag jump of a whole number of turns
        (needs ``rpm``): ``time_s`` is the reference time where it happens (to about
        ``2 / band[0]`` s: the band filter smears the splice),
        ``revolutions`` is -1 for a skipped turn (reference material missing from
        the decode), +1 for a repeated one, -2 for two skipped turns, ...
    n_skips : int
        ``len(skips)``.
    jumps : tuple of (float, float)
        ``(time_s, jump_s)`` for every lag discontinuity found, whole turns or not.
    lag_track : LagTrack
        The local lags and the model used for the alignment.
    segment_times_s, segment_snr_db : ndarray
        Centre time (s) and clipped SNR (dB, NaN for silent segments) of each segment.
    coverage : float
        Fraction of the reference duration that was compared (the rest had no decoded
        counterpart, lay before the first or after the last measured lag, or was
        lost to filter edges).
    matched_fraction : float
        Fraction of the compared span where a decoded counterpart was found.
    aligned : ndarray, shape like the reference, float32
        The decode warped onto the reference timebase, band-limited and divided by
        ``gain * polarity``: it should equal ``band_limit(reference, sr=sr, band=band)``
        (to -80 dB); NaN where not compared.
    band : (float, float)
        The band (Hz) the SNRs refer to.
    sr : float
        Sample rate (Hz).
    status : str
        ``"ok"``, ``"partial"`` (less than 80 % of the non-silent windows matched) or
        ``"no-alignment"`` (no match found anywhere; the SNR is then computed without
        alignment and ``delay_s``, ``speed_error`` and the wow are NaN).
    """

    snr_db: float
    segmental_snr_db: float
    delay_s: float
    gain: float
    polarity: int
    speed_error: float
    wow_percent: float
    wow_rms_percent: float
    skips: tuple
    n_skips: int
    jumps: tuple
    lag_track: LagTrack
    segment_times_s: np.ndarray
    segment_snr_db: np.ndarray
    coverage: float
    matched_fraction: float
    aligned: np.ndarray
    band: tuple
    sr: float
    status: str


@dataclass(frozen=True, eq=False)
class ThdN:
    """Total harmonic distortion plus noise of a tone.

    Attributes
    ----------
    f0_hz : float
        Measured frequency of the tone (Hz).
    fundamental_rms : float
        RMS of the fitted fundamental (signal units).
    thd_n_ratio : float
        RMS of everything but the fundamental, within ``band``, over the RMS of the
        whole band-limited signal (the AES17 convention).
    thd_n_db : float
        ``20 log10(thd_n_ratio)``.
    thd_ratio : float
        RMS of harmonics 2, 3, ... (those inside ``band``) over the fundamental's RMS.
    thd_db : float
        ``20 log10(thd_ratio)``.
    harmonic_rms : ndarray
        RMS of harmonics 2, 3, ... (signal units).
    noise_rms : float
        RMS of what is neither the fundamental nor a harmonic (signal units).
    band : (float, float)
        Measurement band (Hz).
    """

    f0_hz: float
    fundamental_rms: float
    thd_n_ratio: float
    thd_n_db: float
    thd_ratio: float
    thd_db: float
    harmonic_rms: np.ndarray
    noise_rms: float
    band: tuple


@dataclass(frozen=True, eq=False)
class FrequencyResponse:
    """Gain of a decode relative to its reference in fractional-octave bands.

    Attributes
    ----------
    freqs_hz : ndarray, shape (n,)
        Band centres (Hz).
    band_edges_hz : ndarray, shape (n, 2)
        Lower and upper band edges (Hz).
    gain_db : ndarray, shape (n,)
        Decode over reference in each band (dB), the reference-power-weighted mean of
        ``|H|^2`` over the band; NaN where the band holds fewer than two spectral bins
        or no reference power.
    coherence : ndarray, shape (n,)
        Reference-power-weighted magnitude-squared coherence in each band (0..1): low
        values mean the gain there is dominated by noise.
    delay_s, speed_error : float
        From the alignment (see :class:`Comparison`).
    polarity : int
        +1 or -1.
    status : str
        Alignment status, as in :class:`Comparison`.
    """

    freqs_hz: np.ndarray
    band_edges_hz: np.ndarray
    gain_db: np.ndarray
    coherence: np.ndarray
    delay_s: float
    speed_error: float
    polarity: int
    status: str


@dataclass(frozen=True, eq=False)
class WowFlutter:
    """Speed variation measured on a test tone.

    Attributes
    ----------
    weighted_peak_percent : float
        Two-sigma peak of the weighted deviation in % of speed: the magnitude exceeded
        5 % of the time (AES6 reading; equals the amplitude of a steady sinusoidal
        wow, like the quasi-peak meter of IEC 60386).
    weighted_rms_percent : float
        RMS of the weighted deviation (%).
    unweighted_peak_percent, unweighted_rms_percent : float
        The same for the deviation low-passed at 200 Hz, mean removed.
    mean_frequency_hz : float
        Mean frequency of the tone (Hz).
    speed_error : float
        ``mean_frequency_hz / f0 - 1``: +0.01 = 1 % fast.
    deviation : ndarray
        Unweighted relative frequency deviation (fraction, mean removed).
    weighted_deviation : ndarray
        The weighted deviation (fraction), settling time removed.
    rate_hz : float
        Sample rate of ``deviation`` and ``weighted_deviation`` (Hz).
    weighting : str
        ``"iec"`` or ``"none"``.
    """

    weighted_peak_percent: float
    weighted_rms_percent: float
    unweighted_peak_percent: float
    unweighted_rms_percent: float
    mean_frequency_hz: float
    speed_error: float
    deviation: np.ndarray
    weighted_deviation: np.ndarray
    rate_hz: float
    weighting: str


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


# --------------------------------------------------------------------------- compare

# Alignment, in five steps (see compare's notes):
_SEED_CHUNK_S = 0.5          # reference chunk searched over (lag, speed) to start
_SEED_CANDIDATES = 4         # chunks tried, the loudest of as many stretches
_SEED_SIGMAS = 7.0           # a seed must beat chance correlation by this many sigma
_SEED_BAND_FRACTION = 0.2    # seed band holds at least this fraction of the energy
_TRACK_RADIUS_S = 0.005      # lag search either side of the prediction, window to window
_FIRST_RADIUS_S = 0.02       # wider on the first window: the seed used a narrower band
_LOCK_SIGMAS = 5.0           # a match must beat chance correlation by this many sigma
_LOCK_RELATIVE = 0.25        # ... and reach this fraction of the typical correlation
_WIDE_SIGMAS = 7.0           # a re-acquired lag (searched over seconds) likewise
_WIDE_RELATIVE = 0.5         # ... and must reach this fraction of the typical correlation
# Tones and chords have so few degrees of freedom that chance correlation is high and
# the sigma rules above could never be met; a correlation this high always counts:
_SURE_MATCH = 0.7            # ... for a seed or a jump
_SURE_LOCK = 0.5             # ... for holding on to a lag
_TIE = 0.01                  # peaks this close to the best are ties: take the simplest
_MIN_MATCHED = 0.8           # below this fraction of loud windows matched: "partial"
_MIN_PIECE_WINDOWS = 3       # shorter stretches are treated as spurious
_SILENT_DB = -40.0           # windows this far below the loud ones carry no lag
_REFINE_ITERATIONS = 4       # Gauss-Newton steps per window
_CURVE_PASSES = 2            # re-measurements along the fitted lag curve
_SMOOTHING = 1e-4            # curvature penalty of the lag spline, relative to the data
_IRLS_ITERATIONS = 5
_TUKEY_C = 4.685             # biweight constant (95 % efficiency for Gaussian errors)
_LATER_PENALTY = 0.25        # where two stretches both fit, the earlier one is kept
# a jump within 3 % of whole turns is a skip: the decode's timebase holds exactly
# 60 / rpm s a turn, so a groove jump shifts the lag by that, give or take the
# lag fit's milliseconds; repeated music matches at other lags too
_REVOLUTION_TOLERANCE = 0.03
_CLUSTER_S = 2.0             # jumps closer than this are one wander of the comparison


def compare(
    decoded,
    reference,
    *,
    sr: float,
    band=(100.0, 5000.0),
    rpm: float | None = None,
    max_delay_s: float = 2.0,
    max_speed_error: float = 0.05,
    window_s: float = 0.1,
    wow_max_hz: float = 3.0,
    segment_s: float = 0.05,
    segment_clip_db=(-10.0, 60.0),
) -> Comparison:
    """SNR of a decode against its reference, after an alignment that forgives delay,
    gain, polarity, a constant speed error and slow wow, each reported separately.

    Parameters
    ----------
    decoded : array_like, shape (n_dec,)
        The decoder's output at ``sr`` Hz.
    reference : array_like, shape (n_ref,)
        The truth (e.g. the groove velocity the scan was rendered from) at ``sr`` Hz.
    sr : float
        Sample rate of both (Hz); resample first if they differ.
    band : (float, float)
        Band (Hz) in which signals are aligned and compared; the high edge must be
        below 0.95 times the Nyquist frequency.
    rpm : float, optional
        The speed the decode's timebase assumes (revolutions per minute). Needed to
        classify lag jumps as skipped or repeated turns of ``60 / rpm`` s, and to tell
        the comparison's brief locks elsewhere (not whole turns off the decode's line)
        from the decode's own excursions.
    max_delay_s : float
        Largest delay (s) at reference time 0, and largest lag jump, searched for.
    max_speed_error : float
        Largest constant speed error searched for (fraction).
    window_s : float
        Length (s) of the windows in which local lags are measured (hop: half of it).
    wow_max_hz : float
        Fastest time-warp followed (Hz); the lag spline has knots every
        ``1 / (4 wow_max_hz)`` s. Faster speed variation (flutter) stays in the error.
    segment_s : float
        Segment length (s) of the segmental SNR.
    segment_clip_db : (float, float)
        Clip range (dB) of each segment's SNR.

    Returns
    -------
    Comparison

    Raises
    ------
    ParameterError
        Signals not 1-D, not finite, too short or silent (reference); band or other
        options out of range.

    Warns
    -----
    AlignmentWarning
        When no part, or less than half, of the decode could be aligned.

    Notes
    -----
    1. Both signals are band-limited (:func:`band_limit`).
    2. *Seed*: the loudest half-second chunks of the reference are searched in the
       decode over all lags within ``max_delay_s`` and a grid of speeds within
       ``max_speed_error``, in a low sub-band that holds a fifth of the energy
       (broadband signals decorrelate under a few % of speed error; a narrow band
       keeps the grid coarse).
    3. *Track*: window by window away from the seed, the local lag is the peak of the
       normalised cross-correlation (speed-compensated, sub-sample by parabolic
       interpolation) near the predicted lag. When the match is lost, a wide search
       looks for a confirmed jump (a skip or repeat) and starts a new *piece*. A
       piece that only interrupts a continuing lag line for a moment (music matched
       elsewhere while the decode was unreadable) is dropped, unless it lies whole
       turns off the line.
    4. *Refine and fit*: each window's lag is refined on its own by Gauss-Newton
       steps on the interpolated decode (unbiased at any fractional lag) and weighted
       by its Fisher information; each piece's lags are fitted by a robust (Tukey
       biweight) penalised cubic spline: delay + speed + wow. The windows are then
       re-measured along the fitted curve (so wow inside a window does not bias its
       lag) and re-fitted, twice.
    5. *Join*: between two pieces the sample where one ends and the other begins, and
       any reference stretch matching neither, are found by minimising the error;
       where both fit (a repeated turn), the earlier piece is kept, so a repeat is
       reported where the decode goes back.

    A reference must pin the timebase down: noise and music do. A tone or chord
    repeats every period (ties go to the lag nearest the prediction, so a decode
    compared with itself is not shifted), and for a logarithmic sweep a delay is
    indistinguishable from a speed error: compare sweeps with a small
    ``max_speed_error``, or use :func:`frequency_response`, which does not mind.

    The wide-band decode is then warped onto the reference timebase by quintic-spline
    interpolation of an oversampled copy (error < -90 dB) and band-limited there, so
    that the band filter treats both signals alike whatever the speed error; the gain
    is fitted by least squares of the decode on the reference. Compared are the
    reference samples between the first and last measured lag, more than
    ``3 / band[0]`` s (filter transients) from either signal's ends. Peak memory is
    about 20 float64 copies of the longer signal (x4 oversampled copy included); a
    3-minute 44.1 kHz pair takes of the order of 30 s.
    """
    ref = _as_signal(reference, "reference")
    dec = _as_signal(decoded, "decoded")
    sr = _positive(sr, "sr")
    band = _closed_band(band, sr)
    options = _check_compare_options(rpm, max_delay_s, max_speed_error, window_s, wow_max_hz,
                                     segment_s, segment_clip_db)
    edge = _edge_samples(sr, band[0])
    _require_length(ref, sr, edge, window_s, "reference")
    _require_length(dec, sr, edge, window_s, "decoded")

    ref_band = band_limit(ref, sr=sr, band=band)
    dec_band = band_limit(dec, sr=sr, band=band)
    if not np.any(ref_band):
        raise ParameterError("reference is silent in the band; nothing to compare against")
    dec_sampler = _Sampler(dec_band, rate=sr, f_max=band[1])

    alignment = _align(ref_band, dec_band, dec_sampler, sr=sr, band=band,
                       max_delay_s=max_delay_s, max_speed_error=max_speed_error,
                       window_s=window_s, wow_max_hz=wow_max_hz,
                       turn_s=60.0 / rpm if rpm else None)
    score = _score(ref, dec, dec_band, alignment, sr=sr, band=band, edge=edge,
                   segment_s=segment_s, clip_db=options["segment_clip_db"])
    timing = _timing(alignment, wow_max_hz=wow_max_hz, window_s=window_s)
    jumps = _jumps(alignment)
    skips = _skips(jumps, rpm)
    return Comparison(
        snr_db=score["snr_db"],
        segmental_snr_db=score["segmental_snr_db"],
        delay_s=timing["delay_s"],
        gain=abs(score["gain"]),
        polarity=-1 if score["gain"] < 0 else 1,
        speed_error=timing["speed_error"],
        wow_percent=timing["wow_percent"],
        wow_rms_percent=timing["wow_rms_percent"],
        skips=skips,
        n_skips=len(skips),
        jumps=jumps,
        lag_track=alignment.track,
        segment_times_s=score["segment_times_s"],
        segment_snr_db=score["segment_snr_db"],
        coverage=score["coverage"],
        matched_fraction=score["matched_fraction"],
        aligned=score["aligned"],
        band=band,
        sr=sr,
        status=alignment.status,
    )


# --- the interpolating reader -------------------------------------------------------


class _Sampler:
    """A band-limited signal read at any time (s), zero outside its duration.

    Quintic B-spline interpolation of a copy oversampled so that its content lies
    below 1/8 of the rate: the interpolation error is then below -90 dB.
    """

    def __init__(self, x, *, rate: float, f_max: float | None = None, order: int = 5):
        x = np.asarray(x, dtype=np.float64)
        up = 1 if f_max is None else max(1, int(np.ceil(8.0 * f_max / rate)))
        samples = _upsample(x, up) if up > 1 else x
        self.rate = rate * up
        self.duration_s = (x.size - 1) / rate
        self.order = order
        self._coef = ndimage.spline_filter1d(samples, order=order, mode="mirror")

    def inside(self, t_s) -> np.ndarray:
        t_s = np.asarray(t_s)
        tolerance = 1e-6 / self.rate  # the last sample must not be lost to rounding
        return (t_s >= -tolerance) & (t_s <= self.duration_s + tolerance)

    def __call__(self, t_s) -> np.ndarray:
        t_s = np.asarray(t_s, dtype=np.float64)
        pos = (t_s * self.rate).reshape(1, -1)
        values = ndimage.map_coordinates(self._coef, pos, order=self.order, prefilter=False,
                                         mode="mirror").reshape(t_s.shape)
        return np.where(self.inside(t_s), values, 0.0)

    def derivative(self, t_s) -> np.ndarray:
        """Time derivative (units per second), by a central difference of the spline."""
        h = 0.5 / self.rate
        return (self(t_s + h) - self(t_s - h)) / (2 * h)


def _upsample(x, up):
    """Upsample by an integer factor, passing the original samples through unchanged.

    Kaiser-windowed sinc, 24 zero crossings each side, beta 9: error below -100 dB
    for content up to 0.7 times the input Nyquist frequency. (resample_poly's default
    filter is shorter and has a gain error of 6e-4, which would show up as ``gain``.)
    """
    half = 24 * up
    taps = sps.firwin(2 * half + 1, 1.0 / up, window=("kaiser", 9.0))
    taps /= taps[half] * up  # resample_poly multiplies by `up`; centre tap -> exactly 1
    return sps.resample_poly(x, up, 1, window=taps)


# --- step 2: seed -------------------------------------------------------------------


@dataclass(frozen=True)
class _Peak:
    lag_s: float
    rho: float   # signed normalised correlation at the peak


@dataclass(frozen=True)
class _Seed:
    time_s: float
    lag_s: float
    slope: float  # d(lag)/dt
    rho: float


def _local_peak(window, dec: _Sampler, *, rate, centre_s, lag_s, slope, radius_s) -> _Peak:
    """Correlation peak of a reference window (centred at ``centre_s``) in the decode.

    The decode is read along the predicted timebase ``u = centre + lag + (1 + slope)
    (t - centre)``, so a speed error does not smear the peak, at offsets up to
    ``radius_s`` either side.
    """
    m = window.size
    k_max = max(2, int(np.ceil(radius_s * rate)))
    scale = 1.0 + slope
    first_s = centre_s + lag_s - scale * ((m - 1) / 2 + k_max) / rate
    v = dec(first_s + scale * np.arange(m + 2 * k_max) / rate)
    c = sps.correlate(v, window, mode="valid")
    energy = np.concatenate([[0.0], np.cumsum(v * v)])
    sliding = energy[m:] - energy[:-m]
    denom = np.sqrt(np.maximum(sliding, 0.0) * np.dot(window, window))
    rho = np.divide(c, denom, out=np.zeros_like(c), where=denom > 1e-12 * denom.max() + 1e-300)
    k = _nearest_best_peak(np.abs(rho), k_max)
    offset = k + _parabolic_offset(np.abs(rho), k) - k_max
    return _Peak(lag_s=lag_s + scale * offset / rate, rho=float(rho[k]))


def _nearest_best_peak(a, centre) -> int:
    """Index of the local maximum of ``a`` nearest ``centre`` among those within
    ``_TIE`` of the highest. Periodic signals (tones, chords) correlate almost equally
    at every period; the prediction, not a rounding error, should pick one."""
    top = a.max()
    is_peak = np.r_[a[0] >= a[1], (a[1:-1] >= a[:-2]) & (a[1:-1] >= a[2:]), a[-1] >= a[-2]]
    candidates = np.flatnonzero(is_peak & (a >= (1 - _TIE) * top))
    if candidates.size == 0:
        return int(np.argmax(a))
    return int(candidates[np.argmin(np.abs(candidates - centre))])


def _parabolic_offset(y, k) -> float:
    """Sub-sample position of a peak at ``k`` from a parabola through three samples."""
    if k <= 0 or k >= y.size - 1:
        return 0.0
    curvature = y[k - 1] - 2 * y[k] + y[k + 1]
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (y[k - 1] - y[k + 1]) / curvature, -0.5, 0.5))


def _find_seed(ref_band, dec_band, *, sr, band, max_delay_s, max_speed_error) -> _Seed | None:
    top = _seed_band_top(ref_band, sr=sr, band=band)
    step = max(1, int(sr // (2.5 * top)))
    rate = sr / step
    seed_band = (band[0], top)
    ref = sps.resample_poly(band_limit(ref_band, sr=sr, band=seed_band), 1, step)
    # Cubic interpolation is plenty to locate a peak; the refinement is done later.
    dec = _Sampler(sps.resample_poly(band_limit(dec_band, sr=sr, band=seed_band), 1, step),
                   rate=rate, order=3)
    chunk = int(round(min(_SEED_CHUNK_S, ref.size / rate / 3) * rate))
    # Speed grid: the residual drift across the chunk stays below ~1/5 period of `top`.
    resolution = 0.8 / (2 * top * chunk / rate)
    slopes = _slope_grid(max_speed_error, resolution)
    # Trust a peak only well above chance; a line spectrum (few tones) has a lower
    # statistical bandwidth, so a higher chance level, than noise.
    needed = min(_SURE_MATCH,
                 _SEED_SIGMAS * _chance_rho(ref, rate=rate, band=seed_band, duration_s=chunk / rate))
    best = None
    for start in _loudest_chunks(ref, chunk, _SEED_CANDIDATES):
        window = ref[start:start + chunk]
        centre_s = (start + (chunk - 1) / 2) / rate
        # Centre each search on a zero delay at t = 0 for its speed.
        seeds = [_Seed(time_s=centre_s, lag_s=peak.lag_s, slope=slope, rho=peak.rho)
                 for slope in slopes
                 for peak in [_local_peak(window, dec, rate=rate, centre_s=centre_s,
                                          lag_s=slope * centre_s, slope=slope,
                                          radius_s=max_delay_s)]]
        top = max(abs(sd.rho) for sd in seeds)
        # Ties (periodic signals) go to the smallest speed error: slopes are in that order.
        chunk_best = next(sd for sd in seeds if abs(sd.rho) >= (1 - _TIE) * top)
        if best is None or abs(chunk_best.rho) > abs(best.rho):
            best = chunk_best
        if abs(best.rho) >= (1 + needed) / 2:
            break  # unambiguous: the other chunks would only confirm it
    if best is None or abs(best.rho) < needed:
        return None
    return best


def _seed_band_top(ref_band, *, sr, band) -> float:
    """Upper edge of the lowest sub-band holding a fifth of the reference's energy."""
    f, p = sps.welch(ref_band, fs=sr, nperseg=min(ref_band.size, 4096))
    sel = (f >= band[0]) & (f <= band[1])
    cumulative = np.cumsum(p[sel])
    f20 = f[sel][np.searchsorted(cumulative, _SEED_BAND_FRACTION * cumulative[-1])]
    return float(min(band[1], max(f20, 4 * band[0])))


def _slope_bounds(max_speed_error):
    """Lag slopes d(lag)/dt of decodes 1/(1+e) and 1/(1-e) times as long: the range searched."""
    return 1 / (1 + max_speed_error) - 1, 1 / (1 - max_speed_error) - 1


def _slope_grid(max_speed_error, resolution) -> np.ndarray:
    """Lag slopes d(lag)/dt of decodes between 1/(1+e) and 1/(1-e) times as long."""
    lo, hi = _slope_bounds(max_speed_error)
    # Steps out from exactly zero, which comes first: ties go to "no speed error".
    grid = np.r_[np.arange(0.0, hi + resolution / 2, resolution),
                 -np.arange(resolution, -lo + resolution / 2, resolution)]
    return grid[np.argsort(np.abs(grid), kind="stable")]


def _loudest_chunks(x, chunk, count):
    """Starts of up to ``count`` chunks to seed from, loudest first: the loudest chunk of
    each of ``count`` equal stretches of ``x``. Spread out, so that one bad stretch of
    a decode (a misread part of the disc) cannot hold all of them."""
    n = x.size // chunk
    energy = np.add.reduceat(x[:n * chunk] ** 2, np.arange(0, n * chunk, chunk))
    edges = np.linspace(0, n, count + 1).astype(int)
    picks = {int(a + np.argmax(energy[a:b])) for a, b in zip(edges[:-1], edges[1:]) if b > a}
    return [i * chunk for i in sorted(picks, key=lambda i: -energy[i]) if energy[i] > 0]


# --- step 3: track ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _RawTrack:
    times_s: np.ndarray
    lag_s: np.ndarray
    slope: np.ndarray   # lag slope used when the window was read
    rho: np.ndarray
    locked: np.ndarray
    piece: np.ndarray
    silent: np.ndarray


class _Follower:
    """Follows the local lag window by window away from the seed."""

    def __init__(self, ref_a, dec_a: _Sampler, *, rate, window_s, max_jump_s, chance_rho, slope_range):
        self.ref = ref_a
        self.slope_range = slope_range
        self.dec = dec_a
        self.rate = rate
        self.length = int(round(window_s * rate))
        hop = max(1, self.length // 2)
        self.starts = np.arange(0, ref_a.size - self.length + 1, hop)
        self.times_s = (self.starts + (self.length - 1) / 2) / rate
        energy = np.array([np.dot(w, w) for w in self._windows()])
        self.silent = energy <= 10 ** (_SILENT_DB / 10) * np.percentile(energy, 95)
        self.max_jump_s = max_jump_s
        self.chance_rho = chance_rho
        n = self.starts.size
        self.lag = np.full(n, np.nan)
        self.slope = np.zeros(n)
        self.rho = np.zeros(n)
        self.locked = np.zeros(n, dtype=bool)
        self.piece = np.full(n, -1)

    def _windows(self):
        for s in self.starts:
            yield self.ref[s:s + self.length]

    def window(self, j):
        return self.ref[self.starts[j]:self.starts[j] + self.length]

    def peak(self, j, lag_s, slope, radius_s) -> _Peak:
        return _local_peak(self.window(j), self.dec, rate=self.rate, centre_s=self.times_s[j],
                           lag_s=lag_s, slope=slope, radius_s=radius_s)

    def run(self, seed: _Seed) -> _RawTrack:
        j0 = int(np.argmin(np.abs(self.times_s - seed.time_s)))
        self._follow(seed, range(j0, self.times_s.size), direction=1)
        self._follow(seed, range(j0 - 1, -1, -1), direction=-1)
        return _RawTrack(self.times_s, self.lag, self.slope, self.rho, self.locked, self.piece,
                         self.silent)

    def _follow(self, seed: _Seed, order, direction):
        t_prev, lag_prev, slope, piece = seed.time_s, seed.lag_s, seed.slope, 0
        history, typical, radius = [], [], _FIRST_RADIUS_S
        order = list(order)
        for i, j in enumerate(order):
            if self.silent[j]:
                continue
            predicted = lag_prev + slope * (self.times_s[j] - t_prev)
            threshold = self._threshold(typical)
            peak = self.peak(j, predicted, slope, radius)
            self.rho[j] = abs(peak.rho)
            if abs(peak.rho) < threshold:
                peak = self._reacquire(j, order[i + 1:], predicted, slope, threshold, typical)
                if peak is None:
                    continue
                piece += direction
                history = []
            self._accept(j, peak, piece)
            self.slope[j] = slope
            t_prev, lag_prev, radius = self.times_s[j], peak.lag_s, _TRACK_RADIUS_S
            history.append((t_prev, lag_prev))
            typical = (typical + [abs(peak.rho)])[-20:]
            slope = self._slope(history, slope)

    def _threshold(self, typical):
        floor = min(_SURE_LOCK, _LOCK_SIGMAS * self.chance_rho)
        return max(floor, _LOCK_RELATIVE * float(np.median(typical))) if typical else floor

    def _accept(self, j, peak: _Peak, piece):
        self.lag[j], self.rho[j], self.locked[j], self.piece[j] = peak.lag_s, abs(peak.rho), True, piece

    def _wide_threshold(self, typical):
        """Searching seconds of lags tries many more chances: ask for more."""
        floor = min(_SURE_MATCH, _WIDE_SIGMAS * self.chance_rho)
        return max(floor, _WIDE_RELATIVE * float(np.median(typical))) if typical else floor

    def _reacquire(self, j, ahead, predicted, slope, threshold, typical) -> _Peak | None:
        """A wide search for a new lag, kept only if the next loud window agrees."""
        wide = self.peak(j, predicted, slope, self.max_jump_s)
        if abs(wide.rho) < max(threshold, self._wide_threshold(typical)):
            return None
        if abs(wide.lag_s - predicted) <= _TRACK_RADIUS_S:
            return None  # the local search would have found it: just a weak window
        following = next((k for k in ahead if not self.silent[k]), None)
        if following is None:
            return None
        check = self.peak(following, wide.lag_s + slope * (self.times_s[following] - self.times_s[j]),
                          slope, _TRACK_RADIUS_S)
        return wide if abs(check.rho) >= threshold else None

    def _slope(self, history, slope):
        """Lag slope over the last second of accepted windows: the speed error, with
        wow averaged out (a longer span resists a stray peak; wow drifts a 0.1 s
        window by only ~0.1 ms, which the correlation tolerates). A step of a few
        milliseconds in the lag (a glitch in the decode, or a weak window's peak on a
        tone's neighbouring period) is no speed: a line through it would name one off
        by percents and lose the lock. So a line that misses its points by more than a
        tenth of the search radius leaves the slope as it was, and none outside the
        range searched is taken."""
        newest = history[-1][0]
        recent = [(t, lag) for t, lag in history if abs(t - newest) <= 1.0]
        if len(recent) < 4:
            return slope
        t, lag = np.array(recent).T
        if np.ptp(t) < 0.2:
            return slope
        line = np.polyfit(t - t.mean(), lag, 1)
        misfit = np.sqrt(np.mean((np.polyval(line, t - t.mean()) - lag) ** 2))
        if misfit > 0.1 * _TRACK_RADIUS_S:
            return slope
        return float(np.clip(line[0], *self.slope_range))


def _track(ref_band, dec_band, *, sr, band, seed, window_s, max_jump_s, max_speed_error,
           turn_s=None) -> _RawTrack:
    step = max(1, int(sr // (2.5 * band[1])))
    rate = sr / step
    ref_a = sps.resample_poly(ref_band, 1, step) if step > 1 else ref_band
    dec_a = sps.resample_poly(dec_band, 1, step) if step > 1 else dec_band
    chance = _chance_rho(ref_band, rate=sr, band=band, duration_s=window_s)
    follower = _Follower(ref_a, _Sampler(dec_a, rate=rate, order=3), rate=rate, window_s=window_s,
                         max_jump_s=max_jump_s, chance_rho=chance,
                         slope_range=_slope_bounds(max_speed_error))
    track = _drop_short_pieces(follower.run(seed))
    return _drop_interludes(track, turn_s) if turn_s else track


def _chance_rho(x, *, rate, band, duration_s) -> float:
    """Standard deviation of the normalised correlation of ``duration_s`` of ``x`` with
    an unrelated signal of the same spectrum: ``1 / sqrt(2 B T)``, with ``B`` the
    statistical bandwidth ``(sum P)^2 / sum P^2`` of ``x`` at a resolution of ``1/T``."""
    nperseg = int(min(x.size, max(16, 2 ** np.round(np.log2(duration_s * rate)))))
    f, p = sps.welch(x, fs=rate, nperseg=nperseg)
    p = p[(f >= band[0]) & (f <= band[1])]
    if not np.any(p > 0):
        return 1.0
    bandwidth = float(np.sum(p) ** 2 / np.sum(p * p) * (f[1] - f[0]))
    return float(min(1.0, 1.0 / np.sqrt(2 * bandwidth * duration_s)))


def _drop_short_pieces(track: _RawTrack) -> _RawTrack:
    """Unlock stretches of fewer than 3 windows, then number pieces 0, 1, ... in time."""
    locked, piece = track.locked.copy(), track.piece.copy()
    for p in np.unique(piece[locked]):
        if np.count_nonzero(locked & (piece == p)) < _MIN_PIECE_WINDOWS:
            locked[piece == p] = False
    piece[~locked] = -1
    # Neighbours left with the same lag after a spurious stretch is dropped are one piece.
    ids = [p for p in np.unique(piece[locked])]
    new_id, renumber = 0, {}
    for previous, current in zip([None] + ids[:-1], ids):
        if previous is not None and not _same_lag(track, locked, piece, previous, current):
            new_id += 1
        renumber[current] = new_id
    piece = np.array([renumber.get(p, -1) for p in piece])
    lag = np.where(locked, track.lag_s, np.nan)
    return _RawTrack(track.times_s, lag, track.slope, track.rho, locked, piece, track.silent)


def _drop_interludes(track: _RawTrack, turn_s, max_gap_s=5.0) -> _RawTrack:
    """Unlock short stretches that interrupt one continuing lag line.

    Where the decode is briefly unreadable (a muted gap, a misread patch), the follower
    loses the lock and may hold for a moment onto the music elsewhere (a repeated
    phrase) before it comes back: pieces A, (B, ...,) C with C continuing A's line. The
    pieces between are the comparison's, not the decode's: a decode leaves its line
    only by whole turns. So where a piece starting within ``max_gap_s`` of A's end
    continues A's line (the median lag of its first second within the search radius of
    the line through A's last second), the pieces between, each shorter than A and C,
    are unlocked unless every one of them lies whole turns off the line (the decode
    really went to a neighbouring turn and back), and A and C become one piece.
    """
    locked, piece = track.locked.copy(), track.piece.copy()
    t, lag, slope = track.times_s, track.lag_s, track.slope

    def merge_one():
        members = {int(p): np.flatnonzero(locked & (piece == p)) for p in np.unique(piece[locked])}
        ids = sorted(members, key=lambda p: t[members[p][0]])
        for i, a in enumerate(ids):
            last = members[a][-1]
            # A's line through its last second, robustly: as the lock was lost, the last
            # window or two may have slipped onto a tone's neighbouring period, and the
            # speed estimate with them
            tail = members[a][t[members[a]] >= t[last] - 1.0]
            speed = np.median(slope[tail])
            anchor = np.median(lag[tail] - speed * (t[tail] - t[last]))

            def off_line(w):            # lag less A's line, in turns
                return (lag[w] - anchor - speed * (t[w] - t[last])) / turn_s

            for k, c in enumerate(ids[i + 1:], start=i + 1):
                first = members[c][0]
                if t[first] - t[last] > max_gap_s:
                    break
                head = members[c][t[members[c]] <= t[first] + 1.0]
                if abs(np.median(off_line(head))) * turn_s > _TRACK_RADIUS_S:
                    continue
                between = ids[i + 1:k]
                shortest = min(members[a].size, members[c].size)
                offsets = [float(np.median(off_line(members[b]))) for b in between]
                whole_turns = [round(x) != 0 and abs(x - round(x)) <= _REVOLUTION_TOLERANCE for x in offsets]
                if all(members[b].size < shortest for b in between) and not (between and all(whole_turns)):
                    for b in between:
                        locked[piece == b] = False
                    piece[piece == c] = a
                    return True
        return False

    while merge_one():
        pass
    piece[~locked] = -1
    order = {p: k for k, p in enumerate(np.unique(piece[locked]))}
    piece = np.array([order.get(p, -1) for p in piece])
    return _RawTrack(t, np.where(locked, lag, np.nan), slope, track.rho, locked, piece, track.silent)


def _same_lag(track, locked, piece, p, q) -> bool:
    last = np.flatnonzero(locked & (piece == p))[-1]
    first = np.flatnonzero(locked & (piece == q))[0]
    return abs(track.lag_s[first] - track.lag_s[last]) <= _TRACK_RADIUS_S


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


# --- scoring ------------------------------------------------------------------------


def _score(ref, dec, dec_band, alignment: _Alignment, *, sr, band, edge, segment_s, clip_db):
    """SNRs of the decode warped onto the reference timebase.

    The decode is warped *wide-band* and only then band-limited, so the band filter
    acts on both signals at the same frequencies (filtering before a 2 % speed
    correction would itself cap the SNR near 30 dB at the band edges). The wide
    pre-filter, there to keep the interpolation accurate, is applied to both signals.
    """
    wide_band = (band[0] / 4, 3 * band[1])
    ref_band = band_limit(band_limit(ref, sr=sr, band=wide_band), sr=sr, band=band)
    n = ref_band.size
    t = np.arange(n) / sr
    piece_of, u = _warp_map(alignment, t)
    wide = _Sampler(band_limit(dec, sr=sr, band=wide_band), rate=sr,
                    f_max=min(3 * band[1], sr / 2))
    readable = (piece_of >= 0) & wide.inside(u)
    warped = np.zeros(n)
    warped[readable] = wide(u[readable])
    x_all = band_limit(warped, sr=sr, band=band)

    # Compared: reference samples whose counterpart lies clear of both signals' ends,
    # between the first and last measured lags (beyond them the lag is extrapolated).
    margin = edge / sr
    matched = readable & (u >= margin) & (u <= wide.duration_s - margin)
    matched[:edge] = False
    matched[n - edge:] = False
    measured = alignment.track.times_s[alignment.track.weight > 0]
    if measured.size:
        matched &= (t >= measured[0]) & (t <= measured[-1])
    aligned = np.full(n, np.nan, dtype=np.float32)
    if not matched.any():
        return _empty_score(aligned)
    first, last = np.flatnonzero(matched)[[0, -1]]
    span = slice(first, last + 1)
    r, x, is_matched = ref_band[span], x_all[span], matched[span]
    # Decode = gain * reference + error: regress the decode on the reference.
    gain = np.dot(x[is_matched], r[is_matched]) / max(np.dot(r[is_matched], r[is_matched]), 1e-300)
    # Unmatched samples (a skipped turn) read nothing: x ~ 0 and the error is -g r.
    error_power = (x - gain * r) ** 2
    signal_power = (gain * r) ** 2
    extra = _unused_decoded(alignment, dec_band, sr=sr)
    snr = _ratio_db(signal_power.sum(), error_power.sum() + sum(e for _, e in extra))
    seg_times, seg_snr = _segmental(signal_power, error_power, extra, first=first, sr=sr,
                                    segment_s=segment_s, clip_db=clip_db)
    if gain == 0:  # the decode holds none of the reference: infinitely bad, not 0/0
        snr = float("-inf")
        seg_times, seg_snr = _segmental(r * r, r * r * np.inf, [], first=first, sr=sr,
                                        segment_s=segment_s, clip_db=clip_db)
    valid = seg_snr[np.isfinite(seg_snr)]
    if gain != 0:
        aligned[span][is_matched] = (x[is_matched] / gain).astype(np.float32)
    return dict(
        snr_db=snr,
        segmental_snr_db=float(valid.mean()) if valid.size else float("nan"),
        gain=float(gain),
        segment_times_s=seg_times,
        segment_snr_db=seg_snr,
        coverage=(last + 1 - first) / n,
        matched_fraction=float(is_matched.mean()),
        aligned=aligned,
    )


def _empty_score(aligned):
    return dict(snr_db=float("nan"), segmental_snr_db=float("nan"), gain=0.0,
                segment_times_s=np.zeros(0), segment_snr_db=np.zeros(0), coverage=0.0,
                matched_fraction=0.0, aligned=aligned)


def _unused_decoded(alignment: _Alignment, dec_band, *, sr):
    """Energy of decoded stretches the alignment jumped over (repeats): ``(time_s, energy)``."""
    out = []
    for (a, b), early, late in zip(alignment.boundaries, alignment.pieces[:-1],
                                   alignment.pieces[1:]):
        u0 = a + float(early(a))
        u1 = b + float(late(b))
        i0, i1 = max(0, int(np.ceil(u0 * sr))), min(dec_band.size, int(np.ceil(u1 * sr)))
        if i1 > i0:
            out.append((a, float(np.sum(dec_band[i0:i1] ** 2))))
    return out


def _segmental(signal_power, error_power, extra, *, first, sr, segment_s, clip_db):
    length = max(1, int(round(segment_s * sr)))
    edges = np.arange(0, signal_power.size, length)
    s = np.add.reduceat(signal_power, edges)
    e = np.add.reduceat(error_power, edges)
    for time_s, energy in extra:
        k = int((time_s * sr - first) // length)
        e[np.clip(k, 0, e.size - 1)] += energy
    times = (first + edges + length / 2) / sr
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = 10 * np.log10(s / e)
    snr = np.clip(np.nan_to_num(snr, posinf=clip_db[1], neginf=clip_db[0]), *clip_db)
    silent = s < 10 ** (_SILENT_DB / 10) * s.mean()
    return times, np.where(silent, np.nan, snr)


# --- timing summary -----------------------------------------------------------------


def _timing(alignment: _Alignment, *, wow_max_hz, window_s):
    nan = float("nan")
    if alignment.status == "no-alignment":
        return dict(delay_s=nan, speed_error=nan, wow_percent=nan, wow_rms_percent=nan)
    lines = []  # per piece: (duration, slope, intercept at t = 0)
    for piece in alignment.pieces:
        grid = _piece_grid(piece, alignment.track, 0.0, window_s)
        if grid.size >= 2 and np.ptp(grid) > 0:
            slope, intercept = np.polyfit(grid, piece(grid), 1)
            lines.append((np.ptp(grid), slope, intercept))
    if not lines:
        return dict(delay_s=nan, speed_error=nan, wow_percent=nan, wow_rms_percent=nan)
    durations, slopes, intercepts = np.array(lines).T
    slope = float(np.average(slopes, weights=durations))
    # Wow: speed relative to the constant speed, where the spline is backed by data,
    # leaving out a knot interval at each end (splines are loose there), on pieces
    # long enough to hold three periods of the fastest wow followed (a fraction of a
    # second matched on a repeated phrase can show any speed)
    long_enough = [p for p in alignment.pieces if p.last_s - p.first_s >= 3 / wow_max_hz]
    wow = []
    for piece in long_enough or alignment.pieces:
        grid = _piece_grid(piece, alignment.track, 1 / (4 * wow_max_hz), window_s)
        if grid.size:
            wow.append((1 + slope) / (1 + piece.slope(grid)) - 1)
    wow = np.concatenate(wow) if wow else np.zeros(1)
    return dict(
        delay_s=float(intercepts[0]),
        speed_error=1 / (1 + slope) - 1,
        wow_percent=100 * float(np.max(np.abs(wow))),
        wow_rms_percent=100 * float(np.sqrt(np.mean(wow * wow))),
    )


def _piece_grid(piece: _SmoothLag, track: LagTrack, inset_s, window_s):
    """10 ms grid over a piece's measured span, near windows that carried weight."""
    grid = np.arange(piece.first_s + inset_s, piece.last_s - inset_s, 0.01)
    used = track.times_s[track.weight > 0]
    if grid.size == 0 or used.size == 0:
        return grid[:0]
    after = np.clip(np.searchsorted(used, grid), 0, used.size - 1)
    before = np.maximum(after - 1, 0)
    distance = np.minimum(np.abs(used[after] - grid), np.abs(used[before] - grid))
    return grid[distance <= window_s]


def _jumps(alignment: _Alignment):
    out = []
    for (a, _), early, late in zip(alignment.boundaries, alignment.pieces[:-1],
                                   alignment.pieces[1:]):
        out.append((float(a), float(late(a) - early(a))))
    return tuple(out)


def _skips(jumps, rpm):
    """Whole-turn jumps of the decode: ``(time_s, turns)``.

    A decode's lag changes by whole turns (the groove left for a neighbouring turn)
    or not at all; a jump by a part of a turn is the comparison matching music that
    repeats elsewhere. Such jumps come in clusters that wander off the decode's lag and
    back, and what the decode did there is the cluster's net jump: jumps less than
    ``_CLUSTER_S`` apart are one cluster, unless every one of them is a whole turn.
    """
    if rpm is None:
        return ()
    turn_s = 60.0 / rpm

    def whole_turns(jump_s):
        turns = jump_s / turn_s
        whole = int(round(turns))
        return whole if whole != 0 and abs(turns - whole) <= _REVOLUTION_TOLERANCE else 0

    clusters = []
    for time_s, jump_s in jumps:
        if clusters and time_s - clusters[-1][-1][0] < _CLUSTER_S:
            clusters[-1].append((time_s, jump_s))
        else:
            clusters.append([(time_s, jump_s)])
    out = []
    for cluster in clusters:
        if all(whole_turns(jump_s) for _, jump_s in cluster):
            out.extend((time_s, whole_turns(jump_s)) for time_s, jump_s in cluster)
        else:
            net = whole_turns(sum(jump_s for _, jump_s in cluster))
            if net:
                out.append((cluster[-1][0], net))
    return tuple(out)


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


# --------------------------------------------------------------------------- frequency response


def frequency_response(
    decoded,
    reference,
    *,
    sr: float,
    bands_per_octave: int = 3,
    freqs=None,
    band=(20.0, 20000.0),
    align_band=(100.0, 5000.0),
    max_delay_s: float = 2.0,
    max_speed_error: float = 0.05,
    window_s: float = 0.1,
    wow_max_hz: float = 3.0,
) -> FrequencyResponse:
    """Frequency response of a decode relative to its reference, in fractional octaves.

    The decode is aligned as in :func:`compare` (within ``align_band``) and warped,
    unfiltered, onto the reference timebase. The transfer function is the H1 estimate
    ``P_xy / P_xx`` (Welch; noise in the decode does not bias it), and each band
    reports the reference-power-weighted mean of ``|H|^2`` over its bins, in dB.
    Any broadband reference works: noise, music, a sweep (for which the alignment may
    trade a little delay for a little speed error, see :func:`compare`: harmless here).

    Parameters
    ----------
    decoded, reference : array_like, shape (n,)
        At ``sr`` Hz.
    sr : float
        Sample rate (Hz).
    bands_per_octave : int
        Bands per octave (3: third-octave bands), centred on 1000 * 2**(k / b) Hz.
    freqs : array_like, optional
        Band centres (Hz) to use instead; their width is still ``1 / bands_per_octave``
        octave.
    band : (float, float)
        Range of band centres (Hz), clipped below the Nyquist frequency.
    align_band : (float, float)
        Band used for the alignment (Hz).
    max_delay_s, max_speed_error, window_s, wow_max_hz
        As in :func:`compare`.

    Returns
    -------
    FrequencyResponse

    Notes
    -----
    Welch segments are long enough for four bins in the lowest band (up to a quarter
    of the signal); bands with fewer than two bins are NaN.
    """
    ref = _as_signal(reference, "reference")
    dec = _as_signal(decoded, "decoded")
    sr = _positive(sr, "sr")
    nyquist = sr / 2
    align_band = _closed_band((align_band[0], min(align_band[1], 0.45 * sr)), sr)
    lo, hi = float(band[0]), float(min(band[1], 0.95 * nyquist))
    if not 0 < lo < hi:
        raise ParameterError(f"band must satisfy 0 < low < high < 0.95 * Nyquist; got {band}")
    if int(bands_per_octave) < 1:
        raise ParameterError(f"bands_per_octave must be >= 1; got {bands_per_octave}")
    edge = _edge_samples(sr, align_band[0])
    _require_length(ref, sr, edge, window_s, "reference")
    _require_length(dec, sr, edge, window_s, "decoded")

    ref_band = band_limit(ref, sr=sr, band=align_band)
    dec_band = band_limit(dec, sr=sr, band=align_band)
    if not np.any(ref_band):
        raise ParameterError("reference is silent in align_band")
    alignment = _align(ref_band, dec_band, _Sampler(dec_band, rate=sr, f_max=align_band[1]),
                       sr=sr, band=align_band, max_delay_s=max_delay_s,
                       max_speed_error=max_speed_error, window_s=window_s, wow_max_hz=wow_max_hz)
    x, y = _aligned_pair(ref, dec, alignment, sr=sr, f_max=hi, edge=edge)
    centres, edges = _fractional_octave_bands(lo, hi, int(bands_per_octave), freqs)
    gain_db, coherence = _band_gains(x, y, sr=sr, edges=edges)
    timing = _timing(alignment, wow_max_hz=wow_max_hz, window_s=window_s)
    polarity = -1 if np.dot(x, y) < 0 else 1
    return FrequencyResponse(freqs_hz=centres, band_edges_hz=edges, gain_db=gain_db,
                             coherence=coherence, delay_s=timing["delay_s"],
                             speed_error=timing["speed_error"], polarity=polarity,
                             status=alignment.status)


def _aligned_pair(ref, dec, alignment, *, sr, f_max, edge):
    """Reference and warped decode (DC removed), zero where the decode has no match."""
    dec_sampler = _Sampler(dec - dec.mean(), rate=sr, f_max=f_max)
    t = np.arange(ref.size) / sr
    piece_of, u = _warp_map(alignment, t)
    margin = edge / sr
    matched = (piece_of >= 0) & (u >= margin) & (u <= dec_sampler.duration_s - margin)
    matched[:edge] = False
    matched[ref.size - edge:] = False
    x = np.where(matched, ref - ref.mean(), 0.0)
    y = np.zeros_like(x)
    y[matched] = dec_sampler(u[matched])
    return x, y


def _fractional_octave_bands(lo, hi, per_octave, freqs):
    if freqs is None:
        k = np.arange(np.ceil(per_octave * np.log2(lo / 1000)),
                      np.floor(per_octave * np.log2(hi / 1000)) + 1)
        centres = 1000.0 * 2.0 ** (k / per_octave)
    else:
        centres = np.asarray(freqs, dtype=np.float64).ravel()
        if np.any(centres <= 0):
            raise ParameterError("freqs must be positive (Hz)")
    half = 2.0 ** (1 / (2 * per_octave))
    return centres, np.column_stack([centres / half, centres * half])


def _band_gains(x, y, *, sr, edges):
    narrowest = np.min(edges[:, 1] - edges[:, 0])
    nperseg = int(2 ** np.ceil(np.log2(sr / (narrowest / 4))))
    nperseg = int(min(nperseg, 2 ** np.floor(np.log2(max(x.size // 4, 16)))))
    # Zero-pad both ends so that every sample lies in some segment: Welch drops a
    # partial last segment, which would lose the top of a sweep.
    pad = np.zeros(nperseg)
    x, y = np.r_[pad[:nperseg // 2], x, pad], np.r_[pad[:nperseg // 2], y, pad]
    f, pxy = sps.csd(x, y, fs=sr, nperseg=nperseg)
    _, pxx = sps.welch(x, fs=sr, nperseg=nperseg)
    _, pyy = sps.welch(y, fs=sr, nperseg=nperseg)
    gain_db = np.full(len(edges), np.nan)
    coherence = np.full(len(edges), np.nan)
    for i, (e0, e1) in enumerate(edges):
        sel = (f >= e0) & (f < e1) & (pxx > 0)
        if np.count_nonzero(sel) < 2 or pxx[sel].sum() <= 0:
            continue
        cross2 = np.abs(pxy[sel]) ** 2
        gain_db[i] = 10 * np.log10(np.sum(cross2 / pxx[sel]) / np.sum(pxx[sel]))
        coherence[i] = np.sum(cross2 / np.maximum(pyy[sel], 1e-300)) / np.sum(pxx[sel])
    return gain_db, coherence


# --------------------------------------------------------------------------- wow & flutter

_FLUTTER_RATE_HZ = 4000.0   # deviation signal rate: keeps the bilinear warp < 0.1 dB at 200 Hz
_FLUTTER_SETTLE_S = 2.0     # weighting filter settling left out (its slowest pole ~0.45 Hz)
_FLUTTER_WEIGHTING = dict(lowpass_hz=11.5, highpass1_hz=1.39, highpass2_hz=0.448, highpass2_q=0.646)


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
