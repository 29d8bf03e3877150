"""Regenerate the sample scans: ``python sample_scans/make_samples.py``.

Deterministic (fixed seeds). Reads the audio excerpts kept in this folder, so it needs
nothing outside the project. See PROVENANCE.md for sources and licences.
"""
from pathlib import Path

import numpy as np
import tifffile

from groovescan import read_audio, synth

HERE = Path(__file__).resolve().parent

SAMPLES = {
    # file: (audio excerpt, renderer options)
    "bone_brahms_1200dpi.tif": ("brahms_excerpt.flac", dict(
        preset="bone", dpi=1200, disc_diameter_mm=84.0, r_start_mm=36.0, hole_offset_mm=1.5, bits=8,
        seed=7)),
}


def main():
    for name, (audio_name, options) in SAMPLES.items():
        audio, sr = read_audio(HERE / audio_name)
        options = dict(options)
        seed = options.pop("seed")
        rendered = synth.render_scan(audio, sr=sr, seed=seed, **options)
        dpi = options["dpi"]
        tifffile.imwrite(HERE / name, rendered.image, compression="zlib",
                         resolution=(dpi, dpi), resolutionunit="INCH")
        print(f"{name}: {rendered.image.shape}, {rendered.truth.n_turns:.1f} turns")


if __name__ == "__main__":
    main()
