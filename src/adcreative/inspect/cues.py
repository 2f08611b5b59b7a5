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

Cue sets (:data:`CUE_SETS`, ``observe(..., version=...)``): version "2" (:data:`CUE_NAMES_V2`, also
:data:`CUE_NAMES`) is the legacy set — what a model saved before cue sets existed reads, the default G did until
issue 13's fifteenth round — and is never changed (the shipped RFNet reads version 5 since). Version "3" (:data:`CUE_NAMES_V3`) is
version 2's cues, bit for bit, followed by estimators closer to the labeller's measurements that version 2
recovers worst:

* **missing part**: the cutout registered on the mask (scale read off either side or both, anchored on any side,
  keeping the placement where the mask outside the cutout costs double): the share of it the mask leaves
  uncovered, the part of that in its bottom 15 %, the mask outside it, and holes enclosed in the mask that the
  cutout does not have;
* **detail loss**: the labeller's error against the clean pixels in units of their own detail, after an affine
  colour fit on the registered cutout, and the image's fine and middle detail against the cutout's;
* **the product's colours growing out of it**: its palette corrected by the colour fit (plus shaded variants);
  regions in those colours touching it that do not reach well past it on both sides (the labeller's surface
  rule): their share of the ring around it and their area against the product's;
* **under the base**: row by row under the foot, the darkening against beside it (at the base, its peak and
  where the peak lies), the strongest horizontal edge beside the foot (the support's edge) and the colour just
  under the foot against beside it;
* **scale against props**: compact regions departing from their row's median colour, clear of the canvas's
  sides and of the product, with their bottom near its base: how many, and the product's height against their
  median height and against the largest one's (log).

Version "4" (:data:`CUE_NAMES_V4`) is version 3's cues, bit for bit, followed by a stricter prop finder for the
scale against props (the measurement whose estimate cost the most held-out AP in the v11 oracle audit): the same
candidates, kept only when at least :data:`PROP_MIN_H` of the canvas tall, at most :data:`PROP_MAX_WH` times as wide
as tall, departing from their row's colour by :data:`PROP_MIN_DEV` on average, not a shadow (darker than the row at
about its colour), with their bottom within 3 % of the canvas and 5 % of the product's height of its base; their
heights are summarised by the area-weighted median (small fragments, print and shadow bits no longer set it).

Version "5" (:data:`CUE_NAMES_V5`) is version 4's cues, bit for bit, followed by the product's real height, which
the catalogue knows and an auditor would (``observe(..., height_cm=...)``, from
:func:`adcreative.catalogue.sizes.real_height_cm`): whether it is known, its log, and version 4's prop ratios turned
into a scale estimate, log((product px / product cm) / (prop px / :data:`TYPICAL_PROP_CM`)). Pixels alone cannot
tell an 18 cm bottle drawn twice a plant's height (too large) from an 82 cm armchair drawn ten times an orange's
(at scale); the labeller's scale is in centimetres. An unknown height leaves all four at 0.

Version "6" (:data:`CUE_NAMES_V6`) is version 5's cues, bit for bit, followed by the same scale against props from a
learned finder (:mod:`adcreative.inspect.prop_finder`): candidate regions from Felzenszwalb segments, kept when a
boosted-tree classifier fitted on the renderers' recorded prop boxes calls them props. Version 4's rules keep only
30-69 % of the props a renderer drew; with their true boxes held-out AP rose by 0.05-0.1 (docs/inspect.md,
twenty-ninth round). How many, the log ratios, and with a known height the scale; the finder ships with the package
and is pinned (a refitted one would be a new set). A new model reads set 6 unless told otherwise
(:data:`CURRENT_CUE_SET`, thirtieth round); the shipped RFNet reads it since the thirty-first.

Version "7" (:data:`CUE_NAMES_V7`) is version 6's cues, bit for bit, followed by the under-the-base measurements
again in units of the local contrast: log luminance around the foot, standardised by its median and spread. A
contact shadow halves the light whatever the floor; on a near-black floor that is a few grey levels, which the
absolute cues read as no shadow at the base (a gap). The shipped RFNet on lowkey's dark floors moved its
contact cues by 2.5-3.5 training standard deviations toward space mismatch (thirty-third round). It adds how bright
the floor beside the foot is and its spread, the darkening under the foot against beside it (at the base, its peak,
where it lies, the darkest row) and the strongest horizontal edge near the base with the product's outline left out.

Everything is NumPy/OpenCV on a copy at most :data:`WORK_SIDE` pixels on its longer side, so it is cheap enough to
run with the rest of the preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from adcreative.catalogue.sizes import MAX_HEIGHT_CM, is_height_cm
from adcreative.generate.measure import OWN_DE, inner_band, lab, sector_contrast
from adcreative.inspect.preprocess import product_palette
from adcreative.inspect.prop_finder import FEATURE_NAMES, PropFinder, prop_candidates, shipped_prop_finder

WORK_SIDE = 320
CUTOUT_SIDE = 384  # the cutout is compared at most this large (and the RFFT reward stacks cutouts of this size)
CUES_VERSION = "2"  # in the training encodings' cache key, beside the cue set: change it when a set's cues change
CUE_NAMES_V2 = (
    "long_frac", "area_frac", "border_share", "aspect_gap",
    "uncovered", "off_colour", "residual", "detail_ratio",
    "edge_low_frac", "edge_de", "rim_de",
    "own_ring", "own_under", "own_far", "own_blob", "own_blob_width",
    "dark_offset", "dark_depth", "edge_offset", "edge_strength",
    "has_product",
)
# version 3: version 2's cues, unchanged, then estimators closer to the labeller's weakest-recovered measurements
CUE_NAMES_V3 = (
    *CUE_NAMES_V2,
    "miss_fit", "miss_low", "extra_fit", "mask_holes",  # missing part: the cutout registered onto the mask
    "detail_err", "hf1_ratio", "hf2_ratio",  # detail loss against the registered cutout
    "own_touch", "own_grow",  # the product's (colour-corrected) colours growing out of it
    "contact_dark", "shadow_peak", "shadow_peak_val", "side_edge_offset", "under_de_max", "under_de_min",  # base
    "prop_n", "prop_log_med", "prop_log_big",  # scale against objects standing near the base
)
# version 4: version 3's cues, unchanged, then the scale against props from a stricter prop finder
CUE_NAMES_V4 = (*CUE_NAMES_V3, "prop2_n", "prop2_log_med", "prop2_log_big")
# version 5: version 4's cues, unchanged, then the product's real height and the scale against props it gives
CUE_NAMES_V5 = (*CUE_NAMES_V4, "height_known", "height_log_cm", "prop2_scale_med", "prop2_scale_big")
# version 6: version 5's cues, unchanged, then the same scale against the props a learned finder keeps
CUE_NAMES_V6 = (*CUE_NAMES_V5, "prop3_n", "prop3_log_med", "prop3_log_big", "prop3_scale_med", "prop3_scale_big")
# version 7: version 6's cues, unchanged, then the under-the-base cues in units of the local contrast (log luminance)
CUE_NAMES_V7 = (
    *CUE_NAMES_V6,
    "floor_lum", "floor_contrast",  # how bright the surroundings of the foot are, and their spread (log units)
    "n_dark_offset", "n_dark_depth", "n_contact_dark", "n_shadow_peak", "n_shadow_peak_val",  # the darkening
    "n_edge_offset", "n_edge_strength",  # the strongest horizontal edge near the base, the product's own excluded
    "gap_back_de", "gap_support_de", "gap_score",  # just under the foot: the backdrop showing through, or support
)
CUE_SETS: dict[str, tuple[str, ...]] = {"2": CUE_NAMES_V2, "3": CUE_NAMES_V3, "4": CUE_NAMES_V4, "5": CUE_NAMES_V5,
                                        "6": CUE_NAMES_V6, "7": CUE_NAMES_V7}
CUE_NAMES = CUE_NAMES_V2  # the legacy set's names (the observe() default; LEGACY_CUE_SET)
LEGACY_CUE_SET = "2"  # what a model saved before cue sets existed (its config has no cue_set) reads
CURRENT_CUE_SET = "6"  # what a new model reads unless told otherwise (inspect train --cue-set)
N_CUES = len(CUE_NAMES)
PROP_MIN_H = 0.04  # version 4's props: at least this share of the canvas's height (fragments, print, specks are not)
PROP_MAX_WH = 2.5  # at most this many times as wide as tall (a line of copy, a support's edge)
TYPICAL_PROP_CM = 11.0  # version 5: a prop's height when it is not recognised (the median of the renderers' props)
PROP_MIN_DEV = 20.0  # mean ΔE from their row's median colour (texture and soft shading stay under it)
FEATURE_LOG_RATIO = FEATURE_NAMES.index("log_product_over_height")  # set 6 reads these two candidate features
FEATURE_AREA = FEATURE_NAMES.index("area_frac")
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


def cue_names(version: str = LEGACY_CUE_SET) -> tuple[str, ...]:
    """The names of a cue set's cues, in order (:data:`CUE_SETS`); an unknown version is a ValueError."""
    if version not in CUE_SETS:
        raise ValueError(f"unknown cue set version {version!r}; known: {', '.join(sorted(CUE_SETS))}")
    return CUE_SETS[version]


def n_cues(version: str = LEGACY_CUE_SET) -> int:
    """How many cues a cue set has."""
    return len(cue_names(version))


def _work_view(rgb: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The image at most WORK_SIDE on its longer side, its scale and the mask there (thresholded at 0.5)."""
    H, W = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(H, W))
    w, h = max(8, round(W * s)), max(8, round(H * s))
    img = _resize(rgb, (w, h)) if s < 1 else np.ascontiguousarray(rgb)
    return s, img, _resize(np.asarray(mask, np.float32), (w, h)) >= 0.5


def observe(rgb: np.ndarray, mask: np.ndarray, cutout: np.ndarray, version: str = LEGACY_CUE_SET, *,
            height_cm: float | None = None, prop_finder: PropFinder | None = None) -> np.ndarray:
    """(n_cues(version),) float32 cues of one image: ``rgb`` H×W×3 uint8, ``mask`` H×W in [0, 1] (placement,
    visible or saliency; thresholded at 0.5), ``cutout`` h×w×4 uint8 (the product's clean RGBA cutout).
    ``version``: the cue set (:data:`CUE_SETS`); "3" is version 2's cues, bit for bit, then its own; "4" is
    version 3's, bit for bit, then its own; "5" is version 4's, then the product's real height ``height_cm``
    (None: unknown; sets 5 to 7 read it); "6" is version 5's, then the learned prop finder's scale
    (``prop_finder``: the shipped one unless given); "7" is version 6's, then the under-the-base cues in units of
    the local contrast."""
    if height_cm is not None and not is_height_cm(height_cm):
        raise ValueError(f"height_cm must be a height in cm in (0, {MAX_HEIGHT_CM:g}], got {height_cm!r}")
    names = cue_names(version)
    out = np.zeros(len(names), np.float32)
    _, img, m = _work_view(rgb, mask)
    h, w = m.shape
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if m.sum() < 16:
        return out  # no product to measure: every cue 0, has_product 0
    cue = dict.fromkeys(names, 0.0)
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
    coef = None
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
    level = int(version)  # each set is the one before it, bit for bit, then its own cues
    if level >= 3:
        props = _prop_candidates(lab_img, m, (y0, y1, x0, x1), border)  # read by sets 3 and 4 alike: found once
        _cues_v3(cue, f32, gray, lab_img, m, crop, cutout, coef, (y0, y1, x0, x1), props)
    if level >= 4:
        _cues_v4(cue, m, (y0, y1, x0, x1), props)
    if level >= 5 and height_cm is not None:
        _cues_v5(cue, float(height_cm))
    if level >= 6:
        _cues_v6(cue, img, lab_img, m, (y0, y1, x0, x1), height_cm, prop_finder or shipped_prop_finder())
    if level >= 7:
        _cues_v7(cue, gray, lab_img, m, (y0, y1, x0, x1))
    out[:] = [cue[k] for k in names]
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _place(a: np.ndarray, ox: int, oy: int, h: int, w: int) -> np.ndarray:
    """``a`` (th×tw, any dtype) put at (ox, oy) on an h×w canvas of zeros, clipped to it."""
    th, tw = a.shape[:2]
    out = np.zeros((h, w, *a.shape[2:]), a.dtype)
    sx0, sy0, sx1, sy1 = max(0, ox), max(0, oy), min(w, ox + tw), min(h, oy + th)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0:sy1, sx0:sx1] = a[sy0 - oy : sy1 - oy, sx0 - ox : sx1 - ox]
    return out


def _enclosed(a: np.ndarray) -> np.ndarray:
    """Pixels outside ``a`` that the outside of the canvas cannot reach (holes in a silhouette)."""
    pad = np.pad(a.astype(np.uint8), 1)
    flood = np.zeros((pad.shape[0] + 2, pad.shape[1] + 2), np.uint8)
    cv2.floodFill(pad, flood, (0, 0), 2)
    return np.asarray(pad[1:-1, 1:-1] == 0)


@dataclass(frozen=True)
class PropCandidates:
    """Regions that may be props: departing from their row's median colour (a backdrop and a floor run across the
    canvas; props, and text, do not) and clear of the product, after a 3×3 opening."""

    labels: np.ndarray  # H×W connected-component labels (0: not a candidate)
    stats: np.ndarray  # (n, 5) cv2 stats per label: x, y, width, height, area
    diff: np.ndarray  # H×W×3 Lab difference from the row's median colour
    dev: np.ndarray  # H×W its length (ΔE)


def _prop_candidates(lab_img: np.ndarray, m: np.ndarray, box: tuple[int, int, int, int],
                     border: np.ndarray) -> PropCandidates | None:
    """The prop candidates of sets 3 and 4, or None when fewer than 8 columns are clear of the product."""
    y0, y1, x0, x1 = box
    size = max(y1 - y0, x1 - x0)
    excl = cv2.dilate(m.astype(np.uint8), _K3, iterations=max(2, round(0.03 * size))).astype(bool)
    free = ~excl.any(axis=0)  # columns clear of the product: the row's backdrop and floor
    if free.sum() < 8:
        return None
    rowmed = np.median(lab_img[:, np.nonzero(free)[0][::2]], axis=1)  # every other column: as good, half the work
    diff = lab_img - rowmed[:, None, :]
    dev = np.linalg.norm(diff, axis=-1)
    fg = cv2.morphologyEx(((dev > 14.0) & ~excl & ~border).astype(np.uint8), cv2.MORPH_OPEN, _K3)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    return PropCandidates(labels, stats, diff, dev)


def _cues_v3(cue: dict[str, float], f32: np.ndarray, gray: np.ndarray, lab_img: np.ndarray,
             m: np.ndarray, crop: np.ndarray, cutout: np.ndarray, coef: np.ndarray | None,
             box: tuple[int, int, int, int], props: PropCandidates | None) -> None:
    """Version 3's own cues, into ``cue`` (computed on the work-size image ``f32``, its mask ``m`` with box
    ``box`` = (y0, y1, x0, x1), the cutout's opaque crop ``crop``, version 2's colour fit ``coef``
    and the prop candidates ``props``)."""
    h, w = m.shape
    y0, y1, x0, x1 = box
    bh, bw = y1 - y0, x1 - x0
    size = max(bh, bw)
    ch, cw = crop.shape[:2]
    mu = m.astype(np.uint8)
    m_area = float(m.sum())

    # missing part: the cutout registered on the mask (the scale read off either side or both, anchored on any
    # side), keeping the placement that best explains the mask (mask outside the cutout costs double: a part
    # missing from one side shrinks the mask's box, so the box alone stretches the cutout over the gap)
    best: tuple[float, int, int, int, int] | None = None
    alpha = np.ascontiguousarray(crop[..., 3])
    for sc in sorted({bh / ch, bw / cw, float(np.sqrt(bh * bw / (ch * cw)))}):
        tw, th = max(2, round(cw * sc)), max(2, round(ch * sc))
        a = _resize(alpha, (tw, th)) >= 128
        for ox in sorted({x0, x1 - tw, (x0 + x1 - tw) // 2}):
            for oy in sorted({y0, y1 - th, (y0 + y1 - th) // 2}):
                sx0, sy0, sx1, sy1 = max(0, ox), max(0, oy), min(w, ox + tw), min(h, oy + th)
                if sx1 <= sx0 or sy1 <= sy0:
                    continue
                part = a[sy0 - oy : sy1 - oy, sx0 - ox : sx1 - ox]
                inter = float(np.count_nonzero(part & m[sy0:sy1, sx0:sx1]))
                score = 2.0 * (m_area - inter) + (float(np.count_nonzero(part)) - inter)
                if best is None or score < best[0]:
                    best = (score, ox, oy, tw, th)
    if best is None:
        return
    _, ox, oy, tw, th = best
    ref = _place(_resize(np.ascontiguousarray(crop), (tw, th)), ox, oy, h, w)
    ra = ref[..., 3] >= 128
    if ra.sum() >= 16:
        miss = ra & ~m
        cue["miss_fit"] = float(miss.sum() / ra.sum())
        low = np.zeros_like(ra)
        low[max(0, oy + th - max(2, round(0.15 * th))) :] = True
        cue["miss_low"] = float((miss & low).sum() / ra.sum())
        cue["extra_fit"] = float((m & ~ra).sum() / max(1.0, m_area))
        cue["mask_holes"] = float((_enclosed(m) & ~_enclosed(ra) & ra).sum() / ra.sum())

    # detail against the registered cutout, after a per-channel affine colour fit (the labeller's error in units
    # of the cutout's own detail), and the fine and middle detail of the image against the cutout's
    dy0, dy1, dx0, dx1 = max(0, y0 - 4), min(h, y1 + 4), max(0, x0 - 4), min(w, x1 + 4)  # the product's box
    core = cv2.erode((ra & m)[dy0:dy1, dx0:dx1].astype(np.uint8), _K3, iterations=2).astype(bool)
    if core.sum() >= 16:
        ref_rgb = ref[dy0:dy1, dx0:dx1, :3].astype(np.float32)
        img_w = f32[dy0:dy1, dx0:dx1]
        x = np.c_[ref_rgb[core], np.ones(int(core.sum()), np.float32)]
        fit, *_ = np.linalg.lstsq(x, img_w[core], rcond=None)
        pred = np.clip(ref_rgb @ fit[:3] + fit[3], 0, 255).astype(np.float32)
        err = float(np.abs(img_w[core] - pred[core]).mean())
        detail = float(np.abs(pred - cv2.GaussianBlur(pred, (0, 0), max(1.0, bh / 80)))[core].mean())
        cue["detail_err"] = err / (detail + 2.0)
        g_pred = cv2.cvtColor(pred.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
        bands = []
        for g in (gray[dy0:dy1, dx0:dx1], g_pred):
            b1, b3 = cv2.GaussianBlur(g, (0, 0), 1.0), cv2.GaussianBlur(g, (0, 0), 3.0)
            bands.append((float(np.abs(g - b1)[core].mean()), float(np.abs(b1 - b3)[core].mean())))
        cue["hf1_ratio"] = float(np.log((bands[0][0] + 0.5) / (bands[1][0] + 0.5)))
        cue["hf2_ratio"] = float(np.log((bands[0][1] + 0.5) / (bands[1][1] + 0.5)))

    # the product's colours (corrected by the colour fit: the image's white balance, not the catalogue's, and
    # their shaded variants) in regions touching it that do not reach well past it on both sides
    pal = product_palette(Image.fromarray(cutout, "RGBA")).astype(np.float32) * 255.0
    if coef is not None:
        pal = np.clip(np.c_[pal, np.ones(len(pal), np.float32)] @ coef, 0, 255).astype(np.float32)
    pal_lab = lab(np.concatenate([pal, pal * 0.8]))
    mg = max(4, round(0.35 * size))  # a window around the product (a region reaching past it is cut there)
    wy0, wy1, wx0, wx1 = max(0, y0 - mg), min(h, y1 + mg), max(0, x0 - mg), min(w, x1 + mg)
    lab_w = lab_img[wy0:wy1, wx0:wx1]
    d2 = np.full(lab_w.shape[:2], np.inf, np.float32)
    for c in pal_lab:
        np.minimum(d2, ((lab_w - c) ** 2).sum(-1), out=d2)
    m_w = m[wy0:wy1, wx0:wx1]
    own = (d2 < OWN_DE * OWN_DE) & ~m_w
    near = cv2.dilate(mu[wy0:wy1, wx0:wx1], _K3, iterations=2).astype(bool) & ~m_w
    _, labels, stats, _ = cv2.connectedComponentsWithStats(own.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[near & own])
    reach = 0.25 * bw
    lx0, lx1 = x0 - wx0, x1 - wx0
    keep = [int(t) for t in touching if t > 0 and not (stats[t, cv2.CC_STAT_LEFT] < lx0 - reach and
                                                       stats[t, cv2.CC_STAT_LEFT] + stats[t, cv2.CC_STAT_WIDTH]
                                                       > lx1 + reach)]
    if keep:
        lut = np.zeros(len(stats), bool)
        lut[keep] = True
        cue["own_touch"] = float((lut[labels] & near).sum() / max(1, near.sum()))
        cue["own_grow"] = float(np.log1p(stats[keep, cv2.CC_STAT_AREA].sum() / max(1.0, m_area) * 100))

    # under the base: the darkening under the foot against beside it, row by row (a contact shadow at the base,
    # or away from it across a gap), the support's edge beside the product, and the colour under the foot
    # against beside it (the support under it, or a backdrop: a product beside its support)
    foot_rows = max(2, round(0.04 * bh))
    foot = np.nonzero(m[max(y0, y1 - foot_rows) : y1].any(axis=0))[0]
    fx0, fx1 = int(foot.min()), int(foot.max()) + 1
    fw = fx1 - fx0
    hi = min(h, y1 + max(3, round(0.4 * bh)))
    away = ~cv2.dilate(mu, _K3, iterations=1).astype(bool)
    left, right = slice(max(0, fx0 - fw), max(0, fx0 - 2)), slice(min(w, fx1 + 2), min(w, fx1 + fw))  # beside it
    sides = np.zeros(w, bool)
    sides[left] = sides[right] = True
    under_c = np.zeros(w, bool)
    under_c[fx0:fx1] = True
    if hi - y1 >= 3 and sides.any():
        rows = slice(y1, hi)
        ok_u, ok_s = away[rows] & under_c, away[rows] & sides
        dark = _darkening(gray[rows], ok_u, ok_s)
        if dark is not None:
            d = dark[0]
            k = int(np.argmax(d))
            cue["shadow_peak"] = k / bh
            cue["shadow_peak_val"] = float(d[k] / 255.0)
            first = d[: max(2, round(0.03 * bh))]
            first = first[np.isfinite(first)]
            cue["contact_dark"] = float(first.mean() / 255.0) if len(first) else 0.0
        lo_e, hi_e = max(0, y1 - max(3, round(0.3 * bh))), min(h, y1 + max(3, round(0.3 * bh)))
        gy = np.abs(cv2.Sobel(gray[lo_e:hi_e], cv2.CV_32F, 0, 1, ksize=3))
        prof = (gy * (away[lo_e:hi_e] & sides)).sum(1) / np.maximum((away[lo_e:hi_e] & sides).sum(1), 1)
        cue["side_edge_offset"] = (lo_e + int(np.argmax(prof)) - y1) / bh
        strip = slice(min(h - 1, y1 + 1), min(h, y1 + 1 + max(2, round(0.08 * bh))))
        su = away[strip] & under_c
        if su.sum() >= 3:
            lu = np.median(lab_img[strip][su], axis=0)
            des = []
            for cols in (left, right):
                sm = np.zeros(w, bool)
                sm[cols] = True
                ss = away[strip] & sm
                if ss.sum() >= 3:
                    des.append(float(np.linalg.norm(lu - np.median(lab_img[strip][ss], axis=0))) / 100.0)
            if des:
                cue["under_de_max"], cue["under_de_min"] = max(des), min(des)

    # scale against objects standing near the base: the prop candidates (see _prop_candidates), compact, not
    # touching the canvas's sides, with their bottom near the product's base
    if props is None:
        return
    st = props.stats
    tol = 0.05 * h + 0.1 * bh
    heights, areas = [], []
    for i in range(1, len(st)):
        px, py, pw, ph, area = (int(v) for v in st[i, :5])
        if (ph < max(3, 0.02 * h) or pw < 2 or area < 0.3 * ph * pw or pw > 0.5 * w or px <= 2 or px + pw >= w - 2
                or abs(py + ph - y1) > tol):
            continue
        heights.append(ph)
        areas.append(area)
    if heights:
        cue["prop_n"] = float(len(heights))
        cue["prop_log_med"] = float(np.log(bh / float(np.median(heights))))
        cue["prop_log_big"] = float(np.log(bh / heights[int(np.argmax(areas))]))


def _cues_v4(cue: dict[str, float], m: np.ndarray, box: tuple[int, int, int, int],
             props: PropCandidates | None) -> None:
    """Version 4's own cues, into ``cue``: the scale against props from version 3's prop candidates (regions
    departing from their row's median colour, clear of the product), kept by stricter rules (:data:`PROP_MIN_H`,
    :data:`PROP_MAX_WH`, :data:`PROP_MIN_DEV`, not a shadow, standing at the product's base) and summarised by the
    area-weighted median height."""
    if props is None:
        return
    h, w = m.shape
    y0, y1 = box[:2]
    bh = y1 - y0
    labels, st, diff, dev = props.labels, props.stats, props.diff, props.dev
    n = len(st)
    if n < 2:
        return
    flat = labels.ravel()
    count = np.maximum(np.bincount(flat, minlength=n), 1).astype(np.float64)

    def mean(v: np.ndarray) -> np.ndarray:  # per component
        return np.bincount(flat, weights=v.ravel().astype(np.float64), minlength=n) / count

    d_light, d_chroma, d_all = mean(diff[..., 0]), mean(np.linalg.norm(diff[..., 1:], axis=-1)), mean(dev)
    px, py, pw, ph, area = (st[:, k].astype(np.float64) for k in range(5))
    keep = ((ph >= max(3.0, PROP_MIN_H * h)) & (pw >= 2) & (area >= 0.3 * ph * pw) & (pw <= 0.5 * w) & (px > 2)
            & (px + pw < w - 2) & (np.abs(py + ph - y1) <= 0.03 * h + 0.05 * bh) & (pw <= PROP_MAX_WH * ph)
            & ~((d_light < -4.0) & (d_chroma < 6.0)) & (d_all >= PROP_MIN_DEV))
    keep[0] = False  # the background
    if not keep.any():
        return
    hs, ar = ph[keep], area[keep]
    order = np.argsort(hs, kind="stable")
    cum = np.cumsum(ar[order])
    med = float(hs[order][int(np.searchsorted(cum, cum[-1] / 2))])
    cue["prop2_n"] = float(keep.sum())
    cue["prop2_log_med"] = float(np.log(bh / med))
    cue["prop2_log_big"] = float(np.log(bh / hs[int(np.argmax(ar))]))


def _cues_v5(cue: dict[str, float], height_cm: float) -> None:
    """Version 5's own cues, into ``cue``: the product's real height, and version 4's prop ratios (product px
    against prop px, log) turned into a scale estimate with a prop of :data:`TYPICAL_PROP_CM`."""
    log_cm = float(np.log(height_cm))
    cue["height_known"] = 1.0
    cue["height_log_cm"] = log_cm
    if cue["prop2_n"] > 0:
        typical = float(np.log(TYPICAL_PROP_CM))
        cue["prop2_scale_med"] = cue["prop2_log_med"] - log_cm + typical
        cue["prop2_scale_big"] = cue["prop2_log_big"] - log_cm + typical


def _cues_v6(cue: dict[str, float], img: np.ndarray, lab_img: np.ndarray, m: np.ndarray,
             box: tuple[int, int, int, int], height_cm: float | None, finder: PropFinder) -> None:
    """Version 6's own cues, into ``cue``: :func:`prop_scale_cues` of the image's prop candidates."""
    feats, _ = prop_candidates(img, lab_img, m, box)
    cue.update(prop_scale_cues(feats, height_cm, finder))


def _darkening(g: np.ndarray, ok_u: np.ndarray, ok_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Row by row (``g`` rows×cols, masks of the pixels under the foot and beside it): the mean beside minus the
    mean under (−inf where a row has none of either), the mean under and how many pixels it had; None when no row
    has both."""
    nu, ns = ok_u.sum(1), ok_s.sum(1)
    valid = (nu > 0) & (ns > 0)
    if not valid.any():
        return None
    u = (g * ok_u).sum(1) / np.maximum(nu, 1)
    sd = (g * ok_s).sum(1) / np.maximum(ns, 1)
    return np.where(valid, sd - u, -np.inf), u, nu


def _cues_v7(cue: dict[str, float], gray: np.ndarray, lab_img: np.ndarray, m: np.ndarray,
             box: tuple[int, int, int, int]) -> None:
    """Version 7's own cues, into ``cue``: sets 2 and 3's under-the-base measurements again, on log luminance
    standardised by the foot's surroundings. A contact shadow or a support's edge is a ratio of light, not a
    difference: on a near-black floor it is a few grey levels, which the absolute cues read as no shadow at the base
    (a gap) or a darkest row anywhere (lowkey: docs/inspect.md, thirty-third round). In units of the region's own
    spread it reads the same on a white sweep and a black one; ``floor_lum`` and ``floor_contrast`` say how much
    there was to read.

    The darkening under the foot against beside it assumes a support wider than the product; a plinth as narrow as
    the product puts its dark front face under the foot and the lit backdrop beside it, which reads as a shadow away
    from the base. So it also compares, in Lab, the thin strip just under the foot with the backdrop beside the
    product just above its base (``gap_back_de``) and with what lies deeper under the foot (``gap_support_de``):
    across a gap the backdrop shows through under the foot, on a support the strip is the support's top."""
    y0, y1, x0, x1 = box
    h, w = m.shape
    bh = y1 - y0
    foot_rows = max(2, round(0.04 * bh))
    foot = np.nonzero(m[max(y0, y1 - foot_rows) : y1].any(axis=0))[0]
    fx0, fx1 = int(foot.min()), int(foot.max()) + 1
    fw = fx1 - fx0
    depth = max(3, round(0.4 * bh))
    lo, hi = max(0, y1 - depth), min(h, y1 + depth)
    cx0, cx1 = max(0, fx0 - fw), min(w, fx1 + fw)
    # away from the product and its anti-aliased rim: its own outline is not the support's edge
    away = ~cv2.dilate(m.astype(np.uint8), _K3, iterations=2).astype(bool)
    reg_away = away[lo:hi, cx0:cx1]
    if hi - y1 < 3 or reg_away.sum() < 16:
        return
    logl = np.log1p(gray[lo:hi, cx0:cx1])
    vals = logl[reg_away]
    med = float(np.median(vals))
    spread = float(np.median(np.abs(vals - med))) * 1.4826
    scale = max(spread, 0.02)  # a flat region (a plain sweep): ~2 % of light is the least change counted
    z = (logl - med) / scale
    beside = gray[y1:hi, cx0:cx1][reg_away[y1 - lo :]]
    cue["floor_lum"] = float(np.median(beside) / 255.0) if beside.size else 0.0
    cue["floor_contrast"] = spread
    # the darkening under the foot against beside it, row by row below the base
    cols = np.arange(cx0, cx1)
    under_c = (cols >= fx0) & (cols < fx1)
    side_c = ((cols < fx0 - 2) | (cols >= fx1 + 2))
    below = slice(y1 - lo, hi - lo)
    zb, ab = z[below], reg_away[below]
    ok_u, ok_s = ab & under_c, ab & side_c
    dark = _darkening(zb, ok_u, ok_s)
    if dark is not None:
        d, u, nu = dark
        k = int(np.argmax(d))
        cue["n_shadow_peak"] = k / bh
        cue["n_shadow_peak_val"] = float(np.clip(d[k], -10.0, 10.0))
        first = d[: max(2, round(0.03 * bh))]
        first = first[np.isfinite(first)]
        cue["n_contact_dark"] = float(np.clip(first.mean(), -10.0, 10.0)) if len(first) else 0.0
        uu = np.where(nu > 0, u, np.inf)
        j = int(np.argmin(uu))
        if np.isfinite(uu[j]):
            cue["n_dark_offset"] = j / bh
            side_med = float(np.median(zb[ok_s])) if ok_s.any() else 0.0
            cue["n_dark_depth"] = float(np.clip(side_med - uu[j], -10.0, 10.0))
    # the strongest horizontal edge across the foot's columns and beside them, the product's own outline excluded
    gy = np.abs(cv2.Sobel(z.astype(np.float32), cv2.CV_32F, 0, 1, ksize=3)) / 4.0
    rows_ok = reg_away.sum(1)
    prof = np.where(rows_ok >= 3, (gy * reg_away).sum(1) / np.maximum(rows_ok, 1), -1.0)
    j = int(np.argmax(prof))
    if prof[j] > 0:
        cue["n_edge_offset"] = (lo + j - y1) / bh
        cue["n_edge_strength"] = float(min(prof[j], 10.0))
    # just under the foot: the backdrop beside the product above its base, or what lies deeper under the foot?
    def lab_away(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:  # the Lab pixels of a box, off the product
        return lab_img[r0:r1, c0:c1][away[r0:r1, c0:c1]]

    bw = x1 - x0
    strip = lab_away(y1, min(h, y1 + max(2, round(0.04 * bh))), fx0, fx1)
    back = lab_away(max(0, y1 - round(0.15 * bh)), max(0, y1 - round(0.02 * bh)), max(0, x0 - bw // 2),
                    min(w, x1 + bw // 2))
    deep = lab_away(min(h, y1 + round(0.1 * bh)), min(h, y1 + round(0.25 * bh)), fx0, fx1)
    if len(strip) >= 3 and len(back) >= 3:
        c_strip = np.median(strip, axis=0)
        cue["gap_back_de"] = float(np.linalg.norm(c_strip - np.median(back, axis=0))) / 100.0
        if len(deep) >= 3:
            cue["gap_support_de"] = float(np.linalg.norm(c_strip - np.median(deep, axis=0))) / 100.0
            cue["gap_score"] = cue["gap_support_de"] - cue["gap_back_de"]


def prop_scale_cues(feats: np.ndarray, height_cm: float | None, finder: PropFinder) -> dict[str, float]:
    """Set 6's five cues from an image's candidates (``feats``, :func:`image_prop_candidates`): how many ``finder``
    calls props, the product's height against their area-weighted median height and against the largest one's
    (log), and those two turned into a scale with the real height ``height_cm`` (as set 5's; 0 when unknown)."""
    out = dict.fromkeys(CUE_NAMES_V6[len(CUE_NAMES_V5) :], 0.0)
    keep = finder.find(feats)
    if not keep.any():
        return out
    log_ratio = feats[keep, FEATURE_LOG_RATIO].astype(np.float64)  # log(product px / prop px)
    area = feats[keep, FEATURE_AREA].astype(np.float64)
    order = np.argsort(-log_ratio, kind="stable")  # shortest prop first
    cum = np.cumsum(area[order])
    med = float(log_ratio[order][int(np.searchsorted(cum, cum[-1] / 2))])
    big = float(log_ratio[int(np.argmax(area))])
    out["prop3_n"] = float(keep.sum())
    out["prop3_log_med"], out["prop3_log_big"] = med, big
    if height_cm is not None:
        shift = float(np.log(TYPICAL_PROP_CM)) - float(np.log(height_cm))
        out["prop3_scale_med"], out["prop3_scale_big"] = med + shift, big + shift
    return out


def image_prop_candidates(rgb: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The prop candidates set 6 classifies in an image (``rgb`` H×W×3 uint8, ``mask`` H×W in [0, 1]), as
    ``observe`` sees them: ``(work scale, features, boxes in work pixels)``; none without a product."""
    s, img, m = _work_view(rgb, mask)
    h, w = m.shape
    if m.sum() < 16:
        return s, np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros((0, 4), np.int32)
    ys, xs = np.nonzero(m)
    box = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    lab_img = lab(cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)).reshape(h, w, 3)
    feats, boxes = prop_candidates(img, lab_img, m, box)
    return s, feats, boxes
