"""The interpolating reader: a band-limited signal read at any time."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy import signal as sps


# --- the interpolating reader -------------------------------------------------------


class _Sampler:
    """A band-limited signal read at any time (s), zero outside its duration.

    Quintic B-spline interpolation of a copy oversampled so that its content lies
    below 1/8 of the rate: the interpolation error is then below -90 dB.
    """

    def __init__(self, x, *, rate: float, f_max: float | None = None, order: int = 5):
        x = np.asarray(x, dtype=np.float64)
        up = 1 if f_max is None else max(1, int(np.ceil(8.0 * f_max / rate)))
        samples = _upsample(x, up) if up > 1 else x
        self.rate = rate * up
        self.duration_s = (x.size - 1) / rate
        self.order = order
        self._coef = ndimage.spline_filter1d(samples, order=order, mode="mirror")

    def inside(self, t_s) -> np.ndarray:
        t_s = np.asarray(t_s)
        tolerance = 1e-6 / self.rate  # the last sample must not be lost to rounding
        return (t_s >= -tolerance) & (t_s <= self.duration_s + tolerance)

    def __call__(self, t_s) -> np.ndarray:
        t_s = np.asarray(t_s, dtype=np.float64)
        pos = (t_s * self.rate).reshape(1, -1)
        values = ndimage.map_coordinates(self._coef, pos, order=self.order, prefilter=False,
                                         mode="mirror").reshape(t_s.shape)
        return np.where(self.inside(t_s), values, 0.0)

    def derivative(self, t_s) -> np.ndarray:
        """Time derivative (units per second), by a central difference of the spline."""
        h = 0.5 / self.rate
        return (self(t_s + h) - self(t_s - h)) / (2 * h)


def _upsample(x, up):
    """Upsample by an integer factor, passing the original samples through unchanged.

    Kaiser-windowed sinc, 24 zero crossings each side, beta 9: error below -100 dB
    for content up to 0.7 times the input Nyquist frequency. (resample_poly's default
    filter is shorter and has a gain error of 6e-4, which would show up as ``gain``.)
    """
    half = 24 * up
    taps = sps.firwin(2 * half + 1, 1.0 / up, window=("kaiser", 9.0))
    taps /= taps[half] * up  # resample_poly multiplies by `up`; centre tap -> exactly 1
    return sps.resample_poly(x, up, 1, window=taps)
