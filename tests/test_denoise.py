"""Hiss suppression against the optical noise measured between the two walls.

Rendered from real music (the bundled Brahms excerpt): hiss between and above the notes
is what the suppression is for. On dense broadband noise used as "music" it costs
about 1 dB instead (README), which is why it is off by default.
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from groovescan import decode, metrics, synth
from groovescan.errors import ParameterError
from roundtrip import SR

BRAHMS = Path(__file__).resolve().parents[1] / "sample_scans" / "brahms_excerpt.flac"


@pytest.fixture(scope="module")
def rendered():
    audio, sr = sf.read(BRAHMS, dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(axis=1)
    if sr != SR:
        audio = signal.resample_poly(audio, SR, sr).astype(np.float32)
    audio = audio[:6 * SR] / np.abs(audio[:6 * SR]).max() * 0.5
    return synth.render_scan(audio, sr=SR, seed=3, dpi=2400, disc_diameter_mm=70.0, r_start_mm=30.0)


def _snr(rendered, strength):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = decode(rendered.image, dpi=2400, denoise=strength)
        return result, metrics.compare(result.audio, rendered.truth.velocity, sr=SR, rpm=78.0).snr_db


def test_denoise_raises_the_snr_of_music(rendered):
    _, plain = _snr(rendered, 0.0)
    result, cleaned = _snr(rendered, 1.0)
    assert cleaned > plain + 2.0, (plain, cleaned)
    assert result.report.denoise == 1.0 and "hiss" in result.report.summary()


@pytest.mark.parametrize("strength", [-1, 5, "strong"])
def test_denoise_strength_is_checked(strength):
    with pytest.raises(ParameterError, match="denoise"):
        decode(np.zeros((64, 64), np.uint16), dpi=2400, denoise=strength)
