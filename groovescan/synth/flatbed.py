"""The flatbed's habits: fixed-pattern streaks, lamp drift, sensor chips and seams, dust on
the glass, focus over curled film, Newton's rings, the driver's sharpening and JPEG."""
from __future__ import annotations

import math
from dataclasses import dataclass
from io import BytesIO

import cv2
import numpy as np
from scipy import ndimage

from ._common import TWO_PI, _rng
from .damage import _random_path, _stroke, _Stroke
from .disc import _Outline
from .settings import RenderSettings, _pair


# =====================================================================================
# The flatbed's habits: fixed patterns, lamp, sensor chips, glass, rings, focus
# =====================================================================================

_STREAK_PER_MM = 1.0 / 20.0    # wide fixed-pattern streaks (mirror dust): ~1 per 20 mm
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_GLASS_SCATTER = 0.5           # reflective: glass dust lit by the lamp looks mid-grey
_LAMBDA_MM = 0.55e-3           # Newton's rings: the middle of the lamp's white light
_FOCUS_TOUCH_FRACTION = 0.3    # curled film touches the glass over about a third


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _bumps(n: int, centres, sigmas, amplitudes) -> np.ndarray:
    """Sum of Gaussian bumps on ``0..n-1``, each evaluated within 4 sigma of its centre."""
    out = np.zeros(n)
    for c, sg, a in zip(centres, sigmas, amplitudes):
        lo, hi = max(0, int(c - 4 * sg)), min(n, int(c + 4 * sg) + 2)
        if hi > lo:
            k = np.arange(lo, hi)
            out[lo:hi] += a * np.exp(-0.5 * ((k - c) / sg) ** 2)
    return out


def _line_pattern(n: int, rms: float, px_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Fixed-pattern deviation of ``n`` sensor lines (rows or columns), RMS ``rms``.

    Half of the variance is white from line to line (pixel response, electronics), the
    other half lies in a few wider streaks: Gaussian profiles 2-30 px FWHM with random
    signs and sizes, about one per 20 mm (dust on the sensor's mirror, bursts of lamp
    flicker). Each half is scaled to its exact share over the line, so the RMS is
    ``rms`` up to the halves' small cross term. float32.
    """
    if rms == 0 or n == 0:
        return np.zeros(n, np.float32)
    white = rng.standard_normal(n)
    count = max(1, int(rng.poisson(n * px_mm * _STREAK_PER_MM)))
    centres = rng.uniform(0, n, count)
    sigmas = rng.uniform(2.0, 30.0, count) / _FWHM_PER_SIGMA
    streaks = _bumps(n, centres, sigmas, rng.standard_normal(count))
    half = rms / math.sqrt(2.0)
    out = (white * (half / max(_rms(white), 1e-30))
           + streaks * (half / max(_rms(streaks), 1e-30)))
    return out.astype(np.float32)


def _lamp_profile(rows: int, px_row_mm: float, drift: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Relative lamp brightness per row: a warm-up and a slow wander, peak-to-peak
    ``drift``, 1 at its brightest. float32.

    The warm-up is ``-exp(-y / tau)`` with ``3 tau`` (95 % settled) 30-80 mm of rows; the
    wander is white noise on a 1 mm grid smoothed over 10-30 mm, a quarter of the
    warm-up's size (RMS).
    """
    if drift == 0 or rows < 2:
        return np.ones(rows, np.float32)
    y = np.arange(rows) * px_row_mm
    tau = rng.uniform(30.0, 80.0) / 3.0
    sigma = rng.uniform(10.0, 30.0)
    pad = int(4 * sigma) + 1
    grid = ndimage.gaussian_filter1d(rng.standard_normal(int(y[-1]) + 2 + 2 * pad), sigma)
    grid = grid[pad:-pad] / max(float(grid[pad:-pad].std()), 1e-12)
    q = -np.exp(-y / tau) + 0.25 * np.interp(y, np.arange(grid.size), grid)
    q -= q.max()
    span = -float(q.min())
    return (1.0 + q * (drift / span if span > 0 else 0.0)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class _Seams:
    """Butted sensor chips along the columns, in the final image's frame."""

    starts: np.ndarray          # first column of chips 1, 2, ... (chip 0 starts at 0), int
    gain: np.ndarray            # relative gain per chip, left to right
    offset: np.ndarray          # offset per chip (fraction of full scale)
    shift_px: np.ndarray        # slow-axis misregistration per chip (px)
    line_cols: np.ndarray       # columns of the seam lines, int
    line_gain: np.ndarray       # their gain (below 1: darker)
    line_noise: float           # extra noise RMS on seam lines (fraction of full scale)

    def chip_of_column(self, cols: int) -> np.ndarray:
        return np.searchsorted(self.starts, np.arange(cols), side="right")


def _make_seams(s: RenderSettings, cols: int, rng: np.random.Generator) -> _Seams:
    """Chips ``seam_spacing_mm`` wide on the sensor (as many columns as the nominal dpi
    gives), starting at a random phase; every draw is made whichever effects are on, so
    the chip layout does not depend on them."""
    chip_px = s.seam_spacing_mm / s.nominal_px_mm
    phase = rng.uniform(0.0, chip_px)
    starts = np.rint(phase + chip_px * np.arange(int(cols / chip_px) + 2)).astype(np.intp)
    starts = starts[(starts > 0) & (starts < cols)]
    n = starts.size + 1
    gain = 1.0 + s.seam_gain * rng.standard_normal(n)
    offset = 0.25 * s.seam_gain * rng.standard_normal(n)
    shift = s.seam_shift_px * rng.standard_normal(n)
    widths = rng.integers(1, 3, starts.size)            # 1 or 2 px: [b] or [b - 1, b]
    depth = s.seam_gain * rng.uniform(1.0, 3.0, starts.size)
    line_cols, line_gain = [], []
    for b, w, d in zip(starts, widths, depth):
        for c in range(b - (w - 1), b + 1):
            line_cols.append(c)
            line_gain.append(1.0 - d)
    return _Seams(starts, gain, offset, shift, np.array(line_cols, np.intp),
                  np.array(line_gain), s.seam_gain * s.white_level)


@dataclass(frozen=True, eq=False)
class _FixedPattern:
    """Streaks, lamp and chips. Column arrays are in the final image's frame (the sensor
    does not turn over with the disc); ``render_cols`` gives them in the render frame.
    The combined factors are None where every contributing effect is off."""

    mirrored: bool
    streak_gain_rows: np.ndarray
    streak_gain_cols: np.ndarray
    streak_offset_rows: np.ndarray
    streak_offset_cols: np.ndarray
    lamp: np.ndarray
    seams: _Seams | None
    row_gain: np.ndarray | None       # lamp x (1 + row streaks), float32
    row_offset: np.ndarray | None
    col_gain: np.ndarray | None       # (1 + column streaks) x chip gain x seam lines
    col_offset: np.ndarray | None
    col_shift_px: np.ndarray | None   # chip misregistration of every column (px), float64

    def render_cols(self, values: np.ndarray) -> np.ndarray:
        return values[::-1] if self.mirrored else values


def _make_pattern(s: RenderSettings, shape: tuple[int, int], seed: int) -> _FixedPattern:
    rows, cols = shape
    px_row, px_col = s.true_px_mm
    (g_rows, g_cols), (o_rows, o_cols) = _pair(s.streak_gain, ""), _pair(s.streak_offset, "")
    streaks = [_line_pattern(n, rms, px, _rng(seed, name)) for n, rms, px, name in (
        (rows, g_rows, px_row, "streak gain rows"), (cols, g_cols, px_col, "streak gain cols"),
        (rows, o_rows, px_row, "streak offset rows"), (cols, o_cols, px_col, "streak offset cols"))]
    lamp = _lamp_profile(rows, px_row, s.lamp_drift, _rng(seed, "lamp"))
    seams = None
    if s.seam_gain > 0 or s.seam_shift_px > 0:
        seams = _make_seams(s, cols, _rng(seed, "seams"))
    row_gain = lamp * (1 + streaks[0]) if (s.lamp_drift > 0 or g_rows > 0) else None
    col_gain = col_offset = col_shift = None
    if g_cols > 0 or (seams is not None and s.seam_gain > 0):
        col_gain = 1 + streaks[1]
        if seams is not None:
            col_gain = col_gain * seams.gain[seams.chip_of_column(cols)].astype(np.float32)
            col_gain[seams.line_cols] *= seams.line_gain.astype(np.float32)
    if o_cols > 0 or (seams is not None and s.seam_gain > 0):
        col_offset = streaks[3].copy()
        if seams is not None:
            col_offset += seams.offset[seams.chip_of_column(cols)].astype(np.float32)
    if seams is not None and s.seam_shift_px > 0:
        col_shift = seams.shift_px[seams.chip_of_column(cols)]
    return _FixedPattern(s.mirrored, *streaks, lamp, seams, row_gain,
                         streaks[2] if o_rows > 0 else None, col_gain, col_offset, col_shift)


def _make_glass(s: RenderSettings, shape: tuple[int, int],
                rng: np.random.Generator) -> tuple[_Stroke, ...]:
    """Dust on the scanner glass over the whole imaged bed (render-frame px): specks
    5-50 um in radius (log-normal about 12 um) and, one in ten, curly lint fibres
    0.3-3 mm long and 8-20 um thick."""
    px_row, px_col = s.true_px_mm
    rows, cols = shape
    px = math.sqrt(px_row * px_col)
    height, width = rows * px_row, cols * px_col
    strokes = []
    for _ in range(int(rng.poisson(s.glass_dust_per_cm2 * height * width / 100.0))):
        x, y = rng.uniform(0.0, width), rng.uniform(0.0, height)
        if rng.uniform() < 0.1:
            length = float(np.clip(rng.lognormal(0.0, 0.6), 0.3, 3.0))
            path = _random_path((x, y), rng.uniform(0, TWO_PI), length, 0.02,
                                rng.uniform(2.0, 6.0), rng)
            strokes.append(_stroke("lint", np.stack([path[:, 1] / px_row, path[:, 0] / px_col], 1),
                                   rng.uniform(8.0, 20.0) * 1e-3 / px, rng.uniform(0.4, 0.8)))
        else:
            radius_um = float(np.clip(rng.lognormal(math.log(12.0), 0.6), 5.0, 50.0))
            strokes.append(_stroke("glass dust", [[y / px_row, x / px_col]],
                                   2e-3 * radius_um / px, rng.uniform(0.8, 1.0)))
    return tuple(strokes)


@dataclass(frozen=True, eq=False)
class _StrokeIndex:
    """Strokes with the rows they can touch, to pick those near a block quickly."""

    strokes: tuple[_Stroke, ...]
    lo: np.ndarray
    hi: np.ndarray

    def near(self, r0: int, r1: int) -> list[_Stroke]:
        hit = np.flatnonzero((self.hi >= r0) & (self.lo <= r1))
        return [self.strokes[i] for i in hit]


def _index_strokes(strokes: tuple[_Stroke, ...], blur_px: float) -> _StrokeIndex:
    reach = np.array([3 * blur_px + st.width_px + 3 for st in strokes])
    lo = np.array([st.row_range[0] for st in strokes]) - reach
    hi = np.array([st.row_range[1] for st in strokes]) + reach
    return _StrokeIndex(strokes, lo.reshape(-1), hi.reshape(-1))


@dataclass(frozen=True, eq=False)
class _Focus:
    """Curled film lifting off the glass: extra blur sigma ``max_mm * lift(x, y)`` with
    ``lift`` a smooth quadratic (dome or saddle) over the disc frame, clipped to [0, 1]:
    0 where the film touches, 1 where it lifts most."""

    centre: tuple[float, float]          # (x, y) mm, the outline's centre
    scale_mm: float                      # the disc's radius
    coef: tuple[float, ...]              # q = a X^2 + b X Y + c Y^2 + d X + e Y
    q_touch: float
    q_top: float
    max_mm: float

    def lift(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = (x - self.centre[0]) * (1.0 / self.scale_mm)
        v = (y - self.centre[1]) * (1.0 / self.scale_mm)
        a, b, c, d, e = self.coef
        q = (a * u + b * v + d) * u + (c * v + e) * v
        return np.clip((q - self.q_touch) * (1.0 / (self.q_top - self.q_touch)), 0.0, 1.0)

    def variance_weight(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Extra blur variance as a fraction of the largest (lift squared), float32."""
        return np.square(self.lift(x, y)).astype(np.float32)


def _make_focus(s: RenderSettings, outline: _Outline, rng: np.random.Generator) -> _Focus:
    """A random dome (edges or centre up) or saddle, tilted a little; it touches the
    glass over the lowest ~30 % of the disc."""
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    major, minor = sign, sign * rng.uniform(-1.0, 1.0)
    turn = rng.uniform(0, math.pi)
    c_, s_ = math.cos(turn), math.sin(turn)
    coef = (major * c_ * c_ + minor * s_ * s_, 2 * (major - minor) * c_ * s_,
            major * s_ * s_ + minor * c_ * c_, rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5))
    radius = s.disc_diameter_mm / 2.0
    g = np.linspace(-1.0, 1.0, 65)
    u, v = np.meshgrid(g, g)
    inside = u * u + v * v <= 1.0
    a, b, c, d, e = coef
    q = ((a * u + b * v + d) * u + (c * v + e) * v)[inside]
    touch, top = float(np.quantile(q, _FOCUS_TOUCH_FRACTION)), float(q.max())
    return _Focus(outline.centre, radius, coef, touch, max(top, touch + 1e-9),
                  s.focus_variation_um * 1e-3)


@dataclass(frozen=True, eq=False)
class _Rings:
    """Newton's ring systems on the film (disc frame): a multiplicative modulation of the
    transmitted light (see ``RenderSettings.newton_rings``)."""

    centres: np.ndarray          # (k, 2) x, y mm
    lambda_r_mm2: np.ndarray     # (k,) lambda x R (mm^2)
    contrast: np.ndarray         # (k,)
    n0: np.ndarray               # (k,) order where white light has faded to 1/e
    sigma_mm: float              # optics and pixel blur

    def factor(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """``1 + modulation`` at disc-frame points (float32), None if no ring reaches them."""
        out = None
        for (cx, cy), lr, a, n0 in zip(self.centres, self.lambda_r_mm2, self.contrast, self.n0):
            dx, dy = x - cx, y - cy
            rho2 = dx * dx + dy * dy
            near = np.flatnonzero(rho2 < 3.0 * n0 * lr)      # beyond: exp(-9) of the contrast
            if near.size == 0:
                continue
            order = rho2[near] * (1.0 / lr)
            freq2 = 4.0 * rho2[near] / (lr * lr)                # (2 rho / (lambda R))^2
            mod = a * np.cos(TWO_PI * order) * np.exp(
                -np.square(order / n0) - 2.0 * math.pi ** 2 * freq2 * self.sigma_mm ** 2)
            if out is None:
                out = np.ones(x.size, np.float32)
            out[near] *= (1.0 + mod).astype(np.float32)
        return out


def _make_rings(s: RenderSettings, outline: _Outline, focus: _Focus | None, sigma_mm: float,
                rng: np.random.Generator) -> _Rings:
    """1-3 systems with R log-uniform in 1-10 m, contrast ``newton_rings`` x 0.5-1 and n0
    8-15, centred at random points on the film; with a focus field, where it touches."""
    k = int(rng.integers(1, 4))
    lambda_r = _LAMBDA_MM * 1e3 * np.exp(rng.uniform(0.0, math.log(10.0), k))
    contrast = s.newton_rings * rng.uniform(0.5, 1.0, k)
    n0 = rng.uniform(8.0, 15.0, k)
    radius = 0.9 * (s.disc_diameter_mm / 2.0 - s.outline_irregularity_mm)
    centres = []
    for _ in range(k):
        for _attempt in range(200):
            r, a = radius * math.sqrt(rng.uniform()), rng.uniform(0, TWO_PI)
            p = (outline.centre[0] + r * math.cos(a), outline.centre[1] + r * math.sin(a))
            if focus is None or focus.lift(np.array([p[0]]), np.array([p[1]]))[0] == 0:
                break
        centres.append(p)
    return _Rings(np.array(centres), lambda_r, contrast, n0, sigma_mm)


def _sharpen(window: np.ndarray, s: RenderSettings) -> np.ndarray:
    """Unsharp mask ``v + amount (v - G(v))`` clipped to [0, 1]; ``G`` a Gaussian of
    ``unsharp_radius_px`` truncated at 4 sigma, reflected at the window's edges."""
    half = _usm_margin(s)
    blurred = cv2.GaussianBlur(window, (2 * half + 1, 2 * half + 1), s.unsharp_radius_px,
                               sigmaY=s.unsharp_radius_px, borderType=cv2.BORDER_REFLECT)
    out = window + np.float32(s.unsharp_amount) * (window - blurred)
    return np.clip(out, 0.0, 1.0, out=out)


def _usm_margin(s: RenderSettings) -> int:
    """Rows of context the unsharp mask needs on each side (0 when off); at most 16 =
    ``_TILE_ROWS`` (radius <= 4 px), so the neighbouring blocks always hold it."""
    return int(math.ceil(4.0 * s.unsharp_radius_px)) if s.unsharp_amount > 0 else 0


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (uint8) as a JPEG file at ``quality`` holds it.

    Baseline grayscale JPEG codes independent 8x8 blocks (only the DC difference, which
    is lossless, links them), so strips of rows starting at multiples of 8 round-trip to
    exactly what the whole image does.
    """
    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded, dtype=np.uint8)
