"""The scan resolution: a caller's ``dpi`` parsed and checked, or the file's, whichever wins."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import MissingDpiError, ParameterError
from ._common import DPI_RANGE, _Notes


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
