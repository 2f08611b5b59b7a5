"""The shared labeller on hand-made scenes whose geometry is known exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from adcreative.generate.cutout import paste
from adcreative.generate.measure import (
    Prop,
    SceneReport,
    Support,
    agrees,
    classify,
    decide,
    inner_band,
    lab,
    label_render,
    measure,
    rim_median,
    rim_samples,
)

W = H = 200
RED = (200, 40, 40)
BLUE_WALL = (60, 90, 170)


def _product(h: int = 80, w: int = 40, colour: tuple[int, int, int] = RED) -> np.ndarray:
    """A box-shaped product with a printed band (so it has detail), fully opaque."""
    p = np.zeros((h, w, 4), np.uint8)
    p[..., :3] = colour
    p[h // 3 : h // 3 + 6, 4:-4, :3] = (250, 250, 250)
    p[..., 3] = 255
    return p


def _scene(prod: np.ndarray, x0: int, y0: int, bg: tuple[int, int, int] = BLUE_WALL
           ) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = bg
    img[150:] = (90, 70, 50)  # a floor below the line at y = 150
    vis = paste(img, prod, x0, y0)
    return img, vis


def _report(prod: np.ndarray, x0: int, y0: int, **kw: object) -> SceneReport:
    h, w = prod.shape[:2]
    args: dict = {"support": Support(150, 0, W)}
    args.update(kw)
    return SceneReport(box=(x0, y0, x0 + w, y0 + h), reference=prod, product_cm=20.0, **args)


def test_rim_samples_and_median_read_the_band_along_the_outline() -> None:
    """A 30×30 opaque square in a 40×40 cutout, painted in rings by depth from its outline: 1 px white (the
    edge), 3 px red, 2 px green, blue inside. The inner band skips the edge and is 3 px deep (all red); the edge
    band is the outermost 4 px (white and red)."""
    cut = np.zeros((40, 40, 4), np.uint8)
    for depth, colour in ((0, (250, 250, 250)), (1, RED), (4, (40, 180, 60)), (6, (40, 60, 200))):
        cut[5 + depth : 35 - depth, 5 + depth : 35 - depth] = (*colour, 255)
    red, white = lab(np.float32(RED)), lab(np.float32([250, 250, 250]))
    a = cut[..., 3] > 0
    assert int(inner_band(a, 40).sum()) == 28 * 28 - 22 * 22

    inner = rim_samples(cut)
    assert inner.shape == (300, 3) and np.allclose(inner, red, atol=1e-3)
    assert rim_samples(cut, n=100).shape == (100, 3)  # every third sample
    edge = rim_samples(cut, n=1000, band="edge")
    is_red = np.isclose(edge, red, atol=1e-3).all(axis=1)
    is_white = np.isclose(edge, white, atol=1e-3).all(axis=1)
    assert len(edge) == 30 * 30 - 22 * 22 and (is_red | is_white).all() and is_white.sum() == 30 * 30 - 28 * 28
    assert np.allclose(rim_median(cut, a, 40), red, atol=1e-3)
    assert np.allclose(rim_median(cut[..., :3], a, 40), red, atol=1e-3)

    # fallbacks: a band too thin to hold anything → the opaque pixels; nothing opaque → every pixel
    dot = np.zeros((10, 10, 4), np.uint8)
    dot[4:6, 4:6] = (*RED, 255)
    assert rim_samples(dot).shape == (4, 3) and np.allclose(rim_samples(dot), red, atol=1e-3)
    assert np.allclose(rim_median(dot, dot[..., 3] > 0, 10), red, atol=1e-3)
    assert rim_samples(np.zeros((6, 5, 4), np.uint8)).shape == (30, 3)
    with pytest.raises(ValueError, match="band"):
        rim_samples(cut, band="outer")


def test_clean_product_standing_on_its_support_is_available() -> None:
    prod = _product()
    img, vis = _scene(prod, 80, 150 - 79)
    m = measure(img, vis, _report(prod, 80, 71))
    assert m["gap_px"] == 0 and m["cut"] == 0 and m["missing"] == 0 and m["detail_loss"] == 0
    assert classify(m) == ([], [])
    assert agrees("available", [], [])


def test_gap_sink_overhang_and_stray_shadow_are_space_mismatch() -> None:
    prod = _product()
    img, vis = _scene(prod, 80, 150 - 79 - 20)  # 20 px above the floor: a quarter of its height
    m = measure(img, vis, _report(prod, 80, 51))
    assert m["gap_px"] == 20 and m["gap_rel"] == pytest.approx(20 / 80)
    assert classify(m)[0] == ["space_mismatch"]
    img, vis = _scene(prod, 80, 150 - 79 + 12)  # its base 12 px below the support line
    assert "space_mismatch" in classify(measure(img, vis, _report(prod, 80, 83)))[0]
    img, vis = _scene(prod, 80, 71)  # level with a plinth top that ends before its base starts
    m = measure(img, vis, _report(prod, 80, 71, support=Support(150, 0, 90, "plinth")))
    assert m["overhang"] == pytest.approx(0.75) and "space_mismatch" in classify(m)[0]
    m = measure(img, vis, _report(prod, 80, 71, shadow=(100 + 60, 150.0)))  # shadow 60 px to the side
    assert m["shadow_offset"] == pytest.approx(60 / 80) and "space_mismatch" in classify(m)[0]


def test_cut_holes_and_lost_detail_are_unsuitable() -> None:
    prod = _product()
    img, vis = _scene(prod, -10, 71)  # a quarter of its width past the left edge
    m = measure(img, vis, _report(prod, -10, 71))
    assert m["cut"] == pytest.approx(0.25) and classify(m)[0] == ["unsuitable"]
    img, vis = _scene(prod, 80, 71)
    hole = np.zeros((H, W), np.uint8)
    cv2.circle(hole, (100, 120), 10, 1, -1)
    img[hole > 0] = BLUE_WALL
    vis2 = vis & (hole == 0)
    m = measure(img, vis2, _report(prod, 80, 71))
    assert m["missing"] == pytest.approx(hole.sum() / (80 * 40), abs=0.01) and classify(m)[0] == ["unsuitable"]
    blocky = cv2.resize(cv2.resize(prod, (5, 10), interpolation=cv2.INTER_AREA), (40, 80),
                        interpolation=cv2.INTER_NEAREST)
    img, vis = _scene(blocky, 80, 71)
    m = measure(img, vis, _report(prod, 80, 71))  # measured against the clean product
    assert m["detail_loss"] > 0.45 and "unsuitable" in classify(m)[0]


def test_scale_against_recognisable_props_and_the_canvas() -> None:
    prod = _product()  # 80 px for 20 cm: 4 px per cm
    img, vis = _scene(prod, 80, 71)
    mug_true = Prop((20, 110, 52, 150), cm=10.0, kind="mug")  # 40 px for 10 cm: the same scale
    mug_toy = Prop((20, 30, 52, 150), cm=10.0, kind="mug")  # 120 px for 10 cm: the product is a toy beside it
    ball = Prop((20, 30, 52, 150), cm=10.0, kind="sphere", cue=False)  # decorative: no scale cue
    assert measure(img, vis, _report(prod, 80, 71, props=[mug_true]))["scale_ratio"] == pytest.approx(1.0)
    m = measure(img, vis, _report(prod, 80, 71, props=[mug_toy]))
    assert m["scale_ratio"] == pytest.approx(1 / 3, abs=1e-3) and classify(m)[0] == ["size_mismatch"]
    assert measure(img, vis, _report(prod, 80, 71, props=[ball]))["scale_ratio"] is None
    tiny = _product(16, 8)  # 16 px in a 200 px canvas
    img, vis = _scene(tiny, 90, 150 - 15)
    m = measure(img, vis, _report(tiny, 90, 135))
    assert m["long_frac"] == pytest.approx(0.08) and "size_mismatch" in classify(m)[0]


def test_backdrop_in_the_products_colour_is_indistinct() -> None:
    prod = _product()
    img, vis = _scene(prod, 80, 71, bg=(196, 44, 42))
    m = measure(img, vis, _report(prod, 80, 71))
    assert m["edge_low_frac"] > 0.5 and "indistinctiveness" in classify(m)[0]
    img, vis = _scene(prod, 80, 71)
    assert measure(img, vis, _report(prod, 80, 71))["edge_low_frac"] < 0.2


def test_support_in_the_products_colours_continuing_it_is_a_hallucination() -> None:
    prod = _product()
    img, vis = _scene(prod, 80, 150 - 79 - 30)  # raised 30 px ...
    objects = np.zeros((H, W), np.int32)
    objects[121:151, 84:116] = 1  # ... on a pedestal as wide as its base
    for colour, expected in ((RED, True), ((20, 110, 110), False)):
        img2 = img.copy()
        img2[objects > 0] = colour
        rep = _report(prod, 80, 41, support=Support(120, 84, 116, "pedestal"), objects=objects)
        found, _ = classify(measure(img2, vis, rep))
        assert ("shape_hallucination" in found) is expected, colour
    # a tabletop of the product's colour reaching far past it on both sides is a contrast matter, not a part
    img, vis = _scene(prod, 80, 71)
    table = np.zeros((H, W), np.int32)
    table[150:170, 0:W] = 1
    img[table > 0] = RED
    m = measure(img, vis, _report(prod, 80, 71, objects=table))
    assert m["touch_px"] == 0


def test_decide_and_agrees() -> None:
    assert decide("space_mismatch", ["unsuitable", "space_mismatch"]) == "space_mismatch"
    assert decide("size_mismatch", ["unsuitable"]) == "unsuitable"
    assert decide(None, []) == decide("available", []) == "available"
    assert agrees("unsuitable", ["unsuitable"], ["indistinctiveness"])
    assert not agrees("unsuitable", ["unsuitable", "size_mismatch"], [])
    assert not agrees("available", [], ["indistinctiveness"])
    with pytest.raises(ValueError, match="unknown class"):
        agrees("blurry", [], [])
    prod = _product()
    img, vis = _scene(prod, 80, 71)
    out = label_render(img, vis, _report(prod, 80, 71), "available")
    assert out["label"] == "available" and out["agrees"] is True and out["geometry"]["support"]["y"] == 150
