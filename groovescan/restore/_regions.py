"""Regions of a boolean mask, input checks, and constants shared by the restore steps."""
from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import ParameterError

# The per-gap loops stay inside numpy and below the sizes where BLAS starts threads.
# numpy and scipy wheels each bundle their own OpenBLAS; alternating small calls between
# the two thread pools, or waking threads for tiny products, made the LSAR loop 10-25x
# slower on a busy 2-CPU machine (1e6 samples, 1 % masked: 5-11 s instead of 0.4 s).
# So LSAR systems up to this size are solved densely with numpy (microseconds), larger
# ones with scipy's banded solver, whose O(m * order**2) then beats O(m**3).
_DENSE_SOLVE_LIMIT = 256

# Ratio of the standard deviation to the median absolute value of a zero-mean Gaussian.
_MAD_TO_SIGMA = 1.0 / stats.norm.ppf(0.75)



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
