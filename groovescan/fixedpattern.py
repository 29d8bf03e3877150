"""The scanner's fixed pattern: per-column and per-row gain and offset, measured and removed.

A flatbed's line sensor reads every column of the scan with one pixel, so that pixel's
own gain and dark offset hold all the way down the column: vertical streaks. The lamp's
flicker and the electronics make each row a little brighter or darker: horizontal ones.
On bare light they are plain to see; on a groove they are worse than they look: the
groove crosses thousands of columns a turn, and every column it crosses moves its walls
a little (a 0.2 % offset on dark film is worth several dB of hiss), and the two walls of
a land strip, seen through the same streaks, seem to move together like a groove's.

Nothing about the pattern is known in advance, but its shape is: constant down a column
(or along a row), different from one line to the next. So each column is compared with
its neighbourhood, row by row: ``column = gain * neighbourhood + offset`` fitted by
robust least squares over the whole column length (the scan is averaged down the
columns first, which leaves the column pattern untouched). Grooves, the X-ray picture
and the disc's edge pass through a column at every phase and average out; the fit's own
noise is measured, and a pattern no stronger than that noise is not applied.

:func:`measure_fixed_pattern` measures it; :meth:`FixedPattern.corrected` gives a
read-only view of the scan with the pattern divided out, read lazily box by box, so a
memory-mapped gigapixel scan is never copied.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["FixedPattern", "CorrectedImage", "measure_fixed_pattern"]

# the scan is averaged down to this many rows (columns) to fit columns (rows): the
# fit's noise hardly changes from 1024 (column gains measured against a rendered
# truth: correlation 0.98 at 1024, 0.97 at 256), its time falls fivefold
_LINES = 256
# The neighbourhood a line is compared with: wider than a streak, narrow enough that the
# scene is the same across it. (A wider one sees the disc's own structure, ~6 mm across,
# as pattern: tried at 6 mm, it measured 5 % "gain" on a clean scan. So a sensor chip's
# own gain, constant over 18 mm, is seen only at its edges.)
_SCALES_MM = (0.3,)
_ITERATIONS = 4            # robust reweighting passes
_MIN_SAMPLES = 16          # a line seen at fewer places is left alone


@dataclass(frozen=True)
class FixedPattern:
    """Per-column and per-row gain and offset of a scanner, as measured in one scan.

    A pixel reads ``value = row_gain * col_gain * light + row_offset + col_offset``;
    :meth:`corrected` inverts that. Gains are relative (mean 1 over a neighbourhood),
    offsets in the image's own units.

    Attributes
    ----------
    col_gain, col_offset : (cols,) float32
    row_gain, row_offset : (rows,) float32
    col_rms, row_rms : (float, float)
        RMS relative gain deviation and RMS offset (fraction of the image's median
        level) of the columns and of the rows, as measured.
    col_noise, row_noise : float
        RMS of the measurement's own error in the gains: what a scan with no pattern
        would show.
    applied : (bool, bool)
        Whether the column and the row pattern stand out of that noise enough to be
        removed (an unneeded correction would only add its noise).
    """

    col_gain: np.ndarray = field(repr=False)
    col_offset: np.ndarray = field(repr=False)
    row_gain: np.ndarray = field(repr=False)
    row_offset: np.ndarray = field(repr=False)
    col_rms: tuple[float, float] = (0.0, 0.0)
    row_rms: tuple[float, float] = (0.0, 0.0)
    col_noise: float = 0.0
    row_noise: float = 0.0
    applied: tuple[bool, bool] = (False, False)

    @property
    def any_applied(self) -> bool:
        return bool(self.applied[0] or self.applied[1])

    def corrected(self, image):
        """``image`` with the pattern divided out: a lazily read :class:`CorrectedImage`,
        or ``image`` itself when no pattern was worth removing."""
        if not self.any_applied:
            return image
        return CorrectedImage(image, self)

    def summary(self) -> str:
        """One line for a report."""
        def part(name, rms, applied):
            return (f"{name} {rms[0] * 100:.2f} % gain, {rms[1] * 100:.2f} % offset"
                    + (" (removed)" if applied else ""))
        return part("columns", self.col_rms, self.applied[0]) + "; " + part("rows", self.row_rms, self.applied[1])


class CorrectedImage:
    """A read-only view of a scan with its fixed pattern divided out.

    Supports what the decoder's stages use: ``shape`` and 2-D slicing with unit steps,
    which reads that box of the underlying image (an ndarray or a memmap) and returns it
    corrected, as float32. Nothing else of the image is read or kept.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, image, pattern: FixedPattern):
        self.image = image
        self.pattern = pattern
        self.shape = tuple(image.shape)
        identity_c = not pattern.applied[0]
        identity_r = not pattern.applied[1]
        ones_c, ones_r = np.ones(self.shape[1], np.float32), np.ones(self.shape[0], np.float32)
        self._col_scale = ones_c if identity_c else (1.0 / pattern.col_gain).astype(np.float32)
        self._col_offset = 0 * ones_c if identity_c else pattern.col_offset.astype(np.float32)
        self._row_scale = ones_r if identity_r else (1.0 / pattern.row_gain).astype(np.float32)
        self._row_offset = 0 * ones_r if identity_r else pattern.row_offset.astype(np.float32)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2 or not all(isinstance(k, slice) and k.step in (None, 1) for k in key):
            raise TypeError("a CorrectedImage is read in boxes: index it with two unit-step slices")
        rows, cols = key
        box = np.asarray(self.image[rows, cols], dtype=np.float32)
        box = box - self._row_offset[rows, None] - self._col_offset[None, cols]
        box *= self._row_scale[rows, None]
        box *= self._col_scale[None, cols]
        return box

    def __len__(self):
        return self.shape[0]


def _groups(n, lines):
    """Group size that averages ``n`` lines down to at most ``lines``."""
    return max(1, -(-n // lines))


def _reduce_lines(image, lines):
    """Means of the scan over groups of rows, (<= lines, cols), and over groups of
    columns, (rows, <= lines): one pass, strip by strip. float32."""
    height, width = image.shape
    f_rows, f_cols = _groups(height, lines), _groups(width, lines)
    down = np.zeros((height // f_rows, width), np.float32)
    across = np.zeros((height, width // f_cols), np.float32)
    strip = max(f_rows, (1 << 24) // max(width, 1) // f_rows * f_rows)
    for r0 in range(0, height, strip):
        block = np.asarray(image[r0:min(height, r0 + strip)], dtype=np.float32)
        n = block.shape[0] // f_rows
        k0 = r0 // f_rows
        if n:
            down[k0:k0 + n] = block[:n * f_rows].reshape(n, f_rows, width).mean(axis=1)
        across[r0:r0 + block.shape[0]] = block[:, :across.shape[1] * f_cols].reshape(
            block.shape[0], -1, f_cols).mean(axis=2)
    return down, across


@dataclass(frozen=True)
class _LineFit:
    gain: np.ndarray
    offset: np.ndarray
    gain_error: np.ndarray
    offset_error: np.ndarray
    level: float


def _median_of_valid(values, valid):
    """Median down each column of ``values`` over its ``valid`` entries (NaN where none).

    np.nanmedian along an axis works column by column in Python: on a scan's 50 000
    columns that took seconds a call. One sort of the whole array does it at once.
    """
    ordered = np.sort(np.where(valid, values, np.nan), axis=0)       # NaN sort last
    count = valid.sum(axis=0)
    cols = np.arange(values.shape[1])
    low = ordered[np.maximum(count - 1, 0) // 2, cols]
    high = ordered[count // 2, cols]
    return np.where(count > 0, 0.5 * (low + high), np.nan)


def _fit_lines(values, valid, half_width):
    """Robust per-line fit ``values = gain * neighbourhood + offset`` down the lines.

    ``values`` (n, lines) float32, one column per line; ``valid`` (n, lines) bool. The
    neighbourhood is the mean of the ``2 * half_width + 1`` lines around. Weights:
    the inverse of the scene's own variance across the neighbourhood (where the film's
    edge, the hole or a label runs along the lines, the neighbourhood is no reference),
    times Tukey's biweight of the residual.
    """
    width = 2 * int(half_width) + 1

    def mean_of_valid(a):                  # the neighbourhood's mean over valid values only
        return (cv2.blur(np.where(valid, a, 0).astype(np.float32), (width, 1), borderType=cv2.BORDER_REFLECT)
                / np.maximum(cv2.blur(valid.astype(np.float32), (width, 1), borderType=cv2.BORDER_REFLECT), 1e-6))

    x = mean_of_valid(values)
    y = values
    level = float(np.median(x[valid])) if valid.any() else 1.0
    across = mean_of_valid(values * values) - x * x
    quiet = float(np.median(across[valid])) if valid.any() else 1.0
    prior = np.where(valid, 1.0 / (1.0 + np.maximum(across, 0) / max(quiet, 1e-12)), 0.0).astype(np.float32)
    w = prior
    # a line of one brightness cannot tell gain from offset: there the fit leans to a
    # pure gain (a ridge worth a spread of 5 % of the level)
    ridge_spread2 = (0.05 * level) ** 2
    for _ in range(_ITERATIONS):
        sw = w.sum(axis=0) + 1e-9
        mx, my = (w * x).sum(axis=0) / sw, (w * y).sum(axis=0) / sw
        dx = x - mx
        sxx = (w * dx * dx).sum(axis=0)
        sxy = (w * dx * (y - my)).sum(axis=0)
        ridge = sw * ridge_spread2
        gain = (sxy + ridge * my / np.maximum(mx, 1e-9)) / (sxx + ridge)
        offset = my - gain * mx
        resid = y - gain * x - offset
        scale = 1.4826 * _median_of_valid(np.abs(resid), valid) + 1e-6 * level
        u = resid / (4.685 * scale)
        w = prior * np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0).astype(np.float32)
    sw = w.sum(axis=0) + 1e-9
    sigma = np.sqrt((w * resid ** 2).sum(axis=0) / sw)
    n_eff = np.maximum(sw ** 2 / ((w * w).sum(axis=0) + 1e-9), 1.0)
    spread = np.sqrt(sxx / sw + ridge_spread2)
    gain_error = sigma / spread / np.sqrt(n_eff)
    offset_error = sigma * np.sqrt(1.0 + (mx / spread) ** 2) / np.sqrt(n_eff)
    unseen = valid.sum(axis=0) < _MIN_SAMPLES
    for array, neutral in ((gain, 1.0), (offset, 0.0), (gain_error, 0.0), (offset_error, 0.0)):
        array[unseen] = neutral
    return _LineFit(gain, offset, gain_error, offset_error, level)


def _wiener(deviation, error):
    """The factor to apply a measured pattern by, and its RMS: 0 unless its variance is
    twice what its noise alone would give, then ``1 - noise^2 / rms^2`` (the noise's
    share of it is not applied)."""
    rms2 = float(np.mean(deviation ** 2))
    noise2 = float(np.mean(error ** 2))
    factor = 0.0 if rms2 <= 2.0 * noise2 else 1.0 - noise2 / rms2
    return factor, float(np.sqrt(rms2)), float(np.sqrt(noise2))


def _line_pattern(values, valid, half_widths):
    """Gain and offset of every line, fitted at each scale in turn on what the finer
    scales left; with the RMS gain and offset found and the gain noise."""
    values = values.copy()
    gain = np.ones(values.shape[1])
    offset = np.zeros(values.shape[1])
    level, rms, noise = 1.0, [0.0, 0.0], 0.0
    for half_width in half_widths:
        fit = _fit_lines(values, valid, half_width)
        level = fit.level
        g_factor, g_rms, g_noise = _wiener(fit.gain - 1.0, fit.gain_error)
        b_factor, b_rms, _ = _wiener(fit.offset, fit.offset_error)
        g = 1.0 + g_factor * (fit.gain - 1.0)
        b = b_factor * fit.offset
        values = ((values - b) / g).astype(np.float32)
        # value = G (g L + b) + B: the scales compose
        offset = offset + gain * b
        gain = gain * g
        rms = [max(rms[0], g_rms), max(rms[1], b_rms / max(level, 1e-9))]
        noise = max(noise, g_noise)
    applied = bool(np.any(gain != 1.0) or np.any(offset != 0.0))
    return gain, offset, tuple(rms), noise, applied


def _off_the_grooves(shape, f_rows, f_cols, grooves, margin_mm=1.0):
    """Mask of a reduced scan, True where a whole group of pixels lies off the grooved
    ring (with ``margin_mm`` to spare): there the pattern shows on plain film or bed."""
    if grooves is None or grooves.centre_px is None or not np.isfinite(grooves.r_inner_mm):
        return np.ones(shape, bool)
    px = float(np.sqrt(np.prod(np.atleast_1d(grooves.px_mm)))) if np.size(grooves.px_mm) > 1 else float(grooves.px_mm)
    rows = (np.arange(shape[0]) + 0.5) * f_rows - 0.5 - grooves.centre_px[0]
    cols = (np.arange(shape[1]) + 0.5) * f_cols - 0.5 - grooves.centre_px[1]
    radius = np.hypot(rows[:, None], cols[None, :]) * px
    reach = margin_mm + 0.5 * np.hypot(f_rows, f_cols) * px
    return (radius < grooves.r_inner_mm - reach) | (radius > grooves.r_outer_mm + reach)


def measure_fixed_pattern(image, *, grooves=None, px_mm=None) -> FixedPattern:
    """Measure the scanner's per-column and per-row gain and offset in a scan.

    Parameters
    ----------
    image : (rows, cols) array_like, or a Scan
        The scan (ndarray or memmap; read once, in strips).
    grooves : CoarseGeometry or DiscGeometry, optional
        Where the grooved ring is (``centre_px``, ``r_inner_mm``, ``r_outer_mm``,
        ``px_mm``). A column that runs along the grooves (left and right of the centre)
        sees one groove for a long way and would take it for a streak; so would a row
        above and below it. The ring is left out, and the pattern read where it shows on
        plain film or the bed. Without it, every pixel counts.
    px_mm : float, optional
        Pixel size (mm), for the neighbourhood's width (0.3 mm); taken from the Scan or
        ``grooves``, else 2400 dpi is assumed.

    Returns
    -------
    FixedPattern

    Notes
    -----
    Peak memory: two float32 reductions of the scan, 256 x cols and rows x 256
    (about 57 MB each for a 56 000 px side), and a few temporaries of that size.
    Clipped pixels (at the image's extremes) are left out of the fit.
    """
    if px_mm is None:
        px_mm = getattr(image, "px_mm", None) or getattr(grooves, "px_mm", None) or 25.4 / 2400
    px_mm = float(np.sqrt(np.prod(np.atleast_1d(px_mm)))) if np.size(px_mm) > 1 else float(px_mm)
    image = getattr(image, "image", image)
    down, across = _reduce_lines(image, _LINES)
    f_rows, f_cols = _groups(image.shape[0], _LINES), _groups(image.shape[1], _LINES)
    top, bottom = float(down.max()), float(down.min())
    half_widths = [max(2, int(round(scale / px_mm))) for scale in _SCALES_MM]
    patterns = []
    for values, off in ((down, _off_the_grooves(down.shape, f_rows, 1, grooves)),
                        (across.T.copy(), _off_the_grooves(across.shape, 1, f_cols, grooves).T)):
        valid = off & (values < top - 1e-3 * (top - bottom)) & (values > bottom + 1e-3 * (top - bottom))
        patterns.append(_line_pattern(values, valid, half_widths))
    (cg, co, c_rms, c_noise, c_on), (rg, ro, r_rms, r_noise, r_on) = patterns
    return FixedPattern(
        col_gain=cg.astype(np.float32), col_offset=co.astype(np.float32),
        row_gain=rg.astype(np.float32), row_offset=ro.astype(np.float32),
        col_rms=c_rms, row_rms=r_rms, col_noise=c_noise, row_noise=r_noise, applied=(c_on, r_on))
