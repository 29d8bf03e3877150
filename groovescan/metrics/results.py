"""Result types of the metrics, and the warning of a failed alignment."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
