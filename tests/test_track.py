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


@pytest.mark.parametrize("music_turns, pitch_mm", [(2, 0.2), (5, 0.1), (40, 0.28)])
def test_the_music_pitch_outvotes_a_longer_lead_in_and_run_out(music_turns, pitch_mm):
    """A short side's lead-in (1.5 turns narrowing from 1.5 mm) and run-out (a turn at
    a growing spacing) may hold more samples than its music: the music's spacing, within
    a lathe's drift, is still the one named."""
    from groovescan.geometry import music_spacing

    rng = np.random.default_rng(music_turns)
    per_turn = 500
    music = pitch_mm * (1 + 0.01 * rng.standard_normal(music_turns * per_turn))
    lead_in = np.geomspace(1.5, pitch_mm * 1.1, int(1.5 * per_turn))
    run_out = np.linspace(pitch_mm * 1.2, 1.5, 2 * per_turn)
    spacing = rng.permutation(np.concatenate([lead_in, music, run_out, [np.nan, -0.1, 0.0]]))
    assert music_spacing(spacing) == pytest.approx(pitch_mm, rel=0.01)
    assert np.isnan(music_spacing([np.nan, 0.0]))
