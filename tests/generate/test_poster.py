"""The ``poster`` renderer family (flat graphic-design banners): every defect kind drawn and measured as drawn,
available banners clear of every rule, supersampled vector shapes, odd products, bad input, determinism (the
family-wide contract is in test_families)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adcreative.core.errors import InputError
from adcreative.core.imageio import png_bytes
from adcreative.core.types import ASPECTS, CLASSES, Product
from adcreative.generate import create_generator
from adcreative.generate.cutout import OPAQUE, crop_rgba, fit
from adcreative.generate.measure import delta_e
from adcreative.generate.poster import _DEFECT_KINDS, _Colours, _design_palette, _Sheet
from adcreative.inspect.datasets.synth import RENDERERS


def _by_id(products: list[Product], *ids: str) -> list[Product]:
    got = {p.id: p for p in products}
    return [got[i] for i in ids]


def test_registered_as_a_dataset_family() -> None:
    assert "poster" in RENDERERS
    gen = create_generator("poster", scale=0.3)
    assert gen.name == "poster" and gen.config == {"scale": 0.3, "text_rate": 0.65, "prop_rate": 0.5}


@pytest.mark.parametrize("label", [c for c in CLASSES if c != "available"])
def test_every_kind_of_each_class_is_drawn_and_measured_as_drawn(label: str, sample_products: list[Product]) -> None:
    """Over seeded draws each kind of the class comes up, each is measured as the class at least once, and most
    first draws already agree with the shared labeller (no other class found)."""
    gen = create_generator("poster", scale=0.35)
    products = _by_id(sample_products, "herbal-shampoo", "anc-headphones", "espresso-cup", "honey-granola")
    seen: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    for i in range(30):
        gi = gen(products[i % 4], seed=7000 + i, aspect=list(ASPECTS)[i % 4], defect=label, severity=0.7)[0]
        kind = gi.params["kind"]
        seen[kind] += 1
        agreed[kind] += bool(gi.params["agrees"])
        assert gi.params["requested"] == label and gi.label in CLASSES
        if gi.params["agrees"]:
            assert gi.params["defects"] == [label] and gi.label == label
    assert set(_DEFECT_KINDS[label]) == set(seen), (label, seen)
    assert all(agreed[k] >= 1 for k in seen), (label, seen, agreed)
    assert sum(agreed.values()) >= 0.8 * sum(seen.values()), (label, seen, agreed)


@pytest.mark.parametrize("severity", [0.2, 1.0])
def test_severity_spans_borderline_to_blatant(severity: float, sample_products: list[Product]) -> None:
    """At 0.2 a defect lands just past its threshold; at 1.0 it is blatant; both are measured as the class."""
    gen = create_generator("poster", scale=0.35)
    p = _by_id(sample_products, "herbal-shampoo")[0]
    for label in ("unsuitable", "space_mismatch", "size_mismatch"):
        ok = sum(bool(gen(p, seed=50 + i, aspect="1:1", defect=label, severity=severity)[0].params["agrees"])
                 for i in range(6))
        assert ok >= 4, (label, severity, ok)


def test_available_banners_are_clear_of_every_rule(sample_products: list[Product]) -> None:
    gen = create_generator("poster", scale=0.35)
    ok = 0
    for i, p in enumerate(sample_products[:6]):
        for j in range(3):
            gi = gen(p, seed=300 + 10 * i + j, aspect=list(ASPECTS)[(i + j) % 4], defect="available")[0]
            ok += bool(gi.params["agrees"])
            if gi.params["agrees"]:
                m = gi.params["measured"]
                assert gi.params["defects"] == [] and gi.params["doubtful"] == []
                assert m["cut"] == 0 and m["missing"] == 0 and m["gap_px"] == 0 and m["shadow_offset"] <= 0.15
                assert m["rim_de"] >= 18  # its backdrop stands off its outline
                if m["scale_ratio"] is not None:  # icon props at its scale
                    assert 1 / 1.3 < m["scale_ratio"] < 1.3
    assert ok >= 0.9 * 18, ok


def test_the_designed_palette_stands_off_the_product(sample_products: list[Product]) -> None:
    """Field and stage colours come from a harmony on the product's hue and stand off its rim, lit and shaded;
    the stage is not in the product's own colours."""
    for k, p in enumerate(sample_products):
        col = _Colours(crop_rgba(p.image))
        pal = _design_palette(np.random.default_rng(k), col)
        assert col.standoff(pal.field) >= 30, p.id
        assert col.standoff(pal.stage) >= 30 and col.own_de(pal.stage) > 10, p.id
        assert delta_e(pal.field, pal.stage) > 5, p.id


def test_shapes_are_supersampled_vectors() -> None:
    """A disc drawn on a sheet comes back anti-aliased (partial pixels on its rim) with its object id painted
    without blending."""
    sh = _Sheet(np.full((40, 40, 3), 255, np.float32))
    sh.ellipse((8.3, 8.3, 31.7, 31.7), np.array([0, 0, 0], np.float32), obj=7)
    rgb, ids = sh.finish()
    grey = rgb[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    partial = (grey > 10) & (grey < 245)
    assert 20 < int(partial.sum()) < 200  # a thin anti-aliased rim, not a blur
    assert set(np.unique(ids)) == {0, 7} and ids[20, 20] == 7 and ids[2, 2] == 0


def test_clean_render_pastes_the_cutout_untouched(sample_products: list[Product]) -> None:
    gen = create_generator("poster", scale=0.4)
    p = _by_id(sample_products, "espresso-cup")[0]
    for seed in range(4):
        gi = gen(p, seed=seed, aspect="4:5", defect="available")[0]
        x0, y0, x1, y1 = gi.params["product_box"]
        ref = fit(crop_rgba(p.image), x1 - x0, y1 - y0)
        mask = np.asarray(gi.mask) > 0
        img = np.asarray(gi.image)
        ys, xs = np.nonzero(mask)
        assert np.array_equal(img[ys, xs], ref[ys - y0, xs - x0, :3])
        assert mask.sum() == int((ref[..., 3] >= OPAQUE).sum())


@pytest.mark.parametrize("size", [(6, 9), (600, 24), (24, 600), (900, 12)],
                         ids=["tiny", "very-wide", "very-tall", "sliver"])
def test_odd_products_render_every_class(size: tuple[int, int]) -> None:
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((0, 0, size[0] - 1, size[1] - 1), fill=(40, 120, 200, 255))
    p = Product(id="odd", title="Odd thing", category="household", image=im)
    gen = create_generator("poster", scale=0.3)
    for c, label in enumerate(CLASSES):
        for aspect in ("1:1", "16:9", "9:16"):
            gi = gen(p, seed=40 + c, aspect=aspect, defect=label, severity=0.9)[0]
            assert gi.label in CLASSES and np.asarray(gi.mask).any(), (label, aspect)


def test_bad_input_raises_input_error(sample_products: list[Product]) -> None:
    gen = create_generator("poster", scale=0.3)
    empty = Product(id="empty", title="Nothing", category="household", image=Image.new("RGBA", (40, 40), (9, 9, 9, 0)))
    with pytest.raises(InputError, match="alpha is empty"):
        gen(empty, seed=0)
    ghost = Product(id="ghost", title="Ghost", category="household",
                    image=Image.new("RGBA", (40, 40), (9, 9, 9, 120)))
    with pytest.raises(InputError, match="no opaque pixels"):
        gen(ghost, seed=0)
    with pytest.raises(InputError, match="unknown aspect"):
        gen(sample_products[0], seed=0, aspect="2:1")
    with pytest.raises(InputError, match="scale"):
        create_generator("poster", scale=0.0)
    with pytest.raises(InputError, match="shares"):
        create_generator("poster", text_rate=1.5)


def test_seeded_and_repeatable(sample_products: list[Product]) -> None:
    p = sample_products[1]
    a = create_generator("poster", scale=0.3)(p, seed=5, aspect="16:9", n=2, defect="indistinctiveness")
    b = create_generator("poster", scale=0.3)(p, seed=5, aspect="16:9", n=2, defect="indistinctiveness")
    assert [png_bytes(x.image) for x in a] == [png_bytes(x.image) for x in b]
    assert a[1].params == b[1].params and png_bytes(a[0].image) != png_bytes(a[1].image)
