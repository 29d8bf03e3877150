"""Diagnostic figures on a small decoded scan (Agg backend), the noise floor's units, and
the ``inspect`` command.

The scan is small on purpose (70 mm disc, 4 s of music-like noise, 1200 dpi, decoded at
22.05 kHz: ~3 s): the figures are checked for what they draw, not for audio quality.
"""
import dataclasses
import subprocess
import sys
import textwrap
import tracemalloc
import types
import warnings

import numpy as np
import pytest

from groovescan import OutputError, ParameterError, decode, diagnostics, save_scan, synth
from groovescan.cli import main
from groovescan.errors import OptionalDependencyError
from roundtrip import SR, music_like

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from groovescan import plot
except ImportError:                 # the figures need the optional extra; the rest does not
    matplotlib = None

needs_mpl = pytest.mark.skipif(matplotlib is None, reason="matplotlib (groovescan[plot]) not installed")
DPI = 1200


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    audio = music_like(4.0, seed=5)
    rendered = synth.render_scan(audio, sr=SR, seed=4, dpi=DPI, disc_diameter_mm=70.0, r_start_mm=30.0)
    path = tmp_path_factory.mktemp("plot") / "disc.tif"
    save_scan(path, rendered.image, dpi=DPI)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = decode(path, sr=22050)
    return path, rendered.image, result


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if matplotlib is not None:
        plt.close("all")


# ----------------------------------------------------------------------------- every figure

PLOTS = {
    "scan": lambda path, image, result, ax: plot.plot_scan(path, result, ax=ax),
    "scan_only": lambda path, image, result, ax: plot.plot_scan(image, ax=ax),
    "confidence": lambda path, image, result, ax: plot.plot_confidence(result, ax=ax),
    "unwrapped": lambda path, image, result, ax: plot.plot_unwrapped(image, result, ax=ax),
    "walls": lambda path, image, result, ax: plot.plot_walls(result, start_s=1.0, duration_s=0.01, ax=ax),
    "spectrum": lambda path, image, result, ax: plot.plot_spectrum(result, ax=ax),
    "spectrogram": lambda path, image, result, ax: plot.plot_spectrogram(result.audio, sr=result.sr, ax=ax),
    "curves": lambda path, image, result, ax: plot.plot_curves(ax=ax),
    "geometry": lambda path, image, result, ax: plot.plot_geometry(image, result, ax=ax),
}


@needs_mpl
@pytest.mark.parametrize("name", sorted(PLOTS))
def test_each_plot_draws_into_the_given_axes_or_a_new_one(decoded, name):
    path, image, result = decoded
    fig, ax = plt.subplots()
    assert PLOTS[name](path, image, result, ax) is ax
    assert ax.has_data()
    own = PLOTS[name](path, image, result, None)
    assert isinstance(own, Axes) and own is not ax and own.has_data()


@needs_mpl
def test_scan_overlay_is_drawn_in_scan_pixels(decoded):
    path, image, result = decoded
    g = result.geometry
    ax = plot.plot_scan(path, result, max_px=500)
    shown = ax.images[0].get_array()
    assert max(shown.shape) <= 500
    # the image spans the whole scan in pixel coordinates (block edges at -0.5)
    left, right, bottom, top = ax.images[0].get_extent()
    assert left == -0.5 and top == -0.5
    assert image.shape[1] - 8 <= right + 0.5 <= image.shape[1]       # trailing partial block dropped
    lines = {line.get_label(): line for line in ax.get_lines()}
    centre = lines["spiral centre"]
    assert centre.get_xdata()[0] == pytest.approx(g.centre_px[1])
    assert centre.get_ydata()[0] == pytest.approx(g.centre_px[0])
    track = next(line for label, line in lines.items() if label.startswith("track"))
    cols, rows = np.asarray(track.get_xdata()), np.asarray(track.get_ydata())
    ok = np.isfinite(cols)
    radius, _ = g.to_polar(rows[ok], cols[ok])
    # every drawn track point lies in the grooved annulus (one pitch of slack at its edges)
    assert radius.min() > g.r_inner_mm - g.pitch_mm and radius.max() < g.r_outer_mm + g.pitch_mm


@needs_mpl
def test_scan_is_reduced_in_strips_never_loaded_whole_as_float():
    # a 12k x 12k scan (a 5-inch disc at 2400 dpi): 576 MB as float32; the figure may
    # hold a strip of ~4 Mpixel (16 MB as float32) and its block means, not the image
    image = np.zeros((12_000, 12_000), np.uint8)
    image[::7] = 200
    tracemalloc.start()
    try:
        ax = plot.plot_scan(image, max_px=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert max(ax.images[0].get_array().shape) <= 1000
    assert peak < 64e6, f"peak {peak / 1e6:.0f} MB; the float image would be {image.size * 4 / 1e6:.0f} MB"


@needs_mpl
def test_zoom_shows_a_window_around_the_spiral_centre(decoded):
    path, image, result = decoded
    ax = plot.plot_scan(path, result, zoom_mm=2.0)
    cy, cx = result.geometry.centre_px
    x0, x1 = ax.get_xlim()
    half_px = 2.0 / result.geometry.px_mm[1]
    assert x0 == pytest.approx(cx - half_px, abs=2) and x1 == pytest.approx(cx + half_px, abs=3)
    with pytest.raises(ParameterError, match="pixel size"):
        plot.plot_scan(image, zoom_mm=2.0)


@needs_mpl
def test_confidence_map_marks_lost_groove_clicks_and_gaps(decoded):
    _, _, result = decoded
    track = result.track
    lost = track.coasted.copy()
    lost[1, 100:300] = True
    spt = result.walls.samples_per_turn
    gap = np.zeros_like(result.gap_mask)
    gap[int(2.9 * spt):int(3.2 * spt)] = True              # crosses from turn 2 into turn 3
    clicks = np.zeros_like(result.click_mask)
    clicks[[spt // 2, spt // 2 + 1, 4 * spt + spt // 4]] = True   # two clicks (one is 2 samples)
    fake = dataclasses.replace(result, track=dataclasses.replace(track, coasted=lost),
                               gap_mask=gap, click_mask=clicks)
    ax = plot.plot_confidence(fake)
    assert len(ax.images) == 2                               # confidence, lost-groove overlay
    overlay = ax.images[1].get_array()
    assert overlay.mask.sum() == (~(lost & np.isfinite(track.radius_mm))).sum()
    marks = np.asarray(ax.collections[0].get_offsets()).tolist()
    assert len(marks) == 2
    assert marks[0] == pytest.approx([(spt // 2 + 0.5) / spt * 360, 0.5])
    assert marks[1] == pytest.approx([(spt // 4) / spt * 360, 4.5])
    bars = sorted((line.get_ydata()[0], *line.get_xdata()) for line in ax.get_lines())
    assert [b[0] for b in bars] == [2.5, 3.5]               # split at the turn boundary
    assert bars[0][1] == pytest.approx(0.9 * 360, abs=0.05) and bars[0][2] == pytest.approx(360)
    assert bars[1][1] == pytest.approx(0) and bars[1][2] == pytest.approx(0.2 * 360, abs=0.05)


@needs_mpl
def test_unwrapped_band_spans_the_turns_shown(decoded):
    path, _, result = decoded
    ax = plot.plot_unwrapped(path, result, turn=1, n_turns=2, angle_deg=(10, 50), n_angles=300)
    band = ax.images[0].get_array()
    assert band.shape[1] == 300
    lo, hi = ax.get_ylim()
    n_per = result.track.points_per_turn
    radii = result.track.radius_mm[1:3, int(10 / 360 * n_per):int(50 / 360 * n_per)]
    assert lo < np.nanmin(radii[1]) and hi > np.nanmax(radii[0])     # both turns inside
    with pytest.raises(ParameterError, match="turn"):
        plot.plot_unwrapped(path, result, turn=10_000)


@needs_mpl
def test_walls_are_drawn_in_micrometres(decoded):
    _, _, result = decoded
    ax = plot.plot_walls(result, start_s=1.0, duration_s=0.005)
    inner = next(line for line in ax.get_lines() if line.get_label() == "inner wall")
    i0 = int(round(1.0 * result.fs))
    expected = result.walls.left_mm[i0:i0 + inner.get_ydata().size] * 1000
    np.testing.assert_allclose(inner.get_ydata(), expected, rtol=1e-6)
    assert inner.get_xdata()[0] == pytest.approx(i0 / result.fs)


@needs_mpl
def test_spectrum_draws_audio_and_the_wall_noise_floor(decoded):
    _, _, result = decoded
    ax = plot.plot_spectrum(result)
    floor = next(line for line in ax.get_lines() if line.get_label().startswith("noise floor"))
    noise = diagnostics.wall_noise_psd(result)
    np.testing.assert_allclose(floor.get_ydata(), 10 * np.log10(noise.psd[1:] + 1e-30), rtol=1e-9)
    assert "(m/s)²/Hz" in ax.get_ylabel()


@needs_mpl
def test_spectrogram_takes_a_result_and_needs_a_rate_for_arrays(decoded):
    _, _, result = decoded
    ax = plot.plot_spectrogram(result, fmax=5000)
    assert ax.get_ylim() == (0, 5000)
    with pytest.raises(ParameterError, match="sr="):
        plot.plot_spectrogram(result.audio)


@needs_mpl
def test_curves_are_zero_db_at_1khz():
    from groovescan.eq import CURVES

    ax = plot.plot_curves()
    assert len(ax.get_lines()) == len(CURVES) + 1            # + the 1 kHz marker
    for line in ax.get_lines()[:-1]:
        assert np.interp(np.log(1000), np.log(line.get_xdata()), line.get_ydata()) == pytest.approx(0, abs=0.05)
    ax = plot.plot_curves(["riaa"], recording=True)
    riaa = ax.get_lines()[0]
    assert np.interp(np.log(20), np.log(riaa.get_xdata()), riaa.get_ydata()) == pytest.approx(-19.3, abs=0.5)


@needs_mpl
def test_inspect_figure_and_atomic_save(decoded, tmp_path):
    path, _, result = decoded
    fig = plot.inspect_figure(path, result)
    assert isinstance(fig, Figure) and len(fig.axes) >= 5
    out = tmp_path / "page.png"
    plot.save_figure(fig, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputError, match="exists"):
        plot.save_figure(fig, out)
    plot.save_figure(fig, out, overwrite=True)
    with pytest.raises(OutputError, match="use one of"):
        plot.save_figure(fig, tmp_path / "page.bmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.png"]      # no temporary left


# ----------------------------------------------------------------------------- units of the floor

def _fake_result(left_um, right_um, *, fs=44100.0, eq="flat"):
    n = left_um.size
    walls = types.SimpleNamespace(left_mm=left_um / 1000, right_mm=right_um / 1000)
    report = types.SimpleNamespace(rpm=78.0, eq=eq)
    return types.SimpleNamespace(walls=walls, click_mask=np.zeros(n, bool), gap_mask=np.zeros(n, bool),
                                 fs=fs, sr=int(fs), report=report)


def test_wall_noise_floor_is_velocity_psd_of_the_wall_mean():
    # independent white noise of sigma on each wall: their mean has variance sigma^2/2, a
    # one-sided displacement PSD of 2 * (sigma^2 / 2) / fs, and as velocity (2 pi f)^2 times it
    rng = np.random.default_rng(0)
    fs, sigma_m = 44100.0, 0.3e-6
    common = 5 * rng.standard_normal(int(10 * fs))           # the music: identical on both walls
    left = common + sigma_m * 1e6 * rng.standard_normal(common.size)
    right = common + sigma_m * 1e6 * rng.standard_normal(common.size)
    noise = diagnostics.wall_noise_psd(_fake_result(left, right, fs=fs))
    f = noise.freqs_hz
    band = (f > 200) & (f < 6000)                            # inside 30-8000 Hz, clear of its tapers
    expected = (2 * np.pi * f[band]) ** 2 * 2 * (sigma_m**2 / 2) / fs
    # ~215 Welch segments: each bin is within ~7 %, the median of ~560 bins within ~1 %
    assert np.median(noise.psd[band] / expected) == pytest.approx(1.0, rel=0.03)
    # repaired samples are left out and the rest scaled up: the floor stays put
    fake = _fake_result(left, right, fs=fs)
    fake.click_mask[::7] = True
    left_hit = left.copy()
    left_hit[::7] += 1000.0                                  # huge dust hits, all repaired
    fake.walls.left_mm = left_hit / 1000
    again = diagnostics.wall_noise_psd(fake)
    assert np.median(again.psd[band] / expected) == pytest.approx(1.0, rel=0.05)


def test_identical_walls_have_no_floor_and_curves_shape_it():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(200_000)
    assert diagnostics.wall_noise_psd(_fake_result(x, x)).psd.max() == 0.0
    y = x + 0.01 * rng.standard_normal(x.size)
    flat = diagnostics.wall_noise_psd(_fake_result(x, y))
    emi = diagnostics.wall_noise_psd(_fake_result(x, y, eq="emi78"))
    from groovescan.eq import playback_response

    k = np.argmin(np.abs(flat.freqs_hz - 100))
    assert emi.psd[k] / flat.psd[k] == pytest.approx(abs(playback_response("emi78", [flat.freqs_hz[k]])[0]) ** 2)


# ----------------------------------------------------------------------------- command line

@needs_mpl
def test_inspect_command_writes_a_png(decoded, tmp_path, capsys):
    path, _, _ = decoded
    out = tmp_path / "report.png"
    assert main(["inspect", str(path), "-o", str(out), "-q"]) == 0
    capsys.readouterr()                                      # (warnings of a partial decode)
    from PIL import Image

    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size[0] >= 1200
    assert main(["inspect", str(path), "-o", str(out), "-q"]) == 2          # exists, no --force
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]


@needs_mpl
def test_inspect_writes_what_the_geometry_saw_when_decoding_fails(decoded, tmp_path, capsys):
    """A wrong pitch hint (0.5 mm on a 0.22 mm disc) makes the geometry fail after it
    found the centre: the page must still be written, the exit status be 2 and the
    error one line."""
    path, _, result = decoded
    out = tmp_path / "failed.png"
    assert main(["inspect", str(path), "-o", str(out), "--pitch", "0.5"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("groovescan: error:") and "pitch" in err[0]
    assert "what the geometry saw" in captured.out
    from PIL import Image

    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size[0] >= 1200


@needs_mpl
def test_geometry_figure_shows_the_blocks_centre_and_ring(decoded):
    from groovescan import NoGrooveError, find_geometry, load_scan

    path, image, result = decoded
    with pytest.raises(NoGrooveError) as failed:
        find_geometry(load_scan(path), pitch_mm=0.5)
    coarse = failed.value.evidence
    # the coarse stage had found the centre before the pitch failed, to the fraction of
    # a millimetre the fine stage needs (a few 2 mm blocks on this 5-turn side)
    offset_mm = np.hypot(*np.subtract(coarse.centre_px, result.geometry.centre_px)) * 25.4 / DPI
    assert offset_mm < 0.3
    fig = plot.geometry_figure(image, failed.value)
    assert isinstance(fig, Figure)
    scan_ax = fig.axes[0]
    labels = [text.get_text() for text in scan_ax.get_legend().get_texts()]
    assert any(label.startswith("grooves facing the centre") for label in labels)
    assert "spiral centre" in labels and "grooved ring" in labels
    with pytest.raises(ParameterError, match="what the geometry saw"):
        plot.plot_geometry(image, object())


def test_inspect_without_matplotlib_says_how_to_get_it(decoded, tmp_path, capsys, monkeypatch):
    path, _, _ = decoded
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    out = tmp_path / "report.png"
    assert main(["inspect", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install groovescan[plot]" in err[0]
    assert not out.exists()
    with pytest.raises(OptionalDependencyError):
        import groovescan.plot as gp
        gp.plot_curves()


def test_groovescan_imports_without_matplotlib():
    code = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None
        import groovescan, groovescan.plot, groovescan.batch, groovescan.diagnostics, groovescan.cli
        assert not any(m.startswith("matplotlib.") for m in sys.modules)
        try:
            groovescan.plot.plot_curves()
        except ImportError as err:
            assert "groovescan[plot]" in str(err)
        else:
            raise SystemExit("no error")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
