"""Constants and small helpers shared by the renderer's modules: seeded random streams,
smooth noise, blurred half-plane coverage."""
from __future__ import annotations

import math
import zlib

import numpy as np
from scipy import ndimage, special


TWO_PI = 2.0 * math.pi
_TILE_ROWS = 16            # rows rendered at once: ~0.3 M pixels, a few MB per temporary
_SUPERSAMPLE = 4           # dust, hairs and scratches are drawn at 4x and area-averaged
_ORIENTATIONS = 17         # pixel-footprint tables between radial = row and radial = col
_TABLE_STEP_MM = 0.0002    # 0.2 um: cross-section table step, far below any blur
_SPIRAL_STEPS_PER_TURN = 1024
_FAR_MM = 1.0e3            # "no groove here": an offset far outside every table
_FOCUS_LEVELS = 8              # cross-section tables between sharp and most defocused


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per component, so turning one effect on or off
    never changes another."""
    return np.random.default_rng([int(seed), zlib.crc32(stream.encode())])


def _smooth_noise(shape: tuple[int, ...], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise normalised to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return noise / max(noise.std(), 1e-12)


def _erfc_cover(distance: np.ndarray, sigma: float) -> np.ndarray:
    """Blurred coverage of a half-plane: 1 well inside (distance < 0), 0 well outside."""
    return 0.5 * special.erfc(distance / (math.sqrt(2.0) * sigma))
