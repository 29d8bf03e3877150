"""Damage on the film or the glass: dust, hairs and scratches as strokes, and their
rasterised opacity over a block of rows."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ._common import _SUPERSAMPLE, TWO_PI, _smooth_noise
from .settings import RenderSettings


# =====================================================================================
# Damage on the film or the glass: dust, hairs, scratches (image frame)
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Stroke:
    """A dust speck (one point) or a hair/scratch (polyline), render-frame pixels."""

    kind: str
    points_px: np.ndarray            # (n, 2) row, col
    width_px: float                  # diameter of a speck, width of a line
    opacity: float                   # fraction of light it blocks (or adds, reflective)
    row_range: tuple[float, float]


def _stroke(kind, points_px, width_px, opacity) -> _Stroke:
    pts = np.atleast_2d(np.asarray(points_px, dtype=np.float64))
    return _Stroke(kind, pts, float(width_px), float(opacity),
                   (float(pts[:, 0].min()), float(pts[:, 0].max())))


def _random_path(start, heading, length_mm, step_mm, curl_per_mm, rng) -> np.ndarray:
    """A smooth random curve (x, y mm): heading changes by a smoothed random curvature."""
    n = max(2, int(length_mm / step_mm) + 1)
    curvature = curl_per_mm * _smooth_noise((n,), max(n / 8, 1.0), rng)
    angle = heading + np.cumsum(curvature) * step_mm
    xy = np.cumsum(np.stack([np.cos(angle), np.sin(angle)], axis=1) * step_mm, axis=0)
    return xy - xy[0] + np.asarray(start)


def _make_strokes(s: RenderSettings, to_px: Callable, rng: np.random.Generator,
                  px_mm: float) -> tuple[_Stroke, ...]:
    """Dust, hairs and scratches scattered over the disc; ``to_px`` maps disc mm to px."""
    radius = s.disc_diameter_mm / 2.0
    strokes = []

    def somewhere_on_disc():
        r, a = radius * math.sqrt(rng.uniform(0, 1)), rng.uniform(0, TWO_PI)
        return (r * math.cos(a), r * math.sin(a))

    n_dust = int(rng.poisson(s.dust_per_cm2 * math.pi * radius ** 2 / 100.0))
    for _ in range(n_dust):
        radius_um = float(np.clip(rng.lognormal(math.log(8.0), 0.5), 3.0, 40.0))
        strokes.append(_stroke("dust", to_px(np.array([somewhere_on_disc()])),
                               2e-3 * radius_um / px_mm, rng.uniform(0.7, 1.0)))
    for _ in range(s.hairs):
        path = _random_path(somewhere_on_disc(), rng.uniform(0, TWO_PI), rng.uniform(3, 15),
                            0.05, rng.uniform(0.1, 0.5), rng)
        strokes.append(_stroke("hair", to_px(path), rng.uniform(15, 60) * 1e-3 / px_mm,
                               rng.uniform(0.6, 0.95)))
    for _ in range(s.scratches):
        path = _random_path(somewhere_on_disc(), rng.uniform(0, TWO_PI), rng.uniform(15, 80),
                            0.2, rng.uniform(0.002, 0.01), rng)
        strokes.append(_stroke("scratch", to_px(path), rng.uniform(6, 20) * 1e-3 / px_mm,
                               rng.uniform(0.25, 0.55)))
    return tuple(strokes)


def _to_patch(v: np.ndarray, origin: int) -> np.ndarray:
    """Pixel coordinates to OpenCV fixed-point (4 fraction bits) supersampled coordinates.

    Pixel ``j`` covers ``[j - 0.5, j + 0.5]``; supersampled cell ``k`` of a patch starting
    at pixel ``origin`` is centred at ``origin - 0.5 + (k + 0.5) / S``.
    """
    return np.rint(((v - origin + 0.5) * _SUPERSAMPLE - 0.5) * 16).astype(np.int32)


def _rasterise_stroke(st: _Stroke, r0: int, r1: int, width: int, blur_px: float):
    """Coverage (0..1) of one stroke over rows ``r0:r1``: drawn anti-aliased at 4x,
    blurred by the PSF, area-averaged. Returns (patch, col0) or None if it misses."""
    halo = int(math.ceil(3 * blur_px + st.width_px / 2 + 2))
    pts = st.points_px
    if len(pts) > 1:                     # keep segments that come near these rows
        lo = np.minimum(pts[:-1, 0], pts[1:, 0])
        hi = np.maximum(pts[:-1, 0], pts[1:, 0])
        seg = np.flatnonzero((hi >= r0 - halo) & (lo <= r1 - 1 + halo))
        if seg.size == 0:
            return None
        used = np.unique(np.concatenate([seg, seg + 1]))
    else:
        used = np.array([0])
    c0 = max(0, int(math.floor(pts[used, 1].min())) - halo)
    c1 = min(width, int(math.ceil(pts[used, 1].max())) + halo + 1)
    if c1 <= c0:
        return None
    p0 = r0 - halo
    rows = r1 - r0 + 2 * halo
    canvas = np.zeros((rows * _SUPERSAMPLE, (c1 - c0) * _SUPERSAMPLE), np.uint8)
    thick = max(1, int(round(st.width_px * _SUPERSAMPLE)))
    if len(pts) == 1:
        centre = (int(_to_patch(pts[0, 1], c0)), int(_to_patch(pts[0, 0], p0)))
        cv2.circle(canvas, centre, int(round(st.width_px / 2 * _SUPERSAMPLE * 16)), 255,
                   -1, cv2.LINE_AA, 4)
    else:
        cols, rws = _to_patch(pts[:, 1], c0), _to_patch(pts[:, 0], p0)
        for i in seg:
            cv2.line(canvas, (int(cols[i]), int(rws[i])), (int(cols[i + 1]), int(rws[i + 1])),
                     255, thick, cv2.LINE_AA, 4)
    cover = canvas.astype(np.float32) * (1.0 / 255.0)
    if blur_px * _SUPERSAMPLE > 0.3:
        cover = cv2.GaussianBlur(cover, (0, 0), blur_px * _SUPERSAMPLE)
    cover = cv2.resize(cover, (c1 - c0, rows), interpolation=cv2.INTER_AREA)
    return cover[halo:halo + (r1 - r0)], c0


def _damage_opacity(strokes, r0: int, r1: int, width: int, blur_px: float, blurs=None):
    """Fraction of light blocked by damage over rows ``r0:r1``, or None if none there.

    ``blurs``: optional blur (px) of each stroke, instead of ``blur_px`` for all.
    """
    opacity = None
    for n, st in enumerate(strokes):
        blur = blur_px if blurs is None else blurs[n]
        reach = 3 * blur + st.width_px + 3
        if st.row_range[1] < r0 - reach or st.row_range[0] > r1 + reach:
            continue
        hit = _rasterise_stroke(st, r0, r1, width, blur)
        if hit is None:
            continue
        cover, c0 = hit
        if opacity is None:
            opacity = np.zeros((r1 - r0, width), np.float32)
        view = opacity[:, c0:c0 + cover.shape[1]]
        view += (1.0 - view) * (st.opacity * cover)
    return opacity
