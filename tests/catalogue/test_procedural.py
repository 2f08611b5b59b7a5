"""Procedural and fitted SKUs: varied, valid, deterministic cutouts; fitted outlines concave and clean."""

from __future__ import annotations

import cv2
import numpy as np

from adcreative.core.types import Product
from adcreative.generate import GeneratedImage
from adcreative.generate.compositor.generator import Compositor, prepare


def _check_generated(gi: GeneratedImage, product: Product) -> None:
    w, h = gi.image.size
    boxes = list(gi.layout.items())
    for i, (ka, a) in enumerate(boxes):
        assert a.inside(w, h), (ka, a)
        for kb, b in boxes[i + 1 :]:
            assert not a.intersects(b), (ka, kb)
    # the product's own pixels, resized once, are copied bit for bit inside the mask
    x0, y0, x1, y1 = gi.params["product_box"]
    prod = cv2.resize(prepare(product).rgba, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((h, w, 3), np.uint8)
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    canvas[cy0:cy1, cx0:cx1] = prod[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, :3]
    mask = np.asarray(gi.mask) > 0
    assert mask.sum() > 100
    assert np.array_equal(np.asarray(gi.image)[mask], canvas[mask])


def test_procedural_skus_are_varied_valid_cutouts() -> None:
    from adcreative.catalogue.procedural import procedural_products

    ps = procedural_products(16, seed=3)
    assert len({p.id for p in ps}) == 16 and len({p.attrs["shape"] for p in ps}) >= 4
    assert [p.title for p in procedural_products(3, seed=3)] == [p.title for p in ps[:3]]  # deterministic
    for p in ps:
        a = np.asarray(p.image.getchannel("A"))
        assert p.image.mode == "RGBA" and 0.2 < (a > 127).mean() < 1.0 and p.title.strip()
        gi = Compositor(scale=0.3)(p, seed=1, defect="available")[0]
        _check_generated(gi, p)


def test_fitted_skus_have_concave_clean_silhouettes() -> None:
    """Fitted SKUs are the clean products whose outlines have notches (pumps, handles, wheels): their cutouts
    must be far from convex, deterministic, and composable like any product."""
    from adcreative.catalogue.procedural import fitted_product, fitted_products

    ps = fitted_products(24, seed=1)
    assert len({p.attrs["shape"] for p in ps}) >= 6
    assert fitted_product(100_001).image.tobytes() == ps[1].image.tobytes()  # deterministic per seed
    solidity = []
    for p in ps:
        a = (np.asarray(p.image.getchannel("A")) > 127).astype(np.uint8)
        cnts, _ = cv2.findContours(a, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        c = max(cnts, key=cv2.contourArea)
        solidity.append(cv2.contourArea(c) / cv2.contourArea(cv2.convexHull(c)))
        assert p.image.mode == "RGBA" and p.title.strip() and p.category
    assert float(np.median(solidity)) < 0.93, solidity  # most are visibly concave
    for p in ps[:4]:
        _check_generated(Compositor(scale=0.3)(p, seed=2, defect="available")[0], p)


def test_skinned_skus_keep_the_drawn_silhouette_under_a_photographic_surface() -> None:
    """Skinned SKUs are the procedural and fitted shapes with photographic surfaces: the same alpha, title and
    shape as the SKU of the same seed (so the labeller's geometry and the product's size are unchanged), several
    surfaces, far more fine texture than the flat drawn fill, deterministic, composable like any product."""
    from adcreative.catalogue.procedural import (
        SURFACES,
        fitted_product,
        procedural_product,
        skinned_product,
        skinned_products,
    )

    ps = skinned_products(12, seed=2)
    assert [p.id for p in ps[:2]] == ["skin-proc-200000", "skin-proc-200001"] and ps[-1].id == "skin-fit-200005"
    assert skinned_product(200_001).image.tobytes() == ps[1].image.tobytes()  # deterministic per seed
    assert {p.attrs["surface"] for p in ps} <= set(SURFACES) and len({p.attrs["surface"] for p in ps}) >= 3

    def texture(rgb: np.ndarray, inside: np.ndarray) -> float:  # fine detail away from the outline
        inner = cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        lap = cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)
        return float(np.median(np.abs(lap[inner])))

    flat = 0
    for i, p in enumerate(ps):
        base = procedural_product(200_000 + i) if i < 6 else fitted_product(200_000 + i - 6)
        a, b = np.asarray(p.image), np.asarray(base.image)
        assert p.image.mode == "RGBA" and a.shape == b.shape
        assert np.array_equal(a[..., 3], b[..., 3])  # the silhouette is the drawn SKU's, pixel for pixel
        assert (p.title, p.category, p.attrs["shape"]) == (base.title, base.category, base.attrs["shape"])
        inside = a[..., 3] > 127
        assert np.abs(a[..., :3].astype(int) - b[..., :3].astype(int))[inside].mean() > 2.0  # a new surface
        if texture(b[..., :3], inside) <= 1.0:  # a flat drawn fill (some fitted SKUs have grain already)
            flat += 1
            assert texture(a[..., :3], inside) >= 2.0, p.attrs  # grain, print, brushed streaks, a mesh
    assert flat >= 6
    for p in ps[:3]:
        _check_generated(Compositor(scale=0.3)(p, seed=2, defect="available")[0], p)


def _long_cut(alpha: np.ndarray) -> float:
    """The longest straight stretch of the outline that is not the product's base, over its longer side."""
    a = (alpha > 127).astype(np.uint8)
    cnts, _ = cv2.findContours(a, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    c = max(cnts, key=cv2.contourArea)
    poly = cv2.approxPolyDP(c, 2.0, True)[:, 0, :].astype(float)
    bottom = float(poly[:, 1].max())
    best = 0.0
    for p, q in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        if min(p[1], q[1]) > bottom - 4:  # the base the product stands on is not a cut
            continue
        best = max(best, float(np.hypot(*(q - p))))
    return best / max(a.shape)


def _perimeter(a: np.ndarray) -> float:
    cnts, _ = cv2.findContours(a, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return float(cv2.arcLength(max(cnts, key=cv2.contourArea), True))


def test_lookalike_skus_are_whole_products_with_damage_like_outlines() -> None:
    """Lookalike SKUs are whole products whose outlines resemble drawn damage (a straight cut across the
    shape, a fuzzy outline, wheels with gaps): several kinds, one piece each, deterministic, marked as drawn,
    and composable like any product with their pixels kept."""
    from adcreative.catalogue.procedural import lookalike_product, lookalike_products
    from adcreative.inspect.datasets.synth import product_source
    from adcreative.inspect.decision import is_drawn

    ps = lookalike_products(24, seed=4)
    kinds = {p.attrs["shape"] for p in ps}
    assert len(kinds) >= 6, kinds
    assert lookalike_product(400_002).image.tobytes() == ps[2].image.tobytes()  # deterministic per seed
    # a straight cut across the shape: a hem, a cuff, a rim, a slanted tip, a slice's or a cut fruit's face
    cut = {"shirt", "dress", "bowl", "slanted", "wedge", "cut_fruit"}
    for p in ps:
        alpha = np.asarray(p.image.getchannel("A"))
        assert p.image.mode == "RGBA" and p.title.strip() and p.category and p.id.startswith("look-")
        _, _, stats, _ = cv2.connectedComponentsWithStats((alpha > 127).astype(np.uint8), connectivity=8)
        parts = sorted(stats[1:, cv2.CC_STAT_AREA], reverse=True)
        assert parts[0] >= 0.98 * (alpha > 127).sum(), (p.id, p.attrs, parts[:3])
        assert product_source(p) == "lookalike" and is_drawn(product_source(p))
        if p.attrs["shape"] in cut:  # a straight cut across the shape that is not the base it stands on
            assert _long_cut(alpha) >= 0.12, (p.id, p.attrs, _long_cut(alpha))
        if p.attrs["shape"] == "plush":  # fur: an outline far longer than its smoothed self
            a = (alpha > 127).astype(np.uint8)
            smooth = (cv2.GaussianBlur(a.astype(np.float32), (0, 0), 4.0) > 0.5).astype(np.uint8)
            assert _perimeter(a) > 1.25 * _perimeter(smooth), p.id
    for p in ps[:4]:
        _check_generated(Compositor(scale=0.3)(p, seed=2, defect="available")[0], p)
