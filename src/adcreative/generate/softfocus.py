"""``softfocus``: ad scenes in the look of a diffusion model's product shots, a renderer family of its own.

Everything is drawn from signed distance fields and smooth gradients, shaded by one key light: studio sweeps with
a spotlight, glossy cylindrical podiums (stacked or paired), arches and soft spheres, draped silk, bokeh, a hazy
window light, sand, water and stone under a soft sky, leaves thrown out of focus in front of and behind the
set. Props that set the scale (lemons, oranges, mugs, candles, bud vases, books) stand at their real-world
heights; decorative shapes (spheres, pebbles, cubes) do not count as scale cues.

``defect=`` draws one RF1M class its own way (see ``_DEFECT_KINDS``); whatever is drawn, the label comes from
:mod:`adcreative.generate.measure`, the labeller every renderer shares, applied to what was rendered.
No drawing code is shared with the compositor or the ``photoset`` family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from adcreative.catalogue.sizes import real_height_cm
from adcreative.core.fonts import typeface
from adcreative.core.modeling import register_to_config
from adcreative.core.types import Box, Product, canvas_size
from adcreative.generate.base import GeneratedImage, SceneRenderer
from adcreative.generate.cutout import OPAQUE, crop_rgba, fit, paste, source_image, stamp
from adcreative.generate.measure import (
    Prop,
    SceneReport,
    Support,
    lab,
    label_render,
    product_palette,
    rim_colour,
    rim_samples,
)

VERSION = "1.0"
SETS = ("podium", "twin-podium", "arch", "silk", "bokeh", "window", "nature")
_DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "unsuitable": ("tight-crop", "bite", "fade", "defocus", "lowres", "slice"),
    "space_mismatch": ("levitate", "sunk", "off-edge", "stray-shadow"),
    "size_mismatch": ("toy", "giant", "speck"),
    "indistinctiveness": ("monochrome", "glow", "haze"),
    "shape_hallucination": ("plinth-twin", "melt", "twin", "stem", "blob"),
}
# Pastel and deep studio colour pairs (backdrop top, backdrop bottom), in sRGB.
_MOODS: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((244, 226, 222), (226, 196, 190)), ((222, 232, 244), (190, 206, 228)), ((236, 240, 226), (206, 218, 192)),
    ((248, 238, 218), (232, 212, 178)), ((232, 224, 244), (204, 190, 228)), ((30, 34, 44), (58, 66, 84)),
    ((44, 30, 36), (86, 56, 64)), ((28, 44, 40), (52, 82, 72)), ((246, 246, 244), (214, 214, 210)),
    ((250, 214, 190), (236, 160, 132)), ((196, 226, 226), (140, 194, 196)), ((60, 50, 90), (130, 100, 160)),
)


# -- fields and shading ----------------------------------------------------------------------------------------
def _grid(W: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return xx, yy


def _cover(d: np.ndarray, soft: float = 0.8) -> np.ndarray:
    """Coverage of a shape from its signed distance (negative inside), anti-aliased over ``soft`` px."""
    return np.asarray(np.clip(0.5 - d / max(soft, 1e-3), 0, 1), np.float32)


def _sd_rounded_box(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, hw: float, hh: float, r: float) -> np.ndarray:
    qx = np.abs(xx - cx) - (hw - r)
    qy = np.abs(yy - cy) - (hh - r)
    return np.asarray(np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r)


def _sd_ellipse(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """Approximate signed distance to an ellipse (exact on circles; good enough for coverage)."""
    k = np.hypot((xx - cx) / max(rx, 1e-3), (yy - cy) / max(ry, 1e-3))
    return np.asarray((k - 1) * min(rx, ry))


def _window(W: int, H: int, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
    """Row and column slices of a box clipped to the canvas (shapes are evaluated only where they can be)."""
    return (slice(int(np.clip(y0, 0, H)), int(np.clip(np.ceil(y1), 0, H))),
            slice(int(np.clip(x0, 0, W)), int(np.clip(np.ceil(x1), 0, W))))


def _mix(img: np.ndarray, colour: np.ndarray, cov: np.ndarray) -> None:
    """img ← img·(1−cov) + colour·cov, in place (colour H×W×3 or 3)."""
    c = cov[..., None]
    img *= 1 - c
    img += np.asarray(colour, np.float32) * c


def _round_shade(xx: np.ndarray, cx: float, hw: float, light: float, gloss: float) -> np.ndarray:
    """Brightness across a cylinder or sphere of half-width ``hw``: diffuse falloff plus a glossy band."""
    u = np.clip((xx - cx) / max(hw, 1e-3), -1, 1)
    n = np.sqrt(np.clip(1 - u * u, 0, 1))
    diffuse = 0.55 + 0.45 * np.clip(0.7 * n + 0.5 * light * u, 0, 1)
    spec = gloss * np.exp(-((u - 0.55 * light) ** 2) / 0.012)
    return np.asarray(diffuse + spec, np.float32)


def _soft_shadow(mask: np.ndarray, shear: float, squash: float, base_y: int, blur: float) -> np.ndarray:
    """A cast shadow on the floor: ``mask`` flattened towards ``base_y`` by ``squash`` and slanted by ``shear``
    px per px of height (away from the light), then blurred."""
    H, W = mask.shape
    M = np.array([[1, -shear, shear * base_y], [0, squash, (1 - squash) * base_y]], np.float32)
    out = cv2.warpAffine(mask.astype(np.float32), M, (W, H))
    return np.asarray(cv2.GaussianBlur(out, (0, 0), max(0.8, blur)), np.float32)


def _lab2rgb(c: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(np.asarray(c, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.asarray(np.clip(rgb * 255, 0, 255), np.float32)


def _main_colour(rgba: np.ndarray) -> np.ndarray:
    """The product's body colour (sRGB): the median of its opaque pixels after dropping the darkest and
    lightest fifth (print, rims, highlights)."""
    px = rgba[..., :3][rgba[..., 3] >= OPAQUE]
    px = px[:: max(1, len(px) // 20000)].astype(np.float32)
    if not len(px):
        return np.array([128, 128, 128], np.float32)
    L = px @ np.array([0.299, 0.587, 0.114], np.float32)
    lo, hi = np.percentile(L, [20, 80])
    keep = px[(lo <= L) & (hi >= L)]
    return np.asarray(np.median(keep if len(keep) else px, axis=0), np.float32)


def _contrasting(rng: np.random.Generator, rim: np.ndarray, candidates: list[np.ndarray], need: float = 30.0
                 ) -> np.ndarray:
    """The first candidate colour (in a random order) whose ΔE to 80 % of the product's rim exceeds ``need``;
    else the one furthest from it."""
    best, best_d = candidates[0], -1.0
    for i in rng.permutation(len(candidates)):
        c = candidates[int(i)]
        d = float(np.percentile(np.linalg.norm(rim - lab(c), axis=-1), 20))
        if d >= need:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


# -- props ----------------------------------------------------------------------------------------------------
# kind → (height cm, recognisable scale cue)
PROPS: dict[str, tuple[float, bool]] = {
    "lemon": (7.0, True), "orange": (8.0, True), "mug": (9.5, True), "candle": (11.0, True),
    "bud-vase": (24.0, True), "books": (8.0, True), "sphere": (12.0, False), "pebble": (4.0, False),
    "cube": (10.0, False),
}


@dataclass
class _Drawn:
    """A prop drawn at the origin: colour and coverage, and its real height."""

    rgb: np.ndarray
    cov: np.ndarray
    kind: str


def _draw_prop(rng: np.random.Generator, kind: str, h: int, light: float, colour: np.ndarray | None,
               avoid: np.ndarray) -> _Drawn:
    """A prop ``h`` px tall with smooth 3D shading; ``colour`` forces its colour (a prop in the product's
    colours), otherwise one far from ``avoid`` (the product's Lab colours) is picked."""
    h = max(6, h)
    choices = {"lemon": [(240, 206, 60)], "orange": [(238, 132, 40)], "mug": [(244, 242, 236), (40, 42, 50),
                                                                         (210, 120, 96), (120, 150, 180)],
               "candle": [(244, 236, 220)], "bud-vase": [(226, 220, 210), (150, 180, 170), (60, 70, 90)],
               "books": [(190, 70, 60), (60, 90, 140), (220, 200, 160), (70, 110, 80)],
               "sphere": [(250, 250, 250), (236, 200, 190), (180, 200, 230), (40, 40, 46), (230, 190, 120)],
               "pebble": [(200, 196, 188), (90, 92, 96)], "cube": [(236, 232, 226), (210, 180, 150), (60, 64, 80)]}
    if colour is None:
        cands = [np.asarray(c, np.float32) for c in choices[kind]]
        base = _contrasting(rng, avoid, cands, 25.0)
    else:
        base = np.asarray(colour, np.float32)
    w = {"lemon": 1.35, "orange": 1.02, "mug": 1.3, "candle": 0.55, "bud-vase": 0.7, "books": 2.3,
         "sphere": 1.0, "pebble": 1.7, "cube": 1.1}[kind]
    W = max(6, int(h * w))
    xx, yy = _grid(W, h)
    cov: np.ndarray = np.zeros((h, W), np.float32)
    rgb: np.ndarray = np.zeros((h, W, 3), np.float32)
    if kind in ("lemon", "orange", "sphere", "pebble"):
        rx, ry = W / 2 - 1, h / 2 - 1
        d = _sd_ellipse(xx, yy, W / 2, h / 2, rx, ry)
        cov = _cover(d)
        u, v = (xx - W / 2) / rx, (yy - h / 2) / ry
        n = np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
        lit = 0.45 + 0.55 * np.clip(0.6 * n + 0.45 * light * u - 0.35 * v, 0, 1)
        spec = (0.5 if kind == "sphere" else 0.25) * np.exp(-(((u - 0.45 * light) ** 2 + (v + 0.45) ** 2) / 0.02))
        rgb = base * lit[..., None] + 255 * spec[..., None]
        if kind in ("lemon", "orange"):  # peel dimples
            rgb *= (1 + 0.03 * rng.standard_normal((h, W)).astype(np.float32))[..., None]
    elif kind in ("mug", "candle", "bud-vase"):
        bw = W / (1.3 if kind == "mug" else 1.0)
        cx = bw / 2 if kind == "mug" and light < 0 else W - bw / 2 if kind == "mug" else W / 2
        if kind == "bud-vase":
            half = (0.18 + 0.22 * np.sin(np.clip(yy / h, 0, 1) * np.pi * 0.95) ** 2) * W
            d = np.abs(xx - cx) - half
            d = np.maximum(d, -np.minimum(yy, h - 1 - yy))
        else:
            top = h * (0.16 if kind == "candle" else 0.02)
            d = _sd_rounded_box(xx, yy, cx, (top + h) / 2, bw / 2 - 1, (h - top) / 2 - 0.5, bw * 0.08)
        cov = _cover(d)
        rgb = base * _round_shade(xx, cx, bw / 2, light, 0.25)[..., None]
        if kind == "mug":  # a ring handle on the side away from the light, a dark brew inside the rim
            hx = cx + bw / 2 if light < 0 else cx - bw / 2
            ring = np.abs(_sd_ellipse(xx, yy, hx, h * 0.45, bw * 0.24, h * 0.25)) - max(1.5, h * 0.05)
            hcov = _cover(ring) * (1 - cov)
            rgb = rgb * (1 - hcov[..., None]) + base * 0.85 * hcov[..., None]
            cov = np.maximum(cov, hcov)
            brew = _cover(_sd_ellipse(xx, yy, cx, h * 0.06, bw / 2 - 2, max(1.5, h * 0.05)))
            rgb = rgb * (1 - brew[..., None]) + np.array([74, 48, 34], np.float32) * brew[..., None]
        elif kind == "candle":  # a flame with a warm glow
            f = _cover(_sd_ellipse(xx, yy, cx, h * 0.08, max(1.2, W * 0.08), h * 0.08))
            rgb = rgb * (1 - f[..., None]) + np.array([255, 210, 110], np.float32) * f[..., None]
            cov = np.maximum(cov, f)
        else:  # a stem and a bloom above the vase
            stem = _cover(np.abs(xx - cx) - max(0.8, W * 0.02)) * (yy < h * 0.25)
            cov = np.maximum(cov, stem)
            rgb = rgb * (1 - stem[..., None]) + np.array([70, 120, 70], np.float32) * stem[..., None]
    elif kind == "books":
        n_books = int(rng.integers(2, 4))
        t = h / n_books
        for k in range(n_books):
            bw = W * float(rng.uniform(0.8, 1.0))
            cx = W / 2 + float(rng.uniform(-0.08, 0.08)) * W
            d = _sd_rounded_box(xx, yy, cx, h - (k + 0.5) * t, bw / 2 - 1, t / 2 - 0.5, 1.5)
            c = _cover(d)
            col = base * float(rng.uniform(0.75, 1.1))
            band = (np.abs(yy - (h - (k + 0.5) * t)) < t * 0.12).astype(np.float32)
            col_img = col * (1 - 0.25 * band[..., None]) * _round_shade(xx, cx, bw / 2, light * 0.3, 0.05)[..., None]
            rgb = rgb * (1 - c[..., None]) + col_img * c[..., None]
            cov = np.maximum(cov, c)
    else:  # cube: a front face and a lit top face
        lid = h * 0.22
        front = _cover(_sd_rounded_box(xx, yy, W / 2, (lid + h) / 2, W / 2 - 1, (h - lid) / 2 - 0.5, 1.0))
        topd = _cover(np.maximum(np.abs(yy - lid / 2) - lid / 2, np.abs(xx - W / 2 - (yy - lid) * 0.3) - W / 2 + 2))
        rgb = base * 0.9 * front[..., None] + base * 1.12 * topd[..., None] * (1 - front[..., None])
        cov = np.maximum(front, topd)
    return _Drawn(np.clip(rgb, 0, 255).astype(np.float32), cov, kind)


# -- copy ------------------------------------------------------------------------------------------------------
def _set_copy(canvas: Image.Image, rng: np.random.Generator, zone: Box | None, product: Product, centred: bool
              ) -> dict[str, Box]:
    """Headline (and a tagline) centred or left in ``zone``, plus a round price sticker or a pill badge."""
    if zone is None:
        return {}
    draw = ImageDraw.Draw(canvas, "RGBA")
    under = np.asarray(canvas)[zone.y0 : zone.y1, zone.x0 : zone.x1].reshape(-1, 3).mean(axis=0)
    dark_ink = float(under @ np.array([0.299, 0.587, 0.114])) > 135
    ink = (30, 28, 34, 255) if dark_ink else (255, 255, 255, 255)
    face = ("serif", "serif-bold", "sans-bold", "condensed-bold")[int(rng.integers(4))]
    text = str(product.attrs.get("headline") or product.title)
    if rng.random() < 0.3:
        text = text.upper()
    size = max(11, int(zone.h * 0.42))
    while True:  # the largest size at which the wrapped headline fits the zone
        f = typeface(face, size)
        lines = [""]
        for wd in text.split():
            trial = (lines[-1] + " " + wd).strip()
            if draw.textlength(trial, font=f) <= zone.w or not lines[-1]:
                lines[-1] = trial
            else:
                lines.append(wd)
        fits = len(lines) * size * 1.15 <= zone.h * (0.7 if product.copy else 0.95) and \
            max(draw.textlength(ln, font=f) for ln in lines) <= zone.w
        if fits or size <= 11:
            break
        size = max(11, int(size * 0.9))
    boxes: dict[str, Box] = {}
    y = zone.y0
    x_lo, x_hi = zone.x1, zone.x0
    for ln in lines:
        tw = draw.textlength(ln, font=f)
        x = zone.x0 + (zone.w - tw) / 2 if centred else zone.x0
        draw.text((x, y), ln, font=f, fill=ink)
        x_lo, x_hi = min(x_lo, int(x)), max(x_hi, int(x + tw) + 1)
        y += int(size * 1.15)
    boxes["headline"] = Box(max(zone.x0, x_lo), zone.y0, min(zone.x1, max(x_hi, x_lo + 1)), min(zone.y1, y))
    if product.copy and y + size * 0.6 <= zone.y1:
        f2 = typeface("sans", max(9, int(size * 0.45)))
        tag = product.copy if draw.textlength(product.copy, font=f2) <= zone.w else product.copy[: 40]
        tw = draw.textlength(tag, font=f2)
        x = zone.x0 + (zone.w - tw) / 2 if centred else zone.x0
        draw.text((x, y + size * 0.1), tag, font=f2, fill=ink)
        boxes["copy"] = Box(int(x), int(y), min(zone.x1, int(x + tw) + 1), min(zone.y1, int(y + size * 0.7)))
    return boxes


def _sticker(canvas: Image.Image, rng: np.random.Generator, product: Product, corner: Box) -> dict[str, Box]:
    """A round price sticker or a pill badge in a free corner box."""
    badge = product.attrs.get("badge")
    text = str(badge) if badge and (product.price is None or rng.random() < 0.5) else (
        f"${product.price:,.0f}" if product.price is not None and product.price >= 100 else
        f"${product.price:,.2f}" if product.price is not None else "")
    if not text:
        return {}
    draw = ImageDraw.Draw(canvas, "RGBA")
    col = tuple(int(v) for v in rng.integers(30, 230, 3))
    light = (col[0] * 0.299 + col[1] * 0.587 + col[2] * 0.114) > 140
    fs = max(10, int(corner.h * 0.3))
    f = typeface("sans-bold", fs)
    tw = draw.textlength(text, font=f)
    if rng.random() < 0.5:  # a circle
        r = max(tw / 2 + fs * 0.45, corner.h * 0.42)
        cx, cy = corner.x0 + corner.w / 2, corner.y0 + corner.h / 2
        r = min(r, corner.w / 2 - 1, corner.h / 2 - 1)
        box = Box(int(cx - r), int(cy - r), int(cx + r) + 1, int(cy + r) + 1)
        draw.ellipse(box.as_list(), fill=(*col, 245))
    else:
        bw, bh = min(corner.w - 2, int(tw + fs * 1.2)), int(fs * 1.8)
        box = Box(int(corner.x0 + (corner.w - bw) / 2), int(corner.y0 + (corner.h - bh) / 2), 0, 0)
        box = Box(box.x0, box.y0, box.x0 + bw, box.y0 + bh)
        draw.rounded_rectangle(box.as_list(), radius=bh // 2, fill=(*col, 245))
    draw.text((box.x0 + (box.w - tw) / 2, box.y0 + (box.h - fs * 1.15) / 2), text, font=f,
              fill=(25, 25, 25) if light else (255, 255, 255))
    return {"badge" if badge and text == str(badge) else "price": box}


# -- the set ----------------------------------------------------------------------------------------------------
@dataclass
class _Set:
    kind: str
    light: float  # key light from the left (−1) or right (+1)
    floor_y: int  # where the ground plane meets the backdrop
    ground_y: int  # the line things stand on in front (the floor's contact line)
    podiums: list[tuple[float, float, float, float]] = field(default_factory=list)  # cx, half-width, top, base
    extras: dict[str, Any] = field(default_factory=dict)


class SoftFocus(SceneRenderer):
    """Renderer family ``softfocus``: diffusion-style soft studio and nature sets (see the module docstring)."""

    name = "softfocus"
    version = VERSION

    @register_to_config
    def __init__(self, scale: float = 1.0, text_rate: float = 0.65) -> None:
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
        rim = rim_samples(cut, n=300, band="edge")  # the outermost 4 px, edge included
        body = _main_colour(cut)
        cm = real_height_cm(product)
        want = defect if defect not in (None, "available") else None
        kind = _DEFECT_KINDS[want][int(rng.integers(len(_DEFECT_KINDS[want])))] if want else "clean"
        s = float(severity)
        xx, yy = _grid(W, H)

        # -- copy zone: a band at the top or bottom, a column on a wide canvas, or none ------------------------
        zone: Box | None = None
        centred = True
        m = int(0.05 * min(W, H))
        free = Box(m, m, W - m, H - m)
        if rng.random() < self.text_rate:
            if W > 1.3 * H and rng.random() < 0.6:
                cw = int(W * rng.uniform(0.3, 0.38))
                left = rng.random() < 0.5
                zone = Box(m, int(H * 0.3), m + cw, int(H * 0.62)) if left else \
                    Box(W - m - cw, int(H * 0.3), W - m, int(H * 0.62))
                free = Box(zone.x1 + m, m, W - m, H - m) if left else Box(m, m, zone.x0 - m, H - m)
                centred = False
            elif rng.random() < 0.7:
                zone = Box(m, m, W - m, m + int(H * rng.uniform(0.14, 0.2)))
                free = Box(m, zone.y1 + m // 2, W - m, H - m)
            else:
                zone = Box(m, H - m - int(H * rng.uniform(0.12, 0.16)), W - m, H - m)
                free = Box(m, m, W - m, zone.y0 - m // 2)
        sticker: Box | None = None
        if zone is not None and rng.random() < 0.55:  # a price sticker at one end of the copy zone
            sz = min(zone.h, int(min(W, H) * 0.17))
            if centred and zone.w > 3 * sz:
                left = rng.random() < 0.5
                sticker = Box(zone.x0, zone.y0, zone.x0 + sz, zone.y0 + sz) if left else \
                    Box(zone.x1 - sz, zone.y0, zone.x1, zone.y0 + sz)
                zone = Box(zone.x0 + sz + 4, zone.y0, zone.x1, zone.y1) if left else Box(zone.x0, zone.y0,
                                                                                         zone.x1 - sz - 4, zone.y1)
            elif not centred and zone.h > 2 * sz:
                sticker = Box(zone.x0, zone.y1 - sz, zone.x0 + sz, zone.y1)
                zone = Box(zone.x0, zone.y0, zone.x1, zone.y1 - sz - 4)

        # -- the set --------------------------------------------------------------------------------------------
        st = self._plan_set(rng, W, H, free, cm, kind)
        rim_main = rim_colour(cut)
        target = _lab2rgb(rim_main) if kind in ("monochrome", "haze", "glow") else body
        mood = self._mood(rng, rim, target, kind, s, rim_main)
        plate, objects = self._paint_set(rng, st, W, H, xx, yy, mood, rim, body, kind, s)

        # -- the product's size and place ----------------------------------------------------------------------
        aspect_p = cut.shape[1] / cut.shape[0]
        if st.podiums:
            pcx, phw, ptop, _ = st.podiums[0]
            y_s = int(ptop)
            room_h = y_s - free.y0
            ph = int(min(room_h * rng.uniform(0.6, 0.92), phw * 2 * rng.uniform(0.7, 1.0) / max(aspect_p, 0.2)))
            cx = pcx
        else:
            y_s = st.ground_y
            room_h = y_s - free.y0
            ph = int(room_h * rng.uniform(0.55, 0.88))
            cx = free.x0 + free.w * float(rng.uniform(0.3, 0.7))
        pw = int(ph * aspect_p)
        if pw > free.w * 0.7:
            pw = int(free.w * 0.7)
            ph = int(pw / aspect_p)
        if max(ph, pw) < 0.3 * min(W, H):
            ph = int(min(room_h, 0.3 * min(W, H) / max(1.0, aspect_p)))
            pw = int(ph * aspect_p)
        px_per_cm = ph / cm
        prop_scale = px_per_cm
        grow = 0
        tight = False
        if kind == "toy":
            f = 1 / (1.6 + 2.4 * s)
            ph, pw = int(ph * f), int(pw * f)
        elif kind == "giant":
            prop_scale = px_per_cm / (1.6 + 2.4 * s)
        elif kind == "speck":
            f = (0.14 - 0.09 * s) * min(W, H) / max(ph, pw)
            ph, pw = int(ph * f), int(pw * f)
            prop_scale = ph / cm
        elif kind == "plinth-twin":
            grow = int(ph * (0.25 + 0.35 * s))
            if ph + grow > room_h:
                f = room_h / (ph + grow)
                ph, pw, grow = int(ph * f), int(pw * f), int(grow * f)
        elif kind == "tight-crop":
            overflow = 0.03 + 0.45 * s
            tight = True
            if rng.random() < 0.5 or pw > ph:  # zoomed in past a side
                cx = (-pw * overflow + pw / 2) if rng.random() < 0.5 else (W + pw * overflow - pw / 2)
            else:  # too tall for the frame
                ph = int(y_s / (1 - overflow))
                pw = int(ph * aspect_p)
        ph, pw = max(ph, 6), max(pw, 6)
        ref = fit(cut, pw, ph)
        a_ref = ref[..., 3] >= OPAQUE
        rows = np.nonzero(a_ref.any(axis=1))[0]
        base_off = int(rows.max()) if len(rows) else ph - 1
        foot_cols = np.nonzero(a_ref[max(0, base_off - max(2, ph // 25)) : base_off + 1].any(axis=0))[0]
        x0 = round(cx - pw / 2)
        if st.podiums and kind != "off-edge" and not tight:
            lo, hi = int(st.podiums[0][0] - st.podiums[0][1]), int(st.podiums[0][0] + st.podiums[0][1])
            x0 = int(np.clip(x0, lo - int(foot_cols.min()) + 2, hi - int(foot_cols.max()) - 3))
        sup_x0, sup_x1 = (int(st.podiums[0][0] - st.podiums[0][1]), int(st.podiums[0][0] + st.podiums[0][1])) \
            if st.podiums else (0, W)
        lift = 0
        if kind == "levitate":
            lift = int(ph * (0.4 * s - 0.03)) + 4
        elif kind == "sunk":
            lift = -(int(ph * (0.35 * s - 0.02)) + 4)
        elif kind == "off-edge":
            over = 0.55 + 0.3 * s
            fw = int(foot_cols.max() - foot_cols.min() + 1) if len(foot_cols) else pw
            if W - sup_x1 > sup_x0:
                x0 = int(sup_x1 - int(foot_cols.min()) - fw * (1 - over))
            else:
                x0 = int(sup_x0 - int(foot_cols.max()) - 1 + fw * (1 - over))
        y0 = y_s - base_off - grow - lift
        box = (x0, y0, x0 + pw, y0 + ph)
        fx0 = x0 + (int(foot_cols.min()) if len(foot_cols) else 0)
        fx1 = x0 + (int(foot_cols.max()) + 1 if len(foot_cols) else pw)

        if kind == "glow":  # a big soft disc in the product's own colour right behind it
            d = rng.normal(0, 1, 3)
            c = _lab2rgb(lab(target) + d / (np.linalg.norm(d) + 1e-6) * (7.0 - 5.5 * s))
            r = 0.5 * max(ph, pw) * float(rng.uniform(1.3, 1.7))
            disc = _cover(_sd_ellipse(xx, yy, x0 + pw / 2, y0 + ph * 0.45, r, r), 2.0)
            disc *= (yy <= y_s).astype(np.float32)
            _mix(plate, c * (0.95 + 0.1 * _round_shade(xx, x0 + pw / 2, r, st.light, 0.0) - 0.05)[..., None], disc)

        # -- props at the set's scale -----------------------------------------------------------------------
        props: list[Prop] = []
        placed: list[tuple[_Drawn, int, int]] = []
        taken = [box] + [b.as_list() for b in (zone, sticker) if b is not None]
        want_props = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.35, 0.28, 0.12]))
        if kind in ("toy", "giant"):
            want_props = max(2, want_props)
        if kind == "blob":
            want_props = max(1, want_props)
        pool = [k for k, (pcm, cue) in PROPS.items() if (cue or kind not in ("toy", "giant"))
                and 8 <= pcm * prop_scale <= (y_s - free.y0) and pcm <= 3.2 * cm]
        rng.shuffle(pool)
        prop_ground = y_s  # props share the product's support line
        while pool and len(placed) < want_props:
            pk = pool.pop()
            hpx = int(PROPS[pk][0] * prop_scale)
            merged = kind == "blob" and not placed
            if merged:
                pk, hpx = "sphere", max(hpx, int(ph * rng.uniform(0.3, 0.5)))
            drawn = _draw_prop(rng, pk, hpx, st.light, body if merged else None, palette)
            w_ = drawn.cov.shape[1]
            spot = self._spot(rng, box, w_, hpx, prop_ground, taken, free, sup_x0, sup_x1, merged, W)
            if spot is None:
                continue
            taken.append([spot, prop_ground - hpx, spot + w_, prop_ground])
            placed.append((drawn, spot, prop_ground - hpx))
            props.append(Prop((spot, prop_ground - hpx, spot + w_, prop_ground), PROPS[pk][0], pk, PROPS[pk][1]))

        # -- shadows from the key light ------------------------------------------------------------------------
        shear = -st.light * 1.1
        shade = np.zeros((H, W), np.float32)
        for dr, px0, py0 in placed:
            mk = np.zeros((H, W), np.float32)
            stamp(mk, dr.cov, px0, py0)
            shade += 0.4 * _soft_shadow(mk, shear, 0.2, py0 + dr.cov.shape[0], 2 + 0.04 * dr.cov.shape[0])
        sil = np.zeros((H, W), np.float32)
        stamp(sil, ref[..., 3].astype(np.float32) / 255.0, x0, y0)
        shadow_at: tuple[float, float] | None = ((fx0 + fx1) / 2, float(y_s))
        contact = np.zeros((H, W), np.float32)
        if kind == "stray-shadow":
            off = ph * (0.25 + 0.9 * s) * (1 if rng.random() < 0.5 else -1)
            shadow_at = ((fx0 + fx1) / 2 + off, float(y_s) + ph * float(rng.uniform(0, 0.12)))
            moved = cv2.warpAffine(sil, np.array([[1, 0, off], [0, 1, shadow_at[1] - y_s]], np.float32), (W, H))
            shade += 0.6 * _soft_shadow(moved, shear, 0.25, int(shadow_at[1]), 3 + 0.03 * ph)
            cv2.ellipse(contact, (int(shadow_at[0]), int(shadow_at[1])), (max(2, (fx1 - fx0) // 2), max(2, ph // 30)),
                        0, 0, 360, 1.0, -1)
        elif kind == "off-edge":
            shadow_at = None
        elif kind in ("plinth-twin", "melt"):
            shadow_at = None  # the grown support carries the shadow on the ground
            cv2.ellipse(contact, (int((fx0 + fx1) / 2), int(y_s)), (max(2, (fx1 - fx0) // 2), max(2, ph // 30)), 0, 0,
                        360, 0.8, -1)
        else:
            k = 1.0 if lift <= 0 else max(0.25, 1 - 1.5 * lift / max(1, ph))
            grown = sil if lift == 0 else cv2.warpAffine(sil, np.array([[1, 0, 0], [0, 1, lift]], np.float32), (W, H))
            if kind != "sunk":
                shade += 0.45 * k * _soft_shadow(grown, shear, 0.18, y_s, 2 + 0.03 * ph)
            cv2.ellipse(contact, (int((fx0 + fx1) / 2), int(y_s)),
                        (max(2, int((fx1 - fx0) * 0.5 * (1 + lift / max(1, ph)))), max(2, ph // 32)), 0, 0, 360,
                        k, -1)
        shade += 0.6 * cv2.GaussianBlur(contact, (0, 0), max(1.5, ph / 45))
        plate *= (1 - np.clip(shade, 0, 0.75))[..., None]

        # -- props, grown parts, product -------------------------------------------------------------------------
        for i, (dr, px0, py0) in enumerate(placed):
            c = np.zeros((H, W), np.float32)
            col = np.zeros((H, W, 3), np.float32)
            stamp(c, dr.cov, px0, py0)
            stamp(col, dr.rgb, px0, py0)
            _mix(plate, col, c)
            objects[c > 0.5] = 10 + i
        if kind in ("plinth-twin", "melt", "twin", "stem"):
            objects[self._grow(rng, plate, kind, ref, x0, y0, base_off, y_s, body, st.light, s)] = 100
        canvas = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
        source = None
        shown = ref
        if kind in ("lowres", "slice"):
            shown = self._bad_cutout(rng, ref, kind, s)
            source = source_image(shown)
        elif kind == "defocus":
            shown = np.asarray(cv2.GaussianBlur(ref, (0, 0), max(1.5, ph * (0.014 + 0.03 * s))))
        visible = paste(canvas, shown, x0, y0)
        placement = None
        if kind in ("bite", "fade"):
            placement = visible.copy()
            lost = self._lose(rng, kind, ref, s, plate, canvas, x0, y0)
            visible &= ~lost
        elif kind == "sunk":
            front = self._surface_front(st, W, H, y_s, xx, yy)
            hide = front & (yy > y_s) & (np.abs(xx - (x0 + pw / 2)) <= pw / 2 + 3)
            # the surface closes over it, with a little shade where it went in
            rim = np.zeros((H, W), np.float32)
            cv2.ellipse(rim, (int(x0 + pw / 2), int(y_s + 1)), (max(2, int(pw * 0.55)), max(2, ph // 40)), 0, 0, 360,
                        1.0, -1)
            back = plate * (1 - 0.35 * cv2.GaussianBlur(rim, (0, 0), max(1.0, ph / 60)))[..., None]
            back = np.clip(back + 0.5, 0, 255).astype(np.uint8)
            canvas[hide] = back[hide]
            visible &= ~hide
            objects[hide & (objects == 0)] = 1
        img = Image.fromarray(canvas, "RGB")
        boxes = _set_copy(img, rng, zone, product, centred)
        if sticker is not None:
            boxes.update(_sticker(img, rng, product, sticker))
        out = np.asarray(img)

        support = Support(int(y_s), int(sup_x0), int(sup_x1), st.kind)
        if kind in ("plinth-twin", "melt"):
            support = Support(int(y0 + base_off), int(fx0), int(fx1), kind)
        rep = SceneReport(box=box, reference=ref, product_cm=cm, support=support, props=props, objects=objects,
                          shadow=shadow_at, palette=palette)
        labelled = label_render(out, visible, rep, defect)
        params = {"set": st.kind, "light": st.light, "mood": [list(map(int, c)) for c in mood],
                  "copy": "none" if zone is None else ("column" if not centred else "band"), "kind": kind,
                  "severity": s if want else 0.0, "requested": defect, "product_box": list(box),
                  "px_per_cm": round(px_per_cm, 4), **labelled}
        return self.result(out, visible, boxes=boxes, params=params, seed=seed, aspect=aspect, source=source,
                           placement=placement)

    # -- the set ----------------------------------------------------------------------------------------------
    def _plan_set(self, rng: np.random.Generator, W: int, H: int, free: Box, cm: float, kind: str) -> _Set:
        big = cm > 50
        if kind == "off-edge":
            options: tuple[str, ...] = ("podium", "twin-podium")
        elif kind == "sunk":
            options = ("silk", "nature", "window")
        elif kind == "tight-crop":
            options = ("arch", "silk", "bokeh", "window", "nature")
        elif kind in ("monochrome", "haze", "glow"):  # studio sets: a sky or bokeh would break the tone
            options = ("podium", "twin-podium", "arch", "silk") if not big else ("arch", "silk")
        elif big:
            options = ("arch", "silk", "window", "nature", "podium")
        else:
            options = SETS
        k = options[int(rng.integers(len(options)))]
        floor_y = int(free.y0 + (free.y1 - free.y0) * rng.uniform(0.5, 0.72))
        ground_y = int(floor_y + (free.y1 - floor_y) * rng.uniform(0.45, 0.85))
        st = _Set(k, float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.4, 1.0)), floor_y, ground_y)
        if k in ("podium", "twin-podium"):
            n = 1 if k == "podium" else 2
            base = ground_y
            for i in range(n):
                hw = free.w * float(rng.uniform(0.16, 0.26) if not big else rng.uniform(0.26, 0.34))
                top = base - (free.y1 - free.y0) * float(rng.uniform(0.08, 0.22) if i == 0 else rng.uniform(0.04, 0.1))
                cx = free.x0 + free.w * (float(rng.uniform(0.35, 0.65)) if n == 1 else (0.38 if i == 0 else 0.7))
                if n == 2 and rng.random() < 0.5:
                    cx = free.x0 + free.w - (cx - free.x0)
                cx = float(np.clip(cx, free.x0 + hw + 2, free.x1 - hw - 2)) if free.w > 2 * hw + 4 else free.x0 + free.w / 2
                st.podiums.append((cx, hw, top, base))
        return st

    def _mood(self, rng: np.random.Generator, rim: np.ndarray, body: np.ndarray, kind: str, s: float,
              rim_lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Backdrop top, backdrop bottom and floor colours: the product's own (indistinct kinds), else a pair
        that stands off the product's rim."""
        if kind in ("monochrome", "haze"):
            bl = lab(body)  # here ``body`` is the rim's colour (see generate_one)
            de = 7.0 - 5.5 * s
            if kind == "haze":  # the same lightness and a muted version of its hue
                shift = np.array([rng.uniform(-1, 1) * de * 0.5, bl[1] * 0.2, bl[2] * 0.2], np.float32)
                c = _lab2rgb(bl - shift)
            else:
                d = rng.normal(0, 1, 3)
                c = _lab2rgb(bl + d / (np.linalg.norm(d) + 1e-6) * de)
            return c * 1.04, c * 0.96, c
        cands = []
        for i in rng.permutation(len(_MOODS)):
            top, bot = (np.asarray(c, np.float32) for c in _MOODS[int(i)])
            cands.append((top, bot))
        best, best_d = cands[0], -1.0
        for top, bot in cands:  # far from the rim colour the contrast rule compares against, and from most of the rim
            mid = lab((top + bot) / 2)
            dist = min(float(np.linalg.norm(rim_lab - mid)), 1.3 * float(np.percentile(np.linalg.norm(rim - mid, axis=-1), 20)))
            if dist >= 32:
                best = (top, bot)
                break
            if dist > best_d:
                best, best_d = (top, bot), dist
        floor = best[1] * float(rng.uniform(0.85, 1.02))
        return best[0], best[1], floor

    def _paint_set(self, rng: np.random.Generator, st: _Set, W: int, H: int, xx: np.ndarray, yy: np.ndarray,
                   mood: tuple[np.ndarray, np.ndarray, np.ndarray], rim: np.ndarray, body: np.ndarray, kind: str,
                   s: float) -> tuple[np.ndarray, np.ndarray]:
        """The backdrop, floor and support as float32 RGB, and the label map of solid objects (1 = support)."""
        top, bot, floor = mood
        t = np.clip(yy / max(1, H - 1), 0, 1)[..., None]
        img = top * (1 - t) + bot * t
        objects = np.zeros((H, W), np.int32)
        lx = W * (0.5 + 0.3 * st.light)
        spot = np.exp(-(((xx - lx) / (0.55 * W)) ** 2 + ((yy - 0.35 * H) / (0.6 * H)) ** 2))
        toned = kind in ("monochrome", "haze")
        img *= ((0.97 + 0.05 * spot) if toned else (0.86 + 0.22 * spot))[..., None]
        if st.kind == "bokeh":
            dark = float(lab((top + bot) / 2)[0]) < 50
            tint = np.array([255, 230, 190], np.float32) if dark else np.array([255, 255, 255], np.float32)
            for _ in range(int(rng.integers(14, 30))):
                r = float(rng.uniform(0.02, 0.07)) * min(W, H)
                bx, by = float(rng.uniform(0, W)), float(rng.uniform(0, st.floor_y))
                sl = _window(W, H, bx - r * 1.3, by - r * 1.3, bx + r * 1.3, by + r * 1.3)
                c = _cover(_sd_ellipse(xx[sl], yy[sl], bx, by, r, r), r * 0.25)
                img[sl] += (tint - img[sl]) * (c * float(rng.uniform(0.08, 0.3)))[..., None]
        elif st.kind == "silk":
            ph_ = float(rng.uniform(0, 6.28))
            fold = np.sin(xx / W * float(rng.uniform(5, 11)) + 1.8 * np.sin(yy / H * 3 + ph_)) ** 3
            img *= (1 + 0.1 * fold)[..., None]
        elif st.kind == "arch":
            aw = W * float(rng.uniform(0.22, 0.34))
            acx = W * float(rng.uniform(0.35, 0.65))
            atop = st.floor_y - H * float(rng.uniform(0.35, 0.55))
            d = np.where(yy < atop + aw, np.hypot(xx - acx, yy - (atop + aw)) - aw, np.abs(xx - acx) - aw)
            d = np.maximum(d, yy - st.floor_y)
            c = _cover(d, 1.2)
            recess = img * 0.86 + 8
            img = img * (1 - c[..., None]) + recess * c[..., None]
        elif st.kind == "window":
            wx = W * (0.2 if st.light < 0 else 0.8)
            win = _cover(_sd_rounded_box(xx, yy, wx, H * 0.3, W * 0.16, H * 0.22, 4), 14.0)
            bars = ((np.abs(xx - wx) < W * 0.008) | (np.abs(yy - H * 0.3) < H * 0.006)).astype(np.float32)
            img += (255 - img) * (win * (1 - 0.6 * bars) * 0.35)[..., None]
        elif st.kind == "nature":
            sky = np.array([200, 222, 240], np.float32) if lab(body)[2] > -5 else np.array([244, 226, 200], np.float32)
            img = img * 0.4 + sky * 0.6
            for _ in range(int(rng.integers(4, 9))):  # out-of-focus leaves behind the set
                lcx, lcy = float(rng.uniform(0, W)), float(rng.uniform(0, st.floor_y))
                r = float(rng.uniform(0.06, 0.14)) * min(W, H)
                ang = float(rng.uniform(0, np.pi))
                sl = _window(W, H, lcx - r * 2.2, lcy - r * 2.2, lcx + r * 2.2, lcy + r * 2.2)
                u = (xx[sl] - lcx) * np.cos(ang) + (yy[sl] - lcy) * np.sin(ang)
                v = -(xx[sl] - lcx) * np.sin(ang) + (yy[sl] - lcy) * np.cos(ang)
                leaf = _cover((np.hypot(u / 2.2, v) - r * 0.5), r * 0.6)
                img[sl] += (np.array([96, 140, 96], np.float32) - img[sl]) * (leaf * 0.55)[..., None]
        # the floor: a plane of its own colour, darker towards the viewer, soft horizon
        fl = np.clip((yy - st.floor_y) / max(1.0, 0.012 * H), 0, 1)[..., None]
        depth = np.clip((yy - st.floor_y) / max(1, H - st.floor_y), 0, 1)[..., None]
        surface = floor * (1.02 - 0.16 * depth)
        if st.kind == "silk":
            surface = surface * (1 + 0.08 * np.sin(xx / W * 9 + yy / H * 14)[..., None] ** 3)
        elif st.kind == "nature":
            sand = rng.random() < 0.5
            sc = np.array([226, 206, 170], np.float32) if sand else np.array([150, 176, 190], np.float32)
            if float(np.percentile(np.linalg.norm(rim - lab(sc), axis=-1), 20)) < 28:
                sc = sc * 0.55
            rip = np.sin(yy / max(2.0, H * 0.012) + 0.6 * np.sin(xx / W * 8)) * (0.02 if sand else 0.06)
            surface = sc * (1.02 - 0.16 * depth) * (1 + rip[..., None])
            st.extras["surface"] = "sand" if sand else "water"
        img = img * (1 - fl) + surface * fl
        if st.kind == "nature" and rng.random() < 0.5:  # a leaf thrown out of focus in the foreground corner
            side = 0 if rng.random() < 0.5 else W
            leaf = _cover(np.hypot((xx - side) / 2.0, yy - H) - min(W, H) * 0.3, min(W, H) * 0.05)
            img = img * (1 - 0.85 * leaf[..., None]) + np.array([58, 96, 60], np.float32) * 0.85 * leaf[..., None]
        for i, (cx, hw, ptop, pbase) in enumerate(st.podiums):
            colour = _contrasting(rng, rim, [np.asarray(c, np.float32) for c in
                                             ((246, 244, 240), (226, 214, 200), (214, 196, 190), (190, 200, 212),
                                              (60, 62, 70), (120, 96, 80), (180, 200, 186), (236, 222, 206))])
            if kind in ("monochrome", "haze"):
                colour = (top + bot) / 2 * 0.97
            ry = max(3.0, hw * 0.16)
            sl = _window(W, H, cx - hw * 1.3, ptop - ry * 3, cx + hw * 1.3, pbase + ry * 4)
            gx, gy, sub = xx[sl], yy[sl], img[sl]
            side_d = np.maximum(np.abs(gx - cx) - hw, np.maximum(ptop - gy, gy - pbase))
            side_d = np.minimum(side_d, _sd_ellipse(gx, gy, cx, pbase, hw, ry))
            top_d = _sd_ellipse(gx, gy, cx, ptop, hw, ry)
            c_side, c_top = _cover(side_d), _cover(top_d)
            gloss = float(rng.uniform(0.05, 0.35))
            # the podium's own contact shadow on the floor, then the podium
            ao = _cover(_sd_ellipse(gx, gy, cx, pbase + ry * 0.3, hw * 1.08, ry * 1.2), ry)
            sub *= (1 - 0.25 * cv2.GaussianBlur(ao * (1 - c_side), (0, 0), ry * 0.6))[..., None]
            _mix(sub, colour * (0.86 * _round_shade(gx, cx, hw, st.light, gloss))[..., None], c_side)
            _mix(sub, colour * 1.08, c_top)
            objects[sl][(c_side > 0.5) | (c_top > 0.5)] = 1 + i
        return np.clip(img, 0, 255).astype(np.float32), objects

    def _surface_front(self, st: _Set, W: int, H: int, y_s: int, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        """Pixels of the surface in front of the contact line (what covers a product sunk into it)."""
        return np.asarray(yy >= st.floor_y)


    @staticmethod
    def _spot(rng: np.random.Generator, box: tuple[int, int, int, int], w: int, h: int, ground: int, taken: list,
              free: Box, sx0: int, sx1: int, merged: bool, W: int) -> int | None:
        """Where a prop stands: beside the product (on its podium when there is room), not over anything."""
        x0, _, x1, _ = box
        for side in ([1, -1] if rng.random() < 0.5 else [-1, 1]):
            if merged:
                ov = int(w * rng.uniform(0.25, 0.45))
                px = x1 - ov if side > 0 else x0 - w + ov
            else:
                gap = int(max(5, (x1 - x0) * rng.uniform(0.06, 0.3)))
                px = x1 + gap if side > 0 else x0 - gap - w
                for ob in taken[1:]:
                    if px < ob[2] and ob[0] < px + w and ground - h < ob[3]:
                        px = ob[2] + gap if side > 0 else ob[0] - gap - w
            lo, hi = (max(free.x0, sx0), min(free.x1, sx1)) if not merged else (0, W)
            if px < lo or px + w > hi:
                continue
            cand = (px, ground - h, px + w, ground)
            others = taken[1:] if merged else taken
            if any(cand[0] < ob[2] and ob[0] < cand[2] and cand[1] < ob[3] and ob[1] < cand[3] for ob in others):
                continue
            return int(px)
        return None

    def _grow(self, rng: np.random.Generator, plate: np.ndarray, kind: str, ref: np.ndarray, x0: int, y0: int,
              base_off: int, ground: int, body: np.ndarray, light: float, s: float) -> np.ndarray:
        """Shapes in the product's own colours growing out of it; returns their pixels."""
        H, W = plate.shape[:2]
        ph, pw = ref.shape[:2]
        xx, yy = _grid(W, H)
        a = ref[..., 3] >= OPAQUE
        foot = np.nonzero(a[max(0, base_off - max(2, ph // 25)) : base_off + 1].any(axis=0))[0]
        f0, f1 = (x0 + int(foot.min()), x0 + int(foot.max()) + 1) if len(foot) else (x0, x0 + pw)
        bottom = y0 + base_off
        cov: np.ndarray = np.zeros((H, W), np.float32)
        col: np.ndarray = np.zeros((H, W, 3), np.float32)
        if kind == "plinth-twin":  # a podium exactly as wide as the product's base, in its colour
            hw = (f1 - f0) / 2
            cx = (f0 + f1) / 2
            ry = max(2.0, hw * 0.12)
            d = np.maximum(np.abs(xx - cx) - hw, np.maximum(bottom - ry - yy, yy - ground))
            d = np.minimum(d, _sd_ellipse(xx, yy, cx, ground, hw, ry))
            cov = _cover(d)
            col = body * _round_shade(xx, cx, hw, light, 0.2)[..., None]
        elif kind == "melt":  # the base runs down in drips to the ground
            rows = ref[max(0, base_off - 3) : base_off + 1]
            colours = np.where((rows[..., 3] >= OPAQUE)[..., None], rows[..., :3], 0).astype(np.float32)
            count = (rows[..., 3] >= OPAQUE).sum(axis=0)
            colbase = colours.sum(axis=0) / np.maximum(count, 1)[:, None]
            n = int(rng.integers(3, 7))
            for _ in range(n):
                dx = float(rng.uniform(f0 + 3, max(f0 + 4, f1 - 3)))
                length = (ground - bottom) * float(rng.uniform(0.5, 1.0)) + 4
                r = max(2.0, (f1 - f0) * float(rng.uniform(0.05, 0.12)))
                d = np.maximum(np.abs(xx - dx) - r * (1 - 0.4 * np.clip((yy - bottom) / max(1.0, length), 0, 1)),
                               np.maximum(bottom - 2 - yy, yy - (bottom + length)))
                d = np.minimum(d, _sd_ellipse(xx, yy, dx, bottom + length, r, r))
                cov = np.maximum(cov, _cover(d))
            idx = np.clip(xx - x0, 0, pw - 1).astype(np.int64)
            col = np.where(count[idx][..., None] > 0, colbase[idx], body)
            col = col * (0.9 + 0.1 * _round_shade(xx, (f0 + f1) / 2, (f1 - f0) / 2, light, 0.3))[..., None]
            sup = np.zeros((H, W), np.float32)  # a pool where the drips meet the ground
            sup = _cover(_sd_ellipse(xx, yy, (f0 + f1) / 2, ground, (f1 - f0) * 0.6, max(2.0, (f1 - f0) * 0.08)))
            cov = np.maximum(cov, sup)
            col = np.where(sup[..., None] > cov[..., None] - 1e-6, body * 0.92, col)
        elif kind == "twin":  # a second copy of the product behind it, offset and merged with it
            off = int(pw * (0.25 + 0.3 * s)) * (1 if rng.random() < 0.5 else -1)
            dy = -int(ph * float(rng.uniform(0.0, 0.1)))
            part = ref.astype(np.float32)
            c = np.zeros((H, W), np.float32)
            rgbc = np.zeros((H, W, 3), np.float32)
            stamp(c, part[..., 3] / 255.0, x0 + off, y0 + dy)
            stamp(rgbc, part[..., :3] * 0.92, x0 + off, y0 + dy)
            cov, col = c, rgbc
        else:  # stem: a rod in the product's colour growing out of its side or top
            up = rng.random() < 0.5
            r = max(2.0, min(ph, pw) * 0.05)
            if up:
                cols_top = np.nonzero(a[int(np.nonzero(a.any(axis=1))[0].min())])[0]
                sx = x0 + float(np.median(cols_top)) if len(cols_top) else x0 + pw / 2
                top_y = y0 + float(np.nonzero(a.any(axis=1))[0].min())
                length = ph * (0.25 + 0.35 * s)
                d = np.maximum(np.abs(xx - sx) - r, np.maximum(top_y - length - yy, yy - top_y - 3))
                d = np.minimum(d, _sd_ellipse(xx, yy, sx, top_y - length, r * 2.2, r * 2.2))
            else:
                right = rng.random() < 0.5
                row = int(ph * float(rng.uniform(0.3, 0.6)))
                cols = np.nonzero(a[row])[0]
                if not len(cols):
                    cols = np.nonzero(a.any(axis=0))[0]
                ex = x0 + (int(cols.max()) if right else int(cols.min()))  # the outline on that row
                sy = y0 + row
                length = pw * (0.3 + 0.4 * s)
                x_end = ex + length if right else ex - length
                d = np.maximum(np.abs(yy - sy) - r, np.maximum(min(ex, x_end) - 3 - xx, xx - max(ex, x_end) - 3))
                d = np.minimum(d, _sd_ellipse(xx, yy, x_end, sy, r * 2.2, r * 2.2))
            cov = _cover(d)
            col = np.broadcast_to(body, (H, W, 3)) * 0.97
        _mix(plate, col, cov)
        return np.asarray(cov > 0.5)

    @staticmethod
    def _lose(rng: np.random.Generator, kind: str, ref: np.ndarray, s: float, plate: np.ndarray, canvas: np.ndarray,
              x0: int, y0: int) -> np.ndarray:
        """Part of the product gone from the image: round bites out of its edge, or a region fading into the
        backdrop. Returns the canvas pixels where the product is lost (they show the set)."""
        H, W = canvas.shape[:2]
        ph, pw = ref.shape[:2]
        a = ref[..., 3] >= OPAQUE
        lost = np.zeros((ph, pw), np.float32)
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        target = float(a.sum()) * (0.02 + 0.28 * s)
        if kind == "bite":
            ys, xs = np.nonzero(a)
            for _ in range(12):
                if float((lost > 0.5)[a].sum()) >= target:
                    break
                k = int(rng.integers(len(xs)))
                r = max(4.0, np.sqrt(target / np.pi) * float(rng.uniform(0.6, 1.0)))
                lost = np.maximum(lost, _cover(np.hypot(xx - xs[k], yy - ys[k]) - r, 1.0))
        else:  # fade: a band of the product dissolves into the set
            ang = float(rng.uniform(0, 2 * np.pi))
            proj = (xx - pw / 2) * np.cos(ang) + (yy - ph / 2) * np.sin(ang)
            vals = np.sort(proj[a])
            cutv = vals[int(len(vals) * (1 - (0.07 + 0.3 * s)))] if len(vals) else 0
            lost = np.clip((proj - cutv) / max(2.0, 0.04 * max(ph, pw)) + 0.5, 0, 1)
        lost *= a
        out = np.zeros((H, W), bool)
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + pw), min(H, y0 + ph)
        if cx1 > cx0 and cy1 > cy0:
            lw = lost[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0][..., None]
            region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
            back = plate[cy0:cy1, cx0:cx1]
            canvas[cy0:cy1, cx0:cx1] = np.clip(region * (1 - lw) + back * lw + 0.5, 0, 255).astype(np.uint8)
            out[cy0:cy1, cx0:cx1] = lw[..., 0] > 0.02
        return out

    @staticmethod
    def _bad_cutout(rng: np.random.Generator, ref: np.ndarray, kind: str, s: float) -> np.ndarray:
        """A bad source: upscaled from a thumbnail (soft and blocky), or sliced by a diagonal cut."""
        ph, pw = ref.shape[:2]
        if kind == "lowres":
            f = max(5, int(max(ph, pw) * (0.14 - 0.1 * s)))
            small = cv2.resize(ref, (max(2, pw * f // max(ph, pw)), max(2, ph * f // max(ph, pw))),
                               interpolation=cv2.INTER_AREA)
            return np.ascontiguousarray(cv2.resize(small, (pw, ph), interpolation=cv2.INTER_LINEAR))
        out = ref.copy()
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        ang = float(rng.uniform(0.5, 1.2)) * (1 if rng.random() < 0.5 else -1)
        proj = (xx - pw / 2) * np.sin(ang) - (yy - ph / 2) * np.cos(abs(ang))  # towards the top corners
        a = out[..., 3] >= OPAQUE
        vals = np.sort(proj[a])
        if len(vals):
            cutv = vals[int(len(vals) * (1 - (0.15 + 0.3 * s)))]
            out[..., 3][proj > cutv] = 0
        return np.ascontiguousarray(out)
