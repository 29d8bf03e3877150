"""``decode()``: scan in, audio out, every stage kept for inspection.

    Scan -> DiscGeometry -> GrooveTrack -> WallSignal -> (restore) -> audio

Each stage is a plain function of the previous stage's result (``find_geometry``,
``track_groove``, ``measure_walls``, ``groove_audio``); :func:`decode` chains them,
repairs what dust and scratches corrupted, and writes a plain-language report.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy import ndimage

from . import restore
from .crack import Crack
from .eq import get_curve
from .errors import NoGrooveError, ParameterError
from .geometry import DiscGeometry, check_hints, find_geometry
from .timebase import check_rpm, default_band, groove_audio, samples_per_turn
from .track import GrooveTrack, track_groove
from .walls import WallSignal, measure_walls

__all__ = ["DecodeResult", "DecodeReport", "decode", "DecodeWarning"]


class DecodeWarning(UserWarning):
    """The scan was decoded, but part of it could not be read (see the report)."""


@dataclass(frozen=True)
class DecodeReport:
    """What the decoder found and how well it could read the groove.

    ``hints`` holds the geometry hints the caller gave :func:`decode`, as checked
    (``centre_px`` (row, col) px, ``radii_mm`` (inner, outer) mm, ``pitch_mm`` mm;
    only those given); empty when the geometry was found unaided.
    ``off_image_fraction`` is the share of the tracked groove that lies outside the
    image (a disc larger than the scan, or placed across its edge): it cannot be seen,
    and is muted.
    ``pitch_mm`` is the spacing of the followed turns (:attr:`GrooveTrack.turn_spacing_mm`),
    or the geometry's spectral estimate if no two turns were followed.
    """

    dpi: float
    image_shape: tuple[int, int]
    centre_px: tuple[float, float]
    centre_offset_mm: tuple[float, float]
    direction: int
    polarity: str
    pitch_mm: float
    scale_mismatch: float
    r_outer_mm: float
    r_inner_mm: float
    n_turns: float
    duration_s: float
    rpm: float
    sr: int
    eq: str
    followed_fraction: float
    n_clicks: int
    click_fraction: float
    gaps: tuple[tuple[float, float], ...]
    noise_um: float
    denoise: float = 0.0
    crack: Crack | None = None
    hints: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)
    off_image_fraction: float = 0.0

    @property
    def handedness(self) -> str:
        """Which way the groove turns, played outside-in, as the image is displayed."""
        return "clockwise" if self.direction > 0 else "counter-clockwise"

    def summary(self) -> str:
        """Human-readable report, one fact a line."""
        lines = [
            f"scan            {self.image_shape[1]} x {self.image_shape[0]} px at {self.dpi:g} dpi",
            *([f"hints           {_describe_hints(self.hints)}"] if self.hints else []),
            f"spiral centre   row {self.centre_px[0]:.1f}, col {self.centre_px[1]:.1f} "
            f"({self.centre_offset_mm[1]:+.2f}, {self.centre_offset_mm[0]:+.2f} mm from the image centre)",
            f"groove          {self.polarity} walls, turns {self.handedness} inwards"
            f"{' (scan is mirrored)' if self.direction > 0 else ''}, pitch {self.pitch_mm * 1000:.0f} um",
            f"grooved area    r = {self.r_inner_mm:.1f} .. {self.r_outer_mm:.1f} mm; "
            f"scanner X/Y scale differ by {self.scale_mismatch * 100:+.2f} %",
            f"turns           {self.n_turns:.1f}, {self.duration_s:.1f} s at {self.rpm:g} rpm",
            f"followed        {self.followed_fraction * 100:.1f} % of the groove seen"
            + (f" ({self.off_image_fraction * 100:.0f} % of it lies off the image: the scan cuts the disc)"
               if self.off_image_fraction >= 0.005 else ""),
            f"repaired        {self.n_clicks} clicks ({self.click_fraction * 100:.2f} % of samples)",
            f"position noise  {self.noise_um:.2f} um rms per wall (from wall disagreement)",
        ]
        if self.gaps:
            shown = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in self.gaps[:5])
            more = f" and {len(self.gaps) - 5} more" if len(self.gaps) > 5 else ""
            lines.append(f"gaps (muted)    {len(self.gaps)}: {shown}{more}")
        if self.crack is not None:
            moved = float(np.hypot(*self.crack.offset_mm))
            lines.append(f"broken disc     the smaller piece is re-registered: {moved:.2f} mm off, "
                         f"turned {np.degrees(self.crack.rotation):+.2f} deg")
        if self.denoise:
            lines.append(f"hiss            suppressed at strength {self.denoise:g} of the measured noise")
        lines.append(f"output          {self.sr} Hz, playback curve '{self.eq}'")
        return "\n".join(lines)


def _describe_hints(hints) -> str:
    """The geometry hints in words: "centre given (row 8200, col 8350), radii 40-85 mm"."""
    parts = []
    if hints.get("centre_px") is not None:
        row, col = hints["centre_px"]
        parts.append(f"centre given (row {row:g}, col {col:g})")
    if hints.get("radii_mm") is not None:
        parts.append("radii {:g}-{:g} mm".format(*hints["radii_mm"]))
    if hints.get("pitch_mm") is not None:
        parts.append(f"pitch {hints['pitch_mm']:g} mm")
    return ", ".join(parts)


@dataclass(frozen=True)
class DecodeResult:
    """Audio and everything the decoder learnt on the way.

    Attributes
    ----------
    audio : (n,) float32
        Decoded audio at ``sr``; for ``eq="flat"`` groove velocity in m/s.
    sr : int
    geometry, track, walls : the stage results.
    displacement_m : (m,) float64
        Repaired lateral displacement at ``fs`` (samples per turn * rpm / 60).
    fs : float
    click_mask : (m,) bool, samples repaired (at ``fs``).
    gap_mask : (m,) bool, samples muted because the groove was lost.
    report : DecodeReport
    """

    audio: np.ndarray = field(repr=False)
    sr: int
    geometry: DiscGeometry = field(repr=False)
    track: GrooveTrack = field(repr=False)
    walls: WallSignal = field(repr=False)
    displacement_m: np.ndarray = field(repr=False)
    fs: float
    click_mask: np.ndarray = field(repr=False)
    gap_mask: np.ndarray = field(repr=False)
    report: DecodeReport

    @property
    def duration_s(self) -> float:
        return self.audio.size / self.sr

    def turn_confidence(self) -> np.ndarray:
        """Mean tracker confidence of every turn, 0..1."""
        return self.track.turn_confidence()


def _running_median(x, size):
    return ndimage.median_filter(x, size=size, mode="nearest")


def combine_walls(walls: WallSignal):
    """One robust groove position per sample from the two walls.

    Where the walls disagree far beyond their noise (dust or a hair on one wall) the
    wall closer to the local median is kept. Returns the position relative to the
    track (mm) and evidence of corruption (bool) for the click detector.
    """
    # float32 throughout: offsets are fractions of a pitch, far inside its precision,
    # and a side has millions of samples
    left, right = walls.left_mm, walls.right_mm
    has_left, has_right = np.isfinite(left), np.isfinite(right)
    both = has_left & has_right
    mean = np.where(both, 0.5 * (left + right), np.where(has_left, left, right))
    d = np.where(both, left - right, np.float32(0))
    dev = d - _running_median(d, 31)
    del d
    sigma = np.float32(1.4826 * np.median(np.abs(dev[both]))) if both.any() else np.float32(np.inf)
    disagree = both & (np.abs(dev) > 6 * sigma)
    del dev
    ref = _running_median(np.nan_to_num(mean), 9)
    single = np.where(np.abs(left - ref) <= np.abs(right - ref), left, right)
    position = np.where(disagree, single, mean)
    typical = np.nanmedian(walls.gain, axis=0)
    relative = walls.gain / np.where(typical > 0, typical, np.nan).astype(np.float32)
    weak = ~(np.fmin(relative[:, 0], relative[:, 1]) > 0.25)     # NaN (unmeasured) is weak too
    evidence = (disagree & (np.abs(single - ref) > 6 * sigma)) | weak | ~np.isfinite(position)
    return position, evidence


def check_denoise(strength) -> float:
    """Validate a hiss-suppression strength: a number from 0 (off) to 4."""
    if not (isinstance(strength, (int, float, np.number)) and 0 <= strength <= 4):
        raise ParameterError(f"denoise={strength!r}; use a strength from 0 (off) to 4 (1 = the measured noise)")
    return float(strength)


def _wall_noise_psd(walls: WallSignal, repaired, *, fs, sr, curve, band, nperseg=1024):
    """Noise PSD of the output audio, from half the difference of the two walls.

    Both walls of a lateral groove carry the same audio; their half-difference is
    the measurement noise of their mean (for independent walls), taken through the
    same derivative, band and playback curve as the audio.
    """
    from scipy import signal

    half_difference = 0.5 * (walls.left_mm.astype(np.float64) - walls.right_mm) * 1e-3
    half_difference[repaired | ~np.isfinite(half_difference)] = 0.0
    noise = groove_audio(half_difference, fs=fs, sr=sr, curve=curve, band=band)
    return signal.welch(noise, fs=sr, nperseg=nperseg)


def _measured_pitch(track, geometry):
    spacing = track.turn_spacing_mm
    return spacing if np.isfinite(spacing) else geometry.pitch_mm


def _off_image_fraction(track: GrooveTrack, geometry: DiscGeometry, shape) -> float:
    """Share of the tracked groove's points that lie outside an image of ``shape``."""
    phi = np.arange(track.radius_mm.size) * (2 * np.pi / track.points_per_turn)
    radius = track.radius_mm.ravel()
    on_track = np.isfinite(radius)
    if not on_track.any():
        return 0.0
    row, col = geometry.to_px(radius[on_track], track.theta_at(phi[on_track]))
    outside = (row < -0.5) | (row > shape[0] - 0.5) | (col < -0.5) | (col > shape[1] - 0.5)
    return float(outside.mean())


def _bridge(position, lost, fallback):
    """``position`` with the ``lost`` samples interpolated linearly from their neighbours
    (``fallback``, then its mean, if nothing was measured)."""
    known = ~lost & np.isfinite(position)
    if not known.any():
        return np.where(np.isfinite(fallback), fallback, np.nanmean(fallback))
    index = np.arange(position.size)
    return np.where(known, position, np.interp(index, index[known], position[known]))


def _runs(mask):
    edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def _progress_factory(progress):
    """Turn ``progress`` (bool or callable(stage, done, total)) into per-stage callbacks."""
    if callable(progress):
        return lambda stage: (lambda done, total: progress(stage, done, total))
    if not progress:
        return lambda stage: None
    from tqdm.auto import tqdm

    bars = {}

    def make(stage):
        def update(done, total):
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=stage, leave=False, unit="step")
            bar.n = done
            bar.refresh()
            if done >= total:
                bar.close()
        return update

    return make


def decode(scan, *, rpm=78.0, sr=44100, eq="flat", dpi=None, band=None, declick=True,
           denoise=0.0, max_gap_s=0.02, centre_px=None, radii_mm=None, pitch_mm=None,
           progress=False) -> DecodeResult:
    """Decode the audio of a record scan.

    Parameters
    ----------
    scan : str, path-like, Scan or 2-D array
        A scan file (TIFF/PNG/JPEG), a :class:`groovescan.Scan`, or an image array
        (then ``dpi`` is required).
    rpm : float or str
        Turntable speed: 78, 77.92, 78.26, 45, 33.333 or a preset name ("33", "78-50hz").
    sr : int
        Output sample rate, Hz.
    eq : str
        Playback curve ("flat" = groove velocity; see :data:`groovescan.eq.CURVES`).
    dpi : float, optional
        Scan resolution; overrides the file's metadata.
    band : (lo, hi), optional
        Audio band kept (Hz); default 30-8000 Hz at 78 rpm, 20-18000 Hz otherwise.
    declick : bool
        Detect and repair samples corrupted by dust and scratches.
    denoise : float
        Strength of hiss suppression, 0 (default: off) to 4. A Wiener-style gain per
        frequency and moment (:func:`groovescan.restore.denoise`) against the optical
        noise measured where the two walls disagree; 1 suppresses exactly that noise.
        It removes hiss between and above notes; on dense broadband music it also dulls
        the music (see the README for its measured gain).
    max_gap_s : float
        Longer stretches where the groove is lost are muted and reported as gaps.
    centre_px : (float, float), optional
        Geometry hint, for when automatic geometry fails: ``(row, col)`` of the spiral's
        centre in pixels of the scan, roughly; it is refined from the grooves. Default:
        found from the grooves.
    radii_mm : (float, float), optional
        Geometry hint, for when automatic geometry fails: ``(r_inner, r_outer)``, the
        radii in mm between which the grooves lie, inner first; taken as given.
        Default: found from the grooves.
    pitch_mm : float, optional
        Geometry hint, for when automatic geometry fails: the groove pitch in mm
        (radial distance between turns), roughly; the pitch found must lie within 20 %
        of it. Default: found from the grooves.
    progress : bool or callable(stage, done, total)

    Returns
    -------
    DecodeResult
        The hints given are in ``result.report.hints``.

    Raises
    ------
    ParameterError
        A bad option, including a hint that cannot be right (checked before the scan is
        read; a centre far outside the image, once its size is known).
    ScanReadError, ScanContentError, MissingDpiError
        The scan could not be read (see :func:`groovescan.load_scan`).
    NoGrooveError
        No spiral groove found (hints may help).

    Warns
    -----
    DecodeWarning
        When less than 90 % of the groove could be followed, or gaps were muted.
    """
    from .io import Scan, load_scan

    rpm = check_rpm(rpm)
    if not (isinstance(sr, (int, np.integer)) and 4000 <= sr <= 384000):
        raise ParameterError(f"sr={sr!r} is not an audio sample rate; use an integer 4000-384000 (e.g. 44100)")
    curve = get_curve(eq)
    band = tuple(band) if band is not None else default_band(rpm)
    denoise = check_denoise(denoise)
    centre_px, radii_mm, pitch_mm = check_hints(centre_px=centre_px, radii_mm=radii_mm,
                                                pitch_mm=pitch_mm)
    hints = {name: value for name, value in
             (("centre_px", centre_px), ("radii_mm", radii_mm), ("pitch_mm", pitch_mm))
             if value is not None}
    stage = _progress_factory(progress)
    timings = {}
    t0 = time.perf_counter()
    if isinstance(scan, Scan):
        if dpi is not None:
            rescaled = Scan.from_array(scan.image, dpi=dpi)
            scan = dataclasses.replace(scan, dpi=rescaled.dpi, dpi_xy=rescaled.dpi_xy,
                                       dpi_source="argument")
    elif isinstance(scan, np.ndarray):
        if dpi is None:
            raise ParameterError("an image array has no resolution: pass dpi=... (e.g. dpi=2400)")
        scan = Scan.from_array(scan, dpi=dpi)
    else:
        scan = load_scan(scan, dpi=dpi)
    timings["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    geometry = find_geometry(scan, centre_px=centre_px, radii_mm=radii_mm, pitch_mm=pitch_mm)
    timings["geometry"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        track = track_groove(scan, geometry, progress=stage("tracking"))
    except NoGrooveError as error:
        error.evidence = geometry           # for a figure of what the geometry saw
        raise
    timings["track"] = time.perf_counter() - t
    n_per = samples_per_turn(sr=sr, rpm=rpm)
    fs = Fraction(n_per) * Fraction(rpm).limit_denominator(1000) / 60
    t = time.perf_counter()
    walls = measure_walls(scan, geometry, track, samples_per_turn=n_per, progress=stage("walls"))
    timings["walls"] = time.perf_counter() - t

    t = time.perf_counter()
    offset_mm, evidence = combine_walls(walls)
    position_m = (walls.track_mm + offset_mm) * 1e-3
    lost = ~np.isfinite(position_m) | (walls.coasted & evidence)
    max_gap = max(1, int(max_gap_s * float(fs)))
    # where the groove goes out of sight (the image's edge, opaque film) it is half seen
    # for a moment first, and the walls' fit there is wild: a gap is muted a little wider
    guard = int(np.ceil(0.002 * float(fs)))
    gap_mask = np.zeros(position_m.size, bool)
    for a, b in _runs(lost):
        if b - a > max_gap:
            gap_mask[max(a - guard, 0):b + guard] = True
    # where the groove was lost, a straight stand-in from the groove measured before to
    # the groove measured after: the repair has context, and no step at a gap's edge
    # (the track is off the walls' mean by a few micrometres) rings into the music
    position_m = _bridge(position_m, lost, walls.track_mm * 1e-3)
    if declick:
        repaired, report = restore.declick(position_m, sr=float(fs), evidence=evidence | lost,
                                           max_gap=max_gap)
        click_mask = report.clicks.mask & ~gap_mask
        n_clicks = int(_runs(click_mask).shape[0])
    else:
        repaired, click_mask, n_clicks = position_m, np.zeros(position_m.size, bool), 0
    timings["restore"] = time.perf_counter() - t

    t = time.perf_counter()
    audio = groove_audio(repaired, fs=fs, sr=sr, curve=curve, band=band)
    gaps_s = []
    if gap_mask.any():
        ratio = sr / float(fs)
        fade = int(0.005 * sr)
        envelope = np.ones(audio.size, np.float32)
        for a, b in _runs(gap_mask):
            i0, i1 = int(a * ratio), min(int(np.ceil(b * ratio)), audio.size)
            envelope[i0:i1] = 0.0
            gaps_s.append((a / float(fs), b / float(fs)))
        envelope = ndimage.uniform_filter1d(envelope, fade) if fade > 1 else envelope
        audio = audio * envelope
    if denoise > 0:
        noise_psd = _wall_noise_psd(walls, click_mask | gap_mask, fs=fs, sr=sr, curve=curve, band=band)
        audio = restore.denoise(audio, sr=sr, noise_psd=noise_psd, strength=denoise)
    timings["audio"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    h, w = scan.image.shape
    centre = geometry.centre_px
    report = DecodeReport(
        dpi=float(scan.dpi), image_shape=(int(h), int(w)), centre_px=centre,
        centre_offset_mm=((centre[0] - (h - 1) / 2) * geometry.px_mm[0],
                          (centre[1] - (w - 1) / 2) * geometry.px_mm[1]),
        direction=geometry.direction, polarity=geometry.polarity, pitch_mm=_measured_pitch(track, geometry),
        scale_mismatch=geometry.scale_mismatch, r_outer_mm=geometry.r_outer_mm,
        r_inner_mm=geometry.r_inner_mm, n_turns=track.n_turns, duration_s=audio.size / sr,
        rpm=rpm, sr=int(sr), eq=curve.name, followed_fraction=track.followed_fraction,
        n_clicks=n_clicks, click_fraction=float(click_mask.mean()) if click_mask.size else 0.0,
        gaps=tuple(gaps_s), noise_um=float(walls.noise_mm * 1000), denoise=denoise,
        crack=geometry.crack, hints=hints, timings_s=timings,
        off_image_fraction=_off_image_fraction(track, geometry, scan.image.shape))
    if track.followed_fraction < 0.9 or gaps_s:
        off_image = (f" ({report.off_image_fraction * 100:.0f} % of it lies off the image)"
                     if report.off_image_fraction >= 0.005 else "")
        warnings.warn(f"only {track.followed_fraction * 100:.0f} % of the groove was seen{off_image}; "
                      f"{len(gaps_s)} gap(s) muted — see the report", DecodeWarning, stacklevel=2)
    return DecodeResult(audio=audio, sr=int(sr), geometry=geometry, track=track, walls=walls,
                        displacement_m=repaired, fs=float(fs), click_mask=click_mask,
                        gap_mask=gap_mask, report=report)
