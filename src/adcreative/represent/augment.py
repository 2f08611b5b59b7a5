"""Views of a creative for contrastive training and near-duplicate evaluation (PIL + NumPy only).

The transformations are the ones a creative suffers between our store and a shopper's screen, or
that a copycat applies: re-cropping, JPEG recompression at various qualities, colour/brightness
shifts and mild blur. Two views of one creative are positives; they must map to the same place.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.55, 1.0)  # area kept by the random crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect jitter of the crop, relative to the image's
    jpeg_quality: tuple[int, int] = (25, 95)
    jpeg_p: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.04  # fraction of the hue circle
    jitter_p: float = 0.8
    blur_p: float = 0.2
    blur_radius: tuple[float, float] = (0.3, 1.5)


def random_crop(im: Image.Image, rng: np.random.Generator, scale: tuple[float, float],
                ratio: tuple[float, float]) -> Image.Image:
    w, h = im.size
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        r = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))) * (w / h)
        cw, ch = round(np.sqrt(area * r)), round(np.sqrt(area / r))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return im.crop((x0, y0, x0 + cw, y0 + ch))
    return im


def jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        out.load()
        return out.convert("RGB")


def color_jitter(im: Image.Image, rng: np.random.Generator, brightness: float, contrast: float,
                 saturation: float, hue: float) -> Image.Image:
    """Brightness, contrast, saturation and hue shifts in a random order (as torchvision's ColorJitter)."""
    a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    ops = rng.permutation(4)
    for op in ops:
        if op == 0 and brightness > 0:
            a = a * rng.uniform(1 - brightness, 1 + brightness)
        elif op == 1 and contrast > 0:
            m = (a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean()
            a = (a - m) * rng.uniform(1 - contrast, 1 + contrast) + m
        elif op == 2 and saturation > 0:
            g = (a @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
            a = (a - g) * rng.uniform(1 - saturation, 1 + saturation) + g
        elif op == 3 and hue > 0:
            hsv = np.asarray(Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).convert("HSV")).copy()
            shift = round(rng.uniform(-hue, hue) * 255)
            hsv[..., 0] = (hsv[..., 0].astype(np.int32) + shift) % 256
            a = np.asarray(Image.fromarray(hsv, mode="HSV").convert("RGB"), dtype=np.float32) / 255.0
        a = np.clip(a, 0, 1)
    return Image.fromarray((a * 255 + 0.5).astype(np.uint8))


def augment(im: Image.Image, rng: np.random.Generator, cfg: AugmentConfig | None = None) -> Image.Image:
    """One random view: crop → colour jitter → blur → JPEG recompression."""
    c = cfg or AugmentConfig()
    out = random_crop(im.convert("RGB"), rng, c.crop_scale, c.crop_ratio)
    if rng.random() < c.jitter_p:
        out = color_jitter(out, rng, c.brightness, c.contrast, c.saturation, c.hue)
    if rng.random() < c.blur_p:
        out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(*c.blur_radius))))
    if rng.random() < c.jpeg_p:
        out = jpeg(out, int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1)))
    return out


def views(im: Image.Image, n: int, seed: int, cfg: AugmentConfig | None = None) -> list[Image.Image]:
    """``n`` independent views of one image, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return [augment(im, rng, cfg) for _ in range(n)]
