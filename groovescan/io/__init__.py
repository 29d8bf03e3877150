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

from ._common import DPI_RANGE, MIN_SIDE_PX, SR_RANGE
from ._common import DPI_SOURCES as DPI_SOURCES
from ._common import MAX_PIXELS as MAX_PIXELS
from ._common import SCAN_DTYPES as SCAN_DTYPES
from .load import load_scan
from .output import atomic_output as atomic_output
from .output import jsonable as jsonable
from .output import peak_normalise as peak_normalise
from .scan import Scan
from .write import create_scan_memmap, read_audio, save_scan, write_audio

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
