"""RFNet's preprocessing: saliency stands in for a missing mask; colour affinity lights up product colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from adcreative.inspect.datasets.formats import read_dataset


def test_saliency_stands_in_for_a_missing_mask(dataset: Path) -> None:
    from adcreative.inspect.data import load_sample
    from adcreative.inspect.preprocess import preprocess_item, saliency_map

    item = load_sample(read_dataset(dataset)[0])
    sal = saliency_map(item.image)
    assert sal.shape == item.image.size[::-1] and sal.min() >= 0 and sal.max() <= 1
    item.mask = None
    arr = preprocess_item(item, image_size=64, aux_size=32)
    assert arr["aux"].shape == (4, 32, 32) and arr["aux"][0].max() > 0


def test_colour_affinity_lights_up_product_colours_only() -> None:
    """The affinity map is high where the image has the cutout's colours and low elsewhere: a shape in the
    product's colours beside it (hallucination) shows, a contrasting background does not."""

    from adcreative.inspect.preprocess import colour_affinity, product_palette

    cut = np.zeros((60, 40, 4), np.uint8)
    cut[..., :3] = (200, 30, 30)  # a red product with a white label
    cut[20:40, 5:35, :3] = 250
    cut[..., 3] = 255
    pal = product_palette(Image.fromarray(cut, "RGBA"))
    assert len(pal) == 2 and np.allclose(sorted(pal[:, 1]), [30 / 255, 250 / 255], atol=0.02)
    assert np.array_equal(pal, product_palette(Image.fromarray(cut, "RGBA")))  # deterministic
    scene = np.zeros((50, 80, 3), np.uint8)
    scene[:] = (20, 90, 200)  # a blue background
    scene[10:40, 10:30] = (200, 30, 30)  # the product
    scene[10:40, 30:45] = (190, 35, 32)  # a near-identical slab continuing it
    aff = colour_affinity(scene, pal)
    assert aff.shape == (50, 80) and aff.min() >= 0 and aff.max() <= 1
    assert aff[20, 20] > 0.99 and aff[20, 38] > 0.8 and aff[5, 70] < 0.01
