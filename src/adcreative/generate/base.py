"""The generator contract shared by the compositor and the diffusers backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from adcreative.core.registry import Registry
from adcreative.core.types import Box, Product


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


GENERATORS: Registry[Generator] = Registry("generator")
GENERATORS.register("compositor", "adcreative.generate.compositor.generator:Compositor")
GENERATORS.register("photoset", "adcreative.generate.photoset:PhotoSet")
GENERATORS.register("softfocus", "adcreative.generate.softfocus:SoftFocus")
GENERATORS.register("diffusers-inpaint", "adcreative.generate.diffusers_inpaint:DiffusersInpaintGenerator")


def create_generator(name: str, **cfg: Any) -> Generator:
    """Build a registered generator from its constructor arguments (its config)."""
    return GENERATORS.create(name, **cfg)
