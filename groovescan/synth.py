"""Render realistic flatbed scans of records from audio: the inverse of decoding.

Audio goes in; a scan image and the truth it was made from come out. The renderer
follows the physics of DESIGN.md and the coordinate conventions of docs/conventions.md:

1. *Cutting.* The audio is filtered by a recording curve into groove velocity (m/s),
   scaled to a chosen ``level``, high-passed below ~15 Hz (as a cutter's suspension does)
   and integrated into the lateral displacement ``d`` (m, positive outwards).
2. *Spiral.* ``R(phi) = R0(phi) + d(phi)`` with ``R0`` falling by one pitch per turn
   (wider on the lead-in, optionally slowly varying, optionally a lead-out spiral and a
   locked concentric groove).
3. *Appearance.* Every pixel is located in physical units (true X/Y pixel sizes, slow-axis
   jitter) about the spiral centre, the nearest three turns are found, and the groove
   cross-section is read from a 1-D table already convolved with the optics' PSF and the
   pixel's footprint across the groove. Blur *along* the groove is applied to ``d``
   beforehand (a pixel averages the wiggle over its footprint). Film transmission
   (X-ray picture), scissor-cut outline, hand-made hole, damage, illumination, shot and
   read noise and quantisation follow.
4. *The flatbed's habits* (all off by default; preset "flatbed_a4"): the whole bed in the
   image, fixed-pattern streaks of the line sensor, lamp drift, the seams and
   misregistration of its chips, exposure and clipping, the driver's unsharp mask, JPEG
   files, dust on the glass, Newton's rings and focus varying across curled film. Patterns
   tied to the sensor live in the final image's frame, mirrored or not.

Rendering runs in blocks of rows, so the full 2400 dpi 7-inch side (17 000 px square), or
a whole A4 bed, renders straight into a TIFF in bounded memory
(:func:`render_scan_to_file`); the bed around the disc costs little more than its noise.
:func:`render_scan` returns the image in memory.

Every option lives in :class:`RenderSettings` (defaults: a clean 7-inch bone record scanned
in transmission); :data:`PRESETS` hold overrides for other records. Options are passed as
keywords to the render functions::

    >>> import numpy as np
    >>> from groovescan.synth import render_scan, tone
    >>> audio = tone(1000.0, duration_s=0.5, sr=16000)
    >>> scan = render_scan(audio, sr=16000, dpi=300, disc_diameter_mm=40.0,
    ...                    r_start_mm=16.0, hole_radius_mm=2.0, seed=1)
    >>> scan.image.dtype, scan.truth.direction
    (dtype('uint16'), -1)

Times in the truth are *groove time*: ``t = phi / omega`` seconds from the start of the
cut (``phi = 0``); audio sample ``i`` sits at groove time ``audio_offset_s + i / sr``.
"""
from __future__ import annotations

import collections
import contextlib
import difflib
import itertools
import math
import os
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, signal, special

from .eq import get_curve, recording_response
from .errors import OutputError, ParameterError
from .io import jsonable

__all__ = [
    "PRESETS",
    "RenderSettings",
    "RenderTruth",
    "RenderedScan",
    "render_scan",
    "render_scan_to_file",
    "resolve_settings",
    "sweep",
    "tone",
]

TWO_PI = 2.0 * math.pi
_TILE_ROWS = 16            # rows rendered at once: ~0.3 M pixels, a few MB per temporary
_SUPERSAMPLE = 4           # dust, hairs and scratches are drawn at 4x and area-averaged
_ORIENTATIONS = 17         # pixel-footprint tables between radial = row and radial = col
_TABLE_STEP_MM = 0.0002    # 0.2 um: cross-section table step, far below any blur
_SPIRAL_STEPS_PER_TURN = 1024
_FAR_MM = 1.0e3            # "no groove here": an offset far outside every table


# =====================================================================================
# Test signals
# =====================================================================================

def _fade(x: np.ndarray, sr: float, fade_s: float) -> np.ndarray:
    """Raised-cosine fade in and out over ``fade_s`` seconds (avoids clicks at the ends)."""
    n = min(int(round(fade_s * sr)), x.size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(x.dtype)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _synthesise(phase_of_time: Callable[[np.ndarray], np.ndarray], n: int, sr: float,
                amplitude: float, fade_s: float) -> np.ndarray:
    """``amplitude * sin(phase(t))`` as float32, a million samples at a time (the float64
    phase of a 3-minute signal would otherwise need hundreds of MB)."""
    out = np.empty(n, np.float32)
    block = 1 << 20
    for a in range(0, n, block):
        t = np.arange(a, min(n, a + block)) / float(sr)
        out[a:a + block] = amplitude * np.sin(phase_of_time(t))
    return _fade(out, sr, fade_s)


def tone(freq_hz: float, *, duration_s: float, sr: float, amplitude: float = 1.0,
         phase_rad: float = 0.0, fade_s: float = 0.0) -> np.ndarray:
    """A sine tone ``amplitude * sin(2 pi f t + phase)``.

    Parameters
    ----------
    freq_hz : float
        Frequency in Hz.
    duration_s : float
        Length in seconds.
    sr : float
        Sample rate in Hz.
    amplitude : float
        Peak value.
    phase_rad : float
        Phase at ``t = 0`` in radians.
    fade_s : float
        Raised-cosine fade in/out in seconds (0: none).

    Returns
    -------
    numpy.ndarray
        Shape ``(round(duration_s * sr),)``, float32.
    """
    return _synthesise(lambda t: TWO_PI * freq_hz * t + phase_rad,
                       int(round(duration_s * sr)), sr, amplitude, fade_s)


def sweep(f_start_hz: float, f_stop_hz: float, *, duration_s: float, sr: float,
          amplitude: float = 1.0, fade_s: float = 0.01) -> np.ndarray:
    """A logarithmic (exponential) sine sweep from ``f_start_hz`` to ``f_stop_hz``.

    The instantaneous frequency is ``f_start * (f_stop / f_start) ** (t / duration_s)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(round(duration_s * sr),)``, float32.
    """
    if not (0 < f_start_hz and 0 < f_stop_hz):
        raise ParameterError("sweep frequencies must be positive; got "
                             f"{f_start_hz} and {f_stop_hz} Hz")
    rate = math.log(f_stop_hz / f_start_hz) / duration_s
    if abs(rate) < 1e-12:
        return tone(f_start_hz, duration_s=duration_s, sr=sr, amplitude=amplitude, fade_s=fade_s)
    return _synthesise(lambda t: TWO_PI * f_start_hz * np.expm1(rate * t) / rate,
                       int(round(duration_s * sr)), sr, amplitude, fade_s)


# =====================================================================================
# Settings and presets
# =====================================================================================

@dataclass(frozen=True)
class RenderSettings:
    """Every option of the renderer. Defaults: a clean 7-inch bone record, transmission scan.

    Cutting
    -------
    recording_curve : str
        Curve from :mod:`groovescan.eq` turning audio into groove velocity ("blumlein":
        300 Hz turnover, flat treble; "riaa" for LPs; "flat": audio is velocity).
    level : float or None
        Groove velocity in m/s reached by the audio's peak (``level_mode="peak"``) or RMS.
        5 cm/s peak is the reference level (8 um displacement at 1 kHz). None: the audio,
        after the curve, is taken as velocity in m/s.
    level_mode : {"peak", "rms"}
    highpass_hz : float
        Second-order high-pass of the cut velocity (Hz): keeps the groove from drifting.
    upsample : int
        The displacement is upsampled by this factor (polyphase FIR) before pixels read it
        by linear interpolation; x4 keeps the interpolation loss below 2 % at 10 kHz.
    lead_in_s, lead_out_s : float
        Silent groove before and after the audio (s).

    Spiral
    ------
    rpm : float
        Turntable speed of the cutting lathe.
    disc_diameter_mm : float
        Nominal disc diameter (mm); the scissor-cut outline wobbles around it.
    r_start_mm : float or None
        Radius where the groove starts (mm); None: 5 mm inside the disc edge.
    pitch_mm : float
        Radial advance per turn (mm).
    pitch_variation : float
        Relative standard deviation of a slow random pitch change (home lathe feed), 0: none.
    lead_in_turns, lead_in_pitch_mm : float
        A lead-in whose pitch starts at ``lead_in_pitch_mm`` and decays smoothly to the
        normal pitch over ``lead_in_turns`` (0 disables).
    lead_out_turns, lead_out_pitch_mm : float
        Optional fast lead-out spiral after the last silence (0 disables).
    locked_groove : bool
        A concentric circle where the lead-out ends (needs ``lead_out_turns > 0``).
    band_breaks_s : tuple of float
        Groove times (s) where one turn at ``band_break_pitch_mm`` separates two bands
        (tracks) of a side, as on an LP. The audio is cut on as given: make it silent
        there for a real band spacer.
    band_break_pitch_mm : float
        Pitch of the band spacer turns (mm).
    theta_start : float or None
        Angle of the groove start in the *final* image (rad, conventions.md); None: random.
    mirrored : bool
        Scan made from the back: columns flipped, spiral direction +1.

    Groove cross-section
    --------------------
    groove_width_mm : float
        Width at the top of the groove (mm).
    groove_bottom_mm : float
        Width of the flat, rounded bottom that passes light like the land (mm).
    wall_transmission, bottom_transmission : float
        Fraction of light passed by the walls (refracted away) and the bottom (transmission).
    wall_contrast_variation : float
        Relative standard deviation of a smooth random change of wall contrast over the disc.
    wall_asymmetry : float
        Contrast difference of the inner and outer walls that turns with the angle to the
        scanner lamp (reflective scans; 0: none).

    Medium
    ------
    mode : {"transmission", "reflective"}
        Transmission: walls dark ("dark" polarity). Reflective: walls bright ("bright").
    film_anatomy : {"random", "ribs", "skull", "none"}
        X-ray picture behind the grooves (transmission only).
    od_range : (float, float)
        Optical density of the film from bone (light) to unexposed air (dark).
    land_reflectance, wall_reflectance, lid_reflectance : float
        Reflective mode: land, walls and the scanner lid behind/around the disc.
    label_radius_mm : float or None
        Paper label (reflective records), None: no label.
    label_reflectance : float
    outline_offset_mm : float
        Distance of the outline's centre from the spiral centre (mm).
    outline_irregularity_mm : float
        Scissor-cut wobble of the outline (mm); 0 gives a circle.
    hole_radius_mm, hole_offset_mm : float
        Centre hole radius (mm) and distance of its centre from the spiral centre (mm).
    margin_mm : float
        Empty scanner bed around the disc (mm).

    Damage (all off by default)
    ---------------------------
    dust_per_cm2 : float
        Dust specks per cm^2 of disc, 3-40 um radius.
    hairs, scratches, smudges, opaque_patches : int
        Numbers of hairs (curved fibres), scratches (long thin lines across grooves),
        smudges (soft blotches) and opaque patches (groove invisible; listed as gaps).
    crack : bool
        Disc broken in two and laid back with a small shift and rotation of one piece.
    crack_scale : float
        Multiplies the crack's gap (0.05-0.3 mm), slide along it (up to 0.3 mm) and
        turn (up to 0.4 degrees): its severity.

    Scanner
    -------
    dpi : float
        Nominal resolution written to the file.
    psf_sigma_um : float
        Gaussian optics blur (um); the pixel's own area is added on top.
    px_scale_error : (float, float)
        Relative error of the true (row, col) pixel sizes against ``25.4 / dpi``.
    row_jitter_px : float
        Standard deviation of the slow-axis (row) position error (px), smooth over ~3 rows.
    row_gain_jitter : float
        Relative standard deviation of the per-row gain.
    illumination_falloff : float
        Relative loss of light at the left/right edges of the bed (quadratic).
    white_level : float
        Signal of bare light (transmission) or a perfect white (reflective), fraction of
        full scale.
    photons_full_scale : float or None
        Photo-electrons at full scale: shot noise is ``sqrt(signal / photons_full_scale)``
        (fractions of full scale); None: no shot noise.
    read_noise : float
        Standard deviation of the read noise, fraction of full scale.
    output_gamma : float
        Encoding of the output values: 1 is linear in light (a raw scan); 2.2 is what many
        scanners deliver at 8 bit (value = light ** (1 / 2.2)).
    bits : {8, 16}
        Quantisation depth of the image.

    The flatbed's own habits (all off by default; see :data:`PRESETS` "flatbed_a4"). The
    sensor is a row of pixels along the columns (fast axis) that moves down the rows
    (slow axis); patterns tied to it live in the *final* image (after ``mirrored``).

    bed_mm : (float, float) or None
        (height, width) of the imaged scanner bed (mm), e.g. A4 (297, 210) or US Letter
        (279.4, 215.9); the image has ``bed_mm / (25.4 / dpi)`` pixels (what the driver
        asks for), covering that many true pixel sizes. None: the disc plus ``margin_mm``.
        Outside the disc the bed shows bare light (transmission) or the lid (reflective).
    disc_at_mm : (float, float) or None
        (y, x) of the spiral centre from the bed's top-left corner in the final image (mm);
        the disc may lie partly off the bed (the image cuts it; the truth's gaps say
        "off image"). None: a random position keeping the whole disc on the bed if it
        fits, else centred. Needs ``bed_mm``.
    streak_gain : (float, float)
        RMS relative gain variation of (rows, columns): per-row gain (lamp flicker,
        electronics) makes horizontal streaks, per-column gain (PRNU, dust on the
        sensor's mirror) vertical ones, constant down the scan. Realistic 0.003-0.03.
        Half of the variance is white from line to line, half in a few wider streaks
        (smooth Gaussian profiles 2-30 px FWHM, random sign, about one per 20 mm).
    streak_offset : (float, float)
        RMS offset (dark signal) of (rows, columns), fraction of full scale, same model.
        Realistic 0.001-0.01.
    lamp_drift : float
        Peak-to-peak relative change of lamp brightness over the scan (0.01-0.1): a
        warm-up (exponential, settled within 30-80 mm of rows) plus a smooth random
        wander over 10-30 mm. The warm lamp gives full brightness (profile max 1).
    seam_gain : float
        RMS relative gain difference between the contact-image sensor's butted chips
        (0.005-0.03); each chip also has an offset (RMS ``seam_gain / 4`` of full scale),
        and each boundary a 1-2 px seam line darker by 1-3 x ``seam_gain`` with extra
        noise (RMS ``seam_gain * white_level``).
    seam_spacing_mm : float
        Chip width (mm) on the sensor; at 2400 dpi a chip is 1728 px = 18.288 mm. The
        chips start at a random phase.
    seam_shift_px : float
        RMS misregistration of each chip along the slow axis (px, 0-0.5): a chip's
        columns show the scene ``shift`` rows further down (as ``row_jitter_px``; film
        damage and glass dust ignore it, like the row jitter).
    exposure : float
        Gain on the light before output encoding (1: none); values past full scale
        clip. With ``white_level`` 0.9, 1.3 clips the bare light and the clearest film.
    unsharp_amount : float
        Unsharp-mask sharpening of the driver (0.3-1.5; 0: none):
        ``out = v + amount * (v - GaussianBlur(v, unsharp_radius_px))`` on the
        output-encoded values (after gamma, before quantisation), clipped to [0, 1].
    unsharp_radius_px : float
        Sigma of the unsharp mask's Gaussian (px, 0.5-3; at most 4).
    jpeg_quality : int or None
        The image goes through a JPEG file at this quality (85-95 realistic; needs
        ``bits=8``): :func:`render_scan` returns what the file holds. None: no JPEG,
        except that :func:`render_scan_to_file` writes ``.jpg`` files at quality 90.
    glass_dust_per_cm2 : float
        Dust on the scanner glass per cm^2 of the imaged bed (0.1-5 realistic), in focus:
        specks (5-50 um radius, log-normal) and, one in ten, curly lint fibres
        (0.3-3 mm, 8-20 um thick). They block light; on a reflective scan they also
        scatter some (they look grey on the dark lid).
    newton_rings : float
        Contrast of Newton's rings where the film touches the glass (0.02-0.15;
        transmission only): 1-3 ring systems modulating the transmitted light by
        ``1 + a cos(2 pi n) exp(-(n / n0)^2) exp(-2 pi^2 f^2 sigma^2)``, with fringe
        order ``n = rho^2 / (lambda R)`` (bright rings at ``rho = sqrt(n lambda R)``),
        lambda = 0.55 um, air-gap curvature R 1-10 m, white-light fading n0 8-15, local
        fringe frequency ``f = 2 rho / (lambda R)`` (cycles/mm) and sigma the optics and
        pixel blur (mm): fringes finer than the scanner resolves fade as in a real scan
        (no sampling of unresolved fringes at full contrast).
    focus_variation_um : float
        Extra Gaussian blur (sigma, um, 0-20) where curled film lifts off the glass,
        added in quadrature to ``psf_sigma_um``: a smooth random dome or saddle over the
        disc, 0 where it touches (about a third of it), the full value where it lifts
        most. The groove's cross-section is interpolated between tables at 8 blur levels
        (linear in variance); the wiggle is blended between its sharpest and most blurred
        versions by the same weight (exact at both ends, a mixture of two Gaussian
        blurs between); film damage takes the blur at its centre; the outline, hole
        and label edges keep the sharp blur.
    """

    # cutting
    recording_curve: str = "blumlein"
    level: float | None = 0.05
    level_mode: str = "peak"
    highpass_hz: float = 15.0
    upsample: int = 4
    lead_in_s: float = 0.5
    lead_out_s: float = 0.5
    # spiral
    rpm: float = 78.0
    disc_diameter_mm: float = 178.0
    r_start_mm: float | None = None
    pitch_mm: float = 0.22
    pitch_variation: float = 0.0
    lead_in_turns: float = 1.0
    lead_in_pitch_mm: float = 0.5
    lead_out_turns: float = 0.0
    lead_out_pitch_mm: float = 3.0
    locked_groove: bool = False
    band_breaks_s: tuple[float, ...] = ()
    band_break_pitch_mm: float = 1.0
    theta_start: float | None = None
    mirrored: bool = False
    # groove cross-section
    groove_width_mm: float = 0.12
    groove_bottom_mm: float = 0.03
    wall_transmission: float = 0.3
    bottom_transmission: float = 0.85
    wall_contrast_variation: float = 0.1
    wall_asymmetry: float = 0.0
    # medium
    mode: str = "transmission"
    film_anatomy: str = "random"
    od_range: tuple[float, float] = (0.25, 1.6)
    land_reflectance: float = 0.1
    wall_reflectance: float = 0.6
    lid_reflectance: float = 0.03
    label_radius_mm: float | None = None
    label_reflectance: float = 0.55
    outline_offset_mm: float = 1.5
    outline_irregularity_mm: float = 0.8
    hole_radius_mm: float = 3.5
    hole_offset_mm: float = 1.0
    margin_mm: float = 4.0
    # damage
    dust_per_cm2: float = 0.0
    hairs: int = 0
    scratches: int = 0
    smudges: int = 0
    opaque_patches: int = 0
    crack: bool = False
    crack_scale: float = 1.0
    # scanner
    dpi: float = 2400.0
    psf_sigma_um: float = 7.0
    px_scale_error: tuple[float, float] = (0.0, 0.0)
    row_jitter_px: float = 0.03
    row_gain_jitter: float = 0.001
    illumination_falloff: float = 0.03
    white_level: float = 0.9
    photons_full_scale: float | None = 20000.0
    read_noise: float = 3e-4
    output_gamma: float = 1.0
    bits: int = 16
    # the flatbed's habits (all off by default)
    bed_mm: tuple[float, float] | None = None
    disc_at_mm: tuple[float, float] | None = None
    streak_gain: tuple[float, float] = (0.0, 0.0)
    streak_offset: tuple[float, float] = (0.0, 0.0)
    lamp_drift: float = 0.0
    seam_gain: float = 0.0
    seam_spacing_mm: float = 18.288
    seam_shift_px: float = 0.0
    exposure: float = 1.0
    unsharp_amount: float = 0.0
    unsharp_radius_px: float = 1.0
    jpeg_quality: int | None = None
    glass_dust_per_cm2: float = 0.0
    newton_rings: float = 0.0
    focus_variation_um: float = 0.0

    @property
    def polarity(self) -> str:
        """``"dark"`` (walls darker than the land) or ``"bright"``."""
        return "dark" if self.mode == "transmission" else "bright"

    @property
    def nominal_px_mm(self) -> float:
        """Pixel size the file's dpi claims (mm)."""
        return 25.4 / self.dpi

    @property
    def true_px_mm(self) -> tuple[float, float]:
        """True (row, col) pixel sizes (mm): the nominal size with ``px_scale_error``."""
        px = self.nominal_px_mm
        return px * (1 + self.px_scale_error[0]), px * (1 + self.px_scale_error[1])

    @property
    def start_radius_mm(self) -> float:
        """Radius of the groove start (mm), resolving the ``None`` default."""
        if self.r_start_mm is not None:
            return float(self.r_start_mm)
        return self.disc_diameter_mm / 2.0 - 5.0


#: Overrides of :class:`RenderSettings` for common records.
PRESETS: dict[str, dict[str, Any]] = {
    # the defaults: a clean 7-inch bone record in transmission
    "bone": {},
    # a bone record as found: home-lathe pitch drift, dark film, dust, hairs, scratches,
    # smudges, a badly centred hole and a flatbed with unequal X/Y scales
    "bone_worn": dict(
        pitch_variation=0.03, od_range=(0.3, 2.4), dust_per_cm2=2.0, hairs=4,
        scratches=6, smudges=3, px_scale_error=(0.006, -0.002), row_jitter_px=0.08,
        wall_contrast_variation=0.25, hole_offset_mm=2.5, outline_offset_mm=2.0,
        outline_irregularity_mm=1.2,
    ),
    # a 10-inch shellac 78 scanned reflectively: round, centred, label, lead-out, locked groove
    "shellac78": dict(
        mode="reflective", film_anatomy="none", recording_curve="emi78",
        disc_diameter_mm=254.0, r_start_mm=121.0, pitch_mm=0.28, groove_width_mm=0.15,
        groove_bottom_mm=0.02, lead_in_turns=1.5, lead_in_pitch_mm=2.0, lead_out_turns=1.5,
        lead_out_pitch_mm=4.0, locked_groove=True, label_radius_mm=43.0,
        hole_radius_mm=3.6, hole_offset_mm=0.1, outline_offset_mm=0.0,
        outline_irregularity_mm=0.0, wall_asymmetry=0.3, wall_contrast_variation=0.05,
    ),
    # a 12-inch LP side at 33 1/3, RIAA, fine pitch
    "lp": dict(
        mode="reflective", film_anatomy="none", recording_curve="riaa", rpm=100.0 / 3.0,
        disc_diameter_mm=302.0, r_start_mm=146.0, pitch_mm=0.1, groove_width_mm=0.05,
        groove_bottom_mm=0.008, lead_in_turns=1.5, lead_in_pitch_mm=1.5, lead_out_turns=1.5,
        lead_out_pitch_mm=4.0, locked_groove=True, label_radius_mm=50.0, hole_radius_mm=3.62,
        hole_offset_mm=0.05, outline_offset_mm=0.0, outline_irregularity_mm=0.0,
        wall_asymmetry=0.3, wall_contrast_variation=0.05,
    ),
    # a 7-inch 45 rpm single with its large centre hole
    "single45": dict(
        mode="reflective", film_anatomy="none", recording_curve="riaa", rpm=45.0,
        disc_diameter_mm=175.0, r_start_mm=84.0, pitch_mm=0.1, groove_width_mm=0.05,
        groove_bottom_mm=0.008, lead_in_turns=1.5, lead_in_pitch_mm=1.5, lead_out_turns=1.5,
        lead_out_pitch_mm=4.0, locked_groove=True, label_radius_mm=45.0, hole_radius_mm=19.05,
        hole_offset_mm=0.05, outline_offset_mm=0.0, outline_irregularity_mm=0.0,
        wall_asymmetry=0.3, wall_contrast_variation=0.05,
    ),
    # a bone record on a consumer flatbed's whole A4 bed, as users scan them: 8-bit gamma
    # output with the driver's sharpening, streaks, chip seams, a drifting lamp, a little
    # over-exposure, dust on the glass, Newton's rings and curled film out of focus
    "flatbed_a4": dict(
        bed_mm=(297.0, 210.0), streak_gain=(0.003, 0.01), streak_offset=(0.001, 0.003),
        lamp_drift=0.03, seam_gain=0.01, seam_shift_px=0.2, exposure=1.08,
        unsharp_amount=0.6, unsharp_radius_px=1.0, glass_dust_per_cm2=0.5,
        newton_rings=0.05, focus_variation_um=8.0, output_gamma=2.2, bits=8,
    ),
}


def resolve_settings(*, preset: str | None = None, settings: RenderSettings | None = None,
                     **options: Any) -> RenderSettings:
    """Combine defaults, a preset and keyword options into checked :class:`RenderSettings`.

    Precedence: ``options`` over ``preset`` over ``settings`` (or the defaults).

    Raises
    ------
    ParameterError
        Unknown preset or option name, or a value out of its physical range.
    """
    base = settings if settings is not None else RenderSettings()
    if preset is not None:
        if preset not in PRESETS:
            raise ParameterError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        base = replace(base, **PRESETS[preset])
    names = {f.name for f in fields(RenderSettings)}
    for key in options:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else "; see RenderSettings"
            raise ParameterError(f"unknown render option {key!r}{hint}")
    resolved = replace(base, **options)
    _check_settings(resolved)
    return resolved


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ParameterError(message)


def _check_settings(s: RenderSettings) -> None:
    """Reject values outside their physical range, saying what would fix them."""
    _require(50 <= s.dpi <= 12800, f"dpi={s.dpi} is outside 50..12800")
    _require(10 <= s.rpm <= 120, f"rpm={s.rpm} is outside 10..120")
    _require(0.02 <= s.pitch_mm <= 2.0, f"pitch_mm={s.pitch_mm} is outside 0.02..2 mm")
    _require(0.005 <= s.groove_width_mm < s.pitch_mm,
             f"groove_width_mm={s.groove_width_mm} must be positive and below "
             f"pitch_mm={s.pitch_mm}, or every groove overcuts its neighbour")
    _require(0 <= s.groove_bottom_mm < s.groove_width_mm,
             "groove_bottom_mm must be in [0, groove_width_mm)")
    _require(s.mode in ("transmission", "reflective"),
             f"mode={s.mode!r}; use 'transmission' or 'reflective'")
    _require(s.film_anatomy in ("random", "ribs", "skull", "none"),
             f"film_anatomy={s.film_anatomy!r}; use 'random', 'ribs', 'skull' or 'none'")
    _require(s.level_mode in ("peak", "rms"), f"level_mode={s.level_mode!r}; use 'peak' or 'rms'")
    _require(s.level is None or 0 < s.level <= 1.0,
             f"level={s.level} m/s: use a groove velocity in (0, 1] m/s (0.05 is reference)")
    _require(s.bits in (8, 16), f"bits={s.bits}; use 8 or 16")
    _require(isinstance(s.upsample, int) and 1 <= s.upsample <= 16, "upsample must be an int 1..16")
    _require(0 < s.highpass_hz < 200, f"highpass_hz={s.highpass_hz} is outside (0, 200) Hz")
    _require(s.lead_in_s >= 0 and s.lead_out_s >= 0, "lead_in_s and lead_out_s must be >= 0")
    _require(s.lead_in_turns >= 0 and s.lead_out_turns >= 0, "lead-in/out turns must be >= 0")
    _require(s.lead_in_pitch_mm > 0 and s.lead_out_pitch_mm > 0, "lead-in/out pitch must be > 0")
    _require(all(t >= 0 for t in s.band_breaks_s) and 0.02 <= s.band_break_pitch_mm <= 5.0,
             "band_breaks_s must be times >= 0 and band_break_pitch_mm within 0.02..5 mm")
    _require(not s.locked_groove or s.lead_out_turns > 0,
             "locked_groove needs a lead-out spiral: set lead_out_turns > 0")
    _require(0 <= s.pitch_variation <= 0.2, "pitch_variation must be in [0, 0.2]")
    _require(0 < s.wall_transmission <= 1 and 0 < s.bottom_transmission <= 1,
             "wall/bottom transmission must be in (0, 1]")
    _require(0 <= s.wall_contrast_variation <= 1 and 0 <= s.wall_asymmetry < 1,
             "wall_contrast_variation in [0, 1], wall_asymmetry in [0, 1)")
    lo, hi = s.od_range
    _require(0 <= lo <= hi <= 5, f"od_range={s.od_range}: need 0 <= low <= high <= 5")
    _require(0 <= s.psf_sigma_um <= 100, f"psf_sigma_um={s.psf_sigma_um} is outside 0..100 um")
    _require(all(abs(e) <= 0.05 for e in s.px_scale_error),
             f"px_scale_error={s.px_scale_error}: flatbeds err by < 2 %, allowed |e| <= 0.05")
    _require(s.row_jitter_px >= 0 and s.row_gain_jitter >= 0 and s.read_noise >= 0,
             "jitter and noise levels must be >= 0")
    _require(s.photons_full_scale is None or s.photons_full_scale > 0,
             "photons_full_scale must be positive or None (no shot noise)")
    _require(0 < s.white_level <= 1, "white_level must be in (0, 1]")
    _require(0.5 <= s.output_gamma <= 3, f"output_gamma={s.output_gamma} is outside 0.5..3")
    _require(s.disc_diameter_mm > 10, "disc_diameter_mm must exceed 10 mm")
    _require(0 < s.hole_radius_mm < s.disc_diameter_mm / 4, "hole_radius_mm is out of range")
    _require(s.hole_offset_mm >= 0 and s.outline_offset_mm >= 0 and
             s.outline_irregularity_mm >= 0 and s.margin_mm >= 0,
             "offsets, irregularity and margin must be >= 0")
    _require(s.start_radius_mm + s.outline_offset_mm < s.disc_diameter_mm / 2,
             f"the groove start r={s.start_radius_mm} mm is off the disc; lower r_start_mm")
    _require(0 < s.crack_scale <= 5, f"crack_scale={s.crack_scale} is outside (0, 5]")
    _require(s.dust_per_cm2 >= 0 and min(s.hairs, s.scratches, s.smudges, s.opaque_patches) >= 0,
             "damage counts must be >= 0")
    _check_flatbed(s)


def _pair(value, name: str) -> tuple[float, float]:
    """Two finite numbers, or a ParameterError naming the option."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r}: give two numbers, (rows, columns) or "
                             "(height, width)") from None
    _require(math.isfinite(a) and math.isfinite(b), f"{name}={value!r} must be finite")
    return a, b


def _check_flatbed(s: RenderSettings) -> None:
    """The scanner's habits: ranges, and the options they need."""
    if s.bed_mm is not None:
        height, width = _pair(s.bed_mm, "bed_mm")
        _require(20 <= height <= 1000 and 20 <= width <= 1000,
                 f"bed_mm={s.bed_mm}: give the bed's (height, width) in mm, each 20..1000 "
                 "(A4 is (297, 210))")
    if s.disc_at_mm is not None:
        _require(s.bed_mm is not None, "disc_at_mm places the disc on the bed: set bed_mm too")
        y, x = _pair(s.disc_at_mm, "disc_at_mm")
        height, width = _pair(s.bed_mm, "bed_mm")
        reach = s.disc_diameter_mm / 2 + s.outline_offset_mm
        _require(-reach < y < height + reach and -reach < x < width + reach,
                 f"disc_at_mm={s.disc_at_mm} puts the whole disc off the {height} x {width} mm "
                 "bed; give the spiral centre's (y, x) from the bed's top-left corner")
    gains, offsets = _pair(s.streak_gain, "streak_gain"), _pair(s.streak_offset, "streak_offset")
    _require(all(0 <= g <= 0.2 for g in gains),
             f"streak_gain={s.streak_gain}: RMS relative gains of (rows, columns) in 0..0.2 "
             "(real scanners 0.003-0.03)")
    _require(all(0 <= o <= 0.1 for o in offsets),
             f"streak_offset={s.streak_offset}: RMS offsets of (rows, columns) in 0..0.1 of "
             "full scale (real scanners 0.001-0.01)")
    _require(0 <= s.lamp_drift <= 0.5, f"lamp_drift={s.lamp_drift} is outside 0..0.5 "
             "(a peak relative change; real lamps 0.01-0.1)")
    _require(0 <= s.seam_gain <= 0.2, f"seam_gain={s.seam_gain} is outside 0..0.2 "
             "(real sensors 0.005-0.03)")
    _require(8 * s.nominal_px_mm <= s.seam_spacing_mm <= 1000,
             f"seam_spacing_mm={s.seam_spacing_mm}: chips must be at least 8 px and at most "
             "1000 mm wide (a 2400 dpi chip is 18.288 mm)")
    _require(0 <= s.seam_shift_px <= 3, f"seam_shift_px={s.seam_shift_px} is outside 0..3 px "
             "(real chips 0-0.5)")
    _require(0 < s.exposure <= 4, f"exposure={s.exposure} is outside (0, 4]")
    _require(0 <= s.unsharp_amount <= 5, f"unsharp_amount={s.unsharp_amount} is outside 0..5 "
             "(drivers use 0.3-1.5)")
    _require(0.3 <= s.unsharp_radius_px <= 4, f"unsharp_radius_px={s.unsharp_radius_px} is "
             "outside 0.3..4 px (drivers use 0.5-3)")
    if s.jpeg_quality is not None:
        _require(isinstance(s.jpeg_quality, (int, np.integer)) and 1 <= s.jpeg_quality <= 100,
                 f"jpeg_quality={s.jpeg_quality!r}: use an int 1..100 (85-95 realistic)")
        _require(s.bits == 8, f"jpeg_quality needs bits=8 (JPEG holds 8-bit images); "
                 f"got bits={s.bits}")
    _require(0 <= s.glass_dust_per_cm2 <= 100,
             f"glass_dust_per_cm2={s.glass_dust_per_cm2} is outside 0..100")
    _require(0 <= s.newton_rings <= 0.5, f"newton_rings={s.newton_rings} is outside 0..0.5 "
             "(a fringe contrast; real rings 0.02-0.15)")
    _require(s.newton_rings == 0 or s.mode == "transmission",
             "newton_rings needs mode='transmission': the rings form in the air gap between "
             "film and glass that the lid's light passes; set newton_rings=0 for reflective")
    _require(0 <= s.focus_variation_um <= 50,
             f"focus_variation_um={s.focus_variation_um} is outside 0..50 um")


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per component, so turning one effect on or off
    never changes another."""
    return np.random.default_rng([int(seed), zlib.crc32(stream.encode())])


def _smooth_noise(shape: tuple[int, ...], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise normalised to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return noise / max(noise.std(), 1e-12)


def _erfc_cover(distance: np.ndarray, sigma: float) -> np.ndarray:
    """Blurred coverage of a half-plane: 1 well inside (distance < 0), 0 well outside."""
    return 0.5 * special.erfc(distance / (math.sqrt(2.0) * sigma))


# =====================================================================================
# Cutting: audio -> velocity -> displacement
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Cut:
    velocity: np.ndarray       # m/s, float32, groove time from phi = 0
    displacement: np.ndarray   # m, float32
    offset_samples: int        # audio sample 0 sits at this groove sample


def _cut_groove(audio: np.ndarray, sr: float, s: RenderSettings) -> _Cut:
    """Recording curve, level, high-pass and integration, in one spectral pass.

    Uses :func:`groovescan.eq.recording_response` (the analog response that
    ``apply_curve(..., inverse=True)`` applies) on one single-precision FFT, which keeps
    the peak memory of a 3-minute side near 100 MB. The high-pass is a second-order
    Butterworth ``s^2 / (s^2 + sqrt(2) w0 s + w0^2)``; the displacement uses ``1 / s`` of
    the same, ``s / (s^2 + ...)``, which is finite at DC, so nothing drifts.
    """
    lead_in = int(round(s.lead_in_s * sr))
    n = lead_in + audio.size + int(round(s.lead_out_s * sr))
    settle = int(math.ceil(sr * max(0.25, 10.0 / s.highpass_hz)))  # filter tails, no wrap
    nfft = sp_fft.next_fast_len(n + settle, real=True)
    padded = np.zeros(nfft, np.float32)
    padded[lead_in:lead_in + audio.size] = audio
    spectrum = sp_fft.rfft(padded)
    del padded
    curve = get_curve(s.recording_curve)
    _shape_spectrum(spectrum, sr, nfft, lambda f, jw: recording_response(curve, f))
    # the level refers to the curve's output, before the high-pass: a tone at 5 cm/s
    # stays at 5 cm/s even where the high-pass rings at its onset
    scale = 1.0 if s.level is None else _level_scale(
        sp_fft.irfft(spectrum, nfft)[lead_in:lead_in + audio.size], s)
    w0 = TWO_PI * s.highpass_hz
    _shape_spectrum(spectrum, sr, nfft,
                    lambda f, jw: scale * jw / (jw * jw + math.sqrt(2.0) * w0 * jw + w0 * w0))
    displacement = sp_fft.irfft(spectrum, nfft)[:n].astype(np.float32)
    _shape_spectrum(spectrum, sr, nfft, lambda f, jw: jw)     # d/dt: displacement -> velocity
    velocity = sp_fft.irfft(spectrum, nfft)[:n].astype(np.float32)
    del spectrum
    return _Cut(velocity, displacement, lead_in)


def _shape_spectrum(spectrum: np.ndarray, sr: float, nfft: int, response: Callable) -> None:
    """Multiply an rfft ``spectrum`` in place by ``response(freqs_hz, j*omega)``, a block
    of bins at a time (a whole 3-minute response in complex128 would need ~300 MB)."""
    block = 1 << 18
    for a in range(0, spectrum.size, block):
        freqs = np.arange(a, min(spectrum.size, a + block)) * (sr / nfft)
        spectrum[a:a + block] *= response(freqs, 2j * np.pi * freqs).astype(np.complex64)


def _level_scale(velocity: np.ndarray, s: RenderSettings) -> float:
    """Factor that brings the velocity's peak (or RMS over the audio) to ``s.level`` m/s."""
    if s.level is None:
        return 1.0
    measure = (float(np.max(np.abs(velocity))) if s.level_mode == "peak"
               else float(np.sqrt(np.mean(np.square(velocity, dtype=np.float64)))))
    return s.level / measure if measure > 0 else 0.0


def _lerp_uniform(table: np.ndarray, x0: float, step: float, x: np.ndarray) -> np.ndarray:
    """Linear interpolation in a table sampled at ``x0 + k * step``, clamped at both ends."""
    pos = (np.asarray(x, dtype=np.float64) - x0) * (1.0 / step)
    pos = np.clip(pos, 0.0, table.size - 1.0, out=pos if pos.ndim else None)
    i = np.minimum(pos.astype(np.intp), table.size - 2)
    frac = pos - i
    low = table[i]
    return low + (table[i + 1] - low) * frac


# =====================================================================================
# Spiral: undisplaced radius R0(phi) and its inverse
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Spiral:
    """Undisplaced groove radius ``R0(phi)`` (mm) and its inverse, as uniform tables."""

    phi_step: float
    radius_mm: np.ndarray           # R0 at phi = k * phi_step, float64
    phi_end: float                  # end of the modulated groove (rad)
    phi_max: float                  # end of the cut spiral, lead-out included (rad)
    locked_radius_mm: float | None
    inverse_r0_mm: float
    inverse_step_mm: float
    inverse_phi: np.ndarray         # phi where R0 = r, on a uniform radius grid

    def radius(self, phi: np.ndarray) -> np.ndarray:
        return _lerp_uniform(self.radius_mm, 0.0, self.phi_step, phi)

    def radius_on_turn(self, cell: np.ndarray, frac: np.ndarray, turn: np.ndarray) -> np.ndarray:
        """``R0(phi_frac + 2 pi turn)`` for ``phi_frac = (cell + frac) * phi_step``.

        A turn is a whole number of table steps, so all turns at one angle share the
        same cell fraction: each costs two reads instead of a full interpolation.
        """
        i = cell + turn * _SPIRAL_STEPS_PER_TURN
        np.clip(i, 0, self.radius_mm.size - 2, out=i)
        low = self.radius_mm[i]
        return low + (self.radius_mm[i + 1] - low) * frac

    def phi_estimate(self, r: np.ndarray) -> np.ndarray:
        return _lerp_uniform(self.inverse_phi, self.inverse_r0_mm, self.inverse_step_mm, r)


def _pitch_drift(phi: np.ndarray, variation: float, rng: np.random.Generator) -> np.ndarray:
    """Slow relative pitch change of a home lathe's feed: four sines, 3-40 turns long."""
    periods = TWO_PI * rng.uniform(3.0, 40.0, 4)
    phases = rng.uniform(0.0, TWO_PI, 4)
    drift = sum(np.sin(phi / p + ph) for p, ph in zip(periods, phases))
    return drift * (variation / math.sqrt(2.0))       # four unit sines have std sqrt(2)


def _raised_cosine_step(x: np.ndarray) -> np.ndarray:
    """0 for x <= 0, 1 for x >= 1, a smooth half cosine between."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _pitch_profile(phi: np.ndarray, s: RenderSettings, phi_end: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Pitch (mm per turn) along the groove: normal, widened on the lead-in and the band
    spacers, fast lead-out."""
    pitch = s.pitch_mm * (1.0 + _pitch_drift(phi, s.pitch_variation, rng))
    if s.lead_in_turns > 0:
        fade = 1.0 - _raised_cosine_step(phi / (TWO_PI * s.lead_in_turns))
        pitch += (s.lead_in_pitch_mm - s.pitch_mm) * fade
    omega = TWO_PI * s.rpm / 60.0
    for t_break in s.band_breaks_s:
        # one turn of spacer: a quarter-turn ramp up, half a turn wide, a quarter down
        start = t_break * omega
        spacer = (_raised_cosine_step((phi - start) / (TWO_PI * 0.25))
                  - _raised_cosine_step((phi - start - TWO_PI * 0.75) / (TWO_PI * 0.25)))
        pitch = pitch * (1.0 - spacer) + s.band_break_pitch_mm * spacer
    if s.lead_out_turns > 0:
        ramp = _raised_cosine_step((phi - phi_end) / (TWO_PI * 0.25))   # quarter-turn ramp
        pitch = pitch * (1.0 - ramp) + s.lead_out_pitch_mm * ramp
    return np.maximum(pitch, 0.3 * s.pitch_mm)


def _inner_limit_mm(s: RenderSettings) -> float:
    """Smallest radius the groove may reach: clear of the hole and the label by 1 mm."""
    return max(s.hole_radius_mm * 1.15 + s.hole_offset_mm, s.label_radius_mm or 0.0) + 1.0


def _build_spiral(s: RenderSettings, phi_end: float, rng: np.random.Generator) -> _Spiral:
    phi_max = phi_end + TWO_PI * s.lead_out_turns
    step = TWO_PI / _SPIRAL_STEPS_PER_TURN
    phi = np.arange(int(math.ceil(phi_max / step)) + 2) * step
    pitch = _pitch_profile(phi, s, phi_end, rng)
    advance = np.concatenate([[0.0], np.cumsum(0.5 * (pitch[1:] + pitch[:-1]))]) * step / TWO_PI
    radius = s.start_radius_mm - advance
    r_last = float(np.interp(phi_max, phi, radius))
    if r_last < _inner_limit_mm(s):
        raise ParameterError(
            f"the groove needs {phi_max / TWO_PI:.0f} turns and would end at r={r_last:.1f} mm, "
            f"inside the hole/label (limit {_inner_limit_mm(s):.1f} mm); shorten the audio, "
            "lower pitch_mm, or raise r_start_mm / disc_diameter_mm")
    inv_step = 0.005
    inv_r0 = float(radius.min()) - 1.0
    r_grid = inv_r0 + inv_step * np.arange(int((radius.max() + 1.0 - inv_r0) / inv_step) + 2)
    inverse_phi = np.interp(r_grid, radius[::-1], phi[::-1])
    return _Spiral(step, radius, phi_end, phi_max, r_last if s.locked_groove else None,
                   inv_r0, inv_step, inverse_phi)


# =====================================================================================
# The wiggle as the image shows it
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Wiggle:
    """Displacement (mm) upsampled and blurred along the groove, indexed by phi."""

    samples_mm: np.ndarray          # float32; zero past the end of the cut
    per_radian: float               # samples per radian of phi

    def at(self, phi: np.ndarray) -> np.ndarray:
        return _lerp_uniform(self.samples_mm, 0.0, 1.0 / self.per_radian, phi)


def _build_wiggle(cut: _Cut, sr: float, s: RenderSettings, spiral: _Spiral,
                  sigma_along_mm: float, chunk: int = 1 << 14) -> _Wiggle:
    """Upsample the displacement (polyphase FIR) and blur it along the groove.

    A pixel sees the groove averaged over its footprint and the PSF *along* the groove
    too; for a small wiggle that is a Gaussian blur of ``d`` over ``sigma_along_mm`` of
    groove length. The groove speed, hence the blur in samples, changes slowly with
    radius, so each chunk of ``chunk`` input samples (~0.4 s) uses its own sigma. Chunks
    overlap by more than the FIR and the blur reach, so the seams are exact; memory is the
    output (4 bytes x upsample per sample) plus one chunk.
    """
    up = s.upsample
    rate = sr * up
    omega = TWO_PI * s.rpm / 60.0
    d_m = cut.displacement
    n = d_m.size
    out = np.zeros(n * up + 2, np.float32)          # two zeros: "no wiggle" past the end
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        phi_mid = 0.5 * (a + b) / sr * omega
        speed_mm_s = omega * float(spiral.radius(np.array([phi_mid]))[0])
        sigma = sigma_along_mm / speed_mm_s * rate          # in upsampled samples
        margin = 64 + int(4 * sigma / up) + 2                # input samples
        lo, hi = max(0, a - margin), min(n, b + margin)
        piece = d_m[lo:hi].astype(np.float64) * 1e3          # m -> mm
        if up > 1:
            piece = signal.resample_poly(piece, up, 1)
        if sigma > 0:
            piece = ndimage.gaussian_filter1d(piece, sigma, mode="constant", truncate=4.0)
        out[a * up:b * up] = piece[(a - lo) * up:(b - lo) * up]
    return _Wiggle(out, rate / omega)


# =====================================================================================
# Groove cross-section as a pixel sees it
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _CrossSection:
    """Groove shading against lateral offset ``u`` (mm) for each pixel orientation.

    Values are darkening (transmission: 1 - transmitted fraction) or wall brightness
    (reflective: 0 land, 1 wall), convolved with the PSF and with the projection of the
    pixel onto the radial direction. Flattened ``(orientation, u)`` tables; ``inner`` and
    ``outer`` are the halves u < 0 and u > 0 (they sum to ``both``).
    """

    u0_mm: float
    step_mm: float
    n_u: int
    both: np.ndarray
    inner: np.ndarray
    outer: np.ndarray
    levels: int = 1                  # blur levels (focus variation), level-major tables
    level_stride: int = 0            # table entries per level

    def lookup(self, table: np.ndarray, u: np.ndarray, orientation: np.ndarray,
               level: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Shading at offsets ``u`` (mm); ``level`` from :meth:`level_of` blends two blur
        levels (None: the only, sharpest, one)."""
        pos = (u - self.u0_mm) * (1.0 / self.step_mm)
        np.clip(pos, 0.0, self.n_u - 1.001, out=pos)
        i = pos.astype(np.intp)
        frac = (pos - i).astype(np.float32)
        i += orientation * self.n_u
        if level is None:
            low = table[i]
            return low + (table[i + 1] - low) * frac
        offset, weight = level
        i += offset
        low = table[i]
        sharper = low + (table[i + 1] - low) * frac
        i += self.level_stride
        low = table[i]
        blurrier = low + (table[i + 1] - low) * frac
        return sharper + (blurrier - sharper) * weight

    def level_of(self, variance_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table offset and blend weight for extra blur variance as a fraction (0..1) of
        the largest: the levels are evenly spaced in variance."""
        pos = variance_weight * np.float32(self.levels - 1)
        k = np.minimum(pos.astype(np.intp), self.levels - 2)
        return k * self.level_stride, (pos - k).astype(np.float32)


def _orientation_index(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Bucket of the radial direction between +col (0) and +row (last): the pixel
    footprint across the groove depends on it (the X and Y pixel sizes may differ)."""
    ax, ay = np.abs(dx), np.abs(dy)
    q = ay / np.maximum(ax + ay, 1e-12)
    return np.rint(q * (_ORIENTATIONS - 1)).astype(np.intp)


def _box_kernel(width: float, step: float) -> np.ndarray:
    """Unit-area box of ``width`` sampled at ``step``, with fractional end cells."""
    half = 0.5 * width
    m = int(math.ceil(half / step)) + 1
    x = np.arange(-m, m + 1) * step
    overlap = np.clip(np.minimum(x + step / 2, half) - np.maximum(x - step / 2, -half), 0, None)
    if overlap.sum() <= 0:
        return np.ones(1)
    return overlap / overlap.sum()


def _gauss_kernel(sigma: float, step: float) -> np.ndarray:
    if sigma < step:
        return np.ones(1)
    x = np.arange(-int(math.ceil(4 * sigma / step)), int(math.ceil(4 * sigma / step)) + 1) * step
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _unblurred_profile(u: np.ndarray, s: RenderSettings) -> np.ndarray:
    """Sharp cross-section: V walls from the top edge down to a rounded bottom.

    The walls tilt the light out of the scanner's acceptance; the rounded bottom passes it
    where its slope is small, with a soft onset (30 % of its width) as the slope grows.
    """
    a = np.abs(u)
    half_bottom = 0.5 * s.groove_bottom_mm
    onset = max(0.3 * s.groove_bottom_mm, 1e-6)
    wall = _raised_cosine_step((a - half_bottom + onset / 2) / onset)
    inside = (a < 0.5 * s.groove_width_mm).astype(np.float64)
    if s.mode == "transmission":
        dark_wall, dark_bottom = 1 - s.wall_transmission, 1 - s.bottom_transmission
        return inside * (dark_wall * wall + dark_bottom * (1 - wall))
    return inside * wall


def _blur_levels_mm(s: RenderSettings) -> list[float]:
    """Optics blur sigmas (mm) of the cross-section tables: the PSF alone, or with focus
    variation ``_FOCUS_LEVELS`` levels evenly spaced in variance up to the largest."""
    sigma_psf = s.psf_sigma_um * 1e-3
    if s.focus_variation_um == 0:
        return [sigma_psf]
    extra2 = (s.focus_variation_um * 1e-3) ** 2
    return [math.sqrt(sigma_psf ** 2 + extra2 * k / (_FOCUS_LEVELS - 1))
            for k in range(_FOCUS_LEVELS)]


def _build_cross_section(s: RenderSettings, px_row: float, px_col: float) -> _CrossSection:
    step = _TABLE_STEP_MM
    sigmas = _blur_levels_mm(s)
    half = 0.5 * s.groove_width_mm + 5 * sigmas[-1] + max(px_row, px_col) + 10 * step
    n_u = 2 * int(math.ceil(half / step)) + 1
    u = (np.arange(n_u) - n_u // 2) * step
    sharp = _unblurred_profile(u, s)
    inner_sharp = sharp * np.where(u < 0, 1.0, np.where(u == 0, 0.5, 0.0))
    outer_sharp = sharp - inner_sharp
    # one level: np.convolve as ever; eight levels of wide kernels: FFT, ten times faster
    convolve = np.convolve if len(sigmas) == 1 else signal.fftconvolve
    tables = {"inner": [], "outer": []}
    for sigma in sigmas:
        psf = _gauss_kernel(sigma, step)
        for k in range(_ORIENTATIONS):
            q = k / (_ORIENTATIONS - 1)
            angle = math.atan2(q, 1 - q)
            kernel = np.convolve(np.convolve(psf, _box_kernel(px_col * math.cos(angle), step)),
                                 _box_kernel(px_row * math.sin(angle), step))
            for name, prof in (("inner", inner_sharp), ("outer", outer_sharp)):
                blurred = convolve(prof, kernel, mode="same")
                blurred[[0, -1]] = 0.0          # clamped lookups past the ends read "no groove"
                tables[name].append(blurred)
    inner = np.concatenate(tables["inner"] + [np.zeros(1)]).astype(np.float32)
    outer = np.concatenate(tables["outer"] + [np.zeros(1)]).astype(np.float32)
    return _CrossSection(float(u[0]), step, n_u, inner + outer, inner, outer,
                         len(sigmas), _ORIENTATIONS * n_u)


# =====================================================================================
# The disc: outline, hole, crack
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Outline:
    """Scissor-cut outline: a star-shaped polygon about ``centre`` (disc frame, mm)."""

    centre: tuple[float, float]      # (x, y) mm from the spiral centre
    vertex_angle: np.ndarray         # sorted, rad
    vertices: np.ndarray             # (n, 2) x, y relative to the centre
    normal: np.ndarray               # (n, 2) outward unit normal of edge i -> i + 1
    offset: np.ndarray               # (n,) edge line: normal . p = offset
    r_inner: float                   # every point closer than this is inside
    r_outer: float                   # every point farther than this is outside

    def film_fraction(self, x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
        """Blurred fraction of film at disc-frame points (mm)."""
        px, py = x - self.centre[0], y - self.centre[1]
        rho2 = px * px + py * py
        frac = np.where(rho2 < (self.r_outer + 5 * sigma) ** 2, 1.0, 0.0).astype(np.float32)
        edge = np.flatnonzero((rho2 > (self.r_inner - 5 * sigma) ** 2) & (frac > 0))
        if edge.size:
            ex, ey = px.ravel()[edge], py.ravel()[edge]
            side = np.searchsorted(self.vertex_angle, np.arctan2(ey, ex), side="right") - 1
            distance = ex * self.normal[side, 0] + ey * self.normal[side, 1] - self.offset[side]
            frac.ravel()[edge] = _erfc_cover(distance, sigma)
        return frac


def _make_outline(s: RenderSettings, rng: np.random.Generator) -> _Outline:
    radius = s.disc_diameter_mm / 2.0
    direction = rng.uniform(0, TWO_PI)
    centre = (s.outline_offset_mm * math.cos(direction), s.outline_offset_mm * math.sin(direction))
    if s.outline_irregularity_mm > 0:       # a dozen or two straight-ish scissor cuts
        n = int(rng.integers(14, 23))
        angles = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * TWO_PI / n
        wobble = sum(rng.normal(0, 0.5) * np.cos(k * angles + rng.uniform(0, TWO_PI))
                     for k in (2, 3, 4))
        radii = radius + s.outline_irregularity_mm * (wobble + rng.normal(0, 0.4, n))
    else:                                   # a pressed disc: a 720-gon is a circle here
        n = 720
        angles = np.arange(n) * TWO_PI / n
        radii = np.full(n, radius)
    angles = np.mod(angles + math.pi, TWO_PI) - math.pi
    order = np.argsort(angles)
    angles, radii = angles[order], radii[order]
    verts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    edge = np.roll(verts, -1, axis=0) - verts
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.sign(np.sum(normal * verts, axis=1))[:, None]      # point outwards
    offset = np.sum(normal * verts, axis=1)
    return _Outline(centre, angles, verts, normal, offset, float(offset.min()), float(radii.max()))


@dataclass(frozen=True, eq=False)
class _Hole:
    """Hand-made centre hole: a wobbly circle (disc frame, mm)."""

    centre: tuple[float, float]
    radius_mm: float
    harmonics: tuple[tuple[int, float, float], ...]      # (k, relative amplitude, phase)

    def film_fraction(self, x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
        px, py = x - self.centre[0], y - self.centre[1]
        rho2 = px * px + py * py
        frac = np.ones(rho2.shape, np.float32)
        reach = self.radius_mm * 1.3 + 5 * sigma
        near = np.flatnonzero(rho2 < reach * reach)
        if near.size:
            ex, ey = px.ravel()[near], py.ravel()[near]
            angle = np.arctan2(ey, ex)
            edge = self.radius_mm * (1 + sum(a * np.cos(k * angle + ph)
                                             for k, a, ph in self.harmonics))
            frac.ravel()[near] = _erfc_cover(edge - np.hypot(ex, ey), sigma)
        return frac


def _make_hole(s: RenderSettings, rng: np.random.Generator) -> _Hole:
    direction = rng.uniform(0, TWO_PI)
    centre = (s.hole_offset_mm * math.cos(direction), s.hole_offset_mm * math.sin(direction))
    roughness = 0.03 if s.outline_irregularity_mm > 0 else 0.0      # punched by hand or pressed
    harmonics = tuple((k, float(rng.normal(0, roughness)), float(rng.uniform(0, TWO_PI)))
                      for k in (2, 3, 5))
    return _Hole(centre, s.hole_radius_mm, harmonics)


@dataclass(frozen=True, eq=False)
class _Crack:
    """The disc broke along a ragged line; piece B (on the ``normal`` side) was laid back
    shifted by ``shift`` (mm) and rotated by ``rotation`` (rad) about ``point``."""

    point: tuple[float, float]
    normal: tuple[float, float]
    shift: tuple[float, float]
    rotation: float
    ragged: tuple[tuple[float, float, float], ...]        # (amplitude mm, wavenumber, phase)

    def edge_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of disc-frame points from the ragged crack, + on piece B."""
        rx, ry = x - self.point[0], y - self.point[1]
        nx, ny = self.normal
        along = -ny * rx + nx * ry
        rough = sum(a * np.sin(k * along + ph) for a, k, ph in self.ragged)
        return nx * rx + ny * ry - rough

    def to_disc(self, x: np.ndarray, y: np.ndarray, sigma: float):
        """Image-frame points (mm about the intact spiral centre) to disc-frame points of
        the piece lying there, and the fraction of film present (0 in the gap)."""
        c, s_ = math.cos(-self.rotation), math.sin(-self.rotation)
        rx = x - self.point[0] - self.shift[0]
        ry = y - self.point[1] - self.shift[1]
        bx = self.point[0] + c * rx - s_ * ry
        by = self.point[1] + s_ * rx + c * ry
        on_b = _erfc_cover(-self.edge_distance(bx, by), sigma)
        on_a = _erfc_cover(self.edge_distance(x, y), sigma)
        use_b = on_b > on_a                              # piece B lies on top where both are
        return (np.where(use_b, bx, x), np.where(use_b, by, y),
                np.minimum(on_a + on_b, 1.0).astype(np.float32))

    def to_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Disc-frame points to where they lie in the image frame (mm about the centre)."""
        on_b = self.edge_distance(x, y) > 0
        c, s_ = math.cos(self.rotation), math.sin(self.rotation)
        rx, ry = x - self.point[0], y - self.point[1]
        bx = self.point[0] + self.shift[0] + c * rx - s_ * ry
        by = self.point[1] + self.shift[1] + s_ * rx + c * ry
        return np.where(on_b, bx, x), np.where(on_b, by, y)


def _make_crack(s: RenderSettings, rng: np.random.Generator) -> _Crack:
    radius = s.disc_diameter_mm / 2.0
    at = rng.uniform(0, TWO_PI)
    dist = rng.uniform(0.05, 0.4) * radius
    point = (dist * math.cos(at), dist * math.sin(at))
    angle = rng.uniform(0, TWO_PI)
    normal = (math.cos(angle), math.sin(angle))
    scale = s.crack_scale
    gap, slide = scale * rng.uniform(0.05, 0.3), scale * rng.uniform(-0.3, 0.3)   # mm apart and along
    shift = (gap * normal[0] - slide * normal[1], gap * normal[1] + slide * normal[0])
    rotation = math.radians(scale * rng.uniform(-0.4, 0.4))
    ragged = tuple((float(rng.uniform(0.01, 0.06)), float(rng.uniform(0.2, 3.0)),
                    float(rng.uniform(0, TWO_PI))) for _ in range(3))
    return _Crack(point, normal, shift, rotation, ragged)


# =====================================================================================
# The film: X-ray picture, wall contrast, smudges, opaque patches on a coarse grid
# =====================================================================================

_FILM_GRID_MM = 0.2


@dataclass(frozen=True, eq=False)
class _FilmMaps:
    """Slowly varying disc-frame fields on a ``step_mm`` grid: optical density, wall
    contrast factor and opacity (1: nothing shows through), read bilinearly."""

    x0_mm: float
    y0_mm: float
    step_mm: float
    grid: np.ndarray                 # (height, width, 3) float32

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Fields at 1-D arrays of disc-frame points (mm), shape (3, n), float32.

        OpenCV's remap does the bilinear reads ten times faster than numpy gathers; the
        points are folded into rows of 1024 to stay within its 32767-pixel limit.
        """
        n = x.size
        width = 1024
        rows = -(-n // width)
        gx = np.zeros(rows * width, np.float32)
        gy = np.zeros(rows * width, np.float32)
        gx[:n] = (x - self.x0_mm) * (1.0 / self.step_mm)
        gy[:n] = (y - self.y0_mm) * (1.0 / self.step_mm)
        out = cv2.remap(self.grid, gx.reshape(rows, width), gy.reshape(rows, width),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(-1, 3)[:n].T


def _ellipse_distance(X, Y, cx, cy, a, b, angle):
    """Normalised elliptical radius (1 on the ellipse) on a grid."""
    c, s_ = math.cos(angle), math.sin(angle)
    u = (X - cx) * c + (Y - cy) * s_
    v = -(X - cx) * s_ + (Y - cy) * c
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _soft_band(distance_mm: np.ndarray, half_width_mm: float) -> np.ndarray:
    """Flat-topped band (1 inside, smooth 0 outside) of a distance field."""
    return np.exp(-(np.abs(distance_mm) / half_width_mm) ** 4)


def _body(U, V, rng) -> np.ndarray:
    """Soft tissue: 1 inside a large body outline (soft 5 mm edge), 0 in the air."""
    a, b = rng.uniform(110, 180), rng.uniform(140, 220)
    rho = _ellipse_distance(U, V, rng.uniform(-60, 60), rng.uniform(-60, 60), a, b, 0)
    return _raised_cosine_step((1 - rho) * a / 5.0)


def _ribs(U, V, rng) -> np.ndarray:
    """Attenuation of a chest: body, curved parallel ribs with denser edges, a spine."""
    att = 0.35 * _body(U, V, rng)
    bend = rng.uniform(1 / 400, 1 / 150)                 # 1/mm: ribs curve round the chest
    spacing = rng.uniform(20, 28)
    for v0 in np.arange(-150, 150, spacing) + rng.uniform(0, spacing):
        centre_line = v0 + bend * U ** 2
        dist = (V - centre_line) / np.sqrt(1 + (2 * bend * U) ** 2)
        half = rng.uniform(4, 6.5)
        att += 0.3 * _soft_band(dist, half) + 0.12 * _soft_band(np.abs(dist) - half, 1.0)
    spine_u = rng.uniform(-60, 60)
    att += 0.4 * _soft_band(U - spine_u, 13) * (0.8 + 0.2 * np.cos(TWO_PI * V / 30))
    return att


def _skull(U, V, rng) -> np.ndarray:
    """Attenuation of a skull: a thick elliptical vault, brain, orbits and a jaw arc."""
    a, b = rng.uniform(70, 85), rng.uniform(85, 100)
    cu, cv = rng.uniform(-40, 40), rng.uniform(-40, 40)
    rho = _ellipse_distance(U, V, cu, cv, a, b, 0)
    att = 0.3 * _body(U, V, rng)
    att += 0.5 * _soft_band((rho - 1) * a, rng.uniform(3, 6))
    att += 0.2 * _raised_cosine_step((1 - rho) * a / 3.0)
    for side in (-1, 1):                                  # orbits: less bone, darker
        orbit = _ellipse_distance(U, V, cu + side * 0.35 * a, cv + 0.35 * b, 17, 14, 0)
        att -= 0.2 * _raised_cosine_step((1 - orbit) * 14 / 2.0)
    jaw = _ellipse_distance(U, V, cu, cv + 0.55 * b, 0.6 * a, 0.45 * b, 0)
    att += 0.4 * _soft_band((jaw - 1) * 0.5 * a, 4) * (V > cv + 0.55 * b)
    return att


def _anatomy_density(X, Y, s: RenderSettings, rng) -> np.ndarray:
    """Optical density of the X-ray picture on the grid: bone light, air dark."""
    lo, hi = s.od_range
    if s.film_anatomy == "none":
        return np.full(X.shape, lo, np.float64)
    kind = s.film_anatomy if s.film_anatomy != "random" else ("ribs", "skull")[rng.integers(2)]
    turn = rng.uniform(0, TWO_PI)                         # the film was cut at any angle
    shift = rng.uniform(-60, 60, 2)
    U = (X - shift[0]) * math.cos(turn) + (Y - shift[1]) * math.sin(turn)
    V = -(X - shift[0]) * math.sin(turn) + (Y - shift[1]) * math.cos(turn)
    att = _ribs(U, V, rng) if kind == "ribs" else _skull(U, V, rng)
    cells_per_mm = 1.0 / _FILM_GRID_MM
    att += 0.05 * _smooth_noise(X.shape, 3.0 * cells_per_mm, rng)
    att += 0.02 * _smooth_noise(X.shape, 0.6 * cells_per_mm, rng)
    att = ndimage.gaussian_filter(np.clip(att, 0, 1), 0.4 * cells_per_mm)
    return hi - (hi - lo) * att


def _build_film_maps(s: RenderSettings, bbox_mm, spiral: _Spiral,
                     rng: np.random.Generator) -> _FilmMaps:
    """Film fields on a grid over ``bbox_mm`` = (xmin, xmax, ymin, ymax), disc frame:
    the X-ray picture, smudges (more density, less wall contrast) and opaque patches
    (paint, tape) laid over the groove band."""
    step = _FILM_GRID_MM
    xmin, xmax, ymin, ymax = bbox_mm
    w, h = int((xmax - xmin) / step) + 3, int((ymax - ymin) / step) + 3
    x = xmin - step + step * np.arange(w)
    y = ymin - step + step * np.arange(h)
    X, Y = np.meshgrid(x, y)
    density = _anatomy_density(X, Y, s, rng)
    contrast = 1.0 + s.wall_contrast_variation * _smooth_noise(X.shape, 8.0 / step, rng)
    contrast = np.clip(contrast, 0.2, None)
    radius = s.disc_diameter_mm / 2.0
    for _ in range(s.smudges):                            # fingerprints, grease: soft blotches
        r_at, at = radius * math.sqrt(rng.uniform(0.05, 0.8)), rng.uniform(0, TWO_PI)
        a, b = rng.uniform(4, 12), rng.uniform(3, 8)
        blob = np.exp(-_ellipse_distance(X, Y, r_at * math.cos(at), r_at * math.sin(at),
                                         a, b, rng.uniform(0, math.pi)) ** 2 * 2)
        blob *= np.clip(1 + 0.5 * _smooth_noise(X.shape, 0.8 / step, rng), 0, None)
        density = density + rng.uniform(0.15, 0.45) * blob
        contrast = contrast * (1 - 0.4 * np.clip(blob, 0, 1))
    opacity = np.zeros_like(X)
    r_in, r_out = float(spiral.radius_mm[-1]), float(spiral.radius_mm[0])
    for _ in range(s.opaque_patches):                     # paint, tape: the groove is lost
        r_at, at = rng.uniform(r_in, r_out), rng.uniform(0, TWO_PI)
        a, b = rng.uniform(1.5, 5), rng.uniform(1, 3)
        cx, cy = r_at * math.cos(at), r_at * math.sin(at)
        rho = _ellipse_distance(X, Y, cx, cy, a, b, rng.uniform(0, math.pi))
        opacity = np.maximum(opacity, np.clip((1 - rho) * min(a, b) / step + 0.5, 0, 1))
    grid = np.ascontiguousarray(np.stack([density, contrast, opacity], axis=-1), np.float32)
    return _FilmMaps(float(x[0]), float(y[0]), step, grid)


# =====================================================================================
# Damage on the film or the glass: dust, hairs, scratches (image frame)
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Stroke:
    """A dust speck (one point) or a hair/scratch (polyline), render-frame pixels."""

    kind: str
    points_px: np.ndarray            # (n, 2) row, col
    width_px: float                  # diameter of a speck, width of a line
    opacity: float                   # fraction of light it blocks (or adds, reflective)
    row_range: tuple[float, float]


def _stroke(kind, points_px, width_px, opacity) -> _Stroke:
    pts = np.atleast_2d(np.asarray(points_px, dtype=np.float64))
    return _Stroke(kind, pts, float(width_px), float(opacity),
                   (float(pts[:, 0].min()), float(pts[:, 0].max())))


def _random_path(start, heading, length_mm, step_mm, curl_per_mm, rng) -> np.ndarray:
    """A smooth random curve (x, y mm): heading changes by a smoothed random curvature."""
    n = max(2, int(length_mm / step_mm) + 1)
    curvature = curl_per_mm * _smooth_noise((n,), max(n / 8, 1.0), rng)
    angle = heading + np.cumsum(curvature) * step_mm
    xy = np.cumsum(np.stack([np.cos(angle), np.sin(angle)], axis=1) * step_mm, axis=0)
    return xy - xy[0] + np.asarray(start)


def _make_strokes(s: RenderSettings, to_px: Callable, rng: np.random.Generator,
                  px_mm: float) -> tuple[_Stroke, ...]:
    """Dust, hairs and scratches scattered over the disc; ``to_px`` maps disc mm to px."""
    radius = s.disc_diameter_mm / 2.0
    strokes = []

    def somewhere_on_disc():
        r, a = radius * math.sqrt(rng.uniform(0, 1)), rng.uniform(0, TWO_PI)
        return (r * math.cos(a), r * math.sin(a))

    n_dust = int(rng.poisson(s.dust_per_cm2 * math.pi * radius ** 2 / 100.0))
    for _ in range(n_dust):
        radius_um = float(np.clip(rng.lognormal(math.log(8.0), 0.5), 3.0, 40.0))
        strokes.append(_stroke("dust", to_px(np.array([somewhere_on_disc()])),
                               2e-3 * radius_um / px_mm, rng.uniform(0.7, 1.0)))
    for _ in range(s.hairs):
        path = _random_path(somewhere_on_disc(), rng.uniform(0, TWO_PI), rng.uniform(3, 15),
                            0.05, rng.uniform(0.1, 0.5), rng)
        strokes.append(_stroke("hair", to_px(path), rng.uniform(15, 60) * 1e-3 / px_mm,
                               rng.uniform(0.6, 0.95)))
    for _ in range(s.scratches):
        path = _random_path(somewhere_on_disc(), rng.uniform(0, TWO_PI), rng.uniform(15, 80),
                            0.2, rng.uniform(0.002, 0.01), rng)
        strokes.append(_stroke("scratch", to_px(path), rng.uniform(6, 20) * 1e-3 / px_mm,
                               rng.uniform(0.25, 0.55)))
    return tuple(strokes)


def _to_patch(v: np.ndarray, origin: int) -> np.ndarray:
    """Pixel coordinates to OpenCV fixed-point (4 fraction bits) supersampled coordinates.

    Pixel ``j`` covers ``[j - 0.5, j + 0.5]``; supersampled cell ``k`` of a patch starting
    at pixel ``origin`` is centred at ``origin - 0.5 + (k + 0.5) / S``.
    """
    return np.rint(((v - origin + 0.5) * _SUPERSAMPLE - 0.5) * 16).astype(np.int32)


def _rasterise_stroke(st: _Stroke, r0: int, r1: int, width: int, blur_px: float):
    """Coverage (0..1) of one stroke over rows ``r0:r1``: drawn anti-aliased at 4x,
    blurred by the PSF, area-averaged. Returns (patch, col0) or None if it misses."""
    halo = int(math.ceil(3 * blur_px + st.width_px / 2 + 2))
    pts = st.points_px
    if len(pts) > 1:                     # keep segments that come near these rows
        lo = np.minimum(pts[:-1, 0], pts[1:, 0])
        hi = np.maximum(pts[:-1, 0], pts[1:, 0])
        seg = np.flatnonzero((hi >= r0 - halo) & (lo <= r1 - 1 + halo))
        if seg.size == 0:
            return None
        used = np.unique(np.concatenate([seg, seg + 1]))
    else:
        used = np.array([0])
    c0 = max(0, int(math.floor(pts[used, 1].min())) - halo)
    c1 = min(width, int(math.ceil(pts[used, 1].max())) + halo + 1)
    if c1 <= c0:
        return None
    p0 = r0 - halo
    rows = r1 - r0 + 2 * halo
    canvas = np.zeros((rows * _SUPERSAMPLE, (c1 - c0) * _SUPERSAMPLE), np.uint8)
    thick = max(1, int(round(st.width_px * _SUPERSAMPLE)))
    if len(pts) == 1:
        centre = (int(_to_patch(pts[0, 1], c0)), int(_to_patch(pts[0, 0], p0)))
        cv2.circle(canvas, centre, int(round(st.width_px / 2 * _SUPERSAMPLE * 16)), 255,
                   -1, cv2.LINE_AA, 4)
    else:
        cols, rws = _to_patch(pts[:, 1], c0), _to_patch(pts[:, 0], p0)
        for i in seg:
            cv2.line(canvas, (int(cols[i]), int(rws[i])), (int(cols[i + 1]), int(rws[i + 1])),
                     255, thick, cv2.LINE_AA, 4)
    cover = canvas.astype(np.float32) * (1.0 / 255.0)
    if blur_px * _SUPERSAMPLE > 0.3:
        cover = cv2.GaussianBlur(cover, (0, 0), blur_px * _SUPERSAMPLE)
    cover = cv2.resize(cover, (c1 - c0, rows), interpolation=cv2.INTER_AREA)
    return cover[halo:halo + (r1 - r0)], c0


def _damage_opacity(strokes, r0: int, r1: int, width: int, blur_px: float, blurs=None):
    """Fraction of light blocked by damage over rows ``r0:r1``, or None if none there.

    ``blurs``: optional blur (px) of each stroke, instead of ``blur_px`` for all.
    """
    opacity = None
    for n, st in enumerate(strokes):
        blur = blur_px if blurs is None else blurs[n]
        reach = 3 * blur + st.width_px + 3
        if st.row_range[1] < r0 - reach or st.row_range[0] > r1 + reach:
            continue
        hit = _rasterise_stroke(st, r0, r1, width, blur)
        if hit is None:
            continue
        cover, c0 = hit
        if opacity is None:
            opacity = np.zeros((r1 - r0, width), np.float32)
        view = opacity[:, c0:c0 + cover.shape[1]]
        view += (1.0 - view) * (st.opacity * cover)
    return opacity


# =====================================================================================
# The flatbed's habits: fixed patterns, lamp, sensor chips, glass, rings, focus
# =====================================================================================

_STREAK_PER_MM = 1.0 / 20.0    # wide fixed-pattern streaks (mirror dust): ~1 per 20 mm
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_GLASS_SCATTER = 0.5           # reflective: glass dust lit by the lamp looks mid-grey
_LAMBDA_MM = 0.55e-3           # Newton's rings: the middle of the lamp's white light
_FOCUS_LEVELS = 8              # cross-section tables between sharp and most defocused
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


@dataclass(frozen=True, eq=False)
class RenderedScan:
    """A rendered scan: ``image`` (2-D uint16 or uint8, rows x cols) and its ``truth``."""

    image: np.ndarray
    truth: RenderTruth


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


# =====================================================================================
# Public entry points
# =====================================================================================

def render_scan(audio: np.ndarray, *, sr: float, preset: str | None = None,
                settings: RenderSettings | None = None, seed: int = 0,
                workers: int | None = None, progress: Callable[[float], None] | None = None,
                **options: Any) -> RenderedScan:
    """Render a flatbed scan of a record cut from ``audio``, in memory.

    Parameters
    ----------
    audio : ndarray, shape (n,)
        Mono audio, any scale (see ``level``).
    sr : float
        Sample rate of ``audio`` (Hz).
    preset : str, optional
        A key of :data:`PRESETS` ("bone", "bone_worn", "shellac78", "lp", "single45",
        "flatbed_a4").
    settings : RenderSettings, optional
        Base settings (default: ``RenderSettings()``, a clean bone record).
    seed : int
        Seeds every random choice (film, outline, damage, noise): same seed, same image.
    workers : int, optional
        Threads rendering blocks of rows (default 1). The image does not depend on it.
        On the 2-vCPU machine of the benchmark two threads were no faster than one.
    progress : callable, optional
        Called with the fraction of rows done.
    **options
        Any field of :class:`RenderSettings`, e.g. ``dpi=1200``, ``mirrored=True``.

    Returns
    -------
    RenderedScan
        ``image`` (rows x cols, uint16 or uint8) and ``truth`` (:class:`RenderTruth`).

    Notes
    -----
    Peak memory is the image plus ~40 bytes per audio sample (the groove signal
    upsampled x4 and the truth arrays) plus ~150 MB of tables and working blocks. For
    full-size scans prefer :func:`render_scan_to_file`, which keeps the image on disk:
    a 3-minute 7-inch side at 2400 dpi (17 500 px square) peaks at ~640 MiB of resident
    memory, Python and its libraries included, and renders in about a minute per core.
    A whole bed costs little more than the disc: the bare bed around it needs only its
    noise and patterns (an A4 bed at 1200 dpi with a 7-inch disc and every habit on: ~10 s,
    ~220 MiB into a TIFF). ``focus_variation_um`` keeps a second, blurred copy of the
    groove signal (another ~16 bytes per audio sample).
    """
    s = resolve_settings(preset=preset, settings=settings, **options)
    samples = _check_audio(audio, sr)
    plan, cut = _build_plan(samples, sr, s, seed)
    if s.jpeg_quality is not None:
        _check_jpeg_size(plan, "jpeg_quality emulates a JPEG file, which")
    image = np.empty(plan.shape, plan.dtype)
    _render_into(plan, _array_sink(image), workers, progress)
    return RenderedScan(image, _make_truth(plan, cut, samples, sr))


_PNG_MAX_PIXELS = 100_000_000
_JPEG_MAX_SIDE = 65500
_JPEG_DEFAULT_QUALITY = 90


def _check_jpeg_size(plan: _Plan, what: str) -> None:
    rows, cols = plan.shape
    _require(max(rows, cols) <= _JPEG_MAX_SIDE,
             f"{what} holds at most {_JPEG_MAX_SIDE} px a side; this image is {rows} x {cols}: "
             "lower dpi or bed_mm, or write a .tif without jpeg_quality")


def render_scan_to_file(path: str | os.PathLike, audio: np.ndarray, *, sr: float,
                        preset: str | None = None, settings: RenderSettings | None = None,
                        seed: int = 0, overwrite: bool = False, workers: int | None = None,
                        progress: Callable[[float], None] | None = None,
                        **options: Any) -> RenderTruth:
    """Render a scan straight into a file: uncompressed TIFF (BigTIFF past 2 GB), PNG or JPEG.

    The TIFF is created as a memory map and filled block by block, so memory stays
    bounded (about 40 bytes per audio sample plus ~100 MB) whatever the image size. The
    nominal ``dpi`` goes into XResolution/YResolution (ResolutionUnit inch), the PNG
    pHYs chunk or the JPEG's JFIF header. The file is written under a temporary name in
    the same folder and renamed when complete. PNG is for small images (up to 100 Mpixel,
    rendered in memory). JPEG needs ``bits=8`` and at most 65500 px a side; it is encoded
    by Pillow at ``jpeg_quality`` (default 90, which the truth's settings then record) from
    the image held in memory (1 byte per pixel, twice while encoding). With
    ``jpeg_quality`` set, a TIFF or PNG holds the JPEG-decoded image, as after converting
    a JPEG file (the TIFF still in bounded memory: JPEG codes 8-row blocks independently).

    Parameters
    ----------
    path : str or PathLike
        Output file, ``.tif``/``.tiff``, ``.png`` or ``.jpg``/``.jpeg``.
    audio, sr, preset, settings, seed, workers, progress, **options
        As :func:`render_scan`.
    overwrite : bool
        Replace an existing file (default: refuse).

    Returns
    -------
    RenderTruth

    Raises
    ------
    OutputError
        The file exists (and not ``overwrite``), its folder is missing, or writing failed.
    ParameterError
        Unknown suffix, a PNG too large, a JPEG not 8-bit or too large, or bad options.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".tif", ".tiff", ".png", ".jpg", ".jpeg"):
        raise ParameterError(f"cannot write {path.name!r}: use a .tif, .tiff, .png, .jpg or "
                             ".jpeg name")
    if not path.parent.is_dir():
        raise OutputError(f"folder {str(path.parent)!r} does not exist; create it first")
    if path.exists() and not overwrite:
        raise OutputError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    s = resolve_settings(preset=preset, settings=settings, **options)
    is_jpeg = suffix in (".jpg", ".jpeg")
    if is_jpeg:
        _require(s.bits == 8, f"JPEG files hold 8-bit images; got bits={s.bits}: pass bits=8 "
                 "or write a .tif")
        s = replace(s, jpeg_quality=s.jpeg_quality or _JPEG_DEFAULT_QUALITY)
    samples = _check_audio(audio, sr)
    plan, cut = _build_plan(samples, sr, s, seed)
    if suffix == ".png" and plan.shape[0] * plan.shape[1] > _PNG_MAX_PIXELS:
        raise ParameterError(f"a {plan.shape[0]} x {plan.shape[1]} image is too large for PNG "
                             "here; write a .tif instead")
    if s.jpeg_quality is not None:
        _check_jpeg_size(plan, "a JPEG file" if is_jpeg else
                         "jpeg_quality emulates a JPEG file, which")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if suffix == ".png":
            _write_png(tmp, plan, workers, progress)
        elif is_jpeg:
            _write_jpeg(tmp, plan, workers, progress)
        else:
            _write_tiff(tmp, plan, workers, progress)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"could not write {str(path)!r}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _make_truth(plan, cut, samples, sr)


def _array_sink(out: np.ndarray) -> Callable[[int, np.ndarray], None]:
    def sink(r0: int, block: np.ndarray) -> None:
        out[r0:r0 + block.shape[0]] = block
    return sink


def _write_tiff(tmp: Path, plan: _Plan, workers, progress) -> None:
    """An uncompressed, contiguous TIFF: tifffile writes the header and reserves the
    pixel data; the blocks go to their offsets with positional writes, so neither the
    image nor a memory map of it is ever resident."""
    import tifffile

    dtype = np.dtype(plan.dtype)
    row_bytes = plan.shape[1] * dtype.itemsize
    offset, _ = tifffile.imwrite(
        tmp, data=None, shape=plan.shape, dtype=dtype, returnoffset=True, byteorder="<",
        bigtiff=plan.shape[0] * row_bytes > 2**31 - 2**24, photometric="minisblack",
        resolution=(plan.s.dpi, plan.s.dpi), resolutionunit="INCH",
        software="groovescan.synth", metadata=None,
    )
    with open(tmp, "r+b") as fh:
        def sink(r0: int, block: np.ndarray) -> None:
            data = np.ascontiguousarray(block, dtype=dtype.newbyteorder("<")).tobytes()
            os.pwrite(fh.fileno(), data, offset + r0 * row_bytes)

        _render_into(plan, sink, workers, progress)
        fh.flush()
        os.fsync(fh.fileno())


def _write_png(tmp: Path, plan: _Plan, workers, progress) -> None:
    from PIL import Image

    image = np.empty(plan.shape, plan.dtype)
    _render_into(plan, _array_sink(image), workers, progress)
    Image.fromarray(image).save(tmp, format="PNG", dpi=(plan.s.dpi, plan.s.dpi))


def _write_jpeg(tmp: Path, plan: _Plan, workers, progress) -> None:
    """Pillow encodes the whole image (held in memory) at the plan's quality."""
    from PIL import Image

    image = np.empty(plan.shape, plan.dtype)
    _render_into(plan, _array_sink(image), workers, progress, jpeg=False)
    Image.fromarray(image).save(tmp, format="JPEG", quality=int(plan.s.jpeg_quality),
                                dpi=(plan.s.dpi, plan.s.dpi))
