"""Benchmark: render a 3-minute bone-record side at 2400 dpi into a TIFF.

Prints the image size, wall time of each stage and the peak resident memory
(``resource.getrusage``). The TIFF is written to a cache folder (default
``benchmarks/_cache/``) and kept, so other benchmarks can decode it.

    python benchmarks/bench_render.py            # 7-inch, 2400 dpi, 180 s (~17 000 px square)
    python benchmarks/bench_render.py --quick    # the same disc at 600 dpi
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from groovescan.synth import render_scan_to_file, sweep, tone  # noqa: E402


def music_like(duration_s: float, sr: int, seed: int = 0) -> np.ndarray:
    """A log sweep 100 Hz - 6 kHz over a quiet chord and some noise: broadband, deterministic."""
    rng = np.random.default_rng(seed)
    x = sweep(100.0, 6000.0, duration_s=duration_s, sr=sr, amplitude=0.6)
    for f in (220.0, 277.2, 329.6):
        x += tone(f, duration_s=duration_s, sr=sr, amplitude=0.1)
    x += rng.standard_normal(x.size, dtype=np.float32) * np.float32(0.02)
    return x


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0     # Linux: KiB


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parent / "_cache"),
                        help="where the TIFF goes (default: benchmarks/_cache/)")
    parser.add_argument("--quick", action="store_true", help="600 dpi instead of 2400")
    parser.add_argument("--dpi", type=float, help="override the resolution")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of audio")
    parser.add_argument("--preset", default="bone", help="render preset (default: bone)")
    parser.add_argument("--workers", type=int, default=None, help="render threads")
    parser.add_argument("--sr", type=int, default=44100)
    args = parser.parse_args(argv)

    dpi = args.dpi or (600.0 if args.quick else 2400.0)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{args.preset}_{int(dpi)}dpi_{int(args.duration)}s.tif"

    t0 = time.perf_counter()
    audio = music_like(args.duration, args.sr)
    rss_audio = peak_rss_mb()
    t1 = time.perf_counter()
    truth = render_scan_to_file(path, audio, sr=args.sr, preset=args.preset, dpi=dpi,
                                seed=1, overwrite=True, workers=args.workers)
    t2 = time.perf_counter()
    (path.with_suffix(".truth.json")).write_text(json.dumps(truth.to_dict(), indent=1))
    rows, cols = truth.image_shape
    size_mb = path.stat().st_size / 2**20
    print(f"file        {path}  ({size_mb:.0f} MiB, {rows} x {cols} px, {truth.bits} bit)")
    print(f"audio       {args.duration:.0f} s at {args.sr} Hz, {truth.n_turns:.0f} turns, "
          f"{dpi:.0f} dpi")
    print(f"render      {t2 - t1:.1f} s  ({rows * cols / (t2 - t1) / 1e6:.1f} Mpx/s)")
    print(f"peak RSS    {peak_rss_mb():.0f} MiB  (after making the audio: {rss_audio:.0f} MiB)")
    print(f"total       {t2 - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
