"""Product sources named on the command line: a cutout folder, ``sample``, or ``FAMILY:N`` for a family of
``DRAWN_FAMILIES`` (``procedural:N``, ``fitted:N``, ``skinned:N``, ``lookalike:N``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adcreative.core.errors import InputError
from adcreative.core.types import Product

# the SKU families the project draws itself, each with the id prefix of its products: the one table behind
# ``FAMILY:N`` here, ``dataset synth``'s product sources and the decision's drawn/real split
DRAWN_FAMILIES: dict[str, str] = {"procedural": "proc-", "fitted": "fit-", "skinned": "skin-",
                                  "lookalike": "look-"}


def products_from_sources(sources: Sequence[str], metas: Sequence[Path] = (), *, seed: int = 0) -> list[Product]:
    """Products of every source in order; ``metas`` give the metadata files of the folders, in order."""
    from adcreative.catalogue.importer import read_catalogue_folder
    from adcreative.catalogue.procedural import (
        fitted_products,
        lookalike_products,
        procedural_products,
        skinned_products,
    )
    from adcreative.catalogue.sample import sample_catalogue

    makers = {"procedural": procedural_products, "fitted": fitted_products, "skinned": skinned_products,
              "lookalike": lookalike_products}
    products: list[Product] = []
    pending = list(metas)
    for src in sources:
        if not src.strip():  # Path("") is the current folder: an empty variable must not import where it ran
            raise InputError("--products: an empty source; give a cutout folder, 'sample' or one of "
                             + ", ".join(f"'{f}:N'" for f in DRAWN_FAMILIES))
        family, colon, n = src.partition(":")
        if src == "sample":
            got, origin = sample_catalogue(), "sample"
        elif colon and family in DRAWN_FAMILIES:
            if not n.isdigit() or int(n) < 1:
                raise InputError(f"--products {src!r}: expected {family}:N with N ≥ 1")
            got, origin = makers[family](int(n), seed), family
        else:
            got, origin = read_catalogue_folder(Path(src), pending.pop(0) if pending else None), "real"
        for p in got:  # where each product came from, for per-source evaluation rows
            p.attrs.setdefault("catalogue_source", origin)
        products += got
    return products
