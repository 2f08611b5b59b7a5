"""The product cutout in a scene: cropped to its silhouette, scaled once, pasted with its own pixels unaltered.

This is the generator contract every renderer keeps (the product's opaque pixels are copied bit for bit), not
a way of drawing a scene; the renderers share it so that "exact product pixels" means one thing.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.imageio import MIN_SIDE
from adcreative.core.types import Product

OPAQUE = 250  # alpha at or above this is "the product's own pixels": copied exactly, never blended


@functools.lru_cache(maxsize=64)
def _crop_cached(key: str, data: bytes, size: tuple[int, int]) -> np.ndarray:
    arr = np.frombuffer(data, np.uint8).reshape(size[1], size[0], 4)
    ys, xs = np.nonzero(arr[..., 3] > 8)
    if not len(xs):
        raise ValueError("the product cutout's alpha is empty")
    crop = np.ascontiguousarray(arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    crop.setflags(write=False)  # shared between calls through the cache
    return crop


def crop_rgba(image: Image.Image) -> np.ndarray:
    """The cutout as H×W×4 uint8, cropped to the bounding box of its alpha (read-only, cached)."""
    im = image if image.mode == "RGBA" else image.convert("RGBA")
    data = im.tobytes()
    return _crop_cached(hashlib.md5(data).hexdigest(), data, im.size)


def placeable_cutout(product: Product) -> np.ndarray:
    """:func:`crop_rgba` of a product's cutout, or an :class:`InputError` naming the product when there is nothing
    a renderer could place: an empty alpha, or no pixel opaque enough to be the product's own."""
    try:
        cut = crop_rgba(product.image)
    except ValueError:
        raise InputError("the product cutout's alpha is empty: nothing to place", source=product.id) from None
    if not (cut[..., 3] >= OPAQUE).any():
        raise InputError("the product cutout has no opaque pixels (alpha under 250 everywhere)", source=product.id)
    return cut


@dataclass(frozen=True)
class Footprint:
    """A cutout fitted to its placed size, and where it stands: ``ref`` the fitted RGBA, ``opaque`` its own pixels
    (alpha ≥ OPAQUE), ``base_off``/``top_off`` its lowest and highest opaque rows, ``f0``:``f1`` the columns of its
    foot (the bottom 4 % of its opaque height)."""

    ref: np.ndarray
    opaque: np.ndarray
    base_off: int
    top_off: int
    f0: int
    f1: int

    @property
    def hh(self) -> int:
        """The opaque height in pixels."""
        return self.base_off - self.top_off + 1


def footprint(cut: np.ndarray, w: int, h: int) -> Footprint:
    """:func:`fit` of ``cut`` to ``w``×``h`` and its :class:`Footprint`. A cutout whose opaque pixels vanish at this
    size keeps its soft ones (alpha > 8) as opaque, so every placed product has a base and a foot."""
    ref = fit(cut, w, h)
    opaque = ref[..., 3] >= OPAQUE
    if not opaque.any():
        ref = ref.copy()
        ref[..., 3][ref[..., 3] > 8] = 255
        opaque = ref[..., 3] >= OPAQUE
    rows = np.nonzero(opaque.any(axis=1))[0]
    base_off, top_off = int(rows.max()), int(rows.min())
    band = max(2, round(0.04 * (base_off - top_off + 1)))
    foot = np.nonzero(opaque[base_off - band + 1 : base_off + 1].any(axis=0))[0]
    return Footprint(ref, opaque, base_off, top_off, int(foot.min()), int(foot.max()) + 1)


def fit(rgba: np.ndarray, w: int, h: int) -> np.ndarray:
    """The cutout scaled to ``w``×``h`` (area interpolation: the one resampling the product ever gets)."""
    return np.asarray(cv2.resize(rgba, (max(1, w), max(1, h)), interpolation=cv2.INTER_AREA))


def paste(canvas: np.ndarray, rgba: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """Alpha-composite ``rgba`` onto ``canvas`` (H×W×3 uint8, in place) at (x0, y0): opaque pixels copied bit for
    bit, the soft edge blended. Returns the mask of copied (opaque) pixels, canvas-sized."""
    H, W = canvas.shape[:2]
    ph, pw = rgba.shape[:2]
    mask = np.zeros((H, W), bool)
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + pw), min(H, y0 + ph)
    if cx1 <= cx0 or cy1 <= cy0:
        return mask
    p = rgba[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    a = p[..., 3:4].astype(np.float32) / 255.0
    region = canvas[cy0:cy1, cx0:cx1]
    blended = (region.astype(np.float32) * (1 - a) + p[..., :3].astype(np.float32) * a + 0.5).astype(np.uint8)
    opaque = p[..., 3] >= OPAQUE
    blended[opaque] = p[..., :3][opaque]
    canvas[cy0:cy1, cx0:cx1] = blended
    mask[cy0:cy1, cx0:cx1] = opaque
    return mask


def stamp(dst: np.ndarray, src: np.ndarray, x0: int, y0: int) -> None:
    """Copy ``src`` into ``dst`` (in place) with its top-left at (x0, y0), clipped to ``dst``: placing a layer,
    mask or silhouette that may reach past the canvas."""
    H, W = dst.shape[:2]
    h, w = src.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx1 > cx0 and cy1 > cy0:
        dst[cy0:cy1, cx0:cx1] = src[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def silhouette(rgba: np.ndarray, box: tuple[int, int, int, int], canvas_hw: tuple[int, int]) -> np.ndarray:
    """Canvas-sized mask of the cutout's opaque pixels placed in ``box`` (clipped to the canvas)."""
    H, W = canvas_hw
    x0, y0 = box[0], box[1]
    ph, pw = rgba.shape[:2]
    out = np.zeros((H, W), bool)
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + pw), min(H, y0 + ph)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0:cy1, cx0:cx1] = rgba[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, 3] >= OPAQUE
    return out


def source_image(prod: np.ndarray) -> Image.Image:
    """A damaged product (RGBA at placement size) as the source an auditor is given: blown up by whole pixels
    (nearest, so the damage is kept exactly) where a slim product is under the smallest cutout accepted."""
    h, w = prod.shape[:2]
    k = -(-MIN_SIDE // max(1, min(h, w)))
    if k > 1:
        prod = cv2.resize(prod, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    return Image.fromarray(np.ascontiguousarray(prod), "RGBA")
