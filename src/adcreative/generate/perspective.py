"""``perspective``: ad scenes built as real 3D perspective views, a renderer family of its own.

A pinhole camera (focal length, yaw, a horizon row) looks into a room: a floor at y = 0 and a back wall, and the
support the product stands on as a solid (a table with legs, a box plinth, a cylindrical podium, a wall shelf, or
the floor itself), with props (mugs, cans, book stacks, apples, oranges, vases, potted plants, candles; blocks and
balls as decoration) as boxes, cylinders and spheres standing at real-world scale at the product's depth. Every
pixel is a ray cast into that scene: surfaces are textured in world centimetres (wood planks, tiles, marble veins,
linen, concrete; plain, panelled or windowed walls), so the textures foreshorten towards the vanishing points,
and shaded Lambert by one directional light with shadow rays between the solids. The product is a flat cutout
standing at its depth: its size sets the scene's scale (pixels per cm = focal length / depth), its cast shadow is
its alpha silhouette projected onto the support plane along the light (a planar homography, the penumbra growing
with height above the contact line), with a contact shadow at its base. Optional depth of field on what is far
from the product's depth, an optional glossy reflection on a polished surface, window light falling on the floor,
copy with an accent rule and a price tag or badge.

``defect=`` draws one RF1M class its own way (see ``_DEFECT_KINDS``); whatever is drawn, the label comes from
:mod:`adcreative.generate.measure`, the labeller every renderer shares, applied to what was rendered.
No drawing code is shared with the compositor, ``photoset`` or ``softfocus``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    rim_median,
    rim_samples,
)

VERSION = "1.0"
SUPPORTS = ("floor", "table", "plinth", "podium", "shelf")
SURFACES = ("planks", "tiles", "marble", "linen", "concrete")
WALLS = ("plain", "panelled", "window")
_DEFECT_KINDS: dict[str, tuple[str, ...]] = {
    "unsuitable": ("holes", "edge-cut", "torn", "pixelate", "motion-blur"),
    "space_mismatch": ("float", "sink", "on-wall", "off-edge", "wrong-light"),
    "size_mismatch": ("giant-back", "speck-front"),
    "indistinctiveness": ("own-colours", "low-key", "fog"),
    "shape_hallucination": ("pedestal", "reflection-twin", "extrude", "fused-part", "melt"),
}
# Material colours (sRGB) a surface of each kind is drawn in; one is chosen that stands off the product's rim.
_SURFACE_COLOURS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "planks": ((176, 128, 84), (120, 80, 52), (214, 184, 146), (92, 64, 46), (196, 170, 140)),
    "tiles": ((236, 234, 228), (60, 64, 70), (196, 212, 214), (210, 120, 90), (232, 220, 196)),
    "marble": ((238, 236, 232), (42, 44, 48), (226, 214, 204), (196, 200, 204)),
    "linen": ((226, 218, 200), (190, 196, 186), (160, 170, 190), (92, 100, 112), (232, 206, 196)),
    "concrete": ((170, 170, 166), (120, 122, 124), (206, 204, 198), (84, 86, 90)),
}
_WALL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (238, 232, 222), (214, 222, 228), (228, 214, 200), (206, 216, 200), (246, 246, 242), (64, 72, 86),
    (92, 64, 60), (54, 80, 72), (232, 200, 180), (188, 196, 214), (120, 120, 118), (40, 42, 48),
)
_SOLID_COLOURS: tuple[tuple[int, int, int], ...] = (
    (244, 242, 238), (222, 210, 196), (190, 160, 130), (70, 72, 80), (34, 36, 40), (176, 196, 206),
    (204, 178, 170), (150, 170, 150), (120, 84, 60),
)


# -- colour ------------------------------------------------------------------------------------------------------
def _rgb(c_lab: np.ndarray) -> np.ndarray:
    out = cv2.cvtColor(np.asarray(c_lab, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3)
    return np.asarray(np.clip(out * 255, 0, 255), np.float32)


def _standoff(c: np.ndarray, rim_main: np.ndarray, rim: np.ndarray) -> float:
    """How far a colour stands off the product's outline: the smaller of its ΔE to the main rim colour and
    (a little generously) to the nearest fifth of the rim samples."""
    d = np.linalg.norm(rim - lab(c), axis=-1)
    return min(float(np.linalg.norm(rim_main - lab(c))), 1.2 * float(np.percentile(d, 20)))


def _pick(rng: np.random.Generator, options: tuple[tuple[int, int, int], ...], rim_main: np.ndarray,
          rim: np.ndarray, need: float = 34.0) -> np.ndarray:
    """A colour from ``options`` (tried in a random order) standing at least ``need`` ΔE off the product's
    outline both lit and in shade, else the one standing furthest off."""
    best, best_d = np.asarray(options[0], np.float32), -1.0
    for i in rng.permutation(len(options)):
        c = np.asarray(options[int(i)], np.float32) * float(rng.uniform(0.94, 1.04))
        d = min(_standoff(c, rim_main, rim), _standoff(c * 0.65, rim_main, rim))
        if d >= need:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _body(cut: np.ndarray) -> np.ndarray:
    """The product's dominant colour: the most common of its coarse colour bins over opaque pixels."""
    px = cut[..., :3][cut[..., 3] >= OPAQUE]
    if not len(px):
        return np.full(3, 128, np.float32)
    q = (px // 32).astype(np.int64)
    key = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    top = int(np.bincount(key).argmax())
    return np.asarray(px[key == top].mean(axis=0), np.float32)


# -- procedural textures in world centimetres ------------------------------------------------------------------
def _hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    h = (ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263 + seed * 69069 + 12345) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h ^= h >> 16
    return np.asarray((h & 0xFFFF).astype(np.float32) / 65535.0)


def _noise(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] over the plane (one lattice cell per unit)."""
    ia, ib = np.floor(a), np.floor(b)
    fa, fb = a - ia, b - ib
    ua, ub = fa * fa * (3 - 2 * fa), fb * fb * (3 - 2 * fb)
    n00, n10 = _hash01(ia, ib, seed), _hash01(ia + 1, ib, seed)
    n01, n11 = _hash01(ia, ib + 1, seed), _hash01(ia + 1, ib + 1, seed)
    return np.asarray((n00 * (1 - ua) + n10 * ua) * (1 - ub) + (n01 * (1 - ua) + n11 * ua) * ub, np.float32)


def _fbm(a: np.ndarray, b: np.ndarray, seed: int, octaves: int = 3) -> np.ndarray:
    out = np.zeros_like(a, dtype=np.float32)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        out += amp * _noise(a * 2**o, b * 2**o, seed + 7 * o)
        tot += amp
        amp *= 0.5
    return np.asarray(out / tot, np.float32)


def _surface(kind: str, a: np.ndarray, b: np.ndarray, base: np.ndarray, fp: np.ndarray, seed: int) -> np.ndarray:
    """Albedo (N×3) of a surface texture at plane coordinates (a, b) in cm; ``fp`` is the footprint of a pixel
    there (cm), used to fade detail finer than a pixel instead of letting it alias."""
    def fade(feature: float) -> np.ndarray:
        return np.asarray(np.clip(1.5 - fp / feature, 0, 1), np.float32)

    lum = np.ones_like(a, dtype=np.float32)
    if kind == "planks":  # boards run along b (into the depth), staggered butt joints, grain along the board
        w = 9.0 + 8.0 * _hash01(np.zeros(1), np.zeros(1), seed)[0]
        board = np.floor(a / w)
        along = b + 97.0 * _hash01(board, np.zeros_like(board), seed + 1)
        length = 120.0
        piece = np.floor(along / length)
        tone = 0.82 + 0.3 * _hash01(board, piece, seed + 2)
        grain = 0.08 * np.sin((a - board * w) * 2.1 + 3.0 * _noise(a * 0.3, along * 0.05, seed + 3) * 6.0)
        seam = np.minimum(np.abs(a / w - np.round(a / w)) * w, np.abs(along / length - np.round(along / length)) * length)
        lum = tone * (1 + grain * fade(0.6)) * (1 - 0.45 * np.exp(-((seam / 0.25) ** 2)) * fade(0.5))
    elif kind == "tiles":
        s = 20.0 + 30.0 * _hash01(np.zeros(1), np.zeros(1), seed)[0]
        ta, tb = np.floor(a / s), np.floor(b / s)
        tone = 0.92 + 0.12 * _hash01(ta, tb, seed + 1)
        if _hash01(np.ones(1), np.zeros(1), seed)[0] < 0.35:  # a two-tone checkerboard
            tone = tone * np.where((ta + tb) % 2 == 0, 1.0, 0.72)
        ga = np.abs(a / s - np.round(a / s)) * s
        gb = np.abs(b / s - np.round(b / s)) * s
        grout = np.exp(-((np.minimum(ga, gb) / 0.35) ** 2))
        lum = tone * (1 - 0.35 * grout * fade(0.7))
    elif kind == "marble":
        turb = _fbm(a * 0.04, b * 0.04, seed, 4)
        veins = np.abs(np.sin((a * 0.05 + b * 0.03 + 6.0 * turb) * np.pi))
        fine = np.abs(np.sin((a * 0.11 - b * 0.07 + 9.0 * _fbm(a * 0.07, b * 0.07, seed + 3, 3)) * np.pi))
        lum = (1.0 - 0.22 * np.exp(-veins / 0.1) * fade(0.5) - 0.1 * np.exp(-fine / 0.05) * fade(0.3)
               - 0.06 * _fbm(a * 0.2, b * 0.2, seed + 5, 2))
    elif kind == "linen":
        weave = 0.05 * np.sin(a * 2 * np.pi / 0.35) * np.sin(b * 2 * np.pi / 0.35)
        slub = 0.06 * (_noise(a * 0.8, b * 0.05, seed) - 0.5)
        lum = 1.0 + weave * fade(0.15) + slub * fade(0.8) - 0.05 * _fbm(a * 0.05, b * 0.05, seed + 2, 2)
    elif kind == "concrete":
        lum = 0.9 + 0.18 * (_fbm(a * 0.03, b * 0.03, seed, 3) - 0.5) + 0.12 * (_noise(a * 1.7, b * 1.7, seed + 9) - 0.5) * fade(0.3)
    return np.asarray(base[None, :] * lum[:, None], np.float32)


# -- the scene: camera, solids, ray casting -----------------------------------------------------------------------
@dataclass
class _Camera:
    """A pinhole camera at (0, height, 0) looking along +Z turned by ``yaw`` about the vertical, no pitch; the
    horizon is row ``yh`` (a shifted principal point)."""

    f: float
    cx: float
    yh: float
    yaw: float
    height: float

    @property
    def right(self) -> np.ndarray:
        return np.array([np.cos(self.yaw), 0.0, -np.sin(self.yaw)])

    @property
    def fwd(self) -> np.ndarray:
        return np.array([np.sin(self.yaw), 0.0, np.cos(self.yaw)])

    @property
    def origin(self) -> np.ndarray:
        return np.array([0.0, self.height, 0.0])

    def ray(self, u: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """World direction (…×3) through pixel (u, v), scaled so its camera depth is 1."""
        du = (np.asarray(u, np.float64) - self.cx) / self.f
        dv = -(np.asarray(v, np.float64) - self.yh) / self.f
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.stack([c * du + s, dv, -s * du + c], axis=-1)

    def point(self, u: np.ndarray | float, v: np.ndarray | float, depth: float) -> np.ndarray:
        return self.origin + depth * self.ray(u, v)

    def project(self, p: np.ndarray) -> np.ndarray:
        """World points (…×3) → (…×3): u, v and camera depth."""
        q = np.asarray(p, np.float64) - self.origin
        xc = q[..., 0] * self.right[0] + q[..., 2] * self.right[2]
        zc = q[..., 0] * self.fwd[0] + q[..., 2] * self.fwd[2]
        z = np.maximum(zc, 1e-3)
        return np.stack([self.cx + self.f * xc / z, self.yh - self.f * q[..., 1] / z, zc], axis=-1)


@dataclass
class _Solid:
    """A box (lo, hi corners), an upright cylinder (centre x, z, radius, y0, y1) or a sphere (centre, radius)."""

    shape: str
    geo: tuple[float, ...]
    mat: int
    label: int  # object id for the labeller (0: room)


@dataclass
class _Material:
    kind: str  # a surface texture, "paint", "panelled", "window", "label", "book", "foliage", "plain"
    colour: np.ndarray
    gloss: float = 0.0
    base_y: float = 0.0  # where a printed can stands (its label is laid out from there)
    seed: int = 0


def _hit_box(o: np.ndarray, d: np.ndarray, geo: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.array(geo[:3]), np.array(geo[3:])
    inv = 1.0 / np.where(np.abs(d) < 1e-9, 1e-9, d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    tn, tf = np.minimum(t1, t2), np.maximum(t1, t2)
    t0 = tn.max(axis=-1)
    hit = (tf.min(axis=-1) >= t0) & (t0 > 1e-4)
    axis = tn.argmax(axis=-1)
    n = np.zeros_like(d)
    sign = -np.sign(np.take_along_axis(d, axis[..., None], -1)[..., 0])
    np.put_along_axis(n, axis[..., None], sign[..., None], -1)
    return np.where(hit, t0, np.inf), n


def _hit_cylinder(o: np.ndarray, d: np.ndarray, geo: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    cx, cz, r, y0, y1 = geo
    ox, oz = o[..., 0] - cx, o[..., 2] - cz
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = 2 * (ox * d[..., 0] + oz * d[..., 2])
    c = ox * ox + oz * oz - r * r
    disc = b * b - 4 * a * c
    ts = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(2 * a, 1e-12)
    ys = o[..., 1] + ts * d[..., 1]
    side = (disc >= 0) & (ts > 1e-4) & (ys >= y0) & (ys <= y1)
    tt = (y1 - o[..., 1]) / np.where(np.abs(d[..., 1]) < 1e-9, -1e-9, d[..., 1])
    px, pz = ox + tt * d[..., 0], oz + tt * d[..., 2]
    top = (tt > 1e-4) & (px * px + pz * pz <= r * r)
    t = np.where(side, ts, np.inf)
    use_top = top & (tt < t)
    t = np.where(use_top, tt, t)
    n = np.stack([(ox + t * d[..., 0]) / r, np.zeros_like(t), (oz + t * d[..., 2]) / r], axis=-1)
    n[use_top] = (0.0, 1.0, 0.0)
    return t, n


def _hit_sphere(o: np.ndarray, d: np.ndarray, geo: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    c, r = np.array(geo[:3]), geo[3]
    oc = o - c
    a = (d * d).sum(-1)
    b = 2 * (oc * d).sum(-1)
    cc = (oc * oc).sum(-1) - r * r
    disc = b * b - 4 * a * cc
    t = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(2 * a, 1e-12)
    ok = (disc >= 0) & (t > 1e-4)
    t = np.where(ok, t, np.inf)
    n = (o + np.where(np.isfinite(t), t, 0)[..., None] * d - c) / r
    return t, n


_HITS = {"box": _hit_box, "cyl": _hit_cylinder, "sphere": _hit_sphere}


@dataclass
class _Scene:
    cam: _Camera
    solids: list[_Solid]
    mats: list[_Material]
    floor_mat: int
    wall_mat: int
    wall_z: float
    light: np.ndarray  # unit vector towards the light (world)
    ambient: float
    window: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1 of a window in the back wall


@dataclass
class _Frame:
    """Per-pixel result of casting the scene: depth along the ray, world point, normal, material, object id."""

    t: np.ndarray
    p: np.ndarray
    n: np.ndarray
    mat: np.ndarray
    label: np.ndarray
    solid: np.ndarray  # index of the solid hit (-1: floor or wall)


def _corners(s: _Solid) -> np.ndarray:
    """The eight corners of a solid's world bounding box."""
    if s.shape == "box":
        lo, hi = np.array(s.geo[:3]), np.array(s.geo[3:])
    elif s.shape == "cyl":
        cx, cz, r, y0, y1 = s.geo
        lo, hi = np.array([cx - r, y0, cz - r]), np.array([cx + r, y1, cz + r])
    else:
        lo, hi = np.array(s.geo[:3]) - s.geo[3], np.array(s.geo[:3]) + s.geo[3]
    return np.array([[(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def _screen_rect(cam: _Camera, pts: np.ndarray, W: int, H: int) -> tuple[slice, slice]:
    """Rows and columns of the canvas that world points can cover (all of it when one is behind the camera)."""
    q = cam.project(pts)
    if (q[:, 2] < 1.0).any():
        return slice(0, H), slice(0, W)
    x0, x1 = int(np.clip(np.floor(q[:, 0].min()) - 2, 0, W)), int(np.clip(np.ceil(q[:, 0].max()) + 3, 0, W))
    y0, y1 = int(np.clip(np.floor(q[:, 1].min()) - 2, 0, H)), int(np.clip(np.ceil(q[:, 1].max()) + 3, 0, H))
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _cast(sc: _Scene, W: int, H: int) -> _Frame:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    d = sc.cam.ray(xx + 0.5, yy + 0.5)
    o = sc.cam.origin
    n = np.zeros((H, W, 3))
    mat = np.full((H, W), sc.wall_mat, np.int32)
    label = np.zeros((H, W), np.int32)
    solid = np.full((H, W), -1, np.int32)
    tw = (sc.wall_z - o[2]) / np.where(d[..., 2] > 1e-9, d[..., 2], 1e-9)  # the back wall, facing the camera
    t = np.where(tw > 0, tw, np.inf)
    n[...] = (0.0, 0.0, -1.0)
    tf = -o[1] / np.where(d[..., 1] < -1e-9, d[..., 1], -1e-9)  # the floor
    fl = (tf > 0) & (d[..., 1] < -1e-9) & (tf < t)
    t = np.where(fl, tf, t)
    n[fl] = (0.0, 1.0, 0.0)
    mat[fl] = sc.floor_mat
    for i, s in enumerate(sc.solids):  # each solid only where it can be on screen
        r = _screen_rect(sc.cam, _corners(s), W, H)
        if r[0].start == r[0].stop or r[1].start == r[1].stop:
            continue
        ts, ns = _HITS[s.shape](o, d[r], s.geo)
        near = ts < t[r]
        t[r] = np.where(near, ts, t[r])
        n[r][near] = ns[near]
        mat[r][near] = s.mat
        label[r][near] = s.label
        solid[r][near] = i
    t = np.where(np.isfinite(t), t, 1e6)
    return _Frame(t, o + t[..., None] * d, n, mat, label, solid)


def _lit(sc: _Scene, fr: _Frame) -> np.ndarray:
    """Direct light reaching each pixel's surface (0..1): Lambert n·l times visibility of the light past the
    solids (shadow rays, cast only where a solid's shadow can fall), softened a little for a penumbra."""
    H, W = fr.t.shape
    L = sc.light
    ndl = np.clip((fr.n * L).sum(-1), 0, 1)
    vis = np.ones_like(ndl)
    origin = fr.p + fr.n * 0.05
    for i, s in enumerate(sc.solids):
        c = _corners(s)
        reach = c[:, 1] / max(L[1], 1e-3)  # along the light down to the floor, or to the wall behind
        if L[2] < -1e-3:
            reach = np.minimum(reach, (sc.wall_z - c[:, 2]) / -L[2])
        r = _screen_rect(sc.cam, np.concatenate([c, c - np.maximum(reach, 0)[:, None] * L[None]]), W, H)
        if r[0].start == r[0].stop or r[1].start == r[1].stop:
            continue
        org = origin[r]
        ts, _ = _HITS[s.shape](org, np.broadcast_to(L, org.shape), s.geo)
        vis[r][np.isfinite(ts) & (fr.solid[r] != i)] = 0.0
    vis = cv2.GaussianBlur(vis.astype(np.float32), (0, 0), 1.2)
    return np.asarray(ndl * vis, np.float32)


def _albedo(sc: _Scene, fr: _Frame) -> np.ndarray:
    H, W = fr.t.shape
    out = np.zeros((H, W, 3), np.float32)
    cosang = np.abs((fr.n * (fr.p - sc.cam.origin)).sum(-1)) / np.maximum(fr.t * np.linalg.norm(
        sc.cam.ray(np.full((H, W), sc.cam.cx), np.full((H, W), sc.cam.yh)), axis=-1), 1e-6)
    fp = fr.t / sc.cam.f / np.maximum(cosang, 0.08)  # cm per pixel on the surface
    for mi, m in enumerate(sc.mats):
        sel = fr.mat == mi
        if not sel.any():
            continue
        p, nrm, f = fr.p[sel], fr.n[sel], fp[sel]
        horizontal = np.abs(nrm[:, 1]) > 0.5
        # plane coordinates: (x, z) on horizontal faces, (x + z, y) on upright ones (boxes, wall, cylinder sides)
        a = np.where(horizontal, p[:, 0], p[:, 0] + p[:, 2]).astype(np.float32)
        b = np.where(horizontal, p[:, 2], p[:, 1]).astype(np.float32)
        f = f.astype(np.float32)
        if m.kind in SURFACES:
            col = _surface(m.kind, a, b, m.colour, f, m.seed)
        elif m.kind == "panelled":  # wainscot below a rail at 90 cm, painted plain above
            col = np.repeat(m.colour[None], len(a), 0)
            below = p[:, 1] < 90
            pa = np.abs((a / 60.0) - np.round(a / 60.0)) * 60.0
            pb = np.abs(((p[:, 1] - 8) / 74.0) - np.round((p[:, 1] - 8) / 74.0)) * 74.0
            bevel = below & ((np.abs(pa - 6) < 0.7) | (np.abs(pb - 6) < 0.7))
            rail = np.abs(p[:, 1] - 90) < 2.2
            col *= np.where(bevel, 0.8, 1.0)[:, None].astype(np.float32)
            col *= np.where(rail, 1.08, 1.0)[:, None].astype(np.float32)
            col[below & ~bevel] *= 0.95
        elif m.kind == "window":  # sky through the pane, mullions and frame in the wall's colour
            assert sc.window is not None
            wx0, wx1, wy0, wy1 = sc.window
            col = np.repeat(m.colour[None], len(a), 0)
            inside = (p[:, 0] > wx0) & (p[:, 0] < wx1) & (p[:, 1] > wy0) & (p[:, 1] < wy1)
            u = (p[:, 0] - wx0) / (wx1 - wx0)
            v = (p[:, 1] - wy0) / (wy1 - wy0)
            mull = (np.abs(u - 0.5) < 0.018) | (np.abs(v - 0.55) < 0.02) | (u < 0.03) | (u > 0.97) | (v < 0.03) | (v > 0.97)
            sky = np.array([196, 222, 246], np.float32) * (1 - 0.25 * v[:, None]) + np.array([60, 30, 0], np.float32) * v[:, None] * 0.2
            pane = inside & ~mull
            col[pane] = np.clip(sky[pane] * 1.25, 0, 255)
            col[inside & mull] = np.array([248, 248, 246], np.float32)
        elif m.kind == "label":  # a can: metal rims, a printed band
            col = np.repeat(m.colour[None], len(a), 0)
            y = p[:, 1] - m.base_y
            rim = (y < 1.0) | (y > 11.2)
            col[rim] = (200, 202, 206)
            col[(np.abs(y - 6.5) < 1.1) & ~rim] = (250, 248, 240)
        elif m.kind == "book":  # covers on top and spine, cream pages on the sides
            col = np.repeat(m.colour[None], len(a), 0)
            pages = np.abs(nrm[:, 0]) > 0.5
            col[pages] = np.array([236, 228, 206], np.float32) * (1 - 0.06 * (np.sin(p[pages, 1] * 9) > 0))[:, None]
        elif m.kind == "foliage":
            g = _noise(a * 0.8, b * 0.8, m.seed)
            col = m.colour[None] * (0.7 + 0.5 * g[:, None])
        else:  # plain paint, lacquer, ceramic
            col = np.repeat(m.colour[None], len(a), 0)
            if m.kind == "paint":  # a faint roller texture
                col *= (1 + 0.02 * (_noise(a * 0.2, b * 0.2, m.seed) - 0.5))[:, None]
        out[sel] = col
    return out


def _shade(sc: _Scene, fr: _Frame, albedo: np.ndarray, direct: np.ndarray) -> np.ndarray:
    """Lambert plus a Blinn highlight on glossy materials, and window light falling on the floor."""
    gloss = np.array([m.gloss for m in sc.mats], np.float32)[fr.mat]
    view = sc.cam.origin - fr.p
    view /= np.maximum(np.linalg.norm(view, axis=-1, keepdims=True), 1e-6)
    half = view + sc.light
    half /= np.maximum(np.linalg.norm(half, axis=-1, keepdims=True), 1e-6)
    spec = gloss * np.clip((fr.n * half).sum(-1), 0, 1).astype(np.float32) ** 40 * direct
    light = sc.ambient + (1.05 - sc.ambient) * direct
    if sc.window is not None and sc.light[2] > 0.05:  # the window's patch of sun on the floor
        wx0, wx1, wy0, wy1 = sc.window
        up = fr.n[..., 1] > 0.5
        k = (sc.wall_z - fr.p[..., 2]) / sc.light[2]
        q = fr.p + k[..., None] * sc.light
        patch = up & (k > 0) & (q[..., 0] > wx0) & (q[..., 0] < wx1) & (q[..., 1] > wy0) & (q[..., 1] < wy1)
        light = light + 0.28 * cv2.GaussianBlur(patch.astype(np.float32), (0, 0), 2.0)
    return np.asarray(albedo * light[..., None] + 255 * spec[..., None] * 0.6, np.float32)


# -- props at real-world scale -------------------------------------------------------------------------------
# kind → (height cm, half-width cm, recognisable scale cue)
PROPS: dict[str, tuple[float, float, bool]] = {
    "mug": (9.5, 5.4, True), "can": (12.2, 3.3, True), "books": (9.0, 11.0, True), "apple": (8.6, 4.0, True),
    "orange": (8.4, 4.2, True), "vase": (24.0, 5.5, True), "plant": (28.0, 9.0, True), "candle": (10.0, 3.6, True),
    "block": (9.0, 4.5, False), "ball": (12.0, 6.0, False),
}


def _prop_solids(rng: np.random.Generator, kind: str, base: np.ndarray, right: np.ndarray, label: int,
                 mats: list[_Material], rim_main: np.ndarray, rim: np.ndarray) -> list[_Solid]:
    """A prop standing at world point ``base`` as solids (materials appended to ``mats``)."""
    x, y, z = (float(v) for v in base)

    def mat(kind_: str, options: tuple[tuple[int, int, int], ...], gloss: float = 0.0) -> int:
        mats.append(_Material(kind_, _pick(rng, options, rim_main, rim, 28.0), gloss, seed=int(rng.integers(1000))))
        return len(mats) - 1

    if kind == "mug":
        m = mat("plain", ((244, 242, 236), (40, 44, 52), (200, 110, 90), (110, 150, 186), (230, 196, 90)), 0.35)
        side = float(np.sign(right[0]) or 1.0) * (1 if rng.random() < 0.5 else -1)
        hx = x + side * 4.8  # the handle, a small block on one side
        return [_Solid("cyl", (x, z, 4.1, y, y + 9.5), m, label),
                _Solid("box", (hx - 0.8, y + 2.0, z - 0.6, hx + 1.4, y + 7.5, z + 0.6), m, label)]
    if kind == "can":
        mats.append(_Material("label", _pick(rng, ((200, 30, 40), (30, 90, 170), (240, 200, 40), (40, 140, 80)),
                                              rim_main, rim, 28.0), 0.5, y))
        return [_Solid("cyl", (x, z, 3.3, y, y + 12.2), len(mats) - 1, label)]
    if kind == "books":
        out, top = [], y
        for _ in range(int(rng.integers(2, 4))):
            th = float(rng.uniform(2.4, 3.6))
            hw, hd = float(rng.uniform(7.5, 11.0)), float(rng.uniform(9.5, 13.0))
            dx = float(rng.uniform(-1.0, 1.0))
            mats.append(_Material("book", _pick(rng, ((170, 50, 44), (40, 70, 120), (60, 100, 70), (220, 196, 150),
                                                       (30, 30, 34)), rim_main, rim, 28.0)))
            out.append(_Solid("box", (x - hw + dx, top, z - hd, x + hw + dx, top + th, z + hd), len(mats) - 1, label))
            top += th
        return out
    if kind in ("apple", "orange"):
        m = mat("plain", ((200, 40, 36), (120, 170, 60)) if kind == "apple" else ((236, 130, 30),), 0.3)
        r = 4.0 if kind == "apple" else 4.2
        out = [_Solid("sphere", (x, y + r, z, r), m, label)]
        if kind == "apple":
            mats.append(_Material("plain", np.array([90, 60, 30], np.float32)))
            out.append(_Solid("cyl", (x, z, 0.25, y + 2 * r - 0.5, y + 2 * r + 0.6), len(mats) - 1, label))
        return out
    if kind == "vase":
        m = mat("plain", ((226, 220, 210), (150, 180, 170), (60, 70, 90), (200, 150, 120)), 0.4)
        return [_Solid("cyl", (x, z, 5.5, y, y + 20.0), m, label), _Solid("cyl", (x, z, 2.6, y + 20.0, y + 24.0), m, label)]
    if kind == "plant":
        pot = mat("plain", ((190, 100, 70), (236, 232, 226), (60, 60, 64)))
        mats.append(_Material("foliage", np.array([70, 130, 70], np.float32), seed=int(rng.integers(1000))))
        return [_Solid("cyl", (x, z, 7.0, y, y + 12.0), pot, label),
                _Solid("sphere", (x, y + 19.0, z, 9.0), len(mats) - 1, label)]
    if kind == "candle":
        m = mat("plain", ((246, 240, 226), (230, 214, 190), (200, 60, 60)))
        return [_Solid("cyl", (x, z, 3.6, y, y + 10.0), m, label)]
    if kind == "block":
        m = mat("plain", _SOLID_COLOURS)
        return [_Solid("box", (x - 4.5, y, z - 4.5, x + 4.5, y + 9.0, z + 4.5), m, label)]
    m = mat("plain", _SOLID_COLOURS, 0.5)  # ball
    return [_Solid("sphere", (x, y + 6.0, z, 6.0), m, label)]


def _stands_on(top: tuple[float, float, float, float] | None, round_top: bool, pos: np.ndarray, centre: np.ndarray,
               half: float) -> bool:
    """Whether a prop ``half`` cm wide at ``pos`` fits on the support's top (a disc round ``centre`` when round)."""
    if top is None or not (top[0] + half < pos[0] < top[1] - half and top[2] + half < pos[2] < top[3] - half):
        return False
    return not round_top or float(np.hypot(pos[0] - centre[0], pos[2] - centre[2])) < (top[1] - top[0]) / 2 - half


def _prop_box(cam: _Camera, pos: np.ndarray, half: float, cm: float) -> tuple[float, float, float, float]:
    """A prop's screen box: its width at its front, its height from the front of its base up to its real height
    (what a viewer reads as its size; the top face seen from above is not height)."""
    front = pos - half * cam.fwd
    ends = cam.project(np.stack([front - half * cam.right, front + half * cam.right, front + np.array([0, cm, 0]),
                                 front]))
    return float(ends[:, 0].min()), float(ends[2, 1]), float(ends[:, 0].max()), float(ends[3, 1])


def _free(pb: tuple[float, float, float, float], taken: list[tuple[float, float, float, float]], W: int, H: int
          ) -> bool:
    """Inside the canvas and over nothing already placed (the product, the copy, other props)."""
    return pb[0] >= 1 and pb[2] <= W - 1 and pb[1] >= 1 and pb[3] <= H - 1 and not any(
        pb[0] < t_[2] and t_[0] < pb[2] and pb[1] < t_[3] and t_[1] < pb[3] for t_ in taken)


# -- copy ------------------------------------------------------------------------------------------------------
def _typeset(canvas: Image.Image, rng: np.random.Generator, zone: Box, product: Product) -> dict[str, Box]:
    """Headline (wrapped, largest size that fits) over an accent rule, then the tagline, left-aligned or centred."""
    draw = ImageDraw.Draw(canvas)
    bg = np.asarray(canvas)[zone.y0 : zone.y1, zone.x0 : zone.x1].reshape(-1, 3).astype(np.float32)
    light_bg = float(np.median(bg @ np.array([0.299, 0.587, 0.114], np.float32))) > 128
    ink = (24, 24, 28) if light_bg else (250, 250, 248)
    face = ("sans-bold", "narrow-bold", "serif-bold", "dejavu-serif-bold")[int(rng.integers(4))]
    words = str(product.attrs.get("headline") or product.title).split() or ["New"]
    centred = bool(rng.random() < 0.5)
    size = max(10, int(zone.h * 0.45))
    while True:
        fnt = typeface(face, size)
        lines: list[str] = []
        for w in words:
            if lines and draw.textlength(lines[-1] + " " + w, font=fnt) <= zone.w:
                lines[-1] += " " + w
            else:
                lines.append(w)
        tall = len(lines) * size * 1.2 + (size * 0.9 if product.copy else 0) + 6
        if (tall <= zone.h and max(draw.textlength(s, font=fnt) for s in lines) <= zone.w) or size <= 10:
            break
        size -= max(1, size // 10)
    y = float(zone.y0)
    right = zone.x0
    for s in lines:
        tw = draw.textlength(s, font=fnt)
        x = zone.x0 + (zone.w - tw) / 2 if centred else zone.x0
        draw.text((x, y), s, font=fnt, fill=ink)
        right = max(right, int(x + tw) + 1)
        y += size * 1.2
    left = min(zone.x0 + int((zone.w - (right - zone.x0)) / 2), zone.x0) if not centred else zone.x0
    boxes = {"headline": Box(zone.x0, zone.y0, min(zone.x1, max(right, zone.x0 + 1)), min(zone.y1, int(y) + 1))}
    rule_w = int(min(zone.w, size * 2.4))
    rx = zone.x0 + (zone.w - rule_w) // 2 if centred else left
    accent = tuple(int(v) for v in rng.integers(40, 220, 3))
    draw.rectangle([rx, int(y) + 1, rx + rule_w, int(y) + 3], fill=accent)  # type: ignore[arg-type]
    y += 6
    if product.copy and y + size * 0.55 <= zone.y1:
        f2 = typeface("sans", max(9, int(size * 0.5)))
        tag = product.copy
        while tag and draw.textlength(tag, font=f2) > zone.w:
            tag = tag[:-2]
        tw = draw.textlength(tag, font=f2)
        x = zone.x0 + (zone.w - tw) / 2 if centred else zone.x0
        draw.text((x, y), tag, font=f2, fill=ink)
        boxes["copy"] = Box(int(x), int(y), min(zone.x1, int(x + tw) + 1), min(zone.y1, int(y + size * 0.6) + 1))
    return boxes


def _tag(canvas: Image.Image, rng: np.random.Generator, product: Product, room: Box) -> dict[str, Box]:
    """A swing tag (a notched label with a punched hole) carrying the price, or a ribbon carrying the badge."""
    badge = product.attrs.get("badge")
    use_badge = bool(badge) and (product.price is None or rng.random() < 0.5)
    text = str(badge) if use_badge else (f"${product.price:,.0f}" if product.price is not None and product.price >= 100
                                         else f"${product.price:,.2f}" if product.price is not None else "")
    if not text:
        return {}
    draw = ImageDraw.Draw(canvas)
    fs = max(9, int(room.h * 0.34))
    fnt = typeface("sans-bold", fs)
    while fs > 9 and draw.textlength(text, font=fnt) > room.w * 0.7:
        fs -= 1
        fnt = typeface("sans-bold", fs)
    tw = draw.textlength(text, font=fnt)
    w, h = min(room.w, int(tw + fs * 1.6)), min(room.h, int(fs * 1.9))
    x0, y0 = room.x0 + (room.w - w) // 2, room.y0 + (room.h - h) // 2
    col = tuple(int(v) for v in rng.integers(20, 235, 3))
    dark_text = col[0] * 0.299 + col[1] * 0.587 + col[2] * 0.114 > 140
    notch = h // 2
    if use_badge:  # a ribbon with forked ends
        poly = [(x0, y0), (x0 + w, y0), (x0 + w - notch // 2, y0 + h // 2), (x0 + w, y0 + h), (x0, y0 + h),
                (x0 + notch // 2, y0 + h // 2)]
    else:  # a swing tag: pointed on the left, a hole near the point
        poly = [(x0 + notch, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0 + notch, y0 + h), (x0, y0 + h // 2)]
    draw.polygon(poly, fill=col)  # type: ignore[arg-type]
    if not use_badge:
        r = max(1, h // 9)
        draw.ellipse([x0 + notch * 0.6 - r, y0 + h / 2 - r, x0 + notch * 0.6 + r, y0 + h / 2 + r],
                     fill=(250, 250, 250))
    left, right = (notch // 2, w - notch // 2) if use_badge else (notch, w)  # the text centred on the body
    tx = x0 + left + (right - left - tw) / 2
    draw.text((tx, y0 + (h - fs * 1.15) / 2), text, font=fnt, fill=(20, 20, 20) if dark_text else (255, 255, 255))
    return {"badge" if use_badge else "price": Box(x0, y0, x0 + w, y0 + h)}


# -- shadows, reflections, depth of field -------------------------------------------------------------------
def _shadow_map(cam: _Camera, depth: float, ys: float, light: np.ndarray, offset: np.ndarray,
                box: tuple[int, int, int, int]) -> np.ndarray:
    """The homography taking the product's (flat, upright, at camera depth ``depth``) screen pixels to where
    their shadow falls on the plane y = ``ys`` along ``light`` (moved by ``offset`` in the world first)."""
    x0, y0, x1, y1 = box
    src = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    P = cam.point(src[:, 0], src[:, 1], depth) + offset
    S = P - ((P[:, 1] - ys) / light[1])[:, None] * light[None, :]
    dst = cam.project(S)[:, :2]
    return np.asarray(cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)))


def _penumbra(caster: np.ndarray, Hm: np.ndarray, vc: int, W: int, H: int, ph: int) -> np.ndarray:
    """The caster's silhouette warped onto the support, blurred more where it comes from higher above the
    contact line (a penumbra that widens with distance from the base)."""
    height = np.clip(vc - np.arange(H, dtype=np.float32), 0, None)[:, None] * caster
    A = cv2.warpPerspective(caster, Hm, (W, H), flags=cv2.INTER_LINEAR)
    Hh = cv2.warpPerspective(height, Hm, (W, H), flags=cv2.INTER_LINEAR)
    wide = max(2.0, 0.08 * ph)
    rel = cv2.GaussianBlur(Hh, (0, 0), wide) / np.maximum(cv2.GaussianBlur(A, (0, 0), wide), 1e-3) / max(ph, 1)
    sig = [0.6 + 0.004 * ph, 0.02 * ph, 0.045 * ph, 0.08 * ph]
    levels = np.stack([cv2.GaussianBlur(A, (0, 0), max(0.6, sg)) for sg in sig])
    x = np.clip(rel * 3, 0, 2.999)
    i = x.astype(np.int64)
    w = (x - i)[None]
    lo = np.take_along_axis(levels, i[None], 0)
    hi = np.take_along_axis(levels, i[None] + 1, 0)
    return np.asarray(np.clip((lo * (1 - w) + hi * w)[0], 0, 1), np.float32)


def _contact(fx0: float, fx1: float, vc: float, ph: int, W: int, H: int) -> np.ndarray:
    """The dark line where the base meets the support (ambient occlusion)."""
    c = np.zeros((H, W), np.float32)
    cv2.ellipse(c, (round((fx0 + fx1) / 2), round(vc)), (max(2, int((fx1 - fx0) * 0.52)),
                                                                     max(1, int(ph * 0.018))), 0, 0, 360, 1.0, -1)
    return np.asarray(np.clip(cv2.GaussianBlur(c, (0, 0), max(1.0, ph * 0.012)) * 1.3, 0, 1), np.float32)


def _reflect(plate: np.ndarray, ref: np.ndarray, x0: int, y0: int, base_off: int, ph: int, surface: np.ndarray
             ) -> np.ndarray:
    """A faint mirror image of the product in a polished surface, fading with distance from the base."""
    H, W = plate.shape[:2]
    mir = ref[: base_off + 1][::-1].astype(np.float32)
    h = mir.shape[0]
    fade = np.clip(1 - np.arange(h, dtype=np.float32) / max(1.0, 0.35 * ph), 0, 1) ** 1.5
    a = np.zeros((H, W), np.float32)
    rgb = np.zeros((H, W, 3), np.float32)
    stamp(a, mir[..., 3] / 255.0 * fade[:, None] * 0.2, x0, y0 + base_off + 2)
    stamp(rgb, mir[..., :3], x0, y0 + base_off + 2)
    a = cv2.GaussianBlur(a, (0, 0), 1.0) * surface
    return np.asarray(plate * (1 - a[..., None]) + cv2.GaussianBlur(rgb, (0, 0), 1.0) * a[..., None], np.float32)


def _depth_of_field(plate: np.ndarray, t: np.ndarray, depth: float, amount: float) -> np.ndarray:
    """Blur growing with the distance from the focal plane (at the product's depth): a blend of blur levels."""
    coc = np.clip(amount * np.abs(1 - depth / np.maximum(t, 1e-3)), 0, amount)
    sig = [0.0, amount / 3, 2 * amount / 3, amount]
    levels = [plate] + [cv2.GaussianBlur(plate, (0, 0), max(0.5, sg)) for sg in sig[1:]]
    x = np.clip(coc / max(amount, 1e-6) * 3, 0, 3).astype(np.float32)
    out = np.zeros_like(plate)
    for i in range(4):  # tent weights over the four levels sum to one
        out += levels[i] * np.clip(1 - np.abs(x - i), 0, 1)[..., None]
    return out


# -- damage to the product ------------------------------------------------------------------------------------
def _holes(rng: np.random.Generator, ref: np.ndarray, s: float, x0: int, y0: int, W: int, H: int) -> np.ndarray:
    """Round holes punched through the product: the canvas pixels where it is gone."""
    a = (ref[..., 3] >= OPAQUE).astype(np.uint8)
    area = int(a.sum())
    n = int(rng.integers(1, 5))
    r = max(2.5, float(np.sqrt(area * (0.05 + 0.22 * s) / (np.pi * n))))
    dist = cv2.distanceTransform(a, cv2.DIST_L2, 3)
    holes = np.zeros(a.shape, np.uint8)
    for _ in range(n):
        ok = np.argwhere(dist >= min(r * 1.05, float(dist.max()) * 0.8))
        if not len(ok):
            break
        cy, cx = ok[int(rng.integers(len(ok)))]
        rr = r * float(rng.uniform(0.8, 1.2))
        cv2.circle(holes, (int(cx), int(cy)), round(rr), 1, -1)
        dist[(np.arange(a.shape[0])[:, None] - cy) ** 2 + (np.arange(a.shape[1])[None] - cx) ** 2 < (2.2 * rr) ** 2] = 0
    out = np.zeros((H, W), bool)
    stamp(out, (holes > 0) & (a > 0), x0, y0)
    return out


def _tear(rng: np.random.Generator, ref: np.ndarray, s: float) -> np.ndarray:
    """A source torn along a ragged line: one part gone, the edge left behind smeared along the tear."""
    h, w = ref.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = float(rng.uniform(0, 2 * np.pi))
    nx, ny = np.cos(ang), np.sin(ang)
    along = -(xx - w / 2) * ny + (yy - h / 2) * nx
    ragged = (_noise(along / max(3.0, 0.05 * max(h, w)), np.zeros_like(along), int(rng.integers(1000))) - 0.5)
    proj = (xx - w / 2) * nx + (yy - h / 2) * ny + ragged * 0.12 * max(h, w)
    a = ref[..., 3] >= OPAQUE
    vals = np.sort(proj[a])
    if not len(vals):
        return ref.copy()
    thr = float(vals[int(len(vals) * (1 - (0.1 + 0.32 * s)))])
    out = ref.copy()
    out[..., 3][proj > thr] = 0
    band = max(2.0, 0.07 * max(h, w))
    near = (proj <= thr) & (proj > thr - band) & a
    pull = (band - (thr - proj[near])) * 1.6 + 1
    sx = np.clip(xx[near] - nx * pull, 0, w - 1).astype(np.int64)
    sy = np.clip(yy[near] - ny * pull, 0, h - 1).astype(np.int64)
    out[..., :3][near] = ref[sy, sx, :3]
    return np.ascontiguousarray(out)


def _pixelate(ref: np.ndarray, s: float) -> np.ndarray:
    """A source blown up from a mosaic of coarse blocks."""
    h, w = ref.shape[:2]
    b = max(3, round((0.035 + 0.06 * s) * max(h, w)))
    small = cv2.resize(ref, (max(1, -(-w // b)), max(1, -(-h // b))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))


def _motion(rng: np.random.Generator, ref: np.ndarray, s: float) -> np.ndarray:
    """The product streaked by camera shake: a line kernel over its premultiplied pixels."""
    h, w = ref.shape[:2]
    n = max(3, int((0.025 + 0.055 * s) * max(h, w))) | 1
    kern = np.zeros((n, n), np.float32)
    ang = float(rng.uniform(0, np.pi))
    c = n // 2
    for i in range(n):
        d = i - c
        kern[round(c + d * np.sin(ang)), round(c + d * np.cos(ang))] = 1
    kern /= kern.sum()
    a = ref[..., 3:4].astype(np.float32) / 255
    pre = np.concatenate([ref[..., :3].astype(np.float32) * a, a * 255], axis=-1)
    blurred = cv2.filter2D(pre, -1, kern, borderType=cv2.BORDER_CONSTANT)
    alpha = blurred[..., 3:4] / 255
    rgb = blurred[..., :3] / np.maximum(alpha, 1e-3)
    return np.ascontiguousarray(np.clip(np.concatenate([rgb, blurred[..., 3:4]], -1) + 0.5, 0, 255).astype(np.uint8))


# -- the renderer -----------------------------------------------------------------------------------------------
class Perspective(SceneRenderer):
    """Renderer family ``perspective``: ray-cast 3D rooms seen through a pinhole camera (see the module
    docstring)."""

    name = "perspective"
    version = VERSION

    @register_to_config
    def __init__(self, scale: float = 1.0, text_rate: float = 0.6, dof_rate: float = 0.4) -> None:
        self.scale = scale
        self.text_rate = text_rate
        self.dof_rate = dof_rate
        self.config: dict[str, Any]

    def generate_one(self, product: Product, *, seed: int, aspect: str, defect: str | None = None,
                     severity: float = 0.5) -> GeneratedImage:
        rng = np.random.default_rng(seed)
        W, H = canvas_size(aspect, self.scale)
        cut = crop_rgba(product.image)
        palette = product_palette(cut)
        rim_main = rim_colour(cut)
        rim = rim_samples(cut)
        body = _body(cut)
        cm = real_height_cm(product)
        want = defect if defect not in (None, "available") else None
        kind = _DEFECT_KINDS[want][int(rng.integers(len(_DEFECT_KINDS[want])))] if want else "clean"
        if kind == "low-key" and rim_main[0] > 45:  # low key hides only a dark product; a light one goes in fog
            kind = "fog"
        s = float(severity)

        # -- copy and tag zones --------------------------------------------------------------------------
        m = max(4, int(0.045 * min(W, H)))
        free = Box(m, m, W - m, H - m)
        zone: Box | None = None
        tag_room: Box | None = None
        if rng.random() < self.text_rate:
            if W > 1.3 * H and rng.random() < 0.6:
                cw = int(W * rng.uniform(0.28, 0.36))
                if rng.random() < 0.5:
                    zone, free = Box(m, int(H * 0.22), m + cw, int(H * 0.6)), Box(m + cw + m, m, W - m, H - m)
                else:
                    zone, free = Box(W - m - cw, int(H * 0.22), W - m, int(H * 0.6)), Box(m, m, W - 2 * m - cw, H - m)
            else:
                zh = int(H * rng.uniform(0.13, 0.19))
                zone, free = Box(m, m, W - m, m + zh), Box(m, m + zh + m // 2, W - m, H - m)
            if rng.random() < 0.55:
                th = int(min(W, H) * 0.11)
                tw = int(th * 2.6)
                if zone.h > zone.w:  # a column: the tag under the copy
                    tag_room = Box(zone.x0, zone.y1 + m, min(zone.x1, zone.x0 + tw), zone.y1 + m + th)
                else:  # a band: the tag at its right end
                    tag_room = Box(zone.x1 - tw, zone.y0, zone.x1, zone.y0 + min(th, zone.h))
                    zone = Box(zone.x0, zone.y0, zone.x1 - tw - m, zone.y1)

        # -- the product's size, contact row and the camera -----------------------------------------------
        asp = cut.shape[1] / cut.shape[0]
        long = min(free.w, free.h) * float(rng.uniform(0.45, 0.75))
        ph = long if asp <= 1 else long / asp
        ph = min(ph, 0.72 * free.h, 0.62 * free.w / asp)
        if kind == "edge-cut":  # a product too wide for the frame
            ph = min(0.7 * free.h, max(ph, W * float(rng.uniform(0.55, 0.8)) / asp))
        if max(ph, ph * asp) < 0.3 * min(W, H):
            ph = min(0.3 * min(W, H) / max(1.0, asp), 0.8 * free.h)
        r = 1.0  # how much bigger the product is drawn than its depth allows
        if kind == "giant-back":
            r = 1.95 + 2.0 * s
        elif kind == "speck-front":
            r = 1 / (1.95 + 2.0 * s)
            ph *= float(rng.uniform(0.35, 0.6))
        grow = 0
        if kind == "pedestal":
            grow = int(ph * (0.22 + 0.3 * s))
            if ph + grow > 0.85 * free.h:
                f_ = 0.85 * free.h / (ph + grow)
                ph, grow = ph * f_, int(grow * f_)
        ph = max(6.0, ph)
        pw = max(6, round(ph * asp))
        if kind != "edge-cut":  # a sliver wider than 6 px tall cannot fit: squeezed to the frame
            pw = min(pw, max(6, int(0.95 * free.w)))
        ph_i = max(6, round(ph))
        ref = fit(cut, pw, ph_i)
        a_ref = ref[..., 3] >= OPAQUE
        rows = np.nonzero(a_ref.any(axis=1))[0]
        base_off = int(rows.max()) if len(rows) else ph_i - 1
        top_off = int(rows.min()) if len(rows) else 0
        band = max(2, ph_i // 25)
        foot = np.nonzero(a_ref[max(0, base_off - band) : base_off + 1].any(axis=0))[0]
        f0, f1 = (int(foot.min()), int(foot.max()) + 1) if len(foot) else (0, pw)

        lo = free.y0 + base_off + grow + 2
        hi = free.y1 - max(3, int(0.05 * H))
        if kind == "sink":
            hi = min(hi, H - int(0.2 * ph_i) - 4)
        lo = min(lo, hi)
        if kind == "giant-back":
            vc = lo + (hi - lo) * float(rng.uniform(0.0, 0.25))
            g = ph_i * float(rng.uniform(0.08, 0.2))
        elif kind == "speck-front":
            vc = lo + (hi - lo) * float(rng.uniform(0.35, 0.7))
            g = max(ph_i * 1.2, (vc - free.y0) * float(rng.uniform(0.3, 0.55)))
        else:
            vc = lo + (hi - lo) * float(rng.uniform(0.15, 0.9))
            g = ph_i * float(rng.uniform(0.3, 1.3))
        g = max(g, 4.0)
        f = max(W, H) * float(rng.uniform(0.85, 1.6))
        k = ph_i / (cm * r)  # px per cm at the product's depth
        depth = f / k
        lift = 0
        if kind == "float":
            lift = int(ph_i * (0.06 + 0.3 * s)) + 4
        elif kind == "sink":
            lift = -(int(ph_i * (0.06 + 0.25 * s)) + 4)
        elif kind == "on-wall":  # pinned to the wall right behind it, above the floor
            lift = min(int(ph_i * (0.1 + 0.35 * s)) + 4, max(4, int(vc - base_off - free.y0)))
        if kind == "edge-cut":
            over = 0.06 + 0.35 * s
            ucx = (-pw * over + pw / 2) if rng.random() < 0.5 else (W + pw * over - pw / 2)
        else:
            inset = 0.3 * pw if kind in ("own-colours", "low-key", "fog") else 0.0  # the room reaches past both sides
            span = max(0.0, free.w - pw - 2 * inset)
            ucx = free.x0 + inset + pw / 2 + span * float(rng.uniform(0.1, 0.9))
        x0 = round(ucx - pw / 2)
        ufoot = x0 + (f0 + f1) / 2
        cam = _Camera(f=f, cx=W / 2 + float(rng.uniform(-0.08, 0.08)) * W, yh=vc - g,
                      yaw=float(rng.uniform(-0.32, 0.32)), height=0.0)

        # -- the support and the room --------------------------------------------------------------------
        big = cm * r > 60
        if kind in ("off-edge",):
            options: tuple[str, ...] = ("table", "plinth", "shelf")
        elif kind == "on-wall":
            options = ("floor",)
        elif kind in ("sink", "edge-cut", "own-colours", "low-key", "fog") or kind == "giant-back":  # wide surfaces
            options = ("floor", "table")
        elif big:
            options = ("floor", "floor", "plinth", "podium")
        else:
            options = (*SUPPORTS, "table")
        sup = options[int(rng.integers(len(options)))]
        wcm, hcm = pw / k, ph_i / k  # the product's size in the scene's units
        dcm = min(wcm, hcm) * 0.6
        ys = {"floor": 0.0, "table": 74.0, "plinth": hcm * float(rng.uniform(0.3, 0.9)) + 6.0,
              "podium": hcm * float(rng.uniform(0.2, 0.7)) + 5.0, "shelf": float(rng.uniform(95, 140))}[sup]
        cam.height = ys + g / k
        B = cam.point(ufoot, vc, depth)
        B[1] = ys
        light_side = float(rng.choice([-1.0, 1.0]))
        el = float(rng.uniform(0.6, 1.05))
        az = float(rng.uniform(0.3, 1.2))
        wall = WALLS[int(rng.integers(len(WALLS)))] if sup != "shelf" else ("plain", "panelled")[int(rng.integers(2))]
        behind = 1.0 if (wall == "window" or rng.random() < 0.5) and kind != "on-wall" else -1.0
        Lc = np.array([light_side * np.cos(el) * np.cos(az), np.sin(el), behind * np.cos(el) * np.sin(az)])
        Lw = Lc[0] * cam.right + np.array([0, Lc[1], 0]) + Lc[2] * cam.fwd
        Lw /= np.linalg.norm(Lw)

        mats: list[_Material] = []

        def material(kind_: str, colour: np.ndarray, gloss: float = 0.0) -> int:
            mats.append(_Material(kind_, np.asarray(colour, np.float32), gloss, seed=int(rng.integers(10_000))))
            return len(mats) - 1

        floor_kind = ("planks", "tiles", "concrete", "marble")[int(rng.integers(4))]
        floor_mat = material(floor_kind, _pick(rng, _SURFACE_COLOURS[floor_kind], rim_main, rim),
                             0.3 if floor_kind in ("marble", "tiles") else 0.05)
        wall_col = _pick(rng, _WALL_COLOURS, rim_main, rim)
        wall_mat = material("window" if wall == "window" else "panelled" if wall == "panelled" else "paint", wall_col)
        if sup == "shelf":
            wall_z = B[2] + max(dcm, 6.0) * 0.9 + 1.0
        elif kind == "on-wall":
            wall_z = B[2] + 0.5
        else:
            wall_z = B[2] + max(dcm, 8.0) + depth * float(rng.uniform(0.25, 1.6)) + 20.0
        solids: list[_Solid] = []
        top: tuple[float, float, float, float] | None = None
        sup_kind = ("linen", "marble", "planks", "concrete")[int(rng.integers(4))]
        glossy = False
        if sup == "table":
            tmat = material(sup_kind, _pick(rng, _SURFACE_COLOURS[sup_kind], rim_main, rim),
                            0.35 if sup_kind == "marble" else 0.05)
            glossy = sup_kind == "marble"
            lx = wcm * float(rng.uniform(1.0, 4.0)) + 15
            rx = wcm * float(rng.uniform(1.0, 4.0)) + 15
            zf = B[2] - dcm / 2 - depth * float(rng.uniform(0.05, 0.35))
            zb = min(wall_z - 2, B[2] + dcm / 2 + float(rng.uniform(15, 50)))
            top = (B[0] - lx, B[0] + rx, zf, zb)
            leg = material("plain", _pick(rng, _SOLID_COLOURS, rim_main, rim, 20.0))
            solids.append(_Solid("box", (top[0], ys - 3.5, zf, top[1], ys, zb), tmat, 1))
            for lxp, lzp in ((top[0] + 3, zf + 3), (top[1] - 3, zf + 3), (top[0] + 3, zb - 3), (top[1] - 3, zb - 3)):
                solids.append(_Solid("box", (lxp - 2.2, 0, lzp - 2.2, lxp + 2.2, ys - 3.5, lzp + 2.2), leg, 1))
        elif sup == "plinth":
            pmat = material("plain" if rng.random() < 0.6 else "concrete",
                            _pick(rng, _SOLID_COLOURS, rim_main, rim), float(rng.uniform(0.0, 0.4)))
            glossy = mats[pmat].gloss > 0.3
            hw = wcm / 2 * float(rng.uniform(1.3, 1.8)) + 1.0
            hd = max(dcm / 2 * 1.4, hw * float(rng.uniform(0.6, 1.0)))
            top = (B[0] - hw, B[0] + hw, B[2] - hd, B[2] + hd)
            solids.append(_Solid("box", (top[0], 0, top[2], top[1], ys, top[3]), pmat, 1))
        elif sup == "podium":
            pmat = material("plain", _pick(rng, _SOLID_COLOURS, rim_main, rim), float(rng.uniform(0.0, 0.5)))
            glossy = mats[pmat].gloss > 0.3
            rad = max(wcm / 2 * float(rng.uniform(1.3, 1.8)), dcm / 2 * 1.4) + 1.0
            solids.append(_Solid("cyl", (B[0], B[2], rad, 0.0, ys), pmat, 1))
            top = (B[0] - rad, B[0] + rad, B[2] - rad, B[2] + rad)
        elif sup == "shelf":
            smat = material(("planks", "plain")[int(rng.integers(2))], _pick(rng, _SOLID_COLOURS, rim_main, rim))
            half = wcm * float(rng.uniform(1.5, 4.0)) + 20
            top = (B[0] - half, B[0] + half, B[2] - max(dcm, 6.0) * 0.9, wall_z)
            solids.append(_Solid("box", (top[0], ys - 2.5, top[2], top[1], ys, wall_z), smat, 1))
            for bx in (B[0] - half * 0.6, B[0] + half * 0.6):
                solids.append(_Solid("box", (bx - 1, ys - 14, wall_z - (top[3] - top[2]) * 0.8, bx + 1, ys - 2.5, wall_z),
                                     smat, 2))
        else:
            glossy = floor_kind in ("marble", "tiles")
        if kind == "off-edge" and top is not None:  # the support ends under the product's foot
            fw = (f1 - f0) / k
            side = 1.0 if ucx > W / 2 else -1.0
            edge = B[0] - side * (0.06 + 0.36 * s) * fw
            top = (top[0], edge, top[2], top[3]) if side > 0 else (edge, top[1], top[2], top[3])
            if sup == "table":
                solids = [_Solid("box", (top[0], ys - 3.5, top[2], top[1], ys, top[3]), solids[0].mat, 1)]
                for lxp, lzp in ((top[0] + 3, top[2] + 3), (top[1] - 3, top[2] + 3)):
                    solids.append(_Solid("box", (lxp - 2.2, 0, lzp - 2.2, lxp + 2.2, ys - 3.5, lzp + 2.2),
                                         solids[0].mat, 1))
            elif sup == "plinth":
                solids[0] = _Solid("box", (top[0], 0, top[2], top[1], ys, top[3]), solids[0].mat, 1)
            else:
                solids[0] = _Solid("box", (top[0], ys - 2.5, top[2], top[1], ys, wall_z), solids[0].mat, 1)
        window = None
        if wall == "window":
            wxc = B[0] + light_side * float(rng.uniform(0.2, 0.8)) * max(60.0, depth * 0.6)
            ww = max(40.0, depth * float(rng.uniform(0.3, 0.6)))
            window = (wxc - ww / 2, wxc + ww / 2, max(ys + 20, cam.height - ww * 0.4), max(ys + 20, cam.height - ww * 0.4) + ww * 1.1)
        ambient = 0.5 if kind != "low-key" else 0.2

        # -- props at the product's depth ---------------------------------------------------------------
        box = (x0, round(vc - lift - base_off - grow), x0 + pw, round(vc - lift - base_off - grow) + ph_i)
        y0 = box[1]
        taken: list[tuple[float, float, float, float]] = [(box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4)]
        taken += [(b.x0, b.y0, b.x1, b.y1) for b in (zone, tag_room) if b is not None]
        props: list[Prop] = []
        want_props = int(rng.choice([0, 1, 2, 3], p=[0.2, 0.35, 0.3, 0.15]))
        if kind in ("giant-back", "speck-front"):
            want_props = max(2, want_props)
        if kind in ("on-wall",):
            want_props = 0
        pool = [pk for pk, (pcm, _, cue) in PROPS.items() if (cue or kind not in ("giant-back", "speck-front"))
                and 10 <= pcm * k <= 0.9 * (vc - free.y0) and pcm <= 3.5 * cm * r]
        rng.shuffle(pool)
        if kind == "speck-front":  # props blown up to the foreground's scale: the small ones fit
            pool.sort(key=lambda q: -PROPS[q][0])
        tries = 0
        while pool and len(props) < want_props and tries < 20:
            tries += 1
            pk = pool[-1]
            pcm, phw, cue = PROPS[pk]
            side = 1.0 if rng.random() < 0.5 else -1.0
            if kind == "off-edge":
                side = -1.0 if ucx > W / 2 else 1.0
            lat = wcm / 2 + phw + wcm * float(rng.uniform(0.08, 0.5)) + 1.5
            ahead = depth * float(rng.uniform(-0.05, 0.05))
            pos = B + side * lat * cam.right + ahead * cam.fwd
            on_top = _stands_on(top, sup == "podium", pos, B, phw)
            pos[1] = ys if on_top else 0.0  # on the support, else on the floor (the floor's ys is 0)
            if sup in ("table", "shelf") and not on_top:
                pool.insert(0, pool.pop())
                continue
            pb = _prop_box(cam, pos, phw, pcm)
            if not _free(pb, taken, W, H):
                pool.insert(0, pool.pop())  # try another prop next
                continue
            pool.pop()
            label = 10 + len(props)
            solids += _prop_solids(rng, pk, pos, cam.right, label, mats, rim_main, rim)
            taken.append(pb)
            props.append(Prop(tuple(round(v) for v in pb), pcm, pk, cue))  # type: ignore[arg-type]

        # props further back, smaller with depth as the camera sees them; at another depth than the product they
        # set no scale for a depth-blind comparison, so they are reported as not being scale cues
        n_back = int(rng.choice([0, 1, 2], p=[0.45, 0.35, 0.2])) if kind not in ("on-wall", "fog") else 0
        back_pool = [pk for pk in ("plant", "vase", "books", "candle", "mug", "ball") if PROPS[pk][0] * k > 6]
        for _ in range(3 * n_back):
            if n_back <= 0 or not back_pool:
                break
            pk = back_pool[int(rng.integers(len(back_pool)))]
            pcm, phw, _ = PROPS[pk]
            far = depth * float(rng.uniform(0.35, 1.2)) + phw + dcm
            pos = B + far * cam.fwd + float(rng.uniform(-0.6, 0.6)) * far * cam.right
            if pos[2] + phw > wall_z - 1:
                continue
            on_top = _stands_on(top, sup == "podium", pos, B, phw)
            if sup in ("table", "shelf") and not on_top:
                continue
            pos[1] = ys if on_top else 0.0
            pb = _prop_box(cam, pos, phw, pcm)
            if not _free(pb, taken, W, H):
                continue
            solids += _prop_solids(rng, pk, pos, cam.right, 10 + len(props), mats, rim_main, rim)
            taken.append(pb)
            props.append(Prop(tuple(round(v) for v in pb), pcm, pk + "@back", False))  # type: ignore[arg-type]
            n_back -= 1

        sc = _Scene(cam, solids, mats, floor_mat, wall_mat, float(wall_z), Lw, ambient, window)
        fr = _cast(sc, W, H)
        albedo = _albedo(sc, fr)
        direct = _lit(sc, fr)

        # -- the product's shadows on its support ---------------------------------------------------------
        support_top = (fr.n[..., 1] > 0.9) & (np.abs(fr.p[..., 1] - ys) < 0.5)
        caster = np.zeros((H, W), np.float32)
        stamp(caster, ref[..., 3].astype(np.float32) / 255.0, x0, y0)
        extra = np.zeros((H, W), np.float32)
        extra_rgb = np.zeros((H, W, 3), np.float32)
        if kind in ("pedestal", "reflection-twin", "extrude", "fused-part", "melt"):
            extra, extra_rgb = self._grow(rng, kind, ref, x0, y0, base_off, top_off, f0, f1, round(vc), body, cam,
                                          B, k, s, W, H)
        if kind == "pedestal":
            caster = np.maximum(caster, extra)
        shadow_at: tuple[float, float] | None = (ufoot, float(vc))
        root = B
        Ls = Lw
        if kind == "wrong-light":  # thrown towards the light, from a root away from the foot
            Ls = np.array([-Lw[0], Lw[1], -Lw[2]])
            offc = (0.45 + 0.8 * s) * ph_i / k * (1.0 if Lc[0] > 0 else -1.0)
            root = B + offc * cam.right
            sp = cam.project(root)
            shadow_at = (float(sp[0]), float(sp[1]))
        elif kind in ("pedestal", "off-edge"):
            shadow_at = None
        if kind == "on-wall":
            shadow_at = None
        else:
            Hm = _shadow_map(cam, depth, ys, Ls, root - B, (x0, min(y0, int(vc) - 4), x0 + pw, int(vc)))
            sh = _penumbra(caster, Hm, round(vc), W, H, ph_i)
            if (kind != "wrong-light" and kind != "float" and kind != "sink" and kind != "pedestal") or kind == "pedestal":
                sh = np.maximum(sh, _contact(x0 + f0, x0 + f1, vc, ph_i, W, H))
            direct *= 1 - 0.92 * sh * support_top
            albedo *= (1 - 0.35 * _contact(x0 + f0, x0 + f1, vc, ph_i, W, H) * support_top
                       * (kind not in ("float", "wrong-light")))[..., None]
        plate = _shade(sc, fr, albedo, direct)
        if kind == "on-wall":  # pressed against the wall: a tight drop shadow on it
            dx = round(-np.sign(Lc[0]) * 0.05 * ph_i) or 2
            dy = round(0.04 * ph_i) + 1
            drop = cv2.warpAffine(caster, np.array([[1, 0, dx], [0, 1, dy]], np.float32), (W, H))
            drop = cv2.GaussianBlur(drop, (0, 0), max(1.0, 0.02 * ph_i))
            plate *= (1 - 0.45 * drop * (fr.mat == wall_mat))[..., None]

        # soften edges between surfaces (one ray per pixel), then the kind's treatment of the room
        ids = fr.mat * 64 + fr.label
        edge = np.zeros((H, W), bool)
        edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
        edge[1:, :] |= ids[1:, :] != ids[:-1, :]
        edge = cv2.dilate(edge.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
        plate[edge] = cv2.blur(plate, (3, 3))[edge]
        objects = fr.label.copy()
        if glossy and kind == "clean" and rng.random() < 0.6:
            plate = _reflect(plate, ref, x0, y0, base_off, ph_i, support_top)
        rim_med = rim_median(ref, a_ref, max(ph_i, pw))
        plate = self._atmosphere(rng, kind, plate, fr, depth, rim_med, s, x0, y0, pw, ph_i)
        if kind not in ("own-colours", "low-key", "fog") and rng.random() < self.dof_rate:
            plate = _depth_of_field(plate, fr.t, depth, float(rng.uniform(2.0, 6.0)) * min(W, H) / 512)

        # -- grown parts, the product, damage -----------------------------------------------------------
        if extra.any():
            c = extra[..., None]
            plate = plate * (1 - c) + extra_rgb * c
            objects[extra > 0.5] = 100
        canvas = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
        shown, source = ref, None
        if kind in ("torn", "pixelate"):
            shown = _tear(rng, ref, s) if kind == "torn" else _pixelate(ref, s)
            source = source_image(shown)
        elif kind == "motion-blur":
            shown = _motion(rng, ref, s)
        visible = paste(canvas, shown, x0, y0)
        placement = None
        if kind == "holes":
            placement = visible.copy()
            holes = _holes(rng, ref, s, x0, y0, W, H)
            back = np.clip(plate + 0.5, 0, 255).astype(np.uint8)
            canvas[holes] = back[holes]
            visible &= ~holes
        elif kind == "sink":
            cols = np.zeros((H, W), bool)
            cols[:, max(0, x0 - 2) : min(W, x0 + pw + 2)] = True
            hide = cols & (np.arange(H)[:, None] > vc)
            ring = np.zeros((H, W), np.float32)
            cv2.ellipse(ring, (int(x0 + pw / 2), int(vc)), (max(2, int(pw * 0.52)), max(1, ph_i // 45)), 0, 0, 360,
                        1.0, -1)
            ring = np.asarray(cv2.GaussianBlur(ring, (0, 0), max(1.0, ph_i / 70)), np.float32)
            back = np.clip(plate * (1 - 0.2 * ring)[..., None] + 0.5, 0, 255).astype(np.uint8)
            canvas[hide] = back[hide]
            visible &= ~hide
            objects[hide & (objects == 0)] = 1

        img = Image.fromarray(canvas, "RGB")
        boxes: dict[str, Box] = {}
        if zone is not None:
            boxes.update(_typeset(img, rng, zone, product))
        if tag_room is not None:
            boxes.update(_tag(img, rng, product, tag_room))
        out = np.asarray(img)

        # -- the labeller -------------------------------------------------------------------------------
        vci = round(vc)
        sx = [0.0, float(W)]
        if top is not None:
            ends = cam.project(np.array([[top[0], ys, B[2]], [top[1], ys, B[2]]]))
            sx = [float(np.clip(ends[0, 0], 0, W)), float(np.clip(ends[1, 0], 0, W))]
        support = Support(vci, int(sx[0]), int(sx[1]), sup)
        if kind == "on-wall":
            sx_ = (0, W) if sup == "floor" else (int(sx[0]), int(sx[1]))
            support = Support(vci, sx_[0], sx_[1], sup)
        if kind == "pedestal":
            support = Support(y0 + base_off, x0 + f0, x0 + f1, "pedestal")
        rep = SceneReport(box=box, reference=ref, product_cm=cm, support=support, props=props, objects=objects,
                          shadow=shadow_at, palette=palette)
        labelled = label_render(out, visible, rep, defect)
        params = {"support": sup, "floor": floor_kind, "wall": wall, "kind": kind, "severity": s if want else 0.0,
                  "requested": defect, "product_box": list(box), "px_per_cm": round(float(k), 4),
                  "camera": {"f": round(f, 2), "horizon": round(cam.yh, 2), "yaw": round(cam.yaw, 4),
                             "height_cm": round(float(cam.height), 2), "depth_cm": round(float(depth), 2)},
                  "light": [round(float(v), 4) for v in Lw],
                  "copy": "none" if zone is None else ("column" if zone.h > zone.w else "band"), **labelled}
        return self.result(out, visible, boxes=boxes, params=params, seed=seed, aspect=aspect, source=source,
                           placement=placement)

    # -- the room's treatment and grown parts ----------------------------------------------------------------
    @staticmethod
    def _atmosphere(rng: np.random.Generator, kind: str, plate: np.ndarray, fr: _Frame, depth: float,
                    rim_main: np.ndarray, s: float, x0: int, y0: int, pw: int, ph: int) -> np.ndarray:
        """Indistinct kinds: the room takes the product's rim colour (its structure kept as faint shading), sinks
        into a low-key darkness of that colour, or fills with fog of it thickening with depth."""
        if kind not in ("own-colours", "low-key", "fog"):
            return plate
        H, W = plate.shape[:2]
        d = rng.normal(0, 1, 3)
        target = _rgb(rim_main + d / (np.linalg.norm(d) + 1e-6) * (5.0 - 4.0 * s))
        if kind == "fog":
            near = 0.88 + 0.1 * s
            rho = -np.log(1 - near) / depth
            phi = (1 - np.exp(-rho * fr.t)).astype(np.float32)[..., None]
            return np.asarray(plate * (1 - phi) + target * phi, np.float32)
        lum = plate @ np.array([0.299, 0.587, 0.114], np.float32)
        ring = np.zeros((H, W), bool)
        m = max(4, int(0.15 * max(pw, ph)))
        ring[max(0, y0 - m) : min(H, y0 + ph + m), max(0, x0 - m) : min(W, x0 + pw + m)] = True
        ring[max(0, y0) : min(H, y0 + ph), max(0, x0) : min(W, x0 + pw)] = False
        ref_l = float(np.median(lum[ring])) if ring.any() else float(lum.mean())
        rel = lum / max(ref_l, 1.0)
        out = target * (1 + 0.12 * np.clip(rel - 1, -1, 1))[..., None]
        if kind == "low-key":  # a vignette closing in around the set
            yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
            rad = np.hypot((xx - (x0 + pw / 2)) / W, (yy - (y0 + ph / 2)) / H)
            out *= np.clip(1 - 0.9 * np.clip(rad - 0.25, 0, None) ** 1.2, 0.35, 1)[..., None]
        return np.asarray(out, np.float32)

    @staticmethod
    def _grow(rng: np.random.Generator, kind: str, ref: np.ndarray, x0: int, y0: int, base_off: int, top_off: int,
              f0: int, f1: int, vc: int, body: np.ndarray, cam: _Camera, B: np.ndarray, k: float, s: float, W: int,
              H: int) -> tuple[np.ndarray, np.ndarray]:
        """Shapes in the product's own colours growing out of its silhouette: coverage and colour, canvas-sized."""
        ph, pw = ref.shape[:2]
        a = ref[..., 3] >= OPAQUE
        cov = np.zeros((H, W), np.float32)
        rgb = np.zeros((H, W, 3), np.float32)
        band = max(2, ph // 25)
        rows = ref[max(0, base_off - band) : base_off + 1].astype(np.float32)
        on = rows[..., 3] >= OPAQUE
        cnt = on.sum(axis=0)
        colbase = (rows[..., :3] * on[..., None]).sum(axis=0) / np.maximum(cnt, 1)[:, None]
        if kind == "pedestal":  # the base's outline extruded down to the floor, in the base's colours
            bottom = y0 + base_off + 1
            hgt = vc - bottom + 1
            if hgt > 0:
                shade = np.linspace(1.0, 0.8, hgt, dtype=np.float32)[:, None, None]
                xs = np.arange(pw, dtype=np.float32)
                across = (0.92 + 0.08 * np.cos((xs - (f0 + f1) / 2) / max(1.0, (f1 - f0) / 2) * 1.2))[None, :, None]
                col = np.broadcast_to(colbase[None], (hgt, pw, 3)) * shade * across
                stamp(rgb, col, x0, bottom)
                stamp(cov, np.broadcast_to((cnt > 0).astype(np.float32)[None], (hgt, pw)), x0, bottom)
        elif kind == "reflection-twin":  # the mirror image grown solid: a second product upside down
            mir = ref[: base_off + 1][::-1].astype(np.float32)
            stamp(cov, (mir[..., 3] >= 128).astype(np.float32), x0, y0 + base_off + 1)
            stamp(rgb, mir[..., :3] * 0.93, x0, y0 + base_off + 1)
        elif kind == "extrude":  # the flat cutout extruded towards the vanishing point, like a slab
            vp = np.array([cam.cx - cam.f * np.tan(cam.yaw), cam.yh])
            c = np.array([x0 + pw / 2, y0 + ph / 2])
            v = vp - c
            v = v / np.linalg.norm(v) if np.linalg.norm(v) > 1 else np.array([0.0, -1.0])
            n = max(3, int((0.1 + 0.22 * s) * max(ph, pw)))
            mask = (ref[..., 3] >= 128).astype(np.float32)
            for i in range(n, 0, -1):
                ox, oy = round(x0 + v[0] * i), round(y0 + v[1] * i)
                tone = 0.92 - 0.14 * i / n
                layer = np.zeros((H, W), np.float32)
                stamp(layer, mask, ox, oy)
                rgb[layer > 0] = body * tone
                cov = np.maximum(cov, layer)
        elif kind == "fused-part":  # its top part duplicated, tilted and fused onto its shoulder
            cut_row = top_off + int((base_off - top_off) * float(rng.uniform(0.3, 0.5)))
            part = ref[: max(cut_row, top_off + 3)].astype(np.float32)
            hh, ww = part.shape[:2]
            side = 1.0 if rng.random() < 0.5 else -1.0
            ang = side * float(rng.uniform(28, 48))
            pad = int(np.hypot(hh, ww)) + 2
            big = np.zeros((2 * pad + hh, 2 * pad + ww, 4), np.float32)
            big[pad : pad + hh, pad : pad + ww] = part
            M = cv2.getRotationMatrix2D((pad + ww / 2, pad + hh), -ang, 1.0)
            rot = cv2.warpAffine(big, M, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR)
            shoulder = a[top_off : top_off + max(2, int(0.3 * (base_off - top_off)))]
            ys_, xs_ = np.nonzero(shoulder)
            j = int(np.argmax(xs_ * side)) if len(xs_) else 0  # the outermost opaque pixel on that side, up top
            px = x0 + (float(xs_[j]) - side * 0.06 * pw if len(xs_) else pw / 2)
            py = y0 + top_off + (float(ys_[j]) if len(ys_) else 0.0) + 0.12 * hh
            ox, oy = round(px - (pad + ww / 2)), round(py - (pad + hh))
            stamp(cov, (rot[..., 3] >= 128).astype(np.float32), ox, oy)
            stamp(rgb, rot[..., :3] * 0.95, ox, oy)
        else:  # melt: drips running off the base into a puddle on the support
            fw = (f1 - f0) / k
            R = fw * 0.5 * (0.55 + 0.4 * s)
            side = 1.0 if rng.random() < 0.5 else -1.0
            centre = B + (-0.45 * R) * cam.fwd + side * 0.3 * fw * 0.5 * cam.right
            around = np.linspace(0, 2 * np.pi, 48, endpoint=False)
            ring = centre[None] + R * (np.cos(around)[:, None] * cam.right[None] + np.sin(around)[:, None] * cam.fwd[None])
            pts = cam.project(ring)[:, :2]
            puddle = np.zeros((H, W), np.uint8)
            cv2.fillPoly(puddle, [np.round(pts).astype(np.int32)], 1)
            mean = _body(ref[max(0, base_off - band) : base_off + 1])
            drips = np.zeros((H, W), np.uint8)
            for _ in range(int(rng.integers(3, 7))):
                dx = x0 + float(rng.uniform(f0 + 2, max(f0 + 3, f1 - 2)))
                ln = int((vc - (y0 + base_off)) + ph * float(rng.uniform(0.03, 0.1)) + 2)
                wd = max(2, int((f1 - f0) * float(rng.uniform(0.04, 0.09))))
                top = y0 + base_off - 2
                cv2.rectangle(drips, (int(dx - wd / 2), top), (int(dx + wd / 2), top + ln), 1, -1)
                cv2.circle(drips, (int(dx), top + ln), max(1, int(wd * 0.7)), 1, -1)
            m = np.maximum(puddle, drips).astype(np.float32)
            cov = np.asarray(cv2.GaussianBlur(m, (0, 0), 0.7), np.float32)
            rgb[:] = mean * 0.95
        return cov, rgb
