"""Cue set version 3: version 2's cues unchanged bit for bit, and each new estimator moves the way its
defect does on small seeded scenes drawn here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from adcreative.inspect.cues import CUE_NAMES, CUE_NAMES_V2, CUE_NAMES_V3, CUE_SETS, N_CUES, n_cues, observe
from tests.inspect.test_cues import _scene

# version 2's cues of the scenes below, computed by the version 2 code before version 3 was added
V2_TEXTURED = [0.5111111402511597, 0.10222221910953522, 0.0, 0.0, 0.0, 0.0, 0.01860695704817772,
               0.02957046777009964, 0.0, 0.5877900123596191, 0.5790268182754517, 0.0, 0.0, 0.0, 0.0, 0.0,
               0.15217390656471252, 0.0024509804788976908, -0.054347824305295944, 0.7935457825660706, 1.0]
V2_PEDESTAL_HOLE = [0.5, 0.12118799984455109, 0.0, 0.0, 0.0, 0.08891499787569046, 0.04479200020432472,
                    0.06321399658918381, 0.2110999971628189, 0.7817100286483765, 0.781711995601654,
                    0.21126799285411835, 0.7692310214042664, 0.06357800215482712, 3.109184980392456,
                    1.559999942779541, 0.15000000596046448, 0.0, -0.012500000186264515, 0.3905879855155945, 1.0]

BLUE, YELLOW, WOOD = (30, 90, 160), (240, 220, 60), (110, 85, 60)


def _cutout(rng: np.random.Generator, h: int = 100, w: int = 60) -> np.ndarray:
    """A textured blue box with a yellow label (RGBA), opaque below a thin transparent top margin."""
    cut = np.zeros((h, w, 4), np.uint8)
    cut[8:, 6 : w - 6] = (*BLUE, 255)
    cut[int(0.4 * h) : int(0.7 * h), 12 : w - 12, :3] = YELLOW
    body = cut[8:, 6 : w - 6, :3].astype(np.int64) + rng.integers(-20, 20, (h - 8, w - 12, 3))
    cut[8:, 6 : w - 6, :3] = np.clip(body, 0, 255).astype(np.uint8)
    return cut


def _textured(*, gap: int = 0, size: float = 1.0, prop: int = 0, pedestal: bool = False, hole: bool = False,
              chop: float = 0.0, pixelate: int = 0, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, mask, cutout) on a 180×240 canvas: a backdrop gradient over a wooden table top at row 134, the
    product standing on it (``gap`` px above it), its contact shadow on the table, optionally a prop ``prop`` px
    tall on the table, a pedestal in the product's blue under it, a hole through it, its top ``chop`` share
    missing, or its pixels in ``pixelate``-px blocks."""
    rng = np.random.default_rng(seed)
    H, W, table = 180, 240, 134
    img = np.zeros((H, W, 3), np.float32)
    img[:] = np.linspace(150, 210, H)[:, None, None] * np.array([1.0, 0.95, 0.9])
    img[table:] = WOOD
    cut = _cutout(rng)
    ch, cw = round(100 * size), round(60 * size)
    if size != 1.0:
        big = np.repeat(np.repeat(cut, 4, axis=0), 4, axis=1)
        cut = np.asarray(cv2.resize(big, (cw, ch), interpolation=cv2.INTER_AREA))
    x, y = 90, table - gap - ch
    img[table : table + 4, x : x + cw] *= 0.5  # the contact shadow, on the table
    if prop:
        img[table - prop : table, 30:50] = (200, 40, 40)
    if pedestal:
        img[y + ch - 10 : y + ch + 6, x + 4 : x + cw - 4] = BLUE
        y -= 6
    on = cut[..., 3] >= 128
    if chop:
        on[: round(chop * ch)] = False
    if hole:
        on[ch // 3 : ch // 3 + 20, cw // 3 : cw // 3 + 15] = False
    px = cut[..., :3].astype(np.float32)
    if pixelate:
        px = np.repeat(np.repeat(px[::pixelate, ::pixelate], pixelate, 0), pixelate, 1)[:ch, :cw]
    reg = img[y : y + ch, x : x + cw]
    reg[on] = px[on]
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((H, W), np.float32)
    mask[y : y + ch, x : x + cw][on] = 1.0
    return img, mask, cut


def _v2_textured() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scene V2_TEXTURED was computed on (the product 4 px into the table, no shadow)."""
    rng = np.random.default_rng(7)
    img = np.zeros((180, 240, 3), np.float32)
    img[:] = np.linspace(150, 210, 180)[:, None, None] * np.array([1.0, 0.95, 0.9])
    img[130:] = WOOD
    cut = _cutout(rng)
    on = cut[..., 3] >= 128
    img[34:134, 90:150][on] = cut[..., :3][on]
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((180, 240), np.float32)
    mask[34:134, 90:150][on] = 1.0
    return img, mask, cut


def _cue(v: np.ndarray, name: str) -> float:
    return float(v[CUE_NAMES_V3.index(name)])


def test_version_2_is_unchanged() -> None:
    assert CUE_NAMES is CUE_NAMES_V2 and N_CUES == 21 == n_cues("2") == n_cues()
    for scene, want in ((_v2_textured(), V2_TEXTURED), (_scene(pedestal=True, hole=True), V2_PEDESTAL_HOLE)):
        v2 = observe(*scene)
        assert v2.shape == (21,) and v2.dtype == np.float32
        np.testing.assert_allclose(v2, np.asarray(want, np.float32), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(observe(*scene, version="2"), v2)
        v3 = observe(*scene, version="3")
        np.testing.assert_array_equal(v3[:21], v2)  # version 3 starts with version 2's cues, bit for bit


def test_version_3_shape() -> None:
    assert CUE_SETS["3"][: len(CUE_NAMES_V2)] == CUE_NAMES_V2 and len(set(CUE_NAMES_V3)) == len(CUE_NAMES_V3)
    v = observe(*_textured(), version="3")
    assert v.shape == (n_cues("3"),) == (len(CUE_NAMES_V3),) and v.dtype == np.float32 and np.isfinite(v).all()
    img, mask, cut = _textured()
    assert (observe(img, np.zeros_like(mask), cut, version="3") == 0).all()


@pytest.mark.parametrize("bad", ["1", "8", "", "v3", 3])
def test_unknown_versions_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="unknown cue set version"):
        observe(*_textured(), version=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown cue set version"):
        n_cues(bad)  # type: ignore[arg-type]


def test_gap_moves_the_shadow_away_from_the_base() -> None:
    on = observe(*_textured(), version="3")
    gap = observe(*_textured(gap=14), version="3")
    assert _cue(on, "contact_dark") > _cue(gap, "contact_dark") + 0.05
    assert _cue(gap, "shadow_peak") > _cue(on, "shadow_peak") + 0.08
    assert _cue(gap, "side_edge_offset") > _cue(on, "side_edge_offset") + 0.08  # the table's edge, below the base


def test_missing_part_and_hole() -> None:
    clean = observe(*_textured(), version="3")
    chopped = observe(*_textured(chop=0.3), version="3")
    holed = observe(*_textured(hole=True), version="3")
    assert _cue(clean, "miss_fit") < 0.03 and _cue(clean, "mask_holes") == 0.0
    assert _cue(chopped, "miss_fit") > 0.15
    assert _cue(holed, "mask_holes") > 0.03 and _cue(holed, "miss_fit") > _cue(clean, "miss_fit") + 0.03


def test_detail_loss() -> None:
    clean = observe(*_textured(), version="3")
    blocky = observe(*_textured(pixelate=6), version="3")
    assert _cue(blocky, "detail_err") > _cue(clean, "detail_err") + 0.2


def test_own_colour_pedestal() -> None:
    clean = observe(*_textured(), version="3")
    ped = observe(*_textured(pedestal=True), version="3")
    assert _cue(clean, "own_touch") < 0.05 and _cue(clean, "own_grow") < 0.5
    assert _cue(ped, "own_touch") > _cue(clean, "own_touch") + 0.1
    assert _cue(ped, "own_grow") > _cue(clean, "own_grow") + 1.0


def test_prop_scale() -> None:
    assert _cue(observe(*_textured(), version="3"), "prop_n") == 0.0
    small = observe(*_textured(prop=50), version="3")
    assert _cue(small, "prop_n") == 1.0
    assert _cue(small, "prop_log_med") == pytest.approx(np.log(92 / 50), abs=0.15)  # the opaque body: 92 px
    giant = observe(*_textured(prop=50, size=1.25), version="3")
    assert _cue(giant, "prop_log_med") > _cue(small, "prop_log_med") + 0.2
