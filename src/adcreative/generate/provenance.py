"""Generate and store: run a generator for a product, store each image with its provenance manifest and
its placement mask, read the mask back, and regenerate a stored creative bit for bit."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.imageio import png_bytes, sha256
from adcreative.core.limits import INT_MAX
from adcreative.core.types import ASPECTS, Creative, Product
from adcreative.generate.base import GeneratedImage, Generator, create_generator

if TYPE_CHECKING:
    from adcreative.core.store import Store

# images per aspect ratio in one call: past it a typo (an extra zero or three) would run for days
MAX_PER_CALL = 10_000


def build_generator(name: str = "compositor", *, policy: str | Path | None = None, **cfg: Any) -> Generator:
    """A generator from the CLI's options; ``policy`` is a tuned compositor policy folder."""
    if policy is not None:
        if name != "compositor":
            raise InputError(f"--policy applies to the compositor, not {name!r}")
        p = Path(policy)
        if not (p / "config.json").exists():
            raise InputError("no tuned policy here (config.json missing)", source=p)
        cfg["policy"] = str(p.resolve())
    return create_generator(name, **cfg)


def parse_generator_config(text: str | None) -> dict[str, Any]:
    """``--gen-config``: a JSON object inline, or the path of a .json file holding one."""
    import json

    if not text:
        return {}
    src = Path(text)
    raw = src.read_text() if text.endswith(".json") and src.is_file() else text
    if text.endswith(".json") and not src.is_file():
        raise InputError("generator config file does not exist", source=src)
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"--gen-config is not valid JSON ({e})", source=text if src.is_file() else None) from None
    if not isinstance(cfg, dict):
        raise InputError("--gen-config must be a JSON object of constructor arguments")
    return cfg


def to_creative(gi: GeneratedImage, product: Product, *, defect: str | None = None, severity: float = 0.5,
                run_id: str | None = None, data: bytes | None = None,
                attempt_key: str | None = None) -> tuple[Creative, bytes, bytes]:
    """The Creative row for a generated image, its PNG bytes (encoded here unless given) and its placement
    mask's PNG bytes (L, 255 = the product's own pixels), which every consumer reads back from the store."""
    data = data if data is not None else png_bytes(gi.image)
    mask = png_bytes(gi.mask.convert("L"))
    params = {"generator_config": gi.config, "defect": defect, "severity": severity, "render": gi.params}
    c = Creative(id=uuid.uuid4().hex[:16], product_id=product.id, image_sha=sha256(data), generator=gi.generator,
                 generator_version=gi.generator_version, seed=gi.seed, aspect=gi.aspect, width=gi.image.width,
                 height=gi.image.height, params=params, layout={k: b.as_list() for k, b in gi.layout.items()},
                 intended_label=gi.label if defect else None, run_id=run_id, mask_sha=sha256(mask),
                 attempt_key=attempt_key)
    return c, data, mask


def generate_and_store(store: Store, generator: Generator, product: Product, *, n: int, aspects: list[str],
                       seed: int = 0, defect: str | None = None, severity: float = 0.5,
                       run_id: str | None = None) -> list[Creative]:
    """``n`` creatives per aspect ratio; seeds ``seed, seed+1, …`` per aspect, so each is reproducible."""
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    if n > MAX_PER_CALL:
        raise InputError(f"--n is at most {MAX_PER_CALL} images per aspect ratio in one call, got {n}")
    if not 0 <= seed <= INT_MAX - (n - 1):  # checked before the first image, not by the store at image k
        raise InputError(f"--seed: the seeds {seed}…{seed + n - 1} must lie in [0, {INT_MAX}]")
    out = []
    for aspect in aspects:
        for gi in generator(product, seed=seed, aspect=aspect, n=n, defect=defect, severity=severity):
            c, data, mask = to_creative(gi, product, defect=defect, severity=severity, run_id=run_id)
            out.append(store.add_creative(c, data=data, mask=mask))
    return out


def placement_mask(store: Store, creative: Creative, product: Product | None = None) -> Image.Image | None:
    """Where the product's own pixels are in a stored creative (L, 255 = product): the mask stored at
    generation; for a creative stored before masks were kept, rebuilt from its layout (:func:`layout_mask`)."""
    mask = store.creative_mask(creative)
    if mask is not None:
        return mask
    return layout_mask(creative, product or store.get_product(creative.product_id))


def layout_mask(creative: Creative, product: Product) -> Image.Image | None:
    """The legacy rebuild, for creatives without a stored mask: the cutout (cropped to its alpha) scaled
    into ``params.render.product_box`` (which may reach past the canvas when the product is truncated), or
    into the layout's ``product`` box, kept where it is opaque. None when the creative records no box."""
    params = creative.params or {}
    render: dict[str, Any] = params["render"] if isinstance(params.get("render"), dict) else {}
    box = render.get("product_box") or params.get("product_box") or (creative.layout or {}).get("product")
    if not box:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        return None
    alpha = product.image.getchannel("A")
    bbox = alpha.point(lambda v: 255 if v > 8 else 0).getbbox()
    if bbox:
        alpha = alpha.crop(bbox)
    alpha = alpha.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 250 else 0)
    mask = Image.new("L", (creative.width, creative.height), 0)
    mask.paste(alpha, (x0, y0))
    if not np.asarray(mask).any():
        return None
    return mask


def regenerate(store: Store, creative: Creative) -> tuple[bytes, str]:
    """Re-run the generator recorded in the manifest; returns the PNG bytes and their sha256."""
    cfg = dict(creative.params.get("generator_config", {}))
    gen = create_generator(creative.generator, **cfg)
    if gen.version != creative.generator_version:
        raise InputError(f"creative {creative.id} was made by {creative.generator} {creative.generator_version}; "
                         f"this install has {gen.version}")
    product = store.get_product(creative.product_id)
    gi = gen(product, seed=creative.seed, aspect=creative.aspect, n=1, defect=creative.params.get("defect"),
             severity=float(creative.params.get("severity", 0.5)))[0]
    data = png_bytes(gi.image)
    return data, sha256(data)
