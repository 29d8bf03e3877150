"""Where the groove is: spiral centre, scanner scale, handedness, pitch, polarity.

Two stages, both driven by the grooves themselves (never by the hole, the outline or
anything else on the scanner bed):

1. *Coarse* (:mod:`groovescan.coarse`): blocks whose texture is periodic at a groove
   pitch, with the scanner's row and column streaks projected out; a RANSAC consensus of
   their normals gives the centre to a fraction of a millimetre, the rings where they
   face it the grooved annulus.
2. *Fine*: radial profiles, averaged over narrow sectors, are taken in a few bands across
   the annulus. The grooves are periodic in radius, so the phase of each sector's profile
   at the groove frequency tells how far the grooves sit from the assumed centre, modulo
   one pitch. Around the disc that shift is ``a + b*theta + ex*cos(theta) + ey*sin(theta)
   + R*q*cos(2*theta)``: ``b`` is the spiral (its sign is the handedness), ``(ex, ey)``
   the centre error and ``q`` the X/Y scale mismatch of the scanner. Two or three rounds
   of this least-squares fit converge to micrometres. The pitch is a spectral period of
   the profiles; the drift over one turn, ``2*pi*|b|``, only says which: measured at a
   period it is a whole number of that period (the grooves move on by one pitch), so it
   names the harmonic, but it cannot measure the pitch, as it echoes the period assumed.
   A spectral period is the band's average, pulled by a lead-in or run-out in the band,
   so the pitch given is the commonest spacing of neighbouring crests in the profiles.

Which half of a period is groove and which is land is decided by physics, not by
brightness: the two walls of one groove carry the same modulation, the two edges of a
land strip belong to different turns. See :func:`_choose_groove`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from .coarse import MAX_DISC_RADIUS_MM, MAX_MUSIC_PITCH_MM, CoarseGeometry, coarse_geometry
from .crack import (Crack, break_edges, find_break, fit_offset, motion_from_edges, piece_masks,
                    roll_to_arc_start, turn_from_edges)
from .errors import NoGrooveError, ParameterError
from .fixedpattern import FixedPattern, measure_fixed_pattern
from .sampling import sample, sector_profiles, seen_mean

__all__ = ["DiscGeometry", "check_hints", "find_geometry"]


@dataclass(frozen=True)
class DiscGeometry:
    """The disc as found in the scan (conventions: ``docs/conventions.md``).

    Attributes
    ----------
    centre_px : (row, col) of the spiral centre, pixels.
    px_mm : (row, col) pixel size in mm that makes the grooves circular; their
        geometric mean equals the file's nominal pixel size.
    direction : +1 if the groove, played outside-in, turns towards +theta, else -1.
    pitch_mm : the music's groove pitch (radial distance between turns), where the
        bands lie; :attr:`GrooveTrack.turn_spacing_mm` measures it on the followed groove.
    polarity : "dark" if the groove walls are darker than the land, else "bright".
    r_inner_mm, r_outer_mm : radii bounding the grooved annulus.
    profile : one period of the mean radial profile, groove centre in the middle,
        sampled at ``profile_step_mm`` (brightness units of the scan).
    scale_mismatch : ``px_mm[1] / px_mm[0] - 1`` (X vs Y scale difference of the scanner).
    confidence : 0..1, how well the harmonic model fits the measured groove shifts.
    wall_coherence : (dark, bright): for each polarity's groove candidate, how the fast
        motions of its two halves correlate along a turn, less the -1/(2n-1) that
        unrelated halves show; the groove is the one of larger magnitude.
    crack : where a broken disc's smaller piece lies off the spiral, or None
        (:class:`groovescan.crack.Crack`); :meth:`to_px` and every reader of the
        groove apply it.
    groove_radius_mm, groove_slope_mm : a groove crosses the ray at image angle
        ``theta`` (rad, followed continuously from 0) at radius
        ``groove_radius_mm + groove_slope_mm * theta``, give or take whole pitches: the
        spiral as the fine fit saw it, which seeds the tracker.
    coarse : what the coarse stage saw (:class:`groovescan.coarse.CoarseGeometry`): the
        grooved blocks, the consensus centre and ring, for diagnostics.
    fixed_pattern : the scanner's per-column and per-row gain and offset found in this
        scan (:class:`groovescan.fixedpattern.FixedPattern`), or None; every reader of
        the groove divides it out (:meth:`reader`).
    """

    centre_px: tuple[float, float]
    px_mm: tuple[float, float]
    direction: int
    pitch_mm: float
    polarity: str
    r_inner_mm: float
    r_outer_mm: float
    profile: np.ndarray = field(repr=False)
    profile_step_mm: float = 0.0
    scale_mismatch: float = 0.0
    centre_residual_mm: float = 0.0
    confidence: float = 0.0
    wall_coherence: tuple[float, float] = (0.0, 0.0)
    groove_radius_mm: float = float("nan")
    groove_slope_mm: float = 0.0
    crack: Crack | None = None
    coarse: CoarseGeometry | None = field(default=None, repr=False, compare=False)
    fixed_pattern: FixedPattern | None = field(default=None, repr=False, compare=False)

    def reader(self, image):
        """``image`` as the stages read it: with the scanner's fixed pattern divided out."""
        return self.fixed_pattern.corrected(image) if self.fixed_pattern is not None else image

    def to_px(self, r_mm, theta):
        """(row, col) of polar points ``r_mm`` (mm), ``theta`` (rad)."""
        row = self.centre_px[0] + np.asarray(r_mm) * np.sin(theta) / self.px_mm[0]
        col = self.centre_px[1] + np.asarray(r_mm) * np.cos(theta) / self.px_mm[1]
        if self.crack is not None:
            d_row, d_col = self.crack.shift_px(r_mm, theta, self.px_mm)
            row, col = row + d_row, col + d_col
        return row, col

    def to_polar(self, row, col):
        """(r_mm, theta) of pixel positions."""
        y = (np.asarray(row, dtype=np.float64) - self.centre_px[0]) * self.px_mm[0]
        x = (np.asarray(col, dtype=np.float64) - self.centre_px[1]) * self.px_mm[1]
        return np.hypot(x, y), np.arctan2(y, x)

    def radial_px_mm(self, theta):
        """Length in mm of one pixel step taken along the radius at ``theta``."""
        return 1.0 / np.hypot(np.cos(theta) / self.px_mm[1], np.sin(theta) / self.px_mm[0])


# ----------------------------------------------------------------------------- fine

def _detrend(profiles, radii, pitch_guess_mm):
    """Remove brightness varying slower than the grooves (the X-ray picture)."""
    step = radii[1] - radii[0]
    sigma = max(1.0, 1.5 * pitch_guess_mm / step)
    # OpenCV's row Gaussian: scipy's gaussian_filter1d (truncated at 4 sigma, edges
    # repeated) to 1e-6, four times faster on these wide kernels
    width = 2 * int(4 * sigma + 0.5) + 1
    smooth = cv2.GaussianBlur(np.ascontiguousarray(profiles, dtype=np.float32), (width, 1),
                              sigmaX=sigma, sigmaY=0.1, borderType=cv2.BORDER_REPLICATE)
    # where the film is nearly opaque only noise is left: do not blow it up into grooves
    floor = 0.05 * np.nanmedian(smooth) if np.isfinite(smooth).any() else 1e-6
    return profiles / np.maximum(smooth, max(floor, 1e-6)) - 1.0


def music_spacing(spacings) -> float:
    """The music's pitch among distances from one groove to the next (mm), NaN if none.

    A lead-in and a run-out are wider than the music and their spacing changes from
    turn to turn, while the music's stays within the lathe's drift: on a short side
    they may be most of the grooves, but the music is the densest cluster. Its pitch is
    the median of the cluster around the mode (in 2 % steps).
    """
    spacings = np.asarray(spacings, dtype=np.float64)
    spacings = np.log(spacings[np.isfinite(spacings) & (spacings > 0)])
    if not spacings.size:
        return float("nan")
    counts, edges = np.histogram(spacings, bins=max(1, int(np.ptp(spacings) / 0.02)))
    mode = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    return float(np.exp(np.median(spacings[np.abs(spacings - mode) < 0.05])))


def _crest_pitch(data, pitch):
    """The music's pitch from the spacing of neighbouring grooves along each sector.

    A band's spectral peak is the average period over the band; on a side of a few
    turns the band takes in the lead-in or run-out too, and their wider spacing pulls
    the peak by percents (or tens of percent when the music has two turns). Grooves
    located one by one (every crest of the profile smoothed to its fundamental, light
    and dark alike since the polarity is not known yet) and spaced by
    :func:`music_spacing` are not pulled. NaN if the crests name no pitch within a
    third of the spectrum's.
    """
    spacings = []
    for prof, radii, _ in data:
        step = radii[1] - radii[0]
        # smoothing to a fifth of a pitch leaves the fundamental (two walls make
        # a second harmonic, two crests a groove, that it removes)
        smooth = ndimage.gaussian_filter1d(np.nan_to_num(_detrend(prof, radii, pitch)),
                                           max(1.0, 0.2 * pitch / step), axis=1)
        for crest in (smooth, -smooth):
            middle = crest[:, 1:-1]
            rows, cols = np.nonzero((middle > crest[:, :-2]) & (middle >= crest[:, 2:]) & (middle > 0))
            cols = cols + 1
            before, at, after = crest[rows, cols - 1], crest[rows, cols], crest[rows, cols + 1]
            # the parabola through the crest and its neighbours: a sub-sample position
            curvature = np.minimum(before - 2 * at + after, -1e-12)
            offset = np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)
            position = (cols + offset) * step
            same_sector = rows[1:] == rows[:-1]
            spacings.append(np.diff(position)[same_sector])
    found = music_spacing(np.concatenate(spacings)) if spacings else np.nan
    return found if abs(found / pitch - 1) < 1 / 3 else np.nan


def _pitch_candidates(profiles, step_mm, p_min=0.03, p_max=0.6, n=8):
    """Spectral peaks of the sectors' profiles, strongest first: (periods mm, powers).

    The power spectrum is the median over the sectors that lie on the image: grooves
    are there all round the disc, while a lead-in's changing pitch, a scratch or the
    X-ray picture hold a period in a few sectors only.
    """
    on_image = np.isfinite(profiles).all(axis=1)
    if on_image.sum() < 3:
        return [], []
    x = profiles[on_image] - profiles[on_image].mean(axis=1, keepdims=True)
    x = x * np.hanning(x.shape[1])[None, :]
    nfft = 8 * int(2 ** np.ceil(np.log2(x.shape[1])))
    power = np.median(np.abs(np.fft.rfft(x, nfft, axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(nfft, step_mm)
    ok = (freqs > 1 / p_max) & (freqs < min(1 / p_min, 0.4 / step_mm))
    if not ok.any():
        return [], []
    band = np.where(ok, power, 0.0)
    peaks = np.flatnonzero(ok & (band >= np.roll(band, 1)) & (band >= np.roll(band, -1)) & (band > 0))
    peaks = peaks[np.argsort(band[peaks])[::-1][:n]]
    periods, powers = [], []
    for k in peaks[peaks > 1]:
        powers.append(float(power[k]))
        if 0 < k < power.size - 1:
            a, b, c = np.log(power[k - 1:k + 2] + 1e-30)
            # the vertex of the parabola through the peak's bins: within half a bin
            k = k + np.clip(0.5 * (a - c) / min(a - 2 * b + c, -1e-12), -0.5, 0.5)
        periods.append(1.0 / (k * (freqs[1] - freqs[0])))
    return periods, powers


def _groove_shift(profiles, radii, pitch_mm, use=None):
    """Shift (mm, modulo one pitch, unwrapped around the disc) of each sector's grooves.

    Sectors where the grooves are barely visible (opaque film, a patch, the hole) get
    no weight and are left out of the unwrapping, so they cannot add a false pitch.
    The unwrapping follows the phase smoothed over a few sectors, each sector within
    half a pitch of it: one sector of random phase (a crack's gap, a scratch along the
    radius) would otherwise add or lose a whole pitch half the time. ``use`` (bool per
    sector) leaves sectors out like invisible ones (the other piece of a broken disc).
    """
    window = np.hanning(radii.size)
    phasor = np.exp(-2j * np.pi * radii / pitch_mm) * window
    on_image = np.isfinite(profiles).all(axis=1)
    coeff = np.nan_to_num(profiles) @ phasor
    strength = np.abs(coeff)
    good = on_image & (strength > 0.3 * np.median(strength[on_image] if on_image.any() else strength))
    if use is not None:
        good &= use
    phase = np.zeros(coeff.size)
    if good.sum() >= 2:
        raw = np.angle(coeff[good])
        smooth = np.unwrap(np.angle(ndimage.uniform_filter1d(coeff[good], 5, mode="wrap")))
        smooth = _unwrap_across_gaps(smooth, np.flatnonzero(good))
        phase[good] = smooth + np.angle(np.exp(1j * (raw - smooth)))
        phase[~good] = np.interp(np.flatnonzero(~good), np.flatnonzero(good), phase[good])
    return -phase * pitch_mm / (2 * np.pi), np.where(good, strength, 0.0)


def _unwrap_across_gaps(phase, sector, min_gap=4, reach=15):
    """``phase`` (unwrapped, of the sectors numbered ``sector``, increasing) with each
    stretch after a gap of more than ``min_gap`` sectors moved by whole turns of phase
    to continue the trend on both sides of the gap.

    Across a gap (the image's edge cutting the disc, dark film) the phase moves on with
    the spiral and with the centre's error; unwrapped as if the sectors were neighbours,
    a change of more than half a period would be taken the wrong way round.
    """
    phase = phase.copy()
    for g in np.flatnonzero(np.diff(sector) > min_gap):
        slopes = []
        for part in (slice(max(0, g + 1 - reach), g + 1), slice(g + 1, g + 1 + reach)):
            if phase[part].size >= 3:
                slopes.append(np.polyfit(sector[part], phase[part], 1)[0])
        predicted = phase[g] + (np.mean(slopes) if slopes else 0.0) * (sector[g + 1] - sector[g])
        phase[g + 1:] += 2 * np.pi * np.round((predicted - phase[g + 1]) / (2 * np.pi))
    return phase


@dataclass(frozen=True)
class _Fit:
    ex: float
    ey: float
    q: float
    slopes: np.ndarray
    rms: float
    offsets: np.ndarray = None

    def model(self, k, theta, radius):
        """Fitted groove shift (mm, modulo one pitch) of band ``k`` at ``theta``."""
        return (self.offsets[k] + self.slopes[k] * theta + self.ex * np.cos(theta)
                + self.ey * np.sin(theta) + self.q * radius * np.cos(2 * theta))


def _fit_harmonics(thetas, shifts, weights, band_radii, pitch_mm=None, n_iter=6, slope=None):
    """Joint least squares of the shift model over all bands (see module docstring).

    Robust twice over: residuals are re-wrapped into one pitch around the current model
    (a sector unwrapped into the wrong turn comes back), and weighted down when large
    (dust, scratches, a crack) with Cauchy weights. A given ``slope`` (mm/rad) is held
    rather than fitted.
    """
    n_bands = len(shifts)
    rows = []
    for k, (theta, radius) in enumerate(zip(thetas, band_radii)):
        design = np.zeros((theta.size, 3 + 2 * n_bands))
        design[:, 0] = np.cos(theta)
        design[:, 1] = np.sin(theta)
        design[:, 2] = radius * np.cos(2 * theta)
        design[:, 3 + 2 * k] = 1.0
        design[:, 4 + 2 * k] = theta
        rows.append(design)
    design, rhs, base_w = np.vstack(rows), np.concatenate(shifts), np.concatenate(weights)
    if slope is not None:
        rhs = rhs - slope * design[:, 4::2].sum(axis=1)
        design[:, 4::2] = 0.0
    w = base_w.copy()
    for _ in range(n_iter):
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(design * sw[:, None], rhs * sw, rcond=None)
        model = design @ coef
        resid = rhs - model
        if pitch_mm is not None:
            resid = (resid + pitch_mm / 2) % pitch_mm - pitch_mm / 2
            rhs = model + resid
        used = base_w > 0
        scale = max(1.4826 * np.median(np.abs(resid[used])), 1e-4) if used.any() else 1e-4
        w = base_w / (1.0 + (resid / (3 * scale)) ** 2)
    rms = float(np.sqrt(np.average(resid**2, weights=np.maximum(w, 1e-30))))
    slopes = coef[4::2] if slope is None else np.full(n_bands, slope)
    return _Fit(coef[0], coef[1], coef[2], slopes, rms, coef[3::2])


def _annulus(image, centre, px, r_inner, r_outer, step, pitch, n_lines=90, reach_mm=3.0):
    """Radii of the grooves, from groove-scale texture along radii.

    Texture is the local strength of the profile's component at the groove pitch
    (complex demodulation over half a millimetre, averaged over sectors): grooves have
    it, film texture, the outline and dust do not, however strong their contrast.
    Looks ``reach_mm`` beyond ``r_inner`` and ``r_outer``. Returns ``(dense, extent)``:
    the radial range of densely packed grooves (where the pitch can be measured) and the
    range of any groove at all (lead-in, run-out).
    """
    lo, hi = max(r_inner - reach_mm, 2 * step), r_outer + reach_mm
    prof, radii, _ = sector_profiles(image, centre, px, lo, hi, n_lines, 8, step)
    flat = np.nan_to_num(_detrend(prof, radii, pitch))
    width = max(3, int(0.5 / step))
    carrier = np.exp(-2j * np.pi * radii / pitch)[None, :]
    demod = (ndimage.uniform_filter1d((flat * carrier).real, width, axis=1)
             + 1j * ndimage.uniform_filter1d((flat * carrier).imag, width, axis=1))
    periodic = np.abs(demod).mean(axis=0)
    # any groove at all (a lead-in or run-out spiral has another pitch): plain RMS
    broad = np.nan_to_num(_detrend(prof, radii, 0.3))
    rms = np.sqrt(ndimage.uniform_filter1d(np.mean(broad**2, axis=0), width))

    def main_run(mask, texture):
        labels, n = ndimage.label(mask)
        if n == 0:
            return None
        weight = ndimage.sum(texture, labels, index=np.arange(1, n + 1))
        run = np.flatnonzero(labels == np.argmax(weight) + 1)
        return float(radii[run[0]]), float(radii[run[-1]])

    dense = main_run(periodic > 0.5 * np.percentile(periodic, 95), periodic) or (r_inner, r_outer)
    closed = ndimage.binary_closing(rms > 0.15 * np.percentile(rms, 95), iterations=int(1.0 / step))
    extent = main_run(closed, rms) or dense
    return dense, (min(extent[0], dense[0]), max(extent[1], dense[1]))


def _choose_bands(r_inner, r_outer, *, max_bands=6, band_mm=2.0):
    """Radial bands for the fine fit, clear of the lead-in (outside) and run-out (inside).

    A band needs several pitches for the phase to mean something, so a narrow annulus
    gets one band over all of its middle rather than several slivers.
    """
    span = r_outer - r_inner
    lo = r_inner + max(0.1 * span, 0.3)
    hi = r_outer - max(0.15 * span, 1.2)
    if hi - lo < 1.0:                          # short recording: use what there is
        lo, hi = r_inner + 0.1 * span, r_outer - 0.1 * span
    n_bands = int(np.clip((hi - lo) // band_mm, 1, max_bands))
    width = min(band_mm, (hi - lo) / n_bands)
    if n_bands == 1:                           # in the middle, not at the run-out's end
        return np.array([(lo + hi) / 2]), width
    return np.linspace(lo + width / 2, hi - width / 2, n_bands), width


def _piece_arc(band, mask):
    """A band rolled so the longest run of ``mask`` (one piece's arc) comes first, its
    angles continuous: unwrapping then runs along the arc and never across the break.
    Returns (profiles, radii, theta, mask), all rolled."""
    prof, radii, theta = band
    roll = roll_to_arc_start(mask)
    theta = np.roll(theta, -roll)
    theta = np.where(np.arange(theta.size) >= theta.size - roll, theta + 2 * np.pi, theta)
    return np.roll(prof, -roll, axis=0), radii, theta, np.roll(mask, -roll)


def _fixed_piece(band, crack):
    """A band restricted to a broken disc's fixed piece (see :func:`_piece_arc`);
    the band as it is, with no restriction, on a whole disc."""
    if crack is None:
        return (*band, None)
    fixed, _ = piece_masks(crack, band[1], band[2])
    return _piece_arc(band, fixed)


def _fit_band_shifts(data, band_radii, pitch, crack=None):
    """The shift model fitted to the bands' grooves (on a broken disc, its fixed piece).

    On one piece's arc the spiral's drift and the centre's sinusoid look alike, so
    there the drift is held at one ``pitch`` a turn (its sign fitted) rather than fitted.
    """
    thetas, shifts, weights = [], [], []
    for band in data:
        prof, radii, theta, use = _fixed_piece(band, crack)
        shift, strength = _groove_shift(_detrend(prof, radii, pitch), radii, pitch, use)
        thetas.append(theta)
        shifts.append(shift)
        weights.append(strength**2)
    fit = _fit_harmonics(thetas, shifts, weights, band_radii, pitch_mm=pitch)
    if crack is None:
        return fit
    slope = np.sign(np.median(fit.slopes)) * pitch / (2 * np.pi)
    return _fit_harmonics(thetas, shifts, weights, band_radii, pitch_mm=pitch, slope=slope)


def _band_pitch(band, radius, step, crack=None, pitch_hint=None):
    """The spectral period of one band that the spiral confirms, or NaN.

    Around one turn the grooves must drift by exactly one pitch. A spectral peak at a
    harmonic (two walls make a strong second harmonic) drifts by two of its periods,
    a peak of the X-ray picture, a label or a sparse lead-out drifts by no consistent
    amount. A groove's profile is no sine, so the music's pitch shows as a peak and as
    its harmonics; a single turn of other pitch in the band (a band spacer, the start
    of a run-out) confirms its own pitch but brings few harmonics. Of the confirmed
    pitches whose spiral fits about as well as the best and whose peak is about as
    strong, the one that most peaks are harmonics of wins. The music's pitch is never coarser than ``MAX_MUSIC_PITCH_MM``
    (a lead-in's or run-out's is); a user's ``pitch_hint`` narrows it to within 20 %.
    """
    prof, radii, _ = band
    found, found_power = _pitch_candidates(_detrend(prof, radii, 0.3), step)
    strength = dict(zip(np.round(found, 5), found_power))
    periods = sorted(strength)
    if pitch_hint is not None:
        # a hint picks among the grooves' own periods; it never stands in for them
        periods = [p for p in periods if _near_harmonic(pitch_hint / p, 0.2)]

    def admissible(pitch):
        if pitch_hint is not None:
            return abs(pitch / pitch_hint - 1) < 0.2
        return pitch <= MAX_MUSIC_PITCH_MM

    confirmed = []                   # (pitch, misfit, score, peak power) per confirmed peak
    for period in periods:
        fit = _fit_band_shifts([band], [radius], period, crack)
        drift = abs(2 * np.pi * fit.slopes[0])
        matches = [h for h in (1, 2, 3) if abs(drift / period - h) < 0.12 * h]
        if matches:
            harmonic = matches[0]
            # on a broken disc the drift is held (see _fit_band_shifts): the
            # spectrum's period is the measurement
            pitch = period * harmonic
            if not admissible(pitch):
                continue
            misfit = fit.rms / (period * harmonic)
            confirmed.append((pitch, misfit, -misfit - 0.05 * harmonic, strength.get(period, 0.0)))
    if not confirmed:
        return np.nan

    def harmonics_of(pitch):
        ratio = pitch / np.array(periods)
        order = np.round(ratio)
        return int(np.sum((order >= 1) & (order <= 3) & (np.abs(ratio - order) < 0.1 * order)))

    # only spirals that fit the grooves about as well as the best one are in the vote:
    # a peak of the film's texture can drift by its period by chance, but fits badly.
    # And only peaks of comparable power: a short side's few turns make a grating of
    # finite width, whose spectral side lobes (a fifth of the peak or less) drift by
    # their own period as well, and bring each other as "harmonics"
    best_misfit = min(c[1] for c in confirmed)
    strongest = max(c[3] for c in confirmed)
    candidates = [c for c in confirmed if c[1] <= 2 * best_misfit and c[3] >= 0.3 * strongest]
    pitch = max(candidates or confirmed, key=lambda c: (harmonics_of(c[0]), c[2]))[0]
    return float(pitch)


def _near_harmonic(ratio, tolerance):
    """Whether ``ratio`` is within ``tolerance`` (relative) of 1, 2 or 3."""
    order = np.round(ratio)
    return bool(1 <= order <= 3 and abs(ratio - order) < tolerance * order)


def _consistent_bands(data, band_radii, step, crack=None, pitch_hint=None):
    """Pitch agreed by the bands, and the bands that agree (lead-outs, labels dropped)."""
    pitches = np.array([_band_pitch(band, radius, step, crack, pitch_hint)
                        for band, radius in zip(data, band_radii)])
    ok = np.isfinite(pitches)
    if not ok.any():
        return np.nan, []
    pitch = float(np.median(pitches[ok]))
    keep = [k for k in range(len(data)) if ok[k] and abs(pitches[k] - pitch) < 0.05 * pitch]
    return pitch, keep


def _strongest_period(data, step):
    """The first band's strongest spectral period (mm), or NaN if it has none."""
    periods, _ = _pitch_candidates(_detrend(data[0][0], data[0][1], 0.3), step)
    return periods[0] if periods else np.nan


def _find_break(data, pitch, step, crack):
    """The break line seen in this round's bands, else the one seen before (or None)."""
    if not np.isfinite(pitch):
        # no pitch given: the strongest period, which shows phase steps as well
        pitch = _strongest_period(data, step)
        if not np.isfinite(pitch):
            return crack
    found = find_break([(_detrend(prof, radii, pitch), radii, theta) for prof, radii, theta in data], pitch)
    return found or crack


def _first_bands_are_music(new, first, crack, good_fit=0.1):
    """Whether the first round's bands (``first``) hold the music rather than the bands
    re-chosen at a better centre (``new``); each is (data, radii, pitch, kept bands).

    A groove spiral fits its grooves to a tenth of a pitch, and its profiles' crests are
    spaced by its pitch; a texture that confirms a pitch by chance (a disc's ragged
    edge) fails one or the other. Of two groove spirals the finer is the music's:
    lead-ins, run-outs and spacers are always wider. Of none, the better fit.
    """
    def misfit(bands):
        data, radii, pitch, keep = bands
        return _misfit([data[k] for k in keep], radii[keep], pitch, crack) if keep else np.inf

    def grooves(bands, fit):
        data, _, pitch, keep = bands
        return fit < good_fit and np.isfinite(_crest_pitch([data[k] for k in keep], pitch))

    new_misfit, first_misfit = misfit(new), misfit(first)
    new_grooves, first_grooves = grooves(new, new_misfit), grooves(first, first_misfit)
    if new_grooves and first_grooves:
        return first[2] < new[2]
    if new_grooves or first_grooves:
        return first_grooves
    return first_misfit < new_misfit


def _misfit(data, band_radii, pitch, crack):
    """How far the grooves stray from the fitted spiral, in pitches."""
    return _fit_band_shifts(data, band_radii, pitch, crack).rms / pitch


def _pitch_and_break(data, band_radii, step, pitch_hint=None):
    """First round: the confirmed pitch, the bands that agree, and a break (or None).

    The break is looked for with the pitch a whole spiral confirms. A broken disc may
    confirm none, or a wrong one, so the break is also looked for with the strongest
    period; but that may be a band spacer's, whose edges look like a break's. A break
    seen only then stands if the spiral on the larger piece fits the grooves better
    than the whole spiral did.
    """
    pitch, keep = _consistent_bands(data, band_radii, step, pitch_hint=pitch_hint)
    crack = _find_break(data, pitch, step, None)
    if crack is None and np.isfinite(pitch):
        seen = _find_break(data, np.nan, step, None)
        if seen is not None:
            piece_pitch, piece_keep = _consistent_bands(data, band_radii, step, seen, pitch_hint)
            if piece_keep and (_misfit([data[k] for k in piece_keep], band_radii[piece_keep], piece_pitch, seen)
                               < _misfit([data[k] for k in keep], band_radii[keep], pitch, None)):
                return piece_pitch, piece_keep, seen
        return pitch, keep, None
    if crack is not None:
        pitch, keep = _consistent_bands(data, band_radii, step, crack, pitch_hint)
    return pitch, keep, crack


def _refine(image, coarse: CoarseGeometry, px_nominal, *, pitch_hint=None, n_rounds=3):
    centre = np.array(coarse.centre_px, dtype=np.float64)
    q = coarse.scale_mismatch
    px = np.array(px_nominal, dtype=np.float64) * np.array([1 + q, 1 - q])
    px = px * np.sqrt(np.prod(px_nominal) / np.prod(px))
    r_inner, r_outer = coarse.r_inner_mm, coarse.r_outer_mm
    pitch = np.nan
    step = min(px) / 2
    crack = None
    bands_range = (r_inner, r_outer)
    # the user's radii bound the grooves; found ones reach half a block past them
    reach = 0.0 if coarse.radii_given else 3.0
    period = pitch_hint or coarse.period_mm
    if np.isfinite(period):
        # the bands go where the grooves are densely periodic: not on the lead-in
        bands_range, _ = _annulus(image, centre, px, r_inner, r_outer, step, period, reach_mm=reach)
    centres_mm, width = _choose_bands(*bands_range)
    for round_ in range(n_rounds):
        if round_ == 1:
            # the pitch is known: two dozen samples a period are plenty for its phase
            step = max(step, pitch / 24)
            # with the centre close, measure where the grooves really are
            first = (centres_mm, width, pitch)
            dense, extent = _annulus(image, centre, px, r_inner, r_outer, step, pitch, reach_mm=reach)
            centres_mm, width = _choose_bands(*dense)
            if not coarse.radii_given:
                r_inner, r_outer = extent
        data = [sector_profiles(image, centre, px, rc - width / 2, rc + width / 2, 720, 4, step)
                for rc in centres_mm]
        if round_ == 0:
            # the period the spiral confirms (its drift over a turn is one pitch), and
            # a break seen with it, or else with the strongest period; if no band
            # confirms any pitch while the centre is still rough, the strongest period
            pitch, keep, crack = _pitch_and_break(data, centres_mm, step, pitch_hint)
            if keep:
                data, centres_mm = [data[k] for k in keep], centres_mm[keep]
            else:
                pitch = pitch_hint or _strongest_period(data, step)
                if not np.isfinite(pitch):
                    raise NoGrooveError("no periodic groove pattern found in the grooved area")
        else:
            # a broken disc: the spiral is fitted on the larger piece only
            crack = _find_break(data, pitch, step, crack)
        if round_ == 1:
            pitch, keep = _consistent_bands(data, centres_mm, step, crack, pitch_hint)
            middle = 0.5 * (first[0].min() + first[0].max())
            if not keep or abs(pitch / first[2] - 1) > 0.2 or not dense[0] <= middle <= dense[1]:
                # the densest texture at this centre is not where the first round's
                # spiral was, or not at its pitch: a run-out (its spacing near a multiple
                # of the music's) or the disc's edge may be denser. Both are weighed
                first_data = [sector_profiles(image, centre, px, rc - first[1] / 2, rc + first[1] / 2,
                                              720, 4, step) for rc in first[0]]
                first_pitch, first_keep = _consistent_bands(first_data, first[0], step, crack, pitch_hint)
                if _first_bands_are_music((data, centres_mm, pitch, keep),
                                          (first_data, first[0], first_pitch, first_keep), crack):
                    data, (centres_mm, width), pitch, keep = first_data, first[:2], first_pitch, first_keep
                    if not coarse.radii_given:      # the grooved area holds these bands
                        r_inner = min(r_inner, centres_mm.min() - width / 2)
                        r_outer = max(r_outer, centres_mm.max() + width / 2)
            if not keep and pitch_hint is not None:
                raise NoGrooveError(f"no spiral groove at the hinted pitch ({pitch_hint:g} mm) around this "
                                    "centre: check the hint, or leave it out to let the grooves tell")
            if not keep:
                raise NoGrooveError("no spiral groove found: the grooved area shows no consistent pitch")
            data = [data[k] for k in keep]
            centres_mm = centres_mm[keep]
        fit = _fit_band_shifts(data, centres_mm, pitch, crack)
        if round_ == n_rounds - 1 and crack is not None:
            crack = _register_piece(image, centre, px, r_outer, data, centres_mm, pitch, fit, crack)
        # update centre (mm -> px) and the X/Y scales (q: relative radius excess along x)
        centre = centre + np.array([fit.ey / px[0], fit.ex / px[1]])
        if crack is not None:
            crack = crack.recentred((fit.ex, fit.ey))
        px = px * np.array([1 + fit.q, 1 - fit.q])
        px = px * np.sqrt(np.prod(px_nominal) / np.prod(px))
    crest_pitch = _crest_pitch(data, pitch)
    if np.isfinite(crest_pitch):
        pitch = crest_pitch
    return centre, px, fit, pitch, data, centres_mm, (r_inner, r_outer), crack


def _register_piece(image, centre, px, r_outer, data, band_radii, pitch, fit, crack):
    """The crack with the moved piece's turn and offset, or None if no rigid motion fits
    or the piece has not moved.

    The break's edges give a first offset; the moved piece's grooves, relative to the
    spiral fitted on the fixed piece and unwrapped along the piece's arc, give it to a
    micrometre (:func:`groovescan.crack.fit_offset`); the edges, matched with that
    offset, give the turn.
    """
    def read_mm(x, y):
        return sample(image, centre[0] + y / px[0], centre[1] + x / px[1], interpolation="linear")

    edges = break_edges(read_mm, crack, r_outer, float(min(px)))
    motion = motion_from_edges(edges, crack) if edges is not None else None
    guess = motion[1] if motion is not None else None
    residuals, thetas = [], []
    for k, (band, radius) in enumerate(zip(data, band_radii)):
        _, moved = piece_masks(crack, band[1], band[2])
        prof, radii, theta, moved = _piece_arc(band, moved)
        shift, strength = _groove_shift(_detrend(prof, radii, pitch), radii, pitch, moved)
        ok = moved & (strength > 0)
        resid = shift[ok] - fit.model(k, theta[ok], radius)
        wrapped = (resid + pitch / 2) % pitch - pitch / 2
        residuals.append(np.unwrap(wrapped, period=pitch))
        thetas.append(theta[ok])
    offset, rms = fit_offset(residuals, thetas, pitch, guess)
    if offset is None or rms > 0.15 * pitch:
        return None
    # without a visible gap the turn is unknown: it only shifts the piece's sound by
    # a fraction of a millisecond
    turn = turn_from_edges(edges, crack, offset) if edges is not None else 0.0
    if max(np.hypot(*offset), abs(turn) * r_outer) < 0.05 * pitch:
        # the "piece" lies where the spiral puts it: nothing to re-register, and what
        # looked like a break was a straight line across whole grooves (a sensor chip's
        # seam, a streak, a crack that did not move)
        return None
    return Crack(crack.normal_angle, crack.distance_mm, offset, turn)


# ----------------------------------------------------------------------------- polarity

def _periods_along_turn(image, centre, px, model_shift, r_band, pitch, offset_mm, step, n_lines=4096,
                        crack=None):
    """Samples (lines, periods, n_v) around each groove candidate along one turn of a band.

    ``model_shift(theta)`` gives the radius (mod pitch) of the grooves' fundamental
    maximum; the candidate centre is ``offset_mm`` away from it. On a broken disc only
    the fixed piece's arc is read, which the model describes.
    """
    theta = (np.arange(n_lines) + 0.5) * 2 * np.pi / n_lines
    if crack is not None:
        fixed, _ = piece_masks(crack, (r_band - 3 * pitch, r_band + 3 * pitch), theta)
        theta = np.roll(theta, -roll_to_arc_start(fixed))[:fixed.sum()]
    n_per = 3
    periods = np.arange(-n_per, n_per + 1)
    v = np.arange(-pitch / 2, pitch / 2, step)
    base = model_shift(theta) + offset_mm
    base = base + np.round((r_band - base) / pitch) * pitch
    radii = base[:, None, None] + periods[None, :, None] * pitch + v[None, None, :]
    th = theta[:, None, None]
    values = sample(image, centre[0] + radii * np.sin(th) / px[0],
                    centre[1] + radii * np.cos(th) / px[1], interpolation="linear")
    return values, v


def _edge_coherence(values, v):
    """Correlation of the fast motion of the two edges of each period, along the turn.

    Each half of the period is located against the mean profile by one linearised
    least-squares step (gain and offset free), which is far less noisy than any
    centroid; the motion is then band-passed along the turn. Whatever moves every
    period at one angle alike is not the groove's: the scanner's row jitter, a sensor
    chip's misregistration, a streak across the band. That common motion is taken out
    (the mean over the periods at each angle), or a land strip's two edges, which
    belong to different turns, would seem to move together like a groove's walls.
    """
    template = seen_mean(values, axis=(0, 1))
    slope = np.gradient(template)
    data = np.nan_to_num(values - seen_mean(values, axis=2, keepdims=True))
    motions = []
    for half in (v < 0, v >= 0):
        t = slope * half
        t = t - t[half].mean() * half
        motions.append(-(data @ t) / max(float(t @ t), 1e-12))
    fast = [ndimage.uniform_filter1d(m, 3, axis=0, mode="nearest")
            - ndimage.uniform_filter1d(m, 15, axis=0, mode="nearest") for m in motions]
    common = 0.5 * (fast[0] + fast[1]).mean(axis=1, keepdims=True)
    fast = [f - common for f in fast]
    a, b = fast[0].ravel(), fast[1].ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or a[ok].std() == 0 or b[ok].std() == 0:
        return 0.0
    # taking out the common mean of the 2 n series correlates independent ones by
    # -1 / (2 n - 1); measured from there, 0 means "the halves share nothing"
    unrelated = -1.0 / (2 * values.shape[1] - 1)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) - unrelated


def _choose_groove(image, centre, px, model_shift, r_band, pitch, step, crack=None):
    """Groove centre offset from the fundamental maximum, polarity, coherences, profile.

    A dark-walled groove sits at the fundamental's minimum (offset p/2), a
    bright-walled one at its maximum (offset 0). The two halves of a groove carry the
    same audio; the two edges of a land strip belong to neighbouring turns, which
    share nothing. So the groove is the candidate whose halves are the more strongly
    related, whatever the sign: its walls move together, but where the lamp lights
    the walls from one side a wall brightens as the other darkens with the groove's
    slope, which can outweigh the motion and read as the halves moving apart.
    When the disc is too quiet to tell, the candidate with more structure is kept.
    """
    results = []
    for offset, polarity in ((pitch / 2, "dark"), (0.0, "bright")):
        values, v = _periods_along_turn(image, centre, px, model_shift, r_band, pitch, offset, step,
                                        crack=crack)
        results.append((_edge_coherence(values, v), polarity, offset, seen_mean(values, axis=(0, 1))))
    (coh_dark, *_), (coh_bright, *_) = results
    if abs(abs(coh_dark) - abs(coh_bright)) > 0.1:
        pick = results[0] if abs(coh_dark) > abs(coh_bright) else results[1]
    else:
        # too quiet to tell by motion: the land is a flat plateau, the groove has walls
        # and a bottom, so the groove centre is the candidate with more structure nearby
        def central_spread(profile):
            v = np.arange(profile.size) - (profile.size - 1) / 2
            return np.std(profile[np.abs(v) <= 0.2 * profile.size])
        pick = max(results, key=lambda res: central_spread(res[3]))
    offset, profile = pick[2], pick[3]
    # name the polarity from what was chosen: are the walls darker than the land?
    v = np.arange(profile.size) - (profile.size - 1) / 2
    land = profile[np.abs(v) > 0.4 * profile.size].mean()
    groove = profile[np.abs(v) < 0.25 * profile.size].mean()
    polarity = "dark" if groove < land else "bright"
    return offset, polarity, (coh_dark, coh_bright), profile


# ----------------------------------------------------------------------------- public

def check_hints(*, centre_px=None, radii_mm=None, pitch_mm=None, image_shape=None, px_mm=None):
    """Validate the user's geometry hints; returns them as floats (or None).

    Raises
    ------
    ParameterError
        A hint that cannot be right, saying what was wrong.
    """
    def numbers(value, n, what, example):
        try:
            values = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            values = ()
        if len(values) != n or not all(np.isfinite(values)):
            raise ParameterError(f"{what}={value!r}: give {n} numbers, e.g. {example}")
        return values

    if centre_px is not None:
        centre_px = numbers(centre_px, 2, "centre", "(8200, 8350) as row, col in pixels")
        if image_shape is not None and px_mm is not None:
            reach = MAX_DISC_RADIUS_MM / float(px_mm)
            if not all(-reach < c < n + reach for c, n in zip(centre_px, image_shape)):
                raise ParameterError(f"centre (row {centre_px[0]:g}, col {centre_px[1]:g}) lies far "
                                     f"outside the {image_shape[0]} x {image_shape[1]} px image; give "
                                     "the spiral centre's row and column in pixels")
    if radii_mm is not None:
        radii_mm = numbers(radii_mm, 2, "radii", "(40, 85) in mm")
        if not 0 < radii_mm[0] < radii_mm[1] <= MAX_DISC_RADIUS_MM:
            raise ParameterError(f"radii {radii_mm[0]:g}-{radii_mm[1]:g} mm: give the inner and outer "
                                 f"radius of the grooves in mm, inner first, at most {MAX_DISC_RADIUS_MM:g}")
    if pitch_mm is not None:
        if isinstance(pitch_mm, bool) or not (isinstance(pitch_mm, (int, float, np.number))
                                              and 0.02 <= pitch_mm <= 2.0):
            raise ParameterError(f"pitch={pitch_mm!r}: give the groove pitch in mm, 0.02-2 "
                                 "(bone records ~0.2, 78s ~0.28, LPs ~0.1)")
        pitch_mm = float(pitch_mm)
    return centre_px, radii_mm, pitch_mm


def find_geometry(scan, *, px_mm=None, centre_px=None, radii_mm=None, pitch_mm=None,
                  destreak=True) -> DiscGeometry:
    """Find the spiral's centre, scale, handedness, pitch and polarity.

    Parameters
    ----------
    scan : Scan or 2-D array
        The scan (``Scan`` from :func:`groovescan.load_scan`) or an image array, in
        which case ``px_mm`` (row, col) must be given.
    px_mm : (float, float), optional
        Nominal pixel size (row, col) in mm; taken from ``scan.px_mm`` by default.
    centre_px : (row, col), optional
        Where the spiral's centre is, roughly (pixels), when it cannot be found
        automatically; it is refined from the grooves.
    radii_mm : (r_inner, r_outer), optional
        Radii (mm) between which the grooves lie; taken as given.
    pitch_mm : float, optional
        The groove pitch, roughly (mm): the pitch found must be within 20 % of it.
    destreak : bool
        Measure the scanner's fixed pattern (per-column and per-row gain and offset)
        off the grooves and divide it out before the fine fit
        (:func:`groovescan.fixedpattern.measure_fixed_pattern`); it is kept in
        ``fixed_pattern`` for the later stages. A pattern no stronger than its own
        measurement noise is left alone.

    Returns
    -------
    DiscGeometry

    Raises
    ------
    NoGrooveError
        No spiral groove found; its ``evidence`` attribute holds what the coarse
        stage saw (:class:`groovescan.coarse.CoarseGeometry`), for a diagnostic figure.
    ParameterError
        A hint that cannot be right.

    Notes
    -----
    Reads the image once in strips (groove texture in 2 mm blocks), then samples a few
    thousand radial lines; peak memory is a few hundred MB whatever the scan size.
    """
    image = getattr(scan, "image", scan)
    if px_mm is None:
        px_mm = scan.px_mm
    px_nominal = (float(px_mm[0]), float(px_mm[1]))
    px_mean = float(np.sqrt(px_nominal[0] * px_nominal[1]))
    centre_px, radii_mm, pitch_mm = check_hints(centre_px=centre_px, radii_mm=radii_mm, pitch_mm=pitch_mm,
                                                image_shape=image.shape, px_mm=px_mean)
    coarse = coarse_geometry(image, px_mean, centre_px=centre_px, radii_mm=radii_mm, pitch_mm=pitch_mm)
    pattern = measure_fixed_pattern(image, grooves=coarse, px_mm=px_mean) if destreak else None
    if pattern is not None:
        image = pattern.corrected(image)
    try:
        centre, px, fit, pitch, data, band_radii, (r_inner, r_outer), crack = _refine(
            image, coarse, px_nominal, pitch_hint=pitch_mm)
    except NoGrooveError as error:
        error.evidence = getattr(error, "evidence", None) or coarse
        raise
    direction = -1 if np.median(fit.slopes) > 0 else 1
    # the fit's groove shift in the middle band, relative to the refined centre
    k = len(band_radii) // 2
    if crack is None:
        a_k = float(np.median(_groove_shift(_detrend(data[k][0], data[k][1], pitch), data[k][1], pitch)[0]
                              - np.median(fit.slopes) * data[k][2]))
    else:
        # unwrapped across the break the shifts are off by parts of a pitch: take the
        # fixed piece's fit (its centre error is already applied)
        a_k = float(fit.offsets[k])
    slope = float(np.median(fit.slopes))
    model_shift = lambda theta: a_k + slope * theta
    step = min(px) / 2
    offset, polarity, coherence, profile = _choose_groove(
        image, centre, px, model_shift, band_radii[k], pitch, step, crack)
    confidence = float(np.clip(1.0 - fit.rms / (0.25 * pitch), 0.0, 1.0))
    groove_radius = a_k + offset
    groove_radius += np.round((band_radii[k] - groove_radius) / pitch) * pitch
    return DiscGeometry(
        centre_px=(float(centre[0]), float(centre[1])),
        px_mm=(float(px[0]), float(px[1])),
        direction=direction,
        pitch_mm=float(pitch),
        polarity=polarity,
        r_inner_mm=float(r_inner),
        r_outer_mm=float(r_outer),
        profile=profile.astype(np.float32),
        profile_step_mm=float(step),
        scale_mismatch=float(px[1] / px[0] - 1.0),
        centre_residual_mm=float(fit.rms),
        confidence=confidence,
        wall_coherence=coherence,
        groove_radius_mm=float(groove_radius),
        groove_slope_mm=slope,
        crack=crack,
        coarse=coarse,
        fixed_pattern=pattern if pattern is not None and pattern.any_applied else None,
    )
