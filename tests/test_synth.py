"""Tests of the scan renderer against the physics it claims to model.

Every measurement on an image is made with an independent, simple method (centroids of
pixel rows, thresholded areas) rather than the renderer's own code. Images are small
(short audio, small discs, low dpi) so the file runs in well under a minute.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, signal

from groovescan.errors import GroovescanError, OutputError, ParameterError
from groovescan.synth import (
    PRESETS,
    RenderSettings,
    render_scan,
    render_scan_to_file,
    resolve_settings,
    sweep,
    tone,
)

# A plain disc: no X-ray picture, no lead-in, round and centred, velocity = audio.
CLEAN = dict(film_anatomy="none", od_range=(0.2, 0.2), lead_in_turns=0.0, recording_curve="flat",
             margin_mm=1.0, hole_radius_mm=2.0, outline_offset_mm=0.0,
             outline_irregularity_mm=0.0, hole_offset_mm=0.0, wall_contrast_variation=0.0)
# A scanner without noise, jitter or uneven light: pixel values are exact functions.
QUIET = dict(photons_full_scale=None, read_noise=0.0, row_jitter_px=0.0, row_gain_jitter=0.0,
             illumination_falloff=0.0)

REFERENCE_UM = 0.05 / (2 * math.pi * 1000.0) * 1e6    # 5 cm/s peak at 1 kHz = 7.96 um


def fit_sine(t, x, freq_hz, extra=()):
    """Least-squares amplitude of a sine at ``freq_hz`` plus an offset (and ``extra``)."""
    cols = [np.cos(2 * np.pi * freq_hz * t), np.sin(2 * np.pi * freq_hz * t), np.ones_like(t)]
    design = np.stack(cols + list(extra), axis=1)
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    return float(np.hypot(coef[0], coef[1])), x - design @ coef


def row_centroid(row_values, centre_col, half_px):
    """Centre (col) of a dark groove in one image row: the centroid of ``land - value``
    over ``centre_col +- half_px``, re-centred twice so the window is symmetric about it.
    The land level is the bright end of the row's values within four windows' width."""
    centre = float(centre_col)
    near = row_values[max(0, int(centre) - 4 * half_px):int(centre) + 4 * half_px + 1]
    land = np.percentile(near, 90)
    for _ in range(3):
        lo = int(round(centre)) - half_px
        cols = np.arange(lo, lo + 2 * half_px + 1)
        dark = np.clip(land - row_values[cols], 0, None)
        centre = float(np.sum(dark * cols) / np.sum(dark))
    return centre


def sample(image, rows, cols):
    """Bilinear image values at (row, col) points."""
    coords = [np.atleast_1d(rows), np.atleast_1d(cols)]
    return ndimage.map_coordinates(image.astype(np.float64), coords, order=1)


def wall_to_land_ratio(scan, *, direction=None):
    """Mean image value on the groove walls over the mean on the land, at positions the
    truth predicts (``direction`` overrides the truth's, to check the test has power)."""
    tr = scan.truth
    direction = tr.direction if direction is None else direction
    phi = np.linspace(0.5, tr.n_turns * 2 * np.pi - 0.5, 4000)
    r = tr.groove_radius_mm(phi)
    theta = tr.theta_start + direction * phi
    mid_wall = 0.25 * (tr.groove_width_mm + tr.settings.groove_bottom_mm)

    def at(offset_mm):
        rr = r + offset_mm
        return sample(scan.image, tr.centre_px[0] + rr * np.sin(theta) / tr.px_mm[0],
                      tr.centre_px[1] + rr * np.cos(theta) / tr.px_mm[1])

    walls = np.concatenate([at(mid_wall), at(-mid_wall)])
    land = at(0.5 * tr.pitch_mm)
    return walls.mean() / land.mean()


# ------------------------------------------------------------------------------------
# Cutting: velocity and displacement in the truth
# ------------------------------------------------------------------------------------

def test_truth_tone_has_reference_velocity_and_displacement():
    sr = 48000
    scan = render_scan(tone(1000.0, duration_s=1.0, sr=sr), sr=sr, dpi=100,
                       disc_diameter_mm=40, r_start_mm=17, seed=2, **CLEAN)
    tr = scan.truth
    # skip 0.2 s after the abrupt onset: the 15 Hz high-pass rings with tau ~15 ms
    k = np.arange(tr.audio_offset_samples + sr // 5, tr.audio_offset_samples + sr * 9 // 10)
    t = k / sr
    v_amp, _ = fit_sine(t, tr.velocity[k].astype(np.float64), 1000.0)
    d_amp, _ = fit_sine(t, tr.displacement[k] * 1e6, 1000.0)
    # FFT filters are exact and the high-pass loses 3e-9 at 1 kHz: 0.1 % covers float32
    assert v_amp == pytest.approx(0.05, rel=1e-3)
    assert d_amp == pytest.approx(REFERENCE_UM, rel=1e-3)
    # velocity is the derivative of displacement: a central difference of a 1 kHz sine
    # at 48 kHz reads sin(w h) / (w h) = 0.99714 of it
    grad_amp, _ = fit_sine(t, np.gradient(tr.displacement.astype(np.float64))[k] * sr, 1000.0)
    wh = 2 * np.pi * 1000 / sr
    assert grad_amp / v_amp == pytest.approx(math.sin(wh) / wh, rel=1e-4)
    assert tr.audio_offset_s == pytest.approx(RenderSettings().lead_in_s)
    assert tr.duration_s == pytest.approx(1.0)


def test_level_rms_mode_and_recording_curve():
    sr = 16000
    audio = tone(1000.0, duration_s=1.0, sr=sr)
    s = dict(dpi=50, disc_diameter_mm=40, r_start_mm=17, seed=0)
    rms = render_scan(audio, sr=sr, level=0.01, level_mode="rms",
                      **{**CLEAN, **s}).truth
    k = np.arange(rms.audio_offset_samples + 3000, rms.audio_offset_samples + 15000)
    amp, _ = fit_sine(k / sr, rms.velocity[k].astype(np.float64), 1000.0)
    assert amp == pytest.approx(0.01 * math.sqrt(2), rel=2e-3)   # sine: peak = sqrt(2) rms
    # RIAA cuts 1 kHz at 0 dB and 100 Hz ~13 dB lower (velocity), so equal audio tones
    # give a 100 Hz velocity well below the 1 kHz one
    low = render_scan(tone(100.0, duration_s=1.0, sr=sr) + audio, sr=sr,
                      **{**CLEAN, **s, "recording_curve": "riaa", "level": None}).truth
    k = np.arange(low.audio_offset_samples + 4000, low.audio_offset_samples + 15000)
    a100, _ = fit_sine(k / sr, low.velocity[k].astype(np.float64), 100.0)
    a1k, _ = fit_sine(k / sr, low.velocity[k].astype(np.float64), 1000.0)
    assert 20 * math.log10(a1k / a100) == pytest.approx(13.1, abs=0.5)


# ------------------------------------------------------------------------------------
# The groove in the image
# ------------------------------------------------------------------------------------

def test_tone_amplitude_measured_in_the_image():
    """8 um at 1 kHz (5 cm/s), read back from pixel rows where the groove runs vertically."""
    sr = 48000
    scan = render_scan(tone(1000.0, duration_s=4.5, sr=sr), sr=sr, dpi=2400,
                       disc_diameter_mm=44, r_start_mm=20, lead_in_s=0.1,
                       theta_start=math.pi, seed=5, **CLEAN)
    tr, image = scan.truth, scan.image.astype(np.float64)
    cy, cx = tr.centre_px
    px_row, px_col = tr.px_mm
    half = 10                                # px: groove +- 0.106 mm, neighbours 0.14 mm off
    times, radial_um, turn_ids = [], [], []
    # The groove crosses theta = 0 once a turn. Rows are radial only there: at an angle
    # theta a row cuts the groove obliquely and its centroid averages the wiggle over
    # +-(u tan theta) of groove; |theta| < 0.04 rad keeps that loss below 0.2 %.
    for turn in range(5):
        phi = 2 * np.pi * (turn + 0.5) + np.linspace(-0.04, 0.04, 100)
        rows0, cols0 = tr.groove_point_px(phi, displaced=False)
        for row in range(int(rows0.min()) + 1, int(rows0.max())):
            col = row_centroid(image[row], np.interp(row, rows0[::-1], cols0[::-1]), half)
            dy, dx = (row - cy) * px_row, (col - cx) * px_col
            phi_here = 2 * np.pi * (turn + 0.5) - np.arctan2(dy, dx)   # direction -1
            times.append(tr.time_of_phi(phi_here))
            undisplaced = tr.groove_radius_mm(phi_here, displaced=False)
            radial_um.append((math.hypot(dx, dy) - undisplaced) * 1e3)
            turn_ids.append(turn)
    t, d = np.array(times), np.array(radial_um)
    offsets = [np.equal(turn_ids, k).astype(float) for k in range(1, 5)]
    amp, resid = fit_sine(t, d, 1000.0, extra=offsets)
    truth_amp, _ = fit_sine(t, (tr.groove_radius_mm(tr.phi_of_time(t)) -
                                tr.groove_radius_mm(tr.phi_of_time(t), displaced=False)) * 1e3,
                            1000.0, extra=offsets)
    assert truth_amp == pytest.approx(REFERENCE_UM, rel=2e-3)   # linear interpolation at sr
    # The image shows the wiggle blurred along the groove by the PSF and the pixel
    # (Gaussian, sigma^2 = psf^2 + px^2 / 12): at 1 kHz and r ~ 20 mm it keeps 96 %.
    px = 25.4 / 2400
    sigma = math.hypot(tr.settings.psf_sigma_um * 1e-3, px / math.sqrt(12))
    r_mm = tr.groove_radius_mm(2 * np.pi * 2.5, displaced=False)
    wavelength = tr.omega * r_mm / 1000.0            # mm of groove per cycle
    expected = REFERENCE_UM * math.exp(-0.5 * (2 * np.pi * sigma / wavelength) ** 2)
    # 1 %: shot noise (~0.3 um per row over ~750 rows) moves the fit by ~0.2 %, the
    # centroid's pixel locking and the oblique rows by ~0.1 % each
    assert amp == pytest.approx(expected, rel=0.01)
    assert np.std(resid) < 0.6                       # um: noise, not a misplaced groove


def test_sub_pixel_placement_of_the_groove():
    """Moving the spiral out by a quarter pixel moves the groove in the image by a
    quarter pixel: the renderer places the groove far below one pixel."""
    sr = 4000
    audio = np.zeros(sr * 3, np.float32)
    px = 25.4 / 1200
    centres = []
    for fraction in (0.0, 0.25, 0.5, 0.75):
        scan = render_scan(audio, sr=sr, dpi=1200, disc_diameter_mm=36,
                           r_start_mm=16 + fraction * px, theta_start=0.3, seed=1,
                           **CLEAN, **QUIET)
        tr, image = scan.truth, scan.image.astype(np.float64)
        row = int(round(tr.centre_px[0]))
        found = []
        for turn in range(1, 4):                 # three grooves crossing theta ~ 0
            phi = 0.3 + 2 * np.pi * (turn - 1) + np.linspace(-0.05, 0.05, 50)
            rows0, cols0 = tr.groove_point_px(phi, displaced=False)
            found.append(row_centroid(image[row], np.interp(row, rows0[::-1], cols0[::-1]), 5))
        centres.append(np.array(found))
    shifts = [np.mean(c - centres[0]) for c in centres]
    # 0.01 px: the centroid of a blurred, symmetric groove profile has almost no
    # pixel-locking bias here (measured < 0.001 px); 0.01 px is what decoding relies on
    assert shifts == pytest.approx([0.0, 0.25, 0.5, 0.75], abs=0.01)


@pytest.mark.parametrize("theta, scale_error", [(0.0, (0.0, 0.0)),
                                                (math.pi / 4, (0.01, -0.005))])
def test_matches_a_brute_force_supersampled_render(theta, scale_error):
    """The renderer's shortcuts (a 1-D cross-section table blurred across the groove, the
    wiggle blurred along it) against the plain model: the sharp groove evaluated at 8 x 8
    points per pixel with the exact cut displacement, a 2-D Gaussian PSF, then averaged
    over each pixel."""
    from groovescan.synth.groove import _unblurred_profile
    from groovescan.synth.render import _build_plan, _render_rows

    sr, ss, size = 48000, 8, 64
    s = resolve_settings(dpi=2400, disc_diameter_mm=44, r_start_mm=20, lead_in_s=0.1,
                         theta_start=math.pi, px_scale_error=scale_error, **CLEAN, **QUIET)
    audio = tone(1000.0, duration_s=1.5, sr=sr)
    plan, cut = _build_plan(audio, sr, s, 5)
    px_row, px_col = s.true_px_mm
    phi0 = 3 * np.pi - theta                     # second turn, at image angle theta
    omega = 2 * np.pi * s.rpm / 60
    radius = plan.spiral.radius(np.array([phi0]))[0]
    row0 = int((plan.centre_mm[0] + radius * math.sin(theta)) / px_row) - size // 2
    col0 = int((plan.centre_mm[1] + radius * math.cos(theta)) / px_col) - size // 2
    rendered = _render_rows(plan, row0, row0 + size)[:, col0:col0 + size].astype(float)

    sub = (np.arange(size * ss) + 0.5) / ss - 0.5            # sub-pixel centres, in px
    y = (row0 + sub) * px_row - plan.centre_mm[0]
    x = (col0 + sub) * px_col - plan.centre_mm[1]
    X, Y = np.meshgrid(x, y)
    r, phi_frac = np.hypot(X, Y), np.mod(plan.theta_start_render - np.arctan2(Y, X), 2 * np.pi)
    base = phi_frac + 2 * np.pi * np.rint((phi0 - phi_frac) / (2 * np.pi))
    dark = np.zeros_like(r)
    for turn in (-1, 0, 1):
        phi = base + 2 * np.pi * turn
        d_mm = 1e3 * np.interp(phi / omega * sr, np.arange(cut.displacement.size),
                               cut.displacement)
        dark += _unblurred_profile(r - plan.spiral.radius(phi) - d_mm, s)
    light = 1 - np.clip(dark, 0, 1)
    light = ndimage.gaussian_filter(light, [s.psf_sigma_um * 1e-3 / px * ss
                                            for px in (px_row, px_col)])
    light = light.reshape(size, ss, size, ss).mean(axis=(1, 3))
    reference = light * 10 ** -s.od_range[0] * s.white_level * 65535
    land = reference.max()
    error = (rendered - reference)[4:-4, 4:-4]     # the reference's blur is unsure at its rim
    # 1 % RMS, 4 % worst pixel: the residue of blurring across and along separately
    # (the groove is tilted by its own wiggle) and of the 17 orientation tables
    assert np.sqrt(np.mean(error ** 2)) < 0.01 * land
    assert np.abs(error).max() < 0.04 * land


def groove_centres_along(profile, pitch_px):
    """Centres (index) of the dark grooves along a 1-D profile, by peak then centroid."""
    dark = np.percentile(profile, 90) - profile
    peaks, _ = signal.find_peaks(ndimage.gaussian_filter1d(dark, pitch_px / 6),
                                 distance=0.6 * pitch_px, height=0.3 * dark.max())
    half = int(0.4 * pitch_px)
    out = []
    for p in peaks:
        if p - half < 0 or p + half >= profile.size:
            continue
        idx = np.arange(p - half, p + half + 1)
        w = np.clip(dark[idx], 0, None)
        out.append(np.sum(w * idx) / np.sum(w))
    return np.array(out)


def test_groove_spacing_is_pitch_and_unequal_scales_make_an_ellipse():
    sr = 4000
    turns = 40
    pitch = 0.25
    scale_error = (0.01, -0.005)                 # rows 1 % larger, cols 0.5 % smaller
    duration = turns * 60 / 78.0
    scan = render_scan(np.zeros(int(sr * duration), np.float32), sr=sr, dpi=600, pitch_mm=pitch,
                       disc_diameter_mm=66, r_start_mm=31, px_scale_error=scale_error,
                       lead_out_s=0.0, lead_in_s=0.0, seed=4, **CLEAN, **QUIET)
    tr, image = scan.truth, scan.image.astype(np.float64)
    assert tr.px_mm == pytest.approx((25.4 / 600 * 1.01, 25.4 / 600 * 0.995))
    cy, cx = (int(round(c)) for c in tr.centre_px)
    nominal_px = 25.4 / 600
    along_row = groove_centres_along(image[cy, cx:], pitch / nominal_px)       # theta = 0
    along_col = groove_centres_along(image[cy:, cx], pitch / nominal_px)       # theta = pi/2
    assert len(along_row) >= turns - 2 and len(along_col) >= turns - 2
    slope_col = np.polyfit(np.arange(along_row.size), along_row, 1)[0]
    slope_row = np.polyfit(np.arange(along_col.size), along_col, 1)[0]
    # a fit over ~40 grooves with ~0.05 px centroid noise: slope error ~0.01 %; 0.2 %
    # still tells the 1.5 % difference of the two scales apart
    assert slope_col == pytest.approx(pitch / tr.px_mm[1], rel=2e-3)
    assert slope_row == pytest.approx(pitch / tr.px_mm[0], rel=2e-3)
    assert slope_row / slope_col == pytest.approx(tr.px_mm[1] / tr.px_mm[0], rel=1e-3)


def test_spiral_geometry_in_the_truth():
    sr = 8000
    tr = render_scan(np.zeros(sr * 5, np.float32), sr=sr, dpi=50, disc_diameter_mm=60,
                     r_start_mm=25, lead_in_pitch_mm=0.6, pitch_mm=0.2, rpm=45.0, seed=0,
                     **{**CLEAN, "lead_in_turns": 1.0}).truth
    assert tr.time_of_phi(2 * np.pi) == pytest.approx(60 / 45.0)
    r = tr.groove_radius_mm(np.array([0.0, 2 * np.pi, 4 * np.pi]), displaced=False)
    assert r[0] == pytest.approx(25.0)
    # the lead-in pitch fades as a raised cosine over one turn: its mean is the midpoint
    assert r[0] - r[1] == pytest.approx(0.5 * (0.6 + 0.2), rel=1e-3)
    assert r[1] - r[2] == pytest.approx(0.2, rel=1e-3)
    assert tr.n_turns == pytest.approx(tr.groove_duration_s * 45 / 60)
    assert tr.min_land_mm == pytest.approx(0.2 - tr.groove_width_mm, abs=1e-3)


def test_transmission_walls_dark_reflective_walls_bright():
    sr = 8000
    audio = tone(300.0, duration_s=2.0, sr=sr)
    common = dict(sr=sr, dpi=1200, disc_diameter_mm=36, r_start_mm=16, seed=3, **CLEAN)
    dark = render_scan(audio, mode="transmission", **common)
    bright = render_scan(audio, mode="reflective", **common)
    assert dark.truth.polarity == "dark" and bright.truth.polarity == "bright"
    # walls pass 30 % (transmission) or reflect 0.6 against a land of 0.1 (reflective);
    # the PSF and the pixel soften both, hence the loose bounds
    assert wall_to_land_ratio(dark) < 0.7
    assert wall_to_land_ratio(bright) > 2.0


def test_mirroring_flips_columns_and_direction():
    sr = 8000
    audio = sweep(200.0, 2000.0, duration_s=2.0, sr=sr)
    common = dict(sr=sr, dpi=1200, disc_diameter_mm=36, r_start_mm=16, seed=7, **CLEAN)
    plain = render_scan(audio, **common)
    mirrored = render_scan(audio, mirrored=True, **common)
    # every random draw happens in the unmirrored frame, noise included: an exact flip
    np.testing.assert_array_equal(mirrored.image, plain.image[:, ::-1])
    a, b = plain.truth, mirrored.truth
    assert (a.direction, b.direction) == (-1, 1)
    assert b.centre_px == pytest.approx((a.centre_px[0], a.image_shape[1] - 1 - a.centre_px[1]))
    assert np.mod(b.theta_start + a.theta_start, 2 * np.pi) == pytest.approx(np.pi)
    # the truth's groove lies on the image's dark walls, and only with the right direction
    for scan in (plain, mirrored):
        assert wall_to_land_ratio(scan) < 0.7
        assert wall_to_land_ratio(scan, direction=-scan.truth.direction) > 0.85


def test_theta_start_is_honoured_in_the_final_image():
    sr = 8000
    for mirrored in (False, True):
        tr = render_scan(np.zeros(sr, np.float32), sr=sr, dpi=50, disc_diameter_mm=40,
                         r_start_mm=17, theta_start=1.0, mirrored=mirrored, **CLEAN).truth
        assert tr.theta_start == pytest.approx(1.0)


# ------------------------------------------------------------------------------------
# The disc: hole, outline, damage
# ------------------------------------------------------------------------------------

def test_hole_and_outline_offsets():
    sr = 8000
    scan = render_scan(np.zeros(sr, np.float32), sr=sr, dpi=300, disc_diameter_mm=50,
                       r_start_mm=21, seed=11, **{**CLEAN, "od_range": (1.0, 1.0),
                                                  "hole_radius_mm": 3.5, "hole_offset_mm": 2.5,
                                                  "outline_offset_mm": 3.0, "margin_mm": 3.0},
                       **QUIET)
    tr, image = scan.truth, scan.image.astype(np.float64)
    px = 25.4 / 300
    bare = image > 0.5 * image.max()             # bare light: the hole and around the disc
    labels, _ = ndimage.label(bare)
    hole = labels == labels[tuple(np.round(tr.hole_centre_px).astype(int))]
    weight = (image - image[~bare].mean()) * hole  # area weights, edges count partly
    hole_centre = ndimage.center_of_mass(weight)
    # 0.25 px: the hand-made wobble (harmonics 2, 3, 5) does not move the centroid to
    # first order; edge pixels are weighted by their light
    assert hole_centre == pytest.approx(tr.hole_centre_px, abs=0.25)
    assert math.dist(tr.hole_centre_px, tr.centre_px) * px == pytest.approx(2.5, abs=1e-6)
    disc = ndimage.binary_fill_holes(~bare)
    assert ndimage.center_of_mass(disc) == pytest.approx(tr.outline_centre_px, abs=0.3)
    assert math.dist(tr.outline_centre_px, tr.centre_px) * px == pytest.approx(3.0, abs=1e-6)
    # the disc's area is that of a 50 mm circle, to the pixel
    assert disc.sum() * px * px == pytest.approx(np.pi * 25.0 ** 2, rel=0.01)


def test_damage_is_rendered_and_recorded():
    sr = 8000
    scan = render_scan(sweep(200, 3000, duration_s=6.0, sr=sr), sr=sr, dpi=1200,
                       disc_diameter_mm=44, r_start_mm=19, dust_per_cm2=20, hairs=4,
                       scratches=4, smudges=2, opaque_patches=2, crack=True, seed=3,
                       film_anatomy="ribs")
    tr, image = scan.truth, scan.image.astype(np.float64)
    assert len(tr.dust_px) > 100
    assert tr.clicks and {k for _, _, k in tr.clicks} <= {"dust", "hair", "scratch"}
    assert all(a <= b for a, b, _ in tr.clicks) and all(a < b for a, b in tr.gaps)
    assert "crack" in tr.gap_causes and tr.crack["crossings_s"]
    assert "opaque patch" in tr.gap_causes
    # dust is opaque in transmission: a speck over 1 px in radius is darker at its
    # centre than the ring of pixels 3-4 radii away, whatever lies beneath
    yy, xx = np.mgrid[-12:13, -12:13]
    darker = []
    for r, c, radius in tr.dust_px[tr.dust_px[:, 2] > 1.0]:
        r, c = int(round(r)), int(round(c))
        if 12 <= r < image.shape[0] - 12 and 12 <= c < image.shape[1] - 12:
            ring = (np.hypot(yy, xx) > 3 * radius) & (np.hypot(yy, xx) < 4 * radius + 1)
            patch = image[r - 12:r + 13, c - 12:c + 13]
            if patch[ring].mean() > 0.05 * image.max():      # not on an opaque patch
                darker.append(patch[12, 12] < 0.7 * patch[ring].mean())
    assert len(darker) >= 5 and np.mean(darker) > 0.9
    # under an opaque patch the groove is black, checked mid-way through each patch gap;
    # the crack may have moved a patch (with its piece) by 0.4 mm, so a groove that only
    # skims a patch's soft edge may read a little light there: the median must be black
    inside = [sample(image, *tr.groove_point_px(tr.phi_of_time(0.5 * (a + b))))[0]
              for (a, b), cause in zip(tr.gaps, tr.gap_causes) if cause == "opaque patch"]
    assert np.median(inside) < 0.01 * image.max() and max(inside) < 0.2 * image.max()
    summary = json.loads(json.dumps(tr.to_dict()))
    assert summary["dust_count"] == len(tr.dust_px) and summary["crack"]["crossings_s"]


# ------------------------------------------------------------------------------------
# The scanner and the files
# ------------------------------------------------------------------------------------

def test_8_and_16_bit():
    sr = 8000
    common = dict(sr=sr, dpi=150, disc_diameter_mm=40, r_start_mm=17, seed=1, **QUIET)
    img16 = render_scan(np.zeros(sr, np.float32), bits=16, **common).image
    img8 = render_scan(np.zeros(sr, np.float32), bits=8, **common).image
    assert img16.dtype == np.uint16 and img8.dtype == np.uint8
    # the same light quantised twice: rounding differs by at most one 8-bit step
    assert np.abs(img8.astype(float) - img16 / 257.0).max() <= 0.51


def test_same_seed_same_image_whatever_the_threads():
    sr = 8000
    audio = tone(500.0, duration_s=1.0, sr=sr)
    common = dict(sr=sr, dpi=300, disc_diameter_mm=40, r_start_mm=17, dust_per_cm2=5, hairs=2)
    a = render_scan(audio, seed=5, workers=1, **common).image
    b = render_scan(audio, seed=5, workers=3, **common).image
    c = render_scan(audio, seed=6, **common).image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_file_output_matches_memory_and_carries_dpi(tmp_path):
    import tifffile
    from PIL import Image

    sr = 8000
    audio = tone(400.0, duration_s=1.0, sr=sr)
    common = dict(sr=sr, dpi=200, disc_diameter_mm=40, r_start_mm=17, seed=9, hairs=2)
    in_memory = render_scan(audio, **common).image
    truth = render_scan_to_file(tmp_path / "scan.tif", audio, **common)
    with tifffile.TiffFile(tmp_path / "scan.tif") as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), in_memory)
        assert page.tags["XResolution"].value == (200, 1)
        assert page.tags["YResolution"].value == (200, 1)
        assert page.tags["ResolutionUnit"].value == 2          # inch
    assert truth.image_shape == in_memory.shape
    render_scan_to_file(tmp_path / "scan.png", audio, bits=8, **common)
    with Image.open(tmp_path / "scan.png") as png:
        assert png.info["dpi"] == pytest.approx((200, 200), abs=0.01)
        np.testing.assert_array_equal(np.asarray(png),
                                      render_scan(audio, bits=8, **common).image)
    assert not list(tmp_path.glob("*.partial"))


def test_file_output_refuses_to_overwrite_and_leaves_nothing_partial(tmp_path):
    sr = 8000
    audio = np.zeros(sr, np.float32)
    common = dict(sr=sr, dpi=100, disc_diameter_mm=40, r_start_mm=17)
    target = tmp_path / "scan.tif"
    render_scan_to_file(target, audio, **common)
    before = target.read_bytes()
    with pytest.raises(OutputError, match="overwrite=True"):
        render_scan_to_file(target, audio, **common, seed=2)
    assert target.read_bytes() == before
    with pytest.raises(ParameterError):         # fails in planning: no file, no leftovers
        render_scan_to_file(tmp_path / "bad.tif", audio, sr=sr, pitch_mm=5.0)
    with pytest.raises(OutputError):
        render_scan_to_file(tmp_path / "missing" / "scan.tif", audio, **common)
    render_scan_to_file(target, audio, **common, seed=2, overwrite=True)
    assert target.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.tif"]


# ------------------------------------------------------------------------------------
# Options and presets
# ------------------------------------------------------------------------------------

def test_bad_options_say_what_to_fix():
    audio = np.zeros(8000, np.float32)
    with pytest.raises(ParameterError, match="did you mean pitch_mm"):
        render_scan(audio, sr=8000, pich_mm=0.2)
    with pytest.raises(ParameterError, match="preset"):
        render_scan(audio, sr=8000, preset="wax_cylinder")
    with pytest.raises(ValueError, match="1-D"):
        render_scan(np.zeros((2, 100)), sr=8000)
    with pytest.raises(GroovescanError, match="shorten the audio"):
        render_scan(np.zeros(8000 * 600, np.float32), sr=8000, dpi=50)   # 10 min on 7 in
    with pytest.raises(ParameterError, match="pitch_mm"):
        resolve_settings(groove_width_mm=0.3)
    assert resolve_settings(preset="lp", dpi=1200).rpm == pytest.approx(100 / 3)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_render(preset):
    sr = 8000
    scan = render_scan(sweep(100, 3000, duration_s=3.0, sr=sr), sr=sr, preset=preset, dpi=50,
                       seed=1)
    tr = scan.truth
    assert tr.polarity == ("dark" if resolve_settings(preset=preset).mode == "transmission"
                           else "bright")
    assert scan.image.shape == tr.image_shape
    if tr.label_radius_mm:                       # a paper label, brighter than the shellac
        cy, cx = tr.centre_px
        ring = tr.label_radius_mm * 0.8 / tr.px_mm[1]
        label = scan.image[int(cy), int(cx + ring)]
        land = scan.image[int(cy), int(cx + (tr.r_start_mm + 1.5) / tr.px_mm[1])]
        assert label > 2 * land
    if PRESETS[preset].get("locked_groove"):
        assert tr.locked_groove_radius_mm < tr.r_end_mm


# ------------------------------------------------------------------------------------
# Full size
# ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_full_size_side_renders_in_bounded_memory(tmp_path):
    """A 7-inch side at 2400 dpi (~17 000 px square, 0.6 GB) written to a TIFF by a fresh
    interpreter whose peak memory stays far below the image size plus 1 GB."""
    code = f"""
import resource, numpy as np
from groovescan.synth import render_scan_to_file, sweep
audio = sweep(100, 6000, duration_s=60.0, sr=44100)
truth = render_scan_to_file({str(tmp_path / 'side.tif')!r}, audio, sr=44100, dpi=2400, seed=1)
print(truth.image_shape[0], truth.image_shape[1],
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True).stdout.split()
    rows, cols, peak_mb = map(int, out)
    assert rows > 16000 and cols > 16000
    assert peak_mb < 1000
