"""Real-world product heights: explicit attrs, procedural shape, title keywords, category."""

from __future__ import annotations

from PIL import Image

from adcreative.catalogue.procedural import fitted_product, procedural_product
from adcreative.catalogue.sizes import DEFAULT_HEIGHT_CM, real_height_cm
from adcreative.core.types import Product


def _p(title: str, category: str = "misc", **attrs: object) -> Product:
    return Product(id="x", title=title, category=category, image=Image.new("RGBA", (40, 40)), attrs=dict(attrs))


def test_order_of_evidence() -> None:
    assert real_height_cm(_p("Upright piano", height_cm=131)) == 131.0
    assert real_height_cm(_p("Velvet Matte Lipstick in Gold Case", "beauty")) == 8.0
    assert real_height_cm(_p("Noise-Cancelling Wireless Headphones")) == 20.0  # not a phone
    assert real_height_cm(_p("Black digital upright piano with bench")) == 125.0
    assert real_height_cm(_p("Something", "furniture")) == 80.0
    assert real_height_cm(_p("Something", "nowhere")) == DEFAULT_HEIGHT_CM
    assert real_height_cm(_p("Mug of tea", height_cm="bad")) == 10.0  # an unusable attr falls through


def test_procedural_products_use_their_shape() -> None:
    for seed in range(20):
        for p in (procedural_product(seed), fitted_product(seed)):
            assert 5.0 <= real_height_cm(p) <= 60.0, (p.title, p.attrs)
