"""Measured cues: the labeller's measurements, estimated from what an auditor is given.

The labeller (:mod:`adcreative.generate.measure`) decides a class from numbers a renderer reports (the support
line, the props, the objects it drew). At inspection time only the image, the product's mask and its clean cutout
are known, but most of those numbers can still be estimated from them, and the estimates mean the same thing
whichever renderer drew the image, where pixel patterns do not. This module computes them, as one fixed vector
per image (:data:`CUE_NAMES`), for RFNet's *cue* token:

* **canvas**: the product's longer side against the canvas's shorter one, its area share, how much of its outline
  lies on the canvas border and how far its bounding box's aspect departs from the cutout's (a cut product);
* **against the clean cutout** (the cutout mapped onto the mask's box): the share of the cutout the mask does not
  cover (holes, tears), the share of the mask's pixels whose colour departs from the cutout's after a per-channel
  affine colour fit (a hole showing the scene), the median residual, and the image's fine detail against the
  cutout's (blur, pixelation);
* **outline contrast**: the labeller's sector contrast (share of the rim under ``LOW_DE``, its weighted median)
  (:data:`~adcreative.generate.measure.LOW_DE`) and the ΔE of the whole inner band against the whole outer band;
* **the product's colours outside it**: the share of a thin ring around the product, of the ring under its base
  and of the wider surroundings that lie within ``OWN_DE`` of its palette, and the largest such region touching
  the product against its area and width (a pedestal or legs in its colours, not a tabletop);
* **under the base**: where the darkest row and the strongest horizontal edge lie below the base (in product
  heights), and how dark that row is against the surroundings (a contact shadow away from the base, a gap).

Everything is NumPy/OpenCV on a copy at most :data:`WORK_SIDE` pixels on its longer side, so it is cheap enough to
run with the rest of the preprocessing.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from adcreative.generate.measure import OWN_DE, inner_band, lab, sector_contrast
from adcreative.inspect.preprocess import product_palette

WORK_SIDE = 320
CUTOUT_SIDE = 384  # the cutout is compared at most this large (and the RFFT reward stacks cutouts of this size)
CUES_VERSION = "2"  # part of the training encodings' cache key: change it when a cue's computation changes
CUE_NAMES = (
    "long_frac", "area_frac", "border_share", "aspect_gap",
    "uncovered", "off_colour", "residual", "detail_ratio",
    "edge_low_frac", "edge_de", "rim_de",
    "own_ring", "own_under", "own_far", "own_blob", "own_blob_width",
    "dark_offset", "dark_depth", "edge_offset", "edge_strength",
    "has_product",
)
N_CUES = len(CUE_NAMES)
CUE_SETS: dict[str, tuple[str, ...]] = {"2": CUE_NAMES}  # a saved model reads the set it was trained on
LEGACY_CUE_SET = "2"  # what a model saved before cue sets existed (its config has no cue_set) reads
CURRENT_CUE_SET = "2"  # what a new model reads unless told otherwise (inspect train --cue-set)


def n_cues(version: str) -> int:
    """How many cues ``version``'s set has."""
    return len(cue_names(version))


def cue_names(version: str) -> tuple[str, ...]:
    if version not in CUE_SETS:
        raise ValueError(f"unknown cue set {version!r}; choose from {', '.join(sorted(CUE_SETS))}")
    return CUE_SETS[version]
_K3 = np.ones((3, 3), np.uint8)


def _resize(a: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    return np.asarray(cv2.resize(a, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA))


def fit_cutout(cutout: np.ndarray) -> np.ndarray:
    """The RGBA cutout shrunk to fit CUTOUT_SIDE (area-averaged; unchanged when it fits already)."""
    h, w = cutout.shape[:2]
    if max(h, w) <= CUTOUT_SIDE:
        return cutout
    s = CUTOUT_SIDE / max(h, w)
    return _resize(np.ascontiguousarray(cutout), (max(1, round(w * s)), max(1, round(h * s))))


def observe(rgb: np.ndarray, mask: np.ndarray, cutout: np.ndarray, version: str = LEGACY_CUE_SET) -> np.ndarray:
    """(N_CUES,) float32 cues of one image: ``rgb`` H×W×3 uint8, ``mask`` H×W in [0, 1] (placement, visible or
    saliency; thresholded at 0.5), ``cutout`` h×w×4 uint8 (the product's clean RGBA cutout)."""
    cue_names(version)  # refuses an unknown set
    out = np.zeros(N_CUES, np.float32)
    H, W = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(H, W))
    w, h = max(8, round(W * s)), max(8, round(H * s))
    img = _resize(rgb, (w, h)) if s < 1 else np.ascontiguousarray(rgb)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    m = _resize(np.asarray(mask, np.float32), (w, h)) >= 0.5
    if m.sum() < 16:
        return out  # no product to measure: every cue 0, has_product 0
    cue = dict.fromkeys(CUE_NAMES, 0.0)
    cue["has_product"] = 1.0
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    bh, bw = y1 - y0, x1 - x0
    cue["long_frac"] = max(bh, bw) / min(h, w)
    cue["area_frac"] = float(m.mean())
    # (eroded with nothing beyond the canvas, so an edge the canvas cuts is outline too)
    outline = m & ~cv2.erode(m.astype(np.uint8), _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    border = np.zeros_like(m)
    border[:2], border[-2:], border[:, :2], border[:, -2:] = True, True, True, True
    cue["border_share"] = float((outline & border).sum() / max(1, outline.sum()))

    # the clean cutout, mapped onto the mask's box (scale from the side the canvas did not cut)
    cutout = fit_cutout(cutout)
    if not (cutout[..., 3] >= 128).any():  # no cutout to compare with: the product as the image shows it
        cutout = np.dstack([img, m.astype(np.uint8) * 255])
    a = cutout[..., 3] >= 128
    cy, cx = np.nonzero(a)
    crop = cutout[int(cy.min()) : int(cy.max()) + 1, int(cx.min()) : int(cx.max()) + 1]
    ch, cw = crop.shape[:2]
    cue["aspect_gap"] = abs(float(np.log((bw / bh) / (cw / ch))))
    cut_x = x0 <= 1 or x1 >= w - 1
    cut_y = y0 <= 1 or y1 >= h - 1
    scale = bh / ch if (cut_x and not cut_y) else bw / cw if (cut_y and not cut_x) else float(np.sqrt(bh * bw / (ch * cw)))
    tw, th = max(2, round(cw * scale)), max(2, round(ch * scale))
    ref = _resize(crop, (tw, th))
    ox = x1 - tw if (x0 <= 1 and x1 < w - 1) else x0  # anchor on the uncut side
    oy = y1 - th if (y0 <= 1 and y1 < h - 1) else y0
    ref_a = np.zeros((h, w), bool)
    ref_rgb = np.zeros((h, w, 3), np.float32)
    sx0, sy0, sx1, sy1 = max(0, ox), max(0, oy), min(w, ox + tw), min(h, oy + th)
    if sx1 > sx0 and sy1 > sy0:
        patch = ref[sy0 - oy : sy1 - oy, sx0 - ox : sx1 - ox]
        ref_a[sy0:sy1, sx0:sx1] = patch[..., 3] >= 128
        ref_rgb[sy0:sy1, sx0:sx1] = patch[..., :3]
    cue["uncovered"] = float((ref_a & ~m).sum() / max(1, ref_a.sum()))
    core = cv2.erode((ref_a & m).astype(np.uint8), _K3, iterations=2).astype(bool)
    if core.sum() >= 16:
        x = np.c_[ref_rgb[core], np.ones(int(core.sum()), np.float32)]
        y = img[core].astype(np.float32)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)  # per-channel affine colour fit: jitter, white balance
        res = np.abs(y - x @ coef).max(axis=1)
        cue["off_colour"] = float((res > 40).mean())
        cue["residual"] = float(np.median(res)) / 255.0
        g_img = cv2.Laplacian(gray, cv2.CV_32F)
        g_ref = cv2.Laplacian(cv2.cvtColor(ref_rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32),
                              cv2.CV_32F)
        cue["detail_ratio"] = float(np.log((np.abs(g_img[core]).mean() + 1.0) / (np.abs(g_ref[core]).mean() + 1.0)))

    # contrast across the outline (the labeller's own rule, on the mask)
    size = max(bh, bw)
    inner = inner_band(m, size)
    band = max(3, round(0.025 * size))
    mu = m.astype(np.uint8)
    outer = cv2.dilate(mu, _K3, iterations=2 + band).astype(bool) & ~cv2.dilate(mu, _K3, iterations=2).astype(bool)
    outer &= ~border
    f32 = img.astype(np.float32)
    if inner.sum() >= 5 and outer.sum() >= 5:
        low, med = sector_contrast(f32, m, inner, outer)
        cue["edge_low_frac"] = low
        cue["edge_de"] = (med if med is not None else 0.0) / 100.0
        cue["rim_de"] = float(np.linalg.norm(np.median(lab(f32[inner]), axis=0)
                                             - np.median(lab(f32[outer]), axis=0))) / 100.0

    # the product's colours outside it
    # the cutout's main colours (not their shaded variants: a dark backdrop is not the product's colour)
    pal = lab(product_palette(Image.fromarray(cutout, "RGBA")) * 255.0)
    lab_img = lab(cv2.GaussianBlur(f32, (0, 0), 1.0)).reshape(h, w, 3)
    d2 = ((lab_img[:, :, None, :] - pal[None, None]) ** 2).sum(-1).min(-1)  # squared: no square root per pixel
    own = (d2 < OWN_DE * OWN_DE) & ~m
    ring_w = max(2, round(0.06 * size))
    ring = cv2.dilate(mu, _K3, iterations=ring_w).astype(bool) & ~cv2.dilate(mu, _K3, iterations=1).astype(bool)
    ring &= ~border
    under = ring.copy()
    under[: max(0, y1 - max(1, round(0.1 * bh)))] = False
    far = cv2.dilate(mu, _K3, iterations=max(4, round(0.35 * size))).astype(bool) & ~ring & ~m
    cue["own_ring"] = float(own[ring].mean()) if ring.any() else 0.0
    cue["own_under"] = float(own[under].mean()) if under.any() else 0.0
    cue["own_far"] = float(own[far].mean()) if far.any() else 0.0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(own.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[ring & own])
    touching = touching[touching > 0]
    if len(touching):
        big = touching[np.argmax(stats[touching, cv2.CC_STAT_AREA])]
        cue["own_blob"] = float(np.log1p(stats[big, cv2.CC_STAT_AREA] / max(1.0, float(m.sum())) * 100))
        cue["own_blob_width"] = float(stats[big, cv2.CC_STAT_WIDTH] / max(1, bw))

    # under the base: the darkest row and the strongest horizontal edge below the foot
    foot_rows = max(2, round(0.04 * bh))
    foot = np.nonzero(m[max(y0, y1 - foot_rows) : y1].any(axis=0))[0]
    fx0, fx1 = int(foot.min()), int(foot.max()) + 1
    depth = max(3, round(0.3 * bh))
    if y1 + 2 < h:
        strip = gray[y1 : min(h, y1 + depth), fx0:fx1]
        prof = strip.mean(axis=1)
        k = int(np.argmin(prof))
        side_cols = np.r_[max(0, fx0 - (fx1 - fx0)) : fx0, fx1 : min(w, fx1 + (fx1 - fx0))]
        side = gray[y1 : min(h, y1 + depth)][:, side_cols] if len(side_cols) else strip
        cue["dark_offset"] = k / bh
        cue["dark_depth"] = float((np.median(side) - prof[k]) / 255.0)
        gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
        lo, hi = max(0, y1 - depth), min(h, y1 + depth)
        wide = gy[lo:hi, max(0, fx0 - bw // 2) : min(w, fx1 + bw // 2)].mean(axis=1)
        j = int(np.argmax(wide))
        cue["edge_offset"] = (lo + j - y1) / bh
        cue["edge_strength"] = float(wide[j] / 255.0)
    out[:] = [cue[k] for k in CUE_NAMES]
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
