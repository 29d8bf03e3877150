"""Click scores: the AR interpolation error in robust sigmas, for many blocks at once."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d

from ._ar import _interpolation_error
from ._regions import _MAD_TO_SIGMA, _merge_close, mask_to_regions

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
