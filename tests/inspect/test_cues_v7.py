"""Cue set version 7: version 6's cues unchanged bit for bit, then the under-the-base cues in units of the local
contrast, so a contact shadow on a near-black floor reads as it does on a white one (docs/inspect.md, round 34)."""

from __future__ import annotations

import numpy as np

from adcreative.inspect.cues import CUE_NAMES_V6, CUE_NAMES_V7, CUE_SETS, n_cues, observe
from tests.inspect.test_cues_v3 import _cutout, _textured


def _cue(v: np.ndarray, name: str) -> float:
    return float(v[CUE_NAMES_V7.index(name)])


def _stage(floor: float, *, gap: int = 0, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, mask, cutout) on a 180×240 canvas: a backdrop 1.4× as bright as the floor that starts at row 134,
    the product standing ``gap`` px above the floor, and its shadow halving the floor's light just under where it
    would stand. The same scene at any ``floor`` brightness, with noise in proportion to the light (a sensor's)."""
    rng = np.random.default_rng(seed)
    H, W, table = 180, 240, 134
    img = np.full((H, W, 3), 1.4 * floor, np.float32)
    img[table:] = floor
    cut = _cutout(rng)
    ch, cw = cut.shape[:2]
    x, y = 90, table - gap - ch
    img[table : table + 4, x : x + cw] *= 0.5
    on = cut[..., 3] >= 128
    img[y : y + ch, x : x + cw][on] = cut[..., :3][on]
    img *= 1.0 + rng.normal(0, 0.02, img.shape)
    mask = np.zeros((H, W), np.float32)
    mask[y : y + ch, x : x + cw][on] = 1.0
    return np.clip(img, 0, 255).astype(np.uint8), mask, cut


def test_version_7_starts_with_version_6() -> None:
    assert CUE_SETS["7"] == CUE_NAMES_V7 and CUE_NAMES_V7[: len(CUE_NAMES_V6)] == CUE_NAMES_V6
    assert len(set(CUE_NAMES_V7)) == len(CUE_NAMES_V7) == n_cues("7") == n_cues("6") + 12
    for scene in (_textured(), _textured(gap=14), _stage(20.0), _stage(200.0, gap=14)):
        v6, v7 = observe(*scene, version="6", height_cm=20.0), observe(*scene, version="7", height_cm=20.0)
        assert v7.shape == (n_cues("7"),) and v7.dtype == np.float32 and np.isfinite(v7).all()
        np.testing.assert_array_equal(v7[: len(CUE_NAMES_V6)], v6)  # bit for bit
    img, mask, cut = _stage(20.0)
    assert (observe(img, np.zeros_like(mask), cut, version="7") == 0).all()


def test_a_contact_shadow_reads_the_same_on_a_dark_floor() -> None:
    bright, dark = observe(*_stage(200.0), version="7"), observe(*_stage(20.0), version="7")
    # the absolute cue (set 3) sees a tenth of the shadow on the dark floor: little more than no shadow at all
    assert _cue(dark, "contact_dark") < 0.2 * _cue(bright, "contact_dark")
    # in units of the floor's own contrast it is the same shadow
    assert _cue(bright, "n_contact_dark") > 1.0
    assert abs(_cue(dark, "n_contact_dark") - _cue(bright, "n_contact_dark")) < 0.3 * _cue(bright, "n_contact_dark")
    assert _cue(dark, "floor_lum") < 0.15 < 0.6 < _cue(bright, "floor_lum")


def test_a_gap_reads_as_a_gap_on_a_dark_floor() -> None:
    on, gap = observe(*_stage(20.0), version="7"), observe(*_stage(20.0, gap=14), version="7")
    assert _cue(on, "n_contact_dark") > _cue(gap, "n_contact_dark") + 1.0  # no shadow at the base across a gap
    assert _cue(gap, "n_shadow_peak") > _cue(on, "n_shadow_peak") + 0.08  # the darkening lies below it
    assert _cue(gap, "n_edge_offset") > _cue(on, "n_edge_offset") + 0.08  # and so does the floor's edge


def test_the_backdrop_under_the_foot_is_a_gap() -> None:
    for floor in (20.0, 200.0):
        on, gap = observe(*_stage(floor), version="7"), observe(*_stage(floor, gap=14), version="7")
        # across the gap the strip under the foot is the backdrop beside the product; on the floor it is not
        assert _cue(gap, "gap_back_de") < 0.02 < _cue(on, "gap_back_de")
        assert _cue(gap, "gap_score") > 0.0 > _cue(on, "gap_score")
