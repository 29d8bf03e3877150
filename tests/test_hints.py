"""Geometry hints (``centre_px``, ``radii_mm``, ``pitch_mm``) through ``decode()``.

Bad hints are refused before the scan is read; good ones reach ``find_geometry`` and
the report. The end-to-end tests render a small disc (70 mm, groove from r = 30 mm,
2400 dpi, 3 s of music-like noise: ~3 s to render, ~3 s a decode) and decode it with
hints near the truth.
"""
import dataclasses
import warnings

import numpy as np
import pytest

import groovescan.io
import groovescan.pipeline
from groovescan import ParameterError, decode, synth
from roundtrip import SR, music_like

DPI = 2400


@pytest.fixture(scope="module")
def disc():
    audio = music_like(3.0, seed=5)
    rendered = synth.render_scan(audio, sr=SR, seed=4, dpi=DPI, disc_diameter_mm=70.0,
                                 r_start_mm=30.0)
    return rendered.image, rendered.truth


def _decode(image, **hints):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return decode(image, dpi=DPI, sr=SR, **hints)


def _off_centre(truth, *, row_mm, col_mm):
    """The true centre moved by (row_mm, col_mm), in pixels."""
    return (truth.centre_px[0] + row_mm / truth.px_mm[0], truth.centre_px[1] + col_mm / truth.px_mm[1])


def _centre_error_mm(geometry, truth):
    return float(np.hypot((geometry.centre_px[0] - truth.centre_px[0]) * truth.px_mm[0],
                          (geometry.centre_px[1] - truth.centre_px[1]) * truth.px_mm[1]))


@pytest.mark.parametrize("hints, words", [
    (dict(centre_px=(100,)), "centre"),
    (dict(centre_px=(100, float("nan"))), "centre"),
    (dict(centre_px="middle"), "centre"),
    (dict(radii_mm=(85, 40)), "inner first"),
    (dict(radii_mm=(40, 85, 90)), "radii"),
    (dict(radii_mm=(-5, 40)), "radii"),
    (dict(pitch_mm=5.0), "pitch"),
    (dict(pitch_mm="0.2"), "pitch"),
    (dict(pitch_mm=0.0), "pitch"),
])
def test_bad_hints_are_refused_before_the_scan_is_read(monkeypatch, hints, words):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the scan was read before the hints were checked")

    monkeypatch.setattr(groovescan.io, "load_scan", must_not_run)
    monkeypatch.setattr(groovescan.pipeline, "find_geometry", must_not_run)
    with pytest.raises(ParameterError, match=words):
        decode("scan.tif", **hints)          # the file need not exist: never opened
    with pytest.raises(ParameterError, match=words):
        decode(np.zeros((64, 64), np.uint8), dpi=DPI, **hints)


def test_a_centre_far_outside_the_image_is_refused_before_the_geometry_search(monkeypatch):
    # the image's size is needed for this check, so it is made once the scan is known,
    # by find_geometry before any of its work
    monkeypatch.setattr(groovescan.pipeline, "track_groove", None)   # never reached
    image = np.random.default_rng(0).integers(0, 255, (300, 400), dtype=np.uint8)
    with pytest.raises(ParameterError, match="outside the 300 x 400 px image"):
        decode(image, dpi=DPI, centre_px=(1e6, 1e6))


def test_hints_reach_find_geometry_as_checked_floats(monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def spy(scan, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(groovescan.pipeline, "find_geometry", spy)
    image = np.random.default_rng(0).integers(0, 255, (300, 400), dtype=np.uint8)
    with pytest.raises(Stop):
        decode(image, dpi=DPI, centre_px=[150, 200], radii_mm=(1, 2), pitch_mm=np.float32(0.25))
    assert seen == dict(centre_px=(150.0, 200.0), radii_mm=(1.0, 2.0), pitch_mm=0.25)
    seen.clear()
    with pytest.raises(Stop):
        decode(image, dpi=DPI)
    assert seen == dict(centre_px=None, radii_mm=None, pitch_mm=None)


def test_centre_and_pitch_hints_give_the_true_geometry(disc):
    image, truth = disc
    centre = _off_centre(truth, row_mm=0.18, col_mm=0.24)      # 0.3 mm from the truth
    result = _decode(image, centre_px=centre, pitch_mm=truth.pitch_mm)
    g = result.geometry
    # unhinted decodes of such discs find the centre to ~1 um and the pitch to ~0.1 %
    assert _centre_error_mm(g, truth) < 0.01
    assert g.pitch_mm == pytest.approx(truth.pitch_mm, rel=0.01)
    assert g.direction == truth.direction
    assert result.report.hints == dict(centre_px=centre, pitch_mm=truth.pitch_mm)
    assert result.track.followed_fraction > 0.97


def test_all_three_hints_give_the_true_geometry_and_are_reported(disc):
    image, truth = disc
    centre = _off_centre(truth, row_mm=0.18, col_mm=0.24)      # 0.3 mm from the truth
    radii = (truth.r_end_mm - 0.5, truth.r_start_mm + 0.5)     # the grooves, 0.5 mm to spare
    result = _decode(image, centre_px=centre, radii_mm=radii, pitch_mm=truth.pitch_mm)

    report = result.report
    assert report.hints == dict(centre_px=centre, radii_mm=radii, pitch_mm=truth.pitch_mm)
    line = next(line for line in report.summary().splitlines() if line.startswith("hints"))
    assert line == (f"hints           centre given (row {centre[0]:g}, col {centre[1]:g}), "
                    f"radii {radii[0]:g}-{radii[1]:g} mm, pitch 0.22 mm")
    # no hints, no line
    unhinted = dataclasses.replace(report, hints={})
    assert not any(line.startswith("hints") for line in unhinted.summary().splitlines())

    g = result.geometry
    assert (g.r_inner_mm, g.r_outer_mm) == pytest.approx(radii)  # taken as given
    assert result.track.followed_fraction > 0.97
    assert _centre_error_mm(g, truth) < 0.01
    assert g.pitch_mm == pytest.approx(truth.pitch_mm, rel=0.01)


# --- hints that cannot be right for this scan: a clear error, not a decode of noise --------

@pytest.mark.parametrize("radii", [
    "beyond",          # on the film, past the grooves
    "diameters",       # the grooves' diameters given for radii: off the scan
    "near the hole",   # a ring narrower than the registration's reach (was an IndexError)
])
def test_a_ring_hint_without_grooves_is_refused_naming_the_ring_seen(disc, radii):
    image, truth = disc
    hint = {"beyond": (truth.r_start_mm + 2.0, truth.r_start_mm + 4.5),
            "diameters": (2 * truth.r_end_mm, 2 * truth.r_start_mm),
            "near the hole": (2.0, 3.0)}[radii]
    with pytest.raises(groovescan.NoGrooveError) as caught:
        _decode(image, radii_mm=hint)
    message = str(caught.value)
    assert f"no grooves between r = {hint[0]:g} and {hint[1]:g} mm" in message
    seen = [float(x) for x in message.split("the grooves seen lie between r = ")[1].split(" mm")[0].split(" and ")]
    assert seen[0] <= truth.r_end_mm and seen[1] >= truth.r_start_mm     # where the grooves really are
    assert seen[1] - seen[0] < 2 * (truth.r_start_mm - truth.r_end_mm) + 4
    assert "not diameters" in message
    evidence = caught.value.evidence                # for the picture of what the geometry saw
    assert evidence.refused_radii_mm == pytest.approx(hint)
    assert (evidence.r_inner_mm, evidence.r_outer_mm) == pytest.approx(seen, abs=0.01)


def test_the_picture_of_a_refused_ring_hint_shows_it_beside_the_ring_seen(disc):
    pytest.importorskip("matplotlib")
    from groovescan import plot

    image, truth = disc
    hint = (truth.r_start_mm + 2.0, truth.r_start_mm + 4.5)
    with pytest.raises(groovescan.NoGrooveError) as caught:
        _decode(image, radii_mm=hint)
    ax = plot.geometry_figure(image, caught.value).axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "grooved ring" in labels and "given --radii (refused)" in labels
    refused = next(line for line in ax.get_lines() if line.get_label() == "given --radii (refused)")
    cy, cx = caught.value.evidence.centre_px
    r_px = np.hypot(refused.get_xdata() - cx, refused.get_ydata() - cy)
    assert r_px == pytest.approx(hint[0] / truth.px_mm[0], rel=0.01)     # the inner circle, in pixels
    # the circles do not widen the picture past the scan
    assert max(ax.get_xlim()) <= image.shape[1] + 1 and max(ax.get_ylim()) <= image.shape[0] + 1


def test_a_ring_hint_over_part_of_the_grooves_is_taken(disc):
    image, truth = disc
    hint = (truth.r_end_mm - 3.0, 0.5 * (truth.r_end_mm + truth.r_start_mm))
    result = _decode(image, radii_mm=hint)
    assert (result.geometry.r_inner_mm, result.geometry.r_outer_mm) == pytest.approx(hint)


def test_a_centre_hint_away_from_the_grooves_is_refused_naming_the_centre_seen(disc):
    image, truth = disc
    wrong = _off_centre(truth, row_mm=-20.0, col_mm=12.0)      # on the image, 23 mm off
    with pytest.raises(groovescan.NoGrooveError, match="around the given centre") as caught:
        _decode(image, centre_px=wrong)
    text = str(caught.value).split("the grooves seen face row ")[1]
    row, col = float(text.split(",")[0]), float(text.split("col ")[1].split(".")[0])
    assert abs(row - truth.centre_px[0]) * truth.px_mm[0] < 0.5
    assert abs(col - truth.centre_px[1]) * truth.px_mm[1] < 0.5
    assert "Check --centre" in str(caught.value)
