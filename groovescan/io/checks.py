"""Checks of an image as read: pixel type, colour channel, size, NaN/inf and blank pixels."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import ScanContentError
from ._common import _BLOCK_BYTES, MIN_SIDE_PX, _Notes


_CHANNEL_NAMES = ("red", "green", "blue")


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
