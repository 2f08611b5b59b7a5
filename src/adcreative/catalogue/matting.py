"""Matting: a product photo on a plain backdrop → an alpha matte and a clean cutout, on CPU with no weights.

The steps, each a function below so the benchmark can score them one by one:

1. ``fit_backdrop``: a smooth colour model of the backdrop (a quadratic surface per Lab channel, fitted robustly
   to the image border) and its noise level.
2. ``flood_mask``: the background is what a flood from the border reaches through pixels that look like the
   backdrop or like a shadow on it (same chromaticity, darker, smooth) without crossing an edge; enclosed regions
   of pure backdrop (a mug's handle, a bag's straps) are holes. Shadows are reached by the flood, so they end up
   background rather than part of the product.
3. ``grabcut_refine``: OpenCV GrabCut seeded with that mask, so colour statistics settle what the flood left open.
4. ``make_trimap``: a band of unknown pixels along the mask's boundary.
5. ``closed_form_alpha``: Levin et al.'s closed-form matting (the matting Laplacian over the band only, solved with
   pymatting's incomplete-Cholesky CG) for the soft edge.
6. ``estimate_foreground``: pymatting's multilevel foreground estimation so no backdrop colour fringes the edge.
7. ``matte_quality``: a score in [0, 1] from backdrop uniformity, the unknown band's share and how well the matte's
   edge follows the photo's edges; low scores mean "look at this one".

``matte(image)`` runs them all on a PIL image and returns a ``Matte``. pymatting (numba) is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

# Work size of the coarse steps (flood, GrabCut): the long side in pixels. The trimap, alpha and foreground are
# computed at full resolution.
COARSE_SIDE = 512
# Below this quality score a matte needs a look. Chosen on data: `python bench/matting.py --fit-quality` fits 0.897
# on the tune split (balanced accuracy 0.958 between mattes with IoU ≥ 0.9 and poor mattes or photos without a
# plain backdrop); on the held-out split it accepts 98% of the good mattes and flags 75% of the rest.
QUALITY_THRESHOLD = 0.9


@dataclass
class Backdrop:
    """A smooth model of the backdrop in Lab and how noisy the border is around it."""

    lab: np.ndarray  # H×W×3 float32: the model's Lab colour at every pixel
    noise: np.ndarray  # (3,) robust σ of the border's residual per Lab channel
    border_share: float  # share of the border that matches the model (1 = the product never touches the edge)
    colour: tuple[int, int, int]  # median border colour in sRGB, for reports


@dataclass
class Matte:
    """The result of matting one photo."""

    alpha: np.ndarray  # H×W float32 in [0, 1]
    foreground: np.ndarray  # H×W×3 float32 in [0, 1]: colours with the backdrop removed from mixed pixels
    trimap: np.ndarray  # H×W float32: 0 background, 1 foreground, 0.5 unknown
    quality: float
    scores: dict[str, float] = field(default_factory=dict)
    backdrop: tuple[int, int, int] = (255, 255, 255)
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # full-resolution masks of the coarse steps

    def cutout(self) -> Image.Image:
        """The product as an RGBA cutout (colour = estimated foreground, alpha = matte)."""
        rgb = np.clip(self.foreground * 255 + 0.5, 0, 255).astype(np.uint8)
        a = np.clip(self.alpha * 255 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb, a]), "RGBA")

    def info(self) -> dict[str, Any]:
        """What is stored in the product's attrs: method, score and its parts."""
        return {"method": "auto", "quality": round(self.quality, 4),
                "scores": {k: round(v, 4) for k, v in self.scores.items()}, "backdrop": list(self.backdrop)}


def as_float_rgb(image: Image.Image) -> np.ndarray:
    """H×W×3 float32 in [0, 1] (alpha, if any, is ignored: this is a photo)."""
    return np.asarray(image.convert("RGB"), np.float32) / 255


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2LAB)


def _resize(a: np.ndarray, size: tuple[int, int], interp: int = cv2.INTER_AREA) -> np.ndarray:
    return cv2.resize(a, size, interpolation=interp)


# -- 1. backdrop ---------------------------------------------------------------------------------------------
def _ring(h: int, w: int, width: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[:width], m[-width:], m[:, :width], m[:, -width:] = True, True, True, True
    return m


def fit_backdrop(rgb: np.ndarray, lab: np.ndarray | None = None, *, ring: float = 0.03) -> Backdrop:
    """Fit a quadratic colour surface (per Lab channel) to the border ring, ignoring what does not fit it."""
    h, w = rgb.shape[:2]
    lab = _lab(rgb) if lab is None else lab
    width = max(2, round(ring * min(h, w)))
    mask = _ring(h, w, width)
    ys, xs = np.nonzero(mask)
    yn, xn = ys / h - 0.5, xs / w - 0.5
    design = np.stack([np.ones_like(yn), xn, yn, xn * yn, xn**2, yn**2], 1).astype(np.float64)
    vals = lab[ys, xs].astype(np.float64)
    med = np.median(vals, 0)
    keep = (np.abs(vals - med) <= 3 * np.median(np.abs(vals - med), 0) + 2.0).all(1)  # start from the median colour
    coef: np.ndarray = np.zeros((6, 3))
    sigma: np.ndarray = np.ones(3)
    for _ in range(4):  # reweighted fit: drop what is far from the surface (the product where it meets the edge)
        coef, *_ = np.linalg.lstsq(design[keep], vals[keep], rcond=None)
        res = vals - design @ coef
        # RMS of the inliers, not the MAD: on a JPEG of a clean sweep most residuals are one quantised value and
        # the MAD is zero.
        sigma = np.maximum(np.sqrt(np.mean(res[keep] ** 2, 0)), 0.2)
        keep = (np.abs(res) <= 3 * sigma + 1.0).all(1)
        if keep.sum() < 0.2 * len(ys):
            break
    yy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None, None]
    xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :, None]
    c = coef.astype(np.float32)
    model = (c[0] + xx * (c[1] + xx * c[4] + yy * c[3]) + yy * (c[2] + yy * c[5])).astype(np.float32)
    med = np.median(rgb[mask], 0)
    return Backdrop(lab=model, noise=sigma.astype(np.float32), border_share=float(keep.mean()),
                    colour=(int(med[0] * 255 + 0.5), int(med[1] * 255 + 0.5), int(med[2] * 255 + 0.5)))


# -- 2. flood from the border ----------------------------------------------------------------------------------
@dataclass
class Flood:
    fg: np.ndarray  # bool mask of the product
    backdrop_like: np.ndarray  # bool: pixels the backdrop model explains
    shadow_like: np.ndarray  # bool: darker, same chromaticity, smooth (a shadow on the backdrop)
    deep_shadow: np.ndarray  # bool: shadow-like and clearly darker than the backdrop (not a pale product face)
    edges: np.ndarray  # bool: the barrier the flood may not cross


def flood_mask(rgb: np.ndarray, bd: Backdrop, edges: np.ndarray, *, tol: float = 3.0, shadow_floor: float = 0.3,
               shadow_reach: float = 0.12, shadow_slope: float = 1.0, shadow_rim: float = 0.6,
               hole_min: float = 0.0004, hole_rim: float = 0.8) -> Flood:
    """Background = what a flood from the border reaches through backdrop-like pixels, then downhill into
    shadow-like ones (at most ``shadow_reach`` × the image side, deepening ``shadow_slope`` L units per pixel),
    never across an edge; plus leftover shadow-like regions whose rim is mostly background (``shadow_rim``) and
    enclosed holes of plain backdrop rimmed by an outline (``hole_rim``)."""
    h, w = rgb.shape[:2]
    lab = _lab(rgb)
    d = lab - bd.lab
    tol_l = tol * float(bd.noise[0]) + 1.5
    tol_ab = tol * float(max(bd.noise[1], bd.noise[2])) + 1.5
    dab = np.hypot(d[..., 1], d[..., 2])
    backdrop_like = (np.abs(d[..., 0]) < tol_l) & (dab < tol_ab)
    # A shadow darkens the backdrop and keeps its chromaticity: compare rgb / sum(rgb) with the model's.
    model_rgb = cv2.cvtColor(bd.lab, cv2.COLOR_LAB2RGB)
    chroma = rgb / (rgb.sum(-1, keepdims=True) + 1e-4)
    chroma_bd = model_rgb / (model_rgb.sum(-1, keepdims=True) + 1e-4)
    ratio = lab[..., 0] / np.maximum(bd.lab[..., 0], 1.0)
    shadow_like = ((d[..., 0] < 0) & (ratio > shadow_floor)
                   & (np.abs(chroma - chroma_bd).max(-1) < 0.012 + 0.01 * (1 - ratio)))
    edges = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    plain = backdrop_like & ~edges
    passable = (backdrop_like | shadow_like) & ~edges
    bg = _from_border(plain)
    # Into shadows only downhill: a shadow darkens towards the product that casts it, so the flood may step to a
    # pixel no lighter (within the noise) than the darkest point of the path that led there. It stops at a
    # product face lighter than the shadow beside it, and at a shaded face it entered through a soft edge as
    # soon as that face lightens again; and after ``shadow_reach`` × the image side at the latest.
    steps = max(1, round(shadow_reach * max(h, w)))
    step_tol = 1.0 + float(bd.noise[0])
    light = lab[..., 0]
    darkness = np.maximum(bd.lab[..., 0] - light, 0)
    ramp = {"darkness": darkness, "plain": plain, "slope": shadow_slope, "slack": tol_l}
    bg = _downhill(bg, passable, light, step_tol, steps, **ramp)
    # A shadow is lit on both sides: plain backdrop enclosed by the product and its shadow (inside a headphone's
    # arc) floods downhill too, and joins the background where its flood meets the outer one at the shadow's core
    # (one component at a time, the largest first). A product's pale highlight would flood its whole shaded body
    # on the way: a flood that adds more shadow than the plain region it started from is not a shadow's far side.
    _, labels, stats, _ = cv2.connectedComponentsWithStats((plain & ~bg).astype(np.uint8), connectivity=4)
    areas = stats[:, cv2.CC_STAT_AREA]
    near_bg = cv2.dilate(bg.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    for k in sorted(np.flatnonzero(areas >= hole_min * h * w), key=lambda i: -areas[i])[:32]:
        if k == 0:
            continue
        inner = _downhill(labels == k, passable & ~bg, light, step_tol, steps, **ramp)
        if (inner & near_bg).any() and inner.sum() - areas[k] <= areas[k]:
            bg |= inner
            near_bg = cv2.dilate(bg.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    kernel = np.ones((3, 3), np.uint8)
    # A wide pale shadow does not deepen fast enough for the rule above, but it lies on the backdrop: a
    # shadow-like region left over whose rim is mostly background (not an outline) is a shadow too.
    rest = passable & ~plain & ~bg
    n, labels = cv2.connectedComponents(rest.astype(np.uint8), connectivity=8)
    if n > 1:
        rim_labels = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int64)
        rim = ~rest & (rim_labels > 0)
        rim_n = np.bincount(rim_labels[rim], minlength=n)
        rim_bg = np.bincount(rim_labels[rim], weights=bg[rim], minlength=n)
        lying = rim_bg >= shadow_rim * np.maximum(rim_n, 1)
        lying[0] = False
        bg |= lying[labels]
    # Holes: enclosed components of plain backdrop whose rim is an outline (a sharp edge most of the way round).
    # A patch of a product that happens to match the backdrop's colour is bounded by shading, not by an edge.
    # (Specks of noise inside a hole are closed first, so that the rim is the hole's outline.)
    plain_closed = (cv2.morphologyEx(plain.astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0) & ~edges
    n, labels = cv2.connectedComponents((plain_closed & ~bg).astype(np.uint8), connectivity=4)
    if n > 1:
        area = np.bincount(labels.ravel(), minlength=n)
        rim_labels = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int64)  # a rim pixel → its hole
        rim = (labels == 0) & (rim_labels > 0)
        rim_n = np.bincount(rim_labels[rim], minlength=n)
        near_edge = cv2.dilate(edges.astype(np.uint8), kernel) > 0  # the anti-aliased pixels beside an outline
        rim_edge = np.bincount(rim_labels[rim], weights=near_edge[rim], minlength=n)
        hole = (area >= hole_min * h * w) & (rim_edge >= hole_rim * np.maximum(rim_n, 1))
        hole[0] = False
        bg |= hole[labels]
    fg = _clean(~bg)
    return Flood(fg=fg, backdrop_like=backdrop_like, shadow_like=shadow_like,
                 deep_shadow=shadow_like & (darkness > 4 * tol_l), edges=edges)


def _grad(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gradient magnitude (per pixel step) of ``a`` blurred with a Gaussian of ``sigma``; channels combined."""
    b = cv2.GaussianBlur(a, (0, 0), sigma)
    gx = cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3) / 8
    g2 = gx**2 + gy**2
    return np.sqrt(g2.sum(-1) if g2.ndim == 3 else g2)


def sharp_edges(lab: np.ndarray, noise: float, *, low: float = 0.3, high: float = 3.0, sharpness: float = 1.6,
                steep: float = 8.0) -> np.ndarray:
    """Edges an outline makes, not the ramps a soft shadow makes. A pixel is on a sharp edge when its fine-scale
    L gradient is at least ``sharpness`` × the coarse-scale one (a step's gradient shrinks with blur, a wide
    ramp's does not); weak sharp edges (over ``low`` L units per pixel, raised with the noise) count when they
    join a strong one (over ``high``), as in Canny's hysteresis, so a faint white-on-white outline is followed
    end to end while isolated noise is not. Chroma edges count at any sharpness: shadows have none."""
    fine = _grad(lab[..., 0], 0.8)
    t_lo, t_hi = low + 3 * noise, high + 3 * noise
    # Steeper than any soft shadow's ramp counts whatever its sharpness (a soft or upscaled photo's outline).
    sharp = (fine > sharpness * _grad(lab[..., 0], 2.5)) | (fine > steep + 3 * noise)
    chroma = _grad(lab[..., 1:], 0.8)
    weak = (sharp & (fine > t_lo)) | (chroma > t_hi)
    strong = (sharp & (fine > t_hi)) | (chroma > 2 * t_hi)
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    hit = np.zeros(n, bool)
    hit[labels[strong & weak]] = True
    hit[0] = False
    return hit[labels]


def _downhill(seeds: np.ndarray, passable: np.ndarray, light: np.ndarray, tol: float, steps: int,
              darkness: np.ndarray, plain: np.ndarray, slope: float, slack: float) -> np.ndarray:
    """Grow ``seeds`` through ``passable`` pixels for at most ``steps`` pixels, each step to a pixel no lighter than
    the darkest pixel on the path so far (plus ``tol``) and, ``d`` steps away from plain backdrop, at least
    ``slope·d − slack`` darker than the backdrop: a shadow deepens as it goes in, a pale product face does not."""
    kernel = np.ones((3, 3), np.uint8)
    reached = seeds.copy()
    floor = np.where(reached, light, -1.0).astype(np.float32)  # per reached pixel: the darkest lightness on its path
    far = float(steps + 1)
    dist = np.where(reached, np.where(plain, 0.0, 1.0), far).astype(np.float32)  # steps since plain backdrop
    for _ in range(steps):
        parent = cv2.dilate(floor, kernel)  # the most permissive reached neighbour
        d = np.where(plain, 0.0, cv2.erode(dist, kernel) + 1)
        new = (~reached & passable & (parent >= 0) & (light <= parent + tol)
               & (darkness >= slope * d - slack))
        if not new.any():
            break
        floor[new] = np.minimum(parent[new], light[new])
        dist[new] = d[new]
        reached |= new
    return reached


def _from_border(mask: np.ndarray) -> np.ndarray:
    """The components of ``mask`` that touch the image border."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def _touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The components of ``mask`` that contain a seed pixel."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    hit = np.unique(labels[seeds & mask])
    return np.isin(labels, hit[hit > 0])


def _clean(fg: np.ndarray, min_share: float = 0.02) -> np.ndarray:
    """Drop specks: keep components with at least ``min_share`` of the largest one's area."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return fg
    area = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = area >= max(min_share * area.max(), 16)
    return keep[labels]


# -- 3. GrabCut -----------------------------------------------------------------------------------------------
def grabcut_refine(rgb: np.ndarray, flood: Flood, *, iterations: int = 3, band: int = 6,
                   within_hull: bool = True) -> np.ndarray:
    """GrabCut seeded by the flood: sure background far from the product and on shadows, sure foreground in its
    core, 'probable' in a band around the boundary."""
    fg = flood.fg
    if not fg.any() or fg.all():
        return fg
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    core = cv2.erode(fg.astype(np.uint8), kernel) > 0
    near = cv2.dilate(fg.astype(np.uint8), kernel) > 0
    mask = np.full(fg.shape, cv2.GC_BGD, np.uint8)
    mask[near] = cv2.GC_PR_BGD
    if within_hull:
        # Inside the product's convex hull the flood may have leaked into a pale face through a soft outline: let
        # the graph cut decide there (it keeps a region whose cheapest boundary runs along the product's edges).
        pts = cv2.findNonZero(fg.astype(np.uint8))
        hull = np.zeros(fg.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        mask[hull > 0] = cv2.GC_PR_BGD
    mask[fg] = cv2.GC_PR_FGD
    mask[core] = cv2.GC_FGD
    mask[~fg & flood.deep_shadow] = cv2.GC_BGD
    img = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)[..., ::-1].copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global generator: same photo, same matte
    try:
        cv2.grabCut(img, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    except cv2.error:  # one class has too few pixels for its colour model: keep the flood's answer
        return fg
    return _clean((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))


# -- 4. trimap ------------------------------------------------------------------------------------------------
def make_trimap(fg: np.ndarray, radius: int) -> np.ndarray:
    """0 background, 1 foreground, 0.5 within ``radius`` pixels of the mask's boundary."""
    m = fg.astype(np.uint8)
    d_in = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    tri = fg.astype(np.float32)
    tri[(fg & (d_in <= radius)) | (~fg & (d_out <= radius))] = 0.5
    return tri


# -- 5. closed-form alpha over the band -------------------------------------------------------------------------
def closed_form_alpha(rgb: np.ndarray, trimap: np.ndarray, *, epsilon: float = 1e-6) -> np.ndarray:
    """Levin, Lischinski and Weiss's closed-form matte, with the matting Laplacian built over the unknown band only
    (3×3 windows that touch an unknown pixel), so the cost follows the band, not the image."""
    from pymatting import cg, ichol

    h, w = trimap.shape
    unknown = trimap == 0.5
    alpha = np.clip(trimap, 0, 1).astype(np.float64)
    alpha[unknown] = 0.0
    if not unknown.any():
        return alpha.astype(np.float32)
    # Window centres: every pixel within 1 of an unknown pixel, away from the image border.
    centres = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    centres[0], centres[-1], centres[:, 0], centres[:, -1] = False, False, False, False
    cy, cx = np.nonzero(centres)
    offs = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    py = cy[:, None] + offs[None, :, 0]
    px = cx[:, None] + offs[None, :, 1]
    # Compact numbering of every pixel some window covers.
    cover = np.zeros((h, w), bool)
    cover[py, px] = True
    index = np.full((h, w), -1, np.int64)
    index[cover] = np.arange(int(cover.sum()))
    img = rgb.astype(np.float64)
    x = img[py, px]  # N×9×3
    mu = x.mean(1, keepdims=True)
    xc = x - mu
    xt = xc.transpose(0, 2, 1)
    inv = np.linalg.inv(xt @ xc / 9 + (epsilon / 9) * np.eye(3))
    g = (xc @ inv) @ xt
    vals = np.eye(9)[None] - (1 + g) / 9
    ids = index[py, px]  # N×9
    rows = np.repeat(ids, 9, axis=1).ravel()
    cols = np.tile(ids, (1, 9)).ravel()
    import scipy.sparse

    n = int(cover.sum())
    lap = scipy.sparse.csr_matrix((vals.ravel(), (rows, cols)), shape=(n, n))
    flat_unknown = unknown[cover]
    known_alpha = alpha[cover]
    lu = lap[flat_unknown][:, flat_unknown].tocsr()
    r = lap[flat_unknown][:, ~flat_unknown]
    b = -r.dot(known_alpha[~flat_unknown])
    sol = cg(lu, b, M=ichol(lu))
    alpha_u = np.clip(sol, 0, 1)
    alpha[unknown] = alpha_u  # both in raster order: the unknown pixels are a subset of the covered ones
    return alpha.astype(np.float32)


# -- 6. foreground colours ---------------------------------------------------------------------------------------
def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours where the matte is soft (pymatting's multilevel estimate, on the band's bounding box)."""
    from pymatting import estimate_foreground_ml

    fg = rgb.copy()
    soft = (alpha > 0.002) & (alpha < 0.998)
    if not soft.any():
        return fg
    ys, xs = np.nonzero(soft)
    pad = 8
    y0, y1 = max(0, ys.min() - pad), min(rgb.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(rgb.shape[1], xs.max() + pad + 1)
    crop = estimate_foreground_ml(rgb[y0:y1, x0:x1].astype(np.float64), alpha[y0:y1, x0:x1].astype(np.float64))
    sub = fg[y0:y1, x0:x1]
    m = soft[y0:y1, x0:x1]
    sub[m] = np.clip(crop[m], 0, 1)
    return fg


# -- 7. quality ----------------------------------------------------------------------------------------------------
def matte_quality(alpha: np.ndarray, trimap: np.ndarray, bd: Backdrop, edges: np.ndarray) -> tuple[float, dict[str, float]]:
    """A score in [0, 1] (the weakest of four parts) and the parts:

    - ``backdrop``: the border is one smooth, quiet backdrop (share of the border ring the backdrop model explains,
      and its noise);
    - ``edge_support``: the matte's outline runs along sharp edges of the photo (share of its boundary pixels
      within 2 px of one), not through a product's face or a busy background;
    - ``crisp``: the unknown band resolved into a thin soft edge, not a wide mush of half-transparent pixels;
    - ``size``: there is a product, and it is not the whole photo.
    """
    hard = alpha > 0.5
    cover = float(hard.mean())
    contour = cv2.morphologyEx(hard.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    edge_support = float(near_edge[contour].mean()) if contour.any() else 0.0
    band = trimap == 0.5
    mushy = float(((alpha > 0.15) & (alpha < 0.85))[band].mean()) if band.any() else 0.0
    noise = float(bd.noise[0])
    parts = {
        "backdrop": float(np.clip((bd.border_share - 0.5) / 0.4, 0, 1) * np.clip((6.0 - noise) / 4.0, 0, 1)),
        # A clean outline sits on edges almost everywhere; a leak through a pale face leaves a third or more of it
        # on none. Fur and hair give wide soft bands legitimately: only a band mostly half-transparent is mush.
        "edge_support": float(np.clip((edge_support - 0.5) / 0.35, 0, 1)),
        "crisp": float(np.clip((0.8 - mushy) / 0.3, 0, 1)),
        "size": float(np.clip(min(cover / 0.005, (0.95 - cover) / 0.05), 0, 1)),
    }
    raw = {"border_share": bd.border_share, "backdrop_noise": noise, "edge_share": edge_support, "mushy_share": mushy,
           "cover": cover}
    return min(parts.values()), {**parts, **raw}


# -- all of it ------------------------------------------------------------------------------------------------------
@dataclass
class Coarse:
    """What the coarse steps work on: the photo at ``COARSE_SIDE``, the backdrop model and the full-resolution
    edges brought down to that grid."""

    small: np.ndarray
    scale: float
    backdrop: Backdrop  # at full resolution
    backdrop_small: Backdrop
    edges: np.ndarray  # sharp edges at full resolution
    edges_small: np.ndarray


def prepare(rgb: np.ndarray) -> Coarse:
    h, w = rgb.shape[:2]
    s = min(1.0, COARSE_SIDE / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    lab = _lab(rgb)
    bd = fit_backdrop(rgb, lab)
    # Edges at full resolution, where an outline is sharpest; the flood runs on the coarse grid.
    edges = sharp_edges(lab, float(bd.noise[0]))
    if s == 1.0:
        return Coarse(small=rgb, scale=1.0, backdrop=bd, backdrop_small=bd, edges=edges, edges_small=edges)
    bd_small = Backdrop(lab=_resize(bd.lab, size), noise=bd.noise, border_share=bd.border_share, colour=bd.colour)
    return Coarse(small=_resize(rgb, size), scale=s, backdrop=bd, backdrop_small=bd_small, edges=edges,
                  edges_small=_resize(edges.astype(np.float32), size) > 0)


def upsample(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A coarse mask at full resolution (bilinear, then thresholded)."""
    if mask.shape == shape:
        return mask
    return _resize(mask.astype(np.float32), (shape[1], shape[0]), cv2.INTER_LINEAR) > 0.5


def matte(image: Image.Image, *, refine: bool = True, keep_steps: bool = False) -> Matte:
    """Matte a product photo on a plain backdrop: alpha, foreground colours, trimap and a quality score."""
    rgb = as_float_rgb(image)
    shape = rgb.shape[:2]
    c = prepare(rgb)
    flood = flood_mask(c.small, c.backdrop_small, c.edges_small)
    fg_small = grabcut_refine(c.small, flood) if refine else flood.fg
    fg = upsample(fg_small, shape)
    trimap = make_trimap(fg, int(np.ceil(1.5 / c.scale)) + 1)
    alpha = closed_form_alpha(rgb, trimap)
    foreground = estimate_foreground(rgb, alpha)
    quality, scores = matte_quality(alpha, trimap, c.backdrop, c.edges)
    steps = {"flood": upsample(flood.fg, shape), "grabcut": fg} if keep_steps else {}
    return Matte(alpha=alpha, foreground=foreground, trimap=trimap, quality=quality, scores=scores,
                 backdrop=c.backdrop.colour, steps=steps)
