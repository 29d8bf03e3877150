"""Results of the restore steps: detected clicks, the declick report, a noise PSD."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClickMask:
    """Samples judged corrupted by :func:`detect_clicks`.

    Attributes
    ----------
    mask : ndarray of bool, shape (n,)
        True where a sample is corrupted and should be repaired.
    regions : ndarray of int64, shape (k, 2)
        The runs of True in `mask` as half-open ``(start, stop)`` sample indices, sorted.
    threshold : float
        Detection threshold used, in robust sigmas of the AR interpolation error.
    ar_order : int
        Order of the AR model used for detection.
    sr : float
        Sample rate of the signal, Hz.
    """

    mask: np.ndarray
    regions: np.ndarray
    threshold: float
    ar_order: int
    sr: float

    @property
    def n_clicks(self) -> int:
        """Number of separate corrupted regions."""
        return int(len(self.regions))

    @property
    def fraction(self) -> float:
        """Fraction of the samples flagged (0–1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@dataclass(frozen=True)
class DeclickReport:
    """What :func:`declick` found and how it repaired it.

    Attributes
    ----------
    clicks : ClickMask
        The detected corrupted samples.
    bridged : ndarray of int64, shape (m, 2)
        Regions longer than `max_gap` samples or touching an end of the signal, as
        ``(start, stop)``: they were bridged by a smooth, near-silent curve instead of
        interpolated (see :func:`repair_gaps`). A caller may report or mute them.
    max_gap : int
        Longest region (samples) that was interpolated by LSAR.
    """

    clicks: ClickMask
    bridged: np.ndarray
    max_gap: int


@dataclass(frozen=True)
class NoisePSD:
    """A one-sided noise power spectral density.

    Unpacks like the output of :func:`scipy.signal.welch`:
    ``freqs_hz, psd = estimate_noise_psd(x, sr=sr)``.

    Attributes
    ----------
    freqs_hz : ndarray of float64, shape (nperseg // 2 + 1,)
        Frequencies, Hz.
    psd : ndarray of float64, same shape
        One-sided noise PSD, (signal unit)² / Hz (``scipy.signal.welch`` density scaling:
        white noise of variance σ² has ``psd = 2 σ² / sr``).
    method : str
        How it was estimated: ``"minimum"``, ``"quiet"`` or ``"difference"``.
    nperseg : int
        Segment length used, samples.
    """

    freqs_hz: np.ndarray
    psd: np.ndarray
    method: str
    nperseg: int

    def __iter__(self):
        return iter((self.freqs_hz, self.psd))
