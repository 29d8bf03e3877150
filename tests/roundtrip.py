"""Shared helpers of the round-trip tests: render a scan from known audio, decode, score."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import signal

from groovescan import decode, synth

SR = 44100


def music_like(seconds, *, seed=0, sr=SR):
    """Band-limited noise (200 Hz - 4 kHz): broadband like music, answer known exactly."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(2, [200, 4000], "bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(int(seconds * sr))).astype(np.float32)


def _band(x, sr, band):
    sos = signal.butter(4, band, "bandpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64))


def _lag(a, b):
    """Lag (samples, sub-sample) of ``a`` relative to ``b`` by cross-correlation."""
    c = signal.correlate(a, b, mode="full", method="fft")
    k = int(np.argmax(np.abs(c)))
    if 0 < k < c.size - 1:
        y0, y1, y2 = np.abs(c[k - 1:k + 2])
        k = k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return k - (b.size - 1)


@dataclass
class Score:
    snr_db: float
    gain: float
    lag_s: float
    speed_error: float
    wow_percent: float
    max_lag_jump_s: float


def score(decoded, reference, *, sr=SR, rpm=78.0, band=(100.0, 5000.0), window_s=0.4):
    """SNR after delay/gain/polarity alignment; speed, wow and lag jumps from a lag track.

    The lag of the decode against the truth is measured in short windows; a constant
    speed error is its slope, once-per-turn wow its component at the rotation rate, a
    skipped or repeated turn a jump of one revolution.
    """
    d, r = _band(decoded, sr, band), _band(reference, sr, band)
    lag = int(round(_lag(d, r)))
    if lag >= 0:
        d = d[lag:]
    else:
        r = r[-lag:]
    n = min(d.size, r.size)
    edge = int(0.1 * sr)                        # filter and fade transients at both ends
    d, r = d[edge:n - edge], r[edge:n - edge]
    gain = float(np.dot(d, r) / np.dot(r, r))
    err = d - gain * r
    snr = 10 * np.log10(np.sum((gain * r) ** 2) / np.sum(err ** 2))
    w = int(window_s * sr)
    starts = np.arange(0, d.size - w, w // 2)
    energy = np.array([np.mean(r[s:s + w] ** 2) for s in starts])
    times, lags = [], []
    for start in starts[energy > 0.1 * np.median(energy)]:   # silent lead-in/out: no lag
        lags.append(_lag(d[start:start + w], r[start:start + w]))
        times.append((start + w / 2) / sr)
    times, lags = np.array(times), np.array(lags) / sr
    omega = 2 * np.pi * rpm / 60
    design = np.stack([np.ones_like(times), times, np.cos(omega * times), np.sin(omega * times)], axis=1)
    coef, *_ = np.linalg.lstsq(design, lags, rcond=None)
    return Score(snr_db=float(snr), gain=gain, lag_s=lag / sr, speed_error=float(coef[1]),
                 wow_percent=float(100 * omega * np.hypot(coef[2], coef[3])),
                 max_lag_jump_s=float(np.max(np.abs(np.diff(lags)))) if lags.size > 1 else 0.0)


def render_and_decode(audio, *, rpm=78.0, seed=1, **options):
    """Render ``audio`` with groovescan's renderer and decode the image."""
    options.setdefault("dpi", 2400)
    options.setdefault("disc_diameter_mm", 70.0)
    options.setdefault("r_start_mm", 30.0)
    rendered = synth.render_scan(audio, sr=SR, rpm=rpm, seed=seed, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = decode(rendered.image, dpi=options["dpi"], rpm=rpm, sr=SR)
    return rendered.truth, result
