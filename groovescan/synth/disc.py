"""The disc: scissor-cut outline, hand-made hole, crack, and the film's slowly varying
fields (X-ray picture, wall contrast, smudges, opaque patches)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from ._common import TWO_PI, _erfc_cover, _smooth_noise
from .groove import _raised_cosine_step, _Spiral
from .settings import RenderSettings


# =====================================================================================
# The disc: outline, hole, crack
# =====================================================================================

@dataclass(frozen=True, eq=False)
class _Outline:
    """Scissor-cut outline: a star-shaped polygon about ``centre`` (disc frame, mm)."""

    centre: tuple[float, float]      # (x, y) mm from the spiral centre
    vertex_angle: np.ndarray         # sorted, rad
    vertices: np.ndarray             # (n, 2) x, y relative to the centre
    normal: np.ndarray               # (n, 2) outward unit normal of edge i -> i + 1
    offset: np.ndarray               # (n,) edge line: normal . p = offset
    r_inner: float                   # every point closer than this is inside
    r_outer: float                   # every point farther than this is outside

    def film_fraction(self, x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
        """Blurred fraction of film at disc-frame points (mm)."""
        px, py = x - self.centre[0], y - self.centre[1]
        rho2 = px * px + py * py
        frac = np.where(rho2 < (self.r_outer + 5 * sigma) ** 2, 1.0, 0.0).astype(np.float32)
        edge = np.flatnonzero((rho2 > (self.r_inner - 5 * sigma) ** 2) & (frac > 0))
        if edge.size:
            ex, ey = px.ravel()[edge], py.ravel()[edge]
            side = np.searchsorted(self.vertex_angle, np.arctan2(ey, ex), side="right") - 1
            distance = ex * self.normal[side, 0] + ey * self.normal[side, 1] - self.offset[side]
            frac.ravel()[edge] = _erfc_cover(distance, sigma)
        return frac


def _make_outline(s: RenderSettings, rng: np.random.Generator) -> _Outline:
    radius = s.disc_diameter_mm / 2.0
    direction = rng.uniform(0, TWO_PI)
    centre = (s.outline_offset_mm * math.cos(direction), s.outline_offset_mm * math.sin(direction))
    if s.outline_irregularity_mm > 0:       # a dozen or two straight-ish scissor cuts
        n = int(rng.integers(14, 23))
        angles = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * TWO_PI / n
        wobble = sum(rng.normal(0, 0.5) * np.cos(k * angles + rng.uniform(0, TWO_PI))
                     for k in (2, 3, 4))
        radii = radius + s.outline_irregularity_mm * (wobble + rng.normal(0, 0.4, n))
    else:                                   # a pressed disc: a 720-gon is a circle here
        n = 720
        angles = np.arange(n) * TWO_PI / n
        radii = np.full(n, radius)
    angles = np.mod(angles + math.pi, TWO_PI) - math.pi
    order = np.argsort(angles)
    angles, radii = angles[order], radii[order]
    verts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    edge = np.roll(verts, -1, axis=0) - verts
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.sign(np.sum(normal * verts, axis=1))[:, None]      # point outwards
    offset = np.sum(normal * verts, axis=1)
    return _Outline(centre, angles, verts, normal, offset, float(offset.min()), float(radii.max()))


@dataclass(frozen=True, eq=False)
class _Hole:
    """Hand-made centre hole: a wobbly circle (disc frame, mm)."""

    centre: tuple[float, float]
    radius_mm: float
    harmonics: tuple[tuple[int, float, float], ...]      # (k, relative amplitude, phase)

    def film_fraction(self, x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
        px, py = x - self.centre[0], y - self.centre[1]
        rho2 = px * px + py * py
        frac = np.ones(rho2.shape, np.float32)
        reach = self.radius_mm * 1.3 + 5 * sigma
        near = np.flatnonzero(rho2 < reach * reach)
        if near.size:
            ex, ey = px.ravel()[near], py.ravel()[near]
            angle = np.arctan2(ey, ex)
            edge = self.radius_mm * (1 + sum(a * np.cos(k * angle + ph)
                                             for k, a, ph in self.harmonics))
            frac.ravel()[near] = _erfc_cover(edge - np.hypot(ex, ey), sigma)
        return frac


def _make_hole(s: RenderSettings, rng: np.random.Generator) -> _Hole:
    direction = rng.uniform(0, TWO_PI)
    centre = (s.hole_offset_mm * math.cos(direction), s.hole_offset_mm * math.sin(direction))
    roughness = 0.03 if s.outline_irregularity_mm > 0 else 0.0      # punched by hand or pressed
    harmonics = tuple((k, float(rng.normal(0, roughness)), float(rng.uniform(0, TWO_PI)))
                      for k in (2, 3, 5))
    return _Hole(centre, s.hole_radius_mm, harmonics)


@dataclass(frozen=True, eq=False)
class _Crack:
    """The disc broke along a ragged line; piece B (on the ``normal`` side) was laid back
    shifted by ``shift`` (mm) and rotated by ``rotation`` (rad) about ``point``."""

    point: tuple[float, float]
    normal: tuple[float, float]
    shift: tuple[float, float]
    rotation: float
    ragged: tuple[tuple[float, float, float], ...]        # (amplitude mm, wavenumber, phase)

    def edge_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of disc-frame points from the ragged crack, + on piece B."""
        rx, ry = x - self.point[0], y - self.point[1]
        nx, ny = self.normal
        along = -ny * rx + nx * ry
        rough = sum(a * np.sin(k * along + ph) for a, k, ph in self.ragged)
        return nx * rx + ny * ry - rough

    def to_disc(self, x: np.ndarray, y: np.ndarray, sigma: float):
        """Image-frame points (mm about the intact spiral centre) to disc-frame points of
        the piece lying there, and the fraction of film present (0 in the gap)."""
        c, s_ = math.cos(-self.rotation), math.sin(-self.rotation)
        rx = x - self.point[0] - self.shift[0]
        ry = y - self.point[1] - self.shift[1]
        bx = self.point[0] + c * rx - s_ * ry
        by = self.point[1] + s_ * rx + c * ry
        on_b = _erfc_cover(-self.edge_distance(bx, by), sigma)
        on_a = _erfc_cover(self.edge_distance(x, y), sigma)
        use_b = on_b > on_a                              # piece B lies on top where both are
        return (np.where(use_b, bx, x), np.where(use_b, by, y),
                np.minimum(on_a + on_b, 1.0).astype(np.float32))

    def to_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Disc-frame points to where they lie in the image frame (mm about the centre)."""
        on_b = self.edge_distance(x, y) > 0
        c, s_ = math.cos(self.rotation), math.sin(self.rotation)
        rx, ry = x - self.point[0], y - self.point[1]
        bx = self.point[0] + self.shift[0] + c * rx - s_ * ry
        by = self.point[1] + self.shift[1] + s_ * rx + c * ry
        return np.where(on_b, bx, x), np.where(on_b, by, y)


def _make_crack(s: RenderSettings, rng: np.random.Generator) -> _Crack:
    radius = s.disc_diameter_mm / 2.0
    at = rng.uniform(0, TWO_PI)
    dist = rng.uniform(0.05, 0.4) * radius
    point = (dist * math.cos(at), dist * math.sin(at))
    angle = rng.uniform(0, TWO_PI)
    normal = (math.cos(angle), math.sin(angle))
    scale = s.crack_scale
    gap, slide = scale * rng.uniform(0.05, 0.3), scale * rng.uniform(-0.3, 0.3)   # mm apart and along
    shift = (gap * normal[0] - slide * normal[1], gap * normal[1] + slide * normal[0])
    rotation = math.radians(scale * rng.uniform(-0.4, 0.4))
    ragged = tuple((float(rng.uniform(0.01, 0.06)), float(rng.uniform(0.2, 3.0)),
                    float(rng.uniform(0, TWO_PI))) for _ in range(3))
    return _Crack(point, normal, shift, rotation, ragged)


# =====================================================================================
# The film: X-ray picture, wall contrast, smudges, opaque patches on a coarse grid
# =====================================================================================

_FILM_GRID_MM = 0.2


@dataclass(frozen=True, eq=False)
class _FilmMaps:
    """Slowly varying disc-frame fields on a ``step_mm`` grid: optical density, wall
    contrast factor and opacity (1: nothing shows through), read bilinearly."""

    x0_mm: float
    y0_mm: float
    step_mm: float
    grid: np.ndarray                 # (height, width, 3) float32

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Fields at 1-D arrays of disc-frame points (mm), shape (3, n), float32.

        OpenCV's remap does the bilinear reads ten times faster than numpy gathers; the
        points are folded into rows of 1024 to stay within its 32767-pixel limit.
        """
        n = x.size
        width = 1024
        rows = -(-n // width)
        gx = np.zeros(rows * width, np.float32)
        gy = np.zeros(rows * width, np.float32)
        gx[:n] = (x - self.x0_mm) * (1.0 / self.step_mm)
        gy[:n] = (y - self.y0_mm) * (1.0 / self.step_mm)
        out = cv2.remap(self.grid, gx.reshape(rows, width), gy.reshape(rows, width),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(-1, 3)[:n].T


def _ellipse_distance(X, Y, cx, cy, a, b, angle):
    """Normalised elliptical radius (1 on the ellipse) on a grid."""
    c, s_ = math.cos(angle), math.sin(angle)
    u = (X - cx) * c + (Y - cy) * s_
    v = -(X - cx) * s_ + (Y - cy) * c
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _soft_band(distance_mm: np.ndarray, half_width_mm: float) -> np.ndarray:
    """Flat-topped band (1 inside, smooth 0 outside) of a distance field."""
    return np.exp(-(np.abs(distance_mm) / half_width_mm) ** 4)


def _body(U, V, rng) -> np.ndarray:
    """Soft tissue: 1 inside a large body outline (soft 5 mm edge), 0 in the air."""
    a, b = rng.uniform(110, 180), rng.uniform(140, 220)
    rho = _ellipse_distance(U, V, rng.uniform(-60, 60), rng.uniform(-60, 60), a, b, 0)
    return _raised_cosine_step((1 - rho) * a / 5.0)


def _ribs(U, V, rng) -> np.ndarray:
    """Attenuation of a chest: body, curved parallel ribs with denser edges, a spine."""
    att = 0.35 * _body(U, V, rng)
    bend = rng.uniform(1 / 400, 1 / 150)                 # 1/mm: ribs curve round the chest
    spacing = rng.uniform(20, 28)
    for v0 in np.arange(-150, 150, spacing) + rng.uniform(0, spacing):
        centre_line = v0 + bend * U ** 2
        dist = (V - centre_line) / np.sqrt(1 + (2 * bend * U) ** 2)
        half = rng.uniform(4, 6.5)
        att += 0.3 * _soft_band(dist, half) + 0.12 * _soft_band(np.abs(dist) - half, 1.0)
    spine_u = rng.uniform(-60, 60)
    att += 0.4 * _soft_band(U - spine_u, 13) * (0.8 + 0.2 * np.cos(TWO_PI * V / 30))
    return att


def _skull(U, V, rng) -> np.ndarray:
    """Attenuation of a skull: a thick elliptical vault, brain, orbits and a jaw arc."""
    a, b = rng.uniform(70, 85), rng.uniform(85, 100)
    cu, cv = rng.uniform(-40, 40), rng.uniform(-40, 40)
    rho = _ellipse_distance(U, V, cu, cv, a, b, 0)
    att = 0.3 * _body(U, V, rng)
    att += 0.5 * _soft_band((rho - 1) * a, rng.uniform(3, 6))
    att += 0.2 * _raised_cosine_step((1 - rho) * a / 3.0)
    for side in (-1, 1):                                  # orbits: less bone, darker
        orbit = _ellipse_distance(U, V, cu + side * 0.35 * a, cv + 0.35 * b, 17, 14, 0)
        att -= 0.2 * _raised_cosine_step((1 - orbit) * 14 / 2.0)
    jaw = _ellipse_distance(U, V, cu, cv + 0.55 * b, 0.6 * a, 0.45 * b, 0)
    att += 0.4 * _soft_band((jaw - 1) * 0.5 * a, 4) * (V > cv + 0.55 * b)
    return att


def _anatomy_density(X, Y, s: RenderSettings, rng) -> np.ndarray:
    """Optical density of the X-ray picture on the grid: bone light, air dark."""
    lo, hi = s.od_range
    if s.film_anatomy == "none":
        return np.full(X.shape, lo, np.float64)
    kind = s.film_anatomy if s.film_anatomy != "random" else ("ribs", "skull")[rng.integers(2)]
    turn = rng.uniform(0, TWO_PI)                         # the film was cut at any angle
    shift = rng.uniform(-60, 60, 2)
    U = (X - shift[0]) * math.cos(turn) + (Y - shift[1]) * math.sin(turn)
    V = -(X - shift[0]) * math.sin(turn) + (Y - shift[1]) * math.cos(turn)
    att = _ribs(U, V, rng) if kind == "ribs" else _skull(U, V, rng)
    cells_per_mm = 1.0 / _FILM_GRID_MM
    att += 0.05 * _smooth_noise(X.shape, 3.0 * cells_per_mm, rng)
    att += 0.02 * _smooth_noise(X.shape, 0.6 * cells_per_mm, rng)
    att = ndimage.gaussian_filter(np.clip(att, 0, 1), 0.4 * cells_per_mm)
    return hi - (hi - lo) * att


def _build_film_maps(s: RenderSettings, bbox_mm, spiral: _Spiral,
                     rng: np.random.Generator) -> _FilmMaps:
    """Film fields on a grid over ``bbox_mm`` = (xmin, xmax, ymin, ymax), disc frame:
    the X-ray picture, smudges (more density, less wall contrast) and opaque patches
    (paint, tape) laid over the groove band."""
    step = _FILM_GRID_MM
    xmin, xmax, ymin, ymax = bbox_mm
    w, h = int((xmax - xmin) / step) + 3, int((ymax - ymin) / step) + 3
    x = xmin - step + step * np.arange(w)
    y = ymin - step + step * np.arange(h)
    X, Y = np.meshgrid(x, y)
    density = _anatomy_density(X, Y, s, rng)
    contrast = 1.0 + s.wall_contrast_variation * _smooth_noise(X.shape, 8.0 / step, rng)
    contrast = np.clip(contrast, 0.2, None)
    radius = s.disc_diameter_mm / 2.0
    for _ in range(s.smudges):                            # fingerprints, grease: soft blotches
        r_at, at = radius * math.sqrt(rng.uniform(0.05, 0.8)), rng.uniform(0, TWO_PI)
        a, b = rng.uniform(4, 12), rng.uniform(3, 8)
        blob = np.exp(-_ellipse_distance(X, Y, r_at * math.cos(at), r_at * math.sin(at),
                                         a, b, rng.uniform(0, math.pi)) ** 2 * 2)
        blob *= np.clip(1 + 0.5 * _smooth_noise(X.shape, 0.8 / step, rng), 0, None)
        density = density + rng.uniform(0.15, 0.45) * blob
        contrast = contrast * (1 - 0.4 * np.clip(blob, 0, 1))
    opacity = np.zeros_like(X)
    r_in, r_out = float(spiral.radius_mm[-1]), float(spiral.radius_mm[0])
    for _ in range(s.opaque_patches):                     # paint, tape: the groove is lost
        r_at, at = rng.uniform(r_in, r_out), rng.uniform(0, TWO_PI)
        a, b = rng.uniform(1.5, 5), rng.uniform(1, 3)
        cx, cy = r_at * math.cos(at), r_at * math.sin(at)
        rho = _ellipse_distance(X, Y, cx, cy, a, b, rng.uniform(0, math.pi))
        opacity = np.maximum(opacity, np.clip((1 - rho) * min(a, b) / step + 0.5, 0, 1))
    grid = np.ascontiguousarray(np.stack([density, contrast, opacity], axis=-1), np.float32)
    return _FilmMaps(float(x[0]), float(y[0]), step, grid)
