"""Diagnostic figures: what the decoder saw, where it was unsure, what came out.

Plotting is an optional extra (``pip install groovescan[plot]``): matplotlib is imported
only when a function here is called, and ``import groovescan`` never needs it.

Every ``plot_*`` function draws into ``ax`` (a new figure's axes when ``ax=None``) and
returns the Axes; :func:`inspect_figure` builds a whole report page (a
:class:`matplotlib.figure.Figure` made without pyplot, safe in scripts and workers) and
:func:`save_figure` writes it atomically.

Coordinates follow ``docs/conventions.md``: images are drawn in scan pixels (row down,
col right, integer = pixel centre), angles in degrees of *playing angle* counted from
the groove's outer start, turn 0 the outermost.

Memory: scans are never loaded whole as float. :func:`plot_scan` block-averages the
image strip by strip (:func:`groovescan.sampling.block_reduce_mean`, ~16 MB of float32
per strip) to at most ``max_px`` pixels a side; :func:`plot_unwrapped` samples only the
points it draws. A memory-mapped gigapixel TIFF is fine.
"""
from __future__ import annotations

import os
import textwrap

import numpy as np

from .errors import MissingDpiError, OptionalDependencyError, OutputError, ParameterError
from .io import atomic_output

__all__ = [
    "require_matplotlib", "plot_scan", "plot_geometry", "plot_confidence", "plot_unwrapped",
    "plot_walls", "plot_spectrum", "plot_spectrogram", "plot_curves", "inspect_figure",
    "geometry_figure", "save_figure",
]

INSTALL_HINT = "pip install groovescan[plot]"
FIGURE_FORMATS = (".png", ".pdf", ".svg")

# colours chosen to stand out on a grey scan and on viridis
_TRACK = "#00c8ff"
_LOST = "#ff2a2a"
_CENTRE = "#ffe600"
_ANNULUS = "#ff9900"
_CLICK = "#ff00ff"
_OFF_CENTRE = "#8f8f8f"


def require_matplotlib():
    """Import and return matplotlib, or raise a one-line error naming the extra."""
    try:
        import matplotlib
    except ImportError as err:
        raise OptionalDependencyError(
            f"plotting needs matplotlib, which is not installed; {INSTALL_HINT}") from err
    return matplotlib


def _new_axes(ax, figsize):
    """``ax`` itself, or the axes of a new pyplot figure (shown inline in Jupyter)."""
    if ax is not None:
        return ax
    require_matplotlib()
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


# ----------------------------------------------------------------------------- inputs

def _image_of(scan, result=None):
    """The 2-D image of a path, a Scan or an array (never converted to float)."""
    if isinstance(scan, (str, os.PathLike)):
        from .io import load_scan

        try:
            scan = load_scan(scan)
        except MissingDpiError:
            # pixels are all a figure needs; the resolution comes from the decode
            scan = load_scan(scan, dpi=result.report.dpi if result is not None else 300)
    image = getattr(scan, "image", scan)
    if not hasattr(image, "shape") or len(image.shape) != 2:
        raise ParameterError("scan must be a file path, a groovescan.Scan or a 2-D image array")
    return image


def _track_of(result):
    """A DecodeResult's track, or a GrooveTrack passed directly."""
    track = getattr(result, "track", result)
    if not hasattr(track, "radius_mm") or not hasattr(track, "confidence"):
        raise ParameterError("expected a DecodeResult (from groovescan.decode) or a GrooveTrack")
    return track


def _require_result(result, what):
    if not hasattr(result, "walls") or not hasattr(result, "report"):
        raise ParameterError(f"{what} needs a DecodeResult from groovescan.decode(...)")


def _regions(mask):
    """Runs of True as (start, stop) pairs."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.empty((0, 2), dtype=np.int64)
    edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


# ----------------------------------------------------------------------------- the scan

def plot_scan(scan_or_image, result=None, *, ax=None, max_px=1200, zoom_mm=None, zoom_at=None,
              turn_step=None, cmap="gray"):
    """The scan, downsampled, with the followed groove, the centre and the annulus.

    Parameters
    ----------
    scan_or_image : str, path-like, Scan or (rows, cols) array
        The scan that was decoded (a memmap is never loaded whole).
    result : DecodeResult, optional
        Its decode; without it only the scan is drawn.
    ax : matplotlib Axes, optional
    max_px : int
        Longest side of the drawn image; the scan is block-averaged to fit.
    zoom_mm : float, optional
        Show only a square of half-width ``zoom_mm`` (mm) around ``zoom_at``, e.g. 4 mm
        to see the hole and the spiral centre, or 1 mm to see single grooves.
    zoom_at : (row, col), optional
        Centre of the zoom, pixels (default: the spiral centre, else the image centre).
    turn_step : int, optional
        Draw every ``turn_step``-th turn of the track (default: as many as stay
        distinguishable, about 4 drawn pixels apart).
    cmap : str

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Drawn in scan pixels. Lines: the track (cyan, every ``turn_step``-th turn), red dots
    where the groove was lost and the track coasted (all turns), the spiral centre
    (yellow +) and the grooved annulus (orange dashes).
    """
    require_matplotlib()
    from .sampling import block_reduce_mean

    image = _image_of(scan_or_image, result)
    geometry = result.geometry if result is not None else None
    h, w = image.shape
    r0, r1, c0, c1 = 0, h, 0, w
    if zoom_mm is not None:
        if geometry is not None:
            px_mm = geometry.px_mm
        elif hasattr(scan_or_image, "px_mm"):
            px_mm = scan_or_image.px_mm
        else:
            raise ParameterError("zoom_mm needs the pixel size: pass result= or a groovescan.Scan")
        if zoom_at is None:
            zoom_at = geometry.centre_px if geometry is not None else ((h - 1) / 2, (w - 1) / 2)
        half = (float(zoom_mm) / px_mm[0], float(zoom_mm) / px_mm[1])
        r0 = int(np.clip(np.floor(zoom_at[0] - half[0]), 0, h - 1))
        r1 = int(np.clip(np.ceil(zoom_at[0] + half[0]) + 1, r0 + 1, h))
        c0 = int(np.clip(np.floor(zoom_at[1] - half[1]), 0, w - 1))
        c1 = int(np.clip(np.ceil(zoom_at[1] + half[1]) + 1, c0 + 1, w))
    factor = max(1, int(np.ceil(max(r1 - r0, c1 - c0) / int(max_px))))
    crop = image[r0:r1, c0:c1]
    small = block_reduce_mean(crop, factor) if factor > 1 else np.asarray(crop, dtype=np.float32)
    sh, sw = small.shape
    extent = (c0 - 0.5, c0 + sw * factor - 0.5, r0 + sh * factor - 0.5, r0 - 0.5)
    ax = _new_axes(ax, (8, 8))
    finite = small[np.isfinite(small)]
    vmin, vmax = np.percentile(finite, [0.5, 99.5]) if finite.size else (0, 1)
    ax.imshow(small, cmap=cmap, extent=extent, vmin=vmin, vmax=vmax,
              interpolation="nearest" if factor == 1 else "antialiased")
    title = f"scan {w} x {h} px"
    if factor > 1:
        title += f" (shown 1:{factor})"
    if result is not None:
        _overlay_track(ax, result, factor=factor, window=(r0, r1, c0, c1), turn_step=turn_step)
        title += f", {result.report.dpi:g} dpi"
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("col (px)")
    ax.set_ylabel("row (px)")
    ax.set_title(title)
    return ax


def _overlay_track(ax, result, *, factor, window, turn_step):
    geometry, track = result.geometry, result.track
    r0, r1, c0, c1 = window
    n_turns, n_per = track.radius_mm.shape
    px = float(np.sqrt(geometry.px_mm[0] * geometry.px_mm[1]))
    if turn_step is None:
        drawn_pitch = geometry.pitch_mm / px / factor          # display pixels between turns
        turn_step = max(1, int(np.ceil(4.0 / max(drawn_pitch, 1e-9))))
    turns = list(range(0, n_turns, int(turn_step)))
    if turns and turns[-1] != n_turns - 1:
        turns.append(n_turns - 1)
    stride = max(1, n_per // 2048)
    cols_idx = np.arange(0, n_per, stride)

    def inside(rows, cols):
        return (rows >= r0 - 0.5) & (rows <= r1 - 0.5) & (cols >= c0 - 0.5) & (cols <= c1 - 0.5)

    xs, ys = [], []
    for k in turns:
        phi = 2 * np.pi * (k + cols_idx / n_per)
        rows, cols = geometry.to_px(track.radius_mm[k, cols_idx], track.theta_at(phi))
        keep = inside(rows, cols)
        xs += [np.where(keep, cols, np.nan), [np.nan]]
        ys += [np.where(keep, rows, np.nan), [np.nan]]
    if xs:
        label = "track" if turn_step == 1 else f"track (1 turn in {turn_step})"
        ax.plot(np.concatenate(xs), np.concatenate(ys), color=_TRACK, lw=0.6, alpha=0.85, label=label)
    lost = track.coasted & np.isfinite(track.radius_mm)
    k_lost, j_lost = np.nonzero(lost)
    if k_lost.size:
        pick = np.linspace(0, k_lost.size - 1, min(k_lost.size, 20000)).astype(int)
        k_lost, j_lost = k_lost[pick], j_lost[pick]
        rows, cols = geometry.to_px(track.radius_mm[k_lost, j_lost],
                                    track.theta_at(2 * np.pi * (k_lost + j_lost / n_per)))
        keep = inside(rows, cols)
        ax.plot(cols[keep], rows[keep], ".", color=_LOST, ms=1.5, label="groove lost (coasted)")
    theta = np.linspace(0, 2 * np.pi, 721)
    for i, radius in enumerate((geometry.r_inner_mm, geometry.r_outer_mm)):
        rows, cols = geometry.to_px(np.full(theta.size, radius), theta)
        ax.plot(cols, rows, "--", color=_ANNULUS, lw=0.8, label="grooved annulus" if i == 0 else None)
    cy, cx = geometry.centre_px
    ax.plot([cx], [cy], "+", color=_CENTRE, ms=14, mew=2, label="spiral centre")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)


# ----------------------------------------------------------------------------- geometry

def _coarse_of(source):
    """The coarse-stage evidence of a DecodeResult, a DiscGeometry, a NoGrooveError or
    a CoarseGeometry itself."""
    queue = [source]
    while queue:
        candidate = queue.pop(0)
        if hasattr(candidate, "blocks") and hasattr(candidate, "inliers"):
            return candidate
        queue += [getattr(candidate, name) for name in ("evidence", "geometry", "coarse")
                  if getattr(candidate, name, None) is not None]
    raise ParameterError("expected what the geometry saw: a DecodeResult, a DiscGeometry, the "
                         "NoGrooveError that find_geometry raised, or a groovescan.coarse.CoarseGeometry")


def plot_geometry(scan_or_image, evidence, *, ax=None, max_px=1200, cmap="gray"):
    """What the geometry saw: the blocks whose texture is grooves, the centre, the ring.

    Parameters
    ----------
    scan_or_image : str, path-like, Scan or (rows, cols) array
    evidence : DecodeResult, DiscGeometry, NoGrooveError or CoarseGeometry
        Where to find the coarse stage's blocks, consensus centre and ring; a failed
        :func:`groovescan.find_geometry` attaches them to its error.
    ax : matplotlib Axes, optional
    max_px : int
        Longest side of the drawn image (see :func:`plot_scan`).
    cmap : str

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Dots mark the 2 mm blocks periodic at a groove pitch, coloured by how strongly
    (cyan: their grooves face the centre; grey: they do not, e.g. Newton rings, a
    second disc, a ruler). The yellow + is the centre, the orange circles the grooved
    ring, as far as the geometry got; red dotted circles a ``radii_mm`` hint that was
    refused because no grooves lie there.
    """
    coarse = _coarse_of(evidence)
    ax = plot_scan(scan_or_image, ax=ax, max_px=max_px, cmap=cmap)
    blocks = coarse.blocks
    if blocks.count:
        facing = coarse.inliers if coarse.inliers is not None else np.zeros(blocks.count, bool)
        size = 4 + 10 * np.clip(np.log10(blocks.significance) - 1.4, 0, 1)
        for mask, colour, label in ((~facing, _OFF_CENTRE, "groove-like blocks"),
                                    (facing, _TRACK, "grooves facing the centre")):
            if mask.any():
                ax.scatter(blocks.col_px[mask], blocks.row_px[mask], s=size[mask], c=colour,
                           alpha=0.6, linewidths=0, label=f"{label} ({int(mask.sum())})")
    if coarse.centre_px is not None:
        cy, cx = coarse.centre_px
        ax.plot([cx], [cy], "+", color=_CENTRE, ms=14, mew=2,
                label="spiral centre" + (" (given)" if coarse.centre_given else ""))
        rings = [((coarse.r_inner_mm, coarse.r_outer_mm), "--", _ANNULUS, "grooved ring")]
        if coarse.refused_radii_mm is not None:
            rings.append((coarse.refused_radii_mm, ":", _LOST, "given --radii (refused)"))
        theta = np.linspace(0, 2 * np.pi, 721)
        limits = ax.get_xlim(), ax.get_ylim()      # a ring may reach past the scan: keep its frame
        for radii, style, colour, label in rings:
            for i, radius in enumerate(radii):
                if np.isfinite(radius):
                    r_px = radius / blocks.px_mm
                    ax.plot(cx + r_px * np.cos(theta), cy + r_px * np.sin(theta), style, color=colour,
                            lw=0.8 if style == "--" else 1.2, label=label if i == 0 else None)
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    ax.set_title(ax.get_title() + f"; {blocks.count} of {blocks.grid_shape[0] * blocks.grid_shape[1]} "
                 "blocks groove-like")
    return ax


def geometry_figure(scan, evidence, *, message=None, title=None):
    """A report page for a scan whose geometry failed (or to check one that did not).

    Parameters
    ----------
    scan : str, path-like, Scan or (rows, cols) array
    evidence : NoGrooveError, DecodeResult, DiscGeometry or CoarseGeometry
        See :func:`plot_geometry`.
    message : str, optional
        Text printed under the figures (default: the error's message, if any).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from . import __version__

    coarse = _coarse_of(evidence)
    fig = Figure(figsize=(17, 10), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1.2, 1.0), height_ratios=(1.0, 0.45))
    plot_geometry(scan, coarse, ax=fig.add_subplot(grid[0, 0]))
    blocks = coarse.blocks
    ax = fig.add_subplot(grid[0, 1])
    rows, cols = blocks.grid_px()
    half = blocks.grid_step_px / 2
    shown = ax.imshow(np.log10(np.maximum(blocks.significance_map, 1.0)), cmap="magma",
                      extent=(cols[0] - half, cols[-1] + half, rows[-1] + half, rows[0] - half))
    fig.colorbar(shown, ax=ax, label="log10 peak significance (0: no groove-like peak)")
    ax.set_title(f"groove texture in {blocks.block_px} px blocks")
    ax.set_xlabel("col (px)")
    ax.set_ylabel("row (px)")
    ax = fig.add_subplot(grid[1, 1])
    if blocks.count:
        facing = coarse.inliers if coarse.inliers is not None else np.zeros(blocks.count, bool)
        bins = np.geomspace(0.03, 0.7, 60)
        ax.hist([blocks.period_mm[~facing], blocks.period_mm[facing]], bins=bins, stacked=True,
                color=[_OFF_CENTRE, _TRACK], label=["not facing the centre", "facing the centre"])
        ax.set_xscale("log")
        ticks = (0.03, 0.05, 0.1, 0.2, 0.3, 0.5)     # plain numbers; the log minor labels overlap
        ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize="small")
    ax.set_xlabel("period of the block's strongest peak (mm): the pitch or a harmonic")
    ax.set_ylabel("blocks")
    text_ax = fig.add_subplot(grid[1, 0])
    text_ax.axis("off")
    if message is None:
        message = str(evidence) if isinstance(evidence, Exception) else ""
    lines = [message, "",
             "If the grooves are there, tell the decoder where they are:",
             "  --centre ROW,COL   the spiral centre in pixels (the yellow + if it is right)",
             "  --radii R1-R2      inner and outer radius of the grooves in mm",
             "  --pitch MM         the groove pitch in mm (bone ~0.2, 78 ~0.28, LP ~0.1)"]
    wrapped = [textwrap.fill(line, 110, subsequent_indent="    ") if line else "" for line in lines]
    text_ax.text(0.0, 1.0, "\n".join(wrapped), family="monospace", fontsize=9, va="top", ha="left",
                 transform=text_ax.transAxes)
    if title is None:
        path = scan if isinstance(scan, (str, os.PathLike)) else getattr(scan, "path", None)
        title = os.path.basename(os.fspath(path)) if path else "scan"
    fig.suptitle(f"{title}: what the geometry saw - groovescan {__version__}", fontsize=14)
    return fig


# ----------------------------------------------------------------------------- confidence

def plot_confidence(result, *, ax=None, cmap="viridis", colorbar=True):
    """Tracker confidence per turn and angle, with lost groove, clicks and gaps marked.

    Parameters
    ----------
    result : DecodeResult or GrooveTrack
    ax : matplotlib Axes, optional
    cmap : str
    colorbar : bool

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    One row per turn (turn 0, the outermost, at the top), one column per track point;
    the x axis is the playing angle within the turn in degrees from the groove's start.
    Red cells: the groove was not seen and the track coasted. Magenta ``x``: repaired
    clicks; red bars: muted gaps (both from a DecodeResult only). The right axis gives
    the time at the start of each turn.
    """
    require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    track = _track_of(result)
    n_turns, n_per = track.radius_mm.shape
    valid = np.isfinite(track.radius_mm)
    conf = np.where(valid, track.confidence, np.nan).astype(np.float32)
    ax = _new_axes(ax, (10, 5))
    extent = (0.0, 360.0, float(n_turns), 0.0)
    image = ax.imshow(conf, cmap=cmap, vmin=0, vmax=1, aspect="auto", extent=extent,
                      interpolation="nearest")
    handles = []
    lost = np.ma.masked_where(~(track.coasted & valid), np.ones_like(conf))
    if lost.count():
        from matplotlib.colors import ListedColormap

        ax.imshow(lost, cmap=ListedColormap([_LOST]), vmin=0, vmax=1, aspect="auto",
                  extent=extent, interpolation="nearest")
        handles.append(Patch(color=_LOST, label="groove lost (coasted)"))
    title = f"tracker confidence: {n_turns} turns"
    if hasattr(result, "click_mask") and hasattr(result, "walls"):
        spt = result.walls.samples_per_turn
        clicks = _regions(result.click_mask)
        if clicks.size:
            mid = (clicks[:, 0] + clicks[:, 1] - 1) / 2          # centre of samples a..b-1
            ax.scatter((mid % spt) / spt * 360.0, mid // spt + 0.5, marker="x", s=14,
                       linewidths=0.8, color=_CLICK, zorder=3)
            handles.append(Line2D([], [], marker="x", ls="", color=_CLICK, label="click repaired"))
        gaps = _regions(result.gap_mask)
        for a, b in gaps:
            for k in range(int(a // spt), int((b - 1) // spt) + 1):   # a gap may cross turns
                lo, hi = max(a, k * spt), min(b, (k + 1) * spt)
                ax.plot([(lo - k * spt) / spt * 360, (hi - k * spt) / spt * 360], [k + 0.5] * 2,
                        color=_LOST, lw=3, solid_capstyle="butt", zorder=3)
        if gaps.size:
            handles.append(Line2D([], [], color=_LOST, lw=3, label="gap muted"))
        report = result.report
        title = (f"tracker confidence: {report.followed_fraction * 100:.1f} % of the groove seen, "
                 f"{report.n_clicks} clicks, {len(report.gaps)} gaps")
        rpm = report.rpm
        ax2 = ax.secondary_yaxis("right", functions=(lambda k: k * 60.0 / rpm,
                                                     lambda t: t * rpm / 60.0))
        ax2.set_ylabel("time (s)")
    ax.set_xlim(0, 360)
    ax.set_ylim(n_turns, 0)
    ax.set_xticks(np.arange(0, 361, 45))
    ax.set_xlabel("playing angle within the turn (degrees from the groove start)")
    ax.set_ylabel("turn (0 = outermost)")
    ax.set_title(title)
    if handles:     # below the axes: inside, it would hide the first or last turns
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=len(handles),
                  fontsize="small", frameon=False)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="confidence (0..1)", pad=0.12 if hasattr(result, "report") else 0.03)
    return ax


# ----------------------------------------------------------------------------- unwrapped band

def plot_unwrapped(scan, result, *, turn=None, n_turns=3, angle_deg=(0.0, 360.0), ax=None,
                   n_angles=2000, cmap="gray"):
    """The groove band unwrapped (angle x radius) around a few turns, the track on it.

    Parameters
    ----------
    scan : str, path-like, Scan or (rows, cols) array
        The decoded scan.
    result : DecodeResult
    turn : int, optional
        First turn shown (default: the middle turn).
    n_turns : int
        Turns shown, from ``turn`` inwards.
    angle_deg : (start, stop)
        Playing angle within the turn (degrees from the groove start); narrow it
        (e.g. ``(90, 91)``) to see single wiggles.
    ax : matplotlib Axes, optional
    n_angles : int
        Columns sampled across ``angle_deg``.
    cmap : str

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Rows are sampled every half pixel in radius (linear interpolation), so each turn
    appears as a band drifting one pitch inwards per turn; cyan lines are the tracked
    groove centres of the turns shown and their neighbours, red where they coasted.
    """
    require_matplotlib()
    from .sampling import sample

    _require_result(result, "plot_unwrapped")
    image = _image_of(scan, result)
    geometry, track = result.geometry, result.track
    total, n_per = track.radius_mm.shape
    turn = total // 2 if turn is None else int(turn)
    if not 0 <= turn < total:
        raise ParameterError(f"turn={turn} is outside the track's turns 0..{total - 1}")
    last = min(total - 1, turn + max(1, int(n_turns)) - 1)
    a0, a1 = (float(angle_deg[0]), float(angle_deg[1]))
    if not 0 <= a0 < a1 <= 360:
        raise ParameterError(f"angle_deg={angle_deg!r} must be (start, stop) with 0 <= start < stop <= 360")
    j = np.clip(np.round(np.linspace(a0, a1, int(n_angles)) / 360.0 * n_per).astype(int), 0, n_per - 1)
    outer = track.radius_mm[turn, j]
    inner = track.radius_mm[last, j]
    if not (np.isfinite(outer).any() and np.isfinite(inner).any()):
        raise ParameterError(f"turns {turn}..{last} hold no tracked groove in {a0:g}..{a1:g} degrees")
    pitch = geometry.pitch_mm
    r_hi, r_lo = np.nanmax(outer) + pitch, np.nanmin(inner) - pitch
    step = 0.5 * min(geometry.px_mm)
    radii = np.arange(r_lo, r_hi, step)
    angles = np.linspace(a0, a1, int(n_angles))
    phi = 2 * np.pi * turn + np.deg2rad(angles)
    rows, cols = geometry.to_px(radii[:, None], track.theta_at(phi)[None, :])
    band = sample(image, rows, cols, interpolation="linear")
    ax = _new_axes(ax, (12, 4))
    finite = band[np.isfinite(band)]
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    ax.imshow(band, cmap=cmap, origin="lower", aspect="auto", vmin=vmin, vmax=vmax,
              extent=(a0, a1, radii[0] - step / 2, radii[-1] + step / 2), interpolation="nearest")
    jj = np.clip(np.round(angles / 360.0 * n_per).astype(int), 0, n_per - 1)
    for k in range(max(0, turn - 1), min(total, last + 2)):
        r = track.radius_mm[k, jj]
        ax.plot(angles, r, color=_TRACK, lw=0.9, label="track" if k == turn else None)
        lost = track.coasted[k, jj] & np.isfinite(r)
        if lost.any():
            ax.plot(angles[lost], r[lost], ".", color=_LOST, ms=2,
                    label="groove lost (coasted)" if k == turn else None)
        inside = np.isfinite(r) & (r > r_lo) & (r < r_hi)
        if inside.any():
            i = np.flatnonzero(inside)[-1]
            ax.annotate(f"turn {k}", (angles[i], r[i]), xytext=(-4, 3), textcoords="offset points",
                        ha="right", fontsize="x-small", color=_TRACK)
    ax.set_ylim(r_lo, r_hi)
    ax.set_xlim(a0, a1)
    ax.set_xlabel("playing angle within the turn (degrees from the groove start)")
    ax.set_ylabel("radius (mm)")
    ax.set_title(f"unwrapped groove band, turns {turn}-{last}")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    return ax


# ----------------------------------------------------------------------------- signals

def plot_walls(result, *, start_s=None, duration_s=0.02, ax=None):
    """The two wall signals (and the repaired groove position) over a stretch of time.

    Parameters
    ----------
    result : DecodeResult
    start_s : float, optional
        Start of the stretch, seconds of playing time (default: the middle).
    duration_s : float
        Length of the stretch, seconds (20 ms shows single waves).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Offsets of the inner and outer wall from the tracked path, micrometres, positive
    outwards, at the wall sampling rate ``result.fs``. Both carry the same groove
    motion: where they part, dust or a scratch hit one of them. The dashed line is the
    position the audio was made from (the walls combined, clicks repaired); repaired
    clicks are shaded magenta, muted gaps grey.
    """
    require_matplotlib()
    _require_result(result, "plot_walls")
    walls, fs = result.walls, float(result.fs)
    n = walls.left_mm.size
    if n < 2:
        raise ParameterError("the decode holds fewer than two wall samples")
    if not duration_s > 0:
        raise ParameterError(f"duration_s={duration_s!r} must be positive")
    length = max(2, int(round(duration_s * fs)))
    i0 = (n - length) // 2 if start_s is None else int(round(float(start_s) * fs))
    i0 = int(np.clip(i0, 0, max(0, n - 2)))
    i1 = min(n, i0 + length)
    t = np.arange(i0, i1) / fs
    ax = _new_axes(ax, (12, 4))
    ax.plot(t, walls.left_mm[i0:i1] * 1e3, color="tab:blue", lw=1, label="inner wall")
    ax.plot(t, walls.right_mm[i0:i1] * 1e3, color="tab:orange", lw=1, label="outer wall")
    m = min(i1, result.displacement_m.size)
    if m > i0:
        used = (result.displacement_m[i0:m] * 1e3 - walls.track_mm[i0:m]) * 1e3
        ax.plot(t[:m - i0], used, "--", color="black", lw=0.8, label="decoded (repaired)")
    for mask, colour, label in ((result.click_mask, _CLICK, "click repaired"),
                                (result.gap_mask, "grey", "gap muted")):
        for k, (a, b) in enumerate(_regions(mask[i0:i1])):
            ax.axvspan((i0 + a - 0.5) / fs, (i0 + b - 0.5) / fs, color=colour, alpha=0.2,
                       lw=0, label=label if k == 0 else None)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("playing time (s)")
    ax.set_ylabel("offset from the track (µm, + outwards)")
    ax.set_title(f"groove walls, {t[0]:.3f}-{t[-1]:.3f} s at {fs:.0f} samples/s")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    return ax


def plot_spectrum(result, *, ax=None, band=None, nperseg=None, snr_band=(100.0, 5000.0)):
    """Spectrum of the decoded audio against the noise floor of the wall disagreement.

    Parameters
    ----------
    result : DecodeResult
    ax : matplotlib Axes, optional
    band : (lo, hi), optional
        The ``band=`` given to :func:`groovescan.decode`, if not its default.
    nperseg : int, optional
        Welch segment length (default ~10 Hz resolution).
    snr_band : (lo, hi)
        Band of the audio-to-noise figure written on the plot, Hz.

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Both are one-sided PSDs in the audio's units: (m/s)^2/Hz for ``eq="flat"``. The
    floor is :func:`groovescan.diagnostics.wall_noise_psd`: half the wall difference
    (mm -> m), differentiated to velocity, band-limited and equalised as the audio.
    Where the audio stays on the floor, the decode is noise; the grey areas are outside
    the band the decoder kept.
    """
    require_matplotlib()
    from .diagnostics import _decode_band, audio_psd, audio_to_noise_db, wall_noise_psd

    _require_result(result, "plot_spectrum")
    freqs_a, psd_a = audio_psd(result, nperseg=nperseg)
    noise = wall_noise_psd(result, nperseg=nperseg, band=band)
    tiny = 1e-30
    ax = _new_axes(ax, (9, 5))
    a = freqs_a > 0
    ax.semilogx(freqs_a[a], 10 * np.log10(psd_a[a] + tiny), color="tab:blue", lw=1, label="decoded audio")
    f = noise.freqs_hz > 0
    ax.semilogx(noise.freqs_hz[f], 10 * np.log10(noise.psd[f] + tiny), color=_LOST, lw=1,
                label="noise floor (wall disagreement)")
    lo, hi = _decode_band(result, band)
    top = result.sr / 2
    ax.axvspan(10, lo, color="grey", alpha=0.15, lw=0)
    ax.axvspan(hi, top, color="grey", alpha=0.15, lw=0, label="outside the decoded band")
    inband = (freqs_a >= lo) & (freqs_a <= hi)
    if inband.any():
        peak = 10 * np.log10(psd_a[inband].max() + tiny)
        floor_db = 10 * np.log10(np.maximum(noise.psd[(noise.freqs_hz >= lo) & (noise.freqs_hz <= hi)], tiny))
        bottom = min(np.percentile(floor_db, 5) if floor_db.size else peak - 80, peak - 20) - 10
        ax.set_ylim(bottom, peak + 10)
    ax.set_xlim(20, top)
    ratio = audio_to_noise_db(result, band=snr_band, noise=noise)
    ax.text(0.02, 0.04, f"audio / noise floor, {snr_band[0]:g}-{snr_band[1]:g} Hz: {ratio:.1f} dB",
            transform=ax.transAxes, fontsize="small",
            bbox=dict(facecolor="white", alpha=0.8, lw=0))
    unit = "(m/s)²/Hz" if result.report.eq == "flat" else f"unit²/Hz, curve '{result.report.eq}'"
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(f"PSD (dB re 1 {unit})")
    ax.set_title("spectrum of the decode and its noise floor")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_spectrogram(audio, *, sr=None, ax=None, nperseg=2048, fmax=None, dynamic_range_db=80.0,
                     colorbar=False, cmap="magma"):
    """Spectrogram of an audio signal (or of a DecodeResult's audio).

    Parameters
    ----------
    audio : (n,) array or DecodeResult
    sr : float
        Sample rate, Hz (taken from a DecodeResult if not given).
    ax : matplotlib Axes, optional
    nperseg : int
        FFT length (2048 at 44.1 kHz: 21.5 Hz bins, 46 ms).
    fmax : float, optional
        Top of the frequency axis, Hz (default ``sr / 2``).
    dynamic_range_db : float
        Colours span this many dB below the loudest bin.
    colorbar : bool
    cmap : str

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Hann window; the hop grows for long signals so at most ~2000 frames are drawn.
    Colour is PSD in dB re 1 unit^2/Hz ((m/s)^2/Hz for a flat decode).
    """
    require_matplotlib()
    from scipy import signal as sps

    if hasattr(audio, "audio") and hasattr(audio, "sr"):
        sr = audio.sr if sr is None else sr
        audio = audio.audio
    if sr is None or not float(sr) > 0:
        raise ParameterError("plot_spectrogram needs the sample rate: sr=... (Hz)")
    sr = float(sr)
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1 or x.size < 16:
        raise ParameterError(f"audio must be a 1-D signal of at least 16 samples, got shape {x.shape}")
    x = np.nan_to_num(x)
    nperseg = int(min(nperseg, 2 ** int(np.floor(np.log2(x.size)))))
    hop = min(nperseg, max(nperseg // 4, int(np.ceil(x.size / 2000))))
    freqs, times, power = sps.spectrogram(x, fs=sr, window="hann", nperseg=nperseg,
                                          noverlap=nperseg - hop, scaling="density", mode="psd")
    db = 10 * np.log10(power + 1e-30)
    vmax = float(db.max())
    ax = _new_axes(ax, (12, 4))
    half = hop / sr / 2
    image = ax.imshow(db, origin="lower", aspect="auto", cmap=cmap, vmin=vmax - dynamic_range_db,
                      vmax=vmax, extent=(times[0] - half, times[-1] + half, 0, freqs[-1]),
                      interpolation="nearest")
    ax.set_ylim(0, fmax if fmax else sr / 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(f"spectrogram, {x.size / sr:.1f} s at {sr:g} Hz")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="PSD (dB re 1 unit²/Hz)")
    return ax


def plot_curves(curves=None, *, ax=None, fmin=20.0, fmax=20000.0, recording=False):
    """Playback curves (or their recording inverses), gain in dB against frequency.

    Parameters
    ----------
    curves : iterable of str or PlaybackCurve, optional
        Default: every curve in :data:`groovescan.eq.CURVES`.
    ax : matplotlib Axes, optional
    fmin, fmax : float
        Frequency range, Hz.
    recording : bool
        Draw the recording (pre-emphasis) curves instead.

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    All curves are 0 dB at 1 kHz. Applied to groove velocity (``eq="flat"``) a playback
    curve gives back what went into the cutter; a bone record's curve is unknown, so
    compare a few by ear.
    """
    require_matplotlib()
    from .eq import CURVES, get_curve, playback_response

    chosen = list(CURVES.values()) if curves is None else [
        c if hasattr(c, "t_turnover") else get_curve(c) for c in curves]
    freqs = np.geomspace(float(fmin), float(fmax), 512)
    ax = _new_axes(ax, (9, 5))
    for curve in chosen:
        gain_db = 20 * np.log10(np.abs(playback_response(curve, freqs)))
        ax.semilogx(freqs, -gain_db if recording else gain_db, lw=1.2,
                    ls=":" if curve.name == "flat" else "-", label=f"{curve.name}: {curve.description}")
    ax.axvline(1000, color="grey", lw=0.5)
    ax.set_xlim(fmin, fmax)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(("recording" if recording else "playback") + " gain (dB, 0 dB at 1 kHz)")
    ax.set_title(("recording" if recording else "playback") + " curves")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower left" if not recording else "upper left")
    return ax


# ----------------------------------------------------------------------------- report page

def inspect_figure(scan, result, *, title=None):
    """One report page: scan overlay, confidence map, spectrogram, spectrum and report.

    Parameters
    ----------
    scan : str, path-like, Scan or (rows, cols) array
        The scan that was decoded.
    result : DecodeResult
    title : str, optional
        Page title (default: the scan's file name).

    Returns
    -------
    matplotlib.figure.Figure
        Made without pyplot (no GUI, no global state); save it with
        :func:`save_figure` or ``fig.savefig``. In Jupyter, leave it as a cell's
        last value to show it.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    from . import __version__

    _require_result(result, "inspect_figure")
    fig = Figure(figsize=(17, 11), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(1.0, 1.25), height_ratios=(1.0, 1.0, 1.0))
    plot_scan(scan, result, ax=fig.add_subplot(grid[0:2, 0]))
    plot_confidence(result, ax=fig.add_subplot(grid[0, 1]))
    plot_spectrogram(result, ax=fig.add_subplot(grid[1, 1]), colorbar=True)
    plot_spectrum(result, ax=fig.add_subplot(grid[2, 1]))
    text_ax = fig.add_subplot(grid[2, 0])
    text_ax.axis("off")
    text_ax.text(0.0, 1.0, result.report.summary(), family="monospace", fontsize=9, va="top",
                 ha="left", transform=text_ax.transAxes)
    if title is None:
        path = scan if isinstance(scan, (str, os.PathLike)) else getattr(scan, "path", None)
        title = os.path.basename(os.fspath(path)) if path else "scan"
    fig.suptitle(f"{title} - groovescan {__version__}", fontsize=14)
    return fig


def save_figure(fig, path, *, overwrite=False, dpi=100):
    """Write a figure atomically (temporary file in the same folder, then a rename).

    Parameters
    ----------
    fig : matplotlib Figure
    path : str or path-like
        ``.png``, ``.pdf`` or ``.svg``; its folder must exist.
    overwrite : bool
        Replace an existing file.
    dpi : float
        Raster resolution (PNG), dots per inch of the figure.

    Raises
    ------
    OutputError
        Wrong extension, missing folder, the file exists, or writing failed.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FIGURE_FORMATS:
        raise OutputError(f"cannot write {ext or 'a file without extension'} ({path}); "
                          f"use one of: {', '.join(FIGURE_FORMATS)}")
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=ext[1:], dpi=dpi)
