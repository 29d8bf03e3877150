"""The stress benchmark's fast subset: random discs over every physical range, decoded.

Each disc comes from :func:`groovescan.stress.draw_disc` at the "tiny" scale: a bone
record, shellac 78 or vinyl side's grooves (pitch, width, polarity, mirroring, film
density, lead-in, run-out, locked groove) on a 44-54 mm disc, 4-7 s of music-like noise,
scanned at 1600-2400 dpi by a flatbed with a random selection of habits (the whole bed,
the disc cut by its edge, streaks, lamp drift, chip seams, 8-bit gamma, sharpening,
JPEG, dust on the glass, Newton's rings, curled film). ``benchmarks/bench_stress.py``
runs the same draws at full size, 200 of them.

What is asserted is that the decoder read *the* groove: the geometry it found, no turn
skipped, and audio that lines up with the truth (``Comparison.status == "ok"``: at least
80 % of the music's windows matched). The SNR itself is not asserted per disc: at these
radii (12-21 mm) and resolutions the groove moves past few pixels a second, and the
physics, not the decoder, sets it; ``tests/test_decode.py`` asserts SNR on discs of
known quality.
"""
import warnings

import numpy as np
import pytest

from groovescan import decode, metrics, synth
from groovescan.stress import draw_disc, music

SR = 44100
SEEDS = range(20)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_tiny_disc_is_read_right(seed):
    disc = draw_disc(seed, scale="tiny")
    rendered = synth.render_scan(music(disc.duration_s, sr=SR, seed=seed), sr=SR, seed=seed, **disc.options)
    truth = rendered.truth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = decode(rendered.image, dpi=disc.options["dpi"], rpm=disc.rpm, sr=SR)
    g = result.geometry
    about = disc.describe()
    assert g.polarity == truth.polarity, about
    assert g.direction == truth.direction, about
    # the centre to a small fraction of a pitch: the fine fit's phases are good to ~1 um
    # on these discs, and the pixels are 13-16 um
    centre_error_mm = np.hypot(*((np.array(g.centre_px) - truth.centre_px) * np.array(g.px_mm)))
    assert centre_error_mm < 0.03, about
    # the music's pitch (home-lathe discs drift a few percent off the nominal one): the
    # geometry's estimate to a few percent, the followed turns' spacing closer
    assert g.pitch_mm == pytest.approx(truth.music_pitch_mm(), rel=0.05), about
    assert result.report.pitch_mm == pytest.approx(truth.music_pitch_mm(), rel=0.02), about
    # silent where the groove cannot be seen (off the image or the film): the decoder
    # is right to mute it there
    reference = np.array(truth.velocity, dtype=np.float64)
    for start, stop in truth.gaps:
        reference[int(start * SR):int(np.ceil(stop * SR))] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison = metrics.compare(result.audio, reference, sr=SR, rpm=disc.rpm)
    assert comparison.n_skips == 0, (about, comparison.skips)
    assert comparison.status == "ok", (about, comparison.matched_fraction)
