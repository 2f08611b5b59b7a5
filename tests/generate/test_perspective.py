"""The ``perspective`` renderer family: every defect kind drawn and measured as drawn, a consistent camera,
shadows projected along the light, odd products, determinism (the family-wide contract is in test_families)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adcreative.core.imageio import png_bytes
from adcreative.core.types import ASPECTS, CLASSES, Product
from adcreative.generate import create_generator
from adcreative.generate.cutout import OPAQUE, crop_rgba, fit
from adcreative.generate.perspective import _DEFECT_KINDS, _Camera, _shadow_map
from adcreative.inspect.datasets.synth import RENDERERS


def _by_id(products: list[Product], *ids: str) -> list[Product]:
    got = {p.id: p for p in products}
    return [got[i] for i in ids]


def test_registered_as_a_dataset_family() -> None:
    assert "perspective" in RENDERERS
    gen = create_generator("perspective", scale=0.3)
    assert gen.name == "perspective" and gen.config == {"scale": 0.3, "text_rate": 0.6, "dof_rate": 0.4}


@pytest.mark.parametrize("label", [c for c in CLASSES if c != "available"])
def test_every_kind_of_each_class_is_drawn_and_measured_as_drawn(label: str, sample_products: list[Product]) -> None:
    """Over seeded draws each kind of the class comes up, each is measured as the class at least once, and most
    first draws already agree with the shared labeller (no other class found)."""
    gen = create_generator("perspective", scale=0.35)
    products = _by_id(sample_products, "herbal-shampoo", "anc-headphones", "espresso-cup", "honey-granola")
    seen: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    for i in range(24):
        gi = gen(products[i % 4], seed=7000 + i, aspect=list(ASPECTS)[i % 4], defect=label, severity=0.7)[0]
        kind = gi.params["kind"]
        seen[kind] += 1
        agreed[kind] += bool(gi.params["agrees"])
        assert gi.params["requested"] == label and gi.label in CLASSES
        if gi.params["agrees"]:
            assert gi.params["defects"] == [label] and gi.label == label
    expected = set(_DEFECT_KINDS[label])
    if label == "indistinctiveness":
        expected.discard("low-key")  # drawn only for dark products (a light one goes into fog instead)
    assert expected <= set(seen), (label, seen)
    assert all(agreed[k] >= 1 for k in expected), (label, seen, agreed)
    assert sum(agreed.values()) >= 0.6 * sum(seen.values()), (label, seen, agreed)


def test_available_renders_are_clear_of_every_rule(sample_products: list[Product]) -> None:
    gen = create_generator("perspective", scale=0.35)
    ok = 0
    for i, p in enumerate(sample_products[:6]):
        for j in range(3):
            gi = gen(p, seed=300 + 10 * i + j, aspect=list(ASPECTS)[(i + j) % 4], defect="available")[0]
            ok += bool(gi.params["agrees"])
            if gi.params["agrees"]:
                m = gi.params["measured"]
                assert gi.params["defects"] == [] and gi.params["doubtful"] == []
                assert m["cut"] == 0 and m["missing"] == 0 and m["gap_px"] == 0
                if m["scale_ratio"] is not None:  # props beside it stand at its depth: one scale
                    assert 1 / 1.3 < m["scale_ratio"] < 1.3
    assert ok >= 0.75 * 18, ok


def test_dark_products_are_drawn_low_key(sample_products: list[Product]) -> None:
    """A dark product can sink into a low-key room of its own colour, and is then measured as indistinct."""
    im = Image.new("RGBA", (90, 160), (0, 0, 0, 0))
    ImageDraw.Draw(im).rounded_rectangle((10, 10, 80, 156), radius=14, fill=(34, 30, 40, 255))
    dark = Product(id="dark", title="Charcoal bottle", category="household", image=im)
    gen = create_generator("perspective", scale=0.35)
    draws = [gen(dark, seed=s, defect="indistinctiveness", severity=0.8)[0] for s in range(12)]
    low = [g for g in draws if g.params["kind"] == "low-key"]
    assert low and any(g.params["agrees"] for g in low)


def test_the_camera_projects_what_it_casts() -> None:
    """A pixel's ray at a depth projects back to that pixel; points on the floor farther away rise towards the
    horizon, and equal heights shrink with depth."""
    cam = _Camera(f=600.0, cx=256.0, yh=180.0, yaw=0.2, height=40.0)
    for u, v, d in ((100.0, 300.0, 80.0), (400.0, 220.0, 300.0)):
        assert np.allclose(cam.project(cam.point(u, v, d)), [u, v, d], atol=1e-6)
    near, far = cam.project(np.array([[0.0, 0.0, 100.0], [0.0, 0.0, 400.0]]))
    assert far[1] < near[1] and far[1] > cam.yh
    tall = cam.project(np.array([[0.0, 0.0, 100.0], [0.0, 20.0, 100.0], [0.0, 0.0, 400.0], [0.0, 20.0, 400.0]]))
    assert abs((tall[0, 1] - tall[1, 1]) / (tall[2, 1] - tall[3, 1]) - tall[2, 2] / tall[0, 2]) < 1e-6


def test_the_cast_shadow_is_the_silhouette_projected_along_the_light() -> None:
    """The homography keeps the contact line in place and throws the top away from the light, further the
    lower the light."""
    cam = _Camera(f=600.0, cx=256.0, yh=150.0, yaw=0.0, height=30.0)
    depth, vc = 150.0, 150.0 + 600.0 * 30.0 / 150.0  # the floor at that depth
    box = (200, int(vc) - 120, 312, int(vc))
    for lx in (-1.0, 1.0):
        for elev, _ in ((0.9, None), (0.5, None)):
            L = np.array([lx * np.cos(elev), np.sin(elev), 0.0])
            Hm = _shadow_map(cam, depth, 0.0, L, np.zeros(3), box)
            foot = Hm @ np.array([256.0, float(int(vc)), 1.0])
            top = Hm @ np.array([256.0, float(int(vc) - 120), 1.0])
            foot, top = foot[:2] / foot[2], top[:2] / top[2]
            assert np.allclose(foot, [256.0, int(vc)], atol=0.6)
            assert np.sign(top[0] - 256.0) == -lx  # away from the light
    steep = _shadow_map(cam, depth, 0.0, np.array([np.cos(1.2), np.sin(1.2), 0.0]), np.zeros(3), box)
    low = _shadow_map(cam, depth, 0.0, np.array([np.cos(0.5), np.sin(0.5), 0.0]), np.zeros(3), box)
    tip = np.array([256.0, float(int(vc) - 120), 1.0])
    a, b = steep @ tip, low @ tip
    assert abs(b[0] / b[2] - 256) > abs(a[0] / a[2] - 256)


@pytest.mark.parametrize("size", [(6, 9), (600, 24), (24, 600), (900, 12)],
                         ids=["tiny", "very-wide", "very-tall", "sliver"])
def test_odd_products_render_every_class(size: tuple[int, int]) -> None:
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((0, 0, size[0] - 1, size[1] - 1), fill=(40, 120, 200, 255))
    p = Product(id="odd", title="Odd thing", category="household", image=im)
    gen = create_generator("perspective", scale=0.3)
    for c, label in enumerate(CLASSES):
        for aspect in ("1:1", "16:9", "9:16"):
            gi = gen(p, seed=40 + c, aspect=aspect, defect=label, severity=0.9)[0]
            assert gi.label in CLASSES and np.asarray(gi.mask).any(), (label, aspect)


def test_clean_render_pastes_the_cutout_untouched(sample_products: list[Product]) -> None:
    gen = create_generator("perspective", scale=0.4)
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


def test_seeded_and_repeatable(sample_products: list[Product]) -> None:
    p = sample_products[1]
    a = create_generator("perspective", scale=0.3)(p, seed=5, aspect="16:9", n=2, defect="space_mismatch")
    b = create_generator("perspective", scale=0.3)(p, seed=5, aspect="16:9", n=2, defect="space_mismatch")
    assert [png_bytes(x.image) for x in a] == [png_bytes(x.image) for x in b]
    assert a[1].params == b[1].params and png_bytes(a[0].image) != png_bytes(a[1].image)
