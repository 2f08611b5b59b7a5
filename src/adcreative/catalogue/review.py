"""Reviewing mattes: checkerboard previews (photo | cutout) for an import or a stored product, and a user's own
mask over a stored product's original photo, at any time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.imageio import open_image, png_bytes, save_png, sha256

if TYPE_CHECKING:
    from adcreative.catalogue.importer import ImportPlan
    from adcreative.core.store import Store
    from adcreative.core.types import Product

PREVIEW_SIDE = 640


def checkerboard(size: tuple[int, int], cell: int = 12) -> Image.Image:
    """Light and mid grey squares: the usual way to show transparency."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 236, 196).astype(np.uint8)
    return Image.fromarray(np.dstack([board] * 3), "RGB")


def on_checkerboard(cutout: Image.Image) -> Image.Image:
    board = checkerboard(cutout.size).convert("RGBA")
    board.alpha_composite(cutout.convert("RGBA"))
    return board.convert("RGB")


def matte_preview(cutout: Image.Image, photo: Image.Image | None = None, *, side: int = PREVIEW_SIDE) -> Image.Image:
    """The original photo (when there is one) beside the cutout on a checkerboard, each fitted in ``side``."""
    tiles = [photo.convert("RGB")] if photo is not None else []
    tiles.append(on_checkerboard(cutout))
    for t in tiles:
        t.thumbnail((side, side))
    out = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)),
                    (255, 255, 255))
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 8
    return out


def write_previews(plan: ImportPlan, out_dir: str | Path) -> list[Path]:
    """``<id>.png`` previews of every matted or masked product of an import plan, those that need a look too."""
    d = Path(out_dir)
    paths = []
    for p in [*plan.planned, *plan.needs_look]:
        if p.photo is None:
            continue
        path = d / f"{_safe(p.product.id)}.png"
        save_png(path, matte_preview(p.product.image, p.photo))
        paths.append(path)
    return paths


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "product"


def original_photo(store: Store, product: Product) -> Image.Image | None:
    """The photo a matted or masked product was cut out of, when the store kept it."""
    sha = product.attrs.get("photo_sha")
    if not sha or not store.blobs.exists(str(sha)):
        return None
    return store.blobs.get_image(str(sha)).convert("RGB")


def product_preview(store: Store, product_id: str) -> Image.Image:
    product = store.get_product(product_id)
    return matte_preview(product.image, original_photo(store, product))


def set_user_mask(store: Store, product_id: str, mask_path: str | Path) -> Product:
    """Cut the product out of its original photo (or, for a plain cutout, its own pixels) with the user's mask;
    the previous cutout's sha is kept in the attrs."""
    product = store.get_product(product_id)
    photo = original_photo(store, product) or product.image.convert("RGB")
    mask = open_image(mask_path).convert("L")
    if mask.size != photo.size:
        raise InputError(f"mask is {mask.size[0]}×{mask.size[1]} but the product's photo is "
                         f"{photo.size[0]}×{photo.size[1]}", source=mask_path)
    cover = float((np.asarray(mask) > 127).mean())
    if cover < 0.01:
        raise InputError("the mask is empty (under 1% of pixels are product)", source=mask_path)
    if cover > 0.995:
        raise InputError("the mask covers the whole image: no background was cut out", source=mask_path)
    cutout = photo.copy()
    cutout.putalpha(mask)
    attrs: dict[str, Any] = dict(product.attrs)
    history = list(attrs.get("matte", {}).get("previous_cutouts", []))
    history.append(sha256(png_bytes(product.image)))
    attrs["matte"] = {"method": "user", "mask_file": Path(mask_path).name, "previous_cutouts": history}
    store.replace_product_image(product_id, cutout, attrs)
    return store.get_product(product_id)
