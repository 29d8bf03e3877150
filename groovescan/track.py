"""Follow the spiral groove turn by turn, from its outer start to its end.

The scan is unwrapped into a polar image (angle x radius) around the fitted centre,
angles in playing order. A matched filter with the groove's own mean profile turns
every groove crossing into a peak. The first turn is the outermost groove; every later
turn is the first groove *inside* the previous one at the same angle — the previous
turn is a fence the track may never cross, which is what keeps it from skipping.
Where the groove cannot be seen (dust, scratch, tear, opaque film) the found pitch
disagrees with its neighbours; those columns are *coasted*: placed one local pitch
inside the previous turn, flagged, and given zero confidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .errors import NoGrooveError
from .geometry import DiscGeometry
from .sampling import sample

__all__ = ["GrooveTrack", "track_groove"]


@dataclass(frozen=True)
class GrooveTrack:
    """The groove's path, sampled at ``points_per_turn`` angles per turn.

    Attributes
    ----------
    radius_mm : (n_turns, points_per_turn) float64
        Groove centre radius; row ``k``, column ``j`` is playing angle
        ``phi = 2*pi*(k + j/points_per_turn)``, i.e. ``theta = theta_start + direction*phi``.
        NaN past the end of the groove.
    confidence : (n_turns, points_per_turn) float32
        0..1, matched-filter strength of the detection (0 where coasted).
    coasted : (n_turns, points_per_turn) bool
        True where the groove was not seen and the track was carried across.
    theta_start : float
        Angle (rad) where the groove starts (its outermost point).
    direction : int
        As in :class:`DiscGeometry`.
    end_phi : float
        Playing angle (rad) of the last tracked point.
    """

    radius_mm: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)
    coasted: np.ndarray = field(repr=False)
    points_per_turn: int
    theta_start: float
    direction: int
    end_phi: float
    pitch_mm: np.ndarray = field(repr=False, default=None)

    @property
    def n_turns(self) -> float:
        return self.end_phi / (2 * np.pi)

    @property
    def followed_fraction(self) -> float:
        """Share of the tracked groove that was seen rather than coasted."""
        valid = np.isfinite(self.radius_mm)
        return float((~self.coasted & valid).sum() / max(valid.sum(), 1))

    def turn_confidence(self) -> np.ndarray:
        """Mean confidence of each turn, (n_turns,)."""
        conf = np.where(np.isfinite(self.radius_mm), self.confidence, np.nan)
        return np.nanmean(conf, axis=1)

    def radius_at(self, phi):
        """Track radius (mm) at playing angles ``phi`` (rad), linearly interpolated."""
        flat = self.radius_mm.ravel()
        grid = np.arange(flat.size) * (2 * np.pi / self.points_per_turn)
        ok = np.isfinite(flat)
        return np.interp(phi, grid[ok], flat[ok], left=np.nan, right=np.nan)

    def theta_at(self, phi):
        return self.theta_start + self.direction * np.asarray(phi)


def _polar_image(image, geometry, theta, radii, lines_per_column, chunk=64):
    """Mean of ``lines_per_column`` radial lines per angle bin, (n_theta, n_radii) float32.

    Sampled in wedges of ``chunk`` columns so each read is a compact box.
    """
    n_theta = theta.size
    dtheta = 2 * np.pi / n_theta
    offsets = ((np.arange(lines_per_column) + 0.5) / lines_per_column - 0.5) * dtheta
    out = np.empty((n_theta, radii.size), dtype=np.float32)
    for start in range(0, n_theta, chunk):
        th = (theta[start:start + chunk, None] + offsets[None, :]).ravel()
        rows, cols = geometry.to_px(radii[None, :], th[:, None])
        values = sample(image, rows, cols, interpolation="linear")
        out[start:start + chunk] = np.nanmean(
            values.reshape(-1, lines_per_column, radii.size), axis=1)
    return out


def _groove_response(polar, template, step_mm, pitch_mm):
    """Matched-filter response along the radius, normalised by its local RMS."""
    filled = np.where(np.isfinite(polar), polar, np.nanmean(polar))
    local = ndimage.uniform_filter1d(filled, max(3, int(3 * pitch_mm / step_mm)), axis=1)
    flat = filled / np.maximum(local, 1e-6) - 1.0            # contrast: film density cancels
    kernel = (template - template.mean())[::-1]
    kernel = kernel / np.linalg.norm(kernel)
    response = ndimage.convolve1d(flat, kernel, axis=1, mode="nearest")
    # along the groove the response changes slowly: average a few columns
    response = ndimage.uniform_filter1d(response, 5, axis=0, mode="wrap")
    rms = np.sqrt(np.maximum(ndimage.uniform_filter1d(response**2, max(3, int(6 * pitch_mm / step_mm)), axis=1), 0))
    # a floor keeps blank film (no grooves, almost no signal) from being amplified into peaks
    floor = 0.2 * np.median(rms[rms > np.percentile(rms, 50)])
    return response / np.maximum(rms, max(floor, 1e-12))


def _peak_positions(response, threshold):
    """Local maxima above ``threshold``; returns (mask, last peak index at or below i)."""
    peak = (response > threshold)
    peak[:, 1:-1] &= (response[:, 1:-1] >= response[:, :-2]) & (response[:, 1:-1] > response[:, 2:])
    peak[:, [0, -1]] = False
    idx = np.where(peak, np.arange(response.shape[1])[None, :], -1)
    return peak, np.maximum.accumulate(idx, axis=1)


def _refine_peak(response, j, i):
    """Sub-sample peak index by a parabola through three samples."""
    i = np.clip(i, 1, response.shape[1] - 2)
    a, b, c = response[j, i - 1], response[j, i], response[j, i + 1]
    denom = a - 2 * b + c
    return i + np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)


def _running_median(x, size):
    filled = np.where(np.isfinite(x), x, np.nanmedian(x) if np.isfinite(x).any() else 0.0)
    return ndimage.median_filter(filled, size=size, mode="wrap")


def _find_start(response, peak, strong):
    """Column where the outermost groove begins (the spiral's outer end)."""
    n_r = response.shape[1]
    idx = np.where(peak & (response > strong), np.arange(n_r)[None, :], -1)
    outer = idx.max(axis=1).astype(float)
    outer[outer < 0] = np.nan
    outer = _running_median(outer, 9)
    # in playing order the outermost groove moves inward; where it starts, it jumps out
    jump = outer - np.roll(outer, 1)
    return int(np.argmax(jump)), outer


def track_groove(scan, geometry: DiscGeometry, *, points_per_turn=None, progress=None) -> GrooveTrack:
    """Follow the groove from its outer start to its end.

    Parameters
    ----------
    scan : Scan or 2-D array
    geometry : DiscGeometry from :func:`groovescan.find_geometry`.
    points_per_turn : int, optional
        Angular resolution of the track (default: about one point per 0.1 mm of arc
        at the outer edge, at least 2048).
    progress : callable(done, total), optional

    Returns
    -------
    GrooveTrack

    Notes
    -----
    Peak memory: the polar image, ``points_per_turn * (annulus width / pixel)`` float32
    twice (about 150 MB for a 7-inch disc at 2400 dpi).
    """
    image = getattr(scan, "image", scan)
    px = float(np.sqrt(geometry.px_mm[0] * geometry.px_mm[1]))
    pitch = geometry.pitch_mm
    if points_per_turn is None:
        points_per_turn = int(2 ** np.ceil(np.log2(max(2048, 2 * np.pi * geometry.r_outer_mm / 0.1))))
    n = int(points_per_turn)
    step = px
    margin = 3 * pitch
    radii = np.arange(max(geometry.r_inner_mm - margin, pitch), geometry.r_outer_mm + margin, step)
    arc_px = 2 * np.pi * geometry.r_outer_mm / n / px
    lines = int(np.clip(np.ceil(arc_px), 1, 8))
    theta_grid = geometry.direction * 2 * np.pi * np.arange(n) / n
    polar = _polar_image(image, geometry, theta_grid, radii, lines)
    template = geometry.profile
    t_step = geometry.profile_step_mm
    # resample the template to the polar image's radial step
    tx = (np.arange(template.size) - (template.size - 1) / 2) * t_step
    kx = np.arange(-np.floor(tx[-1] / step), np.floor(tx[-1] / step) + 1) * step
    kernel = np.interp(kx, tx, template)
    response = _groove_response(polar, kernel, step, pitch)
    del polar
    threshold = 1.0
    # beyond the grooved annulus (sector-averaged, so the outline and dust do not count)
    # there is no groove: a cut edge or a scratch there must not become turn 0
    response[:, radii > geometry.r_outer_mm + 0.5 * pitch] = 0.0
    peak, last_peak = _peak_positions(response, threshold)
    if peak.sum() < n:
        raise NoGrooveError("the groove could not be followed: too few groove crossings found")
    start, _ = _find_start(response, peak, 1.5)
    response = np.roll(response, -start, axis=0)
    last_peak = np.roll(last_peak, -start, axis=0)
    peak = np.roll(peak, -start, axis=0)
    theta_start = float(theta_grid[start])

    cols = np.arange(n)
    min_gap = max(1, int(0.45 * pitch / step))
    turns_r, turns_conf, turns_coast, turns_pitch = [], [], [], []
    # turn 0: the outermost strong groove in every column
    strong_idx = np.where(peak & (response > 1.5), np.arange(radii.size)[None, :], -1).max(axis=1)
    found = strong_idx >= 0
    r_idx = np.where(found, _refine_peak(response, cols, np.maximum(strong_idx, 1)), np.nan)
    r_idx_med = _running_median(r_idx, 33)
    bad = ~found | (np.abs(r_idx - r_idx_med) * step > 0.3 * pitch)
    r_idx = np.where(bad, r_idx_med, r_idx)
    fence = r_idx
    prev_pitch = np.full(n, pitch)
    turns_r.append(radii[0] + fence * step)
    turns_conf.append(np.where(bad, 0.0, np.minimum(response[cols, np.clip(strong_idx, 0, None)] / 4, 1)))
    turns_coast.append(bad)
    turns_pitch.append(prev_pitch)
    max_turns = int((geometry.r_outer_mm - geometry.r_inner_mm + 2 * margin) / (0.5 * pitch)) + 2
    for k in range(1, max_turns):
        # the seam: column 0 of turn k follows column n-1 of turn k-1 in playing order,
        # but the fence for column j is always the previous turn at the same angle
        search = np.floor(fence).astype(int) - min_gap
        if (search < 1).all():
            break
        cand = np.where(search >= 1, last_peak[cols, np.clip(search, 0, None)], -1)
        ok = cand >= 1
        cand_r = np.where(ok, _refine_peak(response, cols, np.maximum(cand, 1)), np.nan)
        this_pitch = (fence - cand_r) * step
        med = _running_median(this_pitch, max(9, n // 64) | 1)
        # a pitch that jumps from one turn to the next is a missed or a false groove
        med = np.where((med > 1.6 * prev_pitch) | (med < 0.6 * prev_pitch), prev_pitch, med) if k > 1 else med
        bad = ~ok | (np.abs(this_pitch - med) > 0.3 * med)
        if bad.mean() > 0.8:
            break                          # the groove has ended (run-out, blank film)
        new = np.where(bad, fence - med / step, cand_r)
        conf = np.where(bad, 0.0, np.minimum(response[cols, np.clip(cand, 0, None)] / 4, 1))
        turns_r.append(radii[0] + new * step)
        turns_conf.append(conf)
        turns_coast.append(bad)
        turns_pitch.append(med)
        prev_pitch = _running_median(np.where(bad, med, this_pitch), max(9, n // 16) | 1)
        fence = new
        if progress is not None:
            progress(k, max_turns)
    radius = np.array(turns_r)
    coasted = np.array(turns_coast)
    conf = np.array(turns_conf, dtype=np.float32)
    # trailing coasted turns past the groove's end are not groove
    last_seen = np.flatnonzero(~coasted.ravel())
    end = int(last_seen[-1]) + 1 if last_seen.size else 0
    flat = radius.ravel().copy()
    flat[end:] = np.nan
    # smooth the path a little along playing order (the audio is measured later)
    good = np.isfinite(flat)
    flat[good] = ndimage.uniform_filter1d(ndimage.median_filter(flat[good], 5, mode="nearest"), 3, mode="nearest")
    radius = flat.reshape(radius.shape)
    return GrooveTrack(radius_mm=radius, confidence=conf, coasted=coasted | ~np.isfinite(radius),
                       points_per_turn=n, theta_start=theta_start, direction=geometry.direction,
                       end_phi=float(end * 2 * np.pi / n), pitch_mm=np.array(turns_pitch))
