"""Tests of groovescan.restore: click detection, LSAR repair, noise estimation, denoising.

Every signal is synthetic, so the clean answer is known. Units follow a 2400 dpi scan
decoded at 48 kHz: displacement in pixels, with the 0.03 px white position noise that
DESIGN.md measured for a one-line matched filter. "Music-like" means band-limited noise
plus a few sustained partials under a slow envelope; as a displacement its spectrum falls
steeply with frequency, as a velocity it is flat to ~2.5 kHz. Every RNG is seeded; every
tolerance says what was measured (seeds as written) and why the bound sits where it does.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from groovescan.errors import GroovescanError, ParameterError
from groovescan.restore import (
    ClickMask,
    NoisePSD,
    declick,
    denoise,
    detect_clicks,
    estimate_noise_psd,
    mask_to_regions,
    regions_to_mask,
    repair_gaps,
)

SR = 48_000
POSITION_NOISE_PX = 0.03


# --------------------------------------------------------------------------------------
# Signals with known answers
# --------------------------------------------------------------------------------------
def velocity_music(n, rng, *, pauses=False):
    """Unit-RMS music-like velocity: 100–2500 Hz noise plus partials, slow envelope.

    With ``pauses`` the music stops for ~40 % of the time (a 0.5 Hz gate), as between
    phrases and in the lead-in: what minimum statistics needs.
    """
    t = np.arange(n) / SR
    band = sps.butter(2, [100, 2500], btype="band", fs=SR, output="sos")
    v = sps.sosfilt(band, rng.standard_normal(n))
    v /= v.std()
    for freq, amp in [(220, 1.0), (330, 0.7), (523, 0.5), (880, 0.4), (1320, 0.3), (2100, 0.2)]:
        v += amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    envelope = 1 + 0.8 * np.sin(2 * np.pi * 1.7 * t) * np.sin(2 * np.pi * 0.31 * t + 1)
    if pauses:
        gate = (np.sin(2 * np.pi * 0.5 * t) > -0.3).astype(float)
        envelope *= sps.sosfiltfilt(sps.butter(2, 20, fs=SR, output="sos"), gate)
    v *= envelope
    return v / v.std()


def music_displacement(n, rng, *, rms_px):
    """Music-like groove displacement (px): the integral of velocity_music, no drift."""
    d = np.cumsum(velocity_music(n, rng)) / SR
    d = sps.sosfiltfilt(sps.butter(2, 30, btype="high", fs=SR, output="sos"), d)
    return d * rms_px / d.std()


def inject_clicks(x, rng, n_each):
    """Add impulses, outlier bursts and 20-sample steps (a hair shifting the wall).

    Sizes are gross errors against 0.03 px noise: impulses 0.5–3 px, bursts of 3–10
    samples uniform in ±3 px, steps of 0.5–2 px. Events sit at least 100 samples apart.
    Returns the damaged copy and a list of (start, stop, kind).
    """
    damaged = x.copy()
    kinds = np.repeat(["impulse", "burst", "step"], n_each)
    rng.shuffle(kinds)
    starts = np.sort(rng.choice(np.arange(200, len(x) - 200, 100), len(kinds), replace=False))
    events = []
    for start, kind in zip(starts, kinds):
        if kind == "impulse":
            length = 1
            damaged[start] += rng.choice([-1, 1]) * rng.uniform(0.5, 3)
        elif kind == "burst":
            length = int(rng.integers(3, 11))
            damaged[start : start + length] += rng.uniform(-3, 3, length)
        else:
            length = 20
            damaged[start : start + length] += rng.choice([-1, 1]) * rng.uniform(0.5, 2)
        events.append((int(start), int(start) + length, str(kind)))
    return damaged, events


def random_gaps(n, rng, *, fraction=0.01, longest=40):
    """Mask of random gaps 1..longest samples long covering ~`fraction` of n."""
    mask = np.zeros(n, bool)
    while mask.mean() < fraction:
        length = int(rng.integers(1, longest + 1))
        start = int(rng.integers(0, n - length))
        mask[start : start + length] = True
    return mask


def tone_mixture(n, rng):
    """Five partials 150 Hz – 4.1 kHz, falling in level like a displacement spectrum."""
    t = np.arange(n) / SR
    partials = [(150, 1.0), (440, 0.6), (1000, 0.3), (2500, 0.1), (4100, 0.05)]
    return sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f, a in partials)


def blue_noise(n, rng, sigma):
    """White noise of std `sigma`, differenced: PSD rising 6 dB/octave."""
    return np.diff(sigma * rng.standard_normal(n + 1))


def blue_noise_psd(freqs, sigma):
    """Exact one-sided PSD of blue_noise: white 2σ²/sr times |1 - e^{-jω}|²."""
    return 2 * sigma**2 / SR * 4 * np.sin(np.pi * freqs / SR) ** 2


def snr_db(reference, estimate):
    return 10 * np.log10(np.sum(reference**2) / np.sum((estimate - reference) ** 2))


def linear_fill(x, mask):
    good = np.flatnonzero(~mask)
    filled = x.copy()
    filled[mask] = np.interp(np.flatnonzero(mask), good, x[good])
    return filled


# --------------------------------------------------------------------------------------
# Click detection
# --------------------------------------------------------------------------------------
# Two signal levels 20 dB apart: quiet (0.2 px RMS) and loud (2 px RMS, ~20 µm — a loud
# bass-heavy passage at 2400 dpi), both over the same 0.03 px position noise.
LEVELS_PX = [0.2, 2.0]


@pytest.mark.parametrize("rms_px", LEVELS_PX)
def test_clean_music_raises_no_clicks(rms_px):
    rng = np.random.default_rng(11)
    n = 10 * SR
    clean = music_displacement(n, rng, rms_px=rms_px) + POSITION_NOISE_PX * rng.standard_normal(n)
    clicks = detect_clicks(clean, sr=SR)
    # Measured: 0 regions at both levels (and at 10 px; threshold=4.5 gives 1-2).
    # Allow 2 regions in 10 s — a few false repairs cost nothing audible — and 1e-4
    # of the samples.
    assert clicks.n_clicks <= 2
    assert clicks.fraction <= 1e-4


@pytest.mark.parametrize("rms_px", LEVELS_PX)
def test_injected_clicks_are_found(rms_px):
    rng = np.random.default_rng(12)
    n = 5 * SR
    clean = music_displacement(n, rng, rms_px=rms_px) + POSITION_NOISE_PX * rng.standard_normal(n)
    damaged, events = inject_clicks(clean, rng, n_each=100)
    truth = np.zeros(n, bool)
    for start, stop, _ in events:
        truth[start:stop] = True

    clicks = detect_clicks(damaged, sr=SR)

    # Found = every sample the event moved by more than 0.1 px (3 sigma of the position
    # noise) is inside the mask: a partly covered step would leave an offset behind.
    # The ends of a burst that happen to be moved by less are not clicks.
    found = np.array(
        [clicks.mask[a:b][np.abs(damaged[a:b] - clean[a:b]) > 0.1].all() for a, b, _ in events]
    )
    kinds = np.array([kind for *_, kind in events])
    # Measured recall: 0.98 (0.2 px) and 0.97 (2 px), impulses and steps 1.00; the few
    # misses are bursts whose edge sample was moved by barely more than 0.1 px.
    assert found.mean() >= 0.95
    assert found[kinds == "impulse"].all() and found[kinds == "step"].all()
    # False regions (touching no injected sample): measured 0; allow 2 in 5 s.
    false_regions = sum(not truth[a:b].any() for a, b in clicks.regions)
    assert false_regions <= 2
    # Flagged samples against injected ones: measured 1.35x (0.2 px) and 1.19x (2 px) —
    # steps merged whole, a sample or two of margin. Bound 2x: every extra sample is
    # interpolated, and LSAR's error on it is small but not zero.
    assert clicks.mask.sum() <= 2 * truth.sum()


def test_step_is_covered_whole():
    rng = np.random.default_rng(13)
    n = SR
    x = music_displacement(n, rng, rms_px=1.0) + POSITION_NOISE_PX * rng.standard_normal(n)
    x[20_000:20_020] += 0.8  # a hair shifting the wall estimate for 20 samples
    clicks = detect_clicks(x, sr=SR)
    # The step's two edges are detected and merged (min_gap=32 > 20) into one region.
    assert clicks.n_clicks == 1
    start, stop = clicks.regions[0]
    assert start <= 20_000 and stop >= 20_020
    # Tight: measured 19 996-20 025, 4-5 samples of margin each side (a step's edge
    # looks, to the deconvolution, partly like impulses just outside it). Bound 6 each.
    assert stop - start <= 20 + 2 * 6


def test_external_evidence_is_honoured():
    rng = np.random.default_rng(14)
    n = SR
    x = music_displacement(n, rng, rms_px=1.0) + POSITION_NOISE_PX * rng.standard_normal(n)
    evidence = np.zeros(n, bool)
    evidence[30_000:30_005] = True  # walls disagree, though the signal looks clean
    x[40_000] = np.nan  # groove lost for one sample
    clicks = detect_clicks(x, sr=SR, evidence=evidence, widen=0)
    assert clicks.mask[30_000:30_005].all()
    assert clicks.mask[40_000]
    assert clicks.n_clicks == 2  # nothing else in clean music


def test_click_mask_is_consistent():
    rng = np.random.default_rng(15)
    x = music_displacement(SR, rng, rms_px=1.0) + POSITION_NOISE_PX * rng.standard_normal(SR)
    x[[5_000, 17_000, 17_003]] += 2.0
    clicks = detect_clicks(x, sr=SR)
    assert isinstance(clicks, ClickMask)
    assert clicks.mask.dtype == bool and clicks.mask.shape == x.shape
    np.testing.assert_array_equal(regions_to_mask(clicks.regions, len(x)), clicks.mask)
    np.testing.assert_array_equal(mask_to_regions(clicks.mask), clicks.regions)
    assert clicks.n_clicks == 2  # 17 000 and 17 003 merge
    with pytest.raises(AttributeError):  # frozen
        clicks.threshold = 1.0


def reference_click_scores(x, usable, order, block):
    """The scores as one AR fit and one filter per block: the plain loop that
    restore._scores._click_scores computes for all blocks at once (by FFT, in chunks)."""
    from scipy.ndimage import maximum_filter1d

    from groovescan.restore._ar import _fit_ar, _interpolation_error
    from groovescan.restore._regions import _MAD_TO_SIGMA

    n = len(x)
    edges = np.linspace(0, n, max(1, int(round(n / block))) + 1).astype(np.int64)
    errors, scales, c = np.zeros(n), np.zeros(len(edges) - 1), None
    for i, (start, stop) in enumerate(zip(edges[:-1], edges[1:])):
        lo, hi = max(start - order, 0), min(stop + order, n)
        ok = usable[lo:hi]
        segment = x[lo:hi] - (np.mean(x[lo:hi][ok]) if ok.any() else 0.0)
        fitted = _fit_ar(segment, ok, order)
        c = fitted if fitted is not None else c  # an unfittable block borrows the last model
        if c is not None:
            errors[start:stop] = _interpolation_error(segment, c)[start - lo : stop - lo]
            scales[i] = np.median(np.abs(errors[start:stop])) * _MAD_TO_SIGMA
    scales = maximum_filter1d(scales, size=3, mode="nearest")
    floor = np.finfo(float).tiny + 1e-12 * np.max(scales, initial=0.0)
    return errors / np.repeat(np.maximum(scales, floor), np.diff(edges))


@pytest.mark.parametrize("n", [60, 700, 24_100])
def test_block_scores_match_the_per_block_loop(n):
    from groovescan.restore._scores import _click_scores

    rng = np.random.default_rng(16)
    x = 3.0 + music_displacement(n, rng, rms_px=1.0) + POSITION_NOISE_PX * rng.standard_normal(n)
    x[rng.integers(0, n, n // 400)] += 2.0
    usable = np.ones(n, bool)
    usable[rng.integers(0, n, n // 100)] = False
    # At n = 24 100 (25 blocks): block 0 cannot be fitted (no model yet), nor blocks 12
    # and 13 (they borrow block 11's model).
    usable[: n // 25] = False
    usable[n // 2 - 600 : n // 2 + 1400] = False
    scores = _click_scores(x, usable, 24, 960)
    reference = reference_click_scores(x, usable, 24, 960)
    # FFTs and running sums round differently. Measured: within 8e-9 relative.
    np.testing.assert_allclose(scores, reference, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------
# Gap repair
# --------------------------------------------------------------------------------------
def test_lsar_repairs_tone_mixture():
    rng = np.random.default_rng(21)
    n = 2 * SR
    clean = tone_mixture(n, rng) + 1e-3 * rng.standard_normal(n)  # 60 dB below the tones
    mask = random_gaps(n, rng)
    damaged = np.where(mask, clean + rng.uniform(-3, 3, n), clean)

    repaired = repair_gaps(damaged, mask, sr=SR)

    # Unrepaired: 13.7 dB. Measured after LSAR: 57.1 dB overall, 37.4 dB inside the gaps
    # (linear interpolation: 9.5 dB inside the gaps).
    # Bar: 30 dB inside the gaps — the filled samples carry 1/1000 of the signal's
    # power as error, so repaired clicks sit under a 2400 dpi scan's 15-30 dB noise
    # floor; the exact answer is out of reach because the noise inside the gaps cannot
    # be predicted, and a 40-sample gap is almost a period of the 1 kHz partial.
    assert snr_db(clean, damaged) < 20
    assert snr_db(clean[mask], repaired[mask]) > 30
    assert snr_db(clean, repaired) > 50


def test_lsar_beats_linear_interpolation_on_music():
    errors = {"lsar": 0.0, "linear": 0.0}
    power = 0.0
    for seed in range(20, 30):  # pooled over ten 1-second excerpts
        rng = np.random.default_rng(seed)
        clean = music_displacement(SR, rng, rms_px=1.0)
        clean += POSITION_NOISE_PX * rng.standard_normal(SR)
        mask = random_gaps(SR, rng)
        damaged = np.where(mask, clean + rng.uniform(-3, 3, SR), clean)
        errors["lsar"] += np.sum((repair_gaps(damaged, mask, sr=SR) - clean)[mask] ** 2)
        errors["linear"] += np.sum((linear_fill(damaged, mask) - clean)[mask] ** 2)
        power += np.sum(clean[mask] ** 2)
    gain_db = 10 * np.log10(errors["linear"] / errors["lsar"])
    # Measured: in-gap SNR 14.1 dB (LSAR) against 12.2 dB (linear), +1.9 dB; other
    # sets of ten seeds give +1.7 to +2.2 dB, single seconds +0.4 to +2.8 dB. The
    # margin is modest because half of this "music" is band-limited noise, which no
    # interpolator can predict across a 40-sample (0.8 ms > 1 / 2.5 kHz) gap; on the
    # tone mixture above LSAR wins by 28 dB. Bound: +1 dB, and 12 dB in the gaps.
    assert gain_db > 1.0
    assert 10 * np.log10(power / errors["lsar"]) > 12


def test_repair_leaves_good_samples_alone_and_keeps_dtype():
    rng = np.random.default_rng(23)
    x = tone_mixture(SR // 4, rng).astype(np.float32)
    mask = random_gaps(len(x), rng)
    damaged = np.where(mask, np.float32(9.0), x)
    repaired = repair_gaps(damaged, mask)
    assert repaired.dtype == np.float32
    np.testing.assert_array_equal(repaired[~mask], damaged[~mask])
    # Noise-free float32 tones: measured 5e-5 (float32 rounding of a unit signal is
    # 6e-8, so this is the AR model's fit); bound 1e-3.
    assert np.abs(repaired[mask] - x[mask]).max() < 1e-3


def test_gaps_at_the_ends_are_bridged_not_extrapolated():
    rng = np.random.default_rng(24)
    n = SR // 4
    x = tone_mixture(n, rng) + 0.7 + 1e-3 * rng.standard_normal(n)
    mask = np.zeros(n, bool)
    mask[:10] = mask[-2_000:] = True  # a short gap at the start, a long one at the end
    repaired = repair_gaps(np.where(mask, np.nan, x), mask, sr=SR)

    assert np.isfinite(repaired).all()
    # Past the 5 ms slope fade (max_gap / 4 = 240 samples) the end holds the last good
    # value exactly.
    np.testing.assert_array_equal(repaired[-1_700:], x[n - 2_001])
    # The join is as smooth as the music: its sample-to-sample steps (measured 0.043)
    # stay below the largest step of the mixture itself (0.147).
    joins = np.diff(repaired)[[n - 2_001, n - 2_000]]
    assert np.all(np.abs(joins) <= np.abs(np.diff(x)).max())
    # The start is held the same way: off by at most what the signal moves in 10
    # samples (measured 0.53 against 10 x 0.147). One-sided LSAR, which this policy
    # replaces, was measured 0.75 off after 25 samples, and growing.
    assert np.abs(repaired[:10] - x[:10]).max() < 10 * np.abs(np.diff(x)).max()


def test_non_finite_samples_are_repaired_even_unmasked():
    rng = np.random.default_rng(25)
    x = tone_mixture(SR // 4, rng)
    damaged = x.copy()
    damaged[1000:1004] = [np.nan, np.inf, -np.inf, np.nan]
    repaired = repair_gaps(damaged, np.zeros(len(x), bool))
    assert np.isfinite(repaired).all()
    assert np.abs(repaired - x).max() < 1e-3  # noise-free tones: measured 5e-10


def test_long_gap_is_bridged_by_a_smooth_near_silent_curve():
    rng = np.random.default_rng(26)
    n = SR // 2
    x = tone_mixture(n, rng) + 0.001 * rng.standard_normal(n)
    mask = np.zeros(n, bool)
    mask[10_000:12_400] = True  # 50 ms: groove lost, longer than max_gap = 20 ms
    repaired = repair_gaps(np.where(mask, 5.0, x), mask, sr=SR)

    velocity = np.diff(repaired)
    music_velocity_change = np.percentile(np.abs(np.diff(x, 2)), 99)
    # No click at the joins: the displacement and its slope carry on, so the velocity
    # changes there far less than the music's own velocity does from sample to sample
    # (measured 0.07 and 0.01 of its 99th percentile; bound 0.3).
    for edge in (9_999, 12_399):
        assert abs(velocity[edge] - velocity[edge - 1]) < 0.3 * music_velocity_change
    # Near-silent inside: away from the ~5 ms fades the bridge is a straight line, so
    # above 100 Hz its velocity holds nothing (measured 3e-16 of the music's).
    inner = velocity[10_000 + 300 : 12_400 - 300]
    audio_band = sps.sosfiltfilt(sps.butter(4, 100, btype="high", fs=SR, output="sos"), inner)
    assert np.sqrt(np.mean(audio_band**2)) < 1e-3 * np.std(np.diff(x))
    # And it stays within the signal's range: no wild excursion.
    assert np.abs(repaired[mask]).max() <= np.abs(x).max()


def test_fully_masked_signal_warns_and_returns_zeros():
    with pytest.warns(UserWarning, match="every sample is masked"):
        out = repair_gaps(np.ones(100), np.ones(100, bool))
    np.testing.assert_array_equal(out, 0.0)


def audio_band(displacement):
    """Velocity in 100–5000 Hz, where DESIGN.md measures what clicks do to the audio."""
    band = sps.butter(4, [100, 5000], btype="band", fs=SR, output="sos")
    return sps.sosfiltfilt(band, np.diff(displacement) * SR)


@pytest.mark.parametrize("rms_px", LEVELS_PX)
def test_declick_restores_the_audio(rms_px):
    rng = np.random.default_rng(28)
    n = 3 * SR
    clean = music_displacement(n, rng, rms_px=rms_px) + POSITION_NOISE_PX * rng.standard_normal(n)
    damaged, events = inject_clicks(clean, rng, n_each=60)
    truth = np.zeros(n, bool)
    for start, stop, _ in events:
        truth[start:stop] = True

    repaired, report = declick(damaged, sr=SR)
    oracle = repair_gaps(damaged, truth, sr=SR)  # repair told the true corrupted samples

    reference = audio_band(clean)
    before = snr_db(reference, audio_band(damaged))
    after = snr_db(reference, audio_band(repaired))
    best = snr_db(reference, audio_band(oracle))
    # Measured (0.2 / 2 px): clicks pull the audio SNR down to -7.4 / 11.6 dB; declick
    # restores 20.5 / 23.8 dB, within 2.1 dB of repairing exactly the injected samples
    # (22.1 / 25.9 dB: LSAR cannot recover the noise and the unpredictable part of the
    # music inside the gaps). Bounds: +10 dB at least, and within 3 dB of that oracle.
    assert after > before + 10
    assert after > best - 3
    assert len(report.bridged) == 0


def test_declick_bridges_where_the_walls_are_lost():
    rng = np.random.default_rng(29)
    n = 2 * SR
    clean = music_displacement(n, rng, rms_px=1.0) + POSITION_NOISE_PX * rng.standard_normal(n)
    damaged = clean.copy()
    lost = np.zeros(n, bool)
    lost[40_000:42_000] = True  # 42 ms where the walls disagree: the groove is lost
    damaged[lost] = np.nan

    repaired, report = declick(damaged, sr=SR, evidence=lost)

    assert np.isfinite(repaired).all()
    assert report.max_gap == int(0.02 * SR)
    assert len(report.bridged) == 1
    start, stop = report.bridged[0]
    assert start <= 40_000 and stop >= 42_000
    np.testing.assert_array_equal(repaired[~report.clicks.mask], clean[~report.clicks.mask])


# --------------------------------------------------------------------------------------
# Noise spectrum
# --------------------------------------------------------------------------------------
AUDIO_BAND = (200.0, 20_000.0)  # where the dB comparisons are made (blue PSD -> 0 at DC)


def in_band(freqs):
    return (freqs >= AUDIO_BAND[0]) & (freqs <= AUDIO_BAND[1])


def test_difference_of_two_measurements_recovers_noise_psd():
    rng = np.random.default_rng(31)
    n = 10 * SR
    music = velocity_music(n, rng)
    wall_a = music + blue_noise(n, rng, 1.0)
    wall_b = music + blue_noise(n, rng, 1.0)

    freqs, psd = estimate_noise_psd(wall_a, sr=SR, method="difference", reference=wall_b)

    # Noise of the mean of the two walls: half the PSD of one wall's noise.
    error_db = 10 * np.log10(psd[in_band(freqs)] / (blue_noise_psd(freqs, 1.0)[in_band(freqs)] / 2))
    # Welch over ~940 segments: 0.15 dB scatter per bin. Measured: median +0.01 dB,
    # max |error| 0.51 dB.
    assert abs(np.median(error_db)) < 0.2
    assert np.abs(error_db).max() < 1.0


def test_minimum_statistics_on_music_with_pauses():
    rng = np.random.default_rng(32)
    n = 10 * SR
    noisy = velocity_music(n, rng, pauses=True) + blue_noise(n, rng, 1.0)

    freqs, psd = estimate_noise_psd(noisy, sr=SR, method="minimum")

    error_db = 10 * np.log10(psd[in_band(freqs)] / blue_noise_psd(freqs, 1.0)[in_band(freqs)])
    # The music is silent ~40 % of the time, so the 10 % quantile sees noise alone.
    # Measured: median +0.19 dB, 95th percentile of |error| 1.5 dB, max 2.0 dB (at
    # 234 Hz, by the 220 Hz partial, where the blue noise is weakest and the gate's
    # fades leak most music into the quantile).
    assert abs(np.median(error_db)) < 0.5
    assert np.percentile(np.abs(error_db), 95) < 2.0
    assert np.abs(error_db).max() < 3.0


@pytest.mark.parametrize(("method", "bound_db"), [("minimum", 0.5), ("quiet", 1.0)])
def test_noise_psd_is_calibrated_on_white_noise(method, bound_db):
    rng = np.random.default_rng(33)
    noise = rng.standard_normal(5 * SR)
    freqs, psd = estimate_noise_psd(noise, sr=SR, method=method)
    error_db = 10 * np.log10(np.median(psd[1:-1]) / (2 / SR))
    # Measured +0.1 dB (minimum: gamma bias correction) and -0.5 dB ("quiet" keeps the
    # frames that happened to be quietest, a known small low bias).
    assert abs(error_db) < bound_db


def test_noise_psd_result_is_a_frozen_dataclass_that_unpacks():
    noise = np.random.default_rng(34).standard_normal(SR)
    result = estimate_noise_psd(noise, sr=SR, nperseg=512)
    assert isinstance(result, NoisePSD)
    freqs, psd = result
    assert freqs.shape == psd.shape == (257,)
    assert freqs[-1] == SR / 2
    assert result.method == "minimum" and result.nperseg == 512


# --------------------------------------------------------------------------------------
# Noise suppression
# --------------------------------------------------------------------------------------
def test_denoise_improves_snr_on_blue_noise_with_known_psd():
    rng = np.random.default_rng(41)
    n = 10 * SR
    music = velocity_music(n, rng)
    noisy = music + blue_noise(n, rng, 0.3)
    freqs = np.fft.rfftfreq(1024, 1 / SR)

    out = denoise(noisy, sr=SR, noise_psd=(freqs, blue_noise_psd(freqs, 0.3)))

    # Measured: 7.5 dB in, 19.1 dB out: +11.6 dB. The blue noise lies mostly above
    # 2.5 kHz, where the music is absent, so most of it goes; bound +10 dB.
    assert len(out) == n
    assert snr_db(music, out) - snr_db(music, noisy) > 10


def test_denoise_with_estimated_psd_on_music_with_pauses():
    rng = np.random.default_rng(42)
    n = 10 * SR
    music = velocity_music(n, rng, pauses=True)
    noisy = music + blue_noise(n, rng, 1.0)

    out = denoise(noisy, sr=SR)  # noise PSD by minimum statistics

    # Measured: -3.0 dB in, 12.6 dB out: +15.6 dB, nearly as good as with the true
    # PSD (12.9 dB out). Bound +12 dB. Without pauses the estimate takes sustained
    # music for noise (see estimate_noise_psd): pass a "difference" PSD then.
    assert snr_db(music, out) - snr_db(music, noisy) > 12


def test_denoise_spares_clean_music():
    rng = np.random.default_rng(43)
    n = 5 * SR
    music = velocity_music(n, rng)
    freqs = np.fft.rfftfreq(1024, 1 / SR)

    # The noise PSD of a real decode (7 dB SNR), applied to music without that noise:
    # the Wiener gain only dips where the music is weaker than the noise would be.
    out = denoise(music, sr=SR, noise_psd=(freqs, blue_noise_psd(freqs, 0.3)))
    # Measured 20.3 dB (output against the clean input); bound 18 dB.
    assert snr_db(music, out) > 18

    # No noise at all: the STFT round trip is transparent (measured 314 dB).
    out = denoise(music, sr=SR, noise_psd=np.zeros(513))
    assert snr_db(music, out) > 100


def test_gain_floor_limits_the_attenuation_of_noise():
    rng = np.random.default_rng(44)
    noise = blue_noise(5 * SR, rng, 1.0)
    freqs = np.fft.rfftfreq(1024, 1 / SR)
    out = denoise(noise, sr=SR, noise_psd=(freqs, blue_noise_psd(freqs, 1.0)), floor_db=-20)
    attenuation_db = 10 * np.log10(np.mean(out**2) / np.mean(noise**2))
    # Pure noise meets the -20 dB floor almost everywhere; occasional bins pass when a
    # noise frame happens to be loud. Measured -19.8 dB.
    assert -20.5 < attenuation_db < -15


def test_denoise_keeps_dtype_and_length():
    x = np.random.default_rng(45).standard_normal(SR // 2 + 123).astype(np.float32)
    out = denoise(x, sr=SR)
    assert out.dtype == np.float32 and out.shape == x.shape


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: detect_clicks(np.zeros((10, 10)), sr=SR),
        lambda: detect_clicks(np.zeros(1000), sr=-1),
        lambda: detect_clicks(np.zeros(1000), sr=SR, evidence=np.zeros(10, bool)),
        lambda: repair_gaps(np.zeros(100), np.zeros(99, bool)),
        lambda: repair_gaps(np.zeros(100), np.zeros(100, bool), ar_order=0),
        lambda: estimate_noise_psd(np.zeros(SR), sr=SR, method="median"),
        lambda: estimate_noise_psd(np.zeros(SR), sr=SR, method="difference"),
        lambda: estimate_noise_psd(np.zeros(100), sr=SR),
        lambda: denoise(np.full(SR, np.nan), sr=SR),
        lambda: denoise(np.zeros(SR), sr=SR, noise_psd=np.ones(7)),
    ],
)
def test_bad_input_raises_a_helpful_value_error(call):
    with pytest.raises(ParameterError) as info:
        call()
    assert isinstance(info.value, GroovescanError) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.booleans(), min_size=0, max_size=200))
def test_regions_round_trip(bits):
    mask = np.array(bits, dtype=bool)
    regions = mask_to_regions(mask)
    np.testing.assert_array_equal(regions_to_mask(regions, len(mask)), mask)
    assert np.all(regions[:, 1] > regions[:, 0])
    assert np.all(regions[1:, 0] > regions[:-1, 1])  # separate, not touching


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.integers(50, 400))
def test_repair_is_finite_and_touches_only_masked_samples(seed, density, n):
    rng = np.random.default_rng(seed)
    mask = rng.random(n) < density  # from isolated samples to almost everything lost
    assume(not mask.all())  # all lost: warns, tested on its own above
    x = tone_mixture(n, rng)
    out = repair_gaps(np.where(mask, np.nan, x), mask, ar_order=8, context=64, max_gap=40)
    np.testing.assert_array_equal(out[~mask], x[~mask])
    assert np.isfinite(out).all()
    # Nothing runs away: interpolation, bridges and holds stay near the signal.
    assert np.abs(out).max() <= 10 * np.abs(x).max()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2_000, 5_000),
    st.lists(st.integers(0, 4_999), max_size=12),
    st.lists(st.integers(0, 4_999), max_size=3),
)
def test_spikes_are_found_and_nothing_else(seed, n, spikes, evidence_at):
    """3 px spikes on a tone mixture with 0.01 noise: all found, no false region.

    Spikes within `ar_order` (24) samples of either end are exempt: there the
    interpolation error is truncated and less sensitive (documented). Checked with 600
    random examples while developing; 25 fixed (derandomized) ones run here.
    """
    rng = np.random.default_rng(seed)
    x = tone_mixture(n, rng) + 0.01 * rng.standard_normal(n)
    truth = np.zeros(n, bool)
    for at in spikes:
        if at < n:
            x[at] += 3.0
            truth[at] = True
    evidence = np.zeros(n, bool)
    evidence[[at for at in evidence_at if at < n]] = True

    clicks = detect_clicks(x, sr=SR, evidence=evidence)

    assert clicks.mask[evidence].all()
    interior = truth.copy()
    interior[:24] = interior[-24:] = False
    assert clicks.mask[interior].all()
    assert all((truth | evidence)[a:b].any() for a, b in clicks.regions)
