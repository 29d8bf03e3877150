"""Click repair and noise-aware filtering of 1-D groove signals.

The decoder measures, for every output sample, the lateral position of the groove's two
walls. Two kinds of error survive the measurement, and this module repairs both:

* **Clicks.** Dust, hairs and scratches crossing the groove make 0.5–1 % of the samples
  gross errors. On their own they can pull the SNR from ~20 dB to a few dB, so they are
  found (:func:`detect_clicks`) and filled in (:func:`repair_gaps`); :func:`declick` does
  both.
* **Blue noise.** Sub-pixel position noise, differentiated to velocity, rises 6 dB/octave
  and sits mostly above 1–2 kHz where a bone record carries little music. Its spectrum is
  measured from the data (:func:`estimate_noise_psd`) and removed by a Wiener-type
  spectral gain (:func:`denoise`).

Everything here works on plain 1-D float arrays and knows nothing of images, so each step
can be tested on signals whose answer is known.

Where each step belongs in the pipeline
---------------------------------------
Click detection and repair work on the **displacement** (groove position against time):
its spectrum falls steeply with frequency, so a short autoregressive (AR) model predicts
it well and a gross error stands out in the prediction error. Denoising works on the
**audio** (velocity, after the playback curve), with a noise spectrum measured on that same
representation — e.g. from half the difference of the two walls, passed through the same
timebase and playback curve.

Methods (ideas from the literature, code written here)
------------------------------------------------------
* Detection: the two-sided AR interpolation error of every sample (the prediction-error
  filter applied forwards, then backwards), as in Godsill & Rayner's AR-based click
  detectors, fitted blockwise and robustly, thresholded in robust (MAD) sigmas; then
  each detection is narrowed to the samples that explain it (sparse deconvolution by
  orthogonal matching pursuit).
* Repair: least-squares AR interpolation (LSAR; Janssen, Veldhuis & Vries; Godsill &
  Rayner): the missing samples minimise the AR prediction error around them. The normal
  equations are banded and built in banded form; gaps too long to interpolate, or at
  the ends of the signal, are bridged by a smooth near-silent curve.
* Noise: minimum statistics (a bias-corrected low quantile over time of the smoothed
  periodogram, after Martin), the quietest frames, or the difference of two measurements.
* Suppression: Wiener gain with the decision-directed a-priori SNR (Ephraim & Malah) and a
  gain floor against musical noise.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import linalg, stats
from scipy import signal as sps
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d

from .errors import ParameterError

__all__ = [
    "ClickMask",
    "DeclickReport",
    "NoisePSD",
    "detect_clicks",
    "repair_gaps",
    "declick",
    "estimate_noise_psd",
    "denoise",
    "mask_to_regions",
    "regions_to_mask",
]

# The per-gap loops stay inside numpy and below the sizes where BLAS starts threads.
# numpy and scipy wheels each bundle their own OpenBLAS; alternating small calls between
# the two thread pools, or waking threads for tiny products, made the LSAR loop 10-25x
# slower on a busy 2-CPU machine (1e6 samples, 1 % masked: 5-11 s instead of 0.4 s).
# So LSAR systems up to this size are solved densely with numpy (microseconds), larger
# ones with scipy's banded solver, whose O(m * order**2) then beats O(m**3).
_DENSE_SOLVE_LIMIT = 256

# Ratio of the standard deviation to the median absolute value of a zero-mean Gaussian.
_MAD_TO_SIGMA = 1.0 / stats.norm.ppf(0.75)


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClickMask:
    """Samples judged corrupted by :func:`detect_clicks`.

    Attributes
    ----------
    mask : ndarray of bool, shape (n,)
        True where a sample is corrupted and should be repaired.
    regions : ndarray of int64, shape (k, 2)
        The runs of True in `mask` as half-open ``(start, stop)`` sample indices, sorted.
    threshold : float
        Detection threshold used, in robust sigmas of the AR interpolation error.
    ar_order : int
        Order of the AR model used for detection.
    sr : float
        Sample rate of the signal, Hz.
    """

    mask: np.ndarray
    regions: np.ndarray
    threshold: float
    ar_order: int
    sr: float

    @property
    def n_clicks(self) -> int:
        """Number of separate corrupted regions."""
        return int(len(self.regions))

    @property
    def fraction(self) -> float:
        """Fraction of the samples flagged (0–1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@dataclass(frozen=True)
class DeclickReport:
    """What :func:`declick` found and how it repaired it.

    Attributes
    ----------
    clicks : ClickMask
        The detected corrupted samples.
    bridged : ndarray of int64, shape (m, 2)
        Regions longer than `max_gap` samples or touching an end of the signal, as
        ``(start, stop)``: they were bridged by a smooth, near-silent curve instead of
        interpolated (see :func:`repair_gaps`). A caller may report or mute them.
    max_gap : int
        Longest region (samples) that was interpolated by LSAR.
    """

    clicks: ClickMask
    bridged: np.ndarray
    max_gap: int


@dataclass(frozen=True)
class NoisePSD:
    """A one-sided noise power spectral density.

    Unpacks like the output of :func:`scipy.signal.welch`:
    ``freqs_hz, psd = estimate_noise_psd(x, sr=sr)``.

    Attributes
    ----------
    freqs_hz : ndarray of float64, shape (nperseg // 2 + 1,)
        Frequencies, Hz.
    psd : ndarray of float64, same shape
        One-sided noise PSD, (signal unit)² / Hz (``scipy.signal.welch`` density scaling:
        white noise of variance σ² has ``psd = 2 σ² / sr``).
    method : str
        How it was estimated: ``"minimum"``, ``"quiet"`` or ``"difference"``.
    nperseg : int
        Segment length used, samples.
    """

    freqs_hz: np.ndarray
    psd: np.ndarray
    method: str
    nperseg: int

    def __iter__(self):
        return iter((self.freqs_hz, self.psd))


# --------------------------------------------------------------------------------------
# Regions and input checks
# --------------------------------------------------------------------------------------
def mask_to_regions(mask: np.ndarray) -> np.ndarray:
    """Runs of True in a 1-D boolean mask as half-open ``(start, stop)`` index pairs.

    Parameters
    ----------
    mask : array_like of bool, shape (n,)

    Returns
    -------
    ndarray of int64, shape (k, 2)
        Sorted, non-overlapping, non-touching runs.
    """
    mask = np.asarray(mask, dtype=bool).ravel()
    edges = np.diff(np.concatenate(([False], mask, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return np.stack([starts, stops], axis=1).astype(np.int64)


def regions_to_mask(regions: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of length `n` that is True inside the ``(start, stop)`` regions."""
    marks = np.zeros(n + 1, dtype=np.int64)
    regions = np.asarray(regions, dtype=np.int64).reshape(-1, 2)
    starts = np.clip(regions[:, 0], 0, n)
    stops = np.clip(regions[:, 1], 0, n)
    np.add.at(marks, starts, 1)
    np.add.at(marks, stops, -1)
    return np.cumsum(marks[:n]) > 0


def _merge_close(regions: np.ndarray, min_gap: int) -> np.ndarray:
    """Join regions separated by fewer than `min_gap` unflagged samples."""
    if len(regions) == 0:
        return regions
    gaps = regions[1:, 0] - regions[:-1, 1]
    new_group = np.concatenate(([True], gaps >= min_gap))
    group = np.cumsum(new_group) - 1
    starts = regions[new_group, 0]
    stops = np.zeros(len(starts), dtype=np.int64)
    np.maximum.at(stops, group, regions[:, 1])
    return np.stack([starts, stops], axis=1)


def _as_signal(x, name: str) -> np.ndarray:
    """Validate a 1-D real signal and return it as a float64 copy."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ParameterError(
            f"{name} must be a 1-D signal, got shape {arr.shape}; pass one channel at a time"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ParameterError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=True)


def _output_dtype(x) -> np.dtype:
    """Keep a float input's precision; anything else comes back as float32."""
    dtype = np.asarray(x).dtype
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


def _as_mask(mask, n: int, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.shape != (n,):
        raise ParameterError(
            f"{name} must be a boolean array of shape ({n},) like the signal, got {arr.shape}"
        )
    return arr.astype(bool)


def _check_positive(value, name: str, *, integer: bool = False, allow_zero: bool = False):
    bad = value < 0 if allow_zero else value <= 0
    if integer and int(value) != value:
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if not np.isfinite(value) or bad:
        kind = "non-negative" if allow_zero else "positive"
        raise ParameterError(f"{name} must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


# --------------------------------------------------------------------------------------
# Autoregressive models
# --------------------------------------------------------------------------------------
def _fit_ar(x: np.ndarray, usable: np.ndarray, order: int) -> np.ndarray | None:
    """Least-squares AR fit (covariance method) on the rows made only of usable samples.

    Returns the prediction-error filter ``c`` (``c[0] = 1``), so that
    ``e[n] = sum_k c[k] x[n-k]`` is the prediction error; ``None`` if too few rows.
    """
    row_ok = np.convolve(~usable, np.ones(order + 1), mode="valid") < 0.5
    if np.count_nonzero(row_ok) < 2 * order:
        return None
    gram = _lagged_gram(x, row_ok, order)  # rows x[r .. r + order], target last
    lagged, target = gram[:-1, :-1], gram[:-1, -1]
    # A whisper of ridge: pure tones make the covariance singular.
    lagged[np.diag_indices(order)] += 1e-9 * np.trace(lagged) / order + 1e-300
    try:
        coef = np.linalg.solve(lagged, target)  # ordered lag `order` .. 1
    except np.linalg.LinAlgError:
        return None
    return np.concatenate(([1.0], -coef[::-1]))


def _lagged_gram(x: np.ndarray, row_ok: np.ndarray, order: int) -> np.ndarray:
    """``G[i, j] = sum of x[r + i] * x[r + j]`` over the rows ``r`` where `row_ok`.

    Built from running sums of the products ``x[s] * x[s + lag]`` in O(n * order),
    not as ``rows.T @ rows``: a ~1000 x 33 matrix product is where OpenBLAS starts
    threads, and on a busy 2-CPU machine those made the LSAR loop 25x slower.
    """
    n, width = len(x), order + 1
    padded = np.concatenate([x, np.zeros(order)])
    products = sliding_window_view(padded, n) * x  # [lag, s] = x[s + lag] * x[s]
    running = np.zeros((width, n + 1))
    np.cumsum(products, axis=1, out=running[:, 1:])
    runs = mask_to_regions(row_ok)  # rows r in [start, stop)
    i, lag = _upper_triangle(order)
    sums = running[lag, runs[:, 1:] + i] - running[lag, runs[:, :1] + i]
    gram = np.empty((width, width))
    gram[i, i + lag] = gram[i + lag, i] = sums.sum(axis=0)
    return gram


def _upper_triangle(order: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, lag) with i + lag <= order: the upper triangle of the Gram matrix."""
    i, j = np.triu_indices(order + 1)
    return i, j - i


def _interpolation_error(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Two-sided AR interpolation error of every sample, same length as `x`.

    The prediction error ``e`` is filtered backwards with the same filter:
    ``d[n] = sum_k c[k] e[n+k]``. For an isolated error of size ``a`` at ``n``, ``d``
    peaks at ``n`` with ``a * sum(c**2)`` while its noise grows only as ``sqrt(sum(c**2))``,
    so it is more sensitive than the one-sided error and points at the corrupted sample
    itself rather than at the ``order`` samples after it. Where the filter would run past
    the ends of `x`, the missing prediction errors count as zero.
    """
    p = len(c) - 1
    e = np.zeros_like(x)
    e[p:] = np.convolve(x, c, mode="valid")
    return np.convolve(e, c[::-1])[p : p + len(x)]


# --------------------------------------------------------------------------------------
# Click detection
# --------------------------------------------------------------------------------------
def detect_clicks(
    displacement,
    *,
    sr: float,
    evidence=None,
    threshold: float = 5.0,
    ar_order: int = 24,
    block_s: float = 0.02,
    n_iter: int = 2,
    min_gap: int = 32,
    widen: int = 2,
    confirm: float | None = 5.0,
) -> ClickMask:
    """Find the samples of a displacement signal corrupted by clicks.

    A displacement signal (lateral groove position against time) is smooth: its spectrum
    falls steeply with frequency, so an AR model predicts each sample well from its
    neighbours. Dust, hairs and scratches make gross errors that the model cannot
    predict. For each block of `block_s` seconds an AR model is fitted by least squares
    on the samples not yet flagged (refitted, so clicks do not bias it);
    the two-sided interpolation error of every sample is divided by its robust local
    scale (median absolute value, over the block and its neighbours, so a music onset
    raises the scale instead of being flagged) and compared with `threshold`.

    The interpolation error is sensitive but smears a click over its neighbours, so
    each candidate region (merged, widened) is then localised: with a local AR model,
    orthogonal matching pursuit finds the fewest samples whose corruption explains the
    region's interpolation error down to `confirm` sigmas, and the region shrinks to
    their span (or is dropped if none is needed). Samples inside the span stay flagged,
    so a shifted stretch is repaired whole. In the tests this cuts the flagged samples
    from ~3.2x to ~1.3x the corrupted ones and gains 4–7 dB of audio SNR after repair.

    Parameters
    ----------
    displacement : array_like, shape (n,)
        Groove displacement against time, any unit (m, px); non-finite samples are
        always flagged.
    sr : float
        Sample rate, Hz.
    evidence : array_like of bool, shape (n,), optional
        Samples already known to be bad (e.g. where the two walls disagree). They are
        flagged whatever the model says and left out of the model fit.
    threshold : float, default 5.0
        Detection threshold in robust sigmas of the interpolation error. A Gaussian
        residual exceeds 5 sigma in 6e-7 of the samples; on 10 s of clean music-like
        signal (heavier-tailed residual) the tests measure no false region at three
        levels, while 4.5 gives one or two.
    ar_order : int, default 24
        AR model order.
    block_s : float, default 0.02
        Length of the blocks (s) over which the model and the scale are refitted:
        about as long as music stays stationary.
    n_iter : int, default 2
        Number of model fits: the first uses every sample not in `evidence`, each
        later one leaves out the samples flagged so far. A third fit changed nothing
        measurable in the tests.
    min_gap : int, default 32
        Regions separated by fewer than this many samples are merged. A hair that
        shifts the wall estimate for a while shows up as two edges; merging joins them
        so the whole shifted stretch is repaired. 32 samples is 0.7 ms at 48 kHz.
    widen : int, default 2
        Samples added to each side of every candidate region before it is checked, to
        reach the low-level start and end of a click that fell under the threshold.
    confirm : float or None, default 5.0
        Localisation threshold, in sigmas of the interpolation error that is left once
        the picked samples are explained (see above); ``None`` keeps the candidate
        regions as they are. Samples given as `evidence` or non-finite start out picked
        and are always kept. (That error's real spread is ~1.2x its modelled sigma, so
        4 picked spurious neighbours now and then; 5 matches `threshold`.)

    Returns
    -------
    ClickMask
        The corrupted samples as a mask and as ``(start, stop)`` regions.

    Notes
    -----
    The first and last `ar_order` samples are examined with a truncated filter and so
    with less sensitivity. Peak memory is a few float64 copies of the signal. On an
    8-million-sample signal this takes a few seconds (see ``benchmarks/bench_restore.py``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(48_000) / 48_000
    >>> x = np.sin(2 * np.pi * 440 * t) + 1e-3 * np.random.default_rng(0).standard_normal(t.size)
    >>> x[10_000] += 0.5
    >>> clicks = detect_clicks(x, sr=48_000)
    >>> bool(clicks.mask[10_000]), clicks.n_clicks
    (True, 1)
    """
    x = _as_signal(displacement, "displacement")
    sr = _check_positive(sr, "sr")
    threshold = _check_positive(threshold, "threshold")
    ar_order = _check_positive(ar_order, "ar_order", integer=True)
    n_iter = _check_positive(n_iter, "n_iter", integer=True)
    min_gap = _check_positive(min_gap, "min_gap", integer=True, allow_zero=True)
    widen = _check_positive(widen, "widen", integer=True, allow_zero=True)
    block = max(int(round(_check_positive(block_s, "block_s") * sr)), 4 * ar_order)
    n = len(x)

    known_bad = ~np.isfinite(x)
    if evidence is not None:
        known_bad |= _as_mask(evidence, n, "evidence")
    x[known_bad] = 0.0  # placeholders: these samples are flagged and never fitted

    flagged = known_bad.copy()
    if n > 2 * ar_order:
        for _ in range(n_iter):
            scores = _click_scores(x, ~flagged, ar_order, block)
            flagged = known_bad | (np.abs(scores) > threshold)

    regions = _merge_close(mask_to_regions(flagged), min_gap)
    regions = np.clip(regions + np.array([-widen, widen]), 0, n)
    regions = _merge_close(regions, 0)  # widening can make neighbours overlap
    if confirm is not None:
        confirm = _check_positive(confirm, "confirm", allow_zero=True)
        confirmed = _localise(x, regions, ar_order, confirm, known_bad)
        regions = mask_to_regions(confirmed | known_bad)
    return ClickMask(
        mask=regions_to_mask(regions, n),
        regions=regions,
        threshold=threshold,
        ar_order=ar_order,
        sr=sr,
    )


def _localise(x, regions, order, confirm, known_bad):
    """Mask of the corrupted samples inside the candidate regions.

    A candidate region is wider than its click: the interpolation error spreads a
    corrupted sample over its neighbours. With ``v`` the corruption, the interpolation
    error is ``d = phi * v + noise``, where ``phi`` is the autocorrelation of the local
    prediction-error filter (away from the ends of the signal), so the click is found by
    sparse deconvolution: orthogonal
    matching pursuit picks the sample that explains most of the remaining ``d``, refits
    the picked samples jointly, and stops when nothing left exceeds `confirm` sigmas.
    Each region then becomes the span of its picks (interior samples included, so a
    shifted stretch, whose middle is nearly invisible in ``d``, is repaired whole).
    Samples in `known_bad` start out picked. Regions with no pick are dropped;
    clusters too long to deconvolve are kept whole.
    """
    good = ~regions_to_mask(regions, len(x))
    confirmed = np.zeros(len(x), bool)
    for cluster in _clusters(regions, order):
        first, last = int(cluster[0, 0]), int(cluster[-1, 1])
        lo, window, usable, _, c = _local_model(x, good, first, last, order, 8 * order)
        positions = np.concatenate([np.arange(a, b) for a, b in cluster])
        if c is None or len(positions) > _DENSE_SOLVE_LIMIT:
            confirmed[positions] = True
            continue
        known = np.flatnonzero(known_bad[positions])
        picks = positions[_matching_pursuit(window, usable, positions - lo, c, confirm, known)]
        for start, stop in cluster:
            inside = picks[(picks >= start) & (picks < stop)]
            if len(inside):
                confirmed[inside.min() : inside.max() + 1] = True
    return confirmed


def _matching_pursuit(window, usable, positions, c, confirm, known):
    """Indices into `positions` of the samples whose corruption explains ``d``,
    starting from the `known` ones.

    ``d`` and ``phi`` come from the LSAR normal equations of the candidates: with ``A``
    the prediction-error rows, ``d = A_u^T e`` and ``phi`` is ``G = A_u^T A_u``, which
    also holds near the ends of the signal, where rows are missing.
    """
    normal, rhs = _lsar_normal_equations(window, positions, c)
    gram = _dense_from_upper_band(normal)
    d = gram @ window[positions] - rhs  # A_u^T (A_u x_u + b)
    noise = _innovation_sigma(window, usable, c) * np.sqrt(np.diag(gram))  # std of d, clean
    picked = [int(k) for k in known]
    while len(picked) < len(positions):
        if picked:
            amplitudes = np.linalg.solve(gram[np.ix_(picked, picked)], d[picked])
            residual = d - gram[:, picked] @ amplitudes
        else:
            residual = d
        best = int(np.argmax(np.abs(residual) / noise))
        if abs(residual[best]) <= confirm * noise[best]:
            break
        picked.append(best)
    return np.array(picked, dtype=np.int64)


# Blocks are processed in chunks of about this many samples: the work arrays (a few MB)
# then stay in cache and are reused, which measured 1.4x faster than 1-4 M samples.
_SCORE_CHUNK = 1 << 18


def _click_scores(x: np.ndarray, usable: np.ndarray, order: int, block: int) -> np.ndarray:
    """Interpolation error of every sample in robust sigmas, one AR model per block.

    Each block is modelled as :func:`_fit_ar` would fit it on the block plus `order`
    samples of context on each side, centred on the mean of their usable samples; a block
    that cannot be fitted borrows the previous block's model. An 8-million-sample signal
    has ~9000 blocks, so the fits and filters run on many blocks at once (in chunks of
    about ``_SCORE_CHUNK`` samples) instead of one Python step per block.
    """
    n = len(x)
    n_blocks = max(1, int(round(n / block)))
    edges = np.linspace(0, n, n_blocks + 1).astype(np.int64)
    # `order` samples of context on each side give every block sample its full filter.
    lo, hi = np.maximum(edges[:-1] - order, 0), np.minimum(edges[1:] + order, n)
    levels = _usable_means(x, usable, edges, order)
    filters = _block_filters(x, usable, edges, lo, hi, levels, order)
    # A block that cannot be fitted borrows the last model; blocks before the first fit
    # have none and keep zero errors and scales.
    fitted = ~np.isnan(filters[:, 0])
    latest = np.maximum.accumulate(np.where(fitted, np.arange(n_blocks), -1))
    filters = filters[np.maximum(latest, 0)]
    errors = np.zeros(n)
    scales = np.zeros(n_blocks)
    chunks = _block_chunks(edges, first=int(np.searchsorted(latest, 0)))
    for blocks in chunks:
        span = slice(edges[blocks[0]], edges[blocks[-1] + 1])
        errors[span] = _block_interpolation_errors(x, edges, lo, hi, levels, filters, blocks)
        chunk_edges = edges[blocks[0] : blocks[-1] + 2] - edges[blocks[0]]
        scales[blocks] = _block_medians(errors[span], chunk_edges) * _MAD_TO_SIGMA
    # A loud block next to a quiet one lends it its scale: an onset is not a click.
    scales = maximum_filter1d(scales, size=3, mode="nearest")
    floor = np.finfo(float).tiny + 1e-12 * np.max(scales, initial=0.0)
    scales = np.maximum(scales, floor)
    # In place and chunk by chunk: a fresh signal-sized array can cost more to allocate
    # (page faults) than the division itself.
    for blocks in chunks:
        span = slice(edges[blocks[0]], edges[blocks[-1] + 1])
        errors[span] /= np.repeat(scales[blocks], np.diff(edges)[blocks])
    return errors


def _block_chunks(edges: np.ndarray, first: int = 0) -> list[np.ndarray]:
    """The blocks from `first` on, in runs of consecutive blocks of ~``_SCORE_CHUNK`` samples."""
    n_blocks = len(edges) - 1
    step = max(1, _SCORE_CHUNK // int(np.max(np.diff(edges))))
    return [np.arange(b, min(b + step, n_blocks)) for b in range(first, n_blocks, step)]


def _usable_means(x, usable, edges, order):
    """Mean of the usable samples of each block with `order` samples of context each side
    (0 where there are none), as ``np.mean`` over the block's context window.

    Summed block by block, not by differences of one running sum over the whole signal,
    which would lose digits on a long signal with an offset.
    """
    starts, stops = edges[:-1], edges[1:]
    sums = np.empty(len(starts))
    for blocks in _block_chunks(edges):
        span = slice(starts[blocks[0]], stops[blocks[-1]])
        values = np.where(usable[span], x[span], 0.0)
        sums[blocks] = np.add.reduceat(values, starts[blocks] - span.start)
    counts = np.diff(edges) - np.diff(np.searchsorted(np.flatnonzero(~usable), edges))
    # Blocks are at least `order` long, so the context lies in the neighbouring blocks.
    for context, into in [
        (starts[1:, None] - np.arange(1, order + 1), slice(1, None)),
        (stops[:-1, None] + np.arange(order), slice(None, -1)),
    ]:
        sums[into] += np.where(usable[context], x[context], 0.0).sum(axis=1)
        counts[into] += usable[context].sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def _block_filters(x, usable, edges, lo, hi, levels, order):
    """Prediction-error filter of each block, as :func:`_fit_ar` fits ``x[lo:hi] - level``.

    Returns shape ``(n_blocks, order + 1)``; rows of NaN for blocks with fewer than
    ``2 * order`` usable rows or a singular fit (where :func:`_fit_ar` returns ``None``).
    """
    n_blocks = len(lo)
    runs, block_of = _usable_row_runs(usable, lo, hi - order, order)
    n_rows = np.bincount(block_of, weights=runs[:, 1] - runs[:, 0], minlength=n_blocks)
    keep = n_rows[block_of] >= 2 * order  # only blocks that can be fitted need a Gram
    runs, block_of = runs[keep], block_of[keep]
    filters = np.full((n_blocks, order + 1), np.nan)
    for blocks in _block_chunks(edges):
        a, b = np.searchsorted(block_of, [blocks[0], blocks[-1] + 1])
        if a == b:
            continue
        # A run of usable rows [r0, r1) is the window x[r0 : r1 + order].
        grams = _window_grams(x, runs[a:b, 0], runs[a:b, 1] + order, levels[block_of[a:b]], order)
        fitted, grams = _sum_by_block(grams, block_of[a:b])
        filters[fitted] = _filters_from_grams(grams, order)
    return filters


def _usable_row_runs(usable, first_row, end_row, order):
    """Runs of rows ``x[r .. r + order]`` made only of usable samples, cut to each
    block's rows ``[first_row, end_row)``.

    Returns ``(runs, block_of)``: ``(k, 2)`` half-open row runs and the block of each,
    sorted by block. Neighbouring blocks share `order` rows (their context), so a run
    may appear in both.
    """
    # The samples of an unusable run [a, b) spoil the rows [a - order, b).
    spoilt = _merge_close(mask_to_regions(~usable) - np.array([order, 0]), 1)
    n_rows = len(usable) - order
    runs = np.clip(np.concatenate(([0], spoilt.ravel(), [n_rows])), 0, n_rows).reshape(-1, 2)
    runs = runs[runs[:, 1] > runs[:, 0]]
    # The `count` runs from `first` on overlap the block's rows.
    first = np.searchsorted(runs[:, 1], first_row, side="right")
    count = np.searchsorted(runs[:, 0], end_row, side="left") - first
    block_of = np.repeat(np.arange(len(first_row)), count)
    rank = np.arange(len(block_of)) - np.repeat(np.cumsum(count) - count, count)
    run = runs[first[block_of] + rank]
    cut = np.stack(
        [np.maximum(run[:, 0], first_row[block_of]), np.minimum(run[:, 1], end_row[block_of])],
        axis=1,
    )
    return cut, block_of


def _window_grams(x, starts, stops, levels, order):
    """Gram matrix of the rows ``x[r .. r + order] - level``, r in ``[start, stop - order)``,
    of each window ``x[start:stop]``: what :func:`_lagged_gram` gives for one run of rows.

    Summed over every row that overlaps the window (zero outside it), the outer products
    form the Toeplitz matrix of the window's autocorrelation; the Gram is that less the
    ``order`` rows hanging off each end. The autocorrelation comes from an FFT, so a
    window costs O(length log length) instead of O(length * order).
    """
    width = order + 1
    lengths = stops - starts
    sizes = _fft_sizes(lengths + order)  # room for lags up to `order` without wrap-around
    autocorrelation = np.empty((len(starts), width))
    for size in np.unique(sizes):
        which = np.flatnonzero(sizes == size)
        windows = _padded_windows(x, starts[which], lengths[which], levels[which], size)
        spectrum = np.fft.rfft(windows)
        autocorrelation[which] = np.fft.irfft(spectrum * spectrum.conj(), size)[:, :width]
    # The rows starting 1 .. `order` samples before the window, and its last `order` rows,
    # each zero outside the window.
    reach = np.arange(-order, order)
    before = np.take(x, starts[:, None] + reach, mode="clip") - levels[:, None]
    before[:, :order] = 0.0
    after = np.take(x, stops[:, None] + reach, mode="clip") - levels[:, None]
    after[:, order:] = 0.0
    hanging = np.concatenate(
        [sliding_window_view(before, width, axis=1), sliding_window_view(after, width, axis=1)],
        axis=1,
    )
    lag = np.abs(np.subtract.outer(np.arange(width), np.arange(width)))
    toeplitz = np.take(autocorrelation, lag, axis=1)  # 10x faster than [:, lag]
    return toeplitz - np.matmul(hanging.transpose(0, 2, 1), hanging)


def _fft_sizes(m):
    """FFT lengths >= `m`: powers of two or three quarters of one, so few distinct sizes."""
    power = 2 ** np.ceil(np.log2(np.maximum(m, 4))).astype(np.int64)
    return np.where(3 * power // 4 >= m, 3 * power // 4, power)


def _padded_windows(x, starts, lengths, levels, size):
    """Rows ``x[start : start + length] - level``, zero-padded to `size` samples."""
    offsets = np.arange(size)
    if starts.max() + size <= len(x):
        windows = sliding_window_view(x, size)[starts]  # a copy, row by row
    else:  # a window reaches the end of the signal
        windows = np.take(x, starts[:, None] + offsets, mode="clip")
    windows -= levels[:, None]
    shortest = lengths.min()  # zero the padding (x is finite), past the shortest row only
    windows[:, shortest:] *= offsets[shortest:] < lengths[:, None]
    return windows


def _sum_by_block(values, block_of):
    """``(blocks, sums)``: the sums of the `values` that share a block (`block_of` sorted)."""
    blocks, first, counts = np.unique(block_of, return_index=True, return_counts=True)
    sums = values[first]
    for k in range(1, int(counts.max())):  # most blocks have one or two runs of rows
        more = counts > k
        sums[more] += values[first[more] + k]
    return blocks, sums


def _filters_from_grams(grams, order):
    """:func:`_fit_ar`'s solve for a stack of Gram matrices (adding the ridge to them in
    place); rows of NaN where singular."""
    lagged, target = grams[:, :-1, :-1], grams[:, :-1, -1]
    # A whisper of ridge: pure tones make the covariance singular.
    ridge = 1e-9 * np.trace(lagged, axis1=1, axis2=2) / order + 1e-300
    diagonal = np.arange(order)
    lagged[:, diagonal, diagonal] += ridge[:, None]
    filters = np.full((len(grams), order + 1), np.nan)
    try:
        coef = np.linalg.solve(lagged, target[..., None])[..., 0]  # ordered lag `order` .. 1
        filters[:, 1:] = -coef[:, ::-1]
        filters[:, 0] = 1.0
    except np.linalg.LinAlgError:  # some block is singular: solve them one by one
        for k in range(len(grams)):
            try:
                filters[k, 1:] = -np.linalg.solve(lagged[k], target[k])[::-1]
                filters[k, 0] = 1.0
            except np.linalg.LinAlgError:
                pass  # stays NaN: no model
    return filters


def _block_interpolation_errors(x, edges, lo, hi, levels, filters, blocks):
    """:func:`_interpolation_error` of ``x[lo:hi] - level`` with its block's filter, on
    the samples of the (consecutive) `blocks`, concatenated.

    The filter applied forwards then backwards is a filter by its autocorrelation, i.e.
    a product with its power response; the context makes the circular FFT exact on the
    block's own samples. Blocks cut short by an end of the signal, where the prediction
    errors beyond it count as zero, are filtered directly.
    """
    lengths = hi[blocks] - lo[blocks]
    size = int(_fft_sizes(lengths.max()))
    segments = _padded_windows(x, lo[blocks], lengths, levels[blocks], size)
    response = np.fft.rfft(filters[blocks], size)
    errors = np.fft.irfft(np.fft.rfft(segments) * (response.real**2 + response.imag**2), size)
    offsets = np.arange(size)
    own_start = (edges[blocks] - lo[blocks])[:, None]
    own_stop = (edges[blocks + 1] - lo[blocks])[:, None]
    errors = errors[(offsets >= own_start) & (offsets < own_stop)]  # row by row, in order
    order = filters.shape[1] - 1
    cut = (lo[blocks] > edges[blocks] - order) | (hi[blocks] < edges[blocks + 1] + order)
    for k in blocks[cut]:
        own = slice(edges[k] - edges[blocks[0]], edges[k + 1] - edges[blocks[0]])
        exact = _interpolation_error(x[lo[k] : hi[k]] - levels[k], filters[k])
        errors[own] = exact[edges[k] - lo[k] : edges[k + 1] - lo[k]]
    return errors


def _block_medians(values, edges):
    """Median of ``|values|`` over each block ``values[edges[i] : edges[i + 1]]``.

    Equal to ``np.median`` but from one partition per block (the lower middle value is
    the largest below the upper one), which is 3x faster; block lengths differ by at most
    one, so there are one or two groups.
    """
    lengths = np.diff(edges)
    medians = np.empty(len(lengths))
    for length in np.unique(lengths):
        which = np.flatnonzero(lengths == length)
        half = length // 2
        rows = np.abs(sliding_window_view(values, length)[edges[which]])
        rows.partition(half, axis=1)
        upper = rows[:, half]
        medians[which] = upper if length % 2 else 0.5 * (upper + rows[:, :half].max(axis=1))
    return medians


# --------------------------------------------------------------------------------------
# Gap repair
# --------------------------------------------------------------------------------------
def repair_gaps(
    signal,
    mask,
    *,
    sr: float | None = None,
    ar_order: int = 32,
    context: int = 512,
    max_gap: int | None = None,
) -> np.ndarray:
    """Fill the masked samples of a signal from the good samples around them.

    Gaps up to `max_gap` samples are filled by least-squares AR interpolation (LSAR):
    an AR model of order `ar_order` is fitted on the good samples within `context`
    samples of the gap, and the missing samples are the values that minimise the sum of
    squared prediction errors of every prediction they take part in. Gaps closer than
    `ar_order` samples share predictions and are solved together.

    Longer gaps (the groove lost for more than `max_gap`) cannot be interpolated — LSAR
    fades to zero in the middle of a long gap — so they are **bridged**: the output
    follows a straight line between the local mean levels on either side, joined to the
    signal at each edge by a cubic fade (about ``max_gap / 4`` long) that matches the
    edge value and slope. Value and slope continuity mean no click in the velocity
    audio; in between, the bridge is near-silent. Gaps that touch either end of the
    signal are bridged too, whatever their length: with good samples on one side only,
    LSAR would extrapolate the AR model, which can grow without bound; the bridge holds
    the local level instead. Use :func:`declick` to get the bridged regions listed,
    e.g. to report them.

    Parameters
    ----------
    signal : array_like, shape (n,)
        Signal to repair (typically the groove displacement), any unit.
    mask : array_like of bool, shape (n,)
        True where a sample is corrupted. Non-finite samples are repaired too.
    sr : float, optional
        Sample rate, Hz; used only for the default `max_gap`.
    ar_order : int, default 32
        AR model order for the interpolation (long enough to model several partials).
    context : int, default 512
        Good samples used on each side of a gap to fit its AR model.
    max_gap : int, optional
        Longest gap, in samples, filled by LSAR. Default: 20 ms at `sr`, or 960 samples
        (20 ms at 48 kHz) when `sr` is not given.

    Returns
    -------
    ndarray, shape (n,)
        The repaired signal; unmasked samples are returned unchanged. Same dtype as the
        input if floating, else float32. If no sample is good, zeros with a warning.

    Notes
    -----
    Cost is about ``(ar_order * context + gap**2 * ar_order)`` operations per gap plus
    ~0.5 ms of Python overhead: 1e6 samples with 1 % masked in 1–40-sample gaps take
    about 0.4 s (``benchmarks/bench_restore.py``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(4800) / 48_000
    >>> clean = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t)
    >>> mask = np.zeros(t.size, bool); mask[1000:1030] = True
    >>> damaged = np.where(mask, 3.0, clean)
    >>> repaired = repair_gaps(damaged, mask)
    >>> bool(np.max(np.abs(repaired - clean)) < 1e-3)
    True
    """
    out_dtype = _output_dtype(signal)
    x = _as_signal(signal, "signal")
    n = len(x)
    bad = _as_mask(mask, n, "mask") | ~np.isfinite(x)
    ar_order = _check_positive(ar_order, "ar_order", integer=True)
    context = _check_positive(context, "context", integer=True)
    if max_gap is None:
        max_gap = int(round(0.02 * _check_positive(sr, "sr"))) if sr is not None else 960
    max_gap = _check_positive(max_gap, "max_gap", integer=True)

    if not bad.any():
        return x.astype(out_dtype)
    if bad.all():
        warnings.warn("repair_gaps: every sample is masked; returning zeros", stacklevel=2)
        return np.zeros(n, dtype=out_dtype)

    x[bad] = 0.0  # placeholders, never used as data
    good = ~bad
    regions = mask_to_regions(bad)
    is_long = _bridged(regions, n, max_gap)
    fade = max(max_gap // 4, 1)
    for start, stop in regions[is_long]:
        _bridge_long_gap(x, good, start, stop, fade)
    # Bridged samples may serve as boundary values below, but never to fit a model.
    for cluster in _clusters(regions[~is_long], ar_order):
        _lsar_cluster(x, good, cluster, ar_order, context)
    return x.astype(out_dtype)


def _bridged(regions: np.ndarray, n: int, max_gap: int) -> np.ndarray:
    """Which regions are bridged rather than interpolated: too long, or at an end."""
    too_long = (regions[:, 1] - regions[:, 0]) > max_gap
    return too_long | (regions[:, 0] == 0) | (regions[:, 1] == n)


def _clusters(regions: np.ndarray, order: int):
    """Groups of regions close enough (<= order apart) to share prediction errors."""
    if len(regions) == 0:
        return []
    split = np.flatnonzero(regions[1:, 0] - regions[:-1, 1] > order) + 1
    return np.split(regions, split)


def _lsar_cluster(x, good, cluster, order, context):
    """LSAR-fill the regions of one cluster in place."""
    indices, values = _lsar_estimate(x, good, cluster, order, context)
    x[indices] = values


def _local_model(x, good, first, last, order, context):
    """AR model of the good samples within `context` of ``x[first:last]``.

    Returns ``(lo, window, usable, level, c)``: the window ``x[lo:hi] - level``, centred
    on the mean of its good samples so the model spends no effort on the offset; which
    of its samples are good; and the prediction-error filter (order lowered if the
    context is too short; ``None`` if no model fits).
    """
    # At least `order` samples each side, so every prediction touching a gap is in view.
    lo, hi = max(first - max(context, order), 0), min(last + max(context, order), len(x))
    usable = good[lo:hi]
    level = float(np.mean(x[lo:hi][usable])) if usable.any() else 0.0
    window = x[lo:hi] - level
    c = None
    for p in (order, order // 2, order // 4):
        if p >= 1 and (c := _fit_ar(window, usable, p)) is not None:
            break
    return lo, window, usable, level, c


def _lsar_estimate(x, good, cluster, order, context):
    """LSAR estimate ``(indices, values)`` of the samples in a cluster of regions."""
    first, last = int(cluster[0, 0]), int(cluster[-1, 1])
    lo, window, usable, level, c = _local_model(x, good, first, last, order, context)
    unknown = np.concatenate([np.arange(a, b) for a, b in cluster]) - lo
    if c is None:  # not even a tiny model fits: fall back to a straight line
        known = np.setdiff1d(np.arange(len(window)), unknown)
        return unknown + lo, np.interp(unknown, known, x[known + lo])
    normal, rhs = _lsar_normal_equations(window, unknown, c)
    return unknown + lo, level + _solve_banded_spd(normal, rhs)


def _innovation_sigma(x: np.ndarray, usable: np.ndarray, c: np.ndarray) -> float:
    """Robust standard deviation of the prediction error on the rows of usable samples."""
    p = len(c) - 1
    bad_in_row = np.convolve(~usable, np.ones(p + 1), mode="valid") > 0.5
    errors = np.convolve(x, c, mode="valid")[~bad_in_row]
    return float(np.median(np.abs(errors)) * _MAD_TO_SIGMA)


def _lsar_normal_equations(x: np.ndarray, unknown: np.ndarray, c: np.ndarray):
    """Normal equations ``G x_u = rhs`` for the samples of `x` at sorted indices `unknown`.

    The values at `unknown` that minimise the power of the AR prediction errors
    ``e = A_u x_u + b`` of every row involving them solve ``(A_u^T A_u) x_u = -A_u^T b``.
    ``G = A_u^T A_u`` is banded (two unknowns more than ``p`` apart share no row) and
    its entries are partial autocorrelations of ``c``, so it is built directly in the
    upper banded form of :func:`scipy.linalg.solveh_banded`. Returns ``(G, rhs)``.
    """
    n, p, m = len(x), len(c) - 1, len(unknown)
    seg_lo, seg_hi = max(int(unknown[0]) - p, 0), min(int(unknown[-1]) + p + 1, n)
    row_lo, row_hi = seg_lo + p, seg_hi - 1  # rows (prediction targets) that exist
    segment = x[seg_lo:seg_hi].copy()
    segment[unknown - seg_lo] = 0.0
    b = np.convolve(segment, c, mode="valid")  # errors with the unknowns set to zero

    # -A_u^T b: each unknown at u meets row u + k with weight c[k].
    rows = unknown[:, None] + np.arange(p + 1)
    exists = (rows >= row_lo) & (rows <= row_hi)
    b_at = np.where(exists, b[np.clip(rows - row_lo, 0, len(b) - 1)], 0.0)
    rhs = -(b_at * c).sum(axis=1)

    # G[i, j] = sum over existing rows r of c[r - u_i] c[r - u_j]; for u_j = u_i + lag,
    # with k = r - u_j in [0, p - lag]: sum_k c[k] c[k + lag] over the k whose row
    # exists, i.e. a difference of the running sums partial[lag, k].
    shifted = sliding_window_view(np.concatenate([c, np.zeros(p)]), p + 1)  # [lag, k] = c[k + lag]
    partial = np.zeros((p + 1, p + 2))
    np.cumsum(c * shifted, axis=1, out=partial[:, 1:])
    bandwidth = min(p, m - 1)
    offset = np.arange(bandwidth + 1)[:, None]  # G[i, i + offset], all offsets at once
    i = np.arange(m)[None, :]
    inside = i + offset < m
    u_i, u_j = unknown[i], unknown[np.minimum(i + offset, m - 1)]
    lag = np.minimum(u_j - u_i, p)
    k_lo = np.maximum(0, row_lo - u_j)
    k_hi = np.minimum(p - lag, row_hi - u_j)
    value = partial[lag, np.clip(k_hi + 1, 0, p + 1)] - partial[lag, np.clip(k_lo, 0, p + 1)]
    value = np.where(inside & (u_j - u_i <= p) & (k_hi >= k_lo), value, 0.0)
    normal = np.zeros((bandwidth + 1, m))  # upper form: normal[bw - offset, j] = G[j - offset, j]
    rows, cols = np.broadcast_arrays(bandwidth - offset, i + offset)
    normal[rows[inside], cols[inside]] = value[inside]
    # Tiny ridge: keeps unknowns near the array ends (few rows) well posed; elsewhere
    # the diagonal is at least c[0]**2 = 1.
    normal[bandwidth] += 1e-9
    return normal, rhs


def _solve_banded_spd(normal: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the symmetric positive definite system given by its upper band."""
    if len(rhs) > _DENSE_SOLVE_LIMIT:
        return linalg.solveh_banded(normal, rhs, check_finite=False)
    return np.linalg.solve(_dense_from_upper_band(normal), rhs)


def _dense_from_upper_band(banded: np.ndarray) -> np.ndarray:
    """Symmetric dense matrix from its upper band (``solveh_banded`` layout)."""
    bandwidth, m = banded.shape[0] - 1, banded.shape[1]
    dense = np.zeros((m, m))
    for offset in range(bandwidth + 1):
        i = np.arange(m - offset)
        dense[i, i + offset] = dense[i + offset, i] = banded[bandwidth - offset, offset:]
    return dense


class _Edge(NamedTuple):
    """The good signal next to a bridged gap."""

    value: float  # the sample at the edge
    slope: float  # its local derivative, per sample
    level: float  # the mean of the good samples near the edge


def _edge(x, good, edge, step, span) -> _Edge | None:
    """The good signal ending at index `edge`, seen looking away from the gap.

    `step` is -1 to look left from `edge`, +1 to look right; `span` samples are
    averaged for the level. ``None`` if `edge` is outside the signal.
    """
    n = len(x)
    if not 0 <= edge < n:
        return None
    idx = edge + step * np.arange(span)
    idx = idx[(idx >= 0) & (idx < n)]
    idx = idx[good[idx]] if good[idx].any() else idx[:1]
    near = idx[:8]  # slope from the nearest few samples: the local derivative
    slope = float(np.polyfit(near, x[near], 1)[0]) if len(near) >= 2 else 0.0
    return _Edge(float(x[edge]), slope, float(np.mean(x[idx])))


def _bridge_long_gap(x, good, start, stop, fade):
    """Fill ``x[start:stop]`` with a near-silent curve joined smoothly to the signal.

    Between two good stretches: a straight line between their mean levels, with a
    cubic fade at each end from the edge's value and slope onto the line. At an end of
    the signal: the edge value carried on, its slope fading out.
    """
    left = _edge(x, good, start - 1, -1, fade)
    right = _edge(x, good, stop, +1, fade)
    t = np.arange(start, stop, dtype=np.float64)
    if left is None or right is None:
        edge = left or right
        held = _Edge(edge.value, edge.slope, level=edge.value)
        distance, direction = (t - (start - 1), 1.0) if left else (stop - t, -1.0)
        length = min(fade, stop - start + 1)
        x[start:stop] = edge.value + _fade(held, 0.0, distance, length, direction)
        return
    t0, t1 = start - 1.0, float(stop)
    line_slope = (right.level - left.level) / (t1 - t0)
    length = min(fade, (t1 - t0) / 2)
    x[start:stop] = (
        left.level
        + line_slope * (t - t0)
        + _fade(left, line_slope, t - t0, length, 1.0)
        + _fade(right, line_slope, t1 - t, length, -1.0)
    )


def _fade(edge: _Edge, line_slope, distance, length, direction):
    """Departure from a line through ``edge.level`` that starts with the edge's value
    and slope and dies out, with zero slope, `length` samples from the edge (a cubic
    Hermite curve). `direction` is +1 right of the edge, -1 left of it."""
    tau = np.clip(distance / length, 0.0, 1.0)
    value_fade = 2 * tau**3 - 3 * tau**2 + 1  # 1 -> 0, flat at both ends
    slope_fade = tau * (1 - tau) ** 2  # 0 -> 0, unit slope at the edge
    slope_gap = (edge.slope - line_slope) * direction
    return (edge.value - edge.level) * value_fade + slope_gap * length * slope_fade


# --------------------------------------------------------------------------------------
# Detect and repair in one go
# --------------------------------------------------------------------------------------
def declick(
    displacement,
    *,
    sr: float,
    evidence=None,
    threshold: float = 5.0,
    ar_order: int = 24,
    repair_order: int = 32,
    min_gap: int = 32,
    widen: int = 2,
    confirm: float | None = 5.0,
    context: int = 512,
    max_gap: int | None = None,
) -> tuple[np.ndarray, DeclickReport]:
    """Detect clicks in a displacement signal and repair them.

    :func:`detect_clicks` followed by :func:`repair_gaps`; see those for the parameters
    (`ar_order` is the detection order, `repair_order` the interpolation order).

    Returns
    -------
    repaired : ndarray, shape (n,)
        The repaired displacement, dtype as :func:`repair_gaps`.
    report : DeclickReport
        The detected clicks and the regions bridged rather than interpolated.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(48_000) / 48_000
    >>> x = np.sin(2 * np.pi * 300 * t) + 1e-3 * np.random.default_rng(1).standard_normal(t.size)
    >>> x[20_000:20_005] -= 0.8
    >>> repaired, report = declick(x, sr=48_000)
    >>> error = np.abs(repaired - np.sin(2 * np.pi * 300 * t))[20_000:20_005]
    >>> report.clicks.n_clicks, bool(error.max() < 0.01)
    (1, True)
    """
    clicks = detect_clicks(
        displacement,
        sr=sr,
        evidence=evidence,
        threshold=threshold,
        ar_order=ar_order,
        min_gap=min_gap,
        widen=widen,
        confirm=confirm,
    )
    if max_gap is None:
        max_gap = int(round(0.02 * clicks.sr))
    repaired = repair_gaps(
        displacement, clicks.mask, ar_order=repair_order, context=context, max_gap=max_gap
    )
    bridged = clicks.regions[_bridged(clicks.regions, len(repaired), max_gap)]
    return repaired, DeclickReport(clicks=clicks, bridged=bridged, max_gap=max_gap)


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
