"""Scans from the independent renderer (``tests/indie_scanner.py``), which shares no code
or models with groovescan: its own groove profiles, its own light (walls lit from one
side, brightening and darkening with the groove's slope) and its own scanner.

What is asserted is the geometry: the polarity, the handedness, the centre and the
pitch. Its small discs are too slow-moving under the scanner for their audio to be a
fair test (the README says what they measure).
"""
import numpy as np
import pytest

import indie_scanner as indie
from groovescan import find_geometry, load_scan


def _rendered(tmp_path, seed, **overrides):
    path = tmp_path / f"indie_{seed}.tif"
    args = ["--seed", str(seed), "--scale", "small", "-o", str(path), "--quiet", "--no-check"]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    indie.main(args)
    return path, indie.load_truth(path.with_suffix(".truth.npz"))


@pytest.mark.parametrize("seed, overrides", [
    (3, {}),                     # reflective shellac, bright walls lit from one side (asym 0.23)
    (3, {"asym": 0.0}),          # the same walls lit evenly
    (9, {}),                     # transmission film, dark walls
    pytest.param(12, {}, marks=pytest.mark.slow),   # reflective, bright walls, asym 0.25
    pytest.param(6, {}, marks=pytest.mark.slow),    # vinyl, reflective, 2400 dpi
])
def test_the_groove_not_the_land_is_found_on_independent_scans(tmp_path, seed, overrides):
    path, truth = _rendered(tmp_path, seed, **overrides)
    g = find_geometry(load_scan(path))
    about = f"seed {seed} {overrides}: {truth['mode']}, truth {truth['polarity']}, coherences {g.wall_coherence}"
    assert truth["polarity"] in (g.polarity, "weak"), about
    assert g.direction == truth["direction"], about
    centre_error_mm = np.hypot(*((np.array(g.centre_px) - truth["centre_px"]) * np.array(g.px_mm)))
    assert centre_error_mm < 0.06, about
    assert g.pitch_mm == pytest.approx(truth["pitch_mm"], rel=0.05), about
