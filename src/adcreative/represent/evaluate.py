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

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from adcreative.core.types import ASPECTS, Product, canvas_size
from adcreative.represent.augment import AugmentConfig, color_jitter, jpeg, random_crop, views

# Views for evaluation: the transformations a creative meets between our store and a screen or a copycat
# (platform re-crops keep ≥ 70 % of the area, recompression, mild colour shifts). Training uses stronger ones.
EVAL_VIEWS = AugmentConfig(crop_scale=(0.7, 1.0), brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03,
                           jpeg_quality=(30, 95))

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
            im, mask = g.image, g.mask
            layout = {k: b.as_list() for k, b in g.layout.items()}
            if scale != 1.0:  # image, mask and boxes together
                size = (max(16, round(im.width * scale)), max(16, round(im.height * scale)))
                im = im.resize(size, Image.Resampling.BILINEAR)
                mask = mask.resize(size, Image.Resampling.NEAREST)
                layout = {k: [round(v * scale) for v in b] for k, b in layout.items()}
            from adcreative.represent.encoder import creative_text

            out.append(SetItem(im, p.id, creative_text(p.title, p.category, p.copy, p.attrs.get("headline")),
                               label=g.label or "available", mask=mask, layout=layout))
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


# -- shared-trunk embedding of many images ---------------------------------------------------------------
def embed_pair(encoder: Any, raw_tail: Any, images: Sequence[Image.Image], texts: Sequence[str] | None,
               batch_size: int = 32, *, multiscale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(learned embeddings, raw ImageNet features) of ``images``, running the frozen trunk once for both.
    The raw features are EfficientNet-Lite0's pooled 1280-d head, or with ``multiscale`` the untrained
    multi-scale descriptor the learned heads start from."""
    import torch
    from torch.nn import functional as F

    from adcreative.represent.encoder import TextEmbedder, describe

    tvec = torch.from_numpy(TextEmbedder()(list(texts))) if (texts is not None and encoder.use_text) else None
    ours, raw = [], []
    encoder.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out = encoder.trunk_features(encoder.preprocess(images[i: i + batch_size]))
            t = tvec[i: i + batch_size] if tvec is not None else None
            ours.append(F.normalize(encoder.forward_head(describe(out, encoder.tail), t), dim=1).numpy())
            if raw_tail is not None:
                r = describe(out, raw_tail) if multiscale else raw_tail(out[0])[1]
                raw.append(F.normalize(r, dim=1).numpy())
    return np.concatenate(ours), (np.concatenate(raw) if raw else np.zeros((0, 0), np.float32))


def near_duplicate_scores(encoder: Any, raw_tail: Any, items: Sequence[SetItem], seed: int = 0
                          ) -> tuple[list[DupPair], np.ndarray, np.ndarray]:
    """Constructed pairs and their cosine similarities under (learned, raw ImageNet) embeddings. Near-duplicate
    detection is image-only (a copy shares no text metadata with its source)."""
    pairs = near_duplicate_set(items, seed=seed)
    a_ours, a_raw = embed_pair(encoder, raw_tail, [it.image for it in items], None)
    b_ours, b_raw = embed_pair(encoder, raw_tail, [p.b_image for p in pairs], None)
    ai = np.array([p.a for p in pairs])
    s_ours = (a_ours[ai] * b_ours).sum(1)
    s_raw = (a_raw[ai] * b_raw).sum(1) if raw_tail is not None else np.zeros(0)
    return pairs, s_ours, s_raw


def near_duplicate_pairs_scores(encoder: Any, items: Sequence[SetItem], *, min_precision: float = 0.99,
                                seed: int = 0) -> tuple[Any, np.ndarray]:
    """Calibrate the near-duplicate threshold of ``encoder`` on pairs built from ``items``."""
    from adcreative.represent.index import calibrate_threshold

    pairs, s, _ = near_duplicate_scores(encoder, None, items, seed)
    return calibrate_threshold(s, np.array([p.duplicate for p in pairs]), min_precision=min_precision), s


def _products(spec: str) -> list[Product]:
    from adcreative.catalogue.importer import read_catalogue_folder
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.errors import InputError

    out: list[Product] = []
    for part in spec.split("+"):
        if part == "sample":
            out += sample_catalogue()
        elif part == "shared":
            out += shared_products()
        else:
            p = Path(part)
            if not p.is_dir():
                raise InputError("not a product folder (or 'sample' / 'shared')", source=p)
            out += read_catalogue_folder(p, None)
    return out


# The seven real JD cutouts in ../shared/data/products have no titles; these describe what they show
# (the same as tests/data/jd_products.json).
SHARED_TITLES = {"0": ("Next-Gen Game Console with Wireless Controller", "electronics", "4K gaming, ultra-fast SSD"),
                 "1": ("Velvet Matte Lipstick in Gold Case", "beauty", "Long-wear colour, 12 shades"),
                 "2": ("Whitening Foam Toothpaste", "personal_care", "Fresh breath all day"),
                 "4": ("Red Skincare Essence Set", "beauty", "Cleanser, toner and essence"),
                 "5": ("Carry-on Spinner Luggage 20 inch", "travel", "Featherlight shell, silent wheels"),
                 "6": ("Stainless Steel Pressure Cooker 6 L", "kitchen", "Cooks twice as fast"),
                 "8": ("Flagship Smartphone 256 GB", "electronics", "Pro camera, all-day battery")}


def shared_products(root: Path | None = None) -> list[Product]:
    """The real product cutouts beside the project (``../shared/data/products``), or [] when absent."""
    from adcreative.core.imageio import load_cutout

    d = root or Path.cwd() / ".." / "shared" / "data" / "products"
    out = []
    for key, (title, cat, copy) in SHARED_TITLES.items():
        p = d / f"{key}.png"
        if p.is_file():
            out.append(Product(id=f"jd-{key}", title=title, category=cat, image=load_cutout(p), copy=copy))
    return out


def run_evaluation(out: Path, *, products: str = "sample+shared", per_product: int = 24, test_products: int = 5,
                   steps: int = 600, seed: int = 0, dup_calibration_items: int = 96) -> dict[str, Any]:
    """The whole measurement of the represent stage on held-out products; writes report.json and plots."""
    import copy
    import time

    import torch
    from sklearn.metrics import roc_auc_score

    from adcreative.core.imageio import atomic_write_text
    from adcreative.represent.encoder import CreativeEncoder, train_encoder
    from adcreative.represent.index import Index, KnnQuality, Outcome, calibrate_threshold

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prods = _products(products)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(prods))
    test_p = [prods[i] for i in order[:test_products]]
    train_p = [prods[i] for i in order[test_products:]]
    t0 = time.perf_counter()
    aspects = list(ASPECTS)
    train = creative_set(train_p, per_product, seed=seed, aspects=aspects, defects=True)
    test = creative_set(test_p, per_product, seed=seed + 1, aspects=aspects, defects=True)
    t_gen = time.perf_counter() - t0

    torch.manual_seed(seed)  # the heads' initial weights too, so one seed gives one measurement
    enc = CreativeEncoder()
    raw_tail = copy.deepcopy(enc.tail).eval()  # the untouched ImageNet tail: the baseline
    t0 = time.perf_counter()
    hist = train_encoder(enc, [it.image for it in train], [it.product_id for it in train], [it.text for it in train],
                         steps=steps, seed=seed)
    t_train = time.perf_counter() - t0
    enc.save_pretrained(out / "encoder")

    # 1. retrieval among all held-out creatives (same-product ones included), under realistic views
    #    (re-crops ≥ 70 %, recompression, mild colour shifts) and under the training-strength views
    texts = [it.text for it in test]
    retrieval: dict[str, dict[str, dict[int, float]]] = {}
    for vname, vcfg in (("realistic", EVAL_VIEWS), ("training_strength", AugmentConfig())):
        q, g = retrieval_views(test, seed=seed + 2, cfg=vcfg)
        q_ours, q_raw = embed_pair(enc, raw_tail, q, texts)
        g_ours, g_raw = embed_pair(enc, raw_tail, g, texts)
        q_img, q_ms = embed_pair(enc, raw_tail, q, None, multiscale=True)
        g_img, g_ms = embed_pair(enc, raw_tail, g, None, multiscale=True)
        retrieval[vname] = {
            "imagenet_effnet_lite0_pooled": {k: recall_at_k(q_raw, g_raw, k) for k in (1, 5)},
            "imagenet_multiscale_untrained": {k: recall_at_k(q_ms, g_ms, k) for k in (1, 5)},
            "ours_image_only": {k: recall_at_k(q_img, g_img, k) for k in (1, 5)},
            "ours_image_text": {k: recall_at_k(q_ours, g_ours, k) for k in (1, 5)},
        }

    # 2. near duplicates: threshold calibrated on train-product pairs, precision/recall on held-out pairs
    cal_items = [train[i] for i in rng.choice(len(train), min(dup_calibration_items, len(train)), replace=False)]
    cal_pairs, cs_ours, cs_raw = near_duplicate_scores(enc, raw_tail, cal_items, seed=seed + 3)
    test_pairs, ts_ours, ts_raw = near_duplicate_scores(enc, raw_tail, test, seed=seed + 4)
    cy = np.array([p.duplicate for p in cal_pairs])
    ty = np.array([p.duplicate for p in test_pairs])
    kinds = sorted({p.kind for p in test_pairs})
    neardup: dict[str, Any] = {}
    for name, cs, ts in (("ours", cs_ours, ts_ours), ("imagenet", cs_raw, ts_raw)):
        cal = calibrate_threshold(cs, cy, min_precision=0.99)
        pred = ts >= cal.threshold
        tp, fp = int((pred & ty).sum()), int((pred & ~ty).sum())
        neardup[name] = {"threshold": cal.threshold, "calibration_precision": cal.precision,
                         "calibration_recall": cal.recall, "precision": tp / max(1, tp + fp),
                         "recall": tp / int(ty.sum()), "n_dup": int(ty.sum()), "n_diff": int((~ty).sum()),
                         "recall_by_kind": {k: float(np.mean([pr for pr, p in zip(pred, test_pairs, strict=True)
                                                              if p.kind == k])) for k in kinds}}

    # 3. kNN quality: labelled train-product creatives in the index, held-out products queried
    a_tr_ours, a_tr_raw = embed_pair(enc, raw_tail, [it.image for it in train], [it.text for it in train])
    a_te_ours, a_te_raw = embed_pair(enc, raw_tail, [it.image for it in test], texts)
    y_tr = np.array([it.label == "available" for it in train], dtype=float)
    y_te = np.array([it.label == "available" for it in test], dtype=int)
    knn: dict[str, Any] = {}
    outcomes = {f"t{i}": Outcome(available=float(v)) for i, v in enumerate(y_tr)}
    for name, a_tr, a_te in (("ours", a_tr_ours, a_te_ours), ("imagenet", a_tr_raw, a_te_raw)):
        idx = Index(a_tr.shape[1])
        idx.add(list(outcomes), a_tr)
        est = np.array([f["knn_p_available"] for f in KnnQuality(idx, outcomes, k=20).features(a_te)])
        # and with labelled creatives of the *same* products (leave-one-out): a campaign's own history
        te_out = {f"e{i}": Outcome(available=float(v)) for i, v in enumerate(y_te)}
        idx_te = Index(a_te.shape[1])
        idx_te.add(list(te_out), a_te)
        loo = np.array([f["knn_p_available"] for f in
                        KnnQuality(idx_te, te_out, k=20).features(a_te, exclude=list(te_out))])
        knn[name] = {"auc_available": float(roc_auc_score(y_te, est)) if 0 < y_te.sum() < len(y_te) else None,
                     "auc_available_same_products_loo": float(roc_auc_score(y_te, loo)) if 0 < y_te.sum() < len(y_te) else None,
                     "n_test": len(y_te), "test_available_rate": float(y_te.mean()),
                     "n_labelled": len(y_tr)}

    # the same kNN over the explicit features (standardised; OCR off: copy is the same per product)
    from adcreative.represent.features import extract, to_vector

    def fvec(items: Sequence[SetItem]) -> np.ndarray:
        fs = extract([it.image for it in items], masks=[it.mask for it in items], ocr=False, faces=False)
        return np.stack([to_vector(f) for f in fs])

    f_tr, f_te = fvec(train), fvec(test)
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    idx = Index(f_tr.shape[1])
    idx.add(list(outcomes), (f_tr - mu) / sd)
    est = np.array([f["knn_p_available"] for f in KnnQuality(idx, outcomes, k=20, tau=0.5).features((f_te - mu) / sd)])
    knn["explicit_features"] = {"auc_available": float(roc_auc_score(y_te, est)) if 0 < y_te.sum() < len(y_te) else None,
                                "n_test": len(y_te), "test_available_rate": float(y_te.mean()), "n_labelled": len(y_tr)}

    report: dict[str, Any] = {
        "products": {"train": [p.id for p in train_p], "test": [p.id for p in test_p]},
        "n_creatives": {"train": len(train), "test": len(test)}, "per_product": per_product,
        "steps": steps, "seed": seed, "seconds": {"generate": round(t_gen, 1), "train": round(t_train, 1)},
        "loss": {"first": hist["loss"][0], "last": hist["loss"][-1]},
        "retrieval_recall": retrieval, "near_duplicate": neardup, "knn_quality": knn,
    }
    table = [f"retrieval on {len(test_p)} held-out products, {len(test)} creatives (query view → gallery of a view "
             "of every held-out creative)",
             f"{'embedding':<32}{'realistic R@1':>14}{'R@5':>7}{'strong R@1':>12}{'R@5':>7}"]
    for name in retrieval["realistic"]:
        r, s_ = retrieval["realistic"][name], retrieval["training_strength"][name]
        table.append(f"{name:<32}{r[1]:>14.3f}{r[5]:>7.3f}{s_[1]:>12.3f}{s_[5]:>7.3f}")
    table.append("near-duplicates (threshold calibrated on train products at precision ≥ 0.99; held-out pairs)")
    table.append(f"{'embedding':<12}{'threshold':>10}{'precision':>11}{'recall':>8}  recall by kind")
    for name, r in neardup.items():
        table.append(f"{name:<12}{r['threshold']:>10.4f}{r['precision']:>11.3f}{r['recall']:>8.3f}  "
                     + ", ".join(f"{k}={v:.2f}" for k, v in r["recall_by_kind"].items() if k != "same_product"))
    table.append(f"kNN P(available) on unseen products ({len(y_te)} creatives, {y_te.mean():.0%} available; "
                 f"{len(y_tr)} labelled creatives of the training products indexed)")
    for name, r in knn.items():
        auc, loo_auc = r["auc_available"], r.get("auc_available_same_products_loo")
        line = f"{name:<18} AUC unseen products {auc:.3f}" if auc is not None else f"{name:<18} AUC n/a (one class)"
        if loo_auc is not None:
            line += f"   same products, leave-one-out {loo_auc:.3f}"
        table.append(line)
    report["table"] = table
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=float))
    _plots(out, hist["loss"], ts_ours, ts_raw, ty)
    return report


def _plots(out: Path, loss: list[float], s_ours: np.ndarray, s_raw: np.ndarray, y: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(loss)
    ax[0].set(title="MoCo v3 InfoNCE loss", xlabel="step", ylabel="loss")
    for name, s in (("ours", s_ours), ("ImageNet", s_raw)):
        p, r, _ = precision_recall_curve(y, s)
        ax[1].plot(r, p, label=name)
    ax[1].set(title="near-duplicate PR (held-out products)", xlabel="recall", ylabel="precision")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out / "represent_eval.png", dpi=90)
    plt.close(fig)
