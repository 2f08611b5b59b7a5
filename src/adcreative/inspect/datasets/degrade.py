"""Shortcut breakers: seeded degradations that wash out a renderer's fingerprints before an image is stored.

A model that can tell renderers apart by their exact pixels (a compositor's crisp PIL edges, a photo texture's
grain, a smooth gradient's banding) can learn "which renderer" instead of "which defect". Each sample therefore
goes through a random chain of what real ad images go through on their way to an auditor: a down- and
up-resize, a slight blur, colour and exposure shifts, vignetting, sensor noise and JPEG re-encoding. The chain
is drawn from the sample's own seed (same seed, same bytes) and recorded in its params; labels are measured on
the clean render before any of it. Strengths stay mild on purpose: a blurred or pixelated *product* is an RF1M
defect (unsuitable) and must stay distinguishable from a softened *image*.
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
from PIL import Image


def degrade(image: Image.Image, seed: int, *, rate: float = 0.8) -> tuple[Image.Image, dict[str, Any]]:
    """The image after a random chain of degradations (with probability ``rate``), and what was applied."""
    rng = np.random.default_rng(seed)
    if rate <= 0 or rng.random() >= rate:
        return image, {}
    arr: np.ndarray = np.asarray(image.convert("RGB"), np.float32)
    h, w = arr.shape[:2]
    ops: dict[str, Any] = {}
    if rng.random() < 0.5:  # delivered small and blown up again
        f = float(rng.uniform(0.5, 0.9))
        small = cv2.resize(arr, (max(16, round(w * f)), max(16, round(h * f))), interpolation=cv2.INTER_AREA)
        interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
        arr = np.asarray(cv2.resize(small, (w, h), interpolation=interp), np.float32)
        ops["resize"] = round(f, 3)
    if rng.random() < 0.3:
        sigma = float(rng.uniform(0.3, 0.9))
        arr = np.asarray(cv2.GaussianBlur(arr, (0, 0), sigma), np.float32)
        ops["blur"] = round(sigma, 3)
    if rng.random() < 0.6:  # exposure, contrast, saturation, gamma, a small white-balance shift
        b = float(rng.uniform(-0.08, 0.08))
        c = float(rng.uniform(0.88, 1.12))
        sat = float(rng.uniform(0.8, 1.2))
        gamma = float(rng.uniform(0.9, 1.1))
        wb = rng.uniform(0.96, 1.04, 3).astype(np.float32)
        x = arr / 255.0
        x = (x - 0.5) * c + 0.5 + b
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * sat
        x = np.clip(x * wb, 0, 1) ** gamma
        arr = np.asarray(x * 255.0, np.float32)
        ops["colour"] = {"brightness": round(b, 3), "contrast": round(c, 3), "saturation": round(sat, 3),
                         "gamma": round(gamma, 3), "white_balance": [round(float(v), 3) for v in wb]}
    if rng.random() < 0.35:
        k = float(rng.uniform(0.08, 0.25))
        yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
        xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        arr = arr * (1 - k * np.clip((xx**2 + yy**2) / 2, 0, 1))[..., None]
        ops["vignette"] = round(k, 3)
    if rng.random() < 0.4:  # sensor noise, a little stronger in the shadows
        sd = float(rng.uniform(1.0, 5.0))
        lum = arr.mean(axis=2, keepdims=True) / 255.0
        arr = arr + rng.standard_normal(arr.shape).astype(np.float32) * sd * (1.3 - 0.6 * lum)
        ops["noise"] = round(sd, 3)
    out = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.7:
        q = int(rng.integers(45, 96))
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=q, subsampling=int(rng.integers(0, 3)))
        buf.seek(0)
        out = Image.open(buf).convert("RGB")
        ops["jpeg"] = q
    return out, ops
