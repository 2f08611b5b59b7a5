"""RFNet as a differentiable reward for RFFT.

``RFNet.forward`` runs its frozen trunk under ``no_grad`` (training caches it), and its preprocessing is
NumPy/OpenCV. For feedback fine-tuning the generated image must stay a tensor with a graph, so this adapter
re-implements the image-dependent preprocessing in torch — letterbox + ImageNet normalisation, and the
structure map (Sobel magnitude of the grey image, as :func:`adcreative.inspect.preprocess.structure_map`) and
the colour affinity to the product's palette (as :func:`adcreative.inspect.preprocess.colour_affinity`) —
and runs the trunk with gradients. It rounds to 8 bits wherever RFNet's path does (PIL's resize pass by
pass, OpenCV's fixed-point grey) with a straight-through estimator, so the maps it feeds RFNet are RFNet's own
(P(available) within ~1e-5 median of RFNet's at the shipped 224/112 px input size) while gradients still
reach the pixels. The per-example inputs that do not depend on the generated pixels (the product cutout, the
placement mask and letterbox valid map, the title's token embeddings) are computed once with RFNet's own
NumPy preprocessing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adcreative.core.types import Product

if TYPE_CHECKING:
    from adcreative.generate.diffusers_inpaint import Placement
    from adcreative.inspect.model import RFNet

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
# OpenCV's 8-bit RGB2GRAY: fixed-point weights over 2^15, rounded half up (matches cv2.cvtColor bit for bit)
_GREY_FIXED = (9798, 19235, 3735)
_GREY_SHIFT = 15


def _fit(w: int, h: int, size: int) -> tuple[int, int, int, int]:
    from adcreative.inspect.preprocess import _fit as fit

    return fit(w, h, size)


class RFNetReward(nn.Module):
    """Wraps a (frozen) RFNet: ``forward(images (B,3,H,W) in [0,1], aux) → logits (B, 6)``. ``renderer``: the
    renderer family whose images it judges (the generator being tuned); a calibration RFNet keeps for that renderer
    (``inspect calibrate-renderer``) moves the logits, as ``RFNet.judge`` does for that renderer's images."""

    pad: Tensor
    sobel: Tensor
    grey: Tensor
    grey_fixed: Tensor

    def __init__(self, rfnet: RFNet, renderer: str = "") -> None:
        super().__init__()
        from adcreative.inspect.preprocess import PAD_RGB

        self.rfnet = rfnet
        self.renderer = renderer
        self.rfnet.requires_grad_(False)
        self.rfnet.eval()
        self.register_buffer("pad", torch.tensor([v / 255.0 for v in PAD_RGB]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("sobel", torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None], persistent=False)
        fixed = torch.tensor(_GREY_FIXED, dtype=torch.int64).view(1, 3, 1, 1)
        self.register_buffer("grey_fixed", fixed, persistent=False)
        self.register_buffer("grey", fixed.float() / 2**_GREY_SHIFT, persistent=False)

    def train(self, mode: bool = True) -> RFNetReward:
        super().train(False)  # always an evaluator: frozen BN, no dropout
        return self

    # -- fixed per-example inputs -----------------------------------------------------------------------
    def auxiliaries(self, product: Product, placement: Placement) -> dict[str, Tensor]:
        """Product cutout, placement mask + valid map, the product view's crop box with its mask + valid map,
        title tokens: fixed while the background is tuned."""
        from adcreative.core.backbones import title_tokens
        from adcreative.inspect.decision import is_drawn
        from adcreative.inspect.preprocess import (
            _crop,
            catalogue_source,
            crop_box,
            letterbox_gray,
            normalize,
            product_canvas,
            product_palette,
        )

        net = self.rfnet
        mask = np.asarray(placement.paste_mask.convert("L"), np.float32) / 255.0
        h, w = mask.shape
        box = crop_box(mask)  # depends on the mask only, so the crop is fixed and differentiable
        ones = np.ones((h, w), np.float32)
        out = {
            "product": torch.from_numpy(normalize(product_canvas(product.image, net.image_size))),
            "mask": torch.from_numpy(np.stack([letterbox_gray(mask, net.aux_size), letterbox_gray(ones, net.aux_size)])),
            "crop": torch.tensor(box, dtype=torch.long),
            "palette": _pad_palette(product_palette(product.image)),
            "local_mask": torch.from_numpy(np.stack([letterbox_gray(_crop(mask, box, 0.0), net.aux_size),
                                                     letterbox_gray(_crop(ones, box, 0.0), net.aux_size)])),
            # whether the product is real: RFNet adds its real-product bias (if fitted) to such images' logits
            "real": torch.tensor(not is_drawn(catalogue_source(product))),
        }
        if net.use_cues:  # the inputs of the measured cues besides the image: the mask, the cutout, the height
            from adcreative.catalogue.sizes import real_height_cm

            out["cue_mask"] = torch.from_numpy(mask)
            out["cutout"] = torch.from_numpy(_cutout_canvas(product.image))
            out["height_cm"] = torch.tensor(real_height_cm(product), dtype=torch.float64)
        if net.use_text:
            text, valid = title_tokens([product.title], encoder=net.text_encoder_name, max_tokens=net.max_text_tokens)
            T = net.max_text_tokens  # pad to a fixed length so examples of different titles stack
            out["text"] = F.pad(text[0], (0, 0, 0, T - text.shape[1]))
            out["text_valid"] = F.pad(valid[0], (0, T - valid.shape[1]), value=False)
        return out

    # -- differentiable preprocessing -------------------------------------------------------------------
    # RFNet's own path works on 8-bit pixels: PIL resizes (a horizontal then a vertical pass, each rounded to
    # uint8) and OpenCV's fixed-point grey. The adapter rounds at the same places with a straight-through
    # estimator (the forward value is what RFNet sees, the gradient is the identity), so its scores agree
    # with RFNet's instead of drifting by the resampling and rounding error an aux map amplifies.
    def _resize(self, x: Tensor, h: int, w: int) -> Tensor:
        """PIL's BILINEAR resize of an 8-bit image (antialiased triangle filter, pass by pass)."""
        if x.shape[-1] != w:
            x = _quantize(F.interpolate(x, size=(x.shape[-2], w), mode="bilinear", align_corners=False,
                                        antialias=True))
        if x.shape[-2] != h:
            x = _quantize(F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True))
        return x

    def _letterbox(self, x: Tensor, size: int) -> Tensor:
        """``letterbox_rgb``: aspect-preserving resize into a size×size frame of RFNet's grey, normalised."""
        from adcreative.core.backbones import normalize_tensor

        _, _, H, W = x.shape
        nw, nh, x0, y0 = _fit(W, H, size)
        r = F.pad(self._resize(x, nh, nw), (x0, size - nw - x0, y0, size - nh - y0))
        return normalize_tensor(r + self.pad * _frame(size, nw, nh, x0, y0, x))

    def _small(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int, int]]:
        """The image at RFNet's aux resolution (content only, as ``_views``) and its letterbox placement."""
        A = self.rfnet.aux_size
        H, W = x.shape[-2:]
        nw, nh, x0, y0 = _fit(W, H, A)
        return self._resize(x, nh, nw), (nw, nh, x0, y0)

    def _grey(self, small: Tensor) -> Tensor:
        """OpenCV's 8-bit grey of an 8-bit image, exactly (integer arithmetic), straight through."""
        cont = (small * self.grey).sum(1, keepdim=True)
        ints = torch.round(small.detach() * 255.0).to(torch.int64)
        half = 1 << (_GREY_SHIFT - 1)
        exact = ((ints * self.grey_fixed).sum(1, keepdim=True) + half) >> _GREY_SHIFT
        return cont + (exact.to(cont.dtype) / 255.0 - cont).detach()

    def structure(self, small: Tensor, fit: tuple[int, int, int, int]) -> Tensor:
        """``structure_map`` of the aux-size image, letterboxed on zeros (B,1,A,A)."""
        A = self.rfnet.aux_size
        nw, nh, x0, y0 = fit
        g = self._grey(small)
        g = F.pad(g, (1, 1, 1, 1), mode="reflect")  # OpenCV's default border (reflect-101)
        gxy = F.conv2d(g, self.sobel)
        mag = (torch.sqrt((gxy * gxy).sum(1, keepdim=True) + 1e-12) / 2.0).clamp(0.0, 1.0)
        return F.pad(mag, (x0, A - nw - x0, y0, A - nh - y0))

    def affinity(self, small: Tensor, fit: tuple[int, int, int, int], palette: Tensor) -> Tensor:
        """``colour_affinity`` of the aux-size image to the product's palette, letterboxed on zeros (B,1,A,A);
        ``palette`` (B,K,3), rows beyond a product's colours padded far away."""
        from adcreative.inspect.preprocess import AFFINITY_SIGMA

        A = self.rfnet.aux_size
        nw, nh, x0, y0 = fit
        d2 = ((small[:, None] - palette[:, :, :, None, None]) ** 2).sum(2).amin(1, keepdim=True)  # (B,1,h,w)
        aff = torch.exp(-d2 / (2 * AFFINITY_SIGMA ** 2))
        return F.pad(aff, (x0, A - nw - x0, y0, A - nh - y0))

    def _crop(self, image: Tensor, box: Tensor) -> Tensor:
        """``image[..., y0:y1, x0:x1]`` (1,3,h,w) with RFNet's grey outside the canvas (as its ``_crop``)."""
        x0, y0, x1, y1 = (int(v) for v in box.tolist())
        _, _, H, W = image.shape
        out = self.pad.expand(1, 3, y1 - y0, x1 - x0).clone()
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if sx1 > sx0 and sy1 > sy0:
            out[..., sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[..., sy0:sy1, sx0:sx1]
        return out

    def inputs(self, images: Tensor, aux: dict[str, Tensor]) -> dict[str, Tensor]:
        """RFNet's input tensors for images (B,3,H,W) in [0, 1], with a graph back to the pixels."""
        net = self.rfnet
        x = _quantize(images)  # RFNet judges 8-bit images
        pal = aux["palette"]
        # the product view: the image cropped around the (fixed) mask box, seen at full input size
        crops = [self._crop(x[i : i + 1], aux["crop"][i]) for i in range(x.shape[0])]
        local = torch.cat([self._letterbox(c, net.image_size) for c in crops])
        cmaps = []
        for i, c in enumerate(crops):
            small, fit = self._small(c)
            cmaps.append(torch.cat([self.structure(small, fit), self.affinity(small, fit, pal[i : i + 1])], 1))
        cedges, caff = torch.cat(cmaps).split(1, 1)
        small, fit = self._small(x)
        lmask = aux["local_mask"]
        full = torch.cat([aux["mask"], self.structure(small, fit), self.affinity(small, fit, pal)], 1)
        out = {"image": self._letterbox(x, net.image_size), "aux": full, "product": aux["product"], "local": local,
               "local_aux": torch.cat([lmask, cedges * lmask[:, 1:2], caff * lmask[:, 1:2]], 1)}
        if net.use_text:
            out["text"], out["text_valid"] = aux["text"], aux["text_valid"].bool()
        return out

    def forward(self, images: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """Calibrated logits over CLASSES for images in [0, 1], with RFNet's real-product bias added for a real
        product's images (as ``RFNet.judge``); gradients flow to ``images`` (never to RFNet)."""
        from adcreative.core.backbones import trunk_forward

        net = self.rfnet
        x = self.inputs(images, aux)
        B = images.shape[0]
        # one trunk pass for the full view and the product view, with a graph back to the pixels
        mid, fin = trunk_forward(net.backbone, torch.cat([x["image"], x["local"]]))
        enc: dict[str, Any] = {"image": fin[:B], "image_mid": mid[:B], "local_mid": mid[B:], "local": fin[B:],
                               "aux": x["aux"], "local_aux": x["local_aux"]}
        if net.use_product:
            with torch.no_grad():  # the product is fixed: no graph needed through its trunk pass
                enc["product"] = trunk_forward(net.backbone, x["product"])[1]
        if net.use_text:
            enc["text"], enc["text_valid"] = x["text"], x["text_valid"]
        if net.use_cues:
            enc["cues"] = self.cues(images, aux)
        z: Tensor = net.logits(enc)
        if net.real_bias is not None:  # as RFNet.judge: the calibrated logits of real products' images move
            bias = torch.tensor(net.real_bias, dtype=z.dtype, device=z.device)
            z = z + aux["real"].to(z.dtype)[:, None] * bias
        own = (net.renderer_calibration or {}).get(self.renderer)
        if own is not None:  # last, as in RFNet.judge
            z = z / own["temperature"]
            if own["bias"] is not None:
                z = z + torch.tensor(own["bias"], dtype=z.dtype, device=z.device)
        return z

    @torch.no_grad()
    def cues(self, images: Tensor, aux: dict[str, Tensor]) -> Tensor:
        """The measured cues of the 8-bit images (B, n_cues), in the network's cue set. They are measurements, not
        differentiable: the reward's gradient reaches the pixels through the other inputs, and the cue token is a
        constant of them."""
        from adcreative.inspect.cues import observe

        px = (_quantize(images.detach()) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        masks, cutouts = aux["cue_mask"].cpu().numpy(), aux["cutout"].cpu().numpy()
        version = self.rfnet.cue_set
        heights: list[float | None] = (aux["height_cm"].cpu().double().tolist() if "height_cm" in aux
                                       else [None] * len(px))
        return torch.from_numpy(np.stack([observe(px[i], masks[i], cutouts[i], version=version, height_cm=heights[i])
                                          for i in range(len(px))])).to(images.device)


def _quantize(x: Tensor) -> Tensor:
    """Round [0, 1] values to 8-bit levels (half up, as PIL's and OpenCV's fixed point), straight through:
    the forward value is the rounded one, the gradient passes unchanged."""
    q = torch.floor(x.clamp(0.0, 1.0) * 255.0 + 0.5) / 255.0
    return x + (q - x).detach()


def _cutout_canvas(cutout: Any) -> np.ndarray:
    """(CUTOUT_SIDE, CUTOUT_SIDE, 4) uint8: the cutout as the cues compare it (``fit_cutout``), in the corner of a
    transparent square so examples stack (the cues crop to its alpha's box, so the padding changes nothing)."""
    from adcreative.inspect.cues import CUTOUT_SIDE, fit_cutout

    fitted = fit_cutout(np.asarray(cutout.convert("RGBA")))
    out = np.zeros((CUTOUT_SIDE, CUTOUT_SIDE, 4), np.uint8)
    out[: fitted.shape[0], : fitted.shape[1]] = fitted
    return out


def _pad_palette(palette: np.ndarray) -> Tensor:
    """A product's palette as a fixed (PALETTE_SIZE, 3) tensor, rows beyond its colours set far outside the
    RGB cube (so examples of different products stack, and the padding is never the nearest colour)."""
    from adcreative.inspect.preprocess import PALETTE_SIZE

    out = torch.full((PALETTE_SIZE, 3), 100.0)
    out[: len(palette)] = torch.tensor(palette)  # a copy: cached palettes are read-only
    return out


def _frame(size: int, nw: int, nh: int, x0: int, y0: int, like: Tensor) -> Tensor:
    """1 outside the content rectangle of a letterbox, 0 inside."""
    m = torch.ones(1, 1, size, size, dtype=like.dtype, device=like.device)
    m[..., y0:y0 + nh, x0:x0 + nw] = 0
    return m


def load_rfnet_reward(path: str | None = None, renderer: str = "") -> RFNetReward:
    """The reward for ``tune rfft``: a saved RFNet folder, or the one shipped with the package, judging images of
    renderer family ``renderer`` (the generator being tuned)."""
    from adcreative.inspect.base import load_inspector

    return RFNetReward(load_inspector(path), renderer)
