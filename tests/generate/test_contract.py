"""The generator contract, for every registered generator and for a toy one added with one registry line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from adcreative.core.types import Box, Product, canvas_size
from adcreative.generate.base import GENERATORS, GeneratedImage
from tests.contracts import check_generator, registered


@pytest.fixture(scope="module")
def tiny_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """A tiny, CPU-fast config for each registered generator; a new entry must add one here."""
    configs: dict[str, dict[str, Any]] = {"compositor": {"scale": 0.25}, "photoset": {"scale": 0.25},
                                          "softfocus": {"scale": 0.25}, "perspective": {"scale": 0.25},
                                          "poster": {"scale": 0.25}, "lowkey": {"scale": 0.25}}
    if "diffusers-inpaint" in GENERATORS.names():
        pytest.importorskip("diffusers")
        from adcreative.generate.diffusers_tiny import build_tiny_sd_folders

        base, cn = build_tiny_sd_folders(tmp_path_factory.mktemp("sd"))
        configs["diffusers-inpaint"] = {"base": str(base), "controlnet": str(cn), "steps": 2, "canvas_scale": 0.125,
                                        "size_multiple": 16, "device": "cpu"}
    return configs


@pytest.mark.parametrize("name", GENERATORS.names())
def test_every_registered_generator_honours_the_contract(name: str, tiny_configs: dict[str, dict[str, Any]]) -> None:
    assert name in tiny_configs, f"add a tiny config for generator {name!r} to this test"
    check_generator(GENERATORS, name, tiny_configs[name])


class ToyGenerator:
    """A flat backdrop with the product pasted in the middle: the least a generator must do."""

    name = "toy"
    version = "0.1"

    def __init__(self, colour: tuple[int, int, int] | list[int] = (240, 235, 225), scale: float = 0.25) -> None:
        self.colour, self.scale = tuple(colour), scale
        self.config = {"colour": list(self.colour), "scale": scale}

    def __call__(self, product: Product, *, seed: int, aspect: str = "1:1", n: int = 1, defect: str | None = None,
                 severity: float = 0.5) -> list[GeneratedImage]:
        out = []
        for i in range(n):
            rng = np.random.default_rng(seed + i)
            w, h = canvas_size(aspect, self.scale)
            shade = int(rng.integers(-20, 20))
            image = Image.new("RGB", (w, h), tuple(int(np.clip(c + shade, 0, 255)) for c in self.colour))
            cut = product.image.copy()
            cut.thumbnail((w // 2, h // 2))
            x, y = (w - cut.width) // 2, (h - cut.height) // 2
            image.paste(cut, (x, y), cut)
            mask = Image.new("L", (w, h), 0)
            mask.paste(cut.getchannel("A"), (x, y))
            out.append(GeneratedImage(image=image, mask=mask, layout={"product": Box(x, y, x + cut.width, y + cut.height)},
                                      seed=seed + i, aspect=aspect, generator=self.name,
                                      generator_version=self.version, params={"shade": shade}, config=self.config))
        return out


def test_a_toy_generator_takes_one_registry_entry(tmp_path: Path) -> None:
    with registered(GENERATORS, "toy", ToyGenerator):
        check_generator(GENERATORS, "toy", {"scale": 0.25})
    assert "toy" not in GENERATORS.names()
