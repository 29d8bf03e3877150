"""Sub-pixel position of both groove walls along the track, one value per audio sample.

For every sample the scan is read along a short radial line across the groove, centred
on the tracked path (several lines side by side where the groove runs faster than one
pixel per sample). Each line is compared with the groove's own mean cross-section (the
*template*, learnt from the scan): a correlation over whole-pixel shifts finds the
groove, then a Gauss–Newton least-squares step per wall, with its own gain and offset,
places each wall to a small fraction of a pixel. Gain and offset per wall cancel the
X-ray picture and slow changes of wall contrast; two walls give two estimates whose
disagreement exposes dust and scratches.

Work is done in angular wedges across all turns, so every read of the scan is a compact
box and memory stays bounded whatever the scan size.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .geometry import DiscGeometry
from .sampling import cpu_workers, sample_compact
from .track import GrooveTrack

__all__ = ["WallSignal", "measure_walls"]


@dataclass(frozen=True)
class WallSignal:
    """Wall positions at ``samples_per_turn`` uniformly spaced playing angles.

    Attributes
    ----------
    left_mm, right_mm : (n,) float32
        Radial position (mm, positive outwards) of the inner ("left") and outer
        ("right") wall relative to ``track_mm``; NaN where not measurable.
    track_mm : (n,) float64
        Tracked groove-centre radius at each sample.
    gain : (n, 2) float32
        Fitted template gain of each wall (1 = typical contrast).
    residual : (n,) float32
        RMS misfit of the template relative to the template's contrast.
    coasted : (n,) bool
        Samples where the tracker did not see the groove.
    samples_per_turn : int
    template : (m,) float32 mean groove cross-section, step ``template_step_mm``.
    """

    left_mm: np.ndarray = field(repr=False)
    right_mm: np.ndarray = field(repr=False)
    track_mm: np.ndarray = field(repr=False)
    gain: np.ndarray = field(repr=False)
    residual: np.ndarray = field(repr=False)
    coasted: np.ndarray = field(repr=False)
    samples_per_turn: int
    template: np.ndarray = field(repr=False)
    template_step_mm: float
    noise_mm: float

    @property
    def position_mm(self) -> np.ndarray:
        """Groove centre radius: track plus the mean of the two walls' offsets."""
        return self.track_mm + 0.5 * (self.left_mm.astype(np.float64) + self.right_mm)

    @property
    def disagreement_mm(self) -> np.ndarray:
        return self.left_mm - self.right_mm


@dataclass(frozen=True)
class _Estimator:
    """Precomputed linear algebra of the two-stage shift estimator."""

    offsets: np.ndarray          # (L,) sample positions across the groove, mm
    coarse_bank: np.ndarray      # (L, K) zero-mean templates at whole-step shifts
    coarse_shifts: np.ndarray    # (K,) mm
    fine_shifts: np.ndarray      # (F,) mm
    fine_pinv: np.ndarray        # (F, 2 walls, 3, L): rows -> (gain, offset, -gain*delta)


def _template_at(template, step, v):
    """Template value at offsets ``v`` (mm); flat land level outside its support."""
    x = (np.arange(template.size) - (template.size - 1) / 2) * step
    return np.interp(v, x, template, left=template[0], right=template[-1])


def _build_estimator(template, t_step, offsets, max_shift, half_width):
    step = offsets[1] - offsets[0]
    coarse_shifts = np.arange(-max_shift, max_shift + step / 2, step)
    bank = np.empty((offsets.size, coarse_shifts.size))
    for k, s in enumerate(coarse_shifts):
        t = _template_at(template, t_step, offsets - s)
        window = np.abs(offsets - s) <= half_width
        t = np.where(window, t - t[window].mean(), 0.0)
        bank[:, k] = t / max(np.linalg.norm(t), 1e-12)
    fine_shifts = np.arange(-max_shift, max_shift + step / 8, step / 4)
    pinv = np.zeros((fine_shifts.size, 2, 3, offsets.size))
    h = step / 4
    for k, s in enumerate(fine_shifts):
        t = _template_at(template, t_step, offsets - s)
        dt = (_template_at(template, t_step, offsets - s + h) -
              _template_at(template, t_step, offsets - s - h)) / (2 * h)
        for w, window in enumerate(((offsets <= s) & (offsets >= s - half_width),
                                    (offsets >= s) & (offsets <= s + half_width))):
            design = np.stack([t, np.ones_like(t), dt], axis=1)[window]
            pinv[k, w][:, window] = np.linalg.pinv(design)
    return _Estimator(offsets, bank.astype(np.float32), coarse_shifts, fine_shifts,
                      pinv.astype(np.float32))


def _grouped_apply(profiles, idx, pinv):
    """``pinv[idx[i]] @ profiles[i]`` for every row, one matrix product per distinct index."""
    out = np.empty((profiles.shape[0], pinv.shape[1]), np.float32)
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    ends = np.r_[starts[1:], sorted_idx.size]
    for a, b in zip(starts, ends):
        rows = order[a:b]
        out[rows] = profiles[rows] @ pinv[sorted_idx[a]].T
    return out


def _estimate(profiles, est: _Estimator, n_iter=2):
    """Shift (mm) of each wall for (n, L) float32 profiles, and each wall's gain.

    A correlation with templates at whole-sample shifts and a parabola give a start;
    ``n_iter`` Gauss-Newton steps per wall, each from the nearest quarter-step template,
    refine it.
    """
    filled = profiles
    if not np.isfinite(profiles).all():
        fill = np.nanmean(profiles, axis=1, keepdims=True)
        filled = np.where(np.isfinite(profiles), profiles, np.nan_to_num(fill))
    corr = filled @ est.coarse_bank
    k = np.clip(np.argmax(corr, axis=1), 1, corr.shape[1] - 2)
    rows = np.arange(k.size)
    a, b, c = corr[rows, k - 1], corr[rows, k], corr[rows, k + 1]
    denom = a - 2 * b + c
    safe = np.abs(denom) > 1e-12
    frac = np.where(safe, 0.5 * (a - c) / np.where(safe, denom, 1), 0.0)
    coarse_step = est.coarse_shifts[1] - est.coarse_shifts[0]
    shift = est.coarse_shifts[k] + np.clip(frac, -0.5, 0.5) * coarse_step
    fine_step = est.fine_shifts[1] - est.fine_shifts[0]
    shifts = np.stack([shift, shift], axis=1)
    gain = np.empty_like(shifts)
    for _ in range(n_iter):
        # a flat profile (no wall to fit) gave NaN: it stays unmeasured
        lost = ~np.isfinite(shifts)
        idx = np.clip(np.round((np.where(lost, 0.0, shifts) - est.fine_shifts[0]) / fine_step).astype(int),
                      0, est.fine_shifts.size - 1)
        for w in range(2):
            coef = _grouped_apply(filled, idx[:, w], est.fine_pinv[:, w])
            gain[:, w] = coef[:, 0]
            ok = np.abs(coef[:, 0]) > 1e-9
            delta = np.where(ok, -coef[:, 2] / np.where(ok, coef[:, 0], 1.0), np.nan)
            # a linear step is only trusted within a fraction of the blur width
            shifts[:, w] = est.fine_shifts[idx[:, w]] + np.clip(delta, -2 * fine_step, 2 * fine_step)
        shifts[lost] = np.nan
    return shifts, gain, idx


def _learn_template(profiles, offsets, half_width, n_iter=3):
    """Mean groove cross-section from profiles centred on the track, re-aligned twice."""
    step = offsets[1] - offsets[0]
    fine_step = step / 4
    grid = np.arange(offsets[0], offsets[-1] + fine_step / 2, fine_step)
    template = np.nanmedian(profiles, axis=0)
    template = np.interp(grid, offsets, template)
    for _ in range(n_iter):
        est = _build_estimator(template, fine_step, offsets, 0.5 * half_width, half_width)
        shifts, gain, _ = _estimate(profiles, est, n_iter=1)
        centre = np.nanmean(shifts, axis=1)
        ok = np.isfinite(centre) & (np.abs(centre) < 0.45 * half_width)
        aligned = np.array([np.interp(grid, offsets - c, p) for c, p in zip(centre[ok], profiles[ok])])
        template = np.nanmedian(aligned, axis=0)
        # re-centre on the symmetry axis so that "centre" means midway between the walls
        mirrored = np.correlate(template - template.mean(), (template - template.mean())[::-1], "full")
        axis = (np.argmax(mirrored) - (template.size - 1)) / 2.0
        template = np.interp(grid, grid - axis * fine_step, template)
    return template.astype(np.float32), fine_step


def measure_walls(scan, geometry: DiscGeometry, track: GrooveTrack, *, samples_per_turn,
                  step_px=0.5, n_wedges=None, workers=None, progress=None) -> WallSignal:
    """Measure both walls of the groove at ``samples_per_turn`` angles per turn.

    Parameters
    ----------
    scan : Scan or 2-D array
    geometry, track : results of the previous stages.
    samples_per_turn : int
        Audio samples per revolution; ``samples_per_turn * rpm / 60`` is the
        sample rate of the result.
    step_px : float
        Spacing of the points read across the groove, in pixels.
    n_wedges : int, optional
        Angular wedges the work is split into (default: enough to keep each small).
    workers : int, optional
        Threads measuring wedges at once (default: the CPUs this process may use).
    progress : callable(done, total), optional

    Returns
    -------
    WallSignal

    Notes
    -----
    Peak memory: about ``100 * n_samples / n_wedges * L`` bytes for each wedge in
    flight (one per worker; ``L`` points across the groove), plus the outputs
    (~40 bytes a sample): about 1 GB for a 3-minute side at 44.1 kHz.
    """
    image = geometry.reader(getattr(scan, "image", scan))
    n_per = int(samples_per_turn)
    n = int(np.floor(track.end_phi / (2 * np.pi) * n_per))
    phi = np.arange(n) * (2 * np.pi / n_per)
    track_mm = track.radius_at(phi)
    px = float(np.sqrt(geometry.px_mm[0] * geometry.px_mm[1]))
    pitch = geometry.pitch_mm
    step = step_px * px
    half = 0.5 * pitch + 4 * px
    offsets = np.arange(-np.ceil(half / step), np.ceil(half / step) + 1) * step
    half_width = 0.45 * pitch
    coasted_track = track.coasted.ravel()
    coasted = coasted_track[np.minimum((phi / (2 * np.pi) * track.points_per_turn).astype(int),
                                       coasted_track.size - 1)]

    offsets32 = offsets.astype(np.float32)
    centre_row, centre_col = (np.float32(c) for c in geometry.centre_px)

    def read_lines(index):
        """Profiles (len(index), L) across the groove, averaged over tangential lines.

        Where a sample spans more than a pixel of arc, several lines side by side
        cover it, so no pixel between samples goes unread (no aliased noise).
        """
        arc_px = 2 * np.pi * float(np.max(track_mm[index])) / n_per / px
        n_lines = int(np.clip(np.ceil(arc_px), 1, 4))
        tangential = ((np.arange(n_lines) + 0.5) / n_lines - 0.5) * (2 * np.pi / n_per)
        theta = track.theta_at(phi[index])[:, None] + track.direction * tangential[None, :]
        to_row = (np.sin(theta) / geometry.px_mm[0]).astype(np.float32)[:, :, None]
        to_col = (np.cos(theta) / geometry.px_mm[1]).astype(np.float32)[:, :, None]
        r = track_mm[index].astype(np.float32)[:, None, None]
        # centre + (r + offset) * direction, as a base point plus a step per offset
        rows = (centre_row + r * to_row) + offsets32 * to_row
        cols = (centre_col + r * to_col) + offsets32 * to_col
        if geometry.crack is not None:         # a broken disc's moved piece, by track point
            d_row, d_col = geometry.crack.shift_px(r, theta[:, :, None], geometry.px_mm)
            rows += d_row
            cols += d_col
        values = sample_compact(image, rows.reshape(-1, offsets.size), cols.reshape(-1, offsets.size),
                                interpolation="cubic")
        values = values.reshape(index.size, n_lines, offsets.size)
        return values.mean(axis=1) if n_lines > 1 else values[:, 0]

    def read(index, chunk=8192):
        # a few thousand samples at a time keep the coordinate maps in the CPU's cache;
        # consecutive samples of a wedge are neighbouring turns, so each box is compact
        out = np.empty((index.size, offsets.size), np.float32)
        for start in range(0, index.size, chunk):
            out[start:start + chunk] = read_lines(index[start:start + chunk])
        return out

    # the template, from a spread subset of well-tracked samples
    rng = np.random.default_rng(0)
    good = np.flatnonzero(~coasted & np.isfinite(track_mm))
    subset = np.sort(rng.choice(good, size=min(good.size, 20000), replace=False)) if good.size else good
    if subset.size < 100:
        subset = np.flatnonzero(np.isfinite(track_mm))[:20000]
    template, t_step = _learn_template(read(subset), offsets, half_width)
    max_shift = 0.5 * pitch - 0.5 * half_width if pitch > half_width else step
    max_shift = max(max_shift, 3 * step)
    est = _build_estimator(template, t_step, offsets, max_shift, half_width)

    left = np.full(n, np.nan, np.float32)
    right = np.full(n, np.nan, np.float32)
    gain = np.full((n, 2), np.nan, np.float32)
    residual = np.full(n, np.nan, np.float32)
    # wedges small enough that coordinates stay at ~16 MB a map
    n_wedges = n_wedges or max(16, int(np.ceil(n * offsets.size / 2e6)))
    column = np.arange(n) % n_per
    order = np.argsort(column * n_wedges // n_per, kind="stable")
    bounds = np.searchsorted((column * n_wedges // n_per)[order], np.arange(n_wedges + 1))
    contrast = np.std(template)

    def measure_wedge(w):
        index = order[bounds[w]:bounds[w + 1]]
        index = index[np.isfinite(track_mm[index])]
        if index.size == 0:
            return
        profiles = read(index)
        shifts, g, _ = _estimate(profiles, est)
        # a groove partly off the image (or the scan) cannot be measured: the profile's
        # mean stands in for what is missing, and the walls' fit would land anywhere
        unseen = ~np.isfinite(profiles).all(axis=1)
        shifts[unseen] = np.nan
        g[unseen] = np.nan
        left[index] = shifts[:, 0]      # window at v <= s: the inner wall (smaller radius)
        right[index] = shifts[:, 1]
        gain[index] = g
        residual[index] = np.std(profiles, axis=1) / max(contrast, 1e-12)

    # wedges write disjoint samples; OpenCV and numpy release the GIL for the heavy work.
    # BLAS is kept to one thread: its own threads on these small products only contend
    with threadpool_limits(1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=cpu_workers(workers)) as pool:
        for done, _ in enumerate(pool.map(measure_wedge, range(n_wedges)), 1):
            if progress is not None:
                progress(done, n_wedges)
    d = (left - right)[np.isfinite(left) & np.isfinite(right)]
    noise = float(1.4826 * np.median(np.abs(d - np.median(d))) / 2) if d.size else np.nan
    return WallSignal(left_mm=left, right_mm=right, track_mm=track_mm, gain=gain, residual=residual,
                      coasted=coasted, samples_per_turn=n_per, template=template,
                      template_step_mm=t_step, noise_mm=noise)
