"""Click repair and noise-aware filtering of 1-D groove signals.

The decoder measures, for every output sample, the lateral position of the groove's two
walls. Two kinds of error survive the measurement, and this module repairs both:

* **Clicks.** Dust, hairs and scratches crossing the groove make 0.5–1 % of the samples
  gross errors. On their own they can pull the SNR from ~20 dB to a few dB, so they are
  found (:func:`detect_clicks`) and filled in (:func:`repair_gaps`); :func:`declick` does
  both.
* **Blue noise.** Sub-pixel position noise, differentiated to velocity, rises 6 dB/octave
  and sits mostly above 1–2 kHz where a bone record carries little music. Its spectrum is
  measured from the data (:func:`estimate_noise_psd`) and removed by a Wiener-type
  spectral gain (:func:`denoise`).

Everything here works on plain 1-D float arrays and knows nothing of images, so each step
can be tested on signals whose answer is known.

Where each step belongs in the pipeline
---------------------------------------
Click detection and repair work on the **displacement** (groove position against time):
its spectrum falls steeply with frequency, so a short autoregressive (AR) model predicts
it well and a gross error stands out in the prediction error. Denoising works on the
**audio** (velocity, after the playback curve), with a noise spectrum measured on that same
representation — e.g. from half the difference of the two walls, passed through the same
timebase and playback curve.

Methods (ideas from the literature, code written here)
------------------------------------------------------
* Detection: the two-sided AR interpolation error of every sample (the prediction-error
  filter applied forwards, then backwards), as in Godsill & Rayner's AR-based click
  detectors, fitted blockwise and robustly, thresholded in robust (MAD) sigmas; then
  each detection is narrowed to the samples that explain it (sparse deconvolution by
  orthogonal matching pursuit).
* Repair: least-squares AR interpolation (LSAR; Janssen, Veldhuis & Vries; Godsill &
  Rayner): the missing samples minimise the AR prediction error around them. The normal
  equations are banded and built in banded form; gaps too long to interpolate, or at
  the ends of the signal, are bridged by a smooth near-silent curve.
* Noise: minimum statistics (a bias-corrected low quantile over time of the smoothed
  periodogram, after Martin), the quietest frames, or the difference of two measurements.
* Suppression: Wiener gain with the decision-directed a-priori SNR (Ephraim & Malah) and a
  gain floor against musical noise.
"""
from __future__ import annotations

from ._declick import declick
from ._regions import mask_to_regions, regions_to_mask
from .clicks import detect_clicks
from .gaps import repair_gaps
from .noise import denoise, estimate_noise_psd
from .results import ClickMask, DeclickReport, NoisePSD

__all__ = [
    "ClickMask",
    "DeclickReport",
    "NoisePSD",
    "detect_clicks",
    "repair_gaps",
    "declick",
    "estimate_noise_psd",
    "denoise",
    "mask_to_regions",
    "regions_to_mask",
]
