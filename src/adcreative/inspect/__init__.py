"""Inspect: RFNet, the multimodal auditor that judges generated ad images as a human reviewer would,
and recurrent generation (regenerate until K images are judged available).

Light at import: torch loads only when a model is built. ``create_inspector("rfnet" | "image-only", **cfg)``
builds a fresh model; ``default_inspector()`` loads the small RFNet shipped in ``adcreative/assets/rfnet``.
"""

from adcreative.inspect.base import (
    INSPECTORS,
    create_inspector,
    default_inspector,
    load_inspector,
    load_scorer,
)

__all__ = ["INSPECTORS", "create_inspector", "default_inspector", "load_inspector", "load_scorer"]
