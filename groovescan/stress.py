"""Random discs drawn over every physical range: the decoder's stress test.

:func:`draw_disc` turns a seed into the render options of one disc: a bone record, a
shellac 78 or a vinyl side, of any size, with a programme of 5 s to 5 min anywhere on
it, its own pitch, groove width, polarity, mirroring and film density, scanned at
1200-4800 dpi by a flatbed with a random selection of real scanners' habits (the whole
bed in the image, streaks, lamp drift, chip seams, gamma-encoded 8 bit with clipped
highlights, sharpening, JPEG, dust on the glass, Newton rings, focus varying over curled
film). ``scale="small"`` and ``"tiny"`` draw the same variety on small, fast discs.

``benchmarks/bench_stress.py`` renders, decodes and scores hundreds of them; the tests
decode a small subset. Every draw depends only on its seed.

    >>> from groovescan.stress import draw_disc
    >>> disc = draw_disc(7, scale="small")
    >>> disc.seed, sorted(disc.options)[:3]
    (7, ['bed_mm', 'bits', 'disc_at_mm'])
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal

__all__ = ["SCALES", "StressDisc", "draw_disc", "music"]

#: A4 and US Letter scanner beds, (height, width) mm
BEDS_MM = ((297.0, 210.0), (279.4, 215.9))


@dataclass(frozen=True)
class _Scale:
    """The sizes one scale draws from; grooves, scanners and habits are the same."""

    disc_mm: tuple[float, float] | None       # None: the kind's real sizes
    r_min_mm: float | None                    # None: 25 mm, or clear of the label
    duration_s: tuple[float, float]
    dpi: tuple[float, float]                  # vinyl from 2400 whatever the scale
    bed_mm: tuple[float, float] | None        # None: A4 or US Letter
    edge_mm: tuple[float, float] = (2.0, 6.0)  # blank film between the lead-in and the edge


SCALES = {
    "full": _Scale(None, None, (5.0, 300.0), (1200.0, 4800.0), None),
    "small": _Scale((50.0, 80.0), 12.0, (3.0, 12.0), (1200.0, 2400.0), (90.0, 130.0)),
    # for the default tests: a few seconds to render and decode each
    "tiny": _Scale((44.0, 54.0), 9.0, (4.0, 7.0), (1600.0, 2000.0), (60.0, 80.0), (1.0, 3.0)),
}


@dataclass(frozen=True)
class StressDisc:
    """One randomly drawn disc and how it was scanned.

    Attributes
    ----------
    seed : int
    kind : {"bone", "shellac", "vinyl"}
    duration_s : float
        Length of the programme (audio) cut into the groove.
    rpm : float
        Cutting speed, which the decode is told (a home lathe's error included).
    options : dict
        Keyword options of :func:`groovescan.synth.render_scan` (``sr`` and ``seed`` aside).
    habits : tuple of str
        The scanner habits switched on, for the report.
    """

    seed: int
    kind: str
    duration_s: float
    rpm: float
    options: dict = field(repr=False)
    habits: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: kind, size, programme, where, pitch, scan and habits."""
        o = self.options
        r_end = o["r_start_mm"] - self.duration_s * self.rpm / 60 * o["pitch_mm"]
        return (f"{self.kind} {o['disc_diameter_mm']:.0f} mm, {self.duration_s:.0f} s at {self.rpm:.2f} rpm, "
                f"r {o['r_start_mm']:.1f}->{r_end:.1f} mm, pitch {o['pitch_mm'] * 1000:.0f} um, "
                f"{o['mode'][:5]}{' mirrored' if o['mirrored'] else ''}, {o['dpi']:.0f} dpi "
                f"{o['bits']}-bit; " + (", ".join(self.habits) or "clean scanner"))


def music(duration_s, *, sr, seed):
    """Band-limited noise (200 Hz - 4 kHz), broadband like music, its answer known exactly."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(2, [200, 4000], "bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(int(duration_s * sr))).astype(np.float32)


def _log_uniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _record(rng, kind, scale):
    """Disc, groove and medium options of one kind of record."""
    if kind == "bone":
        # X-ray film, cut round by hand (7-9 in), home-lathe grooves, mostly transmission
        o = dict(disc_diameter_mm=rng.uniform(150, 235), pitch_mm=rng.uniform(0.19, 0.26),
                 mode="transmission" if rng.random() < 0.75 else "reflective",
                 film_anatomy=str(rng.choice(["random", "ribs", "skull", "none"])),
                 od_range=(rng.uniform(0.15, 0.5), rng.uniform(1.0, 2.6)),
                 pitch_variation=rng.uniform(0.0, 0.03),
                 outline_irregularity_mm=rng.uniform(0.2, 1.5), outline_offset_mm=rng.uniform(0, 3),
                 hole_offset_mm=rng.uniform(0, 4), hole_radius_mm=rng.uniform(2.5, 4.5),
                 recording_curve=str(rng.choice(["blumlein", "flat", "500flat"])))
        o["groove_width_mm"] = min(rng.uniform(0.09, 0.15), 0.75 * o["pitch_mm"])
        rpm = float(rng.choice([78.0, 78.0, 78.0, 77.92, 78.26, 100 / 3, 45.0]))
        if rng.random() < 0.2:                          # a home lathe, a few % off
            rpm *= rng.uniform(0.96, 1.04)
        label = None
    elif kind == "shellac":
        o = dict(disc_diameter_mm=float(rng.choice([254.0, 305.0])), pitch_mm=rng.uniform(0.25, 0.32),
                 mode="reflective", film_anatomy="none", recording_curve="emi78",
                 outline_irregularity_mm=0.0, outline_offset_mm=rng.uniform(0, 0.3),
                 hole_offset_mm=rng.uniform(0, 0.4), hole_radius_mm=3.6,
                 wall_asymmetry=rng.uniform(0, 0.4))
        o["groove_width_mm"] = min(rng.uniform(0.12, 0.17), 0.7 * o["pitch_mm"])
        rpm = float(rng.choice([78.0, 77.92, 78.26]))
        label = rng.uniform(40, 50)
    else:
        lp = rng.random() < 0.6
        o = dict(disc_diameter_mm=302.0 if lp else 175.0, pitch_mm=rng.uniform(0.07, 0.125),
                 mode="reflective", film_anatomy="none", recording_curve="riaa",
                 outline_irregularity_mm=0.0, outline_offset_mm=rng.uniform(0, 0.2),
                 hole_offset_mm=rng.uniform(0, 0.2), hole_radius_mm=3.62 if lp else 19.05,
                 groove_bottom_mm=0.008, wall_asymmetry=rng.uniform(0, 0.4))
        o["groove_width_mm"] = min(rng.uniform(0.04, 0.06), 0.7 * o["pitch_mm"])
        rpm = 100 / 3 if lp else 45.0
        label = 50.0 if lp else 45.0
    if scale.disc_mm is not None:                       # same grooves on a small, fast disc
        o["disc_diameter_mm"] = rng.uniform(*scale.disc_mm)
        o["hole_radius_mm"] = min(o["hole_radius_mm"], 3.0)
        label = None
    if o["mode"] == "reflective" and kind == "bone":
        o["film_anatomy"] = "none"
    o["groove_bottom_mm"] = min(o.get("groove_bottom_mm", rng.uniform(0.015, 0.04)), 0.5 * o["groove_width_mm"])
    o["label_radius_mm"] = label
    return o, rpm


def _programme(rng, o, rpm, scale):
    """Duration and where on the disc it is cut: anywhere between the label (or r = 25
    mm) and the edge, as long as it fits; lead-in, lead-out and locked groove."""
    r_edge = o["disc_diameter_mm"] / 2 - o["outline_offset_mm"] - 1.5 * o["outline_irregularity_mm"]
    r_min = scale.r_min_mm or max(25.0, (o["label_radius_mm"] or 0) + 3.0)
    lead_in_turns = rng.uniform(0.0, 1.5)
    lead_in_pitch = rng.uniform(max(0.3, 1.5 * o["pitch_mm"]), 1.5)
    r_max = r_edge - rng.uniform(*scale.edge_mm) - 0.5 * lead_in_turns * lead_in_pitch
    duration = _log_uniform(rng, *scale.duration_s)
    width = duration * rpm / 60 * o["pitch_mm"]
    room = max(r_max - r_min - 3.0, 0.5)                # the run-out needs some room too
    if width > room:                                    # a long programme on a small disc
        duration *= room / width
        width = room
    o["r_start_mm"] = float(rng.uniform(r_min + 3.0 + width, max(r_max, r_min + 3.0 + width)))
    o["lead_in_turns"], o["lead_in_pitch_mm"] = lead_in_turns, lead_in_pitch
    if rng.random() < 0.5:
        o["lead_out_turns"] = rng.uniform(0.5, 1.5)
        o["lead_out_pitch_mm"] = rng.uniform(max(0.6, 2 * o["pitch_mm"]), 1.5)
        o["locked_groove"] = bool(rng.random() < 0.5)
        # the run-out must stay on the disc (and off the label)
        room_out = o["r_start_mm"] - width - r_min
        o["lead_out_turns"] = float(min(o["lead_out_turns"], 0.8 * room_out / o["lead_out_pitch_mm"]))
        if o["lead_out_turns"] < 0.3:
            o["lead_out_turns"], o["locked_groove"] = 0.0, False
    return float(duration)


def _scanner(rng, o, kind, scale):
    """Resolution, optics and a random selection of flatbed habits; their names."""
    habits = []
    lo_dpi = 2400 if kind == "vinyl" else scale.dpi[0]   # a 50 um groove is 2 px at 1200 dpi
    hi_dpi = scale.dpi[1]
    o["dpi"] = float(round(_log_uniform(rng, lo_dpi, max(hi_dpi, lo_dpi)) / 100) * 100)
    o["psf_sigma_um"] = rng.uniform(4.0, 10.0)
    xy_error = rng.uniform(-0.015, 0.015)
    o["px_scale_error"] = (0.0, xy_error) if rng.random() < 0.5 else (xy_error, 0.0)
    o["mirrored"] = bool(rng.random() < 0.3)
    o["bits"] = 16
    radius = o["disc_diameter_mm"] / 2
    if rng.random() < 0.4:                           # the whole bed, the disc anywhere on it
        bed = BEDS_MM[rng.integers(2)] if scale.bed_mm is None else (rng.uniform(*scale.bed_mm),
                                                                     rng.uniform(*scale.bed_mm))
        if rng.random() < 0.15:                      # ... even partly off it
            at = (rng.uniform(0.6, 1.0) * radius, rng.uniform(0.6, 1.0) * radius)
        else:
            room = (max(bed[0] - 2 * radius, 0.0), max(bed[1] - 2 * radius, 0.0))
            at = (radius + rng.uniform(0, room[0]) if room[0] else bed[0] / 2,
                  radius + rng.uniform(0, room[1]) if room[1] else bed[1] / 2)
        o["bed_mm"], o["disc_at_mm"] = (float(bed[0]), float(bed[1])), (float(at[0]), float(at[1]))
        cut = any(a < radius or a > b - radius for a, b in zip(at, bed))
        habits.append("disc cut by the edge" if cut else "whole bed")
    else:
        o["margin_mm"] = rng.uniform(1.0, 20.0)
    if rng.random() < 0.6:
        o["streak_gain"] = (rng.uniform(0.0005, 0.005), rng.uniform(0.001, 0.02))
        o["streak_offset"] = (rng.uniform(0.0, 0.001), rng.uniform(0.0002, 0.003))
        habits.append("streaks")
    if rng.random() < 0.5:
        o["lamp_drift"] = rng.uniform(0.01, 0.08)
        habits.append("lamp drift")
    if rng.random() < 0.4:
        o["seam_gain"] = rng.uniform(0.005, 0.03)
        o["seam_shift_px"] = rng.uniform(0.0, 0.3)
        habits.append("chip seams")
    if rng.random() < 0.4:                           # what most scanner drivers deliver
        o["bits"], o["output_gamma"] = 8, rng.uniform(1.8, 2.4)
        o["exposure"] = rng.uniform(1.0, 1.3)
        habits.append("8-bit gamma")
        if rng.random() < 0.5:
            o["jpeg_quality"] = int(rng.integers(85, 96))
            habits.append(f"JPEG q{o['jpeg_quality']}")
    if rng.random() < 0.3:
        o["unsharp_amount"], o["unsharp_radius_px"] = rng.uniform(0.3, 1.2), rng.uniform(0.5, 2.5)
        habits.append("sharpened")
    if rng.random() < 0.4:
        o["glass_dust_per_cm2"] = rng.uniform(0.3, 4.0)
        habits.append("dust on the glass")
    if o["mode"] == "transmission" and rng.random() < 0.3:
        o["newton_rings"] = rng.uniform(0.02, 0.12)
        habits.append("Newton rings")
    if rng.random() < 0.3:
        o["focus_variation_um"] = rng.uniform(2.0, 15.0)
        habits.append("curled film" if kind == "bone" else "focus varies")
    if rng.random() < 0.3:                           # the disc itself: a little wear
        o["dust_per_cm2"], o["scratches"], o["hairs"] = rng.uniform(0, 2), int(rng.integers(0, 4)), int(rng.integers(0, 3))
        habits.append("worn disc")
    return tuple(habits)


def draw_disc(seed: int, *, scale: str = "full") -> StressDisc:
    """Draw one disc and its scan from ``seed``.

    Parameters
    ----------
    seed : int
    scale : {"full", "small", "tiny"}
        "full": real disc sizes, programmes of 5 s - 5 min, 1200-4800 dpi (vinyl from
        2400 dpi), whole A4/Letter beds. "small": the same grooves, scanners and habits
        on 50-80 mm discs with 3-12 s programmes at 1200-2400 dpi and small beds, for
        benchmarks that run in minutes. "tiny": 44-54 mm discs, 4-7 s, 1600-2000 dpi
        (vinyl 2400), for the default tests.

    Returns
    -------
    StressDisc
    """
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}; use one of {', '.join(SCALES)}")
    sizes = SCALES[scale]
    rng = np.random.default_rng([int(seed), 0x5eed])
    kind = str(rng.choice(["bone", "shellac", "vinyl"], p=[0.55, 0.25, 0.20]))
    options, rpm = _record(rng, kind, sizes)
    duration = _programme(rng, options, rpm, sizes)
    habits = _scanner(rng, options, kind, sizes)
    options["rpm"] = float(rpm)
    options["theta_start"] = float(rng.uniform(0, 2 * math.pi))
    clean: dict[str, Any] = {k: (float(v) if isinstance(v, (np.floating,)) else v) for k, v in options.items()}
    return StressDisc(int(seed), kind, duration, float(rpm), clean, habits)
