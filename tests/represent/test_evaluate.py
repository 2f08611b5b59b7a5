"""Evaluation protocols: the constructed sets are consistent and the metrics compute what they claim."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.represent.evaluate import creative_set, near_duplicate_set, recall_at_k


def test_compositor_set_keeps_image_mask_and_boxes_aligned(sample_products: list) -> None:
    items = creative_set(sample_products[:2], 2, seed=0, aspects=["9:16"], scale=0.5, defects=True)
    assert len(items) == 4 and {it.product_id for it in items} == {p.id for p in sample_products[:2]}
    for it in items:
        assert it.mask is not None and it.mask.size == it.image.size
        x0, y0, _, _ = it.layout["product"]
        m = np.asarray(it.mask) > 127
        ys, xs = np.nonzero(m)
        assert abs(xs.min() - x0) <= 2 and abs(ys.min() - y0) <= 2  # the scaled box still frames the product
        assert it.text.startswith(next(p.title for p in sample_products if p.id == it.product_id))


def test_near_duplicate_set_has_both_kinds(sample_products: list) -> None:
    items = creative_set(sample_products[:1], 3, seed=0, source="paste", scale=0.25)
    pairs = near_duplicate_set(items, seed=0)
    kinds = {p.kind for p in pairs}
    assert kinds == {"crop", "jpeg", "jitter", "mixed", "same_product"}
    assert all(p.duplicate == (p.kind != "same_product") for p in pairs)


def test_recall_at_k() -> None:
    g = np.eye(4, dtype=np.float32)
    q = g[[0, 1, 3, 2]]  # queries 2 and 3 are swapped
    assert recall_at_k(q, g, 1) == 0.5
    assert recall_at_k(q, g, 4) == 1.0


@pytest.mark.slow
def test_run_evaluation_is_reproducible_for_a_seed(tmp_path) -> None:
    """One seed gives one measurement: the encoder it trains (heads' initial weights included) and the figures."""
    from safetensors.torch import load_file

    from adcreative.represent.evaluate import run_evaluation

    reports = [run_evaluation(tmp_path / str(i), products="sample", per_product=2, test_products=3, steps=2,
                              seed=0, dup_calibration_items=8) for i in range(2)]
    a, b = (load_file(tmp_path / str(i) / "encoder" / "model.safetensors") for i in range(2))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    assert reports[0]["table"] == reports[1]["table"]
