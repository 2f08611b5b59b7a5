"""Procedural SKUs for RFNet's training data: many product shapes, colours and printed labels
(``procedural:N``), and fitted SKUs whose concave silhouettes are not damage (``fitted:N``).
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
