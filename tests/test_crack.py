"""The pieces of crack handling on synthetic data: the piece's map, its offset from groove
shifts known only modulo a pitch, and its turn from the break's two edges."""
import numpy as np
import pytest

from groovescan import Crack
from groovescan.crack import BreakEdges, fit_offset, motion_from_edges, turn_from_edges


def test_only_the_smaller_piece_is_moved():
    crack = Crack(normal_angle=0.3, distance_mm=5.0, offset_mm=(0.2, -0.1), rotation=0.002)
    theta = np.linspace(0, 2 * np.pi, 721)
    r = np.full(theta.size, 20.0)
    d_row, d_col = crack.shift_px(r, theta, (0.01, 0.02))
    moved = crack.on_piece(r, theta)
    assert 0 < moved.mean() < 0.5                       # the side beyond the line
    assert not np.any(d_row[~moved]) and not np.any(d_col[~moved])
    # shift plus the turn about the centre, in pixels (rows are y, cols are x)
    x, y = r * np.cos(theta), r * np.sin(theta)
    np.testing.assert_allclose(d_col[moved], ((0.2 - 0.002 * y) / 0.02)[moved], rtol=1e-5)
    np.testing.assert_allclose(d_row[moved], ((-0.1 + 0.002 * x) / 0.01)[moved], rtol=1e-5)


def test_recentred_line_is_the_same_line():
    crack = Crack(normal_angle=1.1, distance_mm=4.0)
    point = 4.0 * np.array([np.cos(1.1), np.sin(1.1)]) + 3.0 * np.array([-np.sin(1.1), np.cos(1.1)])
    shift = np.array([0.3, -0.2])
    moved_frame = crack.recentred(tuple(shift))
    r, theta = np.hypot(*(point - shift)), np.arctan2(*(point - shift)[::-1])
    assert moved_frame.along_normal(r, theta) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("offset, arc_deg, pitch", [
    ((0.31, -0.07), 150, 0.22), ((-0.16, 0.41), 100, 0.22), ((0.02, 0.05), 200, 0.1),
])
def test_offset_from_shifts_known_modulo_a_pitch(offset, arc_deg, pitch):
    rng = np.random.default_rng(1)
    residuals, thetas = [], []
    for start in (0.4, 0.5):                            # two bands, different arcs
        theta = start + np.radians(np.linspace(0, arc_deg, 300))
        true = offset[0] * np.cos(theta) + offset[1] * np.sin(theta) + rng.normal(0, 5e-4, theta.size)
        wrapped = (true + pitch / 2) % pitch - pitch / 2
        residuals.append(np.unwrap(wrapped, period=pitch))
        thetas.append(theta)
    for guess in (None, (offset[0] + 0.03, offset[1] - 0.03)):
        found, rms = fit_offset(residuals, thetas, pitch, guess)
        np.testing.assert_allclose(found, offset, atol=2e-3)
        assert rms < 1e-3


def _edges(crack, slide, push, turn, *, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    s = np.arange(-25, 25, 0.05)

    def ragged(at):
        return 0.04 * np.sin(0.7 * at + 1.0) + 0.02 * np.sin(2.3 * at) + 0.03 * np.sin(0.25 * at + 2.0)

    fixed = ragged(s) + rng.normal(0, noise, s.size)
    moved = ragged(s - slide) + push - turn * s + rng.normal(0, noise, s.size)
    fixed[(s > -3) & (s < -1)] = np.nan                 # the hole: no gap to see
    return BreakEdges(s, fixed, moved)


@pytest.mark.parametrize("turn, distance", [(0.004, 6.0), (-0.006, 1.5), (0.0005, 10.0)])
def test_turn_from_the_break_edges(turn, distance):
    crack = Crack(normal_angle=0.8, distance_mm=distance)
    n = np.array([np.cos(0.8), np.sin(0.8)])
    tangent = np.array([-n[1], n[0]])
    offset = np.array([0.12, -0.25])
    # what the edges show of that motion (see turn_from_edges)
    slide, push = tangent @ offset + turn * distance, n @ offset
    edges = _edges(crack, slide, push, turn, noise=0.003)
    assert turn_from_edges(edges, crack, tuple(offset)) == pytest.approx(turn, abs=1e-4)
    found_turn, found_offset = motion_from_edges(edges, crack)
    assert found_turn == pytest.approx(turn, abs=1e-3)
    np.testing.assert_allclose(found_offset, offset, atol=0.05)
