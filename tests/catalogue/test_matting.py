"""Matting: studio photos of real cutouts round-trip to their alpha; photos without a plain backdrop are flagged;
the band-limited closed-form solver is pymatting's closed-form matte."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adcreative.catalogue import matting
from adcreative.catalogue.studio import studio_photo
from tests.paths import SHARED

pytestmark = pytest.mark.slow  # pymatting compiles its numba kernels on first import (cached afterwards)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0.5) & (b > 0.5)).sum() / max(((a > 0.5) | (b > 0.5)).sum(), 1))


def test_closed_form_over_the_band_is_pymattings_closed_form() -> None:
    from pymatting import estimate_alpha_cf

    rng = np.random.default_rng(0)
    img = rng.random((48, 56, 3))
    tri = np.zeros((48, 56))
    tri[12:36, 12:44] = 1
    tri[8:16, 8:48] = 0.5
    tri[30:40, 20:30] = 0.5
    ref = estimate_alpha_cf(img, tri, laplacian_kwargs={"epsilon": 1e-6})
    ours = matting.closed_form_alpha(img.astype(np.float32), tri.astype(np.float32), epsilon=1e-6)
    assert np.abs(ref - ours).max() < 1e-4


@pytest.mark.parametrize("backdrop", ["white", "grey"])
def test_real_cutout_on_a_studio_backdrop_round_trips(backdrop: str) -> None:
    path = SHARED / "products" / "6.png"  # a pressure cooker: silver body, black handles, a hole in one handle
    if not path.exists():
        pytest.skip(f"real product cutouts not available ({path} is absent)")
    shot = studio_photo(Image.open(path), backdrop, seed=7, size=640)
    m = matting.matte(shot.photo)
    assert _iou(m.alpha, shot.alpha) >= 0.95
    assert m.quality >= matting.QUALITY_THRESHOLD
    # The contact shadow under the pot is background, not product.
    shadow = (shot.shadow > 0.1) & (shot.alpha < 0.05)
    assert shadow.sum() > 800
    assert (m.alpha[shadow] > 0.5).mean() < 0.05


def test_sample_product_round_trips_with_its_holes_transparent() -> None:
    from adcreative.catalogue.sample import sample_catalogue

    tote = next(p for p in sample_catalogue() if p.id == "market-tote")  # the straps enclose backdrop
    shot = studio_photo(tote.image, "white", seed=1, size=600)
    m = matting.matte(shot.photo)
    assert _iou(m.alpha, shot.alpha) >= 0.95
    enclosed = (shot.alpha < 0.05) & _enclosed(shot.alpha > 0.5)
    assert enclosed.sum() > 500, "the tote's straps should enclose some backdrop"
    assert (m.alpha[enclosed] < 0.5).mean() > 0.9


def _enclosed(fg: np.ndarray) -> np.ndarray:
    """Background pixels not connected to the image border (holes of the product)."""
    import cv2

    _, labels = cv2.connectedComponents((~fg).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ~fg & ~np.isin(labels, border)


def test_cutout_has_no_backdrop_fringe() -> None:
    from adcreative.catalogue.sample import sample_catalogue

    can = next(p for p in sample_catalogue() if p.id == "citrus-can")
    shot = studio_photo(can.image, "white", seed=2, size=600)
    m = matting.matte(shot.photo)
    soft = (m.alpha > 0.05) & (m.alpha < 0.95)
    assert soft.sum() > 100
    # Mixed pixels keep the product's colour, not the white behind it: on black they are not brighter than the
    # photo's nearby product pixels.
    raw = np.asarray(shot.photo, np.float32) / 255
    assert m.foreground[soft].mean() < raw[soft].mean() - 0.03


def test_photo_without_a_plain_backdrop_is_flagged() -> None:
    from skimage import data

    for im in (data.astronaut(), data.coffee(), data.chelsea()):
        m = matting.matte(Image.fromarray(im))
        assert m.quality < matting.QUALITY_THRESHOLD, m.scores


def test_flat_photo_has_no_product() -> None:
    m = matting.matte(Image.new("RGB", (200, 160), (250, 250, 250)))
    assert m.quality == 0.0 and m.scores["cover"] == 0.0
