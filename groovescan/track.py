"""Follow the spiral groove turn by turn, from its outer start to its end.

The scan is unwrapped into a polar image (angle x radius) around the fitted centre,
angles in playing order. A matched filter with the groove's own mean profile turns
every groove crossing into a peak. One turn is seeded on the spiral the geometry
fitted; from it the track goes outwards, turn by turn, to the spiral's start, and
inwards to its end. Each turn is the first groove *past* the previous one at the same
angle: the previous turn is a fence the track may never cross, which is what keeps it
from skipping. Where the groove cannot be seen (dust, scratch, tear, opaque film) the
found spacing disagrees with its neighbours; those columns are *coasted*: placed one
local pitch past the previous turn, flagged, and given zero confidence.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .errors import NoGrooveError
from .geometry import DiscGeometry, music_spacing
from .sampling import cpu_workers, sample_compact

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

    @property
    def turn_spacing_mm(self) -> float:
        """The music's pitch as the groove shows it: the commonest radial distance from
        one turn to the next where both were seen (mm), NaN if no two turns were.

        This is the pitch measured on the groove itself: the geometry's pitch is a
        spectral estimate, good to a percent or two on a side of a few turns; the
        spacing of the followed turns is good to a fraction of a percent.
        """
        seen = ~self.coasted & np.isfinite(self.radius_mm)
        both = seen[:-1] & seen[1:]
        return music_spacing((self.radius_mm[:-1] - self.radius_mm[1:])[both])

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

    Sampled in wedges of ``chunk`` columns so each read is a compact box; two wedges
    at a time, as OpenCV and numpy release the GIL.
    """
    n_theta = theta.size
    dtheta = 2 * np.pi / n_theta
    offsets = ((np.arange(lines_per_column) + 0.5) / lines_per_column - 0.5) * dtheta
    out = np.empty((n_theta, radii.size), dtype=np.float32)
    radii32 = radii.astype(np.float32)[None, :]

    def wedge(start):
        th = (theta[start:start + chunk, None] + offsets[None, :]).ravel()
        to_row = (np.sin(th) / geometry.px_mm[0]).astype(np.float32)[:, None]
        to_col = (np.cos(th) / geometry.px_mm[1]).astype(np.float32)[:, None]
        rows = np.float32(geometry.centre_px[0]) + radii32 * to_row
        cols = np.float32(geometry.centre_px[1]) + radii32 * to_col
        if geometry.crack is not None:         # a broken disc's moved piece
            d_row, d_col = geometry.crack.shift_px(radii32, th[:, None], geometry.px_mm)
            rows += d_row
            cols += d_col
        values = sample_compact(image, rows, cols, interpolation="linear")
        values = values.reshape(-1, lines_per_column, radii.size)
        seen = np.isfinite(values)
        # radii off the image are NaN; a mean over what was seen, NaN where nothing was
        out[start:start + chunk] = np.where(seen.any(axis=1), np.nansum(values, axis=1)
                                            / np.maximum(seen.sum(axis=1), 1), np.nan)

    with ThreadPoolExecutor(max_workers=cpu_workers()) as pool:
        list(pool.map(wedge, range(0, n_theta, chunk)))
    return out


def _groove_response(polar, template, step_mm, pitch_mm):
    """Matched-filter response along the radius, normalised by its local RMS."""
    filled = np.where(np.isfinite(polar), polar, np.nanmean(polar))
    local = ndimage.uniform_filter1d(filled, max(3, int(3 * pitch_mm / step_mm)), axis=1)
    # contrast: film density cancels; where the film is nearly opaque there is only
    # noise left, which must not be blown up into grooves
    flat = filled / np.maximum(local, 0.05 * np.median(local)) - 1.0
    kernel = (template - template.mean())[::-1]
    kernel = kernel / np.linalg.norm(kernel)
    response = ndimage.convolve1d(flat, kernel, axis=1, mode="nearest")
    # along the groove the response changes slowly: average a few columns
    response = ndimage.uniform_filter1d(response, 5, axis=0, mode="wrap")
    rms = np.sqrt(np.maximum(ndimage.uniform_filter1d(response**2, max(3, int(6 * pitch_mm / step_mm)), axis=1), 0))
    # a floor keeps blank film (no grooves, almost no signal) from being amplified into peaks
    floor = 0.2 * np.median(rms[rms > np.percentile(rms, 50)])
    return response / np.maximum(rms, max(floor, 1e-12))


def _index_dtype(n_radii):
    """Smallest integer type for radius indices: the index maps are the tracker's bulk."""
    return np.int16 if n_radii < np.iinfo(np.int16).max else np.int32


def _crests(response, half_width, rows=1024):
    """Where the response is the largest within ``half_width`` samples along the radius.

    Grooves are never closer than about half a pitch (they would overcut), so a weaker
    peak nearer to a strong one is the matched filter's side lobe, not a groove: next to
    a loud groove, or a locked groove's circle, it stands above the threshold.
    """
    crest = np.empty(response.shape, bool)
    for start in range(0, response.shape[0], rows):      # row blocks bound the temporaries
        block = response[start:start + rows]
        crest[start:start + rows] = block >= ndimage.maximum_filter1d(block, 2 * half_width + 1, axis=1)
    crest[:, [0, -1]] = False
    return crest


def _peak_positions(response, crests, threshold):
    """Crests above ``threshold``; returns (mask, last peak index at or below i)."""
    peak = crests & (response > threshold)
    dtype = _index_dtype(response.shape[1])
    idx = np.where(peak, np.arange(response.shape[1], dtype=dtype)[None, :], dtype(-1))
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


def _next_peak(peak):
    """Smallest peak index at or above i, per row (n_r where there is none)."""
    n_r = peak.shape[1]
    dtype = _index_dtype(n_r)
    idx = np.where(peak, np.arange(n_r, dtype=dtype)[None, :], dtype(n_r))
    return np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]


def _seed_turn(response, last_peak, next_peak, predicted, max_step):
    """One turn of groove: in each column the crossing nearest the fitted spiral.

    ``predicted`` (fractional radius index per column) comes from the geometry's fit of
    the grooves' phase over hundreds of sectors, so it is right to a small fraction of a
    pitch everywhere; columns with no crossing within ``max_step`` keep the prediction.
    """
    n, n_r = response.shape
    cols = np.arange(n)
    at = np.clip(np.round(predicted).astype(int), 0, n_r - 1)
    below, above = last_peak[cols, at], next_peak[cols, at]
    d_below = np.where(below >= 0, predicted - below, np.inf)
    d_above = np.where(above < n_r, above - predicted, np.inf)
    nearest = np.where(d_below <= d_above, below, above)
    seen = np.minimum(d_below, d_above) <= max_step
    refined = _refine_peak(response, cols, np.clip(nearest, 1, n_r - 2))
    return np.where(seen, refined, predicted), seen


def _follow(response, last_peak, next_peak, weak_peak, fence, *, inward, pitch_px, max_turns,
            min_found=0.2, progress=None):
    """Turns beyond ``fence`` (fractional radius indices per column), one at a time.

    Each turn is the first groove past the previous one at the same angle (the fence).
    Where the found spacing disagrees with its neighbours along the turn, or grows by
    half against the previous turn in a few columns only (a groove missed under dust or
    an opaque patch), the column is coasted one local pitch on. A spacing change over
    most of the turn is real: a lead-in or a run-out spiral.
    """
    n, n_r = response.shape
    cols = np.arange(n)
    min_gap = max(1, int(0.45 * pitch_px))
    sign = -1 if inward else 1
    prev_pitch = np.full(n, float(pitch_px))
    typical = float(np.median(response[cols, np.clip(np.round(fence).astype(int), 0, n_r - 1)]))
    turns = []
    for k in range(max_turns):
        search = np.floor(fence).astype(int) - min_gap if inward else np.ceil(fence).astype(int) + min_gap
        inside = (search >= 1) & (search < n_r - 1)
        if not inside.any():
            break
        s_clip = np.clip(search, 0, n_r - 1)
        cand = last_peak[cols, s_clip] if inward else next_peak[cols, s_clip]
        ok = inside & (cand >= 1) & (cand < n_r - 1)
        cand_r = np.where(ok, _refine_peak(response, cols, np.clip(cand, 1, n_r - 2)), np.nan)
        this_pitch = np.abs(cand_r - fence)
        # a land strip between the walls of two turns can look just like a groove (wide
        # grooves, narrow land): its crest lies about half a pitch past the fence. Real
        # grooves never close in like that from one turn to the next (they would
        # overcut): there the next crest on, about one pitch past, is the groove. (After
        # a band spacer or a lead-in the spacing does fall back, to the music's pitch.)
        usual = np.minimum(prev_pitch, pitch_px)
        shrunk = ok & (this_pitch < 0.65 * usual)
        if shrunk.any():
            beyond = np.clip(cand + sign, 0, n_r - 1)
            cand2 = last_peak[cols, beyond] if inward else next_peak[cols, beyond]
            ok2 = shrunk & (cand2 >= 1) & (cand2 < n_r - 1)
            cand2_r = np.where(ok2, _refine_peak(response, cols, np.clip(cand2, 1, n_r - 2)), np.nan)
            spacing2 = np.abs(cand2_r - fence)
            use = ok2 & (spacing2 >= 0.65 * usual) & (spacing2 <= 1.5 * usual)
            cand, cand_r = np.where(use, cand2, cand), np.where(use, cand2_r, cand_r)
            this_pitch = np.abs(cand_r - fence)
        grown = ok & (this_pitch > 1.6 * prev_pitch)
        if grown.any():
            # widened smoothly onto a groove as clear as the last turn's (a band spacer,
            # a run-out): the spacing really changed. Past a groove's end (inside a
            # locked groove, on blank film) the peaks are noise, far weaker.
            found = response[cols, np.clip(np.round(np.nan_to_num(cand_r)).astype(int), 0, n_r - 1)]
            grown &= ~(_spacing_ramps(this_pitch, prev_pitch) & (found > 0.5 * typical))
        if grown.any():
            # a weaker groove one previous pitch on is the real one: locally (dust, a
            # patch) or round the whole turn (loud, blurred grooves the strong-peak search
            # jumped over). A lead-in or run-out has no groove there, only land.
            # (the first turn out has only the geometry's pitch to go by, no measured
            # spacing: there a hidden groove is coasted over, not looked for)
            expect = np.clip(np.round(fence + sign * prev_pitch).astype(int), 0, n_r - 1)
            near = weak_peak[cols, expect]
            rescue = grown & (np.abs(near - expect) <= 0.3 * prev_pitch) & (k > 0)
            whole_turn = grown.sum() >= 0.5 * ok.sum()
            if whole_turn and rescue.sum() < 0.5 * grown.sum():
                grown = np.zeros(n, bool)           # the spacing really changed
            else:
                cand_r = np.where(rescue, _refine_peak(response, cols, np.clip(near, 1, n_r - 2)), cand_r)
                this_pitch = np.abs(cand_r - fence)
                grown = grown & ~rescue
        else:
            grown = np.zeros(n, bool)
        med = _running_median(np.where(grown, np.nan, this_pitch), max(9, n // 64) | 1)
        # grooves swing independently by up to (pitch - width) / 2 before they overcut: a
        # loud bass note moves the spacing by up to ~40 %, a false groove by more
        bad = ~ok | grown | (np.abs(this_pitch - med) > 0.45 * med)
        at = np.clip(np.round(np.nan_to_num(cand_r)).astype(int), 0, n_r - 1)
        conf = np.where(bad, 0.0, np.minimum(response[cols, at] / 4, 1)).astype(np.float32)
        if bad.mean() > 1.0 - min_found:
            # the groove has ended (start, run-out, blank film); the spiral's own end is
            # one unbroken stretch reaching the seam (outwards: running to the turn's
            # last column; inwards: starting at its first), so keep that part turn
            if _ends_at_seam(~bad, at_end=not inward):
                new = np.where(bad, np.nan, cand_r)
                turns.append((new, conf, bad, med))
            break
        new = np.where(bad, fence + sign * med, cand_r)
        turns.append((new, conf, bad, med))
        if (~bad).any():
            typical = float(np.median(response[cols, at][~bad]))
        prev_pitch = _running_median(np.where(bad, med, this_pitch), max(9, n // 16) | 1)
        fence = new
        if progress is not None:
            progress(len(turns), max_turns)
    return turns


def _spacing_ramps(spacing, prev_pitch, *, grow=1.6, max_step=0.3):
    """Columns where the spacing grew smoothly: real, not a hidden groove.

    Past a hidden groove (dust, a patch) the next one visible is whole pitches further,
    and the spacing jumps there from one column to the next. A band spacer or a run-out
    widens the spacing over a fraction of a turn. The spacing is median-filtered along
    the turn first, which keeps a jump and drops the audio's wiggle; a stretch where it
    is more than ``grow`` times the last turn's is real if no step into or inside it
    exceeds ``max_step`` of a pitch.
    """
    n = spacing.size
    smooth = _running_median(np.nan_to_num(spacing, nan=np.nanmedian(spacing)), 33)
    # change over a few columns (the filter spreads a jump over some); none across the
    # seam, where the spiral moves on by a turn and a widening spacing has grown
    span = max(4, n // 512)
    steps = np.zeros(n)
    steps[:n - span] = np.abs(smooth[span:] - smooth[:-span])
    runs, _ = ndimage.label(smooth > grow * prev_pitch)
    ramps = np.zeros(n, bool)
    for (run,) in ndimage.find_objects(runs):
        around = slice(max(run.start - span, 0), run.stop)        # the run and its edges
        if steps[around].max() < max_step * np.median(prev_pitch[run]):
            ramps[run] = True
    return ramps


def _seen_runs(seen):
    """Runs of a turn's seen columns, give or take a few columns, as labels.

    Stray columns (a dust speck) are dropped; short hidden stretches inside a run (an
    opaque patch, a tear: up to 1/16 turn) are bridged. Returns (smoothed seen, labels).
    """
    smooth = ndimage.median_filter(seen.astype(np.uint8), size=33, mode="nearest").astype(bool)
    bridge = max(3, seen.size // 16)
    padded = np.pad(smooth, bridge, mode="edge")            # no bridging across the ends
    bridged = ndimage.binary_closing(padded, np.ones(bridge, bool))[bridge:-bridge]
    return smooth, ndimage.label(bridged)[0]


def _ends_at_seam(seen, *, at_end):
    """True if ``seen`` is mostly one run touching the seam (see :func:`_seen_runs`).

    The run must hold most of the seen columns and be mostly seen itself; scattered
    runs all round the turn are not a groove's end.
    """
    smooth, labels = _seen_runs(seen)
    seam_run = labels[-1] if at_end else labels[0]
    if smooth.sum() < 0.02 * seen.size or not seam_run:
        return False
    run = labels == seam_run
    return bool(np.count_nonzero(smooth & run) >= max(0.8 * smooth.sum(), 0.6 * run.sum()))


def _start_column(seen):
    """First column of the groove in its outermost turn: where the first real run begins.

    Before the start there is no groove, after it the groove is seen but for hidden
    stretches (bridged when short): the first run longer than 1/32 turn is the start,
    even if a patch hides the turn's end at the seam.
    """
    smooth, labels = _seen_runs(seen)
    if smooth.all():
        return 0
    sizes = np.bincount(labels.ravel())
    long_runs = np.flatnonzero(sizes[1:] >= seen.size / 32) + 1
    if long_runs.size == 0:
        return 0
    return int(np.flatnonzero(np.isin(labels, long_runs))[0])


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
    image = geometry.reader(getattr(scan, "image", scan))
    px = float(np.sqrt(geometry.px_mm[0] * geometry.px_mm[1]))
    pitch = geometry.pitch_mm
    if points_per_turn is None:
        points_per_turn = int(2 ** np.ceil(np.log2(max(2048, 2 * np.pi * geometry.r_outer_mm / 0.1))))
    n = int(points_per_turn)
    # a dozen samples a pitch are plenty to find grooves (the walls are measured later
    # at full resolution); more would only cost time and memory on high-dpi scans
    step = max(px, pitch / 12)
    margin = 3 * pitch
    radii = np.arange(max(geometry.r_inner_mm - margin, pitch), geometry.r_outer_mm + margin, step)
    lines = int(np.clip(np.ceil(2 * np.pi * geometry.r_outer_mm / n / step), 1, 4))
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
    pitch_px = pitch / step
    crests = _crests(response, max(1, int(0.4 * pitch_px)))
    peak, last_peak = _peak_positions(response, crests, threshold)
    if peak.sum() < n:
        raise NoGrooveError("the groove could not be followed: too few groove crossings found")
    next_peak = _next_peak(peak)
    _, weak_last = _peak_positions(response, crests, 0.4 * threshold)
    # seed: one turn on the spiral the geometry fitted, then outwards to the start and
    # inwards to the end
    unwrapped_theta = geometry.direction * 2 * np.pi * np.arange(n) / n
    unwrapped_theta = unwrapped_theta - 2 * np.pi * np.floor(unwrapped_theta[0] / (2 * np.pi))
    predicted = geometry.groove_radius_mm + geometry.groove_slope_mm * unwrapped_theta
    seed, seed_seen = _seed_turn(response, last_peak, next_peak, (predicted - radii[0]) / step,
                                 0.3 * pitch_px)
    max_turns = int((radii[-1] - radii[0]) / (0.4 * pitch)) + 2
    # outwards only strong grooves count, and most of a turn must be seen: beyond the
    # spiral's start lie the outline, film texture and dust, and only silence is lost
    # by stopping half a lead-in turn early. "Strong" stays below sqrt(2): where groove
    # and land are equally wide (vinyl) the response is nearly a sinusoid, whose peaks
    # stand only sqrt(2) above the RMS it is normalised by
    strong, strong_last = _peak_positions(response, crests, 1.2 * threshold)
    del crests
    outward = _follow(response, strong_last, _next_peak(strong), weak_last, seed, inward=False,
                      pitch_px=pitch_px, max_turns=max_turns, min_found=0.5)
    inward = _follow(response, last_peak, next_peak, weak_last, seed, inward=True,
                     pitch_px=pitch_px, max_turns=max_turns, progress=progress)
    seed_at = np.clip(np.round(seed).astype(int), 0, response.shape[1] - 1)
    seed_conf = np.where(seed_seen, np.minimum(response[np.arange(n), seed_at] / 4, 1), 0)
    turns = outward[::-1] + [(seed, seed_conf.astype(np.float32), ~seed_seen, np.full(n, pitch_px))] + inward
    radius_idx = np.array([t[0] for t in turns])
    conf = np.array([t[1] for t in turns])
    coasted = np.array([t[2] for t in turns])
    pitches = np.array([t[3] for t in turns]) * step
    # the groove starts part-way round its outermost turn: drop what comes before, so
    # that column 0 of turn 0 is the start (phi = 0)
    start = _start_column(~coasted[0])
    flat_len = radius_idx.size - start
    n_turns = -(-flat_len // n)

    def shifted(a, fill):
        flat = np.concatenate([a.ravel()[start:], np.full(n_turns * n - flat_len, fill, a.dtype)])
        return flat.reshape(n_turns, n)

    radius = shifted(radii[0] + radius_idx * step, np.nan)
    conf, coasted, pitches = shifted(conf, 0.0), shifted(coasted, True), shifted(pitches, np.nan)
    theta_start = float(theta_grid[start])
    # trailing coasted samples past the groove's end are not groove
    last_seen = np.flatnonzero(~coasted.ravel())
    end = int(last_seen[-1]) + 1 if last_seen.size else 0
    flat = radius.ravel().copy()
    flat[end:] = np.nan
    # no groove moves by half a pitch and back within an eighth of a turn; the track does
    # where the groove runs out of sight along the image's edge, stepping for a moment
    # onto the turns beside it: there it is carried along its own course instead
    good = np.isfinite(flat)
    course = ndimage.median_filter(flat[good], max(5, n // 8), mode="nearest")
    astray = np.zeros(flat.size, bool)
    astray[good] = np.abs(flat[good] - course) > 0.4 * pitch
    flat[astray] = course[astray[good]]
    coasted = coasted | astray.reshape(coasted.shape)
    # smooth the path a little along playing order (the audio is measured later)
    flat[good] = ndimage.uniform_filter1d(ndimage.median_filter(flat[good], 5, mode="nearest"), 3, mode="nearest")
    radius = flat.reshape(radius.shape)
    return GrooveTrack(radius_mm=radius, confidence=conf.astype(np.float32),
                       coasted=coasted | ~np.isfinite(radius), points_per_turn=n,
                       theta_start=theta_start, direction=geometry.direction,
                       end_phi=float(end * 2 * np.pi / n), pitch_mm=pitches)
