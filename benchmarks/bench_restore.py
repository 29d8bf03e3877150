"""Time the restore stages on a synthetic displacement signal.

Usage::

    PYTHONPATH=. python3 benchmarks/bench_restore.py              # 1e6 samples
    PYTHONPATH=. python3 benchmarks/bench_restore.py --n 8000000  # ~3 min at 44.1 kHz

The signal is a few tones plus white position noise; 1 % of the samples are masked in
gaps of 1–40 samples, as the click detector leaves them. Prints wall-clock and CPU
seconds.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from groovescan.restore import declick, denoise, detect_clicks, repair_gaps


def synthetic_displacement(n: int, sr: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    tones = sum(
        amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        for freq, amp in [(110, 1.0), (440, 0.4), (1000, 0.1), (2500, 0.02)]
    )
    return tones + 0.03 * rng.standard_normal(n)


def random_gaps(n: int, fraction: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 41, size=int(n * fraction / 20.5) + 1)
    starts = rng.integers(0, n - 40, size=len(lengths))
    mask = np.zeros(n, bool)
    for start, length in zip(starts, lengths):
        mask[start : start + length] = True
    return mask


def timed(label: str, func, *args, **kwargs):
    """Run and print wall-clock and CPU seconds (CPU time is steadier on a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<36s} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples")
    parser.add_argument("--sr", type=float, default=48_000.0, help="sample rate, Hz")
    args = parser.parse_args()

    x = synthetic_displacement(args.n, args.sr)
    mask = random_gaps(args.n, 0.01)
    n_regions = int(np.count_nonzero(np.diff(mask.astype(np.int8)) == 1))
    print(f"{args.n} samples at {args.sr:g} Hz, {mask.mean():.2%} masked in {n_regions} gaps")
    damaged = np.where(mask, x + 2.0, x)

    timed("repair_gaps (LSAR, order 32)", repair_gaps, damaged, mask, sr=args.sr)
    timed("detect_clicks (order 24)", detect_clicks, damaged, sr=args.sr)
    timed("declick (detect + repair)", declick, damaged, sr=args.sr)
    timed("denoise (estimated noise PSD)", denoise, x, sr=args.sr)


if __name__ == "__main__":
    main()
