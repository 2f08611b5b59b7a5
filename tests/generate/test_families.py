"""The scene-renderer families (compositor, photoset, softfocus, perspective, poster, lowkey) under one contract
and one labeller."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.core.imageio import MIN_SIDE, png_bytes
from adcreative.core.types import ASPECTS, CLASSES, Product
from adcreative.generate import GENERATORS, create_generator
from adcreative.generate.cutout import OPAQUE, crop_rgba, fit
from adcreative.inspect.datasets.synth import RENDERERS, _draw

NEW = ("photoset", "softfocus", "perspective", "poster", "lowkey")


def _products(sample_products: list[Product]) -> list[Product]:
    """A tall bottle, a wide pair of headphones and a cup with a handle: three different silhouettes."""
    by_id = {p.id: p for p in sample_products}
    return [by_id["herbal-shampoo"], by_id["anc-headphones"], by_id["espresso-cup"]]


@pytest.mark.parametrize("family", RENDERERS)
def test_each_family_draws_each_class_as_measured(family: str, sample_products: list[Product]) -> None:
    """Every class can be drawn by every family, and what is kept is what the shared labeller measured."""
    gen = create_generator(family, scale=0.5)
    first = 0
    for k, p in enumerate(_products(sample_products)):
        for c, label in enumerate(CLASSES):
            gi, redraws = _draw(gen, p, 1000 * k + 10 * c, "1:1", label, 0.7)
            first += redraws == 0
            assert gi.params["agrees"], (family, p.id, label, gi.params["defects"], gi.params["doubtful"])
            assert gi.label == label and gi.params["requested"] == label
            assert (label == "available") == (gi.params["defects"] == [])
    assert first >= 0.5 * 3 * len(CLASSES), first  # most first draws already show the class asked for


@pytest.mark.parametrize("family", NEW)
@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_clean_renders_keep_the_products_pixels(family: str, aspect: str, sample_products: list[Product]) -> None:
    gen = create_generator(family, scale=0.5)
    for k, p in enumerate(_products(sample_products)):
        gi = gen(p, seed=20 + k, aspect=aspect, defect="available")[0]
        w, h = gi.image.size
        assert gi.image.mode == "RGB" and (w, h) == tuple(round(v * 0.5) for v in ASPECTS[aspect])
        assert gi.mask.size == gi.image.size and gi.placement is None and gi.source is None
        assert all(b.inside(w, h) for b in gi.layout.values()), gi.layout
        x0, y0, x1, y1 = gi.params["product_box"]
        ref = fit(crop_rgba(p.image), x1 - x0, y1 - y0)
        canvas = np.zeros((h, w, 3), np.uint8)
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        canvas[cy0:cy1, cx0:cx1] = ref[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, :3]
        mask = np.asarray(gi.mask) > 0
        assert mask.sum() == int((ref[..., 3] >= OPAQUE).sum())  # the whole product, every opaque pixel
        assert np.array_equal(np.asarray(gi.image)[mask], canvas[mask])


@pytest.mark.parametrize("family", NEW)
def test_same_seed_same_bytes(family: str, sample_products: list[Product]) -> None:
    p = sample_products[0]
    a = create_generator(family, scale=0.4)(p, seed=42, aspect="4:5", n=3, defect="shape_hallucination")
    b = create_generator(family, scale=0.4)(p, seed=42, aspect="4:5", n=3, defect="shape_hallucination")
    assert [png_bytes(x.image) for x in a] == [png_bytes(x.image) for x in b]
    assert [png_bytes(x.mask) for x in a] == [png_bytes(x.mask) for x in b]
    assert a[0].params == b[0].params
    assert len({png_bytes(x.image) for x in a}) == 3  # n images use seeds 42, 43, 44
    solo = create_generator(family, scale=0.4)(p, seed=44, aspect="4:5", defect="shape_hallucination")[0]
    assert png_bytes(solo.image) == png_bytes(a[2].image)


@pytest.mark.parametrize("family", NEW)
def test_registered_and_arguments_checked(family: str, sample_products: list[Product]) -> None:
    assert family in GENERATORS.names()
    gen = create_generator(family, scale=0.3)
    assert gen.name == family and gen.config["scale"] == 0.3
    with pytest.raises(ValueError, match="unknown defect"):
        gen(sample_products[0], seed=0, defect="blurry")
    with pytest.raises(ValueError, match="severity"):
        gen(sample_products[0], seed=0, defect="size_mismatch", severity=2.0)
    with pytest.raises(ValueError, match="unknown aspect"):
        gen(sample_products[0], seed=0, aspect="3:1")


@pytest.mark.parametrize("family", NEW)
def test_damage_is_reported_as_source_or_placement(family: str, sample_products: list[Product]) -> None:
    """A bad source comes back as the cutout the auditor is given (loadable); damage drawn into the image comes
    back with the placement mask, which covers more than the visible product."""
    gen = create_generator(family, scale=0.4)
    sources, placements = 0, 0
    for s in range(24):
        gi = gen(sample_products[s % 3], seed=s, defect="unsuitable", severity=0.8)[0]
        if gi.source is not None:
            sources += 1
            assert gi.source.mode == "RGBA" and min(gi.source.size) >= MIN_SIDE
        if gi.placement is not None:
            placements += 1
            assert (np.asarray(gi.placement) > 0).sum() > (np.asarray(gi.mask) > 0).sum()
    assert sources and placements


@pytest.mark.shared
@pytest.mark.parametrize("family", NEW)
def test_real_jd_cutouts(family: str, jd_products: list[Product]) -> None:
    gen = create_generator(family, scale=0.4)
    agree = 0
    for k, p in enumerate(jd_products):
        for label in CLASSES:
            gi = gen(p, seed=k, aspect=list(ASPECTS)[k % 4], defect=label)[0]
            agree += bool(gi.params["agrees"])
            assert gi.label in CLASSES
    assert agree >= 0.5 * len(jd_products) * len(CLASSES)
