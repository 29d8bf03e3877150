"""An independent flatbed-scan renderer for groovescan tests ("indie scanner").

groovescan's own renderer and decoder were tuned together. This module renders scans
of lateral-cut records from the physics alone, with its own modelling choices, so
that tests can find the decoder's blind spots. It deliberately shares no code with
``groovescan`` (only ``groovescan.load_scan`` is used, in the self-check of the CLI).

Model
-----
Groove (physical frame, millimetres, about the spiral centre)
    The cutting stylus moves radially. In playing order the groove is parametrised by
    the playing angle ``phi >= 0`` (radians, 0 = outer start of the lead-in). Its
    centre radius is ``R(phi) = R_nom(phi) + d(phi)`` where ``R_nom`` falls by the
    local pitch per turn (lead-in pitch, music pitch with slow feed jitter, wider
    pitch in silent gaps between tracks, lead-out pitch, optionally a closed locked
    circle at the end; pitch changes are blended over ~0.3 turn) and ``d`` is the
    lateral displacement, positive outwards. ``d`` is the time integral of the stylus
    velocity (the input audio scaled to ``peak_velocity_cm_s``), both high-passed by
    the same zero-phase 20 Hz filter, so the truth velocity is exactly ``dd/dt``.
    The cutter face lies in the radial plane, so the radial cross-section at every
    angle is the cutter profile centred on ``R``: "v" (straight walls, bottom rounded
    by a circle tangent to both walls), "u" (circular arc) or "trapezoid" (flat bottom),
    plus optional raised lips (burr) just outside the edges (embossed film). Where
    neighbouring turns come closer than the groove width the deeper cut wins
    (surface = min over turns).

Brightness (linear light, 1.0 = the lamp seen directly)
    A function of the offset ``u`` across the groove, times slowly varying factors.
    The direction of the surface normal is known (it turns with the groove's local
    lateral slope ``dR/dtheta / r``), so walls facing the lamp can be told from the
    others. With ``s = sin(tilt)`` and ``w = min(1, (s / s_ref)^gamma)`` (``s_ref`` =
    tilt of a nominal wall):

    - transmission (film on the scanner's film unit): light crossing a tilted wall is
      refracted out of the lens's acceptance, so ``B = F * (1 - k w (1 + a_t cos_l)) *
      (1 + (g_b - 1) depth)``, ``F = lamp * 10^-OD(x, y)`` the X-ray picture,
      ``cos_l`` the cosine between the wall's down-hill direction and the lamp
      azimuth, ``g_b`` a small groove-bottom gain (compressed film).
    - reflection (shellac, vinyl, or film lying on the lid): the land reflects the lamp
      at ``land_tone`` (bright or dark: glossy black vs. sheen), walls go to an
      intermediate ``wall_tone`` plus ``asym * cos_l`` (one wall lit, the other in
      shade; the asymmetry turns with the groove's direction relative to the lamp, so
      it changes round the disc), the bottom is the land tone dimmed by
      ``bottom_dim``: ``B = S * ((1 - w) flat + w (wall_tone + asym cos_l))``.

    So contrast polarity differs by mode and, in reflection, by seed. Because the
    lamp cosine follows the groove's direction, a modulated wall brightens and darkens
    with the stylus velocity (the "light band" effect of optical groove inspection): a
    signal-dependent brightness change that biases intensity-weighted wall locators.

Optics and sensor
    Near grooves the scene is computed on ``ss x ss`` sub-pixel cells (``ss`` 2-4, from
    the PSF and dpi): each cell's brightness is the exact average over the cell's
    extent across the groove (from antiderivative tables of the profile, so groove
    edges move continuously, with no point-sampling steps), with the displacement
    taken at the cell's own playing angle. Land is smooth and computed per pixel. The
    cells are blurred with a Gaussian PSF (sigma ``psf_um``, optionally stretched along
    rows by ``psf_aniso``) or a disk (radius ``2 psf_um``, the same second moment) and
    averaged to pixels: area integration. Where two turns overlap (over-cut), the
    cells are point-sampled on the combined surface (the deeper cut wins).
    Then, in order: out-of-focus glass dust/fibres, Newton rings, lamp drift along
    rows and lamp fall-off along the tube, per-row and per-column gain, sensor-segment
    seams, column offsets, shot + read noise, white clipping, gamma encoding,
    unsharp masking, quantisation to 8/16 bit, optional JPEG round trip (8-row
    aligned strips, identical to whole-image JPEG). The image is computed in strips of
    rows (with halos for every filter; noise is seeded per 8-row group, so strips
    agree on their overlaps) by ``threads`` forked worker processes, so memory stays
    bounded whatever the size; ``out=`` lets the caller supply a memory map.

Disc
    Bone records: a polygon outline (scissor facets) through a radius with random
    low-order harmonics, offset from the spiral centre; a burned, irregular hole
    offset 0-4 mm; an X-ray picture (body, ribs or skull, spine, blobs; OD 0.3-2) and
    film grain. Pressings: a round disc, a spindle hole (or a 45's big hole), a paper
    label with printed text-like blocks, a slight sheen. Record dust and scratches lie
    on the record (in focus); glass dust and fibres are out of focus.

Conventions (the same as groovescan's docs/conventions.md)
----------------------------------------------------------
- Pixel ``(i, j)`` has its centre at ``y = i * px_row_mm``, ``x = j * px_col_mm``;
  rows go down. ``truth["centre_px"] = (row, col)`` of the spiral centre (float).
- Angles ``theta`` are measured in the image from +col towards +row, i.e.
  **clockwise as displayed**. Along the groove in playing order,
  ``theta(phi) = theta_start + direction * phi``. ``direction = -1``: the groove,
  followed outside-in, turns **counter-clockwise on screen** (a record scanned from its
  playing side). ``direction = +1``: clockwise on screen (scanned from the back, i.e.
  mirrored). ``mirrored=True`` renders and then flips the image left-right; the truth
  describes the final (flipped) image.
- ``truth["velocity"]``: groove velocity in m/s at ``sr``, positive outwards, on the
  timebase of the cut (lathe speed ``rpm * (1 + cut_speed_error)``); it begins at the
  music start (radius ``r_start_mm``), after ``truth["lead_in_s"]`` seconds of silent
  lead-in at the nominal ``rpm``. It is what a perfect decoder outputs with a flat
  playback curve (before any playback EQ).
- ``truth["polarity"]``: "dark" when the walls are darker than the land on average,
  "bright" when brighter, "weak" when within 8 % (reflective, lamp asymmetry only).
- ``truth["px_mm"]`` is the *true* pixel size (row, col); the file's dpi is nominal
  (``truth["dpi"]``). They differ by ``xy_scale_error`` along rows.
- ``truth["groove_path"]``: the nominal groove radius ``r_nom_mm`` at playing angles
  ``phi`` (every 1/16 turn; pitch jitter, gaps, lead-in/out included),
  ``phi_music_start`` and the cut's angular speed ``omega_cut`` (rad/s): music sample
  ``n`` lies at ``phi = phi_music_start + omega_cut * n / sr``, image angle
  ``theta_start + direction * phi``, radius ``r_nom(phi) + displacement``.

Entry points
------------
- :func:`render_indie` renders a given velocity signal.
- :func:`make_programme` makes a music-like velocity signal.
- :func:`random_disc` draws a random record, scanner and habits; :func:`render_random`
  renders it.
- :func:`write_scan` writes TIFF/PNG/JPEG with resolution metadata;
  :func:`save_truth`/:func:`load_truth` the truth.
- CLI: ``python tests/indie_scanner.py --seed 3 --scale small -o /tmp/x.tif``.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import tifffile
from PIL import Image
from scipy import fft as sfft
from scipy import ndimage
from scipy import signal as sps
from scipy.special import expit

MM_PER_INCH = 25.4
TAU = 2.0 * np.pi

__all__ = [
    "render_indie",
    "make_programme",
    "random_disc",
    "render_random",
    "write_scan",
    "save_truth",
    "load_truth",
    "HABIT_DEFAULTS",
]

#: Every habit ``render_indie`` understands, with its "off" / neutral value. Habits not
#: given are drawn from the render seed only where the value here is ``None``.
HABIT_DEFAULTS = {
    # --- record ------------------------------------------------------------------
    "peak_velocity_cm_s": 5.0,     # peak groove velocity
    "groove_shape": None,          # "v" | "u" | "trapezoid"; None = by seed
    "groove_bottom_mm": None,      # trapezoid flat width; None = by seed
    "wall_half_angle_deg": None,   # half the included angle (from vertical); by seed
    "lip": None,                   # raised burr height / groove depth (0 = none)
    "direction": None,             # -1 | +1 (before mirroring); None = by seed
    "theta_start": None,           # rad; None = by seed
    "mirrored": False,             # flip the finished image left-right
    "lead_in_turns": 0.0,
    "lead_in_pitch_mm": 1.0,
    "lead_out_turns": 0.0,
    "lead_out_pitch_mm": 1.0,
    "locked_groove": False,        # closed circle after the lead-out
    "gaps_s": (),                  # ((t0, t1), ...) silent, spread, in programme time
    "gap_pitch_mm": None,          # pitch in gaps; None = 3 x pitch
    "pitch_jitter": 0.0,           # rms fractional slow variation of the feed
    "cut_speed_error": 0.0,        # lathe speed / nominal - 1
    "disc_radius_mm": None,        # None = 1.5 mm beyond the outermost groove
    "outline": None,               # "polygon" (scissor cut) | "round"; by kind/mode
    "outline_wobble_mm": None,     # sum of harmonic amplitudes (polygon outline)
    "outline_facets": None,        # number of straight cuts
    "disc_offset_mm": None,        # (dx, dy) disc centre - spiral centre
    "hole_radius_mm": 3.5,
    "hole_offset_mm": None,        # (dx, dy) hole centre - spiral centre; by seed
    "hole_irregular": None,        # True for burned holes; by seed
    "label_radius_mm": 0.0,        # 0 = no label
    "xray": None,                  # True = X-ray picture on the film (bone records)
    "od_range": (0.3, 2.0),
    "grain": 0.0,                  # rms film grain / surface texture (fraction)
    "record_dust": 0.0,            # in-focus specks per cm^2 on the record
    "scratches": 0,                # number of scratches on the record
    # --- brightness model ------------------------------------------------------------
    "lamp_level": None,            # transmission: lamp / white clip (>1 clips); by seed
    "lamp_azimuth": None,          # rad, direction the lamp light comes from; by seed
    "k_wall": None,                # transmission: wall light loss at nominal tilt
    "wall_gamma": None,            # tilt exponent
    "asym_transmission": None,     # transmission wall asymmetry
    "bottom_gain": None,           # transmission groove-bottom gain
    "land_tone": None,             # reflective land reflectance (bright or dark)
    "wall_tone": None,             # reflective wall tone
    "asym": None,                  # reflective wall asymmetry
    "bottom_dim": None,            # reflective bottom / land
    "lid_tone": None,              # reflective background (black or grey lid)
    "rim_dark": None,              # disc-edge darkening (negative = bright bead)
    # --- optics ----------------------------------------------------------------------
    "psf_um": 8.0,                 # Gaussian sigma (disk: radius 2 * psf_um)
    "psf_kind": "gaussian",        # "gaussian" | "disk"
    "psf_aniso": 0.0,              # extra blur along rows (carriage motion), fraction
    "supersample": None,           # sub-cells per pixel side; None = from psf and dpi
    # --- scanner habits (0 = off) --------------------------------------------------------
    "column_gain_rms": 0.0,
    "row_gain_rms": 0.0,
    "column_offset_rms": 0.0,
    "lamp_drift": 0.0,             # peak fractional lamp change along rows (time)
    "lamp_profile": 0.0,           # peak fractional lamp fall-off along the tube (cols)
    "seam_period_px": 0,           # at 2400 dpi, scaled with dpi (e.g. 1728)
    "seam_gain": 0.0,
    "gamma": 0.0,                  # 0 = linear encoding, else 1.8-2.2
    "unsharp": 0.0,                # unsharp-mask amount
    "unsharp_sigma_px": 1.2,
    "jpeg_quality": 0,             # 0 = off; else round trip at this quality (8 bit)
    "glass_dust": 0.0,             # out-of-focus specks per cm^2 on the glass
    "fibres": 0,                   # out-of-focus hairs on the glass
    "newton_rings": 0.0,           # amplitude (fraction)
    "newton_period_mm": 3.0,
    "xy_scale_error": 0.0,         # true row pixel size / col pixel size - 1
    "noise": 0.003,                # read noise rms (fraction of white); shot noise 2x at white
    "bits": 16,
}


# =============================================================================== audio


def make_programme(seed, *, duration_s, sr=44100, band_hz=(100.0, 6000.0),
                   turnover_hz=300.0, gaps_s=(), quiet=True):
    """A music-like groove-velocity signal (arbitrary units, peak 1).

    Notes with harmonics, vibrato and envelopes (2-4 voices), drum-like noise bursts,
    occasional sweeps, quiet passages; band-limited to ``band_hz`` and given a
    recording turnover (velocity rising 6 dB/oct below ``turnover_hz``, i.e. constant
    amplitude, as cutters did) so that bass does not cut through the next turn.

    Parameters
    ----------
    seed : int
    duration_s : float
        Length of the programme, gaps included.
    sr : int
        Sample rate, Hz.
    band_hz : (float, float)
        Pass band (Hz).
    turnover_hz : float
        Recording turnover (Hz); 0 = none.
    gaps_s : sequence of (t0, t1)
        Silent intervals (s) between tracks.
    quiet : bool
        Include quiet passages (-20 to -30 dB).

    Returns
    -------
    ndarray, shape (round(duration_s * sr),), float32
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sr))
    x = np.zeros(n)
    t_all = np.arange(n) / sr
    nyq_guard = min(band_hz[1] * 1.3, 0.45 * sr)
    # --- notes
    n_voices = int(rng.integers(2, 5))
    for _ in range(n_voices):
        t = 0.0
        while t < duration_s:
            dur = rng.uniform(0.08, 1.2)
            if rng.random() < 0.15:                      # rest
                t += dur
                continue
            f0 = math.exp(rng.uniform(math.log(70), math.log(900)))
            i0, i1 = int(t * sr), min(n, int((t + dur + 0.3) * sr))
            if i1 <= i0 + 8:
                break
            tt = t_all[i0:i1] - t
            vib = 1 + rng.uniform(0, 0.01) * np.sin(TAU * rng.uniform(3, 7) * tt)
            phase = TAU * f0 * np.cumsum(vib) / sr
            att, rel = rng.uniform(0.003, 0.05), rng.uniform(0.05, 0.3)
            env = np.minimum(1, tt / att) * np.exp(-tt * rng.uniform(0.3, 4))
            env *= np.clip((t + dur + rel - t_all[i0:i1]) / rel, 0, 1)
            tone = np.zeros_like(tt)
            alpha = rng.uniform(0.6, 1.6)
            for h in range(1, int(rng.integers(1, 14))):
                if h * f0 > nyq_guard:
                    break
                tone += h ** -alpha * np.sin(h * phase + rng.uniform(0, TAU))
            x[i0:i1] += rng.uniform(0.3, 1.0) * env * tone
            t += dur
    # --- drum-like bursts
    for _ in range(int(duration_s * rng.uniform(0.3, 2.5))):
        t = rng.uniform(0, duration_s)
        m = int(rng.uniform(0.03, 0.2) * sr)
        i0 = int(t * sr)
        i1 = min(n, i0 + m)
        if i1 - i0 < 16:
            continue
        lo = rng.uniform(200, 2000)
        sos = sps.butter(2, [lo, min(lo * rng.uniform(2, 5), 0.45 * sr)], "bandpass",
                         fs=sr, output="sos")
        burst = sps.sosfilt(sos, rng.standard_normal(i1 - i0))
        burst *= np.exp(-np.arange(i1 - i0) / (0.25 * m))
        x[i0:i1] += rng.uniform(0.5, 2.0) * burst / (np.std(burst) + 1e-12) * 0.3
    # --- an occasional sweep
    if rng.random() < 0.3 and duration_s > 1:
        d = min(duration_s / 3, rng.uniform(0.5, 3))
        t0 = rng.uniform(0, duration_s - d)
        i0, i1 = int(t0 * sr), int((t0 + d) * sr)
        tt = t_all[i0:i1] - t0
        f_a, f_b = band_hz[0] * 1.5, band_hz[1] * 0.8
        k = math.log(f_b / f_a) / d
        x[i0:i1] += 0.5 * np.sin(TAU * f_a * (np.exp(k * tt) - 1) / k)
    # --- band, turnover
    sos = sps.butter(3, [band_hz[0], min(band_hz[1], 0.45 * sr)], "bandpass", fs=sr,
                     output="sos")
    x = sps.sosfiltfilt(sos, x)
    if turnover_hz:
        sos = sps.butter(1, turnover_hz, "highpass", fs=sr, output="sos")
        x = sps.sosfilt(sos, x)
    # --- dynamics
    level = np.ones(n)
    if quiet:
        for _ in range(int(rng.integers(0, 3))):
            d = rng.uniform(0.3, 2.0)
            t0 = rng.uniform(0, max(duration_s - d, 1e-3))
            sl = slice(int(t0 * sr), int((t0 + d) * sr))
            level[sl] = 10 ** (rng.uniform(-30, -20) / 20)
        level = ndimage.uniform_filter1d(level, max(1, int(0.02 * sr)))
    x *= level
    for t0, t1 in gaps_s:
        x[int(t0 * sr):int(t1 * sr)] = 0.0
    peak = np.max(np.abs(x))
    return (x / peak if peak > 0 else x).astype(np.float32)


def _velocity_and_displacement(audio, sr, peak_m_s, hp_hz, gaps_s, pad_s):
    """Scale, gate and high-pass the velocity; integrate it to displacement.

    Returns ``(v, d)``, both float64 at ``sr`` over ``[-pad_s, T + pad_s]``; ``v`` (m/s)
    is exactly the derivative of ``d`` (m) (a shared zero-phase high-pass, integration
    in the frequency domain).
    """
    a = np.asarray(audio, dtype=np.float64).copy()
    if a.ndim != 1 or a.size < 16:
        raise ValueError("audio must be a 1-D signal of at least 16 samples")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio has NaN or infinite samples")
    fade = np.ones(a.size)
    nf = max(1, int(0.005 * sr))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, nf))
    fade[:nf] = ramp
    fade[-nf:] = np.minimum(fade[-nf:], ramp[::-1])
    for t0, t1 in gaps_s:            # silent gaps, with short fades
        i0, i1 = int(t0 * sr), int(t1 * sr)
        fade[max(0, i0):max(0, i1)] = 0
        if i0 - nf >= 0:
            fade[i0 - nf:i0] = np.minimum(fade[i0 - nf:i0], ramp[::-1])
        if i1 + nf <= a.size:
            fade[i1:i1 + nf] = np.minimum(fade[i1:i1 + nf], ramp)
    a *= fade
    pad = int(round(pad_s * sr))
    x = np.concatenate([np.zeros(pad), a, np.zeros(pad)])
    nfft = sfft.next_fast_len(x.size + pad, real=True)
    spec = sfft.rfft(x, nfft)
    f = sfft.rfftfreq(nfft, 1 / sr)
    h = (f / hp_hz) ** 4 / (1 + (f / hp_hz) ** 4)      # zero-phase 2nd-order HP, squared
    spec *= h
    v = sfft.irfft(spec, nfft)[:x.size]
    with np.errstate(divide="ignore", invalid="ignore"):
        dspec = spec / (1j * TAU * f)
    dspec[0] = 0
    d = sfft.irfft(dspec, nfft)[:x.size]
    d -= 0.5 * (np.median(d[:max(1, pad // 2)]) + np.median(d[-max(1, pad // 2):]))
    peak = np.max(np.abs(v[pad:pad + a.size]))
    if peak == 0:
        return v, d
    g = peak_m_s / peak
    return v * g, d * g


# ============================================================================ geometry


class _Spiral:
    """Groove centre radius as a function of playing angle (mm, rad)."""

    STEP = TAU / 256.0            # table step (rad)

    def __init__(self, *, disp_m, sr, pad_s, duration_s, rpm_cut, pitch_mm, r_start_mm,
                 lead_in_turns, lead_in_pitch_mm, lead_out_turns, lead_out_pitch_mm,
                 locked, gaps_s, gap_pitch_mm, pitch_jitter, rng, oversample=4):
        self.omega = TAU * rpm_cut / 60.0                       # rad/s of the cut
        self.phi_in = TAU * lead_in_turns
        self.phi_music = self.omega * duration_s
        self.phi_out = TAU * lead_out_turns
        self.phi_lock = TAU if locked else 0.0
        self.phi_total = self.phi_in + self.phi_music + self.phi_out + self.phi_lock
        n_tab = int(math.ceil(self.phi_total / self.STEP)) + 2
        phi = np.arange(n_tab) * self.STEP
        pitch = np.full(n_tab, float(pitch_mm))
        if pitch_jitter:
            # slow feed variation: correlation ~3 turns, plus a feed-screw ripple
            white = rng.standard_normal(n_tab)
            slow = ndimage.gaussian_filter1d(white, 3 * 256 / 2.5, mode="wrap")
            slow *= pitch_jitter / (np.std(slow) + 1e-12)
            slow += pitch_jitter * 0.5 * np.sin(phi / rng.uniform(2, 6) + rng.uniform(0, TAU))
            pitch *= 1 + slow
        m0, m1 = self.phi_in, self.phi_in + self.phi_music
        for t0, t1 in gaps_s:
            pitch[(phi >= m0 + self.omega * t0) & (phi < m0 + self.omega * t1)] = gap_pitch_mm
        pitch[phi < m0] = lead_in_pitch_mm
        pitch[phi >= m1] = lead_out_pitch_mm
        pitch[phi >= m1 + self.phi_out] = 0.0
        # blend changes over ~0.3 turn, keeping the locked circle exactly circular
        smooth = ndimage.uniform_filter1d(pitch, int(0.3 * 256), mode="nearest")
        if locked:
            smooth[phi >= m1 + self.phi_out] = 0.0
        drop = np.concatenate([[0.0], np.cumsum(0.5 * (smooth[1:] + smooth[:-1]))]) \
            * self.STEP / TAU
        r = -drop
        r += r_start_mm - np.interp(m0, phi, r)
        self.phi_tab, self.r_tab, self.pitch_tab = phi, r, smooth
        # displacement table (mm, float32) at oversample * sr over [-pad, T + pad]
        self.pad_s = pad_s
        if oversample > 1:
            dd = sps.resample_poly(disp_m, oversample, 1)
        else:
            dd = disp_m
        self.disp = (dd * 1e3).astype(np.float32)
        self.fs_d = sr * oversample
        self.max_disp_mm = float(np.max(np.abs(self.disp))) if self.disp.size else 0.0
        self.r_start = r_start_mm
        self.r_end = float(np.interp(m1, phi, r))
        self.r_outer = float(r[0])
        self.r_inner = float(np.interp(self.phi_total, phi, r))
        # monotone (non-increasing) copy for the inverse map r -> phi
        self._inv_r = -np.minimum.accumulate(r)
        self._inv_phi = phi

    def r_nom(self, phi):
        """Nominal radius (mm) and its derivative (mm/rad) at playing angle ``phi``."""
        pos = phi / self.STEP
        i = np.clip(np.floor(pos).astype(np.int64), 0, self.r_tab.size - 2)
        f = pos - i
        r0 = self.r_tab[i]
        dr = self.r_tab[i + 1] - r0
        return r0 + f * dr, dr / self.STEP

    def phi_of_r(self, r):
        """Playing angle (rad) where the nominal spiral has radius ``r`` (estimate)."""
        return np.interp(-r, self._inv_r, self._inv_phi)

    def disp_at(self, phi, derivative=False):
        """Displacement (mm) at ``phi``; with ``derivative`` also dd/dphi (mm/rad)."""
        t = (phi - self.phi_in) / self.omega + self.pad_s
        pos = t * self.fs_d
        n = self.disp.size
        i = np.floor(pos).astype(np.int64)
        ok = (i >= 0) & (i < n - 1)
        i = np.clip(i, 0, n - 2)
        f = (pos - i).astype(np.float32)
        d0 = self.disp[i]
        dd = self.disp[i + 1] - d0
        d = np.where(ok, d0 + f * dd, np.float32(0))
        if not derivative:
            return d
        return d, np.where(ok, dd * np.float32(self.fs_d / self.omega), np.float32(0))


class _Profile:
    """Cutter cross-section ``z(u)`` (mm, negative = below the land) and ``dz/du``."""

    def __init__(self, shape, top_mm, bottom_mm, half_angle_deg, round_frac, lip, lip_w_mm):
        self.shape = shape
        a = self.a = 0.5 * top_mm
        beta = math.radians(half_angle_deg)
        self.slope = 1.0 / math.tan(beta)                     # wall dz/du
        if shape == "v":
            rho = self.rho = round_frac * a
            k = math.sqrt(1 + self.slope ** 2)
            self.zc = -a * self.slope + rho * k
            self.ut = rho * self.slope / k
            self.depth = -(self.zc - rho)
        elif shape == "u":
            rho = self.rho = round_frac * a
            self.zc = math.sqrt(max(rho ** 2 - a ** 2, 0.0))
            self.depth = rho - self.zc
        elif shape == "trapezoid":
            self.b = min(0.5 * bottom_mm, 0.8 * a)
            self.depth = self.slope * (a - self.b)
        else:
            raise ValueError(f"groove_shape must be 'v', 'u' or 'trapezoid', got {shape!r}")
        self.lip_h = lip * self.depth
        self.lip_w = lip_w_mm
        self.reach = a + (2 * lip_w_mm if lip > 0 else 0.0)     # support of the profile
        if shape == "u":
            _, dz = self.eval(np.array([0.75 * a]))
            s = abs(float(dz[0]))
        else:
            s = self.slope
        self.s_ref = s / math.sqrt(1 + s * s)                  # sin(tilt) of a nominal wall

    def eval(self, u):
        """``(z, dz/du)`` at radial offsets ``u`` (mm) from the groove centre."""
        au = np.abs(u)
        sg = np.sign(u)
        a = self.a
        if self.shape == "v":
            z = self.slope * (au - a)
            dz = self.slope * sg
            inner = au < self.ut
            if np.any(inner):
                ui = u[inner]
                root = np.sqrt(np.maximum(self.rho ** 2 - ui * ui, 1e-18))
                z = np.where(inner, 0, z)
                dz = np.where(inner, 0, dz)
                z[inner] = self.zc - root
                dz[inner] = ui / root
        elif self.shape == "u":
            root = np.sqrt(np.maximum(self.rho ** 2 - u * u, 1e-6 * self.rho ** 2))
            z = self.zc - root
            dz = u / root
        else:
            z = np.where(au < self.b, -self.depth, self.slope * (au - a))
            dz = np.where(au < self.b, 0.0, self.slope * sg)
        out = au >= a
        z = np.where(out, 0.0, z)
        dz = np.where(out, 0.0, dz)
        if self.lip_h > 0:                  # a raised burr: sin^2 bump over 2 lip widths
            xl = np.clip((au - a) / self.lip_w, 0.0, 2.0)
            z = np.where(out, self.lip_h * np.sin(0.5 * np.pi * xl) ** 2, z)
            dz = np.where(out, sg * self.lip_h * 0.5 * np.pi / self.lip_w * np.sin(np.pi * xl), dz)
        return z, dz


class _Outline:
    """Disc outline about the disc centre: a polygon (scissor cuts) or a circle."""

    def __init__(self, radius, kind, rng, wobble_mm, n_facets, centre):
        self.cx, self.cy = centre
        self.kind = kind
        self.radius = radius
        if kind == "round":
            self.r_min = self.r_max = radius
            return
        even = np.arange(n_facets) * TAU / n_facets
        th = np.sort((even + rng.uniform(-0.35, 0.35, n_facets) * TAU / n_facets
                      + rng.uniform(0, TAU)) % TAU)
        amps = rng.dirichlet(np.ones(4)) * wobble_mm
        rho = np.full(n_facets, float(radius))
        for n, amp in zip(range(2, 6), amps):
            rho += amp * np.cos(n * th + rng.uniform(0, TAU))
        rho += rng.normal(0, 0.1 * wobble_mm, n_facets)
        self.vth = th
        self.vx = rho * np.cos(th)
        self.vy = rho * np.sin(th)
        # facet k joins vertex k to k+1; its unit normal, turned to point outwards
        ex, ey = np.roll(self.vx, -1) - self.vx, np.roll(self.vy, -1) - self.vy
        ln = np.hypot(ex, ey)
        self._nx, self._ny = ey / ln, -ex / ln
        dist = self.vx * self._nx + self.vy * self._ny
        flip = dist < 0
        self._nx[flip] *= -1
        self._ny[flip] *= -1
        self._dist = np.abs(dist)
        self.r_max = float(np.max(rho))
        self.r_min = float(np.min(self._dist))

    def signed_distance(self, x, y):
        """Approximate signed distance (mm, > 0 outside) of points relative to the
        disc centre (x, y given about the disc centre)."""
        if self.kind == "round":
            return np.hypot(x, y) - self.radius
        th = np.mod(np.arctan2(y, x), TAU)
        k = np.searchsorted(self.vth, th) - 1                    # facet starting before th
        k = np.mod(k, self.vth.size)
        return x * self._nx[k] + y * self._ny[k] - self._dist[k]

    def extent(self):
        """(xmin, xmax, ymin, ymax) about the disc centre (mm)."""
        if self.kind == "round":
            r = self.radius
            return -r, r, -r, r
        return self.vx.min(), self.vx.max(), self.vy.min(), self.vy.max()


def _smooth_field(rng, shape, sigma_px, n_octaves=1):
    """Zero-mean, unit-max smooth random field (made coarse, then interpolated)."""
    f = np.zeros(shape, np.float32)
    for o in range(n_octaves):
        sig = sigma_px / 2 ** o
        dec = max(1.0, sig / 4)                        # coarse grid: 4 points per sigma
        cshape = (max(4, int(shape[0] / dec) + 2), max(4, int(shape[1] / dec) + 2))
        w = ndimage.gaussian_filter(rng.standard_normal(cshape).astype(np.float32),
                                    sig / dec, mode="wrap")
        w = cv2.resize(w, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
        f += w / (np.abs(w).max() + 1e-12) / 2 ** o
    return f / (np.abs(f).max() + 1e-12)


def _xray_od(rng, xs, ys, od_range):
    """An X-ray picture as optical density on the grid ``xs`` x ``ys`` (mm).

    Air (dark) around a body (soft tissue), with ribs and a spine, or a skull, plus
    smooth blobs; bones are low OD (clear film), with brighter cortical edges.
    """
    od_lo, od_hi = od_range
    X, Y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    ang = rng.uniform(0, TAU)
    P = X * math.cos(ang) + Y * math.sin(ang) + rng.uniform(-40, 40)
    Q = -X * math.sin(ang) + Y * math.cos(ang) + rng.uniform(-40, 40)
    step = float(xs[1] - xs[0])
    od_air = rng.uniform(0.7 * od_hi, od_hi)
    od_tissue = rng.uniform(0.3, 0.6) * od_hi
    # body: a wobbly ellipse with a soft edge
    a_b, b_b = rng.uniform(90, 180), rng.uniform(70, 140)
    th = np.arctan2(Q / b_b, P / a_b)
    wob = (1 + 0.08 * np.sin(3 * th + rng.uniform(0, TAU))
           + 0.05 * np.sin(5 * th + rng.uniform(0, TAU)))
    rr = np.hypot(P / a_b, Q / b_b) / wob
    body = expit((1 - rr) * rng.uniform(15, 40))
    od = od_air + (od_tissue - od_air) * body
    bone = np.zeros_like(X)

    def band(dist, half, soft):
        core = expit((half - np.abs(dist)) / soft)
        edge = np.exp(-((np.abs(dist) - half * 0.8) / (0.25 * half)) ** 2)
        return core * (0.65 + 0.35 * edge)

    if rng.random() < 0.75:                                 # chest: ribs and spine
        gap = rng.uniform(14, 26)
        curv = rng.uniform(0.002, 0.008) * rng.choice([-1, 1])
        q0 = rng.uniform(0, gap)
        for i in range(-8, 9):
            centre = q0 + i * gap + curv * P ** 2
            half = rng.uniform(3, 5.5)
            side = np.abs(P) > rng.uniform(10, 22)            # ribs stop at the spine
            bone = np.maximum(bone, band(Q - centre, half, rng.uniform(0.3, 0.9)) * side)
        spine_half = rng.uniform(12, 18)
        vert = 0.75 + 0.25 * np.cos(TAU * Q / rng.uniform(18, 28))
        bone = np.maximum(bone, band(P, spine_half, 1.0) * vert)
    else:                                                    # skull: an elliptic shell
        a_s, b_s = rng.uniform(60, 95), rng.uniform(50, 80)
        rs = np.hypot(P / a_s, Q / b_s)
        bone = np.maximum(bone, band((rs - 1) * 0.5 * (a_s + b_s), rng.uniform(3, 7), 0.8))
        rs2 = np.hypot((P - rng.uniform(-20, 20)) / 18, (Q - rng.uniform(-20, 20)) / 12)
        bone = np.maximum(bone, 0.6 * band((rs2 - 1) * 15, 2.5, 0.6))
    od = od - bone * body * rng.uniform(0.45, 0.8) * (od_tissue - od_lo)
    for _ in range(int(rng.integers(5, 16))):
        bx, by = rng.uniform(xs[0], xs[-1]), rng.uniform(ys[0], ys[-1])
        s = rng.uniform(5, 25)
        od += rng.uniform(-0.15, 0.15) * np.exp(-((X - bx) ** 2 + (Y - by) ** 2) / (2 * s * s))
    od = ndimage.gaussian_filter(od, 0.25 / step)
    return np.clip(od, od_lo, od_hi).astype(np.float32)


def _label_texture(rng, xs, ys, radius, tone, ink):
    """Label reflectance on the grid: paper disc with rows of text-like blocks."""
    img = np.full((ys.size, xs.size), tone, np.float32)
    step = float(xs[1] - xs[0])
    scale = 8                                       # draw at 8x, then average (antialias)
    canvas = np.zeros((ys.size * scale // 4, xs.size * scale // 4), np.uint8)
    f = scale / 4 / step                            # canvas px per mm

    def to_px(x, y):
        return (x - xs[0]) * f, (y - ys[0]) * f

    ang = rng.uniform(0, TAU)
    ca, sa = math.cos(ang), math.sin(ang)
    n_lines = int(rng.integers(3, 9))
    for li in range(n_lines):
        v = rng.uniform(-0.8, 0.8) * radius
        h = rng.uniform(0.04, 0.1) * radius
        half = math.sqrt(max(radius ** 2 - v ** 2, 0)) * rng.uniform(0.4, 0.85)
        u = -half
        while u < half:
            w = rng.uniform(0.03, 0.25) * radius
            w = min(w, half - u)
            if w > 0.01 * radius:
                corners = np.array([[u, v], [u + w, v], [u + w, v + h], [u, v + h]])
                xw = corners[:, 0] * ca - corners[:, 1] * sa
                yw = corners[:, 0] * sa + corners[:, 1] * ca
                px, py = to_px(xw, yw)
                pts = np.round(np.stack([px, py], 1) * 16).astype(np.int32)
                cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
            u += w + rng.uniform(0.01, 0.06) * radius
    cx, cy = to_px(0.0, 0.0)
    for _ in range(int(rng.integers(0, 3))):          # printed rings
        rr = rng.uniform(0.5, 0.95) * radius * f
        cv2.circle(canvas, (int(cx * 16), int(cy * 16)), int(rr * 16), 255,
                   max(1, int(0.01 * radius * f)), cv2.LINE_AA, 4)
    cover = cv2.resize(canvas.astype(np.float32) / 255, (xs.size, ys.size),
                       interpolation=cv2.INTER_AREA)
    return img * (1 - cover) + ink * cover


# ============================================================================ drawing


def _scatter_specks(rng, n, area_bbox, size_um, sign_bright_p):
    """Specks: arrays (x_mm, y_mm, radius_mm, ecc, angle, strength, bright)."""
    x0, x1, y0, y1 = area_bbox
    k = int(n)
    if k <= 0:
        return None
    # log-uniform sizes, more small than large
    d = np.exp(rng.uniform(np.log(size_um[0]), np.log(size_um[1]), k)) / 1000
    return dict(x=rng.uniform(x0, x1, k), y=rng.uniform(y0, y1, k), r=d / 2,
                ecc=rng.uniform(0.5, 1.0, k), ang=rng.uniform(0, 180, k),
                strength=rng.uniform(0.4, 1.0, k), bright=rng.random(k) < sign_bright_p)


def _curves(rng, n, area_bbox, length_mm, width_um, bright_p):
    """Smooth random polylines: list of (points_mm (m, 2), width_mm, strength, bright)."""
    x0, x1, y0, y1 = area_bbox
    out = []
    for _ in range(int(n)):
        L = rng.uniform(*length_mm)
        m = max(8, int(L / 0.1))
        heading = rng.uniform(0, TAU) + np.cumsum(rng.normal(0, rng.uniform(0.005, 0.08), m))
        step = L / m
        px = rng.uniform(x0, x1) + np.cumsum(step * np.cos(heading))
        py = rng.uniform(y0, y1) + np.cumsum(step * np.sin(heading))
        out.append((np.stack([px, py], 1), rng.uniform(*width_um) / 1000,
                    rng.uniform(0.3, 1.0), rng.random() < bright_p))
    return out


def _draw_occluders(shape, row0, specks, curves, px_r, px_c, cy, cx):
    """Draw specks and curves into two float masks (dark, bright) for rows
    ``row0 .. row0 + shape[0]`` (pixel level, antialiased). Positions in mm about the
    spiral centre ``(cy, cx)`` (mm from the image origin)."""
    nr, nc = shape
    dark = np.zeros(shape, np.uint8)
    bright = np.zeros(shape, np.uint8)
    S = 16                                                      # 4 fractional bits
    y_lo, y_hi = row0 * px_r - cy, (row0 + nr) * px_r - cy
    if specks is not None:
        sel = (specks["y"] + specks["r"] > y_lo - 0.5) & (specks["y"] - specks["r"] < y_hi + 0.5)
        for i in np.flatnonzero(sel):
            col = (specks["x"][i] + cx) / px_c
            row = (specks["y"][i] + cy) / px_r - row0
            ax = max(specks["r"][i] / px_c, 0.35)
            ay = max(specks["r"][i] * specks["ecc"][i] / px_r, 0.35)
            target = bright if specks["bright"][i] else dark
            val = int(255 * specks["strength"][i])
            cv2.ellipse(target, (int(round(col * S)), int(round(row * S))),
                        (int(round(ax * S)), int(round(ay * S))), float(specks["ang"][i]),
                        0, 360, val, -1, cv2.LINE_AA, 4)
    for pts, width, strength, is_bright in curves or ():
        if pts[:, 1].max() + width < y_lo - 0.5 or pts[:, 1].min() - width > y_hi + 0.5:
            continue
        cols = (pts[:, 0] + cx) / px_c
        rows = (pts[:, 1] + cy) / px_r - row0
        p = np.round(np.stack([cols, rows], 1) * S).astype(np.int32)
        thick = max(1, int(round(width / px_c)))
        cv2.polylines(bright if is_bright else dark, [p], False, int(255 * strength), thick,
                      cv2.LINE_AA, 4)
    return dark.astype(np.float32) / 255, bright.astype(np.float32) / 255


# ============================================================================= render


def _draw_habits(rng, mode, kind, given):
    """Fill the ``None`` (by seed) habits."""
    h = dict(HABIT_DEFAULTS)
    h.update(given)

    def pick(key, value):            # draw always (a stable stream), use only if unset
        if h.get(key) is None:
            h[key] = value

    pick("groove_shape", str(rng.choice(["v", "u", "trapezoid"])))
    pick("wall_half_angle_deg", float(rng.uniform(38, 55)))
    pick("lip", float(rng.uniform(0, 0.2)) if kind == "bone" else 0.0)
    pick("direction", int(rng.choice([-1, 1])))
    pick("theta_start", float(rng.uniform(0, TAU)))
    pick("outline", "polygon" if kind == "bone" else "round")
    pick("outline_wobble_mm", float(rng.uniform(0.5, 2.0)))
    pick("outline_facets", int(rng.integers(14, 45)))
    pick("hole_irregular", kind == "bone")
    pick("xray", kind == "bone")
    pick("lamp_level", float(rng.uniform(0.92, 1.12)))
    pick("lamp_azimuth", float(rng.choice([0.5, -0.5]) * np.pi + rng.normal(0, 0.15)))
    pick("k_wall", float(rng.uniform(0.35, 0.9)))
    pick("wall_gamma", float(rng.uniform(0.7, 2.0)))
    pick("asym_transmission", float(rng.uniform(0, 0.12)))
    pick("bottom_gain", float(rng.uniform(0.93, 1.07)))
    bright_land = rng.random() < 0.5
    pick("land_tone", float(rng.uniform(0.5, 0.85) if bright_land else rng.uniform(0.06, 0.25)))
    pick("wall_tone", float(rng.uniform(0.3, 0.6)))
    pick("asym", float(rng.uniform(0.05, 0.3)))
    pick("bottom_dim", float(rng.uniform(0.5, 0.95)))
    pick("lid_tone", float(rng.choice([rng.uniform(0.01, 0.06), rng.uniform(0.25, 0.6)])))
    pick("rim_dark", float(rng.uniform(0.2, 0.7) if mode == "transmission"
                           else rng.uniform(-0.5, 0.5)))
    if h["groove_bottom_mm"] is None:
        h["groove_bottom_mm"] = 0.0
    return h


def render_indie(audio, *, sr, dpi, rpm, pitch_mm, r_start_mm, groove_top_mm, mode,
                 seed, kind=None, bed_mm=None, disc_at_mm=None, margin_mm=5.0,
                 threads=2, strip_rows=128, out=None, progress=False, **habits):
    """Render a flatbed scan of a lateral-cut record playing ``audio``.

    Parameters
    ----------
    audio : array_like, shape (n,)
        Stylus velocity, arbitrary units, at ``sr``; scaled to ``peak_velocity_cm_s``.
    sr : int
        Sample rate of ``audio`` (Hz).
    dpi : float
        Nominal scan resolution (both axes; written to the file).
    rpm : float
        Nominal speed (the lathe ran at ``rpm * (1 + cut_speed_error)``).
    pitch_mm : float
        Groove pitch of the music (mm per turn).
    r_start_mm : float
        Radius of the groove centre where the music starts (mm).
    groove_top_mm : float
        Groove width at the land (mm).
    mode : {"transmission", "reflective"}
    seed : int
        Seeds every random choice not given explicitly.
    kind : {"bone", "shellac", "vinyl"}, optional
        Only steers the defaults of some habits (outline, hole, X-ray, lip).
    bed_mm : (float, float), optional
        ``(height, width)`` of the scanned area (mm). Default: the disc plus ``margin_mm``.
    disc_at_mm : (float, float), optional
        ``(y, x)`` of the spiral centre in the bed (mm from the first pixel's centre).
        Default: the bed's centre.
    margin_mm : float or (top, bottom, left, right)
        Without ``bed_mm``: margins around the disc outline (mm; negative crops it).
    threads : int
        Worker threads (strips are independent).
    strip_rows : int
        Rows per strip (a multiple of 8).
    out : callable, optional
        ``out(shape, dtype) -> array`` supplying the output array (e.g. a TIFF memmap);
        default: a new in-memory array.
    progress : bool
        Print progress to stderr.
    **habits
        Anything in :data:`HABIT_DEFAULTS` (record, brightness model, optics, scanner).

    Returns
    -------
    image : ndarray, shape (rows, cols), uint8 or uint16
    truth : dict
        See the module docstring for the conventions; keys ``centre_px``, ``px_mm``,
        ``dpi``, ``shape``, ``direction``, ``theta_start``, ``pitch_mm``,
        ``r_start_mm``, ``r_end_mm``, ``r_groove_outer_mm``, ``r_groove_inner_mm``,
        ``lead_in_s``, ``duration_s``, ``rpm``, ``rpm_cut``, ``sr``, ``velocity``,
        ``mode``, ``polarity``, ``habits``, ``groove``, ``disc``, ``gaps_s``.
    """
    t_start = time.perf_counter()
    unknown = set(habits) - set(HABIT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown habit(s): {sorted(unknown)}")
    if mode not in ("transmission", "reflective"):
        raise ValueError("mode must be 'transmission' or 'reflective'")
    if strip_rows % 8:
        raise ValueError("strip_rows must be a multiple of 8")
    rng = np.random.default_rng(seed)
    h = _draw_habits(rng, mode, kind, habits)
    if h["jpeg_quality"]:
        h["bits"] = 8
    sr = int(sr)
    audio = np.asarray(audio)
    duration_s = audio.size / sr
    rpm_cut = rpm * (1 + h["cut_speed_error"])
    gaps = [tuple(map(float, g)) for g in h["gaps_s"]]
    gap_pitch = h["gap_pitch_mm"] or 3.0 * pitch_mm
    # ---------------------------------------------------------------- groove
    pad_s = 0.25
    v_m_s, d_m = _velocity_and_displacement(audio, sr, h["peak_velocity_cm_s"] / 100, 20.0,
                                            gaps, pad_s)
    npad = int(round(pad_s * sr))
    velocity = v_m_s[npad:npad + audio.size].astype(np.float32)
    spiral = _Spiral(disp_m=d_m, sr=sr, pad_s=pad_s, duration_s=duration_s, rpm_cut=rpm_cut,
                     pitch_mm=pitch_mm, r_start_mm=r_start_mm,
                     lead_in_turns=h["lead_in_turns"], lead_in_pitch_mm=h["lead_in_pitch_mm"],
                     lead_out_turns=h["lead_out_turns"],
                     lead_out_pitch_mm=h["lead_out_pitch_mm"], locked=h["locked_groove"],
                     gaps_s=gaps, gap_pitch_mm=gap_pitch, pitch_jitter=h["pitch_jitter"],
                     rng=np.random.default_rng([seed, 1]))
    shape_rng = np.random.default_rng([seed, 2])
    if h["groove_shape"] == "trapezoid" and not h["groove_bottom_mm"]:
        h["groove_bottom_mm"] = float(groove_top_mm * shape_rng.uniform(0.25, 0.55))
    round_frac = (shape_rng.uniform(0.1, 0.35) if h["groove_shape"] == "v"
                  else shape_rng.uniform(1.0, 1.6))
    prof = _Profile(h["groove_shape"], groove_top_mm, h["groove_bottom_mm"],
                    h["wall_half_angle_deg"], round_frac, h["lip"],
                    groove_top_mm * shape_rng.uniform(0.05, 0.12))
    if 2 * spiral.max_disp_mm > pitch_mm - groove_top_mm:
        warnings.warn(f"peak displacement {spiral.max_disp_mm * 1000:.0f} um: neighbouring "
                      "turns may touch or cut into each other", stacklevel=2)
    # ---------------------------------------------------------------- disc
    drng = np.random.default_rng([seed, 3])
    disc_r = h["disc_radius_mm"] or spiral.r_outer + prof.reach + 1.5
    off = h["disc_offset_mm"]
    if off is None:
        off = ((drng.normal(0, 1.0), drng.normal(0, 1.0)) if h["outline"] == "polygon"
               else (0.0, 0.0))
    outline = _Outline(disc_r, h["outline"], drng, h["outline_wobble_mm"],
                       h["outline_facets"], off)
    hole_off = h["hole_offset_mm"]
    if hole_off is None:
        if kind == "bone":
            rr, aa = drng.uniform(0, 4), drng.uniform(0, TAU)
        else:
            rr, aa = drng.uniform(0, 0.3), drng.uniform(0, TAU)
        hole_off = (rr * math.cos(aa), rr * math.sin(aa))
    hole_r = h["hole_radius_mm"]
    hole_harm = ([(n, drng.uniform(0, 0.06) * hole_r, drng.uniform(0, TAU)) for n in range(2, 6)]
                 if h["hole_irregular"] else [])
    if spiral.r_outer + prof.reach > outline.r_min - math.hypot(*off):
        warnings.warn("the outermost groove runs off the disc outline somewhere", stacklevel=2)
    # ---------------------------------------------------------------- pixel frame
    px_nom = MM_PER_INCH / dpi
    px_c = px_nom
    px_r = px_nom * (1 + h["xy_scale_error"])
    ox, oy = off
    xmn, xmx, ymn, ymx = outline.extent()
    if bed_mm is not None:
        H = int(round(bed_mm[0] / px_r)) + 1
        W = int(round(bed_mm[1] / px_c)) + 1
        cy_mm, cx_mm = disc_at_mm if disc_at_mm is not None else (bed_mm[0] / 2, bed_mm[1] / 2)
    else:
        m = (margin_mm,) * 4 if np.isscalar(margin_mm) else tuple(margin_mm)
        top, bottom = oy + ymn - m[0], oy + ymx + m[1]
        left, right = ox + xmn - m[2], ox + xmx + m[3]
        H = int(math.ceil((bottom - top) / px_r)) + 1
        W = int(math.ceil((right - left) / px_c)) + 1
        cy_mm, cx_mm = -top, -left
    if H < 64 or W < 64:
        raise ValueError(f"image would be only {H} x {W} px")
    # ---------------------------------------------------------------- disc texture
    trng = np.random.default_rng([seed, 4])
    rad_tex = max(outline.r_max, disc_r) + math.hypot(ox, oy) + 1.0
    tex_step = float(np.clip(4 * px_nom, 0.05, 0.1))
    xs = np.arange(-rad_tex, rad_tex + tex_step, tex_step)
    ys = xs.copy()
    lamp = h["lamp_level"] if mode == "transmission" else 1.0
    label_r = h["label_radius_mm"] or 0.0
    if h["xray"]:
        od = _xray_od(trng, xs, ys, h["od_range"])
    else:
        od = None
    if mode == "transmission":
        tex = lamp * 10.0 ** (-(od if od is not None else
                               np.full((ys.size, xs.size), h["od_range"][0], np.float32)))
    else:
        sheen = 1 + 0.04 * _smooth_field(trng, (ys.size, xs.size), 30 / tex_step)
        if od is not None:                          # film on a white lid: seen through it
            tex = h["land_tone"] * sheen * (0.35 + 0.65 * 10.0 ** (-od))
        else:
            tex = h["land_tone"] * sheen
    tex = tex.astype(np.float32)
    if label_r > 0:
        paper = trng.uniform(0.3, 0.85)
        ink = trng.choice([trng.uniform(0.02, 0.15), trng.uniform(0.6, 0.95)])
        lab = _label_texture(trng, xs, ys, label_r, paper, ink)
        XX, YY = np.meshgrid(xs, ys)
        inside = np.clip((label_r - np.hypot(XX, YY)) / tex_step + 0.5, 0, 1)
        tex = (tex * (1 - inside) + lab * inside).astype(np.float32)
        if spiral.r_inner - prof.reach < label_r:
            warnings.warn("grooves run into the label", stacklevel=2)
    # ---------------------------------------------------------------- brightness model
    bed_val = lamp if mode == "transmission" else h["lid_tone"]
    # ---------------------------------------------------------------- dust & co
    orng = np.random.default_rng([seed, 5])
    area = (xmn + ox, xmx + ox, ymn + oy, ymx + oy)
    area_cm2 = (area[1] - area[0]) * (area[3] - area[2]) / 100
    bright_p = 0.1 if mode == "transmission" else 0.6
    rec_specks = _scatter_specks(orng, orng.poisson(h["record_dust"] * area_cm2), area,
                                 (5, 80), bright_p)
    rec_curves = _curves(orng, h["scratches"], area, (3, 40), (8, 30),
                         0.15 if mode == "transmission" else 0.7)
    img_area = (-cx_mm, W * px_c - cx_mm, -cy_mm, H * px_r - cy_mm)
    img_cm2 = W * px_c * H * px_r / 100
    glass_specks = _scatter_specks(orng, orng.poisson(h["glass_dust"] * img_cm2), img_area,
                                   (10, 200), bright_p)
    glass_curves = _curves(orng, h["fibres"], img_area, (1, 10), (10, 30), bright_p)
    # ---------------------------------------------------------------- sensor patterns
    srng = np.random.default_rng([seed, 6])
    col_gain = np.ones(W, np.float32)
    if h["column_gain_rms"]:
        g = srng.standard_normal(W)
        for _ in range(int(srng.integers(2, 12))):          # a few wider streaks
            c0 = srng.integers(0, W)
            wdt = int(srng.integers(1, 25))
            g[c0:c0 + wdt] += srng.normal(0, 3)
        col_gain += (h["column_gain_rms"] * g / np.std(g)).astype(np.float32)
    if h["lamp_profile"]:
        u = np.linspace(-1, 1, W)
        prof_l = 1 - h["lamp_profile"] * (srng.uniform(0.5, 1) * u ** 2
                                          + srng.uniform(-0.3, 0.3) * u)
        col_gain *= prof_l.astype(np.float32)
    if h["seam_period_px"] and h["seam_gain"]:
        period = h["seam_period_px"] * dpi / 2400
        seg = np.floor((np.arange(W) + srng.uniform(0, period)) / period).astype(int)
        n_seg = seg.max() + 1
        steps = 1 + h["seam_gain"] * srng.choice([-1, 1], n_seg) * srng.uniform(0.5, 1, n_seg)
        col_gain *= steps[seg].astype(np.float32)
    col_off = (h["column_offset_rms"] * srng.standard_normal(W)).astype(np.float32) \
        if h["column_offset_rms"] else None
    row_gain = np.ones(H, np.float32)
    if h["row_gain_rms"]:
        row_gain += (h["row_gain_rms"] * srng.standard_normal(H)).astype(np.float32)
    if h["lamp_drift"]:
        u = np.linspace(0, 1, H)
        drift = sum(srng.normal() * np.cos(np.pi * k * u + srng.uniform(0, TAU)) / k
                    for k in range(1, 4))
        drift += srng.normal() * u
        drift -= drift.mean()
        drift /= np.abs(drift).max() + 1e-12
        row_gain *= (1 + h["lamp_drift"] * drift).astype(np.float32)
    newton = None
    if h["newton_rings"]:
        nc_ = (srng.uniform(-0.2, 1.2) * W * px_c - cx_mm,
               srng.uniform(-0.2, 1.2) * H * px_r - cy_mm)
        env_r = srng.uniform(15, 60)
        rho1_sq = h["newton_period_mm"] * env_r
        newton = (nc_, env_r, rho1_sq, srng.uniform(0, TAU))
    # ---------------------------------------------------------------- context & strips
    if h["supersample"] is None:     # cells of at most half the PSF sigma, 2..4 per side
        h["supersample"] = int(np.clip(math.ceil(2 * px_nom * 1000 / h["psf_um"]), 2, 4))
    ss = int(h["supersample"])
    sig_c = h["psf_um"] / 1000 / px_c
    sig_r = h["psf_um"] / 1000 / px_r * (1 + h["psf_aniso"])
    halo_psf = int(math.ceil(3 * max(sig_r, sig_c) * (2 if h["psf_kind"] == "disk" else 1))) + 2
    halo_us = int(math.ceil(3 * h["unsharp_sigma_px"])) + 1 if h["unsharp"] else 0
    glass_sigma_px = 25e-3 / px_nom                          # ~25 um defocus blur
    bright = _Brightness(prof, mode, h, prof.reach + 2 * max(px_r, px_c) + 0.01)
    ctx = dict(h=h, spiral=spiral, prof=prof, bright=bright, outline=outline, mode=mode,
               px_r=px_r, px_c=px_c, cy=cy_mm, cx=cx_mm, H=H, W=W, ss=ss, sig_r=sig_r,
               sig_c=sig_c, halo_psf=halo_psf, halo_us=halo_us, tex=tex, tex_x0=xs[0], tex_step=tex_step, off=off,
               hole_off=hole_off, hole_r=hole_r, hole_harm=hole_harm, bed_val=bed_val,
               lamp=lamp, rec_specks=rec_specks, rec_curves=rec_curves,
               glass_specks=glass_specks, glass_curves=glass_curves,
               glass_sigma_px=glass_sigma_px, col_gain=col_gain, col_off=col_off,
               row_gain=row_gain, newton=newton, seed=seed,
               dir=int(h["direction"]), th0=float(h["theta_start"]))
    # column sampling of the texture (fixed for all strips)
    xcol = np.arange(W) * px_c - cx_mm
    fx = (xcol - xs[0]) / tex_step
    jc = np.clip(np.floor(fx).astype(np.int64), 0, xs.size - 2)
    ctx["tex_jc"], ctx["tex_fc"] = jc, np.clip(fx - jc, 0, 1).astype(np.float32)
    dtype = np.uint8 if h["bits"] == 8 else np.uint16
    image = out((H, W), dtype) if out is not None else np.empty((H, W), dtype)
    strips = [(i0, min(H, i0 + strip_rows)) for i0 in range(0, H, strip_rows)]
    done = [0]

    def store(i0, block):
        image[i0:i0 + block.shape[0]] = block
        done[0] += 1
        if progress and done[0] % max(1, len(strips) // 20) == 0:
            print(f"  {done[0]}/{len(strips)} strips, {time.perf_counter() - t_start:.0f} s",
                  file=sys.stderr)

    if threads > 1 and "fork" in mp.get_all_start_methods():
        # worker processes inherit ctx by fork (copy-on-write); strips come back pickled
        global _CTX
        _CTX = ctx
        try:
            with mp.get_context("fork").Pool(threads) as pool:
                for i0, block in pool.imap_unordered(_strip_job, strips):
                    store(i0, block)
        finally:
            _CTX = None
    elif threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            for i0, block in pool.map(lambda b: _finish_strip(ctx, *b), strips):
                store(i0, block)
    else:
        for b in strips:
            store(*_finish_strip(ctx, *b))
    # ---------------------------------------------------------------- truth
    centre = [cy_mm / px_r, cx_mm / px_c]
    direction, theta0 = int(h["direction"]), float(h["theta_start"])
    if h["mirrored"]:
        centre[1] = (W - 1) - centre[1]
        direction, theta0 = -direction, float(np.mod(np.pi - theta0, TAU))
    if mode == "transmission":
        polarity = "dark"
        pol_text = f"transmission: walls dark (k={h['k_wall']:.2f}) on film of OD-dependent land"
    else:
        ratio = h["wall_tone"] / h["land_tone"]
        polarity = "bright" if ratio > 1.08 else "dark" if ratio < 0.92 else "weak"
        pol_text = (f"reflective: land {h['land_tone']:.2f}, walls {h['wall_tone']:.2f} "
                    f"+- {h['asym']:.2f} (lamp side), bottom x{h['bottom_dim']:.2f}")
    truth = dict(
        centre_px=tuple(centre), px_mm=(px_r, px_c), dpi=(float(dpi), float(dpi)),
        shape=(H, W), direction=direction, theta_start=theta0, pitch_mm=float(pitch_mm),
        r_start_mm=float(r_start_mm), r_end_mm=spiral.r_end,
        r_groove_outer_mm=spiral.r_outer, r_groove_inner_mm=spiral.r_inner,
        lead_in_s=spiral.phi_in / (TAU * rpm / 60), duration_s=duration_s, rpm=float(rpm),
        rpm_cut=float(rpm_cut), sr=sr, velocity=velocity, mode=mode, kind=kind,
        polarity=polarity, polarity_text=pol_text, gaps_s=gaps,
        groove=dict(shape=prof.shape, top_mm=float(groove_top_mm), depth_mm=prof.depth,
                    bottom_mm=float(h["groove_bottom_mm"]), lip=float(h["lip"]),
                    max_displacement_um=spiral.max_disp_mm * 1000),
        disc=dict(radius_mm=float(disc_r), outline=outline.kind, offset_mm=tuple(off),
                  hole_radius_mm=float(hole_r), hole_offset_mm=tuple(hole_off),
                  label_radius_mm=float(label_r)),
        groove_path=dict(                  # nominal centre radius vs playing angle
            phi=spiral.phi_tab[::16].astype(np.float32),
            r_nom_mm=spiral.r_tab[::16],
            phi_music_start=spiral.phi_in,
            omega_cut=spiral.omega),
        habits={k: v for k, v in h.items()},
        render_s=time.perf_counter() - t_start,
    )
    return image, truth


_CTX = None          # the render context, for forked worker processes


def _strip_job(bounds):
    return _finish_strip(_CTX, *bounds)


def _finish_strip(ctx, i0, i1):
    """Render rows i0..i1 and apply the final image operations (mirror, JPEG)."""
    h = ctx["h"]
    block = _render_strip(ctx, i0, i1)
    if h["mirrored"]:
        block = block[:, ::-1]
    if h["jpeg_quality"]:
        _, buf = cv2.imencode(".jpg", np.ascontiguousarray(block),
                              [cv2.IMWRITE_JPEG_QUALITY, int(h["jpeg_quality"])])
        block = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return i0, np.ascontiguousarray(block)


def _row_noise(seed, tag, r0, r1, W, group=8):
    """Unit normal noise for rows r0..r1 (W columns), seeded per group of 8 rows, so a
    row gets the same noise whichever strip (or halo) asks for it."""
    out = np.empty((r1 - r0, W), np.float32)
    for g in range(r0 // group, (r1 - 1) // group + 1):
        block = np.random.default_rng([seed, tag, g % 2 ** 32]).standard_normal(
            (group, W), np.float32)
        a, b = max(r0, g * group), min(r1, (g + 1) * group)
        out[a - r0:b - r0] = block[a - g * group:b - g * group]
    return out


def _strip_base(ctx, r0, r1):
    """Pixel-level scene (linear light) for rows r0..r1: land/bed/hole/label, disc edge,
    film grain, with the per-pixel land value ``L`` and disc coverage ``cov``."""
    W, px_r, px_c = ctx["W"], ctx["px_r"], ctx["px_c"]
    rows = np.arange(r0, r1)
    y = (rows * px_r - ctx["cy"]).astype(np.float32)
    x = (np.arange(W) * px_c - ctx["cx"]).astype(np.float32)
    outline = ctx["outline"]
    ox, oy = ctx["off"]
    # texture (land brightness): separable bilinear
    tex, step, x0 = ctx["tex"], ctx["tex_step"], ctx["tex_x0"]
    fy = (y - x0) / step
    iy = np.clip(np.floor(fy).astype(np.int64), 0, tex.shape[0] - 2)
    wy = np.clip(fy - iy, 0, 1)[:, None]
    A = tex[iy] * (1 - wy) + tex[iy + 1] * wy
    jc, fc = ctx["tex_jc"], ctx["tex_fc"]
    L = A[:, jc] * (1 - fc) + A[:, jc + 1] * fc
    h = ctx["h"]
    if h["grain"]:
        L *= 1 + h["grain"] * _row_noise(ctx["seed"], 7, r0, r1, W)
    # disc coverage (outline), rim
    Y = y[:, None]
    X = x[None, :]
    pxe = 0.5 * (px_r + px_c)
    rd = np.hypot(X - ox, Y - oy)
    cov = (rd < outline.r_min - 2 * pxe).astype(np.float32)
    band = (rd >= outline.r_min - 2 * pxe) & (rd <= outline.r_max + 2 * pxe)
    rim = h["rim_dark"]
    rim_w = 0.06
    if rim:
        band |= (rd >= outline.r_min - 6 * rim_w) & (rd <= outline.r_max)
    if np.any(band):
        bi = np.nonzero(band)
        sd = outline.signed_distance(X[0, bi[1]] - ox, y[bi[0]] - oy)
        cov[bi] = np.clip(0.5 - sd / pxe, 0, 1)
        if rim:
            L[bi] *= 1 - rim * np.exp(-(np.minimum(sd, 0) / rim_w) ** 2)
    # hole (through-light or the lid)
    hx, hy = ctx["hole_off"]
    hr = ctx["hole_r"]
    rh = np.hypot(X - hx, Y - hy)
    near = rh < hr * 1.3 + 2 * pxe
    if np.any(near):
        ni = np.nonzero(near)
        xx, yy = X[0, ni[1]] - hx, y[ni[0]] - hy
        rad = np.full(xx.shape, hr, np.float32)
        if ctx["hole_harm"]:
            th = np.arctan2(yy, xx)
            for n, amp, ph in ctx["hole_harm"]:
                rad += amp * np.cos(n * th + ph)
        hole_cov = np.clip(0.5 - (np.hypot(xx, yy) - rad) / pxe, 0, 1)
        cov[ni] *= 1 - hole_cov
    return L, cov


class _Brightness:
    """Relative brightness across the groove, tabulated finely in ``u`` (mm).

    ``B / L = P(u) + gl * Q(u)``: ``L`` the land brightness at the pixel, ``gl`` the
    lamp cosine of the groove normal (``Q`` carries the wall's sign). Antiderivatives
    of P and Q give exact box averages over a sub-pixel cell's extent in ``u``: area
    integration without point-sampling artefacts.
    """

    def __init__(self, prof, mode, h, half_range_mm):
        n = 40001
        u = np.linspace(-half_range_mm, half_range_mm, n)
        self.u0, self.du = u[0], u[1] - u[0]
        z, dz = prof.eval(u)
        G = np.abs(dz)
        s = G / np.sqrt(1 + G * G)
        w = np.minimum(1.0, (s / prof.s_ref) ** h["wall_gamma"])
        depth = np.clip(-z / prof.depth, 0, 1)
        sg = np.sign(dz)
        if mode == "transmission":
            fb = 1 + (h["bottom_gain"] - 1) * depth
            P = fb * (1 - h["k_wall"] * w)
            Q = sg * fb * h["k_wall"] * w * h["asym_transmission"]
        else:
            flat = 1 - (1 - h["bottom_dim"]) * depth
            P = (1 - w) * flat + w * h["wall_tone"] / h["land_tone"]
            Q = -sg * w * h["asym"] / h["land_tone"]

        def integral(v):
            return np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1])) * self.du])

        # P + iQ as complex64 (one gather fetches both): value at each node and the
        # step to the next, for the point values and for the antiderivatives
        pq = (P + 1j * Q).astype(np.complex64)
        cpq = (integral(P) + 1j * integral(Q)).astype(np.complex64)
        self.point_tab = (pq[:-1].copy(), np.diff(pq))
        self.cum_tab = (cpq[:-1].copy(), np.diff(cpq))
        self.n = n - 1

    def _lookup(self, tab, u):
        pos = (u - np.float32(self.u0)) * np.float32(1.0 / self.du)
        i = pos.astype(np.int32)
        np.clip(i, 0, self.n - 1, out=i)
        f = pos - i
        return tab[0][i] + f * tab[1][i]

    def point_rel(self, u, gl):
        """``B / L`` at ``u`` (rows of ``u``: pixels with lamp cosine ``gl``)."""
        v = self._lookup(self.point_tab, u)
        return v.real + gl[:, None] * v.imag

    def box_rel(self, u, hw, gl):
        """``B / L`` averaged over ``[u - hw, u + hw]``."""
        v = self._lookup(self.cum_tab, u + hw) - self._lookup(self.cum_tab, u - hw)
        return (v.real + gl[:, None] * v.imag) / (2 * hw)


def _groove_block(ctx, r0, r1, c0, c1, L, cov, base_ss, occ=None):
    """Fill ``base_ss`` (the supersampled scene of rows r0..r1, cols c0..c1) with the
    groove brightness of every sub-pixel cell near a groove.

    Per pixel: polar coordinates, the nearest turns (three candidates about the turn
    the nominal spiral predicts), the local gradient of ``u`` (groove-normal offset).
    Per sub-pixel cell: ``u`` at its centre (displacement interpolated at the cell's
    own playing angle) and the brightness averaged over the cell's extent in ``u``
    (a box with the variance of the cell's projection). Where two turns reach into a
    pixel (over-cut) the cells are point-sampled on the combined surface instead.
    """
    sp, prof, h = ctx["spiral"], ctx["prof"], ctx["h"]
    bt = ctx["bright"]
    ss, px_r, px_c = ctx["ss"], ctx["px_r"], ctx["px_c"]
    dirn, th0 = ctx["dir"], ctx["th0"]
    y = np.arange(r0, r1) * px_r - ctx["cy"]
    x = np.arange(c0, c1) * px_c - ctx["cx"]
    reach = prof.reach + 0.5 * math.hypot(px_r, px_c) + 0.002
    r_lo, r_hi = sp.r_inner - reach - sp.max_disp_mm, sp.r_outer + reach + sp.max_disp_mm
    Y, X = np.meshgrid(y, x, indexing="ij")
    R = np.hypot(X, Y)
    sel = np.flatnonzero(((R > r_lo) & (R < r_hi)).ravel())
    if sel.size == 0:
        return
    r = R.ravel()[sel]
    xp, yp = X.ravel()[sel], Y.ravel()[sel]
    del X, Y, R
    th = np.arctan2(yp, xp)
    phib = np.mod(dirn * (th - th0), TAU)
    k0 = np.rint((sp.phi_of_r(r) - phib) / TAU)
    U, PH = [], []
    for dk in (-1, 0, 1):
        ph = phib + TAU * (k0 + dk)
        ok = (ph >= 0) & (ph <= sp.phi_total)
        rn, _ = sp.r_nom(ph)
        U.append(np.where(ok, r - rn - sp.disp_at(ph), 1e3))
        PH.append(ph)
    # nearest and second-nearest turn
    aU = [np.abs(v) for v in U]
    m01 = aU[0] <= aU[1]
    u1, ph1, a1 = np.where(m01, U[0], U[1]), np.where(m01, PH[0], PH[1]), np.minimum(aU[0], aU[1])
    u2, ph2, a2 = np.where(m01, U[1], U[0]), np.where(m01, PH[1], PH[0]), np.maximum(aU[0], aU[1])
    m2 = aU[2] < a1
    u2, ph2 = np.where(m2, u1, np.where(aU[2] < a2, U[2], u2)), \
        np.where(m2, ph1, np.where(aU[2] < a2, PH[2], ph2))
    u1, ph1 = np.where(m2, U[2], u1), np.where(m2, PH[2], ph1)
    del U, PH, aU, a1, a2
    act = np.abs(u1) < reach
    if not np.any(act):
        return
    a_idx = np.flatnonzero(act)
    second = np.abs(u2) < reach
    off = (np.arange(ss) + 0.5) / ss - 0.5
    dyo, dxo = np.meshgrid(off * px_r, off * px_c, indexing="ij")
    dyo, dxo = dyo.ravel().astype(np.float32), dxo.ravel().astype(np.float32)
    nc = c1 - c0
    # flat index into base_ss of every active pixel's first cell, and the cell offsets
    pr_all, pc_all = np.divmod(sel[a_idx], nc)
    first_cell = (pr_all * (ss * ss * nc) + pc_all * ss).astype(np.int64)
    cell_off = (np.repeat(np.arange(ss), ss) * (ss * nc) + np.tile(np.arange(ss), ss))[None, :]
    out_flat = base_ss.reshape(-1)
    Lf, covf = L.ravel(), cov.ravel()
    lam = h["lamp_azimuth"]
    lx, ly = math.cos(lam), math.sin(lam)
    bed = ctx["bed_val"]
    CH = 50000
    for s0 in range(0, a_idx.size, CH):
        ai = a_idx[s0:s0 + CH]
        # cell offsets: radius and playing angle, to first order (error < 1 nm); the
        # small quantities are float32, absolute angles and radii float64
        rr = r[ai]
        cth, sth = (xp[ai] / rr).astype(np.float32), (yp[ai] / rr).astype(np.float32)
        dr = cth[:, None] * dxo + sth[:, None] * dyo
        dphi = (dirn * (cth[:, None] * dyo - sth[:, None] * dxo)) / rr.astype(np.float32)[:, None]

        def cell_u(uu, pp, k=slice(None)):
            """u at the cell centres (mm) and per-pixel q = dR/dtheta / r, for the
            pixels ``k`` of the chunk."""
            _, rp = sp.r_nom(pp)
            dc, ddp = sp.disp_at(pp, derivative=True)
            dsub = sp.disp_at(pp[:, None] + dphi[k])
            us = (uu + dc).astype(np.float32)[:, None] + dr[k] \
                - rp.astype(np.float32)[:, None] * dphi[k] - dsub
            return us, (dirn * (rp + ddp) / rr[k]).astype(np.float32)

        us, q = cell_u(u1[ai], ph1[ai])
        gn = np.sqrt(1 + q * q)
        # grad u = r_hat - q theta_hat; its projection of a cell, and the lamp cosine
        gx, gy = cth + q * sth, sth - q * cth
        gl = (gx * lx + gy * ly) / gn
        # a box with the variance of the cell's (trapezoidal) projection onto u
        hw = 0.5 * np.sqrt((gx * px_c / ss) ** 2 + (gy * px_r / ss) ** 2)
        hw = np.maximum(hw, 1e-5)
        rel = bt.box_rel(us, hw[:, None], gl)
        two = second[ai]
        if np.any(two):            # a second turn reaches into the pixel
            t_i = np.flatnonzero(two)
            usA = us[t_i]
            usB, qB = cell_u(u2[ai][t_i], ph2[ai][t_i], t_i)
            gnB = np.sqrt(1 + qB * qB)
            gxB, gyB = cth[t_i] + qB * sth[t_i], sth[t_i] - qB * cth[t_i]
            glB = (gxB * lx + gyB * ly) / gnB
            hwB = np.maximum(0.5 * np.sqrt((gxB * px_c / ss) ** 2 + (gyB * px_r / ss) ** 2), 1e-5)
            relB = bt.box_rel(usB, hwB[:, None], glB)
            relA = rel[t_i]
            inA = np.abs(usA) - hw[t_i][:, None] < prof.reach
            inB = np.abs(usB) - hwB[:, None] < prof.reach
            mix = np.where(inB & ~inA, relB, relA)
            both = inA & inB
            if np.any(both):       # over-cut cells: point-sample the combined surface
                zA, _ = prof.eval(usA)
                zB, _ = prof.eval(usB)
                useB = np.where(np.minimum(zA, zB) < 0, zB < zA, zB > zA)
                pA = bt.point_rel(usA, gl[t_i])
                pB = bt.point_rel(usB, glB)
                mix = np.where(both, np.where(useB, pB, pA), mix)
            rel[t_i] = mix
        pix = sel[ai]
        B = Lf[pix][:, None] * rel.astype(np.float32)
        cv = covf[pix][:, None]
        B = cv * B + (1 - cv) * bed
        if occ is not None:                       # record dust lies on the groove
            dk, bk = occ[0].ravel()[pix][:, None], occ[1].ravel()[pix][:, None]
            B = B * (1 - dk) + bk * (occ[2] - B * (1 - dk)) * 0.8
        out_flat[first_cell[s0:s0 + CH][:, None] + cell_off] = B


def _resize(img, width, height, interpolation):
    """cv2.resize in column pieces (OpenCV limits image sides to 32767 px)."""
    if max(img.shape[1], width) < 32000:
        return cv2.resize(img, (width, height), interpolation=interpolation)
    f = width // img.shape[1] if width >= img.shape[1] else None
    step = 8192
    parts = []
    for j in range(0, img.shape[1] if f else width, step):
        if f:                                    # upsampling by an integer factor
            piece = img[:, j:j + step]
            parts.append(cv2.resize(piece, (piece.shape[1] * f, height),
                                    interpolation=interpolation))
        else:                                    # downsampling by an integer factor
            k = img.shape[1] // width
            piece = img[:, j * k:(j + step) * k]
            parts.append(cv2.resize(piece, (piece.shape[1] // k, height),
                                    interpolation=interpolation))
    return np.concatenate(parts, axis=1)


def _psf(img, sig_r, sig_c, kind):
    """Blur with the PSF (sizes in pixels of ``img``)."""
    if kind == "disk":
        rad_r, rad_c = 2 * sig_r, 2 * sig_c
        n_r, n_c = int(math.ceil(rad_r)) + 1, int(math.ceil(rad_c)) + 1
        yy, xx = np.mgrid[-n_r:n_r + 1, -n_c:n_c + 1].astype(np.float32)
        # antialiased disk: 4x4 sub-samples per tap
        acc = np.zeros_like(yy)
        for a in (-0.375, -0.125, 0.125, 0.375):
            for b in (-0.375, -0.125, 0.125, 0.375):
                acc += ((yy + a) / rad_r) ** 2 + ((xx + b) / rad_c) ** 2 <= 1
        k = acc / acc.sum()
        return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=max(sig_c, 0.05), sigmaY=max(sig_r, 0.05),
                            borderType=cv2.BORDER_REPLICATE)


def _render_strip(ctx, i0, i1):
    """Render output rows i0..i1 (encoded, final dtype)."""
    h = ctx["h"]
    H, W, ss = ctx["H"], ctx["W"], ctx["ss"]
    hp, hu = ctx["halo_psf"], ctx["halo_us"]
    e0, e1 = i0 - hu, i1 + hu                        # rows the sensor stage needs
    s0, s1 = e0 - hp, e1 + hp                        # rows the optics need
    px_r, px_c = ctx["px_r"], ctx["px_c"]
    L, cov = _strip_base(ctx, s0, s1)
    scene = cov * L + (1 - cov) * np.float32(ctx["bed_val"])   # hole shows the bed too
    # record dust & scratches (in focus)
    dark, bright = _draw_occluders(scene.shape, s0, ctx["rec_specks"], ctx["rec_curves"],
                                   px_r, px_c, ctx["cy"], ctx["cx"])
    dark *= cov                                      # on the record only
    bright *= cov
    occl = np.any(dark) or np.any(bright)
    bright_level = 0.9 if ctx["mode"] == "reflective" else 0.5 * ctx["lamp"]
    if occl:
        scene = scene * (1 - dark) + bright * (bright_level - scene * (1 - dark)) * 0.8
    # pixel-level optics everywhere (exact for smooth regions)
    sig_r_eff = math.sqrt(ctx["sig_r"] ** 2 + 1 / 12)
    sig_c_eff = math.sqrt(ctx["sig_c"] ** 2 + 1 / 12)
    blurred = _psf(scene, sig_r_eff, sig_c_eff, h["psf_kind"])
    # supersampled optics where grooves are
    sp, prof = ctx["spiral"], ctx["prof"]
    r_hi = sp.r_outer + prof.reach + sp.max_disp_mm + 0.05
    yl = np.array([s0, s1 - 1]) * px_r - ctx["cy"]
    ymin = 0.0 if yl[0] <= 0 <= yl[1] else float(np.min(np.abs(yl)))
    if ymin < r_hi:
        half = math.sqrt(r_hi ** 2 - ymin ** 2)
        c0 = max(0, int(math.floor((ctx["cx"] - half) / px_c)) - hp)
        c1 = min(W, int(math.ceil((ctx["cx"] + half) / px_c)) + hp + 1)
        if c1 > c0:
            sub = np.ascontiguousarray(scene[:, c0:c1])
            n, m = sub.shape
            base_ss = _resize(sub, m * ss, n * ss, cv2.INTER_NEAREST)
            occ = (dark[:, c0:c1], bright[:, c0:c1], bright_level) if occl else None
            _groove_block(ctx, s0, s1, c0, c1, L[:, c0:c1], cov[:, c0:c1], base_ss, occ)
            bl = _psf(base_ss, ctx["sig_r"] * ss, ctx["sig_c"] * ss, h["psf_kind"])
            del base_ss
            bl = _resize(bl, m, n, cv2.INTER_AREA)        # exact ss x ss box average
            # keep the pixel-level result at the block's side edges (filter borders)
            k0 = hp if c0 > 0 else 0
            k1 = m - hp if c1 < W else m
            blurred[:, c0 + k0:c0 + k1] = bl[:, k0:k1]
    img = blurred[hp:hp + (e1 - e0)]                   # rows e0..e1
    rows = np.arange(e0, e1)
    x = np.arange(W) * px_c - ctx["cx"]
    # glass: out-of-focus dust and fibres
    if ctx["glass_specks"] is not None or ctx["glass_curves"]:
        g = int(math.ceil(3 * ctx["glass_sigma_px"]))
        gd, gb = _draw_occluders((e1 - e0 + 2 * g, W), e0 - g, ctx["glass_specks"],
                                 ctx["glass_curves"], px_r, px_c, ctx["cy"], ctx["cx"])
        if np.any(gd) or np.any(gb):
            gd = cv2.GaussianBlur(gd, (0, 0), ctx["glass_sigma_px"])[g:g + e1 - e0]
            gb = cv2.GaussianBlur(gb, (0, 0), ctx["glass_sigma_px"])[g:g + e1 - e0]
            img = img * (1 - 0.9 * gd) + 0.6 * gb * ctx["lamp"]
    if ctx["newton"] is not None:
        (ncx, ncy), env_r, rho1_sq, ph = ctx["newton"]
        yy = (rows * px_r - ctx["cy"] - ncy)[:, None]
        rho2 = (x[None, :] - ncx) ** 2 + yy ** 2
        img = img * (1 + h["newton_rings"] * np.exp(-rho2 / env_r ** 2)
                     * np.cos(np.pi * rho2 / rho1_sq + ph)).astype(np.float32)
    img = img * ctx["row_gain"][np.clip(rows, 0, H - 1)][:, None] * ctx["col_gain"][None, :]
    if ctx["col_off"] is not None:
        img = img + ctx["col_off"][None, :]
    # noise: read + shot, seeded per row (independent of the strip layout)
    nz = h["noise"]
    if nz:
        std = np.sqrt(nz * nz + 4 * nz * nz * np.maximum(img, 0)).astype(np.float32)
        img = img + std * _row_noise(ctx["seed"], 8, e0, e1, W)
    enc = np.clip(img, 0, 1)
    if h["gamma"]:
        enc = enc ** (1.0 / h["gamma"])
    if h["unsharp"]:
        enc = enc + h["unsharp"] * (enc - cv2.GaussianBlur(enc, (0, 0), h["unsharp_sigma_px"],
                                                           borderType=cv2.BORDER_REPLICATE))
        enc = np.clip(enc, 0, 1)
    enc = enc[hu:hu + (i1 - i0)]
    top = 255 if h["bits"] == 8 else 65535
    return np.rint(enc * top).astype(np.uint8 if h["bits"] == 8 else np.uint16)


# ======================================================================= random discs

_KIND_P = {"bone": 0.5, "shellac": 0.25, "vinyl": 0.25}


def random_disc(seed, *, scale="small", sr=44100, max_side_px=3000):
    """Draw a random record, its programme, scanner and scanner habits.

    Parameters
    ----------
    seed : int
    scale : {"small", "full"}
        "full": real sizes (bone 7-9 in, shellac 10/12 in, vinyl 7/12 in), programmes
        of 5 s to a few minutes anywhere from r = 25 mm (or the label) to near the edge
        (30 % short, 5-15 s, in a narrow annulus near the edge), 1200-4800 dpi (vinyl
        >= 2400), a tight crop (margins -1..10 mm) or a whole A4/A3 scanner bed with
        the disc anywhere, sometimes partly off the bed.

        "small": the same kinds, grooves and habits on a disc of 50-80 mm diameter
        with a 3-10 s programme in its outer third, for tests that render and decode
        in seconds. dpi is drawn from 1200-2400; to keep the image side below
        ``max_side_px`` the disc shrinks (to 50 mm) and then the dpi drops (not below
        1200; vinyl stays at 2400 and exceeds the budget, ~5600 px). At such radii
        and dpi the groove carries few pixels per second, so the programme's top
        frequency is capped at a third of the groove's spatial sample rate at the
        inner end of the music (~2-3 kHz); "full" keeps each kind's band.
    sr : int
        Sample rate of the programme.
    max_side_px : int
        "small" only: largest image side (pixels).

    Returns
    -------
    dict
        ``kind``; ``render``: keyword arguments of :func:`render_indie` (all but
        ``audio``); ``audio``: keyword arguments of :func:`make_programme`.
    """
    if scale not in ("small", "full"):
        raise ValueError("scale must be 'small' or 'full'")
    rng = np.random.default_rng([int(seed), 1000])
    kind = str(rng.choice(list(_KIND_P), p=list(_KIND_P.values())))
    hab = {}
    if kind == "bone":
        diam_in = rng.uniform(7, 9)
        pitch = rng.uniform(0.19, 0.26)
        rpm = float(rng.choice([78, 77.92, 78.26, 45, 33.333], p=[.5, .125, .125, .125, .125]))
        mode = "transmission" if rng.random() < 0.8 else "reflective"
        top = rng.uniform(0.10, min(0.15, 0.75 * pitch))
        band, turnover = (100.0, 6000.0), rng.uniform(250, 500)
        label_full = 0.0
        hab["cut_speed_error"] = float(rng.uniform(-0.03, 0.03))
        hab["pitch_jitter"] = float(rng.uniform(0, 0.04))
        hab["grain"] = float(rng.uniform(0, 0.03))
        hab["od_range"] = (0.3, float(rng.uniform(1.0, 2.0)))
    elif kind == "shellac":
        diam_in = float(rng.choice([10, 12]))
        pitch = rng.uniform(0.25, 0.32)
        rpm = float(rng.choice([78, 77.92, 78.26], p=[.6, .2, .2]))
        mode = "reflective"
        top = rng.uniform(0.13, 0.17)
        band, turnover = (80.0, 8000.0), rng.uniform(250, 500)
        label_full = rng.uniform(38, 45) if diam_in == 10 else rng.uniform(45, 52)
        hab["pitch_jitter"] = float(rng.uniform(0, 0.01))
        hab["grain"] = float(rng.uniform(0, 0.01))
    else:
        diam_in = float(rng.choice([7, 12]))
        rpm = 45.0 if diam_in == 7 else 33.333
        if rng.random() < 0.1:
            rpm = 33.333 if rpm == 45 else 45.0
        pitch = rng.uniform(0.07, 0.125)
        mode = "reflective"
        top = rng.uniform(0.04, min(0.06, 0.8 * pitch))
        band, turnover = (30.0, 16000.0), rng.uniform(400, 700)
        label_full = rng.uniform(42, 47) if diam_in == 7 else rng.uniform(48, 52)
        hab["grain"] = float(rng.uniform(0, 0.005))
    disc_r_full = diam_in * MM_PER_INCH / 2
    hab["peak_velocity_cm_s"] = float(rng.uniform(3, 7))
    hab["mirrored"] = bool(rng.random() < 0.3)
    # ---- lead-in / lead-out / gaps
    lead_in_turns = float(rng.uniform(0, 1.5)) if rng.random() < 0.8 else 0.0
    lead_in_pitch = float(rng.uniform(min(2 * pitch, 1.4), 1.5))
    lead_out_turns = float(rng.uniform(0, 1.5)) if rng.random() < 0.7 else 0.0
    lead_out_pitch = float(rng.uniform(min(2 * pitch, 1.4), 1.5))
    locked = bool(rng.random() < (0.2 if kind == "bone" else 0.5)) and lead_out_turns > 0.3
    # ---- disc size and programme
    if scale == "full":
        disc_r = disc_r_full
        label_r = label_full
        r_floor = max(25.0, label_r + 3.0)
        if rng.random() < 0.3:
            duration = float(rng.uniform(5, 15))
            placement = "edge"
        else:
            duration = float(rng.uniform(20, {"bone": 200, "shellac": 200, "vinyl": 300}[kind]))
            placement = "any"
    else:
        # scanner first: the disc shrinks (to >= 25 mm radius), then the dpi drops (to
        # >= 1200, vinyl >= 2400), until the image side fits max_side_px
        dpi = 2400.0 if kind == "vinyl" else float(rng.choice([1200, 1600, 2000, 2400]))
        margins = tuple(float(m) for m in rng.uniform(0.5, 4.0, 4))
        extra = 2 * 2.0 + max(margins[0] + margins[1], margins[2] + margins[3])
        disc_r = float(rng.uniform(25, 40))
        r_fit = (max_side_px * MM_PER_INCH / dpi - extra) / 2
        disc_r = max(25.0, min(disc_r, r_fit))
        if 2 * disc_r + extra > max_side_px * MM_PER_INCH / dpi:
            floor_dpi = 2400.0 if kind == "vinyl" else 1200.0
            dpi = float(max(floor_dpi, math.floor(
                max_side_px * MM_PER_INCH / (2 * disc_r + extra) / 50) * 50))
        label_r = disc_r * label_full / disc_r_full if label_full else 0.0
        # grooves in the outer 30 %: small radii starve the spatial sampling
        r_floor = max(0.65 * disc_r, label_r + 2.0)
        duration = float(rng.uniform(3, 10))
        placement = "edge" if rng.random() < 0.5 else "any"
    edge_margin = float(rng.uniform(1, 6) if kind == "bone" else rng.uniform(2, 5))
    wobble = float(rng.uniform(0.5, 2.0)) if kind == "bone" else 0.0
    if scale == "small":
        edge_margin, wobble = 0.35 * edge_margin, 0.5 * wobble
    if kind == "bone":                                # scissor cut: facets, off-centre
        facets = int(rng.integers(14, 45))
        off = rng.normal(0, 0.5 if scale == "small" else 1.0, 2)
        hab.update(outline_facets=facets, disc_offset_mm=(float(off[0]), float(off[1])))
        sag = disc_r * (1 - math.cos(math.pi / facets)) + float(np.hypot(*off))
    else:
        sag = 0.0
    r_top = disc_r - wobble - sag - 0.5 - edge_margin          # outermost groove
    lead_in_turns = min(lead_in_turns, max(0.0, (r_top - r_floor) * 0.2 / lead_in_pitch))
    r_music_max = r_top - lead_in_turns * lead_in_pitch
    gaps = []
    if rng.random() < {"bone": 0.1, "shellac": 0.1, "vinyl": 0.5}[kind] and duration > 6:
        for _ in range(int(rng.integers(1, 4))):
            g0 = float(rng.uniform(0.15, 0.85) * duration)
            gaps.append((g0, g0 + float(rng.uniform(0.5, min(3.0, duration / 6)))))
        gaps.sort()
        merged = []
        for g in gaps:
            if merged and g[0] < merged[-1][1] + 0.5:
                continue
            merged.append(g)
        gaps = merged
    gap_pitch = float(rng.uniform(2, 4) * pitch)

    def extent(dur):
        turns = dur * rpm / 60
        gap_turns = sum(b - a for a, b in gaps) * rpm / 60
        return (turns - gap_turns) * pitch + gap_turns * gap_pitch

    room = r_music_max - r_floor
    if extent(duration) > room:                         # shorten to fit
        duration = max(1.0, duration * room / extent(duration) * 0.95)
        gaps = [g for g in gaps if g[1] < duration - 1]
        if extent(duration) > room:
            gaps = []
            duration = max(1.0, room / extent(1.0) * 0.95)
    if placement == "edge":
        r_start = r_music_max - float(rng.uniform(0, min(2.0, max(0.0, room - extent(duration)))))
    else:
        lo = min(r_floor + extent(duration), r_music_max)
        r_start = float(rng.uniform(lo, r_music_max))
    r_end = r_start - extent(duration)
    if scale == "small":
        # small discs: keep the programme's top below ~1/3 of the groove's spatial
        # sample rate at r_end (full-size discs keep their band, as real ones do)
        px_per_s = TAU * r_end * rpm / 60 / (MM_PER_INCH / dpi)
        band = (band[0], float(min(band[1], max(4 * band[0], px_per_s / 3))))
    lo_room = r_end - r_floor
    lead_out_turns = min(lead_out_turns, max(0.0, lo_room * 0.8 / lead_out_pitch))
    if lead_out_turns < 0.3:
        locked = False
    hab.update(lead_in_turns=lead_in_turns, lead_in_pitch_mm=lead_in_pitch,
               lead_out_turns=lead_out_turns, lead_out_pitch_mm=lead_out_pitch,
               locked_groove=locked, gaps_s=tuple(gaps), gap_pitch_mm=gap_pitch,
               disc_radius_mm=disc_r, label_radius_mm=label_r,
               outline_wobble_mm=wobble if wobble else None)
    if kind == "bone":
        hab["hole_radius_mm"] = float(rng.uniform(3, 4))
    elif kind == "vinyl" and diam_in == 7 and rng.random() < 0.3 and label_r > 25:
        hab["hole_radius_mm"] = 19.05                     # big-hole 45
    else:
        hab["hole_radius_mm"] = 3.62
    if scale == "small":
        hab["hole_radius_mm"] = min(hab["hole_radius_mm"], 0.3 * r_floor)
    # ---- scanner
    if scale == "full":
        if kind == "vinyl":
            dpi = float(rng.choice([2400, 3200, 4800], p=[.5, .2, .3]))
        else:
            dpi = float(rng.choice([1200, 1600, 2400, 3200, 4800], p=[.15, .15, .4, .15, .15]))
    if scale == "full":
        margins = tuple(float(m) for m in rng.uniform(-1.0, 10.0, 4))
    margins = tuple(max(m, -(edge_margin - 0.5)) for m in margins)   # never crop grooves
    bed_mm = disc_at = None
    if scale == "full" and rng.random() < 0.4:
        bed = (297.0, 210.0) if diam_in <= 9.5 else (420.0, 297.0)
        if rng.random() < 0.5:
            bed = bed[::-1]
        bed_mm = bed
        if rng.random() < 0.15:                           # part of the disc off the bed
            disc_at = (float(rng.uniform(0.3, 0.7) * bed[0]),
                       float(rng.choice([disc_r - 8, bed[1] - disc_r + 8])))
        else:
            disc_at = tuple(float(rng.uniform(min(disc_r, b / 2), max(b - disc_r, b / 2)))
                            for b in bed)
    # ---- habits
    on = lambda p: rng.random() < p                      # noqa: E731
    hab.update(
        psf_um=float(rng.uniform(5, 15)),
        psf_kind="gaussian" if on(0.7) else "disk",
        psf_aniso=float(rng.uniform(0, 0.4)),
        column_gain_rms=float(rng.uniform(0.001, 0.01)) if on(0.5) else 0.0,
        row_gain_rms=float(rng.uniform(0.0005, 0.005)) if on(0.4) else 0.0,
        column_offset_rms=float(rng.uniform(0.0005, 0.003)) if on(0.3) else 0.0,
        lamp_drift=float(rng.uniform(0.02, 0.08)) if on(0.5) else 0.0,
        lamp_profile=float(rng.uniform(0.02, 0.1)) if on(0.4) else 0.0,
        seam_period_px=1728 if on(0.3) else 0,
        seam_gain=float(rng.uniform(0.002, 0.02)),
        gamma=float(rng.uniform(1.8, 2.2)) if on(0.5) else 0.0,
        unsharp=float(rng.uniform(0.3, 1.5)) if on(0.3) else 0.0,
        unsharp_sigma_px=float(rng.uniform(0.8, 2.0)),
        jpeg_quality=int(rng.integers(85, 96)) if on(0.15) else 0,
        glass_dust=float(rng.uniform(0.2, 3)) if on(0.6) else 0.0,
        fibres=int(rng.integers(1, 9)) if on(0.3) else 0,
        record_dust=float(rng.uniform(0.2, 5)) if on(0.6) else 0.0,
        scratches=int(rng.integers(1, 11)) if on(0.4) else 0,
        newton_rings=float(rng.uniform(0.01, 0.05)) if on(0.25) else 0.0,
        newton_period_mm=float(rng.uniform(1, 5)),
        xy_scale_error=float(rng.uniform(-0.015, 0.015)) if on(0.6) else 0.0,
        noise=float(rng.uniform(0.0005, 0.005)),
        bits=16 if on(0.7) else 8,
        lip=float(rng.uniform(0, 0.2)) if kind == "bone" else
        (float(rng.uniform(0, 0.05)) if kind == "shellac" else 0.0),
    )
    render = dict(sr=sr, dpi=dpi, rpm=rpm, pitch_mm=float(pitch), r_start_mm=float(r_start),
                  groove_top_mm=float(top), mode=mode, seed=int(seed), kind=kind,
                  bed_mm=bed_mm, disc_at_mm=disc_at, margin_mm=margins, **hab)
    audio = dict(seed=int(seed), duration_s=float(duration), sr=sr, band_hz=band,
                 turnover_hz=float(turnover), gaps_s=tuple(gaps))
    return dict(kind=kind, scale=scale, render=render, audio=audio)


def render_random(seed, *, scale="small", sr=44100, overrides=None, **render_options):
    """Draw :func:`random_disc` (with ``overrides`` of its render options) and render it.

    Returns ``(image, truth, spec)``; ``truth["spec"]`` repeats the drawn spec.
    """
    spec = random_disc(seed, scale=scale, sr=sr)
    spec["render"].update(overrides or {})
    audio = make_programme(**spec["audio"])
    image, truth = render_indie(audio, **spec["render"], **render_options)
    truth["spec"] = spec
    return image, truth, spec


# ============================================================================== files


def write_scan(path, image, dpi_row, dpi_col, *, quality=92):
    """Write a greyscale scan with its resolution, format chosen by the suffix.

    ``.tif``/``.tiff``: tifffile, XResolution/YResolution in inch (BigTIFF above
    2 GiB); ``.png``: Pillow, pHYs (8/16 bit); ``.jpg``/``.jpeg``: Pillow, JFIF density
    in dpi (8 bit; 16-bit images are reduced to 8 bit).

    Parameters
    ----------
    path : str or os.PathLike
    image : ndarray, shape (rows, cols), uint8 or uint16
    dpi_row, dpi_col : float
        Resolution along rows (Y) and columns (X), dots per inch.
    quality : int
        JPEG quality.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".tif", ".tiff"):
        big = image.nbytes > 2 ** 31 - 2 ** 25
        tifffile.imwrite(path, image, photometric="minisblack", resolution=(dpi_col, dpi_row),
                         resolutionunit="INCH", bigtiff=big, metadata=None)
    elif ext == ".png":
        Image.fromarray(image).save(path, format="PNG", dpi=(dpi_col, dpi_row))
    elif ext in (".jpg", ".jpeg"):
        img8 = image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
        Image.fromarray(img8, mode="L").save(path, format="JPEG", quality=int(quality),
                                             dpi=(round(dpi_col), round(dpi_row)))
    else:
        raise ValueError(f"{path}: use .tif, .tiff, .png, .jpg or .jpeg")


def save_truth(path, truth):
    """Write ``truth`` to ``path`` (.npz): ``velocity`` array plus ``truth_json``."""
    rest = {k: v for k, v in truth.items() if k != "velocity"}
    np.savez_compressed(path, velocity=np.asarray(truth["velocity"], np.float32),
                        truth_json=np.array(json.dumps(_jsonable(rest))))


def load_truth(path):
    """Read a truth written by :func:`save_truth` (JSON lists stay lists)."""
    with np.load(path) as z:
        truth = json.loads(str(z["truth_json"]))
        truth["velocity"] = z["velocity"]
    return truth


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _tiff_memmap_factory(path, dpi_row, dpi_col):
    def make(shape, dtype):
        big = int(np.prod(shape)) * np.dtype(dtype).itemsize > 2 ** 31 - 2 ** 25
        return tifffile.memmap(path, shape=shape, dtype=dtype, photometric="minisblack",
                               resolution=(dpi_col, dpi_row), resolutionunit="INCH",
                               bigtiff=big, metadata=None)
    return make


# ================================================================================ CLI


def _parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv=None):
    """Command line: render a random disc, write the scan and ``<stem>.truth.npz``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", choices=["small", "full"], default="small")
    ap.add_argument("-o", "--output", required=True, help=".tif/.tiff/.png/.jpg")
    ap.add_argument("--sr", type=int, default=44100)
    ap.add_argument("--max-side", type=int, default=3000,
                    help="small scale: largest image side in pixels (default 3000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a render option or habit (JSON value), repeatable")
    ap.add_argument("--no-check", action="store_true", help="skip the load_scan check")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = _parse_value(value)
    path = args.output
    ext = os.path.splitext(path)[1].lower()
    spec = random_disc(args.seed, scale=args.scale, sr=args.sr, max_side_px=args.max_side)
    spec["render"].update(overrides)
    quality = 92
    if ext in (".jpg", ".jpeg"):             # the file's own JPEG compression is the habit
        quality = spec["render"].get("jpeg_quality") or 92
        spec["render"]["jpeg_quality"] = 0
        spec["render"]["bits"] = 8
    audio = make_programme(**spec["audio"])
    dpi = spec["render"]["dpi"]
    t0 = time.perf_counter()
    out = _tiff_memmap_factory(path, dpi, dpi) if ext in (".tif", ".tiff") else None
    image, truth = render_indie(audio, threads=args.threads, out=out,
                                progress=not args.quiet, **spec["render"])
    if out is not None:
        image.flush()
        del image
    else:
        write_scan(path, image, dpi, dpi, quality=quality)
    truth["spec"] = spec
    stem = os.path.splitext(path)[0]
    save_truth(stem + ".truth.npz", truth)
    if not args.quiet:
        print(f"{path}: {spec['kind']} {truth['mode']} {truth['shape'][0]}x{truth['shape'][1]} "
              f"px at {dpi:g} dpi, {truth['duration_s']:.1f} s at {truth['rpm']:g} rpm, "
              f"r {truth['r_start_mm']:.1f}->{truth['r_end_mm']:.1f} mm, "
              f"rendered in {time.perf_counter() - t0:.1f} s")
    if not args.no_check:
        import groovescan
        scan = groovescan.load_scan(path)
        if not np.allclose(scan.dpi_xy, (dpi, dpi), rtol=1e-3):
            raise SystemExit(f"dpi read back as {scan.dpi_xy}, wrote {dpi}")
        if not args.quiet:
            print(f"load_scan: {scan!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
