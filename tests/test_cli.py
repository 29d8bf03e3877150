"""The command line on a small rendered scan: output, report, refusals, exit codes."""
import numpy as np
import pytest
import soundfile as sf

from groovescan import save_scan, synth
from groovescan.cli import main
from roundtrip import SR, music_like


@pytest.fixture(scope="module")
def scan_path(tmp_path_factory):
    audio = music_like(8.0, seed=5)
    rendered = synth.render_scan(audio, sr=SR, seed=4, dpi=2400, disc_diameter_mm=70.0, r_start_mm=30.0)
    path = tmp_path_factory.mktemp("cli") / "disc.tif"
    save_scan(path, rendered.image, dpi=2400)
    return path


def test_decode_writes_audio_and_reports(scan_path, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["decode", str(scan_path), "-o", str(out), "--quiet"]) == 0
    audio, sr = sf.read(out)
    assert sr == 44100 and audio.size > 3 * sr
    assert main(["decode", str(scan_path), "-o", str(tmp_path / "o2.flac"), "--format", "16"]) == 0
    report = capsys.readouterr().out
    for fact in ("2400 dpi", "spiral centre", "turns", "followed", "dark walls"):
        assert fact in report


def test_existing_output_is_refused_without_force(scan_path, tmp_path, capsys):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"precious")
    assert main(["decode", str(scan_path), "-o", str(out), "--quiet"]) == 2
    assert out.read_bytes() == b"precious"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]


@pytest.mark.parametrize("args, words", [
    (["decode", "missing.tif", "-o", "x.wav"], "no such file"),
    (["decode", "{scan}", "-o", "/no/such/folder/x.wav"], "does not exist"),
    (["decode", "{scan}", "-o", "{tmp}/x.wav", "--rpm", "5000"], "rpm"),
    (["decode", "{scan}", "-o", "{tmp}/x.wav", "--eq", "nonsense"], "playback curve"),
    (["decode", "{scan}", "-o", "{tmp}/x.mp3"], "mp3"),
])
def test_bad_input_gives_one_line_and_exit_2(scan_path, tmp_path, capsys, args, words):
    args = [a.format(scan=scan_path, tmp=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("groovescan: error:")
    assert words.lower() in err[0].lower()


def test_blank_image_is_no_groove(tmp_path, capsys):
    path = tmp_path / "blank.tif"
    rng = np.random.default_rng(0)
    save_scan(path, (30000 + rng.normal(0, 50, (600, 600))).astype(np.uint16), dpi=1200)
    assert main(["decode", str(path), "-o", str(tmp_path / "x.wav"), "-q"]) == 2
    assert "groove" in capsys.readouterr().err
