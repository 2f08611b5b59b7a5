"""Studio photos of real cutouts: the product on a white or light-grey sweep with a soft contact shadow, JPEG
compressed, and the true alpha beside it. They are what a catalogue's photos look like, with ground truth, so
matting can be measured (``bench/matting.py``) and tested.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

BACKDROPS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "grey": (226, 227, 229)}


@dataclass(frozen=True)
class StudioPhoto:
    photo: Image.Image  # RGB, JPEG-decoded
    alpha: np.ndarray  # float32 H×W in [0, 1]: the cutout's alpha where it was placed
    shadow: np.ndarray  # float32 H×W in [0, 1]: how much the contact shadow darkens the backdrop
    foreground: np.ndarray  # float32 H×W×3 in [0, 1]: the cutout's own colours where it was placed
    backdrop: str
    seed: int


def studio_photo(cutout: Image.Image, backdrop: str = "white", *, seed: int = 0, size: int = 1000,
                 fill: float = 0.72, shadow: float = 0.45, jpeg_quality: int = 88) -> StudioPhoto:
    """Place ``cutout`` (RGBA) on a ``size``×``size`` studio backdrop with a contact shadow, JPEG at ``jpeg_quality``.

    ``fill`` is the share of the canvas the product's longer side takes; ``shadow`` the darkening at the contact
    shadow's core (0 = none). ``seed`` varies the sweep's gradient, the shadow's shape and the sensor noise.
    """
    if backdrop not in BACKDROPS:
        raise ValueError(f"unknown backdrop {backdrop!r}; choose from {', '.join(BACKDROPS)}")
    rng = np.random.default_rng(seed)
    rgba = cutout.convert("RGBA")
    bbox = rgba.getchannel("A").point(lambda v: 255 if v > 8 else 0).getbbox()
    if bbox is None:
        raise ValueError("the cutout is empty")
    rgba = rgba.crop(bbox)
    k = fill * size / max(rgba.size)
    w, h = max(1, round(rgba.width * k)), max(1, round(rgba.height * k))
    rgba = rgba.resize((w, h), Image.Resampling.LANCZOS)
    x0 = (size - w) // 2 + int(rng.integers(-size // 40, size // 40 + 1))
    y0 = min(size - h - size // 50, (size - h) // 2 + size // 12)  # standing on the sweep, below centre
    fg = np.zeros((size, size, 4), np.float32)
    fg[y0:y0 + h, x0:x0 + w] = np.asarray(rgba, np.float32) / 255
    alpha = fg[..., 3]

    # The sweep: the backdrop colour with a gentle vertical falloff (lit from above) and a faint vignette.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.asarray(BACKDROPS[backdrop], np.float32) / 255
    fall = 1 - float(rng.uniform(0.0, 0.03)) * yy - float(rng.uniform(0.0, 0.03)) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    bg = base[None, None, :] * fall[..., None]

    dark = np.zeros((size, size), np.float32)
    # Contact shadow: a blurred ellipse under the product's footprint plus a blurred copy of its silhouette's
    # lower part (light from above: the ground darkens near the product's base, not the wall behind its top).
    if shadow > 0:
        cols = np.flatnonzero(alpha[y0 + h - max(2, h // 20):y0 + h].max(axis=0) > 0.5)
        foot_l, foot_r = (cols.min(), cols.max()) if cols.size else (x0, x0 + w)
        cx, cy = (foot_l + foot_r) / 2, y0 + h - 2
        ell = np.zeros((size, size), np.float32)
        axes = (max(4, int((foot_r - foot_l) * rng.uniform(0.5, 0.62))), max(3, int(size * rng.uniform(0.012, 0.025))))
        cv2.ellipse(ell, (int(cx), int(cy)), axes, 0, 0, 360, 1.0, -1)
        ell = np.asarray(cv2.GaussianBlur(ell, (0, 0), size * rng.uniform(0.008, 0.014)), np.float32)
        drop = np.roll(alpha, (int(size * rng.uniform(0.005, 0.015)), int(size * rng.uniform(-0.01, 0.01))), (0, 1))
        drop = np.asarray(cv2.GaussianBlur(drop, (0, 0), size * rng.uniform(0.012, 0.02)), np.float32)
        drop *= np.clip((np.arange(size, dtype=np.float32) - (y0 + 0.7 * h)) / (0.3 * h), 0, 1)[:, None]
        dark = np.clip(shadow * ell + shadow * 0.35 * drop, 0, 0.85)
        bg = bg * (1 - dark)[..., None]

    img = fg[..., :3] * alpha[..., None] + bg * (1 - alpha[..., None])
    img += rng.normal(0, 1.2 / 255, img.shape).astype(np.float32)  # sensor noise
    buf = io.BytesIO()
    Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=jpeg_quality)
    photo = Image.open(buf)
    photo.load()
    return StudioPhoto(photo=photo.convert("RGB"), alpha=alpha.copy(), shadow=dark, foreground=fg[..., :3].copy(),
                       backdrop=backdrop, seed=seed)
