"""Procedural SKUs for RFNet's training data: many product shapes, colours and printed labels
(``procedural:N``), fitted SKUs whose concave silhouettes are not damage (``fitted:N``), the two with
photographic surfaces (``skinned:N``), and whole SKUs whose outlines look like drawn damage (``lookalike:N``).
"""

from __future__ import annotations

import cv2
import numpy as np

from adcreative.catalogue.photos import bundled_photo
from adcreative.catalogue.sample import S, _canvas, _print_label, _rgba, _shade_cylinder, _soft
from adcreative.core.types import Product

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


# -- skinned SKUs: the drawn silhouettes with the surfaces of photographs ---------------------------------------
# A real product is a photograph: sensor grain, fine print, a room reflected in a glossy body, brushed metal, a
# fabric grille, a matting fringe at the outline. The drawn SKUs are flat fills with a cylinder gradient, and a
# dozen real products among hundreds of them let the auditor learn "a photographic surface looks odd, so the
# source is damaged" (real products' available images sink into *unsuitable*, docs/inspect.md rounds 16 and 23).
# These SKUs keep a procedural or fitted SKU's silhouette (so its alpha, its size and the labeller's geometry are
# the same) and give it one of these surfaces. Photographs are scikit-image's bundled ones (``catalogue.photos``).
_SKIN_PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field",
                "stereo_motorcycle", "grass", "gravel", "brick", "camera", "coins", "moon", "cell", "colorwheel")
SURFACES = ("print", "metal", "mesh", "matte", "photo")


def _photo_crop(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A random crop of a random bundled photograph, resized to w×h."""
    src = bundled_photo(_SKIN_PHOTOS[int(rng.integers(len(_SKIN_PHOTOS)))])
    sh, sw = src.shape[:2]
    zoom = float(rng.uniform(0.3, 1.0))
    ch, cw = max(8, int(sh * zoom)), max(8, int(sw * zoom))
    y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    out = cv2.resize(src[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)
    return out[:, ::-1] if rng.random() < 0.5 else out


def _surface(rng: np.random.Generator, kind: str, rgb: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The new RGB of a silhouette: ``kind`` of ``SURFACES``, lit by the drawn SKU's own shading."""
    h, w = inside.shape
    lum = rgb.mean(axis=2)
    ref = float(np.median(lum[inside])) if inside.any() else 128.0
    shade = np.clip(lum / max(ref, 8.0), 0.25, 2.2)[..., None]  # the drawn SKU's lighting, relative to its median
    # the printed label and edges of the drawn SKU: what a blur removes
    detail = lum - cv2.GaussianBlur(lum, (0, 0), 3.0)
    ink = np.abs(detail) > 18
    if kind == "print":  # a packaging print: a photograph under the drawn lighting, the label printed over it
        out = _photo_crop(rng, w, h) * shade ** float(rng.uniform(0.5, 1.0))
        keep = ink & (rng.random() < 0.7)
        out[keep] = rgb[keep]
    elif kind == "metal":  # brushed metal: streaks along one axis, a blurred room reflected, a hard highlight
        tone = np.asarray(_hsv(rng, (0.0, 0.25), (0.25, 0.9)), np.float32)
        streak = rng.normal(0, 1, (h, w)).astype(np.float32)
        k = (1, int(rng.integers(15, 61))) if rng.random() < 0.5 else (int(rng.integers(15, 61)), 1)
        streak = cv2.blur(streak, k) * float(rng.uniform(6, 20)) * 3
        room = cv2.GaussianBlur(_photo_crop(rng, w, h), (0, 0), float(rng.uniform(4, 12)))
        r = float(rng.uniform(0.1, 0.45))
        out = (tone * (1 - r) + room * r) * shade ** 1.5 + streak[..., None]
    elif kind == "mesh":  # a speaker's fabric or a grille: a dark body with a fine periodic pattern
        tone = np.asarray(_hsv(rng, (0.0, 0.3), (0.08, 0.45)), np.float32)
        pitch = float(rng.uniform(3.0, 7.0))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = float(rng.uniform(0, np.pi))
        u, v = xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)
        pat = (np.sin(2 * np.pi * u / pitch) * np.sin(2 * np.pi * v / pitch))[..., None]
        out = tone * shade * (1 + float(rng.uniform(0.15, 0.45)) * pat)
        keep = ink & (rng.random() < 0.5)
        out[keep] = rgb[keep]
    elif kind == "matte":  # moulded plastic: the drawn colour, mottled at low frequency, with fine grain
        mottle = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), float(rng.uniform(8, 30)))
        mottle = mottle * (float(rng.uniform(0.05, 0.15)) / max(float(mottle.std()), 1e-6))
        out = rgb * (1 + mottle[..., None])
    else:  # photo: the drawn SKU itself, with the colour and tone of a photograph (white balance, contrast)
        cast = rng.uniform(0.88, 1.12, 3).astype(np.float32)
        gamma = float(rng.uniform(0.8, 1.25))
        out = 255 * (np.clip(rgb, 0, 255) / 255) ** gamma * cast
    return np.clip(out, 0, 255)


def _camera(rng: np.random.Generator, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """What a camera and a matting tool do to a product photo: lens blur, sharpening, grain, a JPEG pass, and a
    light or dark fringe at the outline (the backdrop left in the edge pixels)."""
    out = cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.6:  # in-camera sharpening: an unsharp mask's halo
        out = out + float(rng.uniform(0.3, 1.0)) * (out - cv2.GaussianBlur(out, (0, 0), 2.0))
    out = out + np.asarray(rng.normal(0, float(rng.uniform(1.0, 5.0)), out.shape), np.float32)
    ok, buf = cv2.imencode(".jpg", np.clip(out, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY,
                                                                           int(rng.integers(70, 96))])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
    out = decoded.astype(np.float32) if decoded is not None else out
    if rng.random() < 0.5:
        edge = (alpha > 0) & (cv2.erode((alpha > 127).astype(np.uint8), np.ones((3, 3), np.uint8),
                                        iterations=int(rng.integers(1, 3))) == 0)
        backdrop = 245.0 if rng.random() < 0.7 else 20.0
        mix = float(rng.uniform(0.2, 0.6))
        out[edge] = out[edge] * (1 - mix) + backdrop * mix
    return np.clip(out, 0, 255)


def skinned_product(seed: int, shape: str = "procedural") -> Product:
    """One SKU with a photographic surface: the procedural (``shape`` "procedural") or fitted ("fitted") SKU of
    ``seed``, same silhouette, title and size, with a surface of ``SURFACES`` and a camera's traces."""
    base = procedural_product(seed) if shape == "procedural" else fitted_product(seed)
    # its own stream (the base SKU's draws are unchanged), apart for the two shapes of one seed
    rng = np.random.default_rng([seed, 0x5C1, 0 if shape == "procedural" else 1])
    arr = np.asarray(base.image.convert("RGBA"), np.float32)
    rgb, alpha = arr[..., :3].copy(), arr[..., 3]
    kind = SURFACES[int(rng.integers(len(SURFACES)))]
    rgb = _camera(rng, _surface(rng, kind, rgb, alpha > 127), alpha)
    im = _rgba(rgb, alpha)
    return Product(id=f"skin-{base.id}", title=base.title, category=base.category, image=im, copy=base.copy,
                   price=base.price, attrs={**base.attrs, "surface": kind})


def skinned_products(n: int, seed: int = 0) -> list[Product]:
    """``n`` skinned SKUs (deterministic for a seed): the shapes of ``procedural_products(n - n // 2, seed)`` and
    ``fitted_products(n // 2, seed)``, with photographic surfaces."""
    return ([skinned_product(seed * 100_000 + i, "procedural") for i in range(n - n // 2)]
            + [skinned_product(seed * 100_000 + i, "fitted") for i in range(n // 2)])


# -- lookalike SKUs: whole products whose own outline looks like drawn damage --------------------------------
# The renderers draw *unsuitable* as a product cut by a straight line, holed, torn to a ragged edge or with a
# part missing. Every drawn SKU so far is a whole package with a smooth outline, so among drawn products a
# straight cut through a round shape, a ragged outline or a dark round gap only ever meant damage, and real
# products that have them intact sink into *unsuitable* (docs/inspect.md, twenty-fifth round: garments ending
# in a straight hem, fruit cut open, a plush toy lying down, a skate's wheels, a lipstick's slanted tip).
# These SKUs carry such outlines whole, and go through every class like any product, so the outline alone
# stops being evidence. Kinds are common catalogue categories; the titles say what the product is, as a
# catalogue's would.
# Measured (docs/inspect.md, twenty-seventh round): the sink goes on held-out renderers, the ranking does not
# improve, so no training recipe uses them by default.
_LOOKALIKE = {"shirt": "clothing", "dress": "clothing", "cut_fruit": "fresh_food", "bowl": "kitchen",
              "slanted": "beauty", "plush": "toys", "skate": "sports", "wedge": "fresh_food"}
_LOOKALIKE_NOUNS = {"shirt": ("cotton shirt", "polo shirt", "linen top", "sweatshirt"),
                    "dress": ("evening dress", "summer dress", "slip dress", "gown"),
                    "cut_fruit": ("apples", "oranges", "melon", "peaches"),
                    "bowl": ("ceramic bowl", "salad bowl", "rice bowl", "mixing bowl"),
                    "slanted": ("lipstick", "highlighter", "marker", "lip balm"),
                    "plush": ("plush dog", "plush cat", "plush bear", "plush fox"),
                    "skate": ("inline skate", "roller skate", "kick scooter boot", "skate boot"),
                    "wedge": ("cheese wedge", "cake slice", "watermelon slice", "pie slice")}


def _fabric(rng: np.random.Generator, m: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Cloth: a colour with soft vertical folds, a weave's fine grain and, sometimes, sequins or a print."""
    h, w = m.shape
    xx = np.arange(w, dtype=np.float32)[None, :]
    folds = np.zeros((1, w), np.float32)
    for _ in range(int(rng.integers(2, 5))):
        period, phase = float(rng.uniform(12, 40)), float(rng.uniform(0, 6.3))
        folds += np.sin(xx / period + phase) * float(rng.uniform(0.03, 0.09))
    out = np.asarray(colour, np.float32) * (0.9 + folds)[..., None] * np.ones((h, 1, 1), np.float32)
    out += rng.normal(0, float(rng.uniform(2, 7)), out.shape).astype(np.float32)
    if rng.random() < 0.3:  # sequins: sparse bright points
        sp = rng.random((h, w)) < 0.02
        out[sp] = np.minimum(out[sp] * 1.6 + 40, 255)
    return out


def _dome(m: np.ndarray, colour: tuple[int, int, int], light: float) -> np.ndarray:
    """A rounded body lit from one side: brightness falls with the distance from a highlight."""
    ys, xs = np.nonzero(m)
    out = np.zeros((*m.shape, 3), np.float32)
    if not len(xs):
        return out
    cx, cy = xs.mean(), ys.mean()
    r = max(float(np.hypot(xs - cx, ys - cy).max()), 1.0)
    yy, xx = np.mgrid[0 : m.shape[0], 0 : m.shape[1]].astype(np.float32)
    d = np.hypot(xx - (cx + light * r * 0.4), yy - (cy - r * 0.35)) / r
    k = np.clip(1.25 - 0.6 * d, 0.35, 1.3)
    spec = 60 * np.exp(-(d**2) / 0.02)
    return np.clip(np.asarray(colour, np.float32) * k[..., None] + spec[..., None], 0, 255)


def _ragged(rng: np.random.Generator, m: np.ndarray, amount: float) -> np.ndarray:
    """A fuzzy outline (fur, knit, feathers): the mask's edge moved in and out by a few pixels of noise."""
    f = cv2.GaussianBlur(m.astype(np.float32), (0, 0), 3.0)
    noise = cv2.GaussianBlur(rng.normal(0, 1, m.shape).astype(np.float32), (0, 0), 1.2)
    near = cv2.dilate(m.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # only the edge moves
    return (f + 0.15 * amount * noise / max(float(noise.std()), 1e-6) > 0.5) & near


def lookalike_product(seed: int) -> Product:
    """One whole SKU whose outline resembles drawn damage (see ``_LOOKALIKE``), shaded like its material."""
    rng = np.random.default_rng(seed)
    kind = list(_LOOKALIKE)[int(rng.integers(len(_LOOKALIKE)))]
    rgb, a = _canvas()
    m = np.zeros((S, S), bool)
    body, accent = _hsv(rng), _hsv(rng, (0.0, 0.6), (0.1, 0.95))
    side = 1 if rng.random() < 0.5 else -1
    cx = S // 2
    if kind == "shirt":  # a torso, sleeves ending in straight cuffs, a neck cut out, a straight hem
        w, y0, y1 = int(rng.uniform(0.36, 0.48) * S), int(rng.uniform(0.12, 0.22) * S), S - 20
        nw, sh = int(w * rng.uniform(0.14, 0.22)), int(rng.uniform(0.03, 0.07) * S)
        flare = int(rng.uniform(-0.03, 0.04) * S)
        torso = np.array([[cx - nw, y0], [cx + nw, y0], [cx + w // 2, y0 + sh], [cx + w // 2 + flare, y1],
                          [cx - w // 2 - flare, y1], [cx - w // 2, y0 + sh]], np.int32)
        part = _part((S, S))
        cv2.fillPoly(part, [torso], 255)
        sl, drop = int(rng.uniform(0.1, 0.3) * S), int(rng.uniform(0.12, 0.22) * S)
        for s in (-1, 1):  # sleeves: from the shoulder out and down, a straight cuff across the end
            sx = cx + s * w // 2
            ang = float(rng.uniform(0.3, 0.9))
            ex, ey = sx + s * int(sl * np.cos(ang)), y0 + sh + int(sl * np.sin(ang))
            sleeve = np.array([[sx, y0 + sh - 4], [ex, ey - drop // 2],
                               [ex - s * int(drop * 0.3), ey + drop // 2], [sx, y0 + sh + drop]], np.int32)
            cv2.fillPoly(part, [sleeve], 255)
        cv2.ellipse(part, (cx, y0), (nw, int(nw * rng.uniform(0.5, 1.4))), 0, 0, 180, 0, -1)
        m |= part > 0
        rgb[:] = _fabric(rng, m, body)
        if rng.random() < 0.6:  # a collar or rib and a hem band, a little darker
            rib = tuple(float(c) * 0.75 for c in body)
            cv2.ellipse(rgb, (cx, y0), (nw + 6, int(nw * 0.8) + 6), 0, 0, 180, rib, 6)
            rgb[y1 - 10 : y1, :] *= 0.85
        for i in range(int(rng.integers(0, 4))):  # buttons: small dark rounds, not holes
            cv2.circle(rgb, (cx, y0 + nw + 14 + 18 * i), 4, accent, -1)
    elif kind == "dress":  # straps, a fitted bodice and a skirt flaring to a straight or slanted hem
        y0, y1 = int(rng.uniform(0.04, 0.1) * S), S - 10
        bw, waist = int(rng.uniform(0.14, 0.22) * S), int(rng.uniform(0.3, 0.42) * S)
        hem = int(rng.uniform(0.2, 0.42) * S)
        slant = int(rng.uniform(-0.08, 0.08) * S)
        pts = np.array([[cx - bw // 2, y0 + 30], [cx + bw // 2, y0 + 30], [cx + bw // 2 - 6, y0 + waist],
                        [cx + hem, y1 - max(slant, 0)], [cx - hem, y1 + min(slant, 0)],
                        [cx - bw // 2 + 6, y0 + waist]], np.int32)
        part = _part((S, S))
        cv2.fillPoly(part, [pts], 255)
        for s in (-1, 1):
            cv2.line(part, (cx + s * bw // 3, y0), (cx + s * bw // 2, y0 + 32), 255, 5)
        m |= part > 0
        rgb[:] = _fabric(rng, m, body)
    elif kind in ("cut_fruit", "wedge"):  # a whole piece and a cut one: a straight cut face, flesh, seeds
        skin = _hsv(rng, (0.5, 0.95), (0.45, 0.9))
        flesh = _hsv(rng, (0.1, 0.5), (0.8, 1.0))
        r = int(rng.uniform(0.14, 0.22) * S)
        y1 = S - 30
        if kind == "cut_fruit":
            whole = _part((S, S))
            wx = cx - side * int(r * 0.7)
            cv2.circle(whole, (wx, y1 - r), r, 255, -1)
            cv2.rectangle(whole, (wx - 3, y1 - 2 * r - 26), (wx + 3, y1 - 2 * r + 4), 255, -1)
            wm = whole > 0
            rgb[wm] = _dome(wm, skin, -side)[wm]
            m |= wm
            leaf = _part((S, S))
            cv2.ellipse(leaf, (wx + 20, y1 - 2 * r - 18), (22, 9), -30, 0, 360, 255, -1)
            rgb[(leaf > 0) & ~m] = (60, 140, 50)
            m |= leaf > 0
        # the cut piece: a disk cut by a straight chord at an angle, the cut face in the flesh colour
        hx, hy = cx + side * int(r * 0.9), y1 - int(r * 0.85)
        # the cut runs across the far side: the piece touches the whole fruit and shows its straight edge
        ang = float(rng.uniform(-0.6, 0.6)) + (0.0 if side > 0 else np.pi)
        yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
        disk = np.hypot(xx - hx, yy - hy) < r * 0.95
        keep = (xx - hx) * np.cos(ang) + (yy - hy) * np.sin(ang) < r * float(rng.uniform(-0.1, 0.3))
        piece = disk & keep & ~m if kind == "cut_fruit" else disk & keep
        rgb[piece] = _dome(piece, skin, side)[piece]
        face = piece & (cv2.erode(piece.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
        rgb[face] = np.asarray(flesh, np.float32) * float(rng.uniform(0.9, 1.05))
        m |= piece
        for _ in range(int(rng.integers(2, 7))):  # seeds, pits or cheese holes: dark ovals inside the face
            ys, xs = np.nonzero(face)
            if len(xs):
                j = int(rng.integers(len(xs)))
                cv2.ellipse(rgb, (int(xs[j]), int(ys[j])), (int(rng.integers(3, 9)), int(rng.integers(3, 7))),
                            float(rng.uniform(0, 180)), 0, 360, tuple(float(c) * 0.35 for c in flesh), -1)
    elif kind == "bowl":  # half an ellipse under a flat rim, a foot ring, the inside seen over the rim
        w, d = int(rng.uniform(0.5, 0.8) * S), int(rng.uniform(0.2, 0.34) * S)
        y1 = S - 40
        rim = y1 - d
        part = _part((S, S))
        cv2.ellipse(part, (cx, rim), (w // 2, d), 0, 0, 180, 255, -1)
        cv2.rectangle(part, (cx - w // 6, y1 - 6), (cx + w // 6, y1 + 14), 255, -1)
        bm = part > 0
        _fill(rgb, m, bm, body, float(rng.uniform(0.2, 0.8)))
        inner = _part((S, S))
        cv2.ellipse(inner, (cx, rim), (w // 2, int(d * rng.uniform(0.08, 0.2))), 0, 0, 360, 255, -1)
        rgb[inner > 0] = np.asarray(accent, np.float32) * 0.8  # the inside, seen over the rim
        m |= inner > 0
    elif kind == "slanted":  # a cylinder whose tip is cut at a slant: a lipstick bullet, a chisel marker
        w, h = int(rng.uniform(0.1, 0.2) * S), int(rng.uniform(0.6, 0.85) * S)
        y1 = S - 20
        y0 = y1 - h
        part = _part((S, S))
        cv2.rectangle(part, (cx - w // 2, y0 + h // 4), (cx + w // 2, y1), 255, -1)
        _fill(rgb, m, part > 0, body, float(rng.uniform(0.4, 0.9)))
        tip = _part((S, S))
        tw = int(w * rng.uniform(0.7, 0.95))
        cut = int(tw * np.tan(float(rng.uniform(0.45, 1.0))))
        rise = int(rng.uniform(30, 80))
        base_y = y0 + h // 4
        pts = np.array([[cx - tw // 2, base_y], [cx + tw // 2, base_y],
                        [cx + tw // 2, base_y - rise - (cut if side > 0 else 0)],
                        [cx - tw // 2, base_y - rise - (cut if side < 0 else 0)]], np.int32)
        cv2.fillPoly(tip, [pts], 255)
        _fill(rgb, m, (tip > 0) & ~m, accent, 0.7)
    elif kind == "plush":  # an animal lying down: body, head, ears, paws, tail, fuzzy outline, pale muzzle
        bw, bh = int(rng.uniform(0.28, 0.38) * S), int(rng.uniform(0.1, 0.16) * S)
        y1 = S - 60
        part = _part((S, S))
        cv2.ellipse(part, (cx - side * 20, y1 - bh), (bw, bh), 0, 0, 360, 255, -1)
        hx, hy, hr = cx + side * (bw - 10), y1 - 2 * bh, int(bh * rng.uniform(1.0, 1.4))
        cv2.circle(part, (hx, hy), hr, 255, -1)
        for dx in (-0.6, 0.4):  # ears
            ex = hx + int(dx * hr)
            cv2.fillPoly(part, [np.array([[ex - 14, hy - hr + 10], [ex + 14, hy - hr + 10],
                                          [ex + int(rng.integers(-8, 9)), hy - hr - 28]], np.int32)], 255)
        for px in (cx - side * (bw - 40), cx + side * (bw - 60)):  # paws stretched out, overlapping the body
            cv2.ellipse(part, (px, y1 - bh // 3), (int(bw * 0.28), 16), 0, 0, 360, 255, -1)
        cv2.ellipse(part, (cx - side * (bw - 4), y1 - bh - 6), (34, 12), -side * 30, 0, 360, 255, -1)  # tail
        pm = _ragged(rng, part > 0, float(rng.uniform(0.6, 1.6)))
        fur = _dome(pm, body, side) + rng.normal(0, float(rng.uniform(5, 14)), (S, S, 3)).astype(np.float32)
        rgb[pm] = fur[pm]
        pale = _part((S, S))
        cv2.ellipse(pale, (hx + side * hr // 3, hy + hr // 3), (hr // 2, hr // 3), 0, 0, 360, 255, -1)
        cv2.ellipse(pale, (cx - side * 20, y1 - bh // 3), (int(bw * 0.6), bh // 3), 0, 0, 360, 255, -1)
        rgb[(pale > 0) & pm] = rgb[(pale > 0) & pm] * 0.3 + 0.7 * np.array([235, 232, 225], np.float32)
        for ex in (hx - hr // 3, hx + hr // 4):
            cv2.circle(rgb, (ex, hy - hr // 5), max(3, hr // 9), (15, 15, 18), -1)
        m |= pm
    else:  # skate: a boot on a frame with three or four wheels, gaps between them
        y1 = S - 30
        nwheel = int(rng.integers(3, 5))
        wr = int(rng.uniform(0.045, 0.07) * S)
        span = nwheel * 2 * wr + (nwheel - 1) * int(wr * rng.uniform(0.2, 0.6))
        fx0 = cx - span // 2
        wheels = _part((S, S))
        for i in range(nwheel):
            cv2.circle(wheels, (fx0 + wr + i * (span - 2 * wr) // max(nwheel - 1, 1), y1 - wr), wr, 255, -1)
        frame = _part((S, S))
        cv2.rectangle(frame, (fx0, y1 - 2 * wr - 14), (fx0 + span, y1 - wr), 255, -1)
        boot = _part((S, S))
        toe, heel = (fx0 + span, fx0) if side > 0 else (fx0, fx0 + span)
        bh = int(rng.uniform(0.35, 0.5) * S)
        top = y1 - 2 * wr - 14 - bh
        sole = y1 - 2 * wr - 10
        pts = np.array([[heel, sole], [toe, sole], [toe - side * 20, sole - 60], [cx + side * 10, sole - 80],
                        [cx + side * 20, top], [heel + side * 10, top]], np.int32)
        cv2.fillPoly(boot, [pts], 255)
        _fill(rgb, m, boot > 0, body, float(rng.uniform(0.2, 0.7)))
        _fill(rgb, m, (frame > 0) & ~m, (200, 200, 205), 0.8)
        _fill(rgb, m, (wheels > 0) & ~m, accent, 0.3)
        for i in range(int(rng.integers(2, 5))):  # straps across the shaft
            yy0 = top + 20 + i * 34
            rgb[yy0 : yy0 + 10][m[yy0 : yy0 + 10]] *= 0.55
    if rng.random() < 0.3:  # some photographic grain
        rgb += rng.normal(0, rng.uniform(2, 6), rgb.shape).astype(np.float32)
    a[m] = 255
    noun = _LOOKALIKE_NOUNS[kind][int(rng.integers(4))]
    word = _WORDS[int(rng.integers(len(_WORDS)))]
    im = _rgba(rgb, _soft(a))
    im = im.crop(im.getbbox())
    return Product(id=f"look-{seed:05d}", title=f"{word.title()} {noun}", category=_LOOKALIKE[kind], image=im,
                   copy=f"{word.title()} {noun}, chosen with care",
                   price=round(float(rng.uniform(2, 200)), 2), attrs={"shape": kind})


def lookalike_products(n: int, seed: int = 0) -> list[Product]:
    """``n`` lookalike SKUs (deterministic for a seed): whole products whose outlines look like damage."""
    return [lookalike_product(seed * 100_000 + i) for i in range(n)]
