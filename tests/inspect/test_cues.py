"""Measured cues: each moves the way its defect does on scenes drawn here, and RFNet reads them as a token."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adcreative.core.errors import InputError
from adcreative.inspect.cues import CUE_NAMES, N_CUES, observe
from tests.inspect.helpers import TINY, sample_items

RED, GREY, WHITE = (200, 30, 30), (128, 128, 128), (235, 235, 235)


def _product() -> np.ndarray:
    """A 60×90 RGBA bottle: a red body with a white label, opaque inside an ellipse-capped rectangle."""
    a = np.zeros((90, 60, 4), np.uint8)
    a[10:, 5:55] = (*RED, 255)
    yy, xx = np.mgrid[0:20, 0:60]
    a[:20][((yy - 20) ** 2 / 400 + (xx - 30) ** 2 / 400) > 1] = 0
    a[40:60, 10:50, :3] = WHITE
    return a


def _scene(backdrop: tuple[int, int, int] = GREY, *, at: tuple[int, int] = (70, 40), pedestal: bool = False,
           hole: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, placement mask, cutout): the product pasted at ``at`` (x, y) on a 200×160 backdrop."""
    cut = _product()
    img = np.zeros((160, 200, 3), np.uint8)
    img[:] = backdrop
    img[130:] = (90, 70, 50)  # a table top under it
    mask = np.zeros((160, 200), np.float32)
    x, y = at
    h, w = cut.shape[:2]
    ys, xs = slice(max(0, y), min(160, y + h)), slice(max(0, x), min(200, x + w))
    part = cut[ys.start - y : ys.stop - y, xs.start - x : xs.stop - x]
    on = part[..., 3] >= 128
    img[ys, xs][on] = part[..., :3][on]
    mask[ys, xs][on] = 1.0
    if pedestal:  # a slab in the product's red growing out of its base
        img[y + h : y + h + 12, x - 10 : x + w + 10] = RED
    if hole:  # the scene shows through a hole in the product (the placement mask still covers it)
        img[y + 25 : y + 40, x + 20 : x + 40] = backdrop
    return img, mask, cut


def _cue(v: np.ndarray, name: str) -> float:
    return float(v[CUE_NAMES.index(name)])


def test_clean_scene_has_no_defect_cues() -> None:
    v = observe(*_scene())
    assert v.shape == (N_CUES,) and v.dtype == np.float32 and np.isfinite(v).all()
    assert _cue(v, "has_product") == 1.0
    assert _cue(v, "border_share") == 0.0 and _cue(v, "uncovered") < 0.05 and _cue(v, "off_colour") < 0.05
    assert _cue(v, "rim_de") > 0.3 and _cue(v, "edge_low_frac") < 0.2


def test_each_cue_follows_its_defect() -> None:
    clean = observe(*_scene())
    cut = observe(*_scene(at=(160, 40)))  # running off the right edge
    assert _cue(cut, "border_share") > 0.05 and _cue(cut, "border_share") > _cue(clean, "border_share")
    blend = observe(*_scene(backdrop=RED))  # a backdrop of the product's own colour
    assert _cue(blend, "rim_de") < 0.5 * _cue(clean, "rim_de")
    assert _cue(blend, "edge_low_frac") > _cue(clean, "edge_low_frac") + 0.3
    ped = observe(*_scene(pedestal=True))
    assert _cue(ped, "own_under") > _cue(clean, "own_under") + 0.2
    assert _cue(ped, "own_blob") > _cue(clean, "own_blob")
    hole = observe(*_scene(hole=True))
    assert _cue(hole, "off_colour") > _cue(clean, "off_colour") + 0.05
    assert _cue(clean, "long_frac") == pytest.approx(80 / 160, abs=0.02)  # the body is 80 px tall, the canvas 160


def test_colour_jitter_does_not_look_like_a_hole() -> None:
    img, mask, cut = _scene()
    warm = np.clip(img.astype(np.float32) * np.array([1.1, 0.95, 0.85]) + 8, 0, 255).astype(np.uint8)
    assert _cue(observe(warm, mask, cut), "off_colour") < 0.05


def test_no_product_gives_zeros() -> None:
    img, mask, cut = _scene()
    v = observe(img, np.zeros_like(mask), cut)
    assert (v == 0).all()


def test_rfnet_reads_the_cue_token(dataset: Path, tmp_path: Path) -> None:
    from adcreative.inspect import load_inspector
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY, use_cues=True).eval()
    assert "cues" in model.modalities
    items = sample_items(dataset, 3)
    inputs = model.prepare(items)
    assert inputs["cues"].shape == (3, N_CUES) and inputs["cues"][:, CUE_NAMES.index("has_product")].eq(1).all()
    model.fit_cues(torch.randn(50, N_CUES) * 3 + 1)
    enc = model.encode(inputs)
    before = model.logits(enc)
    moved = model.logits({**enc, "cues": enc["cues"] + 5})
    assert not torch.allclose(before, moved), "the cues must reach the logits"
    model.save_pretrained(tmp_path / "m")
    loaded = load_inspector(tmp_path / "m")
    assert loaded.use_cues and torch.equal(loaded.cue_std, model.cue_std)
    np.testing.assert_allclose(loaded.predict_proba(items), model.predict_proba(items), atol=1e-6)
    with pytest.raises(InputError, match="cues"):
        model.encode({k: v for k, v in inputs.items() if k != "cues"})
