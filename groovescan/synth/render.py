"""The scanner, the plan of a render, and rendering blocks of rows into the final image."""
from __future__ import annotations

import collections
import contextlib
import itertools
import math
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ParameterError
from ._common import _FAR_MM, _TILE_ROWS, TWO_PI, _erfc_cover, _rng, _smooth_noise
from .damage import _damage_opacity, _make_strokes, _Stroke
from .disc import (
    _build_film_maps,
    _Crack,
    _FilmMaps,
    _Hole,
    _make_crack,
    _make_hole,
    _make_outline,
    _Outline,
)
from .flatbed import (
    _GLASS_SCATTER,
    _FixedPattern,
    _Focus,
    _index_strokes,
    _jpeg_round_trip,
    _make_focus,
    _make_glass,
    _make_pattern,
    _make_rings,
    _Rings,
    _sharpen,
    _StrokeIndex,
    _usm_margin,
)
from .groove import (
    _build_cross_section,
    _build_spiral,
    _build_wiggle,
    _CrossSection,
    _Cut,
    _cut_groove,
    _orientation_index,
    _Spiral,
    _Wiggle,
)
from .settings import RenderSettings, _pair


# =====================================================================================
# The scanner and the plan of a render
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Scanner:
    px_row_mm: float                 # true pixel sizes
    px_col_mm: float
    edge_sigma_mm: float             # PSF and pixel area, for sharp edges (outline, hole)
    row_offset_px: np.ndarray        # slow-axis position error per row (px), float64
    row_gain: np.ndarray             # per-row gain, float32
    column_light: np.ndarray         # white level x illumination falloff per column, float32


def _make_scanner(s: RenderSettings, shape: tuple[int, int], rng: np.random.Generator) -> _Scanner:
    px_row, px_col = s.true_px_mm
    rows, cols = shape
    sigma = s.psf_sigma_um * 1e-3
    edge_sigma = math.sqrt(sigma ** 2 + (px_row ** 2 + px_col ** 2) / 24.0)
    jitter = np.zeros(rows)
    if s.row_jitter_px > 0:      # stepper-motor error: correlated over a few rows
        jitter = s.row_jitter_px * _smooth_noise((rows,), 3.0, rng)
    gain = (1.0 + s.row_gain_jitter * rng.standard_normal(rows)).astype(np.float32)
    xc = (np.arange(cols) - (cols - 1) / 2) / max((cols - 1) / 2, 1)
    light = (s.white_level * (1 - s.illumination_falloff * xc ** 2)).astype(np.float32)
    return _Scanner(px_row, px_col, edge_sigma, jitter, gain, light)


@dataclass(frozen=True, eq=False)
class _Plan:
    """Everything a block of rows needs; built once, read by every worker."""

    s: RenderSettings
    seed: int
    shape: tuple[int, int]
    centre_mm: tuple[float, float]          # (y, x) of the spiral centre, render frame
    theta_start_render: float               # direction is -1 in the render frame
    spiral: _Spiral
    wiggle: _Wiggle
    section: _CrossSection
    film: _FilmMaps
    outline: _Outline
    hole: _Hole
    crack: _Crack | None
    strokes: tuple[_Stroke, ...]
    scanner: _Scanner
    groove_band_mm: tuple[float, float]     # radii between which grooves are evaluated
    wiggle_blurred: _Wiggle | None          # the wiggle at the largest focus blur
    pattern: _FixedPattern
    glass: _StrokeIndex
    rings: _Rings | None
    focus: _Focus | None
    stroke_blur_px: tuple[float, ...] | None    # each film stroke's blur (focus variation)
    disc_box: tuple[int, int, int, int]     # rows r0:r1, cols c0:c1 the disc can touch

    @property
    def dtype(self):
        return np.uint16 if self.s.bits == 16 else np.uint8


def _check_audio(audio, sr) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1 or x.size == 0:
        raise ParameterError(f"audio must be a non-empty 1-D array, got shape {x.shape}; "
                             "mix stereo down to mono first")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ParameterError("audio must be finite numbers (no NaN or inf)")
    if not (isinstance(sr, (int, float, np.integer, np.floating)) and 1000 <= sr <= 768000):
        raise ParameterError(f"sr={sr!r} Hz is outside 1000..768000")
    return x.astype(np.float32)


def _crack_slack(s: RenderSettings, crack: _Crack | None) -> float:
    """How far (mm) a crack's displaced piece may stick out of the intact outline."""
    if crack is None:
        return 0.0
    return math.hypot(*crack.shift) + abs(crack.rotation) * s.disc_diameter_mm


def _place(lo_mm: float, hi_mm: float, span_mm: float, u: float) -> float:
    """A centre that puts ``[c + lo, c + hi]`` inside ``[0, span]`` at random (``u`` in
    0..1), or centres it there if it does not fit."""
    first, last = -lo_mm, span_mm - hi_mm
    return first + u * (last - first) if last >= first else 0.5 * (first + last)


def _layout(s: RenderSettings, outline: _Outline, crack: _Crack | None,
            px_row: float, px_col: float, rng: np.random.Generator):
    """Image shape and the spiral centre (y, x mm, render frame): the disc plus
    ``margin_mm`` all round, or the whole bed with the disc at ``disc_at_mm`` or at a
    random place (``rng``). Also the disc's bounding box about the spiral centre."""
    verts = outline.vertices + np.asarray(outline.centre)
    slack = _crack_slack(s, crack)
    xmin, ymin = verts.min(axis=0) - slack
    xmax, ymax = verts.max(axis=0) + slack
    bbox = (float(xmin), float(xmax), float(ymin), float(ymax))
    if s.bed_mm is None:
        cols = int(math.ceil((xmax - xmin + 2 * s.margin_mm) / px_col)) + 1
        rows = int(math.ceil((ymax - ymin + 2 * s.margin_mm) / px_row)) + 1
        centre = (float(s.margin_mm - ymin), float(s.margin_mm - xmin))
        return (rows, cols), centre, bbox
    # the driver asks for the bed at the nominal dpi; the true pixels cover a little more
    # or less of it (px_scale_error)
    height, width = _pair(s.bed_mm, "bed_mm")
    rows = max(1, int(round(height / s.nominal_px_mm)))
    cols = max(1, int(round(width / s.nominal_px_mm)))
    span_y, span_x = (rows - 1) * px_row, (cols - 1) * px_col
    u = rng.uniform(0.0, 1.0, 2)
    if s.disc_at_mm is not None:
        cy, cx = _pair(s.disc_at_mm, "disc_at_mm")
        if s.mirrored:           # given in the final image; the render frame is flipped
            cx = span_x - cx
    else:
        cy, cx = _place(ymin, ymax, span_y, u[0]), _place(xmin, xmax, span_x, u[1])
    return (rows, cols), (float(cy), float(cx)), bbox


def _disc_box(s: RenderSettings, outline: _Outline, crack: _Crack | None, centre,
              scanner: _Scanner, pattern: _FixedPattern, shape) -> tuple[int, int, int, int]:
    """Rows and columns (render frame) where the disc can change a pixel: everywhere
    else the film fraction is exactly 0, so the bed there costs nothing to render."""
    reach = outline.r_outer + 5 * scanner.edge_sigma_mm + _crack_slack(s, crack)
    ox, oy = outline.centre[0] + centre[1], outline.centre[1] + centre[0]
    jitter = float(np.max(np.abs(scanner.row_offset_px), initial=0.0))
    if pattern.col_shift_px is not None:
        jitter += float(np.max(np.abs(pattern.col_shift_px)))
    rows, cols = shape
    r0 = int(math.floor((oy - reach) / scanner.px_row_mm - jitter)) - 2
    r1 = int(math.ceil((oy + reach) / scanner.px_row_mm + jitter)) + 3
    c0 = int(math.floor((ox - reach) / scanner.px_col_mm)) - 2
    c1 = int(math.ceil((ox + reach) / scanner.px_col_mm)) + 3
    return max(0, r0), min(rows, r1), max(0, c0), min(cols, c1)


def _build_plan(audio: np.ndarray, sr: float, s: RenderSettings, seed: int) -> tuple[_Plan, _Cut]:
    cut = _cut_groove(audio, sr, s)
    omega = TWO_PI * s.rpm / 60.0
    phi_end = omega * cut.velocity.size / sr
    spiral = _build_spiral(s, phi_end, _rng(seed, "spiral"))
    px_row, px_col = s.true_px_mm
    outline = _make_outline(s, _rng(seed, "outline"))
    hole = _make_hole(s, _rng(seed, "hole"))
    crack = _make_crack(s, _rng(seed, "crack")) if s.crack else None
    shape, centre, bbox = _layout(s, outline, crack, px_row, px_col, _rng(seed, "bed"))
    theta_start = s.theta_start
    if theta_start is None:
        theta_start_render = float(_rng(seed, "theta").uniform(0, TWO_PI))
    else:                   # given in the final image; mirroring maps theta -> pi - theta
        theta_start_render = math.pi - theta_start if s.mirrored else float(theta_start)
    sigma_psf = s.psf_sigma_um * 1e-3
    along = math.sqrt(sigma_psf ** 2 + (px_row * px_col) / 12.0)
    wiggle = _build_wiggle(cut, sr, s, spiral, along)
    section = _build_cross_section(s, px_row, px_col)
    film = _build_film_maps(s, bbox, spiral, _rng(seed, "film"))

    def to_px(xy_mm):
        xy_mm = np.atleast_2d(xy_mm)
        return np.stack([(xy_mm[:, 1] + centre[0]) / px_row, (xy_mm[:, 0] + centre[1]) / px_col], 1)

    px = math.sqrt(px_row * px_col)
    strokes = _make_strokes(s, to_px, _rng(seed, "damage"), px)
    scanner = _make_scanner(s, shape, _rng(seed, "scanner"))
    reach = float(np.max(np.abs(wiggle.samples_mm))) + abs(section.u0_mm) + 0.01
    inner = float(spiral.radius_mm[-1])         # the lead-out's end, where a locked groove sits
    band = (max(inner - reach, 0.0), float(spiral.radius_mm[0]) + reach)
    focus = wiggle_blurred = stroke_blur = None
    if s.focus_variation_um > 0:
        focus = _make_focus(s, outline, _rng(seed, "focus"))
        wiggle_blurred = _build_wiggle(cut, sr, s, spiral, math.hypot(along, focus.max_mm))
        if strokes:                 # film damage lies on the film: it blurs with it
            at = np.array([st.points_px[0] for st in strokes])
            lift = focus.lift(at[:, 1] * px_col - centre[1], at[:, 0] * px_row - centre[0])
            stroke_blur = tuple(float(b) for b in np.hypot(sigma_psf, focus.max_mm * lift) / px)
    pattern = _make_pattern(s, shape, seed)
    glass = _index_strokes(_make_glass(s, shape, _rng(seed, "glass")), sigma_psf / px)
    rings = None
    if s.newton_rings > 0:
        rings = _make_rings(s, outline, focus, scanner.edge_sigma_mm, _rng(seed, "rings"))
    box = _disc_box(s, outline, crack, centre, scanner, pattern, shape)
    plan = _Plan(s, int(seed), shape, centre, theta_start_render, spiral, wiggle, section, film,
                 outline, hole, crack, strokes, scanner, band, wiggle_blurred, pattern, glass,
                 rings, focus, stroke_blur, box)
    return plan, cut


# =====================================================================================
# Rendering a block of rows
# =====================================================================================

_NOISE_STREAM = zlib.crc32(b"noise")


def _nearest_turns(plan: _Plan, x: np.ndarray, y: np.ndarray, r: np.ndarray,
                   blend: np.ndarray | None = None):
    """Yield ``(phi, u)`` for the three turns nearest each disc-frame point at its angle.

    ``u`` (mm) is the lateral offset of the point from the displaced groove centre,
    positive outwards; ``_FAR_MM`` where that turn was never cut. Three turns cover any
    groove within 1.5 pitches, more than a groove's reach even with heavy modulation.
    ``blend`` (0..1 per point) moves the wiggle towards its most defocused version.
    """
    spiral = plan.spiral
    theta = np.arctan2(y, x)
    phi_frac = np.mod(plan.theta_start_render - theta, TWO_PI)     # direction -1
    turn = np.rint((spiral.phi_estimate(r) - phi_frac) * (1.0 / TWO_PI)).astype(np.intp)
    cell_pos = phi_frac * (1.0 / spiral.phi_step)
    cell = cell_pos.astype(np.intp)
    frac = cell_pos - cell
    for dk in (-1, 0, 1):
        k = turn + dk
        phi = phi_frac + TWO_PI * k
        wiggle = plan.wiggle.at(phi)
        if blend is not None:
            wiggle += (plan.wiggle_blurred.at(phi) - wiggle) * blend
        u = r - spiral.radius_on_turn(cell, frac, k) - wiggle
        u[(phi < 0) | (phi > spiral.phi_max)] = _FAR_MM
        yield phi, u


def _groove_shading(plan: _Plan, x: np.ndarray, y: np.ndarray, contrast: np.ndarray,
                    blend: np.ndarray | None = None) -> np.ndarray:
    """Groove darkening (transmission) or wall brightness (reflective), 0..1.

    The blurred profiles of neighbouring turns add: exact for separate grooves (blur is
    linear), and saturating where walls of overcut grooves meet, which is dark there too.
    ``blend``: extra focus blur variance per point, a fraction of the largest.
    """
    sec = plan.section
    r = np.hypot(x, y)
    orientation = _orientation_index(x, y)
    level = None if blend is None else sec.level_of(blend)
    total = np.zeros(x.size, np.float32)
    tilt = None
    if plan.s.wall_asymmetry > 0:       # the lamp lights walls facing +row and -row unequally
        tilt = (plan.s.wall_asymmetry * y / np.maximum(r, 1e-9)).astype(np.float32)
    for _, u in _nearest_turns(plan, x, y, r, blend):
        if tilt is None:
            total += sec.lookup(sec.both, u, orientation, level)
        else:
            total += (sec.lookup(sec.inner, u, orientation, level) * (1 + tilt) +
                      sec.lookup(sec.outer, u, orientation, level) * (1 - tilt))
    if plan.spiral.locked_radius_mm is not None:
        total += sec.lookup(sec.both, r - plan.spiral.locked_radius_mm, orientation, level)
    total *= contrast
    return np.clip(total, 0.0, 1.0, out=total)


def _light_on_disc(plan: _Plan, x: np.ndarray, y: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Light reaching the sensor (fraction of white) at disc-frame points (mm).

    ``cover`` is the fraction of film present (outline, hole, crack gap); elsewhere the
    scanner sees bare light (transmission) or its lid (reflective).
    """
    s = plan.s
    transmission = s.mode == "transmission"
    light = np.full(x.size, 1.0 if transmission else s.lid_reflectance, np.float32)
    on = np.flatnonzero(cover > 0)
    if on.size == 0:
        return light
    xs, ys, c = x[on], y[on], cover[on]
    density, contrast, opacity = plan.film.sample(xs, ys)
    r2 = xs * xs + ys * ys
    lo, hi = plan.groove_band_mm
    band = np.flatnonzero((r2 >= lo * lo) & (r2 <= hi * hi))
    groove = np.zeros(on.size, np.float32)
    if band.size:
        blend = None
        if plan.focus is not None:
            blend = plan.focus.variance_weight(xs[band], ys[band])
        groove[band] = _groove_shading(plan, xs[band], ys[band], contrast[band], blend)
    if transmission:
        disc = np.exp(np.float32(-math.log(10.0)) * density) * (1 - opacity) * (1 - groove)
        if plan.rings is not None:         # the air gap between film and glass
            rings = plan.rings.factor(xs, ys)
            if rings is not None:
                disc *= rings
        light[on] = disc * c + (1 - c)
        return light
    disc = s.land_reflectance + (s.wall_reflectance - s.land_reflectance) * groove
    if s.label_radius_mm:
        reach = s.label_radius_mm + 5 * plan.scanner.edge_sigma_mm
        inside = np.flatnonzero(r2 < reach * reach)
        label = _erfc_cover(np.sqrt(r2[inside]) - s.label_radius_mm, plan.scanner.edge_sigma_mm)
        disc[inside] += (s.label_reflectance - disc[inside]) * label.astype(np.float32)
    disc += (np.float32(0.02) - disc) * opacity          # black paint or tape
    light[on] = disc * c + s.lid_reflectance * (1 - c)
    return light


def _add_noise(signal_: np.ndarray, plan: _Plan, r0: int) -> None:
    """Shot noise (variance ``signal / photons``) and read noise, in place, drawn as one
    Gaussian of the summed variance. Each row draws from its own seeded stream, so the
    image never depends on how rows are grouped into blocks."""
    s = plan.s
    if s.photons_full_scale is None and s.read_noise == 0:
        return
    z = np.empty(signal_.shape)
    for k in range(signal_.shape[0]):
        np.random.default_rng([plan.seed, _NOISE_STREAM, r0 + k]).standard_normal(out=z[k])
    variance = np.full(signal_.shape, np.float32(s.read_noise ** 2))
    if s.photons_full_scale is not None:
        variance += np.maximum(signal_, 0) * np.float32(1.0 / s.photons_full_scale)
    signal_ += np.sqrt(variance) * z.astype(np.float32)


def _quantise(signal_: np.ndarray, bits: int) -> np.ndarray:
    full = float(2 ** bits - 1)
    q = np.rint(signal_ * np.float32(full))
    np.clip(q, 0, full, out=q)
    return q.astype(np.uint16 if bits == 16 else np.uint8)


def _disc_light(plan: _Plan, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Light (fraction of white) over rows ``r0:r1``, columns ``c0:c1`` (render frame)."""
    sc = plan.scanner
    n_rows, n_cols = r1 - r0, c1 - c0
    rows = np.arange(r0, r1) + sc.row_offset_px[r0:r1]
    x_col = np.arange(c0, c1) * sc.px_col_mm - plan.centre_mm[1]
    x = np.tile(x_col, n_rows)
    shift = plan.pattern.col_shift_px
    if shift is None:
        y = np.repeat(rows * sc.px_row_mm - plan.centre_mm[0], n_cols)
    else:                          # each sensor chip sees rows shifted by its own amount
        shift = plan.pattern.render_cols(shift)[c0:c1]
        y = ((rows[:, None] + shift[None, :]) * sc.px_row_mm - plan.centre_mm[0]).ravel()
    cover = np.ones(x.size, np.float32)
    if plan.crack is not None:
        x, y, cover = plan.crack.to_disc(x, y, sc.edge_sigma_mm)
    cover *= plan.outline.film_fraction(x, y, sc.edge_sigma_mm)
    cover *= plan.hole.film_fraction(x, y, sc.edge_sigma_mm)
    return _light_on_disc(plan, x, y, cover).reshape(n_rows, n_cols)


def _scene_light(plan: _Plan, r0: int, r1: int) -> np.ndarray:
    """Light reaching the sensor over rows ``r0:r1`` (render frame, fraction of white):
    the disc where it can be, bare light or the lid elsewhere, damage and glass dust."""
    s = plan.s
    transmission = s.mode == "transmission"
    n_rows, n_cols = r1 - r0, plan.shape[1]
    a, b, c0, c1 = plan.disc_box
    a, b = max(a, r0), min(b, r1)
    light = np.full((n_rows, n_cols), 1.0 if transmission else s.lid_reflectance, np.float32)
    if b > a and c1 > c0:
        light[a - r0:b - r0, c0:c1] = _disc_light(plan, a, b, c0, c1)
    blur_px = s.psf_sigma_um * 1e-3 / math.sqrt(plan.scanner.px_row_mm * plan.scanner.px_col_mm)
    opacity = _damage_opacity(plan.strokes, r0, r1, n_cols, blur_px, plan.stroke_blur_px)
    if opacity is not None:        # dust blocks light; on a reflective scan it scatters it
        light += (np.float32(0.0 if transmission else 0.8) - light) * opacity
    glass = _damage_opacity(plan.glass.near(r0, r1), r0, r1, n_cols, blur_px)
    if glass is not None:          # in focus on the glass: it blocks, or scatters grey
        light += (np.float32(0.0 if transmission else _GLASS_SCATTER) - light) * glass
    return light


def _sense(light: np.ndarray, plan: _Plan, r0: int) -> None:
    """The sensor's response over rows ``r0:`` in place: illumination, gains, lamp,
    exposure, offsets, noise (render frame; column patterns mapped from the final one)."""
    s, sc, fp = plan.s, plan.scanner, plan.pattern
    r1 = r0 + light.shape[0]
    light *= sc.column_light[None, :]
    light *= sc.row_gain[r0:r1, None]
    if fp.row_gain is not None:
        light *= fp.row_gain[r0:r1, None]
    if fp.col_gain is not None:
        light *= fp.render_cols(fp.col_gain)[None, :]
    if s.exposure != 1.0:
        light *= np.float32(s.exposure)
    if fp.row_offset is not None:
        light += fp.row_offset[r0:r1, None]
    if fp.col_offset is not None:
        light += fp.render_cols(fp.col_offset)[None, :]
    _add_noise(light, plan, r0)
    if fp.seams is not None and fp.seams.line_noise > 0 and fp.seams.line_cols.size:
        _add_seam_noise(light, plan, r0)


_SEAM_NOISE_STREAM = zlib.crc32(b"seam noise")


def _add_seam_noise(signal_: np.ndarray, plan: _Plan, r0: int) -> None:
    """Extra noise on the seam lines' columns, a seeded stream per row."""
    seams = plan.pattern.seams
    cols = seams.line_cols
    if plan.s.mirrored:
        cols = plan.shape[1] - 1 - cols
    for k in range(signal_.shape[0]):
        rng = np.random.default_rng([plan.seed, _SEAM_NOISE_STREAM, r0 + k])
        signal_[k, cols] += (seams.line_noise * rng.standard_normal(cols.size)).astype(np.float32)


def _render_encoded(plan: _Plan, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` as output-encoded float32 values (render frame, not yet sharpened,
    clipped or quantised).

    Peak memory: about 40 float64/float32 temporaries of ``(r1 - r0) x`` the disc's
    columns, plus a few of ``(r1 - r0) x cols``.
    """
    s = plan.s
    light = _scene_light(plan, r0, r1)
    _sense(light, plan, r0)
    if s.unsharp_amount > 0:       # the ADC saturates before the driver's sharpening
        np.clip(light, 0.0, 1.0, out=light)
    if s.output_gamma != 1.0:
        np.maximum(light, 0, out=light)
        light **= np.float32(1.0 / s.output_gamma)
    return light


def _finish(plan: _Plan, encoded: np.ndarray, jpeg: bool) -> np.ndarray:
    """Quantised rows of the final image (mirrored if asked), through a JPEG if asked."""
    image = _quantise(encoded, plan.s.bits)
    if plan.s.mirrored:
        image = image[:, ::-1]
    if jpeg and plan.s.jpeg_quality is not None:
        image = _jpeg_round_trip(image, plan.s.jpeg_quality)
    return image


def _render_rows(plan: _Plan, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of the final image (mirrored if asked), as unsigned integers,
    before any JPEG round trip (which needs blocks aligned to 8 rows).

    The unsharp mask renders its margin of rows on both sides and crops them: every
    row is seeded by its index, so the result equals the whole image's rows.
    """
    margin = _usm_margin(plan.s)
    if not margin:
        return _finish(plan, _render_encoded(plan, r0, r1), jpeg=False)
    a, b = max(0, r0 - margin), min(plan.shape[0], r1 + margin)
    sharp = _sharpen(_render_encoded(plan, a, b), plan.s)
    return _finish(plan, sharp[r0 - a:r1 - a], jpeg=False)


def _in_order(job: Callable, starts, workers: int | None):
    """``job(start)`` for every start, yielded in order; with ``workers > 1`` run by that
    many threads with at most ``2 * workers`` blocks rendered ahead."""
    if not workers or workers <= 1:
        yield from map(job, starts)
        return
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        pending = collections.deque()
        todo = iter(starts)
        for start in itertools.islice(todo, 2 * workers):
            pending.append(pool.submit(job, start))
        while pending:
            result = pending.popleft().result()
            for start in itertools.islice(todo, 1):
                pending.append(pool.submit(job, start))
            yield result
    finally:
        pool.shutdown(cancel_futures=True)


def _render_into(plan: _Plan, sink: Callable[[int, np.ndarray], None], workers: int | None,
                 progress: Callable[[float], None] | None, *, jpeg: bool = True) -> None:
    """Render every block of rows and hand it, in order, to ``sink(first_row, block)``.

    With ``workers > 1`` blocks are rendered by that many threads (numpy and OpenCV
    release the GIL for most of the work); a few blocks are alive at a time. The unsharp
    mask keeps the previous and the next block (its margin is at most a block): the
    blocks are then sharpened exactly as the whole image would be, with no row rendered
    twice. ``jpeg=False`` skips the JPEG round trip (a .jpg writer encodes it itself).
    """
    rows = plan.shape[0]
    margin = _usm_margin(plan.s)
    done = 0

    def job(r0):
        encoded = _render_encoded(plan, r0, min(rows, r0 + _TILE_ROWS))
        return encoded if margin else _finish(plan, encoded, jpeg)

    def deliver(r0, block):
        nonlocal done
        sink(r0, block)
        done += block.shape[0]
        if progress is not None:
            progress(done / rows)

    def sharpened(before, block, after):
        parts = ([before[-margin:]] if before is not None else []) + [block] + (
            [after[:margin]] if after is not None else [])
        top = margin if before is not None else 0
        window = _sharpen(np.concatenate(parts) if len(parts) > 1 else block, plan.s)
        return _finish(plan, window[top:top + block.shape[0]], jpeg)

    starts = range(0, rows, _TILE_ROWS)
    with contextlib.closing(_in_order(job, starts, workers)) as blocks:
        if not margin:
            for r0, block in zip(starts, blocks):
                deliver(r0, block)
            return
        previous = current = None
        for r0, block in zip(starts, blocks):
            if current is not None:
                deliver(current[0], sharpened(previous, current[1], block))
                previous = current[1]
            current = (r0, block)
        deliver(current[0], sharpened(previous, current[1], None))
