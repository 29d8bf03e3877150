"""Batch decoding of a folder: outputs and sidecars, a bad scan among good ones, resuming,
--force, a worker that dies, and the same batch on a real dask.distributed LocalCluster.

Scans are small (70 mm disc, 4 s of music-like noise, 1200 dpi, decoded at 22.05 kHz:
~3 s each) -- the batch machinery is under test here, not the audio.
"""
import json
import os
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

from groovescan import DecodeReport, ParameterError, save_scan, synth
from groovescan import batch
from groovescan.cli import main
from roundtrip import SR, music_like

DPI = 1200
OPTIONS = ["--sample-rate", "22050"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    for name, seed in (("disc_a.tif", 5), ("disc_b.png", 6)):
        audio = music_like(4.0, seed=seed)
        rendered = synth.render_scan(audio, sr=SR, seed=seed, dpi=DPI, disc_diameter_mm=70.0,
                                     r_start_mm=30.0)
        save_scan(folder / name, rendered.image, dpi=DPI)
    (folder / "broken.tif").write_bytes(b"II*\x00" + b"\x00 not a scan" * 20)
    (folder / "notes.txt").write_text("not a scan: ignored")
    (folder / ".hidden.tif").write_bytes(b"ignored too")
    return folder


def _sidecar(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_batch_writes_wav_and_sidecar_reports_the_bad_scan_resumes_and_forces(scans, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["batch", str(scans), "-o", str(out), "--workers", "2", *OPTIONS])
    captured = capsys.readouterr()
    assert status == 1                                        # one scan failed
    assert sorted(p.name for p in out.iterdir()) == [
        "broken.json", "disc_a.json", "disc_a.wav", "disc_b.json", "disc_b.wav"]
    assert "2 decoded, 0 skipped (already done), 1 failed" in captured.out
    failed = [line for line in captured.err.splitlines() if line.startswith("groovescan: failed:")]
    assert len(failed) == 1 and "broken.tif" in failed[0]

    for name in ("disc_a", "disc_b"):
        record = _sidecar(out, name)
        assert record["status"] == "ok" and record["groovescan_version"]
        assert record["parameters"]["sr"] == 22050 and record["parameters"]["rpm"] == 78.0
        report_fields = {f for f in DecodeReport.__dataclass_fields__ if f != "timings_s"}
        assert report_fields <= set(record["found"])
        assert record["found"]["dpi"] == DPI and record["found"]["polarity"] == "dark"
        for key in ("followed_fraction", "n_clicks", "noise_um", "audio_to_noise_db",
                    "turn_confidence_mean"):
            assert key in record["quality"]
        for stage in ("geometry", "track", "walls", "decode", "write", "total"):
            assert record["timings_s"][stage] >= 0
        audio, sr = sf.read(out / f"{name}.wav")
        assert sr == 22050
        assert audio.size / sr == pytest.approx(record["output"]["duration_s"], abs=1e-3)
        # normalised to -1 dBFS, the gain kept so groove velocity can be recovered
        assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)
        peak = np.abs(audio).max() / 10 ** (record["output"]["gain_db"] / 20)
        assert peak == pytest.approx(record["quality"]["audio_peak"], rel=1e-5)
    broken = _sidecar(out, "broken")
    assert broken["status"] == "error" and broken["error"]["type"] == "ScanReadError"
    assert "broken.tif" in broken["error"]["message"]

    # rerun: the done scans are skipped untouched, the broken one is tried again
    before = _mtimes(out)
    summary = batch.batch_decode(scans, out, workers=1, progress=False, sr=22050)
    assert [o.status for o in summary.outcomes] == ["failed", "skipped", "skipped"]
    assert not summary.ok and "0 decoded, 2 skipped" in summary.summary()
    after = _mtimes(out)
    assert all(after[n] == before[n] for n in ("disc_a.wav", "disc_a.json", "disc_b.wav", "disc_b.json"))

    # an interrupted run (audio written, no sidecar yet) is redone; the rest stays
    (out / "disc_b.json").unlink()
    summary = batch.batch_decode(scans, out, workers=1, progress=False, sr=22050)
    assert [o.status for o in summary.outcomes] == ["failed", "skipped", "decoded"]
    assert _sidecar(out, "disc_b")["status"] == "ok"

    # --force decodes everything again
    before = _mtimes(out)
    assert main(["batch", str(scans), "-o", str(out), "--force", "-q", *OPTIONS]) == 1
    after = _mtimes(out)
    assert all(after[n] > before[n] for n in ("disc_a.wav", "disc_a.json", "disc_b.wav", "disc_b.json"))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]        # no temporaries left


def test_all_good_is_exit_0_and_names_do_not_collide(scans, tmp_path, capsys):
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(scans / "disc_a.tif", folder / "disc.tif")
    shutil.copy(scans / "disc_b.png", folder / "disc.png")
    out = tmp_path / "out"
    assert main(["batch", str(folder), "-o", str(out), "-q", *OPTIONS]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["disc_png.json", "disc_png.wav",
                                                     "disc_tif.json", "disc_tif.wav"]
    assert capsys.readouterr().err == ""
    # the scan is damaged and redone with --force: its sidecar says so, the old audio is
    # kept but marked as not belonging to it, and it is not taken for done on the next run
    (folder / "disc.tif").write_bytes(b"II*\x00 damaged")
    (folder / "disc.png").write_bytes(b"\x89PNG damaged")
    assert main(["batch", str(folder), "-o", str(out), "--force", "-q", *OPTIONS]) == 1
    record = _sidecar(out, "disc_tif")
    assert record["status"] == "error" and "earlier run" in record["stale_audio"]
    assert (out / "disc_tif.wav").exists()
    summary = batch.batch_decode(folder, out, progress=False, sr=22050)
    assert [o.status for o in summary.outcomes] == ["failed", "failed"]


# A runner for the crash test: spawned workers import it from this module by name.
def _crash_or_run(job):
    if job.name == "crash":
        os._exit(3)                    # as the out-of-memory killer would end a worker
    return batch._run_job(job)


def test_a_worker_that_dies_costs_only_its_own_scan(scans, tmp_path):
    options = batch._check_options({"sr": 22050})
    jobs = []
    for name in ("crash", "innocent"):
        scan = tmp_path / f"{name}.tif"
        shutil.copy(scans / "broken.tif", scan)
        jobs.append(batch._Job(str(scan), name, str(tmp_path / f"{name}.wav"),
                               str(tmp_path / f"{name}.json"), options, True, "FLOAT"))
    with batch._progress_bar(len(jobs), False) as bar:
        outcomes = batch._run_pool(jobs, 2, bar, run=_crash_or_run)
    crash, innocent = (outcomes[job.scan] for job in jobs)
    assert crash.status == innocent.status == "failed"
    assert "worker process died" in crash.message
    assert json.loads((tmp_path / "crash.json").read_text())["error"]["type"] == "WorkerDied"
    # in flight when the pool broke, retried alone: it reports its own error, not the crash
    assert "ScanReadError" in innocent.message
    assert json.loads((tmp_path / "innocent.json").read_text())["error"]["type"] == "ScanReadError"


def test_bad_arguments_fail_before_any_work(scans, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match="rpm"):
        batch.batch_decode(scans, out, rpm=5000)
    with pytest.raises(ParameterError, match="unknown decode option"):
        batch.batch_decode(scans, out, speed=78)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["batch", str(empty), "-o", str(out)]) == 2
    assert "no scans found" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)      # dask not installed
    assert main(["batch", str(scans), "-o", str(out), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install groovescan[dask]" in err[0]
    assert not out.exists()


def test_json_sidecars_are_written_atomically_and_strictly(tmp_path):
    path = tmp_path / "x.json"
    batch.write_json_atomic(path, {"a": np.float32(1.5), "b": (1, 2), "nan": float("nan"),
                                   "arr": np.arange(3), "n": np.int64(4)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [1, 2], "nan": None, "arr": [0, 1, 2], "n": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_batch_on_a_dask_localcluster(scans, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(scans / "disc_a.tif", folder / "disc_a.tif")
    shutil.copy(scans / "broken.tif", folder / "broken.tif")
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        # through the command line, by address: the client is made and closed by the batch
        status = main(["batch", str(folder), "-o", str(out), "-q",
                       "--scheduler", cluster.scheduler_address, *OPTIONS])
        assert status == 1
        assert _sidecar(out, "disc_a")["status"] == "ok"
        record = _sidecar(out, "broken")
        assert record["status"] == "error" and record["error"]["type"] == "ScanReadError"
        assert (out / "disc_a.wav").exists() and not (out / "broken.wav").exists()
        assert "broken.tif" in capsys.readouterr().err
        # from Python with a client of our own: done scans are skipped, the client stays open
        with distributed.Client(cluster) as client:
            summary = batch.batch_decode(folder, out, scheduler=client, progress=False, sr=22050)
            assert [o.status for o in summary.outcomes] == ["failed", "skipped"]
            assert client.status == "running"


def test_geometry_hints_reach_every_scan_and_its_sidecar(scans, tmp_path, capsys):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(scans / "disc_a.tif", folder / "disc_a.tif")
    out = tmp_path / "out"
    # the renderer's default pitch: a hint every disc of this batch shares
    assert main(["batch", str(folder), "-o", str(out), "-q", "--workers", "1", "--pitch", "0.22",
                 *OPTIONS]) == 0
    record = _sidecar(out, "disc_a")
    assert record["status"] == "ok"
    hints = {k: record["parameters"][k] for k in ("centre_px", "radii_mm", "pitch_mm")}
    assert hints == {"centre_px": None, "radii_mm": None, "pitch_mm": 0.22}
    assert record["found"]["hints"] == {"pitch_mm": 0.22}
    assert "hints           pitch 0.22 mm" in record["report"]
    assert record["found"]["pitch_mm"] == pytest.approx(0.22, rel=0.02)


def test_geometry_hints_are_checked_and_kept_as_numbers_before_any_work(scans, tmp_path, capsys):
    options = batch._check_options({"centre_px": [3700, 3710.5], "radii_mm": (28, 31), "pitch_mm": 0.22})
    assert (options["centre_px"], options["radii_mm"], options["pitch_mm"]) == (
        (3700.0, 3710.5), (28.0, 31.0), 0.22)
    out = tmp_path / "out"
    for bad, words in ((dict(radii_mm=(31, 28)), "inner first"), (dict(pitch_mm=5), "pitch"),
                       (dict(centre_px=(1, 2, 3)), "centre")):
        with pytest.raises(ParameterError, match=words):
            batch.batch_decode(scans, out, **bad)
    assert main(["batch", str(scans), "-o", str(out), "--radii", "31-28"]) == 2
    assert "argument --radii" in capsys.readouterr().err
    assert not out.exists()


def test_find_scans_picks_up_jpegs(tmp_path):
    for name in ("a.jpg", "b.JPEG", "c.tif", "d.png", "e.txt", "f.jpe", ".g.jpg"):
        (tmp_path / name).write_bytes(b"x")
    found = [os.path.basename(p) for p in batch.find_scans(tmp_path)]
    assert found == ["a.jpg", "b.JPEG", "c.tif", "d.png"]
