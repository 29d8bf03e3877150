"""Stress benchmark: random discs over every physical range, rendered, decoded, scored.

Each disc comes from :func:`groovescan.stress.draw_disc` (bone records, shellac 78s and
vinyl of every size; programmes of 5 s to 5 min anywhere on the disc; every pitch,
groove width, polarity, mirroring and film density; 1200-4800 dpi; a random selection
of real flatbed habits). It is rendered to a file in a scratch folder (TIFF, or JPEG
when the scanner writes JPEG), decoded from that file as a user would, scored against
the groove velocity it was cut from (``groovescan.metrics.compare``, 100 Hz - 5 kHz;
silent where the truth says the groove cannot be seen: off the image, off the film),
and deleted. Prints one line a disc and, at the end, the failure rate, the skipped
turns and the SNR distribution, overall, by kind and by habit.

    python benchmarks/bench_stress.py                      # 200 discs, 2 at a time
    python benchmarks/bench_stress.py --discs 20 --scale small
    python benchmarks/bench_stress.py --only 17,42 --keep  # rerun two, keep their scans
    python benchmarks/bench_stress.py --renderer indie --scale small --discs 20
                                       # discs of the independent renderer (tests/indie_scanner.py)
    python benchmarks/bench_stress.py --summary stress.jsonl   # the summary of a past run
    python benchmarks/bench_stress.py --decodes dec/           # also keep each decode and its truth
    python benchmarks/bench_stress.py --rescore dec/ --out stress.jsonl   # score kept decodes again

A failure is a decode that raised, or no audio; audio that does not line up with the
truth (``Comparison.status`` not "ok") is counted apart. Results go to ``--out`` (JSON lines),
one line a disc, written as each finishes, so a long run can be summarised (or
resumed with ``--resume``) at any time. With ``--decodes`` each disc's decoded audio and
its truth are kept (an .npz a disc, about 1 MB a second of programme), so a change to the
scoring can be measured on a long run without rendering and decoding it again.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))     # the indie renderer

from groovescan import decode, metrics, synth  # noqa: E402
from groovescan.stress import SCALES, draw_disc, music  # noqa: E402

SR = 44100


def visible_velocity(truth):
    """The groove velocity, silent where the groove cannot be seen (off the image, off
    the film, in the hole): the decoder is right to mute those stretches, and is scored
    on what the scan shows."""
    velocity = np.array(truth.velocity, dtype=np.float64)
    for start, stop in truth.gaps:
        velocity[int(start * SR):int(np.ceil(stop * SR))] = 0.0
    return velocity


def render_own(seed, scale, scratch, keep=False):
    """A disc of :func:`groovescan.stress.draw_disc`, rendered by groovescan's renderer."""
    disc = draw_disc(seed, scale=scale)
    suffix = ".jpg" if disc.options.get("jpeg_quality") else ".tif"
    path = Path(scratch) / f"stress_{scale}_{seed:04d}{suffix}"
    truth = synth.render_scan_to_file(path, music(disc.duration_s, sr=SR, seed=seed), sr=SR, seed=seed,
                                      overwrite=True, **disc.options)
    return dict(path=path, rpm=disc.rpm, reference=visible_velocity(truth), max_delay_s=2.0,
                kind=disc.kind, habits=list(disc.habits), describe=disc.describe(), dpi=disc.options["dpi"],
                duration_s=disc.duration_s, image_shape=list(truth.image_shape), centre_px=truth.centre_px,
                pitch_mm=truth.music_pitch_mm(), polarity=truth.polarity, direction=truth.direction,
                truth_turns=truth.n_turns)


def render_indie(seed, scale, scratch, keep=False):
    """A disc of ``tests/indie_scanner.py``: an independent renderer with its own models
    of the groove, the light and the scanner (JPEG, PNG or TIFF files)."""
    import indie_scanner as indie
    spec = indie.random_disc(seed, scale=scale)
    render = spec["render"]
    suffix = ".jpg" if render.get("jpeg_quality") else (".png" if seed % 3 == 1 else ".tif")
    path = Path(scratch) / f"indie_{scale}_{seed:04d}{suffix}"
    indie.main(["--seed", str(seed), "--scale", scale, "-o", str(path), "--quiet", "--no-check"])
    truth = indie.load_truth(path.with_suffix(".truth.npz"))
    if not keep:
        path.with_suffix(".truth.npz").unlink()
    habits = sorted(k for k, v in truth["habits"].items() if k in INDIE_HABITS and v)
    describe = (f"{spec['kind']} {2 * truth['disc']['radius_mm']:.0f} mm, {truth['duration_s']:.0f} s at "
                f"{truth['rpm']:.2f} rpm, r {truth['r_start_mm']:.1f}->{truth['r_end_mm']:.1f} mm, pitch "
                f"{truth['pitch_mm'] * 1000:.0f} um, {truth['mode'][:5]}, {render['dpi']:.0f} dpi {suffix[1:]}; "
                + ", ".join(habits))
    return dict(path=path, rpm=truth["rpm"], reference=np.asarray(truth["velocity"], np.float64),
                max_delay_s=truth["lead_in_s"] + 2.0, kind=spec["kind"], habits=habits, describe=describe,
                dpi=render["dpi"], duration_s=truth["duration_s"], image_shape=list(truth["shape"]),
                centre_px=truth["centre_px"], pitch_mm=truth["pitch_mm"], polarity=truth["polarity"],
                direction=truth["direction"], truth_turns=np.nan)


#: the indie renderer's habits reported by name (numbers, or flags, that are off at 0)
INDIE_HABITS = ("col_gain_rms", "row_gain_rms", "col_offset_rms", "lamp_drift", "seam_gain", "gamma",
                "unsharp", "jpeg_quality", "glass_dust", "newton_rings", "xy_scale_error", "mirrored")
RENDERERS = {"groovescan": render_own, "indie": render_indie}


def score(out, audio, reference, rpm, max_delay_s):
    """Fill ``out`` with how ``audio`` lines up with the truth ``reference``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the status says how well it aligned
        c = metrics.compare(audio, reference, sr=SR, rpm=rpm, max_delay_s=max_delay_s)
    out.update(snr_db=c.snr_db, segmental_snr_db=c.segmental_snr_db, skips=int(c.n_skips),
               speed_error=c.speed_error, wow_percent=c.wow_percent, status=c.status,
               locked=float(np.isfinite(c.lag_track.lag_s).sum() / max(c.lag_track.lag_s.size, 1)))
    return out


def run_disc(seed, scale, scratch, keep, renderer="groovescan", decodes=None):
    """Render, decode and score one disc; a dict of what happened (never raises)."""
    out = dict(seed=seed, renderer=renderer)
    t0 = time.perf_counter()
    case = None
    try:
        case = RENDERERS[renderer](seed, scale, scratch, keep)
        out.update({k: case[k] for k in ("kind", "habits", "describe", "duration_s", "dpi", "image_shape")})
        out["render_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = decode(str(case["path"]), rpm=case["rpm"], sr=SR)
        out["decode_s"] = time.perf_counter() - t1
        g = result.geometry
        if decodes is not None:
            np.savez(Path(decodes) / f"{renderer}_{scale}_{seed:04d}.npz", audio=result.audio.astype(np.float32),
                     reference=case["reference"].astype(np.float32), rpm=case["rpm"],
                     max_delay_s=case["max_delay_s"])
        score(out, result.audio, case["reference"], case["rpm"], case["max_delay_s"])
        centre_error = (np.array(g.centre_px) - np.array(case["centre_px"])) * np.array(g.px_mm)
        out.update(
            ok=True, followed=result.track.followed_fraction, n_turns=result.track.n_turns,
            truth_turns=case["truth_turns"], centre_error_mm=float(np.hypot(*centre_error)),
            pitch_error=g.pitch_mm / case["pitch_mm"] - 1, polarity_ok=case["polarity"] in (g.polarity, "weak"),
            direction_ok=g.direction == case["direction"], gaps=len(result.report.gaps),
            clicks=result.report.n_clicks)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures and goes on
        out.setdefault("describe", f"{renderer} disc {seed}")
        out.setdefault("habits", [])
        out.setdefault("kind", "?")
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}",
                   where=traceback.format_exc(limit=-3).strip().splitlines()[-3:])
    finally:
        if case is not None and not keep:
            case["path"].unlink(missing_ok=True)
    out["total_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def line(r):
    if not r["ok"]:
        return f"disc {r['seed']:4d} FAILED  {r['describe']}\n           {r['error']}"
    astray = ""
    if r.get("status", "ok") != "ok":
        locked = f": lined up in {r['locked'] * 100:.0f} % of the windows" if "locked" in r else ""
        astray = f" ({r['status']}{locked})"
    return (f"disc {r['seed']:4d} {r['snr_db']:6.1f} dB{astray}  skips {r['skips']}  "
            f"followed {r['followed'] * 100:5.1f} %  "
            f"centre {r['centre_error_mm'] * 1000:6.1f} um  pitch {r['pitch_error'] * 100:+.2f} %  "
            f"{r['render_s']:.0f}+{r['decode_s']:.0f} s  {r['describe']}")


def summary(results):
    done = [r for r in results if r["ok"]]
    failed = [r for r in results if not r["ok"]]
    astray = [r for r in done if r.get("status", "ok") != "ok"]
    print(f"\n{len(results)} discs: {len(failed)} failed ({100 * len(failed) / max(len(results), 1):.1f} %), "
          f"{len(astray)} decoded audio that does not line up with the truth "
          f"(less than 80 % of the music matched: {', '.join(str(r['seed']) for r in astray) or 'none'}), "
          f"{sum(r['skips'] for r in done)} skipped turns on {sum(r['skips'] > 0 for r in done)} discs, "
          f"{sum(not (r['polarity_ok'] and r['direction_ok']) for r in done)} with polarity or direction wrong")
    if not done:
        return
    snr = np.array([r["snr_db"] for r in done])
    print("SNR dB (100 Hz - 5 kHz): " + ", ".join(f"p{q} {np.percentile(snr, q):.1f}" for q in (5, 25, 50, 75, 95))
          + f"; mean {snr.mean():.1f}, worst {snr.min():.1f} (disc {done[int(np.argmin(snr))]['seed']})")
    followed = np.array([r["followed"] for r in done])
    centre = np.array([r["centre_error_mm"] for r in done]) * 1000
    pitch = np.abs([r["pitch_error"] for r in done]) * 100
    print(f"followed: median {np.median(followed) * 100:.1f} %, worst {followed.min() * 100:.1f} %; "
          f"centre error: median {np.median(centre):.1f} um, worst {centre.max():.1f} um; "
          f"pitch error: median {np.median(pitch):.2f} %, worst {pitch.max():.2f} %")
    print("by kind:   " + "; ".join(
        f"{k} {len(v)}: median {np.median(v):.1f} dB" for k in ("bone", "shellac", "vinyl")
        if (v := [r['snr_db'] for r in done if r['kind'] == k])))
    habits = sorted({h.split(' q')[0] for r in results for h in r["habits"]})
    print("by habit (median SNR of the discs with it / without it, failures with it):")
    for h in habits:
        has = [r for r in results if any(x.split(' q')[0] == h for x in r["habits"])]
        with_ = [r["snr_db"] for r in has if r["ok"]]
        without = [r["snr_db"] for r in done if r not in has]
        print(f"  {h:22s} {len(has):4d} discs  {np.median(with_) if with_ else np.nan:6.1f} / "
              f"{np.median(without) if without else np.nan:6.1f} dB  failed {sum(not r['ok'] for r in has)}")
    times = np.array([r["total_s"] for r in results])
    print(f"time per disc: median {np.median(times):.0f} s, max {times.max():.0f} s; "
          f"peak RSS of a worker {max(r['peak_rss_mb'] for r in results):.0f} MB")
    for r in failed:
        print(f"  failed: disc {r['seed']}: {r['error']}")


def rescore(out_path, decodes, scale, renderer):
    """Score the decodes kept in ``decodes`` again and rewrite their lines of ``out_path``."""
    results = [json.loads(x) for x in open(out_path)]
    n = 0
    for r in results:
        kept = Path(decodes) / f"{renderer}_{scale}_{r['seed']:04d}.npz"
        if r["ok"] and r["renderer"] == renderer and kept.exists():
            with np.load(kept) as d:
                score(r, d["audio"], d["reference"], float(d["rpm"]), float(d["max_delay_s"]))
            n += 1
            print(line(r), flush=True)
    Path(out_path).write_text("".join(json.dumps(r) + "\n" for r in results))
    print(f"rescored {n} of {len(results)} discs in {out_path}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--discs", type=int, default=200, help="number of discs (seeds first .. first+discs-1)")
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--only", help="comma-separated seeds to run instead")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--renderer", choices=sorted(RENDERERS), default="groovescan",
                        help="groovescan's own renderer, or the independent one in tests/indie_scanner.py")
    parser.add_argument("--jobs", type=int, default=2, help="discs at a time (processes)")
    parser.add_argument("--out", default="stress.jsonl", help="results, one JSON line a disc")
    parser.add_argument("--resume", action="store_true", help="skip seeds already in --out")
    parser.add_argument("--scratch", default=None, help="folder for the rendered scans (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the rendered scans")
    parser.add_argument("--summary", metavar="JSONL", help="only print the summary of a past run")
    parser.add_argument("--decodes", metavar="DIR", help="keep each disc's decode and truth here (.npz)")
    parser.add_argument("--rescore", metavar="DIR", help="only score the decodes kept in DIR again (rewrites --out)")
    args = parser.parse_args(argv)
    if args.rescore:
        summary(sorted(rescore(args.out, args.rescore, args.scale, args.renderer), key=lambda r: r["seed"]))
        return 0
    if args.decodes:
        os.makedirs(args.decodes, exist_ok=True)
    if args.summary:
        summary([json.loads(x) for x in open(args.summary)])
        return 0
    seeds = [int(s) for s in args.only.split(",")] if args.only else list(range(args.first, args.first + args.discs))
    previous = []
    if args.resume and os.path.exists(args.out):
        previous = [json.loads(x) for x in open(args.out)]
        seen = {r["seed"] for r in previous}
        seeds = [s for s in seeds if s not in seen]
    scratch = args.scratch or tempfile.mkdtemp(prefix="groovescan_stress_")
    results = list(previous)
    with open(args.out, "a" if args.resume else "w") as log, ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_disc, s, args.scale, scratch, args.keep, args.renderer, args.decodes)
                   for s in seeds]
        for future in as_completed(futures):
            r = future.result()
            results.append(r)
            log.write(json.dumps(r) + "\n")
            log.flush()
            print(line(r), flush=True)
    summary(sorted(results, key=lambda r: r["seed"]))
    return 0 if all(r["ok"] and r["skips"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
