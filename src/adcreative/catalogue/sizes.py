"""How tall a product really is, in centimetres, as it stands in an ad: the scale every renderer dresses its
set to and the one the labeller judges a size mismatch against (a toy-sized piano beside a mug).

An explicit ``attrs["height_cm"]`` wins; then a procedural SKU's shape, then the first matching keyword of the
title (most specific first), then the category. The figures are typical heights of the object as photographed
upright (a laptop open, a suitcase on its wheels, a plush toy sitting).
"""

from __future__ import annotations

import math
import re
from typing import TypeGuard

from adcreative.core.types import Product

# (keyword pattern, height in cm), most specific first; matched against the lower-cased title.
_TITLE_HEIGHTS: tuple[tuple[str, float], ...] = (
    (r"upright piano|piano", 125.0), (r"nightstand|bedside table", 58.0), (r"armchair", 82.0),
    (r"dining chair|chair", 88.0), (r"sofa|couch", 85.0), (r"stool", 45.0), (r"floor lamp", 150.0),
    (r"desk lamp|table lamp", 45.0), (r"\btable\b", 75.0), (r"bookcase|shelf unit", 180.0),
    (r"evening gown|gown|dress", 140.0), (r"cardigan|sweater|jumper", 65.0), (r"shirt|polo|blouse|tee\b", 70.0),
    (r"jacket|coat", 80.0), (r"backpack|rucksack", 45.0), (r"luggage|suitcase|carry-on|spinner", 55.0),
    (r"tote|handbag", 35.0), (r"inline skate|skate|sneaker|shoe|boot", 28.0),
    (r"plush|doll|teddy", 30.0), (r"stacking toy|sorting|building blocks", 16.0), (r"\btoy\b", 22.0),
    (r"game console|console", 39.0), (r"laptop|notebook computer", 23.0), (r"monitor", 45.0),
    (r"headphones|headset", 20.0), (r"smartphone|phone", 15.5), (r"tablet", 24.0), (r"speaker", 20.0),
    (r"camera", 10.0), (r"smartwatch|watch", 5.0),
    (r"pressure cooker|cooker", 28.0), (r"kettle", 24.0), (r"blender", 40.0), (r"\bpan\b|\bpot\b", 16.0),
    (r"espresso cup|cup", 8.0), (r"\bmug\b", 10.0), (r"\bjug\b", 22.0),
    (r"lipstick", 8.0), (r"perfume|eau de|fragrance", 13.0), (r"serum|dropper|essence", 12.0),
    (r"skincare.*set|gift set|\bset\b", 16.0), (r"toothpaste", 19.0), (r"body wash|shampoo|conditioner", 22.0),
    (r"pump", 20.0), (r"trigger|spray", 27.0), (r"lotion|cream|balm", 14.0),
    (r"granola|cereal", 26.0), (r"pouch|sachet", 24.0), (r"\bcan\b|sparkling|soda", 12.2), (r"bottle", 22.0),
    (r"apple|orange|lemon|fruit", 8.0), (r"\bjar\b|honey", 11.0),
)
# Procedural and fitted SKUs carry their shape in attrs.
_SHAPE_HEIGHTS: dict[str, float] = {
    "bottle": 22.0, "flask": 15.0, "can": 12.2, "jar": 10.0, "tube": 17.0, "box": 18.0, "device": 15.0,
    "pouch": 22.0, "pump": 20.0, "trigger": 27.0, "jug": 22.0, "mug": 10.0, "bullet": 8.0, "phone": 15.5,
    "set": 16.0, "wheeled": 55.0, "dropper": 11.0, "pot": 15.0,
}
_CATEGORY_HEIGHTS: dict[str, float] = {
    "beauty": 12.0, "fragrance": 13.0, "personal_care": 20.0, "food": 18.0, "food_package": 22.0,
    "fresh_food": 8.0, "kitchen": 22.0, "household": 25.0, "electronics": 20.0, "travel": 55.0, "bags": 40.0,
    "fashion": 40.0, "clothing": 70.0, "sports": 28.0, "toys": 25.0, "furniture": 80.0,
    "musical_instruments": 110.0,
}
DEFAULT_HEIGHT_CM = 20.0
MAX_HEIGHT_CM = 1000.0  # an explicit height above this is a data error


def is_height_cm(value: object) -> TypeGuard[float]:
    """Whether ``value`` is a usable real height: a finite number of cm in (0, MAX_HEIGHT_CM] (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 < value <= MAX_HEIGHT_CM)


def real_height_cm(product: Product) -> float:
    """The product's real height in cm (see the module docstring for the order of evidence)."""
    explicit = product.attrs.get("height_cm")
    if explicit is not None:
        try:
            h = float(explicit)
        except (TypeError, ValueError):
            h = 0.0
        if is_height_cm(h):  # NaN, infinite or absurd: not evidence
            return h
    shape = str(product.attrs.get("shape", ""))  # procedural titles are made-up words: their shape is the evidence
    if shape in _SHAPE_HEIGHTS:
        return _SHAPE_HEIGHTS[shape]
    return text_height_cm(product.title, product.category)


def text_height_cm(title: str, category: str) -> float:
    """The height the title's first matching keyword gives, else the category's, else DEFAULT_HEIGHT_CM (what a
    row with only a title and a category, such as an RF1M line, tells)."""
    low = (title or "").lower()
    for pattern, h in _TITLE_HEIGHTS:
        if re.search(pattern, low):
            return h
    return _CATEGORY_HEIGHTS.get((category or "").lower().replace(" ", "_"), DEFAULT_HEIGHT_CM)
