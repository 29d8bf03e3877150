"""groovescan: play phonograph records from flatbed scans.

The pipeline, stage by stage (each a plain function returning a frozen dataclass)::

    scan = groovescan.load_scan("disc.tif")                  # Scan
    geometry = groovescan.find_geometry(scan)                # DiscGeometry
    track = groovescan.track_groove(scan, geometry)          # GrooveTrack
    n_per = groovescan.samples_per_turn(sr=44100, rpm=78)    # 34020: angle is time
    walls = groovescan.measure_walls(scan, geometry, track, samples_per_turn=n_per)
    result = groovescan.decode(scan, rpm=78, sr=44100)       # all of it: DecodeResult

Conventions (coordinates, angles, units) are in ``docs/conventions.md``.
"""
from .crack import Crack
from .errors import (GroovescanError, MissingDpiError, NoGrooveError, OutputError,
                     ParameterError, ScanContentError, ScanReadError)
from .geometry import DiscGeometry, find_geometry
from .io import Scan, load_scan, read_audio, save_scan, write_audio
from .pipeline import DecodeReport, DecodeResult, DecodeWarning, decode
from .timebase import groove_audio, samples_per_turn
from .track import GrooveTrack, track_groove
from .walls import WallSignal, measure_walls

__version__ = "0.1.0"
__all__ = [
    "Crack", "DecodeReport", "DecodeResult", "DecodeWarning", "DiscGeometry", "GrooveTrack",
    "GroovescanError", "MissingDpiError", "NoGrooveError", "OutputError", "ParameterError",
    "Scan", "ScanContentError", "ScanReadError", "WallSignal", "decode", "find_geometry",
    "groove_audio", "load_scan", "measure_walls", "read_audio", "samples_per_turn",
    "save_scan", "track_groove", "write_audio", "__version__",
]
