"""``photoset``: ad scenes built from real photographs and textures, a renderer family of its own.

Every surface is cut from scikit-image's bundled photographs: walls of brick, plaster (the Moon's regolith), paper
and blurred rooms (a garage, a launch pad, a café table), tabletops and floors of wood grain (grass stretched
into grain), marble (retinal veins), gravel, grass and concrete, warped in perspective, recoloured and lit from
one side; props (mugs, books, potted plants, vases, fruit, candles, stools, lamps, baskets) are cut from the same
textures at their real-world heights, so they set the scene's scale. The product stands on a table, a floor,
a shelf, a plinth or the ground with a contact shadow and a cast shadow that follow the light.

``defect=`` draws one RF1M class its own way (see ``_DEFECT_KINDS``); whatever is drawn, the label comes from
:mod:`adcreative.generate.measure`, the labeller every renderer shares, applied to what was rendered.
No drawing code is shared with the compositor or the ``softfocus`` family.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from adcreative.catalogue.photos import bundled_photo
from adcreative.catalogue.sizes import real_height_cm
from adcreative.core.fonts import typeface
from adcreative.core.modeling import register_to_config
from adcreative.core.types import Box, Product, canvas_size
from adcreative.generate.base import GeneratedImage, SceneRenderer
from adcreative.generate.cutout import OPAQUE, crop_rgba, fit, paste, source_image
from adcreative.generate.measure import (
    Prop,
    SceneReport,
    Support,
    lab,
    label_render,
    product_palette,
    rim_colour,
)

VERSION = "1.0"
SCENES = ("table", "floor", "shelf", "plinth", "outdoor")
_DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "unsuitable": ("truncate", "holes", "torn", "crop", "pixelate", "blur"),
    "space_mismatch": ("float", "sink", "beside", "shadow"),
    "size_mismatch": ("toy", "giant", "tiny"),
    "indistinctiveness": ("tone", "camouflage", "backing"),
    "shape_hallucination": ("pedestal", "legs", "duplicate", "merged_prop", "extension"),
}


# -- photographs and the materials cut from them --------------------------------------------------------------
def _crop(rng: np.random.Generator, src: np.ndarray, w: int, h: int, zoom: float) -> np.ndarray:
    """A random crop of ``src`` covering ``zoom`` of its shorter side, resized to w×h (mirrored at random)."""
    sh, sw = src.shape[:2]
    ch = max(8, min(sh, int(min(sh, sw) * zoom)))
    cw = max(8, min(sw, int(ch * w / max(1, h))))
    if cw >= sw:  # very wide target: take the full width and a matching height
        cw, ch = sw, max(8, min(sh, int(sw * h / max(1, w))))
    y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    c = src[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        c = c[:, ::-1]
    return np.asarray(cv2.resize(np.ascontiguousarray(c), (max(1, w), max(1, h)), interpolation=cv2.INTER_LINEAR))


@functools.cache
def _grey(name: str) -> np.ndarray:
    out = np.ascontiguousarray(bundled_photo(name).mean(axis=2), dtype=np.float32)
    out.setflags(write=False)
    return out


def _pattern(rng: np.random.Generator, name: str, w: int, h: int, zoom: float, stretch: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-spread luminance of a photo crop: the texture without its colour. ``stretch`` > 1 pulls
    the crop out horizontally (grass → wood grain)."""
    cw = max(2, int(w / stretch))
    c = _crop(rng, _grey(name), cw, h, zoom)
    if stretch != 1.0:
        c = cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC)
    sub = c[::4, ::4]
    return np.asarray((c - float(sub.mean())) / (float(sub.std()) + 1e-3), np.float32)


# name → (photo, zoom range, stretch, texture strength, colours to tint it)
_MATERIALS: dict[str, tuple[str, tuple[float, float], float, float, tuple[tuple[int, int, int], ...]]] = {
    "oak": ("grass", (0.3, 0.6), 7.0, 0.10, ((176, 132, 88), (196, 156, 108), (150, 104, 66))),
    "walnut": ("grass", (0.3, 0.6), 7.0, 0.12, ((104, 70, 48), (86, 58, 40), (120, 84, 58))),
    "pale-wood": ("gravel", (0.2, 0.5), 9.0, 0.07, ((222, 196, 160), (232, 210, 178), (210, 182, 144))),
    "marble": ("retina", (0.15, 0.35), 1.0, 0.10, ((232, 230, 226), (214, 214, 218), (40, 40, 44))),
    "concrete": ("moon", (0.3, 0.7), 1.0, 0.09, ((168, 168, 164), (196, 192, 184), (128, 128, 130))),
    "plaster": ("moon", (0.5, 1.0), 1.0, 0.05, ((236, 230, 220), (222, 214, 204), (200, 214, 222),
                                                 (228, 206, 196), (70, 78, 92), (46, 66, 60))),
    "brick": ("brick", (0.4, 0.9), 1.0, 0.22, ((168, 84, 62), (236, 232, 226), (120, 120, 124))),
    "gravel": ("gravel", (0.3, 0.8), 1.0, 0.25, ((180, 168, 150), (140, 136, 130))),
    "grass": ("grass", (0.3, 0.8), 1.0, 0.25, ((96, 140, 64), (80, 120, 56))),
    "paper": ("page", (0.4, 0.9), 1.0, 0.05, ((240, 236, 226), (226, 220, 206))),
    "linen": ("cell", (0.2, 0.5), 1.0, 0.06, ((226, 218, 204), (196, 204, 214), (214, 196, 186), (60, 64, 80))),
    "terracotta": ("moon", (0.2, 0.5), 1.0, 0.10, ((188, 104, 70), (170, 92, 62))),
    "ceramic": ("moon", (0.5, 1.0), 1.0, 0.04, ((242, 240, 234), (40, 44, 52), (98, 140, 170), (206, 96, 70),
                                                 (226, 200, 120), (120, 160, 120))),
    "wicker": ("brick", (0.85, 1.0), 1.0, 0.3, ((196, 160, 104), (170, 132, 84), (120, 96, 70))),
    "leaf": ("grass", (0.1, 0.3), 1.0, 0.25, ((70, 130, 64), (50, 104, 52), (96, 150, 76))),
}
_SURFACES = ("oak", "walnut", "pale-wood", "marble", "concrete", "linen")
_WALLS = ("plaster", "plaster", "brick", "concrete", "linen", "photo", "photo")
_ROOM_PHOTOS = ("stereo_motorcycle", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                "grass", "gravel")


def _material(rng: np.random.Generator, name: str, w: int, h: int, tint: np.ndarray | None = None,
              strength: float | None = None) -> np.ndarray:
    """H×W×3 float32 material: a photo's texture in a colour (``tint``, else one of the material's own)."""
    src, zoom, stretch, k, colours = _MATERIALS[name]
    t = _pattern(rng, src, w, h, float(rng.uniform(*zoom)), stretch)
    base = np.asarray(tint if tint is not None else colours[int(rng.integers(len(colours)))], np.float32)
    if name == "marble":  # veins: the retina's vessels, darker than its background
        t = np.clip(t, -4, 0.5)
    elif name == "plaster":  # regolith softened into stucco: craters on a wall would read as holes
        t = np.asarray(cv2.GaussianBlur(t, (0, 0), max(1.5, min(w, h) / 120)), np.float32)
    s = k if strength is None else strength
    return np.clip(base[None, None] * (1 + s * t[..., None]), 0, 255).astype(np.float32)


def _room_photo(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A blurred photograph as an out-of-focus room or landscape behind the set."""
    name = _ROOM_PHOTOS[int(rng.integers(len(_ROOM_PHOTOS)))]
    img = _crop(rng, bundled_photo(name), w, h, float(rng.uniform(0.5, 1.0)))
    if name in ("grass", "gravel"):  # grey photographs: foliage or a stony bank behind, in its own colour
        img = img * (np.array([0.62, 0.9, 0.5], np.float32) if name == "grass" else np.array([1.0, 0.93, 0.82],
                                                                                             np.float32))
    img = cv2.GaussianBlur(img, (0, 0), max(2.0, min(w, h) * float(rng.uniform(0.012, 0.03))))
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * float(rng.uniform(0.4, 1.0))  # muted, as a backdrop is
    return np.asarray(np.clip(img * float(rng.uniform(0.8, 1.1)) + float(rng.uniform(-10, 25)), 0, 255), np.float32)


def _warp_plane(tex: np.ndarray, quad: np.ndarray, W: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Texture mapped onto a quad (tl, tr, br, bl) in perspective; returns the image and its coverage."""
    th, tw = tex.shape[:2]
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    img = cv2.warpPerspective(tex, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    cover = cv2.warpPerspective(np.ones((th, tw), np.float32), M, (W, H), flags=cv2.INTER_LINEAR)
    return np.asarray(img, np.float32), np.asarray(cover, np.float32)


def _planks(rng: np.random.Generator, tex: np.ndarray, n: int) -> np.ndarray:
    """Seams between floorboards or table planks, drawn into a flat texture before it is warped."""
    h, w = tex.shape[:2]
    out = tex.copy()
    for k in range(1, n):
        y = int(k * h / n)
        out[max(0, y - 1) : y + 1] *= 0.72
        for _ in range(2):
            x = int(rng.integers(0, w))
            out[int((k - 1) * h / n) : y, max(0, x - 1) : x + 1] *= 0.78
    return out


# -- shading --------------------------------------------------------------------------------------------------
def _cyl(w: int, light_x: float) -> np.ndarray:
    """Brightness across a round object lit from the side ``light_x`` (−1 left, +1 right)."""
    x = np.linspace(-1, 1, max(1, w), dtype=np.float32)
    n = np.sqrt(np.clip(1 - x**2, 0, 1))
    return np.asarray(0.62 + 0.38 * np.clip(0.75 * n + 0.45 * light_x * x, 0, 1)
                      + 0.18 * np.exp(-((x - 0.45 * light_x) ** 2) / 0.02), np.float32)


def _cast_shadow(alpha: np.ndarray, x0: int, base_y: int, W: int, H: int, light_x: float, length: float
                 ) -> np.ndarray:
    """An object's shadow on the ground behind it: its silhouette squashed to ``length`` of its height and
    sheared away from the light, blurred more the further it falls. Returns an H×W map in [0, 1]."""
    h, w = alpha.shape
    sh = max(2, int(h * length))
    sil = cv2.resize(alpha.astype(np.float32), (w, sh), interpolation=cv2.INTER_AREA)
    shear = -light_x * 0.9  # row y moves sideways by shear × (rows above the base)
    pad = int(abs(shear) * sh) + 1
    left = pad if shear < 0 else 0
    M = np.array([[1, -shear, shear * (sh - 1) + left], [0, 1, 0]], np.float32)
    sil = cv2.warpAffine(sil, M, (w + pad, sh))
    out = np.zeros((H, W), np.float32)
    ox, oy = x0 - left, base_y - sh
    ys0, ys1, xs0, xs1 = max(0, oy), min(H, oy + sh), max(0, ox), min(W, ox + sil.shape[1])
    if ys1 > ys0 and xs1 > xs0:
        out[ys0:ys1, xs0:xs1] = sil[ys0 - oy : ys1 - oy, xs0 - ox : xs1 - ox]
    return np.asarray(cv2.GaussianBlur(out, (0, 0), 1.0 + 0.02 * h), np.float32)


def _contact_shadow(W: int, H: int, cx: float, y: int, half_w: float, h: float) -> np.ndarray:
    out = np.zeros((H, W), np.float32)
    cv2.ellipse(out, (int(cx), int(y)), (max(2, int(half_w)), max(1, int(h))), 0, 0, 360, 1.0, -1)
    return np.asarray(cv2.GaussianBlur(out, (0, 0), max(1.0, h * 0.9)), np.float32)


# -- props at real-world scale ----------------------------------------------------------------------------------
# kind → (height cm, recognisable scale cue, where it stands)
PROPS: dict[str, tuple[float, bool, str]] = {
    "mug": (10.0, True, "table"), "books": (10.5, True, "table"), "plant": (26.0, True, "table"),
    "vase": (38.0, True, "table"), "apple": (8.0, True, "table"), "lemon": (6.5, True, "table"),
    "candle": (13.0, True, "table"), "pebbles": (5.0, False, "table"), "basket": (30.0, True, "any"),
    "floor-plant": (105.0, True, "floor"), "stool": (46.0, True, "floor"), "lamp": (155.0, True, "floor"),
}


def _leafy(rng: np.random.Generator, w: int, h: int, n: int, tall: bool) -> tuple[np.ndarray, np.ndarray]:
    """A clump of leaves (mask, texture) filling a w×h box, springing from its bottom centre."""
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        ang = float(rng.uniform(-1.1, 1.1))
        r = float(rng.uniform(0.55, 1.0)) * (h if tall else min(h, w * 0.7))
        cx = w / 2 + np.sin(ang) * r * 0.55
        cy = h - np.cos(ang) * r * 0.6
        axes = (max(2, int(r * (0.14 if tall else 0.22))), max(3, int(r * 0.42)))
        cv2.ellipse(m, (int(cx), int(cy)), axes, float(np.degrees(ang)), 0, 360, 255, -1)
    tex = _material(rng, "leaf", w, h)
    return m, tex


def _prop_rgba(rng: np.random.Generator, kind: str, h: int, light_x: float, avoid: np.ndarray | None
               ) -> np.ndarray:
    """One prop, ``h`` px tall, as RGBA float32 (alpha 0–1), lit from ``light_x``. ``avoid``: Lab colours the
    prop must not take (the product's), so a clean prop never reads as part of it."""
    h = max(6, h)

    def tinted(name: str, w_: int, h_: int) -> np.ndarray:
        cols = _MATERIALS[name][4]
        order = rng.permutation(len(cols))
        pick = cols[int(order[0])]
        if avoid is not None:
            far = [cols[i] for i in order
                   if np.linalg.norm(avoid - lab(np.asarray(cols[i], np.float32)), axis=-1).min() > 18]
            pick = far[0] if far else pick
        return _material(rng, name, w_, h_, tint=np.asarray(pick, np.float32))

    if kind == "mug":
        bw = int(h * 0.82)
        w = int(bw * 1.32)
        a = np.zeros((h, w), np.uint8)
        side = 1 if light_x < 0 else -1  # handle on the shaded side
        bx0 = 0 if side > 0 else w - bw
        cv2.rectangle(a, (bx0, int(h * 0.06)), (bx0 + bw - 1, h - int(h * 0.08)), 255, -1)
        cv2.ellipse(a, (bx0 + bw // 2, h - int(h * 0.08)), (bw // 2, int(h * 0.08)), 0, 0, 180, 255, -1)
        hx = bx0 + bw - 2 if side > 0 else bx0 + 2
        cv2.ellipse(a, (hx, int(h * 0.45)), (int(bw * 0.27), int(h * 0.24)), 0, 0, 360, 255, max(2, int(h * 0.09)))
        rgb = tinted("ceramic", w, h) * _cyl(w, light_x)[None, :, None]
        cv2.ellipse(rgb, (bx0 + bw // 2, int(h * 0.07)), (bw // 2 - 2, max(1, int(h * 0.06))), 0, 0, 360,
                    (70, 46, 30), -1)
    elif kind == "books":
        n = int(rng.integers(2, 5))
        t = h / n
        w = int(t * 8.5)
        a = np.zeros((h, w), np.uint8)
        rgb = np.zeros((h, w, 3), np.float32)
        for k in range(n):
            y1, y0 = int(h - k * t), int(h - (k + 1) * t)
            bw_ = int(w * rng.uniform(0.78, 0.97))
            x0_ = int(rng.integers(0, max(1, w - bw_)))
            col = np.asarray([int(v) for v in rng.integers(30, 220, 3)], np.float32)
            cover = _material(rng, "linen", bw_, max(1, y1 - y0), tint=col, strength=0.12)
            cover[:, :: max(4, bw_ // 6)] *= 0.9
            band = max(1, (y1 - y0) // 5)
            cover[band : 2 * band] = cover[band : 2 * band] * 0.5 + 120  # the title band on the spine
            rgb[y0:y1, x0_ : x0_ + bw_] = cover * _cyl(bw_, light_x * 0.3)[None, :, None]
            a[y0:y1, x0_ : x0_ + bw_] = 255
    elif kind in ("plant", "floor-plant"):
        tall = kind == "floor-plant"
        w = int(h * (0.62 if tall else 0.8))
        a = np.zeros((h, w), np.uint8)
        pot_h = int(h * (0.3 if tall else 0.42))
        pw_ = int(w * (0.52 if tall else 0.62))
        px0 = (w - pw_) // 2
        pts = np.array([[px0, h - pot_h], [px0 + pw_, h - pot_h], [px0 + int(pw_ * 0.86), h - 1],
                        [px0 + int(pw_ * 0.14), h - 1]], np.int32)
        cv2.fillPoly(a, [pts], 255)
        rgb = tinted("terracotta" if rng.random() < 0.6 else "ceramic", w, h) * _cyl(w, light_x)[None, :, None]
        lm, lt = _leafy(rng, w, h - pot_h + int(h * 0.03), int(rng.integers(9, 16)), tall)
        top = np.zeros((h, w), np.uint8)
        top[: lm.shape[0]] = lm
        leaf = top > 0
        rgb[: lm.shape[0]][leaf[: lm.shape[0]]] = (lt * _cyl(w, light_x)[None, :, None])[leaf[: lm.shape[0]]]
        a = np.maximum(a, top)
    elif kind == "vase":
        w = int(h * 0.55)
        a = np.zeros((h, w), np.uint8)
        vh = int(h * 0.58)
        ys = np.arange(vh)
        prof = (0.28 + 0.2 * np.sin(np.pi * (ys / vh) ** 0.8)) * w
        for i, r in enumerate(prof):
            y = h - vh + i
            a[y, max(0, int(w / 2 - r)) : int(w / 2 + r)] = 255
        rgb = tinted("ceramic", w, h) * _cyl(w, light_x)[None, :, None]
        stem = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(3, 6))):
            tx = int(w / 2 + rng.uniform(-0.4, 0.4) * w)
            ty = int(rng.uniform(0.0, 0.15) * h)
            cv2.line(stem, (w // 2, h - vh + 2), (tx, ty), 255, max(1, w // 30))
            cv2.ellipse(stem, (tx, ty), (max(2, w // 14), max(3, w // 8)), float(rng.uniform(0, 180)), 0, 360, 255, -1)
        st = stem > 0
        st[h - vh :] &= a[h - vh :] == 0
        rgb[st] = _material(rng, "leaf", w, h)[st]
        a = np.maximum(a, stem)
    elif kind in ("apple", "lemon"):
        w = int(h * (1.05 if kind == "apple" else 1.4))
        a = np.zeros((h, w), np.uint8)
        cv2.ellipse(a, (w // 2, h // 2 + h // 16), (w // 2 - 1, h // 2 - h // 16 - 1), 0, 0, 360, 255, -1)
        skin = (176, 30, 36) if kind == "apple" and rng.random() < 0.6 else (120, 170, 50) if kind == "apple" \
            else (236, 200, 40)
        rgb = _material(rng, "gravel", w, h, tint=np.asarray(skin, np.float32), strength=0.05)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = np.hypot((xx - w / 2 + light_x * w * 0.18) / (w / 2), (yy - h * 0.4) / (h / 2))
        rgb = rgb * np.clip(1.15 - 0.45 * d, 0.5, 1.2)[..., None]
        if kind == "apple":
            cv2.line(a, (w // 2, h // 8), (w // 2 + w // 12, 0), 255, max(1, w // 18))
            cv2.line(rgb, (w // 2, h // 8), (w // 2 + w // 12, 0), (80, 54, 30), max(1, w // 18))
    elif kind == "candle":
        w = max(4, int(h * 0.5))
        a = np.zeros((h, w), np.uint8)
        body = int(h * 0.78)
        cv2.rectangle(a, (0, h - body), (w - 1, h - 1), 255, -1)
        rgb = _material(rng, "ceramic", w, h, tint=np.asarray((238, 228, 206), np.float32)) * \
            _cyl(w, light_x)[None, :, None]
        cv2.ellipse(a, (w // 2, h - body - int(h * 0.1)), (max(1, w // 8), max(2, int(h * 0.09))), 0, 0, 360, 255, -1)
        cv2.ellipse(rgb, (w // 2, h - body - int(h * 0.1)), (max(1, w // 8), max(2, int(h * 0.09))), 0, 0, 360,
                    (255, 214, 120), -1)
    elif kind == "pebbles":
        w = int(h * 3.2)
        a = np.zeros((h, w), np.uint8)
        rgb = _material(rng, "gravel", w, h, tint=np.asarray((150, 146, 140), np.float32), strength=0.1)
        x = 0
        while x < w - h // 2:
            r = int(h * rng.uniform(0.35, 0.5))
            cv2.ellipse(a, (x + int(r * 1.3), h - r), (int(r * 1.3), r), 0, 0, 360, 255, -1)
            x += int(r * 2.4)
    elif kind == "basket":
        w = int(h * 1.2)
        a = np.zeros((h, w), np.uint8)
        pts = np.array([[0, int(h * 0.12)], [w - 1, int(h * 0.12)], [int(w * 0.9), h - 1], [int(w * 0.1), h - 1]],
                       np.int32)
        cv2.fillPoly(a, [pts], 255)
        cv2.ellipse(a, (w // 2, int(h * 0.12)), (w // 2 - 1, max(2, int(h * 0.1))), 0, 180, 360, 255, -1)
        rgb = _material(rng, "wicker", w, h) * _cyl(w, light_x)[None, :, None]
    elif kind == "stool":
        w = int(h * 0.85)
        a = np.zeros((h, w), np.uint8)
        seat = max(3, int(h * 0.1))
        cv2.ellipse(a, (w // 2, seat), (w // 2 - 1, seat), 0, 0, 360, 255, -1)
        lw = max(2, int(w * 0.07))
        for xb, xt in ((int(w * 0.08), int(w * 0.22)), (w - int(w * 0.08), w - int(w * 0.22)), (w // 2, w // 2)):
            cv2.line(a, (xt, seat), (xb, h - 1), 255, lw)
        rgb = _material(rng, "oak" if rng.random() < 0.5 else "walnut", w, h) * _cyl(w, light_x)[None, :, None]
    else:  # lamp
        w = int(h * 0.3)
        a = np.zeros((h, w), np.uint8)
        shade_h = int(h * 0.2)
        cv2.fillPoly(a, [np.array([[int(w * 0.2), 0], [int(w * 0.8), 0], [w - 1, shade_h], [0, shade_h]], np.int32)],
                     255)
        cv2.line(a, (w // 2, shade_h), (w // 2, h - 2), 255, max(2, w // 18))
        cv2.ellipse(a, (w // 2, h - max(2, h // 60)), (int(w * 0.3), max(2, h // 60)), 0, 0, 360, 255, -1)
        rgb = np.full((h, w, 3), 60, np.float32) * _cyl(w, light_x)[None, :, None]
        rgb[: shade_h + 1] = _material(rng, "linen", w, shade_h + 1)
    rgb = np.clip(rgb, 0, 255)
    alpha = cv2.GaussianBlur(a.astype(np.float32) / 255.0, (3, 3), 0.6)
    return np.dstack([rgb, alpha]).astype(np.float32)


# -- copy -----------------------------------------------------------------------------------------------------
def _wrap_words(draw: ImageDraw.ImageDraw, text: str, f: Any, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(lines[-1] + " " + word, font=f) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


@dataclass
class _Copy:
    """Where copy goes (a band across the top, a column at one side, a strip at the bottom, or none)."""

    template: str
    box: Box | None  # the area the copy may use
    band: bool = False  # copy sits on a translucent band of its own


def _plan_copy(rng: np.random.Generator, W: int, H: int, has_text: bool) -> _Copy:
    if not has_text:
        return _Copy("none", None)
    m = int(0.05 * min(W, H))
    if W > 1.3 * H and rng.random() < 0.7:
        side = "left" if rng.random() < 0.5 else "right"
        cw = int(W * rng.uniform(0.32, 0.4))
        x0 = m if side == "left" else W - cw - m
        return _Copy(f"side-{side}", Box(x0, m, x0 + cw, H - m))
    if rng.random() < 0.3:
        bh = int(H * rng.uniform(0.14, 0.2))
        return _Copy("bottom-band", Box(0, H - bh, W, H), band=True)
    th = int(H * rng.uniform(0.17, 0.24))
    return _Copy("top", Box(m, m, W - m, m + th))


def _draw_copy(canvas: Image.Image, rng: np.random.Generator, plan: _Copy, product: Product) -> dict[str, Box]:
    """Headline, copy line, price tag; returns their boxes (drawn inside ``plan.box``)."""
    if plan.box is None:
        return {}
    draw = ImageDraw.Draw(canvas, "RGBA")
    b = plan.box
    if plan.band:
        dark = rng.random() < 0.6
        draw.rectangle(b.as_list(), fill=(18, 18, 22, 200) if dark else (250, 248, 244, 215))
    region = np.asarray(canvas)[b.y0 : b.y1, b.x0 : b.x1].reshape(-1, 3).mean(axis=0)
    light_bg = float(0.299 * region[0] + 0.587 * region[1] + 0.114 * region[2]) > 128
    ink = (24, 24, 28, 255) if light_bg else (252, 252, 250, 255)
    face = ("sans-bold", "serif-bold", "narrow-bold", "dejavu-serif-bold")[int(rng.integers(4))]
    pad = max(4, b.h // 12) if plan.band else 0
    inner_w = b.w - 2 * pad - (b.w // 4 if plan.band else 0)
    size = max(10, int(min(b.h * (0.32 if plan.template != "top" else 0.36), W_FRAC * canvas.width)))
    headline = str(product.attrs.get("headline") or product.title)
    while True:
        f = typeface(face, size)
        lines = _wrap_words(draw, headline, f, inner_w)
        lh = int(size * 1.18)
        if len(lines) * lh <= b.h * (0.62 if product.copy else 0.9) or size <= 10:
            break
        size = int(size * 0.88)
    boxes: dict[str, Box] = {}
    x, y = b.x0 + pad, b.y0 + pad
    for ln in lines:
        draw.text((x, y), ln, font=f, fill=ink)
        y += lh
    boxes["headline"] = Box(b.x0 + pad, b.y0 + pad, min(b.x1, b.x0 + pad + int(max(draw.textlength(ln, font=f)
                                                                                  for ln in lines)) + 1), y)
    if product.copy and y + int(size * 0.7) < b.y1:
        f2 = typeface("serif-italic" if face.startswith(("serif", "dejavu")) else "sans", max(9, int(size * 0.52)))
        cl = _wrap_words(draw, product.copy, f2, inner_w)[:2]
        y0 = y + int(size * 0.15)
        for ln in cl:
            if y0 + int(size * 0.6) > b.y1:
                break
            draw.text((x, y0), ln, font=f2, fill=ink)
            y0 += int(size * 0.62)
        boxes["copy"] = Box(x, y + int(size * 0.15), min(b.x1, x + inner_w), min(b.y1, y0))
    badge = product.attrs.get("badge")
    price = product.price
    if (price is not None or badge) and rng.random() < 0.8:
        text = str(badge) if badge and (price is None or rng.random() < 0.4) else f"${price:,.2f}"
        fs = max(10, int(size * 0.6))
        f3 = typeface("sans-bold", fs)
        tw = int(draw.textlength(text, font=f3))
        bw_, bh_ = tw + fs, int(fs * 1.7)
        if plan.band:
            bx0, by0 = b.x1 - bw_ - pad, b.y0 + (b.h - bh_) // 2
        else:
            bx0, by0 = b.x1 - bw_, b.y1 - bh_
        if bx0 > x + 4 and by0 >= b.y0:
            tag = tuple(int(v) for v in rng.integers(20, 230, 3))
            draw.rounded_rectangle((bx0, by0, bx0 + bw_, by0 + bh_), radius=bh_ // 5, fill=(*tag, 255))
            draw.ellipse((bx0 + 3, by0 + bh_ // 2 - 2, bx0 + 7, by0 + bh_ // 2 + 2), fill=(250, 250, 250, 255))
            lum = 0.299 * tag[0] + 0.587 * tag[1] + 0.114 * tag[2]
            draw.text((bx0 + fs * 0.6, by0 + bh_ * 0.2), text, font=f3, fill=(20, 20, 20) if lum > 140 else (255, 255, 255))
            boxes["badge" if badge and text == str(badge) else "price"] = Box(bx0, by0, bx0 + bw_ + 1, by0 + bh_ + 1)
    return boxes


W_FRAC = 0.075  # largest headline size as a fraction of the canvas width


# -- the scene plan ------------------------------------------------------------------------------------------
@dataclass
class _Scene:
    kind: str
    horizon: int  # where the wall meets the surface
    front: int  # near edge of the table or plinth front, or the canvas bottom
    light_x: float
    shadow_len: float
    surface: str
    wall: str
    plinth: tuple[int, int, int, int] | None = None  # x0, top, x1, base of the plinth's front face
    shelf: tuple[int, int, int, int] | None = None  # x0, top, x1, thickness
    extras: dict[str, Any] = field(default_factory=dict)


class PhotoSet(SceneRenderer):
    """Renderer family ``photoset``: scenes built from real photographs and textures (see the module docstring)."""

    name = "photoset"
    version = VERSION

    @register_to_config
    def __init__(self, scale: float = 1.0, text_rate: float = 0.7) -> None:
        self.scale = scale
        self.text_rate = text_rate
        self.config: dict[str, Any]

    # ------------------------------------------------------------------------------------------------
    def generate_one(self, product: Product, *, seed: int, aspect: str, defect: str | None = None,
                     severity: float = 0.5) -> GeneratedImage:
        rng = np.random.default_rng(seed)
        W, H = canvas_size(aspect, self.scale)
        cut = crop_rgba(product.image)
        palette = product_palette(cut)
        cm = real_height_cm(product)
        want = defect if defect not in (None, "available") else None
        kind = _DEFECT_KINDS[want][int(rng.integers(len(_DEFECT_KINDS[want])))] if want else "clean"
        s = float(severity)

        copy = _plan_copy(rng, W, H, rng.random() < self.text_rate)
        scene = self._plan_scene(rng, W, H, cm, kind)
        # the product region: the canvas less the copy area, with a margin
        m = int(0.04 * min(W, H))
        rx0, ry0, rx1, ry1 = m, m, W - m, H - m
        if copy.box is not None:
            if copy.template == "top":
                ry0 = copy.box.y1 + m
            elif copy.template == "bottom-band":
                ry1 = copy.box.y0 - m // 2
            elif copy.template == "side-left":
                rx0 = copy.box.x1 + m
            else:
                rx1 = copy.box.x0 - m
        y_s = self._support_line(rng, scene, ry0, ry1, H)
        aspect_p = cut.shape[1] / cut.shape[0]

        # product size: a share of the height above its support, inside the region
        avail_h = max(8, y_s - ry0)
        ph = int(avail_h * rng.uniform(0.55, 0.9))
        pw = int(ph * aspect_p)
        max_w = int((rx1 - rx0) * (0.62 if rng.random() < 0.7 else 0.8))
        if pw > max_w:
            pw, ph = max_w, int(max_w / aspect_p)
        min_long = int(0.3 * min(W, H))
        if max(ph, pw) < min_long:  # a small region: let the product fill it rather than be lost
            ph = min(avail_h, int(min_long / max(1.0, aspect_p)))
            pw = int(ph * aspect_p)
        px_per_cm = ph / cm  # the set is dressed to the product's real scale
        prop_px_per_cm = px_per_cm
        raise_by = 0
        top_cut = False
        if kind == "toy":
            k = 1.6 + 2.4 * s
            ph, pw = int(ph / k), int(pw / k)
        elif kind == "giant":
            prop_px_per_cm = px_per_cm / (1.6 + 2.4 * s)
        elif kind == "tiny":
            f = (0.14 - 0.09 * s) * min(W, H) / max(ph, pw)
            ph, pw = int(ph * f), int(pw * f)
            prop_px_per_cm = ph / cm
        elif kind in ("pedestal", "legs"):
            r = 0.22 + 0.35 * s
            if ph * (1 + r) > avail_h:
                f = avail_h / (ph * (1 + r))
                ph, pw = int(ph * f), int(pw * f)
            raise_by = int(ph * r)
        elif kind == "truncate":
            frac_out = 0.02 + 0.45 * s
            top_cut = ph >= pw and rng.random() < 0.3
            if top_cut:  # too tall for the frame: its top runs off the canvas
                ph = int(y_s / (1 - frac_out))
                pw = int(ph * aspect_p)
        ph, pw = max(ph, 6), max(pw, 6)
        ref = fit(cut, pw, ph)
        rows = np.nonzero((ref[..., 3] >= OPAQUE).any(axis=1))[0]
        base_off = int(rows.max()) if len(rows) else ph - 1  # lowest opaque row: what touches the support

        # horizontal position, and the support's extent
        free = (rx1 - rx0) - pw
        cx = rx0 + pw / 2 + (free * float(rng.uniform(0.2, 0.8)) if free > 0 else free / 2)
        if scene.plinth is not None or scene.shelf is not None:
            cx = self._centre_on_support(scene, cx, pw, W)
        x0 = round(cx - pw / 2)
        sup_x0, sup_x1 = 0, W
        if scene.plinth is not None:
            sup_x0, sup_x1 = scene.plinth[0], scene.plinth[2]
        elif scene.shelf is not None:
            sup_x0, sup_x1 = scene.shelf[0], scene.shelf[2]

        # -- defect geometry that moves the product --------------------------------------------------------
        lift = 0
        if kind == "float":
            lift = int(ph * (0.4 * s - 0.03)) + 4
        elif kind == "sink":
            lift = -int(ph * (0.35 * s - 0.02)) - 4
        elif kind == "beside":  # level with the support's top, hanging over its edge in mid-air
            foot = np.nonzero((ref[max(0, base_off - max(2, ph // 25)) : base_off + 1, :, 3] >= OPAQUE).any(axis=0))[0]
            f0, f1 = (int(foot.min()), int(foot.max()) + 1) if len(foot) else (0, pw)
            keep = int((f1 - f0) * (0.42 - 0.27 * s))  # 58–85 % of its base past the edge, the rest still on it
            x0 = sup_x1 - keep - f0 if W - sup_x1 >= sup_x0 else sup_x0 + keep - f1
            x0 = int(np.clip(x0, 0, W - pw))
        elif kind == "truncate" and not top_cut:
            x0 = int(-pw * frac_out) if rng.random() < 0.5 else int(W - pw * (1 - frac_out))
        y0 = y_s - base_off - raise_by - lift
        box = (x0, y0, x0 + pw, y0 + ph)

        # -- the plate: wall, surface, support ---------------------------------------------------------------
        objects = np.zeros((H, W), np.int32)  # one id per solid object: 1 the support, 10+ props, 100 grown parts
        dominant = rim_colour(cut)  # the colour the contrast rule compares a backdrop against
        outline = dominant[None]
        if kind == "tone":  # a set in the product's own colour: smooth materials, or the tint is lost in texture
            scene.wall = ("plaster", "concrete", "linen")[int(rng.integers(3))]
            scene.surface = ("concrete", "linen", "marble")[int(rng.integers(3))]
            scene.extras["strength"] = 0.03
        tint_wall, tint_surf = self._tints(rng, dominant, kind, s)
        plate = self._render_set(rng, scene, W, H, tint_wall, tint_surf, objects, kind, palette, outline, s)
        if kind == "backing":
            plate = self._backing(rng, plate, box, dominant, s)

        # -- props beside the product, at the set's scale ---------------------------------------------------
        props: list[Prop] = []
        layers: list[tuple[np.ndarray, int, int]] = []
        occupied = [box] + ([copy.box.as_list()] if copy.box is not None else [])
        n_props = int(rng.choice([0, 1, 2, 3], p=[0.2, 0.35, 0.3, 0.15]))
        if kind in ("toy", "giant"):
            n_props = max(2, n_props)
        if kind == "merged_prop":
            n_props = max(1, n_props)
        kinds = self._prop_kinds(rng, scene, cm, prop_px_per_cm, y_s, ry0, cue_only=kind in ("toy", "giant"))
        while kinds and len(props) < n_props:
            pk = kinds.pop(0)
            pcm = PROPS[pk][0]
            hpx = int(pcm * prop_px_per_cm)
            merged = kind == "merged_prop" and not props
            if hpx < 8 or hpx > y_s - 2 or (merged and hpx < 0.25 * ph):
                continue
            rgba = _prop_rgba(rng, pk, hpx, scene.light_x, None if merged else palette)
            if merged:
                rgba[..., :3] = self._in_product_colours(rng, rgba, cut)
            wpx = rgba.shape[1]
            placed = self._place_prop(rng, box, wpx, hpx, y_s, occupied, rx0, rx1, W, merged)
            if placed is None:
                continue
            occupied.append([placed, y_s - hpx, placed + wpx, y_s])
            layers.append((rgba, placed, y_s - hpx))
            props.append(Prop((placed, y_s - hpx, placed + wpx, y_s), pcm, pk, PROPS[pk][1]))

        # -- shadows of props and product, lit from one side ----------------------------------------------------
        shade = np.zeros((H, W), np.float32)
        for rgba, px0, py0 in layers:
            hh, ww = rgba.shape[:2]
            shade += 0.45 * _cast_shadow(rgba[..., 3], px0, py0 + hh, W, H, scene.light_x, scene.shadow_len)
            shade += 0.5 * _contact_shadow(W, H, px0 + ww / 2, py0 + hh, ww * 0.45, max(1.5, hh * 0.03))
        alpha_p = ref[..., 3].astype(np.float32) / 255.0
        foot = np.nonzero(alpha_p[max(0, base_off - max(2, ph // 25)) : base_off + 1].max(axis=0) > 0.5)[0]
        fx0, fx1 = (x0 + int(foot.min()), x0 + int(foot.max()) + 1) if len(foot) else (x0, x0 + pw)
        shadow_at: tuple[float, float] | None = ((fx0 + fx1) / 2, float(y_s))
        base_y = y0 + base_off
        if kind == "shadow":
            dx = ph * (0.25 + 0.9 * s) * (1 if rng.random() < 0.5 else -1)
            dy = ph * float(rng.uniform(0.0, 0.15))
            shadow_at = ((fx0 + fx1) / 2 + dx, y_s + dy)
            shade += 0.6 * _cast_shadow(alpha_p, int(x0 + dx), int(base_y + dy), W, H, scene.light_x,
                                        max(0.3, scene.shadow_len))
            shade += 0.8 * _contact_shadow(W, H, shadow_at[0], int(shadow_at[1]), (fx1 - fx0) * 0.55,
                                           max(2.0, ph * 0.035))
        elif kind == "beside":
            shadow_at = None  # nothing under it to catch a contact shadow
        elif kind in ("pedestal", "legs"):
            shadow_at = None  # the shadow on the ground is the support's
        else:
            ground = y_s
            strength = 1.0 if lift <= 0 else max(0.25, 1.0 - lift / max(1, ph) * 1.6)
            spread = 1.0 if lift <= 0 else 1.0 + lift / max(1, ph)
            if kind != "sink":
                shade += 0.5 * strength * _cast_shadow(alpha_p, x0, ground, W, H, scene.light_x, scene.shadow_len)
            shade += 0.7 * strength * _contact_shadow(W, H, (fx0 + fx1) / 2, ground, (fx1 - fx0) * 0.52 * spread,
                                                      max(2.0, ph * 0.028 * spread))
        plate = plate * (1 - np.clip(shade, 0, 0.8))[..., None]

        # -- props, then hallucinated parts behind the product, then the product -------------------------------------
        for i, (rgba, px0, py0) in enumerate(layers):
            objects[self._over(plate, rgba, px0, py0)] = 10 + i
        if kind in ("pedestal", "legs"):
            objects[self._support_in_product_colours(rng, plate, kind, ref, x0, y0 + base_off, y_s, base_off,
                                                     scene.light_x, palette)] = 100
            sup_x0, sup_x1 = fx0, fx1
        elif kind == "duplicate":
            objects[self._duplicate(rng, plate, ref, x0, y0, s)] = 100
        elif kind == "extension":
            objects[self._extension(rng, plate, ref, x0, y0, s)] = 100
        canvas = np.clip(plate + 0.5, 0, 255).astype(np.uint8)

        source = None
        placed_ref = ref
        if kind in ("torn", "crop", "pixelate"):
            placed_ref = self._bad_source(rng, ref, kind, s)
            source = source_image(placed_ref)
        elif kind == "blur":
            sig = max(1.2, ph * (0.012 + 0.03 * s))
            placed_ref = np.asarray(cv2.GaussianBlur(ref, (0, 0), sig))
        visible = paste(canvas, placed_ref, x0, y0)
        placement = None
        if kind == "holes":
            hole = self._holes(rng, ref, s)
            hx0, hy0 = max(0, x0), max(0, y0)
            hx1, hy1 = min(W, x0 + pw), min(H, y0 + ph)
            sub = hole[hy0 - y0 : hy1 - y0, hx0 - x0 : hx1 - x0]
            region = canvas[hy0:hy1, hx0:hx1]
            back = np.clip(plate[hy0:hy1, hx0:hx1] + 0.5, 0, 255).astype(np.uint8)
            region[sub] = back[sub]
            placement = visible.copy()
            visible[hy0:hy1, hx0:hx1] &= ~sub
        elif kind == "sink":
            # the support is drawn over the product's lower part: it has sunk into it
            cover = np.zeros((H, W), bool)
            cover[max(0, y_s + 1) :, max(0, x0 - 2) : min(W, x0 + pw + 2)] = True
            cover &= (np.arange(H)[:, None] > y_s)
            back = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
            canvas[cover] = back[cover]
            visible &= ~cover
            objects[cover & scene.extras.get("support_mask", np.ones((H, W), bool))] = 1

        # -- copy ----------------------------------------------------------------------------------------------
        img = Image.fromarray(canvas, "RGB")
        boxes = _draw_copy(img, rng, copy, product)
        out = np.asarray(img)
        support = Support(int(y_s), int(sup_x0), int(sup_x1), scene.kind if kind not in ("pedestal", "legs")
                          else kind)
        if kind in ("pedestal", "legs"):
            support = Support(int(y0 + base_off), int(fx0), int(fx1), kind)
        rep = SceneReport(box=box, reference=ref, product_cm=cm, support=support, props=props, objects=objects,
                          shadow=shadow_at, palette=palette)
        labelled = label_render(out, visible, rep, defect)
        params = {"scene": scene.kind, "wall": scene.wall, "surface": scene.surface, "light_x": scene.light_x,
                  "copy": copy.template, "kind": kind, "severity": s if want else 0.0, "requested": defect,
                  "product_box": list(box), "px_per_cm": round(px_per_cm, 4), **labelled}
        return self.result(out, visible, boxes=boxes, params=params, seed=seed, aspect=aspect, source=source,
                           placement=placement)

    # -- planning ------------------------------------------------------------------------------------------------
    def _plan_scene(self, rng: np.random.Generator, W: int, H: int, cm: float, kind: str) -> _Scene:
        big = cm > 50
        choices: tuple[str, ...]
        if kind == "beside":
            choices = ("plinth", "shelf") if not big else ("plinth",)
        elif kind == "truncate":
            choices = ("table", "floor", "outdoor")
        elif kind in ("tone", "camouflage", "backing"):  # a plinth in its colour would read as a grown part
            choices = ("table", "floor")
        elif kind == "sink":
            choices = ("table", "floor", "outdoor", "plinth") if not big else ("floor", "outdoor")
        elif big:
            choices = ("floor", "floor", "outdoor", "plinth")
        else:
            choices = ("table", "table", "shelf", "plinth", "outdoor", "floor")
        sk = choices[int(rng.integers(len(choices)))]
        horizon = int(H * rng.uniform(0.45, 0.66))
        front = H if sk in ("floor", "outdoor") or rng.random() < 0.5 else int(H * rng.uniform(0.86, 0.95))
        surface = {"outdoor": ("grass", "gravel")[int(rng.integers(2))],
                   "floor": ("oak", "walnut", "pale-wood", "concrete", "marble")[int(rng.integers(5))]}.get(
            sk, _SURFACES[int(rng.integers(len(_SURFACES)))])
        wall = "photo" if sk == "outdoor" else _WALLS[int(rng.integers(len(_WALLS)))]
        sc = _Scene(sk, horizon, front, float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.5, 1.0)),
                    float(rng.uniform(0.15, 0.5)), surface, wall)
        if sk == "plinth":
            pw_ = int(W * rng.uniform(0.3, 0.55))
            base = int(H * rng.uniform(0.8, 0.95))
            top = int(base - H * rng.uniform(0.12, 0.3))
            x0 = int(W * rng.uniform(0.08, 0.92) - pw_ / 2)
            x0 = int(np.clip(x0, int(0.04 * W), W - pw_ - int(0.04 * W)))
            sc.plinth = (x0, top, x0 + pw_, base)
            sc.extras["plinth_round"] = bool(rng.random() < 0.5)
            sc.horizon = min(sc.horizon, top - int(0.08 * H))
        elif sk == "shelf":
            full = rng.random() < 0.5 and kind != "beside"
            x0 = 0 if full else int(W * rng.uniform(0.05, 0.3))
            x1 = W if full else int(W * rng.uniform(0.7, 0.95))
            top = int(H * rng.uniform(0.6, 0.8))
            sc.shelf = (x0, top, x1, max(4, int(H * rng.uniform(0.025, 0.05))))
        return sc

    @staticmethod
    def _support_line(rng: np.random.Generator, sc: _Scene, ry0: int, ry1: int, H: int) -> int:
        if sc.plinth is not None:
            depth = max(4, int((sc.plinth[2] - sc.plinth[0]) * 0.16))
            sc.extras["plinth_depth"] = depth
            return sc.plinth[1] - (0 if sc.extras.get("plinth_round") else depth // 2)
        if sc.shelf is not None:
            depth = max(3, int(sc.shelf[3] * 0.9))
            sc.extras["shelf_depth"] = depth
            return sc.shelf[1] - depth // 2
        lo = sc.horizon + int(0.25 * (sc.front - sc.horizon))
        hi = min(sc.front - max(4, int(0.08 * (sc.front - sc.horizon))), ry1)
        return int(rng.integers(min(lo, hi - 1), max(lo, hi - 1) + 1))

    @staticmethod
    def _centre_on_support(sc: _Scene, cx: float, pw: int, W: int) -> float:
        x0, x1 = (sc.plinth[0], sc.plinth[2]) if sc.plinth is not None else (sc.shelf[0], sc.shelf[2])  # type: ignore[index]
        lo, hi = x0 + pw / 2 + 2, x1 - pw / 2 - 2
        if lo > hi:
            return (x0 + x1) / 2
        return float(np.clip(cx, lo, hi))

    def _tints(self, rng: np.random.Generator, dominant: np.ndarray, kind: str, s: float
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Wall and surface colours: the product's own (indistinct), else ones far from every product colour."""
        if kind in ("tone", "camouflage"):
            de = 7.0 - 5.5 * s
            return _near(rng, dominant, de), _near(rng, dominant, de * 1.2)
        return None, None

    def _render_set(self, rng: np.random.Generator, sc: _Scene, W: int, H: int, tint_wall: np.ndarray | None,
                    tint_surf: np.ndarray | None, objects: np.ndarray, kind: str, palette: np.ndarray,
                    outline: np.ndarray, s: float) -> np.ndarray:
        """Wall, surface and support (table edge, shelf board, plinth) as float32 RGB, lit from one side."""
        camo = kind == "camouflage"
        if sc.wall == "photo" and tint_wall is None:
            wall = self._far_from(rng, _room_photo(rng, W, H), outline)
        else:
            name = sc.wall if sc.wall != "photo" else "plaster"
            half = _material(rng, name, max(8, W // 2), max(8, H // 2), tint=tint_wall,
                             strength=sc.extras.get("strength"))  # a wall's texture is soft: half resolution
            wall = np.asarray(cv2.resize(half, (W, H), interpolation=cv2.INTER_LINEAR), np.float32)
            if tint_wall is None:
                wall = self._far_from(rng, wall, outline)
        if camo:
            wall = _camouflage(rng, W, H, palette, s)
        img = wall.copy()
        if sc.kind in ("table", "floor", "outdoor", "plinth"):
            th, tw = max(8, sc.front - sc.horizon), W
            tex = _material(rng, sc.surface, tw, th, tint=tint_surf, strength=sc.extras.get("strength"))
            if tint_surf is None:
                tex = self._far_from(rng, tex, outline)
            if sc.surface in ("oak", "walnut", "pale-wood") and tint_surf is None:
                tex = _planks(rng, tex, int(rng.integers(4, 9)))
            if camo:
                tex = _camouflage(rng, tw, th, palette, s)
            spread_far = float(rng.uniform(0.1, 0.35)) * W
            quad = np.array([[-spread_far, sc.horizon], [W + spread_far, sc.horizon], [W * 1.9, sc.front],
                             [-W * 0.9, sc.front]], np.float32)
            plane, cover = _warp_plane(tex, quad, W, H)
            depth = np.clip((np.arange(H, dtype=np.float32) - sc.horizon) / max(1, sc.front - sc.horizon), 0, 1)
            plane *= (0.86 + 0.14 * depth)[:, None, None]  # the far surface recedes into shade
            cov = cover[..., None]
            img = img * (1 - cov) + plane * cov
            # a crease of shade where wall meets surface
            yy = np.arange(H, dtype=np.float32)[:, None]
            img *= (1 - 0.12 * np.exp(-((yy - sc.horizon) ** 2) / 18.0))[..., None]
            if sc.front < H:  # the table's front edge and what is below it
                edge_h = max(3, int(0.025 * H))
                img[sc.front : sc.front + edge_h] = img[max(0, sc.front - 1) : sc.front] * 0.72
                img[sc.front + edge_h :] = img[sc.front + edge_h :] * 0.45 + 10
        sc.extras["support_mask"] = np.zeros((H, W), bool)
        if sc.kind == "table" or sc.kind in ("floor", "outdoor"):
            sc.extras["support_mask"][sc.horizon :] = True
        if sc.plinth is not None:
            x0, top, x1, base = sc.plinth
            d = sc.extras.get("plinth_depth", max(3, int((base - top) * 0.18)))
            mat = ("marble", "concrete", "oak", "walnut", "pale-wood", "linen", "ceramic")[int(rng.integers(7))]
            pw_ = x1 - x0
            face_h = max(base - top, 2 * d) + d + 2  # the front face below the lid and the lid itself
            face = self._far_from(rng, _material(rng, mat, pw_, face_h, tint=tint_surf),
                                  outline if tint_surf is not None else np.concatenate([outline, palette[:5]]))
            m = np.zeros((H, W), np.uint8)
            top_m = np.zeros((H, W), np.uint8)
            cx = (x0 + x1) // 2
            if sc.extras.get("plinth_round"):
                # a round podium: a curved front and an elliptical top
                cv2.rectangle(m, (x0, top), (x1 - 1, base), 255, -1)
                cv2.ellipse(m, (cx, base), (pw_ // 2, d // 2), 0, 0, 180, 255, -1)
                cv2.ellipse(top_m, (cx, top), (pw_ // 2, d // 2), 0, 0, 360, 255, -1)
                front = face[d // 2 :][: H - top] * _cyl(pw_, sc.light_x * 0.6)[None, :, None]
            else:
                # a box plinth seen a little from above: a front face and a receding top face
                inset = max(2, int(pw_ * 0.06))
                cv2.rectangle(m, (x0, top), (x1 - 1, base), 255, -1)
                cv2.fillPoly(top_m, [np.array([[x0 + inset, top - d], [x1 - 1 - inset, top - d], [x1 - 1, top],
                                               [x0, top]], np.int32)], 255)
                front = face[d // 2 :][: H - top] * (0.92 + 0.08 * sc.light_x * np.linspace(-1, 1, pw_))[None, :, None]
            region = np.zeros((H, W, 3), np.float32)
            fh = min(front.shape[0], H - top)
            region[top : top + fh, x0:x1] = front[:fh] * 0.88
            ty0, ty1 = max(0, top - d), min(H, top + d)
            region[ty0:ty1, x0:x1] = face[: ty1 - ty0] * 1.12
            body = m > 0
            lid = top_m > 0
            img[body & ~lid] = region[body & ~lid]
            img[lid] = region[lid]
            mask = body | lid
            objects[mask] = 1
            sc.extras["support_mask"] = mask
            # the plinth stands on the floor: a soft contact shade at its base
            img *= (1 - 0.35 * _contact_shadow(W, H, cx, base, pw_ * 0.55, max(2, H * 0.01)))[..., None]
        if sc.shelf is not None:
            x0, top, x1, t = sc.shelf
            d = sc.extras.get("shelf_depth", max(3, int(t * 0.9)))
            mat = ("oak", "walnut", "pale-wood", "marble")[int(rng.integers(4))]
            board = self._far_from(rng, _material(rng, mat, x1 - x0, t + d, tint=tint_surf), outline)
            yy = np.arange(H, dtype=np.float32)[:, None]
            under = np.exp(-np.clip(yy - (top + t), 0, None) / max(4.0, H * 0.04)) * (yy > top + t)
            xs = np.zeros((1, W), np.float32)
            xs[0, x0:x1] = 1
            img *= (1 - 0.35 * under * xs)[..., None]
            img[top - d : top, x0:x1] = board[:d] * 1.1
            img[top : top + t, x0:x1] = board[d : d + t] * 0.85
            m = np.zeros((H, W), bool)
            m[top - d : top + t, x0:x1] = True
            objects[m] = 1
            sc.extras["support_mask"] = m
        # light from one side, and a soft vignette
        xx = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
        yy2 = np.linspace(-1, 1, H, dtype=np.float32)[:, None]
        gain = 1 + 0.1 * sc.light_x * xx - 0.12 * (xx**2 + yy2**2) * float(rng.uniform(0.3, 1.0))
        return np.asarray(np.clip(img * gain[..., None], 0, 255), np.float32)

    @staticmethod
    def _far_from(rng: np.random.Generator, tex: np.ndarray, outline: np.ndarray) -> np.ndarray:
        """A material moved away from colours it must not sit near (Lab rows; the first is the product's rim
        colour, which the contrast rule compares against): darker behind a light product, lighter behind a
        dark one."""
        mean = lab(tex[::4, ::4].reshape(-1, 3).mean(axis=0))
        if float(np.linalg.norm(outline - mean, axis=-1).min()) >= 32:
            return tex
        if float(outline[0, 0]) > 55:
            return np.asarray(tex * float(rng.uniform(0.35, 0.5)), np.float32)
        return np.asarray(np.clip(tex * 0.4 + float(rng.uniform(140, 160)), 0, 255), np.float32)

    def _backing(self, rng: np.random.Generator, plate: np.ndarray, box: tuple[int, int, int, int],
                 dominant: np.ndarray, s: float) -> np.ndarray:
        """A large panel in the product's colour right behind it (a board, a door, a drape)."""
        H, W = plate.shape[:2]
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        mx, my = int(bw * rng.uniform(0.35, 0.8)), int(bh * rng.uniform(0.25, 0.5))
        col = _near(rng, dominant, 7.0 - 5.5 * s)
        tex = _material(rng, ("linen", "plaster", "concrete")[int(rng.integers(3))], W, H, tint=col, strength=0.04)
        panel = np.zeros((H, W), np.float32)
        cv2.rectangle(panel, (x0 - mx, y0 - my), (x1 + mx, y1 + int(bh * 0.02)), 1.0, -1)
        m = np.asarray(cv2.GaussianBlur(panel, (0, 0), 1.2))[..., None]
        return np.asarray(plate * (1 - m) + tex * m, np.float32)

    def _prop_kinds(self, rng: np.random.Generator, sc: _Scene, cm: float, px_per_cm: float, y_s: int,
                    ry0: int, cue_only: bool = False) -> list[str]:
        """Props that fit the set (table things on tables, floor things on floors) and the frame."""
        where = "floor" if sc.kind in ("floor", "outdoor") else "table"
        room = y_s - max(0, ry0 - int(0.02 * y_s))
        fits = [k for k, (pcm, cue, _) in PROPS.items() if 8 <= pcm * px_per_cm <= room and (cue or not cue_only)]
        ok = [k for k in fits if PROPS[k][2] in (where, "any") and 0.12 * cm <= PROPS[k][0] <= 3.0 * cm]
        if not ok:
            ok = fits
        order = rng.permutation(len(ok))
        return [ok[int(i)] for i in order]

    @staticmethod
    def _place_prop(rng: np.random.Generator, box: tuple[int, int, int, int], w: int, h: int, base: int,
                    occupied: list, rx0: int, rx1: int, W: int, merged: bool) -> int | None:
        x0, _, x1, _ = box
        pw = x1 - x0
        sides = [1, -1] if rng.random() < 0.5 else [-1, 1]
        for side in sides:
            if merged:  # overlapping the product's side, behind it
                ov = int(w * rng.uniform(0.25, 0.45))
                px = x1 - ov if side > 0 else x0 - w + ov
            else:
                gap = int(max(6, pw * rng.uniform(0.08, 0.35)))
                px = x1 + gap if side > 0 else x0 - gap - w
                for ob in occupied[1:]:  # step past props already placed on this side
                    if px < ob[2] and ob[0] < px + w and base - h < ob[3]:
                        px = ob[2] + gap if side > 0 else ob[0] - gap - w
            lo, hi = (0, W) if merged else (rx0, rx1)
            if px < lo or px + w > hi:
                continue
            cand = [px, base - h, px + w, base]
            clash = any(cand[0] < ob[2] and ob[0] < cand[2] and cand[1] < ob[3] and ob[1] < cand[3]
                        for ob in (occupied[1:] if merged else occupied))
            if not clash:
                return int(px)
        return None

    @staticmethod
    def _over(plate: np.ndarray, rgba: np.ndarray, x0: int, y0: int) -> np.ndarray:
        """Composite a float RGBA layer onto the plate in place; returns its solid pixels (canvas mask)."""
        H, W = plate.shape[:2]
        h, w = rgba.shape[:2]
        m = np.zeros((H, W), bool)
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
        if cx1 <= cx0 or cy1 <= cy0:
            return m
        sub = rgba[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        a = sub[..., 3:4]
        plate[cy0:cy1, cx0:cx1] = plate[cy0:cy1, cx0:cx1] * (1 - a) + sub[..., :3] * a
        m[cy0:cy1, cx0:cx1] = sub[..., 3] > 0.5
        return m

    @staticmethod
    def _in_product_colours(rng: np.random.Generator, rgba: np.ndarray, cut: np.ndarray) -> np.ndarray:
        """A prop recoloured with the product's dominant colour, keeping its shading."""
        opaque = cut[..., :3][cut[..., 3] >= OPAQUE].astype(np.float32)
        dom = np.median(opaque, axis=0) if len(opaque) else np.array([128, 128, 128], np.float32)
        lum = rgba[..., :3].mean(axis=2, keepdims=True)
        rel = lum / max(1.0, float(np.median(lum[rgba[..., 3] > 0.5])) if (rgba[..., 3] > 0.5).any() else 1.0)
        return np.asarray(np.clip(dom[None, None] * np.clip(rel, 0.8, 1.08), 0, 255), np.float32)

    def _support_in_product_colours(self, rng: np.random.Generator, plate: np.ndarray, kind: str, ref: np.ndarray,
                                    x0: int, top: int, ground: int, base_off: int, light_x: float,
                                    palette: np.ndarray) -> np.ndarray:
        """A pedestal extruded from the product's base colours, or legs in its darkest colour, down to the
        ground: the product's silhouette continues in its own colours."""
        H, W = plate.shape[:2]
        m = np.zeros((H, W), bool)
        a = ref[..., 3] >= OPAQUE
        band = max(2, ref.shape[0] // 30)
        rows = ref[max(0, base_off - band) : base_off + 1]
        cols = np.nonzero(a[max(0, base_off - band) : base_off + 1].any(axis=0))[0]
        if not len(cols) or ground <= top:
            return m
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        if kind == "pedestal":
            inset = int((c1 - c0) * rng.uniform(0.0, 0.12))
            c0, c1 = c0 + inset, c1 - inset
            colour = np.asarray([np.median(rows[..., ch][rows[..., 3] >= OPAQUE]) if (rows[..., 3] >= OPAQUE).any()
                                 else 128 for ch in range(3)], np.float32)
            h = ground - top + 1
            block = np.ones((h, c1 - c0, 3), np.float32) * colour * _cyl(c1 - c0, light_x * 0.4)[None, :, None]
            xs0, xs1 = max(0, x0 + c0), min(W, x0 + c1)
            if xs1 > xs0:
                plate[top : ground + 1, xs0:xs1] = block[:, xs0 - (x0 + c0) : xs1 - (x0 + c0)]
                m[top : ground + 1, xs0:xs1] = True
        else:
            opaque = ref[..., :3][a].astype(np.float32)
            L = opaque.mean(axis=1)
            colour = np.asarray(np.median(opaque[np.percentile(L, 30) >= L], axis=0) if len(opaque) else np.zeros(3),
                                np.float32)
            n = int(rng.integers(2, 5))
            lw = max(3, int((c1 - c0) * 0.06))
            for x in np.linspace(c0 + lw, c1 - lw, n):
                xa, xb = max(0, int(x0 + x - lw / 2)), min(W, int(x0 + x + lw / 2))
                if xb > xa:
                    plate[top : ground + 1, xa:xb] = colour
                    m[top : ground + 1, xa:xb] = True
        return m

    @staticmethod
    def _duplicate(rng: np.random.Generator, plate: np.ndarray, ref: np.ndarray, x0: int, y0: int, s: float
                   ) -> np.ndarray:
        """A part of the product duplicated right beside it: a second top, or a sliver of its side."""
        ph, pw = ref.shape[:2]
        if rng.random() < 0.5:  # its top again, stacked above itself
            part = ref[: max(4, int(ph * (0.2 + 0.25 * s)))]
            dx, dy = int(rng.uniform(-0.1, 0.1) * pw), -part.shape[0] + max(2, int(part.shape[0] * 0.2))
        else:  # a slice of one side, grown out sideways
            wcut = max(4, int(pw * (0.25 + 0.25 * s)))
            right = rng.random() < 0.5
            part = ref[:, pw - wcut :] if right else ref[:, :wcut]
            dx = pw - int(wcut * 0.25) if right else -wcut + int(wcut * 0.25)
            dy = int(rng.uniform(-0.05, 0.1) * ph)
        layer = np.dstack([part[..., :3].astype(np.float32) * 0.95, part[..., 3].astype(np.float32) / 255.0])
        return PhotoSet._over(plate, layer, x0 + dx, y0 + dy)

    @staticmethod
    def _extension(rng: np.random.Generator, plate: np.ndarray, ref: np.ndarray, x0: int, y0: int, s: float
                   ) -> np.ndarray:
        """The product's side mirrored outward, as if its shape went on past its outline."""
        pw = ref.shape[1]
        ext = max(4, int(pw * (0.18 + 0.35 * s)))
        right = rng.random() < 0.5
        a = ref[..., 3] >= OPAQUE
        cols = np.nonzero(a.any(axis=0))[0]
        edge = int(cols.max()) if right else int(cols.min())
        src = ref[:, max(0, edge - ext) : edge + 1][:, ::-1] if right else ref[:, edge : edge + ext + 1][:, ::-1]
        hx = x0 + edge if right else x0 + edge - src.shape[1]
        taper = np.linspace(1, 0.35, src.shape[1], dtype=np.float32)[None, :, None]
        if not right:
            taper = taper[:, ::-1]
        layer = np.dstack([src[..., :3].astype(np.float32) * (0.8 + 0.2 * taper), src[..., 3].astype(np.float32) / 255.0])
        return PhotoSet._over(plate, layer, hx, y0)

    @staticmethod
    def _holes(rng: np.random.Generator, ref: np.ndarray, s: float) -> np.ndarray:
        """Holes through the product (round, oval, ragged or several small ones), in its own pixels."""
        ph, pw = ref.shape[:2]
        a = ref[..., 3] >= OPAQUE
        area = int(a.sum())
        target = area * (0.02 + 0.28 * s)
        m = np.zeros((ph, pw), np.uint8)
        style = ("round", "oval", "ragged", "several")[int(rng.integers(4))]
        inner = cv2.erode(a.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(2, min(ph, pw) // 12)) > 0
        ys, xs = np.nonzero(inner if inner.any() else a)
        for _ in range(40):
            if (m.astype(bool) & a).sum() >= target:
                break
            k = int(rng.integers(len(xs)))
            cx, cy = int(xs[k]), int(ys[k])
            r = np.sqrt(target / np.pi) * (0.5 if style == "several" else 1.0) * float(rng.uniform(0.7, 1.1))
            r = max(3.0, r)
            if style in ("round", "several"):
                cv2.circle(m, (cx, cy), int(r), 255, -1)
            elif style == "oval":
                cv2.ellipse(m, (cx, cy), (int(r * 1.5), int(r * 0.7)), float(rng.uniform(0, 180)), 0, 360, 255, -1)
            else:
                ang = np.linspace(0, 2 * np.pi, 14)[:-1]
                rr = r * rng.uniform(0.55, 1.35, len(ang))
                pts = np.stack([cx + rr * np.cos(ang), cy + rr * np.sin(ang)], axis=1).astype(np.int32)
                cv2.fillPoly(m, [pts], 255)
        return (m > 0) & a

    @staticmethod
    def _bad_source(rng: np.random.Generator, ref: np.ndarray, kind: str, s: float) -> np.ndarray:
        """A bad source cutout: torn along a ragged line, cropped by a straight line, or a low-resolution
        blow-up; it keeps its base so it still stands where the clean product would."""
        out = ref.copy()
        ph, pw = out.shape[:2]
        if kind == "torn":
            frac = 0.12 + 0.3 * s
            m = np.zeros((ph, pw), np.uint8)
            corner_right = rng.random() < 0.5
            n = 18
            ys_ = np.linspace(0, ph * (0.5 + 0.4 * frac), n)
            xs_ = pw * frac * 1.6 * (1 - np.linspace(0, 1, n) ** 1.5) + rng.normal(0, pw * 0.025, n)
            xs_ = np.clip(xs_, 0, pw)
            pts = [(0, 0)] + [(float(x), float(y)) for x, y in zip(xs_, ys_, strict=True)] + [(0, float(ys_[-1]))]
            arr = np.array(pts, np.float32)
            if corner_right:
                arr[:, 0] = pw - arr[:, 0]
            cv2.fillPoly(m, [arr.astype(np.int32)], 255)
            out[..., 3][m > 0] = 0
        elif kind == "crop":
            frac = 0.15 + 0.35 * s
            mode = int(rng.integers(3))
            if mode == 0:
                out[: int(ph * frac), :, 3] = 0  # the top is missing
            elif mode == 1:
                out[:, : int(pw * frac), 3] = 0
            else:
                out[:, pw - int(pw * frac) :, 3] = 0
        else:
            f = max(4, int(max(ph, pw) * (0.16 - 0.12 * s)))
            small = cv2.resize(out, (max(2, pw * f // max(ph, pw)), max(2, ph * f // max(ph, pw))),
                               interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(out)


def _near(rng: np.random.Generator, lab_colour: np.ndarray, de: float) -> np.ndarray:
    """An sRGB colour about ``de`` ΔE from a Lab colour (in a random direction, mostly lightness)."""
    d = rng.normal(0, 1, 3)
    d[0] *= 2.0
    d = d / (np.linalg.norm(d) + 1e-6) * de
    return _lab_to_rgb(lab_colour + d)


def _lab_to_rgb(c: np.ndarray) -> np.ndarray:
    a = np.asarray(c, np.float32).reshape(1, 1, 3)
    rgb = cv2.cvtColor(a, cv2.COLOR_LAB2RGB).reshape(3)
    return np.clip(rgb * 255, 0, 255).astype(np.float32)


def _camouflage(rng: np.random.Generator, w: int, h: int, palette: np.ndarray, s: float) -> np.ndarray:
    """A photo texture recoloured with the product's own colours: the product hides in the pattern."""
    name = ("gravel", "brick", "grass", "moon")[int(rng.integers(4))]
    t = _pattern(rng, name, w, h, float(rng.uniform(0.3, 0.8)))
    n = len(palette) // 2
    cols = np.stack([_lab_to_rgb(palette[i]) for i in range(n)])
    q = np.clip(((t + 1.5) / 3.0 * n).astype(np.int32), 0, n - 1)
    img = cols[q]
    return np.asarray(cv2.GaussianBlur(img, (0, 0), 1.0 + 2.0 * (1 - s)), np.float32)
