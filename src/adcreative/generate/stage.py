"""Generation as a batch stage, for the executors: products in, encoded creatives out."""

from __future__ import annotations

from typing import Any

from adcreative.core.imageio import png_bytes
from adcreative.core.types import Product
from adcreative.generate.base import GeneratedImage, create_generator


class GenerateStage:
    """``__init__`` builds the generator once; ``__call__`` generates for a batch of products."""

    def __init__(self, generator: str, config: dict[str, Any], aspects: list[str], n: int, seed: int) -> None:
        self.gen = create_generator(generator, **config)
        self.aspects, self.n, self.seed = aspects, n, seed

    def __call__(self, batch: list[Product]) -> list[list[tuple[bytes, GeneratedImage]]]:
        out = []
        for p in batch:
            items = []
            for aspect in self.aspects:
                for gi in self.gen(p, seed=self.seed, aspect=aspect, n=self.n):
                    items.append((png_bytes(gi.image), gi))
            out.append(items)
        return out
