""":func:`frequency_response`: gain of a decode relative to its reference in fractional octaves."""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from ..errors import ParameterError
from ._align import _align, _band_limited_pair, _warp_map
from ._sampler import _Sampler
from ._validation import _as_signal, _closed_band, _positive
from .comparison import _timing
from .results import FrequencyResponse


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
    edge, ref_band, dec_band = _band_limited_pair(ref, dec, sr=sr, band=align_band, window_s=window_s,
                                                  silent_message="reference is silent in align_band")
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
