"""``poster``: flat graphic-design e-commerce banners, a renderer family of its own.

The other big style of real ad creatives (JD/Tmall/Amazon banners): no camera, no photographs, no blur. Every
shape is a vector drawn with PIL at 3× and box-filtered down (supersampled anti-aliasing): colour fields (solid,
a diagonal two-tone split, linear and radial gradients, sunburst rays) in a palette designed around the
product's own hue (complementary, triadic, split-complementary or analogous, at pastel, vivid or deep tones,
always standing off the product's rim), geometric décor kept clear of the product (circles, rings, arcs,
stripes, halftone dot grids, confetti, a wavy ribbon, a frame), a flat cel-shaded stage the product stands on
(an ellipse-topped podium with two-tone sides, a two-tier podium, an isometric block, a shelf bar on brackets,
a floor band under a horizon line), flat shadows that agree with the stage (a contact ellipse, a hard offset
drop shadow, a flattened cast silhouette away from the light), flat icon props at real-world scale (mugs,
potted plants, apples, oranges, cans, book stacks, candles; balls and cubes as decoration), big typography
(optionally on a colour block), price bursts and ribbon badges.

``defect=`` draws one RF1M class its own way (see ``_DEFECT_KINDS``); whatever is drawn, the label comes from
:mod:`adcreative.generate.measure`, the labeller every renderer shares, applied to what was rendered.
No drawing code is shared with the compositor, ``photoset``, ``softfocus`` or ``perspective``: this family is
held back from training as the renderer no model has seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from adcreative.catalogue.sizes import real_height_cm
from adcreative.core.errors import InputError
from adcreative.core.fonts import FontT, typeface
from adcreative.core.modeling import register_to_config
from adcreative.core.types import ASPECTS, Box, Product, canvas_size
from adcreative.generate.base import GeneratedImage, SceneRenderer
from adcreative.generate.cutout import OPAQUE, footprint, paste, placeable_cutout, source_image, stamp
from adcreative.generate.measure import (
    Prop,
    SceneReport,
    Support,
    lab,
    label_render,
    nearest_palette_de,
    product_palette,
    rim_colour,
    rim_median,
    rim_samples,
)

VERSION = "1.0"
SS = 3  # supersampling factor of every vector drawn
FIELDS = ("solid", "split", "linear", "radial", "sunburst")
STAGES = ("podium", "two-tier", "block", "shelf", "floor")
DECOR = ("circles", "rings", "arcs", "stripes", "halftone", "confetti", "wave", "frame")
_DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "unsuitable": ("punched", "band-cut", "edge-cut", "posterise", "halftone-wipe"),
    "space_mismatch": ("float", "sunk", "perch", "off-edge", "wrong-shadow"),
    "size_mismatch": ("toy", "giant", "speck"),
    "indistinctiveness": ("own-field", "own-pattern", "colour-block"),
    "shape_hallucination": ("extension", "stand", "echo", "sticker"),
}
# flat icon props: real height (cm), width / height, recognisable scale cue
PROPS: dict[str, tuple[float, float, bool]] = {
    "mug": (9.5, 1.15, True), "plant": (30.0, 0.62, True), "apple": (8.5, 0.95, True),
    "orange": (8.0, 1.0, True), "can": (12.2, 0.55, True), "books": (9.0, 1.9, True), "candle": (11.0, 0.5, True),
    "ball": (12.0, 1.0, False), "cube": (10.0, 1.0, False),
}
_PROP_COLOURS: tuple[tuple[int, int, int], ...] = (
    (250, 250, 246), (36, 38, 46), (232, 90, 70), (60, 130, 200), (250, 196, 60), (70, 160, 110),
    (240, 150, 170), (130, 90, 190), (250, 130, 40), (120, 200, 210),
)
# (lightness, chroma) of the designed palette's tones: pastel, light, vivid, mid, deep, near-neutral light/dark
_TONES: tuple[tuple[float, float], ...] = ((92, 16), (84, 34), (66, 58), (52, 62), (34, 44), (22, 24), (96, 4),
                                           (15, 6), (74, 22), (44, 30))
_SCHEMES: dict[str, tuple[float, ...]] = {
    "complementary": (180.0,), "split": (150.0, 210.0), "triadic": (120.0, 240.0), "analogous": (35.0, -35.0, 60.0),
}


# -- colour ------------------------------------------------------------------------------------------------------
def _to_rgb(c_lab: np.ndarray) -> np.ndarray:
    out = cv2.cvtColor(np.asarray(c_lab, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.asarray(np.clip(out * 255.0, 0, 255), np.float32)


def _rgb_t(c: np.ndarray) -> tuple[int, int, int]:
    return (round(float(c[0])), round(float(c[1])), round(float(c[2])))


class _Colours:
    """The product's colours as a designer sees them: its rim (what a backdrop must stand off), its palette (what
    a shape in "its own colours" is) and its hue (what the banner's scheme is built around)."""

    def __init__(self, cut: np.ndarray) -> None:
        a = cut[..., 3] >= OPAQUE
        self.rim = rim_samples(cut)
        self.rim_main = rim_colour(cut)
        self.palette = product_palette(cut)
        self.palette_rgb = [_to_rgb(c) for c in self.palette[: len(self.palette) // 2]]  # the unshaded half
        opaque = cut[..., :3][a]
        q = (opaque // 32).astype(np.int64)
        key = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
        self.body = np.asarray(opaque[key == int(np.bincount(key).argmax())].mean(axis=0), np.float32)
        b = lab(self.body)
        self.hue = math.degrees(math.atan2(float(b[2]), float(b[1])))
        self.chroma = float(np.hypot(b[1], b[2]))

    def standoff(self, rgb: np.ndarray) -> float:
        """ΔE of a colour from the product's outline, lit and in a flat shadow (×0.72): the smaller of the
        distance to the main rim colour and (a little generously) to the nearest fifth of the rim samples."""
        worst = 1e9
        for c in (rgb, rgb * 0.72):
            L = lab(np.asarray(c, np.float32))
            d = np.linalg.norm(self.rim - L, axis=-1)
            worst = min(worst, float(np.linalg.norm(self.rim_main - L)), 1.2 * float(np.percentile(d, 20)))
        return worst

    def own_de(self, rgb: np.ndarray) -> float:
        return float(nearest_palette_de(np.asarray(rgb, np.float32)[None], self.palette)[0])

    def nearest_own(self, rgb: np.ndarray) -> np.ndarray:
        """The product's palette colour nearest ``rgb`` (a shape "in its own colours" is drawn in it)."""
        d = [float(np.linalg.norm(lab(c) - lab(np.asarray(rgb, np.float32)))) for c in self.palette_rgb]
        return self.palette_rgb[int(np.argmin(d))]


def _lch(L: float, C: float, h: float) -> np.ndarray:
    return _to_rgb(np.array([L, C * math.cos(math.radians(h)), C * math.sin(math.radians(h))], np.float32))


def _scheme_colours(rng: np.random.Generator, col: _Colours, scheme: str) -> list[np.ndarray]:
    """Candidate colours of a harmony built on the product's hue (neutral products get a random base hue)."""
    base = col.hue if col.chroma > 12 else float(rng.uniform(0, 360))
    out = []
    for off in _SCHEMES[scheme]:
        for L, C in _TONES:
            out.append(_lch(L + float(rng.uniform(-4, 4)), C * float(rng.uniform(0.85, 1.15)),
                            base + off + float(rng.uniform(-12, 12))))
    order = rng.permutation(len(out))
    return [out[int(i)] for i in order]


def _choose(cands: list[np.ndarray], ok: Any, score: Any) -> np.ndarray:
    """The first candidate passing ``ok``, else the best by ``score``."""
    for c in cands:
        if ok(c):
            return c
    return max(cands, key=score)


@dataclass
class _Palette:
    field: np.ndarray
    field2: np.ndarray
    stage: np.ndarray  # podium top / block top / shelf top
    accents: list[np.ndarray]
    scheme: str


def _design_palette(rng: np.random.Generator, col: _Colours, need: float = 36.0) -> _Palette:
    """A banner palette in one harmony: two field colours (their blends stand off the product too), a stage
    colour off the product's rim and palette, and accents for décor."""
    scheme = list(_SCHEMES)[int(rng.integers(len(_SCHEMES)))]
    cands = _scheme_colours(rng, col, scheme) + _scheme_colours(rng, col, "complementary")
    neutrals = [np.array(c, np.float32) for c in ((248, 246, 240), (30, 32, 40), (236, 228, 214), (210, 214, 222))]
    cands += [neutrals[int(i)] for i in rng.permutation(len(neutrals))]
    field = _choose(cands, lambda c: col.standoff(c) >= need, col.standoff)

    def blend_ok(c: np.ndarray) -> bool:
        return all(col.standoff(field * (1 - t) + c * t) >= need - 4 for t in (0.25, 0.5, 0.75, 1.0)) and \
            float(np.linalg.norm(lab(c) - lab(field))) > 10

    field2 = _choose(cands, blend_ok, lambda c: min(col.standoff(field * 0.5 + c * 0.5), col.standoff(c)))

    rim_rgb = _to_rgb(col.rim_main)  # where the stage meets the product's foot the two blend

    def stage_ok(c: np.ndarray) -> bool:
        sides = (c, c * 0.86, c * 0.72)
        return (min(col.standoff(x) for x in sides) >= need and col.own_de(c) > 18
                and min(col.own_de(c * t) for t in (0.86, 0.72, 0.62)) > 14
                and col.own_de(0.5 * c + 0.5 * rim_rgb) > 12 and float(np.linalg.norm(lab(c) - lab(field))) > 12)

    def stage_score(c: np.ndarray) -> float:  # how close a colour comes to passing, when none passes
        return min(col.standoff(c) / need, col.standoff(c * 0.72) / need, col.own_de(c) / 18,
                   col.own_de(0.5 * c + 0.5 * rim_rgb) / 12, float(np.linalg.norm(lab(c) - lab(field))) / 12)

    stage = _choose(cands, stage_ok, stage_score)
    accents = [c for c in cands if col.standoff(c) >= 24][:4] or [field2]
    return _Palette(field, field2, stage, accents, scheme)


# -- drawing: vectors at SS×, box-filtered down -------------------------------------------------------------------
class _Sheet:
    """A supersampled drawing sheet: colours drawn at SS× with PIL, object ids drawn alongside (no anti-aliasing),
    both brought down to canvas size by :meth:`finish`. Coordinates are canvas pixels (floats)."""

    def __init__(self, field: np.ndarray) -> None:
        self.H, self.W = field.shape[:2]
        f8 = np.clip(np.asarray(field, np.float32) + 0.5, 0, 255).astype(np.uint8)
        big = cv2.resize(np.ascontiguousarray(f8), (self.W * SS, self.H * SS), interpolation=cv2.INTER_LINEAR)
        self.im = Image.fromarray(big, "RGB")
        self.d = ImageDraw.Draw(self.im)
        self.ids = Image.new("L", self.im.size, 0)
        self.di = ImageDraw.Draw(self.ids)

    @staticmethod
    def _pts(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * SS, y * SS) for x, y in pts]

    @staticmethod
    def _box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return (b[0] * SS, b[1] * SS, b[2] * SS - 1, b[3] * SS - 1)

    def poly(self, pts: list[tuple[float, float]], fill: np.ndarray, obj: int = 0) -> None:
        p = self._pts(pts)
        self.d.polygon(p, fill=_rgb_t(fill))
        if obj:
            self.di.polygon(p, fill=obj)

    def ellipse(self, b: tuple[float, float, float, float], fill: np.ndarray, obj: int = 0) -> None:
        bb = self._box(b)
        if bb[2] <= bb[0] or bb[3] <= bb[1]:
            return
        self.d.ellipse(bb, fill=_rgb_t(fill))
        if obj:
            self.di.ellipse(bb, fill=obj)

    def ring(self, b: tuple[float, float, float, float], colour: np.ndarray, width: float) -> None:
        bb = self._box(b)
        if bb[2] - bb[0] > 2 * width * SS and bb[3] - bb[1] > 2 * width * SS:
            self.d.ellipse(bb, outline=_rgb_t(colour), width=max(1, round(width * SS)))

    def arc(self, b: tuple[float, float, float, float], a0: float, a1: float, colour: np.ndarray, width: float
            ) -> None:
        self.d.arc(self._box(b), a0, a1, fill=_rgb_t(colour), width=max(1, round(width * SS)))

    def rect(self, b: tuple[float, float, float, float], fill: np.ndarray, obj: int = 0, radius: float = 0.0) -> None:
        bb = self._box(b)
        if bb[2] <= bb[0] or bb[3] <= bb[1]:
            return
        if radius > 0:
            self.d.rounded_rectangle(bb, radius=radius * SS, fill=_rgb_t(fill))
            if obj:
                self.di.rounded_rectangle(bb, radius=radius * SS, fill=obj)
        else:
            self.d.rectangle(bb, fill=_rgb_t(fill))
            if obj:
                self.di.rectangle(bb, fill=obj)

    def line(self, pts: list[tuple[float, float]], colour: np.ndarray, width: float) -> None:
        self.d.line(self._pts(pts), fill=_rgb_t(colour), width=max(1, round(width * SS)), joint="curve")

    def font(self, face: str, size: float) -> FontT:
        return typeface(face, max(8, round(size * SS)))

    def text_w(self, s: str, fnt: FontT) -> float:
        return float(self.d.textlength(s, font=fnt)) / SS

    def text(self, xy: tuple[float, float], s: str, fnt: FontT, fill: np.ndarray) -> None:
        self.d.text((xy[0] * SS, xy[1] * SS), s, font=fnt, fill=_rgb_t(fill))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.asarray(self.im.reduce(SS), np.float32)
        ids = np.asarray(self.ids, np.int32)[SS // 2 :: SS, SS // 2 :: SS][: self.H, : self.W]
        return rgb, np.ascontiguousarray(ids)


def _mask_sheet(W: int, H: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("L", (W * SS, H * SS), 0)
    return im, ImageDraw.Draw(im)


def _coverage(im: Image.Image) -> np.ndarray:
    return np.asarray(im.reduce(SS), np.float32) / 255.0


# -- fields and décor --------------------------------------------------------------------------------------------
def _field(rng: np.random.Generator, kind: str, W: int, H: int, c1: np.ndarray, c2: np.ndarray,
           centre: tuple[float, float]) -> np.ndarray:
    """The banner's colour field (H×W×3 float): flat, split on a diagonal, a linear or radial gradient, or rays."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if kind == "solid":
        return np.broadcast_to(c1, (H, W, 3)).astype(np.float32)
    if kind == "linear":
        ang = float(rng.uniform(0, 2 * np.pi))
        t = (xx - W / 2) * math.cos(ang) + (yy - H / 2) * math.sin(ang)
        t = (t - t.min()) / max(1e-3, float(t.max() - t.min()))
        return np.asarray(c1 * (1 - t[..., None]) + c2 * t[..., None], np.float32)
    if kind == "radial":
        r = np.hypot(xx - centre[0], yy - centre[1]) / (0.75 * max(W, H))
        t = np.clip(r, 0, 1) ** 1.3
        return np.asarray(c1 * (1 - t[..., None]) + c2 * t[..., None], np.float32)
    # split and sunburst are hard-edged: drawn as vectors at SS× and filtered down
    im = Image.new("RGB", (W * SS, H * SS), _rgb_t(c1))
    d = ImageDraw.Draw(im)
    if kind == "split":
        a, b = float(rng.uniform(0.25, 0.75)) * W, float(rng.uniform(0.25, 0.75)) * W
        if rng.random() < 0.5:
            d.polygon([(a * SS, 0), (W * SS, 0), (W * SS, H * SS), (b * SS, H * SS)], fill=_rgb_t(c2))
        else:
            ya, yb = float(rng.uniform(0.2, 0.8)) * H, float(rng.uniform(0.2, 0.8)) * H
            d.polygon([(0, ya * SS), (W * SS, yb * SS), (W * SS, H * SS), (0, H * SS)], fill=_rgb_t(c2))
    else:  # sunburst: alternating rays from behind the product
        n = int(rng.integers(10, 22))
        R = 2.0 * max(W, H) * SS
        cx, cy = centre[0] * SS, centre[1] * SS
        off = float(rng.uniform(0, 2 * np.pi / n))
        for i in range(n):
            a0, a1 = off + 2 * np.pi * i / n, off + 2 * np.pi * (i + 0.5) / n
            d.polygon([(cx, cy), (cx + R * math.cos(a0), cy + R * math.sin(a0)),
                       (cx + R * math.cos(a1), cy + R * math.sin(a1))], fill=_rgb_t(c2))
    return np.asarray(im.reduce(SS), np.float32)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _decor(rng: np.random.Generator, sh: _Sheet, kind: str, accents: list[np.ndarray],
           keep: list[tuple[float, float, float, float]]) -> None:
    """Geometric décor in the palette's accents, kept out of the ``keep`` rectangles (the product's surroundings
    and the copy)."""
    W, H = sh.W, sh.H
    u = min(W, H)

    def acc() -> np.ndarray:
        return accents[int(rng.integers(len(accents)))]

    def free(b: tuple[float, float, float, float]) -> bool:
        return not any(_overlaps(b, k) for k in keep)

    if kind in ("circles", "rings"):
        for _ in range(int(rng.integers(2, 6))):
            r = u * float(rng.uniform(0.06, 0.22))
            cx, cy = float(rng.uniform(-0.1, 1.1)) * W, float(rng.uniform(-0.1, 1.1)) * H
            b = (cx - r, cy - r, cx + r, cy + r)
            if free(b):
                if kind == "circles":
                    sh.ellipse(b, acc())
                else:
                    sh.ring(b, acc(), max(1.5, r * float(rng.uniform(0.08, 0.2))))
    elif kind == "arcs":  # quarter arcs hugging the corners
        for cx, cy in ((0.0, 0.0), (W, 0.0), (0.0, H), (W, H)):
            if rng.random() < 0.55:
                for j in range(int(rng.integers(1, 4))):
                    r = u * (0.12 + 0.07 * j + float(rng.uniform(0, 0.04)))
                    b = (cx - r, cy - r, cx + r, cy + r)
                    if free(b):
                        sh.arc(b, 0, 360, acc(), max(1.5, u * 0.012))
    elif kind == "stripes":  # a patch of diagonal stripes in a corner
        w, h = u * float(rng.uniform(0.18, 0.32)), u * float(rng.uniform(0.12, 0.25))
        x0 = float(rng.choice([u * 0.03, W - w - u * 0.03]))
        y0 = float(rng.choice([u * 0.03, H - h - u * 0.03]))
        if free((x0, y0, x0 + w, y0 + h)):
            c, step = acc(), max(4.0, u * 0.03)
            for i in range(-int(h / step) - 1, int(w / step) + 1):
                a = x0 + i * step
                pts = [(a, y0 + h), (a + step * 0.45, y0 + h), (a + step * 0.45 + h, y0), (a + h, y0)]
                clipped = [(min(max(x, x0), x0 + w), y) for x, y in pts]
                sh.poly(clipped, c)
    elif kind == "halftone":  # a dot grid fading from a corner
        cx, cy = float(rng.choice([0.0, W])), float(rng.choice([0.0, H]))
        step = max(5.0, u * float(rng.uniform(0.025, 0.04)))
        reach = u * float(rng.uniform(0.3, 0.5))
        c = acc()
        for gy in np.arange(step / 2, H, step):
            for gx in np.arange(step / 2, W, step):
                dist = math.hypot(gx - cx, gy - cy)
                if dist < reach:
                    r = 0.42 * step * (1 - dist / reach)
                    b = (gx - r, gy - r, gx + r, gy + r)
                    if r > 0.6 and free(b):
                        sh.ellipse(b, c)
    elif kind == "confetti":
        for _ in range(int(rng.integers(10, 26))):
            cx, cy = float(rng.uniform(0, W)), float(rng.uniform(0, H))
            r = u * float(rng.uniform(0.008, 0.022))
            if not free((cx - 2 * r, cy - 2 * r, cx + 2 * r, cy + 2 * r)):
                continue
            ang = float(rng.uniform(0, np.pi))
            shape = int(rng.integers(3))
            if shape == 0:
                sh.ellipse((cx - r, cy - r, cx + r, cy + r), acc())
            else:
                n = 3 if shape == 1 else 4
                pts = [(cx + 1.6 * r * math.cos(ang + 2 * np.pi * k / n) * (1 if n == 3 else (1.6 if k % 2 else 0.5)),
                        cy + 1.6 * r * math.sin(ang + 2 * np.pi * k / n) * (1 if n == 3 else (1.6 if k % 2 else 0.5)))
                       for k in range(n)]
                sh.poly(pts, acc())
    elif kind == "wave":  # a wavy ribbon across the top or bottom
        top = rng.random() < 0.5
        amp, thick = u * float(rng.uniform(0.02, 0.05)), u * float(rng.uniform(0.04, 0.08))
        y = H * (float(rng.uniform(0.04, 0.14)) if top else float(rng.uniform(0.86, 0.96)))
        xs = np.linspace(-5, W + 5, 60)
        ph_ = float(rng.uniform(0, 2 * np.pi))
        ys = y + amp * np.sin(xs / W * 2 * np.pi * float(rng.uniform(1.0, 2.5)) + ph_)
        if free((0, float(ys.min()) - thick, W, float(ys.max()) + thick)):
            pts = [(float(x), float(v) - thick / 2) for x, v in zip(xs, ys, strict=True)]
            pts += [(float(x), float(v) + thick / 2) for x, v in zip(xs[::-1], ys[::-1], strict=True)]
            sh.poly(pts, acc())
    elif kind == "frame":  # an inset frame, drawn as four bars clear of the product
        m, w = u * 0.035, max(1.5, u * 0.008)
        c = acc()
        for b in ((m, m, W - m, m + w), (m, H - m - w, W - m, H - m), (m, m, m + w, H - m), (W - m - w, m, W - m, H - m)):
            if free(b):
                sh.rect(b, c)


# -- stages --------------------------------------------------------------------------------------------------------
@dataclass
class _Stage:
    kind: str
    top_y: int  # the contact row the product stands on
    x0: float  # the support's extent at that row
    x1: float
    bottom: float  # the row the stage itself stands on (props beside it stand there)
    box: tuple[float, float, float, float]  # what it covers


def _ellipse_pts(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 40
                 ) -> list[tuple[float, float]]:
    ts = np.linspace(a0, a1, n)
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in ts]


def _podium(sh: _Sheet, cx: float, cy: float, rx: float, ry: float, hs: float, top: np.ndarray, light: float,
            obj: int) -> None:
    """A cylinder drawn flat: an ellipse top, a side in two tones (the lit half and the far half), a rim line."""
    lit, dark = top * 0.86, top * 0.7
    sh.poly([(cx - rx, cy), *_ellipse_pts(cx, cy + hs, rx, ry, math.pi, 0.0), (cx + rx, cy)], lit, obj)
    split = cx + light * -0.25 * rx  # the shaded part is on the side away from the light
    if light < 0:  # light from the left: the right part in shade
        arc = [p for p in _ellipse_pts(cx, cy + hs, rx, ry, 0.0, math.pi) if p[0] >= split]
        sh.poly([(split, cy), (cx + rx, cy), *arc, (split, cy + hs + ry * math.sqrt(max(0.0, 1 - ((split - cx) / rx) ** 2)))],
                dark)
    else:
        arc = [p for p in _ellipse_pts(cx, cy + hs, rx, ry, 0.0, math.pi) if p[0] <= split]
        sh.poly([(split, cy), (cx - rx, cy), *arc[::-1], (split, cy + hs + ry * math.sqrt(max(0.0, 1 - ((split - cx) / rx) ** 2)))], dark)
    sh.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), top, obj)
    sh.ring((cx - rx, cy - ry, cx + rx, cy + ry), np.minimum(top * 1.08 + 8, 255), max(1.0, ry * 0.06))


def _block(sh: _Sheet, x0: float, x1: float, y_top: float, depth: float, y_bottom: float, top: np.ndarray,
           light: float, obj: int) -> None:
    """An isometric block: a front face, a top face receding by ``depth`` and a side face, three flat tones."""
    dx = depth * (1.0 if light < 0 else -1.0) * 0.8
    front = (x0, y_top, x1, y_bottom)
    sh.poly([(x0, y_top), (x1, y_top), (x1 + dx, y_top - depth), (x0 + dx, y_top - depth)], top, obj)
    sh.rect(front, top * 0.86, obj)
    xs = x1 if dx > 0 else x0
    sh.poly([(xs, y_top), (xs + dx, y_top - depth), (xs + dx, y_bottom - depth), (xs, y_bottom)], top * 0.7, obj)


# -- props ---------------------------------------------------------------------------------------------------------
def _prop(sh: _Sheet, kind: str, cx: float, base: float, h: float, c: np.ndarray, obj: int, light: float
          ) -> tuple[float, float, float, float]:
    """A flat icon of a prop standing at (cx, base), ``h`` px tall; returns its box."""
    w = h * PROPS[kind][1]
    x0, x1, top = cx - w / 2, cx + w / 2, base - h
    shade = c * 0.78
    if kind == "mug":
        bw = w / 1.15
        bx0 = cx - w / 2 + (w - bw if light > 0 else 0)
        hx = bx0 - bw * 0.28 if light > 0 else bx0 + bw * 0.72
        sh.ring((hx, top + h * 0.25, hx + bw * 0.56, top + h * 0.7), shade, max(1.5, h * 0.09))
        sh.rect((bx0, top + h * 0.06, bx0 + bw, base), c, obj, radius=h * 0.1)
        sh.ellipse((bx0, top, bx0 + bw, top + h * 0.14), shade)
    elif kind == "plant":
        pw = w * 0.62
        sh.poly([(cx - pw / 2, base - h * 0.38), (cx + pw / 2, base - h * 0.38), (cx + pw * 0.36, base),
                 (cx - pw * 0.36, base)], c, obj)
        sh.rect((cx - pw * 0.55, base - h * 0.42, cx + pw * 0.55, base - h * 0.33), shade, obj)
        green = np.array([70, 150, 90], np.float32)
        for k, ang in enumerate((-60, -25, 0, 25, 60)):
            ln = h * (0.5 if k == 2 else 0.42)
            a = math.radians(ang - 90)
            tx, ty = cx + ln * math.cos(a), base - h * 0.4 + ln * math.sin(a)
            nx, ny = -math.sin(a) * w * 0.13, math.cos(a) * w * 0.13
            mx, my = (cx + tx) / 2, (base - h * 0.4 + ty) / 2
            sh.poly([(cx, base - h * 0.4), (mx + nx, my + ny), (tx, ty), (mx - nx, my - ny)],
                    green * (0.85 if k % 2 else 1.0), obj)
    elif kind in ("apple", "orange"):
        d = h * (0.88 if kind == "apple" else 0.95)
        sh.ellipse((cx - w / 2, base - d, cx + w / 2, base), c, obj)
        sh.ellipse((cx - w / 2 + w * 0.18 * (1 if light > 0 else 0), base - d * 0.9,
                    cx - w * 0.05 + w * 0.3 * (1 if light > 0 else 0), base - d * 0.6), np.minimum(c * 1.15 + 20, 255))
        if kind == "apple":
            sh.line([(cx, base - d + 2), (cx + w * 0.05, top)], np.array([90, 60, 30], np.float32), max(1.0, w * 0.05))
            sh.ellipse((cx + w * 0.05, top, cx + w * 0.3, top + h * 0.12), np.array([80, 160, 70], np.float32))
    elif kind == "can":
        sh.rect((x0, top, x1, base), c, obj, radius=w * 0.12)
        sh.rect((x0, top + h * 0.35, x1, top + h * 0.62), np.array([246, 244, 238], np.float32))
        sh.rect((x0, top, x1, top + h * 0.06), np.array([200, 202, 206], np.float32))
        sh.rect((x0, base - h * 0.05, x1, base), np.array([200, 202, 206], np.float32))
    elif kind == "books":
        y = base
        for k in range(3):
            th = h / 3
            dx = w * 0.04 * (k - 1)
            sh.rect((x0 + dx, y - th, x1 + dx - w * 0.06 * k, y), c if k % 2 == 0 else shade, obj)
            sh.rect((x0 + dx + w * 0.04, y - th * 0.72, x1 + dx - w * 0.06 * k - w * 0.02, y - th * 0.28),
                    np.array([244, 238, 222], np.float32))
            y -= th
    elif kind == "candle":
        sh.rect((x0, top + h * 0.25, x1, base), c, obj)
        sh.poly([(cx, top), (cx + w * 0.22, top + h * 0.16), (cx, top + h * 0.23), (cx - w * 0.22, top + h * 0.16)],
                np.array([250, 180, 40], np.float32))
    elif kind == "ball":
        sh.ellipse((x0, top, x1, base), c, obj)
        sh.ellipse((x0 + w * 0.2, top + h * 0.15, x0 + w * 0.45, top + h * 0.4), np.minimum(c * 1.2 + 25, 255))
    else:  # cube
        _block(sh, x0, x1 - w * 0.2, top + h * 0.2, h * 0.2, base, c, light, obj)
    return (x0, top, x1, base)


# -- copy ----------------------------------------------------------------------------------------------------------
def _ink(bg: np.ndarray) -> np.ndarray:
    lum = float(bg @ np.array([0.299, 0.587, 0.114], np.float32))
    return np.array([22, 22, 28] if lum > 140 else [252, 252, 248], np.float32)


def _copy(sh: _Sheet, rng: np.random.Generator, zone: Box, product: Product, field: np.ndarray,
          block: np.ndarray | None) -> dict[str, Box]:
    """A big typography block: the headline at the largest size that fits (optionally on a colour block),
    the tagline under it."""
    words = str(product.attrs.get("headline") or product.title).split() or ["New"]
    if rng.random() < 0.4:
        words = [w.upper() for w in words]
    face = ("sans-bold", "condensed-bold", "narrow-bold", "serif-bold")[int(rng.integers(4))]
    pad = max(3.0, zone.h * 0.06) if block is not None else 0.0
    iw, ih = zone.w - 2 * pad, zone.h - 2 * pad
    size = max(9.0, ih * 0.5)
    while True:
        fnt = sh.font(face, size)
        lines: list[str] = []
        for w in words:
            if lines and sh.text_w(lines[-1] + " " + w, fnt) <= iw:
                lines[-1] += " " + w
            else:
                lines.append(w)
        tall = len(lines) * size * 1.15 + (size * 0.75 if product.copy else 0)
        if (tall <= ih and max(sh.text_w(s, fnt) for s in lines) <= iw) or size <= 9:
            break
        size *= 0.9
    width = min(iw, max(sh.text_w(s, fnt) for s in lines))
    centred = bool(rng.random() < 0.5)
    bx0 = zone.x0 + (zone.w - width - 2 * pad) / 2 if centred else zone.x0
    total = len(lines) * size * 1.15
    bg = field
    if block is not None:
        sh.rect((bx0, zone.y0, min(zone.x1, bx0 + width + 2 * pad), min(zone.y1, zone.y0 + total + 2 * pad)), block,
                radius=pad * 0.8)
        bg = block
    ink = _ink(bg)
    y = zone.y0 + pad
    for s in lines:
        sh.text((bx0 + pad + (width - sh.text_w(s, fnt)) / 2 if centred else bx0 + pad, y), s, fnt, ink)
        y += size * 1.15
    boxes = {"headline": Box(int(bx0), zone.y0, min(zone.x1, math.ceil(bx0 + width + 2 * pad) + 1),
                             min(zone.y1, math.ceil(y + pad) + 1))}
    y += pad + size * 0.1
    if product.copy and y + size * 0.5 <= zone.y1:
        f2 = sh.font("sans", max(8.0, size * 0.45))
        tag = product.copy
        while tag and sh.text_w(tag, f2) > zone.w:
            tag = tag[:-2]
        tw = sh.text_w(tag, f2)
        x = zone.x0 + (zone.w - tw) / 2 if centred else zone.x0
        sh.text((x, y), tag, f2, _ink(field))
        boxes["copy"] = Box(int(x), int(y), min(zone.x1, int(x + tw) + 2), min(zone.y1, int(y + size * 0.55) + 2))
    return boxes


def _price_tag(sh: _Sheet, rng: np.random.Generator, product: Product, room: Box, colour: np.ndarray
               ) -> dict[str, Box]:
    """A star-burst price sticker or a ribbon badge with notched ends."""
    badge = product.attrs.get("badge")
    use_badge = bool(badge) and (product.price is None or rng.random() < 0.5)
    text = str(badge) if use_badge else (f"${product.price:,.0f}" if product.price is not None and product.price >= 100
                                         else f"${product.price:,.2f}" if product.price is not None else "")
    if not text:
        return {}
    ink = _ink(colour)
    if use_badge:  # a ribbon with forked ends
        h = room.h * 0.62
        fs = h * 0.5
        fnt = sh.font("sans-bold", fs)
        while fs > 8 and sh.text_w(text, fnt) > room.w * 0.7:
            fs *= 0.92
            fnt = sh.font("sans-bold", fs)
        w = min(room.w, sh.text_w(text, fnt) + h * 1.4)
        x0, y0 = room.x0 + (room.w - w) / 2, room.y0 + (room.h - h) / 2
        n = h * 0.35
        sh.poly([(x0, y0), (x0 + w, y0), (x0 + w - n, y0 + h / 2), (x0 + w, y0 + h), (x0, y0 + h), (x0 + n, y0 + h / 2)],
                colour)
        sh.text((x0 + (w - sh.text_w(text, fnt)) / 2, y0 + (h - fs * 1.15) / 2), text, fnt, ink)
        return {"badge": Box(int(x0), int(y0), math.ceil(x0 + w), math.ceil(y0 + h))}
    r = min(room.w, room.h) / 2 * 0.96  # a burst: a star with many shallow points
    cx, cy = room.x0 + room.w / 2, room.y0 + room.h / 2
    n = int(rng.integers(12, 20))
    pts = [(cx + (r if k % 2 == 0 else r * 0.84) * math.cos(np.pi * k / n),
            cy + (r if k % 2 == 0 else r * 0.84) * math.sin(np.pi * k / n)) for k in range(2 * n)]
    sh.poly(pts, colour)
    fs = r * 0.55
    fnt = sh.font("sans-bold", fs)
    while fs > 8 and sh.text_w(text, fnt) > 1.45 * r:
        fs *= 0.92
        fnt = sh.font("sans-bold", fs)
    sh.text((cx - sh.text_w(text, fnt) / 2, cy - fs * 0.6), text, fnt, ink)
    return {"price": Box(int(cx - r), int(cy - r), math.ceil(cx + r) + 1, math.ceil(cy + r) + 1)}


# -- the product's shadow and damage ---------------------------------------------------------------------------
def _aa_poly(W: int, H: int, polys: list[np.ndarray]) -> np.ndarray:
    """Coverage (0..1) of filled polygons rasterised at SS× and box-filtered down."""
    im, d = _mask_sheet(W, H)
    for p in polys:
        d.polygon([(float(x) * SS, float(y) * SS) for x, y in p], fill=255)
    return _coverage(im)


def _star(cx: float, cy: float, r: float, n: int, inner: float, rot: float) -> np.ndarray:
    return np.array([(cx + (r if k % 2 == 0 else r * inner) * math.cos(rot + np.pi * k / n),
                      cy + (r if k % 2 == 0 else r * inner) * math.sin(rot + np.pi * k / n)) for k in range(2 * n)])


def _posterise(ref: np.ndarray, s: float) -> np.ndarray:
    """A source flattened to a few colour levels (a badly exported vector): smooth detail becomes bands."""
    levels = 4 if s < 0.4 else 3 if s < 0.75 else 2
    step = 255.0 / (levels - 1)
    out = ref.copy()
    rgb = ref[..., :3].astype(np.float32)
    out[..., :3] = np.clip(np.round(rgb / step) * step, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


# -- the renderer ------------------------------------------------------------------------------------------------
class Poster(SceneRenderer):
    """Renderer family ``poster``: flat graphic-design banners (see the module docstring)."""

    name = "poster"
    version = VERSION

    @register_to_config
    def __init__(self, scale: float = 1.0, text_rate: float = 0.65, prop_rate: float = 0.5) -> None:
        if not scale > 0:
            raise InputError(f"poster: scale must be positive, got {scale}")
        if not (0.0 <= text_rate <= 1.0 and 0.0 <= prop_rate <= 1.0):
            raise InputError(f"poster: text_rate and prop_rate are shares in [0, 1], got {text_rate} and {prop_rate}")
        self.scale = scale
        self.text_rate = text_rate
        self.prop_rate = prop_rate
        self.config: dict[str, Any]

    def generate_one(self, product: Product, *, seed: int, aspect: str, defect: str | None = None,
                     severity: float = 0.5) -> GeneratedImage:
        if aspect not in ASPECTS:
            raise InputError(f"unknown aspect {aspect!r}; choose from {', '.join(ASPECTS)}")
        rng = np.random.default_rng(seed)
        W, H = canvas_size(aspect, self.scale)
        cut = placeable_cutout(product)
        col = _Colours(cut)
        cm = real_height_cm(product)
        want = defect if defect not in (None, "available") else None
        kind = _DEFECT_KINDS[want][int(rng.integers(len(_DEFECT_KINDS[want])))] if want else "clean"
        s = float(severity)
        light = float(rng.choice([-1.0, 1.0]))  # -1: light from the left
        u = min(W, H)

        # -- copy zone, free area -------------------------------------------------------------------------
        m = max(4, int(0.045 * u))
        free = Box(m, m, W - m, H - m)
        zone: Box | None = None
        tag_room: Box | None = None
        if rng.random() < self.text_rate and kind not in ("giant",):
            if W > 1.3 * H:
                cw = int(W * rng.uniform(0.3, 0.38))
                if rng.random() < 0.5:
                    zone, free = Box(m, int(H * 0.16), m + cw, int(H * 0.62)), Box(m + cw + m, m, W - m, H - m)
                else:
                    zone, free = Box(W - m - cw, int(H * 0.16), W - m, int(H * 0.62)), Box(m, m, W - 2 * m - cw, H - m)
            else:
                zh = int(H * rng.uniform(0.14, 0.2))
                zone, free = Box(m, m, W - m, m + zh), Box(m, m + zh + m // 2, W - m, H - m)
            if rng.random() < 0.6:
                th = int(u * rng.uniform(0.16, 0.22))
                if zone.h > zone.w:  # a column: the tag under the copy
                    tag_room = Box(zone.x0, zone.y1 + m // 2, min(zone.x1, zone.x0 + int(th * 1.6)),
                                   min(H - m, zone.y1 + m // 2 + th))
                else:  # a band: the tag at its right end
                    tw = int(min(zone.h, th) * 1.6)
                    tag_room = Box(zone.x1 - tw, zone.y0, zone.x1, zone.y0 + min(th, zone.h))
                    zone = Box(zone.x0, zone.y0, zone.x1 - tw - m, zone.y1)

        # -- the product's size -----------------------------------------------------------------------------
        asp = cut.shape[1] / cut.shape[0]
        long = min(free.w, free.h) * float(rng.uniform(0.5, 0.75))
        ph = long if asp <= 1 else long / asp
        ph = min(ph, 0.62 * free.h, 0.62 * free.w / asp)
        if max(ph, ph * asp) < 0.32 * u:
            ph = min(0.32 * u / max(1.0, asp), 0.7 * free.h)
        r = 1.0  # how much larger the product is drawn than its props' scale allows
        if kind == "toy":
            r = 1 / (1.95 + 2.0 * s)
            # small enough that its smallest props (8 cm) at their true scale still fit beside it
            ph = min(ph * float(rng.uniform(0.3, 0.45)), float(rng.uniform(0.26, 0.38)) * u * cm / (8.0 / r))
        elif kind == "giant":
            r = 1.95 + 2.0 * s
            ph = min(0.72 * free.h, 0.55 * free.w / asp)
        elif kind == "speck":
            ph = (0.115 - 0.065 * s) * u / max(1.0, asp)
        grow_up = 0.0
        grow_down = 0.0
        if kind == "stand":
            grow_down = 0.22 + 0.3 * s
        elif kind == "extension" and asp < 1.6:
            grow_up = 0.15 + 0.3 * s
        elif kind == "perch":
            grow_down = 0.18 + 0.1 * s
        if grow_up or grow_down:
            ph = min(ph, 0.8 * free.h / (1 + grow_up + grow_down + 0.15))
        if kind == "edge-cut":
            ph = min(0.62 * free.h, max(ph, 0.5 * W / asp))
        ph = max(6.0, ph)
        pw = max(6, round(ph * asp))
        if kind != "edge-cut":
            pw = min(pw, max(6, int(0.9 * free.w)))
        ph_i = max(6, round(ph))
        fp = footprint(cut, pw, ph_i)
        ref, a_ref, base_off, top_off, f0, f1 = fp.ref, fp.opaque, fp.base_off, fp.top_off, fp.f0, fp.f1
        hh, fw = fp.hh, f1 - f0

        # -- stage choice and the contact row ----------------------------------------------------------------
        if kind == "off-edge":
            options: tuple[str, ...] = ("podium", "block", "shelf")
        elif kind in ("edge-cut", "speck"):
            options = ("floor",) if kind == "edge-cut" else ("podium", "floor", "block")
        elif kind == "sunk":
            options = ("podium", "two-tier", "block", "floor")
        elif kind == "giant":  # a surface running across the banner, the small props beside it on the same line
            options = ("floor", "shelf")
        else:
            options = STAGES
        stage_kind = options[int(rng.integers(len(options)))]
        k_stage = {"podium": 0.34, "two-tier": 0.42, "block": 0.3, "shelf": 0.12, "floor": 0.12}[stage_kind]
        stage_h = max(10.0, min(free.h * 0.3, ph_i * k_stage * float(rng.uniform(0.8, 1.3))))
        if kind == "speck":
            stage_h = free.h * float(rng.uniform(0.2, 0.3))
        lift = 0
        sink = 0
        if kind == "float":
            lift = int(ph_i * (0.07 + 0.3 * s)) + 4
        elif kind == "sunk":
            sink = int(ph_i * (0.07 + 0.22 * s)) + 4
        pre = ph_i * (grow_up + grow_down) + lift
        lo = free.y0 + base_off + pre + 2
        hi = free.y1 - stage_h
        if kind == "sunk":
            hi = min(hi, H - sink - 4)
        lo = min(lo, hi)
        vc = round(lo + (hi - lo) * float(rng.uniform(0.35, 1.0)))

        # -- horizontal placement --------------------------------------------------------------------------
        if kind == "edge-cut":  # past a side of the banner (away from a copy column), or past its top
            share = 0.045 + 0.3 * s  # of the product's area beyond the edge: 0.2 lands just past the threshold
            left = rng.random() < 0.5
            if zone is not None and zone.h > zone.w:
                left = zone.x0 > W / 2

            def depth(counts: np.ndarray) -> int:  # how many rows or columns hold that share of the area
                return int(np.searchsorted(np.cumsum(counts), share * float(counts.sum()))) + 1

            per_col = a_ref.sum(axis=0)
            x0 = -depth(per_col) if left else W - pw + depth(per_col[::-1])
            if (zone is None or zone.h > zone.w) and rng.random() < 0.3:
                x0 = round(free.x0 + max(0, free.w - pw) * float(rng.uniform(0.2, 0.8)))
                vc = min(vc, base_off - depth(a_ref.sum(axis=1)))
        else:
            # an indistinct set reaches well past both sides of the product (a surface, not a grown part)
            inset = min(0.35 * pw, max(0.0, (free.w - pw) / 2)) if kind not in ("toy", "giant") else 0.0
            side_room = max(0.0, free.w - pw - 2 * inset)
            x0 = round(free.x0 + inset + side_room * float(rng.uniform(0.15, 0.85)))
        ufoot = x0 + (f0 + f1) / 2
        y0 = vc - base_off - lift + sink - round(ph_i * grow_down)
        box = (x0, y0, x0 + pw, y0 + ph_i)
        keep = (box[0] - 0.12 * pw - 6, box[1] - 0.12 * ph_i - 6, box[2] + 0.12 * pw + 6, box[3] + 0.12 * ph_i + 6)

        # -- colours -----------------------------------------------------------------------------------------------
        pal = _design_palette(rng, col)
        field_kind = FIELDS[int(rng.integers(len(FIELDS)))]
        c1, c2, stage_c = pal.field, pal.field2, pal.stage
        accents = pal.accents
        indistinct = kind in ("own-field", "own-pattern", "colour-block")
        if indistinct:  # aimed at the median of the band just inside its outline, as placed (what the rule compares)
            rim_med = rim_median(ref, a_ref, max(ph_i, pw))
            d = rng.normal(0, 1, 3)
            target = _to_rgb(rim_med + d / (np.linalg.norm(d) + 1e-6) * (8.5 - 7.0 * s))  # ΔE 7 at 0.2, 1.5 at 1
            if kind == "own-field":
                c1 = target
                c2 = _to_rgb(rim_med + np.array([4.0 - 3 * s, 0, 0], np.float32))
                field_kind = ("solid", "linear", "radial")[int(rng.integers(3))]
                stage_c = _to_rgb(rim_med + np.array([3.0, 1.0, -1.0], np.float32) * (1.2 - s))
            elif kind == "own-pattern":
                c1 = c2 = target
                field_kind = "solid"
                stage_c = _to_rgb(rim_med + np.array([2.0, 0, 0], np.float32))
                accents = [c for c in col.palette_rgb if float(np.linalg.norm(lab(c) - rim_med)) > 6] or [target]
            else:  # colour-block: the banner contrasts, a big disc of the product's colour sits right behind it
                stage_c = _to_rgb(rim_med + np.array([-2.0, 1.0, 0], np.float32))

        # -- paint the field, the décor, the stage, props ---------------------------------------------------------
        centre = (ufoot, vc - ph_i * 0.5)
        sh = _Sheet(_field(rng, field_kind, W, H, c1, c2, centre))
        keepouts: list[tuple[float, float, float, float]] = [keep]
        keepouts += [(b.x0 - 4, b.y0 - 4, b.x1 + 4, b.y1 + 4) for b in (zone, tag_room) if b is not None]
        decor = [DECOR[int(i)] for i in rng.permutation(len(DECOR))[: int(rng.integers(1, 3))]]
        if kind == "own-pattern":  # a busy pattern of its own colours right around it
            self._own_pattern(rng, sh, accents, s)
            decor = []
        if kind == "colour-block":
            rad = max(pw, ph_i) * float(rng.uniform(0.75, 0.95))
            cy = y0 + base_off - hh / 2
            sh.ellipse((ufoot - rad, cy - rad, ufoot + rad, cy + rad * 1.2), target)
        if not indistinct or kind != "own-pattern":
            for dk in decor:
                _decor(rng, sh, dk, accents, keepouts)
        if stage_kind in ("floor", "podium", "two-tier") and rng.random() < 0.6:  # a floor band under a horizon
            hz = vc + (stage_h * 0.6 if stage_kind == "floor" else stage_h * float(rng.uniform(0.3, 0.8)))
            hz = min(hz, H - 4) if stage_kind != "floor" else vc - max(4, ph_i * 0.08)
            floor_c = stage_c * 0.92 if indistinct else c2 * 0.9
            sh.rect((0, hz, W, H), floor_c)
            if not indistinct:
                sh.rect((0, hz, W, hz + max(1.0, u * 0.006)), np.minimum(floor_c * 1.15 + 10, 255))
        elif stage_kind == "floor":
            sh.rect((0, vc - max(4, ph_i * 0.08), W, H), stage_c * 0.92 if indistinct else c2 * 0.9)
        stage = self._stage(rng, sh, stage_kind, kind, ufoot, fw, pw, vc, stage_h, stage_c, light, s, W, H, x0 + f0,
                            x0 + f1, free)
        perch_sup: Support | None = None
        if kind == "perch":  # a décor ball or cone on the stage, the product balanced on its tip
            dia = max(1.0, fw * (0.12 + 0.2 * (1 - s)))  # the tip it touches: a fraction of its foot, however narrow
            hgt = vc - (y0 + base_off)
            pc = _choose([np.asarray(c, np.float32) for c in _PROP_COLOURS],
                         lambda c: col.standoff(c) >= 30 and col.own_de(c) > 18, col.standoff)
            if rng.random() < 0.5:
                sh.ellipse((ufoot - hgt / 2, vc - hgt, ufoot + hgt / 2, vc), pc, 50)
                sh.ellipse((ufoot - hgt * 0.3, vc - hgt * 0.8, ufoot - hgt * 0.05, vc - hgt * 0.55),
                           np.minimum(pc * 1.2 + 20, 255))
                tip_w = dia
            else:
                sh.poly([(ufoot - hgt * 0.45, vc), (ufoot + hgt * 0.45, vc), (ufoot, vc - hgt)], pc, 50)
                tip_w = dia * 0.6
            perch_sup = Support(int(y0 + base_off), math.floor(ufoot - tip_w / 2), max(math.floor(ufoot - tip_w / 2) + 1,
                                round(ufoot + tip_w / 2)), "decor")

        props: list[Prop] = []
        k_px = ph_i / cm * (1.0 / r)  # px per cm of the props
        want_props = int(rng.integers(1, 3)) if rng.random() < self.prop_rate else 0
        if kind in ("toy", "giant"):
            want_props = 2
        if kind == "speck" or indistinct:
            want_props = 0
        taken = [keep] + [(b.x0, b.y0, b.x1, b.y1) for b in (zone, tag_room) if b is not None]
        pool = [pk for pk, (pcm, _, cue) in PROPS.items() if 12 <= pcm * k_px <= 0.85 * (stage.bottom - m)
                and (cue or kind not in ("toy", "giant"))]
        if kind in ("toy", "giant"):
            pool = [pk for pk in pool if PROPS[pk][2]]
        rng.shuffle(pool)
        first_side = 1.0 if rng.random() < 0.5 else -1.0
        for pk in list(pool):
            if len(props) >= want_props:
                break
            pcm, pasp, cue = PROPS[pk]
            ph_p = pcm * k_px
            pw_p = ph_p * pasp
            wide_top = stage.x1 - stage.x0 > pw + 2.6 * pw_p and stage_kind in ("block", "shelf", "floor")
            spots = []  # beside the product on the stage top when it is wide, else beside the stage on its ground
            for side in (first_side, -first_side):
                for gap in sorted(rng.uniform(0.05, 0.45, 3)):
                    if wide_top:
                        spots.append((ufoot + side * (pw / 2 + pw_p / 2 + pw * gap + 3), float(stage.top_y), True))
                    reach = max(pw / 2, (stage.box[2] - stage.box[0]) / 2)
                    spots.append((ufoot + side * (reach + pw_p / 2 + pw * gap + 3), stage.bottom, False))
            for cx, base, on_stage in spots:  # noqa: B007 (on_stage is used after the loop)
                pb = (cx - pw_p / 2, base - ph_p, cx + pw_p / 2, base)
                if pb[0] >= 1 and pb[2] <= W - 1 and pb[1] >= 1 and base <= H - 1 and \
                        not any(_overlaps(pb, t) for t in taken):
                    break
            else:
                continue
            first_side = -first_side  # the next prop on the other side first
            pc = _choose([np.asarray(_PROP_COLOURS[int(i)], np.float32) for i in rng.permutation(len(_PROP_COLOURS))],
                         lambda c: col.standoff(c) >= 28, col.standoff)
            oid = 10 + len(props)
            sh.ellipse((cx - pw_p * 0.55, base - ph_p * 0.04, cx + pw_p * 0.55, base + ph_p * 0.04),
                       (stage_c if on_stage else c2) * 0.75)
            pbox = _prop(sh, pk, cx, base, ph_p, pc, oid, light)
            taken.append(pbox)
            props.append(Prop(tuple(round(v) for v in pbox), pcm, pk, cue))  # type: ignore[arg-type]

        # -- copy and the price tag, drawn with the set --------------------------------------------------------
        boxes: dict[str, Box] = {}
        if zone is not None:
            block = accents[int(rng.integers(len(accents)))] if rng.random() < 0.4 else None
            boxes.update(_copy(sh, rng, zone, product, c1 if field_kind != "split" else c1 * 0.5 + c2 * 0.5, block))
        if tag_room is not None:
            boxes.update(_price_tag(sh, rng, product, tag_room, accents[int(rng.integers(len(accents)))]))
        plate, objects = sh.finish()

        # -- flat shadows on the stage ------------------------------------------------------------------------------
        shadow_at: tuple[float, float] | None = (ufoot, float(stage.top_y))
        strength = 0.12 if indistinct else float(rng.uniform(0.22, 0.38))
        sx = ufoot
        if kind == "wrong-shadow":  # thrown towards the light, its root away from the base
            off = (0.45 + 0.8 * s) * hh
            toward = light if 0.04 * W < ufoot + light * off < 0.96 * W else -light  # kept on the banner
            sx = ufoot + toward * off
            shadow_at = (sx, float(stage.top_y))
        elif kind in ("perch", "off-edge", "stand"):
            shadow_at = None
        if kind not in ("perch", "off-edge"):
            cim, cd = _mask_sheet(W, H)
            ew, eh = fw * float(rng.uniform(0.55, 0.7)), max(1.5, fw * 0.06)
            cd.ellipse(((sx - ew) * SS, (stage.top_y - eh) * SS, (sx + ew) * SS, (stage.top_y + eh) * SS), fill=255)
            cast_style = ("none", "drop", "cast")[int(rng.integers(3))] if not indistinct else "none"
            caster = (ref[..., 3] >= 128).astype(np.float32)
            if cast_style == "cast":  # the silhouette flattened onto the stage, thrown away from the light
                sq = float(rng.uniform(0.12, 0.25))
                shear = -light * float(rng.uniform(0.6, 1.3))
                if kind == "wrong-shadow":
                    shear = -shear
                bx, by = sx - ufoot + x0, stage.top_y
                M = np.array([[1, -shear * sq, bx + shear * sq * base_off], [0, -sq, by + sq * base_off]], np.float32)
                flat = cv2.warpAffine(caster, M, (W, H), flags=cv2.INTER_LINEAR)
                cim_np = np.maximum(_coverage(cim), (flat > 0.5).astype(np.float32))
            elif cast_style == "drop" and kind in ("clean", "wrong-shadow"):
                dx = -light * max(2.0, 0.035 * hh) * (-1 if kind == "wrong-shadow" else 1)
                M = np.array([[1, 0, x0 + dx], [0, 1, y0 + max(2.0, 0.02 * hh)]], np.float32)
                drop = cv2.warpAffine(caster, M, (W, H), flags=cv2.INTER_LINEAR)
                cim_np = np.maximum(_coverage(cim), drop * 0.8)
            else:
                cim_np = _coverage(cim)
            plate *= (1 - strength * cim_np)[..., None]

        # -- grown parts in the product's own colours --------------------------------------------------------------
        grow_support: Support | None = None
        if kind in ("extension", "stand", "echo", "sticker"):
            cov, rgb, grow_support = self._grow(rng, kind, ref, col, x0, y0, base_off, top_off, f0, f1, stage.top_y,
                                                s, light, W, H)
            plate = plate * (1 - cov[..., None]) + rgb * cov[..., None]
            objects[cov > 0.5] = 100

        # -- the product, and damage ---------------------------------------------------------------------------------
        canvas = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
        back = canvas.copy()
        shown, source = ref, None
        if kind == "posterise":
            shown = _posterise(ref, s)
            source = source_image(shown)
        visible = paste(canvas, shown, x0, y0)
        placement = None
        if kind in ("punched", "band-cut", "halftone-wipe"):
            placement = visible.copy()
            hit = self._damage(rng, kind, ref, canvas, back, x0, y0, s, col, accents, pal.stage)
            visible &= ~hit
        elif kind == "sunk":  # the stage's front drawn over the product below the contact row
            hide = np.zeros((H, W), bool)
            hide[stage.top_y + 1 :, max(0, x0 - 2) : min(W, x0 + pw + 2)] = True
            lip = np.zeros((H, W), np.float32)
            cv2.ellipse(lip, (int(ufoot), int(stage.top_y)), (max(2, int(fw * 0.56)), max(1, int(hh * 0.02))), 0, 0,
                        360, 1.0, -1)
            dark = np.clip(back.astype(np.float32) * (1 - 0.25 * lip[..., None]) + 0.5, 0, 255).astype(np.uint8)
            canvas[hide] = dark[hide]
            visible &= ~hide

        # -- the labeller -----------------------------------------------------------------------------------------------
        support = Support(stage.top_y, round(stage.x0), round(stage.x1), stage.kind)
        if perch_sup is not None:
            support = perch_sup
        if grow_support is not None:
            support = grow_support
        rep = SceneReport(box=box, reference=ref, product_cm=cm, support=support, props=props, objects=objects,
                          shadow=shadow_at, palette=col.palette)
        labelled = label_render(canvas, visible, rep, defect)
        params = {"field": field_kind, "stage": stage_kind, "decor": decor, "scheme": pal.scheme, "kind": kind,
                  "severity": s if want else 0.0, "requested": defect, "product_box": list(box),
                  "px_per_cm": round(float(ph_i / cm), 4), "light": "left" if light < 0 else "right",
                  "copy": "none" if zone is None else ("column" if zone.h > zone.w else "band"), **labelled}
        return self.result(canvas, visible, boxes=boxes, params=params, seed=seed, aspect=aspect, source=source,
                           placement=placement)

    # -- the stage ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _stage(rng: np.random.Generator, sh: _Sheet, stage_kind: str, kind: str, ufoot: float, fw: int, pw: int,
               vc: int, stage_h: float, c: np.ndarray, light: float, s: float, W: int, H: int, fx0: float, fx1: float,
               free: Box) -> _Stage:
        """Draw the stage whose top holds the product's foot at row ``vc``; ``off-edge`` ends it under the foot."""
        wide = float(rng.uniform(1.7, 2.4))
        half = max(pw * wide / 2, fw * 0.9) + 3
        if kind == "off-edge":  # its edge under the foot, the foot's centre past it
            side = 1.0 if ufoot > W / 2 else -1.0
            edge = ufoot - side * (0.06 + 0.36 * s) * fw
            if side > 0:
                sx0, sx1 = edge - 2 * half, edge
            else:
                sx0, sx1 = edge, edge + 2 * half
        else:
            sx0, sx1 = ufoot - half, ufoot + half
        if stage_kind in ("podium", "two-tier"):
            rx = (sx1 - sx0) / 2
            cx = (sx0 + sx1) / 2
            ry = max(3.0, min(rx * float(rng.uniform(0.16, 0.26)), stage_h * 0.45))
            hs = max(4.0, stage_h - ry)
            if stage_kind == "two-tier":  # a lower, wider drum under the upper one
                hs2 = hs * 0.5
                hs = hs * 0.5
                rx2 = rx * 1.35
                _podium(sh, cx, vc + hs + ry * 0.15, rx2, ry * 1.35, hs2, c * 0.93, light, 1)
            _podium(sh, cx, vc, rx, ry, hs, c, light, 1)
            x_at = rx  # the top ellipse's full width at its centre row
            bottom = vc + stage_h + (ry * 1.35 * 0.5 if stage_kind == "two-tier" else ry)
            return _Stage(stage_kind, vc, cx - x_at, cx + x_at, min(float(H - 2), bottom),
                          (cx - rx * (1.35 if stage_kind == "two-tier" else 1), vc - ry, cx + rx, bottom))
        if stage_kind == "block":
            depth = max(3.0, min(stage_h * 0.35, (sx1 - sx0) * 0.12))
            y_top = vc + depth / 2  # the product stands mid-way across the top face
            _block(sh, sx0, sx1, y_top, depth, vc + stage_h, c, light, 1)
            dx = depth * (1.0 if light < 0 else -1.0) * 0.8
            return _Stage("block", vc, sx0 + dx / 2, sx1 + dx / 2, min(float(H - 2), vc + stage_h),
                          (min(sx0, sx0 + dx), vc - depth, max(sx1, sx1 + dx), vc + stage_h))
        if stage_kind == "shelf":
            if kind == "giant" or (kind != "off-edge" and rng.random() < 0.5):
                sx0, sx1 = -5.0, W + 5.0  # a shelf running across the banner
            t = max(4.0, stage_h * 0.3)
            sh.rect((sx0, vc, sx1, vc + t), c * 0.86, 1)
            sh.rect((sx0, vc, sx1, vc + max(1.5, t * 0.3)), c, 1)
            for bx in (sx0 + (sx1 - sx0) * 0.18, sx1 - (sx1 - sx0) * 0.18):
                if 0 < bx < W:
                    sh.poly([(bx - t * 0.4, vc + t), (bx + t * 0.4, vc + t), (bx + t * 0.4, vc + t + stage_h * 0.8),
                             (bx - t * 0.4, vc + t + t * 0.6)], c * 0.7, 2)
            return _Stage("shelf", vc, sx0, sx1, min(float(H - 2), vc + t), (sx0, vc, sx1, vc + t + stage_h * 0.8))
        return _Stage("floor", vc, -float(W), 2.0 * W, float(vc), (0.0, float(vc), float(W), float(H)))

    @staticmethod
    def _own_pattern(rng: np.random.Generator, sh: _Sheet, colours: list[np.ndarray], s: float) -> None:
        """A busy pattern of the product's own colours over a field of its rim colour (camouflage)."""
        W, H = sh.W, sh.H
        u = min(W, H)
        kind = int(rng.integers(3))
        step = u * float(rng.uniform(0.04, 0.07))
        cover = 0.28 + 0.15 * (1 - s)
        if kind == 0:  # diagonal stripes
            for i in range(-int(H / step) - 2, int(W / step) + 2):
                a = i * step
                c = colours[i % len(colours)]
                sh.poly([(a, H), (a + step * cover, H), (a + step * cover + H, 0), (a + H, 0)], c)
        elif kind == 1:  # a dot grid
            rr = step * math.sqrt(cover / math.pi)
            for j, gy in enumerate(np.arange(step / 2, H + step, step)):
                for i, gx in enumerate(np.arange(step / 2 + (step / 2 if j % 2 else 0), W + step, step)):
                    sh.ellipse((gx - rr, gy - rr, gx + rr, gy + rr), colours[(i + j) % len(colours)])
        else:  # confetti shapes
            n = int(W * H * cover / (step * step * 0.5))
            for _ in range(n):
                cx, cy = float(rng.uniform(0, W)), float(rng.uniform(0, H))
                rr = step * float(rng.uniform(0.2, 0.45))
                ang = float(rng.uniform(0, np.pi))
                pts = [(cx + rr * math.cos(ang + 2 * np.pi * k / 3), cy + rr * math.sin(ang + 2 * np.pi * k / 3))
                       for k in range(3)]
                sh.poly(pts, colours[int(rng.integers(len(colours)))])

    # -- shapes grown out of the product, damage to it ----------------------------------------------------------------
    @staticmethod
    def _grow(rng: np.random.Generator, kind: str, ref: np.ndarray, col: _Colours, x0: int, y0: int, base_off: int,
              top_off: int, f0: int, f1: int, top_y: int, s: float, light: float, W: int, H: int
              ) -> tuple[np.ndarray, np.ndarray, Support | None]:
        """Flat shapes in the product's own colours continuing its silhouette: coverage, colour, and the support
        the product now stands on (a stand)."""
        ph, pw = ref.shape[:2]
        a = ref[..., 3] >= OPAQUE
        hh = base_off - top_off + 1
        cov = np.zeros((H, W), np.float32)
        rgb = np.zeros((H, W, 3), np.float32)
        sup = None
        band = max(2, hh // 20)
        if kind == "stand":  # a collar under the foot, a stem, a foot plate: all in its base colour
            rows = ref[base_off - band + 1 : base_off + 1]
            on = rows[..., 3] >= OPAQUE
            colour = col.nearest_own(np.median(rows[..., :3][on], axis=0))
            cx = x0 + (f0 + f1) / 2
            fw = f1 - f0
            top = y0 + base_off + 1
            # a cradle wider than the foot rising round its base (behind it), a stem, a foot plate
            half = max(fw / 2, 0.3 * pw) + 3
            rise = max(4.0, 0.07 * hh)
            stem = max(4.0, 2 * half * float(rng.uniform(0.16, 0.3)))
            polys = [np.array([(cx - half, top - rise), (cx + half, top - rise), (cx + half, top),
                               (cx + stem / 2, top + (top_y - top) * 0.3),
                               (cx - stem / 2, top + (top_y - top) * 0.3), (cx - half, top)]),
                     np.array([(cx - stem / 2, top), (cx + stem / 2, top), (cx + stem / 2, top_y), (cx - stem / 2, top_y)]),
                     np.array([(cx - half * 0.76, top_y - max(2.0, hh * 0.04)), (cx + half * 0.76, top_y - max(2.0, hh * 0.04)),
                               (cx + half * 0.9, top_y), (cx - half * 0.9, top_y)])]
            cov = _aa_poly(W, H, polys)
            rgb[:] = colour
            sup = Support(y0 + base_off, x0 + f0, x0 + f1, "stand")
        elif kind == "extension":  # the silhouette continued past its top (or side) by a flat shape of its colour
            if ph * 1.0 / max(pw, 1) > 0.62 and y0 - 0.05 * ph > 2:
                rows_ = a[top_off : top_off + band + 2]
                xs = np.nonzero(rows_.any(axis=0))[0]
                ex0, ex1 = x0 + float(xs.min()), x0 + float(xs.max()) + 1
                if ex1 - ex0 < 0.25 * pw:  # a narrow top (a cap): widen to look like a grown neck
                    mid = (ex0 + ex1) / 2
                    ex0, ex1 = mid - 0.15 * pw, mid + 0.15 * pw
                e = (0.15 + 0.3 * s) * hh
                ytop = y0 + top_off + band
                poly = [np.array([(ex0, ytop), (ex1, ytop), (ex1 - (ex1 - ex0) * 0.1, ytop - e), (ex0 + (ex1 - ex0) * 0.1,
                                                                                                 ytop - e)])]
                colour = col.nearest_own(np.median(ref[top_off : top_off + band + 2][..., :3][rows_], axis=0))
            else:
                side = 1 if light > 0 else -1
                rr = np.nonzero(a.any(axis=1))[0]
                mid_rows = rr[len(rr) // 3 : 2 * len(rr) // 3]
                cols_ = np.nonzero(a[mid_rows].any(axis=0))[0]
                edge = x0 + (float(cols_.max()) + 1 if side > 0 else float(cols_.min()))
                e = (0.15 + 0.3 * s) * pw * side
                yt, yb = y0 + float(mid_rows.min()), y0 + float(mid_rows.max())
                inset = 0.08 * pw * side
                poly = [np.array([(edge - inset, yt), (edge + e, yt + (yb - yt) * 0.15), (edge + e, yb - (yb - yt) * 0.15),
                                  (edge - inset, yb)])]
                xi = int(np.clip(edge - x0 - 2 * side, 0, pw - 1))
                colcol = ref[mid_rows, xi]
                colour = col.nearest_own(np.median(colcol[colcol[:, 3] >= OPAQUE][:, :3], axis=0)
                                         if (colcol[:, 3] >= OPAQUE).any() else col.body)
            cov = _aa_poly(W, H, poly)
            rgb[:] = colour
        elif kind == "echo":  # its silhouette repeated behind it, offset, flat in its main colour
            colour = col.nearest_own(col.body)
            d = (0.05 + 0.1 * s) * max(hh, pw)
            dx = -light * d
            dy = -d * float(rng.uniform(0.2, 0.6))
            sil = (ref[..., 3].astype(np.float32) / 255.0)
            M = np.array([[1, 0, x0 + dx], [0, 1, y0 + dy]], np.float32)
            cov = np.asarray(cv2.warpAffine(sil, M, (W, H), flags=cv2.INTER_LINEAR), np.float32)
            rgb[:] = colour
        else:  # sticker: a burst or disc of its colour fused onto its side
            side = 1 if rng.random() < 0.5 else -1
            rr = np.nonzero(a.any(axis=1))[0]
            row = int(rr[int(len(rr) * float(rng.uniform(0.25, 0.6)))])
            cs = np.nonzero(a[row])[0]
            ex = x0 + (float(cs.max()) if side > 0 else float(cs.min()))
            rad = (0.16 + 0.14 * s) * max(hh, pw) * 0.6
            cx, cy = ex + side * rad * 0.45, y0 + row
            colour = col.nearest_own(ref[row, int(cs.max() if side > 0 else cs.min()), :3].astype(np.float32))
            if rng.random() < 0.5:
                poly = [_star(cx, cy, rad, int(rng.integers(8, 14)), 0.78, float(rng.uniform(0, 1)))]
            else:
                poly = [np.array(_ellipse_pts(cx, cy, rad, rad, 0, 2 * np.pi, 48))]
            cov = _aa_poly(W, H, poly)
            rgb[:] = colour
        return cov, rgb, sup

    @staticmethod
    def _damage(rng: np.random.Generator, kind: str, ref: np.ndarray, canvas: np.ndarray, back: np.ndarray, x0: int,
                y0: int, s: float, col: _Colours, accents: list[np.ndarray], stage_c: np.ndarray) -> np.ndarray:
        """Damage drawn over the pasted product (in place): flat shapes punched through it, a décor band across
        it, or a halftone wipe; returns the canvas pixels where its own pixels no longer show."""
        H, W = canvas.shape[:2]
        ph, pw = ref.shape[:2]
        a = (ref[..., 3] >= OPAQUE).astype(np.uint8)
        area = int(a.sum())
        if kind == "punched":
            n = int(rng.integers(1, 4))
            rad = max(3.0, math.sqrt(area * (0.04 + 0.2 * s) / (math.pi * n)))
            dist = cv2.distanceTransform(a, cv2.DIST_L2, 3)
            polys = []
            for _ in range(n):
                ok = np.argwhere(dist >= min(rad * 0.9, float(dist.max()) * 0.8))
                if not len(ok):
                    break
                cy, cx = ok[int(rng.integers(len(ok)))]
                shape = int(rng.integers(3))
                if shape == 0:
                    p = np.array(_ellipse_pts(x0 + cx, y0 + cy, rad, rad, 0, 2 * np.pi, 40))
                elif shape == 1:
                    p = _star(x0 + cx, y0 + cy, rad * 1.25, 5, 0.5, float(rng.uniform(0, 1)))
                else:
                    t = float(rng.uniform(0, 1))
                    p = np.array([(x0 + cx + rad * 1.2 * math.cos(t + 2 * np.pi * k / 3),
                                   y0 + cy + rad * 1.2 * math.sin(t + 2 * np.pi * k / 3)) for k in range(3)])
                polys.append(p)
                dist[(np.arange(ph)[:, None] - cy) ** 2 + (np.arange(pw)[None] - cx) ** 2 < (2.2 * rad) ** 2] = 0
            cov = _aa_poly(W, H, polys)
            over = back.astype(np.float32)
        elif kind == "band-cut":  # a décor ribbon laid across the product
            c = _choose([*list(accents), stage_c], lambda c: col.standoff(c) >= 30 and col.own_de(c) > 18,
                        col.standoff)
            ang = math.radians(float(rng.uniform(-35, 35)))
            cy = y0 + ph * float(rng.uniform(0.3, 0.6))
            width = ph * (0.05 + 0.2 * s)
            L = 3.0 * (W + H)
            dxy = np.array([math.cos(ang), math.sin(ang)])
            nrm = np.array([-dxy[1], dxy[0]])
            ctr = np.array([x0 + pw / 2, cy])
            p = np.array([ctr - L * dxy - width / 2 * nrm, ctr + L * dxy - width / 2 * nrm,
                          ctr + L * dxy + width / 2 * nrm, ctr - L * dxy + width / 2 * nrm])
            cov = _aa_poly(W, H, [p])
            edge_c = np.minimum(c * 1.2 + 30, 255)
            inner = _aa_poly(W, H, [np.array([ctr - L * dxy - width * 0.32 * nrm, ctr + L * dxy - width * 0.32 * nrm,
                                              ctr + L * dxy + width * 0.32 * nrm, ctr - L * dxy + width * 0.32 * nrm])])
            over = np.broadcast_to(edge_c, (H, W, 3)) * (1 - inner[..., None]) + c * inner[..., None]
        else:  # halftone-wipe: past a jagged diagonal, the product dissolves into a halftone dot grid
            yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
            ang = float(rng.uniform(0, 2 * np.pi))
            nx, ny = math.cos(ang), math.sin(ang)
            proj = (xx - pw / 2) * nx + (yy - ph / 2) * ny
            along = -(xx - pw / 2) * ny + (yy - ph / 2) * nx
            tooth = max(3.0, 0.06 * max(ph, pw))
            proj = proj + tooth * 0.5 * np.abs(((along / tooth) % 2) - 1)  # a zigzag edge
            vals = np.sort(proj[a > 0])
            thr = float(vals[int(len(vals) * (1 - (0.06 + 0.36 * s)))])
            wipe = (proj > thr) & (a > 0)
            gone = np.zeros((H, W), bool)
            stamp(gone, wipe, x0, y0)
            step = max(3.0, 0.05 * max(ph, pw))
            dots, dd = _mask_sheet(W, H)
            dot_rgb = np.zeros((H, W, 3), np.float32)
            span = max(1e-3, float(proj.max()) - thr)
            for gy in np.arange(step / 2, ph, step):
                for gx in np.arange(step / 2, pw, step):
                    iy, ix = int(gy), int(gx)
                    if not wipe[iy, ix]:
                        continue
                    fade = 1 - (proj[iy, ix] - thr) / span
                    rr = step * 0.5 * (0.35 + 0.6 * fade)
                    X, Y = x0 + gx, y0 + gy
                    dd.ellipse(((X - rr) * SS, (Y - rr) * SS, (X + rr) * SS, (Y + rr) * SS), fill=255)
                    cell = ref[max(0, iy - int(step / 2)) : iy + int(step / 2) + 1, max(0, ix - int(step / 2)) : ix + int(step / 2) + 1]
                    on = cell[..., 3] >= OPAQUE
                    c = cell[..., :3][on].mean(axis=0) if on.any() else ref[iy, ix, :3]
                    y_a, x_a = int(Y - rr - 1), int(X - rr - 1)
                    dot_rgb[max(0, y_a) : int(Y + rr + 2), max(0, x_a) : int(X + rr + 2)] = c
            dcov = _coverage(dots)
            base = back.astype(np.float32)
            out = canvas.astype(np.float32)
            out[gone] = base[gone]
            out = out * (1 - dcov[..., None]) + dot_rgb * dcov[..., None]
            canvas[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
            return gone | (dcov > 0)
        out = canvas.astype(np.float32) * (1 - cov[..., None]) + over * cov[..., None]
        canvas[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return cov > 0
