"""dataset synth's aspect ratios: the class cannot be read off the aspect ratio."""

from __future__ import annotations

import numpy as np

from adcreative.core.types import CLASSES
from adcreative.inspect.datasets.synth import aspect_starts


def test_one_image_per_class_does_not_tie_a_class_to_an_aspect() -> None:
    # per_class 1 over 400 products: every class takes every aspect, about equally (the old cycle gave class k
    # aspect k for every product: available always 1:1, size mismatch always 9:16)
    n_aspects, products = 4, [f"p{i}" for i in range(400)]
    counts = np.zeros((len(CLASSES), n_aspects))
    for pid in products:
        for k, a in enumerate(aspect_starts(11, pid, "poster", n_aspects)):
            counts[k, a] += 1
    share = counts / counts.sum(1, keepdims=True)
    assert bool((np.abs(share - 1 / n_aspects) < 0.08).all()), share
    # and no class agrees with another on its aspect more than chance (1/4)
    starts = np.array([aspect_starts(11, pid, "poster", n_aspects) for pid in products])
    assert float((starts[:, 0] == starts[:, 4]).mean()) < 0.32


def test_aspect_starts_are_seeded_and_per_family() -> None:
    a = aspect_starts(3, "sku-1", "softfocus", 4)
    assert a == aspect_starts(3, "sku-1", "softfocus", 4) and len(a) == len(CLASSES)
    others = [aspect_starts(3, "sku-1", r, 4) for r in ("compositor", "photoset", "perspective", "poster")]
    assert any(o != a for o in others)
