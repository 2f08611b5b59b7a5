"""scikit-image's bundled photographs (no download), the real textures that scene renderers and skinned SKUs cut
their materials from."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def bundled_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as float32 RGB (grey ones repeated), read-only; loaded once per process."""
    import skimage.data

    a = getattr(skimage.data, name)()
    if isinstance(a, tuple):  # stereo pairs: the left view
        a = a[0]
    if name == "retina":  # the fundus only: its corners are black
        a = a[350:1060, 350:1060]
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    out = np.ascontiguousarray(a[..., :3]).astype(np.float32)
    out.setflags(write=False)
    return out
