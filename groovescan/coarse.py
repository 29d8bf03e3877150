"""Where the grooves are, roughly: groove texture in blocks, a consensus centre, the ring.

A flatbed scan holds much more than grooves: the bare bed around the disc, the
scanner's streaks (every column is read by one sensor pixel for the whole scan, every
row at one lamp position), seams between sensor chips, dust on the glass, Newton rings,
JPEG blocks, the film's cut edge, the hole, the X-ray picture. Grooves differ from all
of them in two ways that physics guarantees, and this module looks only for those:

* **Periodic across their direction**, at a groove pitch (0.05-0.6 mm). A block of the
  scan (2 mm square, ~20 um pixels) is taken into the frequency domain; grooves make a
  sharp peak there. A step edge, a hair or a lone line make a ridge that rises towards
  low frequencies, dust, grain and noise no peak at all. Before the transform, whatever
  is constant down the block's columns or along its rows is projected out: that is
  exactly what a line sensor's streaks are, and it removes them whatever their strength.
* **Concentric**: the normal of every grooved block passes through the spiral centre.
  A RANSAC consensus of those normals (:func:`skimage.measure.ransac`) finds it however
  many blocks hold something else (Newton rings, a ruler, a second disc's edge).

The grooved ring is then the range of radii where most blocks are grooves facing the
centre. :mod:`groovescan.geometry` refines all of it to micrometres.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage
from skimage.measure import ransac

from .errors import NoGrooveError
from .sampling import cpu_workers, sector_profiles

__all__ = ["CoarseGeometry", "GrooveBlocks", "coarse_geometry", "groove_blocks"]

#: Coarsest music pitch looked for (mm). Records are cut at 0.1-0.35 mm a turn; lead-ins,
#: lead-outs and band spacers are coarser and must never be taken for the music.
MAX_MUSIC_PITCH_MM = 0.6
#: Finest groove period looked for (mm): a microgroove LP's second harmonic.
MIN_PERIOD_MM = 0.04
BLOCK_MM = 2.0                      # several periods of the coarsest music pitch
OVERVIEW_PX_MM = 0.02               # grooves need no finer pixels to show their period
PEAK_SIGNIFICANCE = 25.0            # peak power / median power of a block's groove band
MAX_ANGLE_MISFIT = 0.05             # rad: a block's normal misses the centre by < ~3 degrees
MIN_GROOVE_RADIUS_MM = 10.0         # no record has music this close to its centre
MAX_DISC_RADIUS_MM = 170.0          # a 12-inch disc, with room to spare
RING_REACH_MM = 3.0                 # the ring is registered this far past the blocks' ring
RING_SECTORS = 360


@dataclass(frozen=True)
class GrooveBlocks:
    """The blocks of a scan whose texture is grooves (periodic at a groove pitch).

    Attributes
    ----------
    row_px, col_px : (n,) float64
        Block centres (image pixels) of the grooved blocks.
    normal : (n, 2) float64
        Unit vector (d_row, d_col) across the grooves, sign arbitrary.
    period_mm : (n,) float64
        Period of the block's strongest spectral peak: the pitch or one of its harmonics.
    significance : (n,) float64
        That peak's power over the median power of the block's groove band.
    index : (n,) int64
        Flat index of each grooved block in the block grid.
    grid_shape : (int, int)
        Rows and columns of the block grid.
    grid_origin_px, grid_step_px : float
        Image pixel of the first block's centre (row and col alike) and the grid spacing.
    block_px : int
        Side of one block in image pixels.
    brightness : ndarray, ``grid_shape``, float32
        Mean level of every block: a thumbnail of the scan.
    significance_map : ndarray, ``grid_shape``, float32
        Peak significance of every block (0 where the block has no groove-like peak).
    px_mm : float
        Nominal pixel size (mm) the blocks were measured with.
    """

    row_px: np.ndarray = field(repr=False)
    col_px: np.ndarray = field(repr=False)
    normal: np.ndarray = field(repr=False)
    period_mm: np.ndarray = field(repr=False)
    significance: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    grid_shape: tuple[int, int]
    grid_origin_px: float
    grid_step_px: float
    block_px: int
    brightness: np.ndarray = field(repr=False)
    significance_map: np.ndarray = field(repr=False)
    px_mm: float

    @property
    def count(self) -> int:
        return int(self.row_px.size)

    def grid_px(self):
        """(rows, cols) image-pixel centres of every block of the grid, 1-D each."""
        rows = self.grid_origin_px + self.grid_step_px * np.arange(self.grid_shape[0])
        cols = self.grid_origin_px + self.grid_step_px * np.arange(self.grid_shape[1])
        return rows, cols

    def grid_radius_mm(self, centre_px):
        """Distance (mm) of every block of the grid from ``centre_px`` (row, col), flat
        in the order ``index`` counts."""
        rows, cols = self.grid_px()
        return (np.hypot(rows[:, None] - centre_px[0], cols[None, :] - centre_px[1]) * self.px_mm).ravel()


@dataclass(frozen=True)
class CoarseGeometry:
    """The spiral's centre and grooved ring to a fraction of a millimetre.

    Attributes
    ----------
    centre_px : (row, col), or None when no consensus was found.
    r_inner_mm, r_outer_mm : radii bounding the grooved ring (NaN if not found).
    blocks : GrooveBlocks the consensus was taken from.
    inliers : (n,) bool, blocks whose normal passes through the centre (None if no centre).
    centre_given, radii_given : bool, whether the user supplied them.
    refused_radii_mm : (r_inner, r_outer), or None
        Set on the evidence of a refused ``radii_mm`` hint: the ring the user gave, while
        ``r_inner_mm``/``r_outer_mm`` hold the ring of grooves the blocks saw.
    scale_mismatch : float
        ``q``: the grooved ring looked ``1 + q`` times wider along the columns than along
        the rows (a flatbed's X and Y scales differ); 0 when not measured.
    """

    centre_px: tuple[float, float] | None
    r_inner_mm: float
    r_outer_mm: float
    blocks: GrooveBlocks = field(repr=False)
    inliers: np.ndarray | None = field(default=None, repr=False)
    centre_given: bool = False
    radii_given: bool = False
    scale_mismatch: float = 0.0
    refused_radii_mm: tuple[float, float] | None = None

    @property
    def px_mm(self) -> float:
        """Nominal pixel size (mm) of the scan the blocks were measured in."""
        return self.blocks.px_mm

    @property
    def period_mm(self) -> float:
        """The commonest groove period (mm) of the blocks facing the centre: the pitch
        or one of its harmonics (NaN if no block is grooved)."""
        return _commonest_period(self.blocks, self.inliers)


# ----------------------------------------------------------------------------- blocks

def _overview_strip(image, r0, r1, reduce, width):
    """Image rows ``r0:r1`` area-reduced by ``reduce``, float32 (read once, in its type)."""
    strip = np.asarray(image[r0:r1, :width])
    if strip.dtype not in (np.uint8, np.uint16, np.float32):
        strip = strip.astype(np.float32)
    if reduce > 1:
        strip = cv2.resize(strip, (strip.shape[1] // reduce, strip.shape[0] // reduce),
                           interpolation=cv2.INTER_AREA)
    return strip.astype(np.float32, copy=False)


def _without_streaks(windowed, window):
    """Project out of each windowed block what is constant down its columns or along its
    rows (times the window): a line sensor's fixed-pattern streaks, its chip seams and
    the lamp's flicker, whatever their strength. Grooves lose only the part that is
    aligned with the image axes, which no centre fit could use anyway. In place."""
    norm = 1.0 / float(np.dot(window, window))
    down = np.einsum("nij,i->nj", windowed, window) * norm       # one value per column
    windowed -= window[None, :, None] * down[:, None, :]
    along = np.einsum("nij,j->ni", windowed, window) * norm      # one value per row
    windowed -= along[:, :, None] * window[None, None, :]
    return windowed


def _frequency_grid(size, px_mm):
    """Signed row frequencies, column frequencies (cycles/mm) of an rfft2 of ``size``."""
    return sp_fft.fftfreq(size, px_mm), sp_fft.rfftfreq(size, px_mm)


def _parabolic_offset(low, mid, high):
    """Sub-bin offset of a peak from the log powers at its bin and both neighbours."""
    a, b, c = np.log(low + 1e-30), np.log(mid + 1e-30), np.log(high + 1e-30)
    return np.clip(0.5 * (a - c) / np.minimum(a - 2 * b + c, -1e-12), -0.5, 0.5)


def _block_peaks(blocks, window, px_mm, period_range):
    """Strongest groove-band peak of each block: significance, (f_row, f_col) cycles/mm.

    A block passes when its peak stands ``PEAK_SIGNIFICANCE`` times above the median of
    its band (for noise, whose power is exponentially distributed, the largest of a few
    thousand bins stands ~11 times above it; 25 happens once in ~10^4 blocks), and is a
    local maximum along its own direction: an edge or a line has a ridge that only rises
    towards low frequencies. Returns significance 0 where it fails.
    """
    n, size, _ = blocks.shape
    means = blocks.mean(axis=(1, 2))
    lit = means > 0
    x = blocks / np.where(lit, means, 1.0)[:, None, None].astype(np.float32)
    x -= 1.0
    x *= window[None, :, None] * window[None, None, :]
    _without_streaks(x, window)
    power = np.abs(sp_fft.rfft2(x, workers=cpu_workers())) ** 2
    f_row, f_col = _frequency_grid(size, px_mm)
    radius = np.hypot(f_row[:, None], f_col[None, :])
    band = ((radius >= 1.0 / period_range[1]) & (radius <= 1.0 / period_range[0])
            & (f_row[:, None] != 0) & (f_col[None, :] != 0))
    in_band = np.flatnonzero(band.ravel())
    values = power.reshape(n, -1).take(in_band, axis=1)
    best = np.argmax(values, axis=1)
    rows = np.arange(n)
    peak = values[rows, best]
    # the median of every third bin is as good a noise level, and three times cheaper
    significance = peak / np.maximum(np.median(values[:, ::3], axis=1), 1e-30)
    iy, ix = np.unravel_index(in_band[best], band.shape)
    sy = np.where(iy > size // 2, iy - size, iy)                 # signed row bin
    dy = _parabolic_offset(power[rows, (iy - 1) % size, ix], peak, power[rows, (iy + 1) % size, ix])
    dx = _parabolic_offset(power[rows, iy, ix - 1], peak, power[rows, iy, np.minimum(ix + 1, power.shape[2] - 1)])
    # nearer the origin along the peak's direction, at 0.7 of its frequency (at least two
    # bins): outside the main lobe of grooves three periods wide or more (a short side's
    # narrow ring), on the ridge of an edge or a line, which only rises towards 0
    bins = np.hypot(sy, ix)
    shrink = np.clip(np.minimum(1.0 - 2.0 / np.maximum(bins, 1e-9), 0.7), 0.0, 1.0)
    below = power[rows, np.rint(sy * shrink).astype(int) % size, np.rint(ix * shrink).astype(int)]
    passed = lit & (significance >= PEAK_SIGNIFICANCE) & (below < 0.25 * peak)
    freq = np.stack([(sy + dy) / (size * px_mm), (ix + dx) / (size * px_mm)], axis=1)
    return np.where(passed, significance, 0.0), freq, means


def groove_blocks(image, px_mm, *, pitch_mm=None, block_mm=BLOCK_MM) -> GrooveBlocks:
    """Find the blocks of a scan whose texture is grooves.

    Parameters
    ----------
    image : (H, W) array_like
        The scan (ndarray or memory map; read once, in strips).
    px_mm : float
        Nominal pixel size (mm).
    pitch_mm : float, optional
        The user's pitch: only periods near it or its 2nd/3rd harmonic count.
    block_mm : float
        Side of a block (mm); blocks tile the image.

    Returns
    -------
    GrooveBlocks

    Notes
    -----
    The image is area-reduced to ~20 um pixels on the fly; peak memory is a strip of
    ~64 MB plus one FFT of a few thousand blocks (~150 MB).
    """
    reduce = max(1, int(round(OVERVIEW_PX_MM / px_mm)))
    px_ov = px_mm * reduce
    size = 2 * max(8, int(round(block_mm / px_ov / 2)))
    step = size
    height, width = image.shape[0] // reduce, image.shape[1] // reduce
    if height < size or width < size:
        raise NoGrooveError(f"the image ({image.shape[0]} x {image.shape[1]} px) is smaller than "
                            f"{block_mm:g} mm at this resolution: too small to hold a record groove; "
                            "check the file and --dpi")
    grid = ((height - size) // step + 1, (width - size) // step + 1)
    window = np.hanning(size + 2)[1:-1].astype(np.float32)
    period_range = (max(MIN_PERIOD_MM, 2.5 * px_ov), MAX_MUSIC_PITCH_MM)
    significance = np.zeros(grid, np.float32)
    brightness = np.zeros(grid, np.float32)
    freqs = np.zeros(grid + (2,), np.float64)
    rows_per_strip = max(1, min(grid[0], (1 << 24) // max(width * step, 1)))
    blocks_per_batch = max(1, (1 << 22) // (size * size))
    for g0 in range(0, grid[0], rows_per_strip):
        g1 = min(grid[0], g0 + rows_per_strip)
        o0, o1 = g0 * step, (g1 - 1) * step + size               # overview rows of the strip
        strip = _overview_strip(image, o0 * reduce, o1 * reduce, reduce, width * reduce)
        windows = np.lib.stride_tricks.sliding_window_view(strip, (size, size))[::step, ::step]
        windows = windows[:g1 - g0, :grid[1]].reshape(-1, size, size)
        sig, freq, means = [], [], []
        for b in range(0, windows.shape[0], blocks_per_batch):
            batch = np.array(windows[b:b + blocks_per_batch], dtype=np.float32)
            out = _block_peaks(batch, window, px_ov, period_range)
            sig.append(out[0]), freq.append(out[1]), means.append(out[2])
        significance[g0:g1] = np.concatenate(sig).reshape(g1 - g0, grid[1])
        freqs[g0:g1] = np.concatenate(freq).reshape(g1 - g0, grid[1], 2)
        brightness[g0:g1] = np.concatenate(means).reshape(g1 - g0, grid[1])
    f_abs = np.hypot(freqs[..., 0], freqs[..., 1])
    if pitch_mm is not None:                    # the user knows the pitch: keep its harmonics
        harmonic = np.rint(f_abs * pitch_mm)
        near = (harmonic >= 1) & (harmonic <= 3) & (np.abs(f_abs * pitch_mm - harmonic) < 0.25 * harmonic)
        significance = np.where(near, significance, 0.0).astype(np.float32)
    index = np.flatnonzero(significance.ravel() > 0)
    gi, gj = np.unravel_index(index, grid)
    # block (i, j) spans overview rows i*step .. i*step+size: its centre in image pixels
    origin = ((size - 1) / 2) * reduce + (reduce - 1) / 2
    normal = freqs.reshape(-1, 2)[index] / np.maximum(f_abs.ravel()[index, None], 1e-12)
    return GrooveBlocks(
        row_px=origin + gi * step * reduce, col_px=origin + gj * step * reduce, normal=normal,
        period_mm=1.0 / f_abs.ravel()[index], significance=significance.ravel()[index].astype(np.float64),
        index=index, grid_shape=grid, grid_origin_px=float(origin), grid_step_px=float(step * reduce),
        block_px=size * reduce, brightness=brightness, significance_map=significance, px_mm=float(px_mm))


# ----------------------------------------------------------------------------- centre

class _NormalsMeet:
    """RANSAC model: the point that block normals pass through (mm).

    ``points`` (n, 2) are block centres, ``normals`` (n, 2) unit vectors across the
    grooves there. The residual is the angle (rad) by which a block's normal misses the
    point: a fixed angle, not a distance, so near and far blocks count alike.
    """

    def __init__(self, centre=None):
        self.centre = centre

    @classmethod
    def from_estimate(cls, points, normals):
        model = cls()
        return model if model.estimate(points, normals) else None

    def estimate(self, points, normals):
        tangents = np.stack([normals[:, 1], -normals[:, 0]], axis=1)
        normal_matrix = tangents.T @ tangents
        if np.linalg.cond(normal_matrix) > 1e8:        # parallel normals meet nowhere
            return False
        self.centre = np.linalg.solve(normal_matrix, tangents.T @ np.sum(points * tangents, axis=1))
        return True

    def residuals(self, points, normals):
        d = self.centre[None, :] - points
        distance = np.hypot(d[:, 0], d[:, 1])
        miss = np.abs(normals[:, 0] * d[:, 1] - normals[:, 1] * d[:, 0]) / np.maximum(distance, 1e-9)
        # no groove lies this close to the centre: such a block cannot support it
        return np.where(distance < MIN_GROOVE_RADIUS_MM, 1.0, np.arcsin(np.clip(miss, 0.0, 1.0)))


def _weighted_centre(points, normals, weights, centre, n_iter=6):
    """Refine the meeting point with robust (Cauchy) weights on the angular misfit."""
    tangents = np.stack([normals[:, 1], -normals[:, 0]], axis=1)
    rhs = np.sum(points * tangents, axis=1)
    model = _NormalsMeet(np.asarray(centre, dtype=np.float64))
    for _ in range(n_iter):
        misfit = model.residuals(points, normals)
        distance = np.hypot(*(model.centre[None, :] - points).T)
        # a line's distance error grows with its length: weigh by 1 / distance^2
        w = weights / (1.0 + (misfit / MAX_ANGLE_MISFIT) ** 2) / np.maximum(distance, 1.0) ** 2
        a = tangents * w[:, None]
        model.centre = np.linalg.solve(a.T @ tangents + 1e-12 * np.eye(2), a.T @ rhs)
    return model.centre


def _consensus_centre(blocks: GrooveBlocks, image_shape, rng):
    """Spiral centre (row, col px) where most grooved blocks' normals meet, and inliers."""
    px = blocks.px_mm
    points = np.stack([blocks.row_px, blocks.col_px], axis=1) * px
    extent = np.array(image_shape, dtype=np.float64) * px

    def plausible(model, *_):           # the centre may lie off the image (a cut disc)
        c = model.centre
        return bool(np.all(c > -MAX_DISC_RADIUS_MM) and np.all(c < extent + MAX_DISC_RADIUS_MM))

    model, inliers = ransac((points, blocks.normal), _NormalsMeet, min_samples=2,
                            residual_threshold=MAX_ANGLE_MISFIT, is_model_valid=plausible,
                            max_trials=2000, stop_probability=0.9999, rng=rng)
    if model is None or inliers is None or inliers.sum() < 20:
        return None, None
    centre = _weighted_centre(points[inliers], blocks.normal[inliers], blocks.significance[inliers],
                              model.centre)
    inliers = _NormalsMeet(centre).residuals(points, blocks.normal) < MAX_ANGLE_MISFIT
    centre = _weighted_centre(points[inliers], blocks.normal[inliers], blocks.significance[inliers], centre)
    inliers = _NormalsMeet(centre).residuals(points, blocks.normal) < MAX_ANGLE_MISFIT
    return (float(centre[0] / px), float(centre[1] / px)), inliers


def _facing(blocks: GrooveBlocks, centre_px):
    """Which blocks' normals pass through ``centre_px`` (row, col)."""
    if not blocks.count:
        return np.zeros(0, bool)
    points = np.stack([blocks.row_px, blocks.col_px], axis=1) * blocks.px_mm
    centre = np.asarray(centre_px, dtype=np.float64) * blocks.px_mm
    return _NormalsMeet(centre).residuals(points, blocks.normal) < MAX_ANGLE_MISFIT


def _commonest_period(blocks: GrooveBlocks, inliers=None):
    """The commonest groove period (mm) of the blocks (those facing the centre, if any
    do): the pitch or one of its harmonics, enough to tell grooves from the rest."""
    use = inliers if inliers is not None and inliers.any() else slice(None)
    log_period = np.log(blocks.period_mm[use])
    if log_period.size == 0:
        return np.nan
    bins = np.arange(log_period.min() - 0.02, log_period.max() + 0.04, 0.02)
    counts, edges = np.histogram(log_period, bins, weights=np.sqrt(blocks.significance[use]))
    k = int(np.argmax(ndimage.uniform_filter1d(counts, 3)))
    return float(np.exp(0.5 * (edges[k] + edges[k + 1])))


# ----------------------------------------------------------------------------- ring

def _misplaced_ring_hint(blocks: GrooveBlocks, centre_px, inliers, radii_mm, seen_ring):
    """Why the user's grooved ring cannot be right, or "" if it may be.

    A hint is for grooves too faint for the blocks, so an empty ring alone proves
    nothing. It is refused only when the blocks see a ring of grooves elsewhere, apart
    from the hint, and hardly any grooves facing the centre inside it (an outer radius
    given as a diameter, a radius in the wrong unit).
    """
    if seen_ring is None or not (seen_ring[1] <= radii_mm[0] or seen_ring[0] >= radii_mm[1]):
        return ""
    radius = blocks.grid_radius_mm(centre_px)
    in_hint = (radius >= radii_mm[0]) & (radius <= radii_mm[1])
    n_hint, n_grooves = int(in_hint.sum()), int(in_hint[blocks.index[inliers]].sum())
    if n_hint and n_grooves >= 0.1 * n_hint:
        return ""
    there = (f"{n_grooves} of the {n_hint} blocks there look like grooves facing it" if n_hint else
             "that ring lies off the scan")
    return (f"no grooves between r = {radii_mm[0]:g} and {radii_mm[1]:g} mm around the spiral centre "
            f"(row {centre_px[0]:.0f}, col {centre_px[1]:.0f}): {there}, while the grooves seen lie "
            f"between r = {seen_ring[0]:g} and {seen_ring[1]:g} mm. Give --radii as the inner and outer "
            "radius of the grooves in mm from the spiral centre (not diameters), or leave it out")


def _grooved_ring(blocks: GrooveBlocks, centre_px, inliers, ring_mm=1.0):
    """Radii (mm) of the ring where most blocks are grooves facing the centre, or None.

    Blocks are binned by the radius of their centre into rings ``ring_mm`` wide; in each,
    the fraction of the image's blocks that are inliers. The grooved ring is the
    heaviest run of rings where that exceeds a quarter (gaps of up to two rings bridged:
    a band spacer, a blank stretch). It reaches about half a block beyond the grooves.
    """
    ring_all = np.floor(blocks.grid_radius_mm(centre_px) / ring_mm).astype(int)
    n_rings = int(ring_all.max()) + 1
    ring_in = ring_all[blocks.index[inliers]]
    frac = np.bincount(ring_in, minlength=n_rings) / np.maximum(np.bincount(ring_all, minlength=n_rings), 1)
    frac[: int(MIN_GROOVE_RADIUS_MM / ring_mm)] = 0.0
    labels, n = ndimage.label(ndimage.binary_closing(frac > 0.25, iterations=2))
    if n == 0:
        return None
    weight = ndimage.sum(frac, labels, index=np.arange(1, n + 1))
    run = np.flatnonzero((labels == np.argmax(weight) + 1) & (frac > 0))
    return float(run[0] * ring_mm), float((run[-1] + 1) * ring_mm)


# ----------------------------------------------------------------------------- registration

def _ring_texture(image, centre_px, px, r_lo, r_hi, period_mm):
    """Groove texture along the radius in each sector: the local strength of the
    profile's component at the grooves' period (complex demodulation over four periods),
    which densely packed grooves have and a lead-in's sparse turns, the film's picture
    or an edge hardly do. Returns (sectors, radii) float32, the radii, the sector angles
    and which sectors lie wholly on the image. ``px``: (row, col) pixel size, mm."""
    step = max(min(px), min(OVERVIEW_PX_MM, period_mm / 4))
    prof, radii, theta = sector_profiles(image, centre_px, px, r_lo, r_hi, RING_SECTORS, 4, step)
    seen = np.isfinite(prof).all(axis=1)
    prof = np.where(np.isfinite(prof), prof, np.nanmedian(prof) if seen.any() else 0.0)
    smooth = ndimage.gaussian_filter1d(prof, max(1.0, 1.5 * period_mm / step), axis=1)
    # contrast, so that the film's density cancels; nearly opaque film is no texture
    floor = max(0.05 * float(np.median(smooth)), 1e-6)
    detail = prof / np.maximum(smooth, floor) - 1.0
    carrier = np.exp(-2j * np.pi * radii / period_mm)[None, :]
    width = max(1.0, 4 * period_mm / step / 2.355)          # a Gaussian four periods wide (FWHM)
    texture = np.hypot(ndimage.gaussian_filter1d((detail * carrier).real, width, axis=1),
                       ndimage.gaussian_filter1d((detail * carrier).imag, width, axis=1))
    return texture.astype(np.float32), radii, theta, seen


def _lags(texture, reference, max_lag):
    """Shift (samples) of each row of ``texture`` against ``reference`` that matches
    them best (circular cross-correlation, zero-padded; sub-sample by a parabola), and
    the correlation at that shift."""
    n = texture.shape[1]
    size = sp_fft.next_fast_len(2 * n)
    a = texture - texture.mean(axis=1, keepdims=True)
    b = reference - reference.mean()
    corr = sp_fft.irfft(sp_fft.rfft(a, size, axis=1) * np.conj(sp_fft.rfft(b, size)), size, axis=1)
    max_lag = min(max_lag, n - 1)       # a ring narrower than the reach (a hint near the hole)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    values = corr[:, lags]
    best = np.argmax(values, axis=1)
    rows = np.arange(values.shape[0])
    lag = lags[best].astype(np.float64)
    inner = (best != max_lag) & (best != max_lag + 1)      # not at either end of the search
    lo, mid, hi = values[rows, best - 1], values[rows, best], values[rows, (best + 1) % values.shape[1]]
    denom = lo - 2 * mid + hi
    lag += np.where(inner & (denom < 0), 0.5 * (lo - hi) / np.where(denom < 0, denom, -1.0), 0.0)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum()) + 1e-30
    return lag, mid / norm, inner


def _register_ring(image, px_mm, centre_px, r_inner, r_outer, period_mm, n_rounds=2):
    """The centre (row, col px) and X/Y scale mismatch that make the grooved ring round.

    The centre from the blocks' normals is good to a fraction of a millimetre where many
    blocks see grooves; a narrow ring (a short side: a few turns) gives only a few, far
    from the centre, whose normals are uncertain by a degree or more. The ring itself is
    a sharper mark: around the disc, the radius where groove texture begins and ends is
    ``a + b*theta + ex*cos(theta) + ey*sin(theta) + R*q*cos(2*theta)`` (the spiral's
    drift, the centre's error, the scanner's X/Y scale mismatch). Each sector's texture
    profile is matched against their mean, the shifts fitted with robust weights.
    Returns ``(centre_px, q)``, or None if the ring does not register (too little of it
    on the image, or shifts that fit no ring).
    """
    centre = np.array(centre_px, dtype=np.float64)
    q = 0.0
    lo = max(r_inner - RING_REACH_MM, 0.5 * MIN_GROOVE_RADIUS_MM)
    hi = r_outer + RING_REACH_MM
    radius = 0.5 * (r_inner + r_outer)
    for _ in range(n_rounds):
        px = (px_mm * (1 + q), px_mm * (1 - q))
        texture, radii, theta, seen = _ring_texture(image, centre, px, lo, hi, period_mm)
        if seen.sum() < 0.25 * theta.size:
            return None
        step = radii[1] - radii[0]
        max_lag = int(RING_REACH_MM / step)
        reference = np.median(texture[seen], axis=0)
        for _ in range(2):                      # the mean of the aligned profiles
            lag, corr, inner = _lags(texture, reference, max_lag)
            use = seen & inner & (corr > 0.3)
            if use.sum() < 0.25 * theta.size:
                return None
            aligned = [np.interp(radii + l * step, radii, t) for l, t in zip(lag[use], texture[use])]
            reference = np.median(aligned, axis=0)
        shift = lag * step
        design = np.stack([np.ones_like(theta), theta, np.cos(theta), np.sin(theta),
                           radius * np.cos(2 * theta)], axis=1)[use]
        weights = corr[use] ** 2
        target = shift[use]
        for _ in range(6):                      # Cauchy weights: sectors with a scratch, a label edge
            coef, *_ = np.linalg.lstsq(design * np.sqrt(weights)[:, None], target * np.sqrt(weights), rcond=None)
            resid = target - design @ coef
            scale = max(1.4826 * float(np.median(np.abs(resid))), 0.5 * step)
            weights = corr[use] ** 2 / (1.0 + (resid / (3 * scale)) ** 2)
        if scale > 0.25 * RING_REACH_MM or np.hypot(coef[2], coef[3]) > RING_REACH_MM:
            return None
        centre = centre + np.array([coef[3] / px[0], coef[2] / px[1]])
        q = q + coef[4]
    return (float(centre[0]), float(centre[1])), float(q)


def coarse_geometry(image, px_mm, *, centre_px=None, radii_mm=None, pitch_mm=None, seed=0) -> CoarseGeometry:
    """Centre and grooved ring of a scan, from the grooves alone.

    Parameters
    ----------
    image : (H, W) array_like
    px_mm : float
        Nominal pixel size (mm).
    centre_px : (row, col), optional
        The user's spiral centre: the consensus is skipped, the blocks only refine it.
    radii_mm : (r_inner, r_outer), optional
        The user's grooved ring (mm): taken as it is.
    pitch_mm : float, optional
        The user's pitch (see :func:`groove_blocks`).
    seed : int
        Seed of the consensus' random draws (the result is the same for any seed
        unless the scan is ambiguous).

    Raises
    ------
    NoGrooveError
        With ``.evidence`` (a :class:`CoarseGeometry`, as far as it got), when no
        groove texture, no common centre or no grooved ring is found.
    """
    blocks = groove_blocks(image, px_mm, pitch_mm=pitch_mm)
    given_centre = centre_px is not None
    found = CoarseGeometry(None, np.nan, np.nan, blocks, None, given_centre, radii_mm is not None)

    def fail(message, evidence):
        error = NoGrooveError(message)
        error.evidence = evidence
        return error

    if blocks.count < 20 and not given_centre:
        raise fail(f"no groove texture found in the scan ({blocks.count} blocks of "
                   f"{blocks.grid_shape[0] * blocks.grid_shape[1]} are periodic at a groove pitch); "
                   "is this a record scan, and is the dpi right? (--dpi)", found)
    if given_centre:
        centre = (float(centre_px[0]), float(centre_px[1]))
        inliers = _facing(blocks, centre)
    else:
        centre, inliers = _consensus_centre(blocks, image.shape, np.random.default_rng(seed))
        if centre is None:
            raise fail("no ring of grooves found around a common centre: the groove-like texture "
                       "in the scan does not face one point. If this is a record scan, give the "
                       "spiral centre (--centre ROW,COL) or check --dpi", found)
    found = CoarseGeometry(centre, np.nan, np.nan, blocks, inliers, given_centre, radii_mm is not None)
    seen_ring = _grooved_ring(blocks, centre, inliers)
    if radii_mm is not None:
        wrong = _misplaced_ring_hint(blocks, centre, inliers, radii_mm, seen_ring)
        if wrong:                   # the picture shows both rings: the one seen, the one given
            raise fail(wrong, replace(found, r_inner_mm=seen_ring[0], r_outer_mm=seen_ring[1],
                                      refused_radii_mm=tuple(map(float, radii_mm))))
    ring = tuple(radii_mm) if radii_mm is not None else seen_ring
    if ring is None and given_centre:
        elsewhere, _ = _consensus_centre(blocks, image.shape, np.random.default_rng(seed))
        facing = ("" if elsewhere is None else
                  f"; the grooves seen face row {elsewhere[0]:.0f}, col {elsewhere[1]:.0f}")
        raise fail(f"no ring of grooves found around the given centre (row {centre[0]:.0f}, col "
                   f"{centre[1]:.0f}){facing}. Check --centre: the spiral centre's row from the top "
                   "and column from the left, in pixels of this scan", found)
    if ring is None:
        raise fail("no ring of grooves found around the spiral centre; give the grooved radii "
                   "(--radii R1-R2, mm) if the grooves are faint", found)
    q = 0.0
    registered = _register_ring(image, px_mm, centre, *ring, _commonest_period(blocks, inliers))
    if registered is not None:
        centre, q = registered
        inliers = _facing(blocks, centre)
        if radii_mm is None:
            ring = _grooved_ring(blocks, centre, inliers) or ring
    return CoarseGeometry(centre, float(ring[0]), float(ring[1]), blocks, inliers, given_centre,
                          radii_mm is not None, q)
