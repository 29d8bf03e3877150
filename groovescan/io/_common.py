"""Limits, constants and the notes on an input's interpretation, shared by the io modules."""
from __future__ import annotations

import warnings

import numpy as np


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

# Blocks for whole-image passes over memory-mapped scans.
_BLOCK_BYTES = 64 * 2**20


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
