"""The interface every registered entry of a family must honour, as reusable checks.

Each family's contract test (``tests/<stage>/test_contract.py``) runs every registered entry through its check at
tiny size, plus a toy entry added with one registry line, so a new entry is covered the moment it is registered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adcreative.core.imageio import png_bytes
from adcreative.core.registry import Registry
from adcreative.core.types import CLASSES, Product, canvas_size


@contextmanager
def registered(registry: Registry[Any], name: str, target: Any, **kw: Any) -> Iterator[None]:
    """Add one entry for the duration of a test (the registries are process-wide)."""
    assert name not in registry.names(), f"{name} is already registered"
    registry.register(name, target, **kw)
    try:
        yield
    finally:
        registry._entries.pop(name, None)
        registry._returns.pop(name, None)


def toy_product(pid: str = "toy", size: tuple[int, int] = (120, 200)) -> Product:
    """A two-colour bottle cutout with a soft edge (no shared data needed)."""
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    w, h = size
    d.rounded_rectangle((w // 6, h // 6, w - w // 6, h - 4), radius=w // 8, fill=(200, 40, 50, 255))
    d.rectangle((w // 6, h // 2, w - w // 6, h // 2 + h // 8), fill=(30, 60, 190, 255))
    return Product(id=pid, title="Sparkling water 500 ml", category="beverage", image=im, copy="Fresh and light",
                   price=2.5)


# -- generators ------------------------------------------------------------------------------------------------
def check_generator(registry: Registry[Any], name: str, config: dict[str, Any], *, aspect: str = "1:1") -> None:
    """Seeded, reproducible from its config, image i uses seed + i, product pixels kept where the mask is."""
    gen = registry.create(name, **config)
    product = toy_product()
    out = gen(product, seed=7, aspect=aspect, n=2)
    assert len(out) == 2 and [g.seed for g in out] == [7, 8]
    for gi in out:
        assert gi.image.mode == "RGB" and gi.mask.mode == "L" and gi.mask.size == gi.image.size
        assert gi.aspect == aspect and gi.generator == gen.name and gi.generator_version == gen.version
        assert np.asarray(gi.mask).any(), "the product must be placed somewhere"
        assert json.loads(json.dumps(gi.params)) == gi.params, "params must be JSON (they go into the manifest)"
        if "product" in gi.layout:
            assert gi.layout["product"].inside(*gi.image.size) or gi.label is not None
    w, h = out[0].image.size
    tw, th = canvas_size(aspect, float(config.get("scale", config.get("canvas_scale", 1.0))))
    assert abs(w / h - tw / th) < 0.05, f"{w}×{h} is not {aspect}"
    # image i alone with seed + i is the same bytes; the config alone rebuilds the generator
    again = registry.create(name, **json.loads(json.dumps(gen.config)))
    assert png_bytes(again(product, seed=8, aspect=aspect, n=1)[0].image) == png_bytes(out[1].image)
    assert png_bytes(gen(product, seed=9, aspect=aspect, n=1)[0].image) != png_bytes(out[1].image)


# -- inspectors ------------------------------------------------------------------------------------------------
def inspect_items(n: int = 3) -> list[Any]:
    """Items with image, placement mask, cutout and title, as recurrent generation builds them."""
    from adcreative.inspect.preprocess import InspectItem

    product = toy_product()
    out = []
    for i in range(n):
        bg = Image.new("RGB", (160, 128 + 16 * i), (230 - 40 * i, 220, 200 + 10 * i))
        mask = Image.new("L", bg.size, 0)
        cut = product.image.resize((48, 80))
        bg.paste(cut, (40 + 10 * i, 30), cut)
        mask.paste(cut.getchannel("A").point(lambda v: 255 if v > 127 else 0), (40 + 10 * i, 30))
        out.append(InspectItem(image=bg, title=product.title, mask=mask, product=product.image, id=f"i{i}"))
    return out


def check_inspector(registry: Registry[Any], name: str, config: dict[str, Any], tmp: Path) -> None:
    """Probabilities over CLASSES; forward_features/forward_head; save → load through the registry → identical."""
    model = registry.create(name, **config)
    items = inspect_items()
    p = np.asarray(model.predict_proba(items))
    assert p.shape == (len(items), len(CLASSES)) and np.allclose(p.sum(1), 1, atol=1e-5) and (p >= 0).all()
    assert callable(model.forward_features) and callable(model.forward_head)
    model.save_pretrained(tmp / name)
    saved = json.loads((tmp / name / "config.json").read_text())
    assert saved["_registry"] == {"family": registry.family, "name": name}
    again = registry.load(tmp / name)
    assert type(again) is type(model)
    np.testing.assert_allclose(np.asarray(again.predict_proba(items)), p, atol=1e-6)


# -- encoders --------------------------------------------------------------------------------------------------
def encoder_images(n: int = 4) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (96, 96 + 8 * i, 3), dtype=np.uint8)) for i in range(n)]


def check_encoder(registry: Registry[Any], name: str, config: dict[str, Any], tmp: Path,
                  embed: Callable[[Any, list[Image.Image]], np.ndarray] | None = None) -> None:
    """L2-normalised (N, dim) float32 rows; save → load through the registry → identical embeddings."""
    model = registry.create(name, **config)
    images = encoder_images()
    texts = [f"product {i}" for i in range(len(images))]
    run = embed or (lambda m, ims: m.embed(ims, texts))
    v = run(model, images)
    assert v.dtype == np.float32 and v.shape[0] == len(images)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    model.save_pretrained(tmp / name)
    assert json.loads((tmp / name / "config.json").read_text())["_registry"] == {"family": registry.family,
                                                                                 "name": name}
    np.testing.assert_allclose(run(registry.load(tmp / name), images), v, atol=1e-5)


# -- preference models -------------------------------------------------------------------------------------------
def check_preference_model(registry: Registry[Any], name: str, config: dict[str, Any], tmp_path: Path,
                           fit: Callable[[Any], None] | None = None) -> None:
    """P(a ≻ b | user) in [0, 1], antisymmetric, ½ for identical creatives; ``scorer(user)`` orders like
    ``prob``; ``explain`` names the winner ``prob`` picks; save → load through the registry answers the same."""
    model = registry.create(name, **config)
    if fit is not None:
        fit(model)
    users = [None, {"segment": "a", "age": 30.0}, {"segment": "b", "age": 55.0}]
    a = {"contrast_de": 45.0, "product_area": 0.3, "brightness": 0.8, "sharpness": 900.0, "has_sale": True}
    b = {"contrast_de": 12.0, "product_area": 0.1, "brightness": 0.3, "sharpness": 200.0, "has_sale": False}
    for u in users:
        p = model.prob(u, a, b)
        assert 0.0 <= p <= 1.0 and abs(p + model.prob(u, b, a) - 1.0) < 1e-9
        assert model.prob(u, a, dict(a)) == 0.5
        s = model.scorer(u)([a, b])
        assert (s[0] > s[1]) == (p > 0.5) or p == 0.5
        ex = model.explain(u, a, b, id_a="A", id_b="B")
        assert ex.no_preference or ex.winner == ("A" if p > 0.5 else "B")
    model.save_pretrained(tmp_path / name)
    back = registry.load(tmp_path / name)
    for u in users:
        assert abs(back.prob(u, a, b) - model.prob(u, a, b)) < 1e-6


# -- selection policies ----------------------------------------------------------------------------------------
def check_policy(registry: Registry[Any], name: str, tmp: Path, **config: Any) -> None:
    """Built from ``n_features``/``n_context``; ranks any candidate subset (a permutation, a propensity in
    (0, 1]); learns from updates; new creatives join; save → load through the registry → identical decisions."""
    rng = np.random.default_rng(0)
    pol = registry.create(name, n_features=3, n_context=2, seed=0, **config)
    ids = [f"c{j}" for j in range(6)]
    pol.add_arms(ids, rng.standard_normal((6, 3)))
    for i in range(60):
        x = rng.standard_normal(2)
        d = pol.rank(ids, x)
        assert sorted(d.order.tolist()) == list(range(6)) and isinstance(d.explored, bool)
        assert 0.0 < d.propensity <= 1.0, d.propensity
        pol.update(ids[int(d.order[0])], float(i % 7 == 0), x)
    pol.update("c1", 1.0, impressions=0.0)                       # a click reported on its own
    sub = ["c4", "c0", "c2"]
    scores = np.array([0.1, 0.9, 0.5])
    d = pol.rank(sub, rng.standard_normal(2), scores, explore=False)
    assert sorted(d.order.tolist()) == [0, 1, 2]
    pol.add_arms(["new"], np.ones((1, 3)))                       # a creative added while serving
    d_new = pol.rank([*sub, "new"], np.zeros(2))
    assert sorted(d_new.order.tolist()) == [0, 1, 2, 3]
    pol.save_pretrained(tmp / name)
    saved = json.loads((tmp / name / "config.json").read_text())
    assert saved["_registry"] == {"family": registry.family, "name": name}
    again = registry.load(tmp / name)
    assert type(again) is type(pol) and again.ids == pol.ids
    x = np.array([0.3, -1.0])
    a, b = pol.rank([*sub, "new"], x, explore=False), again.rank([*sub, "new"], x, explore=False)
    if name != "uniform":  # a uniform policy has no deterministic ranking to compare
        assert a.order.tolist() == b.order.tolist()
    assert a.propensity == pytest.approx(b.propensity)


# -- selection models ------------------------------------------------------------------------------------------
def check_selection_model(registry: Registry[Any], name: str, config: dict[str, Any], inputs: tuple[Any, ...],
                          head_extra: tuple[Any, ...], tmp: Path) -> None:
    """``forward_head(forward_features(*inputs), *head_extra)`` is ``forward(*inputs, *head_extra)``;
    save → load through the registry → identical logits."""
    import torch

    model = registry.create(name, **config).eval()
    with torch.no_grad():
        out = model(*inputs, *head_extra)
        assert torch.allclose(model.forward_head(model.forward_features(*inputs), *head_extra), out)
    model.save_pretrained(tmp / name)
    assert json.loads((tmp / name / "config.json").read_text())["_registry"] == {"family": registry.family, "name": name}
    again = registry.load(tmp / name)
    with torch.no_grad():
        assert torch.equal(again(*inputs, *head_extra), out)
