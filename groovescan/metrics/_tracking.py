"""Alignment steps 2 and 3 of :func:`~groovescan.metrics.compare`: seed, track."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from ._constants import (
    _FIRST_RADIUS_S,
    _LOCK_RELATIVE,
    _LOCK_SIGMAS,
    _MIN_PIECE_WINDOWS,
    _REVOLUTION_TOLERANCE,
    _SEED_BAND_FRACTION,
    _SEED_CANDIDATES,
    _SEED_CHUNK_S,
    _SEED_SIGMAS,
    _SILENT_DB,
    _SURE_LOCK,
    _SURE_MATCH,
    _TIE,
    _TRACK_RADIUS_S,
    _WIDE_RELATIVE,
    _WIDE_SIGMAS,
)
from ._sampler import _Sampler
from .helpers import band_limit


# --- step 2: seed -------------------------------------------------------------------


@dataclass(frozen=True)
class _Peak:
    lag_s: float
    rho: float   # signed normalised correlation at the peak


@dataclass(frozen=True)
class _Seed:
    time_s: float
    lag_s: float
    slope: float  # d(lag)/dt
    rho: float


def _local_peak(window, dec: _Sampler, *, rate, centre_s, lag_s, slope, radius_s) -> _Peak:
    """Correlation peak of a reference window (centred at ``centre_s``) in the decode.

    The decode is read along the predicted timebase ``u = centre + lag + (1 + slope)
    (t - centre)``, so a speed error does not smear the peak, at offsets up to
    ``radius_s`` either side.
    """
    m = window.size
    k_max = max(2, int(np.ceil(radius_s * rate)))
    scale = 1.0 + slope
    first_s = centre_s + lag_s - scale * ((m - 1) / 2 + k_max) / rate
    v = dec(first_s + scale * np.arange(m + 2 * k_max) / rate)
    c = sps.correlate(v, window, mode="valid")
    energy = np.concatenate([[0.0], np.cumsum(v * v)])
    sliding = energy[m:] - energy[:-m]
    denom = np.sqrt(np.maximum(sliding, 0.0) * np.dot(window, window))
    rho = np.divide(c, denom, out=np.zeros_like(c), where=denom > 1e-12 * denom.max() + 1e-300)
    k = _nearest_best_peak(np.abs(rho), k_max)
    offset = k + _parabolic_offset(np.abs(rho), k) - k_max
    return _Peak(lag_s=lag_s + scale * offset / rate, rho=float(rho[k]))


def _nearest_best_peak(a, centre) -> int:
    """Index of the local maximum of ``a`` nearest ``centre`` among those within
    ``_TIE`` of the highest. Periodic signals (tones, chords) correlate almost equally
    at every period; the prediction, not a rounding error, should pick one."""
    top = a.max()
    is_peak = np.r_[a[0] >= a[1], (a[1:-1] >= a[:-2]) & (a[1:-1] >= a[2:]), a[-1] >= a[-2]]
    candidates = np.flatnonzero(is_peak & (a >= (1 - _TIE) * top))
    if candidates.size == 0:
        return int(np.argmax(a))
    return int(candidates[np.argmin(np.abs(candidates - centre))])


def _parabolic_offset(y, k) -> float:
    """Sub-sample position of a peak at ``k`` from a parabola through three samples."""
    if k <= 0 or k >= y.size - 1:
        return 0.0
    curvature = y[k - 1] - 2 * y[k] + y[k + 1]
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (y[k - 1] - y[k + 1]) / curvature, -0.5, 0.5))


def _find_seed(ref_band, dec_band, *, sr, band, max_delay_s, max_speed_error) -> _Seed | None:
    top = _seed_band_top(ref_band, sr=sr, band=band)
    step = max(1, int(sr // (2.5 * top)))
    rate = sr / step
    seed_band = (band[0], top)
    ref = sps.resample_poly(band_limit(ref_band, sr=sr, band=seed_band), 1, step)
    # Cubic interpolation is plenty to locate a peak; the refinement is done later.
    dec = _Sampler(sps.resample_poly(band_limit(dec_band, sr=sr, band=seed_band), 1, step),
                   rate=rate, order=3)
    chunk = int(round(min(_SEED_CHUNK_S, ref.size / rate / 3) * rate))
    # Speed grid: the residual drift across the chunk stays below ~1/5 period of `top`.
    resolution = 0.8 / (2 * top * chunk / rate)
    slopes = _slope_grid(max_speed_error, resolution)
    # Trust a peak only well above chance; a line spectrum (few tones) has a lower
    # statistical bandwidth, so a higher chance level, than noise.
    needed = min(_SURE_MATCH,
                 _SEED_SIGMAS * _chance_rho(ref, rate=rate, band=seed_band, duration_s=chunk / rate))
    best = None
    for start in _loudest_chunks(ref, chunk, _SEED_CANDIDATES):
        window = ref[start:start + chunk]
        centre_s = (start + (chunk - 1) / 2) / rate
        # Centre each search on a zero delay at t = 0 for its speed.
        seeds = [_Seed(time_s=centre_s, lag_s=peak.lag_s, slope=slope, rho=peak.rho)
                 for slope in slopes
                 for peak in [_local_peak(window, dec, rate=rate, centre_s=centre_s,
                                          lag_s=slope * centre_s, slope=slope,
                                          radius_s=max_delay_s)]]
        top = max(abs(sd.rho) for sd in seeds)
        # Ties (periodic signals) go to the smallest speed error: slopes are in that order.
        chunk_best = next(sd for sd in seeds if abs(sd.rho) >= (1 - _TIE) * top)
        if best is None or abs(chunk_best.rho) > abs(best.rho):
            best = chunk_best
        if abs(best.rho) >= (1 + needed) / 2:
            break  # unambiguous: the other chunks would only confirm it
    if best is None or abs(best.rho) < needed:
        return None
    return best


def _seed_band_top(ref_band, *, sr, band) -> float:
    """Upper edge of the lowest sub-band holding a fifth of the reference's energy."""
    f, p = sps.welch(ref_band, fs=sr, nperseg=min(ref_band.size, 4096))
    sel = (f >= band[0]) & (f <= band[1])
    cumulative = np.cumsum(p[sel])
    f20 = f[sel][np.searchsorted(cumulative, _SEED_BAND_FRACTION * cumulative[-1])]
    return float(min(band[1], max(f20, 4 * band[0])))


def _slope_bounds(max_speed_error):
    """Lag slopes d(lag)/dt of decodes 1/(1+e) and 1/(1-e) times as long: the range searched."""
    return 1 / (1 + max_speed_error) - 1, 1 / (1 - max_speed_error) - 1


def _slope_grid(max_speed_error, resolution) -> np.ndarray:
    """Lag slopes d(lag)/dt of decodes between 1/(1+e) and 1/(1-e) times as long."""
    lo, hi = _slope_bounds(max_speed_error)
    # Steps out from exactly zero, which comes first: ties go to "no speed error".
    grid = np.r_[np.arange(0.0, hi + resolution / 2, resolution),
                 -np.arange(resolution, -lo + resolution / 2, resolution)]
    return grid[np.argsort(np.abs(grid), kind="stable")]


def _loudest_chunks(x, chunk, count):
    """Starts of up to ``count`` chunks to seed from, loudest first: the loudest chunk of
    each of ``count`` equal stretches of ``x``. Spread out, so that one bad stretch of
    a decode (a misread part of the disc) cannot hold all of them."""
    n = x.size // chunk
    energy = np.add.reduceat(x[:n * chunk] ** 2, np.arange(0, n * chunk, chunk))
    edges = np.linspace(0, n, count + 1).astype(int)
    picks = {int(a + np.argmax(energy[a:b])) for a, b in zip(edges[:-1], edges[1:]) if b > a}
    return [i * chunk for i in sorted(picks, key=lambda i: -energy[i]) if energy[i] > 0]


# --- step 3: track ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _RawTrack:
    times_s: np.ndarray
    lag_s: np.ndarray
    slope: np.ndarray   # lag slope used when the window was read
    rho: np.ndarray
    locked: np.ndarray
    piece: np.ndarray
    silent: np.ndarray


class _Follower:
    """Follows the local lag window by window away from the seed."""

    def __init__(self, ref_a, dec_a: _Sampler, *, rate, window_s, max_jump_s, chance_rho, slope_range):
        self.ref = ref_a
        self.slope_range = slope_range
        self.dec = dec_a
        self.rate = rate
        self.length = int(round(window_s * rate))
        hop = max(1, self.length // 2)
        self.starts = np.arange(0, ref_a.size - self.length + 1, hop)
        self.times_s = (self.starts + (self.length - 1) / 2) / rate
        energy = np.array([np.dot(w, w) for w in self._windows()])
        self.silent = energy <= 10 ** (_SILENT_DB / 10) * np.percentile(energy, 95)
        self.max_jump_s = max_jump_s
        self.chance_rho = chance_rho
        n = self.starts.size
        self.lag = np.full(n, np.nan)
        self.slope = np.zeros(n)
        self.rho = np.zeros(n)
        self.locked = np.zeros(n, dtype=bool)
        self.piece = np.full(n, -1)

    def _windows(self):
        for s in self.starts:
            yield self.ref[s:s + self.length]

    def window(self, j):
        return self.ref[self.starts[j]:self.starts[j] + self.length]

    def peak(self, j, lag_s, slope, radius_s) -> _Peak:
        return _local_peak(self.window(j), self.dec, rate=self.rate, centre_s=self.times_s[j],
                           lag_s=lag_s, slope=slope, radius_s=radius_s)

    def run(self, seed: _Seed) -> _RawTrack:
        j0 = int(np.argmin(np.abs(self.times_s - seed.time_s)))
        self._follow(seed, range(j0, self.times_s.size), direction=1)
        self._follow(seed, range(j0 - 1, -1, -1), direction=-1)
        return _RawTrack(self.times_s, self.lag, self.slope, self.rho, self.locked, self.piece,
                         self.silent)

    def _follow(self, seed: _Seed, order, direction):
        t_prev, lag_prev, slope, piece = seed.time_s, seed.lag_s, seed.slope, 0
        history, typical, radius = [], [], _FIRST_RADIUS_S
        order = list(order)
        for i, j in enumerate(order):
            if self.silent[j]:
                continue
            predicted = lag_prev + slope * (self.times_s[j] - t_prev)
            threshold = self._threshold(typical)
            peak = self.peak(j, predicted, slope, radius)
            self.rho[j] = abs(peak.rho)
            if abs(peak.rho) < threshold:
                peak = self._reacquire(j, order[i + 1:], predicted, slope, threshold, typical)
                if peak is None:
                    continue
                piece += direction
                history = []
            self._accept(j, peak, piece)
            self.slope[j] = slope
            t_prev, lag_prev, radius = self.times_s[j], peak.lag_s, _TRACK_RADIUS_S
            history.append((t_prev, lag_prev))
            typical = (typical + [abs(peak.rho)])[-20:]
            slope = self._slope(history, slope)

    def _threshold(self, typical):
        floor = min(_SURE_LOCK, _LOCK_SIGMAS * self.chance_rho)
        return max(floor, _LOCK_RELATIVE * float(np.median(typical))) if typical else floor

    def _accept(self, j, peak: _Peak, piece):
        self.lag[j], self.rho[j], self.locked[j], self.piece[j] = peak.lag_s, abs(peak.rho), True, piece

    def _wide_threshold(self, typical):
        """Searching seconds of lags tries many more chances: ask for more."""
        floor = min(_SURE_MATCH, _WIDE_SIGMAS * self.chance_rho)
        return max(floor, _WIDE_RELATIVE * float(np.median(typical))) if typical else floor

    def _reacquire(self, j, ahead, predicted, slope, threshold, typical) -> _Peak | None:
        """A wide search for a new lag, kept only if the next loud window agrees."""
        wide = self.peak(j, predicted, slope, self.max_jump_s)
        if abs(wide.rho) < max(threshold, self._wide_threshold(typical)):
            return None
        if abs(wide.lag_s - predicted) <= _TRACK_RADIUS_S:
            return None  # the local search would have found it: just a weak window
        following = next((k for k in ahead if not self.silent[k]), None)
        if following is None:
            return None
        check = self.peak(following, wide.lag_s + slope * (self.times_s[following] - self.times_s[j]),
                          slope, _TRACK_RADIUS_S)
        return wide if abs(check.rho) >= threshold else None

    def _slope(self, history, slope):
        """Lag slope over the last second of accepted windows: the speed error, with
        wow averaged out (a longer span resists a stray peak; wow drifts a 0.1 s
        window by only ~0.1 ms, which the correlation tolerates). A step of a few
        milliseconds in the lag (a glitch in the decode, or a weak window's peak on a
        tone's neighbouring period) is no speed: a line through it would name one off
        by percents and lose the lock. So a line that misses its points by more than a
        tenth of the search radius leaves the slope as it was, and none outside the
        range searched is taken."""
        newest = history[-1][0]
        recent = [(t, lag) for t, lag in history if abs(t - newest) <= 1.0]
        if len(recent) < 4:
            return slope
        t, lag = np.array(recent).T
        if np.ptp(t) < 0.2:
            return slope
        line = np.polyfit(t - t.mean(), lag, 1)
        misfit = np.sqrt(np.mean((np.polyval(line, t - t.mean()) - lag) ** 2))
        if misfit > 0.1 * _TRACK_RADIUS_S:
            return slope
        return float(np.clip(line[0], *self.slope_range))


def _track(ref_band, dec_band, *, sr, band, seed, window_s, max_jump_s, max_speed_error,
           turn_s=None) -> _RawTrack:
    step = max(1, int(sr // (2.5 * band[1])))
    rate = sr / step
    ref_a = sps.resample_poly(ref_band, 1, step) if step > 1 else ref_band
    dec_a = sps.resample_poly(dec_band, 1, step) if step > 1 else dec_band
    chance = _chance_rho(ref_band, rate=sr, band=band, duration_s=window_s)
    follower = _Follower(ref_a, _Sampler(dec_a, rate=rate, order=3), rate=rate, window_s=window_s,
                         max_jump_s=max_jump_s, chance_rho=chance,
                         slope_range=_slope_bounds(max_speed_error))
    track = _drop_short_pieces(follower.run(seed))
    return _drop_interludes(track, turn_s) if turn_s else track


def _chance_rho(x, *, rate, band, duration_s) -> float:
    """Standard deviation of the normalised correlation of ``duration_s`` of ``x`` with
    an unrelated signal of the same spectrum: ``1 / sqrt(2 B T)``, with ``B`` the
    statistical bandwidth ``(sum P)^2 / sum P^2`` of ``x`` at a resolution of ``1/T``."""
    nperseg = int(min(x.size, max(16, 2 ** np.round(np.log2(duration_s * rate)))))
    f, p = sps.welch(x, fs=rate, nperseg=nperseg)
    p = p[(f >= band[0]) & (f <= band[1])]
    if not np.any(p > 0):
        return 1.0
    bandwidth = float(np.sum(p) ** 2 / np.sum(p * p) * (f[1] - f[0]))
    return float(min(1.0, 1.0 / np.sqrt(2 * bandwidth * duration_s)))


def _drop_short_pieces(track: _RawTrack) -> _RawTrack:
    """Unlock stretches of fewer than 3 windows, then number pieces 0, 1, ... in time."""
    locked, piece = track.locked.copy(), track.piece.copy()
    for p in np.unique(piece[locked]):
        if np.count_nonzero(locked & (piece == p)) < _MIN_PIECE_WINDOWS:
            locked[piece == p] = False
    piece[~locked] = -1
    # Neighbours left with the same lag after a spurious stretch is dropped are one piece.
    ids = [p for p in np.unique(piece[locked])]
    new_id, renumber = 0, {}
    for previous, current in zip([None] + ids[:-1], ids):
        if previous is not None and not _same_lag(track, locked, piece, previous, current):
            new_id += 1
        renumber[current] = new_id
    piece = np.array([renumber.get(p, -1) for p in piece])
    lag = np.where(locked, track.lag_s, np.nan)
    return _RawTrack(track.times_s, lag, track.slope, track.rho, locked, piece, track.silent)


def _drop_interludes(track: _RawTrack, turn_s, max_gap_s=5.0) -> _RawTrack:
    """Unlock short stretches that interrupt one continuing lag line.

    Where the decode is briefly unreadable (a muted gap, a misread patch), the follower
    loses the lock and may hold for a moment onto the music elsewhere (a repeated
    phrase) before it comes back: pieces A, (B, ...,) C with C continuing A's line. The
    pieces between are the comparison's, not the decode's: a decode leaves its line
    only by whole turns. So where a piece starting within ``max_gap_s`` of A's end
    continues A's line (the median lag of its first second within the search radius of
    the line through A's last second), the pieces between, each shorter than A and C,
    are unlocked unless every one of them lies whole turns off the line (the decode
    really went to a neighbouring turn and back), and A and C become one piece.
    """
    locked, piece = track.locked.copy(), track.piece.copy()
    t, lag, slope = track.times_s, track.lag_s, track.slope

    def merge_one():
        members = {int(p): np.flatnonzero(locked & (piece == p)) for p in np.unique(piece[locked])}
        ids = sorted(members, key=lambda p: t[members[p][0]])
        for i, a in enumerate(ids):
            last = members[a][-1]
            # A's line through its last second, robustly: as the lock was lost, the last
            # window or two may have slipped onto a tone's neighbouring period, and the
            # speed estimate with them
            tail = members[a][t[members[a]] >= t[last] - 1.0]
            speed = np.median(slope[tail])
            anchor = np.median(lag[tail] - speed * (t[tail] - t[last]))

            def off_line(w):            # lag less A's line, in turns
                return (lag[w] - anchor - speed * (t[w] - t[last])) / turn_s

            for k, c in enumerate(ids[i + 1:], start=i + 1):
                first = members[c][0]
                if t[first] - t[last] > max_gap_s:
                    break
                head = members[c][t[members[c]] <= t[first] + 1.0]
                if abs(np.median(off_line(head))) * turn_s > _TRACK_RADIUS_S:
                    continue
                between = ids[i + 1:k]
                shortest = min(members[a].size, members[c].size)
                offsets = [float(np.median(off_line(members[b]))) for b in between]
                whole_turns = [round(x) != 0 and abs(x - round(x)) <= _REVOLUTION_TOLERANCE for x in offsets]
                if all(members[b].size < shortest for b in between) and not (between and all(whole_turns)):
                    for b in between:
                        locked[piece == b] = False
                    piece[piece == c] = a
                    return True
        return False

    while merge_one():
        pass
    piece[~locked] = -1
    order = {p: k for k, p in enumerate(np.unique(piece[locked]))}
    piece = np.array([order.get(p, -1) for p in piece])
    return _RawTrack(t, np.where(locked, lag, np.nan), slope, track.rho, locked, piece, track.silent)


def _same_lag(track, locked, piece, p, q) -> bool:
    last = np.flatnonzero(locked & (piece == p))[-1]
    first = np.flatnonzero(locked & (piece == q))[0]
    return abs(track.lag_s[first] - track.lag_s[last]) <= _TRACK_RADIUS_S
