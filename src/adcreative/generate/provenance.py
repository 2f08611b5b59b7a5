"""Generate and store: run a generator for a product, store each image with its provenance manifest,
and regenerate a stored creative bit for bit."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from adcreative.core.errors import InputError
from adcreative.core.imageio import png_bytes, sha256
from adcreative.core.store import Store
from adcreative.core.types import ASPECTS, Creative, Product
from adcreative.generate.base import GeneratedImage, Generator, create_generator


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
                run_id: str | None = None, data: bytes | None = None) -> tuple[Creative, bytes]:
    """The Creative row for a generated image, and its PNG bytes (encoded here unless given)."""
    data = data if data is not None else png_bytes(gi.image)
    params = {"generator_config": gi.config, "defect": defect, "severity": severity, "render": gi.params}
    c = Creative(id=uuid.uuid4().hex[:16], product_id=product.id, image_sha=sha256(data), generator=gi.generator,
                 generator_version=gi.generator_version, seed=gi.seed, aspect=gi.aspect, width=gi.image.width,
                 height=gi.image.height, params=params, layout={k: b.as_list() for k, b in gi.layout.items()},
                 intended_label=gi.label if defect else None, run_id=run_id)
    return c, data


def generate_and_store(store: Store, generator: Generator, product: Product, *, n: int, aspects: list[str],
                       seed: int = 0, defect: str | None = None, severity: float = 0.5,
                       run_id: str | None = None) -> list[Creative]:
    """``n`` creatives per aspect ratio; seeds ``seed, seed+1, …`` per aspect, so each is reproducible."""
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    out = []
    for aspect in aspects:
        for gi in generator(product, seed=seed, aspect=aspect, n=n, defect=defect, severity=severity):
            c, data = to_creative(gi, product, defect=defect, severity=severity, run_id=run_id)
            out.append(store.add_creative(c, data=data))
    return out


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
