"""The :class:`Scan`: a checked greyscale record scan and its resolution."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, ScanContentError
from ._common import DPI_SOURCES, SCAN_DTYPES, _Notes
from .checks import _check_pixel_type, _check_size, _check_values, _single_channel
from .dpi import _DPI_RANGE_TEXT, _dpi_out_of_range, _format_dpi, _parse_dpi


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
