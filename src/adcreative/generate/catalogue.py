"""Catalogue import (folders of cutouts + CSV/JSON metadata) and the built-in sample catalogue.

The sample catalogue is made by the project itself, so no third-party image file is committed: six
products rendered procedurally (cylindrical and boxed packaging with shading, specular highlights and
printed labels, a pair of headphones, a tote bag) and an espresso cup cut out of scikit-image's bundled
``coffee`` photograph with OpenCV's GrabCut.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from adcreative.core.errors import InputError
from adcreative.core.imageio import load_cutout, open_image
from adcreative.core.types import Product
from adcreative.generate.compositor.layout import font

IMAGE_EXTS = {".png", ".webp", ".jpg", ".jpeg"}
MASK_SUFFIX = "_mask"


# -- import ------------------------------------------------------------------------------------------------
def _read_meta(meta: Path) -> dict[str, dict[str, Any]]:
    if not meta.exists():
        raise InputError("metadata file does not exist", source=meta)
    try:
        if meta.suffix.lower() == ".json":
            data = json.loads(meta.read_text())
            rows = data if isinstance(data, list) else [{"id": k, **v} for k, v in data.items()]
        elif meta.suffix.lower() == ".csv":
            with meta.open(newline="") as f:
                rows = list(csv.DictReader(f))
        else:
            raise InputError("metadata must be .csv or .json", source=meta)
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"malformed metadata ({e})", source=meta) from None
    out: dict[str, dict[str, Any]] = {}
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or not str(r.get("id", "")).strip():
            raise InputError(f"row {n} has no id", source=meta)
        rid = str(r["id"]).strip()
        if rid in out:
            raise InputError(f"duplicate product id {rid!r} (row {n})", source=meta)
        out[rid] = r
    return out


def read_catalogue_folder(folder: str | Path, meta: str | Path | None = None) -> list[Product]:
    """Products from a folder: ``<id>.png`` RGBA cutouts, or ``<id>.jpg`` + ``<id>_mask.png`` pairs.

    Metadata (``--meta`` or ``products.csv``/``products.json`` in the folder) gives title, category, copy,
    price, badge and logo per id. Every file is checked before anything is returned, so a bad file stops
    the whole import.
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError("catalogue folder does not exist", source=d)
    if meta is None:
        for name in ("products.json", "products.csv"):
            if (d / name).exists():
                meta = d / name
    rows = _read_meta(Path(meta)) if meta is not None else {}
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.stem.endswith(MASK_SUFFIX) and p.stem != "logo" and not p.stem.endswith("_logo"))
    others = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_EXTS
                    and p.suffix.lower() not in {".csv", ".json", ".md", ".txt"})
    if others:
        raise InputError(f"not an image file (expected {', '.join(sorted(IMAGE_EXTS))})", source=others[0])
    if not files:
        raise InputError("no product images in the folder", source=d)
    products = []
    for f in files:
        pid = f.stem
        mask = next((m for m in d.glob(f"{pid}{MASK_SUFFIX}.*") if m.suffix.lower() in IMAGE_EXTS), None)
        image = load_cutout(f, mask)
        r = rows.get(pid, {})
        title = str(r.get("title", "")).strip()
        if not title:
            raise InputError(f"empty title for product {pid!r} (give one in the metadata)", source=f)
        price = r.get("price")
        try:
            price_f = float(price) if price not in (None, "") else None
        except ValueError:
            raise InputError(f"price {price!r} of product {pid!r} is not a number", source=meta) from None
        logo = None
        if r.get("logo"):
            logo = open_image(d / str(r["logo"])).convert("RGBA")
        attrs = {k: v for k, v in r.items() if k in ("badge", "headline", "currency", "brand") and v}
        products.append(Product(id=pid, title=title, category=str(r.get("category") or "default"), image=image,
                                copy=str(r["copy"]) if r.get("copy") else None, price=price_f, logo=logo,
                                attrs=attrs))
    return products


# -- the sample catalogue ----------------------------------------------------------------------------------
S = 512  # render size; the cutout is cropped to its silhouette afterwards


def _shade_cylinder(w: int, h: int, base: tuple[int, int, int], gloss: float = 0.6) -> np.ndarray:
    """RGB of a lit cylinder: Lambert falloff across, a specular stripe, darker rim."""
    x = np.linspace(-1, 1, w, dtype=np.float32)
    n = np.sqrt(np.clip(1 - x**2, 0, 1))
    lambert = 0.35 + 0.65 * np.clip(n * 0.8 + x * -0.35, 0, 1)
    spec = gloss * np.exp(-((x + 0.45) ** 2) / 0.006) + 0.25 * gloss * np.exp(-((x - 0.6) ** 2) / 0.01)
    col = np.asarray(base, np.float32)[None, :] * lambert[:, None] + 255 * spec[:, None]
    return np.clip(np.repeat(col[None], h, axis=0), 0, 255)


def _rgba(rgb: np.ndarray, alpha: np.ndarray) -> Image.Image:
    a = np.clip(alpha, 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([np.clip(rgb, 0, 255).astype(np.uint8), a]), "RGBA")


def _canvas() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((S, S, 3), np.float32), np.zeros((S, S), np.float32)


def _soft(mask: np.ndarray) -> np.ndarray:
    """Anti-aliased alpha: supersampled edges without softening the interior."""
    m = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0.7)
    return np.clip(m, 0, 255)


def _print_label(rgb: np.ndarray, box: tuple[int, int, int, int], lines: list[tuple[str, int, bool, tuple[int, int, int]]],
                 bg: tuple[int, int, int] | None, curve: bool = True) -> None:
    """Print text onto a label area, shaded like the surface under it when ``curve``."""
    x0, y0, x1, y1 = box
    lab = Image.new("RGB", (x1 - x0, y1 - y0), bg or (0, 0, 0))
    if bg is None:
        lab = Image.fromarray(rgb[y0:y1, x0:x1].astype(np.uint8))
    d = ImageDraw.Draw(lab)
    y = 6
    for text, size, bold, colour in lines:
        f = font(size, bold)
        tw = d.textbbox((0, 0), text, font=f)[2]
        d.text(((lab.width - tw) // 2, y), text, font=f, fill=colour)
        y += int(size * 1.25)
    arr: np.ndarray = np.asarray(lab, np.float32)
    if curve:
        x = np.linspace(-1, 1, arr.shape[1], dtype=np.float32)
        arr = arr * (0.55 + 0.45 * np.sqrt(np.clip(1 - x**2, 0, 1)))[None, :, None]
    rgb[y0:y1, x0:x1] = arr


def _can() -> Image.Image:
    rgb, a = _canvas()
    x0, x1, y0, y1 = 176, 336, 80, 470
    rgb[y0:y1, x0:x1] = _shade_cylinder(x1 - x0, y1 - y0, (24, 150, 95))
    a[y0 + 10 : y1 - 10, x0:x1] = 255
    cv2.ellipse(a, (256, y0 + 12), (80, 12), 0, 0, 360, 255, -1)
    cv2.ellipse(a, (256, y1 - 10), (80, 10), 0, 0, 360, 255, -1)
    lid = _shade_cylinder(x1 - x0, 24, (200, 200, 205), 0.9)
    rgb[y0 : y0 + 24, x0:x1] = lid
    rgb[y1 - 20 : y1, x0:x1] = lid[:20]
    _print_label(rgb, (x0, 170, x1, 400), [("CITRUS", 34, True, (255, 240, 120)), ("sparkling", 22, False, (255, 255, 255)),
                                         ("water", 22, False, (255, 255, 255)), ("330 ml", 18, True, (230, 255, 230))],
                 (24, 150, 95))
    for cx, cy, r in ((220, 370, 14), (290, 330, 10), (250, 300, 7)):
        cv2.circle(rgb, (cx, cy), r, (250, 210, 60), -1)
    return _rgba(rgb, _soft(a))


def _serum() -> Image.Image:
    rgb, a = _canvas()
    # amber glass body with rounded shoulders, a black dropper cap with a rubber bulb
    body = np.zeros((S, S), np.uint8)
    cv2.rectangle(body, (186, 230), (326, 470), 255, -1)
    cv2.ellipse(body, (256, 232), (70, 26), 0, 180, 360, 255, -1)
    rgb[:] = _shade_cylinder(S, S, (150, 80, 28), 0.7)[:, :] * 0  # start empty
    body_rgb = _shade_cylinder(140, 270, (168, 92, 30), 0.8)
    rgb[205:475, 186:326] = body_rgb
    a[body > 0] = 255
    cap = np.zeros((S, S), np.uint8)
    cv2.rectangle(cap, (226, 150), (286, 212), 255, -1)
    cv2.ellipse(cap, (256, 110), (24, 48), 0, 0, 360, 255, -1)
    rgb[60:212, 226:286] = _shade_cylinder(60, 152, (30, 30, 32), 0.5)
    a[cap > 0] = 255
    _print_label(rgb, (196, 300, 316, 430), [("HYALURON", 17, True, (40, 30, 25)), ("face serum", 15, False, (40, 30, 25)),
                                           ("30 ml", 14, False, (70, 60, 50))], (236, 228, 214))
    return _rgba(rgb, _soft(a))


def _shampoo() -> Image.Image:
    rgb, a = _canvas()
    body = np.zeros((S, S), np.uint8)
    pts = np.array([[176, 470], [336, 470], [330, 200], [300, 160], [212, 160], [182, 200]], np.int32)
    cv2.fillPoly(body, [pts], 255)
    cv2.rectangle(body, (240, 100), (272, 162), 255, -1)  # pump stem
    cv2.rectangle(body, (240, 96), (320, 116), 255, -1)  # pump nozzle
    rgb[90:475, 170:340] = _shade_cylinder(170, 385, (235, 245, 240), 0.35)
    rgb[90:165, 236:324] = _shade_cylinder(88, 75, (60, 130, 90), 0.4)
    a[body > 0] = 255
    _print_label(rgb, (190, 250, 322, 420), [("HERBAL", 24, True, (40, 110, 70)), ("shampoo", 18, False, (50, 70, 60)),
                                           ("mint & aloe", 14, False, (90, 120, 100)), ("400 ml", 14, True, (40, 110, 70))],
                 None)
    return _rgba(rgb, _soft(a))


def _granola() -> Image.Image:
    rgb, a = _canvas()
    front = np.array([[150, 110], [330, 110], [330, 470], [150, 470]], np.int32)
    side = np.array([[330, 110], [380, 80], [380, 440], [330, 470]], np.int32)
    top = np.array([[150, 110], [200, 80], [380, 80], [330, 110]], np.int32)
    for poly, col in ((front, (226, 120, 40)), (side, (170, 84, 26)), (top, (245, 160, 80))):
        m = np.zeros((S, S), np.uint8)
        cv2.fillPoly(m, [poly], 255)
        rgb[m > 0] = col
        a[m > 0] = 255
    y = np.linspace(1.05, 0.85, S, dtype=np.float32)[:, None, None]
    rgb *= y
    _print_label(rgb, (160, 150, 320, 300), [("HONEY OAT", 22, True, (255, 250, 230)), ("GRANOLA", 28, True, (90, 40, 10)),
                                           ("crunchy clusters", 14, False, (255, 240, 220)), ("500 g", 16, True, (255, 255, 255))],
                 None, curve=False)
    cv2.ellipse(rgb, (240, 390), (60, 40), 0, 0, 360, (240, 205, 120), -1)
    for k in range(14):
        cx, cy = 200 + (k * 37) % 80, 370 + (k * 23) % 40
        cv2.circle(rgb, (cx, cy), 6, (170, 110, 50), -1)
    return _rgba(rgb, _soft(a))


def _headphones() -> Image.Image:
    rgb, a = _canvas()
    band = np.zeros((S, S), np.uint8)
    cv2.ellipse(band, (256, 260), (150, 170), 0, 180, 360, 255, 26)
    cups = np.zeros((S, S), np.uint8)
    for cx in (120, 392):
        cv2.ellipse(cups, (cx, 330), (52, 82), 0, 0, 360, 255, -1)
    m = (band > 0) | (cups > 0)
    shade = _shade_cylinder(S, S, (38, 40, 48), 0.45)
    rgb[m] = shade[m]
    for cx in (120, 392):
        cv2.ellipse(rgb, (cx, 330), (30, 58), 0, 0, 360, (70, 74, 86), -1)
        cv2.ellipse(rgb, (cx, 330), (12, 20), 0, 0, 360, (200, 160, 60), -1)
    a[m] = 255
    return _rgba(rgb, _soft(a))


def _tote() -> Image.Image:
    rgb, a = _canvas()
    body = np.array([[130, 220], [382, 220], [400, 480], [112, 480]], np.int32)
    m = np.zeros((S, S), np.uint8)
    cv2.fillPoly(m, [body], 255)
    handles = np.zeros((S, S), np.uint8)
    for cx in (200, 312):
        cv2.ellipse(handles, (cx, 222), (42, 110), 0, 180, 360, 255, 12)
    canvas_tex = (np.random.default_rng(3).random((S, S)) * 18).astype(np.float32)
    rgb[m > 0] = (np.asarray((222, 206, 176), np.float32) - canvas_tex[m > 0, None])
    rgb[handles > 0] = (120, 80, 50)
    a[(m > 0) | (handles > 0)] = 255
    _print_label(rgb, (170, 300, 342, 400), [("PARIS", 30, True, (40, 40, 60)), ("market tote", 16, False, (70, 60, 50))],
                 None, curve=False)
    return _rgba(rgb, _soft(a))


def _espresso_cup() -> Image.Image:
    """The cup and saucer of scikit-image's ``coffee`` photo, cut out with GrabCut from a seeded rectangle."""
    from skimage import data

    img = data.coffee()  # 400×600 RGB, a real photograph bundled with scikit-image
    bgr = np.ascontiguousarray(img[:, :, ::-1])
    mask = np.zeros(img.shape[:2], np.uint8)
    rect = (90, 20, 470, 340)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, mask, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    fg: np.ndarray = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    # keep the largest component and fill holes: the cup is one object
    n, lab, stats, _ = cv2.connectedComponentsWithStats(fg)
    if n > 1:
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        fg = np.where(lab == k, 255, 0).astype(np.uint8)
    cnts, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    fg = np.zeros_like(fg)
    cv2.drawContours(fg, cnts, -1, 255, -1)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    im = Image.fromarray(np.dstack([img, fg]), "RGBA")
    alpha = im.getchannel("A").filter(ImageFilter.GaussianBlur(0.8))
    alpha = alpha.point(lambda v: 255 if v > 200 else v)
    im.putalpha(alpha)
    return im.crop(im.getbbox())


SAMPLE_PRODUCTS: list[dict[str, Any]] = [
    {"id": "citrus-can", "title": "Citrus Sparkling Water 330 ml", "category": "food", "render": _can,
     "copy": "Zero sugar, real lemon and lime", "price": 1.49, "badge": "NEW"},
    {"id": "face-serum", "title": "Hyaluronic Hydrating Face Serum", "category": "beauty", "render": _serum,
     "copy": "72-hour moisture for every skin type", "price": 24.90, "badge": "-20%"},
    {"id": "herbal-shampoo", "title": "Herbal Mint & Aloe Shampoo 400 ml", "category": "personal_care",
     "render": _shampoo, "copy": "Gentle daily care, sulfate free", "price": 8.50, "badge": None},
    {"id": "honey-granola", "title": "Honey Oat Granola 500 g", "category": "food", "render": _granola,
     "copy": "Baked with wildflower honey", "price": 4.99, "badge": "2 for 1"},
    {"id": "anc-headphones", "title": "Noise-Cancelling Wireless Headphones", "category": "electronics",
     "render": _headphones, "copy": "40 h battery, fast charge", "price": 199.0, "badge": "SALE"},
    {"id": "market-tote", "title": "Paris Canvas Market Tote", "category": "fashion", "render": _tote,
     "copy": "Heavy cotton canvas, leather handles", "price": 39.0, "badge": None},
    {"id": "espresso-cup", "title": "Porcelain Espresso Cup & Saucer", "category": "kitchen",
     "render": _espresso_cup, "copy": "Dishwasher safe, set of two", "price": 18.0, "badge": "-15%"},
]


def sample_catalogue() -> list[Product]:
    """The built-in catalogue: 7 products across 6 categories, rendered (or cut out) deterministically."""
    out = []
    for spec in SAMPLE_PRODUCTS:
        im = spec["render"]()
        im = im.crop(im.getbbox())
        out.append(Product(id=spec["id"], title=spec["title"], category=spec["category"], image=im,
                           copy=spec["copy"], price=spec["price"],
                           attrs={k: spec[k] for k in ("badge",) if spec.get(k)}))
    return out


def save_catalogue(products: list[Product], folder: str | Path) -> Path:
    """Write products as a folder ``read_catalogue_folder`` reads back (cutouts + products.json)."""
    from adcreative.core.imageio import atomic_write_text, save_png

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    meta = []
    for p in products:
        save_png(d / f"{p.id}.png", p.image)
        meta.append({"id": p.id, "title": p.title, "category": p.category, "copy": p.copy, "price": p.price,
                     **p.attrs})
    atomic_write_text(d / "products.json", json.dumps(meta, indent=2))
    return d


# -- procedural SKUs (training data for RFNet: many product shapes, colours and labels) ----------------------
_WORDS = ("FRESH", "PURE", "ULTRA", "DAILY", "CLASSIC", "NATURAL", "PRO", "MINI", "MAX", "GOLD", "ZEN", "NOVA",
          "AQUA", "TERRA", "LUNA", "SOLAR", "VITA", "PRIME", "URBAN", "ALPINE")
_NOUNS = ("lotion", "cleanser", "tonic", "juice", "cocoa", "spray", "cream", "oil", "tea", "soap", "gel", "balm",
          "drink", "sauce", "powder", "wipes", "serum", "mist", "foam", "rinse")
_SHAPES = {"bottle": "personal_care", "can": "food", "box": "food", "jar": "kitchen", "tube": "beauty",
           "device": "electronics", "pouch": "food", "flask": "beauty"}


def _hsv(rng: np.random.Generator, s: tuple[float, float] = (0.35, 0.95), v: tuple[float, float] = (0.35, 0.95)
         ) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(float(rng.random()), float(rng.uniform(*s)), float(rng.uniform(*v)))
    return int(r * 255), int(g * 255), int(b * 255)


def procedural_product(seed: int) -> Product:
    """One synthetic SKU: a random packaging shape with shading, a printed label and a cap or lid."""
    rng = np.random.default_rng(seed)
    shape = list(_SHAPES)[int(rng.integers(len(_SHAPES)))]
    rgb, a = _canvas()
    body = _hsv(rng)
    cap = _hsv(rng, (0.0, 0.6), (0.1, 0.95))
    label_bg = _hsv(rng, (0.0, 0.3), (0.75, 1.0)) if rng.random() < 0.6 else None
    ink = (20, 20, 24) if label_bg is not None else (250, 250, 250)
    w = int(rng.uniform(0.22, 0.62) * S)
    h = int(rng.uniform(0.55, 0.9) * S)
    x0, y1 = (S - w) // 2, S - 20
    y0 = y1 - h
    m = np.zeros((S, S), np.uint8)
    if shape in ("bottle", "flask"):
        neck_w = max(12, int(w * rng.uniform(0.25, 0.45))) // 2 * 2
        neck_h = int(h * rng.uniform(0.12, 0.22))
        shoulder = int(h * 0.12)
        cv2.rectangle(m, (x0, y0 + neck_h + shoulder), (x0 + w, y1), 255, -1)
        cv2.ellipse(m, (S // 2, y0 + neck_h + shoulder), (w // 2, shoulder), 0, 180, 360, 255, -1)
        cv2.rectangle(m, (S // 2 - neck_w // 2, y0), (S // 2 + neck_w // 2, y0 + neck_h + shoulder), 255, -1)
        rgb[:] = _shade_cylinder(S, S, body, float(rng.uniform(0.2, 0.8)))
        rgb[y0 : y0 + neck_h, S // 2 - neck_w // 2 : S // 2 + neck_w // 2] = _shade_cylinder(neck_w, neck_h, cap, 0.5)
        lab_box = (x0 + 6, y0 + neck_h + shoulder + h // 8, x0 + w - 6, y1 - h // 10)
    elif shape in ("can", "jar"):
        if shape == "jar":
            h = int(h * 0.6)
            y0 = y1 - h
        e = max(4, w // 10)
        cv2.rectangle(m, (x0, y0 + e), (x0 + w, y1 - e), 255, -1)
        cv2.ellipse(m, (S // 2, y0 + e), (w // 2, e), 0, 0, 360, 255, -1)
        cv2.ellipse(m, (S // 2, y1 - e), (w // 2, e), 0, 0, 360, 255, -1)
        rgb[:] = _shade_cylinder(S, S, body, float(rng.uniform(0.3, 0.9)))
        lid = max(10, h // 7) if shape == "jar" else max(6, h // 20)
        rgb[y0 : y0 + lid, x0 : x0 + w] = _shade_cylinder(w, lid, cap, 0.7)
        lab_box = (x0 + 4, y0 + lid + h // 10, x0 + w - 4, y1 - h // 8)
    elif shape == "tube":
        pts = np.array([[x0, y0], [x0 + w, y0], [S // 2 + w // 5, y1 - h // 8], [S // 2 - w // 5, y1 - h // 8]], np.int32)
        cv2.fillPoly(m, [pts], 255)
        cv2.rectangle(m, (S // 2 - w // 6, y1 - h // 8), (S // 2 + w // 6, y1), 255, -1)
        rgb[:] = _shade_cylinder(S, S, body, 0.5)
        rgb[y1 - h // 8 : y1, S // 2 - w // 6 : S // 2 + w // 6] = _shade_cylinder(2 * (w // 6), y1 - (y1 - h // 8), cap, 0.6)
        lab_box = (x0 + w // 6, y0 + h // 8, x0 + w - w // 6, y0 + h // 2)
    elif shape == "device":
        w = int(w * 1.1)
        x0 = (S - w) // 2
        cv2.rectangle(m, (x0, y0), (x0 + w, y1), 255, -1)
        rgb[:] = np.asarray(cap, np.float32) * 0.6
        scr = _hsv(rng, (0.3, 0.9), (0.4, 0.9))
        yy = np.linspace(0, 1, h - 24, dtype=np.float32)[:, None, None]
        rgb[y0 + 12 : y1 - 12, x0 + 8 : x0 + w - 8] = np.asarray(scr, np.float32) * (0.6 + 0.4 * yy)
        lab_box = (x0 + 10, y0 + h // 3, x0 + w - 10, y0 + h // 2)
        label_bg, ink = None, (255, 255, 255)
    else:  # box / pouch: a front face with a side and a top in perspective
        d = int(w * rng.uniform(0.12, 0.3))
        front = np.array([[x0, y0 + d], [x0 + w - d, y0 + d], [x0 + w - d, y1], [x0, y1]], np.int32)
        side = np.array([[x0 + w - d, y0 + d], [x0 + w, y0], [x0 + w, y1 - d], [x0 + w - d, y1]], np.int32)
        top = np.array([[x0, y0 + d], [x0 + d, y0], [x0 + w, y0], [x0 + w - d, y0 + d]], np.int32)
        for poly, k in ((front, 1.0), (side, 0.7), (top, 1.2)):
            pm = np.zeros((S, S), np.uint8)
            cv2.fillPoly(pm, [poly], 255)
            rgb[pm > 0] = np.clip(np.asarray(body, np.float32) * k, 0, 255)
            m |= pm
        lab_box = (x0 + 8, y0 + d + h // 8, x0 + w - d - 8, y0 + d + h // 2)
    a[m > 0] = 255
    name = f"{_WORDS[int(rng.integers(len(_WORDS)))]} {_NOUNS[int(rng.integers(len(_NOUNS)))]}"
    size = f"{int(rng.choice([50, 100, 150, 250, 330, 500]))} {'g' if shape in ('box', 'pouch', 'jar') else 'ml'}"
    lx0, ly0, lx1, ly1 = lab_box
    if lx1 - lx0 > 30 and ly1 - ly0 > 30:
        fs = max(10, min(30, (lx1 - lx0) // max(4, len(name.split()[0]))))
        _print_label(rgb, lab_box, [(name.split()[0], fs, True, ink), (name.split()[1], max(9, fs * 2 // 3), False, ink),
                                    (size, max(9, fs // 2), True, ink)], label_bg, curve=shape not in ("box", "pouch", "device"))
    im = _rgba(rgb, _soft(a))
    im = im.crop(im.getbbox())
    title = f"{name.title()} {size}"
    return Product(id=f"proc-{seed:05d}", title=title, category=_SHAPES[shape], image=im,
                   copy=f"{name.split()[0].title()} quality, everyday value", price=round(float(rng.uniform(2, 90)), 2),
                   attrs={"shape": shape})


def procedural_products(n: int, seed: int = 0) -> list[Product]:
    """``n`` synthetic SKUs (deterministic for a seed): product variety for training the auditor."""
    return [procedural_product(seed * 100_000 + i) for i in range(n)]


# -- fitted SKUs: concave and irregular silhouettes that are *not* damage ---------------------------------------
# A torn source (RF1M "unsuitable") shows as a notch or hole in the cutout. If every clean training product is a
# convex box or bottle, the auditor learns "concave outline = torn" and rejects pump bottles, lipsticks and phones
# on sight. These SKUs carry the fittings real products have: pumps, triggers, handles, spouts, droppers, wheels,
# stepped bullet cases, rounded devices with busy wallpapers, and sets of items side by side.
_FITTED = {"pump": "personal_care", "trigger": "household", "jug": "kitchen", "mug": "kitchen", "bullet": "beauty",
           "phone": "electronics", "set": "beauty", "wheeled": "fashion", "dropper": "beauty", "pot": "kitchen"}


def _fill(rgb: np.ndarray, m: np.ndarray, part: np.ndarray, colour: tuple[int, int, int], gloss: float) -> None:
    """Paint a part (a mask) with cylinder shading across its own width, and add it to the silhouette."""
    ys, xs = np.nonzero(part)
    if not len(xs):
        return
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    shade = _shade_cylinder(x1 - x0, 1, colour, gloss)[0]
    rgb[ys, xs] = shade[xs - x0]
    m |= part


def _wallpaper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A busy phone wallpaper: a gradient with large soft blobs of two or three colours."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.asarray(_hsv(rng, (0.0, 0.5), (0.6, 1.0)), np.float32)
    out = np.broadcast_to(base, (h, w, 3)).copy() * (0.75 + 0.25 * (yy / max(h, 1)))[..., None]
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.2, 0.7) * max(h, w)
        blob = np.exp(-(((xx - cx) / r) ** 2 + ((yy - cy) / (r * rng.uniform(0.3, 1.0))) ** 2) * 3)[..., None]
        out = out * (1 - blob) + np.asarray(_hsv(rng), np.float32) * blob
    return out


def _part(shape: tuple[int, int]) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def fitted_product(seed: int) -> Product:
    """One synthetic SKU with a concave or irregular silhouette (see ``_FITTED``), shaded and labelled."""
    rng = np.random.default_rng(seed)
    kind = list(_FITTED)[int(rng.integers(len(_FITTED)))]
    rgb, a = _canvas()
    m = np.zeros((S, S), bool)
    body, accent = _hsv(rng), _hsv(rng, (0.0, 0.6), (0.1, 0.95))
    gloss = float(rng.uniform(0.2, 0.8))
    side = 1 if rng.random() < 0.5 else -1
    cx = S // 2
    label_box: tuple[int, int, int, int] | None = None
    if kind in ("pump", "trigger", "dropper"):
        w, h = int(rng.uniform(0.28, 0.5) * S), int(rng.uniform(0.45, 0.62) * S)
        y1 = S - 20
        y0 = y1 - h
        b = _part((S, S))
        sh = int(h * rng.uniform(0.05, 0.15))
        cv2.rectangle(b, (cx - w // 2, y0 + sh), (cx + w // 2, y1), 255, -1)
        cv2.ellipse(b, (cx, y0 + sh), (w // 2, sh), 0, 180, 360, 255, -1)
        _fill(rgb, m, b > 0, body, gloss)
        neck_w = max(14, int(w * rng.uniform(0.2, 0.35)))
        neck = _part((S, S))
        top = y0 - int(h * rng.uniform(0.15, 0.3))
        cv2.rectangle(neck, (cx - neck_w // 2, top), (cx + neck_w // 2, y0 + 2), 255, -1)
        _fill(rgb, m, neck > 0, accent, 0.5)
        head = _part((S, S))
        if kind == "pump":  # a stem, a head and a nozzle sticking out to one side
            hw = int(neck_w * rng.uniform(1.0, 1.6))
            cv2.rectangle(head, (cx - hw // 2, top - 16), (cx + hw // 2, top + 2), 255, -1)
            nl = int(w * rng.uniform(0.3, 0.7))
            nx = cx + side * (hw // 2 + nl)
            cv2.rectangle(head, (min(cx, nx), top - 14), (max(cx, nx), top - 4), 255, -1)
        elif kind == "trigger":  # a spray head over one side and a trigger lever hanging below it
            hw = int(neck_w * rng.uniform(1.8, 2.6))
            hx = cx + side * hw // 4
            cv2.rectangle(head, (hx - hw // 2, top - 34), (hx + hw // 2, top + 4), 255, -1)
            lever = np.array([[hx + side * hw // 2 - side * 4, top], [hx + side * hw // 2 + side * 6, top],
                              [hx + side * hw // 2 - side * 2, top + 60], [hx + side * hw // 2 - side * 12, top + 56]],
                             np.int32)
            cv2.fillPoly(head, [lever], 255)
        else:  # dropper: a narrow pipette collar and a rubber bulb
            cv2.ellipse(head, (cx, top - 26), (int(neck_w * 0.45), 30), 0, 0, 360, 255, -1)
        _fill(rgb, m, (head > 0) & ~m, accent, 0.4)
        label_box = (cx - w // 2 + 8, y0 + sh + h // 8, cx + w // 2 - 8, y1 - h // 8)
    elif kind in ("jug", "mug", "pot"):
        w = int(rng.uniform(0.38, 0.55) * S)
        h = int(w * (rng.uniform(0.6, 0.8) if kind == "pot" else rng.uniform(0.9, 1.4)))
        y1 = S - 30
        y0 = y1 - h
        bx = cx - side * int(0.1 * S)
        b = _part((S, S))
        cv2.rectangle(b, (bx - w // 2, y0), (bx + w // 2, y1), 255, -1)
        if kind == "jug":  # a pouring lip on the side opposite the handle
            lip = np.array([[bx - side * w // 2, y0], [bx - side * (w // 2 + 26), y0 - 14],
                            [bx - side * (w // 2 - 6), y0 + 30]], np.int32)
            cv2.fillPoly(b, [lip], 255)
        _fill(rgb, m, b > 0, body, gloss)
        handle = _part((S, S))
        if kind == "pot":  # long stick handles on both sides, a lid knob on top
            for s in (-1, 1):
                hx = bx + s * w // 2
                cv2.rectangle(handle, (min(hx, hx + s * 70), y0 + 18), (max(hx, hx + s * 70), y0 + 34), 255, -1)
            cv2.ellipse(handle, (bx, y0 - 8), (26, 14), 0, 0, 360, 255, -1)
        else:  # a ring handle with a real hole through it
            hx = bx + side * w // 2
            start, end = (-90, 90) if side > 0 else (90, 270)
            cv2.ellipse(handle, (hx, y0 + h // 2), (int(w * 0.22), int(h * 0.3)), 0, start, end, 255, max(8, w // 14))
        _fill(rgb, m, (handle > 0) & ~m, accent, 0.3)
        label_box = (bx - w // 2 + 10, y0 + h // 4, bx + w // 2 - 10, y0 + h * 3 // 4)
    elif kind == "bullet":  # a lipstick or perfume case: stacked segments of different widths, a shaped tip
        w = int(rng.uniform(0.1, 0.22) * S)
        y = S - 20
        for _ in range(int(rng.integers(2, 5))):
            sw = int(w * rng.uniform(0.7, 1.15))
            sh = int(rng.uniform(0.1, 0.25) * S)
            seg = _part((S, S))
            if rng.random() < 0.4:  # tapered segment
                pts = np.array([[cx - sw // 2, y], [cx + sw // 2, y], [cx + sw // 3, y - sh], [cx - sw // 3, y - sh]])
                cv2.fillPoly(seg, [pts.astype(np.int32)], 255)
            else:
                cv2.rectangle(seg, (cx - sw // 2, y - sh), (cx + sw // 2, y), 255, -1)
            _fill(rgb, m, (seg > 0) & ~m, _hsv(rng) if rng.random() < 0.5 else body, gloss)
            y -= sh
        tip = _part((S, S))
        tw, th = int(w * rng.uniform(0.5, 0.9)), int(rng.uniform(0.06, 0.15) * S)
        pts = np.array([[cx - tw // 2, y + 2], [cx + tw // 2, y + 2], [cx + tw // 2, y - th // 2],
                        [cx + side * tw // 4, y - th], [cx - tw // 2, y - th // 2]], np.int32)
        cv2.fillPoly(tip, [pts], 255)
        _fill(rgb, m, (tip > 0) & ~m, accent, 0.6)
    elif kind == "phone":  # a rounded device with a thin bezel, a camera dot and a busy wallpaper
        w = int(rng.uniform(0.28, 0.5) * S)
        h = min(S - 40, int(w * rng.uniform(1.6, 2.2)))
        x0, y0 = cx - w // 2, (S - h) // 2
        r = int(w * rng.uniform(0.06, 0.16))
        dev = _part((S, S))
        cv2.rectangle(dev, (x0 + r, y0), (x0 + w - r, y0 + h), 255, -1)
        cv2.rectangle(dev, (x0, y0 + r), (x0 + w, y0 + h - r), 255, -1)
        for px, py in ((x0 + r, y0 + r), (x0 + w - r, y0 + r), (x0 + r, y0 + h - r), (x0 + w - r, y0 + h - r)):
            cv2.circle(dev, (px, py), r, 255, -1)
        rgb[dev > 0] = np.asarray(accent, np.float32) * 0.35
        bz = max(4, w // 30)
        rgb[y0 + bz + r // 2 : y0 + h - bz - r // 2, x0 + bz : x0 + w - bz] = _wallpaper(
            rng, h - 2 * bz - 2 * (r // 2), w - 2 * bz)
        cv2.circle(rgb, (cx, y0 + bz + r // 2 + 8), 4, (10, 10, 12), -1)
        m |= dev > 0
    elif kind == "set":  # two to four items side by side, different heights, overlapping a little
        n = int(rng.integers(2, 5))
        widths = [int(rng.uniform(0.12, 0.26) * S) for _ in range(n)]
        x = cx - int(sum(widths) * 0.9) // 2
        y1 = S - 20
        for iw in widths:
            ih = int(rng.uniform(0.3, 0.85) * S)
            it = _part((S, S))
            if rng.random() < 0.5:
                cv2.rectangle(it, (x, y1 - ih), (x + iw, y1), 255, -1)
            else:
                cv2.rectangle(it, (x, y1 - ih + iw // 4), (x + iw, y1), 255, -1)
                cv2.rectangle(it, (x + iw // 3, y1 - ih), (x + iw - iw // 3, y1 - ih + iw // 4), 255, -1)
            _fill(rgb, m, (it > 0) & ~m, body if rng.random() < 0.6 else _hsv(rng), gloss)
            x += int(iw * 0.9)
    else:  # wheeled: a case on two wheels with a telescopic handle
        w, h = int(rng.uniform(0.35, 0.5) * S), int(rng.uniform(0.5, 0.62) * S)
        y1 = S - 40
        x0, y0 = cx - w // 2, y1 - h
        case = _part((S, S))
        cv2.rectangle(case, (x0, y0), (x0 + w, y1), 255, -1)
        _fill(rgb, m, case > 0, body, gloss)
        rods = _part((S, S))
        for hx in (x0 + w // 4, x0 + w - w // 4):
            cv2.rectangle(rods, (hx - 5, y0 - 90), (hx + 5, y0), 255, -1)
        cv2.rectangle(rods, (x0 + w // 4 - 8, y0 - 100), (x0 + w - w // 4 + 8, y0 - 86), 255, -1)
        for wx in (x0 + 18, x0 + w - 18):
            cv2.circle(rods, (wx, y1 + 16), 16, 255, -1)
        _fill(rgb, m, (rods > 0) & ~m, (40, 40, 44), 0.3)
        label_box = (x0 + 12, y0 + h // 3, x0 + w - 12, y0 + h * 2 // 3) if rng.random() < 0.5 else None
    if rng.random() < 0.3:  # some photographic grain, so not every clean source is perfectly flat
        rgb += rng.normal(0, rng.uniform(2, 6), rgb.shape).astype(np.float32)
    a[m] = 255
    name = f"{_WORDS[int(rng.integers(len(_WORDS)))]} {_NOUNS[int(rng.integers(len(_NOUNS)))]}"
    if label_box is not None and label_box[2] - label_box[0] > 40 and label_box[3] - label_box[1] > 40:
        fs = max(10, min(28, (label_box[2] - label_box[0]) // max(4, len(name.split()[0]))))
        _print_label(rgb, label_box, [(name.split()[0], fs, True, (250, 250, 250)),
                                      (name.split()[1], max(9, fs * 2 // 3), False, (250, 250, 250))], None)
    im = _rgba(rgb, _soft(a))
    im = im.crop(im.getbbox())
    return Product(id=f"fit-{seed:05d}", title=f"{name.title()} {kind}", category=_FITTED[kind], image=im,
                   copy=f"{name.split()[0].title()} design, made to last", price=round(float(rng.uniform(2, 300)), 2),
                   attrs={"shape": kind})


def fitted_products(n: int, seed: int = 0) -> list[Product]:
    """``n`` fitted SKUs (deterministic for a seed): concave silhouettes in the clean class."""
    return [fitted_product(seed * 100_000 + i) for i in range(n)]
