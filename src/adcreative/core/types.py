"""Domain types shared by every stage.

Images travel as PIL images; everything else is plain data so it can be stored as JSON.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

# The RF1M taxonomy (Du et al., ECCV 2024). Index 0 is the positive class for AP.
CLASSES: tuple[str, ...] = (
    "available",
    "unsuitable",
    "space_mismatch",
    "size_mismatch",
    "indistinctiveness",
    "shape_hallucination",
)
DEFECTS: tuple[str, ...] = CLASSES[1:]

# the inspector's three-way decision: ship it, a reviewer decides, regenerate (a Verdict's band)
BANDS: tuple[str, ...] = ("accept", "human", "reject")
# the precision of auto-rejected images (truly defective) a reject threshold must reach on validation, unless told
# otherwise: at 0.95 a held-out renderer lost about 40 % of its good images to auto-reject (docs/inspect.md)
TARGET_REJECT = 0.98

# Canvas sizes per aspect ratio at the default 512 short side... long side 512 keeps CPU work bounded.
ASPECTS: dict[str, tuple[int, int]] = {
    "1:1": (512, 512),
    "4:5": (512, 640),
    "16:9": (768, 432),
    "9:16": (432, 768),
}


def canvas_size(aspect: str, scale: float = 1.0) -> tuple[int, int]:
    """Canvas (width, height) for an aspect name like ``"4:5"``; ``scale`` resizes it."""
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect {aspect!r}; choose from {', '.join(ASPECTS)}")
    w, h = ASPECTS[aspect]
    return max(16, round(w * scale)), max(16, round(h * scale))


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels, half-open: [x0, x1) × [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    def intersects(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def inside(self, width: int, height: int) -> bool:
        return 0 <= self.x0 <= self.x1 <= width and 0 <= self.y0 <= self.y1 <= height

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]

    @classmethod
    def from_list(cls, v: list[int] | tuple[int, ...]) -> Box:
        return cls(int(v[0]), int(v[1]), int(v[2]), int(v[3]))


@dataclass
class Product:
    """A catalogue item: an RGBA cutout (alpha = product mask) plus the text an ad may use."""

    id: str
    title: str
    category: str
    image: Image.Image  # RGBA, alpha is the mask
    copy: str | None = None
    price: float | None = None
    logo: Image.Image | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def mask(self) -> Image.Image:
        return self.image.getchannel("A")


@dataclass
class Creative:
    """A generated ad image and everything needed to regenerate it bit for bit."""

    id: str
    product_id: str
    image_sha: str
    generator: str
    generator_version: str
    seed: int
    aspect: str
    width: int
    height: int
    params: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, list[int]] = field(default_factory=dict)
    intended_label: str | None = None  # for synthesised defects; None for ordinary generation
    run_id: str | None = None
    created_at: _dt.datetime = field(default_factory=utcnow)
    mask_sha: str | None = None  # the placement mask's blob (L, 255 = the product's own pixels)
    attempt_key: str | None = None  # "{run_id}/{product_id}/{seed}" for an attempt of a resumable run

    def manifest(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d


@dataclass
class Verdict:
    """An inspector's judgement of one creative: class probabilities, and (from a model with a fitted decision)
    its band — ``accept`` (ship), ``human`` (a reviewer decides) or ``reject`` — and out-of-distribution score."""

    creative_id: str
    model_id: str
    probs: dict[str, float]
    created_at: _dt.datetime = field(default_factory=utcnow)
    band: str | None = None
    ood: float | None = None

    @property
    def p_available(self) -> float:
        return float(self.probs.get("available", 0.0))

    @property
    def label(self) -> str:
        return max(self.probs, key=lambda k: self.probs[k])


@dataclass
class Label:
    """A human reviewer's verdict; the ground truth that retrains the inspector."""

    creative_id: str
    label: str
    reviewer: str
    note: str = ""
    created_at: _dt.datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if self.label not in CLASSES:
            raise ValueError(f"label {self.label!r} is not one of {', '.join(CLASSES)}")


@dataclass
class Event:
    """An impression or a click, logged by the selection service."""

    kind: str  # "impression" | "click"
    request_id: str
    user_id: str
    ad_id: str
    creative_id: str
    position: int = 0
    propensity: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    ts: _dt.datetime = field(default_factory=utcnow)
