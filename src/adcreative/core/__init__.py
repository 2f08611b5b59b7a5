"""Shared domain types, storage and image I/O: the small core every stage depends on."""

from adcreative.core.errors import InputError
from adcreative.core.types import (
    ASPECTS,
    CLASSES,
    Box,
    Creative,
    Event,
    Label,
    Product,
    Verdict,
)

__all__ = ["ASPECTS", "CLASSES", "Box", "Creative", "Event", "InputError", "Label", "Product", "Verdict"]
