"""The ``lowkey`` renderer family (dark premium shots under hard coloured light): every defect kind drawn and
measured as drawn, available shots clear of every rule, the mirror floor, odd products, bad input, determinism
(the family-wide contract is in test_families)."""

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
from adcreative.generate.lowkey import _DEFECT_KINDS, _mirror, _Tones
from adcreative.generate.measure import lab
from adcreative.inspect.datasets.synth import RENDERERS


def _by_id(products: list[Product], *ids: str) -> list[Product]:
    got = {p.id: p for p in products}
    return [got[i] for i in ids]


def test_registered_as_a_dataset_family() -> None:
    assert "lowkey" in RENDERERS
    gen = create_generator("lowkey", scale=0.3)
    assert gen.name == "lowkey" and gen.config == {"scale": 0.3, "text_rate": 0.6, "prop_rate": 0.55}


@pytest.mark.parametrize("label", [c for c in CLASSES if c != "available"])
def test_every_kind_of_each_class_is_drawn_and_measured_as_drawn(label: str, sample_products: list[Product]) -> None:
    """Over seeded draws each kind of the class comes up, each is measured as the class at least once, and most
    first draws already agree with the shared labeller (no other class found)."""
    gen = create_generator("lowkey", scale=0.35)
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
    gen = create_generator("lowkey", scale=0.3)
    p = _by_id(sample_products, "herbal-shampoo")[0]
    for label in ("unsuitable", "space_mismatch", "size_mismatch", "indistinctiveness"):
        ok = sum(bool(gen(p, seed=50 + i, aspect="1:1", defect=label, severity=severity)[0].params["agrees"])
                 for i in range(5))
        assert ok >= 4, (label, severity, ok)


def test_available_shots_are_clear_of_every_rule(sample_products: list[Product]) -> None:
    """Dark and light products alike stand whole on their support, at their props' scale, in clear contrast
    with the dark set (a dark product is backlit by a lighter pool)."""
    gen = create_generator("lowkey", scale=0.3)
    ok = 0
    for i, p in enumerate(sample_products[:6]):
        for j in range(3):
            gi = gen(p, seed=300 + 10 * i + j, aspect=list(ASPECTS)[(i + j) % 4], defect="available")[0]
            ok += bool(gi.params["agrees"])
            if gi.params["agrees"]:
                m = gi.params["measured"]
                assert gi.params["defects"] == [] and gi.params["doubtful"] == []
                assert m["cut"] == 0 and m["missing"] == 0 and m["gap_px"] == 0 and m["shadow_offset"] <= 0.15
                assert m["rim_de"] >= 18
                if m["scale_ratio"] is not None:
                    assert 1 / 1.3 < m["scale_ratio"] < 1.3
    assert ok >= 0.9 * 18, ok


def test_the_set_is_low_key(sample_products: list[Product]) -> None:
    """Most of the picture is dark (the corners fall away), whatever the product's own lightness."""
    gen = create_generator("lowkey", scale=0.3)
    for p in _by_id(sample_products, "herbal-shampoo", "anc-headphones"):
        for seed in range(3):
            gi = gen(p, seed=seed, aspect="4:5", defect="available")[0]
            L = lab(np.asarray(gi.image, np.float32))[..., 0]
            corners = np.concatenate([L[:8, :8].ravel(), L[:8, -8:].ravel(), L[-8:, :8].ravel(), L[-8:, -8:].ravel()])
            assert float(np.median(corners)) < 30, (p.id, seed)


def test_the_mirror_floor_reflects_what_stands_on_it() -> None:
    """Below the axis the layer comes back flipped, fading with distance; nothing above the axis changes."""
    H, W, axis = 60, 20, 30
    plate = np.zeros((H, W, 3), np.float32)
    pre = np.zeros((H, W, 3), np.float32)
    alpha = np.zeros((H, W), np.float32)
    pre[20:30, 5:15] = 200.0
    alpha[20:30, 5:15] = 1.0
    out = _mirror(plate, pre, alpha, axis, 0.5, 8.0, 0.5, False, np.random.default_rng(0))
    assert np.array_equal(out[:axis], plate[:axis])
    col = out[axis:, 10, 0]
    assert col[0] > 50 and col[0] > col[5] > col[15] and col[20] < 5


def test_clean_render_pastes_the_cutout_untouched(sample_products: list[Product]) -> None:
    gen = create_generator("lowkey", scale=0.35)
    p = _by_id(sample_products, "face-serum")[0]
    for seed in range(4):
        gi = gen(p, seed=seed, aspect="4:5", defect="available")[0]
        x0, y0, x1, y1 = gi.params["product_box"]
        ref = fit(crop_rgba(p.image), x1 - x0, y1 - y0)
        mask = np.asarray(gi.mask) > 0
        img = np.asarray(gi.image)
        ys, xs = np.nonzero(mask)
        assert np.array_equal(img[ys, xs], ref[ys - y0, xs - x0, :3])
        assert mask.sum() == int((ref[..., 3] >= OPAQUE).sum())


def test_indistinct_sets_take_the_products_colour(sample_products: list[Product]) -> None:
    """An indistinct shot is measured with a low contrast across the product's outline."""
    gen = create_generator("lowkey", scale=0.3)
    p = _by_id(sample_products, "anc-headphones")[0]
    tones = _Tones(crop_rgba(p.image))
    assert tones.L < 40  # a dark product: "swallowed" loses it in the darkness
    for seed in range(4):
        gi = gen(p, seed=seed, aspect="1:1", defect="indistinctiveness", severity=0.8)[0]
        if gi.params["agrees"]:
            m = gi.params["measured"]
            assert m["rim_de"] < 12 or m["edge_low_frac"] > 0.5


@pytest.mark.parametrize("size", [(6, 9), (600, 24), (24, 600), (900, 12)],
                         ids=["tiny", "very-wide", "very-tall", "sliver"])
def test_odd_products_render_every_class(size: tuple[int, int]) -> None:
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((0, 0, size[0] - 1, size[1] - 1), fill=(40, 120, 200, 255))
    p = Product(id="odd", title="Odd thing", category="household", image=im)
    gen = create_generator("lowkey", scale=0.25)
    for c, label in enumerate(CLASSES):
        for aspect in ("1:1", "16:9", "9:16"):
            gi = gen(p, seed=40 + c, aspect=aspect, defect=label, severity=0.9)[0]
            assert gi.label in CLASSES and np.asarray(gi.mask).any(), (label, aspect)


def test_bad_input_raises_input_error(sample_products: list[Product]) -> None:
    gen = create_generator("lowkey", scale=0.3)
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
        create_generator("lowkey", scale=0.0)
    with pytest.raises(InputError, match="shares"):
        create_generator("lowkey", prop_rate=-0.1)


def test_seeded_and_repeatable(sample_products: list[Product]) -> None:
    p = sample_products[1]
    a = create_generator("lowkey", scale=0.3)(p, seed=5, aspect="16:9", n=2, defect="indistinctiveness")
    b = create_generator("lowkey", scale=0.3)(p, seed=5, aspect="16:9", n=2, defect="indistinctiveness")
    assert [png_bytes(x.image) for x in a] == [png_bytes(x.image) for x in b]
    assert a[1].params == b[1].params and png_bytes(a[0].image) != png_bytes(a[1].image)
