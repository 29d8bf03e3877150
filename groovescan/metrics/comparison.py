""":func:`compare`: SNR of a decode after alignment, with its scoring and timing summary."""
from __future__ import annotations

import numpy as np

from ._align import _align, _Alignment, _band_limited_pair, _warp_map
from ._constants import _CLUSTER_S, _REVOLUTION_TOLERANCE, _SILENT_DB
from ._fitting import _SmoothLag
from ._sampler import _Sampler
from ._validation import (
    _as_signal,
    _check_compare_options,
    _closed_band,
    _positive,
    _ratio_db,
)
from .helpers import band_limit
from .results import Comparison, LagTrack


# --------------------------------------------------------------------------- compare


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
    edge, ref_band, dec_band = _band_limited_pair(
        ref, dec, sr=sr, band=band, window_s=window_s,
        silent_message="reference is silent in the band; nothing to compare against")
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
