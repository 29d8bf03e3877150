"""A disc broken in two and laid back together: find the break, re-register the piece.

A crack shows in the sector profiles of the groove bands as a straight line across the
disc along which the grooves stop: a narrow gap with no groove texture where the pieces
part, or a step in the grooves' radial phase where they were laid back shifted. The
larger piece carries the spiral the geometry fits. The smaller one is the same spiral
moved by a small rigid shift ``d``, and a shift moves every groove radially by
``d . u(theta)`` whatever its radius: relative to the spiral, the smaller piece's
grooves are off by a sinusoid in angle, which gives ``d``, whole pitches included.

The piece's small turn moves its grooves along themselves: up to about a millisecond
of sound at each crossing of the break. The grooves cannot show it; the break's two
edges, the same ragged line on either piece, do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Crack"]

# sectors within this distance (mm) of the line hold the gap and the ragged edges
_EDGE_MARGIN_MM = 0.3


@dataclass(frozen=True)
class Crack:
    """Where the disc broke and how the smaller piece lies off the spiral.

    In mm about the spiral centre, ``x`` along columns, ``y`` along rows (as
    ``theta``). Points with ``x*cos(normal_angle) + y*sin(normal_angle) > distance_mm``
    are on the smaller piece, whose grooves lie ``offset_mm`` (x, y) away from where
    the spiral puts them, turned by ``rotation`` (rad, towards +theta) about the centre.
    """

    normal_angle: float
    distance_mm: float
    offset_mm: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0

    def along_normal(self, r_mm, theta):
        """Signed distance (mm) of polar points past the break line (> 0: moved piece)."""
        return np.asarray(r_mm) * np.cos(np.asarray(theta) - self.normal_angle) - self.distance_mm

    def on_piece(self, r_mm, theta):
        return self.along_normal(r_mm, theta) > 0

    def shift_px(self, r_mm, theta, px_mm):
        """(d_row, d_col) float32 to add to the spiral's pixel position of polar points."""
        moved = self.on_piece(r_mm, theta).astype(np.float32)
        dx, dy = np.float32(self.offset_mm[0]), np.float32(self.offset_mm[1])
        if self.rotation:
            # turning the piece about the centre moves it along the groove
            arc = np.float32(self.rotation) * np.asarray(r_mm, np.float32)
            dx = dx - arc * np.sin(theta).astype(np.float32)
            dy = dy + arc * np.cos(theta).astype(np.float32)
        return moved * (dy / np.float32(px_mm[0])), moved * (dx / np.float32(px_mm[1]))

    def recentred(self, shift_mm) -> Crack:
        """The same line seen from a centre moved by ``shift_mm`` (x, y)."""
        along = shift_mm[0] * np.cos(self.normal_angle) + shift_mm[1] * np.sin(self.normal_angle)
        return Crack(self.normal_angle, float(self.distance_mm - along), self.offset_mm, self.rotation)


# ----------------------------------------------------------------------------- finding the line

def _circular_runs(mask):
    """(start, length) of runs of True in a circular boolean array."""
    if mask.all() or not mask.any():
        return []
    first_false = int(np.argmin(mask))
    rolled = np.roll(mask, -first_false)
    labels, n = ndimage.label(rolled)
    runs = []
    for k in range(1, n + 1):
        idx = np.flatnonzero(labels == k)
        runs.append(((idx[0] + first_false) % mask.size, idx.size))
    return runs


def _break_points(flat, radii, theta, pitch_mm, *, max_width_rad=np.radians(3.0)):
    """Polar points (r, theta) where the grooves of radial sub-bands stop or step, and
    the sub-bands' radii.

    Two kinds of evidence, both narrow in angle: sectors with almost no groove texture
    (the gap between the pieces), and a step of the grooves' radial phase between the
    sectors on either side (pieces laid back shifted).
    """
    n_theta = theta.size
    d_theta = 2 * np.pi / n_theta
    max_width = max(1, int(max_width_rad / d_theta))
    n_sub = int(np.clip((radii[-1] - radii[0]) // 0.5, 1, 4))
    carrier = np.exp(-2j * np.pi * radii / pitch_mm)
    points, sub_radii = [], []
    for sub in np.array_split(np.arange(radii.size), n_sub):
        part = np.nan_to_num(flat[:, sub])
        r_mid = float(radii[sub].mean())
        sub_radii.append(r_mid)
        texture = part.std(axis=1)
        gap = texture < 0.5 * np.median(texture)
        coeff = part @ (carrier[sub] * np.hanning(sub.size))
        unit = coeff / np.maximum(np.abs(coeff), 1e-30)
        # phase change from the three sectors before to the three after each boundary,
        # against the spiral's and the centre's slow drift
        before = (np.roll(unit, 2) + np.roll(unit, 1) + unit) / 3
        after = (np.roll(unit, -1) + np.roll(unit, -2) + np.roll(unit, -3)) / 3
        drift = np.angle(np.mean(np.roll(unit, -1) * np.conj(unit)))
        jump = np.abs(np.angle(after * np.conj(before) * np.exp(-3j * drift)))
        noise = 1.4826 * np.median(jump)
        stepped = jump > max(8 * noise, 2 * np.pi / 40)
        # the gap and the step of one crossing may sit a sector or two apart: one point
        broken = gap | stepped
        broken = broken | (np.roll(broken, 1) & np.roll(broken, -1)) | (np.roll(broken, 2) & np.roll(broken, -2))
        # where the image ends the grooves stop along a straight line too: a break is
        # only seen with the grooves in view on both sides of it
        seen = np.isfinite(flat[:, sub]).all(axis=1)
        broken &= np.logical_and.reduce([np.roll(seen, k) for k in range(-3, 4)])
        for start, length in _circular_runs(broken):
            if length <= max_width:
                points.append((r_mid, theta[0] + (start + (length - 1) / 2) * d_theta))
    return points, sub_radii


def find_break(bands, pitch_mm, *, tolerance_mm=0.3, min_share=0.6, max_pairs=5000):
    """The straight line along which the grooves break, as a :class:`Crack`, or None.

    ``bands``: (detrended sector profiles, radii, sector angles) about the current
    centre. A break runs across the disc: the line must cross nearly every sub-band,
    and have break points in at least ``min_share`` of the places it crosses one. A
    scratch, a patch edge or the sparse turns of a lead-in do not make such a line.
    """
    points, all_radii = [], []
    for flat, radii, theta in bands:
        found, sub_radii = _break_points(flat, radii, theta, pitch_mm)
        points += found
        all_radii += sub_radii
    if len(points) < 4:
        return None
    r, th = np.array(points).T
    xy = np.stack([r * np.cos(th), r * np.sin(th)], axis=1)
    sub_radii = np.unique(np.round(all_radii, 6))
    sub_index = np.searchsorted(sub_radii, np.round(r, 6))   # each point's sub-band
    pairs = np.stack(np.triu_indices(len(xy), k=1), axis=1)
    if len(pairs) > max_pairs:          # a dusty disc: a random share of the candidate lines
        pairs = np.random.default_rng(0).choice(pairs, max_pairs, replace=False)
    best, best_key = None, (0, 0.0)
    for i, j in pairs:
        along = xy[j] - xy[i]
        length = np.hypot(*along)
        if length < 1.0:                # the two crossings of a line are far apart
            continue
        normal = np.array([-along[1], along[0]]) / length
        dist = float(normal @ xy[i])
        miss = np.abs(xy @ normal - dist)
        near = miss < tolerance_mm
        # crossings explained: each sub-band meets the line at most twice, on either
        # side of its point nearest the centre; several points at one crossing count once
        side = (xy @ np.array([-normal[1], normal[0]])) > 0
        count = np.unique(2 * sub_index[near] + side[near]).size
        key = (count, -float(miss[near].mean()))
        if key > best_key:
            best, best_key = (normal, dist), key
    if best is None:
        return None
    normal, dist = best
    best_count = best_key[0]
    # a line at distance c crosses every circle of radius > c twice
    crossed = int(np.sum(sub_radii > abs(dist) + tolerance_mm))
    if crossed < 0.75 * sub_radii.size or best_count < max(4, min_share * 2 * crossed):
        return None
    inliers = xy[np.abs(xy @ normal - dist) < tolerance_mm]
    # total least squares through the inliers
    mean = inliers.mean(axis=0)
    _, _, vt = np.linalg.svd(inliers - mean)
    normal = vt[1] if vt[1] @ normal > 0 else -vt[1]
    dist = float(normal @ mean)
    if dist < 0:                        # the moved piece is the smaller side
        normal, dist = -normal, -dist
    return Crack(float(np.arctan2(normal[1], normal[0])), dist)


# ----------------------------------------------------------------------------- the piece's offset

def piece_masks(crack, radii_mm, theta):
    """Sectors (of radial lines spanning ``radii_mm``) wholly on the fixed piece and
    wholly on the moved piece, both clear of the break's edges."""
    near = crack.along_normal(np.min(radii_mm), theta)
    far = crack.along_normal(np.max(radii_mm), theta)
    return (np.maximum(near, far) < -_EDGE_MARGIN_MM), (np.minimum(near, far) > _EDGE_MARGIN_MM)


def roll_to_arc_start(mask):
    """Roll that brings the first sector of the mask's longest circular run to the front."""
    runs = _circular_runs(mask)
    if not runs:
        return 0
    start, _ = max(runs, key=lambda run: run[1])
    return int(start)


def fit_offset(residuals, thetas, pitch_mm, guess=None):
    """Rigid offset (x, y) mm of the moved piece from its grooves' shifts off the spiral.

    ``residuals``: per band, the moved piece's groove shift minus the spiral's, unwrapped
    along the piece's arc (so known up to whole pitches per band); ``thetas`` their
    angles. The shift is ``dx*cos + dy*sin`` plus a whole number of pitches per band.
    The whole pitches come from ``guess`` (the offset the break's edges show) if given,
    else from a fit with a free constant per band; the sinusoid is then fitted with the
    constants held. Returns ``(offset, rms)`` or ``(None, inf)``.
    """
    usable = [(res, th) for res, th in zip(residuals, thetas) if res.size >= 20]
    if not usable:
        return None, np.inf
    n = len(usable)
    rows, rhs = [], []
    for k, (res, th) in enumerate(usable):
        design = np.zeros((th.size, 2 + n))
        design[:, 0], design[:, 1], design[:, 2 + k] = np.cos(th), np.sin(th), 1.0
        rows.append(design)
        rhs.append(res)
    design, rhs = np.vstack(rows), np.concatenate(rhs)
    if guess is None:
        constants = np.linalg.lstsq(design, rhs, rcond=None)[0][2:]
    else:
        left = rhs - design[:, :2] @ np.asarray(guess)
        constants = np.array([np.median(left[design[:, 2 + k] > 0]) for k in range(n)])
    fixed = rhs - design[:, 2:] @ (np.round(constants / pitch_mm) * pitch_mm)
    offset, *_ = np.linalg.lstsq(design[:, :2], fixed, rcond=None)
    rms = float(np.sqrt(np.mean((fixed - design[:, :2] @ offset) ** 2)))
    return (float(offset[0]), float(offset[1])), rms


# ----------------------------------------------------------------------------- the piece's turn

def _gap_edges(profiles, u):
    """Edges (u, mm) of the gap in each cross-profile of the break, NaN where unclear.

    The gap holds no film: whatever the scanner shows there (light in transmission,
    the lid in reflection) differs from the film on both sides more than the grooves do
    once the profiles are averaged along the break.
    """
    level = np.median(profiles, axis=1, keepdims=True)
    depart = np.abs(profiles - level)
    spread = 1.4826 * np.median(np.abs(depart - np.median(depart, axis=1, keepdims=True)), axis=1)
    peak = np.argmax(depart, axis=1)
    top = depart[np.arange(profiles.shape[0]), peak]
    left = np.full(profiles.shape[0], np.nan)
    right = np.full(profiles.shape[0], np.nan)
    for i in np.flatnonzero(top > 8 * np.maximum(spread, 1e-12)):
        half = 0.5 * top[i]
        row = depart[i]
        lo = peak[i]
        while lo > 0 and row[lo - 1] > half:
            lo -= 1
        hi = peak[i]
        while hi < row.size - 1 and row[hi + 1] > half:
            hi += 1
        if lo == 0 or hi == row.size - 1:
            continue
        # sub-sample crossings of the half level
        left[i] = u[lo - 1] + (half - row[lo - 1]) / (row[lo] - row[lo - 1]) * (u[lo] - u[lo - 1])
        right[i] = u[hi] + (row[hi] - half) / (row[hi] - row[hi + 1]) * (u[hi + 1] - u[hi])
    return left, right


@dataclass(frozen=True)
class BreakEdges:
    """The gap's two edges along the break line: ``s`` (mm along the line from its point
    nearest the centre) and each edge's distance (mm) across the line, NaN where unclear."""

    s: np.ndarray
    fixed: np.ndarray
    moved: np.ndarray

    def width(self, slide):
        """The moved edge less the fixed one slid ``slide`` mm along the break (NaN where
        either is unknown)."""
        ok = np.isfinite(self.fixed)
        return self.moved - np.interp(self.s - slide, self.s[ok], self.fixed[ok], left=np.nan, right=np.nan)

    def misfit(self, slide, push, turn):
        """Median distance (mm) of the moved edge from the fixed one slid, pushed and
        turned, and the number of positions compared. The median: where the edges are
        sharply ragged the half-level crossings jump, and the hole breaks the gap."""
        # the moved edge tilts towards the fixed one as the piece turns towards +theta
        resid = self.width(slide) - push + turn * self.s
        use = np.isfinite(resid)
        return (float(np.median(np.abs(resid[use]))) if use.any() else np.inf), int(use.sum())


def break_edges(sample_line, crack, r_max_mm, px_mm, *, step_mm=0.05, across_mm=1.0):
    """The break's edges (:class:`BreakEdges`) up to radius ``r_max_mm``, or None.

    ``sample_line(x_mm, y_mm)`` reads the image at points in mm about the centre. None
    where the gap cannot be followed along enough of the break (pieces laid edge to
    edge, or a break too short to tell a tilt).
    """
    reach = np.sqrt(max(r_max_mm**2 - crack.distance_mm**2, 0.0))
    if reach < 5.0:
        return None
    s = np.arange(-reach, reach, step_mm)
    u = np.arange(-across_mm, across_mm, px_mm / 2)
    n, tangent = _frame(crack)
    base = crack.distance_mm * n
    x = base[0] + s[:, None] * tangent[0] + u[None, :] * n[0]
    y = base[1] + s[:, None] * tangent[1] + u[None, :] * n[1]
    profiles = sample_line(x, y)
    # along the break the gap stays put while the grooves crossing it average out
    window = max(3, int(1.0 / step_mm))
    profiles = ndimage.uniform_filter1d(np.nan_to_num(profiles, nan=np.nanmedian(profiles)), window, axis=0)
    fixed_edge, moved_edge = _gap_edges(profiles, u)
    ok = np.isfinite(fixed_edge)
    if ok.sum() < 0.3 * s.size or np.ptp(s[ok]) < 5.0:
        return None
    return BreakEdges(s, fixed_edge, moved_edge)


def _frame(crack):
    n = np.array([np.cos(crack.normal_angle), np.sin(crack.normal_angle)])
    return n, np.array([-n[1], n[0]])


def motion_from_edges(edges, crack, *, max_slide_mm=0.8):
    """``(turn, offset)`` of the moved piece from its edge alone (as in :class:`Crack`).

    The slide along the break is found by matching the edges' raggedness; push and
    tilt are then a straight-line fit of the gap's width. Good to a few hundredths of a
    millimetre: enough to tell whole pitches apart, not to place the grooves.
    """
    n, tangent = _frame(crack)
    best = (np.inf, 0.0, 0.0, 0.0)
    for slide in np.arange(-max_slide_mm, max_slide_mm, 0.025):
        width = edges.width(slide)
        use = np.isfinite(width)
        if use.sum() < 0.3 * edges.s.size:
            continue
        design = np.stack([np.ones(use.sum()), edges.s[use]], axis=1)
        coef, *_ = np.linalg.lstsq(design, width[use], rcond=None)
        # once more without the jumps of sharply ragged stretches (see BreakEdges.misfit)
        resid = np.abs(width[use] - design @ coef)
        keep = resid <= 3 * np.median(resid)
        coef, *_ = np.linalg.lstsq(design[keep], width[use][keep], rcond=None)
        score = float(np.median(np.abs(width[use] - design @ coef)))
        if score < best[0]:
            best = (score, float(slide), float(coef[0]), float(coef[1]))
    if not np.isfinite(best[0]):
        return None
    _, slide, push, tilt = best
    turn = -tilt
    # the motion at the line's base point, as a shift at the centre plus the turn about it
    offset = push * n + slide * tangent - turn * crack.distance_mm * tangent
    return turn, (float(offset[0]), float(offset[1]))


def turn_from_edges(edges, crack, offset, *, max_turn=0.015, step=2e-5):
    """The moved piece's turn (rad) given its offset at the centre (from the grooves).

    With the offset known, the edge's push across the break is fixed and its slide
    along the break follows the turn, so only the turn is searched: the raggedness
    must match and the tilt agree at once.
    """
    n, tangent = _frame(crack)
    push = float(n @ offset)
    along = float(tangent @ offset)
    turns = np.arange(-max_turn, max_turn + step / 2, step)
    scores = []
    for turn in turns:
        rms, used = edges.misfit(along + turn * crack.distance_mm, push, turn)
        scores.append(rms if used >= 0.3 * edges.s.size else np.inf)
    return float(turns[int(np.argmin(scores))])
