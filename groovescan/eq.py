"""Playback and recording curves of lateral-cut discs.

A curve is three analog time constants, as in the RIAA standard::

    H_playback(s) = (1 + s*t_turnover) / ((1 + s*t_shelf) * (1 + s*t_rolloff))

``t_turnover`` is the bass turnover: below it the cutter recorded constant amplitude,
so playback of groove *velocity* boosts the bass by 6 dB/octave down to ``t_shelf``,
where the boost stops (20 dB for RIAA; we use the same 10x ratio for the 78 curves,
whose published tables give only a turnover). ``t_rolloff`` undoes the treble
pre-emphasis and is derived from the "dB at 10 kHz" figure of the curve tables.
Responses are normalised to 0 dB at 1 kHz. The recording curve is the inverse.
``"flat"`` is unity: audio proportional to groove velocity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError


@dataclass(frozen=True)
class PlaybackCurve:
    """Time constants of a playback curve, in seconds (``None``: no such pole/zero)."""

    name: str
    t_turnover: float | None
    t_shelf: float | None
    t_rolloff: float | None
    description: str


def _turnover_curve(name: str, turnover_hz: float, rolloff_db_at_10k: float, description: str):
    t_turnover = 1.0 / (2 * np.pi * turnover_hz)
    t_rolloff = None
    if rolloff_db_at_10k < 0:
        # |1 + j w t| = 10**(-dB/20) at 10 kHz
        ratio = 10 ** (-rolloff_db_at_10k / 20)
        t_rolloff = np.sqrt(ratio**2 - 1) / (2 * np.pi * 10_000.0)
    return PlaybackCurve(name, t_turnover, 10 * t_turnover, t_rolloff, description)


CURVES: dict[str, PlaybackCurve] = {
    "flat": PlaybackCurve("flat", None, None, None, "groove velocity, no equalisation"),
    "riaa": PlaybackCurve("riaa", 318e-6, 3180e-6, 75e-6, "RIAA 3180/318/75 us (LPs, 45s)"),
    "nab": _turnover_curve("nab", 500, -16, "NAB 1949: 500 Hz, -16 dB at 10 kHz"),
    "aes": _turnover_curve("aes", 400, -12, "AES 1951: 400 Hz, -12 dB at 10 kHz"),
    "columbia78": _turnover_curve("columbia78", 300, -16, "Columbia 78: 300 Hz, -16 dB"),
    "decca78": _turnover_curve("decca78", 300, -5.5, "Decca ffrr 78: 300 Hz, -5.5 dB"),
    "emi78": _turnover_curve("emi78", 250, 0, "EMI/European 78: 250 Hz, flat treble"),
    "blumlein": _turnover_curve("blumlein", 300, 0, "Blumlein: 300 Hz, flat treble"),
    "500flat": _turnover_curve("500flat", 500, 0, "500 Hz turnover, flat treble"),
    "rca_old": _turnover_curve("rca_old", 800, -10, "old RCA: 800 Hz, -10 dB"),
    "ccir78": _turnover_curve("ccir78", 354, -10.5, "CCIR 78: 354 Hz, -10.5 dB"),
}


def get_curve(name: str) -> PlaybackCurve:
    """Return the playback curve called ``name`` (case-insensitive)."""
    key = str(name).lower().replace("-", "").replace(" ", "")
    aliases = {"none": "flat", "velocity": "flat"}
    key = aliases.get(key, key)
    if key not in CURVES:
        raise ParameterError(
            f"unknown playback curve {name!r}; choose one of: {', '.join(CURVES)}"
        )
    return CURVES[key]


def _analog_response(curve: PlaybackCurve, freqs_hz: np.ndarray) -> np.ndarray:
    s = 2j * np.pi * np.asarray(freqs_hz, dtype=np.float64)
    h = np.ones_like(s)
    if curve.t_turnover is not None:
        h = h * (1 + s * curve.t_turnover)
    if curve.t_shelf is not None:
        h = h / (1 + s * curve.t_shelf)
    if curve.t_rolloff is not None:
        h = h / (1 + s * curve.t_rolloff)
    return h


def playback_response(curve: str | PlaybackCurve, freqs_hz, *, normalise_hz: float = 1000.0) -> np.ndarray:
    """Complex playback response at ``freqs_hz`` (Hz), 0 dB at ``normalise_hz``.

    Applied to groove velocity it gives the audio the cutter was fed.
    """
    curve = curve if isinstance(curve, PlaybackCurve) else get_curve(curve)
    ref = _analog_response(curve, np.array([normalise_hz]))[0]
    return _analog_response(curve, freqs_hz) / abs(ref)


def recording_response(curve: str | PlaybackCurve, freqs_hz, *, normalise_hz: float = 1000.0) -> np.ndarray:
    """Complex recording response (audio -> groove velocity), the inverse of playback."""
    return 1.0 / playback_response(curve, freqs_hz, normalise_hz=normalise_hz)


def apply_curve(signal: np.ndarray, sr: float, *, curve: str | PlaybackCurve, inverse: bool = False) -> np.ndarray:
    """Filter a 1-D ``signal`` sampled at ``sr`` Hz by a curve, in the frequency domain.

    ``inverse=False`` applies the playback curve (velocity -> audio), ``True`` the
    recording curve (audio -> velocity). The signal is zero-padded to avoid
    wrap-around; the filter is the analog response sampled exactly (no bilinear warp).
    """
    x = np.asarray(signal, dtype=np.float64)
    n = x.size
    nfft = int(2 ** np.ceil(np.log2(max(2 * n, 2))))
    spectrum = np.fft.rfft(x, nfft)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    h = recording_response(curve, freqs) if inverse else playback_response(curve, freqs)
    return np.fft.irfft(spectrum * h, nfft)[:n].astype(np.float32)
