"""What a render was made from (:class:`RenderTruth`), measured along the rendered groove."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np
from scipy import ndimage

from ..io import jsonable
from ._common import TWO_PI
from .damage import _Stroke
from .flatbed import _LAMBDA_MM, _rms, _Seams
from .groove import _Cut, _lerp_uniform
from .render import _nearest_turns, _Plan
from .settings import RenderSettings, _pair


# =====================================================================================
# The truth
# =====================================================================================

@dataclass(frozen=True, eq=False)
class RenderTruth:
    """What a rendered scan was made from, in the final image's coordinates.

    Times are groove time (s from ``phi = 0``, the start of the cut); arrays at ``sr``
    start there too, so audio sample ``i`` is groove sample ``audio_offset_samples + i``.

    Attributes
    ----------
    sr : float
        Sample rate (Hz) of ``audio``, ``velocity`` and ``displacement``.
    audio : ndarray, shape (n,), float32
        The input audio.
    velocity : ndarray, shape (m,), float32
        Lateral groove velocity (m/s) over the whole modulated groove (silences included).
    displacement : ndarray, shape (m,), float32
        Lateral displacement (m), positive outwards: the time integral of ``velocity``.
        This is the groove as cut; the image shows it blurred along the groove by the PSF
        and the pixel (see :class:`RenderSettings`).
    audio_offset_samples : int
        Groove sample of audio sample 0 (the silent lead-in).
    rpm, dpi : float
        Turntable speed and the *nominal* resolution written to the file.
    px_mm : (float, float)
        True (row, col) pixel sizes (mm).
    image_shape : (int, int)
    bits : int
    mode, polarity : str
        "transmission"/"dark" or "reflective"/"bright".
    mirrored : bool
    direction : int
        +1 or -1: ``theta = theta_start + direction * phi`` (conventions.md).
    centre_px : (float, float)
        (row, col) of the spiral centre.
    theta_start : float
        Angle (rad) of the groove start, ``phi = 0``.
    r_start_mm, r_end_mm : float
        Undisplaced radius at ``phi = 0`` and at the end of the modulated groove.
    pitch_mm : float
        Nominal pitch (mm per turn).
    n_turns : float
        Turns of the modulated groove (lead-in silence to lead-out silence).
    groove_width_mm : float
    lead_in_turns, lead_in_pitch_mm, lead_out_turns : float
    locked_groove_radius_mm : float or None
    hole_centre_px, outline_centre_px : (float, float)
        (row, col) of the hole's and the outline's centres.
    hole_radius_mm : float
    label_radius_mm : float or None
    gaps : tuple of (float, float)
        Groove-time intervals (s) where the groove cannot be seen (off the film, in the
        hole, under an opaque patch, at a crack); ``gap_causes`` says which.
    gap_causes : tuple of str
    clicks : tuple of (float, float, str)
        Groove-time intervals (s) where dust, a hair or a scratch lies on the groove.
    dust_px : ndarray, shape (k, 3)
        Dust specks: row, col, radius (px).
    strokes_px : tuple of (str, ndarray, float)
        Hairs and scratches: kind, (n, 2) row/col polyline, width (px).
    crack : dict or None
        Where the disc broke: ``point_px`` (row, col) on the crack, ``normal`` (d_row,
        d_col) unit vector towards the moved piece, its ``shift_mm`` (d_row, d_col) and
        ``rotation_rad`` (clockwise as displayed), and ``crossings_s``, groove times
        where the groove crosses the crack.
    row_offsets_px : ndarray, shape (rows,)
        Slow-axis position error of every row (px): row ``i`` was really at ``i + offset``.
    row_gain : ndarray, shape (rows,)
    min_land_mm : float
        Narrowest land between neighbouring turns; negative means the grooves overcut.
    seed : int
    settings : RenderSettings
    spiral_phi_step : float
    spiral_radius_mm : ndarray
        Undisplaced radius ``R0`` at ``phi = k * spiral_phi_step`` (mm).
    bed_mm : (float, float) or None
        The imaged bed (height, width) in mm, None for the disc-plus-margin layout.
    streak_gain_rows, streak_gain_cols : ndarray, shape (rows,) and (cols,), float32
        Fixed-pattern relative gain deviation of every row and every column: the sensor
        signal is ``light * (1 + row) * (1 + col)`` (zeros when off).
    streak_offset_rows, streak_offset_cols : ndarray, float32
        Fixed-pattern offsets (fraction of full scale) of every row and column.
    lamp_profile : ndarray, shape (rows,), float32
        Relative lamp brightness of every row (ones when off).
    column_gain, column_offset : ndarray, shape (cols,), float32
        Every column's total fixed-pattern gain (``1 + streak_gain_cols``, times its
        chip's gain and the seam line's) and offset (``streak_offset_cols`` plus its
        chip's offset). Before the illumination falloff, which is separate.
    seam_cols : ndarray of int
        First column of each sensor chip after the first (chip ``k + 1`` starts at
        ``seam_cols[k]``); empty without seams.
    chip_gain, chip_offset, chip_shift_px : ndarray, shape (len(seam_cols) + 1,)
        Each chip's relative gain, offset (fraction of full scale) and slow-axis shift
        (px: its columns show the scene ``shift`` rows further down), left to right.
    seam_line_cols : ndarray of int
        Columns of the darker, noisier seam lines.
    glass_dust_px : ndarray, shape (k, 3)
        Specks of dust on the glass: row, col, radius (px).
    glass_strokes_px : tuple of (str, ndarray, float)
        Lint fibres on the glass: "lint", (n, 2) row/col polyline, width (px).
    newton_rings : tuple of dict
        Each ring system: ``centre_px`` (row, col), ``radius_of_curvature_m`` R,
        ``contrast`` a, ``n0`` (white-light fading order) and ``wavelength_um``; bright
        rings lie at ``sqrt(n * wavelength * R)`` from the centre.
    focus_extra_um : ndarray or None
        Extra blur sigma (um) from curled film on a coarse grid: value ``[i, j]`` at row
        ``i * focus_map_step_px[0]``, col ``j * focus_map_step_px[1]``; read it with
        :meth:`focus_sigma_um`. None without focus variation.
    focus_map_step_px : (float, float)
    """

    sr: float
    audio: np.ndarray = field(repr=False)
    velocity: np.ndarray = field(repr=False)
    displacement: np.ndarray = field(repr=False)
    audio_offset_samples: int
    rpm: float
    dpi: float
    px_mm: tuple[float, float]
    image_shape: tuple[int, int]
    bits: int
    mode: str
    polarity: str
    mirrored: bool
    direction: int
    centre_px: tuple[float, float]
    theta_start: float
    r_start_mm: float
    r_end_mm: float
    pitch_mm: float
    n_turns: float
    groove_width_mm: float
    lead_in_turns: float
    lead_in_pitch_mm: float
    lead_out_turns: float
    locked_groove_radius_mm: float | None
    hole_centre_px: tuple[float, float]
    hole_radius_mm: float
    outline_centre_px: tuple[float, float]
    label_radius_mm: float | None
    gaps: tuple[tuple[float, float], ...]
    gap_causes: tuple[str, ...]
    clicks: tuple[tuple[float, float, str], ...]
    dust_px: np.ndarray = field(repr=False)
    strokes_px: tuple[tuple[str, np.ndarray, float], ...] = field(repr=False)
    crack: dict | None
    row_offsets_px: np.ndarray = field(repr=False)
    row_gain: np.ndarray = field(repr=False)
    min_land_mm: float
    seed: int
    settings: RenderSettings
    spiral_phi_step: float
    spiral_radius_mm: np.ndarray = field(repr=False)
    bed_mm: tuple[float, float] | None
    streak_gain_rows: np.ndarray = field(repr=False)
    streak_gain_cols: np.ndarray = field(repr=False)
    streak_offset_rows: np.ndarray = field(repr=False)
    streak_offset_cols: np.ndarray = field(repr=False)
    lamp_profile: np.ndarray = field(repr=False)
    column_gain: np.ndarray = field(repr=False)
    column_offset: np.ndarray = field(repr=False)
    seam_cols: np.ndarray = field(repr=False)
    chip_gain: np.ndarray = field(repr=False)
    chip_offset: np.ndarray = field(repr=False)
    chip_shift_px: np.ndarray = field(repr=False)
    seam_line_cols: np.ndarray = field(repr=False)
    glass_dust_px: np.ndarray = field(repr=False)
    glass_strokes_px: tuple[tuple[str, np.ndarray, float], ...] = field(repr=False)
    newton_rings: tuple[dict, ...]
    focus_extra_um: np.ndarray | None = field(repr=False)
    focus_map_step_px: tuple[float, float]

    # --- time and angle -----------------------------------------------------------
    @property
    def omega(self) -> float:
        """Angular speed (rad/s)."""
        return TWO_PI * self.rpm / 60.0

    @property
    def audio_offset_s(self) -> float:
        """Groove time (s) of audio sample 0: the silent lead-in."""
        return self.audio_offset_samples / self.sr

    @property
    def duration_s(self) -> float:
        """Length of the audio (s), silences excluded."""
        return self.audio.size / self.sr

    @property
    def groove_duration_s(self) -> float:
        """Length of the modulated groove (s): lead-in silence + audio + lead-out silence."""
        return self.velocity.size / self.sr

    def time_of_phi(self, phi):
        """Groove time (s) at playing angle ``phi`` (rad)."""
        return np.asarray(phi) / self.omega

    def phi_of_time(self, t):
        """Playing angle (rad) at groove time ``t`` (s)."""
        return np.asarray(t) * self.omega

    # --- geometry -----------------------------------------------------------------
    def groove_radius_mm(self, phi, *, displaced: bool = True) -> np.ndarray:
        """Radius (mm) of the groove centre at playing angle ``phi`` (rad).

        ``displaced=False`` gives the unmodulated spiral ``R0``. The displacement is
        linearly interpolated from ``displacement`` (error < 0.5 % below sr / 20).
        """
        phi = np.asarray(phi, dtype=np.float64)
        radius = _lerp_uniform(self.spiral_radius_mm, 0.0, self.spiral_phi_step, phi)
        if displaced:
            t_samples = phi / self.omega * self.sr
            radius = radius + 1e3 * np.interp(t_samples, np.arange(self.displacement.size),
                                              self.displacement, left=0.0, right=0.0)
        return radius

    def music_pitch_mm(self) -> float:
        """Median distance (mm) from a turn of the music to the next: past the lead-in,
        before the lead-out, with the lathe's drift (``pitch_mm`` is the nominal pitch)."""
        phi = np.arange(TWO_PI * self.lead_in_turns, TWO_PI * (self.n_turns - 1), self.spiral_phi_step)
        if not phi.size:
            return self.pitch_mm
        spacing = (self.groove_radius_mm(phi, displaced=False)
                   - self.groove_radius_mm(phi + TWO_PI, displaced=False))
        return float(np.median(spacing))

    def groove_angle(self, phi) -> np.ndarray:
        """Image angle ``theta`` (rad) of the groove at playing angle ``phi``."""
        return self.theta_start + self.direction * np.asarray(phi, dtype=np.float64)

    def groove_point_px(self, phi, *, displaced: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the groove centre at ``phi`` in the final image.

        Ignores the row jitter (< 0.1 px by default) and a crack's displaced piece.
        """
        r = self.groove_radius_mm(phi, displaced=displaced)
        theta = self.groove_angle(phi)
        return (self.centre_px[0] + r * np.sin(theta) / self.px_mm[0],
                self.centre_px[1] + r * np.cos(theta) / self.px_mm[1])

    def focus_sigma_um(self, row, col) -> np.ndarray:
        """Optics blur sigma (um) at final-image points: ``psf_sigma_um`` and the curled
        film's extra blur (bilinear in :attr:`focus_extra_um`), added in quadrature."""
        row, col = np.broadcast_arrays(np.asarray(row, float), np.asarray(col, float))
        psf = self.settings.psf_sigma_um
        if self.focus_extra_um is None:
            return np.full(row.shape, psf)
        coords = [row / self.focus_map_step_px[0], col / self.focus_map_step_px[1]]
        extra = ndimage.map_coordinates(self.focus_extra_um.astype(np.float64),
                                        [c.ravel() for c in coords], order=1, mode="nearest")
        return np.hypot(psf, extra).reshape(row.shape)

    def to_dict(self) -> dict:
        """JSON-able summary (scalars and small lists; big arrays as their length or RMS)."""
        skip = {"audio", "velocity", "displacement", "dust_px", "strokes_px", "row_offsets_px",
                "row_gain", "spiral_radius_mm", "settings", "streak_gain_rows",
                "streak_gain_cols", "streak_offset_rows", "streak_offset_cols", "lamp_profile",
                "column_gain", "column_offset", "seam_line_cols", "glass_dust_px",
                "glass_strokes_px", "focus_extra_um", "seam_cols", "chip_gain", "chip_offset",
                "chip_shift_px"}
        out = {f.name: jsonable(getattr(self, f.name)) for f in fields(self) if f.name not in skip}
        out.update(
            audio_samples=int(self.audio.size), groove_samples=int(self.velocity.size),
            audio_offset_s=self.audio_offset_s, duration_s=self.duration_s,
            groove_duration_s=self.groove_duration_s,
            peak_velocity_m_s=float(np.max(np.abs(self.velocity), initial=0.0)),
            peak_displacement_um=float(1e6 * np.max(np.abs(self.displacement), initial=0.0)),
            dust_count=int(len(self.dust_px)),
            hair_count=sum(1 for k, *_ in self.strokes_px if k == "hair"),
            scratch_count=sum(1 for k, *_ in self.strokes_px if k == "scratch"),
            row_offset_rms_px=float(np.sqrt(np.mean(self.row_offsets_px ** 2))),
            streak_rms=dict(gain_rows=_rms(self.streak_gain_rows),
                            gain_cols=_rms(self.streak_gain_cols),
                            offset_rows=_rms(self.streak_offset_rows),
                            offset_cols=_rms(self.streak_offset_cols)),
            lamp_range=[float(self.lamp_profile.min(initial=1.0)),
                        float(self.lamp_profile.max(initial=1.0))],
            seam_count=int(self.seam_cols.size),
            chip_gain_rms=float(np.std(self.chip_gain)),
            chip_shift_rms_px=_rms(self.chip_shift_px),
            glass_dust_count=int(len(self.glass_dust_px)),
            lint_count=int(len(self.glass_strokes_px)),
            focus_extra_max_um=(None if self.focus_extra_um is None
                                else float(self.focus_extra_um.max())),
            settings=jsonable(asdict(self.settings)),
        )
        return out


# ---- measurements along the rendered groove, for the truth --------------------------

def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges where ``mask`` is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _groove_path(plan: _Plan, step_mm: float = 0.05, block: int = 1 << 18):
    """Yield ``(phi, x, y)`` blocks of points along the modulated groove, about
    ``step_mm`` apart (disc frame, mm)."""
    dphi = step_mm / float(plan.spiral.radius_mm[0])
    total = int(plan.spiral.phi_end / dphi) + 1
    for a in range(0, total, block):
        phi = np.arange(a, min(total, a + block)) * dphi
        r = plan.spiral.radius(phi) + plan.wiggle.at(phi)
        theta = plan.theta_start_render - phi
        yield phi, r * np.cos(theta), r * np.sin(theta)


_GAP_CAUSES = ("", "outline", "hole", "opaque patch", "off image")


def _off_image(plan: _Plan, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True where disc-frame points (mm) lie outside the image (a disc partly off the bed)."""
    if plan.crack is not None:
        x, y = plan.crack.to_image(x, y)
    rows, cols = plan.shape
    row = (y + plan.centre_mm[0]) / plan.scanner.px_row_mm
    col = (x + plan.centre_mm[1]) / plan.scanner.px_col_mm
    return (row < -0.5) | (row > rows - 0.5) | (col < -0.5) | (col > cols - 0.5)


def _find_gaps(plan: _Plan, omega: float):
    """Groove-time intervals where the groove is off the film, in the hole, under an
    opaque patch, off the image or at the crack; and the crack crossing times."""
    sigma = plan.scanner.edge_sigma_mm
    phis, causes, sides = [], [], []
    for phi, x, y in _groove_path(plan):
        cause = np.zeros(phi.size, np.int8)
        cause[plan.film.sample(x, y)[2] > 0.5] = 3
        cause[_off_image(plan, x, y)] = 4
        cause[plan.hole.film_fraction(x, y, sigma) < 0.5] = 2
        cause[plan.outline.film_fraction(x, y, sigma) < 0.5] = 1
        phis.append(phi)
        causes.append(cause)
        if plan.crack is not None:
            sides.append(plan.crack.edge_distance(x, y) > 0)
    phi, cause = np.concatenate(phis), np.concatenate(causes)
    gaps = [((phi[a] / omega, phi[b - 1] / omega), _GAP_CAUSES[cause[a]])
            for a, b in _runs(cause > 0)]
    crossings = []
    if plan.crack is not None:
        side = np.concatenate(sides)
        half = math.hypot(*plan.crack.shift) + 0.05          # mm of groove spoiled each side
        for i in np.flatnonzero(side[1:] != side[:-1]):
            t = phi[i] / omega
            dt = half / (omega * float(plan.spiral.radius(phi[i:i + 1])[0]))
            crossings.append(float(t))
            gaps.append(((t - dt, t + dt), "crack"))
    gaps.sort()
    return (tuple((float(a), float(b)) for (a, b), _ in gaps),
            tuple(c for _, c in gaps), tuple(crossings))


def _stroke_samples(st: _Stroke, spacing_px: float) -> np.ndarray:
    """Points along a stroke no more than ``spacing_px`` apart (row, col)."""
    pts = st.points_px
    if len(pts) == 1:
        return pts
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(math.ceil(np.hypot(*(b - a)) / spacing_px)))
        out.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(out)


def _find_clicks(plan: _Plan, omega: float) -> tuple[tuple[float, float, str], ...]:
    """Groove-time intervals where dust, hairs, scratches or dust on the glass lie on the
    groove."""
    sc = plan.scanner
    px = math.sqrt(sc.px_row_mm * sc.px_col_mm)
    clicks = []
    for st in plan.strokes + plan.glass.strokes:       # on the film or on the glass
        pts = _stroke_samples(st, max(0.5, min(st.width_px / 2, 0.01 / px)))
        x = pts[:, 1] * sc.px_col_mm - plan.centre_mm[1]
        y = pts[:, 0] * sc.px_row_mm - plan.centre_mm[0]
        if plan.crack is not None:
            x, y, _ = plan.crack.to_disc(x, y, sc.edge_sigma_mm)
        reach = 0.5 * st.width_px * px + 0.5 * plan.s.groove_width_mm
        r = np.hypot(x, y)
        phis = [phi[np.abs(u) < reach] for phi, u in _nearest_turns(plan, x, y, r)]
        phis = np.sort(np.concatenate(phis))
        phis = phis[phis <= plan.spiral.phi_end]
        if phis.size == 0:
            continue
        pad = 0.5 * st.width_px * px / (omega * float(plan.spiral.radius(phis[:1])[0]))
        breaks = np.flatnonzero(np.diff(phis) > 1e-3 * omega) + 1     # 1 ms apart: new click
        for group in np.split(phis, breaks):
            clicks.append((float(group[0] / omega - pad), float(group[-1] / omega + pad), st.kind))
    return tuple(sorted(clicks))


def _min_land_mm(plan: _Plan, cut: _Cut, sr: float, omega: float) -> float:
    """Narrowest land (mm) between a turn and the next one inside it, over the groove."""
    per_turn = int(round(TWO_PI / omega * sr))
    n = cut.displacement.size - per_turn
    width = plan.s.groove_width_mm
    if n <= 0:
        return float("inf")
    smallest = float("inf")
    for a in range(0, n, 1 << 20):
        k = np.arange(a, min(n, a + (1 << 20)))
        phi = k / sr * omega
        outer = plan.spiral.radius(phi) + 1e3 * cut.displacement[k]
        inner = plan.spiral.radius(phi + TWO_PI) + 1e3 * cut.displacement[k + per_turn]
        smallest = min(smallest, float(np.min(outer - inner)) - width)
    return smallest


def _make_truth(plan: _Plan, cut: _Cut, audio: np.ndarray, sr: float) -> RenderTruth:
    s, sc = plan.s, plan.scanner
    omega = TWO_PI * s.rpm / 60.0
    rows, cols = plan.shape

    def final_px(x_mm, y_mm):
        """Disc-frame point (mm) -> (row, col) of the final image."""
        x_mm, y_mm = np.asarray(x_mm, float), np.asarray(y_mm, float)
        if plan.crack is not None:
            x_mm, y_mm = plan.crack.to_image(x_mm, y_mm)
        col = (x_mm + plan.centre_mm[1]) / sc.px_col_mm
        return (float((y_mm + plan.centre_mm[0]) / sc.px_row_mm),
                float(cols - 1 - col if s.mirrored else col))

    flip = -1.0 if s.mirrored else 1.0

    def final_cols(c):
        return cols - 1 - c if s.mirrored else c

    gaps, causes, crossings = _find_gaps(plan, omega)
    crack = None
    if plan.crack is not None:
        ck = plan.crack
        crack = dict(
            point_px=final_px(*ck.point),
            normal=(ck.normal[1], flip * ck.normal[0]),
            shift_mm=(ck.shift[1], flip * ck.shift[0]),
            rotation_rad=flip * ck.rotation,
            crossings_s=crossings,
        )
    dust = [st for st in plan.strokes if st.kind == "dust"]
    dust_px = np.array([[st.points_px[0, 0], final_cols(st.points_px[0, 1]), st.width_px / 2]
                        for st in dust]).reshape(-1, 3)
    strokes_px = tuple((st.kind, np.stack([st.points_px[:, 0], final_cols(st.points_px[:, 1])], 1),
                        st.width_px) for st in plan.strokes if st.kind != "dust")
    theta = plan.theta_start_render
    theta_start = float(np.mod(math.pi - theta if s.mirrored else theta, TWO_PI))
    return RenderTruth(
        sr=sr, audio=audio, velocity=cut.velocity, displacement=cut.displacement,
        audio_offset_samples=cut.offset_samples, rpm=float(s.rpm), dpi=float(s.dpi),
        px_mm=(sc.px_row_mm, sc.px_col_mm), image_shape=plan.shape, bits=s.bits, mode=s.mode,
        polarity=s.polarity, mirrored=s.mirrored, direction=1 if s.mirrored else -1,
        centre_px=(plan.centre_mm[0] / sc.px_row_mm,
                   float(final_cols(plan.centre_mm[1] / sc.px_col_mm))),
        theta_start=theta_start, r_start_mm=float(plan.spiral.radius_mm[0]),
        r_end_mm=float(plan.spiral.radius(np.array([plan.spiral.phi_end]))[0]),
        pitch_mm=s.pitch_mm, n_turns=plan.spiral.phi_end / TWO_PI,
        groove_width_mm=s.groove_width_mm, lead_in_turns=s.lead_in_turns,
        lead_in_pitch_mm=s.lead_in_pitch_mm, lead_out_turns=s.lead_out_turns,
        locked_groove_radius_mm=plan.spiral.locked_radius_mm,
        hole_centre_px=final_px(*plan.hole.centre), hole_radius_mm=s.hole_radius_mm,
        outline_centre_px=final_px(*plan.outline.centre), label_radius_mm=s.label_radius_mm,
        gaps=gaps, gap_causes=causes, clicks=_find_clicks(plan, omega), dust_px=dust_px,
        strokes_px=strokes_px, crack=crack, row_offsets_px=sc.row_offset_px,
        row_gain=sc.row_gain, min_land_mm=_min_land_mm(plan, cut, sr, omega),
        seed=plan.seed, settings=s, spiral_phi_step=plan.spiral.phi_step,
        spiral_radius_mm=plan.spiral.radius_mm, **_flatbed_truth(plan, final_px, final_cols),
    )


def _flatbed_truth(plan: _Plan, final_px: Callable, final_cols: Callable) -> dict:
    """The truth of the scanner's habits, final-image frame."""
    s, fp = plan.s, plan.pattern
    cols = plan.shape[1]
    seams = fp.seams
    if seams is None:
        seams = _Seams(np.zeros(0, np.intp), np.ones(1), np.zeros(1), np.zeros(1),
                       np.zeros(0, np.intp), np.zeros(0), 0.0)
    glass = [st for st in plan.glass.strokes if st.kind == "glass dust"]
    glass_px = np.array([[st.points_px[0, 0], final_cols(st.points_px[0, 1]), st.width_px / 2]
                         for st in glass]).reshape(-1, 3)
    lint = tuple((st.kind, np.stack([st.points_px[:, 0], final_cols(st.points_px[:, 1])], 1),
                  st.width_px) for st in plan.glass.strokes if st.kind != "glass dust")
    rings = ()
    if plan.rings is not None:
        rg = plan.rings
        rings = tuple(dict(centre_px=final_px(*c),
                           radius_of_curvature_m=float(lr / _LAMBDA_MM) / 1e3,
                           contrast=float(a), n0=float(n0), wavelength_um=_LAMBDA_MM * 1e3)
                      for c, lr, a, n0 in zip(rg.centres, rg.lambda_r_mm2, rg.contrast, rg.n0))
    focus_map, step = None, (1.0, 1.0)
    if plan.focus is not None:
        focus_map, step = _focus_map(plan)
    return dict(
        bed_mm=None if s.bed_mm is None else _pair(s.bed_mm, "bed_mm"),
        streak_gain_rows=fp.streak_gain_rows, streak_gain_cols=fp.streak_gain_cols,
        streak_offset_rows=fp.streak_offset_rows, streak_offset_cols=fp.streak_offset_cols,
        lamp_profile=fp.lamp,
        column_gain=fp.col_gain if fp.col_gain is not None else np.ones(cols, np.float32),
        column_offset=fp.col_offset if fp.col_offset is not None else np.zeros(cols, np.float32),
        seam_cols=seams.starts, chip_gain=seams.gain, chip_offset=seams.offset,
        chip_shift_px=seams.shift_px, seam_line_cols=seams.line_cols,
        glass_dust_px=glass_px, glass_strokes_px=lint, newton_rings=rings,
        focus_extra_um=focus_map, focus_map_step_px=step,
    )


def _focus_map(plan: _Plan, step_mm: float = 0.5) -> tuple[np.ndarray, tuple[float, float]]:
    """Extra focus blur (um) on a grid about ``step_mm`` apart over the final image."""
    sc = plan.scanner
    rows, cols = plan.shape
    step = (max(1, round(step_mm / sc.px_row_mm)), max(1, round(step_mm / sc.px_col_mm)))
    r = np.arange(0, rows - 1 + step[0], step[0], dtype=np.float64)
    c = np.arange(0, cols - 1 + step[1], step[1], dtype=np.float64)
    c_render = cols - 1 - c if plan.s.mirrored else c
    x = np.tile(c_render * sc.px_col_mm - plan.centre_mm[1], r.size)
    y = np.repeat(r * sc.px_row_mm - plan.centre_mm[0], c.size)
    if plan.crack is not None:
        x, y, _ = plan.crack.to_disc(x, y, sc.edge_sigma_mm)
    extra = plan.focus.max_mm * 1e3 * plan.focus.lift(x, y)
    return extra.reshape(r.size, c.size).astype(np.float32), (float(step[0]), float(step[1]))
