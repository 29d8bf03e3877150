"""Detect clicks and repair them in one go."""
from __future__ import annotations

import numpy as np

from .clicks import detect_clicks
from .gaps import _bridged, repair_gaps
from .results import DeclickReport


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
