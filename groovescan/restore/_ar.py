"""Autoregressive models: least-squares fit and two-sided interpolation error."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._regions import mask_to_regions


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
