"""Category-wise background styles: palettes, background kinds, surfaces, textures, props and lighting.

Backgrounds are rendered with NumPy at full resolution from cheap separable pieces (a gradient column,
low-resolution noise upsampled by OpenCV) so that a 512×512 creative costs a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

BG_KINDS = ("gradient", "sweep", "tabletop", "floor", "texture")
PROP_KINDS = ("sphere", "block", "plant", "cylinder", "leaf", "book")
N_PALETTES = 6

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    wall: RGB
    wall2: RGB  # gradient end
    surface: RGB
    accent: RGB  # props, badges


def _p(*hexes: str) -> Palette:
    cols = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in hexes]
    return Palette(*cols)  # type: ignore[arg-type]


# Six palettes per category, chosen the way a studio would dress the set for that merchandise.
PALETTES: dict[str, list[Palette]] = {
    "beauty": [_p("#f7d9de", "#fbeef0", "#eac2c9", "#c9857f"), _p("#efe3f5", "#f8f2fb", "#dccbe8", "#9d7bb0"),
               _p("#fde8d7", "#fff5ec", "#f2d2b8", "#d08c60"), _p("#e3f1ea", "#f3faf6", "#cfe5d9", "#6fa58b"),
               _p("#f4efe9", "#fbf9f6", "#e6ddd2", "#b49a7d"), _p("#3b2a35", "#5a4352", "#2c1f28", "#d4a5b5")],
    "electronics": [_p("#1c2533", "#2f3d52", "#141b25", "#4aa3df"), _p("#e9edf2", "#f7f9fb", "#d5dbe3", "#3a7bd5"),
                    _p("#222222", "#3a3a3a", "#161616", "#e0b84c"), _p("#0f3b3f", "#1d5c60", "#0a2a2d", "#5fd3c9"),
                    _p("#dfe4ea", "#c7ced8", "#b9c1cc", "#ff7a45"), _p("#2b2150", "#463a7a", "#1d163a", "#a78bfa")],
    "kitchen": [_p("#f1e6d6", "#faf4ea", "#b78b5e", "#6b8f4e"), _p("#e8efe9", "#f5f8f5", "#c9a27a", "#c0573e"),
                _p("#fbf3e4", "#fffaf1", "#d9b48f", "#2f6f73"), _p("#dfe7ee", "#eef3f7", "#9c7a5b", "#d9a441"),
                _p("#f5e9e0", "#fbf4ef", "#a8795a", "#547a5a"), _p("#e7e2da", "#f3f0ea", "#8a6a4f", "#b5523b")],
    "food": [_p("#fff1c9", "#fff8e3", "#f4d58d", "#e4572e"), _p("#ffe0d6", "#fff0ea", "#f6b8a2", "#3f8f52"),
             _p("#e3f4d8", "#f2faec", "#c5e3b0", "#f08a24"), _p("#d9ecff", "#eef6ff", "#b6d6f5", "#f25c54"),
             _p("#fde2f0", "#fff0f7", "#f5bcd8", "#7b4fa0"), _p("#f7f3e8", "#fdfbf5", "#e8dcc0", "#c8553d")],
    "personal_care": [_p("#e6f3fb", "#f4fafd", "#cfe6f3", "#3d9bd1"), _p("#eef7f1", "#f8fcf9", "#d4ebdc", "#4caf7d"),
                      _p("#f2f4f7", "#fbfcfd", "#dde2e8", "#5b8def"), _p("#e8f6f6", "#f5fbfb", "#c8e8e8", "#2a9d8f"),
                      _p("#f6f0fa", "#fcf9fd", "#e4d6ee", "#8f6fc0"), _p("#dbe9f6", "#edf4fb", "#bcd4ea", "#f4a261")],
    "travel": [_p("#cfe7f7", "#eef7fc", "#d8cbb5", "#e76f51"), _p("#f3ead8", "#fbf6ec", "#cdb89a", "#2a9d8f"),
               _p("#dde8e3", "#eff5f2", "#b9a98f", "#e9c46a"), _p("#e9e4f0", "#f6f3f9", "#c7bba6", "#264653"),
               _p("#fbe7d3", "#fff4e8", "#d6b48e", "#3d5a80"), _p("#d7e3ec", "#c3d3e0", "#a89a84", "#ee6c4d")],
    "fashion": [_p("#efe7dd", "#f8f3ed", "#d9cbbb", "#8c5e58"), _p("#e4e8ec", "#f2f4f6", "#cbd2d9", "#2b2d42"),
                _p("#f4e1d2", "#fbefe6", "#e6c7b0", "#9e2a2b"), _p("#e0ebe4", "#eff5f1", "#c5d8cc", "#3e5641"),
                _p("#2d2d34", "#45454f", "#1f1f24", "#d9b26f"), _p("#f7f1e3", "#fdfaf2", "#e7dcc2", "#6d597a")],
    "default": [_p("#eceff3", "#f8f9fb", "#d6dbe2", "#4f6d8f"), _p("#f3ece4", "#faf6f1", "#e0d3c4", "#a0522d"),
                _p("#e6efe9", "#f4f8f5", "#cfdfd4", "#2e7d5b"), _p("#20242c", "#363c48", "#15181e", "#f2b134"),
                _p("#f5e6e8", "#fbf2f3", "#e8cfd3", "#b5485d"), _p("#e7eaf6", "#f4f5fb", "#cfd4ec", "#4a56a6")],
}
CATEGORIES = tuple(PALETTES)

# Props that fit each category's set; the policy's prop_kind draw is mapped into this list.
CATEGORY_PROPS: dict[str, tuple[str, ...]] = {
    "beauty": ("sphere", "leaf", "cylinder", "block"),
    "electronics": ("block", "sphere", "cylinder", "book"),
    "kitchen": ("plant", "cylinder", "leaf", "book"),
    "food": ("sphere", "leaf", "plant", "cylinder"),
    "personal_care": ("sphere", "leaf", "plant", "cylinder"),
    "travel": ("plant", "book", "block", "sphere"),
    "fashion": ("block", "plant", "book", "leaf"),
    "default": ("block", "sphere", "plant", "cylinder"),
}


def category_key(category: str) -> str:
    c = category.lower().replace(" ", "_").replace("-", "_")
    aliases = {"cosmetics": "beauty", "makeup": "beauty", "digital": "electronics", "appliance": "kitchen",
               "home": "kitchen", "beverage": "food", "drink": "food", "luggage": "travel", "bags": "travel",
               "apparel": "fashion", "shoes": "fashion", "toiletries": "personal_care"}
    c = aliases.get(c, c)
    return c if c in PALETTES else "default"


def _lerp(a: RGB, b: RGB, t: np.ndarray) -> np.ndarray:
    a_ = np.asarray(a, np.float32)
    b_ = np.asarray(b, np.float32)
    return a_ + (b_ - a_) * t[..., None]


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a few random cells, upsampled smoothly."""
    ch, cw = max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))
    small = rng.standard_normal((ch, cw)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 2.5, -1, 1)


def render_background(rng: np.random.Generator, w: int, h: int, kind: str, pal: Palette, horizon: int,
                      texture: float) -> np.ndarray:
    """An HxWx3 float32 background in [0, 255]: a wall above ``horizon`` and a support surface below it."""
    y = (np.arange(h, dtype=np.float32) / max(1, h - 1))[:, None]
    x = (np.arange(w, dtype=np.float32) / max(1, w - 1))[None, :]
    wall = _lerp(pal.wall2, pal.wall, np.broadcast_to(y, (h, w)))
    if kind == "gradient":
        # no visible surface: a soft floor tint fades in below the horizon
        t = np.clip((y - horizon / h) * 4, 0, 1)
        img = wall * (1 - 0.5 * t[..., None]) + np.asarray(pal.surface, np.float32) * 0.5 * t[..., None]
    elif kind == "sweep":
        # studio sweep: the wall curves smoothly into the floor
        t = 1 / (1 + np.exp(-(y - horizon / h) * 18))
        img = _lerp(pal.wall2, pal.surface, np.broadcast_to(t, (h, w)))
    else:
        below = np.broadcast_to(y >= horizon / h, (h, w))
        depth = np.clip((y - horizon / h) / max(1e-3, 1 - horizon / h), 0, 1)
        dark: RGB = (int(pal.surface[0] * 0.82), int(pal.surface[1] * 0.82), int(pal.surface[2] * 0.82))
        surf = _lerp(pal.surface, dark, np.broadcast_to(depth, (h, w)))
        if kind == "tabletop":  # wood grain
            n = smooth_noise(rng, h, w, 6)
            grain = np.sin((y * 90 + n * 3 + x * 2) * np.pi)
            surf = surf * (1 + 0.06 * texture * grain[..., None] + 0.03)
        elif kind == "floor":  # tiles
            xx = (x - 0.5) / np.maximum(depth + 0.3, 0.3)
            lines = (np.abs(np.sin(xx * 10 * np.pi)) < 0.04) | (np.abs(np.sin(depth * 6 * np.pi)) < 0.03)
            surf = surf * (1 - 0.12 * lines[..., None])
        elif kind == "texture":  # marble-like veins on the wall
            n = smooth_noise(rng, h, w, 5)
            veins = np.abs(np.sin((x * 3 + y * 2 + n * 2.5) * np.pi)) ** 8
            wall = wall * (1 - 0.18 * texture * veins[..., None])
        img = np.where(below[..., None], surf, wall)
        # a soft edge line where surface meets wall
        band = np.exp(-(((y - horizon / h) * h) ** 2) / 8.0)
        img = img * (1 - 0.08 * band[..., None])
    grain = smooth_noise(rng, h, w, 48)
    img = img * (1 + 0.03 * texture * grain[..., None])
    return np.clip(img, 0, 255).astype(np.float32)


def apply_light(img: np.ndarray, light: str, cx: float, cy: float) -> np.ndarray:
    """Lighting: vignette and a spot or window glow centred near the product."""
    h, w = img.shape[:2]
    y = (np.arange(h, dtype=np.float32)[:, None] - cy) / h
    x = (np.arange(w, dtype=np.float32)[None, :] - cx) / w
    r2 = x * x + y * y
    gain = 1 - 0.25 * np.clip(r2 * 1.6, 0, 1)  # vignette
    if light == "spot":
        gain = gain + 0.12 * np.exp(-r2 * 10)
    elif light == "window":
        xs = np.arange(w, dtype=np.float32)[None, :] / w
        gain = gain + 0.08 * np.clip(1 - xs * 1.5, 0, 1)
    elif light == "rim":
        gain = gain + 0.06 * np.exp(-((r2 - 0.05) ** 2) * 300)
    return np.clip(img * gain[..., None], 0, 255)


def _shade(c: RGB, k: float) -> RGB:
    return tuple(int(np.clip(v * k, 0, 255)) for v in c)  # type: ignore[return-value]


def draw_prop(draw: ImageDraw.ImageDraw, kind: str, x0: int, y_ground: int, size: int, colour: RGB) -> tuple[int, int, int, int]:
    """Draw one prop standing on the ground line; returns its bounding box."""
    s = size
    dark, light = _shade(colour, 0.7), _shade(colour, 1.15)
    if kind == "sphere":
        box = (x0, y_ground - s, x0 + s, y_ground)
        draw.ellipse(box, fill=colour)
        draw.ellipse((x0 + s // 5, y_ground - s + s // 6, x0 + s // 2, y_ground - s // 2), fill=light)
    elif kind == "block":
        d = s // 5
        box = (x0, y_ground - s, x0 + s + d, y_ground)
        draw.rectangle((x0, y_ground - s + d, x0 + s, y_ground), fill=colour)
        draw.polygon([(x0, y_ground - s + d), (x0 + d, y_ground - s), (x0 + s + d, y_ground - s),
                      (x0 + s, y_ground - s + d)], fill=light)
        draw.polygon([(x0 + s, y_ground - s + d), (x0 + s + d, y_ground - s), (x0 + s + d, y_ground - d),
                      (x0 + s, y_ground)], fill=dark)
    elif kind == "cylinder":
        e = max(2, s // 6)
        box = (x0, y_ground - s, x0 + s // 2 * 2, y_ground)
        wd = s // 2 * 2
        draw.rectangle((x0, y_ground - s + e // 2, x0 + wd, y_ground - e // 2), fill=colour)
        draw.ellipse((x0, y_ground - e, x0 + wd, y_ground), fill=colour)
        draw.ellipse((x0, y_ground - s, x0 + wd, y_ground - s + e), fill=light)
    elif kind == "plant":
        pot_w, pot_h = s // 2, s // 3
        px = x0 + s // 4
        draw.polygon([(px, y_ground - pot_h), (px + pot_w, y_ground - pot_h), (px + pot_w - pot_w // 6, y_ground),
                      (px + pot_w // 6, y_ground)], fill=colour)
        leaf = (64, 120, 70)
        cx = px + pot_w // 2
        for i, ang in enumerate((-0.9, -0.45, 0.0, 0.45, 0.9)):
            lx = cx + int(np.sin(ang) * s * 0.35)
            ly = y_ground - pot_h - int(np.cos(ang) * s * 0.55)
            draw.ellipse((min(cx, lx) - s // 12, min(ly, y_ground - pot_h) - s // 12,
                          max(cx, lx) + s // 12, max(ly, y_ground - pot_h) + 2),
                         fill=_shade(leaf, 0.9 + 0.08 * i))
        box = (x0, y_ground - s, x0 + s, y_ground)
    elif kind == "leaf":
        box = (x0, y_ground - s, x0 + s // 2, y_ground)
        draw.line((x0 + s // 4, y_ground, x0 + s // 4, y_ground - s), fill=dark, width=max(1, s // 30))
        for k in range(4):
            yy = y_ground - s // 5 - k * s // 5
            draw.ellipse((x0, yy - s // 10, x0 + s // 4, yy + s // 12), fill=colour)
            draw.ellipse((x0 + s // 4, yy - s // 8, x0 + s // 2, yy + s // 14), fill=light)
    else:  # book stack
        box = (x0, y_ground - s // 2, x0 + s, y_ground)
        hh = max(2, s // 6)
        for k in range(3):
            c = _shade(colour, 0.8 + 0.15 * k)
            off = (k % 2) * s // 10
            draw.rectangle((x0 + off, y_ground - (k + 1) * hh, x0 + s - s // 10 + off - s // 10, y_ground - k * hh), fill=c)
    return tuple(int(v) for v in box)  # type: ignore[return-value]


def to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
