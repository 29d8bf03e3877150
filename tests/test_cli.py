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


# ------------------------------------------------------------------ geometry hints

HINT_COMMANDS = {
    "decode": ["decode", "scan.tif", "-o", "x.wav"],
    "inspect": ["inspect", "scan.tif", "-o", "x.png"],
    "batch": ["batch", "scans", "-o", "out"],
}


@pytest.mark.parametrize("command", sorted(HINT_COMMANDS))
@pytest.mark.parametrize("options, expected", [
    (["--centre", "8200,8350"], dict(centre=(8200.0, 8350.0))),
    (["--centre", " 8200.5 , 8350 "], dict(centre=(8200.5, 8350.0))),
    (["--centre=-120,8350"], dict(centre=(-120.0, 8350.0))),        # a centre off the image
    (["--radii", "40-85"], dict(radii=(40.0, 85.0))),
    (["--radii", "40,85"], dict(radii=(40.0, 85.0))),
    (["--radii", "28.2-30.5"], dict(radii=(28.2, 30.5))),
    (["--pitch", "0.28"], dict(pitch=0.28)),
    ([], dict(centre=None, radii=None, pitch=None)),
])
def test_geometry_hint_options_parse(command, options, expected):
    from groovescan.cli import build_parser

    args = build_parser().parse_args(HINT_COMMANDS[command] + options)
    for name, value in expected.items():
        assert getattr(args, name) == value


@pytest.mark.parametrize("command", sorted(HINT_COMMANDS))
@pytest.mark.parametrize("option, value, example", [
    ("--centre", "8200", "--centre 8200,8350"),
    ("--centre", "8200;8350", "--centre 8200,8350"),
    ("--centre", "row,col", "--centre 8200,8350"),
    ("--centre", "nan,5", "--centre 8200,8350"),
    ("--centre", "1,2,3", "--centre 8200,8350"),
    ("--radii", "40", "--radii 40-85"),
    ("--radii", "85-40", "--radii 40-85"),           # outer first
    ("--radii", "0-85", "--radii 40-85"),
    ("--radii", "40-900", "--radii 40-85"),          # larger than any disc
    ("--radii", "forty-85", "--radii 40-85"),
    ("--pitch", "abc", "--pitch 0.28"),
    ("--pitch", "5", "--pitch 0.28"),                # mm, not um: 2 mm at most
    ("--pitch", "-0.2", "--pitch 0.28"),
    ("--pitch", "inf", "--pitch 0.28"),
])
def test_malformed_geometry_hints_are_usage_errors_naming_the_option(capsys, command, option, value,
                                                                     example):
    assert main(HINT_COMMANDS[command] + [f"{option}={value}"]) == 2
    err = capsys.readouterr().err
    # argparse prints the usage, then one line: the option, what was wrong, an example
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"groovescan {command}: error: argument {option}: ")
    assert example in errors[0]


def test_hints_are_passed_to_decode_by_every_command(monkeypatch, tmp_path, capsys):
    import groovescan.batch
    import groovescan.pipeline
    from groovescan import ParameterError

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs)
        raise ParameterError("stopped by the test")

    monkeypatch.setattr(groovescan.pipeline, "decode", spy)
    monkeypatch.setattr(groovescan.batch, "batch_decode", spy)
    monkeypatch.setattr("groovescan.io.load_scan", lambda *args, **kwargs: None)
    hints = ["--centre", "3700,3710", "--radii", "28-31", "--pitch", "0.22"]
    for command in ("decode", "inspect", "batch"):
        out = {"decode": "x.wav", "inspect": "x.png", "batch": "out"}[command]
        if command == "inspect":
            pytest.importorskip("matplotlib")
        assert main([command, "scan.tif", "-o", str(tmp_path / out), *hints]) == 2
        assert "stopped by the test" in capsys.readouterr().err
        assert {k: seen[-1][k] for k in ("centre_px", "radii_mm", "pitch_mm")} == dict(
            centre_px=(3700.0, 3710.0), radii_mm=(28.0, 31.0), pitch_mm=0.22), command


def test_decode_with_a_hint_reports_it(scan_path, tmp_path, capsys):
    out = tmp_path / "hinted.wav"
    assert main(["decode", str(scan_path), "-o", str(out), "--pitch", "0.22"]) == 0
    report = capsys.readouterr().out.splitlines()
    assert "hints           pitch 0.22 mm" in report
