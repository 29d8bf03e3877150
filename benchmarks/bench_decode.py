"""Benchmark: decode full-size scans; time per stage, real-time factor, peak memory, SNR.

Renders each scan once into ``benchmarks/_cache/`` (kept, with the truth velocity), then
decodes it in a fresh process so peak RSS is that decode's own. For each scan it prints
the time to read the uncompressed TIFF into memory (the floor no decoder goes below),
the time of every stage, the total, the real-time factor, peak RSS, and the SNR of the
decode against the truth (``groovescan.metrics.compare``, 100 Hz - 5 kHz).

    python benchmarks/bench_decode.py                  # 7-inch 3-min at 1200/2400/4800 dpi, 10-inch at 2400
    python benchmarks/bench_decode.py --only 2400      # just the 7-inch side at 2400 dpi
    python benchmarks/bench_decode.py --duration 30    # shorter sides, same discs
    python benchmarks/bench_decode.py --cold           # empty the page cache before each read

Whether the file is already in the operating system's page cache changes the read
floor several-fold (a 0.6 GB TIFF: ~0.2 s from cache, ~0.7 s from disk here); the
figures printed say which it was. ``--cold`` needs permission to write
``/proc/sys/vm/drop_caches`` (root on Linux).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CACHE = Path(__file__).resolve().parent / "_cache"
SR = 44100

SCANS = {
    # name: renderer options
    "1200": dict(preset="bone", dpi=1200),
    "2400": dict(preset="bone", dpi=2400),
    "4800": dict(preset="bone", dpi=4800),
    "10in_2400": dict(preset="bone", dpi=2400, disc_diameter_mm=254.0, r_start_mm=120.0),
}


def music_like(seconds, *, seed=0):
    from scipy import signal
    rng = np.random.default_rng(seed)
    sos = signal.butter(2, [200, 4000], "bandpass", fs=SR, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(int(seconds * SR))).astype(np.float32)


def ensure_scan(name, duration):
    """Render (once) and return the paths of the scan and of its truth velocity."""
    from groovescan.synth import render_scan_to_file

    path = CACHE / f"bench_{name}_{int(duration)}s.tif"
    truth_path = path.with_suffix(".velocity.npy")
    if not (path.exists() and truth_path.exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        truth = render_scan_to_file(path, music_like(duration), sr=SR, seed=1, overwrite=True,
                                    **SCANS[name])
        np.save(truth_path, truth.velocity)
        print(f"  rendered {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
    return path, truth_path


def _decode_child(path, queue):
    import groovescan

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    scan = groovescan.load_scan(path)
    result = groovescan.decode(scan)
    total = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(dict(total=total, timings=result.report.timings_s, peak_mb=peak_mb,
                   shape=result.report.image_shape, duration=result.duration_s,
                   followed=result.report.followed_fraction, audio=result.audio))


def _read_child(path, queue):
    import tifffile

    t = time.perf_counter()
    pixels = tifffile.imread(path)          # every pixel into memory
    queue.put(dict(read=time.perf_counter() - t, nbytes=pixels.nbytes))


def drop_page_cache():
    """Empty the page cache so the next read comes from disk; False if not permitted."""
    import os

    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def in_child(target, path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(str(path), queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SCANS), help="scan(s) to run")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of audio per side")
    parser.add_argument("--cold", action="store_true",
                        help="empty the page cache before the read and before the decode (root)")
    args = parser.parse_args(argv)
    from groovescan import metrics

    for name in args.only or list(SCANS):
        print(f"[{name}] {SCANS[name]}", flush=True)
        path, truth_path = ensure_scan(name, args.duration)
        cold = args.cold and drop_page_cache()
        if args.cold and not cold:
            print("  (could not empty the page cache: no permission; reads may come from cache)")
        read = in_child(_read_child, path)
        if cold:
            drop_page_cache()
        out = in_child(_decode_child, path)
        comparison = metrics.compare(out["audio"], np.load(truth_path), sr=SR, rpm=78.0)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in out["timings"].items() if k != "total")
        print(f"  image {out['shape'][1]} x {out['shape'][0]} px ({read['nbytes'] / 2**30:.2f} GiB)")
        print(f"  read TIFF into memory: {read['read']:.2f} s "
              f"({'from disk, page cache emptied' if cold else 'page cache as found'})")
        print(f"  stages (s): {stages}")
        print(f"  total {out['total']:.1f} s = {out['total'] / read['read']:.1f} x the read; "
              f"{out['duration'] / out['total']:.1f} x real time for {out['duration']:.0f} s of audio")
        print(f"  peak RSS {out['peak_mb']:.0f} MB; image {read['nbytes'] / 2**20:.0f} MB")
        print(f"  followed {out['followed'] * 100:.1f} %; SNR {comparison.snr_db:.1f} dB "
              f"(segmental {comparison.segmental_snr_db:.1f} dB), skips {comparison.n_skips}", flush=True)


if __name__ == "__main__":
    main()
