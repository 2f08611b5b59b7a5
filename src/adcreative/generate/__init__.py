"""Generate: product cutout + title + category + copy → candidate ad images.

``create_generator("compositor")`` is the embedded CPU generator; ``"diffusers-inpaint"`` is Stable Diffusion
inpainting + ControlNet for users with local weights. Both return :class:`GeneratedImage` lists.
"""

from adcreative.generate.base import GENERATORS, GeneratedImage, Generator, create_generator

__all__ = ["GENERATORS", "GeneratedImage", "Generator", "create_generator"]
