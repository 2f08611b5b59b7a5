"""The built-in sample catalogue, made by the project itself so no third-party image file is committed: six
products rendered procedurally (cylindrical and boxed packaging with shading, specular highlights and printed
labels, a pair of headphones, a tote bag) and an espresso cup cut out of scikit-image's bundled ``coffee``
photograph with OpenCV's GrabCut.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from adcreative.core.fonts import font
from adcreative.core.types import Product

if TYPE_CHECKING:
    from adcreative.core.store import Store

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
                           attrs={**{k: spec[k] for k in ("badge",) if spec.get(k)}, "catalogue_source": "sample"}))
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




def import_sample_catalogue(store: Store) -> list[Product]:
    """Add the sample catalogue to the store (all or nothing); returns the products added."""
    products = sample_catalogue()
    store.add_products(products)
    return products
