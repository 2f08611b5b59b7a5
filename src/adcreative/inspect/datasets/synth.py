"""``dataset synth``: a labelled inspection dataset of available and defective creatives, split by product.

For every product and class, ``per_class`` images at severities drawn from [0.2, 1], cycling aspect ratios.
A synthesised bad source (a torn or low-resolution product) is written as that sample's own product cutout:
the auditor is given the source it was made from. An image is kept only when the compositor's measurements
confirm its label (a forced defect that did not materialise, e.g. a touching prop that landed clear of the
product, or an "available" scene the rule flags); otherwise it is redrawn with the next seed, so labels never
contradict what was rendered.
Colourways (hue-rotated copies of a product, as separate SKUs) widen a small catalogue; a colourway always
lands in the same split as its source product, so no product crosses splits.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from adcreative.core.imageio import atomic_write_text, save_png
from adcreative.core.types import CLASSES, Product
from adcreative.generate.base import GeneratedImage
from adcreative.generate.compositor.generator import Compositor
from adcreative.inspect.datasets.formats import SPLITS, Sample, summarize, write_manifest


def colourway(product: Product, k: int) -> Product:
    """Product ``k`` of a colour range: the cutout's hue rotated by k/6 of a turn (alpha untouched)."""
    im = product.image.convert("RGBA")
    hsv = np.asarray(im.convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(256 * k / 6)) % 256).astype(np.uint8)
    rgb = Image.fromarray(hsv, "HSV").convert("RGB")
    rgb.putalpha(im.getchannel("A"))
    return Product(id=f"{product.id}~c{k}", title=product.title, category=product.category, image=rgb,
                   copy=product.copy, price=product.price, attrs={**product.attrs, "source_product": product.id})


def assign_splits(product_ids: list[str], *, seed: int = 0, val: float = 0.15, test: float = 0.2,
                  fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Product → split; at least one product in each split when there are three or more products."""
    fixed = dict(fixed or {})
    free = sorted((p for p in product_ids if p not in fixed),
                  key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    n = len(free)
    n_test = max(1 if n >= 3 else 0, round(n * test)) if not any(v == "test" for v in fixed.values()) else round(n * test)
    n_val = max(1 if n >= 3 else 0, round(n * val)) if not any(v == "val" for v in fixed.values()) else round(n * val)
    out = dict(fixed)
    for i, p in enumerate(free):
        out[p] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


MAX_REDRAWS = 8


def _confirmed(label: str, params: dict) -> bool:
    """The measurements agree with the label: a defect was found by the rule, or none was for "available"."""
    found = params.get("defects", [])
    return not found if label == "available" else label in found


def _draw(gen: Compositor, p: Product, seed: int, aspect: str, label: str, severity: float) -> GeneratedImage:
    for k in range(MAX_REDRAWS):
        gi = gen(p, seed=seed + k, aspect=aspect, defect=label, severity=severity)[0]
        if _confirmed(label, gi.params):
            break
    return gi  # after MAX_REDRAWS the last draw stands; the rule label is in its params for auditing


def _source_id(p: Product) -> str:
    """The product a sample counts as for splits: a colourway's source, else the product itself."""
    return str(p.attrs.get("source_product", p.id))


def product_seed(seed: int, product_id: str) -> int:
    """The seed of one product's draws: from the dataset seed and the product id alone, so a product's images
    do not depend on which other products are in the set (or on which worker renders them)."""
    return int(hashlib.sha256(f"{seed}:{product_id}".encode()).hexdigest()[:8], 16)


def _render_product(gen: Compositor, p: Product, out: Path, split: str, per_class: int, aspects: list[str],
                    seed: int) -> list[Sample]:
    """Every class's images of one product, written under ``out``; returns their samples."""
    src = _source_id(p)
    prod_rel = Path("products") / f"{_safe(p.id)}.png"
    save_png(out / prod_rel, p.image)
    rng = np.random.default_rng(product_seed(seed, p.id))
    samples = []
    for label in CLASSES:
        for i in range(per_class):
            s = int(rng.integers(2**31))
            severity = 0.0 if label == "available" else float(rng.uniform(0.2, 1.0))
            aspect = aspects[(i + CLASSES.index(label)) % len(aspects)]
            gi = _draw(gen, p, s, aspect, label, severity)
            sid = f"{_safe(p.id)}-{label}-{i:04d}"
            save_png(out / "images" / f"{sid}.png", gi.image)
            save_png(out / "masks" / f"{sid}.png", gi.mask)
            sample_prod = prod_rel
            if gi.source is not None:  # a bad source product: the damaged cutout is this sample's input
                sample_prod = Path("products") / f"{sid}.png"
                save_png(out / sample_prod, gi.source)
            samples.append(Sample(id=sid, image=out / "images" / f"{sid}.png", mask=out / "masks" / f"{sid}.png",
                                  product=out / sample_prod, product_id=src, title=p.title, category=p.category,
                                  label=label, split=split, severity=round(severity, 4), aspect=aspect, seed=gi.seed,
                                  generator=f"{gi.generator}@{gi.generator_version}",
                                  params={"forced": gi.params["forced"], "measured": gi.params["measured"]}))
    return samples


_WORKER_GEN: Compositor | None = None


def _worker_init(config: dict) -> None:
    global _WORKER_GEN
    _WORKER_GEN = Compositor(**config)


def _worker_render(args: tuple) -> list[Sample]:
    assert _WORKER_GEN is not None
    return _render_product(_WORKER_GEN, *args)


def synth_dataset(products: list[Product], out: str | Path, *, per_class: int = 20, aspects: list[str] | None = None,
                  seed: int = 0, scale: float = 1.0, colourways: int = 0, splits: dict[str, str] | None = None,
                  generator: Compositor | None = None, workers: int = 1) -> dict[str, dict[str, int]]:
    """Write the dataset folder (see docs/dataset.md); returns counts per split and class. ``workers`` > 1
    renders products in that many processes; the dataset is the same for any number of workers."""
    out = Path(out)
    for sub in ("images", "masks", "products"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    aspects = aspects or ["1:1", "4:5", "16:9", "9:16"]
    gen = generator or Compositor(scale=scale)
    split_of = assign_splits([p.id for p in products], seed=seed, fixed=splits)
    all_products = list(products)
    for p in products:
        all_products += [colourway(p, k) for k in range(1, colourways + 1)]
    jobs = [(p, out, split_of[_source_id(p)], per_class, aspects, seed)
            for p in all_products]
    per_product: list[list[Sample]] = []
    total = len(all_products) * len(CLASSES) * per_class
    with tqdm(total=total, desc="synth", unit="img") as bar:
        if workers <= 1:
            for job in jobs:
                per_product.append(_render_product(gen, *job))
                bar.update(len(per_product[-1]))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may hold threads (torch, tqdm's monitor) that a fork would copy mid-lock
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                     initargs=(dict(gen.config),)) as pool:
                for got in pool.map(_worker_render, jobs, chunksize=1):
                    per_product.append(got)
                    bar.update(len(got))
    samples = [s for group in per_product for s in group]
    write_manifest(out, samples)
    summary = summarize(samples)
    readme = ["# Synthesised inspection dataset", "",
              f"Made by `adcreative dataset synth` (compositor {gen.version}, config {json.dumps(gen.config)}), seed {seed}.",
              f"{len(products)} products (+{colourways} colourways each), {per_class} images per class per product.", "",
              "| split | products | " + " | ".join(CLASSES) + " |", "|---|---|" + "---|" * len(CLASSES)]
    for sp in SPLITS:
        prods = sorted(p for p, v in split_of.items() if v == sp)
        readme.append(f"| {sp} | {', '.join(prods)} | " + " | ".join(str(summary.get(sp, {}).get(c, 0)) for c in CLASSES) + " |")
    atomic_write_text(out / "README.md", "\n".join(readme) + "\n\nFormat: see docs/dataset.md in the adcreative repository.\n")
    return summary


def _safe(pid: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pid)
