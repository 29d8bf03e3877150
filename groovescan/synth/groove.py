"""The groove: cutting audio into displacement, the spiral, the wiggle as the image shows
it and the groove's cross-section as a pixel sees it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, signal

from ..eq import get_curve, recording_response
from ..errors import ParameterError
from ._common import (
    _FOCUS_LEVELS,
    _ORIENTATIONS,
    _SPIRAL_STEPS_PER_TURN,
    _TABLE_STEP_MM,
    TWO_PI,
)
from .settings import RenderSettings


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
