"""Evaluation protocols of the represent stage (used by ``adcreative represent eval`` and the tests).

* :func:`retrieval_recall` — recall@k of finding another augmented view of the same creative among the
  views of *all* creatives (same-product creatives included), learned embeddings vs raw ImageNet features.
* :func:`near_duplicate_set` — a constructed set of pairs: (creative, its crop / recompression / colour
  jitter) are duplicates; (creative, another creative of the same product) are not.
* :func:`creative_set` — creatives of given products from the compositor generator (the default), with
  optional synthesised defects for quality labels; or, where the compositor is not installed, product
  cutouts pasted on varied backgrounds (``source="paste"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from adcreative.core.types import ASPECTS, Product, canvas_size
from adcreative.represent.augment import AugmentConfig, color_jitter, jpeg, random_crop, views

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
_HEADLINES = ("New Arrival", "Summer Sale", "Best Seller", "Limited Offer", "Free Shipping", "Top Pick",
              "Save 20%", "Just Landed", "Fresh Look", "Shop Now")


@dataclass
class SetItem:
    image: Image.Image
    product_id: str
    text: str
    label: str = "available"
    mask: Image.Image | None = None
    layout: dict[str, Any] = field(default_factory=dict)


def _paste_scene(product: Product, rng: np.random.Generator, aspect: str, scale: float) -> SetItem:
    """A plain compositing of the cutout on a random gradient/floor/props background with a headline."""
    w, h = canvas_size(aspect, scale)
    c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    bg = ((1 - t) * c1 + t * c2).repeat(w, axis=1).astype(np.uint8)
    im = Image.fromarray(bg, "RGB")
    d = ImageDraw.Draw(im)
    if rng.random() < 0.6:
        d.rectangle((0, int(h * rng.uniform(0.6, 0.8)), w, h), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for _ in range(int(rng.integers(0, 4))):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(8, max(9, w // 6)))
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    cut = product.image.crop(product.image.getchannel("A").getbbox())
    s = rng.uniform(0.4, 0.7) * min(w, h) / max(cut.size)
    cut = cut.resize((max(1, round(cut.width * s)), max(1, round(cut.height * s))), Image.Resampling.LANCZOS)
    x0 = int(rng.integers(0, max(1, w - cut.width)))
    y0 = int(rng.integers(h // 5, max(h // 5 + 1, h - cut.height)))
    im.paste(cut, (x0, y0), cut)
    mask = Image.new("L", (w, h), 0)
    mask.paste(cut.getchannel("A"), (x0, y0))
    head = str(rng.choice(_HEADLINES))
    font = ImageFont.truetype(str(FONT), max(10, h // 14))
    d.text((int(w * 0.06), int(h * 0.04)), head, font=font, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return SetItem(im, product.id, f"{product.title} | {product.category} | {head}", mask=mask,
                   layout={"product": [x0, y0, x0 + cut.width, y0 + cut.height]})


def creative_set(products: Sequence[Product], per_product: int, *, seed: int = 0, aspects: Sequence[str] = ("1:1",),
                 scale: float = 0.5, source: str = "compositor", defects: bool = False) -> list[SetItem]:
    """``per_product`` creatives for each product; with ``defects`` about half are synthesised defects
    (RF1M classes, varied severity) so they carry quality labels."""
    from adcreative.core.types import DEFECTS

    rng = np.random.default_rng(seed)
    out: list[SetItem] = []
    gen: Any = None
    if source == "compositor":
        from adcreative.generate.base import create_generator

        gen = create_generator("compositor")
    elif source != "paste":
        raise ValueError(f"unknown creative source {source!r} (compositor or paste)")
    for pi, p in enumerate(products):
        for i in range(per_product):
            aspect = aspects[i % len(aspects)]
            defect = str(rng.choice(DEFECTS)) if defects and rng.random() < 0.5 else None
            if gen is None:
                out.append(_paste_scene(p, rng, aspect, scale))
                continue
            s = seed * 100_003 + pi * 1009 + i
            (g,) = gen(p, seed=s, aspect=aspect, n=1, defect=defect, severity=float(rng.uniform(0.3, 1.0)))
            im = g.image
            if scale != 1.0:
                im = im.resize((max(16, round(im.width * scale)), max(16, round(im.height * scale))),
                               Image.Resampling.BILINEAR)
            from adcreative.represent.encoder import creative_text

            out.append(SetItem(im, p.id, creative_text(p.title, p.category, g.params),
                               label=g.label or "available", mask=g.mask,
                               layout={k: b.as_list() for k, b in g.layout.items()}))
    return out


def recall_at_k(queries: np.ndarray, gallery: np.ndarray, k: int = 1) -> float:
    """Fraction of queries i whose own gallery row i is among their k nearest (cosine) gallery rows."""
    sims = queries @ gallery.T
    top = np.argsort(-sims, axis=1)[:, :k]
    return float(np.mean([i in top[i] for i in range(len(queries))]))


def retrieval_views(items: Sequence[SetItem], seed: int, cfg: AugmentConfig | None = None
                    ) -> tuple[list[Image.Image], list[Image.Image]]:
    """Two independent augmented views (query, gallery) of every creative."""
    qs, gs = [], []
    for i, it in enumerate(items):
        a, b = views(it.image, 2, seed=seed * 7919 + i, cfg=cfg)
        qs.append(a)
        gs.append(b)
    return qs, gs


@dataclass
class DupPair:
    a: int  # index into the items
    b_image: Image.Image
    duplicate: bool
    kind: str  # crop | jpeg | jitter | mixed | same_product


def near_duplicate_set(items: Sequence[SetItem], seed: int = 0) -> list[DupPair]:
    """For every creative: one crop, one recompression, one colour jitter, one mixed transform
    (duplicates) and two genuinely different creatives of the same product (non-duplicates)."""
    rng = np.random.default_rng(seed)
    by_product: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_product.setdefault(it.product_id, []).append(i)
    pairs = []
    for i, it in enumerate(items):
        im = it.image.convert("RGB")
        pairs.append(DupPair(i, random_crop(im, rng, (0.6, 0.95), (0.85, 1.18)), True, "crop"))
        pairs.append(DupPair(i, jpeg(im, int(rng.integers(20, 70))), True, "jpeg"))
        pairs.append(DupPair(i, color_jitter(im, rng, 0.25, 0.25, 0.25, 0.03), True, "jitter"))
        pairs.append(DupPair(i, views(im, 1, seed=int(rng.integers(1 << 30)))[0], True, "mixed"))
        others = [j for j in by_product[it.product_id] if j != i]
        for j in rng.choice(others, size=min(2, len(others)), replace=False) if others else []:
            pairs.append(DupPair(i, items[int(j)].image.convert("RGB"), False, "same_product"))
    return pairs


def available_rate(items: Sequence[SetItem]) -> float:
    return float(np.mean([it.label == "available" for it in items])) if items else 0.0


def aspects_all() -> list[str]:
    return list(ASPECTS)
