"""Decode a folder of scans unattended: a process pool here, or a Dask cluster.

For every ``NAME.tif`` / ``NAME.tiff`` / ``NAME.png`` / ``NAME.jpg`` / ``NAME.jpeg`` in a
folder (not its subfolders) :func:`batch_decode` writes ``OUT_DIR/NAME.wav`` and a JSON
sidecar ``OUT_DIR/NAME.json``: the decode parameters (geometry hints included), what was
found (the :class:`groovescan.DecodeReport` fields), quality figures, the groovescan
version and timings -- or, for a scan that could not be decoded, the error. Both files are written atomically (temporary file, then a
rename), the sidecar last, so a scan is *done* exactly when its ``.wav`` exists and its
sidecar says ``"status": "ok"``. A rerun skips done scans (unless ``overwrite=True``)
and retries the rest, so an interrupted batch resumes where it stopped.

One bad scan never stops the others: every failure is caught, written to that scan's
sidecar and counted in the :class:`BatchSummary`. If a worker process dies (e.g. the
kernel's out-of-memory killer), the scans that were in flight are retried one at a
time, so only the scan that kills its worker is reported as failed.

Geometry hints (``centre_px``, ``radii_mm``, ``pitch_mm``) apply to every scan of the
batch alike: give them only for scans made the same way (same disc placement on the
scanner bed for ``centre_px``), or decode the odd scan on its own.

Two scans with the same name and different extensions (``a.tif``, ``a.png``) are
written as ``a_tif.*`` and ``a_png.*`` (so adding ``a.png`` beside an ``a.tif`` already
decoded to ``a.*`` makes the next run decode ``a.tif`` again, as ``a_tif.*``).

The WAV holds the decoded audio scaled to peak at -1 dBFS (``normalise=True``, as the
``decode`` command does); the gain is in the sidecar (``output.gain_db``), so
``samples / 10**(gain_db / 20)`` is groove velocity in m/s for ``eq="flat"``.

Dask: with ``scheduler=`` (an address such as ``"tcp://10.0.0.5:8786"``, a
``distributed.Client`` or a cluster object) the same jobs run as
``client.map(...)`` tasks. Workers need groovescan installed and must see the scan
folder and the output folder at the same paths (a shared file system); the outputs are
written by the workers. Install with ``pip install groovescan[dask]``.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import multiprocessing
import os
import platform
import secrets
import sys
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .errors import GroovescanError, OptionalDependencyError, OutputError, ParameterError, SchedulerError
from .io import atomic_output, jsonable, peak_normalise

__all__ = ["SCAN_EXTENSIONS", "ScanOutcome", "BatchSummary", "batch_decode", "find_scans"]

SCAN_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
DASK_HINT = "pip install groovescan[dask]"
SIDECAR_VERSION = 1


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class ScanOutcome:
    """What happened to one scan of a batch.

    Attributes
    ----------
    scan : str
        Path of the scan.
    name : str
        Stem of its outputs (``name + ".wav"``, ``name + ".json"``).
    status : {"decoded", "skipped", "failed"}
        ``"skipped"``: done by an earlier run and not redone.
    audio_path, sidecar_path : str
        The output files (the audio exists only if decoded or skipped).
    message : str
        The error for a failed scan; warnings of the decode, if any, otherwise.
    seconds : float
        Wall time spent on the scan in this run.
    """

    scan: str
    name: str
    status: str
    audio_path: str
    sidecar_path: str
    message: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchSummary:
    """Outcome of :func:`batch_decode`, one :class:`ScanOutcome` per scan, in name order."""

    folder: str
    out_dir: str
    outcomes: tuple[ScanOutcome, ...]
    seconds: float

    @property
    def decoded(self) -> tuple[ScanOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "decoded")

    @property
    def skipped(self) -> tuple[ScanOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "skipped")

    @property
    def failed(self) -> tuple[ScanOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def ok(self) -> bool:
        """True when no scan failed (skipped scans count as done)."""
        return not self.failed

    def summary(self) -> str:
        """One line: counts, failures named, time and where the outputs are."""
        line = (f"batch: {len(self.decoded)} decoded, {len(self.skipped)} skipped (already done), "
                f"{len(self.failed)} failed in {self.seconds:.1f} s; outputs in {self.out_dir}")
        if self.failed:
            names = ", ".join(os.path.basename(o.scan) for o in self.failed[:5])
            more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
            line += f"; failed: {names}{more} (see their .json)"
        return line


# ----------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class _Job:
    scan: str
    name: str
    audio_path: str
    sidecar_path: str
    options: dict
    normalise: bool
    subtype: str


def find_scans(folder) -> list[str]:
    """Scan files (``.tif``, ``.tiff``, ``.png``, ``.jpg``, ``.jpeg``, any case) in ``folder``,
    sorted by name.

    Hidden files (leading ``.``, e.g. temporary files) and subfolders are ignored.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ParameterError(f"{folder}: no such folder; give the folder that holds the scans")
    found = []
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if os.path.splitext(entry.name)[1].lower() in SCAN_EXTENSIONS:
            found.append(os.path.abspath(entry.path))
    return sorted(found, key=lambda p: os.path.basename(p))


def _output_names(scans):
    stems = [os.path.splitext(os.path.basename(p))[0] for p in scans]
    counts = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [stem if counts[stem] == 1 else f"{stem}_{os.path.splitext(p)[1][1:].lower()}"
            for stem, p in zip(stems, scans)]


def _decode_defaults():
    from .pipeline import decode

    return {name: p.default for name, p in inspect.signature(decode).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "progress"}


def _check_options(options):
    """Decode options with defaults filled in and checked, before any work starts."""
    from .eq import get_curve
    from .geometry import check_hints
    from .pipeline import check_denoise
    from .timebase import check_rpm

    defaults = _decode_defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ParameterError(f"unknown decode option(s) {', '.join(unknown)}; "
                             f"batch_decode passes on: {', '.join(defaults)}")
    merged = {**defaults, **options}
    merged["rpm"] = check_rpm(merged["rpm"])
    merged["eq"] = get_curve(merged["eq"]).name
    sr = merged["sr"]
    if not (isinstance(sr, (int, np.integer)) and 4000 <= sr <= 384000):
        raise ParameterError(f"sr={sr!r} is not an audio sample rate; use an integer 4000-384000 (e.g. 44100)")
    merged["sr"] = int(sr)
    if merged["dpi"] is not None:
        dpi = merged["dpi"]
        values = dpi if isinstance(dpi, (tuple, list)) else (dpi,)
        if not all(isinstance(v, (int, float, np.number)) and v > 0 for v in values):
            raise ParameterError(f"dpi={dpi!r} must be a positive resolution (e.g. 2400) or (dpi_x, dpi_y)")
    if merged["band"] is not None:
        merged["band"] = tuple(float(f) for f in merged["band"])
    merged["denoise"] = check_denoise(merged["denoise"])
    # the same hints for every scan; a centre far outside an image is refused by its decode
    merged["centre_px"], merged["radii_mm"], merged["pitch_mm"] = check_hints(
        centre_px=merged["centre_px"], radii_mm=merged["radii_mm"], pitch_mm=merged["pitch_mm"])
    return merged


def _is_done(job: _Job) -> bool:
    if not (os.path.isfile(job.audio_path) and os.path.isfile(job.sidecar_path)):
        return False
    try:
        with open(job.sidecar_path, encoding="utf-8") as f:
            return json.load(f).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


# ----------------------------------------------------------------------------- one scan

def write_json_atomic(path, data) -> None:
    """Write ``data`` as strict JSON to ``path`` via a temporary file and a rename (atomic)."""
    path = os.fspath(path)
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(jsonable(data), f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())


def _scan_facts(path):
    facts = {"path": path, "file": os.path.basename(path)}
    try:
        st = os.stat(path)
        facts["size_bytes"] = st.st_size
        facts["modified_utc"] = datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(timespec="seconds")
    except OSError:
        pass
    return facts


def _quality(result):
    from .diagnostics import audio_to_noise_db

    report = result.report
    turns = result.turn_confidence()
    quality = {
        "followed_fraction": report.followed_fraction,
        "n_clicks": report.n_clicks,
        "click_fraction": report.click_fraction,
        "n_gaps": len(report.gaps),
        "gaps_total_s": float(sum(b - a for a, b in report.gaps)),
        "noise_um": report.noise_um,
        "turn_confidence_mean": float(np.nanmean(turns)) if np.isfinite(turns).any() else None,
        "turn_confidence_min": float(np.nanmin(turns)) if np.isfinite(turns).any() else None,
        "geometry_confidence": result.geometry.confidence,
        "centre_residual_um": result.geometry.centre_residual_mm * 1000,
        "audio_peak": float(np.max(np.abs(result.audio))) if result.audio.size else 0.0,
        "audio_rms": float(np.sqrt(np.mean(np.square(result.audio, dtype=np.float64))))
        if result.audio.size else 0.0,
        "audio_units": "m/s (groove velocity)" if report.eq == "flat" else f"velocity through curve {report.eq}",
    }
    band = (100.0, 5000.0)
    try:
        quality["audio_to_noise_db"] = audio_to_noise_db(result, band=band)
        quality["audio_to_noise_band_hz"] = list(band)
    except (GroovescanError, ValueError) as err:     # too short, nothing measured
        quality["audio_to_noise_db"] = None
        quality["audio_to_noise_note"] = str(err)
    return quality


def _record_base(job: _Job):
    from . import __version__

    return {
        "sidecar_version": SIDECAR_VERSION,
        "groovescan_version": __version__,
        "status": None,
        "scan": _scan_facts(job.scan),
        "parameters": dict(job.options),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
    }


def _error_record(job: _Job, exc, seconds, record=None):
    record = record or _record_base(job)
    if isinstance(exc, BaseException):
        error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        if not isinstance(exc, GroovescanError):      # unexpected: keep where it happened
            error["traceback"] = traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:]
    else:
        error = {"type": "WorkerDied", "message": str(exc)}
    record.update(status="error", error=error, timings_s={"total": seconds})
    if os.path.exists(job.audio_path):
        record["stale_audio"] = (f"{os.path.basename(job.audio_path)} is from an earlier run, "
                                 "not from this attempt; it was left in place")
    return record


def _run_job(job: _Job) -> ScanOutcome:
    """Decode one scan and write its outputs; never raises for a bad scan."""
    from .io import write_audio
    from .pipeline import decode

    t0 = time.perf_counter()
    record = _record_base(job)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = decode(job.scan, progress=False, **job.options)
            quality = _quality(result)
        found = dataclasses.asdict(result.report)
        timings = found.pop("timings_s")
        found["handedness"] = result.report.handedness
        audio, gain_db = peak_normalise(result.audio) if job.normalise else (result.audio, 0.0)
        t_write = time.perf_counter()
        # not "done" (no ok sidecar), so an older .wav of ours is replaced
        write_audio(job.audio_path, audio, sr=result.sr, subtype=job.subtype, overwrite=True)
        timings["decode"] = timings.pop("total")
        timings["write"] = time.perf_counter() - t_write
        timings["total"] = time.perf_counter() - t0        # this scan, start to end
        messages = []
        for w in caught:
            text = f"{w.category.__name__}: {w.message}"
            if not issubclass(w.category, RuntimeWarning) and text not in messages:
                messages.append(text)          # numeric noise (RuntimeWarning) is not news
        record.update(
            status="ok", found=found, quality=quality,
            output={"audio": os.path.basename(job.audio_path), "sr": result.sr,
                    "subtype": job.subtype, "samples": int(audio.size),
                    "duration_s": result.duration_s, "gain_db": gain_db,
                    "normalised": job.normalise},
            warnings=messages, report=result.report.summary().splitlines(), timings_s=timings)
        status, message = "decoded", "; ".join(messages)
    except Exception as exc:  # noqa: BLE001 - one bad scan must not stop the batch
        record = _error_record(job, exc, time.perf_counter() - t0, record)
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    try:
        write_json_atomic(job.sidecar_path, record)
    except GroovescanError as exc:
        status, message = "failed", f"{message + '; ' if message else ''}{exc}"
    return ScanOutcome(job.scan, job.name, status, job.audio_path, job.sidecar_path, message,
                       time.perf_counter() - t0)


def _failed_here(job: _Job, exc, seconds=0.0) -> ScanOutcome:
    """Record a failure the worker could not report itself (it died, or the result was lost)."""
    message = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
    try:
        write_json_atomic(job.sidecar_path, _error_record(job, exc, seconds))
    except GroovescanError as err:
        message += f"; {err}"
    return ScanOutcome(job.scan, job.name, "failed", job.audio_path, job.sidecar_path, message, seconds)


# ----------------------------------------------------------------------------- runners

def _progress_bar(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="decoding", unit="scan", disable=not enabled, file=sys.stderr)


def _note(bar, outcome, failures):
    if outcome.status == "failed":
        failures.append(outcome)
        bar.set_postfix(failed=len(failures), refresh=False)
    bar.update(1)


def _run_pool(jobs, workers, bar, run=None):
    """Jobs on a pool of fresh (spawned) processes; a dead worker costs only its own scan.

    ``run`` (default :func:`_run_job`) must be importable by name in the workers.
    """
    run = run or _run_job
    context = multiprocessing.get_context("spawn")     # no fork of a threaded parent
    outcomes, failures, in_flight = {}, [], []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool:
                in_flight.append(job)           # which scan killed the worker is unknown
                continue
            except Exception as exc:  # noqa: BLE001
                outcome = _failed_here(job, exc)
            outcomes[job.scan] = outcome
            _note(bar, outcome, failures)
    for job in in_flight:                       # retry alone: only the culprit fails again
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            try:
                outcome = pool.submit(run, job).result()
            except BrokenProcessPool:
                outcome = _failed_here(job, "the worker process died while decoding this scan "
                                       "(out of memory? try fewer --workers)", time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001
                outcome = _failed_here(job, exc, time.perf_counter() - t0)
        outcomes[job.scan] = outcome
        _note(bar, outcome, failures)
    return outcomes


def _dask_client(scheduler):
    try:
        import distributed
    except ImportError as err:
        raise OptionalDependencyError(
            f"decoding on a Dask cluster needs dask.distributed, which is not installed; {DASK_HINT}") from err
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    try:
        return distributed.Client(scheduler), True
    except (OSError, TimeoutError) as err:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler!r} ({err}); check the "
                             "address (e.g. tcp://host:8786) and that the scheduler is running") from err


def _run_dask(jobs, client, bar):
    """The same jobs as ``client.map`` tasks on a Dask cluster."""
    import distributed

    outcomes, failures = {}, []
    token = secrets.token_hex(4)
    keys = [f"groovescan-batch-{token}-{i}" for i in range(len(jobs))]
    futures = client.map(_run_job, jobs, key=keys, pure=False)
    by_key = dict(zip(keys, jobs))
    for future in distributed.as_completed(futures):
        job = by_key[future.key]
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: this scan only
            outcome = _failed_here(job, exc)
        outcomes[job.scan] = outcome
        _note(bar, outcome, failures)
        future.release()
    return outcomes


# ----------------------------------------------------------------------------- public

def batch_decode(folder, out_dir, *, workers=None, overwrite=False, scheduler=None, progress=True,
                 normalise=True, subtype="FLOAT", **decode_options) -> BatchSummary:
    """Decode every scan in a folder to ``OUT_DIR/NAME.wav`` plus a JSON sidecar.

    Parameters
    ----------
    folder : str or path-like
        Folder holding the scans (``.tif``, ``.tiff``, ``.png``, ``.jpg``, ``.jpeg``;
        subfolders ignored).
    out_dir : str or path-like
        Where the outputs go; created if missing.
    workers : int, optional
        Processes decoding at once (default: one per CPU, at most one per scan). Each
        needs the memory of one decode (see :func:`groovescan.decode`). Ignored with
        ``scheduler``.
    overwrite : bool
        Decode again scans already done by an earlier run.
    scheduler : str, distributed.Client or cluster, optional
        Run on a Dask cluster instead of local processes (needs ``groovescan[dask]``).
        A client passed in is left open; one made from an address is closed.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    normalise : bool
        Scale each WAV to peak at -1 dBFS (gain in the sidecar).
    subtype : {"FLOAT", "PCM_16", "PCM_24"}
        WAV sample format.
    **decode_options
        Passed to :func:`groovescan.decode` (``rpm``, ``sr``, ``eq``, ``dpi``, ``band``,
        ``declick``, ``denoise``, ``max_gap_s``, and the geometry hints ``centre_px``,
        ``radii_mm``, ``pitch_mm``), the same for every scan; checked before any work
        starts. Each sidecar records them under ``parameters`` (and the hints given under
        ``found.hints``).

    Returns
    -------
    BatchSummary

    Raises
    ------
    ParameterError
        No such folder, no scans in it, or a bad decode option.
    OutputError
        ``out_dir`` cannot be created.
    OptionalDependencyError, SchedulerError
        ``scheduler`` given but dask.distributed missing, or the scheduler unreachable.

    Examples
    --------
    >>> summary = batch_decode("scans/", "audio/", rpm=78, eq="flat")  # doctest: +SKIP
    >>> print(summary.summary())                                        # doctest: +SKIP
    """
    t0 = time.perf_counter()
    folder = os.fspath(folder)
    out_dir = os.path.abspath(os.fspath(out_dir))
    options = _check_options(decode_options)
    if subtype not in ("FLOAT", "PCM_16", "PCM_24"):
        raise ParameterError(f"subtype={subtype!r}; use FLOAT, PCM_16 or PCM_24")
    if workers is not None and not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise ParameterError(f"workers={workers!r} must be a whole number >= 1")
    scans = find_scans(folder)
    if not scans:
        raise ParameterError(f"{folder}: no scans found (batch decodes {', '.join(SCAN_EXTENSIONS)} files)")
    if scheduler is not None:
        _dask_client_available()
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out_dir}: cannot create the output folder ({err.strerror or err})") from err
    results, todo = {}, []
    for scan, name in zip(scans, _output_names(scans)):
        job = _Job(scan, name, os.path.join(out_dir, name + ".wav"), os.path.join(out_dir, name + ".json"),
                   options, bool(normalise), subtype)
        if not overwrite and _is_done(job):
            results[scan] = ScanOutcome(scan, name, "skipped", job.audio_path, job.sidecar_path)
        else:
            todo.append(job)
    if todo and scheduler is not None:
        client, own = _dask_client(scheduler)      # connect before the progress bar starts
        try:
            with _progress_bar(len(todo), progress) as bar:
                results.update(_run_dask(todo, client, bar))
        finally:
            if own:
                client.close()
    elif todo:
        with _progress_bar(len(todo), progress) as bar:
            results.update(_run_pool(todo, min(int(workers or os.cpu_count() or 1), len(todo)), bar))
    return BatchSummary(os.path.abspath(folder), out_dir, tuple(results[s] for s in scans),
                        time.perf_counter() - t0)


def _dask_client_available():
    """Fail before any work if dask.distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError as err:
        raise OptionalDependencyError(
            f"decoding on a Dask cluster needs dask.distributed, which is not installed; {DASK_HINT}") from err
