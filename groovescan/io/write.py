"""Writing scans (TIFF, PNG, a memory-mapped TIFF) and audio (WAV, FLAC); reading audio."""
from __future__ import annotations

import contextlib
import errno
import math
import operator
import os
import warnings
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import tifffile
from PIL import Image

from ..errors import AudioReadError, OutputError, ParameterError
from ._common import _SCAN_EXTENSIONS, SCAN_DTYPES, SR_RANGE
from .dpi import _is_real, _parse_dpi
from .load import _check_input_file, _describe
from .output import _output_kind, _write_errors, atomic_output


_AUDIO_EXTENSIONS = {".wav": "WAV", ".flac": "FLAC"}
# format -> (default subtype, allowed subtypes)
_AUDIO_SUBTYPES = {
    "WAV": ("FLOAT", ("PCM_16", "PCM_24", "FLOAT")),
    "FLAC": ("PCM_24", ("PCM_16", "PCM_24")),
}

# Classic TIFF offsets are 32-bit and some readers treat them as signed: switch to
# BigTIFF from 2 GiB of pixel data on.
_BIGTIFF_BYTES = 2**31


def save_scan(path, image, *, dpi, overwrite=False) -> None:
    """Write a scan as an uncompressed TIFF or a PNG, with its resolution.

    The format follows the extension: ``.tif``/``.tiff`` (uint8, uint16 or float32;
    uncompressed, so :func:`load_scan` memory-maps it; BigTIFF above 2 GiB of pixels)
    or ``.png`` (uint8 or uint16). Values are written as they are.

    Parameters
    ----------
    path : str or os.PathLike
        Output file. Its folder must exist.
    image : ndarray, shape (rows, cols)
        uint8, uint16 or float32 (TIFF only). E.g. ``scan.image``.
    dpi : float or (float, float)
        Resolution in dots per inch, one value or ``(dpi_x, dpi_y)``, e.g. ``scan.dpi_xy``.
    overwrite : bool, default False
        Replace an existing file.

    Raises
    ------
    ParameterError
        Unsupported extension, image shape or type, or a dpi outside :data:`DPI_RANGE`.
    OutputError
        The file exists (and not ``overwrite``), its folder is missing, or writing
        failed (the file is then left as it was).

    Notes
    -----
    Peak memory: PNG encoding holds about one extra copy of the image; TIFF none.
    """
    path = os.fspath(path)
    kind = _output_kind(path, _SCAN_EXTENSIONS, "a scan")
    dpi_xy = _parse_dpi(dpi)
    image = np.asanyarray(image)
    _check_image_to_save(image, kind, path)
    with atomic_output(path, overwrite=overwrite) as tmp, _write_errors(path):
        if kind == "TIFF":
            tifffile.imwrite(tmp, image, **_tiff_options(image.shape, image.dtype, dpi_xy))
        else:
            Image.fromarray(image).save(tmp, format="PNG", dpi=dpi_xy)


@contextlib.contextmanager
def create_scan_memmap(path, *, shape, dtype, dpi, overwrite=False) -> Iterator[np.memmap]:
    """Create an uncompressed (Big)TIFF scan and yield its pixels as a writable memmap.

    For rendering gigapixel scans block by block without holding them in RAM. The file
    is built under a temporary name in the same folder and renamed to ``path`` only
    when the ``with`` block exits without error; on error it is removed.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.tif``/``.tiff`` file. Its folder must exist.
    shape : (int, int)
        ``(rows, cols)``.
    dtype : {uint8, uint16, float32}
    dpi : float or (float, float)
        Resolution in dots per inch, one value or ``(dpi_x, dpi_y)``.
    overwrite : bool, default False
        Replace an existing file.

    Yields
    ------
    numpy.memmap, shape (rows, cols)
        Zero-filled and writable; write it in blocks, e.g. ``image[r0:r1] = block``.

    Raises
    ------
    ParameterError
        Not a TIFF name, a bad shape or dtype, or a dpi outside :data:`DPI_RANGE`.
    OutputError
        The file exists (and not ``overwrite``), its folder is missing, or the disk
        lacks the space for the whole image (reserved up front where the platform allows).

    Notes
    -----
    Peak memory: whatever the caller's blocks need; the OS pages the map to disk.
    On Windows, drop every reference to the array before the block ends, or the file
    cannot be renamed.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from groovescan import load_scan
    >>> folder = tempfile.mkdtemp()
    >>> out = os.path.join(folder, "render.tif")
    >>> with create_scan_memmap(out, shape=(256, 300), dtype=np.uint16, dpi=2400) as image:
    ...     for r0 in range(0, 256, 64):
    ...         image[r0 : r0 + 64] = r0 + np.arange(300, dtype=np.uint16)
    >>> load_scan(out).image[128, :3]
    memmap([128, 129, 130], dtype=uint16)
    """
    path = os.fspath(path)
    if _output_kind(path, _SCAN_EXTENSIONS, "a scan") != "TIFF":
        raise ParameterError(f"{path}: create_scan_memmap writes TIFF; use a .tif or .tiff name")
    shape, dtype = _check_layout(shape, dtype)
    dpi_xy = _parse_dpi(dpi)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with _write_errors(path):
            options = _tiff_options(shape, dtype, dpi_xy)
            image = tifffile.memmap(tmp, shape=shape, dtype=dtype, **options)
            _reserve_disk_space(tmp)
        yield image
        with _write_errors(path):
            image.flush()
        del image


def _tiff_options(shape, dtype, dpi_xy) -> dict:
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    return dict(
        photometric="minisblack",
        resolution=tuple(dpi_xy),
        resolutionunit="INCH",
        bigtiff=nbytes > _BIGTIFF_BYTES,
        metadata=None,
    )


def _check_image_to_save(image: np.ndarray, kind: str, path: str) -> None:
    allowed = SCAN_DTYPES if kind == "TIFF" else SCAN_DTYPES[:2]
    if image.ndim != 2 or image.size == 0 or image.dtype not in allowed:
        types = ", ".join(str(t) for t in allowed)
        raise ParameterError(
            f"{path}: {kind} scans are non-empty 2-D {types} images, got shape {image.shape} "
            f"{image.dtype}; convert the image (without rescaling) or save as .tif"
        )


def _check_layout(shape, dtype) -> tuple[tuple[int, int], np.dtype]:
    try:
        rows, cols = (operator.index(n) for n in shape)
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        rows = cols = 0
    if rows < 1 or cols < 1 or dtype not in SCAN_DTYPES:
        raise ParameterError(
            f"shape={shape!r}, dtype={dtype!r}: need (rows, cols) of positive integers "
            "and a uint8, uint16 or float32 dtype"
        )
    return (rows, cols), dtype


def _reserve_disk_space(path: str) -> None:
    """Allocate a sparse file's blocks now, so that a full disk is an error here rather
    than a crash (SIGBUS) when the memory map is written. Best effort: skipped where the
    platform or filesystem cannot do it."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def write_audio(path, audio, *, sr, subtype=None, overwrite=False) -> None:
    """Write audio as WAV or FLAC (chosen by the extension).

    Parameters
    ----------
    path : str or os.PathLike
        ``.wav`` or ``.flac``. Its folder must exist.
    audio : ndarray, shape (samples,) or (samples, channels)
        Floating point, full scale +-1.0, finite.
    sr : int
        Sample rate in Hz, within :data:`SR_RANGE`.
    subtype : {"FLOAT", "PCM_16", "PCM_24"}, optional
        Sample format. Default: ``"FLOAT"`` (32-bit float) for WAV, ``"PCM_24"`` for
        FLAC, which cannot store floats.
    overwrite : bool, default False
        Replace an existing file.

    Raises
    ------
    ParameterError
        Unsupported extension or subtype, non-float or non-finite audio, bad ``sr``.
    OutputError
        The file exists (and not ``overwrite``), its folder is missing, or writing
        failed (the file is then left as it was).

    Warns
    -----
    UserWarning
        When integer (PCM) samples had to be clipped to +-1.0. Audio is never
        normalised: to keep peaks above 1.0, write float WAV.
    """
    path = os.fspath(path)
    file_format = _output_kind(path, _AUDIO_EXTENSIONS, "audio")
    subtype = _audio_subtype(file_format, subtype)
    sr = _check_sample_rate(sr)
    audio = _check_audio(audio)
    if subtype != "FLOAT":
        audio = _clip_to_full_scale(audio, subtype)
    with atomic_output(path, overwrite=overwrite) as tmp, _write_errors(path):
        try:
            sf.write(tmp, audio, sr, subtype=subtype, format=file_format)
        except sf.SoundFileError as err:
            raise OutputError(
                f"{path}: could not write the audio ({_describe(err)}); nothing was changed"
            ) from err


def _audio_subtype(file_format: str, subtype) -> str:
    default, allowed = _AUDIO_SUBTYPES[file_format]
    if subtype is None:
        return default
    if str(subtype).upper() not in allowed:
        raise ParameterError(
            f"subtype {subtype!r} is not available for {file_format}; "
            f"choose one of {', '.join(allowed)}"
        )
    return str(subtype).upper()


def _check_sample_rate(sr) -> int:
    if not _is_real(sr) or not math.isfinite(sr) or sr != round(sr):
        raise ParameterError(f"sr must be a whole number of samples per second, got {sr!r}")
    low, high = SR_RANGE
    if not low <= sr <= high:
        raise ParameterError(f"sr={sr} Hz is outside the accepted range {low}-{high} Hz")
    return int(sr)


def _check_audio(audio) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.dtype.kind != "f":
        raise ParameterError(
            f"audio must be floating point with full scale +-1.0, got {audio.dtype}; "
            "e.g. audio.astype(np.float32) / 32768 for 16-bit samples"
        )
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and audio.shape[1] > 16):
        raise ParameterError(
            f"audio must have shape (samples,) or (samples, channels), got {audio.shape}"
        )
    n_bad = int(np.count_nonzero(~np.isfinite(audio)))
    if n_bad:
        raise ParameterError(f"audio has {n_bad} NaN or infinite sample(s); repair them first")
    return audio if audio.dtype in (np.float32, np.float64) else audio.astype(np.float32)


def _clip_to_full_scale(audio: np.ndarray, subtype: str) -> np.ndarray:
    """Clip to +-1.0 with a warning: PCM cannot hold more, and libsndfile versions
    differ in what they do beyond it."""
    n_over = int(np.count_nonzero(np.abs(audio) > 1.0))
    if not n_over:
        return audio
    peak = float(np.max(np.abs(audio)))
    warnings.warn(
        f"audio peaks at {peak:.3g}, above full scale 1.0: clipped {n_over} samples for "
        f"{subtype}; divide by the peak first, or write float WAV (subtype='FLOAT')",
        UserWarning,
        stacklevel=3,
    )
    return np.clip(audio, -1.0, 1.0)


def read_audio(path) -> tuple[np.ndarray, int]:
    """Read a sound file (anything libsndfile reads: WAV, FLAC, ...) as mono float32.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    audio : ndarray, shape (samples,), float32
        Full scale +-1.0. Several channels are averaged to one, with a warning.
    sr : int
        Sample rate, Hz.

    Raises
    ------
    AudioReadError
        Missing, empty, or not readable audio.
    """
    path = os.fspath(path)
    _check_input_file(path, AudioReadError)
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, OSError, RuntimeError) as err:
        raise AudioReadError(
            f"{path}: not readable audio ({_describe(err)}); give a WAV, FLAC or OGG file"
        ) from err
    if data.shape[1] == 1:
        return data[:, 0], int(sr)
    warnings.warn(
        f"{path}: {data.shape[1]} channels mixed to mono (their mean)", UserWarning, stacklevel=2
    )
    return data.mean(axis=1, dtype=np.float32), int(sr)
