"""Judge a product's catalogue cutout on its own, before any creative is made of it.

RFNet's *unsuitable* class is a bad source: in training, the cutout the auditor is given for an unsuitable image is
itself damaged (torn, holed, sliced, pixelated). A real product whose own look resembles that damage (a shape-sorter
full of holes, a fruit cut open, a sequinned gown) then has nearly every creative called unsuitable, whatever the
scene: on 17 real products the shipped model never trained on, 5 had 93–100 % of their available images called
unsuitable (docs/inspect.md, fifteenth round). Those five are the ones whose cutout, pasted alone on a plain grey
canvas (a *probe*), the model already calls unsuitable (P 0.50–0.74; the other twelve 0.18 at most). So the probe
tells, once per product, whether the auditor's unsuitable verdicts on its creatives are about the creative or about
the catalogue image: a flagged product needs its catalogue image checked by a person, not more regeneration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from adcreative.core.types import CLASSES, Product
from adcreative.inspect.preprocess import InspectItem, catalogue_source

PROBE_SIDE = 512  # the probe canvas (px): the size generation delivers
PROBE_HEIGHT = 0.6  # the product's height as a share of the canvas (its width at most 0.8 of it)
PROBE_GREY = (200, 200, 200)
# a probe this likely unsuitable flags the product: between the flagged products' 0.50 and the others' 0.18 at most
# on 17 real products (a development figure: chosen on the products it was measured on)
FLAG_UNSUITABLE = 0.4


@dataclass(frozen=True)
class SourceVerdict:
    """What the auditor says of a product's cutout alone: class probabilities of its probe image, and whether the
    product is flagged (its creatives' unsuitable verdicts would be about the catalogue image)."""

    product_id: str
    probs: dict[str, float]
    flagged: bool


def probe_item(product: Product) -> InspectItem:
    """The product's cutout alone on a plain grey square canvas, centred, with its exact placement mask."""
    from adcreative.catalogue.sizes import real_height_cm
    from adcreative.core.errors import InputError

    rgba = product.image.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise InputError("the product cutout is fully transparent", source=f"product {product.id}")
    cut = rgba.crop(box)
    s = min(PROBE_HEIGHT * PROBE_SIDE / cut.height, 0.8 * PROBE_SIDE / cut.width)
    c = cut.resize((max(1, round(cut.width * s)), max(1, round(cut.height * s))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (PROBE_SIDE, PROBE_SIDE), PROBE_GREY)
    x, y = (PROBE_SIDE - c.width) // 2, (PROBE_SIDE - c.height) // 2
    canvas.paste(c, (x, y), c)
    mask = Image.new("L", (PROBE_SIDE, PROBE_SIDE), 0)
    mask.paste(c.getchannel("A"), (x, y))
    return InspectItem(image=canvas, title=product.title, mask=mask, product=rgba,
                       product_id=product.id, id=f"probe-{product.id}", source=f"product {product.id}",
                       height_cm=real_height_cm(product),
                       product_source=catalogue_source(product))


def judge_sources(inspector: Any, products: Sequence[Product]) -> list[SourceVerdict]:
    """Each product's probe judged by ``inspector`` (anything with ``predict_proba``), flagged at
    :data:`FLAG_UNSUITABLE`."""
    if not products:
        return []
    probs = inspector.predict_proba([probe_item(p) for p in products])
    out = []
    for p, row in zip(products, probs, strict=True):
        d = {c: float(v) for c, v in zip(CLASSES, row, strict=True)}
        out.append(SourceVerdict(p.id, d, d["unsuitable"] >= FLAG_UNSUITABLE))
    return out
