"""``lowkey``: dark premium product shots (the luxury, tech and perfume look), a renderer family of its own.

A near-black or deep-coloured studio at night: one key light and an accent light in hard colours (amber and
teal, magenta and cyan, warm white, ...). The key throws a pool of light on the wall behind the product (a
flat-topped falloff chosen to stand off the product's rim, so a dark product is backlit rather than lost),
spotlight cones sweep the wall, a pool of light falls on the floor, smoke drifts through in soft bands and the
corners fall away (vignette). The set stands on a reflective dark floor, glossy or wet: everything standing on
it (the support, the props and the product) is mirrored below the floor line, blurred and darkened with distance
and faded out, rippled when the floor is wet. Supports are solids in stone, metal, glass or concrete, each with
its own surface (marble veins, brushed streaks, smoked glass with lit edges, speckled concrete): a box plinth, a
drum, two steps, a low slab, or the bare floor; their top faces are lit, their fronts fall off into the dark and
their edges catch a rim light. Neon tubes and light strips (bars, rings, arcs, a strip along the wall foot) glow
as décor away from the product. Props at real-world scale set the scene's scale (a wine bottle, a wine glass, a
whisky tumbler, a pillar candle, a stack of books, a potted plant, an apple, a lemon; an orb as decoration),
drawn dark with a rim light on the side facing the key. Copy is set in light letter-spaced type with a hairline
rule, a price or badge in a thin outline.

``defect=`` draws one RF1M class its own way (see ``_DEFECT_KINDS``):

* unsuitable: the product past the canvas edge (``edge-cut``), shattered into cells with some missing
  (``shards``), a straight slice of it gone (``sliced``), its tones crushed and smeared (``crushed``), or
  re-encoded from a small, heavily compressed copy (``blocky``); damage drawn into the image comes back as a
  ``placement``, a damaged source as ``source``;
* space_mismatch: hovering over its support (``float``), sunk into it (``sunk``), standing past the support's
  edge in mid-air (``overhang``), or its mirror image and contact shadow thrown away from its base
  (``stray-reflection``);
* size_mismatch: a toy beside real-scale props (``toy``), a giant beside them (``giant``), or a speck in a big
  dark canvas (``lost``);
* indistinctiveness: the pool of light behind it and its support in its own rim colour (``own-glow``), a panel
  of its colour standing behind it (``own-surface``), or the whole set at its colour with no rim light: a dark
  product lost in the darkness, a light one in a haze of its colour (``swallowed``);
* shape_hallucination: a pedestal in its base colour grown under it (``pedestal``), a part of it duplicated and
  fused to its side (``twin``), a prop in its colours merged with it (``fused-prop``), or its base colour
  running down its support (``drip``).

Whatever is drawn, the label comes from :mod:`adcreative.generate.measure`, the labeller every renderer shares,
applied to what was rendered. No drawing code is shared with the compositor, ``photoset``, ``softfocus``,
``perspective`` or ``poster``; like ``poster`` it can be held back as a family no model has seen.
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
from adcreative.core.fonts import typeface
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
SUPPORTS = ("plinth", "drum", "steps", "slab", "floor")
MATERIALS = ("marble", "metal", "glass", "concrete")
NEON = ("bar", "ring", "arc", "strip")
_DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "unsuitable": ("edge-cut", "shards", "sliced", "crushed", "blocky"),
    "space_mismatch": ("float", "sunk", "overhang", "stray-reflection"),
    "size_mismatch": ("toy", "giant", "lost"),
    "indistinctiveness": ("own-glow", "own-surface", "swallowed"),
    "shape_hallucination": ("pedestal", "twin", "fused-prop", "drip"),
}
# props at real-world scale: height (cm), width / height, a recognisable scale cue
PROPS: dict[str, tuple[float, float, bool]] = {
    "wine-bottle": (30.0, 0.27, True), "wine-glass": (21.0, 0.4, True), "tumbler": (9.5, 0.8, True),
    "candle": (12.0, 0.55, True), "books": (7.5, 3.0, True), "plant": (32.0, 0.7, True), "apple": (8.0, 1.0, True),
    "lemon": (6.5, 1.3, True), "orb": (10.0, 1.0, False),
}
# light colours as LCh hues and chromas: key light, accent light
_LIGHTS: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = (
    ((75.0, 45.0), (200.0, 35.0)), ((340.0, 55.0), (230.0, 40.0)), ((80.0, 18.0), (80.0, 10.0)),
    ((30.0, 55.0), (260.0, 40.0)), ((290.0, 45.0), (60.0, 40.0)), ((160.0, 35.0), (300.0, 45.0)),
    ((0.0, 0.0), (230.0, 30.0)),
)
# support materials: sRGB of the lit top face
_MATERIAL_COLOURS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "marble": ((232, 228, 220), (214, 206, 198), (40, 40, 44), (30, 46, 42), (222, 196, 188)),
    "metal": ((158, 162, 168), (200, 164, 96), (82, 84, 90), (180, 116, 84)),
    "glass": ((66, 74, 84), (120, 142, 152), (48, 42, 56)),
    "concrete": ((132, 130, 126), (96, 96, 94), (172, 170, 164)),
}
_PROP_COLOURS: tuple[tuple[int, int, int], ...] = (
    (34, 52, 38), (70, 20, 26), (26, 28, 34), (200, 186, 160), (150, 34, 40), (210, 180, 60), (40, 60, 96),
    (110, 74, 50), (182, 188, 196),
)
_INKS: tuple[tuple[int, int, int], ...] = ((244, 238, 226), (214, 184, 124), (226, 230, 236))


# -- colour --------------------------------------------------------------------------------------------------------
def _lch(L: float, C: float, h: float) -> np.ndarray:
    """sRGB (float 0–255) of a CIE LCh colour."""
    c_lab = np.array([L, C * math.cos(math.radians(h)), C * math.sin(math.radians(h))], np.float32)
    rgb = cv2.cvtColor(c_lab.reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.asarray(np.clip(rgb * 255.0, 0, 255), np.float32)


def _from_lab(c_lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(np.asarray(c_lab, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.asarray(np.clip(rgb * 255.0, 0, 255), np.float32)


class _Tones:
    """What a lighting designer needs of the product: its outline's colours (what light and surfaces around it
    must stand off), its palette (what "in its own colours" means) and its lightness."""

    def __init__(self, cut: np.ndarray) -> None:
        self.rim = rim_samples(cut)
        self.rim_lab = rim_colour(cut)
        self.rim_rgb = _from_lab(self.rim_lab)
        self.palette = product_palette(cut)
        self.own_rgb = [_from_lab(c) for c in self.palette]
        self.L = float(self.rim_lab[0])

    def off(self, rgb: np.ndarray) -> float:
        """ΔE by which a colour stands off the outline: its distance to the main rim colour, or to the closest
        sixth of the rim samples (a little generously), whichever is smaller."""
        c = lab(np.asarray(rgb, np.float32))
        d = np.linalg.norm(self.rim - c, axis=-1)
        return min(float(np.linalg.norm(self.rim_lab - c)), 1.15 * float(np.percentile(d, 16)))

    def own(self, rgb: np.ndarray) -> float:
        return float(nearest_palette_de(np.asarray(rgb, np.float32)[None], self.palette)[0])

    def nearest_own(self, rgb: np.ndarray) -> np.ndarray:
        c = lab(np.asarray(rgb, np.float32))
        return self.own_rgb[int(np.argmin(np.linalg.norm(self.palette - c, axis=-1)))]


def _pick(cands: list[np.ndarray], score: Any, need: float) -> np.ndarray:
    """The first candidate scoring ``need`` or more, else the best-scoring one."""
    best, best_s = cands[0], -1e9
    for c in cands:
        sc = float(score(c))
        if sc >= need:
            return c
        if sc > best_s:
            best, best_s = c, sc
    return best


# -- rasterising: cv2 at 1/16 px, anti-aliased ------------------------------------------------------------------------
def _cov(W: int, H: int, polys: list[np.ndarray]) -> np.ndarray:
    """Coverage (0..1, H×W) of filled polygons, rasterised by OpenCV with anti-aliased edges at 1/16 px."""
    m = np.zeros((H, W), np.uint8)
    pts = [np.round(np.asarray(p, np.float64) * 16).astype(np.int32).reshape(-1, 1, 2) for p in polys if len(p) >= 3]
    if pts:
        cv2.fillPoly(m, pts, 255, lineType=cv2.LINE_AA, shift=4)
    return m.astype(np.float32) / 255.0


def _oval(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 2 * math.pi, n: int = 48
          ) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float64)


def _noise(rng: np.random.Generator, W: int, H: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Smooth value noise in [0, 1] (H×W): random grids upsampled bicubically, summed over octaves."""
    out = np.zeros((H, W), np.float32)
    amp, tot = 1.0, 0.0
    for _ in range(octaves):
        gw, gh = max(2, int(W / cell) + 2), max(2, int(H / cell) + 2)
        g = rng.random((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(g, (W, H), interpolation=cv2.INTER_CUBIC)
        tot += amp
        amp *= 0.5
        cell = max(2.0, cell / 2)
    return np.clip(out / tot, 0, 1)


def _soft(a: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur, taken at a lower resolution where it is wide (a halo, a beam's soft edge)."""
    if sigma <= 6:
        return np.asarray(cv2.GaussianBlur(a, (0, 0), max(0.3, sigma)), np.float32)
    f = sigma / 3.0
    h, w = a.shape[:2]
    small = cv2.resize(a, (max(2, round(w / f)), max(2, round(h / f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)


def _shift(a: np.ndarray, dx: float, dy: float) -> np.ndarray:
    M = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    return np.asarray(cv2.warpAffine(a, M, (a.shape[1], a.shape[0]), flags=cv2.INTER_LINEAR))


def _rim_light(cov: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The edge of a shape facing a light: its coverage less itself shifted towards the light."""
    return np.clip(cov - _shift(cov, dx, dy), 0, 1)


class _Set:
    """The set as it is built: the plate (H×W×3 float, sRGB 0–255), the ids of solid objects (supports 1–3,
    props 10+, grown parts 100), and what stands on the floor as a premultiplied layer for the mirror."""

    def __init__(self, plate: np.ndarray) -> None:
        self.H, self.W = plate.shape[:2]
        self.plate = plate
        self.ids = np.zeros((self.H, self.W), np.int32)
        self.pre = np.zeros((self.H, self.W, 3), np.float32)
        self.alpha = np.zeros((self.H, self.W), np.float32)

    def put(self, cov: np.ndarray, colour: np.ndarray, oid: int = 0, mirror: bool = True) -> None:
        """Cover the set with ``colour`` (a colour or an H×W×3 layer) by ``cov``, within the shape's bounds."""
        rows, cols = np.nonzero(cov.any(axis=1))[0], np.nonzero(cov.any(axis=0))[0]
        if not len(rows):
            return
        ys, xs = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
        c = cov[ys, xs, None]
        col = np.broadcast_to(colour, (self.H, self.W, 3))[ys, xs]  # a colour, or a layer (maybe one row/column)
        self.plate[ys, xs] = self.plate[ys, xs] * (1 - c) + col * c
        if mirror:
            self.pre[ys, xs] = self.pre[ys, xs] * (1 - c) + col * c
            self.alpha[ys, xs] = self.alpha[ys, xs] * (1 - c[..., 0]) + c[..., 0]
        if oid:
            self.ids[cov > 0.5] = oid

    def glow(self, cov: np.ndarray, colour: np.ndarray, gain: float = 1.0) -> None:
        """Light added (a glow, a beam, a flame): brightens what is there, never hides it."""
        self.plate += gain * cov[..., None] * colour


# -- supports ---------------------------------------------------------------------------------------------------------
@dataclass
class _Stand:
    kind: str
    top: int  # the contact row the product stands on
    x0: float  # the support's extent at that row
    x1: float
    floor: float  # the floor line the set stands on (the mirror's axis)
    box: tuple[float, float, float, float]
    ledge: tuple[float, float, float] | None = None  # a lower step (row, x0, x1) where props may stand


def _surface(rng: np.random.Generator, material: str, W: int, H: int, base: np.ndarray, quiet: bool) -> np.ndarray:
    """A material's surface over the canvas (H×W×3): marble veins, brushed streaks, smoked glass, speckle."""
    amp = 0.25 if quiet else 1.0
    if material == "marble":
        n = _noise(rng, W, H, max(8.0, W / 6))
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        vein = np.abs(np.sin((xx * 0.7 + yy) / max(6.0, W / 18) + n * 9.0))
        v = (1 - np.clip(vein * 6, 0, 1)) * 0.22 * amp
        tone = 1.0 + (n - 0.5) * 0.12 * amp - v * (1 if float(base.mean()) > 110 else -1.5)
        return base * tone[..., None]
    if material == "metal":
        streak = cv2.resize(rng.random((max(2, H // 2), 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
        fine = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), sigmaX=max(2.0, W / 60), sigmaY=0.6)
        tone = 1.0 + ((streak - 0.5) * 0.1 + (fine - 0.5) * 0.5) * amp
        return base * tone[..., None]
    if material == "glass":
        n = _noise(rng, W, H, max(10.0, W / 4), 2)
        return base * (1.0 + (n[..., None] - 0.5) * 0.1 * amp)
    speck = rng.random((H, W)).astype(np.float32)
    n = _noise(rng, W, H, max(6.0, W / 10))
    tone = 1.0 + ((n - 0.5) * 0.18 + (speck - 0.5) * 0.08) * amp
    return base * tone[..., None]


def _box_solid(st: _Set, surf: np.ndarray, x0: float, x1: float, y_front: float, depth: float, y_bottom: float,
               light: float, rim: np.ndarray, oid: int, edge_gain: float) -> None:
    """A box seen from a little above: a lit top face receding to a narrower back edge, a front face falling
    off into the dark towards the floor, a rim light on the top front edge."""
    W, H = st.W, st.H
    inset = depth * 0.55
    top = _cov(W, H, [np.array([(x0, y_front), (x1, y_front), (x1 - inset, y_front - depth),
                                (x0 + inset, y_front - depth)])])
    front = _cov(W, H, [_rect(x0, y_front, x1, y_bottom)])
    yy = np.arange(H, dtype=np.float32)[:, None]
    fall = np.clip(0.62 - 0.42 * (yy - y_front) / max(1.0, y_bottom - y_front), 0.12, 0.62)
    xx = np.arange(W, dtype=np.float32)[None, :]
    side = np.clip(0.85 + 0.3 * light * (xx - (x0 + x1) / 2) / max(1.0, x1 - x0), 0.6, 1.1)
    st.put(front, surf * (fall * side)[..., None], oid)
    st.put(top, surf, oid)
    edge = _cov(W, H, [_rect(x0, y_front - 0.6, x1, y_front + max(0.8, depth * 0.08))])
    st.glow(edge * np.clip(0.5 + 0.5 * light * (xx - (x0 + x1) / 2) / max(1.0, (x1 - x0) / 2), 0.15, 1), rim, edge_gain)


def _drum(st: _Set, surf: np.ndarray, cx: float, rx: float, ry: float, y_top: float, y_bottom: float, light: float,
          rim: np.ndarray, oid: int, edge_gain: float) -> None:
    """A cylinder: a lit elliptical top, a side shaded across its width (a highlight on the key's side)."""
    W, H = st.W, st.H
    body = _cov(W, H, [np.concatenate([_oval(cx, y_bottom, rx, ry, 0, math.pi, 40),
                                       np.array([(cx - rx, y_top), (cx + rx, y_top)])])])
    xx = np.arange(W, dtype=np.float32)[None, :]
    t = np.clip((xx - cx) / max(1.0, rx), -1, 1)
    shade = 0.18 + 0.4 * np.clip(1 - np.abs(t - 0.45 * light), 0, 1) ** 2 + 0.5 * np.exp(-((t - 0.85 * light) / 0.08) ** 2)
    yy = np.arange(H, dtype=np.float32)[:, None]
    fall = np.clip(1.0 - 0.45 * (yy - y_top) / max(1.0, y_bottom - y_top), 0.4, 1.0)
    st.put(body, surf * (shade * fall)[..., None], oid)
    top = _cov(W, H, [_oval(cx, y_top, rx, ry)])
    st.put(top, surf, oid)
    ring = np.clip(top - _cov(W, H, [_oval(cx, y_top + max(0.8, ry * 0.08), rx * 0.985, ry * 0.9)]), 0, 1)
    st.glow(ring * np.clip(0.4 + 0.6 * light * t, 0.1, 1), rim, edge_gain)


# -- props ------------------------------------------------------------------------------------------------------------
def _prop(st: _Set, rng: np.random.Generator, kind: str, cx: float, base: float, h: float, colour: np.ndarray,
          key: np.ndarray, light: float, oid: int) -> tuple[float, float, float, float]:
    """A prop standing at (cx, base), ``h`` px tall: dark, shaded across its width, rim-lit on the key's side."""
    W, H = st.W, st.H
    w = h * PROPS[kind][1]
    x0, x1, top = cx - w / 2, cx + w / 2, base - h
    xx = np.arange(W, dtype=np.float32)[None, :]
    t = np.clip((xx - cx) / max(1.0, w / 2), -1, 1)
    body_shade = (0.3 + 0.55 * np.clip(1 - np.abs(t - 0.4 * light), 0, 1) ** 2)[..., None]
    polys: list[np.ndarray]
    if kind == "wine-bottle":
        nw = w * 0.3
        polys = [np.concatenate([np.array([(x0, base), (x0, top + h * 0.42)]),
                                 _oval(cx, top + h * 0.42, w / 2, h * 0.1, math.pi, 1.5 * math.pi, 10)[1:],
                                 np.array([(cx - nw / 2, top + h * 0.3), (cx - nw / 2, top), (cx + nw / 2, top),
                                           (cx + nw / 2, top + h * 0.3)]),
                                 _oval(cx, top + h * 0.42, w / 2, h * 0.1, 1.5 * math.pi, 2 * math.pi, 10)[1:],
                                 np.array([(x1, base)])])]
        cov = _cov(W, H, polys)
        st.put(cov, colour * body_shade, oid)
        label = _cov(W, H, [_rect(x0 + 0.5, top + h * 0.58, x1 - 0.5, top + h * 0.82)])
        st.put(label, np.array([214, 200, 170], np.float32) * body_shade, 0)
        st.put(_cov(W, H, [_rect(cx - nw / 2, top, cx + nw / 2, top + h * 0.1)]), np.array([120, 30, 34], np.float32))
    elif kind in ("wine-glass", "tumbler"):
        if kind == "wine-glass":
            bowl = np.concatenate([_oval(cx, top + h * 0.05, w / 2, h * 0.45, 0, math.pi, 24),
                                   np.array([(x0, top + h * 0.05), (x0, top), (x1, top), (x1, top + h * 0.05)])])
            polys = [bowl, _rect(cx - max(0.6, w * 0.04), top + h * 0.48, cx + max(0.6, w * 0.04), base - h * 0.03),
                     _oval(cx, base - h * 0.02, w * 0.36, max(0.8, h * 0.025))]
            liquid = [np.concatenate([_oval(cx, top + h * 0.05, w / 2 * 0.92, h * 0.41, 0, math.pi, 20),
                                      np.array([(x0 + w * 0.08, top + h * 0.27), (x1 - w * 0.08, top + h * 0.27)])])]
            drink = np.array([110, 16, 30], np.float32)
        else:
            polys = [np.array([(x0, top), (x1, top), (x1 - w * 0.07, base), (x0 + w * 0.07, base)])]
            liquid = [np.array([(x0 + w * 0.04, top + h * 0.45), (x1 - w * 0.04, top + h * 0.45),
                                (x1 - w * 0.08, base - h * 0.08), (x0 + w * 0.08, base - h * 0.08)])]
            drink = np.array([170, 96, 30], np.float32)
        cov = _cov(W, H, polys)
        st.put(cov, st.plate * 0.7 + key * 0.08, oid)  # clear glass: the set behind, a little darker and tinted
        st.put(_cov(W, H, liquid) * 0.85, drink * body_shade, 0)
        st.glow(_rim_light(cov, -light * max(1.0, w * 0.06), 0) + 0.5 * _rim_light(cov, light * max(1.0, w * 0.05), 0),
                key, 0.9)
        return (x0, top, x1, base)
    elif kind == "candle":
        cov = _cov(W, H, [_rect(x0, top + h * 0.22, x1, base), _oval(cx, top + h * 0.22, w / 2, max(0.8, w * 0.12))])
        st.put(cov, colour * body_shade, oid)
        fl = _cov(W, H, [_oval(cx, top + h * 0.12, max(0.8, w * 0.1), h * 0.1)])
        st.put(fl, np.array([255, 236, 190], np.float32), 0)
        g = _soft(fl, max(1.5, h * 0.18))
        st.glow(g / max(1e-3, float(g.max())), np.array([250, 170, 70], np.float32), 0.6)
    elif kind == "books":
        n = 3
        y = base
        for k in range(n):
            th = h / n
            dx = w * 0.05 * (1 if k % 2 else -1) * k
            c = np.asarray(_PROP_COLOURS[(int(oid) + k) % len(_PROP_COLOURS)], np.float32) * 0.8
            cov = _cov(W, H, [_rect(x0 + dx + w * 0.03 * k, y - th, x1 + dx - w * 0.03 * k, y)])
            st.put(cov, c * body_shade, oid)
            st.put(_cov(W, H, [_rect(x0 + dx + w * 0.03 * k + 1, y - th * 0.2, x1 + dx - w * 0.03 * k - 1, y - 0.5)]),
                   np.array([190, 180, 160], np.float32) * body_shade, 0)
            y -= th
        cov = _cov(W, H, [_rect(x0, top, x1, base)])
    elif kind == "plant":
        pw_ = w * 0.55
        pot = np.array([(cx - pw_ / 2, base - h * 0.36), (cx + pw_ / 2, base - h * 0.36), (cx + pw_ * 0.38, base),
                        (cx - pw_ * 0.38, base)])
        cov = _cov(W, H, [pot])
        st.put(cov, colour * body_shade, oid)
        green = np.array([40, 86, 52], np.float32)
        leaves = []
        for j in range(7):
            ang = math.radians(-90 + (j - 3) * 24 + float(rng.uniform(-8, 8)))
            ln = h * float(rng.uniform(0.42, 0.62))
            bx, by = cx, base - h * 0.36
            tx, ty = bx + ln * math.cos(ang), by + ln * math.sin(ang)
            nx, ny = -math.sin(ang) * w * 0.1, math.cos(ang) * w * 0.1
            leaves.append(np.array([(bx, by), ((bx + tx) / 2 + nx, (by + ty) / 2 + ny), (tx, ty),
                                    ((bx + tx) / 2 - nx, (by + ty) / 2 - ny)]))
        lc = _cov(W, H, leaves)
        st.put(lc, green * (0.55 + 0.3 * float(rng.random())), oid)
        st.glow(_rim_light(lc, -light * max(1.0, h * 0.015), max(0.5, h * 0.01)), key, 0.7)
        cov = np.maximum(cov, lc)
    elif kind in ("apple", "lemon", "orb"):
        if kind == "lemon":
            polys = [np.concatenate([_oval(cx, base - h / 2, w / 2 * 0.86, h / 2),
                                     np.array([(x1, base - h / 2), (x0, base - h / 2)])])]
            polys.append(np.array([(x0, base - h / 2), (x0 + w * 0.12, base - h * 0.62), (x0 + w * 0.12, base - h * 0.38)]))
            polys.append(np.array([(x1, base - h / 2), (x1 - w * 0.12, base - h * 0.62), (x1 - w * 0.12, base - h * 0.38)]))
        else:
            polys = [_oval(cx, base - h / 2, w / 2, h / 2)]
        cov = _cov(W, H, polys)
        yy = np.arange(H, dtype=np.float32)[:, None]
        r = np.hypot((xx - (cx + light * w * 0.2)) / max(1.0, w / 2), (yy - (base - h * 0.68)) / max(1.0, h / 2))
        ball = np.clip(1.05 - 0.75 * r, 0.18, 1.0)[..., None]
        st.put(cov, colour * ball, oid)
        spec = _cov(W, H, [_oval(cx + light * w * 0.22, base - h * 0.7, max(0.7, w * 0.08), max(0.7, h * 0.06))])
        st.glow(spec, np.array([255, 250, 240], np.float32), 0.8 if kind != "lemon" else 0.4)
        if kind == "apple":
            st.put(_cov(W, H, [_rect(cx - max(0.5, w * 0.03), top, cx + max(0.5, w * 0.03), top + h * 0.18)]),
                   np.array([70, 48, 30], np.float32), 0)
    st.glow(_rim_light(cov, -light * max(1.0, w * 0.05), 0), key, 0.8)
    return (x0, top, x1, base)


# -- neon and the copy ---------------------------------------------------------------------------------------------
def _neon(st: _Set, rng: np.random.Generator, kind: str, colour: np.ndarray, keep: list[tuple[float, float, float, float]],
          floor: float) -> str | None:
    """A neon tube or light strip with its halo, where it clears every ``keep`` box; the kind drawn or None."""
    W, H = st.W, st.H
    u = min(W, H)
    width = max(1.2, u * float(rng.uniform(0.006, 0.012)))
    line = np.zeros((H, W), np.uint8)
    for _ in range(6):
        if kind == "bar":
            x = float(rng.uniform(0.05, 0.95)) * W
            y0, y1 = float(rng.uniform(0.02, 0.3)) * H, float(rng.uniform(0.45, 0.8)) * min(H, floor)
            box = (x - 3 * width - u * 0.05, y0 - u * 0.05, x + 3 * width + u * 0.05, y1 + u * 0.05)
        elif kind in ("ring", "arc"):
            r = u * float(rng.uniform(0.1, 0.22))
            x, y = float(rng.uniform(0.1, 0.9)) * W, float(rng.uniform(0.15, 0.55)) * H
            box = (x - r - u * 0.05, y - r - u * 0.05, x + r + u * 0.05, y + r + u * 0.05)
        else:
            y = min(floor - 2.0, float(rng.uniform(0.5, 0.8)) * H)
            box = (0.0, y - u * 0.05, float(W), y + u * 0.05)
        if all(not (box[0] < k[2] and k[0] < box[2] and box[1] < k[3] and k[1] < box[3]) for k in keep):
            break
    else:
        return None
    t = max(1, round(width))
    if kind == "bar":
        cv2.line(line, (round(x * 16), round(y0 * 16)), (round(x * 16), round(y1 * 16)), 255, t, cv2.LINE_AA, 4)
    elif kind == "ring":
        cv2.circle(line, (round(x * 16), round(y * 16)), round(r * 16), 255, t, cv2.LINE_AA, 4)
    elif kind == "arc":
        a0 = float(rng.uniform(0, 360))
        cv2.ellipse(line, (round(x * 16), round(y * 16)), (round(r * 16), round(r * 16)), 0, a0, a0 + 200, 255, t,
                    cv2.LINE_AA, 4)
    else:
        cv2.line(line, (-16, round(y * 16)), (W * 16 + 16, round(y * 16)), 255, t, cv2.LINE_AA, 4)
    core = line.astype(np.float32) / 255.0
    halo = _soft(core, width * 4) + 0.5 * _soft(core, width * 12)
    st.glow(halo, colour, 2.2)
    st.put(core, np.minimum(colour * 0.4 + 190, 255), mirror=False)
    return kind


def _fit_font(d: ImageDraw.ImageDraw, face: str, text: str, width: float, size: float, spacing: float
              ) -> tuple[Any, float, float]:
    """The face at the largest size up to ``size`` whose letter-spaced ``text`` fits ``width``."""
    while True:
        fnt = typeface(face, max(7, round(size)))
        tw = sum(float(d.textlength(ch, font=fnt)) for ch in text) + spacing * size * max(0, len(text) - 1)
        if tw <= width or size <= 7:
            return fnt, size, tw
        size *= 0.9


def _spaced(d: ImageDraw.ImageDraw, x: float, y: float, text: str, fnt: Any, size: float, spacing: float,
            ink: tuple[int, int, int]) -> None:
    for ch in text:
        d.text((x, y), ch, font=fnt, fill=ink)
        x += float(d.textlength(ch, font=fnt)) + spacing * size


def _copy(img: Image.Image, rng: np.random.Generator, zone: Box, product: Product, ink: tuple[int, int, int]
          ) -> dict[str, Box]:
    """Light, letter-spaced copy: an uppercase headline (serif or sans), a hairline rule, the tagline."""
    d = ImageDraw.Draw(img)
    words = str(product.attrs.get("headline") or product.title).upper().split() or ["NEW"]
    face = ("serif", "sans", "serif-bold", "sans-bold")[int(rng.integers(4))]
    spacing = float(rng.uniform(0.08, 0.22))
    size = max(8.0, zone.h * 0.3)
    lines = [" ".join(words[: max(1, (len(words) + 1) // 2)]), " ".join(words[max(1, (len(words) + 1) // 2) :])]
    lines = [s for s in lines if s]
    while True:
        fits = [_fit_font(d, face, s, zone.w, size, spacing) for s in lines]
        size = min(f[1] for f in fits)
        tall = len(lines) * size * 1.25 + (size * 0.9 if product.copy else 0) + size * 0.5
        if tall <= zone.h or size <= 8:
            break
        size *= 0.9
    centred = bool(rng.random() < 0.6)
    y = float(zone.y0)
    x_min, x_max = float(zone.x1), float(zone.x0)
    for s in lines:
        fnt, _, tw = _fit_font(d, face, s, zone.w, size, spacing)
        x = zone.x0 + (zone.w - tw) / 2 if centred else float(zone.x0)
        _spaced(d, x, y, s, fnt, size, spacing, ink)
        x_min, x_max = min(x_min, x), max(x_max, x + tw)
        y += size * 1.25
    boxes = {"headline": Box(max(zone.x0, int(x_min)), zone.y0, min(zone.x1, math.ceil(x_max) + 1),
                             min(zone.y1, math.ceil(y) + 1))}
    rule_w = min(zone.w * 0.3, max(8.0, size * 2.5))
    rx = zone.x0 + (zone.w - rule_w) / 2 if centred else float(zone.x0)
    ry = y + size * 0.15
    if ry + 1 < zone.y1:
        d.line([(rx, ry), (rx + rule_w, ry)], fill=ink, width=1)
    y = ry + size * 0.3
    if product.copy and y + size * 0.6 <= zone.y1:
        fs = max(7.0, size * 0.42)
        fnt2, fs, tw = _fit_font(d, "sans", product.copy, zone.w, fs, 0.04)
        x = zone.x0 + (zone.w - tw) / 2 if centred else float(zone.x0)
        _spaced(d, x, y, product.copy, fnt2, fs, 0.04, ink)
        boxes["copy"] = Box(max(zone.x0, int(x)), int(y), min(zone.x1, math.ceil(x + tw) + 1),
                            min(zone.y1, math.ceil(y + fs * 1.3) + 1))
    return boxes


def _tag(img: Image.Image, rng: np.random.Generator, product: Product, room: Box, ink: tuple[int, int, int]
         ) -> dict[str, Box]:
    """The price in a thin outlined ring, or a badge in a thin outlined pill."""
    badge = product.attrs.get("badge")
    use_badge = bool(badge) and (product.price is None or rng.random() < 0.5)
    if use_badge:
        text = str(badge).upper()
    elif product.price is not None:
        text = f"${product.price:,.0f}" if product.price >= 100 else f"${product.price:,.2f}"
    else:
        return {}
    d = ImageDraw.Draw(img)
    if use_badge:
        h = room.h * 0.5
        fnt, fs, tw = _fit_font(d, "sans", text, room.w * 0.75, h * 0.5, 0.15)
        w = min(float(room.w), tw + h * 1.2)
        x0, y0 = room.x0 + (room.w - w) / 2, room.y0 + (room.h - h) / 2
        d.rounded_rectangle((x0, y0, x0 + w - 1, y0 + h - 1), radius=h / 2, outline=ink, width=1)
        _spaced(d, x0 + (w - tw) / 2, y0 + (h - fs * 1.15) / 2, text, fnt, fs, 0.15, ink)
        return {"badge": Box(int(x0), int(y0), min(room.x1, math.ceil(x0 + w)), min(room.y1, math.ceil(y0 + h)))}
    r = min(room.w, room.h) / 2 * 0.94
    cx, cy = room.x0 + room.w / 2, room.y0 + room.h / 2
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=1)
    fnt, fs, tw = _fit_font(d, "serif", text, 1.5 * r, r * 0.5, 0.02)
    _spaced(d, cx - tw / 2, cy - fs * 0.62, text, fnt, fs, 0.02, ink)
    return {"price": Box(max(room.x0, int(cx - r)), max(room.y0, int(cy - r)), min(room.x1, math.ceil(cx + r) + 1),
                         min(room.y1, math.ceil(cy + r) + 1))}


# -- the mirror floor ---------------------------------------------------------------------------------------------------
def _mirror(plate: np.ndarray, pre: np.ndarray, alpha: np.ndarray, axis: int, strength: float, fade: float,
            blur: float, wet: bool, rng: np.random.Generator) -> np.ndarray:
    """The floor below ``axis`` reflecting what stands on it: flipped, blurred more with distance, darkened and
    faded; a wet floor ripples it sideways and streaks it downwards."""
    H, W = plate.shape[:2]
    n = min(axis, H - axis)
    if n <= 1:
        return plate
    src = np.concatenate([pre[axis - n : axis], alpha[axis - n : axis, :, None]], axis=-1)[::-1].copy()
    if wet:
        d = np.arange(n, dtype=np.float32)[:, None]
        amp = max(0.8, W * 0.004) * (0.4 + d / max(1, n))
        wob = amp * np.sin(d * float(rng.uniform(0.35, 0.7)) + float(rng.uniform(0, 6.28)))
        mx = (np.arange(W, dtype=np.float32)[None, :] + wob).astype(np.float32)
        my = np.broadcast_to(d, (n, W)).astype(np.float32)
        src = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        src = cv2.GaussianBlur(src, (0, 0), sigmaX=max(0.5, blur * 0.4), sigmaY=max(1.0, blur * 2.2))
    near = cv2.GaussianBlur(src, (0, 0), max(0.5, blur * 0.5))
    far = cv2.GaussianBlur(src, (0, 0), max(1.0, blur * 2.5))
    t = np.clip(np.arange(n, dtype=np.float32) / max(1.0, fade), 0, 1)[:, None, None]
    mix = near * (1 - t) + far * t
    wgt = strength * np.exp(-np.arange(n, dtype=np.float32) / max(1.0, fade))[:, None]
    out = plate.copy()
    band = out[axis : axis + n]
    out[axis : axis + n] = band * (1 - wgt[..., None] * mix[..., 3:4]) + wgt[..., None] * mix[..., :3]
    return out


# -- damage to the product --------------------------------------------------------------------------------------------
def _shards(rng: np.random.Generator, ref: np.ndarray, s: float) -> np.ndarray:
    """The product shattered into cells (nearest of scattered seeds); cells removed until a share is gone.
    Returns the mask (cutout-sized) of what is missing."""
    a = ref[..., 3] >= OPAQUE
    ys, xs = np.nonzero(a)
    n = int(rng.integers(9, 16))
    pick = rng.integers(len(ys), size=n)
    sy, sx = ys[pick].astype(np.float32), xs[pick].astype(np.float32)
    yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float32)
    cell = np.argmin((yy[..., None] - sy) ** 2 + (xx[..., None] - sx) ** 2, axis=-1)
    area = max(1, int(a.sum()))
    want = 0.05 + 0.25 * s
    gone = np.zeros_like(a)
    for c in rng.permutation(n):
        if gone.sum() >= want * area:
            break
        piece = (cell == c) & a
        if piece.sum() > 0.45 * area and gone.any():
            continue
        gone |= piece
    return gone


def _slice(rng: np.random.Generator, ref: np.ndarray, s: float) -> np.ndarray:
    """A straight cut across the product: the part past it missing (cutout-sized mask)."""
    a = ref[..., 3] >= OPAQUE
    yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float32)
    ang = float(rng.uniform(0, 2 * math.pi))
    proj = (xx - a.shape[1] / 2) * math.cos(ang) + (yy - a.shape[0] / 2) * math.sin(ang)
    vals = np.sort(proj[a])
    thr = float(vals[min(len(vals) - 1, int(len(vals) * (1 - (0.06 + 0.3 * s))))])
    return np.asarray((proj > thr) & a)


def _crushed(ref: np.ndarray, s: float) -> np.ndarray:
    """A murky source: its tones crushed into the dark and smeared (the detail gone)."""
    rgb = ref[..., :3].astype(np.float32) / 255.0
    sig = max(1.0, (0.01 + 0.025 * s) * max(ref.shape[:2]))
    murk = np.clip((np.asarray(cv2.GaussianBlur(rgb, (0, 0), sig)) - 0.08) / 0.84, 0, 1) ** (1.6 + 1.2 * s)
    out = ref.copy()
    out[..., :3] = np.clip(murk * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def _blocky(ref: np.ndarray, s: float) -> np.ndarray:
    """A source re-encoded from a small, heavily compressed JPEG copy (blocks and ringing)."""
    h, w = ref.shape[:2]
    k = 2.0 + 3.0 * s
    sw, sh_ = max(8, round(w / k)), max(8, round(h / k))
    small = cv2.resize(ref[..., :3], (sw, sh_), interpolation=cv2.INTER_AREA)
    ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(small[..., ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY),
                                                                            round(14 - 11 * s)])
    dec = cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else None
    back = np.asarray(dec)[..., ::-1] if dec is not None else small
    out = ref.copy()
    out[..., :3] = cv2.resize(np.ascontiguousarray(back), (w, h), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(out)


def _twin(ref: np.ndarray, top_off: int, hh: int, s: float, tones: _Tones) -> np.ndarray:
    """The product's upper part as a flat duplicate: each pixel set to its nearest palette colour (RGBA)."""
    part = ref[top_off : top_off + max(3, round(hh * (0.3 + 0.25 * s)))].copy()
    on = part[..., 3] > 0
    if on.any():
        px = lab(part[..., :3][on].astype(np.float32))
        idx = np.argmin(np.linalg.norm(px[:, None, :] - tones.palette[None], axis=-1), axis=1)
        cols = np.stack(tones.own_rgb)[idx]
        part[..., :3][on] = np.clip(cols + 0.5, 0, 255).astype(np.uint8)
    return part


# -- the renderer ----------------------------------------------------------------------------------------------------
class LowKey(SceneRenderer):
    """Renderer family ``lowkey``: dark premium product shots under hard coloured light (see the module
    docstring)."""

    name = "lowkey"
    version = VERSION

    @register_to_config
    def __init__(self, scale: float = 1.0, text_rate: float = 0.6, prop_rate: float = 0.55) -> None:
        if not scale > 0:
            raise InputError(f"lowkey: scale must be positive, got {scale}")
        if not (0.0 <= text_rate <= 1.0 and 0.0 <= prop_rate <= 1.0):
            raise InputError(f"lowkey: text_rate and prop_rate are shares in [0, 1], got {text_rate} and {prop_rate}")
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
        tones = _Tones(cut)
        cm = real_height_cm(product)
        want = defect if defect not in (None, "available") else None
        kind = _DEFECT_KINDS[want][int(rng.integers(len(_DEFECT_KINDS[want])))] if want else "clean"
        s = float(severity)
        light = float(rng.choice([-1.0, 1.0]))  # -1: the key light comes from the left
        u = min(W, H)
        m = max(4, round(0.05 * u))
        indistinct = kind in _DEFECT_KINDS["indistinctiveness"]

        # -- the copy's place, and what is left for the set -------------------------------------------------
        free = Box(m, m, W - m, H - m)
        zone: Box | None = None
        tag_room: Box | None = None
        if rng.random() < self.text_rate and kind not in ("edge-cut", "giant", "lost", "toy"):
            if W > 1.3 * H:
                cw = int(W * rng.uniform(0.28, 0.34))
                left = bool(rng.random() < 0.5)
                zx0 = m if left else W - m - cw
                zone = Box(zx0, int(H * 0.16), zx0 + cw, int(H * 0.56))
                free = Box(m + cw + m, m, W - m, H - m) if left else Box(m, m, W - 2 * m - cw, H - m)
                if rng.random() < 0.6:
                    th = int(min(cw * 0.5, H * 0.2))
                    tag_room = Box(zx0 + (cw - th) // 2, zone.y1 + m // 2, zx0 + (cw - th) // 2 + th, zone.y1 + m // 2 + th)
            else:
                zh = int(H * rng.uniform(0.14, 0.19))
                zone = Box(m, m, W - m, m + zh)
                free = Box(m, m + zh + m // 2, W - m, H - m)
                if rng.random() < 0.5:
                    tw = int(min(zh * 1.6, W * 0.3))
                    tag_room = Box(W - m - tw, m, W - m, m + zh)
                    zone = Box(m, m, W - 2 * m - tw, m + zh)

        # -- the support and the product's size ------------------------------------------------------------
        options: tuple[str, ...] = SUPPORTS
        if kind in ("overhang",):
            options = ("plinth", "drum", "steps")
        elif kind == "stray-reflection":
            options = ("floor",)
        elif kind in ("sunk", "own-glow", "own-surface", "swallowed", "drip"):
            options = ("plinth", "drum", "slab")
        elif kind in ("toy", "giant"):
            options = ("slab", "floor")
        elif kind == "pedestal":
            options = ("slab", "floor", "plinth")
        sup_kind = options[int(rng.integers(len(options)))]
        k_sup = {"plinth": rng.uniform(0.3, 0.5), "drum": rng.uniform(0.28, 0.45), "steps": rng.uniform(0.42, 0.6),
                 "slab": rng.uniform(0.08, 0.14), "floor": 0.0}[sup_kind]
        asp = cut.shape[1] / cut.shape[0]
        axis_f = free.y1 - H * float(rng.uniform(0.1, 0.17))
        avail = max(12.0, axis_f - free.y0)
        grow = 0.2 + 0.3 * s if kind == "pedestal" else 0.0
        lift_k = 0.07 + 0.3 * s if kind == "float" else 0.0
        stack = 1.0 + k_sup + grow + lift_k + 0.12
        long = u * float(rng.uniform(0.42, 0.62))
        ph = long if asp <= 1 else long / asp
        ph = min(ph, 0.94 * avail / stack, 0.82 * free.w / asp)
        if max(ph, ph * asp) < 0.3 * u:
            ph = min(0.3 * u / max(1.0, asp), 0.94 * avail / stack)
        r = 1.0  # how much larger the product is drawn than its props' scale allows
        if kind == "toy":
            r = 1 / (1.95 + 2.0 * s)
            ph = min(ph * 0.45, float(rng.uniform(0.3, 0.45)) * avail * cm * r / 9.5)
        elif kind == "giant":
            r = 1.95 + 2.0 * s
            ph = min(0.9 * avail / stack, 0.6 * free.w / asp)
        elif kind == "lost":
            ph = (0.115 - 0.065 * s) * u / max(1.0, asp)
        elif kind == "edge-cut":
            ph = min(0.9 * avail / stack, max(ph, 0.45 * W / asp))
        ph = max(6.0, ph)
        ph_i = max(6, round(ph))
        pw = max(6, round(ph * asp))
        if kind != "edge-cut":
            pw = min(pw, max(6, int(0.9 * free.w)))
        fp = footprint(cut, pw, ph_i)
        ref, a_ref, base_off, top_off, f0, f1 = fp.ref, fp.opaque, fp.base_off, fp.top_off, fp.f0, fp.f1
        hh, fw = fp.hh, f1 - f0

        # -- vertical layout: the floor line, the support's top, the contact row ---------------------------
        lift = round(hh * lift_k) + 4 if kind == "float" else 0
        sink = round(hh * (0.07 + 0.22 * s)) + 4 if kind == "sunk" else 0
        grow_px = round(hh * grow) if grow else 0
        axis = round(axis_f)
        sup_h = k_sup * hh
        depth = max(6.0, 0.1 * hh + 0.02 * u)
        ry = 0.0
        if sup_kind == "drum":
            ry = max(4.0, 0.06 * hh + 4, pw * float(rng.uniform(0.1, 0.15)))
            vc = round(axis - ry - sup_h)
        elif sup_kind == "floor":
            vc = axis
        elif sup_kind == "steps":
            vc = round(axis - sup_h - depth * 0.95)
        else:
            vc = round(axis - sup_h - depth * 0.5)
        top_y = vc - base_off - lift - grow_px + sink
        if top_y + top_off < free.y0:  # too tall for the room: move the whole set down (the floor stays on canvas)
            dy = min(free.y0 - top_y - top_off, H - 3 - axis)
            axis, vc, top_y = axis + dy, vc + dy, top_y + dy

        # -- horizontal placement ------------------------------------------------------------------------
        if kind == "edge-cut":
            share = 0.045 + 0.3 * s  # of the product's area past the canvas's side
            left = bool(rng.random() < 0.5)
            if zone is not None and zone.h > zone.w:
                left = zone.x0 > W / 2
            per_col = a_ref.sum(axis=0)
            cum = np.cumsum(per_col if left else per_col[::-1])
            depth_px = int(np.searchsorted(cum, share * float(cum[-1]))) + 1
            x0 = -depth_px if left else W - pw + depth_px
        else:
            # an indistinct set reaches well past both sides of the product (a surface, not a grown part)
            inset = min(0.45 * pw, max(0.0, (free.w - pw) / 2)) if indistinct else 0.0
            room = max(0.0, free.w - pw - 2 * inset)
            x0 = round(free.x0 + inset + room * float(rng.uniform(0.2, 0.8)))
        y0 = top_y
        ufoot = x0 + (f0 + f1) / 2
        box = (x0, y0, x0 + pw, y0 + ph_i)
        pcx, pcy = x0 + pw / 2, y0 + top_off + hh / 2
        keep = (x0 - 0.12 * pw - 6, y0 - 0.12 * ph_i - 6, x0 + pw + 0.12 * pw + 6, float(H))

        # -- the lights and the colours they make ----------------------------------------------------------
        (kh, kc), (ah, ac) = _LIGHTS[int(rng.integers(len(_LIGHTS)))]
        kh, ah = kh + float(rng.uniform(-10, 10)), ah + float(rng.uniform(-10, 10))
        key_rgb, acc_rgb = _lch(78, kc * 0.8, kh), _lch(62, ac, ah)
        base_c = _lch(float(rng.uniform(3, 8)), float(rng.uniform(0, 7)), kh)
        floor_c = base_c * float(rng.uniform(0.5, 0.85))
        need = 40.0
        glow_cands = [_lch(L, min(C, 30.0 if L < 50 else 16.0), h) for L in (24.0, 32.0, 42.0, 54.0, 66.0, 78.0)
                      for h, C in ((kh, kc), (ah, ac), (kh, 4.0))]
        glow_c = _pick(glow_cands, lambda c: min(tones.off(c), tones.off(c * 0.8 + base_c * 0.2)), need)
        pool_c = _pick(glow_cands[int(rng.integers(2)) :], lambda c: min(tones.off(c), tones.off(c * 0.75)), need)
        mat_order = [MATERIALS[int(i)] for i in rng.permutation(len(MATERIALS))]
        mat_cands = [(mt, np.asarray(c, np.float32)) for mt in mat_order for c in _MATERIAL_COLOURS[mt]]
        material, top_c = mat_cands[0]
        best = -1e9
        for mt, c in mat_cands:
            sc = min(tones.off(c) / 34, tones.off(c * 0.85) / 30, tones.own(c) / 18)
            if sc > best:
                material, top_c, best = mt, c, sc
            if sc >= 1:
                break
        target = None
        if indistinct:  # aimed at the median of the band just inside its outline, as placed
            rim_med = rim_median(ref, a_ref, max(ph_i, pw))
            dv = rng.normal(0, 1, 3)
            target = _from_lab(rim_med + dv / (np.linalg.norm(dv) + 1e-6) * (8.5 - 7.0 * s))
            glow_c = pool_c = target
            top_c = _from_lab(rim_med + np.array([2.0, 1.0, -1.0], np.float32) * (1.2 - s))
            if kind == "swallowed":
                base_c = floor_c = target
        strength = float(rng.uniform(0.22, 0.42))
        if sup_kind == "floor" and not indistinct:  # the product's own reflection must not melt into its base
            for st_ in (strength, 0.15, 0.08):
                strength = st_
                if tones.off(pool_c * (1 - st_) + tones.rim_rgb * st_) >= 30:
                    break

        # -- the wall and floor, light pools, beams, haze ---------------------------------------------------
        yy = np.arange(H, dtype=np.float32)[:, None]
        xx = np.arange(W, dtype=np.float32)[None, :]
        horizon = axis - H * float(rng.uniform(0.04, 0.12))
        t_floor = np.clip((yy - horizon) / max(2.0, 0.03 * H), 0, 1)
        lift_w = 0.0 if kind == "swallowed" else 0.6  # the wall brightening towards the floor
        wall = base_c * (1.0 + lift_w * np.clip((yy - horizon * 0.3) / max(1.0, horizon), 0, 1))[..., None]
        plate = np.broadcast_to(wall * (1 - t_floor[..., None]) + floor_c * t_floor[..., None], (H, W, 3)).astype(np.float32)
        st = _Set(plate.copy())
        near = np.exp(-((((xx - pcx) / max(4.0, 0.9 * pw + 0.3 * hh)) ** 2
                         + ((yy - pcy) / max(4.0, 0.9 * hh + 0.2 * pw)) ** 2) ** 2))
        if kind != "swallowed":
            spread = float(rng.uniform(1.35, 1.75) if tones.L < 45 else rng.uniform(1.5, 2.1))
            rx_g, ry_g = 0.5 * pw * spread + 0.3 * hh, 0.5 * hh * spread + 0.25 * pw
            g = np.exp(-((((xx - pcx) / max(4.0, rx_g)) ** 2 + ((yy - pcy) / max(4.0, ry_g)) ** 2) ** 2))
            if kind == "own-surface":  # a panel (an arch) of its colour standing right behind it
                aw = max(pw * 0.75, 0.3 * hh) + 6
                at = y0 + top_off - 0.3 * hh - aw
                panel = _cov(W, H, [np.concatenate([_oval(pcx, at + aw, aw, aw, math.pi, 2 * math.pi, 40),
                                                    np.array([(pcx + aw, float(axis)), (pcx - aw, float(axis))])])])
                g = np.maximum(g * 0.4, panel)
            st.plate = st.plate * (1 - g[..., None]) + glow_c * g[..., None]
        calm = 1 - np.clip(near * 1.4, 0, 1)  # where the set's effects keep off the product
        beams: list[str] = []
        if not indistinct:
            for b in range(int(rng.integers(0, 3))):
                sx_ = float(rng.uniform(-0.2, 1.2)) * W
                tx_ = float(rng.uniform(0.1, 0.9)) * W
                spread_ = W * float(rng.uniform(0.08, 0.2))
                cone = _cov(W, H, [np.array([(sx_ - 2, -H * 0.1), (sx_ + 2, -H * 0.1), (tx_ + spread_, float(axis)),
                                             (tx_ - spread_, float(axis))])])
                cone = _soft(cone, max(2.0, spread_ * 0.3))
                st.glow(cone * calm * np.clip(yy / max(1.0, axis), 0.2, 1.0), acc_rgb if b % 2 == 0 else key_rgb,
                        float(rng.uniform(0.12, 0.28)))
                beams.append("cone")
            haze_a = float(rng.uniform(0.05, 0.16))
            smoke = _noise(rng, W, H, max(8.0, W / 3.5), 3)
            bandw = np.exp(-((yy - horizon) / max(4.0, H * float(rng.uniform(0.15, 0.35)))) ** 2)
            a_h = (haze_a * smoke * bandw * (0.3 + 0.7 * calm))[..., None]
            st.plate = st.plate * (1 - a_h) + _lch(30, min(kc, 20.0), kh) * a_h
        pool = np.exp(-((((xx - ufoot) / max(6.0, 1.3 * pw + 0.4 * hh)) ** 2 + ((yy - axis) / max(3.0, 0.22 * hh + 0.06 * pw))
                         ** 2) ** 1.5)) * (yy >= horizon)
        pool_a = (1.0 if sup_kind == "floor" else float(rng.uniform(0.3, 0.6))) * pool
        st.plate = st.plate * (1 - pool_a[..., None]) + pool_c * pool_a[..., None]
        keepouts = [keep] + [(b.x0 - 4.0, b.y0 - 4.0, b.x1 + 4.0, b.y1 + 4.0) for b in (zone, tag_room) if b is not None]
        neon: list[str] = []
        if not indistinct and rng.random() < 0.7:
            for nk in [NEON[int(i)] for i in rng.permutation(len(NEON))[: int(rng.integers(1, 3))]]:
                nc = _pick([acc_rgb, key_rgb, _lch(64, 60, ah + 40)], lambda c: tones.off(c), 30.0)
                got = _neon(st, rng, nk, nc, keepouts, float(horizon))
                if got:
                    neon.append(got)

        # -- the support ---------------------------------------------------------------------------------------
        quiet = indistinct
        edge_gain = 0.0 if indistinct else float(rng.uniform(0.35, 0.8))
        surf = _surface(rng, material, W, H, top_c, quiet)
        wide = float(rng.uniform(1.9, 2.4) if indistinct else rng.uniform(1.1, 1.7))
        half = max(pw * wide / 2, fw / 2 + 0.1 * pw + 3)
        if sup_kind == "slab" and (kind in ("toy", "giant") or rng.random() < 0.35):
            half = W  # a slab running across the picture
        side = 1.0 if ufoot > W / 2 else -1.0
        if kind == "overhang":  # its edge under the foot, the foot's centre out past it
            edge = ufoot - side * (0.06 + 0.36 * s) * fw
            sx0, sx1 = (edge - 2 * half, edge) if side > 0 else (edge, edge + 2 * half)
        else:
            sx0, sx1 = ufoot - half, ufoot + half
        ledge: tuple[float, float, float] | None = None
        if sup_kind == "drum":
            rx = (sx1 - sx0) / 2
            cxd = (sx0 + sx1) / 2
            _drum(st, surf, cxd, rx, ry, float(vc), axis - ry, light, key_rgb, 1, edge_gain)
            stand = _Stand("drum", vc, sx0, sx1, float(axis), (sx0, vc - ry, sx1, float(axis)))
        elif sup_kind == "floor":
            stand = _Stand("floor", vc, -float(W), 2.0 * W, float(axis), (0.0, float(horizon), float(W), float(H)))
        elif sup_kind == "steps":
            lo_half = (sx1 - sx0) / 2 * 1.45
            lcx = (sx0 + sx1) / 2
            y_f1 = axis - sup_h * 0.42
            _box_solid(st, surf * 0.9, lcx - lo_half, lcx + lo_half, y_f1, depth, float(axis), light, key_rgb, 2, edge_gain)
            y_f2 = vc + depth * 0.5
            _box_solid(st, surf, sx0, sx1, y_f2, depth, y_f1 - depth * 0.3, light, key_rgb, 1, edge_gain)
            ledge = (y_f1 - depth * 0.5, lcx - lo_half + depth * 0.6, lcx + lo_half - depth * 0.6)
            stand = _Stand("steps", vc, sx0 + depth * 0.25, sx1 - depth * 0.25, float(axis),
                           (lcx - lo_half, y_f2 - depth, lcx + lo_half, float(axis)), ledge)
        else:
            y_front = vc + depth * 0.5
            _box_solid(st, surf, sx0, sx1, y_front, depth, float(axis), light, key_rgb, 1, edge_gain)
            stand = _Stand(sup_kind, vc, sx0 + depth * 0.25, sx1 - depth * 0.25, float(axis),
                           (sx0, y_front - depth, sx1, float(axis)))
            if sup_kind == "slab" and half >= W:
                ledge = (float(vc), 0.0, float(W))

        # -- props at real-world scale ------------------------------------------------------------------------
        props: list[Prop] = []
        k_px = hh / cm / r  # px per cm of the props
        n_props = int(rng.integers(1, 3)) if rng.random() < self.prop_rate else 0
        if kind in ("toy", "giant"):
            n_props = 2
        if kind == "lost" or indistinct:
            n_props = 0
        taken = list(keepouts)
        pool_kinds = [pk for pk, (pcm, _, cue) in PROPS.items()
                      if 12 <= pcm * k_px <= 0.85 * (axis - m) and (cue or kind not in ("toy", "giant"))]
        order = [pool_kinds[int(i)] for i in rng.permutation(len(pool_kinds))]
        first = 1.0 if rng.random() < 0.5 else -1.0
        for pk in order:
            if len(props) >= n_props:
                break
            pcm, pasp, cue = PROPS[pk]
            h_p = pcm * k_px
            w_p = h_p * pasp
            spots: list[tuple[float, float]] = []
            for sd in (first, -first):
                for gap in np.sort(rng.uniform(0.04, 0.5, 3)):
                    if ledge is not None:
                        spots.append((ufoot + sd * (pw / 2 + w_p / 2 + pw * float(gap) + 4), ledge[0]))
                    reach = max(pw / 2, (stand.box[2] - stand.box[0]) / 2) if sup_kind != "floor" else pw / 2
                    spots.append((ufoot + sd * (reach + w_p / 2 + pw * float(gap) + 4), float(axis)))
            for cx_, base_ in spots:
                pb = (cx_ - w_p / 2, base_ - h_p, cx_ + w_p / 2, base_)
                on_ledge = ledge is None or base_ != ledge[0] or (ledge[1] <= pb[0] and pb[2] <= ledge[2])
                if (pb[0] >= 1 and pb[2] <= W - 1 and pb[1] >= 1 and on_ledge
                        and not any(pb[0] < t[2] and t[0] < pb[2] and pb[1] < t[3] and t[1] < pb[3] for t in taken)):
                    break
            else:
                continue
            first = -first
            natural = {"apple": [(150, 24, 30), (120, 160, 50)], "lemon": [(226, 196, 40)]}.get(pk, _PROP_COLOURS)
            pc = _pick([np.asarray(natural[int(i)], np.float32) for i in rng.permutation(len(natural))],
                       lambda c: min(tones.off(c) / 24, tones.own(c) / 16), 1.0)
            oid = 10 + len(props)
            st.plate = st.plate * (1 - 0.45 * _cov(W, H, [_oval(cx_, base_, w_p * 0.6, max(1.0, h_p * 0.04))])[..., None])
            pbox = _prop(st, rng, pk, cx_, base_, h_p, pc, key_rgb, light, oid)
            taken.append((pbox[0] - 3, pbox[1] - 3, pbox[2] + 3, pbox[3] + 3))
            props.append(Prop((round(pbox[0]), round(pbox[1]), round(pbox[2]), round(pbox[3])), pcm, pk, cue))

        # -- the contact shadow, grown parts --------------------------------------------------------------------
        shadow_at: tuple[float, float] | None = (ufoot, float(vc))
        sh_x, sh_y = ufoot, float(vc)
        dx_m, dy_m = 0.0, 0.0
        if kind == "stray-reflection":  # the mirror image and its contact shadow thrown off the base
            off = (0.42 + 0.55 * s) * hh
            toward = side * -1.0 if 0.05 * W < ufoot - side * off < 0.95 * W else side
            dx_m, dy_m = toward * off, float(rng.uniform(0.0, 0.12)) * hh
            sh_x, sh_y = ufoot + dx_m, vc + dy_m
            shadow_at = (sh_x, sh_y)
        elif kind in ("overhang", "pedestal"):
            shadow_at = None
        dark = 0.12 + 0.35 * float(np.clip((tones.L - 30) / 50, 0, 1))
        if kind not in ("overhang",):
            ew, eh = max(2.0, fw * 0.62), max(1.2, 0.015 * hh)
            c_sh = _cov(W, H, [_oval(sh_x, sh_y, ew, eh)])
            st.plate = st.plate * (1 - dark * np.asarray(cv2.GaussianBlur(c_sh, (0, 0), max(0.8, eh)))[..., None])
        grown_support: Support | None = None
        if kind in _DEFECT_KINDS["shape_hallucination"]:
            grown_support = self._grow(st, rng, kind, ref, tones, x0, y0, base_off, top_off, hh, f0, f1, vc, s, light,
                                       stand)

        # -- damage, the mirror floor, the light's falloff ---------------------------------------------------------
        shown, source = ref, None
        gone_ref: np.ndarray | None = None
        if kind == "crushed":
            shown = _crushed(ref, s)
            source = source_image(shown)
        elif kind == "blocky":
            shown = _blocky(ref, s)
            source = source_image(shown)
        elif kind == "shards":
            gone_ref = _shards(rng, ref, s)
        elif kind == "sliced":
            gone_ref = _slice(rng, ref, s)
        mir = shown.copy()
        if gone_ref is not None:
            mir[..., 3][gone_ref] = 0
        if kind == "sunk":
            mir[max(0, vc - y0 + 1) :, :, 3] = 0
        ma = np.zeros((H, W), np.float32)
        stamp(ma, mir[..., 3].astype(np.float32) / 255.0, x0 + round(dx_m), y0 - round(dy_m))
        mrgb = np.zeros((H, W, 3), np.float32)
        stamp(mrgb, mir[..., :3].astype(np.float32), x0 + round(dx_m), y0 - round(dy_m))
        st.pre = st.pre * (1 - ma[..., None]) + mrgb * ma[..., None]
        st.alpha = st.alpha * (1 - ma) + ma
        wet = bool(rng.random() < 0.35)
        fade = float(rng.uniform(0.18, 0.4)) * (H - axis + hh)
        plate = _mirror(st.plate, st.pre, st.alpha, axis, strength, fade, max(0.8, u * 0.004), wet, rng)
        if not indistinct:
            rr = np.hypot((xx - pcx) / W, (yy - pcy) / H)
            vig = float(rng.uniform(0.35, 0.65))
            plate = plate * (1 - vig * np.clip((rr - 0.35) / 0.6, 0, 1) ** 1.4)[..., None]

        # -- the product, and what is done to it --------------------------------------------------------------
        canvas = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
        back = canvas.copy()
        visible = paste(canvas, shown, x0, y0)
        placement = None
        if gone_ref is not None:
            placement = visible.copy()
            gone = np.zeros((H, W), bool)
            stamp(gone, gone_ref, x0, y0)
            canvas[gone] = back[gone]
            visible &= ~gone
        elif kind == "sunk":
            hide = np.zeros((H, W), bool)
            hide[vc + 1 :, max(0, x0 - 2) : max(0, min(W, x0 + pw + 2))] = True
            lip = np.zeros((H, W), np.float32)
            cv2.ellipse(lip, (int(ufoot), int(vc)), (max(2, int(fw * 0.55)), max(1, int(hh * 0.02))), 0, 0, 360, 1.0, -1)
            dim = np.clip(back.astype(np.float32) * (1 - 0.3 * lip[..., None]) + 0.5, 0, 255).astype(np.uint8)
            canvas[hide] = dim[hide]
            visible &= ~hide

        # -- copy and price, set in light type ----------------------------------------------------------------
        boxes: dict[str, Box] = {}
        if zone is not None or tag_room is not None:
            img = Image.fromarray(canvas, "RGB")
            ink = _INKS[int(rng.integers(len(_INKS)))]
            under = canvas[zone.y0 : zone.y1, zone.x0 : zone.x1] if zone is not None else canvas
            if float(np.mean(under)) > 130:  # a set lit up in the product's colour: dark ink on it
                ink = (28, 28, 32)
            if zone is not None:
                boxes.update(_copy(img, rng, zone, product, ink))
            if tag_room is not None:
                boxes.update(_tag(img, rng, product, tag_room, ink))
            canvas = np.asarray(img).copy()

        # -- the labeller ------------------------------------------------------------------------------------------
        support = Support(int(stand.top), math.floor(stand.x0), math.ceil(stand.x1), stand.kind)
        if grown_support is not None:
            support = grown_support
        rep = SceneReport(box=box, reference=ref, product_cm=cm, support=support, props=props, objects=st.ids,
                          shadow=shadow_at, palette=tones.palette)
        labelled = label_render(canvas, visible, rep, defect)
        params = {"support": sup_kind, "material": material, "kind": kind, "severity": s if want else 0.0,
                  "requested": defect, "product_box": list(box), "px_per_cm": round(float(hh / cm), 4),
                  "light": "left" if light < 0 else "right", "lights": [round(kh, 1), round(ah, 1)],
                  "floor": "wet" if wet else "glossy", "neon": neon, "beams": len(beams),
                  "copy": "none" if zone is None else ("column" if zone.h > zone.w else "band"), **labelled}
        return self.result(canvas, visible, boxes=boxes, params=params, seed=seed, aspect=aspect, source=source,
                           placement=placement)

    # -- shapes grown out of the product --------------------------------------------------------------------------
    @staticmethod
    def _grow(st: _Set, rng: np.random.Generator, kind: str, ref: np.ndarray, tones: _Tones, x0: int, y0: int,
              base_off: int, top_off: int, hh: int, f0: int, f1: int, vc: int, s: float, light: float, stand: _Stand
              ) -> Support | None:
        """Draw a shape in the product's own colours continuing its silhouette (behind the product, which is
        pasted over it); returns the support the product now stands on when that changed (a pedestal)."""
        W, H = st.W, st.H
        a = ref[..., 3] >= OPAQUE
        pw = ref.shape[1]
        yy = np.arange(H, dtype=np.float32)[:, None]
        xx = np.arange(W, dtype=np.float32)[None, :]
        foot_rows = ref[max(0, base_off - max(2, hh // 20)) : base_off + 1]
        on = foot_rows[..., 3] >= OPAQUE
        base_c = tones.nearest_own(np.median(foot_rows[..., :3][on], axis=0) if on.any() else tones.rim_rgb)
        cx = x0 + (f0 + f1) / 2
        fw = f1 - f0
        if kind == "pedestal":  # a collar under its foot, a stem, a foot plate down to the support
            top = float(y0 + base_off + 1)
            half = max(fw / 2, 0.22 * pw) + 2
            stem = max(3.0, half * float(rng.uniform(0.35, 0.6)))
            drop = vc - top
            polys = [np.array([(cx - half, top - max(2.0, 0.05 * hh)), (cx + half, top - max(2.0, 0.05 * hh)),
                               (cx + stem, top + drop * 0.35), (cx - stem, top + drop * 0.35)]),
                     _rect(cx - stem, top, cx + stem, float(vc)),
                     np.array([(cx - half * 0.8, vc - max(2.0, 0.04 * hh)), (cx + half * 0.8, vc - max(2.0, 0.04 * hh)),
                               (cx + half, float(vc)), (cx - half, float(vc))])]
            cov = _cov(W, H, polys)
            lit = np.where(light * (xx - cx) > 0, 1.0, 0.8)[..., None] * np.ones((H, 1, 1), np.float32)
            st.put(cov, base_c * lit, 100)
            return Support(y0 + base_off, x0 + f0, x0 + f1, "pedestal")
        if kind == "twin":
            part = _twin(ref, top_off, hh, s, tones)
            pw_ = part.shape[1]
            sd = 1 if rng.random() < 0.5 else -1
            cols = np.nonzero((part[..., 3] >= OPAQUE).any(axis=0))[0]
            wpart = int(cols.max() - cols.min() + 1) if len(cols) else pw_
            dx = sd * round(wpart * float(rng.uniform(0.45, 0.7)))
            dy = round(hh * float(rng.uniform(0.0, 0.25)))
            alpha = np.zeros((H, W), np.float32)
            stamp(alpha, part[..., 3].astype(np.float32) / 255.0, x0 + dx, y0 + top_off + dy)
            rgb = np.zeros((H, W, 3), np.float32)
            stamp(rgb, part[..., :3].astype(np.float32), x0 + dx, y0 + top_off + dy)
            st.plate = st.plate * (1 - alpha[..., None]) + rgb * alpha[..., None]
            st.pre = st.pre * (1 - alpha[..., None]) + rgb * alpha[..., None]
            st.alpha = st.alpha * (1 - alpha) + alpha
            st.ids[alpha > 0.5] = 100
            return None
        if kind == "fused-prop":  # a ball or capsule of its main colour merged into its side
            sd = 1 if rng.random() < 0.5 else -1
            rows = np.nonzero(a.any(axis=1))[0]
            row = int(rows[int(len(rows) * float(rng.uniform(0.35, 0.8)))])
            cs = np.nonzero(a[row])[0]
            ex = x0 + (float(cs.max()) if sd > 0 else float(cs.min()))
            rad = max(3.0, (0.16 + 0.14 * s) * max(hh, pw) * 0.6)
            c = tones.nearest_own(ref[row, int(cs.max() if sd > 0 else cs.min()), :3].astype(np.float32))
            bx, by = ex + sd * rad * 0.5, float(y0 + row)
            if rng.random() < 0.5:
                poly = _oval(bx, by, rad, rad)
            else:
                poly = np.concatenate([_oval(bx, by - rad * 0.6, rad * 0.7, rad * 0.7, math.pi, 2 * math.pi, 20),
                                       _oval(bx, by + rad * 0.6, rad * 0.7, rad * 0.7, 0, math.pi, 20)])
            cov = _cov(W, H, [poly])
            lit = np.where(light * (xx - bx) > 0, 1.0, 0.8)[..., None] * np.ones((H, 1, 1), np.float32)
            st.put(cov, c * lit, 100)
            return None
        # drip: its base colour pooled at its foot, spreading to one side and running down the support's front
        sd = 1 if rng.random() < 0.5 else -1
        reach = (0.25 + 0.35 * s) * pw
        px0 = x0 + f0 - 0.04 * pw if sd > 0 else x0 + f0 - reach
        px1 = x0 + f1 + reach if sd > 0 else x0 + f1 + 0.04 * pw
        eh = max(2.0, 0.035 * hh)
        pud = _oval((px0 + px1) / 2, vc + eh * 0.2, (px1 - px0) / 2, eh)
        front = stand.box[1] + (vc - stand.box[1]) * 2 if stand.kind != "drum" else vc + (vc - stand.box[1])
        polys = [pud]
        for _ in range(int(rng.integers(2, 4))):
            dxp = float(rng.uniform(px0 + 2, px1 - 2)) if px1 - px0 > 4 else (px0 + px1) / 2
            wd = max(1.5, 0.03 * pw)
            ln = (0.2 + 0.5 * s) * max(4.0, stand.floor - front)
            polys += [_rect(dxp - wd, float(vc), dxp + wd, front + ln), _oval(dxp, front + ln, wd * 1.3, wd * 1.3)]
        cov = _cov(W, H, polys)
        shade = np.where(yy > front, 0.8, 1.0)[..., None] * np.ones((1, W, 1), np.float32)
        st.put(cov, base_c * shade, 100)
        return None
