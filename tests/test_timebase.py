"""Angle to time: samples per turn, and the exact change of rate to the output."""
from fractions import Fraction

import numpy as np
import pytest

from groovescan.timebase import _is_smooth, groove_audio, samples_per_turn


@pytest.mark.parametrize("sr", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("rpm", [78.0, 77.92, 78.26, 45.0, 100 / 3, 16 + 2 / 3])
def test_samples_per_turn_keeps_the_band_and_a_fast_length(sr, rpm):
    n = samples_per_turn(sr=sr, rpm=rpm)
    exact = sr * 60 / rpm
    assert exact <= n <= 1.02 * exact          # never below the output rate, barely above
    assert _is_smooth(n, (2, 3, 5, 7))


@pytest.mark.parametrize("rpm", [78.0, 77.92, 45.0, 100 / 3])
@pytest.mark.parametrize("freq", [440.0, 5000.0])
def test_groove_audio_is_the_exact_velocity_at_the_output_rate(rpm, freq):
    sr = 44100
    n_per = samples_per_turn(sr=sr, rpm=rpm)
    fs = Fraction(n_per) * Fraction(rpm).limit_denominator(1000) / 60
    t = np.arange(int(20 * float(fs))) / float(fs)          # 20 s: a drift would show
    amplitude = 1e-6
    audio = groove_audio(amplitude * np.sin(2 * np.pi * freq * t), fs=fs, sr=sr, band=(30, 8000))
    assert audio.size == round(t.size * sr / float(fs))
    out_t = np.arange(audio.size) / sr
    expected = amplitude * 2 * np.pi * freq * np.cos(2 * np.pi * freq * out_t)
    middle = slice(audio.size // 10, -audio.size // 10)        # clear of the ends' tapers
    error = np.abs(audio[middle] - expected[middle]).max() / np.abs(expected).max()
    assert error < 1e-3
