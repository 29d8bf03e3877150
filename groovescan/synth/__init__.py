"""Render realistic flatbed scans of records from audio: the inverse of decoding.

Audio goes in; a scan image and the truth it was made from come out. The renderer
follows the physics of DESIGN.md and the coordinate conventions of docs/conventions.md:

1. *Cutting.* The audio is filtered by a recording curve into groove velocity (m/s),
   scaled to a chosen ``level``, high-passed below ~15 Hz (as a cutter's suspension does)
   and integrated into the lateral displacement ``d`` (m, positive outwards).
2. *Spiral.* ``R(phi) = R0(phi) + d(phi)`` with ``R0`` falling by one pitch per turn
   (wider on the lead-in, optionally slowly varying, optionally a lead-out spiral and a
   locked concentric groove).
3. *Appearance.* Every pixel is located in physical units (true X/Y pixel sizes, slow-axis
   jitter) about the spiral centre, the nearest three turns are found, and the groove
   cross-section is read from a 1-D table already convolved with the optics' PSF and the
   pixel's footprint across the groove. Blur *along* the groove is applied to ``d``
   beforehand (a pixel averages the wiggle over its footprint). Film transmission
   (X-ray picture), scissor-cut outline, hand-made hole, damage, illumination, shot and
   read noise and quantisation follow.
4. *The flatbed's habits* (all off by default; preset "flatbed_a4"): the whole bed in the
   image, fixed-pattern streaks of the line sensor, lamp drift, the seams and
   misregistration of its chips, exposure and clipping, the driver's unsharp mask, JPEG
   files, dust on the glass, Newton's rings and focus varying across curled film. Patterns
   tied to the sensor live in the final image's frame, mirrored or not.

Rendering runs in blocks of rows, so the full 2400 dpi 7-inch side (17 000 px square), or
a whole A4 bed, renders straight into a TIFF in bounded memory
(:func:`render_scan_to_file`); the bed around the disc costs little more than its noise.
:func:`render_scan` returns the image in memory.

Every option lives in :class:`RenderSettings` (defaults: a clean 7-inch bone record scanned
in transmission); :data:`PRESETS` hold overrides for other records. Options are passed as
keywords to the render functions::

    >>> import numpy as np
    >>> from groovescan.synth import render_scan, tone
    >>> audio = tone(1000.0, duration_s=0.5, sr=16000)
    >>> scan = render_scan(audio, sr=16000, dpi=300, disc_diameter_mm=40.0,
    ...                    r_start_mm=16.0, hole_radius_mm=2.0, seed=1)
    >>> scan.image.dtype, scan.truth.direction
    (dtype('uint16'), -1)

The modules of this package: :mod:`.signals` (test tones and sweeps),
:mod:`.settings` (:class:`RenderSettings`, :data:`PRESETS`), :mod:`.groove` (cutting,
spiral, wiggle, cross-section), :mod:`.disc` (outline, hole, crack, film), :mod:`.damage`
(dust, hairs, scratches), :mod:`.flatbed` (the scanner's habits), :mod:`.render` (the plan
and the blocks of rows), :mod:`.truth` (:class:`RenderTruth`) and :mod:`.api` (the entry
points); everything public is imported here.

Times in the truth are *groove time*: ``t = phi / omega`` seconds from the start of the
cut (``phi = 0``); audio sample ``i`` sits at groove time ``audio_offset_s + i / sr``.
"""
from .api import RenderedScan, render_scan, render_scan_to_file
from .settings import PRESETS, RenderSettings, resolve_settings
from .signals import sweep, tone
from .truth import RenderTruth

__all__ = [
    "PRESETS",
    "RenderSettings",
    "RenderTruth",
    "RenderedScan",
    "render_scan",
    "render_scan_to_file",
    "resolve_settings",
    "sweep",
    "tone",
]
