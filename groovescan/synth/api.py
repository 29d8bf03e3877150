"""The public entry points: :func:`render_scan` (in memory) and :func:`render_scan_to_file`
(TIFF, PNG or JPEG in bounded memory)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import OutputError, ParameterError
from .render import _build_plan, _check_audio, _Plan, _render_into
from .settings import RenderSettings, _require, resolve_settings
from .truth import RenderTruth, _make_truth


# =====================================================================================
# Public entry points
# =====================================================================================

@dataclass(frozen=True, eq=False)
class RenderedScan:
    """A rendered scan: ``image`` (2-D uint16 or uint8, rows x cols) and its ``truth``."""

    image: np.ndarray
    truth: RenderTruth


def render_scan(audio: np.ndarray, *, sr: float, preset: str | None = None,
                settings: RenderSettings | None = None, seed: int = 0,
                workers: int | None = None, progress: Callable[[float], None] | None = None,
                **options: Any) -> RenderedScan:
    """Render a flatbed scan of a record cut from ``audio``, in memory.

    Parameters
    ----------
    audio : ndarray, shape (n,)
        Mono audio, any scale (see ``level``).
    sr : float
        Sample rate of ``audio`` (Hz).
    preset : str, optional
        A key of :data:`PRESETS` ("bone", "bone_worn", "shellac78", "lp", "single45",
        "flatbed_a4").
    settings : RenderSettings, optional
        Base settings (default: ``RenderSettings()``, a clean bone record).
    seed : int
        Seeds every random choice (film, outline, damage, noise): same seed, same image.
    workers : int, optional
        Threads rendering blocks of rows (default 1). The image does not depend on it.
        On the 2-vCPU machine of the benchmark two threads were no faster than one.
    progress : callable, optional
        Called with the fraction of rows done.
    **options
        Any field of :class:`RenderSettings`, e.g. ``dpi=1200``, ``mirrored=True``.

    Returns
    -------
    RenderedScan
        ``image`` (rows x cols, uint16 or uint8) and ``truth`` (:class:`RenderTruth`).

    Notes
    -----
    Peak memory is the image plus ~40 bytes per audio sample (the groove signal
    upsampled x4 and the truth arrays) plus ~150 MB of tables and working blocks. For
    full-size scans prefer :func:`render_scan_to_file`, which keeps the image on disk:
    a 3-minute 7-inch side at 2400 dpi (17 500 px square) peaks at ~640 MiB of resident
    memory, Python and its libraries included, and renders in about a minute per core.
    A whole bed costs little more than the disc: the bare bed around it needs only its
    noise and patterns (an A4 bed at 1200 dpi with a 7-inch disc and every habit on: ~10 s,
    ~220 MiB into a TIFF). ``focus_variation_um`` keeps a second, blurred copy of the
    groove signal (another ~16 bytes per audio sample).
    """
    s = resolve_settings(preset=preset, settings=settings, **options)
    samples = _check_audio(audio, sr)
    plan, cut = _build_plan(samples, sr, s, seed)
    if s.jpeg_quality is not None:
        _check_jpeg_size(plan, "jpeg_quality emulates a JPEG file, which")
    image = np.empty(plan.shape, plan.dtype)
    _render_into(plan, _array_sink(image), workers, progress)
    return RenderedScan(image, _make_truth(plan, cut, samples, sr))


_PNG_MAX_PIXELS = 100_000_000
_JPEG_MAX_SIDE = 65500
_JPEG_DEFAULT_QUALITY = 90


def _check_jpeg_size(plan: _Plan, what: str) -> None:
    rows, cols = plan.shape
    _require(max(rows, cols) <= _JPEG_MAX_SIDE,
             f"{what} holds at most {_JPEG_MAX_SIDE} px a side; this image is {rows} x {cols}: "
             "lower dpi or bed_mm, or write a .tif without jpeg_quality")


def render_scan_to_file(path: str | os.PathLike, audio: np.ndarray, *, sr: float,
                        preset: str | None = None, settings: RenderSettings | None = None,
                        seed: int = 0, overwrite: bool = False, workers: int | None = None,
                        progress: Callable[[float], None] | None = None,
                        **options: Any) -> RenderTruth:
    """Render a scan straight into a file: uncompressed TIFF (BigTIFF past 2 GB), PNG or JPEG.

    The TIFF is created as a memory map and filled block by block, so memory stays
    bounded (about 40 bytes per audio sample plus ~100 MB) whatever the image size. The
    nominal ``dpi`` goes into XResolution/YResolution (ResolutionUnit inch), the PNG
    pHYs chunk or the JPEG's JFIF header. The file is written under a temporary name in
    the same folder and renamed when complete. PNG is for small images (up to 100 Mpixel,
    rendered in memory). JPEG needs ``bits=8`` and at most 65500 px a side; it is encoded
    by Pillow at ``jpeg_quality`` (default 90, which the truth's settings then record) from
    the image held in memory (1 byte per pixel, twice while encoding). With
    ``jpeg_quality`` set, a TIFF or PNG holds the JPEG-decoded image, as after converting
    a JPEG file (the TIFF still in bounded memory: JPEG codes 8-row blocks independently).

    Parameters
    ----------
    path : str or PathLike
        Output file, ``.tif``/``.tiff``, ``.png`` or ``.jpg``/``.jpeg``.
    audio, sr, preset, settings, seed, workers, progress, **options
        As :func:`render_scan`.
    overwrite : bool
        Replace an existing file (default: refuse).

    Returns
    -------
    RenderTruth

    Raises
    ------
    OutputError
        The file exists (and not ``overwrite``), its folder is missing, or writing failed.
    ParameterError
        Unknown suffix, a PNG too large, a JPEG not 8-bit or too large, or bad options.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".tif", ".tiff", ".png", ".jpg", ".jpeg"):
        raise ParameterError(f"cannot write {path.name!r}: use a .tif, .tiff, .png, .jpg or "
                             ".jpeg name")
    if not path.parent.is_dir():
        raise OutputError(f"folder {str(path.parent)!r} does not exist; create it first")
    if path.exists() and not overwrite:
        raise OutputError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    s = resolve_settings(preset=preset, settings=settings, **options)
    is_jpeg = suffix in (".jpg", ".jpeg")
    if is_jpeg:
        _require(s.bits == 8, f"JPEG files hold 8-bit images; got bits={s.bits}: pass bits=8 "
                 "or write a .tif")
        s = replace(s, jpeg_quality=s.jpeg_quality or _JPEG_DEFAULT_QUALITY)
    samples = _check_audio(audio, sr)
    plan, cut = _build_plan(samples, sr, s, seed)
    if suffix == ".png" and plan.shape[0] * plan.shape[1] > _PNG_MAX_PIXELS:
        raise ParameterError(f"a {plan.shape[0]} x {plan.shape[1]} image is too large for PNG "
                             "here; write a .tif instead")
    if s.jpeg_quality is not None:
        _check_jpeg_size(plan, "a JPEG file" if is_jpeg else
                         "jpeg_quality emulates a JPEG file, which")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if suffix == ".png":
            _write_png(tmp, plan, workers, progress)
        elif is_jpeg:
            _write_jpeg(tmp, plan, workers, progress)
        else:
            _write_tiff(tmp, plan, workers, progress)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"could not write {str(path)!r}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _make_truth(plan, cut, samples, sr)


def _array_sink(out: np.ndarray) -> Callable[[int, np.ndarray], None]:
    def sink(r0: int, block: np.ndarray) -> None:
        out[r0:r0 + block.shape[0]] = block
    return sink


def _write_tiff(tmp: Path, plan: _Plan, workers, progress) -> None:
    """An uncompressed, contiguous TIFF: tifffile writes the header and reserves the
    pixel data; the blocks go to their offsets with positional writes, so neither the
    image nor a memory map of it is ever resident."""
    import tifffile

    dtype = np.dtype(plan.dtype)
    row_bytes = plan.shape[1] * dtype.itemsize
    offset, _ = tifffile.imwrite(
        tmp, data=None, shape=plan.shape, dtype=dtype, returnoffset=True, byteorder="<",
        bigtiff=plan.shape[0] * row_bytes > 2**31 - 2**24, photometric="minisblack",
        resolution=(plan.s.dpi, plan.s.dpi), resolutionunit="INCH",
        software="groovescan.synth", metadata=None,
    )
    with open(tmp, "r+b") as fh:
        def sink(r0: int, block: np.ndarray) -> None:
            data = np.ascontiguousarray(block, dtype=dtype.newbyteorder("<")).tobytes()
            os.pwrite(fh.fileno(), data, offset + r0 * row_bytes)

        _render_into(plan, sink, workers, progress)
        fh.flush()
        os.fsync(fh.fileno())


def _write_png(tmp: Path, plan: _Plan, workers, progress) -> None:
    from PIL import Image

    image = np.empty(plan.shape, plan.dtype)
    _render_into(plan, _array_sink(image), workers, progress)
    Image.fromarray(image).save(tmp, format="PNG", dpi=(plan.s.dpi, plan.s.dpi))


def _write_jpeg(tmp: Path, plan: _Plan, workers, progress) -> None:
    """Pillow encodes the whole image (held in memory) at the plan's quality."""
    from PIL import Image

    image = np.empty(plan.shape, plan.dtype)
    _render_into(plan, _array_sink(image), workers, progress, jpeg=False)
    Image.fromarray(image).save(tmp, format="JPEG", quality=int(plan.s.jpeg_quality),
                                dpi=(plan.s.dpi, plan.s.dpi))
