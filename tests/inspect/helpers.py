"""Helpers of the inspect tests: a tiny RFNet config and a small labelled dataset of real JD cutouts composed
into each RF1M class."""


from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from adcreative.core.types import CLASSES
from adcreative.inspect.datasets.formats import Sample, read_dataset, write_manifest
from tests.paths import SHARED as SHARED_DATA

SHARED = SHARED_DATA / "products"


TINY = {"image_size": 64, "aux_size": 32, "dim": 32, "heads": 2, "layers": 1, "product_grid": 2,
        "max_text_tokens": 8, "dropout": 0.0}


TITLES = {"0": ("game console with two controllers", "electronics"), "1": ("matte red lipstick", "beauty"),
          "2": ("whitening toothpaste", "personal care"), "4": ("hard-shell luggage case", "luggage"),
          "5": ("electric pressure cooker", "kitchen"), "6": ("digital camera", "electronics"),
          "8": ("thin laptop", "electronics")}


SPLIT = {"0": "train", "1": "train", "2": "train", "4": "train", "5": "val", "6": "test", "8": "test"}


def cutouts() -> dict[str, Image.Image]:
    """The real JD cutouts when present; otherwise RGBA shapes drawn here (so the core tests always run)."""
    out = {}
    if SHARED.is_dir():
        for p in sorted(SHARED.glob("*.png")):
            im = Image.open(p).convert("RGBA")
            im.thumbnail((160, 160))
            out[p.stem] = im
        return out
    rng = np.random.default_rng(0)
    for pid in TITLES:
        im = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        col = (*tuple(int(v) for v in rng.integers(30, 220, 3)), 255)
        d.rounded_rectangle((20, 10 + int(pid) * 3, 100, 110), radius=12, fill=col)
        d.ellipse((35, 30, 85, 70), fill=(*tuple(255 - c for c in col[:3]), 255))
        out[pid] = im
    return out


def compose(cut: Image.Image, label: str, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    """A small ad-like image of ``cut`` with the defect ``label`` drawn in, and its placement mask."""
    W, H = [(96, 96), (96, 120), (128, 72)][int(rng.integers(3))]
    prod = cut.crop(cut.getchannel("A").getbbox())
    mean = np.asarray(prod.convert("RGB"))[np.asarray(prod.getchannel("A")) > 127].mean(0)
    if label == "indistinctiveness":
        c1 = c2 = tuple(int(np.clip(v + rng.normal(0, 6), 0, 255)) for v in mean)
    else:
        c1 = tuple(int(v) for v in 255 - mean * 0.5 - rng.integers(0, 40, 3))
        c2 = tuple(int(v * 0.6) for v in c1)
    img = Image.new("RGB", (W, H), c1)
    floor = int(H * 0.78)
    ImageDraw.Draw(img).rectangle((0, floor, W, H), fill=c2)
    s = rng.uniform(0.1, 0.16) if label == "size_mismatch" else rng.uniform(0.45, 0.6)
    h = max(8, int(H * s))
    w = max(8, int(prod.width * h / prod.height))
    p = prod.resize((w, h))
    x = int((W - w) / 2 + rng.integers(-W // 10, W // 10 + 1))
    y = floor + 2 - h
    if label == "space_mismatch":
        y -= int(H * rng.uniform(0.15, 0.25))
    if label == "unsuitable":
        x = W - int(w * rng.uniform(0.45, 0.6)) if rng.random() < 0.5 else -int(w * rng.uniform(0.4, 0.55))
    if label == "shape_hallucination":
        d = ImageDraw.Draw(img)
        col = tuple(int(v) for v in mean)
        d.rectangle((x + w // 4, y + h - 2, x + 3 * w // 4, min(H, y + h + H // 6)), fill=col)
        d.polygon([(x + w - 2, y + h // 3), (x + w + W // 6, y + h // 2), (x + w - 2, y + 2 * h // 3)], fill=col)
    img.paste(p, (x, y), p)
    mask = Image.new("L", (W, H), 0)
    mask.paste(p.getchannel("A"), (x, y))
    return img, mask


def make_dataset(root: Path, per_class: int = 2, seed: int = 0) -> Path:
    """A dataset folder in the documented format (docs/dataset.md) from the real cutouts."""
    rng = np.random.default_rng(seed)
    samples = []
    for pid, cut in cutouts().items():
        prod_path = root / "products" / f"{pid}.png"
        prod_path.parent.mkdir(parents=True, exist_ok=True)
        cut.save(prod_path)
        title, cat = TITLES.get(pid, (f"product {pid}", "misc"))
        for label in CLASSES:
            for j in range(per_class):
                img, mask = compose(cut, label, rng)
                sid = f"{pid}-{label}-{j}"
                (root / "images").mkdir(exist_ok=True)
                (root / "masks").mkdir(exist_ok=True)
                img.save(root / "images" / f"{sid}.png")
                mask.save(root / "masks" / f"{sid}.png")
                samples.append(Sample(id=sid, image=root / "images" / f"{sid}.png", mask=root / "masks" / f"{sid}.png",
                                      product=prod_path, product_id=pid, title=title, category=cat, label=label,
                                      split=SPLIT.get(pid, "train"), severity=0.0 if label == "available" else 0.7))
    write_manifest(root, samples)
    return root


def sample_items(dataset: Path, n: int = 3):  # type: ignore[no-untyped-def]
    from adcreative.inspect.data import load_sample

    return [load_sample(s) for s in read_dataset(dataset)[:n]]
