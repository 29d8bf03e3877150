""":func:`load_scan`: recognise a scan file's format and read its TIFF, PNG or JPEG pixels."""
from __future__ import annotations

import contextlib
import math
import mmap
import os
import struct
import sys
import threading
from collections.abc import Iterator

import numpy as np
import tifffile
from PIL import Image, ImageFile

from ..errors import GroovescanError, ScanContentError, ScanReadError
from ._common import _BLOCK_BYTES, _SCAN_EXTENSIONS, MAX_PIXELS, _Notes
from .dpi import _format_dpi, _parse_dpi, _resolve_dpi
from .scan import Scan, _build_scan


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

# A compressed TIFF page that claims more than this many times its stored bytes is
# corrupt: deflate cannot exceed ~1032:1, and a grooved surface is far from blank.
_MAX_COMPRESSION_RATIO = 1000


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
