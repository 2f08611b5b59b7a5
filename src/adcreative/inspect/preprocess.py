"""RFNet's preprocessing, shipped with the model (its sizes live in the model's config.json).

Every modality is brought onto one square frame so spatial tokens line up across modalities:

* the generated image is letterboxed (aspect kept, grey padding at the ImageNet mean, which normalises to ~0);
* the placement mask is letterboxed the same way, together with a *valid* map that marks the canvas inside the
  letterbox (so truncation at the canvas border stays visible). Without a mask, the cutout's own pixels are found
  in the image (:mod:`adcreative.inspect.locate`) and placed at their best match; the item's ``placement``
  score says how sure that is (below ``locate.FOUND`` the image goes to a human), and a spectral-residual
  saliency map stands in only where nothing could be matched at all;
* the structure map is the Sobel gradient magnitude of the generated image, computed before padding so
  the letterbox border is not an edge;
* the product cutout is cropped to its alpha's bounding box and composited on the same grey;
* the colour-affinity map says, per pixel, how close the generated image's colour is to the product's own
  colours (a small palette clustered from the cutout): a shape that continues the product, or a prop in its
  colours touching it, lights up outside the mask (shape hallucination), and a product that melts into its
  background lights up all around it (indistinctiveness).

All of it is NumPy/OpenCV only: no torch here, so data loading can run without the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from adcreative.catalogue.sizes import MAX_HEIGHT_CM, is_height_cm
from adcreative.core.backbones import IMAGENET_MEAN, normalize
from adcreative.core.errors import InputError
from adcreative.core.types import Product

PAD_RGB = tuple(round(v * 255) for v in IMAGENET_MEAN)
MIN_SIDE = 32


@dataclass
class InspectItem:
    """One image to judge, with its auxiliary inputs. ``mask``/``product`` may be None (estimated)."""

    image: Image.Image  # the generated ad image (RGB)
    title: str | None  # product title (text modality)
    mask: Image.Image | None = None  # L, product placement in ``image``; None → found from the cutout, else saliency
    product: Image.Image | None = None  # RGBA cutout; None → cut out of ``image`` by the mask
    label: str | None = None  # ground truth, when known
    product_id: str = ""
    id: str = ""
    source: str = ""  # file or creative id, for error messages
    height_cm: float | None = None  # the product's real height (catalogue.sizes.real_height_cm); None: unknown
    renderer: str = ""  # the renderer family that drew the image ("compositor", ...; "" unknown): its decision
    # where the product comes from ("real", "sample" or a family of catalogue.sources.DRAWN_FAMILIES; ""
    # unknown, counted as real): a real product's images meet the decision's real-product accept floor
    # (decision.is_drawn)
    product_source: str = ""


def generator_family(generator: str) -> str:
    """The renderer family of a generator's name as creatives and datasets record it (``compositor@3`` →
    ``compositor``): what ``InspectItem.renderer`` and the decision's per-family thresholds are keyed by."""
    return str(generator).split("@")[0]


def catalogue_source(product: Product) -> str:
    """Where a catalogue product comes from, as the catalogue marked it (``attrs["catalogue_source"]``: "sample",
    a family of ``catalogue.sources.DRAWN_FAMILIES``, "real"; "" unmarked): what
    ``InspectItem.product_source`` carries."""
    return str(product.attrs.get("catalogue_source", ""))


def check_item(item: InspectItem, *, need_title: bool = True) -> None:
    """Refuse inputs the model cannot judge, naming the problem and the source."""
    src = item.source or item.id or None
    if not isinstance(item.image, Image.Image):
        raise InputError("missing modality: no generated image", source=src)
    w, h = item.image.size
    if min(w, h) < MIN_SIDE:
        raise InputError(f"image is {w}×{h}, under the minimum side of {MIN_SIDE}", source=src)
    # (an empty mask is legitimate: the product is missing from the image, a defect the model must see)
    if item.mask is not None and item.mask.size != item.image.size:
        raise InputError(f"mask is {item.mask.size[0]}×{item.mask.size[1]} but the image is {w}×{h}", source=src)
    if item.product is not None:
        if item.product.mode not in ("RGBA", "LA"):
            raise InputError(f"product cutout must be RGBA (alpha = mask), got mode {item.product.mode}",
                             source=src)
        if min(item.product.size) < MIN_SIDE:
            raise InputError(f"product cutout is {item.product.size[0]}×{item.product.size[1]}, "
                             f"under the minimum side of {MIN_SIDE}", source=src)
        if not (np.asarray(item.product.getchannel("A")) > 127).any():
            raise InputError("product cutout's alpha is empty", source=src)
    if item.height_cm is not None and not is_height_cm(item.height_cm):
        raise InputError(f"product height must be a number of cm in (0, {MAX_HEIGHT_CM:g}], got {item.height_cm!r}",
                         source=src)
    if need_title and (item.title is None or not str(item.title).strip()):
        raise InputError("missing modality: empty title (the model reads the product title)", source=src)


def _fit(w: int, h: int, size: int) -> tuple[int, int, int, int]:
    s = size / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return nw, nh, (size - nw) // 2, (size - nh) // 2


def letterbox_rgb(im: Image.Image, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(size, size, 3) uint8 with grey padding, and the placement (w, h, x0, y0) of the content."""
    nw, nh, x0, y0 = _fit(*im.size, size)
    out = np.empty((size, size, 3), np.uint8)
    out[:] = PAD_RGB
    out[y0:y0 + nh, x0:x0 + nw] = np.asarray(im.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR))
    return out, (nw, nh, x0, y0)


def letterbox_gray(arr: np.ndarray, size: int) -> np.ndarray:
    """A float map in [0, 1] letterboxed onto zeros."""
    h, w = arr.shape
    nw, nh, x0, y0 = _fit(w, h, size)
    out = np.zeros((size, size), np.float32)
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(arr.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def saliency_map(im: Image.Image) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007), in [0, 1] at the image's size.

    The stand-in for the placement mask when none is known (e.g. RF1M images without masks)."""
    g = cv2.resize(np.asarray(im.convert("L"), np.float32), (64, 64), interpolation=cv2.INTER_AREA)
    f = np.fft.fft2(g)
    log_amp = np.log(np.abs(f) + 1e-8)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(f)))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (9, 9), 2.5)
    sal = (sal - sal.min()) / (sal.max() - sal.min() + 1e-8)
    return cv2.resize(sal, im.size, interpolation=cv2.INTER_LINEAR)


def structure_map(rgb: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of an RGB uint8 image, in [0, 1]."""
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return np.clip(np.sqrt(gx * gx + gy * gy) / 2.0, 0.0, 1.0)


def cutout_from_image(im: Image.Image, mask: np.ndarray) -> Image.Image:
    """An RGBA cutout of the image where ``mask`` (float, image size) is on: the product modality for
    samples that come without their catalogue cutout (RF1M)."""
    rgba = im.convert("RGB").copy()
    rgba.putalpha(Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8)))
    return rgba


def product_canvas(cutout: Image.Image, size: int) -> np.ndarray:
    """The cutout cropped to its alpha's bounding box, composited on grey and letterboxed."""
    rgba = cutout.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    ys, xs = np.nonzero(alpha > 8)
    if len(xs):
        rgba = rgba.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    bg = Image.new("RGBA", rgba.size, (*PAD_RGB, 255))
    bg.alpha_composite(rgba)
    return letterbox_rgb(bg.convert("RGB"), size)[0]


PALETTE_SIZE = 5
AFFINITY_SIGMA = 0.08  # RGB distance (in [0, 1] units) where the affinity falls to e^-1/2


_PALETTES: dict[tuple[str, int], np.ndarray] = {}  # every creative of a product shares its cutout's palette


def product_palette(cutout: Image.Image, k: int = PALETTE_SIZE) -> np.ndarray:
    """(≤k, 3) float32 RGB in [0, 1], read-only: the cutout's main colours by k-means (deterministic:
    luminance-quantile initialisation, fixed subsample), clusters under 3% of the product's pixels dropped.
    Cached per cutout content (hashing is ~10× cheaper than the clustering)."""
    rgba = np.asarray(cutout.convert("RGBA"))
    key = (hashlib.sha1(rgba.tobytes()).hexdigest() + str(rgba.shape), k)
    if key not in _PALETTES:
        _PALETTES[key] = _palette(rgba, k)
        _PALETTES[key].setflags(write=False)
        while len(_PALETTES) > 256:
            _PALETTES.pop(next(iter(_PALETTES)))
    return _PALETTES[key]


def _palette(rgba: np.ndarray, k: int) -> np.ndarray:
    px = rgba[rgba[..., 3] >= 128][:, :3].astype(np.float32) / 255.0
    if len(px) == 0:
        return np.full((1, 3), 0.5, np.float32)
    px = px[:: max(1, len(px) // 4096)]
    lum = px @ np.array([0.299, 0.587, 0.114], np.float32)
    order = np.argsort(lum, kind="stable")
    centres = px[order[((np.arange(k) + 0.5) / k * len(px)).astype(int)]].copy()
    for _ in range(10):
        assign = ((px[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if (assign == j).any():
                centres[j] = px[assign == j].mean(0)
    share = np.bincount(assign, minlength=k) / len(px)
    return centres[share >= 0.03].astype(np.float32)


def colour_affinity(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """exp(-d²/2σ²) with d the RGB distance of each pixel to its nearest palette colour: (h, w) in [0, 1]."""
    x = rgb.astype(np.float32) / 255.0
    d2 = ((x[:, :, None, :] - palette[None, None]) ** 2).sum(-1).min(-1)
    return np.exp(-d2 / (2 * AFFINITY_SIGMA ** 2)).astype(np.float32)


CROP_MARGIN = 0.5  # the product view: the mask's bounding box grown by this fraction of its longer side


def crop_box(m: np.ndarray, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """A square box around where ``m`` > 0.5 (grown by ``margin``), possibly reaching past the canvas so a
    product cut by the canvas edge shows the edge; the whole image when ``m`` is empty."""
    ys, xs = np.nonzero(m > 0.5)
    h, w = m.shape
    if len(xs) == 0:
        return 0, 0, w, h
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(side, 32.0)
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


def _crop(arr: np.ndarray, box: tuple[int, int, int, int], fill: float | tuple[int, ...]) -> np.ndarray:
    """``arr[y0:y1, x0:x1]`` with ``fill`` outside the array."""
    x0, y0, x1, y1 = box
    h, w = arr.shape[:2]
    out = np.empty((y1 - y0, x1 - x0, *arr.shape[2:]), arr.dtype)
    out[...] = fill
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


def _views(rgb: np.ndarray, palette: np.ndarray, image_size: int,
           aux_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3,S,S) normalised image, (A,A) edges and (A,A) colour affinity of an RGB array."""
    im = Image.fromarray(rgb)
    out, _ = letterbox_rgb(im, image_size)
    # the aux maps are computed on the content at aux resolution, then padded with zeros
    nw, nh, _, _ = _fit(im.size[0], im.size[1], aux_size)
    small = np.asarray(im.resize((nw, nh), Image.Resampling.BILINEAR))
    edges = letterbox_gray(structure_map(small), aux_size)
    affinity = letterbox_gray(colour_affinity(small, palette), aux_size)
    return normalize(out), edges, affinity


def placement_mask(item: InspectItem, im: Image.Image) -> tuple[np.ndarray, float]:
    """The placement mask (H, W) in [0, 1] and how sure it is: the item's own mask (1.0); without one, the cutout
    found in the image (:func:`~adcreative.inspect.locate.locate_product`): its best placement and correlation,
    saliency only when nothing could be matched at all; with neither a mask nor a cutout, saliency and NaN
    (nothing to check it against). Below ``FOUND`` the decision sends the image to a human whatever the verdict;
    the best placement still makes a better verdict than saliency (docs/inspect.md, nineteenth round)."""
    if item.mask is not None:
        return np.asarray(item.mask.convert("L"), np.float32) / 255.0, 1.0
    if item.product is None:
        return saliency_map(im), float("nan")
    from adcreative.inspect.locate import locate_product

    found = locate_product(im, item.product)
    return (found.mask if found.matched else saliency_map(im)), found.score


def preprocess_item(item: InspectItem, *, image_size: int, aux_size: int, cues: bool = True,
                    cue_set: str | None = None) -> dict[str, np.ndarray]:
    """One item → ``image``, ``product``, ``local`` (3,S,S) and ``aux``, ``local_aux`` (4,A,A) = [mask, valid,
    edges, colour affinity to the product], and ``placement``, how sure the mask is (:func:`placement_mask`).
    ``local`` is the product view: the generated image cropped around the mask at the same input size, so the
    product's surroundings are seen at several times the full view's scale. ``cues`` are the measured cues of :mod:`adcreative.inspect.cues`, set ``cue_set`` (zeros
    when ``cues`` is False: a model that does not read them need not pay for them)."""
    im = item.image.convert("RGB")
    m, placement = placement_mask(item, im)
    rgb = np.asarray(im)
    product = item.product if item.product is not None else cutout_from_image(im, m)
    palette = product_palette(product)
    image, edges, aff = _views(rgb, palette, image_size, aux_size)
    valid = letterbox_gray(np.ones(m.shape, np.float32), aux_size)
    mask = letterbox_gray(m, aux_size)
    box = crop_box(m)
    crgb = _crop(rgb, box, PAD_RGB)
    local, cedges, caff = _views(crgb, palette, image_size, aux_size)
    cvalid = letterbox_gray(_crop(np.ones(m.shape, np.float32), box, 0.0), aux_size)
    cmask = letterbox_gray(_crop(m, box, 0.0), aux_size)
    from adcreative.inspect.cues import LEGACY_CUE_SET, n_cues, observe

    cue_set = cue_set or LEGACY_CUE_SET
    measured = (observe(rgb, m, np.asarray(product.convert("RGBA")), version=cue_set, height_cm=item.height_cm) if cues
                else np.zeros(n_cues(cue_set), np.float32))
    return {
        "image": image,
        "placement": np.asarray(placement, np.float32),
        "product": normalize(product_canvas(product, image_size)),
        "cues": measured,
        "aux": np.stack([mask, valid, edges, aff]).astype(np.float32),
        "local": local,
        "local_aux": np.stack([cmask, cvalid, cedges * cvalid, caff * cvalid]).astype(np.float32),
    }


ARRAY_KEYS = ("image", "product", "aux", "local", "local_aux", "cues", "placement")


def prepare_arrays(items: Sequence[InspectItem], config: dict[str, Any]) -> dict[str, np.ndarray]:
    """A batch of items → the model's input arrays, from the sizes in a saved model's ``config``:
    ``image``, ``product``, ``local`` (B,3,S,S), ``aux``, ``local_aux`` (B,4,A,A), ``cues`` (B, n_cues), ``placement``
    (B,) (:func:`placement_mask`: not a model input; the decision reads it) and, when the
    model reads the title, ``text`` (B,T,384) and ``text_valid`` (B,T). The one preprocessing path of RFNet and its
    ONNX export."""
    if not items:
        raise InputError("empty batch: nothing to inspect")
    try:
        size, aux = int(config["image_size"]), int(config["aux_size"])
        use_text = bool(config["use_text"])
    except KeyError as e:
        raise InputError(f"model config has no {e.args[0]!r}: not an inspector config") from None
    arrays = []
    for it in items:
        check_item(it, need_title=use_text)
        arrays.append(preprocess_item(it, image_size=size, aux_size=aux, cues=bool(config.get("use_cues", False)),
                                      cue_set=config.get("cue_set")))
    out = {k: np.stack([a[k] for a in arrays]) for k in ARRAY_KEYS}
    if use_text:
        from adcreative.core.backbones import title_tokens

        text, valid = title_tokens([str(it.title) for it in items], encoder=str(config["text_encoder"]),
                                   max_tokens=int(config["max_text_tokens"]))
        out["text"], out["text_valid"] = text.numpy(), valid.numpy()
    return out
