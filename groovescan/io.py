"""Read record scans into a :class:`Scan`; write scans and audio files.

Reading
-------
:func:`load_scan` reads TIFF with tifffile (8/16-bit integer or float samples;
uncompressed or LZW/deflate/zstd/packbits/...; stripped or tiled; classic or BigTIFF),
PNG (8/16-bit) and JPEG (8-bit greyscale or colour, baseline or progressive) with
Pillow. The format is recognised from the file's first bytes, not its name. The
resolution comes from the file (TIFF XResolution/YResolution in inch or cm, PNG pHYs,
JPEG JFIF density in inch or cm or else EXIF XResolution/YResolution) unless ``dpi=``
is given, which wins.

JPEG is lossy: its 8 x 8 pixel blocks and quantisation add position noise to the
groove walls that no decoder can remove. Scan to 16-bit TIFF or PNG where possible.

Pixel values are never rescaled: a :class:`Scan` holds exactly the stored numbers.
Where the file needed interpreting (a colour scan, a multi-page file, ...) the choice
is written to :attr:`Scan.notes`, and the important ones are also issued as a
:class:`UserWarning`:

- colour (RGB/RGBA) scans: the single channel with the most contrast is used (its
  values and type unchanged, and still memory-mapped), not a luminance mix, which would
  mean a float copy of the whole scan; for film scans the channels are near copies of
  each other, or the film's tint has flattened one of them. Alpha is ignored.
- multi-page TIFFs and multi-picture JPEGs (MPO): the first page/picture is used.
- EXIF orientation (rotated or mirrored for display) is ignored: pixels are used as
  stored, the decoder finds the spiral's position and handedness itself.
- float images are accepted with any finite range, as stored (float64 and float16
  become float32); NaN or infinite pixels are refused.

Memory
------
- Uncompressed TIFFs in the machine's byte order are memory-mapped read-only: loading
  costs no RAM whatever the size, pixels are read from disk as they are used.
- Compressed (or big-endian) TIFFs are decoded into RAM: peak about the decoded image
  (three channels for colour scans, plus the chosen channel while it is copied out).
- PNGs are decoded into RAM: peak about twice the image.
- JPEGs are decoded into RAM by Pillow, then copied out in blocks: peak about twice the
  image for greyscale (1 + 1 bytes a pixel), about 7 bytes a pixel for colour (Pillow's
  4-byte pixels plus the 3-channel array). Measured on a 20 000 x 28 000 px scan:
  1.2 GB greyscale, 4.0 GB colour.
- Float images are read through once, in blocks of ~64 MB, to look for NaN/inf.

Writing
-------
:func:`save_scan`, :func:`create_scan_memmap` and :func:`write_audio` write to a
temporary file in the destination folder and rename it into place only when complete,
so a failure (full disk, ...) leaves no partial file and any existing file untouched.
They refuse to replace an existing file unless ``overwrite=True``.
"""
from __future__ import annotations

import contextlib
import errno
import math
import mmap
import numbers
import operator
import os
import secrets
import struct
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import tifffile
from PIL import Image, ImageFile

from .errors import (
    AudioReadError,
    GroovescanError,
    MissingDpiError,
    OutputError,
    ParameterError,
    ScanContentError,
    ScanReadError,
)

__all__ = [
    "DPI_RANGE",
    "MIN_SIDE_PX",
    "SR_RANGE",
    "Scan",
    "create_scan_memmap",
    "load_scan",
    "read_audio",
    "save_scan",
    "write_audio",
]

#: Accepted scan resolutions, dots per inch (both axes).
DPI_RANGE = (100.0, 20_000.0)
#: Smallest accepted image side, pixels: anything smaller cannot hold a record.
MIN_SIDE_PX = 64
#: Largest accepted image, pixels (a 12-inch disc at 7700 dpi).
MAX_PIXELS = 2**33
#: Accepted audio sample rates, Hz.
SR_RANGE = (1_000, 768_000)

SCAN_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
DPI_SOURCES = ("metadata", "argument")

_SCAN_EXTENSIONS = {".tif": "TIFF", ".tiff": "TIFF", ".png": "PNG"}
_AUDIO_EXTENSIONS = {".wav": "WAV", ".flac": "FLAC"}
# format -> (default subtype, allowed subtypes)
_AUDIO_SUBTYPES = {
    "WAV": ("FLOAT", ("PCM_16", "PCM_24", "FLOAT")),
    "FLAC": ("PCM_24", ("PCM_16", "PCM_24")),
}

_TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\0\0\0\0IEND\xaeB`\x82"  # the IEND chunk, CRC included
_JPEG_MAGIC = b"\xff\xd8\xff"  # SOI and the first marker's 0xFF
_OTHER_MAGICS = {b"%PDF": "PDF", b"GIF8": "GIF", b"BM": "BMP"}
# what a scan file's name says it holds, to note a name that disagrees with the content
_READ_EXTENSIONS = {**_SCAN_EXTENSIONS, ".jpg": "JPEG", ".jpeg": "JPEG"}
_TIFF_PHOTOMETRICS = (
    tifffile.PHOTOMETRIC.MINISWHITE,
    tifffile.PHOTOMETRIC.MINISBLACK,
    tifffile.PHOTOMETRIC.RGB,
    tifffile.PHOTOMETRIC.YCBCR,  # JPEG-compressed colour, decoded to RGB by tifffile
)
_NATIVE_BYTEORDER = "<" if sys.byteorder == "little" else ">"

# Classic TIFF offsets are 32-bit and some readers treat them as signed: switch to
# BigTIFF from 2 GiB of pixel data on.
_BIGTIFF_BYTES = 2**31
# Blocks for whole-image passes over memory-mapped scans.
_BLOCK_BYTES = 64 * 2**20
# A compressed TIFF page that claims more than this many times its stored bytes is
# corrupt: deflate cannot exceed ~1032:1, and a grooved surface is far from blank.
_MAX_COMPRESSION_RATIO = 1000
_CHANNEL_NAMES = ("red", "green", "blue")


# --------------------------------------------------------------------------- Scan


@dataclass(frozen=True, eq=False)
class Scan:
    """A greyscale record scan and its resolution.

    Build one with :func:`load_scan` or :meth:`Scan.from_array`, which check the
    image; the constructor only checks that the fields agree.

    Attributes
    ----------
    image : ndarray, shape (rows, cols), uint8, uint16 or float32
        Pixel values exactly as stored, read-only. For an uncompressed TIFF this is a
        read-only ``np.memmap`` of the file: nothing is copied into RAM (for a colour
        file, a strided view of one channel; OpenCV calls may need a contiguous copy).
    dpi : float
        Nominal resolution, dots per inch: the mean of ``dpi_xy``.
    dpi_xy : (float, float)
        ``(dpi_col, dpi_row)``: the resolution along X (columns) then Y (rows), the
        order of a TIFF's XResolution and YResolution. A flatbed's two scales differ
        by up to ~1.5 %.
    path : str or None
        The file read, or None for an in-memory array.
    bit_depth : int
        Bits per pixel: 8, 16 or 32 (float).
    dpi_source : {"metadata", "argument"}
        Where the resolution came from: the file, or the caller's ``dpi=``.
    notes : tuple of str
        How the input was interpreted, e.g. ``"RGB scan: used the green channel ..."``.
    """

    image: np.ndarray
    dpi: float
    dpi_xy: tuple[float, float]
    path: str | None
    bit_depth: int
    dpi_source: str
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        image = self.image
        if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype not in SCAN_DTYPES:
            raise ScanContentError(
                "Scan.image must be a 2-D uint8, uint16 or float32 array; "
                "make scans with Scan.from_array(image, dpi=...) or load_scan(path)"
            )
        if self.bit_depth != 8 * image.dtype.itemsize:
            raise ParameterError(
                f"bit_depth={self.bit_depth} does not match the {image.dtype} image; "
                f"use {8 * image.dtype.itemsize}"
            )
        if len(self.dpi_xy) != 2 or _dpi_out_of_range(self.dpi_xy):
            raise ParameterError(
                f"dpi_xy={self.dpi_xy!r} must be two resolutions in {_DPI_RANGE_TEXT} dpi"
            )
        if not math.isclose(self.dpi, sum(self.dpi_xy) / 2, rel_tol=1e-9):
            raise ParameterError(f"dpi={self.dpi} must be the mean of dpi_xy={self.dpi_xy}")
        if self.dpi_source not in DPI_SOURCES:
            raise ParameterError(
                f"dpi_source must be one of {DPI_SOURCES}, got {self.dpi_source!r}"
            )

    @classmethod
    def from_array(cls, image, *, dpi) -> Scan:
        """Check an in-memory image and wrap it as a :class:`Scan`.

        The image gets the same checks and interpretation as a file read by
        :func:`load_scan` (colour channel choice, float64 to float32, size, blank,
        NaN). It is not copied unless it is in colour or float64: ``scan.image`` is a
        read-only view of ``image`` (a memmap stays a memmap).

        Parameters
        ----------
        image : array_like, shape (rows, cols) or (rows, cols, 3 or 4)
            uint8, uint16 or float pixel values.
        dpi : float or (float, float)
            Resolution in dots per inch, one value or ``(dpi_x, dpi_y)``.

        Returns
        -------
        Scan
            With ``path=None`` and ``dpi_source="argument"``.

        Raises
        ------
        ScanContentError
            Empty, tiny, blank, NaN/inf, or an unsupported shape or pixel type.
        ParameterError
            ``dpi`` outside :data:`DPI_RANGE`.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> scan = Scan.from_array(rng.integers(0, 4096, (512, 640), dtype=np.uint16),
        ...                        dpi=(2400, 2436))
        >>> scan.shape, scan.dpi, scan.bit_depth
        ((512, 640), 2418.0, 16)
        >>> [round(size, 5) for size in scan.px_mm]  # (row, col) pixel sizes
        [0.01043, 0.01058]
        """
        dpi_xy = _parse_dpi(dpi)
        notes = _Notes()
        scan = _build_scan(
            np.asanyarray(image), dpi_xy=dpi_xy, dpi_source="argument", path=None, notes=notes
        )
        notes.warn(label="image", stacklevel=2)
        return scan

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the image."""
        return self.image.shape

    @property
    def px_mm(self) -> tuple[float, float]:
        """``(px_row_mm, px_col_mm)``: pixel height and width in mm (25.4 / dpi)."""
        dpi_col, dpi_row = self.dpi_xy
        return (25.4 / dpi_row, 25.4 / dpi_col)

    def __repr__(self) -> str:
        rows, cols = self.shape
        kind = "memmap" if isinstance(self.image, np.memmap) else "array"
        return (
            f"Scan({rows} x {cols} {self.image.dtype} {kind}, "
            f"dpi={_format_dpi(self.dpi_xy)} from {self.dpi_source}, path={self.path!r}, "
            f"notes={list(self.notes)!r})"
        )


class _Notes:
    """Remarks on how an input was interpreted: kept in ``Scan.notes``, some also warned."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._to_warn: list[str] = []

    def add(self, message: str, *, warn: bool = False) -> None:
        self.messages.append(message)
        if warn:
            self._to_warn.append(message)

    def warn(self, *, label: str, stacklevel: int) -> None:
        """Issue the warnings, attributed to the caller ``stacklevel`` frames up."""
        for message in self._to_warn:
            warnings.warn(f"{label}: {message}", UserWarning, stacklevel=stacklevel + 1)


# ---------------------------------------------------------------------- load_scan


def load_scan(path, *, dpi=None) -> Scan:
    """Read a record scan from a TIFF, PNG or JPEG file.

    Parameters
    ----------
    path : str or os.PathLike
        The image file. Its format is recognised from its content, not its name (a
        name that says otherwise is noted in ``Scan.notes``).
    dpi : float or (float, float), optional
        Resolution in dots per inch, one value or ``(dpi_x, dpi_y)``. Overrides the
        file's metadata; required when the file records none.

    Returns
    -------
    Scan
        Uncompressed TIFFs in native byte order are memory-mapped (no RAM used); other
        files are decoded into RAM. See the module docstring for peak memory.

    Raises
    ------
    ScanReadError
        Missing, empty, not a TIFF/PNG/JPEG, truncated or corrupt.
    ScanContentError
        Readable but not usable: empty, tiny (< :data:`MIN_SIDE_PX` a side), blank,
        NaN/inf pixels, palette, 1-bit or CMYK images, unsupported pixel types.
    MissingDpiError
        No resolution in the file and no ``dpi=``.
    ParameterError
        A resolution outside :data:`DPI_RANGE` (from ``dpi=`` or from the file).

    Warns
    -----
    UserWarning
        When a colour channel or the first of several pages was chosen (also in
        ``Scan.notes``).
    """
    path = os.fspath(path)
    dpi_override = None if dpi is None else _parse_dpi(dpi)
    _check_input_file(path, ScanReadError)
    kind, read = _scan_reader(path)
    notes = _Notes()
    named = _READ_EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if named is not None and named != kind:
        notes.add(f"named {os.path.splitext(path)[1]} but holds a {kind} image: read as {kind}")
    image, file_dpi = read(path, notes)
    dpi_xy, dpi_source = _resolve_dpi(path, file_dpi, dpi_override, notes)
    scan = _build_scan(image, dpi_xy=dpi_xy, dpi_source=dpi_source, path=path, notes=notes)
    notes.warn(label=path, stacklevel=2)
    return scan


def _check_input_file(path: str, error: type[GroovescanError]) -> None:
    if not os.path.exists(path):
        hint = "" if os.path.isabs(path) else f" (relative to {os.getcwd()})"
        raise error(f"{path}: no such file{hint}; check the path")
    if os.path.isdir(path):
        raise error(f"{path} is a folder; give the path of a file in it")
    if os.path.getsize(path) == 0:
        raise error(f"{path}: the file is empty (0 bytes); copy or save it again")


def _scan_reader(path: str):
    """The file's format and its reader, recognised from the file's first bytes."""
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError as err:
        raise ScanReadError(f"{path}: cannot open the file ({err.strerror or err})") from err
    if head.startswith(_TIFF_MAGICS):
        return "TIFF", _read_tiff
    if head.startswith(_PNG_MAGIC):
        return "PNG", _read_png
    if head.startswith(_JPEG_MAGIC):
        return "JPEG", _read_jpeg
    kind = next((name for magic, name in _OTHER_MAGICS.items() if head.startswith(magic)), None)
    what = f"a {kind} file" if kind else "not a TIFF, PNG or JPEG image"
    raise ScanReadError(
        f"{path}: {what}; groovescan reads TIFF, PNG and JPEG scans - "
        "save the scan as 16-bit greyscale TIFF or PNG"
    )


def _read_tiff(path: str, notes: _Notes):
    """The first page of a TIFF as stored, and its (dpi_x, dpi_y) or None."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            n_pages = len(tif.pages)
            _check_tiff_page(page, path)
            native = page.dtype.itemsize == 1 or tif.byteorder == _NATIVE_BYTEORDER
            if page.is_memmappable and native:
                image = page.asarray(out="memmap")
            else:
                image = page.asarray()
            dpi_xy = _tiff_dpi(page, notes)
            axes, photometric = page.axes, page.photometric
    except GroovescanError:
        raise
    except MemoryError as err:
        raise ScanReadError(
            f"{path}: not enough memory to decode this compressed TIFF; "
            "save it uncompressed so that it can be memory-mapped"
        ) from err
    except Exception as err:  # tifffile and its codecs raise many types on bad files
        raise ScanReadError(
            f"{path}: truncated or corrupt TIFF ({_describe(err)}); copy or export the scan again"
        ) from err

    if n_pages > 1:
        notes.add(f"multi-page TIFF ({n_pages} pages): used the first page", warn=True)
    if axes == "SYX":  # planar colour: channels first
        image = np.moveaxis(image, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise ScanContentError(
            f"{path}: the first TIFF page is a {axes} array, not a 2-D image; "
            "save the scan as a single greyscale image"
        )
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        notes.add("TIFF stored as MinIsWhite (0 = white): values kept as stored, not inverted")
    return image, dpi_xy


def _check_tiff_page(page, path: str) -> None:
    """Refuse, before decoding, what would come out wrong or partial."""
    photometric = page.photometric
    if photometric == tifffile.PHOTOMETRIC.PALETTE:
        raise ScanContentError(
            f"{path}: palette (indexed-colour) TIFF; save the scan as 8- or 16-bit greyscale"
        )
    if photometric not in _TIFF_PHOTOMETRICS:
        name = getattr(photometric, "name", photometric)
        raise ScanContentError(
            f"{path}: unsupported TIFF colour model {name}; save the scan as greyscale or RGB"
        )
    if page.dtype is None:
        raise ScanContentError(
            f"{path}: unsupported TIFF sample format ({page.bitspersample} bits per sample); "
            "save the scan as 8- or 16-bit greyscale"
        )
    _check_pixel_count(page.imagelength * page.imagewidth, path)

    offsets, counts = page.dataoffsets, page.databytecounts
    if not offsets:
        raise ScanReadError(f"{path}: the TIFF holds no image data; copy or export the scan again")
    data_end = max(offset + count for offset, count in zip(offsets, counts))
    file_size = os.path.getsize(path)
    if data_end > file_size:
        raise ScanReadError(
            f"{path}: truncated TIFF: its image data run to byte {data_end} "
            f"but the file has {file_size} bytes; copy or export the scan again"
        )
    stored = sum(counts)
    declared = page.nbytes * page.bitspersample // (8 * page.dtype.itemsize)  # bits packed
    compressed = page.compression != tifffile.COMPRESSION.NONE
    if not compressed and stored < declared:
        raise ScanReadError(
            f"{path}: corrupt TIFF: {declared} bytes of pixels declared, {stored} stored; "
            "copy or export the scan again"
        )
    if compressed and declared > _MAX_COMPRESSION_RATIO * stored:
        raise ScanReadError(
            f"{path}: corrupt TIFF: {declared} bytes of pixels declared but only {stored} "
            "compressed bytes stored; copy or export the scan again"
        )


def _tiff_dpi(page, notes: _Notes) -> tuple[float, float] | None:
    """(dpi_x, dpi_y) from XResolution/YResolution/ResolutionUnit, or None."""
    x = _rational(page.tags.get("XResolution"))
    y = _rational(page.tags.get("YResolution"))
    if x is None and y is None:
        return None
    if x is None or y is None:
        x = y = x if y is None else y
        notes.add("TIFF gives only one of XResolution/YResolution: used it for both")
    unit_tag = page.tags.get("ResolutionUnit")
    unit = tifffile.RESUNIT.INCH if unit_tag is None else unit_tag.value  # TIFF default: inch
    if unit == tifffile.RESUNIT.INCH:
        return (x, y)
    if unit == tifffile.RESUNIT.CENTIMETER:
        return (x * 2.54, y * 2.54)
    notes.add("TIFF resolution has no physical unit (an aspect ratio only): ignored")
    return None


def _rational(tag) -> float | None:
    """A TIFF RATIONAL tag's value as a float; None if absent or zero-denominator."""
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, tuple):
        numerator, denominator = value[:2]
        return numerator / denominator if denominator else None
    return float(value)


def _read_png(path: str, notes: _Notes):
    """A PNG's pixels as stored, and its (dpi_x, dpi_y) or None."""
    try:
        with _strict_pillow(), Image.open(path, formats=["PNG"]) as png:
            png.verify()  # every chunk's CRC up to IEND: catches truncation and corruption
    except Exception as err:  # Pillow raises several types on bad files
        raise ScanReadError(
            f"{path}: truncated or corrupt PNG ({_describe(err)}); copy or export the scan again"
        ) from err
    if not _png_has_end(path):
        raise ScanReadError(
            f"{path}: truncated or corrupt PNG (no complete IEND chunk); "
            "copy or export the scan again"
        )

    width, height, bit_depth, colour_type = _png_header(path)
    if colour_type == 3:
        raise ScanContentError(
            f"{path}: palette (indexed-colour) PNG; save the scan as 8- or 16-bit greyscale"
        )
    if bit_depth < 8:
        raise ScanContentError(
            f"{path}: {bit_depth}-bit PNG: groove edges need grey levels; "
            "save the scan as 8- or 16-bit greyscale"
        )
    _check_pixel_count(width * height, path)
    try:
        with _strict_pillow(), Image.open(path, formats=["PNG"]) as png:
            dpi_xy = _png_dpi(png.info)
            if bit_depth == 16 and colour_type != 0:
                image = _read_png_with_opencv(path, colour_type)  # Pillow would make it 8-bit
            else:
                image = np.asarray(png)
                if bit_depth == 16:  # Pillow gives "I;16" (or int32 "I" in older versions)
                    image = image.astype(np.uint16, copy=False)
    except GroovescanError:
        raise
    except MemoryError as err:
        raise ScanReadError(
            f"{path}: not enough memory to decode this PNG; save it as uncompressed TIFF"
        ) from err
    except Exception as err:
        raise ScanReadError(
            f"{path}: truncated or corrupt PNG ({_describe(err)}); copy or export the scan again"
        ) from err
    return image, dpi_xy


def _png_has_end(path: str) -> bool:
    """Whether the file holds a complete IEND chunk, whose CRC Pillow does not check."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.rfind(_PNG_END) != -1


def _png_header(path: str) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk (verified by Pillow)."""
    with open(path, "rb") as file:
        header = file.read(26)
    return struct.unpack(">IIBB", header[16:26])


def _png_dpi(info: dict) -> tuple[float, float] | None:
    """(dpi_x, dpi_y) from Pillow's reading of pHYs, or None (no pHYs, or no unit).

    PNG stores whole pixels per metre, so 2400 dpi is stored as 94488 /m and reads back
    as 2399.9952 dpi. When a whole dpi value is stored as exactly this number, that is
    what was meant, and it is returned.
    """
    if "dpi" not in info:
        return None
    dpi_xy = []
    for dpi in info["dpi"]:
        per_metre = round(dpi / 0.0254)
        whole = round(per_metre * 0.0254)
        dpi_xy.append(float(whole) if round(whole / 0.0254) == per_metre else per_metre * 0.0254)
    return tuple(dpi_xy)


def _read_png_with_opencv(path: str, colour_type: int) -> np.ndarray:
    """Decode a 16-bit colour PNG in RGB(A) order, or (grey, alpha) for grey + alpha."""
    import cv2

    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ScanReadError(
            f"{path}: cannot decode this 16-bit colour PNG; save the scan as 16-bit greyscale"
        )
    if colour_type == 4:  # OpenCV expands grey + alpha to BGRA
        return image[:, :, [0, 3]]
    code = cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    return cv2.cvtColor(image, code)


def _read_jpeg(path: str, notes: _Notes):
    """A JPEG's pixels as Pillow decodes them (8-bit grey or RGB), and its (dpi_x, dpi_y)
    or None."""
    try:
        with _strict_pillow(), Image.open(path, formats=["JPEG"]) as jpeg:
            if jpeg.mode not in ("L", "RGB"):
                raise ScanContentError(
                    f"{path}: {jpeg.mode} JPEG; groovescan reads greyscale and RGB JPEGs - "
                    "save the scan as 8- or 16-bit greyscale"
                )
            width, height = jpeg.size
            _check_pixel_count(width * height, path)
            exif = _jpeg_exif(jpeg, notes)
            dpi_xy = _jpeg_dpi(jpeg.info, exif, notes)
            n_frames = getattr(jpeg, "n_frames", 1)
            jpeg.load()  # decodes the whole image: raises if it is cut short
            image = _pillow_pixels(jpeg)
    except GroovescanError:
        raise
    except MemoryError as err:
        raise ScanReadError(
            f"{path}: not enough memory to decode this JPEG; convert it to uncompressed TIFF "
            "on a machine with more memory, so that it can be memory-mapped"
        ) from err
    except Exception as err:  # Pillow raises several types on bad files
        truncated = "truncated" in str(err).lower()
        what = "truncated JPEG: the file ends before the image does" if truncated \
            else "truncated or corrupt JPEG"
        raise ScanReadError(
            f"{path}: {what} ({_describe(err)}); copy or export the scan again"
        ) from err
    if n_frames > 1:
        notes.add(f"multi-picture JPEG ({n_frames} pictures): used the first", warn=True)
    orientation = exif.get(_EXIF_ORIENTATION)
    if orientation not in (None, 1):
        notes.add(
            f"EXIF orientation {orientation} (turn or mirror for display) ignored: "
            "pixels used as stored"
        )
    return image, dpi_xy


def _pillow_pixels(picture) -> np.ndarray:
    """A decoded 8-bit Pillow image as a new array, copied in blocks of rows.

    ``np.asarray(picture)`` would hold three copies at its peak (Pillow's pixels, the
    chunks of ``tobytes()`` and their join); this holds two and a block.
    """
    width, height = picture.size
    n_bands = len(picture.getbands())
    image = np.empty((height, width, n_bands) if n_bands > 1 else (height, width), np.uint8)
    rows = max(1, _BLOCK_BYTES // (width * n_bands))
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        image[start:stop] = np.asarray(picture.crop((0, start, width, stop)))
    return image


_EXIF_X_RESOLUTION, _EXIF_Y_RESOLUTION, _EXIF_RESOLUTION_UNIT = 0x011A, 0x011B, 0x0128
_EXIF_ORIENTATION = 0x0112


def _jpeg_exif(jpeg, notes: _Notes) -> dict:
    """The first IFD of the JPEG's EXIF block (empty if none or unreadable)."""
    if "exif" not in jpeg.info:
        return {}
    try:
        return dict(jpeg.getexif())
    except Exception:  # a damaged EXIF block must not cost the pixels
        notes.add("unreadable EXIF block: ignored")
        return {}


def _jpeg_dpi(info: dict, exif: dict, notes: _Notes) -> tuple[float, float] | None:
    """(dpi_x, dpi_y) from the JFIF density, else from EXIF; None if neither has one.

    Pillow's own ``info["dpi"]`` is not used: without a JFIF density it falls back on
    EXIF XResolution alone, and on 72 dpi when EXIF has none.
    """
    jfif = _jfif_dpi(info)
    from_exif = _exif_dpi(exif, notes)
    if jfif is not None:
        if from_exif is not None and not np.allclose(jfif, from_exif, rtol=1e-3):
            notes.add(
                f"JFIF says {_format_dpi(jfif)} dpi, EXIF {_format_dpi(from_exif)} dpi: "
                "used JFIF's"
            )
        return jfif
    if from_exif is None and info.get("jfif_unit") == 0:
        notes.add("JPEG resolution has no physical unit (JFIF aspect ratio only): ignored")
    return from_exif


def _jfif_dpi(info: dict) -> tuple[float, float] | None:
    """(dpi_x, dpi_y) from the JFIF APP0 density: unit 1 dots/inch, 2 dots/cm; unit 0
    (an aspect ratio only), a zero density or no JFIF segment give None."""
    unit, density = info.get("jfif_unit"), info.get("jfif_density")
    if unit not in (1, 2) or density is None or not all(density):
        return None
    scale = 1.0 if unit == 1 else 2.54
    return (density[0] * scale, density[1] * scale)


def _exif_dpi(exif: dict, notes: _Notes) -> tuple[float, float] | None:
    """(dpi_x, dpi_y) from EXIF XResolution/YResolution/ResolutionUnit, or None."""
    x = _exif_number(exif.get(_EXIF_X_RESOLUTION))
    y = _exif_number(exif.get(_EXIF_Y_RESOLUTION))
    if x is None and y is None:
        return None
    if x is None or y is None:
        x = y = x if y is None else y
        notes.add("EXIF gives only one of XResolution/YResolution: used it for both")
    unit = exif.get(_EXIF_RESOLUTION_UNIT, 2)  # EXIF default: inch
    if unit == 2:
        return (x, y)
    if unit == 3:
        return (x * 2.54, y * 2.54)
    notes.add("EXIF resolution has no physical unit (an aspect ratio only): ignored")
    return None


def _exif_number(value) -> float | None:
    """An EXIF RATIONAL (Pillow's IFDRational, or a (num, den) pair) as a positive float,
    or None if absent, zero, or with a zero denominator."""
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0] / value[1] if value[1] else None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


_PILLOW_LOCK = threading.Lock()


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    """Pillow's global settings while a scan is read, restored afterwards.

    - no "decompression bomb" limit (179 Mpx), which a 2400 dpi scan of a record
      exceeds; :func:`_check_pixel_count` applies our own;
    - ``ImageFile.LOAD_TRUNCATED_IMAGES`` off, whatever the caller set: a truncated
      file is an error, never an image whose missing part is filled with grey.
    """
    with _PILLOW_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _check_pixel_count(n_pixels: int, path: str) -> None:
    if n_pixels > MAX_PIXELS:
        raise ScanContentError(
            f"{path}: the image has {n_pixels / 1e9:.1f} Gpx, more than the "
            f"{MAX_PIXELS / 1e9:.1f} Gpx groovescan accepts; scan at a lower resolution"
        )


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# ------------------------------------------------------------------------ the dpi


_DPI_RANGE_TEXT = f"{DPI_RANGE[0]:g}-{DPI_RANGE[1]:g}"


def _parse_dpi(dpi) -> tuple[float, float]:
    """A caller's ``dpi`` (a number or an (x, y) pair) as checked (dpi_x, dpi_y)."""
    try:
        if _is_real(dpi):
            dpi_xy = (float(dpi), float(dpi))
        else:
            x, y = dpi
            if not (_is_real(x) and _is_real(y)):
                raise TypeError
            dpi_xy = (float(x), float(y))
    except (TypeError, ValueError):
        raise ParameterError(
            f"dpi must be a number or an (x, y) pair of numbers, got {dpi!r}; "
            "e.g. dpi=2400 (CLI: --dpi 2400)"
        ) from None
    if _dpi_out_of_range(dpi_xy):
        raise ParameterError(
            f"dpi={dpi!r} is outside the accepted range {_DPI_RANGE_TEXT} dots per inch; "
            "give the resolution the scan was made at, e.g. dpi=2400 (CLI: --dpi 2400)"
        )
    return dpi_xy


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _dpi_out_of_range(dpi_xy) -> bool:
    low, high = DPI_RANGE
    return not all(math.isfinite(v) and low <= v <= high for v in dpi_xy)


def _format_dpi(dpi_xy) -> str:
    x, y = dpi_xy
    return f"{x:.8g}" if x == y else f"{x:.8g} x {y:.8g}"


def _resolve_dpi(path, file_dpi, dpi_override, notes: _Notes):
    """The (dpi_x, dpi_y) to use, and where it came from."""
    if dpi_override is not None:
        if file_dpi is not None and not np.allclose(file_dpi, dpi_override, rtol=1e-9):
            notes.add(
                f"dpi={_format_dpi(dpi_override)} overrides the file's {_format_dpi(file_dpi)}"
            )
        return dpi_override, "argument"
    if file_dpi is None:
        raise MissingDpiError(
            f"{path}: the file records no scan resolution; pass the resolution it was "
            "scanned at with dpi=N (CLI: --dpi N), e.g. dpi=2400"
        )
    if _dpi_out_of_range(file_dpi):
        raise ParameterError(
            f"{path}: the file says {_format_dpi(file_dpi)} dpi, outside the accepted range "
            f"{_DPI_RANGE_TEXT} (software often writes a placeholder such as 72); "
            "pass the real resolution with dpi=N (CLI: --dpi N)"
        )
    return tuple(float(v) for v in file_dpi), "metadata"


# ------------------------------------------------------------- checking the image


def _build_scan(image, *, dpi_xy, dpi_source, path, notes: _Notes) -> Scan:
    """Check an image as read, reduce it to one channel, and wrap it as a Scan."""
    label = path or "image"
    if image.size == 0:
        raise ScanContentError(f"{label}: the image is empty (shape {image.shape})")
    _check_pixel_type(image, label)
    image = _single_channel(image, label, notes)
    if image.dtype.kind == "f" and image.dtype != np.float32:
        notes.add(f"{image.dtype} pixels converted to float32")
        image = image.astype(np.float32)
    _check_size(image, label)
    _check_values(image, label)
    image = image.view()  # read-only view: the caller's array stays writable
    image.flags.writeable = False
    dpi_x, dpi_y = dpi_xy
    return Scan(
        image=image,
        dpi=(dpi_x + dpi_y) / 2,
        dpi_xy=(dpi_x, dpi_y),
        path=path,
        bit_depth=8 * image.dtype.itemsize,
        dpi_source=dpi_source,
        notes=tuple(notes.messages),
    )


def _check_pixel_type(image: np.ndarray, label: str) -> None:
    if image.dtype in (np.uint8, np.uint16) or image.dtype.kind == "f":
        return
    if image.dtype == np.bool_:
        raise ScanContentError(
            f"{label}: 1-bit (black and white) image: groove edges need grey levels; "
            "rescan in 8- or 16-bit greyscale"
        )
    raise ScanContentError(
        f"{label}: unsupported pixel type {image.dtype}; expected 8- or 16-bit unsigned "
        "integers or floats - rescan, or convert the image without rescaling it"
    )


def _single_channel(image: np.ndarray, label: str, notes: _Notes) -> np.ndarray:
    """The image itself if greyscale, else the channel to decode."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (1, 2):
        if image.shape[2] == 2:
            notes.add("grey + alpha image: ignored the alpha channel")
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return _most_contrasted_channel(image, notes)
    raise ScanContentError(
        f"{label}: expected a greyscale image (rows, cols) or a colour one "
        f"(rows, cols, 3 or 4), got shape {image.shape}; for a stack, pass one image"
    )


def _most_contrasted_channel(image: np.ndarray, notes: _Notes) -> np.ndarray:
    """The colour channel with the largest spread of values (standard deviation over
    a sample of rows), green on ties (the sharpest channel of most scanners)."""
    sample = _sample_rows(image)
    spread = [float(np.std(sample[:, :, c])) for c in range(3)]
    best = max((1, 0, 2), key=lambda c: spread[c])
    kind, alpha = ("RGBA", "; ignored the alpha channel") if image.shape[2] == 4 else ("RGB", "")
    notes.add(
        f"{kind} scan: used the {_CHANNEL_NAMES[best]} channel, which has the most contrast "
        f"(standard deviation R/G/B {spread[0]:.4g}/{spread[1]:.4g}/{spread[2]:.4g}){alpha}",
        warn=True,
    )
    channel = image[:, :, best]
    # A memory-mapped file stays mapped; a decoded image gives up its other channels.
    return channel if isinstance(image, np.memmap) else channel.copy()


def _check_size(image: np.ndarray, label: str) -> None:
    rows, cols = image.shape
    if min(rows, cols) < MIN_SIDE_PX:
        raise ScanContentError(
            f"{label}: the image is only {rows} x {cols} px, too small for a record scan "
            f"(at least {MIN_SIDE_PX} px a side; a disc at 2400 dpi is ~17000 px across)"
        )


def _check_values(image: np.ndarray, label: str) -> None:
    """Refuse NaN/inf pixels and blank (constant) images."""
    if image.dtype.kind == "f":
        n_bad = sum(int(np.count_nonzero(~np.isfinite(block))) for block in _row_blocks(image))
        if n_bad:
            raise ScanContentError(
                f"{label}: the image has {n_bad} NaN or infinite pixel(s); replace them "
                "(e.g. with the background level) before decoding"
            )
    if _is_constant(image):
        raise ScanContentError(
            f"{label}: the image is blank (every pixel is {image[0, 0].item()}); "
            "check the scan - the wrong file, or the scanner's lamp or lid?"
        )


def _is_constant(image: np.ndarray) -> bool:
    sample = _sample_rows(image)
    if sample.min() != sample.max():  # the usual answer, from a few rows only
        return False
    first = image[0, 0]
    return not any(np.any(block != first) for block in _row_blocks(image))


def _sample_rows(image: np.ndarray, n_rows: int = 256) -> np.ndarray:
    """About ``n_rows`` evenly spaced whole rows (cheap to read from a memmap)."""
    return image[:: max(1, image.shape[0] // n_rows)]


def _row_blocks(image: np.ndarray) -> Iterator[np.ndarray]:
    """The image in blocks of whole rows, ~64 MB each."""
    rows_per_block = max(1, _BLOCK_BYTES // max(1, image[0].nbytes))
    for start in range(0, image.shape[0], rows_per_block):
        yield image[start : start + rows_per_block]


# ------------------------------------------------------------------ writing files


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


# ---------------------------------------------------------- safe output plumbing


def _output_kind(path: str, kinds: dict[str, str], what: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if extension not in kinds:
        raise ParameterError(
            f"{path}: cannot write {what} as {extension or 'a file without extension'!r}; "
            f"use one of {', '.join(kinds)}"
        )
    return kinds[extension]


@contextlib.contextmanager
def atomic_output(path: str, *, overwrite: bool) -> Iterator[str]:
    """Yield a new temporary file next to ``path``; on success rename it to ``path``.

    In the same folder, the rename is atomic: ``path`` is the old file or the complete
    new one, never a partial write. On any error the temporary file is removed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(
            f"{path}: the folder {folder} does not exist; create it or choose another path"
        )
    if os.path.isdir(path):
        raise OutputError(f"{path} is a folder; give a file name")
    if not overwrite and os.path.lexists(path):
        raise OutputError(_exists_message(path))
    with _write_errors(path):
        tmp = _new_temp_file(folder, os.path.basename(path))
    try:
        yield tmp
        if not overwrite and os.path.lexists(path):  # appeared while we were writing
            raise OutputError(_exists_message(path))
        with _write_errors(path):
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _new_temp_file(folder: str, name: str) -> str:
    """Create an empty, hidden, uniquely named file in ``folder`` (default permissions)."""
    while True:
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def _write_errors(path: str) -> Iterator[None]:
    """Report an operating-system failure while writing ``path`` as OutputError."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(
            f"{path}: could not write the file ({err.strerror or err}); nothing was changed - "
            "check the free space and permissions, or choose another folder"
        ) from err


def _exists_message(path: str) -> str:
    return f"{path} already exists; pass overwrite=True (CLI: --force) to replace it"


def jsonable(value):
    """``value`` in plain JSON types (dicts, lists, numbers, strings, None).

    numpy arrays and scalars become lists and Python numbers; non-finite floats become
    None, since strict JSON has no NaN or infinity; anything else becomes its string.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)                       # paths, enums: their readable form


def peak_normalise(audio, *, peak_dbfs=-1.0):
    """Scale ``audio`` so its peak is at ``peak_dbfs``; returns (scaled float32, gain in dB).

    Decoded groove velocity is ~0.05 m/s, far below a file's full scale. Callers print
    or record the gain: it is never applied silently. Silent or non-finite audio is
    returned unscaled with a gain of 0 dB.
    """
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0 or not np.isfinite(peak):
        return audio, 0.0
    gain = 10 ** (peak_dbfs / 20) / peak
    return (audio * gain).astype(np.float32), float(20 * np.log10(gain))
