"""Explicit features on images whose content we know: rendered copy, a known colour, a real face, a logo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from adcreative.core.errors import InputError
from adcreative.core.types import Box
from adcreative.represent import features as F
from tests.paths import SHARED as SHARED_DATA

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


PRODUCTS = SHARED_DATA / "products"


def _product() -> Image.Image:
    """A real JD cutout when the shared data is present, else a shaded bottle drawn here."""
    p = PRODUCTS / "0.png"
    if p.exists():
        return Image.open(p).convert("RGBA")
    im = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((140, 60, 260, 380), 30, fill=(30, 90, 160, 255))
    d.rectangle((180, 20, 220, 70), fill=(200, 200, 210, 255))
    return im


def _creative(bg: tuple[int, int, int] = (200, 30, 30), text: str | None = None, size: int = 512):
    """Paste the product on a flat background; returns the image, the product mask and the layout."""
    im = Image.new("RGB", (size, size), bg)
    prod = _product()
    prod = prod.crop(prod.getchannel("A").getbbox())
    prod.thumbnail((size // 2, size // 2))
    x0, y0 = size // 4, size // 3
    im.paste(prod, (x0, y0), prod)
    mask = Image.new("L", im.size, 0)
    mask.paste(prod.getchannel("A"), (x0, y0))
    layout = {"product": Box(x0, y0, x0 + prod.width, y0 + prod.height)}
    if text:
        d = ImageDraw.Draw(im)
        font = ImageFont.truetype(str(FONT), 28)
        d.text((24, 24), text, font=font, fill=(255, 255, 255))
        layout["headline"] = Box(*(int(v) for v in d.textbbox((24, 24), text, font=font)))
    return im, mask, layout


def test_known_background_colour_and_product_geometry() -> None:
    im, mask, _ = _creative(bg=(200, 30, 30))
    (f,) = F.extract([im], masks=[mask], ocr=False, faces=False)
    top = f["bg_colors"][0]
    assert f["mask_source"] == "given"
    assert top["share"] > 0.95
    assert np.abs(np.array(top["rgb"]) - [200, 30, 30]).max() <= 3
    m = np.asarray(mask) > 127
    assert f["product_area"] == pytest.approx(m.mean(), abs=0.01)
    ys, xs = np.nonzero(m)
    assert f["product_cx"] == pytest.approx(xs.mean() / 512, abs=0.01)
    assert f["product_cy"] == pytest.approx(ys.mean() / 512, abs=0.01)
    assert f["contrast_de"] > 10


def test_two_colour_background_and_estimated_mask() -> None:
    im = Image.new("RGB", (400, 400), (20, 60, 200))
    ImageDraw.Draw(im).rectangle((0, 300, 400, 400), fill=(240, 230, 210))  # floor plane, 25%
    ImageDraw.Draw(im).ellipse((150, 120, 250, 280), fill=(250, 200, 0))  # the "product"
    (f,) = F.extract([im], ocr=False, faces=False)
    assert f["mask_source"] == "estimated"
    rgbs = [c["rgb"] for c in f["bg_colors"]]
    assert np.abs(np.array(rgbs[0]) - [20, 60, 200]).max() <= 4
    assert np.abs(np.array(rgbs[1]) - [240, 230, 210]).max() <= 4
    assert f["bg_n_colors"] == 2
    assert f["product_area"] == pytest.approx(np.pi * 50 * 80 / 400**2, rel=0.1)


def test_contrast_low_when_product_matches_background() -> None:
    prod = _product()
    arr = np.asarray(prod.convert("RGB"))[np.asarray(prod.getchannel("A")) > 127]
    mean = tuple(int(v) for v in arr.mean(0))
    im_same, mask, _ = _creative(bg=mean)
    im_diff, _, _ = _creative(bg=(255 - mean[0], 255 - mean[1], 255 - mean[2]))
    same, diff = F.extract([im_same, im_diff], masks=[mask, mask], ocr=False, faces=False)
    assert same["contrast_de"] < diff["contrast_de"]
    assert same["luminance_contrast"] < 1.6


def test_ocr_reads_rendered_copy_and_promo_is_parsed() -> None:
    im, mask, layout = _creative(bg=(20, 40, 90), text="SUMMER SALE 30% OFF $19.99")
    full, boxed = F.extract([im, im], masks=[mask, mask], layouts=[None, layout], faces=False)
    for f in (full, boxed):
        compact = f["text"].replace(" ", "").upper()
        assert "SUMMER" in compact and "SALE" in compact and "30%" in compact
        assert f["has_sale"] and f["percent_off"] == 30
        assert {"value": 19.99, "currency": "USD"} in f["prices"] and f["min_price"] == pytest.approx(19.99)
        assert f["text_area"] > 0
    assert boxed["text_boxes"][0]["role"] == "headline"


@pytest.mark.parametrize(("text", "expect"), [
    ("NEW ARRIVAL free shipping", {"has_new": True, "has_free_shipping": True, "has_sale": False}),
    ("Renewal of the classic", {"has_new": False}),
    ("限时特价 ¥199 包邮", {"has_sale": True, "has_free_shipping": True, "has_limited": True}),
    ("Only €1.299,00", {"has_sale": False}),
])
def test_parse_promo(text: str, expect: dict[str, bool]) -> None:
    p = F.parse_promo(text)
    for k, v in expect.items():
        assert p[k] is v, (text, k)
    if "¥" in text:
        assert p["prices"] == [{"value": 199.0, "currency": "CNY"}]
    if "€" in text:
        assert p["prices"][0] == {"value": 1299.0, "currency": "EUR"}


def test_face_detected_on_astronaut_and_not_on_product() -> None:
    from skimage import data

    astro = Image.fromarray(data.astronaut())
    im, mask, _ = _creative()
    fa, fp = F.extract([astro, im], masks=[None, mask], ocr=False)
    assert fa["n_faces"] >= 1
    x0, y0, x1, y1 = fa["faces"][0]
    # Eileen Collins' face is around (x≈200, y≈110) in the 512×512 photo
    assert x0 < 200 < x1 and y0 < 110 < y1
    assert fp["n_faces"] == 0


def test_logo_match_found_where_pasted() -> None:
    from skimage import data

    logo = Image.fromarray(data.logo())  # scikit-image's own logo, RGBA
    im, mask, _ = _creative(bg=(235, 235, 230))
    small = logo.copy()
    small.thumbnail((120, 120))
    im.paste(small, (370, 380), small)
    f_with, f_without = F.extract([im, _creative(bg=(235, 235, 230))[0]], masks=[mask, mask],
                                  logos=[logo, logo], ocr=False, faces=False)
    assert f_with["logo_found"] and f_with["logo_score"] > 0.6
    bx = f_with["logo_box"]
    assert abs(bx[0] - 370) < 20 and abs(bx[1] - 380) < 20
    assert not f_without["logo_found"] and f_without["logo_score"] < f_with["logo_score"] - 0.2


def test_sharpness_and_colourfulness_order() -> None:
    im, mask, _ = _creative(bg=(200, 30, 30))
    blurred = im.filter(ImageFilter.GaussianBlur(4))
    grey = im.convert("L").convert("RGB")
    f, fb, fg = F.extract([im, blurred, grey], masks=[mask] * 3, ocr=False, faces=False)
    assert fb["sharpness"] < 0.3 * f["sharpness"]
    assert fg["colorfulness"] < 1.0 < f["colorfulness"]
    v = F.to_vector(f)
    assert v.shape == (len(F.NUMERIC_FEATURES),) and np.isfinite(v).all()


def test_bad_inputs_are_named() -> None:
    im, _, _ = _creative()
    with pytest.raises(InputError, match="mask is"):
        F.extract([im], masks=[Image.new("L", (10, 10))], ocr=False)
    with pytest.raises(InputError, match="masks has 2 entries"):
        F.extract([im], masks=[None, None], ocr=False)


def test_boolean_and_alpha_masks_agree() -> None:
    im, mask, _ = _creative()
    a, b = F.extract([im, im], masks=[mask, np.asarray(mask) > 127], ocr=False, faces=False)
    assert a["product_area"] == b["product_area"] > 0.05
