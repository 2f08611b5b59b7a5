"""Background prompts for the diffusion generator, per product category.

The scene presets are JD's published background prompts (Reliable_AD's ``prompts.json``: prompt,
negative prompt, product ``image_scale``, and ``flag`` = 1 when the prompt has a ``{}`` wall-colour slot).
Each category adds its own scene props and negatives in front of a preset; a seed picks the preset and
the wall colour, so every prompt is reproducible from the creative's provenance.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adcreative.core.errors import InputError

# JD's presets (Reliable_AD, ECCV 2024), verbatim apart from whitespace.
JD_PRESETS: tuple[dict[str, Any], ...] = (
    {"prompt": "soft scene, a front view of a product places on a white desktop, light sky blue and white, "
               "commercial images, dynamic outdoor shooting, shallow depth of field, vignette, highly detailed, "
               "high budget Hollywood movie, bokeh, cinemascope, moody, epic, gorgeous, film grain, grainy . "
               "35mm photograph, film, bokeh, professional",
     "negative_prompt": "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
                        "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, "
                        "watermark, username, blurry",
     "image_scale": 0.78, "flag": 0},
    {"prompt": "front view of a product placed on white desktop, bright indoor scene, beige walls, virtual focus "
               "background, 4k, HD quality, flawless, photorealistic, commercial photography,",
     "negative_prompt": "(worst quality:2), (low quality:2), (normal quality:2), lowres, watermark, text, "
                        "ng_deepnegative_v1_75t EasyNegative badhandv4",
     "image_scale": 0.78, "flag": 0},
    {"prompt": "minimalist scene, (bright:1.5), front view of a product placed on white desktop, {} walls, 4k, "
               "HD quality, flawless, photorealistic, commercial photography,",
     "negative_prompt": "(worst quality:2), (low quality:2), (normal quality:2), lowres, watermark, text, "
                        "ng_deepnegative_v1_75t EasyNegative badhandv4",
     "image_scale": 0.78, "flag": 1},
    {"prompt": "indoor scene, front view of a product placed on desktop, white tablecloth on table, flowers, "
               "leaves, commercial images, dynamic indoor shooting, shallow depth of field, highly detailed, "
               "bokeh, professional, 4k, highly detailed,",
     "negative_prompt": "(worst quality:2), (low quality:2), (normal quality:2), lowres, watermark, text, humans, "
                        "fingers, face, ng_deepnegative_v1_75t EasyNegative badhandv4",
     "image_scale": 0.7, "flag": 0},
    {"prompt": "indoor scene, bright, front view of a product placed on desktop, highly detailed, bokeh, "
               "professional, 4k, highly detailed,",
     "negative_prompt": "(worst quality:2), (low quality:2), (normal quality:2), lowres, watermark, fingers, "
                        "human, text, ng_deepnegative_v1_75t EasyNegative badhandv4",
     "image_scale": 0.74, "flag": 0},
)

WALL_COLOURS: tuple[str, ...] = ("white", "beige", "light grey", "pale blue", "soft pink", "mint green",
                                 "cream", "light wood")

# Negatives every creative needs: RF1M's defects named in words (hallucinated extra parts, floating products,
# text the ad would clash with).
RELIABILITY_NEGATIVE = ("extra product, duplicate product, deformed product, extra legs, pedestal merging with "
                        "product, floating object, text, logo, watermark, cropped")

# Category → (scene props put in front of the preset, extra negatives). Keys are matched on words of the
# product's category, so "Beauty & Skincare" finds "beauty" and "skincare".
CATEGORY_SCENES: dict[str, tuple[str, str]] = {
    "beverage": ("on a wet marble counter, ice cubes, fresh citrus slices, cool light", "spilled liquid, mess"),
    "drink": ("on a wet marble counter, ice cubes, fresh citrus slices, cool light", "spilled liquid, mess"),
    "food": ("on a rustic wooden kitchen table, linen napkin, fresh ingredients, warm daylight",
             "rotten food, mould, insects"),
    "snack": ("on a rustic wooden kitchen table, linen napkin, fresh ingredients, warm daylight",
              "rotten food, mould, insects"),
    "beauty": ("on a white marble vanity, silk fabric, soft petals, pastel light", "stains, dirt, skin, hands"),
    "cosmetic": ("on a white marble vanity, silk fabric, soft petals, pastel light", "stains, dirt, skin, hands"),
    "skincare": ("on a white marble vanity, silk fabric, water drops, pastel light", "stains, dirt, skin, hands"),
    "electronic": ("on a clean modern desk, soft rim light, minimal office", "tangled cables, broken screen"),
    "digital": ("on a clean modern desk, soft rim light, minimal office", "tangled cables, broken screen"),
    "appliance": ("in a bright modern kitchen, clean countertop, soft daylight", "clutter, dirt"),
    "home": ("in a cosy living room, soft daylight, plants", "clutter, dirt"),
    "kitchen": ("in a bright modern kitchen, clean countertop, soft daylight", "clutter, dirt"),
    "apparel": ("on a light wooden floor, soft studio light, minimal backdrop", "mannequin, person, wrinkles"),
    "fashion": ("on a light wooden floor, soft studio light, minimal backdrop", "mannequin, person, wrinkles"),
    "shoe": ("on a light concrete floor, soft studio light, minimal backdrop", "feet, person, mud"),
    "sport": ("in a bright gym, soft daylight, clean floor", "person, sweat, dirt"),
    "toy": ("in a bright playroom, colourful soft background", "child, person, broken parts"),
    "baby": ("in a bright nursery, soft pastel light", "child, person"),
    "health": ("on a clean white shelf, soft daylight, green leaves", "pills scattered, mess"),
    "pet": ("on a clean floor, soft daylight, cosy home", "animal hair, mess"),
}


@dataclass(frozen=True)
class PromptChoice:
    prompt: str
    negative_prompt: str
    preset: int
    wall: str | None
    image_scale: float


_WEIGHT = re.compile(r"\(([^():]+):[0-9.]+\)")
# A1111 textual-inversion embedding names in JD's negatives: meaningless words to a plain CLIP tokenizer.
_EMBEDDINGS = ("ng_deepnegative_v1_75t", "EasyNegative", "badhandv4")


def plain_prompt(text: str) -> str:
    """Turn A1111 prompt syntax into text diffusers reads: ``(worst quality:2)`` → ``worst quality``,
    embedding names dropped, whitespace and commas tidied."""
    text = _WEIGHT.sub(r"\1", text)
    for e in _EMBEDDINGS:
        text = text.replace(e, "")
    parts = [p.strip() for p in re.split(r",", text)]
    return ", ".join(p for p in parts if p).strip(" ,")


def load_presets(path: str | Path | None) -> list[dict[str, Any]]:
    """JD-format presets from a JSON file (a list of {prompt, negative_prompt, image_scale, flag}), or JD's own."""
    if path is None:
        return [dict(p) for p in JD_PRESETS]
    p = Path(path)
    if not p.is_file():
        raise InputError("prompt presets file does not exist", source=p)
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"prompt presets file is not valid JSON ({e})", source=p) from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) and "prompt" in d for d in data):
        raise InputError("prompt presets must be a non-empty JSON list of objects with a 'prompt' key", source=p)
    return [dict(d) for d in data]


def category_scene(category: str) -> tuple[str, str]:
    words = re.findall(r"[a-z]+", category.lower())
    for w in words:
        for key, scene in CATEGORY_SCENES.items():
            if w == key or w.rstrip("s") == key or w.startswith(key):
                return scene
    return ("", "")


def choose_prompt(category: str, seed: int, presets: list[dict[str, Any]]) -> PromptChoice:
    """The prompt for a creative: a preset and wall colour drawn from ``seed``, the category's scene in front."""
    rng = random.Random(f"prompt:{seed}")
    i = rng.randrange(len(presets))
    preset = presets[i]
    wall = rng.choice(WALL_COLOURS) if "{}" in preset["prompt"] else None
    base = preset["prompt"].replace("{}", wall) if wall else preset["prompt"]
    scene, neg = category_scene(category)
    prompt = plain_prompt(f"{scene}, {base}" if scene else base)
    negative = plain_prompt(", ".join(x for x in (preset.get("negative_prompt", ""), neg, RELIABILITY_NEGATIVE) if x))
    return PromptChoice(prompt=prompt, negative_prompt=negative, preset=i, wall=wall,
                        image_scale=float(preset.get("image_scale", 0.74)))
