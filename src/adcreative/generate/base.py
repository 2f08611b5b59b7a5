"""The generator contract shared by the compositor and the diffusers backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from adcreative.core.registry import Registry
from adcreative.core.types import CLASSES, Box, Product


@dataclass
class GeneratedImage:
    """One generated ad image with what is needed to audit and regenerate it."""

    image: Image.Image  # RGB
    mask: Image.Image  # L, where the product's own pixels are in ``image``
    layout: dict[str, Box]  # "product", "headline", "copy", "price", "badge", ...
    seed: int
    aspect: str
    generator: str
    generator_version: str
    params: dict[str, Any] = field(default_factory=dict)  # sampled choices, for provenance
    config: dict[str, Any] = field(default_factory=dict)  # generator constructor args
    label: str | None = None  # intended RF1M class when a defect was synthesised
    # a synthesised *bad source product* (RF1M "unsuitable": torn, low-resolution): the cutout as the image
    # shows it, which is what an auditor would have been given as the product (RGBA, at placement size)
    source: Image.Image | None = None
    # where the renderer placed the whole product (L), when the image shows less of it than that (a hole or a
    # tear drawn into the image): the placement mask a generator that pastes and then edits would report
    placement: Image.Image | None = None


@runtime_checkable
class Generator(Protocol):
    name: str
    version: str
    config: dict[str, Any]

    def __call__(self, product: Product, *, seed: int, aspect: str = "1:1", n: int = 1,
                 defect: str | None = None, severity: float = 0.5) -> list[GeneratedImage]:
        """Generate ``n`` images; image ``i`` uses seed ``seed + i`` so each is reproducible alone."""
        ...


class SceneRenderer:
    """The ``__call__`` of the scene-renderer families (compositor, photoset, softfocus, perspective, poster,
    lowkey): checks the request and renders ``n`` images with seeds ``seed + i`` through ``generate_one``."""

    def __call__(self, product: Product, *, seed: int, aspect: str = "1:1", n: int = 1,
                 defect: str | None = None, severity: float = 0.5) -> list[GeneratedImage]:
        if defect is not None and defect not in CLASSES:
            raise ValueError(f"unknown defect {defect!r}; choose from {', '.join(CLASSES)}")
        if not 0.0 <= severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {severity}")
        return [self.generate_one(product, seed=seed + i, aspect=aspect, defect=defect, severity=severity)
                for i in range(n)]

    name: str
    version: str
    config: dict[str, Any]

    def generate_one(self, product: Product, *, seed: int, aspect: str, defect: str | None = None,
                     severity: float = 0.5) -> GeneratedImage:
        raise NotImplementedError

    def result(self, image: np.ndarray, visible: np.ndarray, *, boxes: dict[str, Box], params: dict[str, Any],
               seed: int, aspect: str, source: Image.Image | None = None, placement: np.ndarray | None = None
               ) -> GeneratedImage:
        """A render as a :class:`GeneratedImage`: the product's box from its visible pixels, the label the
        labeller gave it (``params["label"]``)."""
        ys, xs = np.nonzero(visible)
        pbox = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else Box(0, 0, 0, 0)
        return GeneratedImage(image=Image.fromarray(image, "RGB"),
                              mask=Image.fromarray(visible.astype(np.uint8) * 255, "L"), layout={"product": pbox, **boxes},
                              seed=seed, aspect=aspect, generator=self.name, generator_version=self.version,
                              params=params, config=dict(self.config), label=params.get("label"), source=source,
                              placement=None if placement is None else Image.fromarray(placement.astype(np.uint8) * 255,
                                                                                        "L"))


GENERATORS: Registry[Generator] = Registry("generator")
GENERATORS.register("compositor", "adcreative.generate.compositor.generator:Compositor")
GENERATORS.register("photoset", "adcreative.generate.photoset:PhotoSet")
GENERATORS.register("softfocus", "adcreative.generate.softfocus:SoftFocus")
GENERATORS.register("perspective", "adcreative.generate.perspective:Perspective")
GENERATORS.register("poster", "adcreative.generate.poster:Poster")
GENERATORS.register("lowkey", "adcreative.generate.lowkey:LowKey")
GENERATORS.register("diffusers-inpaint", "adcreative.generate.diffusers_inpaint:DiffusersInpaintGenerator")


def create_generator(name: str, **cfg: Any) -> Generator:
    """Build a registered generator from its constructor arguments (its config)."""
    return GENERATORS.create(name, **cfg)
