"""The tracker's rule for a spacing that grows: a hidden groove or a real change."""
import numpy as np
import pytest

from groovescan.track import _spacing_ramps

N = 4096
COLUMNS = np.arange(N)
PITCH = np.full(N, 12.0)          # px


def _wiggled(spacing, seed=0):
    # the audio moves neighbouring grooves apart and together, column by column
    return spacing + np.random.default_rng(seed).normal(0, 0.25 * 12, N)


@pytest.mark.parametrize("peak_px", [10.0, 30.0, 100.0])
def test_a_spacer_widening_smoothly_is_real(peak_px):
    widened = 12 + peak_px * np.sin(np.pi * COLUMNS / N) ** 2
    ramps = _spacing_ramps(_wiggled(widened), PITCH)
    # clear of the threshold, where the wiggle decides column by column
    assert ramps[widened > 1.8 * PITCH].all()


@pytest.mark.parametrize("hidden_turns, width", [(1, 40), (2, 300), (4, 1000)])
def test_a_jump_of_whole_pitches_is_a_hidden_groove(hidden_turns, width):
    spacing = np.full(N, 12.0)
    spacing[2000:2000 + width] = 12.0 * (1 + hidden_turns)
    spacing = _wiggled(spacing)
    assert not _spacing_ramps(spacing, PITCH)[2000:2000 + width].any()
