"""Objective measures of a decode: SNR after alignment, THD+N, frequency response, wow & flutter.

These functions judge the decoder's round trips (render a scan from known audio, decode
it, compare with the audio), so they are built to be hard to fool:

* :func:`compare` forgives only what a turntable would also forgive -- a delay, a gain,
  the polarity, a constant speed error and slow wow -- and reports each of them
  separately. Noise, clicks, distortion, and skipped or repeated groove turns stay in
  the error.
* The alignment has few degrees of freedom (a smooth lag curve per stretch between
  skips), so it cannot follow noise: an unrelated signal scores at or below 0 dB.

Conventions
-----------
Signals are 1-D arrays sampled at ``sr`` Hz. Times are in seconds. A *lag* is decoded
time minus reference time: the sample of the reference at time ``t`` is found in the
decode at time ``t + lag(t)`` (positive: the decode is late). SNRs are power ratios in
dB. Everything is computed in float64: SNRs of 60 dB and lags of nanoseconds need it.
"""
from __future__ import annotations

from .comparison import compare
from .helpers import band_limit, snr_db
from .response import frequency_response
from .results import AlignmentWarning, Comparison, FrequencyResponse, LagTrack, ThdN, WowFlutter
from .thd import thd_n
from .wow import flutter_weighting_db, wow_flutter

__all__ = [
    "AlignmentWarning",
    "Comparison",
    "FrequencyResponse",
    "LagTrack",
    "ThdN",
    "WowFlutter",
    "band_limit",
    "compare",
    "flutter_weighting_db",
    "frequency_response",
    "snr_db",
    "thd_n",
    "wow_flutter",
]
