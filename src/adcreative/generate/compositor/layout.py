"""Layout planner: product region, headline, copy, badge and price boxes for each canvas shape.

Regions come from a template per canvas shape (tall, square, wide) with seeded jitter; text is wrapped and
shrunk until it fits its region, and the box recorded is the tight box of what is drawn. Regions are
disjoint by construction and the planner asserts it, so boxes never overlap and stay inside the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import ImageDraw

from adcreative.core.fonts import FontT, font, has_cjk
from adcreative.core.types import Box


@dataclass
class TextBlock:
    text: str
    lines: list[str]
    font_size: int
    bold: bool
    box: Box  # tight box of the drawn lines
    align: str = "left"
    line_height: int = 0


@dataclass
class Layout:
    width: int
    height: int
    template: str
    product_region: Box
    blocks: dict[str, TextBlock] = field(default_factory=dict)
    badge_box: Box | None = None  # price badge background (contains the price text)

    def boxes(self) -> dict[str, Box]:
        out = {k: b.box for k, b in self.blocks.items() if k != "price"}
        if "price" in self.blocks:
            out["price"] = self.badge_box or self.blocks["price"].box
        return out


def _measure(draw: ImageDraw.ImageDraw, text: str, f: FontT) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
    return int(x0), int(y0), int(x1), int(y1)


def _wrap(draw: ImageDraw.ImageDraw, text: str, f: FontT, width: int) -> list[str]:
    words = text.split() if not has_cjk(text) else list(text)
    sep = "" if has_cjk(text) else " "
    lines: list[str] = []
    cur = ""
    for w in words:
        trial = w if not cur else cur + sep + w
        if _measure(draw, trial, f)[2] <= width:
            cur = trial
        else:
            if cur:
                lines.append(cur)
            cur = w
    if cur:
        lines.append(cur)
    return lines


def fit_text(draw: ImageDraw.ImageDraw, text: str, region: Box, *, bold: bool, max_size: int, min_size: int = 9,
             max_lines: int = 3, align: str = "left") -> TextBlock | None:
    """The largest font size at which ``text`` wraps into ``region``; None if even ``min_size`` fails."""
    cjk = has_cjk(text)
    for size in range(max_size, min_size - 1, -1 if max_size < 24 else -2):
        f = font(size, bold, cjk)
        lines = _wrap(draw, text, f, region.w)
        if not lines or len(lines) > max_lines:
            continue
        lh = int(size * 1.18)
        widths = [_measure(draw, ln, f)[2] for ln in lines]
        if max(widths) > region.w:
            continue
        total_h = lh * (len(lines) - 1) + _measure(draw, lines[-1], f)[3]
        if total_h > region.h:
            continue
        tw = max(widths)
        x0 = region.x0 if align == "left" else region.x0 + (region.w - tw) // 2
        box = Box(x0, region.y0, x0 + tw, region.y0 + total_h)
        return TextBlock(text, lines, size, bold, box, align, lh)
    return None


def _r(x0: float, y0: float, x1: float, y1: float) -> Box:
    return Box(round(x0), round(y0), round(x1), round(y1))


def plan_layout(width: int, height: int, rng: np.random.Generator, *, headline: str, copy: str | None,
                price: str | None, badge: str | None) -> Layout:
    """Place the product region and the copy; the draws use ``rng`` so a seed fixes the layout."""
    W, H = width, height
    m = 0.05 * min(W, H)
    ratio = H / W
    align = "center" if rng.random() < 0.5 else "left"
    draw = ImageDraw.Draw(__import__("PIL.Image", fromlist=["Image"]).new("L", (1, 1)))
    regions: dict[str, Box] = {}
    if ratio >= 1.15 or 0.85 < ratio < 1.15:
        tall = ratio >= 1.15
        template = "tall" if tall else "square"
        head_h = H * (0.14 if tall else 0.15) * (0.9 + 0.2 * rng.random())
        foot_h = H * (0.13 if tall else 0.14)
        regions["headline"] = _r(m, m, W - m, m + head_h)
        prod = _r(m, m + head_h + 0.02 * H, W - m, H - m - foot_h - 0.02 * H)
        fy0 = H - m - foot_h
        split = 0.52 if badge else 0.6
        regions["copy"] = _r(m, fy0, m + (W - 2 * m) * split, H - m)
        if badge:
            regions["badge"] = _r(m + (W - 2 * m) * (split + 0.03), fy0, m + (W - 2 * m) * 0.7, H - m)
        regions["price"] = _r(m + (W - 2 * m) * 0.72, fy0, W - m, H - m)
    else:
        template = "wide-left" if rng.random() < 0.5 else "wide-right"
        split = 0.54
        if template == "wide-left":
            prod = _r(m, m, W * split, H - m)
            tx0, tx1 = W * split + m, W - m
        else:
            prod = _r(W * (1 - split), m, W - m, H - m)
            tx0, tx1 = m, W * (1 - split) - m
        regions["headline"] = _r(tx0, H * 0.12, tx1, H * 0.44)
        regions["copy"] = _r(tx0, H * 0.47, tx1, H * 0.66)
        if badge:
            regions["badge"] = _r(tx0, H * 0.70, tx0 + (tx1 - tx0) * 0.3, H * 0.86)
            regions["price"] = _r(tx0 + (tx1 - tx0) * 0.36, H * 0.70, tx1, H * 0.86)
        else:
            regions["price"] = _r(tx0, H * 0.70, tx0 + (tx1 - tx0) * 0.7, H * 0.86)
    layout = Layout(W, H, template, prod)
    base = min(W, H)
    texts = {"headline": headline, "copy": copy, "badge": badge}
    specs = {"headline": (True, int(base * 0.075), 2), "copy": (False, int(base * 0.042), 3),
             "badge": (True, int(base * 0.05), 1)}
    for key, text in texts.items():
        if not text or key not in regions:
            continue
        bold, max_size, max_lines = specs[key]
        block = fit_text(draw, text, regions[key], bold=bold, max_size=max_size, max_lines=max_lines,
                         align=align if key == "headline" else "left")
        if block is not None:
            layout.blocks[key] = block
    if price and "price" in regions:
        reg = regions["price"]
        pad = max(3, int(base * 0.015))
        inner = Box(reg.x0 + pad, reg.y0 + pad, reg.x1 - pad, reg.y1 - pad)
        block = fit_text(draw, price, inner, bold=True, max_size=int(base * 0.06), max_lines=1)
        if block is not None:
            layout.blocks["price"] = block
            b = block.box
            layout.badge_box = Box(max(reg.x0, b.x0 - pad), max(reg.y0, b.y0 - pad),
                                   min(reg.x1, b.x1 + pad), min(reg.y1, b.y1 + pad))
    check_layout(layout)
    return layout


def check_layout(layout: Layout) -> None:
    """Every box inside the canvas, no two boxes overlapping (the product region counts as a box)."""
    boxes = {"product_region": layout.product_region, **layout.boxes()}
    items = list(boxes.items())
    for i, (a, ba) in enumerate(items):
        if not ba.inside(layout.width, layout.height):
            raise AssertionError(f"layout box {a} {ba} outside the {layout.width}×{layout.height} canvas")
        for b, bb in items[i + 1 :]:
            if ba.intersects(bb):
                raise AssertionError(f"layout boxes {a} {ba} and {b} {bb} overlap")
