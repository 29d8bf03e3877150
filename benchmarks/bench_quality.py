"""Benchmark: decode quality on rendered scans with known audio, and against damage.

Renders small discs (70 mm film, groove from r = 30 mm, 8 s of band-limited noise at
5 cm/s peak) with ``groovescan.synth``, decodes them, and prints the SNR of the decode
(mean over the discs, and the worst disc) against the groove velocity (``groovescan.metrics.compare``, 100 Hz - 5 kHz), the
segmental SNR, speed error, wow and skipped turns. The same for each kind of damage
at rising severity, and the gain of hiss suppression (``decode(denoise=...)``) on the
bundled Brahms excerpt and on the band-limited noise.

    python benchmarks/bench_quality.py            # scanner/disc variants and damage
    python benchmarks/bench_quality.py --seeds 3  # average over more discs
    python benchmarks/bench_quality.py --only crack --seeds 20   # one kind, many discs
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from groovescan import decode, metrics, synth  # noqa: E402

SR = 44100
BASE = dict(dpi=2400, disc_diameter_mm=70.0, r_start_mm=30.0)

VARIANTS = {
    "transmission 2400 dpi": {},
    "reflective": dict(mode="reflective"),
    "mirrored": dict(mirrored=True),
    "hole 2 mm off centre": dict(hole_offset_mm=2.0, outline_offset_mm=2.5),
    "X/Y scale 1.5 %": dict(px_scale_error=(0.0, 0.015)),
    "1200 dpi": dict(dpi=1200),
    "8-bit": dict(bits=8),
    "PSF 15 um": dict(psf_sigma_um=15.0),
    "worn bone preset": dict(preset="bone_worn"),
    "run-out and locked groove": dict(lead_out_turns=1.5, lead_out_pitch_mm=1.5, locked_groove=True),
}

DAMAGE = {
    "dust /cm2": ("dust_per_cm2", [2.0, 10.0]),
    "scratches": ("scratches", [4, 12]),
    "hairs": ("hairs", [3, 10]),
    "opaque patches": ("opaque_patches", [1, 3]),
    "darkest film OD": ("od_range", [(0.5, 2.0), (1.0, 3.0)]),
    "crack, shift/turn scale": ("crack_scale", [0.5, 1.0, 2.0], dict(crack=True)),
    "band spacer at 4 s, pitch mm": ("band_break_pitch_mm", [0.6, 2.0], dict(band_breaks_s=(4.0,))),
}


def music_like(seconds, *, seed):
    rng = np.random.default_rng(seed)
    sos = signal.butter(2, [200, 4000], "bandpass", fs=SR, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(int(seconds * SR))).astype(np.float32)


def run(options, seeds):
    rows = []
    for seed in range(seeds):
        kw = dict(BASE, **options)
        rendered = synth.render_scan(music_like(8.0, seed=seed), sr=SR, seed=seed + 1, **kw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = decode(rendered.image, dpi=kw["dpi"])
                c = metrics.compare(result.audio, rendered.truth.velocity, sr=SR, rpm=78.0)
            rows.append((c.snr_db, c.segmental_snr_db, c.speed_error * 100, c.wow_percent, c.n_skips,
                         result.report.n_clicks, len(result.report.gaps)))
        except Exception as exc:  # noqa: BLE001 - a benchmark reports failures and goes on
            rows.append((np.nan,) * 7)
            print(f"    seed {seed}: {type(exc).__name__}: {exc}")
    rows = np.array(rows, dtype=float)
    worst = float(np.nanmin(rows[:, 0])) if np.isfinite(rows[:, 0]).any() else np.nan
    return np.nanmean(rows, axis=0), worst, int(np.isnan(rows[:, 0]).sum())


def brahms(seconds):
    """The bundled Brahms excerpt (sample_scans/, public domain), mono at SR."""
    import soundfile as sf

    path = Path(__file__).resolve().parents[1] / "sample_scans" / "brahms_excerpt.flac"
    audio, sr = sf.read(path, dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(axis=1)
    if sr != SR:
        audio = signal.resample_poly(audio, SR, sr)
    audio = audio[:int(seconds * SR)]
    return (audio / np.abs(audio).max() * 0.5).astype(np.float32)


def denoise_gain(strengths=(0.0, 0.5, 1.0, 2.0)):
    """SNR of decode(..., denoise=s) on real music and on broadband noise, 2400/1200 dpi."""
    print(f"\n{'hiss suppression (denoise=)':34s} " + " ".join(f"{s:>7g}" for s in strengths))
    for label, audio in (("Brahms excerpt", brahms(8.0)), ("band-limited noise", music_like(8.0, seed=0))):
        for dpi in (2400, 1200):
            rendered = synth.render_scan(audio, sr=SR, seed=3, **dict(BASE, dpi=dpi))
            snrs = []
            for strength in strengths:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = decode(rendered.image, dpi=dpi, denoise=strength)
                    snrs.append(metrics.compare(result.audio, rendered.truth.velocity, sr=SR, rpm=78.0).snr_db)
            print(f"{label + f', {dpi} dpi':34s} " + " ".join(f"{v:7.1f}" for v in snrs), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--only", metavar="TEXT",
                        help="only the cases whose name contains TEXT (and no hiss table)")
    args = parser.parse_args(argv)
    header = f"{'case':34s} {'SNR dB':>7s} {'worst':>7s} {'seg dB':>7s} {'speed %':>8s} {'wow %':>7s} {'skips':>5s} {'clicks':>6s} {'gaps':>4s}"
    print(header)
    cases = [(name, opts) for name, opts in VARIANTS.items()]
    cases += [(f"{label} = {value}", {key: value, **(more[0] if more else {})})
              for label, (key, values, *more) in DAMAGE.items() for value in values]
    if args.only:
        cases = [(name, options) for name, options in cases if args.only in name]
    for name, options in cases:
        (snr, seg, speed, wow, skips, clicks, gaps), worst, failed = run(options, args.seeds)
        note = f"  ({failed} failed)" if failed else ""
        print(f"{name:34s} {snr:7.1f} {worst:7.1f} {seg:7.1f} {speed:8.4f} {wow:7.4f} {skips:5.1f} {clicks:6.0f} {gaps:4.1f}{note}", flush=True)
    if not args.only:
        denoise_gain()


if __name__ == "__main__":
    main()
