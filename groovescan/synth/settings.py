"""Every option of the renderer (:class:`RenderSettings`), the presets and their checks."""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..errors import ParameterError


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
