"""Layout planner: boxes inside the canvas and disjoint for every aspect ratio."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.core.types import ASPECTS
from adcreative.generate.compositor.layout import check_layout, plan_layout

TEXTS = [
    ("Short", None, None, None),
    ("A very long product title that has to wrap over several lines to fit", "Copy " * 12, "$1,299.00", "-35%"),
    ("Noise-Cancelling Wireless Headphones", "40 h battery, fast charge", "$199.00", "SALE"),
]


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_layout_boxes_inside_and_disjoint(aspect: str) -> None:
    w, h = ASPECTS[aspect]
    for seed in range(25):
        for headline, copy, price, badge in TEXTS:
            lay = plan_layout(w, h, np.random.default_rng(seed), headline=headline, copy=copy, price=price, badge=badge)
            check_layout(lay)  # raises on overlap or out of canvas
            boxes = [*list(lay.boxes().values()), lay.product_region]
            for i, a in enumerate(boxes):
                assert a.inside(w, h)
                assert all(not a.intersects(b) for b in boxes[i + 1 :])
            assert "headline" in lay.blocks  # the headline always fits, shrinking if it must
