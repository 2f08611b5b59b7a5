"""Catalogue import: a folder of product cutouts (or image + mask pairs) with CSV/JSON metadata.

Every file and row is checked before anything is returned, so one bad file stops the whole import.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcreative.core.errors import InputError
from adcreative.core.imageio import load_cutout, open_image
from adcreative.core.types import Product

if TYPE_CHECKING:
    from adcreative.core.store import Store

IMAGE_EXTS = {".png", ".webp", ".jpg", ".jpeg"}
MASK_SUFFIX = "_mask"


# -- import ------------------------------------------------------------------------------------------------
def _read_meta(meta: Path) -> dict[str, dict[str, Any]]:
    if not meta.exists():
        raise InputError("metadata file does not exist", source=meta)
    try:
        if meta.suffix.lower() == ".json":
            data = json.loads(meta.read_text())
            rows = data if isinstance(data, list) else [{"id": k, **v} for k, v in data.items()]
        elif meta.suffix.lower() == ".csv":
            with meta.open(newline="") as f:
                rows = list(csv.DictReader(f))
        else:
            raise InputError("metadata must be .csv or .json", source=meta)
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"malformed metadata ({e})", source=meta) from None
    out: dict[str, dict[str, Any]] = {}
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or not str(r.get("id", "")).strip():
            raise InputError(f"row {n} has no id", source=meta)
        rid = str(r["id"]).strip()
        if rid in out:
            raise InputError(f"duplicate product id {rid!r} (row {n})", source=meta)
        out[rid] = r
    return out


def read_catalogue_folder(folder: str | Path, meta: str | Path | None = None) -> list[Product]:
    """Products from a folder: ``<id>.png`` RGBA cutouts, or ``<id>.jpg`` + ``<id>_mask.png`` pairs.

    Metadata (``--meta`` or ``products.csv``/``products.json`` in the folder) gives title, category, copy,
    price, badge and logo per id. Every file is checked before anything is returned, so a bad file stops
    the whole import.
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError("catalogue folder does not exist", source=d)
    if meta is None:
        for name in ("products.json", "products.csv"):
            if (d / name).exists():
                meta = d / name
    rows = _read_meta(Path(meta)) if meta is not None else {}
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.stem.endswith(MASK_SUFFIX) and p.stem != "logo" and not p.stem.endswith("_logo"))
    others = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_EXTS
                    and p.suffix.lower() not in {".csv", ".json", ".md", ".txt"})
    if others:
        raise InputError(f"not an image file (expected {', '.join(sorted(IMAGE_EXTS))})", source=others[0])
    if not files:
        raise InputError("no product images in the folder", source=d)
    products = []
    for f in files:
        pid = f.stem
        mask = next((m for m in d.glob(f"{pid}{MASK_SUFFIX}.*") if m.suffix.lower() in IMAGE_EXTS), None)
        image = load_cutout(f, mask)
        r = rows.get(pid, {})
        title = str(r.get("title", "")).strip()
        if not title:
            raise InputError(f"empty title for product {pid!r} (give one in the metadata)", source=f)
        price = r.get("price")
        try:
            price_f = float(price) if price not in (None, "") else None
        except ValueError:
            raise InputError(f"price {price!r} of product {pid!r} is not a number", source=meta) from None
        logo = None
        if r.get("logo"):
            logo = open_image(d / str(r["logo"])).convert("RGBA")
        attrs = {k: v for k, v in r.items() if k in ("badge", "headline", "currency", "brand") and v}
        products.append(Product(id=pid, title=title, category=str(r.get("category") or "default"), image=image,
                                copy=str(r["copy"]) if r.get("copy") else None, price=price_f, logo=logo,
                                attrs=attrs))
    return products




def import_folder(store: Store, folder: str | Path, meta: str | Path | None = None) -> list[Product]:
    """Read a catalogue folder and add its products to the store in one transaction (all or nothing)."""
    products = read_catalogue_folder(folder, meta)
    store.add_products(products)
    return products
