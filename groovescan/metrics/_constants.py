"""Tuning constants of :func:`~groovescan.metrics.compare`'s alignment and summary."""
from __future__ import annotations


# Alignment, in five steps (see compare's notes):
_SEED_CHUNK_S = 0.5          # reference chunk searched over (lag, speed) to start
_SEED_CANDIDATES = 4         # chunks tried, the loudest of as many stretches
_SEED_SIGMAS = 7.0           # a seed must beat chance correlation by this many sigma
_SEED_BAND_FRACTION = 0.2    # seed band holds at least this fraction of the energy
_TRACK_RADIUS_S = 0.005      # lag search either side of the prediction, window to window
_FIRST_RADIUS_S = 0.02       # wider on the first window: the seed used a narrower band
_LOCK_SIGMAS = 5.0           # a match must beat chance correlation by this many sigma
_LOCK_RELATIVE = 0.25        # ... and reach this fraction of the typical correlation
_WIDE_SIGMAS = 7.0           # a re-acquired lag (searched over seconds) likewise
_WIDE_RELATIVE = 0.5         # ... and must reach this fraction of the typical correlation
# Tones and chords have so few degrees of freedom that chance correlation is high and
# the sigma rules above could never be met; a correlation this high always counts:
_SURE_MATCH = 0.7            # ... for a seed or a jump
_SURE_LOCK = 0.5             # ... for holding on to a lag
_TIE = 0.01                  # peaks this close to the best are ties: take the simplest
_MIN_MATCHED = 0.8           # below this fraction of loud windows matched: "partial"
_MIN_PIECE_WINDOWS = 3       # shorter stretches are treated as spurious
_SILENT_DB = -40.0           # windows this far below the loud ones carry no lag
_REFINE_ITERATIONS = 4       # Gauss-Newton steps per window
_CURVE_PASSES = 2            # re-measurements along the fitted lag curve
_SMOOTHING = 1e-4            # curvature penalty of the lag spline, relative to the data
_IRLS_ITERATIONS = 5
_TUKEY_C = 4.685             # biweight constant (95 % efficiency for Gaussian errors)
_LATER_PENALTY = 0.25        # where two stretches both fit, the earlier one is kept
# a jump within 3 % of whole turns is a skip: the decode's timebase holds exactly
# 60 / rpm s a turn, so a groove jump shifts the lag by that, give or take the
# lag fit's milliseconds; repeated music matches at other lags too
_REVOLUTION_TOLERANCE = 0.03
_CLUSTER_S = 2.0             # jumps closer than this are one wander of the comparison
