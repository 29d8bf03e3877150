"""Sub-pixel sampling of (possibly huge, memory-mapped) images.

OpenCV's ``remap`` is fast but refuses sources of 32 767 pixels or more on a side, and
turning a whole memory-mapped gigapixel scan into float32 would cost 4 bytes a pixel.
:func:`sample` therefore reads only the bounding box of the points asked for, and splits
the point set in two (along its longer extent) until each box is small enough. Callers
that ask for compact point sets (a wedge of the disc, a stretch of groove) pay for one
box; callers that ask for scattered points still get a correct answer.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
_REMAP_LIMIT = 32_000       # OpenCV keeps source coordinates in 16-bit integers
_MARGIN = 3                 # pixels around a box, enough for the cubic kernel


def cpu_workers(workers=None):
    """Threads to use: ``workers`` if given, else the CPUs this process may run on."""
    if workers is not None:
        return max(1, int(workers))
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(usable))


def sample(image, rows, cols, *, interpolation="cubic", max_box_px=1 << 24, fill=np.nan):
    """Interpolate ``image`` at fractional pixel positions.

    Parameters
    ----------
    image : (H, W) array_like
        Any 2-D array supporting slicing (ndarray, ``np.memmap``); never loaded whole.
    rows, cols : array_like of float, same shape
        Positions in pixels; integer values are pixel centres.
    interpolation : {"cubic", "linear"}
        OpenCV kernel (cubic is Keys' convolution, no prefilter).
    max_box_px : int
        Largest source box read at once (pixels); bounds peak memory to
        ``4 * max_box_px`` bytes plus the output.
    fill : float
        Value for points outside the image.

    Returns
    -------
    values : ndarray of float32, shape of ``rows``
    """
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if rows.shape != cols.shape:
        raise ValueError(f"rows {rows.shape} and cols {cols.shape} must have one shape")
    out = np.full(rows.size, fill, dtype=np.float32)
    flat_r, flat_c = rows.ravel(), cols.ravel()
    inside = (flat_r > -0.5) & (flat_r < image.shape[0] - 0.5) & \
             (flat_c > -0.5) & (flat_c < image.shape[1] - 0.5)
    index = np.flatnonzero(inside)
    if index.size:
        _sample_boxes(image, flat_r, flat_c, index, out, _INTERPOLATION[interpolation], max_box_px)
    return out.reshape(rows.shape)


def sample_compact(image, rows, cols, *, interpolation="cubic", max_box_px=1 << 24):
    """Like :func:`sample` for a compact point set, faster: one box, native dtype.

    ``rows`` and ``cols`` are float32 arrays of one shape (at most 2-D). The box is
    remapped in its stored type where that loses nothing that matters (float32, and
    16-bit boxes whose levels are high and clear of both ends); otherwise it is
    widened to float32 first. Points outside the image are NaN. Falls back to
    :func:`sample` for sprawling sets.
    """
    rows = np.asarray(rows, dtype=np.float32)
    cols = np.asarray(cols, dtype=np.float32)
    if rows.size == 0:
        return np.empty(rows.shape, np.float32)
    r_lo, r_hi, c_lo, c_hi = (float(f(a)) for a in (rows, cols) for f in (np.min, np.max))
    r0 = max(int(np.floor(r_lo)) - _MARGIN, 0)
    r1 = min(int(np.ceil(r_hi)) + _MARGIN + 1, image.shape[0])
    c0 = max(int(np.floor(c_lo)) - _MARGIN, 0)
    c1 = min(int(np.ceil(c_hi)) + _MARGIN + 1, image.shape[1])
    h, w = r1 - r0, c1 - c0
    if h <= 0 or w <= 0 or h * w > max_box_px or max(h, w) > _REMAP_LIMIT:
        return sample(image, rows, cols, interpolation=interpolation, max_box_px=max_box_px)
    box = np.ascontiguousarray(image[r0:r1, c0:c1])
    if not _remap_in_place(box):
        box = box.astype(np.float32)
    flat_r = rows.reshape(-1, rows.shape[-1]) if rows.ndim > 1 else rows[None, :]
    flat_c = cols.reshape(-1, cols.shape[-1]) if cols.ndim > 1 else cols[None, :]
    out = np.empty(flat_r.shape, np.float32)
    step = max(1, min(16384, (1 << 18) // flat_r.shape[1]))   # cache-sized chunks, within remap's limit
    flag = _INTERPOLATION[interpolation]
    for i in range(0, flat_r.shape[0], step):
        out[i:i + step] = cv2.remap(box, flat_c[i:i + step] - np.float32(c0),
                                    flat_r[i:i + step] - np.float32(r0), flag,
                                    borderMode=cv2.BORDER_REPLICATE)
    out = out.reshape(rows.shape)
    if r_lo < -0.5 or c_lo < -0.5 or r_hi > image.shape[0] - 0.5 or c_hi > image.shape[1] - 0.5:
        outside = (rows < -0.5) | (rows > image.shape[0] - 0.5) | (cols < -0.5) | (cols > image.shape[1] - 0.5)
        out[outside] = np.nan
    return out


def sector_profiles(image, centre_px, px_mm, r_lo, r_hi, n_sectors, lines_per_sector, step_mm):
    """Radial profiles averaged over narrow sectors around a centre.

    Parameters
    ----------
    image : (H, W) array_like
    centre_px : (row, col) of the centre, pixels.
    px_mm : (row, col) pixel size, mm.
    r_lo, r_hi, step_mm : radii ``arange(r_lo, r_hi, step_mm)`` (mm).
    n_sectors : sectors of ``2 pi / n_sectors``, the first centred on half a sector
        past theta = 0 (``docs/conventions.md``: theta turns from the columns' axis
        towards the rows').
    lines_per_sector : radial lines averaged in each sector, spread across it.

    Returns
    -------
    profiles : (n_sectors, n_radii) float32, NaN where no line of the sector is on the image.
    radii : (n_radii,) float64, mm.
    sector_theta : (n_sectors,) float64, rad.
    """
    radii = np.arange(r_lo, r_hi, step_mm)
    sector_theta = (np.arange(n_sectors) + 0.5) * 2 * np.pi / n_sectors
    offsets = (np.arange(lines_per_sector) + 0.5) / lines_per_sector - 0.5
    theta = (sector_theta[:, None] + offsets[None, :] * 2 * np.pi / n_sectors).ravel()
    rows = (centre_px[0] + radii[None, :] * np.sin(theta)[:, None] / px_mm[0]).astype(np.float32)
    cols = (centre_px[1] + radii[None, :] * np.cos(theta)[:, None] / px_mm[1]).astype(np.float32)
    # a ring's bounding box is mostly empty: read it as a few dozen compact wedges
    values = np.empty(rows.shape, np.float32)
    per_wedge = max(1, rows.shape[0] // 48)
    for start in range(0, rows.shape[0], per_wedge):
        part = slice(start, start + per_wedge)
        values[part] = sample_compact(image, rows[part], cols[part], interpolation="linear")
    profiles = seen_mean(values.reshape(n_sectors, lines_per_sector, radii.size), axis=1)
    return profiles.astype(np.float32), radii, sector_theta


def seen_mean(values, axis, keepdims=False):
    """Mean over the samples on the image (NaN where none is): lines off a cut disc's
    edge are all NaN, and need no "mean of empty slice" warning."""
    seen = np.isfinite(values)
    count = seen.sum(axis=axis, keepdims=keepdims)
    total = np.where(seen, values, 0).sum(axis=axis, keepdims=keepdims)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _remap_in_place(box):
    """Whether OpenCV may interpolate ``box`` in its stored type without harm.

    Float32 always. 16-bit when rounding the result to a whole level is tiny against
    the box's contrast and the cubic kernel's overshoot (up to ~8 % of an edge's
    step) cannot be clipped at 0 or 65535: nearly black film or a saturated scan is
    widened to float32 first.
    """
    if box.dtype == np.float32:
        return True
    if box.dtype != np.uint16 or box.size == 0:
        return False
    low, high, _, _ = cv2.minMaxLoc(box.reshape(box.shape[0], -1))
    overshoot = 0.1 * (high - low)
    return high - low >= 256 and low - overshoot >= 0 and high + overshoot <= 65535


def _sample_boxes(image, rows, cols, index, out, flag, max_box_px):
    r, c = rows[index], cols[index]
    r0 = max(int(np.floor(r.min())) - _MARGIN, 0)
    r1 = min(int(np.ceil(r.max())) + _MARGIN + 1, image.shape[0])
    c0 = max(int(np.floor(c.min())) - _MARGIN, 0)
    c1 = min(int(np.ceil(c.max())) + _MARGIN + 1, image.shape[1])
    h, w = r1 - r0, c1 - c0
    if (h * w > max_box_px or max(h, w) > _REMAP_LIMIT) and index.size > 1:
        # split the points, not the image: halves of a compact set stay compact
        along = r if h >= w else c
        mid = np.median(along)
        lower = along <= mid
        if lower.all() or not lower.any():          # all points on one line
            lower = np.arange(index.size) < index.size // 2
        _sample_boxes(image, rows, cols, index[lower], out, flag, max_box_px)
        _sample_boxes(image, rows, cols, index[~lower], out, flag, max_box_px)
        return
    box = np.ascontiguousarray(image[r0:r1, c0:c1], dtype=np.float32)
    out[index] = _remap(box, r - r0, c - c0, flag)


def _remap(box, r, c, flag, chunk=1 << 20):
    """cv2.remap of scattered points, shaped into rows of 1024 to stay in its limits."""
    values = np.empty(r.size, dtype=np.float32)
    for start in range(0, r.size, chunk):
        rr = r[start:start + chunk].astype(np.float32)
        cc = c[start:start + chunk].astype(np.float32)
        n = rr.size
        width = min(n, 1024)
        height = -(-n // width)
        pad = height * width - n
        map_r = np.pad(rr, (0, pad)).reshape(height, width)
        map_c = np.pad(cc, (0, pad)).reshape(height, width)
        res = cv2.remap(box, map_c, map_r, flag, borderMode=cv2.BORDER_REPLICATE)
        values[start:start + n] = res.ravel()[:n]
    return values


def block_reduce_mean(image, factor, *, rows_per_strip=None, transform=None):
    """Mean of ``factor`` x ``factor`` blocks, read strip by strip (memmap friendly).

    ``transform`` (optional) is applied to each strip in float32 before averaging,
    e.g. a local-contrast measure. Trailing rows/cols that do not fill a block are dropped.
    """
    factor = int(factor)
    h, w = image.shape[0] // factor, image.shape[1] // factor
    out = np.empty((h, w), dtype=np.float32)
    strip = max(1, (rows_per_strip or (1 << 22) // max(image.shape[1], 1)) // factor)
    for i in range(0, h, strip):
        j = min(h, i + strip)
        block = np.asarray(image[i * factor:j * factor, :w * factor], dtype=np.float32)
        if transform is not None:
            block = transform(block)
        out[i:j] = block.reshape(j - i, factor, w, factor).mean(axis=(1, 3))
    return out
