"""Find the product's own pixels in an ad image that came without a placement mask.

Every generator here pastes the product cutout unaltered (only scaled), and so should any pipeline that keeps the
product's pixels, so an image that holds the product holds a scaled copy of the cutout. A masked colour template
match (normalised cross-correlation over the cutout's opaque pixels, OpenCV's ``TM_CCOEFF_NORMED``) over a
geometric ladder of scales, then refined at twice the resolution around the best one, finds it: the cutout's alpha
placed there is the placement mask, far closer to the truth than a saliency map. The best correlation says how
sure the placement is. A photograph that does not hold the product scores well below a pasted product (measured
on the v12/v13 validation images and scikit-image's photographs, docs/inspect.md), so an image where the product
is not found goes to a human reviewer: its verdict would rest on a guessed placement.

When that finds nothing, two more searches run: sizes below the ladder's smallest at the fine resolution (a tiny
product, refined the same way), and the part of the product left on the canvas against each side (a product the
canvas edge cuts; the whole template's box then lies partly off the canvas and the mask is its part on it). A hit
of theirs is trusted at a higher correlation (:data:`EXTRA_PENALTY`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# coarse: 24 sizes (1.11× apart) at 320 px; fine: ±6 % in 3 % steps at 640 px, which covers the gap between two
# coarse sizes. 16 sizes at 256 px refined ±9 % took half the time but judged worse with its masks (compositor AP
# 0.86 against 0.94 on v13's new SKUs; docs/inspect.md, fourteenth round): accuracy first on this path.
SEARCH_SIDE = 320  # long side of the image searched at the coarse stage (px)
SCALES = 24  # template sizes from MIN_FRACTION to the largest that fits, geometric
MIN_FRACTION = 0.1
# px, each side of a template: a smaller one matches anything (templates 8–12 px wide lifted a photograph's best
# score from 0.79 to 0.84 for a tall bottle, towards FOUND)
MIN_TEMPLATE = 12
MIN_PIXELS = 64  # interior product pixels a template needs
REFINE = (0.94, 0.97, 1.0, 1.03, 1.06)  # relative sizes tried at the fine stage
# Two more searches run only when the ones above found nothing (real-product renders: 89 of 500 not found, most of
# them a tiny product below the coarse ladder or a product cut by the canvas edge; docs/inspect.md, nineteenth round):
SMALL_STEP = 1.11  # small products: sizes below the coarse ladder's smallest, this far apart, at the fine resolution
EDGE_CUTS = (0.15, 0.3, 0.45)  # a product cut by the canvas edge: the share of it off the canvas, per side tried
EDGE_SLACK = 0.12  # how far (in template widths) the visible part may sit from the edge it was cut by
# A hit of those two searches reports its correlation less this: they try hundreds more templates (tiny ones, and
# parts of the product), so a photograph without the product finds a better chance match there (scikit-image's,
# against the sample products: up to 0.88 against 0.81 before them). The mask is the same; what changes is only
# when such a placement is trusted (0.95 raw) rather than sent to a human.
EXTRA_PENALTY = 0.05
# a placement this well correlated is the product; below it a human decides (docs/inspect.md, fourteenth round)
FOUND = 0.9


@dataclass(frozen=True)
class Placement:
    """Where the cutout sits in the image: ``mask`` (H, W) float32 in [0, 1] at the image's size, ``box`` (x0, y0,
    x1, y1) in image pixels, and ``score``, the masked correlation there (−1 when nothing could be matched)."""

    mask: np.ndarray
    box: tuple[int, int, int, int]
    score: float

    @property
    def found(self) -> bool:
        return self.score >= FOUND

    @property
    def matched(self) -> bool:
        """Whether any placement was matched at all (else ``mask`` is empty: nothing to judge on)."""
        return self.score > -1.0


def _resized(im: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    s = min(1.0, side / max(im.shape[:2]))
    if s < 1.0:
        im = cv2.resize(im, (max(1, round(im.shape[1] * s)), max(1, round(im.shape[0] * s))),
                        interpolation=cv2.INTER_AREA)
    return im.astype(np.float32), s


def _match(image: np.ndarray, rgba: np.ndarray, w: int, h: int) -> tuple[float, tuple[int, int]]:
    """Best masked correlation of the cutout scaled to (w, h) anywhere in ``image``, and where (x, y)."""
    if w < MIN_TEMPLATE or h < MIN_TEMPLATE or w > image.shape[1] or h > image.shape[0]:
        return -1.0, (0, 0)  # checked before resizing too: no template is made that could not be matched
    return _match_template(image, cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA))


def _match_template(image: np.ndarray, t: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Best masked correlation of the RGBA template ``t`` (at its size) anywhere in ``image``, and where (x, y)."""
    h, w = t.shape[:2]
    if w < MIN_TEMPLATE or h < MIN_TEMPLATE or w > image.shape[1] or h > image.shape[0]:
        return -1.0, (0, 0)
    # the product's interior only: edge pixels are blended with whatever the renderer put behind them
    alpha = cv2.erode((t[..., 3] >= 250).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    if alpha.sum() < MIN_PIXELS or t[..., :3][alpha > 0].std() < 1.0:
        return -1.0, (0, 0)  # too few product pixels, or one flat colour: no evidence either way
    r = cv2.matchTemplate(image, np.ascontiguousarray(t[..., :3], np.float32), cv2.TM_CCOEFF_NORMED,
                          mask=np.repeat(alpha[..., None], 3, 2))
    r = np.nan_to_num(r, nan=-1.0, posinf=-1.0, neginf=-1.0)  # a flat window has no correlation
    y, x = np.unravel_index(int(np.argmax(r)), r.shape)
    return float(r[y, x]), (int(x), int(y))


def locate_product(image: Image.Image, cutout: Image.Image) -> Placement:
    """The cutout's placement in ``image`` (see the module docstring). The cutout needs an alpha channel."""
    rgb = np.asarray(image.convert("RGB"))  # uint8: a 36-megapixel image is resized before it is made float
    H, W = rgb.shape[:2]
    rgba = np.asarray(cutout.convert("RGBA"))
    ys, xs = np.nonzero(rgba[..., 3] > 127)
    empty = Placement(np.zeros((H, W), np.float32), (0, 0, 0, 0), -1.0)
    if len(ys) == 0:
        return empty
    rgba = np.ascontiguousarray(rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    aspect = rgba.shape[1] / rgba.shape[0]

    # coarse: every scale on the small image
    small, s = _resized(rgb, SEARCH_SIDE)
    h_max = min(small.shape[0], small.shape[1] / aspect)
    best = (-1.0, 0.0, (0, 0))  # score, template height in full-image px, top-left in full-image px
    for hf in np.geomspace(MIN_FRACTION * h_max, h_max, SCALES):
        w, h = round(hf * aspect), round(hf)
        score, (x, y) = _match(small, rgba, w, h)
        if score > best[0]:
            best = (score, h / s, (round(x / s), round(y / s)))
    if best[0] <= -1.0:
        return empty

    # fine: twice the resolution, a window around the coarse hit, a few sizes around its size
    fine, s2 = _resized(rgb, 2 * SEARCH_SIDE)
    best = _refine(fine, s2, rgba, best)
    penalty = 0.0

    if best[0] < FOUND:  # a product smaller than the coarse ladder's smallest size, then refined the same way
        lo, hi = MIN_TEMPLATE, MIN_FRACTION * h_max * s2 / s
        small_best = (-1.0, 0.0, (0, 0))
        if hi > lo:
            for h in np.geomspace(lo, hi, max(2, int(np.ceil(np.log(hi / lo) / np.log(SMALL_STEP))) + 1)):
                score, (x, y) = _match(fine, rgba, round(round(h) * aspect), round(h))
                if score > small_best[0]:
                    small_best = (score, round(h) / s2, (round(x / s2), round(y / s2)))
        if small_best[0] > best[0]:
            best, penalty = _refine(fine, s2, rgba, small_best), EXTRA_PENALTY
    if best[0] < FOUND:  # a product cut by the canvas edge: its visible part, against that edge
        hit = _edge_match(small, rgba, h_max)
        if hit is not None and hit[0] > best[0]:
            best, penalty = (hit[0], hit[1] / s, (round(hit[2][0] / s), round(hit[2][1] / s))), EXTRA_PENALTY

    score, h_full, (x, y) = best
    score -= penalty  # the raw correlations chose the placement; this only says how far to trust it
    h = max(1, round(h_full))
    w = max(1, round(h * aspect))
    alpha = cv2.resize(rgba[..., 3], (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    mask = np.zeros((H, W), np.float32)
    cx0, cy0, cx1, cy1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)  # x, y < 0: cut by the edge
    if cx1 > cx0 and cy1 > cy0:
        mask[cy0:cy1, cx0:cx1] = alpha[cy0 - y: cy1 - y, cx0 - x: cx1 - x]
    return Placement(mask, (cx0, cy0, cx1, cy1), score)


def _refine(fine: np.ndarray, s2: float, rgba: np.ndarray,
            best: tuple[float, float, tuple[int, int]]) -> tuple[float, float, tuple[int, int]]:
    """A few sizes around a hit (:data:`REFINE`) in a window around it on ``fine`` (the image at scale ``s2``);
    ``best`` and the result are (score, template height, top-left), both in full-image px."""
    aspect = rgba.shape[1] / rgba.shape[0]
    h0, (x0, y0) = best[1], best[2]
    pad = max(4, round(0.08 * h0 * s2))
    for f in REFINE:
        h = round(h0 * f * s2)
        w = round(h * aspect)
        top, left = max(0, round(y0 * s2) - pad), max(0, round(x0 * s2) - pad)
        window = fine[top:min(fine.shape[0], top + h + 2 * pad), left:min(fine.shape[1], left + w + 2 * pad)]
        score, (x, y) = _match(window, rgba, w, h)
        if score > best[0]:
            best = (score, h / s2, (round((left + x) / s2), round((top + y) / s2)))
    return best


def _edge_match(image: np.ndarray, rgba: np.ndarray, h_max: float) -> tuple[float, float, tuple[int, int]] | None:
    """A product the canvas edge cuts: for each side, each share cut off (:data:`EDGE_CUTS`) and each size of the
    coarse ladder, the part left on the canvas is matched in a strip along that side. Returns the best (score,
    template height, top-left of the whole template in ``image`` px, off the canvas on the cut side) or None."""
    H, W = image.shape[:2]
    aspect = rgba.shape[1] / rgba.shape[0]
    best: tuple[float, float, tuple[int, int]] | None = None
    for hf in np.geomspace(MIN_FRACTION * h_max, 1.5 * h_max, SCALES):
        w, h = round(hf * aspect), round(hf)
        if w < MIN_TEMPLATE or h < MIN_TEMPLATE:
            continue
        t = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
        for cut in EDGE_CUTS:
            for side in ("left", "right", "top", "bottom"):
                along = w if side in ("left", "right") else h
                off = round(cut * along)  # template px off the canvas
                vis = along - off
                reach = min(vis + round(EDGE_SLACK * along), W if side in ("left", "right") else H)
                if vis < MIN_TEMPLATE:
                    continue
                if side == "left":
                    part, strip, x0, y0 = t[:, off:], image[:, :reach], 0, 0
                elif side == "right":
                    part, strip, x0, y0 = t[:, :vis], image[:, W - reach:], W - reach, 0
                elif side == "top":
                    part, strip, x0, y0 = t[off:], image[:reach], 0, 0
                else:
                    part, strip, x0, y0 = t[:vis], image[H - reach:], 0, H - reach
                score, (x, y) = _match_template(np.ascontiguousarray(strip), part)
                if best is None or score > best[0]:
                    # back to the whole template's top-left (negative on the cut side)
                    tx = x0 + x - (off if side == "left" else 0)
                    ty = y0 + y - (off if side == "top" else 0)
                    best = (score, float(h), (tx, ty))
    return best if best is not None and best[0] > -1.0 else None
