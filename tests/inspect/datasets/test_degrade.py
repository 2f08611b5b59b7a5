"""Shortcut-breaking degradations: seeded, recorded, mild, and off when the rate is 0."""

from __future__ import annotations

import numpy as np
from PIL import Image

from adcreative.core.imageio import png_bytes
from adcreative.inspect.datasets.degrade import degrade


def _image() -> Image.Image:
    rng = np.random.default_rng(0)
    a = np.zeros((96, 128, 3), np.uint8)
    a[:] = (200, 190, 180)
    a[30:80, 40:90] = (40, 90, 160)
    a += rng.integers(0, 8, a.shape, dtype=np.uint8)
    return Image.fromarray(a, "RGB")


def test_same_seed_same_bytes_and_recorded() -> None:
    im = _image()
    seen = set()
    for seed in range(12):
        a, ops_a = degrade(im, seed)
        b, ops_b = degrade(im, seed)
        assert png_bytes(a) == png_bytes(b) and ops_a == ops_b
        assert a.size == im.size and a.mode == "RGB"
        seen |= set(ops_a)
        if not ops_a:
            assert png_bytes(a) == png_bytes(im)  # untouched when nothing was drawn
    assert {"resize", "blur", "colour", "vignette", "noise", "jpeg"} <= seen


def test_rate_zero_is_identity_and_degradations_stay_mild() -> None:
    im = _image()
    out, ops = degrade(im, 3, rate=0.0)
    assert ops == {} and out is im
    ref = np.asarray(im, np.float32)
    for seed in range(20):
        out, ops = degrade(im, seed, rate=1.0)
        assert ops
        diff = np.abs(np.asarray(out, np.float32) - ref).mean()
        assert diff < 32, (ops, diff)  # a degraded image, not a different one
